"""One plain gymnasium env driven directly, as a batch of one (``vectorization="single"``).

Gymnasium's vector envs cost several times the env's own step for a single sub-env (batching of
spaces, autoreset bookkeeping, and for CartPole a numpy-vectorised step that is slower than the
scalar one at N = 1). :class:`SingleEnv` presents one ``gymnasium.make`` env with the vector-env
interface that :class:`~rlkit.envs.GymEnv` reads (batched spaces, ``num_envs == 1``, autoreset
``DISABLED``), and :class:`SingleBackend` steps it (index actions as Python ints, which
gymnasium's ``Discrete.contains`` checks fastest), resets it and captures its state. The adapter's
guarantees are those of the vector paths: the true final observation, no autoreset transition,
seeding with ``seed`` (as sub-env 0 of a SyncVectorEnv), exact state capture for classic control.
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from rlkit import keys

GAME_OVER = "game_over"  # info entry of a wrapper ending learning episodes within a game (rlkit.envs.atari)
from rlkit.envs.backends import BackendStep, VectorBackend, env_state_dict, load_env_state_dict
from rlkit.envs.checks import check_observation, check_reward


def batch_one(value: Any) -> Any:
    """A single env's observation as a batch of one (dicts entry-wise)."""
    if isinstance(value, dict):
        return {k: batch_one(v) for k, v in value.items()}
    return np.asarray(value)[None]


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


# The one-element flag arrays of a single env's steps, shared (read-only: results are not mutated).
_FLAG = {False: _read_only(np.array([False])), True: _read_only(np.array([True]))}


def batch_info(info: dict) -> dict:
    """The entries of a single env's ``info`` that rlkit reads (the action mask, Atari's
    ``game_over``), batched."""
    out = {key: np.asarray(info[key])[None] for key in (keys.ACTION_MASK, GAME_OVER) if key in info}
    return out


class SingleEnv(gym.vector.VectorEnv):
    """One gymnasium env seen as a vector env of one sub-env, without autoreset.

    ``step`` never resets: after a finished episode the caller calls ``reset`` (or
    ``reset(options={"reset_mask": np.array([True])})``), as with ``AutoresetMode.DISABLED``.
    ``reset(seed=s)`` seeds the env with ``s`` (a list: its first entry).

    Args:
        env: the env (e.g. ``gymnasium.make("CartPole-v1")``); closed with this object.

    Examples:
        >>> import gymnasium as gym
        >>> import numpy as np
        >>> from rlkit.envs.single import SingleEnv
        >>> vec = SingleEnv(gym.make("CartPole-v1"))
        >>> obs, info = vec.reset(seed=0)
        >>> obs.shape, vec.num_envs
        ((1, 4), 1)
        >>> obs, reward, terminated, truncated, info = vec.step(np.array([1]))
        >>> reward, terminated
        (array([1.]), array([False]))
    """

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        self.num_envs = 1
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = batch_space(env.observation_space, 1)
        self.action_space = batch_space(env.action_space, 1)
        self.metadata = {**env.metadata, "autoreset_mode": AutoresetMode.DISABLED}
        self.spec = env.spec
        self.render_mode = env.render_mode

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None) -> tuple[Any, dict]:
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        if mask is not None and not bool(np.asarray(mask).reshape(-1)[0]):
            raise ValueError(f"SingleEnv.reset got reset_mask={np.asarray(mask).tolist()}, which resets nothing")
        if isinstance(seed, (list, tuple)):
            seed = seed[0]
        obs, info = self.env.reset(seed=seed, options=options or None)
        return batch_one(obs), batch_info(info)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        obs, reward, terminated, truncated, info = self.env.step(np.asarray(actions)[0])
        return (batch_one(obs), np.array([reward], dtype=np.float64), np.array([bool(terminated)]),
                np.array([bool(truncated)]), batch_info(info))

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()


class SingleBackend(VectorBackend):
    """Steps, resets and state capture for a :class:`SingleEnv`."""

    vec: SingleEnv

    def __init__(self, vec: SingleEnv, env_name: str) -> None:
        super().__init__(vec, env_name)
        self.env = vec.env
        self.steps = 0
        # A Box observation's shape and dtype, read once: each step compares (and names a mismatch).
        space = vec.single_observation_space
        self.obs_shape = space.shape if isinstance(space, gym.spaces.Box) else None
        self.obs_dtype = space.dtype if isinstance(space, gym.spaces.Box) else None

    def step(self, actions: np.ndarray | list[int]) -> BackendStep:
        # The env itself, without SingleEnv's batching: an index action goes in as a Python int
        # (gymnasium's Discrete.contains checks it faster than a numpy integer), and the flags are
        # combined as Python bools; they become shared read-only one-element arrays.
        obs, reward, terminated, truncated, info = self.env.step(actions[0])
        self.steps += 1
        if type(obs) is not np.ndarray or obs.shape != self.obs_shape or obs.dtype != self.obs_dtype:
            check_observation(obs, self.env.observation_space, self.env_name, self.steps, 0, "step")
        if type(reward) is not float:  # (the common case checked first: numpy would cast a str or a 1-array)
            check_reward(reward, self.env_name, self.steps, 0)
        rewards = np.array([reward], dtype=np.float32)
        terminated, truncated = bool(terminated), bool(truncated)
        done = terminated or truncated
        return (batch_one(obs), rewards, _FLAG[terminated], _FLAG[truncated], _FLAG[done],
                done, batch_info(info) if info else {})

    def partial_reset(self, mask: np.ndarray) -> tuple[Any, dict]:
        return self.vec.reset()

    def state_dict(self) -> dict:
        return {"kind": "single", "env": env_state_dict(self.vec.env, self.env_name), "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "single":
            raise ValueError(
                f"state does not match a single {self.env_name!r} env (vectorization='single'); it was "
                f"saved from a {state.get('kind')!r} vector env"
            )
        load_env_state_dict(self.vec.env, state["env"], self.env_name)
        self.steps = int(state.get("steps", 0))
