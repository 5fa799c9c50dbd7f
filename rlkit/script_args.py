"""What the command-line scripts in ``scripts/`` share: argparse types that refuse a bad number in
argparse's one usage line (naming the option), and a Ctrl-C that ends a script in one line with exit
status 130 rather than a ``KeyboardInterrupt`` traceback.

Examples:
    >>> import argparse
    >>> from rlkit.script_args import positive_int
    >>> parser = argparse.ArgumentParser(prog="bench")
    >>> _ = parser.add_argument("--repeats", type=positive_int, default=3)
    >>> parser.parse_args(["--repeats", "5"]).repeats
    5
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

__all__ = ["interruptible", "positive_float", "positive_int"]


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1.

    Examples:
        >>> from rlkit.script_args import positive_int
        >>> positive_int("3")
        3
        >>> positive_int("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: '0' is not an integer >= 1
    """
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0.

    Examples:
        >>> from rlkit.script_args import positive_float
        >>> positive_float("2.5")
        2.5
        >>> positive_float("nan")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: 'nan' is not a finite number > 0
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number > 0")
    return value


def interruptible(main: Callable[[], int | None], name: str, left: str = "no result was written",
                  stops: tuple[type[BaseException], ...] = (KeyboardInterrupt,)) -> int:
    """``main()``'s exit status; a Ctrl-C that reaches it ends the script in one line on stderr
    (``<name>: interrupted; <left>``) with status 130. ``stops``: the exceptions that are a Ctrl-C
    there (a script training in its process adds :class:`~rlkit.trainers.TrainingInterrupted`).

    Examples:
        >>> from rlkit.script_args import interruptible
        >>> def stopped() -> int:
        ...     raise KeyboardInterrupt
        >>> import contextlib, io
        >>> with contextlib.redirect_stderr(io.StringIO()) as err:
        ...     status = interruptible(stopped, "bench.py")
        >>> status, err.getvalue()
        (130, '\\nbench.py: interrupted; no result was written\\n')
    """
    try:
        return int(main() or 0)
    except stops:
        print(f"\n{name}: interrupted; {left}", file=sys.stderr)
        return 130
