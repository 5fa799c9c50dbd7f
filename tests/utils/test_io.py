"""atomic_write: all-or-nothing replacement, fsync before the rename, no temp file left behind."""
from __future__ import annotations

import os

import pytest

from rlkit.utils import io as io_module
from rlkit.utils.io import atomic_write


def test_text_and_bytes_replace_the_file(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    with atomic_write(path, newline="") as f:
        f.write("a,b\r\nü\n")
    assert path.read_bytes() == "a,b\r\nü\n".encode()  # newline="" keeps line endings, UTF-8 text
    with atomic_write(path, "wb") as f:
        f.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_error_in_the_block_keeps_the_old_file_and_removes_the_temp(tmp_path, error):
    path = tmp_path / "config.yaml"
    path.write_text("old")
    with pytest.raises(type(error)), atomic_write(path) as f:
        f.write("half")
        raise error
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


def test_failed_rename_keeps_the_old_file_and_removes_the_temp(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    path.write_bytes(b"old")

    def power_cut(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(io_module.os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"), atomic_write(path, "wb") as f:
        f.write(b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_data_and_directory_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(io_module.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(io_module.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b)))
    with atomic_write(tmp_path / "x.txt") as f:
        f.write("x")
    expected = ["fsync", "replace", "fsync"] if os.name == "posix" else ["fsync", "replace"]
    assert events == expected
    assert (tmp_path / "x.txt").read_text() == "x"


def test_invalid_arguments(tmp_path):
    bad_mode = atomic_write(tmp_path / "x", "a")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be 'w' \\(text\\) or 'wb' \\(bytes\\), got 'a'"):
        bad_mode.__enter__()
    bad_newline = atomic_write(tmp_path / "x", "wb", newline="")
    with pytest.raises(ValueError, match="newline='' applies to text mode 'w' only, not 'wb'"):
        bad_newline.__enter__()
    assert not list(tmp_path.iterdir())


def test_written_files_get_umask_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f.txt") as f:
            f.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644
