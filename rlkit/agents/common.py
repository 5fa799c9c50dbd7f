"""What the algorithms' agent builders share: the agent record, env-derived sizes, exploration,
initialisation, the replay keys of Q-learning, and the config fields of off-policy algorithms."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import gymnasium as gym
import torch
from tensordict.utils import NestedKey, unravel_key
from torch import nn

from rlkit import keys
from rlkit.agents.networks import check_network_config
from rlkit.config_schema import check, choice, positive, unit
from rlkit.data import Categorical, OneHot
from rlkit.envs import GymEnv
from rlkit.errors import EnvError
from rlkit.modules import EGreedyModule
from rlkit.trainers.trainer import LR_SCHEDULES

__all__ = [
    "Agent",
    "OffPolicyConfig",
    "action_dim",
    "action_kind",
    "is_box",
    "egreedy",
    "mask_key",
    "num_actions",
    "obs_dim",
    "obs_dtype",
    "obs_shape",
    "orthogonal_",
    "q_learning_replay_keys",
]


@dataclass
class Agent:
    """What an algorithm's ``build_agent`` returns."""

    loss: Any
    policy: Any  # the acting policy used by the collector (with exploration)
    greedy_policy: Any  # used for evaluation
    exploration: Any = None  # a module with step(frames) and eps, stepped per collected batch


def obs_dim(env: GymEnv) -> int:
    """The width of the env's flat observations (what an MLP takes)."""
    shape = env.observation_spec[keys.OBSERVATION].shape
    if len(shape) != 1:
        raise EnvError(f"env {env.env_id!r} has observations of shape {tuple(shape)}; rlkit's MLP networks "
                       "take flat observations (shape (n,))")
    return int(shape[0])


def obs_shape(env: GymEnv) -> tuple[int, ...]:
    """The shape of one observation (what the networks take)."""
    return tuple(int(d) for d in env.observation_spec[keys.OBSERVATION].shape)


def obs_dtype(env: GymEnv) -> torch.dtype:
    """The dtype of the observations (uint8 frames stay uint8 up to the network)."""
    return env.observation_spec[keys.OBSERVATION].dtype


def obs_high(env: GymEnv) -> float | None:
    """The largest value the observations can take (their space's upper bound; None: unbounded)."""
    high = getattr(env.observation_spec[keys.OBSERVATION], "high", None)
    if not isinstance(high, torch.Tensor) or high.numel() == 0:
        return None
    top = float(high.max())
    return top if math.isfinite(top) else None


def num_actions(env: GymEnv, algo: str, other_spaces: str = "") -> int:
    """The number of actions of the env's discrete action space; ``other_spaces`` names the other
    action spaces ``algo`` takes, for the message."""
    spec = env.action_spec
    if not isinstance(spec, (Categorical, OneHot)):
        spaces = "a Discrete action space" + (f" or {other_spaces}" if other_spaces else " only")
        raise EnvError(f"env {env.env_id!r} has action space {env.vector_env.single_action_space}; algo={algo} "
                       f"takes {spaces}")
    return spec.n


def is_box(env: GymEnv) -> bool:
    """Whether the env's actions are a continuous ``Box``."""
    return isinstance(env.vector_env.single_action_space, gym.spaces.Box)


def action_dim(env: GymEnv) -> int:
    """The size of the env's ``Box`` action vector (1-D boxes only)."""
    space = env.vector_env.single_action_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise EnvError(f"env {env.env_id!r} has action space {space}; rlkit's Gaussian policies act in 1-D Box "
                       "action spaces (shape (n,))")
    return int(space.shape[0])


def action_kind(env: GymEnv) -> str:
    """``"box"`` or ``"discrete"`` (what :attr:`rlkit.registry.Algorithm.action_spaces` lists)."""
    return "box" if is_box(env) else "discrete"


def mask_key(env: GymEnv) -> str | None:
    """The action mask's key when the env has one."""
    return keys.ACTION_MASK if keys.ACTION_MASK in env.observation_spec.keys() else None


def egreedy(algo: Any, env: GymEnv) -> EGreedyModule:
    """The epsilon-greedy schedule of an off-policy config."""
    return EGreedyModule(env.action_spec, eps_init=algo.eps_init, eps_end=algo.eps_end,
                         annealing_num_steps=algo.eps_annealing_frames, annealing_start=algo.eps_annealing_start,
                         action_mask_key=mask_key(env))


def orthogonal_(module: nn.Module, gain: float) -> nn.Module:
    """stable-baselines3's initialisation (orthogonal weights with ``gain``, zero biases, for linear
    and conv layers), which its A2C settings were tuned with."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(layer.weight, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def q_learning_replay_keys(agent: Agent) -> list[NestedKey]:
    """What the DQN / C51 losses read from a replayed transition: the Q-network's inputs now and next,
    the action, the next reward and flags (``done`` and ``terminated``; ``truncated`` follows from
    them). The collector's other entries are not stored."""
    inputs = [unravel_key(k) for k in agent.greedy_policy.in_keys]
    return [*inputs, keys.ACTION, *(keys.next_(k) for k in inputs),
            keys.next_(keys.REWARD), keys.next_(keys.TERMINATED), keys.next_(keys.DONE)]


@dataclass
class OffPolicyConfig:
    """The ``algo`` fields every off-policy algorithm has (values: its YAML file)."""

    name: str
    num_envs: int
    hidden_sizes: List[int]
    activation: str
    network: Optional[Dict[str, Any]]
    buffer_size: int
    prioritized: bool
    alpha: float
    beta: float
    batch_size: int
    learning_starts: int
    train_frequency: int
    updates_per_batch: int
    target_update_interval: int
    tau: Optional[float]
    eps_init: float
    eps_end: float
    eps_annealing_frames: int
    eps_annealing_start: int
    max_grad_norm: Optional[float]
    optim: Dict[str, Any]
    lr_schedule: str

    def __post_init__(self) -> None:
        check_network_config(self.hidden_sizes, self.activation, self.network)
        choice("algo.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        for key in ("num_envs", "buffer_size", "batch_size", "train_frequency", "updates_per_batch",
                    "target_update_interval", "eps_annealing_frames"):
            positive(f"algo.{key}", getattr(self, key))
        check(self.learning_starts >= 0, "algo.learning_starts", self.learning_starts, "an integer >= 0")
        check(self.eps_annealing_start >= 0, "algo.eps_annealing_start", self.eps_annealing_start, "an integer >= 0")
        for key in ("alpha", "beta", "eps_init", "eps_end"):
            unit(f"algo.{key}", getattr(self, key))
        check(self.eps_end <= self.eps_init, "algo.eps_end", self.eps_end,
              f"at most algo.eps_init={self.eps_init} (epsilon decays from eps_init to eps_end)")
        if self.tau is not None:
            check(0.0 < self.tau <= 1.0, "algo.tau", self.tau, "null or a number in (0, 1]")
        if self.max_grad_norm is not None:
            positive("algo.max_grad_norm", self.max_grad_norm)
        check(self.batch_size <= self.buffer_size, "algo.batch_size", self.batch_size,
              f"at most algo.buffer_size={self.buffer_size}")
