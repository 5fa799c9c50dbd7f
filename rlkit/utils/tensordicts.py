"""Building TensorDicts out of tensors that rlkit has just made to fit (a collected batch, a replay
sample, a loss's outputs): one named place for that construction, through tensordict's public
constructor (which also checks the entries against the batch size).
"""
from __future__ import annotations

import torch
from tensordict import TensorDict

__all__ = ["assembled"]

def assembled(source: dict, batch_size: torch.Size, device: torch.device | None = None) -> TensorDict:
    """``TensorDict(source, batch_size=batch_size, device=device)`` for entries made to fit: every
    tensor (also in nested dicts, which become nested TensorDicts) starts with ``batch_size``.

    Examples:
        >>> import torch
        >>> from rlkit.utils import assembled
        >>> td = assembled({"a": torch.zeros(3, 2), "next": {"b": torch.ones(3, 1)}}, torch.Size([3]))
        >>> td.batch_size, td["next", "b"].shape
        (torch.Size([3]), torch.Size([3, 1]))
    """
    return TensorDict(source, batch_size=batch_size, device=device)
