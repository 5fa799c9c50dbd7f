"""Wide-format CSV metrics: one row per ``log_metrics`` call, one column per metric name."""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rlkit.errors import RunDirError
from rlkit.trainers.loggers.base import Logger
from rlkit.utils.io import atomic_write, whole_lines

__all__ = ["CSVLogger", "DamagedCSVError", "read_checked_csv", "read_metrics_csv"]

STEP_COLUMN = "step"


class DamagedCSVError(RunDirError, ValueError):
    """A run's CSV file that cannot be read back as rlkit wrote it; the message is
    ``<file> line <n>: <what is wrong>``."""


def read_checked_csv(path: str | os.PathLike[str], header: Sequence[str] | None = None, *,
                     first: str, integer: Sequence[str] = (), required: Sequence[str] = ()) -> list[dict[str, str]]:
    """The rows of a CSV file rlkit writes (``metrics.csv``, ``episodes.csv``) as dicts of their cells,
    each cell checked: the header starts with ``first`` (is ``header``, when given) and names each
    column once; every row has a cell per column; the columns ``integer`` hold integers, those in
    ``required`` are set, and every set cell is a number. A last line cut off by a crash (without its
    newline) is left out, as the writers drop it on resume.

    Raises:
        FileNotFoundError: no such file.
        DamagedCSVError: the first problem, naming the file, the line and what is wrong.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.trainers.loggers.csv_logger import read_checked_csv
        >>> path = Path(tempfile.mkdtemp()) / "episodes.csv"
        >>> _ = path.write_text("frame,return,length\\n100,9.0,9\\n12x,oops\\n")
        >>> try:
        ...     read_checked_csv(path, first="frame", integer=["frame"])
        ... except ValueError as err:
        ...     print(str(err).removeprefix(str(path)))
         line 3: frame '12x' is not an integer
    """
    path = Path(path)
    try:
        text = whole_lines(path)
    except UnicodeDecodeError as err:
        raise DamagedCSVError(f"{path} is not text ({err.reason} at byte {err.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        names = next(reader, None)
        if not names:
            raise DamagedCSVError(f"{path} line 1: no header (the {'line' if names == [] else 'file'} is empty)")
        expected = list(header) if header is not None else None
        if expected is not None and names != expected:
            raise DamagedCSVError(f"{path} line 1: the header is {','.join(names)!r}, expected {','.join(expected)!r}")
        if names[:1] != [first]:
            raise DamagedCSVError(f"{path} line 1: the header starts with {names[0]!r}, expected {first!r}")
        if "" in names:
            raise DamagedCSVError(f"{path} line 1: the header's column {names.index('') + 1} has no name")
        repeated = [name for n, name in enumerate(names) if name in names[:n]]
        if repeated:
            raise DamagedCSVError(f"{path} line 1: the header names column {repeated[0]!r} twice")
        rows = []
        for cells in reader:
            line = reader.line_num
            row = dict(zip(names, cells))
            for name, cell in row.items():
                if cell == "":
                    if name in required:
                        raise DamagedCSVError(f"{path} line {line}: its {name!r} cell is empty")
                    continue
                if not _is_number(cell, integer=name in integer):
                    kind = "an integer" if name in integer else "a number"
                    raise DamagedCSVError(f"{path} line {line}: {name} {cell!r} is not {kind}")
            if len(cells) != len(names):
                raise DamagedCSVError(f"{path} line {line}: it has {len(cells)} cell{'s' * (len(cells) != 1)}, the "
                                      f"header has {len(names)}")
            rows.append(row)
    except csv.Error as err:
        raise DamagedCSVError(f"{path} line {reader.line_num}: {err}") from None
    return rows


def _is_number(cell: str, *, integer: bool) -> bool:
    try:
        int(cell) if integer else float(cell)
    except ValueError:
        return False
    return True


def read_metrics_csv(path: str | os.PathLike[str]) -> list[dict[str, float | int]]:
    """Reads a ``metrics.csv`` written by :class:`CSVLogger`.

    Args:
        path: the CSV file, or the run directory that holds ``metrics.csv``.

    Returns:
        One dict per row: ``"step"`` as an int, every non-empty metric cell as a float. Metrics not
        logged at that row are absent from its dict.

    Raises:
        FileNotFoundError: no such file.
        DamagedCSVError: a line that is not as :class:`CSVLogger` writes it (see :func:`read_checked_csv`).

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
    for raw in read_checked_csv(path, first=STEP_COLUMN, integer=[STEP_COLUMN], required=[STEP_COLUMN]):
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
