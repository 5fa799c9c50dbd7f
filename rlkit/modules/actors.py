"""Actors, value operators and probabilistic actors built on ``tensordict.nn`` modules."""
from __future__ import annotations

from typing import Any, Callable, Dict, Sequence, cast

import torch
from tensordict import TensorDictBase
from tensordict.nn import (
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
    TensorDictModuleBase,
    TensorDictSequential,
    interaction_type,
)
from tensordict.utils import NestedKey
from torch import distributions as D
from torch import nn

from rlkit import keys
from rlkit.data import Composite, TensorSpec
from rlkit.modules.distributions import sample, sample_and_log_prob
from rlkit.modules.exploration import ExplorationType
from rlkit.modules.tensor_call import TensorModule, tensor_call


def _as_list(keys: NestedKey | Sequence[NestedKey]) -> list[NestedKey]:
    return [keys] if isinstance(keys, (str, tuple)) else list(keys)


class SafeModule(TensorModule, TensorDictModule):
    """A :class:`~tensordict.nn.TensorDictModule` that carries a ``spec`` and can project onto it.

    Its tensor-level call :meth:`act` is ``module(*inputs)`` (outputs projected onto the spec with
    ``safe``); the TensorDict call reads ``in_keys``, calls :meth:`act` and writes ``out_keys``.

    Args:
        module: the wrapped callable.
        in_keys: keys read and passed positionally to ``module``.
        out_keys: keys written with ``module``'s outputs (``"_"`` drops an output).
        spec: spec of the first out key, or a Composite keyed by out keys.
        safe: project every output that has a spec onto it (``spec.project``).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data import Bounded
        >>> from rlkit.modules import SafeModule
        >>> m = SafeModule(torch.nn.Identity(), ["x"], ["y"], spec=Bounded(-1.0, 1.0, (2,)), safe=True)
        >>> m(TensorDict(x=torch.tensor([3.0, 0.5])))["y"]
        tensor([1.0000, 0.5000])
        >>> m.act(torch.tensor([3.0, 0.5]))
        (tensor([1.0000, 0.5000]),)
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

    def act(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``module(*inputs)`` as a tuple, one tensor per out key (projected onto the spec with ``safe``).
        Outputs beyond the out keys are dropped, as :class:`~tensordict.nn.TensorDictModule` drops
        them (a module hooked with :class:`~rlkit.modules.QValueHook` returns the action, the action
        values and the chosen value; ``out_keys=["action", "action_value"]`` keeps the first two).

        Raises:
            RuntimeError: the module returned fewer tensors than there are out keys.
        """
        out = self.module(*inputs)
        outputs = out if isinstance(out, tuple) else (out,)
        if len(outputs) < len(self.out_keys):
            raise RuntimeError(
                f"{type(self).__name__}'s module returned {len(outputs)} tensors, fewer than its out_keys "
                f"{list(self.out_keys)}"
            )
        outputs = outputs[: len(self.out_keys)]
        if self.safe:
            specs = self._out_specs()
            outputs = tuple(specs[k].project(v) if specs.get(k) is not None else v
                            for k, v in zip(self.out_keys, outputs))
        return outputs


class Actor(SafeModule):
    """A policy module: reads ``"observation"``, writes ``"action"`` by default.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.modules import Actor
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
            [keys.OBSERVATION] if in_keys is None else in_keys,
            [keys.ACTION] if out_keys is None else out_keys,
            spec=spec,
            safe=safe,
        )


class ValueOperator(TensorModule, TensorDictModule):
    """A value network module: reads ``"observation"``, writes ``"state_value"`` by default.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.modules import ValueOperator
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
            in_keys=[keys.OBSERVATION] if in_keys is None else _as_list(in_keys),
            out_keys=[keys.STATE_VALUE] if out_keys is None else _as_list(out_keys),
        )

    def act(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``module(*inputs)`` as a tuple (the value, by default)."""
        out = self.module(*inputs)
        return out if isinstance(out, tuple) else (out,)


class SafeSequential(TensorModule, TensorDictSequential):
    """A ``tensordict.nn.TensorDictSequential`` whose tensor-level call chains its members' calls.

    :meth:`act` takes the tensors of ``in_keys``, runs each member on what the inputs and the
    earlier members provide (an rlkit module through its :meth:`~TensorModule.act`, any other through
    its TensorDict call) and returns the tensors of ``out_keys``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.modules import SafeModule, SafeSequential, ValueOperator
        >>> seq = SafeSequential(SafeModule(torch.nn.Linear(3, 4), ["observation"], ["hidden"]),
        ...                      ValueOperator(torch.nn.Linear(4, 1), in_keys=["hidden"]))
        >>> seq.in_keys, seq.out_keys
        (['observation'], ['hidden', 'state_value'])
        >>> hidden, value = seq.act(torch.randn(2, 3))
        >>> value.shape
        torch.Size([2, 1])
    """

    #: The action spec, on an operator built as a policy (see ActorValueOperator.get_policy_operator).
    spec: TensorSpec | None

    def __init__(self, *modules: TensorDictModuleBase) -> None:
        super().__init__(*modules)
        self._steps = _steps(self.module)

    def act(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return _run_steps(self._steps, self.in_keys, self.out_keys, inputs)


def _steps(members: Any) -> list[tuple[Any, list, list]]:
    """``(tensor call, in_keys, out_keys)`` of each member, read once."""
    return [(tensor_call(m), list(m.in_keys), list(m.out_keys)) for m in members]


def _run_steps(steps: list, in_keys: list, out_keys: list, inputs: Sequence[torch.Tensor]) -> tuple:
    entries: dict = dict(zip(in_keys, inputs))
    for call, step_in, step_out in steps:
        entries.update(zip(step_out, call(*[entries[k] for k in step_in])))
    return tuple(entries[k] for k in out_keys)


class Sampler(TensorModule, ProbabilisticTensorDictModule):
    """Builds a distribution from its parameters and takes an action from it.

    A ``tensordict.nn.ProbabilisticTensorDictModule`` (same arguments) whose tensor-level call
    :meth:`act` takes the parameters (in ``in_keys`` order) and returns the action (and its
    log-probability with ``return_log_prob``), following the exploration type
    (:func:`~rlkit.modules.distributions.sample`); ``default_interaction_type`` applies when none
    is set. :meth:`distribution` gives the distribution itself.

    Examples:
        >>> import torch
        >>> from rlkit.modules import Categorical, ExplorationType, Sampler, set_exploration_type
        >>> sampler = Sampler(in_keys=["logits"], out_keys=["action"], distribution_class=Categorical)
        >>> with set_exploration_type(ExplorationType.DETERMINISTIC):
        ...     sampler.act(torch.tensor([[0.0, 2.0], [1.0, 0.0]]))
        (tensor([1, 0]),)
    """

    def distribution(self, *params: torch.Tensor) -> D.Distribution:
        """The distribution of the parameters (in ``in_keys`` order)."""
        named = {name[-1] if isinstance(name, tuple) else name: value for name, value in zip(self.dist_keys, params)}
        return self.distribution_class(**named, **dict(self.distribution_kwargs or {}))

    def act(self, *params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        dist = self.distribution(*params)
        current = interaction_type()
        kind = self.default_interaction_type if current is None else current
        if self.return_log_prob:
            return sample_and_log_prob(dist, kind)
        return (sample(dist, kind),)


class ProbabilisticActor(TensorModule, ProbabilisticTensorDictSequential):
    """A TensorDict module computing distribution parameters, followed by sampling an action.

    The log-probability (``return_log_prob=True``) is written under ``"action_log_prob"`` (``<out
    key>_log_prob``). ``get_dist(td)`` and :meth:`distribution` (on tensors) return the
    distribution. The action follows the exploration type
    (:func:`~rlkit.modules.set_exploration_type`); when none is set it uses
    ``default_interaction_type``, which is ``RANDOM`` so that "unset" means exploring everywhere in
    rlkit (TorchRL's default here is ``DETERMINISTIC``).

    The tensor-level call :meth:`act` takes the tensors of ``in_keys`` and returns those of
    ``out_keys``: the distribution parameters, the action (and its log-probability).

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
        >>> from rlkit.modules import Categorical, ProbabilisticActor
        >>> logits = TensorDictModule(torch.nn.Linear(4, 3), ["observation"], ["logits"])
        >>> actor = ProbabilisticActor(logits, ["logits"], distribution_class=Categorical, return_log_prob=True)
        >>> td = actor(TensorDict(observation=torch.randn(5, 4), batch_size=[5]))
        >>> td["action"].shape, td["action_log_prob"].shape
        (torch.Size([5]), torch.Size([5]))
        >>> actor.out_keys, [t.shape for t in actor.act(torch.randn(5, 4))]
        (['logits', 'action', 'action_log_prob'], [torch.Size([5, 3]), torch.Size([5]), torch.Size([5])])
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
        out_keys = [keys.ACTION] if out_keys is None else _as_list(out_keys)
        if not isinstance(in_keys, dict):
            in_keys = _as_list(in_keys)
        # Pin the log-prob key so that a global composite_lp_aggregate flag cannot rename it.
        log_prob_key = None
        if len(out_keys) == 1:
            key = out_keys[0]
            # (the last name of a nested key is a str)
            log_prob_key = key + "_log_prob" if isinstance(key, str) else key[:-1] + (cast(str, key[-1]) + "_log_prob",)
        sampler = Sampler(
            in_keys=in_keys,
            out_keys=out_keys,
            distribution_class=distribution_class,
            distribution_kwargs=distribution_kwargs,
            return_log_prob=return_log_prob,
            log_prob_key=log_prob_key,
            default_interaction_type=ExplorationType(default_interaction_type),
        )
        super().__init__(module, sampler)
        self._setup(spec)

    @classmethod
    def chain(cls, *modules: TensorDictModuleBase, sampler: Sampler, spec: TensorSpec | None = None) -> ProbabilisticActor:
        """An actor running ``modules`` (which write the parameters) then ``sampler``, sharing them
        all (no copies): e.g. a shared trunk followed by an actor's own head."""
        actor = cls.__new__(cls)
        ProbabilisticTensorDictSequential.__init__(actor, *modules, sampler)
        actor._setup(spec)
        return actor

    def _setup(self, spec: TensorSpec | None) -> None:
        self.spec = spec
        *nets, sampler = self.module
        if not isinstance(sampler, Sampler):
            raise TypeError(f"ProbabilisticActor's last module must be an rlkit Sampler, got {type(sampler).__name__}")
        self._steps = _steps(nets)

    @property
    def sampler(self) -> Sampler:
        """The final module, which builds the distribution and samples."""
        return cast(Sampler, self.module[-1])  # checked by _setup

    def distribution(self, *inputs: torch.Tensor) -> D.Distribution:
        """The action distribution for the tensors of ``in_keys``."""
        sampler = self.sampler
        params = _run_steps(self._steps, self.in_keys, list(sampler.in_keys), inputs)
        return sampler.distribution(*params)

    def act(self, *inputs: torch.Tensor,
            sample_with: Callable[..., tuple[torch.Tensor, ...]] | None = None) -> tuple[torch.Tensor, ...]:
        """Every output for the tensors of ``in_keys``. ``sample_with``, when given, is called as
        ``sample_with(sampler.act, *params)`` in place of ``sampler.act(*params)`` (a multi-seed
        collector draws each seed's actions from that seed's random stream)."""
        sampler = self.sampler
        entries: dict = dict(zip(self.in_keys, inputs))
        for call, step_in, step_out in self._steps:
            entries.update(zip(step_out, call(*[entries[k] for k in step_in])))
        params = [entries[k] for k in sampler.in_keys]
        drawn = sampler.act(*params) if sample_with is None else sample_with(sampler.act, *params)
        entries.update(zip(sampler.out_keys, drawn))
        return tuple(entries[k] for k in self.out_keys)
