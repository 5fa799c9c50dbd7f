"""Published figures that the ``conf/experiment/`` settings reproduce, with their protocol and source.

One entry per experiment config name. ``protocol`` says how the figure was measured, and so how
``scripts/reproduce.py`` computes rlkit's number beside it:

- ``"last100_train"``: per seed, the mean return of the last 100 *training* episodes (with
  exploration); then mean ± std (population, as numpy's default) over seeds. CleanRL's classic-control tables.
- ``"greedy_eval"``: the mean ± std of episode returns of the trained agent acting greedily
  (deterministic policy). RL Zoo's ``benchmark.md``: one run, std over its evaluation episodes.

Examples:
    >>> PUBLISHED["dqn_cartpole"].mean, PUBLISHED["dqn_cartpole"].protocol
    (488.69, 'last100_train')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Protocol = Literal["last100_train", "greedy_eval"]

CLEANRL_DQN = "https://docs.cleanrl.dev/rl-algorithms/dqn/#dqnpy"
CLEANRL_C51 = "https://docs.cleanrl.dev/rl-algorithms/c51/#c51py"
RL_ZOO = "https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md"


@dataclass(frozen=True)
class Published:
    """A published result: ``mean ± std`` measured by ``protocol`` over ``runs`` runs at ``frames``."""

    source: str  # who published it (the implementation that produced it)
    url: str  # where the figure is printed
    env_id: str
    mean: float
    std: float
    protocol: Protocol
    runs: int  # seeds (CleanRL) or 1 (RL Zoo)
    frames: int
    note: str = ""  # a known difference between the published setting and rlkit's


PUBLISHED: dict[str, Published] = {
    "dqn_cartpole": Published("CleanRL dqn.py", CLEANRL_DQN, "CartPole-v1", 488.69, 16.11, "last100_train", 3, 500_000),
    "dqn_acrobot": Published("CleanRL dqn.py", CLEANRL_DQN, "Acrobot-v1", -91.54, 7.20, "last100_train", 3, 500_000),
    "dqn_mountaincar": Published(
        "CleanRL dqn.py", CLEANRL_DQN, "MountainCar-v0", -194.95, 8.48, "last100_train", 3, 500_000
    ),
    "c51_cartpole": Published("CleanRL c51.py", CLEANRL_C51, "CartPole-v1", 481.20, 20.53, "last100_train", 3, 500_000),
    "c51_acrobot": Published("CleanRL c51.py", CLEANRL_C51, "Acrobot-v1", -87.70, 5.52, "last100_train", 3, 500_000),
    "c51_mountaincar": Published(
        "CleanRL c51.py", CLEANRL_C51, "MountainCar-v0", -166.38, 27.94, "last100_train", 3, 500_000
    ),
    "a2c_cartpole": Published("RL Zoo (SB3) A2C", RL_ZOO, "CartPole-v1", 500.0, 0.0, "greedy_eval", 1, 500_000),
    "a2c_acrobot": Published("RL Zoo (SB3) A2C", RL_ZOO, "Acrobot-v1", -83.353, 17.213, "greedy_eval", 1, 500_000),
    "a2c_pendulum": Published("RL Zoo (SB3) A2C", RL_ZOO, "Pendulum-v1", -162.965, 103.210, "greedy_eval", 1, 1_000_000),
    "a2c_mountaincar": Published(
        "RL Zoo (SB3) A2C", RL_ZOO, "MountainCar-v0", -111.263, 24.087, "greedy_eval", 1, 1_000_000
    ),
}
