"""Atari 2600 games through ale-py (the optional extra ``pip install -e ".[atari]"``), with the two
protocols the literature uses (``env.options.protocol``):

- ``nature`` (Mnih et al. 2015; CleanRL's ``dqn_atari.py`` and stable-baselines3's ``AtariWrapper``):
  no sticky actions, up to 30 no-op actions at the start of a game, 4 frames per action with the
  pixel-wise max of the last two, FIRE pressed after a reset in games that need it, the loss of a
  life ending the *training* episode (the game goes on), rewards clipped to [-1, 1] for learning,
  84x84 greyscale frames, 4 stacked;
- ``machado`` (Machado et al. 2018, ``ALE/<Game>-v5``'s own defaults): sticky actions with
  probability 0.25, no no-ops, no FIRE, no life loss signal; the same frame processing.

Both cap a game at 108,000 emulator frames (30 minutes) and report returns in the game's raw score
per full game: the collector's episodes end at game over, not at a lost life, and evaluation plays
full games with neither life loss nor reward clipping.

The wrappers of each sub-env, innermost first: ``gymnasium.wrappers.AtariPreprocessing`` (no-ops,
frame skip and max-pooling, resizing, greyscale), :class:`EpisodicLife` (training only),
:class:`FireReset`, ``gymnasium.wrappers.FrameStackObservation``. Reward clipping is rlkit's
``clip_reward`` transform, so reported returns stay raw. The emulator's state (with its random
generator) is captured in checkpoints, so Atari runs resume exactly.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

__all__ = ["PROTOCOLS", "EpisodicLife", "FireReset", "atari_env_id", "atari_wrappers", "register_atari"]

#: Per protocol: sticky-action probability, no-op starts, life loss ends training episodes, FIRE on reset.
PROTOCOLS: dict[str, dict[str, Any]] = {
    "nature": {"sticky_action_prob": 0.0, "noop_max": 30, "terminal_on_life_loss": True, "fire_reset": True},
    "machado": {"sticky_action_prob": 0.25, "noop_max": 0, "terminal_on_life_loss": False, "fire_reset": False},
}


def register_atari() -> None:
    """Registers ale-py's ``ALE/<Game>-v5`` ids with gymnasium (gymnasium 1.x does not load plugins).

    Raises:
        gymnasium.error.DependencyNotInstalled: ale-py is missing (the message gives the pip command).
    """
    try:
        import ale_py
    except ImportError as err:
        raise gym.error.DependencyNotInstalled(
            'ale-py is not installed, run `pip install -e ".[atari]"` (ale-py bundles the game ROMs)'
        ) from err
    gym.register_envs(ale_py)


def atari_env_id(game: str) -> str:
    """The gymnasium id of a game (``Breakout`` -> ``ALE/Breakout-v5``).

    Examples:
        >>> from rlkit.envs.atari import atari_env_id
        >>> atari_env_id("Breakout"), atari_env_id("space_invaders")
        ('ALE/Breakout-v5', 'ALE/SpaceInvaders-v5')
    """
    name = "".join(part[:1].upper() + part[1:] for part in game.replace("-", "_").split("_"))
    return f"ALE/{name}-v5"


class EpisodicLife(gym.Wrapper):
    """The loss of a life ends the episode for learning (``terminated``) while the game goes on:
    :meth:`reset` after a lost life takes one no-op step instead of restarting the game (Mnih et al.
    2015's training protocol, as stable-baselines3's ``EpisodicLifeEnv``). ``info["game_over"]``
    says whether the game itself ended (its game over, or a time limit), which is where rlkit's
    reported episodes end.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.lives = 0
        self.real_done = True

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.real_done = bool(terminated or truncated)
        lives = _lives(self.env)
        lost = 0 < lives < self.lives
        self.lives = lives
        info = dict(info)
        info["game_over"] = self.real_done
        return obs, reward, bool(terminated or lost), bool(truncated), info

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if self.real_done or seed is not None:
            obs, info = self.env.reset(seed=seed, options=options)
        else:  # a life was lost: go on with the same game
            obs, _, terminated, truncated, info = self.env.step(0)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        self.real_done = False
        self.lives = _lives(self.env)
        return obs, info


class FireReset(gym.Wrapper):
    """Presses FIRE (then action 2) after every reset, in games whose play starts with FIRE
    (stable-baselines3's ``FireResetEnv``); a game that ends during those two steps is reset again."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        meanings: list[str] = getattr(env.unwrapped, "get_action_meanings", lambda: [])()
        if len(meanings) < 3 or meanings[1] != "FIRE":
            raise ValueError(f"FireReset needs FIRE as action 1, the game's actions are {meanings}")

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        for action in (1, 2):
            obs, _, terminated, truncated, info = self.env.step(action)
            if terminated or truncated:
                obs, info = self.env.reset(options=options)
        return obs, info


def _lives(env: gym.Env) -> int:
    base: Any = env.unwrapped  # an ale-py AtariEnv (or a stand-in with .ale.lives())
    return int(base.ale.lives())


def _needs_fire(env: gym.Env) -> bool:
    base: Any = env.unwrapped
    meanings = base.get_action_meanings()
    return len(meanings) >= 3 and meanings[1] == "FIRE"


def _preprocess(env: gym.Env, noop_max: int, screen_size: int) -> gym.Env:
    return gym.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=4, screen_size=screen_size,
                                           terminal_on_life_loss=False, grayscale_obs=True, scale_obs=False)


def _fire(env: gym.Env) -> gym.Env:
    return FireReset(env) if _needs_fire(env) else env


def _stack(env: gym.Env, frames: int) -> gym.Env:
    return gym.wrappers.FrameStackObservation(env, stack_size=frames)


def atari_wrappers(options: dict[str, Any], evaluating: bool) -> list[Callable[[gym.Env], gym.Env]]:
    """The sub-env wrappers of the resolved ``options`` (protocol defaults filled in), for training
    or (``evaluating``) evaluation, which plays full games."""
    wrappers: list[Callable[[gym.Env], gym.Env]] = [
        functools.partial(_preprocess, noop_max=int(options["noop_max"]), screen_size=int(options["screen_size"]))
    ]
    if options["terminal_on_life_loss"] and not evaluating:
        wrappers.append(EpisodicLife)
    if options["fire_reset"]:
        wrappers.append(_fire)
    # Always stacked, one frame included: conv networks take channel-first (C, H, W) frames.
    wrappers.append(functools.partial(_stack, frames=int(options["frame_stack"])))
    return wrappers


def ale_state(env: gym.Env) -> dict[str, Any]:
    """The emulator's full state (RAM, registers, its random generator) as bytes in a uint8 array."""
    base: Any = env.unwrapped
    state = base.clone_state(include_rng=True)
    return {"ale": np.frombuffer(state.serialize(), dtype=np.uint8).copy()}


def load_ale_state(env: gym.Env, state: dict[str, Any]) -> None:
    """Inverse of :func:`ale_state`."""
    import ale_py

    base: Any = env.unwrapped
    base.restore_state(ale_py.ALEState(np.asarray(state["ale"], dtype=np.uint8).tobytes()))
