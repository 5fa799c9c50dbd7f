"""rlkit entry point: `python train.py algo=dqn env=CartPole [key=value ...]` (Hydra; `-m` sweeps).

Thin: everything Hydra-specific is in rlkit/cli/ (the task in rlkit/cli/tasks.py), the run itself in
rlkit/run.py.
"""
from __future__ import annotations

import sys

from rlkit import startup  # (standard library only: quick)

if {"-m", "--multirun"} & set(sys.argv[1:]):  # (a sweep's threads keep Ctrl-C blocked: see rlkit.startup)
    startup.hold_ctrl_c()
try:
    import hydra
    from omegaconf import DictConfig

    from rlkit import cli

    cli.register_resolvers()
    startup.release_ctrl_c()
except KeyboardInterrupt:
    if __name__ != "__main__":
        raise
    startup.interrupted("train.py")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return cli.train_task(cfg)


if __name__ == "__main__":
    try:
        cli.prepare_argv(sys.argv)
        main()
    except KeyboardInterrupt:  # (outside a run: a run's own interruptions end it with their own line)
        startup.interrupted("train.py", sweep=cli.in_sweep())
    finally:
        startup.before_exit()  # (the task has ended: its exit skips a last GC pass)
    sys.exit(cli.sweep_exit_status())  # a sweep (-m) with a failed job ends with status 1
