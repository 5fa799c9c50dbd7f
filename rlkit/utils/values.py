"""Reading an argument as an integer, a real number or a flag, whatever kind of scalar holds it
(Python, numpy, a one-element torch tensor), without the silent conversions of ``int()`` and
``bool()`` (``int(2.7) == 2``, ``bool("false") is True``)."""
from __future__ import annotations

import numbers
import operator
from typing import Any

import numpy as np
import torch

__all__ = ["as_flag", "as_int", "as_real"]


def as_int(value: Any) -> int | None:
    """``value`` as an ``int`` if it is an integer (not a bool, not a float that happens to be whole),
    else ``None``.

    Examples:
        >>> import numpy as np, torch
        >>> from rlkit.utils.values import as_int
        >>> as_int(3), as_int(np.int64(3)), as_int(torch.tensor(3))
        (3, 3, 3)
        >>> as_int(2.7), as_int(3.0), as_int(True), as_int("3")
        (None, None, None, None)
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            return None
        return int(value.item())
    try:
        return operator.index(value)
    except TypeError:
        return None


def as_real(value: Any) -> float | None:
    """``value`` as a ``float`` if it is a real number (an int or float of any kind; not a bool or a
    string), else ``None``. NaN and infinities are returned as they are (the caller says whether it
    takes them).

    Examples:
        >>> import numpy as np, torch
        >>> from rlkit.utils.values import as_real
        >>> as_real(1), as_real(np.float32(0.5)), as_real(torch.tensor(0.25))
        (1.0, 0.5, 0.25)
        >>> as_real(True), as_real("0.5"), as_real(torch.zeros(2))
        (None, None, None)
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_complex() or value.dtype == torch.bool:
            return None
        return float(value.item())
    if isinstance(value, numbers.Real):
        return float(value)
    return None


def as_flag(value: Any) -> bool | None:
    """``value`` as a ``bool`` if it is one (Python or numpy), else ``None`` (``"false"`` and ``0``
    are not flags).

    Examples:
        >>> import numpy as np
        >>> from rlkit.utils.values import as_flag
        >>> as_flag(np.bool_(True)), as_flag(False), as_flag("false"), as_flag(0)
        (True, False, None, None)
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return None
