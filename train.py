"""rlkit entry point: `python train.py algo=dqn env=CartPole [key=value ...]` (Hydra; `-m` sweeps).

Thin: everything Hydra-specific is in rlkit/cli/ (the task in rlkit/cli/tasks.py), the run itself in
rlkit/run.py.
"""
from __future__ import annotations

import os
import signal
import sys

from rlkit.startup import interrupted_before_start  # (standard library only: quick)

try:
    import hydra
    from omegaconf import DictConfig

    from rlkit import cli
    from rlkit.trainers.trainer import STOP_SIGNALS

    cli.register_resolvers()
except KeyboardInterrupt:
    if __name__ != "__main__":
        raise
    interrupted_before_start("train.py")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return cli.train_task(cfg)


def after_the_end(signum: int, frame: object) -> None:  # noqa: ARG001 (signal API)
    """A stop signal once training is over (the process is closing its envs and exiting): nothing is
    left to stop, and the exit status stays the run's (0: complete), not 128 + the signal's number
    with a run a resume calls complete. A second signal ends the process at once."""
    signal.signal(signum, signal.SIG_DFL)
    try:
        os.write(2, f"{signal.Signals(signum).name} received after training ended; nothing to stop\n".encode())
    except OSError:  # (SIGHUP: the terminal may be gone)
        pass


if __name__ == "__main__":
    try:
        cli.prepare_argv(sys.argv)
        main()
    except KeyboardInterrupt:  # (before the task: its own interruptions end it with their own line)
        interrupted_before_start("train.py")
    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, after_the_end)
    sys.exit(cli.sweep_exit_status())  # a sweep (-m) with a failed job ends with status 1
