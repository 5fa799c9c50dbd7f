"""Atomic, safely loadable checkpoints and RNG state capture.

Layout of a run directory::

    <run_dir>/checkpoints/last.pt          always the newest checkpoint (overwritten atomically)
    <run_dir>/checkpoints/step_<frames>.pt optional snapshots, one each time ``frames`` crosses a
                                           multiple of ``keep_every`` (never deleted by rlkit)

Every file is written by :func:`save_checkpoint` (temp file in the same directory, fsync, atomic
rename, directory fsync), so a crash leaves the previous file intact. Only types that
``torch.load(weights_only=True)`` accepts may be saved, which :func:`load_checkpoint` always uses: a
checkpoint can neither fail to load later nor execute code when loaded.

Integrity: ``torch.save`` writes a zip archive with the CRC-32 of every record (the pickled
structure and each tensor's bytes), but ``torch.load`` never checks them. :func:`load_checkpoint`
does, with the standard library's :mod:`zipfile`, before anything is unpickled: a truncated file or
one whose bytes changed is refused as corrupt (:class:`~rlkit.errors.CorruptCheckpointError`), which
keeps corruption apart from the refusal of a file that would run code
(:class:`~rlkit.errors.UnsafeCheckpointError`).
"""
from __future__ import annotations

import errno
import os
import random
import re
import shutil
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import torch

from rlkit.errors import (CheckpointError, CorruptCheckpointError, MissingCheckpointError, ResourceError,
                          UnsafeCheckpointError)
from rlkit.rundir import resume_override
from rlkit.utils.io import atomic_write

__all__ = [
    "REPLAY_ENTRIES",
    "drop_replay",
    "load_resume_state",
    "FORMAT_VERSION",
    "checkpoint_dir",
    "verify_checkpoint",
    "find_checkpoint",
    "named_checkpoint",
    "load_checkpoint",
    "NoSpaceError",
    "no_space_error",
    "rng_state",
    "save_checkpoint",
    "save_run_checkpoint",
    "set_rng_state",
]

# 2: DQN / C51 replay buffers hold only the policy's action (EGreedyPolicy), no action values.
FORMAT_VERSION = 2
LAST_NAME = "last.pt"
_STEP_PATTERN = re.compile(r"^step_(\d+)\.pt$")

# Exact types only: subclasses (np.float64 is a float, IntEnum an int) pickle their own class, which
# weights_only loading refuses.
_LEAF_TYPES: tuple[type, ...] = (
    type(None), bool, int, float, complex, str, bytes,
    torch.Tensor, torch.nn.Parameter, torch.Size, torch.dtype, torch.device,
)  # fmt: skip
_CONTAINER_TYPES: tuple[type, ...] = (dict, OrderedDict, list, tuple, set)
_ALLOWED = (
    "tensors, None, bool, int, float, complex, str, bytes, torch.Size/dtype/device, "
    "dict, list, tuple, set"
)


def _check_loadable(value: Any, path: str, active: set[int]) -> None:
    kind = type(value)
    if kind in _LEAF_TYPES:
        return
    if kind not in _CONTAINER_TYPES:
        hint = ""
        if isinstance(value, (np.ndarray, np.generic)):
            hint = " (convert numpy values with torch.as_tensor(...) or .tolist())"
        elif hasattr(value, "state_dict"):
            hint = " (save its .state_dict() instead)"
        raise TypeError(
            f"checkpoint value at {path} has type {kind.__module__}.{kind.__qualname__}, which "
            f"torch.load(weights_only=True) refuses{hint}; allowed: {_ALLOWED}"
        )
    if id(value) in active:
        raise TypeError(f"checkpoint value at {path} contains itself (a reference cycle)")
    active.add(id(value))
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) not in (str, int, float, bool, type(None), tuple):
                raise TypeError(
                    f"checkpoint dict at {path} has key {key!r} of type {type(key).__name__}; "
                    "keys must be str, int, float, bool, None or tuples"
                )
            _check_loadable(key, f"{path} key {key!r}", active)
            _check_loadable(item, f"{path}[{key!r}]", active)
    else:
        for i, item in enumerate(value):
            _check_loadable(item, f"{path}[{i}]", active)
    active.discard(id(value))


def save_checkpoint(path: str | os.PathLike[str], state: Mapping[str, Any]) -> Path:
    """Atomically writes ``state`` (plus ``"format_version"``) to ``path`` with ``torch.save``.

    The data goes to a temporary file in the same directory, is flushed and fsynced, then renamed
    onto ``path`` (atomic on POSIX and Windows) and the directory is fsynced. On any failure the
    temporary file is removed, the error re-raised, and a previous file at ``path`` is untouched.

    Args:
        path: destination file; parent directories are created.
        state: str-keyed mapping of weights_only-loadable values (state dicts, tensors, numbers...).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        TypeError: a value or key ``torch.load(weights_only=True)`` would refuse; the message gives
            its key path, e.g. ``state['optimizer']['state'][0]``.
        ValueError: ``state["format_version"]`` is present and is not :data:`FORMAT_VERSION`.
        NoSpaceError: no space left on the device (or the disk quota used up): torch reports that as a
            ``RuntimeError`` that does not say so; the message names the file and the space free.

    Examples:
        >>> import tempfile
        >>> import torch
        >>> from rlkit.trainers import load_checkpoint, save_checkpoint
        >>> path = save_checkpoint(f"{tempfile.mkdtemp()}/last.pt", {"frames": 1000, "w": torch.ones(2)})
        >>> load_checkpoint(path)["frames"]
        1000
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"checkpoint state must be a mapping with str keys, got {type(state).__name__}")
    for key in state:
        if not isinstance(key, str):
            raise TypeError(f"checkpoint top-level keys must be str, got {key!r} ({type(key).__name__})")
    payload = dict(state)
    version = payload.setdefault("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise ValueError(
            f"state['format_version'] is {version!r}; this rlkit writes format {FORMAT_VERSION} "
            "(drop the key to let save_checkpoint set it)"
        )
    _check_loadable(payload, "state", set())

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = _WriteRecorder(None)
    try:
        with atomic_write(path, "wb") as f, _record_checksums():
            written = _WriteRecorder(f)
            torch.save(payload, cast(IO[bytes], written))  # (torch calls its write and flush only)
    except (OSError, RuntimeError) as err:  # (the temporary file is gone, the previous file untouched)
        if _out_of_space(err, written.error):
            raise NoSpaceError(path, _free_bytes(path.parent)) from err
        raise
    return path


#: The errors of a write that found no space: the device is full (``ENOSPC``), or a disk quota is
#: used up (``EDQUOT``, where the platform has it).
_NO_SPACE = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)


class NoSpaceError(ResourceError):
    """A checkpoint could not be written: no space left on its device (or the disk quota is used up).
    The temporary file was removed and a previous file at ``path`` is untouched.

    Attributes:
        path: the checkpoint that was being written.
        free: the bytes free on its device afterwards (None when that cannot be read).
        good: the last good checkpoint (None: not known, or none), named in the message when given.

    Examples:
        >>> from rlkit.trainers.checkpoint import NoSpaceError
        >>> print(NoSpaceError("run/checkpoints/last.pt", 12_288, good="run/checkpoints/last.pt"))
        no space left on the device writing run/checkpoints/last.pt (12.0 KiB free); the last good checkpoint is run/checkpoints/last.pt
    """

    def __init__(self, path: str | os.PathLike[str], free: int | None, good: str | os.PathLike[str] | None = None):
        self.path, self.free, self.good = Path(path), free, good
        room = f"{byte_size(free)} free" if free is not None else "free space unknown"
        last = f"; the last good checkpoint is {good}" if good is not None else ""
        super().__init__(f"no space left on the device writing {path} ({room}){last}")


def byte_size(count: int) -> str:
    """``count`` bytes in the unit a person reads (binary prefixes, three digits).

    Examples:
        >>> from rlkit.trainers.checkpoint import byte_size
        >>> byte_size(0), byte_size(1000), byte_size(12_288), byte_size(5 * 2**30)
        ('0 bytes', '1000 bytes', '12.0 KiB', '5.00 GiB')
    """
    if count < 1024:
        return f"{count} bytes"
    value, unit = float(count), "bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024:
            break
    decimals = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{decimals}f} {unit}"


class _WriteRecorder:
    """The file ``torch.save`` writes through: keeps the ``OSError`` a write raised. torch's writer
    reports a failed write of a file object as its own ``RuntimeError`` (``unexpected pos ...``),
    which does not say that the disk is full."""

    def __init__(self, file: Any) -> None:
        self._file = file
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self._file.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self._file.flush()


def _out_of_space(*errors: BaseException | None) -> bool:
    """Whether a failed write found no space: an ``ENOSPC`` / ``EDQUOT`` error among ``errors`` (the
    error raised, the one a write kept: :class:`_WriteRecorder`) or anywhere in their chains of causes."""
    seen: set[int] = set()
    chain: list[BaseException | None] = list(errors)
    while chain:
        current = chain.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _NO_SPACE:
            return True
        chain += [current.__cause__, current.__context__]
    return False


def no_space_error(err: BaseException, path: str | os.PathLike[str],
                   good: str | os.PathLike[str] | None = None) -> NoSpaceError | None:
    """``err`` as a :class:`NoSpaceError` when it (or an error in its chain) is a write that found no
    space (a CSV row, a log line: not only a checkpoint), naming the file it wrote (else ``path``)
    and the ``good`` checkpoint; None for any other error.

    Examples:
        >>> import errno
        >>> from rlkit.trainers.checkpoint import no_space_error
        >>> full = OSError(errno.ENOSPC, "No space left on device", "/nonexistent/run/episodes.csv")
        >>> print(no_space_error(full, "/nonexistent/run", good="/nonexistent/run/checkpoints/last.pt"))
        no space left on the device writing /nonexistent/run/episodes.csv (free space unknown); the last good checkpoint is /nonexistent/run/checkpoints/last.pt
        >>> no_space_error(ValueError("other"), "run") is None
        True
    """
    if isinstance(err, NoSpaceError):
        return err
    if not _out_of_space(err):
        return None
    written = Path(getattr(err, "filename", None) or path)
    return NoSpaceError(written, _free_bytes(written.parent), good=good)


def _free_bytes(directory: Path) -> int | None:
    """The bytes free to this user on the device of ``directory`` (None when that cannot be read)."""
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


class _record_checksums:
    """Makes sure ``torch.save`` writes the CRC-32 of every record (torch's default, which a user may
    have switched off globally for speed); :func:`verify_checkpoint` relies on them."""

    def __enter__(self) -> None:
        from torch.utils.serialization import config

        self._config = config.save
        self._before = config.save.compute_crc32
        config.save.compute_crc32 = True

    def __exit__(self, *exc: object) -> None:
        self._config.compute_crc32 = self._before


def verify_checkpoint(path: str | os.PathLike[str]) -> None:
    """Checks that ``path`` holds exactly the bytes :func:`save_checkpoint` wrote.

    Reads every record of the zip archive and compares its CRC-32 with the one written beside it;
    nothing is unpickled.

    Raises:
        MissingCheckpointError: ``path`` is not a file.
        CorruptCheckpointError: truncated, or a record's bytes (structure or tensor data) changed.
        CheckpointError: not a zip archive at all (not written by ``torch.save``'s default format).

    Examples:
        >>> import tempfile
        >>> import torch
        >>> from rlkit.trainers import save_checkpoint
        >>> from rlkit.trainers.checkpoint import verify_checkpoint
        >>> path = save_checkpoint(f"{tempfile.mkdtemp()}/last.pt", {"w": torch.ones(1000)})
        >>> verify_checkpoint(path)
        >>> data = bytearray(path.read_bytes())
        >>> data[len(data) // 2] ^= 0xFF
        >>> _ = path.write_bytes(bytes(data))
        >>> verify_checkpoint(path)
        Traceback (most recent call last):
        rlkit.errors.CorruptCheckpointError: ...
    """
    path = Path(path)
    if not path.is_file():
        hint = " (it is a directory: use find_checkpoint to pick the file)" if path.is_dir() else ""
        raise MissingCheckpointError(f"no checkpoint file at {str(path)!r}{hint}")
    with path.open("rb") as f:
        magic = f.read(4)
    if not magic:
        raise CorruptCheckpointError(
            f"{str(path)!r} is corrupt: it is empty (0 bytes: an interrupted copy or a full disk); "
            f"{_instead(path)}"
        )
    if len(magic) < 4 and b"PK\x03\x04".startswith(magic):
        raise CorruptCheckpointError(f"{str(path)!r} is corrupt: truncated to {len(magic)} bytes; {_instead(path)}")
    if magic != b"PK\x03\x04":
        raise CheckpointError(
            f"{str(path)!r} is not a torch checkpoint (not a zip archive: it starts with {magic!r}); "
            "rlkit checkpoints are written by torch.save"
        )
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError) as err:
        raise CorruptCheckpointError(
            f"{str(path)!r} is corrupt ({size} bytes; truncated or damaged: {err}); {_instead(path)}"
        ) from None
    if bad is not None:
        raise CorruptCheckpointError(
            f"{str(path)!r} is corrupt: the checksum of its record {bad!r} does not match its bytes "
            f"(changed on disk after it was written); {_instead(path)}"
        )


def _instead(path: Path) -> str:
    """What to use instead of the damaged checkpoint ``path``: the other checkpoints beside it (a
    run's ``last.pt``, its ``step_<frames>.pt`` snapshots, those of a branch set aside), by name, or
    what to do when there are none.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.trainers.checkpoint import _instead, save_run_checkpoint
        >>> run_dir = Path(tempfile.mkdtemp())
        >>> last = save_run_checkpoint(run_dir, {"frames": 400}, frames=400, keep_every=400)
        >>> print(_instead(last))  # doctest: +ELLIPSIS
        use another of the checkpoints in '...checkpoints' instead: ['step_400.pt']
        >>> (last.parent / "step_400.pt").unlink()
        >>> print(_instead(last))  # doctest: +ELLIPSIS
        there is no other checkpoint in '...checkpoints' (no step_<frames>.pt snapshots: ...); restore the file from a copy, or start a new run
    """
    others = [name for name in _listed(path.parent, sub_folders=True) if name != path.name]
    if others:
        return f"use another of the checkpoints in {str(path.parent)!r} instead: {others}"
    return (f"there is no other checkpoint in {str(path.parent)!r} (no step_<frames>.pt snapshots: "
            "trainer.keep_checkpoints=true keeps them); restore the file from a copy, or start a new run")


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu", *, mmap: bool = False
) -> dict[str, Any]:
    """Verifies (:func:`verify_checkpoint`) and loads a checkpoint written by :func:`save_checkpoint`,
    with ``torch.load(weights_only=True)``.

    Args:
        path: the checkpoint file (use :func:`find_checkpoint` to resolve a run directory).
        map_location: where to put the tensors (``torch.load`` semantics).
        mmap: map the tensors' storage from the file instead of reading it (``torch.load(mmap=True)``):
            a reader that needs a part of a large checkpoint (the networks, not the replay buffer)
            reads only that part.

    Returns:
        The saved dict, ``"format_version"`` included.

    Raises:
        MissingCheckpointError: ``path`` is not a file.
        CorruptCheckpointError: truncated or changed on disk (its checksums fail).
        UnsafeCheckpointError: intact, but holds arbitrary pickled objects (refused, as loading it
            could run code); the message names the refused global.
        CheckpointError: not a torch file, not an rlkit checkpoint (no ``"format_version"``), or
            another format version.
    """
    path = Path(path)
    verify_checkpoint(path)
    if _is_torchscript(path):
        raise CheckpointError(f"{str(path)!r} is a TorchScript program (what export.py writes), not an rlkit "
                              "checkpoint; give the run directory or a file of its checkpoints/")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:
        text = str(err)
        if "weights only load failed" in text.lower():
            raise UnsafeCheckpointError(
                f"refusing to load {str(path)!r}: torch.load(weights_only=True) rejected it "
                f"({_unpickler_reason(text)}); rlkit checkpoints hold only tensors and plain Python "
                "values, and unpickling other objects could run arbitrary code"
            ) from err
        first_line = text.strip().splitlines()[0][:300] if text.strip() else ""
        raise CheckpointError(
            f"{str(path)!r} is not a readable torch checkpoint ({type(err).__name__}: {first_line})"
        ) from err
    if not isinstance(state, dict) or "format_version" not in state:
        found = f" with keys {sorted(map(str, state))}" if isinstance(state, dict) else ""
        raise CheckpointError(
            f"{str(path)!r} is not an rlkit checkpoint: expected a dict with a 'format_version' "
            f"entry, got {type(state).__name__}{found}"
        )
    if state["format_version"] != FORMAT_VERSION:
        older = isinstance(state["format_version"], int) and state["format_version"] < FORMAT_VERSION
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format {state['format_version']!r}; this rlkit reads format "
            f"{FORMAT_VERSION} only" + ("; it was written by an older rlkit: resume it with that version or "
                                        "start a new run" if older else "")
        )
    return state


#: The entries of a trainer's checkpoint holding replay buffers (the ordinary and the multi-seed
#: trainer's), which their loaders copy into the buffers.
REPLAY_ENTRIES = ("replay_buffer", "replay_buffers")


def _in_memory(value: Any) -> Any:
    """``value`` with every tensor copied into memory (dicts, lists and tuples walked)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {key: _in_memory(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_in_memory(item) for item in value)
    return value


def load_resume_state(path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu") -> dict[str, Any]:
    """:func:`load_checkpoint` for a resume: the replay buffers (:data:`REPLAY_ENTRIES`, most of a
    checkpoint) stay mapped from the file, which their loaders copy from once, instead of being read
    into memory and then copied (held twice); everything else is read into memory, because some
    loaders adopt tensors as they are (an optimiser's moments), and a tensor mapped from the file
    would keep all of it mapped, and its disk space taken after the next checkpoint replaces it, for
    as long as the run trains. Once the trainer has loaded the state, drop its replay entries
    (:func:`drop_replay`).
    """
    state = load_checkpoint(path, map_location, mmap=True)
    return {key: value if key in REPLAY_ENTRIES else _in_memory(value) for key, value in state.items()}


def drop_replay(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without its replay entries (what a loaded trainer no longer needs; with
    :func:`load_resume_state`, the last references to the file's mapping)."""
    return {key: value for key, value in state.items() if key not in REPLAY_ENTRIES}


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip holding ``code/`` and ``constants.pkl``)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") or "/code/" in name for name in archive.namelist())


def _unpickler_reason(message: str) -> str:
    """The informative part of torch's long weights_only error (e.g. the refused global)."""
    _, marker, rest = message.partition("WeightsUnpickler error:")
    if not marker:
        return message.strip().splitlines()[0][:300]
    lines = [line.strip() for line in rest.splitlines() if line.strip()]
    reason = lines[0] if lines else "unknown reason"
    return reason.split(" Please use")[0][:300]


def checkpoint_dir(run_dir: str | os.PathLike[str]) -> Path:
    """``<run_dir>/checkpoints``, where :func:`save_run_checkpoint` writes."""
    return Path(run_dir) / "checkpoints"


def _snapshots(directory: Path) -> list[tuple[int, Path]]:
    matches = ((_STEP_PATTERN.match(p.name), p) for p in directory.glob("step_*.pt"))
    return sorted((int(m.group(1)), p) for m, p in matches if m)


def save_run_checkpoint(
    run_dir: str | os.PathLike[str],
    state: Mapping[str, Any],
    *,
    frames: int,
    keep_every: int | None = None,
) -> Path:
    """Saves ``<run_dir>/checkpoints/last.pt`` and, when due, a ``step_<frames>.pt`` snapshot.

    A snapshot is due when ``frames // keep_every`` is larger than it was at the newest snapshot on
    disk (or when there is none), so snapshots land about every ``keep_every`` frames even when
    ``frames`` grows in uneven batches, and a resumed run continues the series. Snapshots are kept.

    Args:
        run_dir: the run's output directory.
        state: as for :func:`save_checkpoint`.
        frames: environment frames done (names the snapshot).
        keep_every: snapshot period in frames; ``None`` keeps ``last.pt`` only.

    Returns:
        The path of ``last.pt``.

    Raises:
        ValueError: ``keep_every`` is not a positive int or ``frames`` is negative.
        NoSpaceError: no space left on the device; the message names the run's last good checkpoint
            (``last.pt`` as it was before, or the new one when only the snapshot failed).

    Examples:
        >>> import tempfile
        >>> from rlkit.trainers.checkpoint import checkpoint_dir, save_run_checkpoint
        >>> run_dir = tempfile.mkdtemp()
        >>> for frames in (400, 800, 1200):
        ...     _ = save_run_checkpoint(run_dir, {"frames": frames}, frames=frames, keep_every=1000)
        >>> sorted(p.name for p in checkpoint_dir(run_dir).iterdir())
        ['last.pt', 'step_1200.pt', 'step_400.pt']
    """
    valid_period = isinstance(keep_every, int) and not isinstance(keep_every, bool) and keep_every > 0
    if keep_every is not None and not valid_period:
        raise ValueError(f"keep_every must be a positive int (frames) or None, got {keep_every!r}")
    if frames < 0:
        raise ValueError(f"frames must be >= 0, got {frames}")
    directory = checkpoint_dir(run_dir)
    try:
        last = save_checkpoint(directory / LAST_NAME, state)
        if keep_every is not None:
            snapshots = _snapshots(directory)
            if not snapshots or frames // keep_every > snapshots[-1][0] // keep_every:
                save_checkpoint(directory / f"step_{frames}.pt", state)
    except NoSpaceError as err:  # named with the run's last good checkpoint (the one before, or a new last.pt)
        good = directory / LAST_NAME if (directory / LAST_NAME).is_file() else None
        raise NoSpaceError(err.path, err.free, good=good) from err.__cause__
    return last


def set_aside_later_checkpoints(run_dir: str | os.PathLike[str], frames: int, folder: str) -> list[Path]:
    """Moves ``last.pt`` and the snapshots of more than ``frames`` frames into
    ``<run_dir>/checkpoints/<folder>/``: what a run resumed from an earlier snapshot leaves behind (its
    abandoned branch), kept, but out of the way of a later ``resume=<run dir>``. Returns the new paths.

    Examples:
        >>> import tempfile
        >>> from rlkit.trainers.checkpoint import checkpoint_dir, save_run_checkpoint, set_aside_later_checkpoints
        >>> run_dir = tempfile.mkdtemp()
        >>> for frames in (400, 800, 1200):
        ...     _ = save_run_checkpoint(run_dir, {"frames": frames}, frames=frames, keep_every=400)
        >>> [p.name for p in set_aside_later_checkpoints(run_dir, 400, "abandoned_1")]
        ['last.pt', 'step_1200.pt', 'step_800.pt']
        >>> sorted(p.name for p in checkpoint_dir(run_dir).glob("*.pt"))
        ['step_400.pt']
    """
    directory = checkpoint_dir(run_dir)
    later = [p for n, p in _snapshots(directory) if n > frames]
    if (directory / LAST_NAME).is_file():
        later.insert(0, directory / LAST_NAME)
    if not later:
        return []
    target = directory / folder
    target.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in later:
        os.replace(path, target / path.name)
        moved.append(target / path.name)
    return sorted(moved)


def find_checkpoint(run_dir_or_file: str | os.PathLike[str]) -> Path:
    """Resolves a checkpoint file from a file or a run directory.

    For a directory, looks in ``<dir>/checkpoints/`` then ``<dir>/`` itself for ``last.pt``, falling
    back to the ``step_<frames>.pt`` with the most frames.

    Raises:
        MissingCheckpointError: nothing found (a ``FileNotFoundError`` too); the message lists where it looked.
    """
    path = Path(run_dir_or_file)
    if path.is_file():
        return path
    if not path.exists():
        raise MissingCheckpointError(f"no checkpoint file or run directory at {str(path)!r}")
    searched = [checkpoint_dir(path), path]
    for directory in searched:
        if (directory / LAST_NAME).is_file():
            return directory / LAST_NAME
        snapshots = _snapshots(directory)
        if snapshots:
            return snapshots[-1][1]
    seed = re.fullmatch(r"seed_(\d+)", path.name)
    if seed and (checkpoint_dir(path.parent) / LAST_NAME).is_file():
        raise MissingCheckpointError(
            f"{str(path)!r} is seed {seed.group(1)}'s folder of the multi-seed run in {str(path.parent)!r}, "
            f"whose checkpoint holds every seed: {resume_override(path.parent)}"
        )
    raise MissingCheckpointError(
        f"no checkpoint in run directory {str(path)!r}: looked for {LAST_NAME} or step_<frames>.pt in "
        + " and ".join(repr(str(d)) for d in searched)
    )


def _listed(directory: Path, sub_folders: bool) -> list[str]:
    """The checkpoint files of ``directory`` (and of its sub-folders, a resume's ``abandoned_<n>/``),
    as paths relative to it: ``last.pt`` first, then snapshots by frames."""
    if not directory.is_dir():
        return []
    found = []
    subs = sorted(p for p in directory.iterdir() if p.is_dir()) if sub_folders else []
    for folder in (directory, *subs):
        prefix = "" if folder == directory else f"{folder.name}/"
        found += [prefix + LAST_NAME] * (folder / LAST_NAME).is_file()
        found += [prefix + p.name for _, p in _snapshots(folder)]
    return found


def named_checkpoint(run_dir: str | os.PathLike[str], name: str | os.PathLike[str]) -> Path:
    """The checkpoint ``name`` of run directory ``run_dir``: a file name (``last.pt``, a
    ``step_<frames>.pt`` snapshot), or one in a sub-folder (``abandoned_1/step_800.pt``, the
    snapshots a resume from an earlier one set aside), looked up in ``<run_dir>/checkpoints/``,
    then in ``<run_dir>/`` itself.

    Raises:
        CheckpointError: ``name`` is not a checkpoint name inside the run (an absolute path, ``..``,
            not ``.pt``), or ``run_dir`` is a file; the message lists the run's checkpoints.
        MissingCheckpointError: no such file; the message lists the run's checkpoints.

    Examples:
        >>> import tempfile
        >>> from rlkit.trainers.checkpoint import named_checkpoint, save_run_checkpoint
        >>> run_dir = tempfile.mkdtemp()
        >>> for frames in (400, 800):
        ...     _ = save_run_checkpoint(run_dir, {"frames": frames}, frames=frames, keep_every=400)
        >>> named_checkpoint(run_dir, "step_400.pt").name
        'step_400.pt'
        >>> named_checkpoint(run_dir, "step_500.pt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        rlkit.errors.MissingCheckpointError: checkpoint='step_500.pt' is not among the checkpoints of run ...: ['last.pt', 'step_400.pt', 'step_800.pt']
    """
    path = Path(run_dir)
    if path.is_file():
        raise CheckpointError(f"checkpoint={os.fspath(name)!r} names a checkpoint of a run directory, but "
                              f"run={str(path)!r} is a file already: give one or the other")
    if not path.is_dir():
        raise MissingCheckpointError(f"no run directory at {str(path)!r}")
    folders = [checkpoint_dir(path), path]
    choices = _listed(folders[0], sub_folders=True) + _listed(folders[1], sub_folders=False)
    listed = f"{choices}" if choices else "none"
    where = " or ".join(repr(str(folder)) for folder in folders)
    text = os.fspath(name) if isinstance(name, (str, os.PathLike)) else None
    relative = Path(text) if text is not None else None
    if relative is None or relative.is_absolute() or ".." in relative.parts or relative.suffix != ".pt":
        whole = _whole_number(name)
        hint = f" (did you mean step_{whole}.pt?)" if whole is not None else ""
        raise CheckpointError(f"checkpoint={text if text is not None else name!r} is invalid{hint}: expected the name "
                              f"of one of the run's checkpoints in {where}: {listed}")
    for folder in folders:
        if (folder / relative).is_file():
            return folder / relative
    raise MissingCheckpointError(f"checkpoint={text!r} is not among the checkpoints of run {str(path)!r}"
                                 f" (in {where}): {listed}")


def _whole_number(value: Any) -> int | None:
    """``value`` as a whole number of frames (an int, a whole float, their text), or None."""
    try:
        number = float(os.fspath(value) if isinstance(value, os.PathLike) else value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and number >= 0 else None


def rng_state() -> dict[str, Any]:
    """Captures the Python, numpy (global), torch CPU and (when CUDA is initialised) CUDA generators.

    The CUDA generators are read only in a process that has initialised CUDA (a run on a CUDA
    device has by its first checkpoint): reading them would otherwise initialise CUDA, which takes a
    CUDA context's GPU memory in a run on the CPU (and fails where the GPU is held by another process
    in exclusive mode), for generators that run never drew from.

    The result is weights_only-loadable, so it can go straight into a checkpoint.

    Examples:
        >>> import torch
        >>> from rlkit.trainers.checkpoint import rng_state, set_rng_state
        >>> state = rng_state()
        >>> a = torch.rand(2)
        >>> set_rng_state(state)
        >>> torch.equal(a, torch.rand(2))
        True
    """
    version, internal, gauss_next = random.getstate()
    legacy = np.random.get_state(legacy=True)
    assert isinstance(legacy, tuple)  # the legacy form of the global MT19937 generator (a dict for others)
    kind, keys, pos, has_gauss, cached_gaussian = legacy
    state: dict[str, Any] = {
        "python": {
            "version": version,
            "state": torch.tensor(internal, dtype=torch.int64),
            "gauss_next": gauss_next,
        },
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restores generators captured by :func:`rng_state`.

    A ``"cuda"`` entry is restored on as many devices as both the state and this machine have; a
    warning says when devices differ (e.g. a GPU run resumed on a CPU-only machine). A state without
    one (saved by a process that had not initialised CUDA) leaves CUDA alone: not even queried.

    Raises:
        KeyError: ``state`` lacks one of ``"python"``, ``"numpy"``, ``"torch"``.
    """
    missing = [k for k in ("python", "numpy", "torch") if k not in state]
    if missing:
        raise KeyError(f"RNG state lacks {missing}; expected the dict returned by rng_state()")
    py = state["python"]
    random.setstate((py["version"], tuple(int(x) for x in py["state"].tolist()), py["gauss_next"]))
    npy = state["numpy"]
    keys = npy["keys"].cpu().numpy().astype(np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    saved_cuda = list(state.get("cuda", []))
    if not saved_cuda:
        return
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if len(saved_cuda) != available:
        warnings.warn(
            f"RNG state holds {len(saved_cuda)} CUDA generator(s) but this machine has {available} CUDA "
            f"device(s); restoring the first {min(len(saved_cuda), available)}",
            stacklevel=2,
        )
    for device, generator_state in enumerate(saved_cuda[:available]):
        torch.cuda.set_rng_state(generator_state.cpu(), device)
