"""Watching what a data structure on a ``meta`` device (an accelerator stand-in whose values cannot be
read) copies from the host, and what it reads there."""
from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

#: The ways of reading a tensor's values on the host, by the name they are counted under.
_READS = {torch.Tensor.tolist: "tolist", torch.Tensor.item: "item", torch.Tensor.__bool__: "bool",
          torch.Tensor.__int__: "int", torch.Tensor.__index__: "int", torch.Tensor.__float__: "float"}


class DeviceWatch(TorchFunctionMode):
    """Within it (``with DeviceWatch() as watch:``): :attr:`copied`, the shapes of the host tensors
    copied to a ``meta`` device with ``Tensor.to``, and :attr:`reads`, the reads of tensor values on
    the host by kind (on an accelerator each of either waits for the device); indexing a ``meta``
    tensor with a host index tensor (a copy made inside the indexing) fails the test.

    A torch-function mode rather than patched ``torch.Tensor`` methods: setting ``__getitem__`` on the
    class changes its C slots for good (0-dim tensors then pass for sequences)."""

    def __init__(self) -> None:
        super().__init__()
        self.copied: list[tuple[int, ...]] = []
        self.reads: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func is torch.Tensor.__getitem__:
            value, index = args
            if value.device.type == "meta" and isinstance(index, torch.Tensor) and index.device.type == "cpu":
                raise AssertionError(f"a {list(value.shape)} tensor on the device indexed with a host index")
        if func in _READS:
            self.reads.append(_READS[func])
        out = func(*args, **(kwargs or {}))
        if func is torch.Tensor.to and args[0].device.type == "cpu" and out.device.type == "meta":
            self.copied.append(tuple(args[0].shape))
        return out
