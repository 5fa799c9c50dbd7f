"""Training progress on the console: a redrawn bar on a terminal, plain periodic lines elsewhere.

The bar is drawn by `tqdm <https://tqdm.github.io>`_ rather than rich: tqdm is one small pure-Python
package without dependencies, while rich brings pygments, markdown-it-py and mdurl for a single line
of output. tqdm does what a hand-written bar got wrong or left out: it follows the terminal's width
(also after a resize), redraws in place with the previous line cleared, throttles redraws, smooths
the rate, and prints a message above the bar without tearing it (``tqdm.write``). rlkit decides only
*what* the line says: :func:`progress_fields` picks the fields that fit the width, dropping the
least useful first, so that an 80-column terminal never wraps a redraw.

Off a terminal (CI, ``2> file``, a Hydra launcher's job) no bar is drawn: a plain line every
``interval_s`` seconds (10 by default), plus the last state at the end. Both kinds of line carry the
run's ``label`` (a sweep job's ``[job 3 lr=0.001 seed=1]``) and, at the end of a run that did not
simply use up its frame budget, one line that says why it stopped (:meth:`ConsoleLogger.log_end`).
"""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from tqdm import tqdm

from rlkit.trainers.loggers.base import EndReason, Logger

__all__ = ["ConsoleLogger", "ProgressState", "format_duration", "plain_line", "progress_fields"]

#: Seconds between two plain lines off a terminal: a long run stays readable in a log file.
PLAIN_INTERVAL_S = 10.0
# A terminal redraw is cheap but flicker and terminal I/O are not: at most 10 per second.
_TTY_MIN_INTERVAL_S = 0.1
# The narrowest bar worth drawing; below this the bar is left out.
_MIN_BAR = 8


def format_duration(seconds: float) -> str:
    """Formats seconds as ``MM:SS`` or ``H:MM:SS``; ``--:--`` when unknown.

    Examples:
        >>> from rlkit.trainers.loggers.console import format_duration
        >>> format_duration(75), format_duration(3725), format_duration(float("inf"))
        ('01:15', '1:02:05', '--:--')
    """
    if not math.isfinite(seconds):
        return "--:--"
    total = int(round(max(seconds, 0.0)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _format_number(value: float) -> str:
    # Large returns (Atari scores) read better as grouped integers than in scientific notation.
    return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"


@dataclass
class ProgressState:
    """What a progress line shows.

    Attributes:
        frames: frames done; total: the run's frame budget.
        rate: frames per second (``0`` when not known yet).
        elapsed: seconds since this session started.
        episode_return: latest training episode return (``None`` before the first).
        eval_return: latest greedy evaluation return (``None`` before the first).
    """

    frames: int
    total: int
    rate: float
    elapsed: float
    episode_return: float | None = None
    eval_return: float | None = None

    @property
    def eta(self) -> float:
        """Seconds left at the current rate (``inf`` when unknown, 0 when done)."""
        remaining = max(self.total - self.frames, 0)
        if remaining == 0:
            return 0.0
        return remaining / self.rate if self.rate > 0 else math.inf


def plain_line(state: ProgressState, label: str = "") -> str:
    """The line printed off a terminal: exact frame counts, every field.

    Examples:
        >>> from rlkit.trainers.loggers.console import ProgressState, plain_line
        >>> plain_line(ProgressState(10_000, 30_000, 2092.4, 5.0, 28.32, 74.7), "[job 1 seed=1]")
        '[job 1 seed=1] 10,000/30,000 frames (33.3%) | 2,092 frames/s | return 28.32 | eval 74.7 | 00:05<00:10'
    """
    parts = [f"{state.frames:,}/{state.total:,} frames ({100.0 * state.frames / state.total:.1f}%)",
             f"{state.rate:,.0f} frames/s"]
    if state.episode_return is not None:
        parts.append(f"return {_format_number(state.episode_return)}")
    if state.eval_return is not None:
        parts.append(f"eval {_format_number(state.eval_return)}")
    parts.append(f"{format_duration(state.elapsed)}<{format_duration(state.eta)}")
    return (f"{label} " if label else "") + " | ".join(parts)


def _count(n: float) -> str:
    # 950 -> '950', 20000 -> '20.0k', 2.5e6 -> '2.50M': at most 5 characters for a bar's counters.
    return f"{n:.0f}" if abs(n) < 999.5 else tqdm.format_sizeof(n)


def _short(value: float) -> str:
    # 3 significant digits; 12345.6 -> '12.3k' rather than '1.23e+04' (Atari scores).
    return f"{value:.3g}" if abs(value) < 999.5 else ("-" if value < 0 else "") + tqdm.format_sizeof(abs(value))


def progress_fields(state: ProgressState, width: int | None, label: str = "") -> tuple[str, str, int]:
    """The text left and right of the bar and the bar's width, fitted into ``width`` columns.

    The layout is tqdm's (``label  33%|####    | 10.0k/30.0k [00:05<00:10, 2.09k frames/s, ...]``).
    The last column stays free (some terminals wrap as soon as it is written). Tries, in order, until
    one fits with a bar of at least 8 columns: every field; without the word ``frames`` after the
    counts; the ETA without the elapsed time; short names (``fps``, ``ret``). Then the shortest
    without the bar, then with the label cut, and last the line cut at the width. ``width=None``
    (unknown) keeps every field with a 20-column bar.

    Examples:
        >>> from rlkit.trainers.loggers.console import ProgressState, progress_fields
        >>> state = ProgressState(10_000, 30_000, 2092.4, 5.0, 28.32, 74.7)
        >>> left, right, bar = progress_fields(state, 80)
        >>> left, right, bar
        (' 33%|', '| 10.0k/30.0k [ETA 00:10, 2.09k frames/s, return 28.3, eval 74.7]', 9)
        >>> progress_fields(state, 120)[1]
        '| 10.0k/30.0k frames [00:05<00:10, 2.09k frames/s, return 28.3, eval 74.7]'
        >>> progress_fields(state, 80, "[job 3 lr=0.001 seed=1]")  # no room for a bar: the label is cut
        ('[job 3 lr=0.001..  33% ', '10.0k/30.0k [ETA 00:10, 2.09k fps, ret 28.3, eval 74.7]', 0)
    """
    frames = f"{_count(state.frames)}/{_count(state.total)}"
    times = f"{format_duration(state.elapsed)}<{format_duration(state.eta)}"
    eta = f"ETA {format_duration(state.eta)}"
    percent = f"{100 * state.frames / state.total:3.0f}%"

    def fields(unit: str, when: str, long: bool) -> str:
        parts = [when, f"{_count(state.rate)} {'frames/s' if long else 'fps'}"]
        if state.episode_return is not None:
            parts.append(f"{'return' if long else 'ret'} {_short(state.episode_return)}")
        if state.eval_return is not None:
            parts.append(f"eval {_short(state.eval_return)}")
        return f"{frames}{unit} [{', '.join(parts)}]"

    prefix = f"{label} " if label else ""
    left = f"{prefix}{percent}|"
    if width is None:
        return left, "| " + fields(" frames", times, True), 20
    usable = width - 1
    for unit, when, long in ((" frames", times, True), ("", times, True), ("", eta, True), ("", eta, False)):
        right = "| " + fields(unit, when, long)
        if len(left) + len(right) + _MIN_BAR <= usable:
            return left, right, usable - len(left) - len(right)
    right = fields("", eta, False)
    if len(prefix) + len(percent) + 1 + len(right) <= usable:
        return f"{prefix}{percent} ", right, 0
    room = usable - len(percent) - 1 - len(right)
    if room >= 8:  # the label's beginning (the job number) is worth keeping
        return f"{prefix[:room - 3].rstrip()}.. {percent} ", right, 0
    return "", f"{percent} {right}"[:usable], 0


class _FrameBar(tqdm):
    """tqdm with rlkit's line: tqdm measures the terminal, smooths the rate and redraws; the text
    comes from ``render(format_dict)`` (tqdm calls ``self.format_meter(**self.format_dict)``)."""

    def __init__(self, render: Callable[[dict[str, Any]], str], **kwargs: Any) -> None:
        self.render = render  # before tqdm's __init__, which draws the first line
        super().__init__(**kwargs)

    def format_meter(self, **kwargs: Any) -> str:  # type: ignore[override]  # tqdm: a static method
        return self.render(kwargs)


class ConsoleLogger(Logger):
    """Shows training progress: frames done / total, frames/s, latest train and eval return, ETA.

    On a terminal a tqdm bar is redrawn in place, fitted to the terminal's width
    (:func:`progress_fields`). Elsewhere (CI, log files, parallel sweep jobs) a plain line
    (:func:`plain_line`) is printed every ``interval_s`` seconds; the last state is always printed
    when the run ends. :meth:`log_end` prints why a run stopped early (target reached, non-finite
    values, interrupted) in one line after the last progress line. ``log_config`` prints nothing.

    The frame counter is the ``step`` passed to :meth:`log_metrics`. The latest values of
    ``metrics[return_key]`` and ``metrics[eval_return_key]`` are shown once they have been logged.

    Args:
        total_frames: the frame budget of the run (> 0).
        stream: where to write; ``None`` means ``sys.stderr`` at construction time.
        label: shown before every line (a sweep job's ``[job 3 lr=0.001 seed=1]``); empty for none.
        plain: plain lines (``True``) or a bar (``False``); ``None``: a bar when ``stream`` is a
            terminal.
        interval_s: seconds between two plain lines (not used by the bar).
        start_frames: frames already done when this logger starts (resumed runs), so frames/s and the
            ETA count only the frames of this session.
        return_key: metric shown as the latest training episode return.
        eval_return_key: metric shown as the latest evaluation return.
        ncols: the bar's width in columns; ``None`` follows the terminal's width.
        clock: monotonic time source in seconds for the plain lines (tests pass a fake clock).

    Examples:
        >>> import io
        >>> from rlkit.trainers.loggers import ConsoleLogger
        >>> out = io.StringIO()
        >>> with ConsoleLogger(1000, stream=out, label="[job 0 seed=0]") as logger:
        ...     logger.log_metrics({"episode_return": 21.0}, step=1000)
        >>> out.getvalue().startswith("[job 0 seed=0] 1,000/1,000 frames (100.0%)")
        True
    """

    def __init__(
        self,
        total_frames: int,
        *,
        stream: TextIO | None = None,
        label: str = "",
        plain: bool | None = None,
        interval_s: float = PLAIN_INTERVAL_S,
        start_frames: int = 0,
        return_key: str = "episode_return",
        eval_return_key: str = "eval_return",
        ncols: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(total_frames, bool) or not isinstance(total_frames, int) or total_frames <= 0:
            raise ValueError(f"total_frames must be a positive int, got {total_frames!r}")
        if not interval_s >= 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s!r}")
        self.total_frames = total_frames
        self.stream: TextIO = sys.stderr if stream is None else stream
        if plain is None:
            isatty = getattr(self.stream, "isatty", None)
            plain = not (callable(isatty) and isatty())
        self.plain = plain
        self.label = label
        self.interval_s = float(interval_s)
        self.return_key = return_key
        self.eval_return_key = eval_return_key
        self._clock = clock
        self._start_time = clock()
        self._start_frames = start_frames
        self._frames = start_frames
        self._episode_return: float | None = None
        self._eval_return: float | None = None
        self._last_emit: float | None = None
        self._emitted: tuple[int, float | None, float | None] | None = None
        self._bar: _FrameBar | None = None
        if not plain:
            self._bar = _FrameBar(self._render_bar, total=total_frames, initial=start_frames, file=self.stream,
                                  ncols=ncols, dynamic_ncols=ncols is None, mininterval=_TTY_MIN_INTERVAL_S,
                                  smoothing=0.1, leave=True)

    # -- the logger interface -------------------------------------------------------------------
    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._frames = step
        if self.return_key in metrics:
            self._episode_return = metrics[self.return_key]
        if self.eval_return_key in metrics:
            self._eval_return = metrics[self.eval_return_key]
        if self._bar is not None:
            self._bar.update(step - self._bar.n)  # redraws when tqdm's interval has passed
            if step >= self.total_frames:
                self._bar.refresh()
            return
        now = self._clock()
        # (the last state is printed once, when the run ends: a closing evaluation off the evaluation
        # grid logs a second row at the budget's frames, which printed a second 100% line)
        if step < self.total_frames and (self._last_emit is None or now - self._last_emit >= self.interval_s):
            self._emit(now)

    def _log_config(self, config: Mapping[str, Any]) -> None:
        pass

    def _log_end(self, reason: EndReason, message: str, step: int) -> None:
        self._frames = step  # (a stop between two log rows: the line shows where it stopped)
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
        self._finish_progress()
        if reason != "budget":
            self.stream.write((f"{self.label} " if self.label else "") + message + "\n")
            self.stream.flush()

    def _close(self) -> None:
        self._finish_progress()

    # -- drawing --------------------------------------------------------------------------------
    def _finish_progress(self) -> None:
        """Shows the last state (once) and ends the bar's line."""
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()  # a final redraw, then a newline
        elif self.plain and self._emitted != self._state():
            self._emit(self._clock())

    def _progress(self, elapsed: float, rate: float | None = None) -> ProgressState:
        if rate is None:
            done = self._frames - self._start_frames
            rate = done / elapsed if elapsed > 0 else 0.0
        return ProgressState(self._frames, self.total_frames, rate, elapsed, self._episode_return, self._eval_return)

    def _render_bar(self, fmt: dict[str, Any]) -> str:
        elapsed = float(fmt.get("elapsed") or 0.0)
        rate = fmt.get("rate")
        state = self._progress(elapsed, rate if rate else None)
        left, right, width = progress_fields(state, fmt.get("ncols"), self.label)
        if width <= 0:
            return left + right
        bar = tqdm.format_meter(state.frames, state.total, elapsed, ncols=width, bar_format="{bar}",
                                ascii=fmt.get("ascii"))
        return left + bar + right

    def render(self, now: float | None = None) -> str:
        """The plain progress line for the current state (without newline)."""
        now = self._clock() if now is None else now
        return plain_line(self._progress(max(now - self._start_time, 0.0)), self.label)

    def _emit(self, now: float) -> None:
        self.stream.write(self.render(now) + "\n")
        self.stream.flush()
        self._last_emit = now
        self._emitted = self._state()

    def _state(self) -> tuple[int, float | None, float | None]:
        return (self._frames, self._episode_return, self._eval_return)
