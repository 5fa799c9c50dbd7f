"""Env suites: how an ``env`` config section names and builds its env (``env.suite``).

- ``gym``: any registered gymnasium id (``env.id``; ``module:Id`` imports the module first);
- ``minatar``: MinAtar's games (``env.game``; :mod:`rlkit.envs.minatar`), options
  ``full_action_set``, ``sticky_action_prob``, ``difficulty_ramping``.

Each suite declares its options with their defaults (:attr:`EnvSuite.options`); a suite's
:meth:`~EnvSuite.resolve` gives the gymnasium id, the ``gymnasium.make`` keyword arguments and the
wrappers of every sub-env, for training or for evaluation.

Examples:
    >>> from rlkit.envs.suites import get_suite
    >>> get_suite("minatar").resolve(None, "breakout", {}).env_id
    'rlkit/MinAtar-breakout-v0'
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from rlkit.envs.minatar import GAMES as MINATAR_GAMES

__all__ = ["ENV_SUITES", "EnvSuite", "ResolvedEnv", "get_suite"]

Wrapper = Callable[[gym.Env], gym.Env]


@dataclass(frozen=True)
class ResolvedEnv:
    """What a suite makes of an env section."""

    env_id: str
    make_kwargs: dict[str, Any]
    train_wrappers: list[Wrapper] = field(default_factory=list)
    eval_wrappers: list[Wrapper] = field(default_factory=list)


@dataclass(frozen=True)
class EnvSuite:
    """A family of envs named by ``env.suite``.

    Attributes:
        name: the ``env.suite`` value.
        games: the valid ``env.game`` values (``None``: the suite takes ``env.id`` instead).
        options: the suite's knobs (``env.options``) and their defaults.
        build: ``(env_id, game, options with defaults) -> ResolvedEnv``.
        doc: one line for listings.
    """

    name: str
    games: tuple[str, ...] | None
    options: Mapping[str, Any]
    build: Callable[[str | None, str | None, dict[str, Any]], ResolvedEnv]
    doc: str

    def check(self, env_id: str | None, game: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options with defaults filled in, after refusing what this suite cannot build.

        Raises:
            ValueError: naming the key, the value and the valid choices.
        """
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(f"env.options has keys env.suite={self.name!r} does not take: {unknown}; "
                             f"valid keys: {sorted(self.options)}")
        if self.games is None:
            if game is not None:
                raise ValueError(f"env.game={game!r} is set, but env.suite={self.name!r} names envs by env.id")
            if not env_id:
                raise ValueError("env.id is missing: give it a value (env.id=...)")
        else:
            if game not in self.games:
                close = difflib.get_close_matches(str(game), self.games, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"env.game={game!r} is not a {self.name} game{hint}; valid choices: {list(self.games)}")
            if env_id is not None:
                raise ValueError(f"env.id={env_id!r} is set, but env.suite={self.name!r} names its envs by env.game; "
                                 "use env.id=null")
        merged = {**self.options, **options}
        for key, default in self.options.items():
            value = merged[key]
            if isinstance(default, bool) and not isinstance(value, bool):
                raise ValueError(f"env.options.{key}={value!r} is invalid: expected true or false")
            if isinstance(default, float) and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
                raise ValueError(f"env.options.{key}={value!r} is invalid: expected a number")
        return merged

    def resolve(self, env_id: str | None, game: str | None, options: Mapping[str, Any]) -> ResolvedEnv:
        """The env id, ``gymnasium.make`` arguments and wrappers of an env section (checked first)."""
        return self.build(env_id, game, self.check(env_id, game, options))


def _gym(env_id: str | None, game: str | None, options: dict[str, Any]) -> ResolvedEnv:
    assert env_id is not None  # (checked)
    return ResolvedEnv(env_id, {})


def _minatar(env_id: str | None, game: str | None, options: dict[str, Any]) -> ResolvedEnv:
    from rlkit.envs.minatar import minatar_id

    assert game is not None  # (checked)
    prob = float(options["sticky_action_prob"])
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"env.options.sticky_action_prob={prob!r} is invalid: expected a number in [0, 1]")
    return ResolvedEnv(minatar_id(game, options["full_action_set"]),
                       {"sticky_action_prob": prob, "difficulty_ramping": options["difficulty_ramping"]})


#: ``env.suite`` choices.
ENV_SUITES: dict[str, EnvSuite] = {
    "gym": EnvSuite("gym", None, {}, _gym, "any registered gymnasium id (env.id)"),
    "minatar": EnvSuite(
        "minatar", MINATAR_GAMES,
        {"full_action_set": True, "sticky_action_prob": 0.1, "difficulty_ramping": True}, _minatar,
        "MinAtar (Young & Tian 2019): env.game, channel-first uint8 observations",
    ),
}


def get_suite(name: str) -> EnvSuite:
    """The suite registered as ``name``.

    Raises:
        ValueError: unknown name (the message lists the suites).
    """
    if name not in ENV_SUITES:
        raise ValueError(f"env.suite={name!r} is not an env suite; valid choices: {sorted(ENV_SUITES)}")
    return ENV_SUITES[name]
