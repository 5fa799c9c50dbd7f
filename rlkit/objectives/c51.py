"""Distributional DQN (C51) loss: a sibling of :class:`~rlkit.objectives.DQNLoss`, not a child."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey

from rlkit import keys as rlkeys
from rlkit.modules import DistributionalQValueActor, check_action_layout
from rlkit.objectives._qvalue import (
    infer_action_space,
    network_inputs,
    next_action_mask,
    register_value_network,
)
from rlkit.objectives.common import LossModule, with_sampling_mode
from rlkit.objectives.utils import Reduction, check_flag, reduce_loss
from rlkit.objectives.value import ValueEstimators
from rlkit.objectives.value.base import check_factor
from rlkit.objectives.value.functional import categorical_projection, check_support

__all__ = ["DistributionalDQNLoss"]

_C51_ACTION_SPACES = ("categorical", "one-hot")


def action_log_probs(log_probs: torch.Tensor, action: torch.Tensor, action_space: str) -> torch.Tensor:
    """Atom log-probabilities ``[*B, K]`` of ``action`` from ``[*B, K, A]`` log-probabilities."""
    if action_space == "categorical":
        if action.dim() == log_probs.dim() - 1:
            action = action.squeeze(-1)
        index = action.unsqueeze(-1).unsqueeze(-1).expand(*log_probs.shape[:-1], 1)
        return log_probs.gather(-1, index).squeeze(-1)
    # One-hot: select with where() so that a -inf log-probability of another action cannot give nan.
    zero = torch.zeros((), dtype=log_probs.dtype, device=log_probs.device)
    picked = torch.where(action.unsqueeze(-2).bool(), log_probs, zero)
    return picked.sum(-1)


class DistributionalDQNLoss(LossModule):
    """The C51 loss: cross-entropy between ``Z(s, a)`` and the projected target distribution.

    The target is ``r + gamma * Z_target(s', a*)`` projected onto the support (no bootstrap where
    ``terminated``; truncated steps bootstrap), with ``a*`` the online network's greedy action at
    ``s'`` (``double_dqn=False``: the target network's own greedy action, as CleanRL's ``c51.py``).
    ``gamma`` is read from the value estimator at every call, so
    ``make_value_estimator(gamma=...)`` takes effect. Works on any batch shape (``[1]``, ``[B]``,
    ``[B, T]``); the projection is batched and runs on the tensors' device. The per-sample
    cross-entropy ``[*B, 1]`` is written under the priority key. See Bellemare et al., 2017,
    https://arxiv.org/abs/1707.06887.

    Args:
        value_network: a :class:`~rlkit.modules.DistributionalQValueActor` (``"categorical"`` or
            ``"one-hot"`` actions) exposing ``support``.
        gamma: discount of the default estimator; ``None`` keeps the estimator default (0.99).
        delay_value: use a target network (``target_value_network_params``).
        double_dqn: choose ``a*`` with the online network (default); ``False`` lets the target
            network choose it.
        priority_key: where the per-sample loss is written as priority (default ``"td_error"``).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample ``[*B]``).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.modules import DistributionalQValueActor
        >>> from rlkit.objectives import DistributionalDQNLoss
        >>> class Net(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.linear = torch.nn.Linear(4, 5 * 2)
        ...     def forward(self, x):
        ...         return self.linear(x).unflatten(-1, (5, 2))
        >>> actor = DistributionalQValueActor(Net(), torch.linspace(-1, 1, 5), action_space="categorical")
        >>> loss = DistributionalDQNLoss(actor, gamma=0.9)
        >>> td = TensorDict({"observation": torch.randn(3, 4), "action": torch.randint(2, (3,)),
        ...     "next": {"observation": torch.randn(3, 4), "reward": torch.ones(3, 1),
        ...              "done": torch.zeros(3, 1, dtype=torch.bool),
        ...              "terminated": torch.zeros(3, 1, dtype=torch.bool)}}, batch_size=[3])
        >>> loss(td)["loss_value"].shape
        torch.Size([])
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable keys: see :meth:`~rlkit.objectives.LossModule.set_keys`."""

        action_value: NestedKey = rlkeys.ACTION_VALUE
        action: NestedKey = rlkeys.ACTION
        priority: NestedKey = rlkeys.TD_ERROR
        priority_weight: NestedKey = rlkeys.PRIORITY_WEIGHT
        reward: NestedKey = rlkeys.REWARD
        done: NestedKey = rlkeys.DONE
        terminated: NestedKey = rlkeys.TERMINATED
        truncated: NestedKey = rlkeys.TRUNCATED

    default_value_estimator = ValueEstimators.TD0
    supported_value_estimators = (ValueEstimators.TD0,)

    def __init__(
        self,
        value_network: TensorDictModuleBase,
        *,
        gamma: float | None = None,
        delay_value: bool = True,
        double_dqn: bool = True,
        priority_key: NestedKey | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.double_dqn = check_flag("DistributionalDQNLoss", "double_dqn", double_dqn)
        if not isinstance(value_network, DistributionalQValueActor):
            raise ValueError(
                f"DistributionalDQNLoss needs a network exposing its atoms as `support` (a "
                f"DistributionalQValueActor), got {type(value_network).__name__}."
            )
        self.action_space = infer_action_space(value_network, None)
        if self.action_space not in _C51_ACTION_SPACES:
            raise ValueError(
                f"DistributionalDQNLoss supports the action spaces {list(_C51_ACTION_SPACES)}, "
                f"got {self.action_space!r}."
            )
        check_support(value_network.support)
        if gamma is not None:
            check_factor(gamma, "gamma")  # refused here, not at the first forward
        self._gamma = gamma
        self.delay_value = check_flag("DistributionalDQNLoss", "delay_value", delay_value)
        register_value_network(self, value_network, delay_value=delay_value, priority_key=priority_key)

    def default_value_kwargs(self, value_type: ValueEstimators) -> dict[str, Any]:
        kwargs = super().default_value_kwargs(value_type)
        if self._gamma is not None:
            kwargs["gamma"] = self._gamma
        return kwargs

    def _forward_value_estimator_keys(self, **kwargs: Any) -> None:
        if self._value_estimator is not None:
            names = ("reward", "done", "terminated")
            self._value_estimator.set_keys(**{k: v for k, v in kwargs.items() if k in names})

    def _target_probs(self, next_td: TensorDictBase, terminated: torch.Tensor) -> torch.Tensor:
        """Probabilities ``[*B, K]`` of the target network at the greedy next action (chosen by the
        online network with ``double_dqn``, else by the target network; any action in terminated rows)."""
        online: DistributionalQValueActor = self.value_network
        target = cast(DistributionalQValueActor, self.target_network("value_network"))  # a copy of the online actor
        inputs = network_inputs(online, next_td)
        mask = next_action_mask(online, next_td, terminated)
        with torch.no_grad():
            if self.double_dqn:
                next_action = online.greedy(online.action_values(*inputs), mask)
                target_log_probs = target.action_values(*inputs)
            else:
                target_log_probs = target.action_values(*inputs)
                next_action = target.greedy(target_log_probs, mask)
            return action_log_probs(target_log_probs, next_action, self.action_space).exp()

    def target_distribution(self, tensordict: TensorDictBase) -> torch.Tensor:
        """The projected target distribution ``[*B, K]`` of a batch (rows sum to 1), without gradient."""
        keys = self.tensor_keys
        next_td = tensordict.get(rlkeys.NEXT)
        terminated = next_td.get(keys.terminated, None)
        if terminated is None:  # as the value estimators derive it: a truncated step bootstraps
            truncated = next_td.get(keys.truncated, None)
            done = next_td.get(keys.done, None)
            if done is None:
                raise KeyError(f"DistributionalDQNLoss needs the terminated flag {('next', keys.terminated)!r} (or the "
                               f"done flag {('next', keys.done)!r}); the batch's 'next' has {sorted(map(str, next_td.keys()))}")
            for key, flag in ((keys.done, done), (keys.truncated, truncated)):
                if flag is not None and flag.dtype != torch.bool:
                    raise ValueError(f"DistributionalDQNLoss needs bool flags; ('next', {key!r}) has dtype {flag.dtype}")
            terminated = done if truncated is None else done & ~truncated
        with torch.no_grad():
            return categorical_projection(
                self._target_probs(next_td, terminated),
                next_td.get(keys.reward),
                terminated,
                self.value_network.support,
                gamma=self.value_estimator.gamma,
            )

    @with_sampling_mode
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Compute ``loss_value`` and write per-sample priorities into ``tensordict``."""
        keys = self.tensor_keys
        actor: DistributionalQValueActor = self.value_network
        log_probs = actor.action_values(*network_inputs(actor, tensordict))
        action = check_action_layout(tensordict.get(keys.action, None),
                                     log_probs.shape[:-2] + log_probs.shape[-1:], self.action_space, keys.action)
        log_p_a = action_log_probs(log_probs, action, self.action_space)
        loss = -(self.target_distribution(tensordict) * log_p_a).sum(-1)
        tensordict.set(keys.priority, loss.detach().unsqueeze(-1))
        weight = tensordict.get(keys.priority_weight, None)
        if weight is not None:
            loss = loss * weight.reshape(loss.shape)
        return TensorDict({"loss_value": reduce_loss(loss, self.reduction, self.stacked_dims)}, batch_size=[])
