"""Exports a trained run's greedy policy: `python export.py run=<run dir> format=torchscript|onnx|pt2
[out=path]` (Hydra; config conf/export.yaml).

Thin: the Hydra entry is in rlkit/cli/tasks.py, the export in rlkit/exporter.py. Writes
<run>/export/policy.<pt|pt2|onnx> by default (policy_<checkpoint>.<suffix> for a checkpoint other than
the run's latest): observation tensor -> action tensor, the run's normalisation inside, loadable
without rlkit. An existing file there (or at out=) is replaced only when it is an earlier export.
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
    startup.interrupted("export.py")


@hydra.main(config_path="conf", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    cli.export_task(cfg)


if __name__ == "__main__":
    try:
        cli.prepare_argv(sys.argv, config_name="export")
        main()
        sys.exit(cli.sweep_exit_status())  # a sweep (-m) with a failed job ends with status 1
    except KeyboardInterrupt:  # (before the task: its own interruptions end it with their own line)
        startup.interrupted("export.py")
    finally:
        startup.before_exit()  # (the task has ended: its exit skips a last GC pass)
