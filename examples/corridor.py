"""A user's own gymnasium env, registered when this module is imported.

rlkit takes gymnasium's ``module:Id`` form, importing the module before making the env::

    python train.py env=gym env.id=examples.corridor:Corridor-v0 total_frames=20000
    python train.py env=gym env.id=examples.corridor:Corridor-v0 +env.make_kwargs.length=10
"""
from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Corridor(gym.Env):
    """Walk right along a corridor of ``length`` cells: the observation is the one-hot position
    (float32), actions are 0 (left) and 1 (right); reaching the last cell ends the episode
    (terminated) with reward 1, every other step costs 0.01. Episodes start in the left half."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, length: int = 6) -> None:
        if length < 2:
            raise ValueError(f"length must be at least 2, got {length}")
        self.length = int(length)
        self.observation_space = spaces.Box(0.0, 1.0, (self.length,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.position = 0

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length, dtype=np.float32)
        obs[self.position] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.position = int(self.np_random.integers(0, self.length // 2))
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.position = max(0, min(self.length - 1, self.position + (1 if int(action) == 1 else -1)))
        done = self.position == self.length - 1
        return self._obs(), 1.0 if done else -0.01, done, False, {}


# max_episode_steps: gymnasium adds a TimeLimit (truncation, which rlkit bootstraps);
# reward_threshold: what env.target_return=auto stops at.
gym.register("Corridor-v0", entry_point=Corridor, max_episode_steps=30, reward_threshold=0.9)
