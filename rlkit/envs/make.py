"""Building gymnasium vector envs from an id, with clear errors for unknown ids and missing extras."""
from __future__ import annotations

import difflib
import importlib
import re
from typing import Any, Literal

import gymnasium as gym
from gymnasium.vector import AutoresetMode

from rlkit.envs.single import SingleEnv

Vectorization = Literal["auto", "native", "sync", "single"]
VECTORIZATIONS = ("auto", "native", "sync", "single")


def find_env_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The registered spec of ``env_id`` (``"module:Id-v0"`` imports ``module`` first).

    Raises:
        ValueError: unknown id; the message suggests close registered ids.
    """
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env id must be a non-empty string, got {env_id!r}")
    module, _, name = env_id.rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ValueError(f"env id {env_id!r}: cannot import module {module!r} ({err})") from err
    try:
        return gym.spec(name)
    except gym.error.Error as err:
        close = difflib.get_close_matches(name, list(gym.registry), n=5, cutoff=0.6)
        hint = (
            f"close registered ids: {close}"
            if close
            else "run gymnasium.pprint_registry() to list the registered ids"
        )
        raise ValueError(f"unknown gymnasium env id {env_id!r} ({err}); {hint}") from err


def dependency_error(env_id: str, spec: gym.envs.registration.EnvSpec, err: Exception) -> ImportError:
    """An ImportError telling how to install the optional gymnasium extra that ``env_id`` needs."""
    found = re.search(r"gymnasium\[([\w-]+)\]", str(err))
    entry = spec.entry_point if isinstance(spec.entry_point, str) else ""
    parts = entry.split(":")[0].split(".")
    if found:
        extra = found.group(1)
    elif len(parts) > 2 and parts[:2] == ["gymnasium", "envs"]:
        extra = parts[2]
    else:
        extra = None
    how = f'pip install "gymnasium[{extra}]"' if extra else "install the package that provides it"
    return ImportError(
        f"env {env_id!r} needs an optional dependency that is not installed ({err}). "
        f"Install it with: {how}"
    )


def make_vector_env(
    env_id: str, num_envs: int, vectorization: Vectorization, make_kwargs: dict[str, Any]
) -> tuple[gym.vector.VectorEnv, Literal["native", "sync", "single"]]:
    """``gymnasium.make_vec`` with rlkit's choices. ``"auto"``: one plain env driven directly
    (:class:`~rlkit.envs.single.SingleEnv`) when ``num_envs == 1``, else the native vector env where
    one exists, else a SyncVectorEnv whose sub-envs rlkit resets itself (autoreset DISABLED)."""
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"unknown vectorization {vectorization!r}; valid choices: {list(VECTORIZATIONS)}")
    if vectorization == "single" and num_envs != 1:
        raise ValueError(f"vectorization='single' drives one env, got num_envs={num_envs}; use 'auto' or 'sync'")
    spec = find_env_spec(env_id)
    if vectorization == "auto":
        if num_envs == 1:
            vectorization = "single"
        else:
            vectorization = "native" if spec.vector_entry_point is not None else "sync"
    if vectorization == "native" and spec.vector_entry_point is None:
        native = sorted(k for k, s in gym.registry.items() if s.vector_entry_point is not None)
        raise ValueError(
            f"env {env_id!r} has no native vector env; envs with one: {native}. "
            "Use vectorization='sync' or 'auto'"
        )
    vec: gym.vector.VectorEnv
    try:
        if vectorization == "single":
            vec = SingleEnv(gym.make(env_id, **make_kwargs))
        elif vectorization == "native":
            vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **make_kwargs)
        else:
            vec = gym.make_vec(
                env_id,
                num_envs=num_envs,
                vectorization_mode="sync",
                # copy=False: the adapter copies what it keeps, one copy is enough.
                vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED, "copy": False},
                **make_kwargs,
            )
    except gym.error.DependencyNotInstalled as err:
        raise dependency_error(env_id, spec, err) from err
    return vec, vectorization
