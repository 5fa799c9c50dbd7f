"""What the entry scripts (``train.py``, ``evaluate.py``, ``export.py``) need before their imports:
those take seconds (torch, Hydra), and a Ctrl-C during them, or during the command line's checks,
ends in one line rather than a ``KeyboardInterrupt`` traceback. Standard library only: importing
this module must itself be quick.

Examples:
    >>> from rlkit.startup import interrupted_before_start
    >>> try:
    ...     interrupted_before_start("train.py")
    ... except SystemExit as stop:
    ...     print(stop.code)
    130
"""
from __future__ import annotations

import sys

__all__ = ["interrupted_before_start"]


def interrupted_before_start(script: str) -> None:
    """Says that ``script`` was interrupted before its work started, on stderr, and exits with
    status 130 (128 + SIGINT), as an interrupted run does."""
    print(f"\nrlkit: {script} interrupted before it started; nothing was written", file=sys.stderr)
    raise SystemExit(130)
