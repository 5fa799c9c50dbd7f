"""Wide-format CSV metrics: one row per ``log_metrics`` call, one column per metric name."""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlkit.trainers.loggers.base import Logger
from rlkit.utils.io import atomic_write, whole_lines

__all__ = ["CSVLogger", "read_metrics_csv"]

STEP_COLUMN = "step"


def read_metrics_csv(path: str | os.PathLike[str]) -> list[dict[str, float | int]]:
    """Reads a ``metrics.csv`` written by :class:`CSVLogger`.

    Args:
        path: the CSV file, or the run directory that holds ``metrics.csv``.

    Returns:
        One dict per row: ``"step"`` as an int, every non-empty metric cell as a float. Metrics not
        logged at that row are absent from its dict.

    Raises:
        FileNotFoundError: no such file.

    Examples:
        >>> import tempfile
        >>> from rlkit.trainers.loggers import CSVLogger, read_metrics_csv
        >>> run_dir = tempfile.mkdtemp()
        >>> with CSVLogger(run_dir) as logger:
        ...     logger.log_metrics({"loss_value": 0.5}, step=10)
        >>> read_metrics_csv(run_dir)
        [{'step': 10, 'loss_value': 0.5}]
    """
    path = Path(path)
    if path.is_dir():
        path = path / CSVLogger.FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"no metrics CSV at {str(path)!r}")
    rows: list[dict[str, float | int]] = []
    for raw in csv.DictReader(io.StringIO(whole_lines(path), newline="")):  # (a row cut off by a crash: left out)
        row: dict[str, float | int] = {STEP_COLUMN: int(raw[STEP_COLUMN])}
        for key, cell in raw.items():
            if key != STEP_COLUMN and cell not in ("", None):
                row[key] = float(cell)
        rows.append(row)
    return rows


class CSVLogger(Logger):
    """Writes metrics to ``<run_dir>/metrics.csv`` in wide format.

    Columns are ``step`` followed by every metric name logged so far, sorted. Each ``log_metrics`` call
    appends one row and flushes it; cells of metrics not logged in that call stay empty. When a call
    brings a new metric name, the whole file is rewritten with the wider header into a temporary file
    in the same directory (flushed and fsynced) that then atomically replaces ``metrics.csv``, so a crash
    leaves either the old or the new file, never a half-written one.

    If ``metrics.csv`` already exists (a resumed run) its rows are kept and new rows are appended. Pass
    ``keep_rows`` (the number of rows logged up to the resumed checkpoint) to drop the rows the
    interrupted session logged after it, so the resumed file equals the uninterrupted one; a row count,
    not a step, because a run's closing evaluation row shares its step with the rows before it. Two calls at the same step (e.g. training and evaluation metrics) give two rows.

    ``log_config`` writes nothing: the run's config is saved next to this file by the caller.

    Args:
        run_dir: directory for ``metrics.csv`` (created if missing).
        keep_rows: when resuming, only the first ``keep_rows`` rows are kept (rewritten atomically).

    Examples:
        >>> import tempfile
        >>> from rlkit.trainers.loggers import CSVLogger
        >>> run_dir = tempfile.mkdtemp()
        >>> with CSVLogger(run_dir) as logger:
        ...     logger.log_metrics({"loss_value": 1.0}, step=0)
        ...     logger.log_metrics({"loss_value": 0.5, "episode_return": 9.0}, step=100)
        >>> print(open(f"{run_dir}/metrics.csv").read(), end="")
        step,episode_return,loss_value
        0,,1.0
        100,9.0,0.5
    """

    FILENAME = "metrics.csv"

    def __init__(self, run_dir: str | os.PathLike[str], *, keep_rows: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / self.FILENAME
        self._metric_names: list[str] = []
        if self.path.exists():
            with self.path.open(newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), [])
            if header[:1] != [STEP_COLUMN]:
                raise ValueError(
                    f"{str(self.path)!r} exists but is not a metrics CSV (its header starts with "
                    f"{header[:1]!r}, expected {[STEP_COLUMN]!r}); choose another run_dir"
                )
            self._metric_names = header[1:]
            if keep_rows is not None:
                self._rewrite(self._metric_names, max_rows=keep_rows)
        else:
            self._rewrite([])
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")

    @property
    def columns(self) -> list[str]:
        """The current header: ``"step"`` then the metric names, sorted."""
        return [STEP_COLUMN, *self._metric_names]

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        if STEP_COLUMN in metrics:
            raise ValueError(f"{STEP_COLUMN!r} is reserved for the step column; rename that metric")
        new_names = metrics.keys() - set(self._metric_names)
        if new_names:
            self._file.close()
            try:
                self._rewrite(sorted({*self._metric_names, *new_names}))
            finally:  # stay usable (with the old header) if the rewrite failed
                self._file = self.path.open("a", newline="", encoding="utf-8")
                self._writer = csv.writer(self._file, lineterminator="\n")
        # repr() of a float round-trips exactly through float().
        row = [str(step)] + [repr(metrics[k]) if k in metrics else "" for k in self._metric_names]
        self._writer.writerow(row)
        self._file.flush()

    def _rewrite(self, metric_names: list[str], max_rows: int | None = None) -> None:
        """Atomically replaces the file with the same rows (the first ``max_rows``) under a new header."""
        with atomic_write(self.path, newline="") as out:
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow([STEP_COLUMN, *metric_names])
            if self.path.exists():
                # A last row cut off by a crash (no newline) was logged after the resumed checkpoint: dropped.
                src = io.StringIO(whole_lines(self.path), newline="")
                for n, raw in enumerate(csv.DictReader(src)):
                    if max_rows is not None and n >= max_rows:
                        break
                    cells = [raw.get(k) or "" for k in metric_names]
                    writer.writerow([raw[STEP_COLUMN], *cells])
        self._metric_names = metric_names

    def _log_config(self, config: Mapping[str, Any]) -> None:
        pass

    def _close(self) -> None:
        self._file.close()
