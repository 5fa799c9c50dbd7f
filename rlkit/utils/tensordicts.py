"""Building TensorDicts out of tensors that rlkit has just made to fit (a collected batch, a replay
sample, a loss's outputs): one named place for that construction, through tensordict's public
constructor (which also checks the entries against the batch size); and running a module with
parameters swapped in (:func:`call_with_params`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn

__all__ = ["assembled", "call_with_params"]

_T = TypeVar("_T")


def call_with_params(params: TensorDictBase, module: nn.Module, call: Callable[[], _T]) -> _T:
    """``call()`` with ``params`` swapped into ``module`` (``with params.to_module(module)``), the
    module's own put back however the call ends. A ``KeyboardInterrupt`` (a Ctrl-C) raised by the
    call is raised again once they are back: tensordict 0.15's exit of that block handles only
    ``Exception`` and turned it into "RuntimeError: Converting a tensordict to boolean value is not
    permitted" (a sweep then counted a Ctrl-C as a failed job and went on).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.utils.tensordicts import call_with_params
        >>> net = torch.nn.Linear(1, 1, bias=False)
        >>> zero = TensorDict(weight=torch.zeros(1, 1))
        >>> call_with_params(zero, net, lambda: net(torch.ones(1))).item()
        0.0
        >>> def interrupted():
        ...     raise KeyboardInterrupt
        >>> try:
        ...     call_with_params(zero, net, interrupted)
        ... except KeyboardInterrupt:
        ...     print("interrupted, weight back:", net.weight.abs().sum().item() > 0)
        interrupted, weight back: True
    """
    caught: BaseException | None = None
    with params.to_module(module):
        try:
            return call()
        except Exception:
            raise
        except BaseException as err:  # (KeyboardInterrupt, SystemExit: raised below, once the block has exited)
            caught = err
    raise caught

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
