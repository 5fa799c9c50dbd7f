"""A replay state as a checkpoint holds it: through ``torch.save`` and ``torch.load(weights_only=True)``."""
from __future__ import annotations

import io
from typing import Any

import torch


def through_file(state: Any) -> tuple[Any, int]:
    """``state`` saved with ``torch.save`` and loaded back, and the bytes it took."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    size = buffer.tell()
    buffer.seek(0)
    return torch.load(buffer, weights_only=True), size
