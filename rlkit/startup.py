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

import contextlib
import gc
import signal
import sys
from typing import Literal

__all__ = ["before_exit", "hold_ctrl_c", "interrupted", "mark", "release_ctrl_c"]

Stage = Literal["starting", "running", "done"]
_stage: Stage = "starting"


def mark(stage: Stage) -> None:
    """Records where the script's task is: ``running`` when it starts, ``done`` when it has
    completed (a sweep's next job marks ``running`` again)."""
    global _stage
    _stage = stage


def hold_ctrl_c() -> None:
    """Blocks Ctrl-C (SIGINT) in this thread while ``train.py -m`` imports its modules: a thread they
    start (``import torch`` starts one) keeps the mask it started with, so Ctrl-C stays blocked there
    and reaches the main thread, or, during a joblib sweep, the thread that takes it for the sweep
    (:func:`rlkit.cli.callbacks._stops_in_workers`: a thread with Ctrl-C unblocked would pass it to the
    main thread as a ``KeyboardInterrupt``). :func:`release_ctrl_c` unblocks it, raising a Ctrl-C
    that came meanwhile."""
    with contextlib.suppress(AttributeError, ValueError, OSError):  # (no pthread_sigmask: Windows)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def release_ctrl_c() -> None:
    """Unblocks Ctrl-C in this thread after :func:`hold_ctrl_c` (one that came meanwhile is raised
    now, as a ``KeyboardInterrupt`` under Python's default handler).

    Examples:
        >>> from rlkit import startup
        >>> startup.hold_ctrl_c(); startup.release_ctrl_c()
        >>> import signal; signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
        False
    """
    with contextlib.suppress(AttributeError, ValueError, OSError):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


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


def before_exit() -> None:
    """Spares the interpreter's exit a last pass of the cyclic garbage collector over every object
    still alive (``gc.freeze``): with torch, tensordict and Hydra loaded that pass took about a second
    of each script's exit here (measured: ``train.py`` exited 1.1 s after its ``done:`` line, 0.15 s
    with this). Called by the entry scripts once their task has ended, however it ended: its files
    and loggers are closed by then. Objects keep being freed when their last reference goes; what no
    longer runs is a ``__del__`` of an object caught in a reference cycle at exit, which Python does
    not promise to run at exit anyway.

    The stop signals (Ctrl-C, SIGTERM, SIGHUP) are then ignored: the task has nothing left to stop,
    and the interpreter's shutdown puts Python's handlers back to the default action, so a signal in
    the last tenth of a second killed a completed run with status 130 or 143 and no word.

    Examples:
        >>> import gc, signal
        >>> from rlkit import startup
        >>> handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        >>> startup.before_exit()
        >>> gc.get_freeze_count() > 0, signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        (True, True)
        >>> gc.unfreeze()  # (a process that goes on: its objects back under the collector, its handlers back)
        >>> for s, handler in handlers.items():
        ...     _ = signal.signal(s, handler)
    """
    gc.freeze()
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        stop = getattr(signal, name, None)
        if stop is not None:
            with contextlib.suppress(ValueError, OSError):  # (not the main thread: nothing to change)
                signal.signal(stop, signal.SIG_IGN)
