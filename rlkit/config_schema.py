"""Typed schemas of the Hydra config groups, with range checks.

Plain dataclasses (no omegaconf import): :mod:`rlkit.builders` merges each config section onto its
schema, which rejects unknown keys and wrong types, then instantiates the dataclass so that
``__post_init__`` checks ranges. The file name of a config group option is its ``name`` field and the
registry key (``conf/algo/dqn.yaml`` has ``name: dqn``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from rlkit.errors import ConfigError

# The evaluation env uses seed + EVAL_SEED_OFFSET and sub-env i of a vector env seed + i; numpy takes
# seeds in [0, 2**32). Seeds up to 2**31 - 1 leave room for both.
EVAL_SEED_OFFSET = 10_000
MAX_SEED = 2**31 - 1
INT64_MAX = 2**63 - 1


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check(cond: bool, key: str, value: Any, expected: str) -> None:
    if not cond:
        raise ConfigError(f"{key}={value!r} is invalid: expected {expected}")


def _positive(key: str, value: float) -> None:
    _check(value > 0, key, value, "a positive number")


def _choice(key: str, value: Any, choices: tuple) -> None:
    _check(value in choices, key, value, f"one of {list(choices)}")


def _unit(key: str, value: float) -> None:
    _check(0.0 <= value <= 1.0, key, value, "a number in [0, 1]")


# -- algorithms -----------------------------------------------------------------------------------
@dataclass
class _OffPolicyConfig:
    name: str = "dqn"
    num_envs: int = 1
    hidden_sizes: List[int] = field(default_factory=lambda: [120, 84])
    buffer_size: int = 10000
    prioritized: bool = False
    alpha: float = 0.6
    beta: float = 0.4
    batch_size: int = 128
    learning_starts: int = 1000
    train_frequency: int = 10
    updates_per_batch: int = 1
    target_update_interval: int = 50
    tau: Optional[float] = None
    eps_init: float = 1.0
    eps_end: float = 0.05
    eps_annealing_frames: int = 50000
    max_grad_norm: Optional[float] = None
    optim: Dict[str, Any] = field(default_factory=lambda: {"_target_": "torch.optim.Adam", "lr": 2.5e-4})

    def __post_init__(self) -> None:
        for key in ("num_envs", "buffer_size", "batch_size", "train_frequency", "updates_per_batch",
                    "target_update_interval", "eps_annealing_frames"):
            _positive(f"algo.{key}", getattr(self, key))
        _check(self.learning_starts >= 0, "algo.learning_starts", self.learning_starts, "an integer >= 0")
        _check(len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes),
               "algo.hidden_sizes", self.hidden_sizes, "a non-empty list of positive widths")
        for key in ("alpha", "beta", "eps_init", "eps_end"):
            _unit(f"algo.{key}", getattr(self, key))
        if self.tau is not None:
            _check(0.0 < self.tau <= 1.0, "algo.tau", self.tau, "null or a number in (0, 1]")
        if self.max_grad_norm is not None:
            _positive("algo.max_grad_norm", self.max_grad_norm)
        _check(self.batch_size <= self.buffer_size, "algo.batch_size", self.batch_size,
               f"at most algo.buffer_size={self.buffer_size}")


@dataclass
class DQNConfig(_OffPolicyConfig):
    name: str = "dqn"
    loss_function: str = "l2"
    double_dqn: bool = False
    slice_len: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("algo.loss_function", self.loss_function, ("l2", "l1", "smooth_l1"))
        _check(self.slice_len >= 2, "algo.slice_len", self.slice_len, "an integer >= 2")


@dataclass
class C51Config(_OffPolicyConfig):
    name: str = "c51"
    n_atoms: int = 101
    v_min: float = -100.0
    v_max: float = 100.0
    double_dqn: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.n_atoms >= 2, "algo.n_atoms", self.n_atoms, "an integer >= 2")
        _check(self.v_min < self.v_max, "algo.v_min", self.v_min, f"less than algo.v_max={self.v_max}")


@dataclass
class A2CConfig:
    name: str = "a2c"
    num_envs: int = 8
    n_steps: int = 5
    hidden_sizes: List[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
    shared_trunk: bool = False
    entropy_coeff: float = 0.0
    critic_coeff: float = 0.5
    loss_critic_type: str = "l2"
    normalize_advantage: bool = False
    max_grad_norm: Optional[float] = 0.5
    optim: Dict[str, Any] = field(default_factory=lambda: {"_target_": "torch.optim.RMSprop", "lr": 7e-4})

    def __post_init__(self) -> None:
        _positive("algo.num_envs", self.num_envs)
        _positive("algo.n_steps", self.n_steps)
        _check(len(self.hidden_sizes) > 0 and all(h > 0 for h in self.hidden_sizes),
               "algo.hidden_sizes", self.hidden_sizes, "a non-empty list of positive widths")
        _choice("algo.activation", self.activation, ("tanh", "relu"))
        _choice("algo.loss_critic_type", self.loss_critic_type, ("l2", "l1", "smooth_l1"))
        _check(self.entropy_coeff >= 0, "algo.entropy_coeff", self.entropy_coeff, "a number >= 0")
        _check(self.critic_coeff >= 0, "algo.critic_coeff", self.critic_coeff, "a number >= 0")
        if self.max_grad_norm is not None:
            _positive("algo.max_grad_norm", self.max_grad_norm)


ALGO_SCHEMAS: dict[str, type] = {"dqn": DQNConfig, "c51": C51Config, "a2c": A2CConfig}


# -- value estimators ---------------------------------------------------------------------------
@dataclass
class TD0Config:
    name: str = "td0"
    gamma: float = 0.99

    def __post_init__(self) -> None:
        _unit("value_estimator.gamma", self.gamma)


@dataclass
class TD1Config(TD0Config):
    name: str = "td1"


@dataclass
class TDLambdaConfig(TD0Config):
    name: str = "td_lambda"
    lmbda: float = 0.95

    def __post_init__(self) -> None:
        super().__post_init__()
        _unit("value_estimator.lmbda", self.lmbda)


@dataclass
class GAEConfig(TDLambdaConfig):
    name: str = "gae"
    average_gae: bool = False


ESTIMATOR_SCHEMAS: dict[str, type] = {
    "td0": TD0Config, "td1": TD1Config, "td_lambda": TDLambdaConfig, "gae": GAEConfig,
}


# -- environment, loggers, trainer, root ----------------------------------------------------------
@dataclass
class EnvConfig:
    name: str = "CartPole"
    id: str = "CartPole-v1"
    target_return: Optional[float] = None
    vectorization: str = "auto"
    make_kwargs: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _choice("env.vectorization", self.vectorization, ("auto", "single", "native", "sync"))


@dataclass
class CSVLoggerConfig:
    name: str = "csv"


@dataclass
class NoneLoggerConfig:
    name: str = "none"


@dataclass
class TensorBoardLoggerConfig:
    name: str = "tensorboard"


@dataclass
class WandbLoggerConfig:
    name: str = "wandb"
    mode: str = "offline"
    project: str = "rlkit"
    group: Optional[str] = None
    tags: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _choice("logger.mode", self.mode, ("offline", "online", "disabled"))


LOGGER_SCHEMAS: dict[str, type] = {
    "csv": CSVLoggerConfig, "none": NoneLoggerConfig, "wandb": WandbLoggerConfig,
    "tensorboard": TensorBoardLoggerConfig,
}


@dataclass
class TrainerConfig:
    log_interval: int = 2000
    eval_interval: int = 10000
    eval_episodes: int = 10
    early_stop: bool = True
    checkpoint_interval: int = 50000
    keep_checkpoints: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        _positive("trainer.log_interval", self.log_interval)
        _positive("trainer.eval_episodes", self.eval_episodes)
        _check(self.eval_interval >= 0, "trainer.eval_interval", self.eval_interval, "an integer >= 0")
        _check(self.checkpoint_interval >= 0, "trainer.checkpoint_interval", self.checkpoint_interval,
               "an integer >= 0")


@dataclass
class RootConfig:
    """Top-level keys of ``conf/config.yaml``; the groups are validated by their own schemas."""

    seed: int = 0
    device: str = "cpu"
    num_threads: int = 1
    total_frames: int = 500000
    resume: Optional[str] = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def __post_init__(self) -> None:
        _check(0 <= self.seed <= MAX_SEED, "seed", self.seed,
               f"an integer in [0, {MAX_SEED}] (numpy takes seeds below 2**32; the evaluation env "
               f"adds {EVAL_SEED_OFFSET} and sub-env i adds i)")
        cpus = usable_cpus()
        _check(1 <= self.num_threads <= cpus, "num_threads", self.num_threads,
               f"an integer in [1, {cpus}] (the CPUs this machine lets the run use)")
        _check(1 <= self.total_frames <= INT64_MAX, "total_frames", self.total_frames,
               f"an integer in [1, {INT64_MAX}]")
