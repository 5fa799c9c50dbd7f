"""C51's agent: an MLP return-distribution network, epsilon-greedy acting,
:class:`~rlkit.objectives.DistributionalDQNLoss`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rlkit import keys
from rlkit.agents.common import (
    Agent,
    OffPolicyConfig,
    egreedy,
    mask_key,
    num_actions,
    obs_dtype,
    obs_high,
    obs_shape,
    q_learning_replay_keys,
)
from rlkit.agents.networks import make_network
from rlkit.config_schema import check
from rlkit.envs import GymEnv
from rlkit.modules import DistributionalQValueActor, EGreedyPolicy
from rlkit.objectives import DistributionalDQNLoss
from rlkit.registry import Algorithm, register_algorithm

__all__ = ["C51", "C51Config", "build_c51"]


@dataclass
class C51Config(OffPolicyConfig):
    """``conf/algo/c51.yaml``."""

    n_atoms: int
    v_min: float
    v_max: float
    double_dqn: bool

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.n_atoms >= 2, "algo.n_atoms", self.n_atoms, "an integer >= 2")
        check(self.v_min < self.v_max, "algo.v_min", self.v_min, f"less than algo.v_max={self.v_max}")


def build_c51(settings: Any, env: GymEnv) -> Agent:
    """The C51 agent of the validated ``settings`` for ``env``: an MLP (``algo.hidden_sizes``,
    ``algo.activation``) or ``algo.network`` writing ``algo.n_atoms`` atom logits per action in a :class:`~rlkit.modules.DistributionalQValueActor` (support
    ``linspace(algo.v_min, algo.v_max, algo.n_atoms)``, the env's action mask, if any), a
    :class:`~rlkit.objectives.DistributionalDQNLoss` with a delayed target network
    (``algo.double_dqn``), epsilon-greedy acting and greedy evaluation."""
    algo = settings.algo
    n = num_actions(env, "c51")
    torso = make_network(algo, obs_shape(env), n * algo.n_atoms, what="the C51 network", obs_dtype=obs_dtype(env), obs_high=obs_high(env), env_id=env.env_id)
    net = nn.Sequential(torso, nn.Unflatten(-1, (algo.n_atoms, n)))
    support = torch.linspace(algo.v_min, algo.v_max, algo.n_atoms)
    actor = DistributionalQValueActor(net, support, in_keys=[keys.OBSERVATION], spec=env.action_spec,
                                      action_mask_key=mask_key(env))
    loss = DistributionalDQNLoss(actor, delay_value=True, double_dqn=algo.double_dqn)
    explore = egreedy(algo, env)
    return Agent(loss=loss, policy=EGreedyPolicy(actor, explore), greedy_policy=actor, exploration=explore)


C51 = register_algorithm(Algorithm(
    name="c51", schema=C51Config, loss=DistributionalDQNLoss, build_agent=build_c51,
    replay_keys=q_learning_replay_keys,
    restored_on_resume=("optim", "eps_init", "eps_end", "alpha", "beta", "v_min", "v_max"),
    stacked_seeds=True,
))
