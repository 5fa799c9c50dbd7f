"""TD(0), TD(1), TD(lambda) and GAE value estimators, and the name -> class registry.

Each estimator reads a TensorDict with batch dims ``[*B, T]`` (time last), rewards and flags under
``"next"``, and writes ``advantage`` and ``value_target`` (``[*B, T, 1]``). The multi-step ones (TD1,
TDLambda, GAE) refuse flat batches, where they would chain unrelated samples as time.
"""
from __future__ import annotations

import torch
from torch import nn

from rlkit.objectives.utils import per_model_mean_std
from rlkit.objectives.value.base import (
    ValueEstimatorBase,
    ValueEstimators,
    check_factor,
)
from rlkit.objectives.value.functional import (
    generalized_advantage_estimate,
    td0_return_estimate,
    td1_return_estimate,
    td_lambda_return_estimate,
)

__all__ = [
    "ESTIMATORS",
    "GAE",
    "TD0Estimator",
    "TD1Estimator",
    "TDLambdaEstimator",
    "ValueEstimators",
    "get_estimator_class",
]


def _advantage(value: torch.Tensor | None, target: torch.Tensor) -> torch.Tensor | None:
    return None if value is None else target - value


class TD0Estimator(ValueEstimatorBase):
    """One-step TD target ``r + gamma * V(s')`` (no bootstrap where terminated); any batch shape.

    Sutton & Barto, *Reinforcement Learning: An Introduction* (2nd ed.), section 6.1.

    Args:
        gamma: discount factor in ``[0, 1]``.
        value_network: a TensorDict module writing the value key (``"state_value"``), or None when
            the values are in the data or passed as ``next_value``.
        differentiable: let gradients flow into the values; otherwise all runs under ``no_grad``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.objectives.value import TD0Estimator
        >>> td = TensorDict({"state_value": torch.zeros(2, 1), "next": {
        ...     "state_value": torch.ones(2, 1), "reward": torch.ones(2, 1),
        ...     "done": torch.tensor([[False], [True]]),
        ... }}, batch_size=[2])
        >>> TD0Estimator(gamma=0.9)(td)["value_target"].flatten().tolist()
        [1.899999976158142, 1.0]
    """

    value_type = ValueEstimators.TD0
    needs_time_dim = False

    def _estimate(self, value, next_value, reward, done, terminated):
        target = td0_return_estimate(self.gamma, next_value, reward, terminated, done=done)
        return _advantage(value, target), target


class TD1Estimator(ValueEstimatorBase):
    """TD(1): discounted rewards to the episode or window end, bootstrapped there. Needs ``[*B, T]``.

    Args:
        gamma: discount factor in ``[0, 1]``.
        value_network: a TensorDict module writing the value key, or None.
        differentiable: let gradients flow into the values.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.objectives.value import TD1Estimator
        >>> td = TensorDict({"state_value": torch.zeros(1, 2, 1), "next": {
        ...     "state_value": torch.full((1, 2, 1), 10.0), "reward": torch.ones(1, 2, 1),
        ...     "done": torch.zeros(1, 2, 1, dtype=torch.bool),
        ... }}, batch_size=[1, 2])
        >>> TD1Estimator(gamma=0.5)(td)["value_target"].flatten().tolist()  # [1 + .5 * 6, 1 + .5 * 10]
        [4.0, 6.0]
    """

    value_type = ValueEstimators.TD1

    def _estimate(self, value, next_value, reward, done, terminated):
        target = td1_return_estimate(self.gamma, next_value, reward, done, terminated=terminated)
        return _advantage(value, target), target


class TDLambdaEstimator(ValueEstimatorBase):
    """TD(lambda) return (Sutton & Barto, chapter 12). Needs ``[*B, T]`` batches.

    Args:
        gamma: discount factor in ``[0, 1]``.
        lmbda: trace-decay factor in ``[0, 1]``.
        value_network: a TensorDict module writing the value key, or None.
        differentiable: let gradients flow into the values.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.objectives.value import TDLambdaEstimator
        >>> td = TensorDict({"state_value": torch.zeros(1, 2, 1), "next": {
        ...     "state_value": torch.full((1, 2, 1), 10.0), "reward": torch.ones(1, 2, 1),
        ...     "done": torch.zeros(1, 2, 1, dtype=torch.bool),
        ... }}, batch_size=[1, 2])
        >>> TDLambdaEstimator(gamma=0.5, lmbda=0.5)(td)["value_target"].flatten().tolist()
        [5.0, 6.0]
    """

    value_type = ValueEstimators.TDLambda
    lmbda: torch.Tensor

    def __init__(
        self,
        *,
        gamma: float | torch.Tensor,
        lmbda: float | torch.Tensor,
        value_network: nn.Module | None = None,
        differentiable: bool = False,
    ) -> None:
        super().__init__(gamma=gamma, value_network=value_network, differentiable=differentiable)
        self.register_buffer("lmbda", check_factor(lmbda, "lmbda"))

    def _estimate(self, value, next_value, reward, done, terminated):
        target = td_lambda_return_estimate(
            self.gamma, self.lmbda, next_value, reward, done, terminated=terminated
        )
        return _advantage(value, target), target


class GAE(ValueEstimatorBase):
    """Generalized advantage estimation (Schulman et al. 2015, https://arxiv.org/abs/1506.02438).

    Writes the advantage and the value target ``advantage + V(s)`` (computed before any averaging).
    Needs ``[*B, T]`` batches.

    Args:
        gamma: discount factor in ``[0, 1]``.
        lmbda: trace-decay factor in ``[0, 1]``.
        value_network: a TensorDict module writing the value key, or None.
        average_gae: standardise the written advantage to mean 0 and std 1 over the whole batch.
        differentiable: let gradients flow into the values.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> from rlkit.objectives.value import GAE
        >>> critic = TensorDictModule(torch.nn.Linear(3, 1), ["observation"], ["state_value"])
        >>> td = TensorDict({"observation": torch.randn(4, 5, 3), "next": {
        ...     "observation": torch.randn(4, 5, 3), "reward": torch.randn(4, 5, 1),
        ...     "done": torch.zeros(4, 5, 1, dtype=torch.bool),
        ...     "terminated": torch.zeros(4, 5, 1, dtype=torch.bool),
        ... }}, batch_size=[4, 5])
        >>> td = GAE(gamma=0.99, lmbda=0.95, value_network=critic)(td)
        >>> td["advantage"].shape, td["value_target"].requires_grad
        (torch.Size([4, 5, 1]), False)
    """

    value_type = ValueEstimators.GAE
    target_needs_state_value = True
    lmbda: torch.Tensor

    def __init__(
        self,
        *,
        gamma: float | torch.Tensor,
        lmbda: float | torch.Tensor,
        value_network: nn.Module | None = None,
        average_gae: bool = False,
        differentiable: bool = False,
    ) -> None:
        super().__init__(gamma=gamma, value_network=value_network, differentiable=differentiable)
        self.register_buffer("lmbda", check_factor(lmbda, "lmbda"))
        self.average_gae = bool(average_gae)

    def _estimate(self, value, next_value, reward, done, terminated):
        return generalized_advantage_estimate(
            self.gamma, self.lmbda, value, next_value, reward, done, terminated=terminated
        )

    def _post_advantage(self, advantage: torch.Tensor) -> torch.Tensor:
        if not self.average_gae:
            return advantage
        if self.stacked_dims:  # each model's advantages by their own statistics
            mean, std = per_model_mean_std(advantage, self.stacked_dims)
            centred = advantage - mean
            if advantage[(0,) * self.stacked_dims].numel() < 2:
                return centred
            return centred / std.clamp_min(1e-8)
        centred = advantage - advantage.mean()
        if advantage.numel() < 2:
            return centred
        return centred / advantage.std().clamp_min(1e-8)


ESTIMATORS: dict[ValueEstimators, type[ValueEstimatorBase]] = {
    ValueEstimators.TD0: TD0Estimator,
    ValueEstimators.TD1: TD1Estimator,
    ValueEstimators.TDLambda: TDLambdaEstimator,
    ValueEstimators.GAE: GAE,
}

def get_estimator_class(name_or_enum: ValueEstimators | str) -> type[ValueEstimatorBase]:
    """The estimator class of an enum member, its value or its name (case-insensitive).

    Examples:
        >>> from rlkit.objectives.value import TDLambdaEstimator, get_estimator_class
        >>> get_estimator_class("TDLambda") is get_estimator_class("td_lambda") is TDLambdaEstimator
        True

    Raises:
        ValueError: for any other name, listing the valid ones.
    """
    return ESTIMATORS[ValueEstimators.resolve(name_or_enum)]
