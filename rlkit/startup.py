"""What the entry scripts (``train.py``, ``evaluate.py``, ``export.py``) need outside their task: a
Ctrl-C that reaches their top level ends in one line rather than a ``KeyboardInterrupt``
traceback, saying what it interrupted (the task's own interruptions, such as a stopped run, end with
their own lines). Their imports take seconds (torch, Hydra), so this module imports only the
standard library.

Examples:
    >>> from rlkit import startup
    >>> try:
    ...     startup.interrupted("train.py")
    ... except SystemExit as stop:
    ...     print(stop.code)
    130
"""
from __future__ import annotations

import sys
from typing import Literal

__all__ = ["interrupted", "mark"]

Stage = Literal["starting", "running", "done"]
_stage: Stage = "starting"


def mark(stage: Stage) -> None:
    """Records where the script's task is: ``running`` when it starts, ``done`` when it has
    completed (a sweep's next job marks ``running`` again)."""
    global _stage
    _stage = stage


def interrupted(script: str, *, sweep: bool = False) -> None:
    """A Ctrl-C that reached ``script``'s top level, said in one line on stderr: before its task
    started (nothing was written), or between the jobs of a ``sweep`` (exit status 130 for both);
    after a completed task outside a sweep, nothing was left to stop and it returns (the script
    ends with its task's own status)."""
    if _stage == "starting":
        print(f"\nrlkit: {script} interrupted before it started; nothing was written", file=sys.stderr)
        raise SystemExit(130)
    if sweep:
        print(f"\nrlkit: {script} interrupted between the runs of a sweep; the runs that finished are kept",
              file=sys.stderr)
        raise SystemExit(130)
    print(f"\nrlkit: {script}: Ctrl-C after its work completed; nothing to stop", file=sys.stderr)
