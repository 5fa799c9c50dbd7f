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
from typing import Any, Sequence, Union

import torch

from rlkit.utils.values import as_int

#: A shape: an int, a sequence of ints, a ``torch.Size`` or ``None`` (scalar).
ShapeLike = Union[int, Sequence[int], torch.Size, None]
#: A device: ``torch.device``, a name like ``"cuda:0"`` or an index.
DeviceLike = Union[torch.device, str, int]
#: A nested Composite key: a string or a tuple of strings.
NestedKey = Union[str, tuple]


def _size(shape: ShapeLike) -> torch.Size:
    if shape is None:
        return torch.Size([])
    if isinstance(shape, int):
        return torch.Size([shape])
    return torch.Size(shape)


def _check_bool_mask(mask: Any, name: str = "mask") -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (True = allowed), got dtype {mask.dtype}")
    return mask


def _count(owner: str, n: Any) -> int:
    """``n`` as a number of actions: an integer >= 1 (a float or bool is refused, not truncated)."""
    count = as_int(n)
    if count is None or count < 1:
        raise ValueError(f"{owner} needs an integer n >= 1, got {n!r}")
    return count


def _index_dtype(owner: str, dtype: torch.dtype, n: int) -> None:
    """Refuses a dtype that cannot hold the indices ``0 .. n-1``: floating point, bool, or too narrow."""
    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool or torch.iinfo(dtype).max < n - 1:
        raise ValueError(f"{owner}: dtype {dtype} cannot hold the action indices 0..{n - 1}; use an integer dtype "
                         "(torch.int64 by default)")


class TensorSpec(abc.ABC):
    """Base class: a domain of tensors of one shape, dtype and device."""

    def __init__(self, shape: ShapeLike, dtype: torch.dtype, device: DeviceLike | None = None) -> None:
        self.shape = _size(shape)
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else None

    # -- helpers -------------------------------------------------------------------------------
    def _full_shape(self, shape: ShapeLike) -> torch.Size:
        return _size(shape) + self.shape

    def _has_shape(self, x: torch.Tensor) -> bool:
        n = len(self.shape)
        return x.dim() >= n and (n == 0 or x.shape[-n:] == self.shape)

    # -- interface -----------------------------------------------------------------------------
    @abc.abstractmethod
    def rand(self, shape: ShapeLike = ()) -> torch.Tensor:
        """Draws a random member for each index of the leading ``shape``."""

    @abc.abstractmethod
    def is_in(self, x: torch.Tensor) -> bool:
        """Whether every element of ``x`` (leading batch dims allowed) lies in the domain."""

    @abc.abstractmethod
    def project(self, x: torch.Tensor) -> torch.Tensor:
        """Maps ``x`` onto the domain deterministically; members are returned unchanged."""

    def zero(self, shape: ShapeLike = ()) -> torch.Tensor:
        """A zero-filled tensor of the spec's dtype (``shape`` is a leading batch shape)."""
        return torch.zeros(self._full_shape(shape), dtype=self.dtype, device=self.device)

    def to(self, device: DeviceLike) -> TensorSpec:
        """A copy of the spec on ``device``."""
        out = copy.copy(self)
        out.device = torch.device(device)
        for name, value in vars(out).items():
            if isinstance(value, torch.Tensor):
                setattr(out, name, value.to(device))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={tuple(self.shape)}, dtype={self.dtype})"

    def __eq__(self, other: object) -> bool:
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

    # Mutable (masks), so unhashable. typeshed types object.__hash__ as a method, so mypy rejects the
    # None that the data model prescribes (typeshed's own list and dict carry the same ignore).
    __hash__ = None  # type: ignore[assignment]


class _DiscreteMaskMixin:
    """Shared mask handling for :class:`OneHot` and :class:`Categorical` (True = allowed)."""

    n: int
    mask: torch.Tensor | None
    device: torch.device | None

    def _set_mask(self, mask: torch.Tensor | None) -> None:
        if mask is None:
            self.mask = None
            return
        mask = _check_bool_mask(mask)
        if mask.shape[-1:] != torch.Size([self.n]):
            raise ValueError(f"mask must end with a dim of size n={self.n}, got shape {tuple(mask.shape)}")
        if not mask.any(-1).all():
            raise ValueError(f"mask forbids every action in at least one row (mask shape {tuple(mask.shape)})")
        self.mask = mask

    def update_mask(self, mask: torch.Tensor | None) -> None:
        """Replaces the mask (bool, True = allowed; ``None`` removes it)."""
        self._set_mask(mask)

    def _mask_for(self, batch: torch.Size, device: torch.device) -> torch.Tensor:
        """The mask on ``device``, broadcast to ``[*batch, n]``.

        The mask is moved rather than the data: the environment may hand its mask over on one
        device while the values to check come from another.
        """
        # Only called with a mask set (every caller checks ``self.mask is None`` first).
        assert self.mask is not None
        target = torch.Size(batch) + (self.n,)
        try:
            fits = torch.broadcast_shapes(self.mask.shape, target) == target
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(
                f"mask of shape {tuple(self.mask.shape)} does not broadcast to the batch shape "
                f"{tuple(batch)} followed by n={self.n}"
            )
        return self.mask.to(device).expand(target)

    def _rand_index(self, batch: torch.Size) -> torch.Tensor:
        if self.mask is None:
            return torch.randint(self.n, batch, device=self.device)
        device = self.device if self.device is not None else self.mask.device
        probs = self._mask_for(batch, device).to(torch.float32).reshape(-1, self.n)
        return torch.multinomial(probs, 1).reshape(batch)

    def _index_allowed(self, index: torch.Tensor) -> bool:
        if self.mask is None:
            return True
        try:
            allowed = self._mask_for(index.shape, index.device)
        except ValueError:
            return False
        return bool(allowed.gather(-1, index.unsqueeze(-1)).all())


def _masked_argmax(scores: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Index of the largest score (the first one on ties), among allowed entries only.

    NaN never wins; a row whose allowed scores are all ``-inf`` or NaN falls back to its first
    allowed entry, so the result is always an allowed index.
    """
    if not scores.is_floating_point():
        scores = scores.to(torch.float32)
    scores = scores.masked_fill(scores.isnan(), float("-inf"))
    if allowed is None:
        return scores.argmax(-1)
    best = torch.where(allowed, scores, float("-inf")).argmax(-1)
    first_allowed = allowed.to(torch.uint8).argmax(-1)
    return torch.where(allowed.gather(-1, best.unsqueeze(-1)).squeeze(-1), best, first_allowed)


class OneHot(_DiscreteMaskMixin, TensorSpec):
    """One-hot encoded discrete actions: ``n`` entries, exactly one of which is 1.

    Args:
        n: number of actions.
        device: device of the drawn tensors.
        dtype: dtype of members (int64 by default).
        mask: optional bool mask of allowed actions, shape ``[..., n]``.

    Examples:
        >>> import torch
        >>> from rlkit.data import OneHot
        >>> spec = OneHot(3)
        >>> spec.project(torch.tensor([0.2, 0.9, 0.9]))
        tensor([0, 1, 0])
    """

    def __init__(
        self,
        n: int,
        device: DeviceLike | None = None,
        dtype: torch.dtype = torch.int64,
        mask: torch.Tensor | None = None,
    ) -> None:
        n = _count("OneHot", n)
        super().__init__((n,), dtype, device)
        self.n = n
        self._set_mask(mask)

    def rand(self, shape: ShapeLike = ()) -> torch.Tensor:
        index = self._rand_index(_size(shape))
        return self.from_index(index)

    def from_index(self, index: torch.Tensor) -> torch.Tensor:
        """One-hot encodes integer indices."""
        return torch.nn.functional.one_hot(index.long(), self.n).to(self.dtype)

    def to_index(self, x: torch.Tensor) -> torch.Tensor:
        """The index of the 1 in each one-hot row."""
        # argmax has no bool kernel; bool one-hots come from masks and comparisons.
        return (x.to(torch.uint8) if x.dtype == torch.bool else x).argmax(-1)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        binary = ((x == 0) | (x == 1)).all()
        single = (x.sum(-1) == 1).all()
        return bool(binary and single) and self._index_allowed(self.to_index(x))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The one-hot of the largest entry (the first on ties; masked entries and NaN never win)."""
        if x.dim() == 0 or x.shape[-1] != self.n:
            raise ValueError(f"OneHot.project needs a last dim of size n={self.n}, got shape {tuple(x.shape)}")
        allowed = None if self.mask is None else self._mask_for(x.shape[:-1], x.device)
        return self.from_index(_masked_argmax(x, allowed))


class Categorical(_DiscreteMaskMixin, TensorSpec):
    """Discrete actions as integer indices in ``[0, n)``.

    Args:
        n: number of actions.
        shape: shape of one member (``()`` by default).
        device: device of the drawn tensors.
        dtype: integer dtype (int64 by default).
        mask: optional bool mask of allowed actions, shape ``[..., n]``.

    Examples:
        >>> import torch
        >>> from rlkit.data import Categorical
        >>> Categorical(4, mask=torch.tensor([False, True, False, True])).project(torch.tensor(2))
        tensor(1)
    """

    def __init__(
        self,
        n: int,
        shape: ShapeLike = (),
        device: DeviceLike | None = None,
        dtype: torch.dtype = torch.int64,
        mask: torch.Tensor | None = None,
    ) -> None:
        n = _count("Categorical", n)
        _index_dtype("Categorical", dtype, n)
        super().__init__(shape, dtype, device)
        self.n = n
        self._set_mask(mask)

    def rand(self, shape: ShapeLike = ()) -> torch.Tensor:
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
        """The nearest allowed index: round half to even, clamp to ``[0, n)``, NaN -> 0.

        With a mask, the nearest allowed index to the clamped one (the lower one on ties).
        """
        if x.is_floating_point():
            # Clamp before the integer cast: casting inf or NaN to int64 is undefined.
            x = torch.nan_to_num(x, nan=0.0).round().clamp(0, self.n - 1)
        index = x.long().clamp(0, self.n - 1)
        if self.mask is not None:
            arange = torch.arange(self.n, device=index.device)
            dist = (arange - index.unsqueeze(-1)).abs()
            # n exceeds every distance; argmin returns the first minimum, i.e. the lower index.
            dist = dist.masked_fill(~self._mask_for(index.shape, index.device), self.n)
            index = dist.argmin(-1)
        return index.to(self.dtype)


class MultiOneHot(TensorSpec):
    """Several one-hot groups concatenated along the last dim (``sum(nvec)`` entries).

    Args:
        nvec: the number of actions of each group.

    Examples:
        >>> import torch
        >>> from rlkit.data import MultiOneHot
        >>> spec = MultiOneHot([2, 3])
        >>> spec.project(torch.tensor([0.1, 0.5, 3.0, 0.0, 1.0]))
        tensor([0, 1, 1, 0, 0])
    """

    def __init__(
        self, nvec: Sequence[int], device: DeviceLike | None = None, dtype: torch.dtype = torch.int64
    ) -> None:
        nvec = [int(n) for n in (nvec.tolist() if isinstance(nvec, torch.Tensor) else nvec)]
        if not nvec or min(nvec) < 1:
            raise ValueError(f"MultiOneHot needs a non-empty nvec of positive sizes, got {nvec}")
        super().__init__((sum(nvec),), dtype, device)
        self.nvec = nvec

    def _groups(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return x.split(self.nvec, dim=-1)

    def rand(self, shape: ShapeLike = ()) -> torch.Tensor:
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
        """Per group, the one-hot of the largest entry (the first on ties; NaN never wins)."""
        if x.dim() == 0 or x.shape[-1] != sum(self.nvec):
            raise ValueError(
                f"MultiOneHot.project needs a last dim of size sum(nvec)={sum(self.nvec)}, "
                f"got shape {tuple(x.shape)}"
            )
        parts = [
            torch.nn.functional.one_hot(_masked_argmax(g, None), n).to(self.dtype)
            for g, n in zip(self._groups(x), self.nvec)
        ]
        return torch.cat(parts, -1)


class Binary(TensorSpec):
    """``n`` independent on/off switches (0 or 1).

    Examples:
        >>> import torch
        >>> from rlkit.data import Binary
        >>> Binary(3).project(torch.tensor([0.7, -1.0, 0.5]))
        tensor([1, 0, 0])
    """

    def __init__(self, n: int, device: DeviceLike | None = None, dtype: torch.dtype = torch.int64) -> None:
        if int(n) < 1:
            raise ValueError(f"Binary needs n >= 1, got {n}")
        super().__init__((int(n),), dtype, device)
        self.n = int(n)

    def rand(self, shape: ShapeLike = ()) -> torch.Tensor:
        return torch.randint(0, 2, self._full_shape(shape), device=self.device).to(self.dtype)

    def is_in(self, x: torch.Tensor) -> bool:
        if not isinstance(x, torch.Tensor) or not self._has_shape(x):
            return False
        return bool(((x == 0) | (x == 1)).all())

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return (x > 0.5).to(self.dtype)


#: Name used by the seed documents.
OneHotDiscreteTensorSpec = OneHot

__all__ = [
    "TensorSpec",
    "OneHot",
    "OneHotDiscreteTensorSpec",
    "Categorical",
    "MultiOneHot",
    "Binary",
]
