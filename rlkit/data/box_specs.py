"""Continuous specs: boxes (:class:`Bounded`) and unbounded tensors (:class:`Unbounded`)."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from rlkit.data.specs import DeviceLike, ShapeLike, TensorSpec, _size


class Bounded(TensorSpec):
    """A box ``low <= x <= high`` (broadcast to ``shape``).

    Examples:
        >>> import torch
        >>> from rlkit.data import Bounded
        >>> Bounded(-1.0, 1.0, (2,)).project(torch.tensor([3.0, -0.5]))
        tensor([ 1.0000, -0.5000])
    """

    def __init__(
        self,
        low: float | Sequence[float] | torch.Tensor,
        high: float | Sequence[float] | torch.Tensor,
        shape: ShapeLike = None,
        device: DeviceLike | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        low = torch.as_tensor(low, dtype=dtype, device=device)
        high = torch.as_tensor(high, dtype=dtype, device=device)
        try:
            shape = _size(shape) if shape is not None else torch.broadcast_shapes(low.shape, high.shape)
            low, high = low.expand(shape).clone(), high.expand(shape).clone()
        except RuntimeError:
            raise ValueError(
                f"Bounded: low of shape {tuple(low.shape)} and high of shape {tuple(high.shape)} "
                f"do not broadcast to shape {None if shape is None else tuple(_size(shape))}"
            ) from None
        if dtype.is_floating_point and bool(torch.isnan(low).any() | torch.isnan(high).any()):
            raise ValueError(f"Bounded needs bounds that are numbers, got low={low.tolist()} high={high.tolist()}")
        if (low > high).any():
            raise ValueError(f"Bounded needs low <= high, got low={low.tolist()} high={high.tolist()}")
        super().__init__(shape, dtype, device)
        self.low, self.high = low, high

    def rand(self, shape: ShapeLike = ()) -> torch.Tensor:
        full = self._full_shape(shape)
        u = torch.rand(full, device=self.low.device)
        if self.dtype.is_floating_point:
            # An infinite side is replaced by a finite one 1e6 away from the other side (or from 0).
            width = 1e6
            low_f = torch.where(self.high.isinf(), -width, self.high - width)
            low_f = torch.where(self.low.isinf(), low_f, self.low)
            high_f = torch.where(self.high.isinf(), low_f.clamp(min=0.0) + width, self.high)
            return (low_f + (high_f - low_f) * u).clamp(self.low, self.high).to(self.dtype)
        span = (self.high - self.low + 1).to(torch.float64)
        return (self.low + (u * span).floor().to(self.dtype)).clamp(max=self.high).to(self.dtype)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        low, high = self.low.to(x.device), self.high.to(x.device)
        return bool(((x >= low) & (x <= high)).all())

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Clamps into ``[low, high]``; NaN maps to 0 (then clamped); integer boxes round first."""
        low, high = self.low.to(x.device), self.high.to(x.device)
        if x.is_floating_point():
            x = torch.nan_to_num(x, nan=0.0)
            if not self.dtype.is_floating_point:
                # Clamp before the integer cast: casting out-of-range floats is undefined.
                x = x.round().clamp(low.to(x.dtype), high.to(x.dtype))
        return torch.maximum(torch.minimum(x.to(self.dtype), high), low)


class Unbounded(TensorSpec):
    """Any finite value of the given shape and dtype.

    Examples:
        >>> from rlkit.data import Unbounded
        >>> Unbounded((3,)).rand().shape
        torch.Size([3])
    """

    def __init__(
        self, shape: ShapeLike = (), device: DeviceLike | None = None, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__(shape, dtype, device)

    def rand(self, shape: ShapeLike = ()) -> torch.Tensor:
        full = self._full_shape(shape)
        if self.dtype.is_floating_point:
            return torch.randn(full, device=self.device, dtype=self.dtype)
        return torch.randint(-100, 100, full, device=self.device).to(self.dtype)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        return bool(torch.isfinite(x).all()) if x.is_floating_point() else True

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """NaN -> 0 and +-inf -> the dtype's largest finite values; integer specs round."""
        if not x.is_floating_point():
            return x.to(self.dtype)
        if self.dtype.is_floating_point:
            return torch.nan_to_num(x.to(self.dtype), nan=0.0)
        info = torch.iinfo(self.dtype)
        # Clamp before the cast (out-of-range casts are undefined); float(int64 max) rounds up to
        # 2**63, hence the step down to the float just below it.
        high = float(info.max) if float(info.max) <= info.max else math.nextafter(float(info.max), 0.0)
        x = torch.nan_to_num(x.to(torch.float64), nan=0.0).round()
        return x.clamp(float(info.min), high).to(self.dtype)
