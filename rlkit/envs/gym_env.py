"""A gymnasium (vector) env seen as TensorDicts of batch size ``[num_envs]``."""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from tensordict import TensorDict

from rlkit import keys
from rlkit.data import Categorical, Composite, OneHot, TensorSpec, Unbounded
from rlkit.envs.backends import final_row, make_backend, make_rng, rng_state
from rlkit.envs.checks import all_finite, check_action, check_finite, check_some_action_allowed
from rlkit.envs.make import Vectorization, make_vector_env
from rlkit.envs.single import GAME_OVER, SingleBackend, SingleEnv
from rlkit.envs.spaces import ActionEncoding, SpaceCodec, describe_spec
from rlkit.envs.transforms import EnvTransform, TransformStep
from rlkit.utils.devices import device_problem

if TYPE_CHECKING:
    from typing_extensions import Self


class StepResult(NamedTuple):
    """One vector step, as numpy arrays (the policy's next input as tensors).

    ``next_observation`` is the TRUE next observation (the final one for finished sub-envs);
    ``observation`` / ``action_mask`` are what the policy acts on next (reset values for finished
    sub-envs). Reward is float32 ``[N]``, flags bool ``[N]``; ``reward`` and the observations are
    the env's transforms' outputs (see :mod:`rlkit.envs.transforms`), ``raw_reward`` the env's own
    reward (what reported returns add up). ``episode_end`` is where reported episodes end: ``done``
    itself, except under a wrapper that ends learning episodes inside a game (Atari's loss of a life,
    :class:`rlkit.envs.atari.EpisodicLife`), where it is the game's end (``info["game_over"]``).
    """

    next_observation: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    done: np.ndarray
    next_action_mask: np.ndarray | None
    observation: torch.Tensor
    action_mask: torch.Tensor | None
    raw_reward: np.ndarray
    episode_end: np.ndarray


def _check_device(device: torch.device | str | None) -> None:
    problem = None if device is None else device_problem(device)
    if problem is not None:
        raise ValueError(f"GymEnv: {problem}")


class GymEnv:
    """A gymnasium env (vectorised) producing TensorDicts with batch size ``[num_envs]``.

    ``reset`` gives ``"observation"`` (float32) and ``"action_mask"`` (bool ``[N, A]``) when the env
    provides one (a Dict observation entry or ``info["action_mask"]``). ``step(td)`` reads
    ``"action"`` and adds ``("next", "observation" | "reward" | "terminated" | "truncated" |
    "done")`` (reward float32, flags bool, both ``[N, 1]``). A finished episode's
    ``("next", "observation")`` is its true final observation; the sub-env is reset at once and
    :meth:`next_state` gives the reset observation for the policy's next action. No fake transition
    of gymnasium's autoreset step ever appears. The env is reset on construction (with ``seed``);
    the first ``reset()`` without a seed returns that initial observation.

    Args:
        env_id: a registered gymnasium id (``"module:Id-v0"`` imports ``module`` first).
        num_envs: number of sub-environments.
        seed: seeds the sub-envs (``seed + i`` for sub-env ``i`` when synchronous; a native vector
            env seeds its one generator with it, so a sub-env's episodes depend on ``num_envs``) and the action
            space; the same seed gives the same trajectories.
        vectorization: ``"native"`` (gymnasium's batched implementation, e.g. CartPole),
            ``"sync"`` (a loop over copies) or ``"auto"`` (native where one exists).
        action_encoding: ``Discrete`` actions as integer indices or one-hot vectors.
        device: device of the produced tensors (default: CPU).
        make_kwargs: keyword arguments of the env constructor (e.g. ``max_episode_steps``).

    Examples:
        >>> import torch
        >>> from rlkit.envs import GymEnv
        >>> env = GymEnv("CartPole-v1", num_envs=2, seed=0)
        >>> td = env.reset()
        >>> td["action"] = env.action_spec.rand((2,))
        >>> td = env.step(td)
        >>> td["next", "reward"].shape, td["next", "done"].dtype
        (torch.Size([2, 1]), torch.bool)
        >>> env.next_state(td)["observation"].shape
        torch.Size([2, 4])
        >>> env.close()
    """

    def __init__(
        self,
        env_id: str,
        *,
        num_envs: int = 1,
        seed: int | None = None,
        vectorization: Vectorization = "auto",
        action_encoding: ActionEncoding = "categorical",
        device: torch.device | str | None = None,
        make_kwargs: dict[str, Any] | None = None,
        wrappers: Sequence[Callable[[gym.Env], gym.Env]] = (),
        transforms: Sequence[EnvTransform] = (),
    ) -> None:
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        _check_device(device)  # (before the envs are made)
        vec, used = make_vector_env(env_id, num_envs, vectorization, dict(make_kwargs or {}), wrappers)
        self._transforms = list(transforms)
        self._setup(vec, env_id, seed, action_encoding, device, used)

    @classmethod
    def from_factory(
        cls,
        env_fn: Callable[[], gym.Env],
        num_envs: int = 1,
        *,
        seed: int | None = None,
        action_encoding: ActionEncoding = "categorical",
        device: torch.device | str | None = None,
        env_id: str | None = None,
        vectorization: Literal["sync", "single"] = "sync",
        transforms: Sequence[EnvTransform] = (),
    ) -> GymEnv:
        """Vectorises ``num_envs`` envs built by ``env_fn`` synchronously (e.g. custom test envs);
        ``vectorization="single"`` drives one env directly (``num_envs`` must be 1). ``transforms``
        apply to every step, in order (:mod:`rlkit.envs.transforms`)."""
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if vectorization not in ("sync", "single"):
            raise ValueError(f"unknown vectorization {vectorization!r} for from_factory; valid choices: ['sync', 'single']")
        _check_device(device)
        if vectorization == "single":
            if num_envs != 1:
                raise ValueError(f"vectorization='single' drives one env, got num_envs={num_envs}")
            vec: gym.vector.VectorEnv = SingleEnv(env_fn())
        else:
            vec = SyncVectorEnv([env_fn] * num_envs, copy=False, autoreset_mode=AutoresetMode.DISABLED)
        self = cls.__new__(cls)
        self._transforms = list(transforms)
        self._setup(vec, env_id, seed, action_encoding, device, vectorization)
        return self

    @classmethod
    def from_vector_env(
        cls,
        vec_env: gym.vector.VectorEnv,
        *,
        seed: int | None = None,
        action_encoding: ActionEncoding = "categorical",
        device: torch.device | str | None = None,
        env_id: str | None = None,
    ) -> GymEnv:
        """Wraps an already-built gymnasium vector env (any autoreset mode)."""
        if not isinstance(vec_env, gym.vector.VectorEnv):
            raise TypeError(f"expected a gymnasium.vector.VectorEnv, got {type(vec_env).__name__}")
        self = cls.__new__(cls)
        self._setup(vec_env, env_id, seed, action_encoding, device, "custom")
        return self

    def _setup(self, vec, env_id, seed, action_encoding, device, vectorization) -> None:
        try:
            self._init(vec, env_id, seed, action_encoding, device, vectorization)
        except Exception:
            vec.close()  # do not leak sub-processes / windows when the env is rejected
            raise

    #: Vector transforms applied to every step, in order (see :mod:`rlkit.envs.transforms`).
    _transforms: list[EnvTransform] = []

    def _init(self, vec, env_id, seed, action_encoding, device, vectorization) -> None:
        if env_id is None:
            env_id = vec.spec.id if vec.spec is not None else type(vec).__name__
        self._vec = vec
        self._num_envs: int = vec.num_envs
        self._env_id = env_id
        self._vectorization = vectorization
        _check_device(device)
        self._device = torch.device(device) if device is not None else None
        # numpy arrays become CPU tensors without a copy; only other devices need a transfer.
        self._transfer = self._device if self._device is not None and self._device.type != "cpu" else None
        self._codec = SpaceCodec(vec.single_observation_space, vec.single_action_space, action_encoding, env_id)
        self._backend = SingleBackend(vec, env_id) if isinstance(vec, SingleEnv) else make_backend(vec, env_id)
        self._same_step = self._backend.autoreset_mode == AutoresetMode.SAME_STEP
        self._step_count = 0
        self._fresh = False
        self._seed = seed
        self._exact: bool | None = None  # found on first use (exact_state)
        self.reset(seed=seed)
        self._fresh = True

    # -- properties ------------------------------------------------------------------------------
    @property
    def env_id(self) -> str:
        return self._env_id

    @property
    def num_envs(self) -> int:
        return self._vec.num_envs

    @property
    def batch_size(self) -> torch.Size:
        return torch.Size([self.num_envs])

    @property
    def device(self) -> torch.device | None:
        return self._device

    @property
    def vectorization(self) -> str:
        """``"single"`` (one env driven directly), ``"native"``, ``"sync"`` (also :meth:`from_factory`)
        or ``"custom"`` (:meth:`from_vector_env`)."""
        return self._vectorization

    @property
    def observation_spec(self) -> Composite:
        spec = self._codec.observation_spec
        if not self._transforms:
            return spec
        obs = spec[keys.OBSERVATION]
        for transform in self._transforms:
            obs = transform.observation_spec(obs)
        return Composite(dict(spec.items()), shape=spec.shape, device=spec.device, **{keys.OBSERVATION: obs})

    @property
    def source_observation_spec(self) -> Composite:
        """The observations as the sub-envs give them, before the vector transforms (what a policy
        exported with its transforms folded in takes, :mod:`rlkit.exporter`)."""
        return self._codec.observation_spec

    @property
    def transforms(self) -> list[EnvTransform]:
        """The vector transforms, in the order they apply."""
        return list(self._transforms)

    @property
    def action_spec(self) -> TensorSpec:
        return self._codec.action_spec

    @property
    def reward_spec(self) -> TensorSpec:
        return Unbounded((1,))

    @property
    def step_count(self) -> int:
        """Number of vector steps taken since construction."""
        return self._step_count

    @property
    def vector_env(self) -> gym.vector.VectorEnv:
        """The underlying gymnasium vector env."""
        return self._vec

    # -- conversions -----------------------------------------------------------------------------
    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        return tensor if self._transfer is None else tensor.to(self._transfer)

    # -- reset / step ----------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> TensorDict:
        """Resets every sub-env; ``seed`` also seeds the action space."""
        if self._fresh and seed is None:
            self._fresh = False
            return self._current()
        obs, info = self._vec.reset(seed=seed)
        if seed is not None:
            self._vec.action_space.seed(seed)
            self._vec.single_action_space.seed(seed)
        if keys.ACTION_MASK in info:  # the spec is settled here, before any policy sees it
            self._codec.enable_info_mask()
        obs_np, mask_np = self._codec.observe(obs, info)
        check_finite(self._env_id, self._step_count, "observation", obs_np)
        for transform in self._transforms:
            obs_np = transform.reset(obs_np)
        self._obs = self._tensor(obs_np)
        if mask_np is not None:
            check_some_action_allowed(self._env_id, self._step_count, mask_np, "reset")
        self._mask = None if mask_np is None else self._tensor(mask_np)
        self._fresh = False
        return self._current()

    def _current(self) -> TensorDict:
        out = {keys.OBSERVATION: self._obs}
        if self._mask is not None:
            out[keys.ACTION_MASK] = self._mask
        return TensorDict(out, batch_size=self.batch_size, device=self._device)

    def advance(self, action: torch.Tensor) -> StepResult:
        """Steps every sub-env with ``action`` ``[N, *action_shape]``: the tensor-level step (what
        collectors and evaluators call), which :meth:`step` wraps in TensorDicts.

        Raises:
            ValueError: an action of the wrong shape, outside the action spec or masked out; a
                non-finite reward or observation (each names the env, the step and the sub-env).
        """
        encoded = check_action(self._codec, action, self._mask, self._num_envs, self._env_id, self._step_count + 1)
        self._fresh = False
        obs, reward, terminated, truncated, done, any_done, info = self._backend.step(encoded)
        self._step_count += 1
        now_np, now_mask = self._codec.observe(obs, info)
        if self._same_step:
            # `obs` already holds the reset observations; the true final ones are in info.
            next_np, next_mask = now_np.copy(), None if now_mask is None else now_mask.copy()
            for i in np.flatnonzero(done):
                row, row_mask = self._codec.observe(*final_row(info, i))
                next_np[i] = row[0]
                if next_mask is not None:
                    assert row_mask is not None  # the codec reads a mask from every observation or none
                    next_mask[i] = row_mask[0]
        else:
            next_np, next_mask = now_np, now_mask
            if any_done:
                reset_np, reset_mask = self._codec.observe(*self._backend.partial_reset(done))
                now_np = next_np.copy()
                now_np[done] = reset_np
                if now_mask is not None:
                    now_mask = now_mask.copy()  # (now_mask is next_mask here)
                    now_mask[done] = reset_mask
        # One cheap test for the common case; the detailed ones name the culprit.
        if not all_finite(reward, next_np):
            check_finite(self._env_id, self._step_count, "reward", reward.reshape(-1, 1))
            check_finite(self._env_id, self._step_count, "observation", next_np)
        if any_done and not all_finite(now_np):
            check_finite(self._env_id, self._step_count, "observation (after reset)", now_np)
        raw_reward = reward
        # Whether a finished learning episode ended its game (Atari's life-loss episodes): in SAME_STEP
        # mode a finished sub-env's own info is in "final_info" (the top level holds its reset's).
        game_over = None
        if any_done and isinstance(info, dict):
            game_over = (info.get("final_info") or {} if self._same_step else info).get(GAME_OVER)
        episode_end = done if game_over is None else done & (np.asarray(game_over, dtype=bool).reshape(-1) | truncated)
        if self._transforms:
            step = TransformStep(next_np, now_np, reward, done)
            for transform in self._transforms:
                step = transform.step(step)
            next_np, now_np, reward = step.next_observation, step.observation, step.reward
        obs_tensor = torch.from_numpy(now_np)
        self._obs = obs_tensor if self._transfer is None else obs_tensor.to(self._transfer)
        if now_mask is not None:  # (the mask of the next action: a finished episode's is its reset's)
            check_some_action_allowed(self._env_id, self._step_count, now_mask)
        self._mask = None if now_mask is None else self._tensor(now_mask)
        return StepResult(next_np, reward, terminated, truncated, done, next_mask, self._obs, self._mask, raw_reward,
                          episode_end)

    def step(self, td: TensorDict) -> TensorDict:
        """Reads ``td["action"]`` and writes the ``("next", ...)`` entries into ``td`` (returned)."""
        if keys.ACTION not in td:
            raise KeyError(f"step needs an 'action' entry; the TensorDict has keys {sorted(td.keys())}")
        res = self.advance(td.get(keys.ACTION))
        nxt = {
            keys.OBSERVATION: self._tensor(res.next_observation),
            keys.REWARD: self._tensor(res.reward[:, None]),
            # copies: a single env's flags are shared read-only arrays
            keys.TERMINATED: self._tensor(np.array(res.terminated)[:, None]),
            keys.TRUNCATED: self._tensor(np.array(res.truncated)[:, None]),
            keys.DONE: self._tensor(np.array(res.done)[:, None]),
        }
        if res.next_action_mask is not None:
            nxt[keys.ACTION_MASK] = self._tensor(res.next_action_mask)
        td.set(keys.NEXT, TensorDict(nxt, batch_size=self.batch_size, device=self._device))
        return td

    def next_state(self, td: TensorDict | None = None) -> TensorDict:
        """The policy's input after the latest :meth:`step` (whose output ``td`` is): its next
        observation for running sub-envs, the reset observation for those whose episode just ended."""
        return self._current()

    def next_state_tensors(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`next_state`'s ``"observation"`` and ``"action_mask"`` (``None`` without a mask),
        without building a TensorDict."""
        return self._obs, self._mask

    def rand_action(self) -> torch.Tensor:
        """A uniformly random action ``[N, *action_shape]`` among the currently allowed ones."""
        spec = self.action_spec
        if self._mask is not None:
            spec = copy.copy(spec)
            assert isinstance(spec, (Categorical, OneHot))  # only discrete action specs take a mask
            spec.update_mask(self._mask.cpu())
        action = spec.rand(self.batch_size)
        return action if self._transfer is None else action.to(self._transfer)

    # -- state -----------------------------------------------------------------------------------
    @property
    def exact_state(self) -> bool:
        """Whether :meth:`state_dict` captures the sub-envs' exact state (classic control, envs that
        define ``state_dict``). Otherwise (Box2D, most third-party envs) a loaded state restarts
        every sub-env's episode (see :meth:`load_state_dict`)."""
        if self._exact is None:
            try:
                self._backend.state_dict()
                self._exact = True
            except ValueError:
                self._exact = False
        return self._exact

    def state_dict(self) -> dict[str, Any]:
        """What is needed to continue the same trajectories (``torch.load(weights_only=True)``-safe).

        Without :attr:`exact_state` the sub-envs' own state is left out (``"vector": None``); the
        transforms' states are under ``"transforms"`` (only when the env has transforms)."""
        state = {
            "env_id": self._env_id,
            "num_envs": self.num_envs,
            "step_count": self._step_count,
            "fresh": self._fresh,
            keys.OBSERVATION: self._obs.detach().cpu().clone(),
            keys.ACTION_MASK: None if self._mask is None else self._mask.cpu().clone(),
            "vector": self._backend.state_dict() if self.exact_state else None,
            "action_space_rng": rng_state(self._vec.action_space._np_random),
            "single_action_space_rng": rng_state(self._vec.single_action_space._np_random),
        }
        if self._transforms:
            state["transforms"] = [transform.state_dict() for transform in self._transforms]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` into an env built the same way.

        A state saved without the sub-envs' own state (``"vector": None``) cannot continue their
        episodes: every sub-env is reset instead, with a seed derived from the env's seed and the
        saved step count (so the same checkpoint always restarts the same way), and
        :attr:`restarted` is set.
        """
        if state["num_envs"] != self.num_envs or state["env_id"] != self._env_id:
            raise ValueError(
                f"state of {state['num_envs']} x {state['env_id']!r} does not match this env "
                f"({self.num_envs} x {self._env_id!r})"
            )
        saved = state.get("transforms", [])
        if len(saved) != len(self._transforms):
            raise ValueError(f"state of env {self._env_id!r} has {len(saved)} transform state(s), the env has "
                             f"{len(self._transforms)} transform(s)")
        for transform, transform_state in zip(self._transforms, saved):
            transform.load_state_dict(transform_state)
        self._step_count = int(state["step_count"])
        if state["vector"] is None:
            entropy = [self._seed if self._seed is not None else 0, self._step_count]
            reseed = int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)
            self.reset(seed=reseed)
            self.restarted = True
        else:
            self._backend.load_state_dict(state["vector"])
            self._fresh = bool(state["fresh"])
            self._obs = state[keys.OBSERVATION].to(self._obs.device)
            self._mask = None if state[keys.ACTION_MASK] is None else state[keys.ACTION_MASK].to(self._obs.device)
            self.restarted = False
        self._vec.action_space._np_random = make_rng(state["action_space_rng"])
        self._vec.single_action_space._np_random = make_rng(state["single_action_space_rng"])

    #: Set by :meth:`load_state_dict`: whether the loaded state restarted every sub-env's episode.
    restarted: bool = False

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self._vec.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"GymEnv(env_id={self._env_id!r}, num_envs={self.num_envs}, vectorization={self._vectorization!r}, "
            f"action_spec={describe_spec(self.action_spec)})"
        )
