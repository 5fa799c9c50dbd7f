"""Published figures that the ``conf/experiment/`` settings reproduce, with their protocol and source.

One entry per experiment config name. ``protocol`` says how the figure was measured, and so how
``scripts/reproduce.py`` computes rlkit's number beside it:

- ``"last100_train"``: per seed, the mean return of the last 100 *training* episodes (with
  exploration); then mean ± std (population, as numpy's default) over seeds. Compared with CleanRL's
  tables of "average episodic returns", whose window is not stated (its table tool defaults to the last
  10 of 500 sampled points): the last 100 episodes are rlkit's reading.
- ``"greedy_eval"``: the mean ± std of episode returns of the trained agent acting greedily
  (deterministic policy). RL Zoo's ``benchmark.md``: one run, std over its evaluation episodes.
- ``"stochastic_eval"``: the same, with the trained agent sampling its policy. RL Zoo's Atari rows
  (``benchmark.md``: "It uses the deterministic policy except for Atari games"; ``enjoy.py`` samples
  for Atari unless given ``--deterministic``). rlkit's counterpart is ``python evaluate.py run=<run>
  deterministic=false``, which ``reproduce.py`` does not run: the report reads its ``results.json``
  where one was written for a run's last checkpoint (``reproduce_report.stochastic_evaluation``).

Examples:
    >>> from published import PUBLISHED  # (scripts/ on sys.path, as the scripts run)
    >>> PUBLISHED["dqn_cartpole"].mean, PUBLISHED["dqn_cartpole"].protocol
    (488.69, 'last100_train')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Protocol = Literal["last100_train", "greedy_eval", "stochastic_eval"]

CLEANRL_DQN = "https://docs.cleanrl.dev/rl-algorithms/dqn/#dqnpy"
CLEANRL_C51 = "https://docs.cleanrl.dev/rl-algorithms/c51/#c51py"
RL_ZOO = "https://github.com/DLR-RM/rl-baselines3-zoo/blob/master/benchmark.md"
MINATAR = "https://arxiv.org/abs/1903.03176"
CLEANRL_DQN_ATARI = "https://docs.cleanrl.dev/rl-algorithms/dqn/#dqn_ataripy"
CLEANRL_C51_ATARI = "https://docs.cleanrl.dev/rl-algorithms/c51/#c51_ataripy"


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
    #: (frames, value) points of a published learning curve, where the source gives one.
    curve: tuple[tuple[int, float], ...] = ()


# MinAtar (Young & Tian 2019), DQN: the learning curves of the paper's figure (also the repository's
# README image img/learning_curves.gif): "moving average of returns over 100 episodes", each curve the
# average of 30 runs. No table gives numbers: the values below were read off that image, by locating
# the DQN curve's pixels (its colour) and mapping them through the axes' tick marks, at the frames
# listed (reading error about ±0.4; about ±1 for Space Invaders, whose panel's scale is coarser).
# Freeway's curve leaves its plateau of about 5.5 at 250k and climbs steeply after it (about 0.6 per
# pixel, 7k frames, around 500k), so its 250k and 500k values move by about ±0.6 with a pixel of
# reading. Those two were re-read in a later session (curve centre per pixel column, 139.5 pixels per
# 1M frames): 7.2 and 33.6 before, 5.9 and 34.4 now. Asterix at 3M was re-read too and kept at 15.6:
# the DQN curve is hidden under the AC(0) curve from about 2.96M to 3.02M and reads 15.5 and 15.6 on
# either side. The shaded bands are standard errors over the 30 runs, too thin to read: the std over
# runs is not published.
_MINATAR_CURVES: dict[str, tuple[tuple[int, float], ...]] = {
    "asterix": ((250_000, 0.8), (500_000, 1.0), (1_000_000, 7.0), (1_500_000, 13.0), (2_000_000, 14.3),
                (3_000_000, 15.6), (4_000_000, 16.5), (5_000_000, 17.3)),
    "breakout": ((250_000, 6.6), (500_000, 8.3), (1_000_000, 9.2), (1_500_000, 9.4), (2_000_000, 9.7),
                 (3_000_000, 9.9), (4_000_000, 9.9), (5_000_000, 10.0)),
    "freeway": ((250_000, 5.9), (500_000, 34.4), (1_000_000, 47.8), (1_500_000, 50.4), (2_000_000, 50.7),
                (3_000_000, 50.2), (4_000_000, 50.0), (5_000_000, 50.2)),
    "seaquest": ((500_000, 0.9), (1_000_000, 1.0), (1_500_000, 2.1), (2_000_000, 4.9), (3_000_000, 12.9),
                 (4_000_000, 17.7), (5_000_000, 20.3)),
    "space_invaders": ((250_000, 21.3), (500_000, 28.1), (1_000_000, 33.0), (1_500_000, 38.5), (2_000_000, 41.2),
                       (3_000_000, 43.9), (4_000_000, 43.9), (5_000_000, 43.2)),
}


# The paper swept the step size; its sensitivity figure (img/sensitivity_curves.gif, "average return
# over final 100 episodes") puts DQN at log2 step size -12 (dqn.py's 0.00025, which rlkit pins) at
# about these values, read off it (about ±0.5). Where the game's best step size is another, the
# learning curves above match that one's value, not these (docs/results.md, "MinAtar").
_MINATAR_AT_DQN_PY_STEP_SIZE = {"asterix": (12.0, "2^-13"), "breakout": (8.9, "2^-9"), "seaquest": (16.4, "2^-13")}


def _minatar(game: str) -> Published:
    curve = _MINATAR_CURVES[game]
    notes = ["minatar 1.0.11 changed Seaquest's oxygen logic after the paper; rlkit runs minatar 1.0.15"
             if game == "seaquest" else ""]
    if game in _MINATAR_AT_DQN_PY_STEP_SIZE:
        value, best = _MINATAR_AT_DQN_PY_STEP_SIZE[game]
        notes.append(f"the paper's curve appears to be at its best step size ({best}); at dqn.py's 0.00025, "
                     f"which rlkit runs, its sweep figure gives about {value} at 5M frames")
    note = "; ".join(n for n in notes if n)
    return Published("MinAtar paper DQN (Young & Tian 2019)", MINATAR, f"rlkit/MinAtar-{game}-v0", curve[-1][1],
                     float("nan"), "last100_train", 30, 5_000_000, note=note, curve=curve)


_CLEANRL_ATARI_NOTE = ("CleanRL's figure is of BreakoutNoFrameskip-v4 (its commit 714e786d, which added the table, "
                       "pins ale-py 0.7.4: a 400,000-frame cap per game), rlkit plays ALE/Breakout-v5 (a "
                       "108,000-frame cap) under the same protocol; CleanRL greys resized RGB frames with OpenCV, "
                       "rlkit greys with ALE's palette before resizing")
_ZOO_ATARI_NOTE = ("the zoo sampled its policy in its training wrapper (a lost life ends the agent's episode, a no-op "
                   "step and FIRE follow, the frame stack restarts), 82 games of BreakoutNoFrameskip-v4 over 604,115 "
                   "emulator frames; rlkit's evaluate.py plays full ALE/Breakout-v5 games without the life-loss "
                   "signal (FIRE only at a game's start), its episodes= games per seed, greyed with ALE's palette "
                   "where SB3 uses OpenCV")


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
    "a2c_pendulum": Published("RL Zoo (SB3) A2C", RL_ZOO, "Pendulum-v1", -162.965, 103.210, "greedy_eval", 1, 1_000_000,
                              note="the published agent was trained with gamma 0.99 (the zoo's earlier entry; "
                                   "rl-trained-agents a2c/Pendulum-v1_1 config.yml); a2c.yml and rlkit use 0.9"),
    "a2c_mountaincar": Published(
        "RL Zoo (SB3) A2C", RL_ZOO, "MountainCar-v0", -111.263, 24.087, "greedy_eval", 1, 1_000_000
    ),
    **{f"dqn_minatar_{game}": _minatar(game) for game in _MINATAR_CURVES},
    # Atari (Breakout; the configs name Pong and BeamRider's figures too). CleanRL: "average episodic
    # returns" of training episodes (full games), 3 seeds, 10M agent steps; its tables came with commit
    # 714e786d, whose poetry.lock pins ale-py 0.7.4 (BreakoutNoFrameskip-v4 capped at 100,000 x 4 =
    # 400,000 emulator frames per game there, src/python/gym.py at ALE's tag v0.7.4).
    "dqn_atari": Published("CleanRL dqn_atari.py", CLEANRL_DQN_ATARI, "ALE/Breakout-v5", 366.928, 39.89,
                           "last100_train", 3, 10_000_000, note=_CLEANRL_ATARI_NOTE),
    "c51_atari": Published("CleanRL c51_atari.py", CLEANRL_C51_ATARI, "ALE/Breakout-v5", 461.86, 69.65,
                           "last100_train", 3, 10_000_000,
                           note=_CLEANRL_ATARI_NOTE + "; c51_atari.py takes log(clamp(p, 1e-5, 1 - 1e-5)), "
                                                      "rlkit the log-softmax"),
    # RL Zoo: one agent, its stochastic policy (benchmark.md: "deterministic policy except for Atari
    # games") in the training wrapper (create_test_env passes the hyperparameters' env_wrapper,
    # AtariWrapper), 82 full games (Monitor sits under the wrapper) over 604,115 emulator frames.
    "a2c_atari": Published("RL Zoo (SB3) A2C", RL_ZOO, "ALE/Breakout-v5", 279.793, 122.177, "stochastic_eval", 1,
                           10_000_000, note=_ZOO_ATARI_NOTE),
}
