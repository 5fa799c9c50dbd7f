"""Typed schemas of the config sections other than ``algo`` (each algorithm declares its own, see
:mod:`rlkit.registry`), with range checks.

Plain dataclasses (no omegaconf import): :mod:`rlkit.builders` merges each config section onto its
schema, which rejects unknown keys and wrong types, then instantiates the dataclass so that
``__post_init__`` checks ranges. The fields have no defaults: the YAML files own every value (one
owner per default), and a key missing from a section is refused by name. The file name of a config
group option is its ``name`` field and the registry key (``conf/algo/dqn.yaml`` has ``name: dqn``).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from rlkit.errors import ConfigError

# The evaluation env uses seed + EVAL_SEED_OFFSET and sub-env i of a vector env seed + i; numpy takes
# seeds in [0, 2**32). Seeds up to 2**31 - 1 leave room for both.
EVAL_SEED_OFFSET = 10_000
MAX_SEED = 2**31 - 1
#: The most seeds one command may ask for (reproduce.py seeds=N, tune.seeds=N): a count is listed
#: seed by seed, and 2**31 of them would fill the memory before any check of the list.
MAX_SEED_COUNT = 1 << 16
#: The most seeds one process trains (``num_seeds``): each has its own envs, evaluation env, networks,
#: replay buffer and random stream, all built before the run starts (in memory, and again for the
#: run after its preflight), so a count far above what a machine holds would build for minutes
#: before any check of their memory. More seeds: several runs, ``seed=1024 num_seeds=1024``, ...
MAX_NUM_SEEDS = 1024
INT64_MAX = 2**63 - 1


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check(cond: bool, key: str, value: Any, expected: str) -> None:
    """Raises :class:`ConfigError` ``"<key>=<value> is invalid: expected <expected>"`` unless ``cond``."""
    if not cond:
        raise ConfigError(f"{key}={value!r} is invalid: expected {expected}")


def positive(key: str, value: float) -> None:
    check(value > 0, key, value, "a positive number")


def choice(key: str, value: Any, choices: tuple) -> None:
    check(value in choices, key, value, f"one of {list(choices)}")


def unit(key: str, value: float) -> None:
    check(0.0 <= value <= 1.0, key, value, "a number in [0, 1]")


# -- value estimators ---------------------------------------------------------------------------
@dataclass
class TD0Config:
    name: str
    gamma: float

    def __post_init__(self) -> None:
        unit("value_estimator.gamma", self.gamma)


@dataclass
class TD1Config(TD0Config):
    """TD(1): the fields of TD(0)."""


@dataclass
class TDLambdaConfig(TD0Config):
    lmbda: float

    def __post_init__(self) -> None:
        super().__post_init__()
        unit("value_estimator.lmbda", self.lmbda)


@dataclass
class GAEConfig(TDLambdaConfig):
    average_gae: bool


ESTIMATOR_SCHEMAS: dict[str, type] = {
    "td0": TD0Config, "td1": TD1Config, "td_lambda": TDLambdaConfig, "gae": GAEConfig,
}


# -- environment, loggers, trainer, root ----------------------------------------------------------
@dataclass
class EnvConfig:
    """``conf/env/<name>.yaml``; the run directory's env label comes from ``game`` or ``id``."""

    suite: str
    id: Optional[str]
    game: Optional[str]
    options: Dict[str, Any]
    target_return: Any  # a number, "auto" (the env spec's reward_threshold) or None (never stop early)
    vectorization: str
    make_kwargs: Dict[str, Any]
    transforms: List[Dict[str, Any]]

    def __post_init__(self) -> None:
        choice("env.vectorization", self.vectorization, ("auto", "single", "native", "sync"))
        check(self.target_return is None or self.target_return == "auto"
              or (isinstance(self.target_return, (int, float)) and not isinstance(self.target_return, bool)),
              "env.target_return", self.target_return, "a number, 'auto' (the env spec's reward_threshold) or null")


@dataclass
class CSVLoggerConfig:
    name: str


@dataclass
class NoneLoggerConfig:
    name: str


@dataclass
class TensorBoardLoggerConfig:
    name: str

    def check_installed(self) -> None:
        """Refuses a run that would log with tensorboard where it is not installed (called when a run
        starts or resumes, not when a saved run's config is read, e.g. to evaluate it)."""
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise ConfigError("logger=tensorboard needs the optional 'tensorboard' package (not installed): "
                              'pip install -e ".[tensorboard]", or choose another logger (csv, wandb, none)')


@dataclass
class WandbLoggerConfig:
    name: str
    mode: str
    project: str
    group: Optional[str]
    tags: List[str]

    def __post_init__(self) -> None:
        choice("logger.mode", self.mode, ("offline", "online", "disabled"))


LOGGER_SCHEMAS: dict[str, type] = {
    "csv": CSVLoggerConfig, "none": NoneLoggerConfig, "wandb": WandbLoggerConfig,
    "tensorboard": TensorBoardLoggerConfig,
}


@dataclass
class TrainerConfig:
    log_interval: int
    eval_interval: int
    eval_episodes: int
    eval_epsilon: float
    early_stop: bool
    checkpoint_interval: int
    keep_checkpoints: bool
    progress: bool
    # Added after runs were saved: defaults, so that their saved configs still validate.
    drop_non_finite_seeds: bool = False
    video_interval: Optional[int] = None

    def __post_init__(self) -> None:
        positive("trainer.log_interval", self.log_interval)
        if self.video_interval is not None:
            positive("trainer.video_interval", self.video_interval)
        positive("trainer.eval_episodes", self.eval_episodes)
        unit("trainer.eval_epsilon", self.eval_epsilon)
        check(self.eval_interval >= 0, "trainer.eval_interval", self.eval_interval, "an integer >= 0")
        check(self.checkpoint_interval >= 0, "trainer.checkpoint_interval", self.checkpoint_interval,
               "an integer >= 0")


@dataclass
class RootConfig:
    """Top-level keys of ``conf/config.yaml``; the groups are validated by their own schemas."""

    seed: int
    num_seeds: int
    device: str
    num_threads: int
    total_frames: int
    resume: Optional[str]
    imports: List[str]
    trainer: TrainerConfig

    def __post_init__(self) -> None:
        check(0 <= self.seed <= MAX_SEED, "seed", self.seed,
               f"an integer in [0, {MAX_SEED}] (numpy takes seeds below 2**32; the evaluation env "
               f"adds {EVAL_SEED_OFFSET} and sub-env i adds i)")
        most = min(MAX_NUM_SEEDS, MAX_SEED - self.seed + 1)
        cap = (f", at most {MAX_NUM_SEEDS}: train more as several runs, e.g. seed={self.seed + MAX_NUM_SEEDS} "
               "num_seeds=... for the next ones") if most == MAX_NUM_SEEDS else ""
        check(1 <= self.num_seeds <= most, "num_seeds", self.num_seeds,
              f"an integer in [1, {most}] (seeds seed .. seed + num_seeds - 1 train in one process{cap})")
        check(self.num_seeds == 1 or self.trainer.video_interval is None, "trainer.video_interval",
              self.trainer.video_interval, "null with num_seeds > 1 (a multi-seed run records no videos; record "
              "one seed's agent with evaluate.py run=<its seed_<k> directory> video=true)")
        cpus = usable_cpus()
        check(1 <= self.num_threads <= cpus, "num_threads", self.num_threads,
               f"an integer in [1, {cpus}] (the CPUs this machine lets the run use)")
        check(1 <= self.total_frames <= INT64_MAX, "total_frames", self.total_frames,
               f"an integer in [1, {INT64_MAX}]")
        # (an unset shell variable, resume=$RUN, must not start a new run)
        check(self.resume is None or bool(self.resume.strip()), "resume", self.resume,
              "a run directory or a checkpoint file; leave resume unset (null) to start a new run")
        for i, module in enumerate(self.imports):
            check(bool(re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", module)), f"imports[{i}]", module,
                  "a module's dotted name (my_package.algorithms), importable here")
