"""Test envs registered on import (``env.id=corridor_env:<Id>``): variants of the example
corridor (``examples/corridor.py``) that rlkit must handle or refuse."""
from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from examples.corridor import Corridor


class Shifty(Corridor):
    """A corridor whose observation loses an element at step ``bad_step`` of every episode."""

    def __init__(self, bad_step: int = 3) -> None:
        super().__init__(length=20)
        self.bad_step, self.t = bad_step, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self.t = 0
        return super().reset(seed=seed, options=options)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.t += 1
        return (obs[:-1] if self.t == self.bad_step else obs), reward, terminated, truncated, info


class ByteCorridor(Corridor):
    """The corridor with uint8 observations (0 / 255), as pixel envs give them."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Box(0, 255, (self.length,), np.uint8)

    def _obs(self) -> np.ndarray:
        return (super()._obs() * 255).astype(np.uint8)


class MaskedCorridor(Corridor):
    """The corridor with an action mask in a Dict observation: stepping left is not allowed in the
    left half (the env refuses a masked action)."""

    def __init__(self) -> None:
        super().__init__()
        self.observation_space = spaces.Dict({"observation": spaces.Box(0.0, 1.0, (self.length,), np.float32),
                                              "action_mask": spaces.MultiBinary(2)})

    def _obs(self) -> dict:  # type: ignore[override]
        return {"observation": super()._obs(), "action_mask": np.array([self.position >= self.length // 2, 1], np.int8)}

    def step(self, action):
        if not self._obs()["action_mask"][int(action)]:
            raise AssertionError(f"masked action {action} at position {self.position}")
        return super().step(action)


class DeadEndCorridor(MaskedCorridor):
    """The masked corridor whose mask allows no action at position 3 (the episode goes on there)."""

    def _obs(self) -> dict:  # type: ignore[override]
        obs = super()._obs()
        if self.position == 3:
            obs["action_mask"] = np.zeros(2, np.int8)
        return obs

    def step(self, action):
        return Corridor.step(self, action)


class FreeCorridor(Corridor):
    """The corridor with an unbounded 1-D Box action: a positive action steps right."""

    def __init__(self, low: float = -np.inf, high: float = np.inf) -> None:
        super().__init__()
        self.action_space = spaces.Box(low, high, (1,), np.float32)

    def step(self, action):
        return super().step(int(float(np.asarray(action).reshape(-1)[0]) > 0))


class ArrayRewardCorridor(Corridor):
    """The corridor returning its reward as a one-element array (shape (1,)), not a number."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, np.array([reward], np.float32), terminated, truncated, info


class StrRewardCorridor(Corridor):
    """The corridor returning its reward as a string ("-0.01"), which numpy would cast."""

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, str(reward), terminated, truncated, info


class PairCorridor(Corridor):
    """The corridor with a MultiDiscrete([2, 2]) action (its first part moves)."""

    def __init__(self) -> None:
        super().__init__()
        self.action_space = spaces.MultiDiscrete([2, 2])

    def step(self, action):
        return super().step(int(np.asarray(action)[0]))


class BlankCorridor(Corridor):
    """The corridor declaring the 'rgb_array' render mode, whose render() returns no frame (None)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode: str | None = None) -> None:
        super().__init__()
        self.render_mode = render_mode

    def render(self) -> None:
        return None


class BrokenStepCorridor(Corridor):
    """The corridor whose step breaks the gymnasium API (``mode="four_tuple"``: the old gym's
    4 values) or raises (``mode="raises"``), from its first step or once ``after`` steps are done."""

    def __init__(self, mode: str = "raises", after: int = 0) -> None:
        super().__init__()
        self.mode, self.after, self.steps = mode, after, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.steps += 1
        if self.steps <= self.after:  # (after=N: the first N steps are the corridor's own)
            return obs, reward, terminated, truncated, info
        if self.mode == "four_tuple":
            return obs, reward, terminated or truncated, info
        raise RuntimeError("physics exploded")


gym.register("Shifty-v0", entry_point=Shifty, max_episode_steps=30)
gym.register("MaskedCorridor-v0", entry_point=MaskedCorridor, max_episode_steps=30)
gym.register("ByteCorridor-v0", entry_point=ByteCorridor, max_episode_steps=30)
gym.register("DeadEndCorridor-v0", entry_point=DeadEndCorridor, max_episode_steps=30)
gym.register("FreeCorridor-v0", entry_point=FreeCorridor, max_episode_steps=30)
gym.register("ArrayRewardCorridor-v0", entry_point=ArrayRewardCorridor, max_episode_steps=30)
gym.register("StrRewardCorridor-v0", entry_point=StrRewardCorridor, max_episode_steps=30)
gym.register("PairCorridor-v0", entry_point=PairCorridor, max_episode_steps=30)
gym.register("BlankCorridor-v0", entry_point=BlankCorridor, max_episode_steps=30)
gym.register("BrokenStepCorridor-v0", entry_point=BrokenStepCorridor, max_episode_steps=30)
