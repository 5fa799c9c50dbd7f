"""Wall time of N seeds trained in one process (``num_seeds=N``) against one ordinary run and against
N ordinary runs as ``--jobs`` parallel processes (2 by default), and of the N seeds split over
``--jobs`` multi-seed processes (what ``scripts/reproduce.py seeds=N jobs=2`` runs).

Usage::

    python scripts/bench_seeds.py                                   # dqn/c51/a2c_cartpole, N = 1 2 5 10 20, 50k frames
    python scripts/bench_seeds.py --experiments dqn_cartpole --seeds 1 5 10 --frames 20000

Every measurement is one ``train.py`` process (or ``--jobs`` of them at once) from start to exit,
start-up included, with ``logger=none``, no early stop, no evaluation until the end and no periodic
checkpoints, so the figures compare the training loops. Timings on a shared machine are noisy:
compare the ratios printed beside each figure (to one ordinary run of the same experiment), and
rerun on a quiet machine for the figures you report.

Two in-process views of where the time goes::

    # the loop alone (no start-up), with its collection and update phases timed, in a chosen regime
    python scripts/bench_seeds.py --loop --experiments dqn_cartpole --seeds 10 --frames 30000 \
        --set algo.learning_starts=1000 algo.eps_annealing_frames=5000
    python scripts/bench_seeds.py --env-steps --seeds 10   # N CartPole env steps: raw, rlkit per seed, one rlkit env

``--loop`` wraps the trainers' and collectors' phase methods with timers (this script only) and
runs ``rlkit.run.run`` in this process for the ordinary run and for each N.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rlkit.script_args import interruptible, positive_int

ROOT = Path(__file__).resolve().parent.parent


def command(experiment: str, frames: int, seed: int, num_seeds: int, run_dir: Path) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), f"experiment={experiment}", f"total_frames={frames}",
            f"seed={seed}", f"num_seeds={num_seeds}", "logger=none", "trainer.progress=false",
            "trainer.early_stop=false", "trainer.eval_interval=0", "trainer.checkpoint_interval=0",
            "trainer.eval_episodes=2", f"hydra.run.dir={run_dir}"]


class RunFailed(RuntimeError):
    """A timed ``train.py`` command failed (its last line of stderr in the message)."""


def timed(commands: list[list[str]], jobs: int) -> float:
    """Seconds to run ``commands``, ``jobs`` at a time."""
    def one(cmd: list[str]) -> None:
        done = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:  # (train.py's own one-line refusal or error, not a traceback of this script)
            lines = done.stderr.strip().splitlines()
            raise RunFailed(f"{' '.join(cmd[2:])} ended with status {done.returncode}: "
                            f"{lines[-1] if lines else '(no output)'}")

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, commands))
    return time.perf_counter() - start


PHASES = {  # (module, class, method) -> column
    ("rlkit.collectors.multiseed", "MultiSeedCollector", "next_batch"): "collect",
    ("rlkit.trainers.multiseed", "MultiSeedTrainer", "_off_policy_step"): "replay+update",
    ("rlkit.trainers.multiseed", "MultiSeedTrainer", "_optimise"): "update",
    ("rlkit.trainers.trainer", "Trainer", "_off_policy_step"): "replay+update",
    ("rlkit.trainers.trainer", "Trainer", "_optimise"): "update",
}


def loop_timings(experiment: str, frames: int, num_seeds: int, extra: list[str]) -> dict[str, tuple[float, int]]:
    """Seconds and calls of each phase in one in-process run, and ``"loop"``: the whole ``run``."""
    import importlib
    import tempfile as tmp
    from collections import Counter

    import torch
    from hydra import compose, initialize_config_dir

    from rlkit.run import run

    seconds: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    originals = []
    for (module_name, cls_name, method), column in PHASES.items():
        cls = getattr(importlib.import_module(module_name), cls_name)
        original = getattr(cls, method)
        originals.append((cls, method, original))

        def timed_method(*args, _f=original, _c=column, **kwargs):
            start = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                seconds[_c] += time.perf_counter() - start
                calls[_c] += 1

        setattr(cls, method, timed_method)
    overrides = [f"experiment={experiment}", f"total_frames={frames}", f"num_seeds={num_seeds}", "logger=none",
                 "trainer.progress=false", "trainer.early_stop=false", "trainer.eval_interval=0",
                 "trainer.checkpoint_interval=0", "trainer.eval_episodes=2", *extra]
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        torch.set_num_threads(1)
        start = time.perf_counter()
        with tmp.TemporaryDirectory(prefix="rlkit-bench-loop-") as folder:
            run(cfg, Path(folder) / "run")
            seconds["loop"], calls["loop"] = time.perf_counter() - start, 1
    finally:
        for cls, method, original in originals:
            setattr(cls, method, original)
    return {key: (seconds[key], calls[key]) for key in seconds}


def print_loops(args: argparse.Namespace) -> None:
    print("| experiment | N | loop (s) | x ordinary | update (µs) | updates | collect + replay per frame and seed (µs) |")
    print("|---|---|---|---|---|---|---|")
    for experiment in args.experiments:
        base = None
        for row, n in enumerate([1, *args.seeds]):
            t = loop_timings(experiment, args.frames, n, args.set)
            loop, update = t["loop"][0], t.get("update", (0.0, 0))
            base = base or loop
            rest = (loop - update[0]) / (args.frames * n) * 1e6
            label = "ordinary" if row == 0 else str(n)  # (then num_seeds=1 too, when asked for)
            per_update = f"{update[0] / update[1] * 1e6:.0f}" if update[1] else "-"
            print(f"| {experiment} | {label} | {loop:.2f} | {loop / base:.2f} | {per_update} | {update[1]} | {rest:.1f} |",
                  flush=True)


def print_env_steps(seeds: list[int], steps: int = 3000) -> None:
    """Per lockstep step, N CartPole-v1 steps: raw gymnasium envs, one rlkit ``GymEnv`` per seed,
    and one rlkit ``GymEnv`` over an N-env ``SyncVectorEnv`` (random actions)."""
    import gymnasium as gym
    import torch

    from rlkit.envs.gym_env import GymEnv

    print("| N | raw gymnasium (µs) | rlkit GymEnv per seed (µs) | one rlkit GymEnv, sync (µs) |")
    print("|---|---|---|---|")
    for n in seeds:
        raw = [gym.make("CartPole-v1") for _ in range(n)]
        for k, env in enumerate(raw):
            env.reset(seed=k)
        start = time.perf_counter()
        for i in range(steps):
            for env in raw:
                _, _, terminated, truncated, _ = env.step(i % 2)
                if terminated or truncated:
                    env.reset()
        t_raw = (time.perf_counter() - start) / steps
        per_seed = [GymEnv("CartPole-v1", seed=k) for k in range(n)]
        for k, env in enumerate(per_seed):
            env.reset(seed=k)
        actions = torch.randint(2, (steps, n))
        start = time.perf_counter()
        for i in range(steps):
            for k, env in enumerate(per_seed):
                env.advance(actions[i, k:k + 1])
        t_seed = (time.perf_counter() - start) / steps
        sync = GymEnv("CartPole-v1", num_envs=n, vectorization="sync", seed=0)
        sync.reset(seed=0)
        start = time.perf_counter()
        for i in range(steps):
            sync.advance(actions[i])
        t_sync = (time.perf_counter() - start) / steps
        for env in (*raw, *per_seed, sync):
            env.close()
        print(f"| {n} | {t_raw * 1e6:.0f} | {t_seed * 1e6:.0f} | {t_sync * 1e6:.0f} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", nargs="+", default=["dqn_cartpole", "c51_cartpole", "a2c_cartpole"])
    parser.add_argument("--seeds", nargs="+", type=positive_int, default=[1, 2, 5, 10, 20], help="values of N")
    parser.add_argument("--frames", type=positive_int, default=50_000, help="frames per seed")
    parser.add_argument("--jobs", type=positive_int, default=2, help="parallel processes for the N ordinary runs")
    parser.add_argument("--no-processes", action="store_true", help="skip the measurements with several processes")
    parser.add_argument("--loop", action="store_true", help="time the loop and its phases in this process")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides for --loop runs")
    parser.add_argument("--env-steps", action="store_true", help="time N CartPole env steps three ways")
    args = parser.parse_args(argv)
    if args.env_steps:
        print_env_steps(args.seeds)
        return 0
    if args.loop:
        print_loops(args)
        return 0
    with tempfile.TemporaryDirectory(prefix="rlkit-bench-seeds-") as folder:
        try:
            print_processes(args, Path(folder))
        except RunFailed as err:
            print(f"bench_seeds.py: {err}", file=sys.stderr)
            return 1
    return 0


def print_processes(args: argparse.Namespace, out: Path) -> None:
    """The table of N seeds in one process against one run, against N runs as ``--jobs``
    processes, and of the N seeds split over ``--jobs`` multi-seed processes (``reproduce.py
    seeds=N jobs=<jobs>``); the runs' directories go into ``out``."""
    jobs = args.jobs
    print(f"| experiment | N | one process (s) | x one run | {jobs} processes (s) | x one run | "
          f"{jobs} multi-seed processes (s) | x one run | x {jobs} processes |")
    print("|---|---|---|---|---|---|---|---|---|")
    for experiment in args.experiments:
        def run_dir(tag: str) -> Path:
            return out / f"{experiment}_{tag}_{time.monotonic_ns()}"

        single = timed([command(experiment, args.frames, 0, 1, run_dir("single"))], 1)
        print(f"| {experiment} | ordinary | {single:.1f} | 1.00 | | | | | |", flush=True)
        for n in args.seeds:
            batched = timed([command(experiment, args.frames, 0, n, run_dir(f"n{n}"))], 1)
            row = f"| {experiment} | {n} | {batched:.1f} | {batched / single:.2f} |"
            if args.no_processes:
                row += " | | | | |"
            else:
                apart = timed([command(experiment, args.frames, s, 1, run_dir(f"p{s}")) for s in range(n)], jobs)
                row += f" {apart:.1f} | {apart / single:.2f} |"
                from reproduce import batch_groups  # (this script's folder: reproduce.py's own split)

                groups = batch_groups(list(range(n)), jobs)
                if len(groups) > 1:  # (one group is the one-process column)
                    split = timed([command(experiment, args.frames, first, count, run_dir(f"g{first}"))
                                   for first, count in groups], jobs)
                    row += f" {split:.1f} | {split / single:.2f} | {split / apart:.2f} |"
                else:
                    row += " | | |"
            print(row, flush=True)

if __name__ == "__main__":
    from rlkit.trainers import TrainingInterrupted

    sys.exit(interruptible(main, "bench_seeds.py", "no figures were printed for the row it was timing",
                          stops=(KeyboardInterrupt, TrainingInterrupted)))
