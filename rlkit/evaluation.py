"""Evaluating a trained run: :func:`evaluate` plays episodes with its agent and writes the results.

What ``python evaluate.py run=<run dir or checkpoint> [episodes=10] [video=true] [seed=...]
[device=...] [epsilon=...] [deterministic=true]`` runs (the Hydra entry is :func:`rlkit.cli.tasks.evaluate_task`).
Everything is checked before anything is written: the arguments, the checkpoint (verified as a
resume verifies it, :func:`rlkit.agent.open_run`), the agent and the env; only then is the evaluation directory
``<run dir>/eval/<timestamp>/`` created, with ``results.json`` and, with ``video=true``, one
``episode-<i>.mp4`` per episode.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from rlkit.agent import Agent, check_positive, given_or_loaded
from rlkit.config_schema import EVAL_SEED_OFFSET, MAX_SEED
from rlkit.envs.suites import get_suite
from rlkit.errors import ConfigError
from rlkit.factories import make_env
from rlkit.rundir import check_outside_run_files
from rlkit.trainers.evaluator import Evaluator
from rlkit.trainers.video import check_video_support, video_wrappers, warn_no_video
from rlkit.utils.io import atomic_write, missing_folders, remove_empty_folders

__all__ = ["RESULTS_FILE", "evaluate", "format_results"]

RESULTS_FILE = "results.json"


def evaluate(run: str | os.PathLike[str], *, episodes: int = 10, video: bool = False, seed: int | None = None,
             device: str = "cpu", deterministic: bool = True, epsilon: float | None = None,
             output_dir: str | os.PathLike[str] | None = None, agent: Agent | None = None,
             checkpoint: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Plays ``episodes`` evaluation episodes with the agent of ``run`` and writes ``results.json``.

    The episodes run as the run's own evaluations do (one per sub-env of an evaluation env with the
    run's wrappers and its transforms frozen at the checkpoint; returns are the env's own rewards,
    e.g. an Atari game's raw score). With the run's seed (``seed + 10000``, the default), its
    evaluation epsilon (``trainer.eval_epsilon``, the default) and ``trainer.eval_episodes``
    episodes, they are the episodes of the run's last evaluation.

    Args:
        run: a run directory or a checkpoint file in one.
        episodes: how many episodes (positive).
        video: record each episode (``episode-<i>.mp4``, gymnasium's ``RecordVideo``; needs
            ``moviepy``, the extra ``pip install -e ".[video]"``). The sub-envs are then stepped in
            a loop, never by a native vector env, which for CartPole seeds other episodes.
        seed: seed of the evaluation env (sub-env ``i`` gets ``seed + i``; a native vector env,
            such as CartPole's, seeds one generator for all its sub-envs, so that each episode depends
            on ``episodes``); default the run's seed + 10000, the seed of its own evaluations.
        device: where the networks run.
        deterministic: a stochastic policy's (A2C's) mode action; ``False`` samples it. A greedy
            Q-value policy (DQN, C51) acts the same either way.
        epsilon: with discrete actions, the probability of a uniformly random (allowed) action at
            each step; default the run's ``trainer.eval_epsilon``, the protocol of its own
            evaluations (0.05 for the Atari experiments, 0 otherwise); ``0`` for purely greedy
            episodes. Ignored with continuous actions.
        output_dir: where to write; default ``<run dir>/eval/<timestamp>/`` (a new directory). Inside
            this run's directory only its ``eval/`` folder is taken, not the run's own files (its
            ``checkpoints/``, ``.hydra/``, config and logs); inside another run's directory, nowhere.
        agent: the run's agent when the caller loaded it already (:func:`rlkit.load_agent`).
        checkpoint: the checkpoint of the run directory ``run`` to evaluate, by file name
            (``step_50000.pt``); default its last.

    Returns:
        The results written to ``results.json``: ``return_mean``, ``return_std``, ``length_mean``,
        ``length_std``, the per-episode ``returns`` and ``lengths``, ``unfinished`` (how many
        episodes the evaluation's ``max_steps`` cap cut short: their returns are their returns so
        far, and a warning is logged) with the per-episode ``finished`` flags, ``videos``,
        ``output_dir`` and what was evaluated (run, checkpoint, frames, algo, env, seed, episodes,
        deterministic, epsilon (the one acted with), max_steps).

    Raises:
        RlkitError: before anything is written: bad arguments (``ConfigError``: an ``output_dir``
            among a run's own files, a file or a non-empty directory included), a missing run or
            checkpoint, a corrupt or unsafe one, a checkpoint that does not fit the run's config,
            an env that cannot be built, or (``video``) moviepy missing or an env that cannot
            render.
    """
    episodes = check_positive("episodes", episodes)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED):
        raise ConfigError(f"seed={seed!r} is invalid: expected an integer in [0, {MAX_SEED}]")
    if not isinstance(deterministic, bool):
        raise ConfigError(f"deterministic={deterministic!r} is invalid: expected true or false")
    if epsilon is not None and (isinstance(epsilon, bool) or not isinstance(epsilon, (int, float))
                                or not 0 <= epsilon <= 1):
        raise ConfigError(f"epsilon={epsilon!r} is invalid: expected a number in [0, 1], or null for the run's "
                          "trainer.eval_epsilon")
    if not isinstance(video, bool):
        raise ConfigError(f"video={video!r} is invalid: expected true or false")
    agent = given_or_loaded(agent, run, device=device, checkpoint=checkpoint)
    settings = agent.settings
    if video:
        env = settings.env
        check_video_support(get_suite(env.suite).resolve(env.id, env.game, env.options).env_id)
    seed = settings.root.seed + EVAL_SEED_OFFSET if seed is None else seed
    epsilon = agent.epsilon if epsilon is None else float(epsilon)
    if epsilon > 0 and agent.policy.num_actions < 1:
        epsilon = 0.0  # an evaluation epsilon acts in discrete action spaces only

    out = Path(output_dir) if output_dir is not None else _new_eval_dir(agent.run_dir)
    check_outside_run_files(out, "eval", "the evaluation", shown=f"output directory {str(out)!r}", run=agent.run_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output directory {out} is a file; give a new or empty directory")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"output directory {out} is not empty; give a new or empty one")
    made = missing_folders(out)  # (out and the parents it needs: a failed evaluation leaves none behind)
    created = bool(made)

    def remove_made() -> None:
        shutil.rmtree(out, ignore_errors=True)
        remove_empty_folders(made[1:])

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        remove_empty_folders(made)
        raise ConfigError(f"output directory {out} cannot be created: {err.strerror or err}") from err
    try:
        wrappers = video_wrappers(out, lambda i: f"episode-{i}") if video else None
        eval_env = make_env(settings, num_envs=episodes, seed=seed, evaluating=agent.transforms, render=video,
                            extra_wrappers=[wrappers] if wrappers is not None else [])
    except BaseException:
        if created:
            remove_made()
        raise
    evaluator = Evaluator(eval_env, agent.actor, seed=seed, epsilon=epsilon, deterministic=deterministic)
    try:
        try:
            if wrappers is not None:
                wrappers.arm()
            # (deterministic=False: the evaluator seeds the sampled actions and a gSDE head's
            # weights with `seed` and puts the global generators and the agent's weights back.)
            returns, lengths = evaluator.episodes()
            if wrappers is not None:
                wrappers.stop()
        except BaseException:
            if wrappers is not None:
                wrappers.discard()  # (not encoded on close: removed below)
            raise
        finally:
            evaluator.close()
    except BaseException:  # nothing half-written stays: the videos of unfinished episodes included
        if created:
            remove_made()
        else:
            for partial in out.glob("episode-*.mp4"):
                partial.unlink(missing_ok=True)
        raise
    videos = sorted(str(p) for p in out.glob("episode-*.mp4")) if video else []
    if video and len(videos) < episodes:
        warn_no_video(f"the video of {episodes - len(videos)} of the {episodes} episodes")
    results: dict[str, Any] = {
        "run_dir": str(agent.run_dir),
        "checkpoint": str(agent.checkpoint),
        "frames": agent.frames,
        "algo": settings.algo.name,
        "env": agent.env_name,
        "episodes": episodes,
        "seed": seed,
        "deterministic": deterministic,
        "epsilon": epsilon,
        "max_steps": evaluator.max_steps,
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "length_mean": float(lengths.mean()),
        "length_std": float(lengths.std()),
        "returns": [float(r) for r in returns],
        "lengths": [int(n) for n in lengths],
        "unfinished": int((~evaluator.finished).sum()),
        "finished": [bool(f) for f in evaluator.finished],
        "videos": videos,
        "output_dir": str(out),
    }
    with atomic_write(out / RESULTS_FILE) as f:
        f.write(json.dumps(results, indent=2) + "\n")
    return results


def format_results(results: dict[str, Any]) -> str:
    """One line summing up :func:`evaluate`'s results (and the episodes the step cap cut short, if any).

    Examples:
        >>> from rlkit.evaluation import format_results
        >>> format_results({"episodes": 2, "return_mean": 9.5, "return_std": 0.5, "length_mean": 9.5,
        ...                 "length_std": 0.5, "output_dir": "runs/x/eval/1"})
        'eval: 2 episodes | return 9.50 ± 0.50 | length 9.5 ± 0.5 | results: runs/x/eval/1/results.json'
        >>> format_results({"episodes": 2, "return_mean": 9.5, "return_std": 0.5, "length_mean": 9.5,
        ...                 "length_std": 0.5, "output_dir": "e", "unfinished": 1, "max_steps": 10})
        'eval: 2 episodes | return 9.50 ± 0.50 | length 9.5 ± 0.5 | 1 unfinished at the 10-step cap | results: e/results.json'
        >>> format_results({"episodes": 1, "return_mean": 9.0, "return_std": 0.0, "length_mean": 9.0,
        ...                 "length_std": 0.0, "output_dir": "e"})
        'eval: 1 episode | return 9.00 ± 0.00 | length 9.0 ± 0.0 | results: e/results.json'
        >>> format_results({"episodes": 3, "return_mean": 9.0, "return_std": 0.0, "length_mean": 9.0,
        ...                 "length_std": 0.0, "output_dir": "e", "epsilon": 0.05})
        'eval: 3 episodes, epsilon 0.05 | return 9.00 ± 0.00 | length 9.0 ± 0.0 | results: e/results.json'
    """
    unfinished = results.get("unfinished", 0)
    cut = f" | {unfinished} unfinished at the {results['max_steps']}-step cap" if unfinished else ""
    count, epsilon = results["episodes"], results.get("epsilon", 0.0)
    acted = f", epsilon {epsilon:g}" if epsilon else ""
    return (f"eval: {count} episode{'' if count == 1 else 's'}{acted} | return {results['return_mean']:.2f} ± {results['return_std']:.2f}"
            f" | length {results['length_mean']:.1f} ± {results['length_std']:.1f}{cut}"
            f" | results: {Path(results['output_dir']) / RESULTS_FILE}")


def _new_eval_dir(run_dir: Path) -> Path:
    """``<run_dir>/eval/<YYYY-mm-dd_HH-MM-SS>`` (with a ``_<k>`` suffix when that exists)."""
    base = run_dir / "eval" / time.strftime("%Y-%m-%d_%H-%M-%S")
    path, k = base, 1
    while path.exists():
        path, k = base.with_name(f"{base.name}_{k}"), k + 1
    return path

