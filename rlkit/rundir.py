"""The run directory: one writer at a time, fresh starts into empty directories, no leftovers.

A run holds an exclusive lock on ``<run_dir>/.rlkit.lock`` (``flock``; the OS releases it when the
process ends, also on ``kill -9``) for as long as it may write there. A second writer (a second
resume, a resume of a live run, a new run into a held directory) is refused with the holder's pid.

Examples:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from rlkit.rundir import RunDir
    >>> run_dir = Path(tempfile.mkdtemp()) / "run"
    >>> with RunDir.claim(run_dir, fresh=True) as held:
    ...     _ = (held.path / "metrics.csv").write_text("step\\n")
    ...     RunDir.claim(run_dir, fresh=False)
    Traceback (most recent call last):
    rlkit.errors.RunDirBusyError: ...
"""
from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from rlkit.errors import ConfigError, RunDirBusyError, RunDirError
from rlkit.utils.io import atomic_write_target

__all__ = ["CLOSED_NAME", "COMMIT_NAME", "LOCK_NAME", "RunDir", "check_fresh_run_dir", "check_outside_run_files", "foreign_contents",
           "lock_holder", "override_value", "quoted", "resume_hint", "resume_override", "searchpath_override"]

LOCK_NAME = ".rlkit.lock"
#: Written when a run's training ended with its closing evaluation done (``rlkit.run.CLOSED_FILE``):
#: rlkit's bookkeeping, not named among a directory's contents in messages.
CLOSED_NAME = ".rlkit.closed"
# Files a start may find in a directory it is given and still call it fresh: its own lock file (left
# by an earlier start) and the log file Hydra's job logging may have opened before the run began.
_FRESH_OK = frozenset({LOCK_NAME, "train.log"})
#: The file whose (atomic) creation commits a start: written last, once everything else is in place.
COMMIT_NAME = "config.yaml"
# What a start writes before it commits. A directory holding only these and no config.yaml is a start
# that was killed before it committed (it never trained): a new start may clear it.
_START_ARTEFACTS = frozenset({".hydra", "checkpoints", "metrics.csv", "episodes.csv", "wandb", "tensorboard"})
# A multi-seed start's per-seed directories (rlkit.factories.seed_dir_name), written before its commit;
# they never hold checkpoints (the run's own are in its directory), unlike a run kept in such a folder.
_SEED_DIR = re.compile(r"^seed_\d+$")


def _start_artefact(entry: Path) -> bool:
    """Whether ``entry`` is something a start writes before it commits (see :data:`_START_ARTEFACTS`),
    as that start leaves it: CSVs with their header alone, checkpoints holding at most the frame-0
    ``last.pt`` (a trained run's CSVs have rows, its checkpoints snapshots and set-aside branches)."""
    name = entry.name
    if _SEED_DIR.match(name):
        return entry.is_dir() and not (entry / "checkpoints").exists() and all(
            not _has_rows(entry / csv) for csv in _LOG_FILES)
    if name in _LOG_FILES:
        return not _has_rows(entry)
    if name == "checkpoints" and entry.is_dir():
        return all(p.name == "last.pt" or atomic_write_target(p.name) is not None for p in entry.iterdir())
    return name in _START_ARTEFACTS or atomic_write_target(name) is not None


#: The CSV files a start writes with their header (rows come once it trains).
_LOG_FILES = ("metrics.csv", "episodes.csv")


def _has_rows(path: Path) -> bool:
    """Whether the CSV file ``path`` holds a line after its header (False when there is no such file)."""
    try:
        with path.open("rb") as file:
            file.readline()
            return any(line.strip() for line in file)
    except OSError:
        return path.exists()  # unreadable: not known to be an empty log, so not cleared


try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    # mypy types the name as the module it imports; None marks its absence (checked before each use).
    fcntl = None  # type: ignore[assignment]


# What Hydra's override grammar takes in an unquoted value: ASCII letters and digits and these
# characters. Anything else (a sweep job's directory, "<n>_seed=<k>", has "="; spaces, brackets,
# "#", "~", non-ASCII letters) needs a quoted value.
_UNQUOTED = re.compile(r"[A-Za-z0-9_/.+@%-]+")
# Characters a POSIX shell word takes unquoted.
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_/.+@%=:,-]+")


def resume_override(path: str | os.PathLike[str]) -> str:
    """The ``resume=<path>`` command-line override Hydra parses back to ``path`` (quoted where the
    path holds a character its grammar does not take unquoted); :func:`override_value` reads it.

    In a quoted value Hydra keeps backslashes as written, except a run of them before a quote or
    the closing quote, which it halves: those runs are doubled, then the quotes escaped. A ``${``
    would start an interpolation: it is escaped (``\\${``), the backslashes before it doubled.

    Examples:
        >>> from rlkit.rundir import override_value, resume_override
        >>> resume_override("outputs/run"), resume_override("multirun/x/0_seed=0")
        ('resume=outputs/run', "resume='multirun/x/0_seed=0'")
        >>> override_value(resume_override("multirun/x/0_seed=0").split("=", 1)[1])
        'multirun/x/0_seed=0'
    """
    text = str(path)
    if _UNQUOTED.fullmatch(text) and "/" in text:  # (without a "/", "0", "1e3" or "null" would read as no string)
        return f"resume={text}"
    return f"resume={quoted(text)}"


def quoted(text: str) -> str:
    """``text`` as a single-quoted Hydra override value that Hydra reads back as exactly that string
    (:func:`override_value` reads it too): never a number, ``null``, a list or a sweep.

    Examples:
        >>> from rlkit.rundir import override_value, quoted
        >>> quoted("my group, v2"), quoted("it's")
        ("'my group, v2'", "'it\\\\'s'")
        >>> override_value(quoted("it's"))
        "it's"
    """
    escaped = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)
    escaped = re.sub(r"\\+(?='|$)", lambda m: m.group(0) * 2, escaped).replace("'", "\\'")
    return f"'{escaped}'"


#: A searchpath entry Hydra's grammar reads bare as that string (a path: it holds a "/").
_BARE_ENTRY = re.compile(r"[\w.:/-]*/[\w.:/-]*")


def searchpath_override(entries: Sequence[str]) -> str:
    """``hydra.searchpath=[...]`` for ``entries``, each bare where Hydra reads it bare, else quoted.

    Examples:
        >>> from rlkit.rundir import searchpath_override
        >>> searchpath_override(["file:///my/conf", "file:///my confs/a,b"])
        "hydra.searchpath=[file:///my/conf,'file:///my confs/a,b']"
    """
    return "hydra.searchpath=[" + ",".join(
        entry if _BARE_ENTRY.fullmatch(entry) else quoted(entry) for entry in entries) + "]"


def resume_hint(path: str | os.PathLike[str]) -> str:
    """:func:`resume_override` as one POSIX shell word: double-quoted where it needs quoting (``\\
    $ ` "`` escaped), or single-quoted where it holds a ``!``, which interactive bash expands inside
    double quotes."""
    override = resume_override(path)
    if _SHELL_SAFE.fullmatch(override):
        return override
    if "!" in override:
        return shlex.quote(override)
    return '"' + re.sub(r'([\\$`"])', r"\\\1", override) + '"'


def override_value(value: str) -> str:
    """A command-line override's value with Hydra's quotes removed (``'a=b'`` -> ``a=b``): the
    inverse of :func:`resume_override`'s quoting, by the same rule."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        quote, inner = value[0], value[1:-1]
        inner = re.sub(r"(\\+)(" + quote + "|$)", lambda m: "\\" * (len(m.group(1)) // 2) + m.group(2), inner)
        return re.sub(r"(\\+)\$\{", lambda m: "\\" * (len(m.group(1)) // 2) + "${", inner)
    return value


def lock_holder(run_dir: str | os.PathLike[str]) -> str | None:
    """Who holds ``run_dir``'s lock, as written in the lock file (``"pid 123 on host"``), or ``None``
    when nobody does (no lock file, or its holder has ended)."""
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    with path.open("r+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            return f.read().strip() or "another process"
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return None


def check_creatable(folder: str | os.PathLike[str], what: str) -> None:
    """Refuses, in one line, a directory that is a file or cannot be made (a missing or read-only
    parent, a file on its path, ``/proc``): it is made and removed again, so nothing is left.

    Raises:
        RunDirError: naming ``what`` (``"the run directory"``, ``"out="``), the path and the cause.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.rundir import check_creatable
        >>> base = Path(tempfile.mkdtemp())
        >>> check_creatable(base / "a" / "b", "out=")  # fine, and nothing is left
        >>> list(base.iterdir())
        []
        >>> _ = (base / "f").write_text("x")
        >>> try:
        ...     check_creatable(base / "f" / "run", "out=")
        ... except Exception as err:
        ...     print(type(err).__name__, str(err).split(": ", 1)[1])
        RunDirError Not a directory
    """
    shown = str(folder)
    folder = Path(os.path.abspath(folder))  # (normalised: "a/b/../c" is made as "a/c")
    if folder.is_dir():
        return
    if folder.exists():
        raise RunDirError(f"{what} {shown!r} is a file; give a directory")
    made: list[Path] = []  # only what this call made is removed again
    try:
        for level in reversed([p for p in (folder, *folder.parents) if not p.exists()]):  # shallowest first
            try:
                level.mkdir()
            except FileExistsError:
                if level.is_dir():
                    continue  # made by another process meanwhile: not ours to remove
                raise
            made.append(level)
    except OSError as err:
        raise RunDirError(f"{what} {shown!r} cannot be created: {err.strerror or err}") from None
    finally:
        for level in reversed(made):  # deepest first; one another process has written into stays
            try:
                level.rmdir()
            except OSError:
                pass


#: What a run directory holds beside its config.yaml (a seed folder of a multi-seed run has no checkpoints/).
_RUN_FILES = ("checkpoints", "metrics.csv", "episodes.csv", "train.log")


def check_outside_run_files(path: str | os.PathLike[str], own: str | None, what: str, shown: str | None = None,
                            run: str | os.PathLike[str] | None = None) -> None:
    """Refuses ``path``, a file or folder to write, inside a run directory (this run's or another's:
    the nearest folder above it holding rlkit's ``config.yaml`` with ``checkpoints/`` or run logs
    beside it; a seed folder of a multi-seed run is one) anywhere but in the run's folder ``own``
    (``export``, ``eval``), where it would replace or sit among the run's own files (its config,
    checkpoints, ``.hydra/``, logs). What :func:`rlkit.exporter.export_policy` (``own="export"``) and
    :func:`rlkit.evaluation.evaluate` (``own="eval"``) check before they write.

    Args:
        path: the file or folder to write.
        own: the run's folder where ``what`` belongs (None: nowhere inside a run; a new run).
        what: what is written, for the message (``"the export"``).
        shown: how the message names ``path``; default ``out='<path>'``.
        run: the run whose ``what`` this is: ``path`` may be in its folder ``own`` only, not in
            another run's (an export there would replace that run's own).

    Raises:
        ConfigError: naming the path, the run directory and where to write instead.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.errors import ConfigError
        >>> from rlkit.rundir import check_outside_run_files
        >>> run = Path(tempfile.mkdtemp())
        >>> (run / "checkpoints").mkdir(); _ = (run / "config.yaml").write_text("seed: 0")
        >>> check_outside_run_files(run / "export" / "policy.pt", "export", "the export")  # the run's export folder: fine
        >>> try:
        ...     check_outside_run_files(run / "checkpoints" / "last.pt", "export", "the export")
        ... except ConfigError as err:
        ...     print(str(err).split(" is ")[1][:26])
        inside the run directory '
    """
    resolved = Path(path).resolve()
    for folder in (resolved, *resolved.parents):
        if (folder / COMMIT_NAME).is_file() and any((folder / name).exists() for name in _RUN_FILES):
            parts = resolved.relative_to(folder).parts
            shown = shown if shown is not None else f"out={str(path)!r}"
            if not parts or parts[0] != own:  # (``path`` the run directory itself: among them too)
                where = "inside the run directory" if parts else "the run directory"
                instead = f"into {str(folder / own)!r} or outside the run" if own else "outside it"
                raise ConfigError(f"{shown} is {where} {str(folder)!r}, among its own files; write {what} {instead}")
            if run is not None and Path(run).resolve() != folder:
                raise ConfigError(f"{shown} is in the {own} folder of another run, {str(folder)!r}; write {what} into "
                                  f"{str(Path(run) / str(own))!r} or outside any run")
            return


def check_fresh_run_dir(run_dir: str | os.PathLike[str], *, locked_before: bool | None = None) -> None:
    """Refuses to start a new run in a directory that holds anything: another run's files would get
    a second run's rows, and other files (``hydra.run.dir=.``) would get a run written among them.

    The one exception is a start killed before it committed (:data:`COMMIT_NAME`), which a new
    start clears: the directory holds rlkit's lock file (a start takes it before writing anything)
    and only what such a start writes (:func:`_start_artefact`). Without the lock file the same
    names are someone else's files, and are refused like any others. ``locked_before``: whether the
    lock file was there before this process created it (under :meth:`RunDir.claim`'s lock); by
    default, whether it is there now.

    Raises:
        RunDirError: naming what is there and how to continue a run or start elsewhere.
    """
    run_dir = Path(run_dir)
    if str(run_dir).strip() in ("", "."):
        raise RunDirError(f"the run directory {str(run_dir)!r} is the current directory; give a new "
                          "directory (hydra.run.dir=outputs/<name>) or leave hydra.run.dir unset")
    if not run_dir.exists():
        check_creatable(run_dir, "the run directory")
        return
    if not run_dir.is_dir():
        raise RunDirError(f"the run directory {str(run_dir)!r} is a file; give a new directory")
    entries = sorted((p for p in run_dir.iterdir() if p.name not in _FRESH_OK), key=lambda p: p.name)
    found = [p.name for p in entries]
    shown = [name for name in found if name != CLOSED_NAME] or found
    locked = (run_dir / LOCK_NAME).is_file() if locked_before is None else locked_before
    interrupted = locked and all(_start_artefact(p) for p in entries)
    if not found or (interrupted and not (run_dir / COMMIT_NAME).exists()):
        return  # empty, or an interrupted start (cleared by RunDir.claim)
    if (run_dir / COMMIT_NAME).exists():
        raise RunDirError(
            f"{run_dir} already holds a run ({', '.join(shown[:6])}); continue it with {resume_hint(run_dir)}, "
            "or start the new run in another directory (hydra.run.dir=...)"
        )
    raise RunDirError(
        f"{run_dir} is not empty ({', '.join(shown[:6])}{', ...' if len(shown) > 6 else ''}); a new run "
        "needs a new or empty directory (hydra.run.dir=...)"
    )


class RunDir:
    """A run directory held by this process: its lock, and what a failed fresh start must undo.

    Use :meth:`claim`; release with :meth:`release` or as a context manager.
    """

    def __init__(self, path: Path, fd: int, before: frozenset[str], previous_holder: bytes,
                 previous_times: tuple[int, int] | None = None) -> None:
        self.path = path
        self._fd: int | None = fd
        self._before = before
        self._previous_holder = previous_holder
        self._previous_times = previous_times  # the lock file's (atime, mtime) in ns before the claim

    @classmethod
    def claim(cls, run_dir: str | os.PathLike[str], *, fresh: bool) -> RunDir:
        """Takes ``run_dir``'s lock (creating the directory for a fresh start).

        Args:
            run_dir: the run directory.
            fresh: a new run: the directory must be new or empty (:func:`check_fresh_run_dir`,
                checked under the lock). Otherwise (resume) it must exist.

        Raises:
            RunDirBusyError: another process holds the lock (the message names its pid).
            RunDirError: ``fresh`` and the directory is not empty; or not ``fresh`` and it is missing.
        """
        path = Path(run_dir)
        if fresh:
            check_fresh_run_dir(path)  # before creating anything
        elif not path.is_dir():
            raise RunDirError(f"cannot resume: {str(path)!r} is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        before = frozenset(p.name for p in path.iterdir())
        fd, previous, times = _lock(path)
        held = cls(path, fd, before, previous, times)
        if fresh:
            try:
                check_fresh_run_dir(path, locked_before=LOCK_NAME in before)  # again, now that no one else can start here
                held._clear_interrupted_start()
            except BaseException:
                held.abandon()
                raise
        return held

    def _clear_interrupted_start(self) -> None:
        """Removes what a start killed before it committed left (see :data:`COMMIT_NAME`), temporary
        files of its interrupted writes included."""
        removed = set()
        for entry in self.path.iterdir():
            if _start_artefact(entry):
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                removed.add(entry.name)
        self._before = self._before - removed

    def remove_stale_temp_files(self) -> list[Path]:
        """Removes temporary files that interrupted atomic writes of this run left, anywhere in its
        directory (``kill -9`` during a checkpoint write leaves a full-size ``.last.pt.*.tmp``; during
        a resume's provenance, one in ``.hydra/resume_<k>/``). Safe: no one else writes here."""
        removed = []
        for entry in sorted(self.path.rglob(".*.tmp")):
            if entry.is_file() and atomic_write_target(entry.name) is not None:
                entry.unlink(missing_ok=True)
                removed.append(entry)
        return removed

    def abandon(self) -> None:
        """Undoes a fresh start that failed before its first checkpoint: removes what this start
        created and the lock file, then the directory if that left it empty, and releases the lock.
        Nothing that was there before the start is touched."""
        if LOCK_NAME in self._before:
            self._restore_holder()
        try:
            for entry in self.path.iterdir():
                if entry.name in self._before:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
            if not any(self.path.iterdir()):
                self.path.rmdir()
        except OSError:
            pass  # best effort: the lock is released below either way
        finally:
            self.release()

    def release(self, *, restore: bool = False) -> None:
        """Releases the lock (idempotent); the lock file stays, see :func:`_lock`. With ``restore``
        (a start refused before it changed anything) the lock file gets back the bytes it had before
        the claim, so that the directory is byte for byte as it was."""
        if restore:
            self._restore_holder()
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def _restore_holder(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, self._previous_holder, 0)
            if self._previous_times is not None and os.utime in os.supports_fd:
                os.utime(self._fd, ns=self._previous_times)

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _lock(run_dir: Path) -> tuple[int, bytes, tuple[int, int]]:
    """Takes the exclusive lock of ``run_dir`` or raises :class:`RunDirBusyError`; returns the
    descriptor, what the lock file held before (this process's pid is written in its place) and its
    access and modification times before (ns).

    The lock file is never deleted while in use: a process that opened it before a deletion would
    lock the unlinked file while a third one locks a new file of the same name. After locking, the
    file is checked to still be the one at that path (it is not after :meth:`RunDir.abandon`).
    """
    path = run_dir / LOCK_NAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:  # a read-only file system or folder, no permission, a full disk
            raise RunDirError(
                f"cannot write in {run_dir}: opening its lock file {path} failed ({err.strerror or err}); a run "
                "writes in its directory: make it writable, or copy the run to a writable place and resume the copy"
            ) from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
                os.close(fd)
                if err.errno in (errno.EAGAIN, errno.EACCES):
                    raise RunDirBusyError(
                        f"{run_dir} is in use by {holder} (it holds {path}); one process writes a run at a "
                        "time: wait for it to end, or stop it and resume"
                    ) from None
                raise
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    before = os.fstat(fd)
    previous = os.pread(fd, 4096, 0)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
    return fd, previous, (before.st_atime_ns, before.st_mtime_ns)


def foreign_contents(folder: str | os.PathLike[str], marks: Sequence[str],
                     own: Callable[[str], bool] = lambda name: False) -> str | None:
    """What makes ``folder`` someone else's, for a tool that writes into a new or empty folder or
    continues in one of its own (holding one of ``marks``, or only names ``own`` accepts): ``None``
    when it is new, empty or the tool's, else its first names, shown for a message.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.rundir import foreign_contents
        >>> folder = Path(tempfile.mkdtemp())
        >>> foreign_contents(folder, ["study.db"]) is None  # empty
        True
        >>> _ = (folder / "notes.txt").write_text("mine")
        >>> foreign_contents(folder, ["study.db"])
        'notes.txt'
        >>> _ = (folder / "study.db").write_bytes(b""); foreign_contents(folder, ["study.db"]) is None
        True
    """
    path = Path(folder)
    if not path.is_dir():
        return None
    names = sorted(p.name for p in path.iterdir())
    if not names or any((path / mark).exists() for mark in marks) or all(own(name) for name in names):
        return None
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
