"""Validation of what goes into and comes out of a :class:`~rlkit.envs.GymEnv` step, with errors
that name the env, the step, the sub-env and the offending value."""
from __future__ import annotations

import math
from typing import Any, cast

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from rlkit.data import Bounded, Categorical
from rlkit.errors import EnvError
from rlkit.envs.spaces import SpaceCodec, describe_spec


def all_finite(*arrays: np.ndarray) -> bool:
    """Whether the arrays hold no NaN/inf: integer and bool arrays (pixels) cannot, float ones are
    summed (the sum of all is finite; a sum that overflows is re-checked by :func:`check_finite`).
    Small arrays are summed in Python, faster than numpy's reduction at that size.

    Examples:
        >>> import numpy as np
        >>> from rlkit.envs.checks import all_finite
        >>> all_finite(np.zeros(3, np.float32), np.full((84, 84), 255, np.uint8))
        True
        >>> all_finite(np.array([1.0, np.nan]))
        False
    """
    total = 0.0
    for array in arrays:
        if array.dtype.kind != "f":
            continue
        total += sum(array.ravel().tolist()) if array.size <= 64 else float(array.sum())
    return math.isfinite(total)


def check_finite(env_id: str, step: int, what: str, values: np.ndarray) -> None:
    """Raises when ``values`` (one row per sub-env) hold a NaN/inf, naming the env, step, sub-env and row."""
    if values.dtype.kind != "f" or math.isfinite(values.sum()):
        return
    flat = values.reshape(values.shape[0], -1)
    bad = np.flatnonzero(~np.isfinite(flat).all(-1))
    if bad.size == 0:  # the sum overflowed, every value is finite
        return
    i = int(bad[0])
    raise EnvError(
        f"non-finite {what} from env {env_id!r} at step {step}, sub-env {i}: {values[i].tolist()}"
    )


def check_some_action_allowed(env_id: str, step: int, mask: np.ndarray, what: str = "step") -> None:
    """Raises when a sub-env's action mask (``mask``: one row per sub-env, a bool per action, or per
    action of each group) allows no action for the action the policy takes next: its episode goes on
    (a terminated step's final observation may allow none), but no action may be taken.

    Examples:
        >>> import numpy as np
        >>> from rlkit.envs.checks import check_some_action_allowed
        >>> check_some_action_allowed("demo", 3, np.array([[True, False], [False, True]]))
        >>> check_some_action_allowed("demo", 3, np.array([[True, False], [False, False]]))
        Traceback (most recent call last):
        ...
        rlkit.errors.EnvError: env 'demo' allows no action at step 3, sub-env 1, whose episode goes on (its action mask [False, False] forbids every action; only a terminated step's observation may)
    """
    allowed = mask.reshape(mask.shape[0], -1, mask.shape[-1]).any(-1).all(-1)
    if allowed.all():
        return
    i = int(np.flatnonzero(~allowed)[0])
    when = f"at step {step}" if what == "step" else f"on {what}"
    raise EnvError(f"env {env_id!r} allows no action {when}, sub-env {i}, whose episode goes on (its action mask "
                   f"{mask[i].tolist()} forbids every action; only a terminated step's observation may)")


def check_action(codec: SpaceCodec, action: Any, mask: torch.Tensor | None, num_envs: int, env_id: str,
                 step: int) -> np.ndarray | list[int]:
    """Validates ``action`` (``[num_envs, *action_shape]``, allowed by ``mask``) for step ``step`` of
    env ``env_id`` and returns it encoded for gymnasium: an array, or for a few integer index
    actions a list of Python ints (what a single env steps with directly).

    Raises:
        ValueError: not a tensor of the right shape, outside the action spec, or masked out; the
            message names the env, the step, the sub-env and the value.
    """
    if (mask is None and type(action) is torch.Tensor and codec.index_actions and action.dtype == torch.int64
            and action.dim() == 1 and action.shape[0] == num_envs <= 32):
        # The common case: a few integer indices, range-checked as Python ints (Python's min/max on
        # a short list beat numpy's reductions); out-of-range values take the general path below,
        # which names them.
        values = action.tolist()
        if min(values) >= 0 and max(values) < codec.num_actions:
            start = codec.action_start
            return [v + start for v in values] if start else values
    spec = codec.action_spec
    expected = (num_envs, *spec.shape)
    if not isinstance(action, torch.Tensor) or tuple(action.shape) != expected:
        got = tuple(action.shape) if isinstance(action, torch.Tensor) else type(action).__name__
        raise EnvError(
            f"action for env {env_id!r} at step {step} must be a tensor of shape {expected}, got {got}"
        )
    encoded, ok = codec.encode_action(action)
    if not ok:
        if isinstance(spec, Bounded):  # out-of-bounds values are clipped; only NaN is refused
            bad = next(i for i in range(num_envs) if bool(torch.isnan(action[i]).any()))
            raise EnvError(f"action {action[bad].tolist()} for sub-env {bad} of env {env_id!r} at step {step} "
                           f"holds NaN; the action spec is {describe_spec(spec)}")
        bad = next(i for i in range(num_envs) if not spec.is_in(action[i]))
        raise EnvError(
            f"action {action[bad].tolist()} for sub-env {bad} of env {env_id!r} at step {step} is outside "
            f"the action spec {describe_spec(spec)}"
        )
    if mask is not None:
        index = codec.action_indices(action)
        allowed = mask.gather(-1, index.unsqueeze(-1)).squeeze(-1)
        if not bool(allowed.all()):
            bad = int((~allowed).nonzero()[0, 0])
            valid = mask[bad].nonzero().flatten().tolist()
            raise EnvError(
                f"action {int(index[bad])} for sub-env {bad} of env {env_id!r} at step {step} is masked out; "
                f"allowed actions: {valid}"
            )
    return encoded


def observation_problem(obs: Any, space: spaces.Space, key: str = "observation") -> str | None:
    """What is wrong with one sub-env's observation against its space (a shape or dtype other than
    the space's, in any ``Box`` entry), or ``None``. ``Dict`` spaces are checked entry by entry."""
    if isinstance(space, spaces.Dict):
        if not isinstance(obs, dict):
            return f"key {key!r} is a {type(obs).__name__}, the spec is a Dict of {sorted(space.spaces)}"
        for name, sub in space.spaces.items():
            found = observation_problem(obs.get(name), sub, name)
            if found:
                return found
        return None
    if isinstance(space, spaces.Box):
        array = np.asarray(obs)
        if array.shape != space.shape:
            return f"key {key!r} has shape {array.shape}, the spec has {space.shape}"
        if array.dtype != space.dtype:
            return f"key {key!r} has dtype {array.dtype}, the spec has {space.dtype}"
    return None


def check_observation(obs: Any, space: spaces.Space, env_id: str, step: int, sub_env: int, what: str) -> None:
    """Raises when one sub-env's observation does not fit its space, naming the env, the step (or
    reset), the sub-env and the key."""
    problem = observation_problem(obs, space)
    if problem:
        raise EnvError(f"env {env_id!r} returned an observation that does not fit its spec at {what} "
                         f"(step {step}), sub-env {sub_env}: {problem}")


def check_reward(reward: Any, env_id: str, step: int, sub_env: int) -> None:
    """Raises when one sub-env's reward is not a single real number (a Python or numpy scalar, or an
    array or tensor with no dimension), naming the env, the step and the sub-env.

    Examples:
        >>> import numpy as np, torch
        >>> from rlkit.envs.checks import check_reward
        >>> for reward in (1.0, 2, np.float32(0.5), np.array(1.5), torch.tensor(1.0), True):
        ...     check_reward(reward, "demo", 1, 0)
        >>> check_reward(np.array([1.0]), "demo", 3, 0)
        Traceback (most recent call last):
        ...
        rlkit.errors.EnvError: env 'demo' returned the reward array([1.]) (ndarray of shape (1,)) at step 3, sub-env 0: a reward is one real number (a float)
    """
    if isinstance(reward, (float, int, np.number, np.bool_)):
        return
    shape = getattr(reward, "shape", None)  # a 0-d numpy array, torch tensor, jax array
    if shape is not None and tuple(shape) == ():
        try:
            float(reward)
            return
        except (TypeError, ValueError):
            pass
    shape = f" of shape {tuple(shape)}" if shape is not None else ""
    raise EnvError(f"env {env_id!r} returned the reward {reward!r} ({type(reward).__name__}{shape}) at step {step}, "
                   f"sub-env {sub_env}: a reward is one real number (a float)")


class ObservationCheck(gym.Wrapper):
    """Checks every observation (and reward) of one sub-env of a vector env against its space (a vector env
    would otherwise fail to batch it, or cast it, without naming the sub-env).

    Args:
        env: the sub-env.
        env_id: its id, for the message.
        index: its index in the vector env.
    """

    def __init__(self, env: gym.Env, env_id: str, index: int) -> None:
        super().__init__(env)
        self.env_id, self.index, self.steps = env_id, index, 0

    def reset(self, **kwargs: Any) -> tuple[Any, dict]:
        obs, info = self.env.reset(**kwargs)
        check_observation(obs, self.observation_space, self.env_id, self.steps, self.index, "reset")
        return obs, info

    def step(self, action: Any) -> tuple[Any, Any, Any, Any, dict]:
        out = self.env.step(action)
        self.steps += 1
        check_observation(out[0], self.observation_space, self.env_id, self.steps, self.index, "step")
        check_reward(out[1], self.env_id, self.steps, self.index)
        return out
