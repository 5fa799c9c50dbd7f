"""Losses keyed by their config name, with the value estimators each one supports."""
from __future__ import annotations

from rlkit.objectives.a2c import A2CLoss
from rlkit.objectives.c51 import DistributionalDQNLoss
from rlkit.objectives.common import LossModule
from rlkit.objectives.dqn import DQNLoss
from rlkit.objectives.value import ValueEstimators

__all__ = ["LOSSES", "check_value_estimator", "get_loss_class", "supported_value_estimators"]

#: Config name (``conf/algo/<name>.yaml``) -> loss class.
LOSSES: dict[str, type[LossModule]] = {
    "dqn": DQNLoss,
    "c51": DistributionalDQNLoss,
    "a2c": A2CLoss,
}


def get_loss_class(name: str) -> type[LossModule]:
    """The loss class registered under ``name``.

    Examples:
        >>> get_loss_class("dqn").__name__
        'DQNLoss'
    """
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; valid names: {sorted(LOSSES)}.")
    return LOSSES[name]


def supported_value_estimators(name: str) -> tuple[str, ...]:
    """Names of the value estimators the loss ``name`` supports (e.g. ``("td0",)`` for ``c51``)."""
    return tuple(v.value for v in get_loss_class(name).supported_value_estimators)


def check_value_estimator(name: str, value_estimator: str | ValueEstimators) -> ValueEstimators:
    """Return the estimator enum if the loss ``name`` supports it, else raise ``ValueError`` listing the valid ones."""
    valid = supported_value_estimators(name)
    wanted = value_estimator.value if isinstance(value_estimator, ValueEstimators) else str(value_estimator).lower()
    if wanted not in valid:
        raise ValueError(
            f"Loss {name!r} does not support the value estimator {value_estimator!r}; valid: {list(valid)}."
        )
    return ValueEstimators(wanted)
