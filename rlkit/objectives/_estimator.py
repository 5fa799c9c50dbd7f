"""Resolving a value-estimator request (enum, name, class or instance) for a loss."""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable

from torch import nn

from rlkit.objectives.value import ESTIMATORS, ValueEstimatorBase, ValueEstimators

EstimatorRequest = ValueEstimators | str | type | ValueEstimatorBase | None


def enum_of_class(cls: type) -> ValueEstimators:
    """The enum member implemented by an estimator class (or a subclass of one)."""
    for enum, known in ESTIMATORS.items():
        if issubclass(cls, known):
            return enum
    raise ValueError(
        f"{cls.__name__} is not a known value estimator class; valid: {[c.__name__ for c in ESTIMATORS.values()]}."
    )


def build_estimator(
    loss_name: str,
    request: EstimatorRequest,
    *,
    default: ValueEstimators | None,
    supported: tuple[ValueEstimators, ...],
    default_kwargs: Callable[[ValueEstimators], dict[str, Any]],
    value_network: nn.Module | None,
    hyperparams: dict[str, Any],
) -> tuple[ValueEstimators, ValueEstimatorBase]:
    """Check ``request`` against ``supported`` and return ``(enum, estimator)``."""
    if not supported:
        raise ValueError(f"{loss_name} declares no supported_value_estimators: set that class attribute to the "
                         "estimators its forward can use, default first (e.g. supported_value_estimators = "
                         "(ValueEstimators.TD0,)); default_value_estimator alone does not declare them")
    if isinstance(request, ValueEstimatorBase):
        if hyperparams:
            raise ValueError(
                f"Hyperparameters {sorted(hyperparams)} cannot be applied to an estimator instance; "
                "pass its class or name instead."
            )
        enum, cls = enum_of_class(type(request)), None
    elif isinstance(request, type):
        enum, cls = enum_of_class(request), request
    else:
        enum = ValueEstimators.resolve(default if request is None else request)
        cls = ESTIMATORS[enum]
    if enum not in supported:
        raise ValueError(
            f"{loss_name} does not support the {enum.value!r} value estimator; "
            f"supported: {[v.value for v in supported]}."
        )
    if cls is None:  # an instance was given
        assert isinstance(request, ValueEstimatorBase)
        return enum, request
    parameters = inspect.signature(cls).parameters
    accepted = list(parameters)  # (value_network among them: a caller may give its own)
    open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = [] if open_ended else sorted(name for name in hyperparams if name not in accepted)
    if unknown:
        close = {name: difflib.get_close_matches(name, accepted, n=1) for name in unknown}
        hints = "".join(f" (did you mean {match[0]!r} for {name!r}?)" for name, match in close.items() if match)
        raise ValueError(f"the {enum.value!r} value estimator ({cls.__name__}) takes no {unknown}{hints}; "
                         f"its hyperparameters: {accepted}")
    kwargs = {**default_kwargs(enum), **hyperparams}
    kwargs.setdefault("value_network", value_network)
    return enum, cls(**kwargs)
