"""Advantage Actor-Critic (A2C) loss."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn

from rlkit import keys
from rlkit.modules import ProbabilisticActor, TanhNormal
from rlkit.modules.tensor_call import read_entry
from rlkit.objectives.common import LossModule, with_sampling_mode
from rlkit.objectives.utils import (
    check_coefficient,
    check_flag,
    LossFunction,
    Reduction,
    check_loss_function,
    distance_loss,
    per_model_mean_std,
    reduce_loss,
)
from rlkit.objectives.value import ValueEstimators

__all__ = ["A2CLoss"]


def _entropy(dist: torch.distributions.Distribution) -> torch.Tensor:
    try:
        return dist.entropy()
    except NotImplementedError:
        # No closed form (e.g. a tanh-squashed normal): a one-sample Monte-Carlo estimate.
        if isinstance(dist, TanhNormal):
            # Scored before squashing: re-scoring the squashed sample through atanh clamps it where
            # tanh saturates, and the estimate (and its gradient) then goes wrong.
            return -dist.rsample_and_log_prob()[1]
        sample = dist.rsample() if dist.has_rsample else dist.sample()
        return -dist.log_prob(sample)


def _per_sample(x: torch.Tensor, batch_shape: torch.Size) -> torch.Tensor:
    """``[*B]`` from ``[*B]`` or ``[*B, 1]``."""
    return x.squeeze(-1) if x.dim() == len(batch_shape) + 1 and x.shape[-1] == 1 else x


class A2CLoss(LossModule):
    """The A2C loss: policy gradient with an advantage, a critic regression and an entropy bonus.

    Per sample: ``loss_objective = -log_prob(a) * advantage``, ``loss_entropy = -entropy_coeff *
    entropy``, ``loss_critic = critic_coeff * d(V(s), value_target)`` with ``d`` the
    ``loss_critic_type`` distance; each is then reduced by ``reduction``. When ``advantage`` is
    absent from the batch it is computed by the value estimator (GAE(0.99, 0.95) by default) with the
    critic under ``torch.no_grad``. With ``clip_value=c`` the critic loss is
    ``max(d(V, target), d(V_old + clamp(V - V_old, -c, c), target))``, ``V_old`` being the batch's
    ``state_value`` (the rollout's, or the estimator's when it computed one). See Mnih et al., 2016,
    https://arxiv.org/abs/1602.01783.

    rlkit networks are called through their tensor-level calls (:mod:`rlkit.modules.tensor_call`, as
    the collectors call them): forward hooks registered on an rlkit module do not run in the loss.

    Args:
        actor_network: a probabilistic actor exposing ``get_dist(td)``.
        critic_network: a value operator writing ``"state_value"``. Both may be the operators of one
            :class:`~rlkit.modules.ActorValueOperator` (shared trunk).
        entropy_bonus: add ``loss_entropy`` (and the ``entropy`` diagnostic).
        entropy_coeff: weight of the entropy bonus.
        critic_coeff: weight of the critic loss.
        loss_critic_type: ``"l2"``, ``"l1"`` or ``"smooth_l1"``.
        separate_losses: the critic loss does not train parameters shared with the actor.
        normalize_advantage: standardise the advantage over the batch (``(A - mean) / (std + 1e-8)``).
        clip_value: clip range of the value prediction around the old value, or ``None``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (per-sample ``[*B]``).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> from rlkit.modules import Categorical, ProbabilisticActor, ValueOperator
        >>> from rlkit.objectives import A2CLoss
        >>> actor = ProbabilisticActor(TensorDictModule(torch.nn.Linear(4, 2), ["observation"], ["logits"]),
        ...     ["logits"], distribution_class=Categorical)
        >>> loss = A2CLoss(actor, ValueOperator(torch.nn.Linear(4, 1)))
        >>> td = TensorDict({"observation": torch.randn(2, 5, 4), "action": torch.randint(2, (2, 5)),
        ...     "next": {"observation": torch.randn(2, 5, 4), "reward": torch.ones(2, 5, 1),
        ...              "done": torch.zeros(2, 5, 1, dtype=torch.bool),
        ...              "terminated": torch.zeros(2, 5, 1, dtype=torch.bool)}}, batch_size=[2, 5])
        >>> sorted(loss(td).keys())
        ['entropy', 'loss_critic', 'loss_entropy', 'loss_objective']
    """

    @dataclass
    class _AcceptedKeys:
        """Configurable keys: see :meth:`~rlkit.objectives.LossModule.set_keys`."""

        advantage: NestedKey = keys.ADVANTAGE
        value_target: NestedKey = keys.VALUE_TARGET
        value: NestedKey = keys.STATE_VALUE
        action: NestedKey = keys.ACTION
        reward: NestedKey = keys.REWARD
        done: NestedKey = keys.DONE
        terminated: NestedKey = keys.TERMINATED
        truncated: NestedKey = keys.TRUNCATED

    default_value_estimator = ValueEstimators.GAE
    supported_value_estimators = (
        ValueEstimators.GAE,
        ValueEstimators.TD0,
        ValueEstimators.TD1,
        ValueEstimators.TDLambda,
    )

    def __init__(
        self,
        actor_network: TensorDictModuleBase,
        critic_network: TensorDictModuleBase,
        *,
        entropy_bonus: bool = True,
        entropy_coeff: float = 0.01,
        critic_coeff: float = 1.0,
        loss_critic_type: LossFunction = "smooth_l1",
        separate_losses: bool = False,
        normalize_advantage: bool = False,
        clip_value: float | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if not callable(getattr(actor_network, "get_dist", None)):
            raise ValueError(
                f"A2CLoss needs an actor with get_dist(td) (e.g. a ProbabilisticActor), got "
                f"{type(actor_network).__name__}."
            )
        if clip_value is not None and (isinstance(clip_value, bool) or not clip_value > 0):
            raise ValueError(f"clip_value must be a positive float or None, got {clip_value!r}.")
        self.loss_critic_type = check_loss_function(loss_critic_type)
        self.entropy_bonus = check_flag("A2CLoss", "entropy_bonus", entropy_bonus)
        self.entropy_coeff = check_coefficient("A2CLoss", "entropy_coeff", entropy_coeff)
        self.critic_coeff = check_coefficient("A2CLoss", "critic_coeff", critic_coeff)
        self.separate_losses = check_flag("A2CLoss", "separate_losses", separate_losses)
        self.normalize_advantage = check_flag("A2CLoss", "normalize_advantage", normalize_advantage)
        self.clip_value = None if clip_value is None else float(clip_value)
        self.convert_to_functional(actor_network, "actor_network")
        shared = list(actor_network.parameters()) if separate_losses else None
        self.convert_to_functional(critic_network, "critic_network", compare_against=shared)

    def _estimator_value_network(self) -> nn.Module | None:
        return self.critic_network

    def _forward_value_estimator_keys(self, **kwargs: Any) -> None:
        if self._value_estimator is not None:
            names = ("advantage", "value_target", "value", "reward", "done", "terminated", "truncated")
            self._value_estimator.set_keys(**{k: v for k, v in kwargs.items() if k in names})

    def _advantage(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The per-sample advantage, and ``V(s)`` with gradients when it was computed on the way."""
        keys = self.tensor_keys
        advantage = tensordict.get(keys.advantage, None)
        value = next_value = None
        if advantage is None:
            estimator = self.value_estimator
            if (
                tensordict.get(keys.value, None) is None
                and getattr(estimator, "value_network", None) is self.critic_network
                and not getattr(estimator, "differentiable", True)
            ):
                # The critic loss needs V(s) with gradients and the estimator the same numbers
                # without, and V(s') too: one critic call on [s; s'] serves all three (the estimator
                # reads values present in the batch and takes V(s') as an argument).
                value, next_value = self._critic_values(tensordict)
                tensordict.set(keys.value, value.detach())
            with torch.no_grad():
                estimator(tensordict, next_value=next_value)
            advantage = tensordict.get(keys.advantage)
        if self.normalize_advantage and advantage.numel() > 1:
            if self.stacked_dims:  # each model's advantages by their own statistics
                mean, std = per_model_mean_std(advantage, self.stacked_dims)
                advantage = (advantage - mean) / (std + 1e-8)
            else:
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        return _per_sample(advantage, tensordict.batch_size), value

    def _critic_values(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``V(s)`` with gradients and ``V(s')`` detached (``None`` when ``td["next"]`` lacks the
        critic's inputs), from one critic call on the two batches stacked along the first dim (the first
        dim after :attr:`stacked_dims`)."""
        in_keys = self.critic_network.in_keys
        nxt = tensordict.get(keys.NEXT, None)
        dim = self.stacked_dims
        if nxt is None or tensordict.batch_dims <= dim or any(k not in nxt.keys(True) for k in in_keys):
            return self._critic_value(tensordict), None
        n = tensordict.batch_size[dim]
        both = [torch.cat([tensordict.get(k), nxt.get(k)], dim) for k in in_keys]
        value = self._online_output("critic_network", both, self.tensor_keys.value)
        return value.narrow(dim, 0, n), value.narrow(dim, n, n).detach()

    def _critic_value(self, tensordict: TensorDictBase) -> torch.Tensor:
        critic = self.critic_network
        inputs = [read_entry(critic, tensordict, k) for k in critic.in_keys]
        return self._online_output("critic_network", inputs, self.tensor_keys.value)

    def _distribution(self, tensordict: TensorDictBase) -> torch.distributions.Distribution:
        """The actor's action distribution: :meth:`~rlkit.modules.ProbabilisticActor.distribution` on
        tensors for an rlkit actor (its ``get_dist`` gives the same distribution through TensorDicts),
        ``get_dist`` for any other actor or one that overrides ``get_dist``."""
        actor = self.actor_network
        if isinstance(actor, ProbabilisticActor) and type(actor).get_dist is ProbabilisticActor.get_dist:
            return actor.distribution(*[read_entry(actor, tensordict, k) for k in actor.in_keys])
        return actor.get_dist(tensordict.select(*actor.in_keys))

    def _action(self, tensordict: TensorDictBase, dist: torch.distributions.Distribution) -> torch.Tensor:
        action = tensordict.get(self.tensor_keys.action, None)
        if action is None:
            raise KeyError(f"A2CLoss needs the actions taken under {self.tensor_keys.action!r}; the batch has "
                           f"{sorted(map(str, tensordict.keys()))}")
        if isinstance(dist, torch.distributions.Categorical) and action.is_floating_point():
            # (log_prob would truncate 0.7 to action 0)
            raise ValueError(f"the {self.tensor_keys.action!r} entry holds {action.dtype} values; a categorical "
                             "policy's actions are integer indices")
        return action

    def _critic_loss(self, tensordict: TensorDictBase, value: torch.Tensor | None = None) -> torch.Tensor:
        keys = self.tensor_keys
        target = tensordict.get(keys.value_target, None)
        if target is None:
            raise ValueError(
                f"A2CLoss needs the value target under {keys.value_target!r} (computed together with the "
                "advantage); the batch has an advantage but no value target."
            )
        old_value = tensordict.get(keys.value, None)
        if value is None:
            value = self._critic_value(tensordict)
        if target.shape != value.shape:
            raise ValueError(f"the value target {keys.value_target!r} has shape {tuple(target.shape)}; the critic's "
                             f"values have shape {tuple(value.shape)}, which it must match")
        loss = distance_loss(value, target, self.loss_critic_type)
        if self.clip_value is not None:
            if old_value is None:
                raise ValueError(f"clip_value needs the old value under {keys.value!r} in the batch.")
            clipped = old_value + (value - old_value).clamp(-self.clip_value, self.clip_value)
            loss = torch.maximum(loss, distance_loss(clipped, target, self.loss_critic_type))
        return self.critic_coeff * _per_sample(loss, tensordict.batch_size)

    @with_sampling_mode
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Compute ``loss_objective``, ``loss_critic`` and (with the bonus) ``loss_entropy``, ``entropy``."""
        # Shallow copy: the estimator writes advantage / values, which must not leak into the batch.
        tensordict = tensordict.copy()
        advantage, value = self._advantage(tensordict)
        dist = self._distribution(tensordict)
        log_prob = _per_sample(dist.log_prob(self._action(tensordict, dist)), tensordict.batch_size)
        if log_prob.shape != tensordict.batch_size:
            raise ValueError(
                f"the {self.tensor_keys.action!r} entry of shape {tuple(tensordict.get(self.tensor_keys.action).shape)} "
                f"gives log-probabilities of shape {tuple(log_prob.shape)} under the actor's distribution (batch "
                f"shape {tuple(dist.batch_shape)}, event shape {tuple(dist.event_shape)}); the batch is "
                f"{tuple(tensordict.batch_size)}: give one action per sample, of the distribution's event shape"
            )
        out = {
            "loss_objective": reduce_loss(-(log_prob * advantage), self.reduction, self.stacked_dims),
            "loss_critic": reduce_loss(self._critic_loss(tensordict, value), self.reduction, self.stacked_dims),
        }
        if self.entropy_bonus:
            entropy = _per_sample(_entropy(dist), tensordict.batch_size)
            out["loss_entropy"] = reduce_loss(-self.entropy_coeff * entropy, self.reduction, self.stacked_dims)
            out["entropy"] = reduce_loss(entropy.detach(), "mean", self.stacked_dims)
        return TensorDict(out, batch_size=[])
