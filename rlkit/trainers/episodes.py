"""``episodes.csv``: every finished training episode (frame, return, length).

The reproduction protocol of CleanRL ("mean of the last 100 training episodes") needs per-episode
returns, which the per-interval means of ``metrics.csv`` cannot give.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import torch

from rlkit.trainers.loggers.csv_logger import read_checked_csv
from rlkit.utils.io import atomic_write

HEADER = ["frame", "return", "length"]


class EpisodeRecorder:
    """Appends one row per finished episode to ``<run_dir>/episodes.csv`` (flushed per batch).

    Args:
        run_dir: the run directory.
        keep_until_frame: on resume, rows recorded after this frame (by the interrupted session, past
            its last checkpoint) are dropped, atomically.

    Examples:
        >>> import tempfile, torch
        >>> from rlkit.trainers.episodes import EpisodeRecorder, read_episodes
        >>> rec = EpisodeRecorder(tempfile.mkdtemp())
        >>> rec.record(100, torch.tensor([9.0, 12.0]), torch.tensor([9, 12]))
        >>> rec.close()
        >>> [r["return"] for r in read_episodes(rec.path)]
        [9.0, 12.0]
    """

    FILENAME = "episodes.csv"

    def __init__(self, run_dir: str | os.PathLike, *, keep_until_frame: int | None = None) -> None:
        self.path = Path(run_dir) / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._write_rows([])
        elif keep_until_frame is not None:
            rows = [r for r in read_episodes(self.path) if r["frame"] <= keep_until_frame]
            self._write_rows([[int(r["frame"]), repr(r["return"]), int(r["length"])] for r in rows])
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file, lineterminator="\n")

    def _write_rows(self, rows: list) -> None:
        with atomic_write(self.path, newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(HEADER)
            writer.writerows(rows)

    def record(self, frame: int, returns: torch.Tensor, lengths: torch.Tensor) -> None:
        """Appends the episodes that finished by ``frame``."""
        for ret, length in zip(returns.reshape(-1).tolist(), lengths.reshape(-1).tolist()):
            self._writer.writerow([frame, repr(float(ret)), int(length)])
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_episodes(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of an ``episodes.csv`` (a file or a run directory) as dicts of numbers; a row cut off by a
    crash (the last line, without its newline) is left out.

    Raises:
        FileNotFoundError: no such file.
        DamagedCSVError: a line that is not as :class:`EpisodeRecorder` writes it, named with what is
            wrong (:func:`~rlkit.trainers.loggers.read_checked_csv`).
    """
    path = Path(path)
    if path.is_dir():
        path = path / EpisodeRecorder.FILENAME
    rows = read_checked_csv(path, HEADER, first=HEADER[0], integer=["frame", "length"], required=HEADER)
    return [{"frame": int(r["frame"]), "return": float(r["return"]), "length": int(r["length"])} for r in rows]
