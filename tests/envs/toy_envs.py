"""Small deterministic gymnasium envs with known dynamics, shared by the env and collector tests."""
from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space


class CounterEnv(gym.Env):
    """obs = [t, start]: ``t`` counts steps since reset, ``start`` is drawn from ``np_random`` at reset.

    The reward of the step that reaches ``t`` is ``t`` (so an episode of length L returns
    L * (L + 1) / 2). The episode terminates when ``t`` reaches ``terminate_at`` (an int, or a
    ``(low, high)`` range drawn per episode). Wrap in ``TimeLimit`` for truncation.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, terminate_at: int | tuple[int, int] = 3, nan_at: int | None = None,
                 inf_reward_at: int | None = None, nan_reset_episode: int | None = None) -> None:
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.terminate_at = terminate_at
        self.nan_at = nan_at
        self.inf_reward_at = inf_reward_at
        self.nan_reset_episode = nan_reset_episode
        self.episode = -1
        self.t = 0
        self.start = 0
        self.limit = 0

    def _obs(self) -> np.ndarray:
        obs = np.array([self.t, self.start], dtype=np.float32)
        if self.nan_at is not None and self.t == self.nan_at:
            obs[0] = np.nan
        if self.t == 0 and self.episode == self.nan_reset_episode:
            obs[1] = np.nan
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        self.episode += 1
        self.start = int(self.np_random.integers(0, 1000))
        if isinstance(self.terminate_at, tuple):
            self.limit = int(self.np_random.integers(self.terminate_at[0], self.terminate_at[1] + 1))
        else:
            self.limit = self.terminate_at
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        reward = float(self.t)
        if self.inf_reward_at is not None and self.t == self.inf_reward_at:
            reward = float("inf")
        return self._obs(), reward, self.t >= self.limit, False, {}

    def state_dict(self) -> dict:
        return {"t": self.t, "start": self.start, "limit": self.limit, "episode": self.episode}

    def load_state_dict(self, state: dict) -> None:
        self.t, self.start, self.limit, self.episode = state["t"], state["start"], state["limit"], state["episode"]


def counter_fn(terminate_at: int | tuple[int, int] = 3, max_steps: int | None = None, **kwargs):
    """A factory of (optionally time-limited) counter envs."""

    def make() -> gym.Env:
        env = CounterEnv(terminate_at, **kwargs)
        return gym.wrappers.TimeLimit(env, max_steps) if max_steps is not None else env

    return make


class MaskedEnv(gym.Env):
    """Discrete(3) actions; only action ``t % 3`` and action 2 are allowed at step ``t``.

    ``mask_in="obs"``: a Dict observation with "observation" and "action_mask";
    ``mask_in="info"``: a Box observation and ``info["action_mask"]``. Terminates at t == 4.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, mask_in: str = "obs") -> None:
        self.mask_in = mask_in
        box = spaces.Box(-np.inf, np.inf, (1,), np.float32)
        if mask_in == "obs":
            self.observation_space = spaces.Dict({"observation": box, "action_mask": spaces.MultiBinary(3)})
        else:
            self.observation_space = box
        self.action_space = spaces.Discrete(3)
        self.t = 0

    def _mask(self) -> np.ndarray:
        mask = np.zeros(3, dtype=np.int8)
        mask[self.t % 3] = 1
        mask[2] = 1
        return mask

    def _out(self):
        obs = np.array([self.t], dtype=np.float32)
        if self.mask_in == "obs":
            return {"observation": obs, "action_mask": self._mask()}, {}
        return obs, {"action_mask": self._mask().astype(bool)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        return self._out()

    def step(self, action):
        assert self._mask()[int(action)], f"masked action {action} at t={self.t}"
        self.t += 1
        obs, info = self._out()
        return obs, 1.0, self.t >= 4, False, info


class SpaceEnv(gym.Env):
    """An env with the given spaces; remembers the last action it received."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, action_space: spaces.Space, observation_space: spaces.Space | None = None) -> None:
        self.action_space = action_space
        self.observation_space = observation_space or spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.last_action = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.last_obs = self.observation_space.sample()
        return self.last_obs, {}

    def step(self, action):
        self.last_action = action
        self.last_obs = self.observation_space.sample()
        return self.last_obs, 0.0, False, False, {}


class TinyVectorEnv(gym.vector.VectorEnv):
    """A bare VectorEnv subclass rlkit knows nothing about."""

    def __init__(self, mode: AutoresetMode) -> None:
        self.metadata = {"autoreset_mode": mode}
        self.num_envs = 1
        self.single_observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.single_action_space = spaces.Discrete(2)
        self.observation_space = batch_space(self.single_observation_space, 1)
        self.action_space = batch_space(self.single_action_space, 1)

    def reset(self, *, seed=None, options=None):
        return np.zeros((1, 2), np.float32), {}

    def step(self, actions):
        return np.zeros((1, 2), np.float32), np.ones(1), np.array([True]), np.array([False]), {
            "final_obs": np.array([np.ones(2, np.float32)], dtype=object)}
