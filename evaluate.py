"""Evaluates a trained run: `python evaluate.py run=<run dir or checkpoint> [episodes=10] [video=true]
[seed=...] [device=...] [deterministic=true]` (Hydra; config conf/evaluate.yaml).

Thin: the Hydra entry is in rlkit/cli/tasks.py, the evaluation in rlkit/evaluation.py. Writes
<run>/eval/<timestamp>/results.json (and episode-<i>.mp4 with video=true); out=<dir> for a new or
empty directory elsewhere (not among a run's own files).
"""
from __future__ import annotations

import sys

from rlkit import startup  # (standard library only: quick)

try:
    import hydra
    from omegaconf import DictConfig

    from rlkit import cli
except KeyboardInterrupt:
    if __name__ != "__main__":
        raise
    startup.interrupted("evaluate.py")


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    cli.evaluate_task(cfg)


if __name__ == "__main__":
    try:
        cli.prepare_argv(sys.argv, config_name="evaluate")
        main()
        sys.exit(cli.sweep_exit_status())  # a sweep (-m) with a failed job ends with status 1
    except KeyboardInterrupt:  # (before the task: its own interruptions end it with their own line)
        startup.interrupted("evaluate.py")
    finally:
        startup.before_exit()  # (the task has ended: its exit skips a last GC pass)
