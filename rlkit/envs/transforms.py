"""Transforms of an env's observations and rewards, chosen in config (``env.transforms``).

Two kinds, declared in :data:`TRANSFORMS`:

- **sub-env wrappers**: gymnasium's own wrappers, applied to every sub-env where their semantics are
  the published ones (``time_limit``: ``TimeLimit``; ``frame_stack``: ``FrameStackObservation``);
- **vector transforms**: rlkit's :class:`EnvTransform` objects, applied by a
  :class:`~rlkit.envs.GymEnv` to all sub-envs at once, in order, after the wrappers
  (``normalize``: :class:`Normalize`, stable-baselines3's ``VecNormalize``; ``clip_reward``:
  :class:`ClipReward`). They hold their own state (``state_dict`` / ``load_state_dict``), saved in
  every checkpoint, and give a frozen view for evaluation (:meth:`EnvTransform.frozen`).

A transform changes the rewards the agent learns from, never the returns rlkit reports: the env
keeps the raw reward beside the transformed one (:attr:`~rlkit.envs.StepResult.raw_reward`).

Examples:
    >>> import numpy as np
    >>> from rlkit.envs.transforms import Normalize
    >>> norm = Normalize(gamma=0.99)
    >>> obs = norm.reset(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    >>> obs.dtype, obs.shape
    (dtype('float32'), (2, 2))
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from rlkit.data import Bounded, TensorSpec
from rlkit.utils.values import as_flag, as_real

__all__ = [
    "TRANSFORMS",
    "ClipReward",
    "EnvTransform",
    "Normalize",
    "ObservationNormalizer",
    "RunningMeanStd",
    "TransformStep",
    "build_transforms",
    "check_transforms",
]


class TransformStep(NamedTuple):
    """One vector step as the transforms see it (numpy arrays, one row per sub-env).

    ``next_observation`` is the true next observation (the final one where an episode ended),
    ``observation`` what the policy acts on next (the reset observation there)."""

    next_observation: np.ndarray
    observation: np.ndarray
    reward: np.ndarray
    done: np.ndarray


class EnvTransform:
    """A transform of every sub-env's steps (vector level), with state of its own.

    Subclasses override what they change; the defaults pass everything through.
    """

    #: Whether the transform rewrites observations (then a stacked observation's frames are not the
    #: frames of earlier steps, which frame replay relies on: :class:`~rlkit.data.frames.FrameStorage`).
    rewrites_observations: bool = False

    def observation_spec(self, spec: TensorSpec) -> TensorSpec:
        """The spec of the observations this transform outputs, given its input's."""
        return spec

    def reset(self, observation: np.ndarray) -> np.ndarray:
        """Observations ``[N, ...]`` of a reset of every sub-env."""
        return observation

    def step(self, step: TransformStep) -> TransformStep:
        """One step of every sub-env."""
        return step

    def frozen(self) -> EnvTransform:
        """The transform as an evaluation env applies it: the training statistics, never updated,
        and rewards left as the env gives them."""
        return self

    def observation_module(self) -> torch.nn.Module:
        """What the frozen transform does to a batch of observations ``[B, *shape]``, as a torch
        module (a snapshot of the current statistics): what exported policies apply inside
        (:mod:`rlkit.exporter`). The default passes observations through."""
        return torch.nn.Identity()

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class RunningMeanStd:
    """Running mean and variance (float64) of batches, merged as stable-baselines3 does (Chan et
    al.'s parallel algorithm), starting at mean 0, variance 1 and count ``epsilon``.

    Examples:
        >>> import numpy as np
        >>> from rlkit.envs.transforms import RunningMeanStd
        >>> rms = RunningMeanStd(shape=())
        >>> rms.update(np.array([1.0, 3.0]))
        >>> round(float(rms.mean), 4), round(float(rms.var), 4)  # the prior (count 1e-4) barely counts
        (1.9999, 1.0002)
    """

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-4) -> None:
        self.mean = np.zeros(shape, dtype=np.float64)
        self.var = np.ones(shape, dtype=np.float64)
        self.count = float(epsilon)

    def update(self, batch: np.ndarray) -> None:
        """Merges the statistics of ``batch`` (rows: samples). A float16 batch is widened first (its
        squares overflow past 65504: the variance became inf); float32 is taken as it is, as
        stable-baselines3 takes it (its batch statistics in float32, merged in float64)."""
        if batch.dtype.kind == "f" and batch.dtype.itemsize < 4:
            batch = batch.astype(np.float64)
        batch_mean, batch_var, batch_count = np.mean(batch, axis=0), np.var(batch, axis=0), batch.shape[0]
        delta = batch_mean - self.mean
        total = self.count + batch_count
        new_mean = self.mean + delta * batch_count / total
        m2 = self.var * self.count + batch_var * batch_count + np.square(delta) * self.count * batch_count / total
        self.mean, self.var, self.count = new_mean, m2 / total, total

    def state_dict(self) -> dict[str, Any]:
        return {"mean": torch.from_numpy(np.array(self.mean, dtype=np.float64)),
                "var": torch.from_numpy(np.array(self.var, dtype=np.float64)), "count": float(self.count)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        mean, var = state["mean"].numpy(), state["var"].numpy()
        if mean.shape != self.mean.shape:
            raise ValueError(f"running statistics of shape {mean.shape}, this transform's are {self.mean.shape}")
        self.mean, self.var, self.count = mean.copy(), var.copy(), float(state["count"])


class Normalize(EnvTransform):
    """Observation and reward normalisation with stable-baselines3 ``VecNormalize``'s semantics.

    - Observations: ``clip((obs - mean) / sqrt(var + epsilon), -clip_observation, clip_observation)``
      as float32, with the running statistics of every observation the policy gets (the step's,
      which for a finished sub-env is its reset observation), updated before normalising; a
      finished episode's final observation is normalised with the same statistics, without
      updating them.
    - Rewards: divided by the standard deviation of the discounted return ``ret = ret * gamma + r``
      (its running variance, updated with every step's ``ret``), no mean subtraction, clipped to
      ``clip_reward``; ``ret`` is zeroed where an episode ended (terminated or truncated).
    - Statistics: float64, mean 0, variance 1 and count 1e-4 to start with, merged per batch of
      sub-envs.

    gymnasium's own ``NormalizeObservation`` / ``NormalizeReward`` differ: float32 statistics per
    sub-env wrapper, no clipping of observations, and the return reset on termination only.

    Args:
        gamma: the discount of the returns (rlkit passes the value estimator's).
        observation: normalise observations.
        reward: normalise rewards.
        clip_observation: bound of normalised observations.
        clip_reward: bound of normalised rewards.
        epsilon: added to the variances under the square roots.
    """

    def __init__(self, gamma: float, *, observation: bool = True, reward: bool = True,
                 clip_observation: float = 10.0, clip_reward: float = 10.0, epsilon: float = 1e-8) -> None:
        _check_arguments("Normalize", {
            "gamma": (gamma, lambda v: _number(v) and 0 <= v <= 1, "a number in [0, 1]"),
            "observation": (observation, _flag, "True or False"), "reward": (reward, _flag, "True or False"),
            "clip_observation": (clip_observation, _positive, "a finite number > 0"),
            "clip_reward": (clip_reward, _positive, "a finite number > 0"),
            "epsilon": (epsilon, _positive, "a finite number > 0")})
        self.gamma = float(gamma)
        self.normalize_observation, self.normalize_reward = bool(observation), bool(reward)
        self.clip_observation, self.clip_reward, self.epsilon = float(clip_observation), float(clip_reward), epsilon
        self.obs_rms: RunningMeanStd | None = None  # shaped by the first observations
        self.ret_rms = RunningMeanStd(())
        self.returns: np.ndarray | None = None  # per sub-env, set at the first reset
        self.training = True
        self.rewrites_observations = bool(observation)

    def observation_spec(self, spec: TensorSpec) -> TensorSpec:
        if not self.normalize_observation:
            return spec
        c = self.clip_observation
        return Bounded(-c, c, tuple(spec.shape), dtype=torch.float32)

    def _obs(self, observation: np.ndarray) -> np.ndarray:
        if not self.normalize_observation:
            return observation
        assert self.obs_rms is not None  # made by reset()
        scaled = (observation - self.obs_rms.mean) / np.sqrt(self.obs_rms.var + self.epsilon)
        return np.clip(scaled, -self.clip_observation, self.clip_observation).astype(np.float32)

    def reset(self, observation: np.ndarray) -> np.ndarray:
        if self.obs_rms is None:
            self.obs_rms = RunningMeanStd(tuple(observation.shape[1:]))
        if self.training:
            self.returns = np.zeros(observation.shape[0])
        if self.training and self.normalize_observation:
            self.obs_rms.update(observation)
        return self._obs(observation)

    def step(self, step: TransformStep) -> TransformStep:
        next_obs, obs, reward, done = step
        if self.training and self.normalize_observation:
            assert self.obs_rms is not None
            self.obs_rms.update(obs)
        if self.training:
            assert self.returns is not None  # reset() ran when the env was built
            self.returns = self.returns * self.gamma + reward
            self.ret_rms.update(self.returns)
        if self.normalize_reward and self.training:
            reward = np.clip(reward / np.sqrt(self.ret_rms.var + self.epsilon), -self.clip_reward,
                             self.clip_reward).astype(np.float32)
        if self.training:
            assert self.returns is not None
            self.returns[done] = 0.0
        return TransformStep(self._obs(next_obs), self._obs(obs), reward, done)

    def observation_module(self) -> torch.nn.Module:
        """The observation normalisation with the current statistics, as an
        :class:`ObservationNormalizer` (the same float64 arithmetic as :meth:`step`); the identity
        when observations are not normalised.

        Raises:
            ValueError: no statistics yet (the transform has seen no observation).
        """
        if not self.normalize_observation:
            return torch.nn.Identity()
        if self.obs_rms is None:
            raise ValueError("the normalisation has no statistics yet: it has seen no observation")
        return ObservationNormalizer(self.obs_rms.mean, self.obs_rms.var, epsilon=self.epsilon,
                                     clip=self.clip_observation)

    def frozen(self) -> Normalize:
        """A view that normalises observations with this transform's statistics, read live (so a
        view made before a resume sees the loaded ones) and never updated; rewards pass unchanged."""
        return _FrozenNormalize(self)

    def state_dict(self) -> dict[str, Any]:
        returns = None if self.returns is None else torch.from_numpy(self.returns.copy())
        obs_rms = None if self.obs_rms is None else self.obs_rms.state_dict()
        return {"obs_rms": obs_rms, "ret_rms": self.ret_rms.state_dict(), "returns": returns}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["obs_rms"] is not None:
            shape = tuple(state["obs_rms"]["mean"].shape)
            if self.obs_rms is None:
                self.obs_rms = RunningMeanStd(shape)
            self.obs_rms.load_state_dict(state["obs_rms"])
        self.ret_rms.load_state_dict(state["ret_rms"])
        self.returns = None if state["returns"] is None else state["returns"].numpy().copy()


class _FrozenNormalize(Normalize):
    """:meth:`Normalize.frozen`'s view: the source's statistics (looked up at each use), no updates,
    rewards unchanged; no state of its own."""

    def __init__(self, source: Normalize) -> None:
        super().__init__(source.gamma, observation=source.normalize_observation, reward=False,
                         clip_observation=source.clip_observation, clip_reward=source.clip_reward,
                         epsilon=source.epsilon)
        self.source = source
        self.training = False

    @property
    def obs_rms(self) -> RunningMeanStd | None:  # the source's, also after it loads a state
        return self.source.obs_rms

    @obs_rms.setter
    def obs_rms(self, value: RunningMeanStd | None) -> None:
        pass  # the statistics are the source's

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class ObservationNormalizer(torch.nn.Module):
    """Frozen observation normalisation as a torch module: ``clip((obs - mean) / sqrt(var +
    epsilon), -clip, clip)`` computed in float64 and returned as float32, the arithmetic of
    :class:`Normalize` (whose numpy code the env runs), so both give the same numbers. The
    statistics are buffers: exported policies (:mod:`rlkit.exporter`) carry them.

    Args:
        mean: running mean of the observations (shape of one observation).
        var: running variance, same shape.
        epsilon: added to the variance under the square root.
        clip: bound of the normalised values.

    Examples:
        >>> import numpy as np
        >>> import torch
        >>> from rlkit.envs.transforms import ObservationNormalizer
        >>> norm = ObservationNormalizer(np.array([1.0, 2.0]), np.array([4.0, 1.0]), epsilon=0.0, clip=10.0)
        >>> norm(torch.tensor([[3.0, 2.0]]))
        tensor([[1., 0.]])
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: np.ndarray | torch.Tensor, var: np.ndarray | torch.Tensor, *, epsilon: float,
                 clip: float) -> None:
        super().__init__()
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float64))
        var_t = torch.as_tensor(np.asarray(var, dtype=np.float64))
        if mean_t.shape != var_t.shape:
            raise ValueError(f"mean of shape {tuple(mean_t.shape)} and var of shape {tuple(var_t.shape)} differ")
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", torch.sqrt(var_t + epsilon))  # numpy's sqrt(var + eps), correctly rounded too
        self.clip = float(clip)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        scaled = (observation.to(torch.float64) - self.mean) / self.std
        return scaled.clamp(-self.clip, self.clip).to(torch.float32)


class ClipReward(EnvTransform):
    """Rewards clipped to ``[low, high]`` for learning (the reported returns stay raw).

    rlkit's own rather than gymnasium's ``ClipReward`` wrapper: the wrapper clips inside the env, so
    the returns rlkit reports (episodes, evaluations) would be clipped too.

    Examples:
        >>> import numpy as np
        >>> from rlkit.envs.transforms import ClipReward, TransformStep
        >>> clip = ClipReward(-1.0, 1.0)
        >>> step = clip.step(TransformStep(np.zeros((2, 1)), np.zeros((2, 1)), np.array([5.0, -0.5]), np.zeros(2, bool)))
        >>> step.reward.tolist()
        [1.0, -0.5]
    """

    def __init__(self, low: float = -1.0, high: float = 1.0) -> None:
        _check_arguments("ClipReward", {"low": (low, _bound, "a number (-inf: no lower bound)"),
                                        "high": (high, _bound, "a number (inf: no upper bound)")})
        if not low < high:
            raise ValueError(f"clip_reward needs low < high, got low={low} high={high}")
        self.low, self.high = float(low), float(high)

    def step(self, step: TransformStep) -> TransformStep:
        return step._replace(reward=np.clip(step.reward, self.low, self.high).astype(np.float32))

    def frozen(self) -> EnvTransform:
        """Evaluation leaves rewards as the env gives them."""
        return EnvTransform()


# -- the registry -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransformKind:
    """A transform name's entry: what it builds and which knobs it takes (its keyword arguments)."""

    build: Callable[..., Any]  # knobs -> a sub-env wrapper (env -> env), or (gamma, knobs) -> a vector transform
    wrapper: bool  # a gymnasium wrapper of each sub-env, else an rlkit vector transform
    doc: str
    #: knob -> (whether a value is valid, what is expected): checked by :func:`check_transforms`.
    limits: Mapping[str, tuple[Callable[[Any], bool], str]] = field(default_factory=dict)
    #: the knobs (as given, defaults left out) -> what is inconsistent among them, or None.
    consistent: Callable[[Mapping[str, Any]], str | None] | None = None
    #: whether it ends episodes (truncates them)
    ends_episodes: bool = False


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _positive(value: Any) -> bool:
    return _number(value) and value > 0


def _number(value: Any) -> bool:
    number = as_real(value)
    return number is not None and math.isfinite(number)


def _bound(value: Any) -> bool:
    """A clipping bound: a number, infinite for no bound on that side."""
    number = as_real(value)
    return number is not None and not math.isnan(number)


def _check_arguments(owner: str, arguments: Mapping[str, tuple[Any, Callable[[Any], bool], str]]) -> None:
    """Refuses the first argument (name -> (value, whether valid, what is expected)) that is not valid,
    naming it, its value and what it takes."""
    for name, (value, valid, expected) in arguments.items():
        if not valid(value):
            raise ValueError(f"{owner}: {name}={value!r} is invalid; expected {expected}")


def _flag(value: Any) -> bool:
    return as_flag(value) is not None


class TimeLimitWrapper:
    """Wraps a sub-env in gymnasium's ``TimeLimit(max_episode_steps)``; the limit it declares lets
    :func:`rlkit.envs.make.make_vector_env` lift a shorter registered limit (``gymnasium.make``'s own
    ``TimeLimit``, which would otherwise end episodes first)."""

    def __init__(self, max_episode_steps: int) -> None:
        self.max_episode_steps = int(max_episode_steps)

    def __call__(self, env: gym.Env) -> gym.Env:
        return gym.wrappers.TimeLimit(env, max_episode_steps=self.max_episode_steps)


def _frame_stack(stack_size: int) -> Callable[[gym.Env], gym.Env]:
    return functools.partial(gym.wrappers.FrameStackObservation, stack_size=int(stack_size))


def _normalize(gamma: float, observation: bool = True, reward: bool = True, clip_observation: float = 10.0,
               clip_reward: float = 10.0, epsilon: float = 1e-8) -> Normalize:
    return Normalize(gamma, observation=observation, reward=reward, clip_observation=clip_observation,
                     clip_reward=clip_reward, epsilon=epsilon)


def _clip_reward(gamma: float, low: float = -1.0, high: float = 1.0) -> ClipReward:
    return ClipReward(low, high)


def _ordered_bounds(knobs: Mapping[str, Any]) -> str | None:
    low, high = knobs.get("low", -1.0), knobs.get("high", 1.0)
    return None if low < high else f"low={low!r} >= high={high!r}: expected low < high"


#: Transform names (``env.transforms: [{name: ..., <knob>: ...}]``) and what they build.
TRANSFORMS: dict[str, TransformKind] = {
    "time_limit": TransformKind(TimeLimitWrapper, True, "gymnasium TimeLimit(max_episode_steps)",
                                {"max_episode_steps": (_positive_int, "an integer >= 1")}, ends_episodes=True),
    "frame_stack": TransformKind(_frame_stack, True, "gymnasium FrameStackObservation(stack_size)",
                                 {"stack_size": (_positive_int, "an integer >= 1")}),
    "normalize": TransformKind(_normalize, False, "stable-baselines3 VecNormalize semantics", {
        "observation": (_flag, "true or false"), "reward": (_flag, "true or false"),
        "clip_observation": (_positive, "a finite number > 0"), "clip_reward": (_positive, "a finite number > 0"),
        "epsilon": (_positive, "a finite number > 0")}),
    "clip_reward": TransformKind(_clip_reward, False, "rewards clipped to [low, high] for learning",
                                 {"low": (_bound, "a number (-inf: no lower bound)"),
                                  "high": (_bound, "a number (inf: no upper bound)")}, _ordered_bounds),
}


def _knobs(kind: TransformKind) -> list[str]:
    fixed = {"env", "gamma"}
    return [name for name in inspect.signature(kind.build).parameters if name not in fixed]


def transform_settings(specs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A checked ``env.transforms`` list with every knob's default filled in: two lists that build
    the same transforms give equal settings.

    Examples:
        >>> from rlkit.envs.transforms import transform_settings
        >>> transform_settings([{"name": "clip_reward"}]) == transform_settings([{"name": "clip_reward", "low": -1}])
        True
    """
    out = []
    for spec in specs:
        kind = TRANSFORMS[spec["name"]]
        params = inspect.signature(kind.build).parameters
        defaults = {k: params[k].default for k in _knobs(kind) if params[k].default is not inspect.Parameter.empty}
        out.append({**defaults, **spec})
    return out


def check_transforms(specs: Sequence[Mapping[str, Any]], game_limit_option: str | None = None) -> None:
    """Refuses an ``env.transforms`` list rlkit cannot build: an unknown name or knob (the message
    lists the valid ones), a knob value out of its range, a missing knob, or a sub-env wrapper after
    a vector transform (wrappers act inside each sub-env, before any vector transform). With
    ``game_limit_option`` (the env suite ends learning episodes within a game:
    :attr:`~rlkit.envs.suites.ResolvedEnv.game_limit_option`), a transform that ends episodes is
    refused, naming that option.

    Raises:
        ValueError: naming the entry, the value and the valid choices.
    """
    seen_vector = None
    for i, spec in enumerate(specs):
        name = spec.get("name") if isinstance(spec, Mapping) else None
        if name not in TRANSFORMS:
            raise ValueError(f"env.transforms[{i}].name={name!r} is not a transform; valid choices: {sorted(TRANSFORMS)}")
        kind = TRANSFORMS[name]
        knobs = _knobs(kind)
        unknown = sorted(k for k in spec if k != "name" and k not in knobs)
        if unknown:
            raise ValueError(f"env.transforms[{i}] ({name}) has unknown keys {unknown}; valid keys: {knobs}")
        params = inspect.signature(kind.build).parameters
        missing = [k for k in knobs if params[k].default is inspect.Parameter.empty and k not in spec]
        if missing:
            raise ValueError(f"env.transforms[{i}] ({name}) needs {missing}")
        for key, value in spec.items():
            valid, expected = kind.limits.get(key, (None, ""))  # (a knob's limits say whether inf is a value)
            if valid is None and isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"env.transforms[{i}].{key}={value!r} is invalid: expected a finite number")
            if valid is not None and not valid(value):
                raise ValueError(f"env.transforms[{i}].{key}={value!r} is invalid ({name}): expected {expected}")
        problem = kind.consistent(spec) if kind.consistent is not None else None
        if problem:
            raise ValueError(f"env.transforms[{i}] ({name}) has {problem}")
        if kind.ends_episodes and game_limit_option is not None:
            raise ValueError(f"env.transforms[{i}] ({name}) would end the suite's learning episodes (lives), not its "
                             f"games; cap games with env.options.{game_limit_option}")
        if kind.wrapper and seen_vector is not None:
            raise ValueError(f"env.transforms[{i}] ({name}) wraps each sub-env, so it must come before the vector "
                             f"transform env.transforms[{seen_vector}]")
        if not kind.wrapper and seen_vector is None:
            seen_vector = i


def build_transforms(specs: Sequence[Mapping[str, Any]], gamma: float) -> tuple[
        list[Callable[[gym.Env], gym.Env]], list[EnvTransform]]:
    """The sub-env wrappers and the vector transforms of a checked ``env.transforms`` list, in order
    (``gamma``: the discount that reward normalisation uses).

    Examples:
        >>> from rlkit.envs.transforms import build_transforms
        >>> wrappers, vector = build_transforms([{"name": "time_limit", "max_episode_steps": 50},
        ...                                      {"name": "normalize", "reward": False}], gamma=0.99)
        >>> len(wrappers), type(vector[0]).__name__
        (1, 'Normalize')
    """
    check_transforms(specs)
    wrappers: list[Callable[[gym.Env], gym.Env]] = []
    vector: list[EnvTransform] = []
    for spec in specs:
        kind = TRANSFORMS[spec["name"]]
        knobs = {k: v for k, v in spec.items() if k != "name"}
        if kind.wrapper:
            wrappers.append(kind.build(**knobs))
        else:
            vector.append(kind.build(gamma, **knobs))
    return wrappers, vector
