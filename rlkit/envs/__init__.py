"""Gymnasium -> TensorDict adapter (vectorised, explicit autoreset, exact state capture)."""
from __future__ import annotations

from rlkit.envs.gym_env import GymEnv, StepResult
from rlkit.envs.make import VECTORIZATIONS, env_label, find_env_spec
from rlkit.envs.spaces import ACTION_ENCODINGS

__all__ = ["ACTION_ENCODINGS", "VECTORIZATIONS", "GymEnv", "StepResult", "env_label", "find_env_spec"]
