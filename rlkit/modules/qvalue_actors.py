"""Greedy Q-value actors: a value network followed by a (distributional) Q-value module."""
from __future__ import annotations

from typing import Any, Sequence, cast

import torch
from tensordict.nn import TensorDictModuleBase, TensorDictSequential
from tensordict.utils import NestedKey
from torch import nn

from rlkit import keys
from rlkit.data.specs import TensorSpec
from rlkit.modules._action_space import ActionSpace, ActionSpaceName
from rlkit.modules.actors import SafeModule, _as_list, _run_steps, _steps
from rlkit.modules.distributional import DistributionalQValueModule
from rlkit.modules.qvalue import QValueModule
from rlkit.modules.tensor_call import TensorModule


def _value_network(
    module: nn.Module, in_keys: Sequence[NestedKey] | None, action_value_key: NestedKey
) -> TensorDictModuleBase:
    """``module`` as a TensorDict module writing the action values."""
    if isinstance(module, TensorDictModuleBase):
        if in_keys is not None:
            raise ValueError(
                f"in_keys={list(in_keys)} is only used to wrap a plain nn.Module; the given "
                f"{type(module).__name__} already reads {module.in_keys}"
            )
        if action_value_key not in module.out_keys:
            raise ValueError(
                f"the module writes {module.out_keys} but the actor reads the action values from "
                f"{action_value_key!r}; pass action_value_key= or change the module's out_keys"
            )
        return module
    return SafeModule(module, [keys.OBSERVATION] if in_keys is None else _as_list(in_keys), [action_value_key])


class QValueActor(TensorModule, TensorDictSequential):
    """A value network followed by a :class:`~rlkit.modules.QValueModule`: a greedy Q-value policy.

    Exposes ``spec`` (the action spec, or ``None``) and ``action_space`` (canonical name; known even
    when the actor was built from ``action_space`` alone, so a loss can read it).

    Tensor-level calls (what collectors, evaluators and losses use; the TensorDict call wraps
    :meth:`act`): :meth:`action_values` (the network), :meth:`greedy` (the head),
    :meth:`act` (every output, for the tensors of ``in_keys``) and :meth:`action` (the action
    alone, without the chosen value).

    Args:
        module: an ``nn.Module`` (wrapped to read ``in_keys``, default ``["observation"]``) or a
            TensorDict module writing ``action_value_key``.
        in_keys: input keys of a plain ``module``.
        spec: action spec; its class gives the action space when ``action_space`` is omitted.
        safe: project the action onto ``spec``.
        action_space: see :class:`~rlkit.modules.QValueModule`.
        action_value_key: default ``"action_value"``.
        action_mask_key: key of a bool action mask (True = allowed).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data import OneHot
        >>> from rlkit.modules import QValueActor
        >>> actor = QValueActor(torch.nn.Linear(4, 2), spec=OneHot(2))
        >>> td = actor(TensorDict(observation=torch.randn(3, 4), batch_size=[3]))
        >>> actor.action_space, td["action"].shape, td["chosen_action_value"].shape
        ('one-hot', torch.Size([3, 2]), torch.Size([3, 1]))
        >>> obs = torch.randn(3, 4)
        >>> torch.equal(actor.action(obs), actor.greedy(actor.action_values(obs)))
        True
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        in_keys: Sequence[NestedKey] | None = None,
        spec: TensorSpec | None = None,
        safe: bool = False,
        action_space: ActionSpaceName | None = None,
        action_value_key: NestedKey | None = None,
        action_mask_key: NestedKey | None = None,
    ) -> None:
        action_value_key = keys.ACTION_VALUE if action_value_key is None else action_value_key
        greedy = QValueModule(
            action_space=action_space,
            action_value_key=action_value_key,
            action_mask_key=action_mask_key,
            spec=spec,
            safe=safe,
        )
        TensorDictSequential.__init__(self, _value_network(module, in_keys, action_value_key), greedy)
        self._setup()

    def _setup(self) -> None:
        """Reads the structure once: the network's steps, where its inputs and the mask sit in
        ``in_keys`` (the tensor-level calls are on every env step)."""
        head = self.qvalue_module
        nets: list[Any] = list(self.module[:-1])  # TensorDict modules (ModuleList types them Module)
        self._value_steps = _steps(nets)
        self._net_in_keys = [k for k in self.in_keys if k != head.action_mask_key]
        self._net_positions = [self.in_keys.index(k) for k in self._net_in_keys]
        self._mask_position = self.in_keys.index(head.action_mask_key) if head.action_mask_key is not None else None
        self._single = len(nets) == 1 and list(nets[0].in_keys) == self._net_in_keys
        self._value_call = self._value_steps[0][0]
        # A plain network wrapped by the actor itself: action() calls it directly (kept out of the
        # module tree, so its parameters are not registered twice).
        member = nets[0]
        direct = (self._single and type(member) is SafeModule and not member.safe and len(member.out_keys) == 1
                  and self._mask_position is None)
        self.__dict__["_direct_net"] = member.module if direct else None

    @property
    def qvalue_module(self) -> QValueModule:
        """The final greedy module."""
        return cast(QValueModule, self.module[-1])  # the last member, built in __init__

    @property
    def spec(self) -> TensorSpec | None:
        return self.qvalue_module.spec

    @property
    def action_space(self) -> ActionSpace:
        return self.qvalue_module.action_space

    @property
    def action_value_key(self) -> NestedKey:
        return self.qvalue_module.action_value_key

    @property
    def network_in_keys(self) -> list[NestedKey]:
        """What :meth:`action_values` takes: ``in_keys`` without the action mask."""
        return list(self._net_in_keys)

    def action_values(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The network's action values (distributional: atom log-probabilities) for the tensors of
        the network's inputs: ``in_keys`` without the action mask."""
        if self._single:
            return self._value_call(*inputs)[0]
        return _run_steps(self._value_steps, self._net_in_keys, [self.action_value_key], inputs)[0]

    def greedy(self, action_values: torch.Tensor, action_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The greedy action of ``action_values`` (masked actions excluded): the head's choice."""
        return self.qvalue_module.action(action_values, action_mask)

    def _split(self, inputs: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        net_inputs = [inputs[i] for i in self._net_positions]
        return net_inputs, None if self._mask_position is None else inputs[self._mask_position]

    def act(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        net_inputs, mask = self._split(inputs)
        values = self.action_values(*net_inputs)
        head = self.qvalue_module
        produced = dict(zip(head.out_keys, head.act(values, mask)))
        produced.setdefault(self.action_value_key, values)
        return tuple(produced[k] for k in self.out_keys)

    def action(self, *inputs: torch.Tensor) -> torch.Tensor:
        net = self._direct_net
        if net is not None:
            return self.qvalue_module.action(net(*inputs))
        if self._mask_position is None and self._single:
            return self.qvalue_module.action(self._value_call(*inputs)[0])
        net_inputs, mask = self._split(inputs)
        return self.qvalue_module.action(self.action_values(*net_inputs), mask)


class _LogSoftmaxAtoms(nn.Module):
    """Log-softmax over the atom dim (-2) of ``[*B, K, A]`` logits."""

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.log_softmax(-2)


class DistributionalQValueActor(QValueActor):
    """A distributional (C51) Q-network followed by a :class:`~rlkit.modules.DistributionalQValueModule`.

    The network outputs ``[*B, K, A]``; with ``make_log_softmax`` a log-softmax over the atoms
    (dim -2) is inserted, so :meth:`action_values` gives atom log-probabilities. Exposes
    ``support`` (the registered buffer), ``spec`` and ``action_space``; :meth:`expected_values` gives
    ``Q = sum_k p_k z_k``. See https://arxiv.org/abs/1707.06887.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.modules import DistributionalQValueActor
        >>> class Net(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.linear = torch.nn.Linear(4, 5 * 2)
        ...     def forward(self, x):
        ...         return self.linear(x).unflatten(-1, (5, 2))
        >>> actor = DistributionalQValueActor(Net(), torch.linspace(-1, 1, 5), action_space="categorical")
        >>> td = actor(TensorDict(observation=torch.randn(3, 4), batch_size=[3]))
        >>> td["action"].shape, td["action_value"].shape
        (torch.Size([3]), torch.Size([3, 5, 2]))
        >>> actor.expected_values(actor.action_values(torch.randn(3, 4))).shape
        torch.Size([3, 2])
    """

    def __init__(
        self,
        module: nn.Module,
        support: torch.Tensor,
        *,
        in_keys: Sequence[NestedKey] | None = None,
        spec: TensorSpec | None = None,
        safe: bool = False,
        var_nums: int | Sequence[int] | None = None,
        action_space: ActionSpaceName | None = None,
        action_value_key: NestedKey = keys.ACTION_VALUE,
        action_mask_key: NestedKey | None = None,
        make_log_softmax: bool = True,
    ) -> None:
        greedy = DistributionalQValueModule(
            action_space=action_space,
            support=support,
            action_value_key=action_value_key,
            action_mask_key=action_mask_key,
            var_nums=var_nums,
            spec=spec,
            safe=safe,
        )
        modules = [_value_network(module, in_keys, action_value_key)]
        if make_log_softmax:
            modules.append(SafeModule(_LogSoftmaxAtoms(), [action_value_key], [action_value_key]))
        TensorDictSequential.__init__(self, *modules, greedy)
        self._setup()

    @property
    def support(self) -> torch.Tensor:
        return cast(DistributionalQValueModule, self.qvalue_module).support  # (built in __init__)

    def expected_values(self, action_values: torch.Tensor) -> torch.Tensor:
        """``Q[*B, A]`` from atom log-probabilities ``[*B, K, A]`` and the support."""
        return cast(DistributionalQValueModule, self.qvalue_module).expected_values(action_values)
