"""Gymnasium spaces -> rlkit specs, and the numpy <-> torch conversions that go with them.

The specs are derived from the environment's spaces so that no shape is ever written in a config:

==========================  ==============================================================
gymnasium space             rlkit spec
==========================  ==============================================================
``Discrete(n)``             ``Categorical(n)`` (``action_encoding="categorical"``) or ``OneHot(n)``
``MultiDiscrete(nvec)``     ``MultiOneHot(nvec)`` (one-hot groups, concatenated)
``MultiBinary(n)``          ``Binary(n)``
``Box(low, high, shape)``   ``Bounded(low, high, shape)`` (float32 actions; observations keep
                            the space's dtype: uint8 pixels stay uint8)
==========================  ==============================================================

Observations may be a ``Box`` of any rank (passed through with their dtype), a ``Discrete(n)``
(encoded one-hot as float32 ``[n]``) or a ``Dict`` with an ``"observation"`` entry of those kinds
and an optional ``"action_mask"`` entry. Box actions are clipped to their bounds when stepping (a
policy's sample may leave them; the stored action stays the sample).
"""
from __future__ import annotations

from typing import Any, Literal, cast

import numpy as np
import torch
from gymnasium import spaces

from rlkit import keys
from rlkit.data import (
    Binary,
    Bounded,
    Categorical,
    Composite,
    MultiOneHot,
    OneHot,
    TensorSpec,
)

ActionEncoding = Literal["categorical", "one-hot"]
ACTION_ENCODINGS = ("categorical", "one-hot")
SUPPORTED_ACTION_SPACES = "Discrete, MultiDiscrete (1-D), MultiBinary (1-D), Box"
SUPPORTED_OBSERVATION_SPACES = (
    "Box, Discrete, or Dict with an 'observation' entry (Box or Discrete) and an optional "
    "'action_mask' entry"
)


def describe_spec(spec: TensorSpec) -> str:
    """A short description of an action spec's domain, for error messages."""
    if isinstance(spec, (Categorical, OneHot)):
        return f"{type(spec).__name__}(n={spec.n})"
    if isinstance(spec, MultiOneHot):
        return f"MultiOneHot(nvec={spec.nvec})"
    if isinstance(spec, Bounded):
        return f"Bounded(low={spec.low.tolist()}, high={spec.high.tolist()})"
    return repr(spec)


def _box_spec(space: spaces.Box, keep_dtype: bool = False) -> Bounded:
    """The spec of a Box: float32, or (``keep_dtype``: observations) the space's own dtype."""
    dtype = np.dtype(space.dtype) if keep_dtype else np.dtype(np.float32)
    return Bounded(
        torch.as_tensor(np.asarray(space.low, dtype=dtype)),
        torch.as_tensor(np.asarray(space.high, dtype=dtype)),
        tuple(space.shape),
        dtype=torch.from_numpy(np.zeros((), dtype=dtype)).dtype,
    )


def _mask_width(space: spaces.Space) -> int:
    if isinstance(space, spaces.MultiBinary) and len(space.shape) == 1:
        return int(space.shape[0])
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        return int(space.shape[0])
    raise TypeError(
        f"unsupported 'action_mask' space {space}: expected a 1-D MultiBinary or Box of 0/1 values"
    )


class SpaceCodec:
    """Converts between one gymnasium env's spaces and rlkit tensors.

    Args:
        observation_space: the observation space of ONE sub-environment.
        action_space: the action space of ONE sub-environment.
        action_encoding: how ``Discrete`` actions are written in the TensorDict.
        env_name: used in error messages.

    Examples:
        >>> import torch
        >>> from gymnasium import spaces
        >>> from rlkit.envs.spaces import SpaceCodec
        >>> codec = SpaceCodec(spaces.Box(-1, 1, (3,)), spaces.Discrete(2, start=1), "one-hot", "demo")
        >>> codec.action_spec
        OneHot(shape=(2,), dtype=torch.int64)
        >>> codec.encode_action(torch.tensor([[0, 1], [1, 0]]))
        (array([2, 1]), True)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        action_encoding: ActionEncoding,
        env_name: str,
    ) -> None:
        if action_encoding not in ACTION_ENCODINGS:
            raise ValueError(
                f"unknown action_encoding {action_encoding!r}; valid choices: {list(ACTION_ENCODINGS)}"
            )
        self.env_name = env_name
        self.action_space = action_space
        self.action_encoding = action_encoding
        self.obs_is_dict = isinstance(observation_space, spaces.Dict)
        if isinstance(observation_space, spaces.Dict):  # self.obs_is_dict, spelled out to narrow the type
            extra = sorted(set(observation_space.spaces) - {keys.OBSERVATION, keys.ACTION_MASK})
            if keys.OBSERVATION not in observation_space.spaces or extra:
                raise ValueError(
                    f"unsupported Dict observation space with keys {sorted(observation_space.spaces)} "
                    f"for env {env_name!r}; supported observation spaces: {SUPPORTED_OBSERVATION_SPACES}"
                )
            inner = observation_space[keys.OBSERVATION]
            self.mask_in_obs = keys.ACTION_MASK in observation_space.spaces
            mask_width = _mask_width(observation_space[keys.ACTION_MASK]) if self.mask_in_obs else None
        else:
            inner = observation_space
            self.mask_in_obs = False
            mask_width = None
        if isinstance(inner, spaces.Box):
            self.obs_onehot = None
            obs_spec: TensorSpec = _box_spec(inner, keep_dtype=True)
        elif isinstance(inner, spaces.Discrete):
            self.obs_onehot = (int(inner.n), int(inner.start))
            obs_spec = Bounded(0.0, 1.0, (int(inner.n),))
        else:
            raise TypeError(
                f"unsupported observation space {inner} for env {env_name!r}; "
                f"supported observation spaces: {SUPPORTED_OBSERVATION_SPACES}"
            )
        self.observation_spec = Composite(observation=obs_spec)
        #: The numpy dtype and per-sub-env shape every observation must have (checked at each step).
        self.obs_dtype = np.dtype(np.float32) if self.obs_onehot is not None else np.dtype(inner.dtype)
        self.obs_shape: tuple[int, ...] = tuple(obs_spec.shape)
        self.mask_width = mask_width
        self.mask_in_info = False
        self.action_spec = self._action_spec(action_space)
        #: Actions are plain integer indices (a ``Categorical`` spec of shape ``()`` without a fixed
        #: mask), in ``range(num_actions)``: what the hot path of action checks tests.
        spec = self.action_spec
        self.index_actions = type(spec) is Categorical and spec.shape == () and spec.mask is None
        self.num_actions: int = spec.n if isinstance(spec, (Categorical, OneHot)) else 0
        if self.mask_in_obs:
            self._add_mask_spec()

    # -- specs -----------------------------------------------------------------------------------
    #: What gymnasium adds to an index action (``Discrete(n, start=...)``, per group of a MultiDiscrete).
    action_start: Any = 0

    def _action_spec(self, space: spaces.Space) -> TensorSpec:
        if isinstance(space, spaces.Discrete):
            self.action_start = int(space.start)
            if self.action_encoding == "one-hot":
                return OneHot(int(space.n))
            return Categorical(int(space.n))
        if isinstance(space, spaces.MultiDiscrete) and space.nvec.ndim == 1:
            self.action_start = np.asarray(space.start, dtype=np.int64)
            return MultiOneHot([int(n) for n in space.nvec])
        if isinstance(space, spaces.MultiBinary) and len(space.shape) == 1:
            return Binary(int(space.shape[0]))
        if isinstance(space, spaces.Box):
            return _box_spec(space)
        raise TypeError(
            f"unsupported action space {space} for env {self.env_name!r}; "
            f"supported action spaces: {SUPPORTED_ACTION_SPACES}"
        )

    def _add_mask_spec(self) -> None:
        if not isinstance(self.action_spec, (Categorical, OneHot)):
            raise TypeError(
                f"env {self.env_name!r} provides an action mask, which needs a Discrete action space; "
                f"got {self.action_space}"
            )
        if self.mask_width is not None and self.mask_width != self.action_spec.n:
            raise ValueError(
                f"env {self.env_name!r}: action mask has {self.mask_width} entries but there are "
                f"{self.action_spec.n} actions"
            )
        self.observation_spec[keys.ACTION_MASK] = Binary(self.action_spec.n, dtype=torch.bool)

    def enable_info_mask(self) -> None:
        """Records that the env reports its action mask in ``info["action_mask"]``."""
        if not self.mask_in_obs and not self.mask_in_info:
            self.mask_in_info = True
            self._add_mask_spec()

    @property
    def has_mask(self) -> bool:
        return self.mask_in_obs or self.mask_in_info

    # -- observations ----------------------------------------------------------------------------
    def split_obs(self, obs: Any, info: dict) -> tuple[np.ndarray, np.ndarray | None]:
        """A batched gymnasium observation -> (observation array, bool mask array or None)."""
        if self.obs_is_dict:
            mask = np.asarray(obs[keys.ACTION_MASK]).astype(bool) if self.mask_in_obs else None
            obs = obs[keys.OBSERVATION]
        else:
            mask = None
        if self.mask_in_info:
            mask = np.asarray(info[keys.ACTION_MASK]).astype(bool)
        return np.asarray(obs), mask

    def observe(self, obs: Any, info: dict) -> tuple[np.ndarray, np.ndarray | None]:
        """A batched gymnasium observation -> (array ``[N, *obs_shape]`` of the space's dtype
        (float32 one-hot for Discrete), bool mask array or None). Always a fresh array: vector envs
        may reuse their output buffers (``SyncVectorEnv(copy=False)``)."""
        if not self.obs_is_dict and not self.mask_in_info and self.obs_onehot is None:
            return np.array(obs), None  # the common case, one call
        obs, mask = self.split_obs(obs, info)
        if self.obs_onehot is not None:
            n, start = self.obs_onehot
            return np.eye(n, dtype=np.float32)[obs.astype(np.int64) - start], mask
        return np.array(obs), mask

    # -- actions ---------------------------------------------------------------------------------
    def encode_action(self, action: torch.Tensor) -> tuple[np.ndarray, bool]:
        """An rlkit action ``[N, *action_shape]`` -> (the batched gymnasium action, whether the
        action lies in the action spec)."""
        spec = self.action_spec
        action = action.detach()
        if type(spec) is Categorical and not action.is_floating_point() and action.dtype != torch.bool:
            # the hot path: integer indices, range-checked on the numpy copy
            encoded = action.cpu().numpy().astype(np.int64, copy=False)
            if encoded.size <= 32:  # Python's min/max on a short list beat numpy's reductions
                values = encoded.tolist()
                ok = min(values) >= 0 and max(values) < spec.n
            else:  # one reduction: negative values wrap around to huge unsigned ones
                ok = bool((encoded.astype(np.uint64) < spec.n).all())
            return (encoded + self.action_start if self.action_start else encoded), ok
        if isinstance(spec, Bounded):
            # Continuous actions are clipped to the bounds when stepping (as stable-baselines3
            # does); the policy's sample is what the caller stores. Only NaN is refused.
            encoded = action.detach().cpu().numpy()
            low, high = self.action_space.low, self.action_space.high  # type: ignore[attr-defined]
            dtype = cast(np.dtype, self.action_space.dtype)
            if dtype.kind in "iu" and encoded.dtype.kind == "f":
                # An integer Box takes the nearest integer (a cast would truncate toward zero), clipped
                # to the bounds before the cast; a bound beyond float64's exact integers (int64's
                # largest, the bound of an unbounded int64 Box) is set after it.
                ok = not bool(np.isnan(encoded).any())
                values = np.clip(np.rint(encoded.astype(np.float64)), low, high)
                out = values.astype(dtype)
                top = np.iinfo(dtype).max
                out[values >= float(top)] = top
                return out, ok
            encoded = encoded.astype(dtype)
            return np.clip(encoded, low, high), not bool(np.isnan(encoded).any())
        ok = spec.is_in(action)
        if isinstance(spec, OneHot):
            encoded = spec.to_index(action).cpu().numpy() + self.action_start
        elif isinstance(spec, Categorical):
            encoded = action.cpu().numpy().astype(np.int64) + self.action_start
        elif isinstance(spec, MultiOneHot):
            index = torch.stack([g.argmax(-1) for g in action.split(spec.nvec, -1)], -1)
            encoded = index.cpu().numpy() + self.action_start
        else:
            encoded = action.cpu().numpy().astype(self.action_space.dtype)
        return encoded, ok

    def action_indices(self, action: torch.Tensor) -> torch.Tensor:
        """Discrete action indices ``[N]`` (for checking them against an action mask)."""
        if isinstance(self.action_spec, OneHot):
            return self.action_spec.to_index(action)
        return action.long()
