"""One plain gymnasium env driven directly, as a batch of one (``vectorization="single"``).

Gymnasium's vector envs cost several times the env's own step for a single sub-env (batching of
spaces, autoreset bookkeeping, and for CartPole a numpy-vectorised step that is slower than the
scalar one at N = 1). :class:`SingleEnv` presents one ``gymnasium.make`` env with the vector-env
interface that :class:`~rlkit.envs.GymEnv` reads (batched spaces, ``num_envs == 1``, autoreset
``DISABLED``), and :class:`SingleBackend` resets it and captures its state. The adapter's
guarantees are those of the vector paths: the true final observation, no autoreset transition,
seeding with ``seed`` (as sub-env 0 of a SyncVectorEnv), exact state capture for classic control.

:class:`OneEnvSteps` is GymEnv's stepping of an env of one sub-env: :meth:`~OneEnvSteps.advance_one`
returns a :class:`OneStep` with the reward and flags as Python scalars, which a per-step collection
loop stores without building one-element arrays.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from rlkit.envs.backends import VectorBackend, env_state_dict, load_env_state_dict
from rlkit.envs.checks import all_finite, check_action, check_finite


def batch_one(value: Any) -> Any:
    """A single env's observation as a batch of one (dicts entry-wise)."""
    if isinstance(value, dict):
        return {k: batch_one(v) for k, v in value.items()}
    return np.asarray(value)[None]


def batch_info(info: dict) -> dict:
    """The entries of a single env's ``info`` that rlkit reads (the action mask), batched."""
    return {"action_mask": np.asarray(info["action_mask"])[None]} if "action_mask" in info else {}


class SingleEnv(gym.vector.VectorEnv):
    """One gymnasium env seen as a vector env of one sub-env, without autoreset.

    ``step`` never resets: after a finished episode the caller calls ``reset`` (or
    ``reset(options={"reset_mask": np.array([True])})``), as with ``AutoresetMode.DISABLED``.
    ``reset(seed=s)`` seeds the env with ``s`` (a list: its first entry).

    Args:
        env: the env (e.g. ``gymnasium.make("CartPole-v1")``); closed with this object.

    Examples:
        >>> import gymnasium as gym
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
    """Resets and state capture for a :class:`SingleEnv`."""

    def partial_reset(self, mask: np.ndarray) -> tuple[Any, dict]:
        return self.vec.reset()

    def state_dict(self) -> dict:
        return {"kind": "single", "env": env_state_dict(self.vec.env, self.env_name)}

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "single":
            raise ValueError(
                f"state does not match a single {self.env_name!r} env (vectorization='single'); it was "
                f"saved from a {state.get('kind')!r} vector env"
            )
        load_env_state_dict(self.vec.env, state["env"], self.env_name)


class OneStep(NamedTuple):
    """One step of a one-env :class:`GymEnv` (:meth:`GymEnv.advance_one`): :class:`StepResult`'s
    fields for the single sub-env, the reward and flags as Python scalars."""

    next_observation: np.ndarray  # [1, *obs_shape] float32
    reward: float  # a float32 value
    terminated: bool
    truncated: bool
    done: bool
    next_action_mask: np.ndarray | None
    observation: torch.Tensor
    action_mask: torch.Tensor | None


class OneEnvSteps:
    """:class:`~rlkit.envs.GymEnv`'s stepping of an env of one sub-env (``num_envs == 1``), where a
    per-step loop spends its time: :meth:`advance_one`, and for ``vectorization="single"`` the
    env's own step and reset without a batching layer. Uses the GymEnv's codec, observation and
    mask state (it is a GymEnv base class, not a component on its own)."""

    def advance_one(self, action: torch.Tensor) -> OneStep:
        """:meth:`advance` for an env of one sub-env (``num_envs == 1``), with the reward and flags as
        Python scalars: what a per-step loop over one env stores, without four one-element arrays.

        Raises:
            ValueError: when ``num_envs`` is not 1.
        """
        if self._single is None:
            if self.num_envs != 1:
                raise ValueError(f"advance_one steps an env of one sub-env; this one has num_envs={self.num_envs}")
            res = self.advance(action)
            return OneStep(res.next_observation, float(res.reward[0]), bool(res.terminated[0]),
                           bool(res.truncated[0]), bool(res.done[0]), res.next_action_mask, res.observation,
                           res.action_mask)
        index = self._single_index(action)
        if index is None:
            encoded = check_action(self, action)
            index = int(encoded[0]) if self._index_actions else encoded[0]
        self._fresh = False
        return self._advance_single(index)

    def _single_index(self, action: Any) -> int | None:
        """The gymnasium action of a valid one-env index action ``[1]`` (int64, no mask), as a Python
        int; ``None`` for anything else, which :func:`check_action` then validates."""
        if (self._index_actions and self._mask is None and type(action) is torch.Tensor
                and action.dtype == torch.int64 and self._codec.action_spec.mask is None):
            values = action.tolist()
            if (type(values) is list and len(values) == 1 and type(values[0]) is int
                    and 0 <= values[0] < self._codec.action_spec.n):
                return values[0] + self._codec._action_start
        return None

    def _advance_single(self, action: Any) -> OneStep:
        """:meth:`advance` for one env driven directly: its own step and reset, no batching layer.
        Index actions come as Python ints, which pass gymnasium's ``Discrete.contains`` check
        faster than numpy scalars."""
        env = self._single
        obs, reward, terminated, truncated, info = env.step(action)
        self._step_count += 1
        next_np, next_mask = self._observe_single(obs, info)
        terminated, truncated = bool(terminated), bool(truncated)
        done = terminated or truncated
        now_np, now_mask = next_np, next_mask
        if done:
            now_np, now_mask = self._observe_single(*env.reset())
        reward = float(np.float32(reward))  # a reward beyond float32's range becomes inf here
        # One cheap test for the common case; the detailed ones name the culprit.
        if not (math.isfinite(reward) and all_finite(next_np) and (not done or all_finite(now_np))):
            check_finite(self, "reward", np.array([[reward]], dtype=np.float32))
            check_finite(self, "observation", next_np)
            check_finite(self, "observation (after reset)", now_np)
        self._obs = obs_tensor = self._tensor(now_np)
        self._mask = None if now_mask is None else self._tensor(now_mask)
        return OneStep(next_np, reward, terminated, truncated, done, next_mask, obs_tensor, self._mask)

    def _observe_single(self, obs: Any, info: dict) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`SpaceCodec.observe` of one env's observation as a batch of one."""
        codec = self._codec
        if not (codec.obs_is_dict or codec.mask_in_info or codec.obs_onehot is not None):
            return np.array(obs, dtype=np.float32)[None], None  # observe's common case: a fresh copy
        return codec.observe(batch_one(obs), batch_info(info) if codec.mask_in_info else {})
