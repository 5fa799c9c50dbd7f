"""Reads what a wandb run wrote to disk (its ``.wandb`` transaction log) without network or login.

wandb >= 0.19 keeps an offline run only as ``<dir>/wandb/offline-run-<time>-<id>/run-<id>.wandb``: a
LevelDB-style log (7-byte file header, 32 KiB blocks, each record = CRC32 (4 bytes, little-endian) +
length (2) + type (1) + payload) whose payloads are ``wandb.proto`` ``Record`` messages. No summary or
config file is written until the run is synced, so tests and scripts read this log instead.

``run.finish()`` returns before wandb's service has flushed the log to disk (it only *informs* the
service that the run is over), so a reader may see a partial file for a moment; the ``exit`` record
that ``finish`` sends last marks a complete log (:attr:`OfflineRun.complete`, ``wait_s``).
"""
from __future__ import annotations

import json
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["OfflineRun", "find_offline_runs", "read_offline_run"]

_FILE_HEADER = b":W&B" + struct.pack("<H", 0xBEE1) + bytes([0])
_BLOCK_SIZE = 32 * 1024
_RECORD_HEADER = struct.Struct("<IHB")  # crc32, payload length, chunk type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """The content of one wandb run log.

    Attributes:
        path: the ``.wandb`` file read.
        run_id: wandb run id.
        project, name, group: as given to ``wandb.init`` (empty string when not set).
        tags: run tags.
        config: the run config after every update (top-level keys; ``_wandb`` internals dropped).
        rows: the history rows in logged order, each with wandb's ``_step`` and the logged metrics.
        summary: the final summary (latest value of each metric).
        complete: whether the log ends with the ``exit`` record that ``run.finish()`` sends, i.e.
            whether everything logged before ``finish`` is on disk.
    """

    path: Path
    run_id: str = ""
    project: str = ""
    name: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    complete: bool = False

    @property
    def history(self) -> dict[str, list[Any]]:
        """Metric name -> its values in logged order (rows where it was not logged are skipped)."""
        out: dict[str, list[Any]] = {}
        for row in self.rows:
            for key, value in row.items():
                out.setdefault(key, []).append(value)
        return out

    def steps(self, key: str) -> list[int]:
        """The ``_step`` of each row in which ``key`` was logged."""
        return [row["_step"] for row in self.rows if key in row]


def find_offline_runs(path: str | os.PathLike[str]) -> list[Path]:
    """The ``.wandb`` run logs under ``path``, oldest first.

    ``path`` may be a ``.wandb`` file, one run's directory, a ``wandb/`` directory or the ``dir`` given
    to ``wandb.init`` (which holds ``wandb/``).
    """
    path = Path(path)
    if path.is_file():
        return [path]
    found: set[Path] = set(path.glob("run-*.wandb"))
    for pattern in ("*run-*/run-*.wandb", "wandb/*run-*/run-*.wandb"):
        found.update(p for p in path.glob(pattern) if not p.parent.is_symlink())
    return sorted(found, key=lambda p: (p.stat().st_mtime, str(p)))


def read_offline_run(path: str | os.PathLike[str], *, wait_s: float = 0.0) -> OfflineRun:
    """Parses the single wandb run log found under ``path`` (see :func:`find_offline_runs`).

    Args:
        path: a ``.wandb`` file or a directory holding exactly one run log.
        wait_s: re-read for up to this many seconds until the log is complete (see the module
            docstring); the last read is returned either way, with :attr:`OfflineRun.complete` set.

    Raises:
        FileNotFoundError: no run log under ``path``.
        ValueError: several run logs (pass one of the listed files), or the file is not a wandb log.

    Examples:
        >>> import tempfile
        >>> from rlkit.trainers.loggers import WandbLogger, read_offline_run
        >>> run_dir = tempfile.mkdtemp()
        >>> with WandbLogger(run_dir, mode="offline", config={"lr": 1e-3}) as logger:
        ...     logger.log_metrics({"loss_value": 0.9}, step=0)
        ...     logger.log_metrics({"loss_value": 0.5}, step=8)
        >>> run = read_offline_run(run_dir)
        >>> run.history["loss_value"], run.steps("loss_value"), run.config
        ([0.9, 0.5], [0, 8], {'lr': 0.001})
    """
    deadline = time.monotonic() + wait_s
    while True:
        run = _read_once(path)
        if run.complete or time.monotonic() >= deadline:
            return run
        time.sleep(0.02)


def _read_once(path: str | os.PathLike[str]) -> OfflineRun:
    runs = find_offline_runs(path)
    if not runs:
        raise FileNotFoundError(
            f"no wandb run log (run-*.wandb) in {str(path)!r}, its */ or wandb/*/ subdirectories"
        )
    if len(runs) > 1:
        listing = "\n  ".join(str(p) for p in runs)
        raise ValueError(f"{len(runs)} wandb runs under {str(path)!r}; pass one of:\n  {listing}")
    from wandb.proto import wandb_internal_pb2 as pb  # slow import, only when reading

    run = OfflineRun(path=runs[0])
    for payload in _iter_payloads(runs[0]):
        # wandb's *_pb2 modules build their message classes at import time and ship no stubs.
        record = pb.Record()  # type: ignore[attr-defined]
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.project, run.name = r.run_id, r.project, r.display_name
            run.group, run.tags = r.run_group, list(r.tags)
            _apply_updates(run.config, r.config.update, r.config.remove)
        elif kind == "config":
            _apply_updates(run.config, record.config.update, record.config.remove)
        elif kind == "summary":
            _apply_updates(run.summary, record.summary.update, record.summary.remove)
        elif kind == "history":
            run.rows.append({_item_key(item): _history_value(item) for item in record.history.item})
        elif kind == "exit":
            run.complete = True
    run.config.pop("_wandb", None)
    run.summary = {
        k: v
        for k, v in run.summary.items()
        if k not in ("_wandb", "_runtime", "_timestamp", "_step") and not k.startswith("_wandb.")
    }
    return run


def _iter_payloads(path: Path) -> Iterator[bytes]:
    """Yields the record payloads of a LevelDB-style log, re-assembling chunked records.

    A truncated final record (the writer was killed mid-write) ends the iteration; a checksum mismatch
    elsewhere raises, because it means the file is corrupt rather than unfinished.
    """
    data = path.read_bytes()
    if len(data) <= len(_FILE_HEADER) and _FILE_HEADER.startswith(data):  # not flushed yet
        return
    if data[: len(_FILE_HEADER)] != _FILE_HEADER:
        raise ValueError(
            f"{str(path)!r} is not a wandb run log: expected header {_FILE_HEADER!r}, "
            f"got {data[: len(_FILE_HEADER)]!r}"
        )
    offset, pending = len(_FILE_HEADER), b""
    while offset < len(data):
        left_in_block = _BLOCK_SIZE - offset % _BLOCK_SIZE
        if left_in_block < _RECORD_HEADER.size:  # block trailer padding
            offset += left_in_block
            continue
        if offset + _RECORD_HEADER.size > len(data):
            return
        checksum, length, kind = _RECORD_HEADER.unpack_from(data, offset)
        if kind == 0 and length == 0:  # zero-filled (pre-allocated) remainder of a block
            offset += left_in_block
            continue
        start = offset + _RECORD_HEADER.size
        chunk = data[start : start + length]
        if len(chunk) < length:
            return
        if zlib.crc32(chunk, zlib.crc32(bytes([kind]))) != checksum:
            raise ValueError(f"{str(path)!r} is corrupt: bad checksum for the record at byte {offset}")
        offset = start + length
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""
        else:
            raise ValueError(f"{str(path)!r} is corrupt: unknown record type {kind} at byte {offset}")


def _item_key(item: Any) -> str:
    # Nested dicts logged to wandb arrive as a key path; flatten it the way wandb displays it.
    return item.key or ".".join(item.nested_key)


def _history_value(item: Any) -> Any:
    which = item.WhichOneof("value")
    if which is None:
        return json.loads(item.value_json)
    if which == "none":
        return None
    if which == "json":
        return json.loads(item.json)
    return getattr(item, which)


def _apply_updates(target: dict[str, Any], updates: Any, removes: Any) -> None:
    for item in updates:
        target[_item_key(item)] = json.loads(item.value_json)
    for item in removes:
        target.pop(_item_key(item), None)
