"""Crash-safe file writes: a reader sees either the old file or the complete new one, never a part."""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

__all__ = ["atomic_write", "fsync_dir", "missing_folders", "new_file_mode", "remove_empty_folders"]


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Fsyncs ``directory`` so that a rename inside it survives a power cut (a no-op off POSIX).

    Windows cannot open a directory for fsync, and its rename is durable on its own.
    """
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: Literal["w", "wb"] = "w",
    *,
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Opens a temporary file next to ``path`` that replaces ``path`` when the block ends without error.

    On exit the data is flushed and fsynced, the temporary file is renamed onto ``path`` (atomic on
    POSIX and Windows) and the directory is fsynced. If the block or any of these steps raises
    (``KeyboardInterrupt`` included) the temporary file is removed, the error propagates and a previous
    file at ``path`` is untouched. The result gets the permissions of a newly created file
    (``0o666`` less the umask), like a plain ``open(path, "w")``. The parent directory must exist.

    Args:
        path: the destination file.
        mode: ``"w"`` for text (UTF-8) or ``"wb"`` for bytes.
        newline: as for :func:`open` in text mode (``""`` for the :mod:`csv` module).

    Yields:
        The open temporary file.

    Raises:
        ValueError: ``mode`` is not ``"w"`` or ``"wb"``, or ``newline`` is given with ``"wb"``.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.utils import atomic_write
        >>> path = Path(tempfile.mkdtemp()) / "notes.txt"
        >>> with atomic_write(path) as f:
        ...     _ = f.write("all or nothing")
        >>> path.read_text()
        'all or nothing'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' (text) or 'wb' (bytes), got {mode!r}")
    if mode == "wb" and newline is not None:
        raise ValueError(f"atomic_write newline={newline!r} applies to text mode 'w' only, not 'wb'")
    path = Path(path)
    text_options: dict[str, Any] = {"newline": newline, "encoding": "utf-8"} if mode == "w" else {}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp_name, new_file_mode())  # mkstemp makes 0600; run files should be shareable
        with os.fdopen(fd, mode, **text_options) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def new_file_mode() -> int:
    """The permissions ``open(path, "w")`` gives a new file: ``0o666`` less the process's umask (what
    a file written under a temporary name from :func:`tempfile.mkstemp`, which makes ``0o600``, gets
    before it is renamed into place).

    Examples:
        >>> from rlkit.utils.io import new_file_mode
        >>> new_file_mode() & 0o600  # the owner reads and writes
        384
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def whole_lines(path: str | os.PathLike[str]) -> str:
    """The text of ``path`` up to and including its last newline. A file written a line at a time
    (a CSV row per call, flushed) that its writer was killed in the middle of ends with a line
    without its newline: that unfinished line is left out.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.utils.io import whole_lines
        >>> path = Path(tempfile.mkdtemp()) / "episodes.csv"
        >>> _ = path.write_text("frame,return,length\\n100,9.0,9\\n110,2")
        >>> whole_lines(path)
        'frame,return,length\\n100,9.0,9\\n'
    """
    text = Path(path).read_text(encoding="utf-8")
    return text[: text.rfind("\n") + 1]


_TEMP_FILE = re.compile(r"^\.(.+)\.[A-Za-z0-9_]{8}\.tmp$")  # mkstemp(prefix=".<name>.", suffix=".tmp")


def atomic_write_target(name: str) -> str | None:
    """The name of the file an :func:`atomic_write` temporary file named ``name`` was for (one that
    a killed write left), or None when ``name`` is not such a temporary file.

    Examples:
        >>> from rlkit.utils.io import atomic_write_target
        >>> atomic_write_target(".last.pt.a1B2c3_d.tmp"), atomic_write_target("last.pt")
        ('last.pt', None)
    """
    temp = _TEMP_FILE.match(name)
    return temp.group(1) if temp else None


def missing_folders(path: str | os.PathLike[str]) -> list[Path]:
    """The folders of ``path`` (itself included) that do not exist yet, deepest first: what
    ``Path(path).mkdir(parents=True)`` would create, and :func:`remove_empty_folders` removes again
    after a failure.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.utils.io import missing_folders
        >>> root = Path(tempfile.mkdtemp())
        >>> [p.relative_to(root).as_posix() for p in missing_folders(root / "a" / "b")]
        ['a/b', 'a']
    """
    path = Path(os.path.abspath(path))
    return [p for p in (path, *path.parents) if not p.exists()]


def remove_empty_folders(folders: list[Path]) -> None:
    """Removes ``folders`` (deepest first, as :func:`missing_folders` lists them) as long as each is
    empty: one that another process has written into stays, and so do the folders above it.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.utils.io import missing_folders, remove_empty_folders
        >>> root = Path(tempfile.mkdtemp())
        >>> made = missing_folders(root / "a" / "b")
        >>> (root / "a" / "b").mkdir(parents=True)
        >>> remove_empty_folders(made)
        >>> list(root.iterdir())
        []
    """
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break
