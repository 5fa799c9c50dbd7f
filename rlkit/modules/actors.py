"""Actors, value operators and probabilistic actors built on ``tensordict.nn`` modules."""
from __future__ import annotations

from typing import Dict, Sequence

from tensordict import TensorDictBase
from tensordict.nn import (
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
    TensorDictModuleBase,
    dispatch,
)
from tensordict.utils import NestedKey
from torch import nn

from rlkit.data.specs import Composite, TensorSpec
from rlkit.modules.exploration import ExplorationType


def _as_list(keys: NestedKey | Sequence[NestedKey]) -> list[NestedKey]:
    return [keys] if isinstance(keys, (str, tuple)) else list(keys)


class SafeModule(TensorDictModule):
    """A :class:`~tensordict.nn.TensorDictModule` that carries a ``spec`` and can project onto it.

    Args:
        module: the wrapped callable.
        in_keys: keys read and passed positionally to ``module``.
        out_keys: keys written with ``module``'s outputs.
        spec: spec of the first out key, or a Composite keyed by out keys.
        safe: project every output that has a spec onto it (``spec.project``).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data import Bounded
        >>> m = SafeModule(torch.nn.Identity(), ["x"], ["y"], spec=Bounded(-1.0, 1.0, (2,)), safe=True)
        >>> m(TensorDict(x=torch.tensor([3.0, 0.5])))["y"]
        tensor([1.0000, 0.5000])
    """

    def __init__(
        self,
        module: nn.Module,
        in_keys: NestedKey | Sequence[NestedKey],
        out_keys: NestedKey | Sequence[NestedKey],
        *,
        spec: TensorSpec | None = None,
        safe: bool = False,
    ) -> None:
        super().__init__(module, in_keys=_as_list(in_keys), out_keys=_as_list(out_keys))
        if spec is not None and not isinstance(spec, TensorSpec):
            raise TypeError(f"spec must be a TensorSpec, got {type(spec).__name__}")
        if safe and spec is None:
            raise ValueError("safe=True projects outputs onto a spec, but no spec was given")
        self.spec = spec
        self.safe = safe

    def _out_specs(self) -> dict:
        if isinstance(self.spec, Composite):
            return {key: self.spec[key] for key in self.out_keys if key in self.spec}
        return {self.out_keys[0]: self.spec}

    @dispatch(auto_batch_size=False)
    def forward(self, tensordict: TensorDictBase, *args, **kwargs) -> TensorDictBase:
        out = super().forward(tensordict, *args, **kwargs)
        if self.safe:
            for key, spec in self._out_specs().items():
                if key in out.keys(include_nested=True):
                    out.set(key, spec.project(out.get(key)))
        return out


class Actor(SafeModule):
    """A policy module: reads ``"observation"``, writes ``"action"`` by default.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> actor = Actor(torch.nn.Linear(3, 2))
        >>> actor(TensorDict(observation=torch.randn(4, 3), batch_size=[4]))["action"].shape
        torch.Size([4, 2])
    """

    def __init__(
        self,
        module: nn.Module,
        in_keys: NestedKey | Sequence[NestedKey] | None = None,
        out_keys: NestedKey | Sequence[NestedKey] | None = None,
        *,
        spec: TensorSpec | None = None,
        safe: bool = False,
    ) -> None:
        super().__init__(
            module,
            ["observation"] if in_keys is None else in_keys,
            ["action"] if out_keys is None else out_keys,
            spec=spec,
            safe=safe,
        )


class ValueOperator(TensorDictModule):
    """A value network module: reads ``"observation"``, writes ``"state_value"`` by default.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> value = ValueOperator(torch.nn.Linear(3, 1))
        >>> value(TensorDict(observation=torch.randn(4, 3), batch_size=[4]))["state_value"].shape
        torch.Size([4, 1])
    """

    def __init__(
        self,
        module: nn.Module,
        in_keys: NestedKey | Sequence[NestedKey] | None = None,
        out_keys: NestedKey | Sequence[NestedKey] | None = None,
    ) -> None:
        super().__init__(
            module,
            in_keys=["observation"] if in_keys is None else _as_list(in_keys),
            out_keys=["state_value"] if out_keys is None else _as_list(out_keys),
        )


class ProbabilisticActor(ProbabilisticTensorDictSequential):
    """A TensorDict module computing distribution parameters, followed by sampling an action.

    The log-probability (``return_log_prob=True``) is written under ``"action_log_prob"`` (``<out
    key>_log_prob``). ``get_dist(td)`` returns the distribution. The action follows the exploration
    type (:func:`~rlkit.modules.set_exploration_type`); when none is set it uses
    ``default_interaction_type``, which is ``RANDOM`` so that "unset" means exploring everywhere in
    rlkit (TorchRL's default here is ``DETERMINISTIC``).

    Args:
        module: TensorDict module writing the distribution parameters.
        in_keys: parameter keys (their last name is the distribution's keyword), or a dict
            ``{keyword: key}``.
        out_keys: sampled keys (default ``["action"]``).
        spec: action spec, stored as ``spec``.
        distribution_class: e.g. :class:`~rlkit.modules.Categorical`, ``OneHotCategorical``,
            :class:`~rlkit.modules.TanhNormal`.
        distribution_kwargs: extra constant keyword arguments of ``distribution_class``.
        return_log_prob: also write the log-probability of the action.
        default_interaction_type: used outside any ``set_exploration_type`` block.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> from rlkit.modules import Categorical
        >>> logits = TensorDictModule(torch.nn.Linear(4, 3), ["observation"], ["logits"])
        >>> actor = ProbabilisticActor(logits, ["logits"], distribution_class=Categorical, return_log_prob=True)
        >>> td = actor(TensorDict(observation=torch.randn(5, 4), batch_size=[5]))
        >>> td["action"].shape, td["action_log_prob"].shape
        (torch.Size([5]), torch.Size([5]))
    """

    def __init__(
        self,
        module: TensorDictModuleBase,
        in_keys: NestedKey | Sequence[NestedKey] | Dict[str, NestedKey],
        out_keys: Sequence[NestedKey] | None = None,
        *,
        spec: TensorSpec | None = None,
        distribution_class: type,
        distribution_kwargs: dict | None = None,
        return_log_prob: bool = False,
        default_interaction_type: ExplorationType | str = ExplorationType.RANDOM,
    ) -> None:
        if not isinstance(module, TensorDictModuleBase):
            raise TypeError(
                f"ProbabilisticActor needs a TensorDict module writing the distribution parameters "
                f"(e.g. TensorDictModule(net, in_keys=[...], out_keys=[...])), got {type(module).__name__}"
            )
        out_keys = ["action"] if out_keys is None else _as_list(out_keys)
        if not isinstance(in_keys, dict):
            in_keys = _as_list(in_keys)
        # Pin the log-prob key so that a global composite_lp_aggregate flag cannot rename it.
        log_prob_key = None
        if len(out_keys) == 1:
            key = out_keys[0]
            log_prob_key = key + "_log_prob" if isinstance(key, str) else key[:-1] + (key[-1] + "_log_prob",)
        sampler = ProbabilisticTensorDictModule(
            in_keys=in_keys,
            out_keys=out_keys,
            distribution_class=distribution_class,
            distribution_kwargs=distribution_kwargs,
            return_log_prob=return_log_prob,
            log_prob_key=log_prob_key,
            default_interaction_type=ExplorationType(default_interaction_type),
        )
        super().__init__(module, sampler)
        self.spec = spec
