"""Env suites: how an ``env`` config section names and builds its env (``env.suite``).

- ``gym``: any registered gymnasium id (``env.id``; ``module:Id`` imports the module first);
- ``minatar``: MinAtar's games (``env.game``; :mod:`rlkit.envs.minatar`), options
  ``full_action_set``, ``sticky_action_prob``, ``difficulty_ramping``;
- ``atari``: ale-py's Atari games (``env.game``, e.g. ``Breakout``; :mod:`rlkit.envs.atari`), options
  ``protocol`` (``nature`` or ``machado``) and the knobs it sets (null: the protocol's value).

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
    #: rlkit transform specs (``env.transforms`` entries) applied in training before the config's own.
    train_transforms: list[dict[str, Any]] = field(default_factory=list)
    #: frames stacked in each observation by the suite's wrappers (1: none); replay keeps them once.
    frame_stack: int = 1
    #: the option that caps a game's length where the training wrappers end learning episodes within
    #: a game (Atari's life loss): an ``env.transforms`` time limit, outside them, would cut learning
    #: episodes rather than games, so it is refused with this option named. None: no such wrappers.
    game_limit_option: str | None = None


@dataclass(frozen=True)
class EnvSuite:
    """A family of envs named by ``env.suite``.

    Attributes:
        name: the ``env.suite`` value.
        games: the valid ``env.game`` values, or a function listing them (``None``: the suite takes
            ``env.id`` instead).
        options: the suite's knobs (``env.options``) and their defaults.
        build: ``(env_id, game, options with defaults) -> ResolvedEnv``.
        doc: one line for listings.
    """

    name: str
    games: tuple[str, ...] | Callable[[], tuple[str, ...]] | None
    options: Mapping[str, Any]
    build: Callable[[str | None, str | None, dict[str, Any]], ResolvedEnv]
    doc: str
    canonical: Callable[[str], str] = str  # a game's name as listed in ``games``
    #: The type of each option whose default is ``None`` (set by the protocol): ``bool``, ``float`` or ``int``.
    types: Mapping[str, type] = field(default_factory=dict)

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
            games = self.games() if callable(self.games) else self.games
            if not isinstance(game, str) or self.canonical(game) not in games:
                lowered = {g.lower(): g for g in games}  # (suggestions ignore case: 'PONG' -> 'Pong')
                close = [lowered[g] for g in difflib.get_close_matches(self.canonical(str(game)).lower(), lowered, n=3)]
                hint = f" (did you mean {close}?)" if close else ""
                shown = list(games) if len(games) <= 10 else f"{len(games)} games, e.g. {list(games[:5])}"
                raise ValueError(f"env.game={game!r} is not one of the {self.name} games{hint}; valid choices: {shown}")
            if env_id is not None:
                raise ValueError(f"env.id={env_id!r} is set, but env.suite={self.name!r} names its envs by env.game; "
                                 "use env.id=null")
        merged = {**self.options, **options}
        for key, default in self.options.items():
            value = merged[key]
            # (an int default's range is the builder's to check: frame_stack needs >= 1, noop_max >= 0)
            kind = self.types.get(key, type(default) if isinstance(default, (bool, float)) else None)
            null = " or null" if default is None else ""
            if value is None and default is None:
                continue
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"env.options.{key}={value!r} is invalid: expected true or false{null}")
            if kind is float and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
                raise ValueError(f"env.options.{key}={value!r} is invalid: expected a number{null}")
            if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"env.options.{key}={value!r} is invalid: expected an integer >= 0{null}")
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
    if not 0.0 <= prob < 1.0:  # (1: every step repeats the first action, NOOP, for good)
        raise ValueError(f"env.options.sticky_action_prob={prob!r} is invalid: expected a number in [0, 1)")
    return ResolvedEnv(minatar_id(game, options["full_action_set"]),
                       {"sticky_action_prob": prob, "difficulty_ramping": options["difficulty_ramping"]})


def _atari_name(game: str) -> str:
    from rlkit.envs.atari import atari_env_id

    return atari_env_id(game)[len("ALE/"):-len("-v5")]


def _atari_games() -> tuple[str, ...]:
    from rlkit.envs.atari import register_atari

    try:
        register_atari()
    except gym.error.DependencyNotInstalled as err:
        raise ValueError(str(err)) from None
    return tuple(sorted(k[len("ALE/"):-len("-v5")] for k in gym.registry if k.startswith("ALE/") and k.endswith("-v5")))


def _atari(env_id: str | None, game: str | None, options: dict[str, Any]) -> ResolvedEnv:
    from rlkit.envs.atari import PROTOCOLS, atari_env_id, atari_wrappers, register_atari

    assert game is not None  # (checked)
    if options["protocol"] not in PROTOCOLS:
        raise ValueError(f"env.options.protocol={options['protocol']!r} is not an Atari protocol; valid choices: "
                         f"{sorted(PROTOCOLS)}")
    resolved = {**options, **{k: v if options.get(k) is None else options[k]
                              for k, v in PROTOCOLS[options["protocol"]].items()}}
    prob = float(resolved["sticky_action_prob"])
    if not 0.0 <= prob < 1.0:  # (1: every step repeats the first action, NOOP, for good)
        raise ValueError(f"env.options.sticky_action_prob={prob!r} is invalid: expected a number in [0, 1)")
    for key in ("frame_stack", "screen_size", "max_episode_frames"):
        if not isinstance(resolved[key], int) or isinstance(resolved[key], bool) or resolved[key] < 1:
            raise ValueError(f"env.options.{key}={resolved[key]!r} is invalid: expected a positive integer")
    register_atari()
    make_kwargs = {"frameskip": 1, "repeat_action_probability": prob, "full_action_space": bool(resolved["full_action_set"]),
                   "max_num_frames_per_episode": int(resolved["max_episode_frames"])}
    clip = [{"name": "clip_reward", "low": -1.0, "high": 1.0}] if resolved["clip_rewards"] else []
    return ResolvedEnv(atari_env_id(game), make_kwargs, atari_wrappers(resolved, evaluating=False),
                       atari_wrappers(resolved, evaluating=True), clip, frame_stack=int(resolved["frame_stack"]),
                       game_limit_option="max_episode_frames" if resolved["terminal_on_life_loss"] else None)


#: ``env.suite`` choices.
ENV_SUITES: dict[str, EnvSuite] = {
    "gym": EnvSuite("gym", None, {}, _gym, "any registered gymnasium id (env.id)"),
    "minatar": EnvSuite(
        "minatar", MINATAR_GAMES,
        {"full_action_set": True, "sticky_action_prob": 0.1, "difficulty_ramping": True}, _minatar,
        "MinAtar (Young & Tian 2019): env.game, channel-first uint8 observations",
    ),
    "atari": EnvSuite(
        "atari", _atari_games, {"protocol": "nature", "full_action_set": False, "frame_stack": 4, "screen_size": 84,
                        "clip_rewards": True, "max_episode_frames": 108_000, "sticky_action_prob": None,
                        "noop_max": None, "terminal_on_life_loss": None, "fire_reset": None},
        _atari, "Atari 2600 via ale-py (env.game, e.g. Breakout): the nature or machado protocol",
        canonical=_atari_name,
        types={"sticky_action_prob": float, "noop_max": int, "terminal_on_life_loss": bool, "fire_reset": bool},
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
