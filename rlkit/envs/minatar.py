"""MinAtar (Young & Tian 2019, https://arxiv.org/abs/1903.03176) as gymnasium envs, for rlkit.

``minatar`` (the optional extra ``pip install -e ".[minatar]"``) ships gymnasium registrations of its
own, but gymnasium 1.x no longer loads plugin registrations and its envs give channel-last bool
observations. rlkit registers its own ids explicitly (:func:`register_minatar`):

- ``rlkit/MinAtar-<game>-v0``: the full action set (6 actions, what the paper's DQN uses; minatar's
  own ``-v0`` ids);
- ``rlkit/MinAtar-<game>-minimal-v0``: the game's minimal action set (minatar's ``-v1``);

for ``<game>`` in :data:`GAMES`. Observations are channel-first ``uint8`` ``[C, 10, 10]`` (0/1), the
dynamics minatar's own ``Environment`` (sticky actions with probability 0.1 and difficulty ramping,
its defaults and the paper's). :class:`MinAtarEnv` captures its exact state (``state_dict``), so
runs resume bit for bit.

minatar changed Seaquest after the paper (release 1.0.11 fixed a bug in the oxygen / surfacing
logic); the paper's Seaquest figures were produced before that change.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rlkit.envs.backends import decode, encode

__all__ = ["GAMES", "MinAtarEnv", "minatar_id", "register_minatar"]

#: MinAtar's five games (its module names).
GAMES = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")

_ENV_ATTRS_SKIPPED = ("random", "channels", "action_map")  # shared RNG (saved once) and constants


def minatar_id(game: str, full_action_set: bool = True) -> str:
    """rlkit's gymnasium id of a MinAtar game.

    Examples:
        >>> from rlkit.envs.minatar import minatar_id
        >>> minatar_id("space_invaders"), minatar_id("breakout", full_action_set=False)
        ('rlkit/MinAtar-space_invaders-v0', 'rlkit/MinAtar-breakout-minimal-v0')
    """
    if game not in GAMES:
        raise ValueError(f"unknown MinAtar game {game!r}; valid choices: {list(GAMES)}")
    return f"rlkit/MinAtar-{game}-v0" if full_action_set else f"rlkit/MinAtar-{game}-minimal-v0"


class MinAtarEnv(gym.Env):
    """One MinAtar game: channel-first ``uint8`` observations, the full or minimal action set.

    Args:
        game: one of :data:`GAMES`.
        full_action_set: all 6 actions (the paper's setting) or the game's minimal set.
        sticky_action_prob: probability of repeating the previous action (minatar's default 0.1).
        difficulty_ramping: the games speed up over an episode (minatar's default).
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (gymnasium's attribute)

    def __init__(self, game: str, full_action_set: bool = True, sticky_action_prob: float = 0.1,
                 difficulty_ramping: bool = True) -> None:
        try:
            from minatar import Environment  # type: ignore[import-untyped]  # (no type information)
        except ImportError as err:
            raise gym.error.DependencyNotInstalled(
                'MinAtar is not installed, run `pip install -e ".[minatar]"` (gymnasium[minatar] does not exist)'
            ) from err
        if game not in GAMES:
            raise ValueError(f"unknown MinAtar game {game!r}; valid choices: {list(GAMES)}")
        self.game = Environment(game, sticky_action_prob=sticky_action_prob, difficulty_ramping=difficulty_ramping)
        self.action_set = list(range(self.game.num_actions())) if full_action_set else list(self.game.minimal_action_set())
        height, width, channels = self.game.state_shape()
        self.observation_space = spaces.Box(0, 1, (channels, height, width), np.uint8)
        self.action_space = spaces.Discrete(len(self.action_set))

    def _obs(self) -> np.ndarray:
        return np.ascontiguousarray(self.game.state().transpose(2, 0, 1), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self.game.seed(seed)
        self.game.reset()
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        reward, terminated = self.game.act(self.action_set[int(action)])
        return self._obs(), float(reward), bool(terminated), False, {}

    # -- exact state (rlkit's checkpoints) ------------------------------------------------------------
    def state_dict(self) -> dict:
        """The game's full state: its variables, the sticky-action memory and its random generator."""
        inner = vars(self.game.env)
        return {
            "game": {k: encode(v) for k, v in inner.items() if k not in _ENV_ATTRS_SKIPPED},
            "last_action": int(self.game.last_action),
            "random": encode(self.game.random.get_state()),
            "shared_random": self.game.env.random is self.game.random,
        }

    def load_state_dict(self, state: dict) -> None:
        inner = self.game.env
        for key, value in state["game"].items():
            setattr(inner, key, decode(value))
        self.game.last_action = int(state["last_action"])
        rng = np.random.RandomState()
        rng.set_state(decode(state["random"]))
        self.game.random = rng
        if state["shared_random"]:
            inner.random = rng


def register_minatar() -> None:
    """Registers ``rlkit/MinAtar-<game>-v0`` / ``-minimal-v0`` for every game (idempotent)."""
    for game in GAMES:
        for full in (True, False):
            env_id = minatar_id(game, full)
            if env_id not in gym.registry:
                gym.register(env_id, entry_point="rlkit.envs.minatar:MinAtarEnv",
                             kwargs={"game": game, "full_action_set": full})


register_minatar()
