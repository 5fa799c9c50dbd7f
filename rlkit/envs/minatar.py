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

#: ``rgb_array`` frames: the colour of a cell whose highest set channel is ``c`` is ``PALETTE[c + 1]``
#: (black where none is set), at :data:`CELL_PIXELS` pixels a side (a 10x10 grid: 160x160 frames).
PALETTE = np.array([
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
], dtype=np.uint8)
CELL_PIXELS = 16


def rgb_frame(state: np.ndarray, cell: int = CELL_PIXELS) -> np.ndarray:
    """An RGB ``uint8`` image ``[H * cell, W * cell, 3]`` of a channel-last MinAtar state
    ``[H, W, C]``: each cell coloured by its highest set channel (what minatar's own display shows).

    Examples:
        >>> import numpy as np
        >>> from rlkit.envs.minatar import PALETTE, rgb_frame
        >>> state = np.zeros((2, 3, 4), bool); state[0, 1, 0] = state[1, 2, 3] = state[1, 2, 1] = True
        >>> frame = rgb_frame(state, cell=2)
        >>> frame.shape, frame.dtype
        ((4, 6, 3), dtype('uint8'))
        >>> (frame[0, 2] == PALETTE[1]).all(), (frame[3, 5] == PALETTE[4]).all(), frame[0, 0].tolist()
        (np.True_, np.True_, [0, 0, 0])
    """
    channels = state.shape[-1]
    if channels >= len(PALETTE):
        raise ValueError(f"a MinAtar state of {channels} channels has more than the {len(PALETTE) - 1} colours")
    # The highest set channel + 1 of each cell, 0 where none is set.
    top = np.max(state.astype(np.int64) * np.arange(1, channels + 1), axis=-1)
    return PALETTE[top].repeat(cell, axis=0).repeat(cell, axis=1)


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
        render_mode: ``"rgb_array"``: :meth:`render` returns the grid as an RGB image
            (:func:`rgb_frame`, for videos).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012 (gymnasium's attribute)

    def __init__(self, game: str, full_action_set: bool = True, sticky_action_prob: float = 0.1,
                 difficulty_ramping: bool = True, render_mode: str | None = None) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"unknown render_mode {render_mode!r} for MinAtar; valid choices: [None, 'rgb_array']")
        self.render_mode = render_mode
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

    def render(self) -> np.ndarray | None:
        """The current grid as an RGB image (``render_mode="rgb_array"``), else None."""
        return rgb_frame(self.game.state()) if self.render_mode == "rgb_array" else None

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
