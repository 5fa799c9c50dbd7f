"""Small helpers shared by several rlkit layers (no rlkit imports, so any layer may use them)."""
from __future__ import annotations

from rlkit.utils.io import atomic_write, fsync_dir

__all__ = ["atomic_write", "fsync_dir"]
