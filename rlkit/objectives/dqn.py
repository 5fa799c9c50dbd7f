"""Deep Q-Network loss (vanilla and double DQN)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn

from rlkit import keys as rlkeys
from rlkit.modules import QValueActor, check_action_layout, chosen_value
from rlkit.objectives._qvalue import (
    as_qvalue_actor,
    infer_action_space,
    network_inputs,
    next_action_mask,
    register_value_network,
)
from rlkit.objectives.common import LossModule, with_sampling_mode
from rlkit.objectives.utils import (
    check_flag,
    LossFunction,
    Reduction,
    check_loss_function,
    distance_loss,
    reduce_loss,
)
from rlkit.objectives.value import ESTIMATORS, ValueEstimators
from rlkit.utils.tensordicts import assembled

__all__ = ["DQNLoss"]

# Mean-reduced distances torch computes in one kernel (distance_loss's values, unweighted).
_FUSED = {"l2": F.mse_loss, "smooth_l1": F.smooth_l1_loss, "l1": F.l1_loss}

_NO_BATCH = torch.Size([])


def check_time_batch(loss: LossModule, tensordict: TensorDictBase) -> None:
    """Multi-step estimators need a ``[B, T]`` batch; a flat batch would chain unrelated samples."""
    if loss.value_type is not None and ESTIMATORS[loss.value_type].needs_time_dim and tensordict.batch_dims < 2:
        raise ValueError(
            f"{type(loss).__name__} with the {loss.value_type.value!r} value estimator needs a batch with a "
            f"time dimension [B, T] (time = last dim), got batch_size {list(tensordict.batch_size)}; "
            "use 'td0' for flat replay batches."
        )


class DQNLoss(LossModule):
    """The DQN loss: regress ``Q(s, a)`` onto a bootstrapped target from a delayed network.

    The next-state value is ``max_a Q_target(s', a)`` (masked actions excluded by the Q-value
    module); with ``double_dqn`` the action is the online network's greedy choice, valued by the
    target network (van Hasselt et al., 2015, https://arxiv.org/abs/1509.06461). The target itself
    comes from the value estimator (TD0 by default; TD1 / TD(lambda) on ``[B, T]`` batches), so
    bootstrapping stops on ``terminated`` and not on ``truncated``. The per-sample ``|td error|``
    ``[*B, 1]`` is written into the input under the priority key, and ``priority_weight`` (if
    present) multiplies the per-sample loss. See Mnih et al., 2015,
    https://www.nature.com/articles/nature14236.

    Args:
        value_network: a :class:`~rlkit.modules.QValueActor`, or a TensorDict module writing action
            values, or a plain ``nn.Module`` mapping observations to action values (then
            ``action_space`` is required); the last two get a greedy head
            (:class:`~rlkit.modules.QValueActor`). The loss calls the actor's tensor-level methods.
        loss_function: ``"l2"`` (squared error), ``"l1"`` or ``"smooth_l1"``.
        delay_value: use a target network (``target_value_network_params``).
        double_dqn: choose the next action with the online network.
        action_space: overrides the one read from the network.
        priority_key: where the ``|td error|`` is written (default ``"td_error"``).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample ``[*B]``).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.modules import QValueActor
        >>> from rlkit.objectives import DQNLoss
        >>> loss = DQNLoss(QValueActor(torch.nn.Linear(4, 2), action_space="categorical"))
        >>> td = TensorDict({"observation": torch.randn(8, 4), "action": torch.randint(2, (8,)),
        ...     "next": {"observation": torch.randn(8, 4), "reward": torch.ones(8, 1),
        ...              "done": torch.zeros(8, 1, dtype=torch.bool),
        ...              "terminated": torch.zeros(8, 1, dtype=torch.bool)}}, batch_size=[8])
        >>> loss(td)["loss_value"].shape
        torch.Size([])
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable keys: see :meth:`~rlkit.objectives.LossModule.set_keys`."""

        advantage: NestedKey = rlkeys.ADVANTAGE
        value_target: NestedKey = rlkeys.VALUE_TARGET
        value: NestedKey = rlkeys.CHOSEN_ACTION_VALUE
        action_value: NestedKey = rlkeys.ACTION_VALUE
        action: NestedKey = rlkeys.ACTION
        priority: NestedKey = rlkeys.TD_ERROR
        priority_weight: NestedKey = rlkeys.PRIORITY_WEIGHT
        reward: NestedKey = rlkeys.REWARD
        done: NestedKey = rlkeys.DONE
        terminated: NestedKey = rlkeys.TERMINATED

    default_value_estimator = ValueEstimators.TD0
    supported_value_estimators = (ValueEstimators.TD0, ValueEstimators.TD1, ValueEstimators.TDLambda)

    def __init__(
        self,
        value_network: nn.Module,
        *,
        loss_function: LossFunction = "l2",
        delay_value: bool = True,
        double_dqn: bool = False,
        action_space: str | None = None,
        priority_key: NestedKey | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.loss_function = check_loss_function(loss_function)
        if not isinstance(value_network, TensorDictModuleBase) and action_space is None:
            raise ValueError(
                "DQNLoss got a plain nn.Module: pass action_space= ('categorical', 'one-hot', "
                "'mult-one-hot' or 'binary') or a QValueActor."
            )
        self.action_space = infer_action_space(value_network, action_space)
        actor = as_qvalue_actor(value_network, self.action_space)
        self.delay_value = check_flag("DQNLoss", "delay_value", delay_value)
        self.double_dqn = check_flag("DQNLoss", "double_dqn", double_dqn)
        register_value_network(self, actor, delay_value=delay_value, priority_key=priority_key)
        head = actor.qvalue_module
        # The vanilla next value max_a Q(s', a) is a plain max where the greedy head's choice is a
        # plain argmax (categorical actions, no mask, no projection): the value at the argmax.
        self._max_is_greedy = (head.action_space == "categorical" and head.action_mask_key is None
                               and not head.safe)

    def _forward_value_estimator_keys(self, **kwargs: Any) -> None:
        if self._value_estimator is not None:
            names = ("reward", "done", "terminated", "value_target", "advantage")
            self._value_estimator.set_keys(**{k: v for k, v in kwargs.items() if k in names})

    def _next_value(self, tensordict: TensorDictBase) -> torch.Tensor:
        """The greedy next value ``[*B, 1]`` of a batch, without gradient."""
        online: QValueActor = self.value_network
        target = cast(QValueActor, self.target_network("value_network"))  # a copy of the online actor
        next_td = tensordict.get(rlkeys.NEXT)
        inputs = network_inputs(online, next_td)
        with torch.no_grad():
            target_values = target.action_values(*inputs)
            if self._max_is_greedy and not self.double_dqn:
                return target_values.max(-1, keepdim=True).values
            mask = None
            if online.qvalue_module.action_mask_key is not None:
                mask = next_action_mask(online, next_td, self.value_estimator.flags(tensordict)[1])
            if self.double_dqn:  # the online network picks the action, the target network values it
                action = online.greedy(online.action_values(*inputs), mask)
            else:
                action = target.greedy(target_values, mask)
            return chosen_value(target_values, action, self.action_space)

    @with_sampling_mode
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Compute ``loss_value`` and write the ``|td error|`` priorities into ``tensordict``."""
        keys = self.tensor_keys
        check_time_batch(self, tensordict)
        actor: QValueActor = self.value_network
        values = actor.action_values(*network_inputs(actor, tensordict))
        action = check_action_layout(tensordict.get(keys.action, None), values.shape, self.action_space, keys.action)
        pred = chosen_value(values, action, self.action_space)
        next_value = self._next_value(tensordict)
        # No network runs here and next_value carries no graph: the target is gradient-free.
        target = self.value_estimator.value_estimate(tensordict, next_value=next_value)
        with torch.no_grad():
            tensordict.set(keys.priority, (target - pred.detach()).abs_())
        weight = tensordict.get(keys.priority_weight, None)
        if weight is None and self.reduction == "mean" and self.loss_function in _FUSED and not self.stacked_dims:
            # Fused form of the general path below (same value, fewer kernels on the hot path).
            return assembled({"loss_value": _FUSED[self.loss_function](pred, target)}, _NO_BATCH)
        loss = distance_loss(pred, target, self.loss_function).squeeze(-1)
        if weight is not None:
            loss = loss * weight.reshape(loss.shape)
        return assembled({"loss_value": reduce_loss(loss, self.reduction, self.stacked_dims)}, _NO_BATCH)
