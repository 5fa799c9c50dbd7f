"""Small helpers shared by several rlkit layers (no rlkit imports, so any layer may use them)."""
from __future__ import annotations

from rlkit.utils.io import atomic_write, fsync_dir
from rlkit.utils.tensordicts import assembled

__all__ = ["assembled", "atomic_write", "fsync_dir"]
