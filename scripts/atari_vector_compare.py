"""rlkit's Atari pipeline (gymnasium's wrappers, as the ``atari`` suite builds them) against ale-py's
``AtariVectorEnv`` (C++ preprocessing) on one game, one seed and one fixed action sequence.

Both envs play the same actions (a seeded uniform random policy); each step's stacked observation,
raw reward, termination, truncation and lives are compared. A finished episode is reset at once in
both (rlkit's partial reset; ``reset(options={"reset_mask": ...})`` for the vector env). The vector
env is seeded with the ALE seed that ale-py's ``AtariEnv.reset(seed=...)`` derives from rlkit's seed,
so the emulators' random generators (sticky actions) start alike. See docs/atari_vector_env.md.

    PYTHONPATH=. python scripts/atari_vector_compare.py --game Breakout --config frames --steps 2000
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlkit.envs import GymEnv
from rlkit.envs.suites import get_suite
from rlkit.script_args import interruptible, positive_int

#: rlkit atari options and the AtariVectorEnv arguments meant to match them.
CONFIGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # nature with its three reset-time knobs off: the frame pipeline alone
    "frames": ({"protocol": "nature", "noop_max": 0, "fire_reset": False, "terminal_on_life_loss": False},
               {"noop_max": 0, "use_fire_reset": False, "episodic_life": False, "repeat_action_probability": 0.0}),
    # machado: sticky actions 0.25, no no-ops, no FIRE, no life loss
    "machado": ({"protocol": "machado"},
                {"noop_max": 0, "use_fire_reset": False, "episodic_life": False, "repeat_action_probability": 0.25}),
    # nature in full, against the vector env's closest settings (its episodic_life restarts the game)
    "nature": ({"protocol": "nature"},
               {"noop_max": 30, "use_fire_reset": True, "episodic_life": True, "repeat_action_probability": 0.0}),
    # nature without no-ops: the life-loss and FIRE semantics alone
    "nature_noop0": ({"protocol": "nature", "noop_max": 0},
                     {"noop_max": 0, "use_fire_reset": True, "episodic_life": True, "repeat_action_probability": 0.0}),
}


def ale_seed(seed: int) -> int:
    """The ALE ``random_seed`` that ``ale_py.env.AtariEnv.reset(seed=seed)`` sets."""
    return int(np.int32(np.random.SeedSequence(seed).generate_state(n_words=2)[1]))


def snake(game: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(game))


@dataclass
class Trace:
    obs: list[np.ndarray] = field(default_factory=list)       # observation the policy acts on, per step
    next_obs: list[np.ndarray] = field(default_factory=list)  # the step's true next observation
    reward: list[float] = field(default_factory=list)         # raw reward
    terminated: list[bool] = field(default_factory=list)
    truncated: list[bool] = field(default_factory=list)
    lives: list[int] = field(default_factory=list)


class _Lives(gym.Wrapper):
    """Outermost: keeps the lives reported by the latest agent step (rlkit resets a finished game
    inside ``advance``, so the emulator's own count may already be the next game's)."""

    lives = 0

    def step(self, action: Any) -> Any:
        out = self.env.step(action)
        self.lives = int(out[4]["lives"])
        return out


def run_rlkit(game: str, options: dict[str, Any], seed: int, actions: np.ndarray) -> Trace:
    resolved = get_suite("atari").resolve(None, game, options)
    probe: list[_Lives] = []

    def lives_last(env: gym.Env) -> gym.Env:
        probe.append(_Lives(env))
        return probe[-1]

    env = GymEnv(resolved.env_id, num_envs=1, seed=seed, vectorization="single", make_kwargs=resolved.make_kwargs,
                 wrappers=[*resolved.train_wrappers, lives_last])
    trace = Trace()
    obs = env.reset()["observation"][0].numpy().copy()
    for action in actions:
        trace.obs.append(obs)
        res = env.advance(torch.tensor([int(action)]))
        trace.next_obs.append(res.next_observation[0].copy())
        trace.reward.append(float(res.raw_reward[0]))
        trace.terminated.append(bool(res.terminated[0]))
        trace.truncated.append(bool(res.truncated[0]))
        trace.lives.append(probe[0].lives)
        obs = res.observation[0].numpy().copy()
    env.close()
    return trace


def run_vector(game: str, kwargs: dict[str, Any], seed: int, actions: np.ndarray, max_frames: int) -> Trace:
    from ale_py.vector_env import AtariVectorEnv

    vec = AtariVectorEnv(snake(game), 1, num_threads=1, reward_clipping=False, stack_num=4, img_height=84,
                         img_width=84, max_num_frames_per_episode=max_frames, **kwargs)
    trace = Trace()
    obs, info = vec.reset(seed=np.array([ale_seed(seed)]))
    for action in actions:
        trace.obs.append(obs[0].copy())
        nxt, reward, terminated, truncated, info = vec.step(np.array([int(action)]))
        trace.next_obs.append(nxt[0].copy())
        trace.reward.append(float(reward[0]))
        trace.terminated.append(bool(terminated[0]))
        trace.truncated.append(bool(truncated[0]))
        trace.lives.append(int(info["lives"][0]))
        obs = nxt
        if terminated[0] or truncated[0]:
            obs, info = vec.reset(options={"reset_mask": np.array([True])})
    vec.close()
    return trace


def compare(a: Trace, b: Trace) -> dict[str, Any]:
    steps = len(a.reward)
    na, nb = np.stack(a.next_obs), np.stack(b.next_obs)
    oa, ob = np.stack(a.obs), np.stack(b.obs)
    diff = np.abs(na.astype(np.int16) - nb.astype(np.int16))
    newest = diff[:, -1]
    obs_diff = oa != ob
    rows = [t for t in range(steps) if not np.array_equal(na[t], nb[t])]
    newest_rows = [t for t in range(steps) if newest[t].any()]
    # stack entries that are zero-padding in the vector env (frames from before a reset)
    zero_pad = int(sum((ob[t, i] == 0).all() and not (oa[t, i] == 0).all() for t in range(steps) for i in range(4)))
    flags = {name: int(np.sum(np.asarray(getattr(a, name)) != np.asarray(getattr(b, name))))
             for name in ("reward", "terminated", "truncated", "lives")}
    first = {name: next((t for t in range(steps) if getattr(a, name)[t] != getattr(b, name)[t]), None)
             for name in ("reward", "terminated", "truncated", "lives")}
    return {
        "steps": steps,
        "next_obs_identical_steps": steps - len(rows),
        "next_obs_first_differing_step": rows[0] if rows else None,
        "newest_frame_identical_steps": steps - len(newest_rows),
        "newest_frame_first_differing_step": newest_rows[0] if newest_rows else None,
        "newest_frame_max_abs_diff": int(newest.max()),
        "newest_frame_differing_pixel_fraction": float((newest > 0).mean()),
        "stack_max_abs_diff": int(diff.max()),
        "stack_differing_pixel_fraction": float((diff > 0).mean()),
        "acting_obs_identical_steps": int(steps - obs_diff.any(axis=(1, 2, 3)).sum()),
        "acting_obs_zero_padded_frames_in_vector": zero_pad,
        "mismatching_steps": flags,
        "first_mismatch_step": first,
        "episodes_ended": {"rlkit": int(np.sum(np.asarray(a.terminated) | np.asarray(a.truncated))),
                           "ale_vector": int(np.sum(np.asarray(b.terminated) | np.asarray(b.truncated)))},
        "raw_return": {"rlkit": float(np.sum(a.reward)), "ale_vector": float(np.sum(b.reward))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="Breakout")
    parser.add_argument("--config", choices=sorted(CONFIGS), default="frames")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=positive_int, default=2000)
    args = parser.parse_args()
    options, kwargs = CONFIGS[args.config]
    try:
        resolved = get_suite("atari").resolve(None, args.game, options)
    except ValueError as err:  # (an unknown game: the message names the close ones)
        parser.error(f"--game {args.game}: {err}")
    n_actions = 18 if resolved.make_kwargs["full_action_space"] else None
    if n_actions is None:
        probe = gym.make(resolved.env_id, **resolved.make_kwargs)
        n_actions = int(probe.action_space.n)  # type: ignore[attr-defined]
        probe.close()
    actions = np.random.default_rng(args.seed).integers(0, n_actions, args.steps)
    a = run_rlkit(args.game, options, args.seed, actions)
    b = run_vector(args.game, kwargs, args.seed, actions, int(resolved.make_kwargs["max_num_frames_per_episode"]))
    print(json.dumps({"game": args.game, "config": args.config, "seed": args.seed, "rlkit_options": options,
                      "vector_kwargs": kwargs, **compare(a, b)}, indent=1))


if __name__ == "__main__":
    sys.exit(interruptible(main, "atari_vector_compare.py"))
