"""A2C's agent: an MLP actor and critic (separate, or with a shared trunk), :class:`~rlkit.objectives.A2CLoss`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from tensordict.nn import TensorDictModuleBase
from torch import nn

from rlkit import keys
from rlkit.agents.common import Agent, num_actions, obs_dim, orthogonal_
from rlkit.config_schema import check, choice, positive
from rlkit.envs import GymEnv
from rlkit.modules import MLP, ActorValueOperator, Categorical, ProbabilisticActor, SafeModule, ValueOperator
from rlkit.objectives import A2CLoss
from rlkit.registry import Algorithm, register_algorithm

__all__ = ["A2C", "A2CConfig", "build_a2c"]

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}


@dataclass
class A2CConfig:
    """``conf/algo/a2c.yaml``."""

    name: str
    num_envs: int
    n_steps: int
    hidden_sizes: List[int]
    activation: str
    shared_trunk: bool
    entropy_coeff: float
    critic_coeff: float
    loss_critic_type: str
    normalize_advantage: bool
    max_grad_norm: Optional[float]
    optim: Dict[str, Any]

    def __post_init__(self) -> None:
        positive("algo.num_envs", self.num_envs)
        positive("algo.n_steps", self.n_steps)
        check(len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes),
              "algo.hidden_sizes", self.hidden_sizes, "a non-empty list of positive widths")
        choice("algo.activation", self.activation, tuple(ACTIVATIONS))
        choice("algo.loss_critic_type", self.loss_critic_type, ("l2", "l1", "smooth_l1"))
        check(self.entropy_coeff >= 0, "algo.entropy_coeff", self.entropy_coeff, "a number >= 0")
        check(self.critic_coeff >= 0, "algo.critic_coeff", self.critic_coeff, "a number >= 0")
        if self.max_grad_norm is not None:
            positive("algo.max_grad_norm", self.max_grad_norm)


def build_a2c(settings: Any, env: GymEnv) -> Agent:
    """The A2C agent of the validated ``settings`` for ``env``: a categorical policy over MLP logits
    and an MLP state-value critic (``algo.hidden_sizes``, ``algo.activation``, orthogonal
    initialisation), sharing their trunk when ``algo.shared_trunk``, and an
    :class:`~rlkit.objectives.A2CLoss`; the policy samples when acting (no separate exploration)."""
    algo = settings.algo
    act = ACTIVATIONS[algo.activation]
    obs, n, hidden = obs_dim(env), num_actions(env, "a2c"), list(algo.hidden_sizes)

    def policy_head(in_key: str, in_dim: int, cells: list[int]) -> ProbabilisticActor:
        logits = orthogonal_(MLP(in_dim, n, cells, activation_class=act), 2 ** 0.5)
        orthogonal_(list(logits.modules())[-1], 0.01)
        return ProbabilisticActor(SafeModule(logits, in_keys=[in_key], out_keys=[keys.LOGITS]),
                                  in_keys=[keys.LOGITS], spec=env.action_spec,
                                  distribution_class=Categorical)  # A2C recomputes log-probs

    def value_head(in_key: str, in_dim: int, cells: list[int]) -> ValueOperator:
        value = orthogonal_(MLP(in_dim, 1, cells, activation_class=act), 2 ** 0.5)
        orthogonal_(list(value.modules())[-1], 1.0)
        return ValueOperator(value, in_keys=[in_key])

    actor: TensorDictModuleBase
    critic: TensorDictModuleBase
    if algo.shared_trunk:
        trunk = orthogonal_(nn.Sequential(MLP(obs, hidden[-1], hidden[:-1], activation_class=act), act()), 2 ** 0.5)
        operator = ActorValueOperator(SafeModule(trunk, in_keys=[keys.OBSERVATION], out_keys=[keys.HIDDEN]),
                                      policy_head(keys.HIDDEN, hidden[-1], []), value_head(keys.HIDDEN, hidden[-1], []))
        actor, critic = operator.get_policy_operator(), operator.get_value_operator()
    else:
        actor, critic = policy_head(keys.OBSERVATION, obs, hidden), value_head(keys.OBSERVATION, obs, hidden)
    loss = A2CLoss(actor, critic, entropy_bonus=algo.entropy_coeff > 0, entropy_coeff=algo.entropy_coeff,
                   critic_coeff=algo.critic_coeff, loss_critic_type=algo.loss_critic_type,
                   normalize_advantage=algo.normalize_advantage)
    return Agent(loss=loss, policy=actor, greedy_policy=actor)


A2C = register_algorithm(Algorithm(name="a2c", schema=A2CConfig, loss=A2CLoss, build_agent=build_a2c))
