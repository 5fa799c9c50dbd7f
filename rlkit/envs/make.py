"""Building gymnasium vector envs from an id, with clear errors for unknown ids and missing extras."""
from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any, Literal

import gymnasium as gym
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from rlkit.envs.checks import ObservationCheck
from rlkit.envs.single import SingleEnv
from rlkit.utils.imports import import_problem

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
        problem = import_problem(module)
        if problem is not None:
            raise ValueError(f"env id {env_id!r}: {problem}")
    try:
        return gym.spec(name)
    except gym.error.Error as err:
        own = registered_by(module) if module else []
        close = difflib.get_close_matches(name, own or list(gym.registry), n=5, cutoff=0.6)
        shown = f"{own[:10]}" + (f" and {len(own) - 10} more" if len(own) > 10 else "")
        hint = suite_hint(name) or (
            f"close matches: {close}" if close
            else f"the ids with entry points in module {module!r}: {shown}" if own
            else "run gymnasium.pprint_registry() to list the registered ids"
        )
        if own and close:
            hint += f" (the ids with entry points in module {module!r}: {shown})"
        raise ValueError(f"env id {env_id!r} is not a registered gymnasium id; {hint}") from err


def registered_by(module: str) -> list[str]:
    """The gymnasium ids whose entry point is in ``module`` (or a module under it).

    Examples:
        >>> from rlkit.envs.make import registered_by
        >>> "CartPole-v1" in registered_by("gymnasium.envs.classic_control")
        True
    """
    def module_of(entry_point: object) -> str:
        if isinstance(entry_point, str):
            return entry_point.partition(":")[0]
        return str(getattr(entry_point, "__module__", ""))

    return sorted(env_id for env_id, spec in gym.registry.items()
                  if module_of(spec.entry_point) == module or module_of(spec.entry_point).startswith(module + "."))


def suite_hint(name: str) -> str | None:
    """How to choose the game that an Atari or MinAtar id names (rlkit builds those through
    ``env=atari`` / ``env=minatar``, which register them), or None.

    Examples:
        >>> from rlkit.envs.make import suite_hint
        >>> suite_hint("ALE/Pong-v5")
        'Atari games are env=atari env.game=Pong (pip install -e ".[atari]")'
        >>> suite_hint("BreakoutNoFrameskip-v4")
        'Atari games are env=atari env.game=Breakout (pip install -e ".[atari]")'
        >>> suite_hint("ALE/Breakout-ram-v5")
        'Atari games are env=atari env.game=Breakout (pip install -e ".[atari]"); it plays from screen frames: RAM observations are not offered'
        >>> suite_hint("MinAtar/SpaceInvaders-v1")
        'MinAtar games are env=minatar env.game=space_invaders (pip install -e ".[minatar]")'
        >>> suite_hint("CartPol-v1") is None
        True
    """
    # (a plain Game-v4 id cannot be told from another env's)
    atari = re.fullmatch(r"ALE/([A-Za-z]+)(?:-ram)?-v\d+|([A-Za-z]+?)(?:-ram)?(?:NoFrameskip|Deterministic)-v\d+"
                         r"|([A-Za-z]+?)-ram-v\d+", name)
    if atari:
        game = next(g for g in atari.groups() if g)
        ram = "; it plays from screen frames: RAM observations are not offered" if "-ram" in name else ""
        return f'Atari games are env=atari env.game={game} (pip install -e ".[atari]"){ram}'
    minatar = re.fullmatch(r"MinAtar/([A-Za-z]+)-v\d+|rlkit/MinAtar-([a-z_]+?)(?:-minimal)?-v\d+", name)
    if minatar:
        game = minatar.group(2) or re.sub(r"(?<!^)(?=[A-Z])", "_", minatar.group(1)).lower()
        return f'MinAtar games are env=minatar env.game={game} (pip install -e ".[minatar]")'
    return None


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


def env_label(env_id: str) -> str:
    """A short name of an env id for directory names: no module, namespace or version.

    Examples:
        >>> from rlkit.envs import env_label
        >>> env_label("CartPole-v1"), env_label("ALE/Breakout-v5"), env_label("mymod:Corridor-v0")
        ('CartPole', 'Breakout', 'Corridor')
    """
    name = env_id.rpartition(":")[2].rpartition("/")[2]
    return re.sub(r"-v\d+$", "", name) or name


Wrapper = Callable[[gym.Env], gym.Env]


def make_vector_env(
    env_id: str, num_envs: int, vectorization: Vectorization, make_kwargs: dict[str, Any],
    wrappers: Sequence[Wrapper] = (),
) -> tuple[gym.vector.VectorEnv, Literal["native", "sync", "single"]]:
    """The vector env rlkit drives. ``"auto"``: one plain env driven directly
    (:class:`~rlkit.envs.single.SingleEnv`) when ``num_envs == 1``, else the native vector env where
    one exists (and no ``wrappers`` are given), else a SyncVectorEnv of sub-envs that rlkit resets
    itself (autoreset DISABLED), each checked by :class:`~rlkit.envs.checks.ObservationCheck`.

    Args:
        env_id: a registered id, or ``module:Id`` (the module is imported first).
        num_envs: sub-envs.
        vectorization: ``"auto"``, ``"single"``, ``"native"`` or ``"sync"``.
        make_kwargs: keyword arguments of ``gymnasium.make``.
        wrappers: applied to every sub-env, in order (gymnasium wrappers such as ``TimeLimit``); one
            with an int ``max_episode_steps`` attribute (:class:`~rlkit.envs.transforms.TimeLimitWrapper`)
            above the registered limit raises that limit (``gymnasium.make(max_episode_steps=...)``).
    """
    if vectorization not in VECTORIZATIONS:
        raise ValueError(f"unknown vectorization {vectorization!r}; valid choices: {list(VECTORIZATIONS)}")
    if vectorization == "single" and num_envs != 1:
        raise ValueError(f"vectorization='single' drives one env, got num_envs={num_envs}; use 'auto' or 'sync'")
    spec = find_env_spec(env_id)
    if vectorization == "auto":
        if num_envs == 1:
            vectorization = "single"
        else:
            vectorization = "native" if spec.vector_entry_point is not None and not wrappers else "sync"
    if vectorization == "native" and spec.vector_entry_point is None:
        native = sorted(k for k, s in gym.registry.items() if s.vector_entry_point is not None)
        raise ValueError(
            f"env {env_id!r} has no native vector env; envs with one: {native}. "
            "Use vectorization='sync' or 'auto'"
        )
    if vectorization == "native" and wrappers:
        raise ValueError(f"env {env_id!r}: sub-env wrappers need vectorization='sync' or 'auto', not 'native'")

    # A wrapper declaring an episode limit (rlkit's time_limit) longer than the registered one lifts
    # it: gymnasium.make's own TimeLimit would end episodes first.
    declared = [getattr(w, "max_episode_steps", None) for w in wrappers]
    limits = [n for n in declared if isinstance(n, int)]
    if limits and spec.max_episode_steps is not None and max(limits) > spec.max_episode_steps:
        make_kwargs = {**make_kwargs, "max_episode_steps": max(limits)}

    def make_one(index: int | None) -> gym.Env:
        env = gym.make(env_id, **make_kwargs)
        for wrap in wrappers:
            env = wrap(env)
        return env if index is None else ObservationCheck(env, env_id, index)

    vec: gym.vector.VectorEnv
    try:
        if vectorization == "single":
            vec = SingleEnv(make_one(None))  # checked by its backend, without a wrapper's call
        elif vectorization == "native":
            vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **make_kwargs)
        else:
            # copy=False: the adapter copies what it keeps, one copy is enough.
            vec = SyncVectorEnv([functools.partial(make_one, i) for i in range(num_envs)],
                                autoreset_mode=AutoresetMode.DISABLED, copy=False)
    except gym.error.DependencyNotInstalled as err:
        raise dependency_error(env_id, spec, err) from err
    return vec, vectorization
