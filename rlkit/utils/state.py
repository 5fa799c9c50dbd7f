"""Structural comparison of state dicts: does a saved state fit the object it is loaded into?"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["first_mismatch"]


def first_mismatch(reference: Any, saved: Any, path: str = "state", *, values: bool = False) -> str | None:
    """The first place where ``saved`` does not have the structure of ``reference``, or ``None``.

    Mappings must have the same keys (a missing or an unexpected key is a mismatch), sequences the
    same length, tensors the same shape and dtype, other values the same type (and, with ``values``,
    the same value). Tensor contents are never compared.

    Args:
        reference: the state of a freshly built object (what fits).
        saved: the state to check.
        path: the name of the root in the message.
        values: also compare non-tensor leaves by value (for settings such as a capacity).

    Returns:
        A one-line description naming the key path and both sides, or ``None`` when ``saved`` fits.

    Examples:
        >>> import torch
        >>> from rlkit.utils.state import first_mismatch
        >>> first_mismatch({"w": torch.zeros(2, 84)}, {"w": torch.zeros(202, 84)})
        "state['w'] has shape (202, 84), expected (2, 84)"
        >>> first_mismatch({"a": 1, "b": 2}, {"a": 1, "c": 2})
        "state lacks 'b' and has unexpected 'c'"
        >>> first_mismatch({"a": torch.ones(3)}, {"a": torch.zeros(3)}) is None
        True
    """
    if isinstance(reference, torch.Tensor):
        if not isinstance(saved, torch.Tensor):
            return f"{path} is a {type(saved).__name__}, expected a tensor"
        if saved.shape != reference.shape:
            return f"{path} has shape {tuple(saved.shape)}, expected {tuple(reference.shape)}"
        if saved.dtype != reference.dtype:
            return f"{path} has dtype {saved.dtype}, expected {reference.dtype}"
        return None
    if isinstance(reference, Mapping):
        if not isinstance(saved, Mapping):
            return f"{path} is a {type(saved).__name__}, expected a mapping"
        missing = [k for k in reference if k not in saved]
        unexpected = [k for k in saved if k not in reference]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"lacks {_names(missing)}")
            if unexpected:
                parts.append(f"has unexpected {_names(unexpected)}")
            return f"{path} " + " and ".join(parts)
        for key in reference:
            found = first_mismatch(reference[key], saved[key], f"{path}[{key!r}]", values=values)
            if found:
                return found
        return None
    if isinstance(reference, Sequence) and not isinstance(reference, (str, bytes)):
        if not isinstance(saved, Sequence) or isinstance(saved, (str, bytes)):
            return f"{path} is a {type(saved).__name__}, expected a sequence"
        if len(saved) != len(reference):
            return f"{path} has {len(saved)} items, expected {len(reference)}"
        for i, (ref, item) in enumerate(zip(reference, saved)):
            found = first_mismatch(ref, item, f"{path}[{i}]", values=values)
            if found:
                return found
        return None
    if reference is not None and saved is not None and not _same_kind(reference, saved):
        return f"{path} is a {type(saved).__name__} ({saved!r}), expected a {type(reference).__name__}"
    if values and saved != reference:
        return f"{path} is {saved!r}, expected {reference!r}"
    return None


def _same_kind(a: Any, b: Any) -> bool:
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return True
    return type(a) is type(b)


def _names(keys: list) -> str:
    shown = ", ".join(repr(k) for k in keys[:3])
    return shown + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")
