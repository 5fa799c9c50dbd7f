"""Greedy Q-value actors: a value network followed by a (distributional) Q-value module."""
from __future__ import annotations

from typing import Sequence

import torch
from tensordict.nn import TensorDictModule, TensorDictModuleBase, TensorDictSequential
from tensordict.utils import NestedKey
from torch import nn

from rlkit.data.specs import TensorSpec
from rlkit.modules._action_space import ActionSpace, ActionSpaceName
from rlkit.modules.actors import _as_list
from rlkit.modules.distributional import DistributionalQValueModule
from rlkit.modules.qvalue import QValueModule


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
    return TensorDictModule(
        module, in_keys=["observation"] if in_keys is None else _as_list(in_keys), out_keys=[action_value_key]
    )


class QValueActor(TensorDictSequential):
    """A value network followed by a :class:`~rlkit.modules.QValueModule`: a greedy Q-value policy.

    Exposes ``spec`` (the action spec, or ``None``) and ``action_space`` (canonical name; known even
    when the actor was built from ``action_space`` alone, so a loss can read it).

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
        >>> actor = QValueActor(torch.nn.Linear(4, 2), spec=OneHot(2))
        >>> td = actor(TensorDict(observation=torch.randn(3, 4), batch_size=[3]))
        >>> actor.action_space, td["action"].shape, td["chosen_action_value"].shape
        ('one-hot', torch.Size([3, 2]), torch.Size([3, 1]))
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
        action_value_key = "action_value" if action_value_key is None else action_value_key
        greedy = QValueModule(
            action_space=action_space,
            action_value_key=action_value_key,
            action_mask_key=action_mask_key,
            spec=spec,
            safe=safe,
        )
        super().__init__(_value_network(module, in_keys, action_value_key), greedy)

    @property
    def qvalue_module(self) -> QValueModule:
        """The final greedy module."""
        return self.module[-1]

    @property
    def spec(self) -> TensorSpec | None:
        return self.qvalue_module.spec

    @property
    def action_space(self) -> ActionSpace:
        return self.qvalue_module.action_space

    @property
    def action_value_key(self) -> NestedKey:
        return self.qvalue_module.action_value_key


class _LogSoftmaxAtoms(nn.Module):
    """Log-softmax over the atom dim (-2) of ``[*B, K, A]`` logits."""

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.log_softmax(-2)


class DistributionalQValueActor(QValueActor):
    """A distributional (C51) Q-network followed by a :class:`~rlkit.modules.DistributionalQValueModule`.

    The network outputs ``[*B, K, A]``; with ``make_log_softmax`` a log-softmax over the atoms
    (dim -2) is inserted. Exposes ``support`` (the registered buffer), ``spec`` and ``action_space``.
    See https://arxiv.org/abs/1707.06887.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
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
        action_value_key: NestedKey = "action_value",
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
            log_softmax = TensorDictModule(_LogSoftmaxAtoms(), in_keys=[action_value_key], out_keys=[action_value_key])
            modules.append(log_softmax)
        TensorDictSequential.__init__(self, *modules, greedy)

    @property
    def support(self) -> torch.Tensor:
        return self.qvalue_module.support
