"""Building TensorDicts out of tensors that rlkit has just made to fit.

The public ``TensorDict(source, batch_size=..., device=...)`` checks every entry against the batch
size and moves entries to the device. Where rlkit assembles a batch itself (a collected batch,
a replay sample) those checks hold by construction, and on the hot path of small-network training
they cost as much as the work around them. :func:`assembled` builds the same TensorDict without
repeating them.
"""
from __future__ import annotations

import torch
from tensordict import TensorDict

__all__ = ["assembled"]

# tensordict's constructor without validation; the public one where a version lacks it.
_UNCHECKED = getattr(TensorDict, "_new_unsafe", None)


def assembled(source: dict, batch_size: torch.Size, device: torch.device | None = None) -> TensorDict:
    """``TensorDict(source, batch_size=batch_size, device=device)`` for entries known to fit.

    The caller guarantees what the public constructor would check: every tensor (also in nested
    dicts, which become nested TensorDicts) starts with ``batch_size`` and, when ``device`` is
    given, lies on it.

    Examples:
        >>> import torch
        >>> from rlkit.utils import assembled
        >>> td = assembled({"a": torch.zeros(3, 2), "next": {"b": torch.ones(3, 1)}}, torch.Size([3]))
        >>> td.batch_size, td["next", "b"].shape
        (torch.Size([3]), torch.Size([3, 1]))
    """
    if _UNCHECKED is None:
        return TensorDict(source, batch_size=batch_size, device=device)
    return _UNCHECKED(source, batch_size=batch_size, device=device)
