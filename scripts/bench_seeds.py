"""Wall time of N seeds trained in one process (``num_seeds=N``) against one ordinary run and against
N ordinary runs as ``--jobs`` parallel processes (2 by default).

Usage::

    python scripts/bench_seeds.py                                   # dqn/c51/a2c_cartpole, N = 1 2 5 10 20, 50k frames
    python scripts/bench_seeds.py --experiments dqn_cartpole --seeds 1 5 10 --frames 20000

Every measurement is one ``train.py`` process (or ``--jobs`` of them at once) from start to exit,
start-up included, with ``logger=none``, no early stop, no evaluation until the end and no periodic
checkpoints, so the figures compare the training loops. Timings on a shared machine are noisy:
compare the ratios printed beside each figure (to one ordinary run of the same experiment), and
rerun on a quiet machine for the figures you report.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(experiment: str, frames: int, seed: int, num_seeds: int, run_dir: Path) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), f"experiment={experiment}", f"total_frames={frames}",
            f"seed={seed}", f"num_seeds={num_seeds}", "logger=none", "trainer.progress=false",
            "trainer.early_stop=false", "trainer.eval_interval=0", "trainer.checkpoint_interval=0",
            "trainer.eval_episodes=2", f"hydra.run.dir={run_dir}"]


def timed(commands: list[list[str]], jobs: int) -> float:
    """Seconds to run ``commands``, ``jobs`` at a time."""
    def one(cmd: list[str]) -> None:
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, commands))
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=["dqn_cartpole", "c51_cartpole", "a2c_cartpole"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 5, 10, 20], help="values of N")
    parser.add_argument("--frames", type=int, default=50_000, help="frames per seed")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes for the N ordinary runs")
    parser.add_argument("--no-processes", action="store_true", help="skip the N-ordinary-runs measurements")
    args = parser.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="rlkit-bench-seeds-"))
    print(f"| experiment | N | one process (s) | x one run | {args.jobs} processes (s) | x one run |")
    print("|---|---|---|---|---|---|")
    for experiment in args.experiments:
        def run_dir(tag: str) -> Path:
            return out / f"{experiment}_{tag}_{time.monotonic_ns()}"

        single = timed([command(experiment, args.frames, 0, 1, run_dir("single"))], 1)
        print(f"| {experiment} | ordinary | {single:.1f} | 1.00 | | |", flush=True)
        for n in args.seeds:
            batched = timed([command(experiment, args.frames, 0, n, run_dir(f"n{n}"))], 1)
            row = f"| {experiment} | {n} | {batched:.1f} | {batched / single:.2f} |"
            if args.no_processes:
                row += " | |"
            else:
                apart = timed([command(experiment, args.frames, s, 1, run_dir(f"p{s}")) for s in range(n)], args.jobs)
                row += f" {apart:.1f} | {apart / single:.2f} |"
            print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
