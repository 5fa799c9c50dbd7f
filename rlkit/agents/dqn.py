"""DQN's agent: an MLP Q-network, epsilon-greedy acting, :class:`~rlkit.objectives.DQNLoss`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
from rlkit.config_schema import check, choice
from rlkit.envs import GymEnv
from rlkit.modules import EGreedyPolicy, QValueActor
from rlkit.objectives import DQNLoss
from rlkit.registry import Algorithm, register_algorithm

__all__ = ["DQN", "DQNConfig", "build_dqn"]


@dataclass
class DQNConfig(OffPolicyConfig):
    """``conf/algo/dqn.yaml``."""

    loss_function: str
    double_dqn: bool
    slice_len: int

    def __post_init__(self) -> None:
        super().__post_init__()
        choice("algo.loss_function", self.loss_function, ("l2", "l1", "smooth_l1"))
        check(self.slice_len >= 2, "algo.slice_len", self.slice_len, "an integer >= 2")


def build_dqn(settings: Any, env: GymEnv) -> Agent:
    """The DQN agent of the validated ``settings`` for ``env``: an MLP Q-network
    (``algo.hidden_sizes``, ``algo.activation``) or ``algo.network``, in a :class:`~rlkit.modules.QValueActor` (reading the env's action mask,
    if any), a :class:`~rlkit.objectives.DQNLoss` with a delayed target network
    (``algo.loss_function``, ``algo.double_dqn``), epsilon-greedy acting
    (:class:`~rlkit.modules.EGreedyPolicy`, schedule from ``algo.eps_*``) and greedy evaluation."""
    algo = settings.algo
    net = make_network(algo, obs_shape(env), num_actions(env, "dqn"), what="the Q-network", obs_dtype=obs_dtype(env), obs_high=obs_high(env), env_id=env.env_id)
    actor = QValueActor(net, in_keys=[keys.OBSERVATION], spec=env.action_spec, action_mask_key=mask_key(env))
    loss = DQNLoss(actor, loss_function=algo.loss_function, delay_value=True, double_dqn=algo.double_dqn)
    explore = egreedy(algo, env)
    return Agent(loss=loss, policy=EGreedyPolicy(actor, explore), greedy_policy=actor, exploration=explore)


DQN = register_algorithm(Algorithm(
    name="dqn", schema=DQNConfig, loss=DQNLoss, build_agent=build_dqn,
    replay_keys=q_learning_replay_keys, slice_len=lambda algo: algo.slice_len,
    restored_on_resume=("optim", "eps_init", "eps_end", "alpha", "beta"),
    stacked_seeds=True,
))
