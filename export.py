"""Exports a trained run's greedy policy: `python export.py run=<run dir> format=torchscript|onnx|pt2
[out=path]` (Hydra; config conf/export.yaml).

Thin: the Hydra entry is in rlkit/cli/tasks.py, the export in rlkit/exporter.py. Writes
<run>/export/policy.<pt|pt2|onnx> by default (policy_<checkpoint>.<suffix> for a checkpoint other than
the run's latest): observation tensor -> action tensor, the run's normalisation inside, loadable
without rlkit. An existing file there (or at out=) is replaced only when it is an earlier export.
"""
from __future__ import annotations

import sys


def interrupted_before_start() -> None:
    """Ctrl-C before the script's work started (its imports take seconds, then the command line's
    checks): one line and status 130, instead of a KeyboardInterrupt traceback. Only the standard
    library here: the imports themselves may be what was interrupted."""
    print("\nrlkit: export.py interrupted before it started; nothing was written", file=sys.stderr)
    raise SystemExit(130)


try:
    import hydra
    from omegaconf import DictConfig

    from rlkit import cli
except KeyboardInterrupt:
    if __name__ != "__main__":
        raise
    interrupted_before_start()


@hydra.main(config_path="conf", config_name="export", version_base="1.3")
def main(cfg: DictConfig) -> None:
    cli.export_task(cfg)


if __name__ == "__main__":
    try:
        cli.prepare_argv(sys.argv, config_name="export")
        main()
    except KeyboardInterrupt:  # (before the task: its own interruptions end it with their own line)
        interrupted_before_start()
