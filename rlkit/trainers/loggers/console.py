"""A dependency-free progress bar for the terminal and for plain log files."""
from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from rlkit.trainers.loggers.base import Logger

__all__ = ["ConsoleLogger", "format_duration"]

# A terminal redraw is cheap but flicker and terminal I/O are not: cap it at 10 per second.
_TTY_MIN_INTERVAL_S = 0.1
_BAR_WIDTH = 20


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


class ConsoleLogger(Logger):
    """Shows training progress: frames done / total, %, frames/s, returns, elapsed time and ETA.

    On a terminal (``stream.isatty()``) one line is redrawn in place with ``\\r``. Elsewhere (CI, log
    files) a plain line is printed at most every ``min_interval_s`` seconds, so logs stay readable. The
    last state is always printed on :meth:`close`, and as soon as ``step`` reaches ``total_frames``.

    The frame counter is the ``step`` passed to :meth:`log_metrics`. The latest values of
    ``metrics[return_key]`` and ``metrics[eval_return_key]`` are shown once they have been logged.
    ``log_config`` prints nothing.

    Args:
        total_frames: the frame budget of the run (> 0).
        stream: where to write; ``None`` means ``sys.stderr`` at construction time.
        min_interval_s: minimum seconds between two plain lines when the stream is not a terminal.
        start_frames: frames already done when this logger starts (resumed runs), so frames/s and the
            ETA count only the frames of this session.
        return_key: metric shown as the latest training episode return.
        eval_return_key: metric shown as the latest evaluation return.
        clock: monotonic time source in seconds (tests pass a fake clock).

    Examples:
        >>> import io
        >>> from rlkit.trainers.loggers import ConsoleLogger
        >>> out = io.StringIO()
        >>> with ConsoleLogger(1000, stream=out) as logger:
        ...     logger.log_metrics({"episode_return": 21.0}, step=1000)
        >>> "1,000/1,000 (100.0%)" in out.getvalue()
        True
    """

    def __init__(
        self,
        total_frames: int,
        *,
        stream: TextIO | None = None,
        min_interval_s: float = 1.0,
        start_frames: int = 0,
        return_key: str = "episode_return",
        eval_return_key: str = "eval_return",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(total_frames, bool) or not isinstance(total_frames, int) or total_frames <= 0:
            raise ValueError(f"total_frames must be a positive int, got {total_frames!r}")
        if not min_interval_s >= 0:
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s!r}")
        self.total_frames = total_frames
        self.stream: TextIO = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.is_tty = bool(isatty()) if callable(isatty) else False
        self.min_interval_s = _TTY_MIN_INTERVAL_S if self.is_tty else float(min_interval_s)
        self.return_key = return_key
        self.eval_return_key = eval_return_key
        self._clock = clock
        self._start_time = clock()
        self._start_frames = start_frames
        self._frames = start_frames
        self._episode_return: float | None = None
        self._eval_return: float | None = None
        self._last_emit: float | None = None
        self._emitted_state: tuple[int, float | None, float | None] | None = None
        self._drawn_width = 0

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self._frames = step
        if self.return_key in metrics:
            self._episode_return = metrics[self.return_key]
        if self.eval_return_key in metrics:
            self._eval_return = metrics[self.eval_return_key]
        now = self._clock()
        due = self._last_emit is None or now - self._last_emit >= self.min_interval_s
        if due or step >= self.total_frames:
            self._emit(now)

    def _log_config(self, config: Mapping[str, Any]) -> None:
        pass

    def _close(self) -> None:
        if self._emitted_state != self._state():
            self._emit(self._clock())
        if self.is_tty:
            self.stream.write("\n")
            self.stream.flush()

    def render(self, now: float | None = None) -> str:
        """The progress line for the current state (without ``\\r`` or newline)."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start_time, 0.0)
        done = self._frames - self._start_frames
        rate = done / elapsed if elapsed > 0 else 0.0
        remaining = max(self.total_frames - self._frames, 0)
        eta = remaining / rate if rate > 0 else (0.0 if remaining == 0 else float("inf"))
        fraction = self._frames / self.total_frames
        filled = min(int(fraction * _BAR_WIDTH), _BAR_WIDTH)
        parts = [
            f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] "
            f"{self._frames:,}/{self.total_frames:,} ({100.0 * fraction:.1f}%)",
            f"{rate:,.0f} frames/s",
        ]
        if self._episode_return is not None:
            parts.append(f"return {_format_number(self._episode_return)}")
        if self._eval_return is not None:
            parts.append(f"eval {_format_number(self._eval_return)}")
        parts.append(f"{format_duration(elapsed)}<{format_duration(eta)}")
        return " | ".join(parts)

    def _emit(self, now: float) -> None:
        line = self.render(now)
        if self.is_tty:
            # Pad with spaces so a shorter line fully covers the previous one.
            padding = " " * max(self._drawn_width - len(line), 0)
            self.stream.write("\r" + line + padding)
            self._drawn_width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last_emit = now
        self._emitted_state = self._state()

    def _state(self) -> tuple[int, float | None, float | None]:
        return (self._frames, self._episode_return, self._eval_return)
