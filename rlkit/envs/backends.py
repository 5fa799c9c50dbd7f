"""How rlkit drives each kind of gymnasium vector env: partial resets and exact state capture.

Gymnasium 1.x vector envs differ in how they reset a finished sub-environment (``AutoresetMode``):

- ``SAME_STEP``: ``step`` returns the reset observation and puts the true final one in
  ``info["final_obs"]``.
- ``NEXT_STEP`` (the default, and the only mode of the native ``CartPoleVectorEnv``): ``step``
  returns the true final observation and the *next* ``step`` call resets the sub-env, ignoring its
  action and returning reward 0: a fake transition.
- ``DISABLED``: the caller resets finished sub-envs with ``reset(options={"reset_mask": mask})``.

rlkit never lets a fake transition through: for ``NEXT_STEP``/``DISABLED`` envs it resets finished
sub-envs right after the step that finished them (:meth:`VectorBackend.partial_reset`), so the next
``step`` is a real one for every sub-env.
"""
from __future__ import annotations

import collections
from typing import Any, Protocol, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

from rlkit import keys

# Attributes that, with the np_random state, fully determine a classic-control env's future.
_CLASSIC_CONTROL_STATE = {
    "CartPoleEnv": ("state", "steps_beyond_terminated"),
    "AcrobotEnv": ("state",),
    "MountainCarEnv": ("state",),
    "Continuous_MountainCarEnv": ("state",),
    "PendulumEnv": ("state", "last_u"),
}
# Wrapper -> attributes holding its state ("PassiveEnvChecker" only runs checks once).
_WRAPPER_STATE = {
    "TimeLimit": ("_elapsed_steps",), "OrderEnforcing": ("_has_reset",), "PassiveEnvChecker": (),
    "ObservationCheck": ("steps",), "FrameStackObservation": ("obs_queue",),
    "AtariPreprocessing": ("obs_buffer", "lives", "game_over"), "EpisodicLife": ("lives", "real_done"),
    "FireReset": (),
}


def _ale_handlers() -> tuple[Any, Any]:
    from rlkit.envs.atari import ale_state, load_ale_state

    return ale_state, load_ale_state


# Base envs whose state is captured by a function pair (the emulator's own serialisation).
_STATE_HANDLERS = {"AtariEnv": _ale_handlers}
_SUPPORTED_STATE = (
    "classic-control envs (CartPole, Acrobot, MountainCar, MountainCarContinuous, Pendulum) and ale-py's "
    "Atari envs, wrapped only by TimeLimit/OrderEnforcing/PassiveEnvChecker/FrameStackObservation/"
    "AtariPreprocessing/EpisodicLife/FireReset, or an env defining state_dict()/load_state_dict(), in a "
    "SyncVectorEnv or the native CartPoleVectorEnv"
)


# -- values <-> torch.load(weights_only=True)-safe containers ------------------------------------
def encode(value: Any) -> Any:
    """Turns numpy values into tensors (tagged so :func:`decode` restores the exact type)."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(value.copy())}
    if isinstance(value, np.generic):
        return {"__npscalar__": torch.from_numpy(np.asarray(value).copy())}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, collections.deque):
        return {"__deque__": [encode(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    return value


def decode(value: Any) -> Any:
    """Inverse of :func:`encode`."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy().copy()
        if "__npscalar__" in value:
            return value["__npscalar__"].numpy()[()]
        if "__tuple__" in value:
            return tuple(decode(v) for v in value["__tuple__"])
        if "__deque__" in value:
            return collections.deque((decode(v) for v in value["__deque__"]), maxlen=value["maxlen"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def rng_state(rng: np.random.Generator | None) -> Any:
    """The bit-generator state of ``rng`` (``None`` when never created)."""
    return None if rng is None else encode(rng.bit_generator.state)


def make_rng(state: Any) -> np.random.Generator | None:
    """A generator restored from :func:`rng_state`."""
    if state is None:
        return None
    state = decode(state)
    rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
    rng.bit_generator.state = state
    return rng


def take_rows(batched: Any, mask: np.ndarray) -> Any:
    """The rows of a batched observation / info (dicts entry-wise) where ``mask`` is True."""
    if isinstance(batched, dict):
        return {k: take_rows(v, mask) for k, v in batched.items() if not k.startswith("_")}
    return np.asarray(batched)[mask]


def final_row(info: dict, i: int | np.integer) -> tuple[Any, dict]:
    """Sub-env ``i``'s true final observation and info in SAME_STEP mode, as batches of one."""
    obs = info["final_obs"][i]
    obs = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict) else np.asarray(obs)[None]
    final = info.get("final_info", {})
    row_info = {keys.ACTION_MASK: np.asarray(final[keys.ACTION_MASK][i])[None]} if keys.ACTION_MASK in final else {}
    return obs, row_info


# -- one (wrapped) gymnasium env ------------------------------------------------------------------
def _wrapper_chain(env: gym.Env) -> list[gym.Env]:
    chain: list[gym.Env] = []
    while isinstance(env, gym.Wrapper):
        chain.append(env)
        env = env.env
    return chain


class _StatefulEnv(Protocol):
    """An env that captures its own state (what :func:`_unwrapped_state_attrs` answers None for)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


def _unwrapped_state_attrs(base: gym.Env, env_name: str) -> tuple[str, ...] | None:
    if callable(getattr(base, "state_dict", None)) and callable(getattr(base, "load_state_dict", None)):
        return None
    attrs = _CLASSIC_CONTROL_STATE.get(type(base).__name__)
    if attrs is None:
        raise ValueError(
            f"cannot capture the state of env {env_name!r} ({type(base).__name__}); "
            f"supported: {_SUPPORTED_STATE}"
        )
    return attrs


def env_state_dict(env: gym.Env, env_name: str) -> dict:
    """Everything needed to continue ``env``'s exact trajectory (see module docstring)."""
    wrappers = []
    for wrapper in _wrapper_chain(env):
        attrs = _WRAPPER_STATE.get(type(wrapper).__name__)
        if attrs is None:
            raise ValueError(
                f"cannot capture the state of env {env_name!r}: wrapper {type(wrapper).__name__} is not "
                f"supported; supported: {_SUPPORTED_STATE}"
            )
        wrappers.append({a: encode(getattr(wrapper, a)) for a in attrs})
    base = env.unwrapped
    handler = _STATE_HANDLERS.get(type(base).__name__)
    attrs = None if handler else _unwrapped_state_attrs(base, env_name)
    if handler:
        custom = encode(handler()[0](base))
    elif attrs is None:
        custom = cast(_StatefulEnv, base).state_dict()
    else:
        custom = {a: encode(getattr(base, a)) for a in attrs}
    return {
        "wrappers": wrappers,
        "env": custom,
        "np_random": rng_state(base._np_random),
        "np_random_seed": base._np_random_seed,
    }


def load_env_state_dict(env: gym.Env, state: dict, env_name: str) -> None:
    """Inverse of :func:`env_state_dict` (``env`` must be built the same way)."""
    chain = _wrapper_chain(env)
    if len(chain) != len(state["wrappers"]):
        raise ValueError(
            f"state of env {env_name!r} has {len(state['wrappers'])} wrappers, the env has {len(chain)}"
        )
    for wrapper, saved in zip(chain, state["wrappers"]):
        for attr, value in saved.items():
            setattr(wrapper, attr, decode(value))
    base = env.unwrapped
    handler = _STATE_HANDLERS.get(type(base).__name__)
    if handler:
        handler()[1](base, decode(state["env"]))
    elif _unwrapped_state_attrs(base, env_name) is None:
        cast(_StatefulEnv, base).load_state_dict(state["env"])
    else:
        for attr, value in state["env"].items():
            setattr(base, attr, decode(value))
    base._np_random = make_rng(state["np_random"])
    base._np_random_seed = state["np_random_seed"]


#: One step of every sub-env: ``(observation, reward, terminated, truncated, done, any_done, info)``,
#: the batched observation and info as the env gave them (the codec converts them), reward float32
#: ``[N]``, the flags bool ``[N]``, and whether any sub-env is done. A plain tuple: made every step.
BackendStep = tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool, dict]


# -- vector envs -----------------------------------------------------------------------------------
class VectorBackend:
    """Partial resets and state capture for one vector env (SyncVectorEnv / AsyncVectorEnv)."""

    def __init__(self, vec: gym.vector.VectorEnv, env_name: str) -> None:
        self.vec = vec
        self.env_name = env_name
        mode = vec.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        self.autoreset_mode = mode if isinstance(mode, AutoresetMode) else AutoresetMode(mode)

    def step(self, actions: np.ndarray | list[int]) -> BackendStep:
        """One step of every sub-env with the (gymnasium-encoded) ``actions``."""
        obs, reward, terminated, truncated, info = self.vec.step(np.asarray(actions))
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        done = terminated | truncated
        reward = np.asarray(reward, dtype=np.float32).reshape(self.vec.num_envs)
        return obs, reward, terminated, truncated, done, bool(done.any()), info

    def partial_reset(self, mask: np.ndarray) -> tuple[Any, dict]:
        """Resets the sub-envs where ``mask`` is True; returns their observations and info, batched
        (one row per True entry, in sub-env order)."""
        obs, info = self.vec.reset(options={"reset_mask": mask.copy()})
        return take_rows(obs, mask), take_rows(info, mask)

    def state_dict(self) -> dict:
        raise ValueError(
            f"cannot capture the state of env {self.env_name!r} ({type(self.vec).__name__}); "
            f"supported: {_SUPPORTED_STATE}"
        )

    def load_state_dict(self, state: dict) -> None:
        self.state_dict()  # raises the same clear error


class SyncBackend(VectorBackend):
    """A :class:`gymnasium.vector.SyncVectorEnv`: every sub-env is a plain env in this process."""

    vec: SyncVectorEnv  # make_backend builds this backend for SyncVectorEnvs only

    def state_dict(self) -> dict:
        vec = self.vec
        return {
            "kind": "sync",
            "envs": [env_state_dict(env, self.env_name) for env in vec.envs],
            "autoreset_envs": torch.from_numpy(vec._autoreset_envs.copy()),
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "sync" or len(state["envs"]) != self.vec.num_envs:
            raise ValueError(
                f"state does not match a SyncVectorEnv of {self.vec.num_envs} copies of {self.env_name!r}"
            )
        for env, saved in zip(self.vec.envs, state["envs"]):
            load_env_state_dict(env, saved, self.env_name)
        self.vec._autoreset_envs = state["autoreset_envs"].numpy().copy()


class CartPoleNativeBackend(VectorBackend):
    """The native (numpy-batched) ``CartPoleVectorEnv``, which only autoresets on the NEXT step.

    Its ``reset`` resets every sub-env, so a partial reset performs here exactly what its next
    ``step`` would do to the finished sub-envs (same random draw, same order), without the fake step.
    """

    vec: CartPoleVectorEnv  # make_backend builds this backend for CartPoleVectorEnvs only

    def partial_reset(self, mask: np.ndarray) -> tuple[Any, dict]:
        vec = self.vec
        # gymnasium's CartPoleVectorEnv sets ``self.state = None`` in __init__ without an annotation,
        # so mypy types the attribute as None; it holds the [4, N] state array once reset.
        vec.state[:, mask] = vec.np_random.uniform(  # type: ignore[index]
            low=vec.low, high=vec.high, size=(4, int(mask.sum())))
        vec.steps[mask] = 0
        vec.prev_done[mask] = False
        return vec.state[:, mask].T.astype(np.float32), {}  # type: ignore[index]  # (as above)

    def state_dict(self) -> dict:
        vec = self.vec
        return {
            "kind": "cartpole_native",
            "state": encode(vec.state),
            "steps": encode(vec.steps),
            "prev_done": encode(vec.prev_done),
            "low": encode(vec.low),
            "high": encode(vec.high),
            "steps_beyond_terminated": encode(vec.steps_beyond_terminated),
            "np_random": rng_state(vec._np_random),
            "np_random_seed": vec._np_random_seed,
        }

    def load_state_dict(self, state: dict) -> None:
        if state.get("kind") != "cartpole_native" or state["steps"]["__ndarray__"].numel() != self.vec.num_envs:
            raise ValueError(f"state does not match a native CartPoleVectorEnv of {self.vec.num_envs} envs")
        vec = self.vec
        for attr in ("state", "steps", "prev_done", "low", "high", "steps_beyond_terminated"):
            setattr(vec, attr, decode(state[attr]))
        vec._np_random = make_rng(state["np_random"])
        vec._np_random_seed = state["np_random_seed"]


def make_backend(vec: gym.vector.VectorEnv, env_name: str) -> VectorBackend:
    """The backend for ``vec``; raises when rlkit cannot reset its sub-envs one at a time."""
    if isinstance(vec, CartPoleVectorEnv):  # not through vector wrappers: their bookkeeping would break
        return CartPoleNativeBackend(vec, env_name)
    if isinstance(vec, SyncVectorEnv):
        return SyncBackend(vec, env_name)
    backend = VectorBackend(vec, env_name)
    if (isinstance(vec, AsyncVectorEnv) and backend.autoreset_mode == AutoresetMode.NEXT_STEP
            and not getattr(vec, "shared_memory", True)):
        # gymnasium's worker clears its pending autoreset on a reset only with shared memory: without
        # it, a sub-env reset by rlkit would be reset again at its next step (a fake transition).
        raise ValueError(
            f"cannot reset single sub-envs of AsyncVectorEnv(shared_memory=False) (env {env_name!r}) in "
            "autoreset mode NEXT_STEP; use shared_memory=True, or autoreset mode DISABLED or SAME_STEP"
        )
    if backend.autoreset_mode != AutoresetMode.SAME_STEP and not isinstance(vec, AsyncVectorEnv):
        raise ValueError(
            f"cannot reset single sub-envs of {type(vec).__name__} (env {env_name!r}) in autoreset mode "
            f"{backend.autoreset_mode.name}; use vectorization='sync', SAME_STEP autoreset, or one of "
            "SyncVectorEnv, AsyncVectorEnv, CartPoleVectorEnv"
        )
    return backend
