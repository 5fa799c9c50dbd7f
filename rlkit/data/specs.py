"""Tensor specs: the shape, dtype and domain of observations and actions.

Specs are derived from gymnasium spaces by :mod:`rlkit.envs`, so no shape is ever written in a
config. Every spec can draw a random member (``rand``), test membership (``is_in``), map an
out-of-domain value back into the domain deterministically (``project``) and build a zero member
(``zero``). ``shape`` is the shape of one member; the ``shape`` argument of ``rand`` / ``zero`` is a
leading batch shape.

Examples:
    >>> import torch
    >>> from rlkit.data import OneHot, Categorical
    >>> spec = OneHot(4, mask=torch.tensor([True, False, True, False]))
    >>> a = spec.rand((3,))
    >>> a.shape, bool((a[:, 1] == 0).all()), spec.is_in(a)
    (torch.Size([3, 4]), True, True)
    >>> Categorical(3).project(torch.tensor([-2, 1, 7]))
    tensor([0, 1, 2])
"""
from __future__ import annotations

import abc
import copy
from typing import Iterator, Sequence

import torch
from tensordict import TensorDict

def _size(shape) -> torch.Size:
    if shape is None:
        return torch.Size([])
    if isinstance(shape, int):
        return torch.Size([shape])
    return torch.Size(shape)


def _check_bool_mask(mask: torch.Tensor, name: str = "mask") -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (True = allowed), got dtype {mask.dtype}")
    return mask


class TensorSpec(abc.ABC):
    """Base class: a domain of tensors of one shape, dtype and device."""

    def __init__(self, shape, dtype: torch.dtype, device=None) -> None:
        self.shape = _size(shape)
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else None

    # -- helpers -------------------------------------------------------------------------------
    def _full_shape(self, shape) -> torch.Size:
        return _size(shape) + self.shape

    def _has_shape(self, x: torch.Tensor) -> bool:
        n = len(self.shape)
        return x.dim() >= n and (n == 0 or x.shape[-n:] == self.shape)

    # -- interface -----------------------------------------------------------------------------
    @abc.abstractmethod
    def rand(self, shape=()) -> torch.Tensor:
        """Draws a random member for each index of the leading ``shape``."""

    @abc.abstractmethod
    def is_in(self, x: torch.Tensor) -> bool:
        """Whether every element of ``x`` (leading batch dims allowed) lies in the domain."""

    @abc.abstractmethod
    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Maps ``x`` onto the domain deterministically; members are returned unchanged."""

    def zero(self, shape=()) -> torch.Tensor:
        """A zero-filled tensor of the spec's dtype (``shape`` is a leading batch shape)."""
        return torch.zeros(self._full_shape(shape), dtype=self.dtype, device=self.device)

    def to(self, device) -> "TensorSpec":
        """A copy of the spec on ``device``."""
        out = copy.copy(self)
        out.device = torch.device(device)
        for name, value in vars(out).items():
            if isinstance(value, torch.Tensor):
                setattr(out, name, value.to(device))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={tuple(self.shape)}, dtype={self.dtype})"

    def __eq__(self, other) -> bool:
        if type(self) is not type(other):
            return False
        for key, value in vars(self).items():
            other_value = vars(other).get(key)
            if isinstance(value, torch.Tensor) or isinstance(other_value, torch.Tensor):
                if not (
                    isinstance(value, torch.Tensor)
                    and isinstance(other_value, torch.Tensor)
                    and value.shape == other_value.shape
                    and torch.equal(value.cpu(), other_value.cpu())
                ):
                    return False
            elif value != other_value:
                return False
        return True

    __hash__ = None  # mutable (masks)


class _DiscreteMaskMixin:
    """Shared mask handling for :class:`OneHot` and :class:`Categorical` (True = allowed)."""

    n: int
    mask: torch.Tensor | None

    def _set_mask(self, mask) -> None:
        if mask is None:
            self.mask = None
            return
        mask = _check_bool_mask(mask)
        if mask.shape[-1:] != torch.Size([self.n]):
            raise ValueError(f"mask must end with a dim of size n={self.n}, got shape {tuple(mask.shape)}")
        if not mask.any(-1).all():
            raise ValueError("mask forbids every action in at least one row")
        self.mask = mask

    def update_mask(self, mask) -> None:
        """Replaces the mask (bool, True = allowed; ``None`` removes it)."""
        self._set_mask(mask)

    def _allowed(self, batch: torch.Size) -> torch.Tensor:
        if self.mask is None:
            return torch.ones(batch + (self.n,), dtype=torch.bool, device=self.device)
        return self.mask.expand(batch + (self.n,))

    def _rand_index(self, batch: torch.Size) -> torch.Tensor:
        if self.mask is None:
            return torch.randint(self.n, batch, device=self.device)
        probs = self._allowed(batch).to(torch.float32).reshape(-1, self.n)
        return torch.multinomial(probs, 1).reshape(batch)

    def _index_allowed(self, index: torch.Tensor) -> bool:
        if self.mask is None:
            return True
        allowed = self.mask.expand(index.shape + (self.n,))
        return bool(allowed.gather(-1, index.unsqueeze(-1)).all())


class OneHot(_DiscreteMaskMixin, TensorSpec):
    """One-hot encoded discrete actions: ``n`` entries, exactly one of which is 1.

    Args:
        n: number of actions.
        device: device of the drawn tensors.
        dtype: dtype of members (int64 by default).
        mask: optional bool mask of allowed actions, shape ``[..., n]``.

    Examples:
        >>> spec = OneHot(3)
        >>> spec.project(torch.tensor([0.2, 0.9, 0.9]))
        tensor([0, 1, 0])
    """

    def __init__(self, n: int, device=None, dtype: torch.dtype = torch.int64, mask=None) -> None:
        if int(n) < 1:
            raise ValueError(f"OneHot needs n >= 1, got {n}")
        super().__init__((int(n),), dtype, device)
        self.n = int(n)
        self._set_mask(mask)

    def rand(self, shape=()) -> torch.Tensor:
        index = self._rand_index(_size(shape))
        return self.from_index(index)

    def from_index(self, index: torch.Tensor) -> torch.Tensor:
        """One-hot encodes integer indices."""
        return torch.nn.functional.one_hot(index.long(), self.n).to(self.dtype)

    def to_index(self, x: torch.Tensor) -> torch.Tensor:
        """The index of the 1 in each one-hot row."""
        return x.argmax(-1)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        binary = ((x == 0) | (x == 1)).all()
        single = (x.sum(-1) == 1).all()
        return bool(binary and single) and self._index_allowed(x.argmax(-1))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        scores = x.to(torch.float32)
        if self.mask is not None:
            scores = scores.masked_fill(~self.mask.expand_as(scores), float("-inf"))
        return self.from_index(scores.argmax(-1))


class Categorical(_DiscreteMaskMixin, TensorSpec):
    """Discrete actions as integer indices in ``[0, n)``.

    Args:
        n: number of actions.
        shape: shape of one member (``()`` by default).
        device: device of the drawn tensors.
        dtype: integer dtype (int64 by default).
        mask: optional bool mask of allowed actions, shape ``[..., n]``.

    Examples:
        >>> Categorical(4, mask=torch.tensor([False, True, False, True])).project(torch.tensor(2))
        tensor(1)
    """

    def __init__(self, n: int, shape=(), device=None, dtype: torch.dtype = torch.int64, mask=None) -> None:
        if int(n) < 1:
            raise ValueError(f"Categorical needs n >= 1, got {n}")
        super().__init__(shape, dtype, device)
        self.n = int(n)
        self._set_mask(mask)

    def rand(self, shape=()) -> torch.Tensor:
        return self._rand_index(self._full_shape(shape)).to(self.dtype)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        if x.is_floating_point() and not (x == x.round()).all():
            return False
        if not ((x >= 0) & (x < self.n)).all():
            return False
        return self._index_allowed(x.long())

    def project(self, x: torch.Tensor) -> torch.Tensor:
        index = x.round().clamp(0, self.n - 1).long()
        if self.mask is not None:
            # The nearest allowed index (the lower one on ties).
            arange = torch.arange(self.n, device=index.device)
            dist = (arange - index.unsqueeze(-1)).abs().to(torch.float32)
            dist = dist + arange.to(torch.float32) * 1e-3  # prefer the lower index on ties
            dist = dist.masked_fill(~self.mask.expand_as(dist), float("inf"))
            index = dist.argmin(-1)
        return index.to(self.dtype)


class MultiOneHot(TensorSpec):
    """Several one-hot groups concatenated along the last dim (``sum(nvec)`` entries).

    Args:
        nvec: the number of actions of each group.

    Examples:
        >>> spec = MultiOneHot([2, 3])
        >>> spec.project(torch.tensor([0.1, 0.5, 3.0, 0.0, 1.0]))
        tensor([0, 1, 1, 0, 0])
    """

    def __init__(self, nvec: Sequence[int], device=None, dtype: torch.dtype = torch.int64) -> None:
        nvec = [int(n) for n in (nvec.tolist() if isinstance(nvec, torch.Tensor) else nvec)]
        if not nvec or min(nvec) < 1:
            raise ValueError(f"MultiOneHot needs a non-empty nvec of positive sizes, got {nvec}")
        super().__init__((sum(nvec),), dtype, device)
        self.nvec = nvec

    def _groups(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x.split(self.nvec, dim=-1)

    def rand(self, shape=()) -> torch.Tensor:
        batch = _size(shape)
        parts = [OneHot(n, device=self.device, dtype=self.dtype).rand(batch) for n in self.nvec]
        return torch.cat(parts, -1)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        if not ((x == 0) | (x == 1)).all():
            return False
        return all(bool((g.sum(-1) == 1).all()) for g in self._groups(x))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        parts = [
            torch.nn.functional.one_hot(g.to(torch.float32).argmax(-1), n).to(self.dtype)
            for g, n in zip(self._groups(x), self.nvec)
        ]
        return torch.cat(parts, -1)


class Binary(TensorSpec):
    """``n`` independent on/off switches (0 or 1).

    Examples:
        >>> Binary(3).project(torch.tensor([0.7, -1.0, 0.5]))
        tensor([1, 0, 0])
    """

    def __init__(self, n: int, device=None, dtype: torch.dtype = torch.int64) -> None:
        if int(n) < 1:
            raise ValueError(f"Binary needs n >= 1, got {n}")
        super().__init__((int(n),), dtype, device)
        self.n = int(n)

    def rand(self, shape=()) -> torch.Tensor:
        return torch.randint(0, 2, self._full_shape(shape), device=self.device).to(self.dtype)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        return bool(((x == 0) | (x == 1)).all())

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0.5).to(self.dtype)


class Bounded(TensorSpec):
    """A box ``low <= x <= high`` (broadcast to ``shape``).

    Examples:
        >>> Bounded(-1.0, 1.0, (2,)).project(torch.tensor([3.0, -0.5]))
        tensor([ 1.0000, -0.5000])
    """

    def __init__(self, low, high, shape=None, device=None, dtype: torch.dtype = torch.float32) -> None:
        low = torch.as_tensor(low, dtype=dtype, device=device)
        high = torch.as_tensor(high, dtype=dtype, device=device)
        shape = _size(shape) if shape is not None else torch.broadcast_shapes(low.shape, high.shape)
        low, high = low.expand(shape).clone(), high.expand(shape).clone()
        if (low > high).any():
            raise ValueError(f"Bounded needs low <= high, got low={low.tolist()} high={high.tolist()}")
        super().__init__(shape, dtype, device)
        self.low, self.high = low, high

    def rand(self, shape=()) -> torch.Tensor:
        full = self._full_shape(shape)
        if self.dtype.is_floating_point:
            low = torch.nan_to_num(self.low, neginf=-1e6, posinf=1e6)
            high = torch.nan_to_num(self.high, neginf=-1e6, posinf=1e6)
            return (low + (high - low) * torch.rand(full, device=self.device)).to(self.dtype)
        u = torch.rand(full, device=self.device)
        span = (self.high - self.low + 1).to(torch.float64)
        return (self.low + (u * span).floor().to(self.dtype)).clamp(max=self.high).to(self.dtype)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        return bool(((x >= self.low) & (x <= self.high)).all())

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(torch.minimum(x.to(self.dtype), self.high), self.low)


class Unbounded(TensorSpec):
    """Any finite value of the given shape and dtype.

    Examples:
        >>> Unbounded((3,)).rand().shape
        torch.Size([3])
    """

    def __init__(self, shape=(), device=None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__(shape, dtype, device)

    def rand(self, shape=()) -> torch.Tensor:
        full = self._full_shape(shape)
        if self.dtype.is_floating_point:
            return torch.randn(full, device=self.device, dtype=self.dtype)
        return torch.randint(-100, 100, full, device=self.device).to(self.dtype)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        return bool(torch.isfinite(x).all()) if x.is_floating_point() else True

    def project(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point():
            return torch.nan_to_num(x, nan=0.0).to(self.dtype)
        return x.to(self.dtype)


class Composite(TensorSpec):
    """A dictionary of specs; members are TensorDicts.

    Examples:
        >>> spec = Composite(observation=Unbounded((4,)), action=OneHot(2))
        >>> td = spec.rand((5,))
        >>> td["action"].shape, spec.is_in(td)
        (torch.Size([5, 2]), True)
    """

    def __init__(self, specs: dict | None = None, shape=(), device=None, **kwargs: TensorSpec) -> None:
        super().__init__(shape, torch.float32, device)
        self._specs: dict[str, TensorSpec] = {}
        for key, spec in {**(specs or {}), **kwargs}.items():
            self[key] = spec

    def __getitem__(self, key):
        if isinstance(key, tuple):
            spec = self
            for part in key:
                spec = spec[part]
            return spec
        if key not in self._specs:
            raise KeyError(f"no spec under {key!r}; keys: {sorted(self._specs)}")
        return self._specs[key]

    def __setitem__(self, key, spec: TensorSpec) -> None:
        if isinstance(key, tuple):
            head, rest = key[0], key[1:]
            if not rest:
                self[head] = spec
                return
            if head not in self._specs:
                self._specs[head] = Composite()
            self._specs[head][rest] = spec
            return
        if not isinstance(spec, TensorSpec):
            raise TypeError(f"Composite entries must be TensorSpec, got {type(spec).__name__} for {key!r}")
        self._specs[key] = spec

    def __contains__(self, key) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def keys(self):
        return self._specs.keys()

    def items(self):
        return self._specs.items()

    def values(self):
        return self._specs.values()

    def rand(self, shape=()) -> TensorDict:
        full = self._full_shape(shape)
        return TensorDict({k: s.rand(full) for k, s in self._specs.items()}, batch_size=full)

    def zero(self, shape=()) -> TensorDict:
        full = self._full_shape(shape)
        return TensorDict({k: s.zero(full) for k, s in self._specs.items()}, batch_size=full)

    def is_in(self, td) -> bool:
        return all(key in td.keys() and spec.is_in(td[key]) for key, spec in self._specs.items())

    def project(self, td) -> TensorDict:
        out = td.copy()
        for key, spec in self._specs.items():
            if key in td.keys():
                out[key] = spec.project(td[key])
        return out

    def to(self, device) -> "Composite":
        return Composite({k: s.to(device) for k, s in self._specs.items()}, shape=self.shape, device=device)

    def __eq__(self, other) -> bool:
        return isinstance(other, Composite) and self.shape == other.shape and self._specs == other._specs

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._specs.items())
        return f"Composite({inner}, shape={tuple(self.shape)})"


#: Name used by the seed documents.
OneHotDiscreteTensorSpec = OneHot

__all__ = [
    "TensorSpec",
    "OneHot",
    "OneHotDiscreteTensorSpec",
    "Categorical",
    "MultiOneHot",
    "Binary",
    "Bounded",
    "Unbounded",
    "Composite",
]
