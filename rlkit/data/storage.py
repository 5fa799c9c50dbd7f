"""Preallocated circular TensorDict storage used by the replay buffers."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.utils import NestedKey, unravel_key

from rlkit.utils.tensordicts import assembled
from rlkit.utils.values import as_int

__all__ = ["TensorDictStorage"]


def put(tree: dict, key: NestedKey, value: Any) -> None:
    """``tree[key] = value`` for a nested key (one sub-dict per level)."""
    if isinstance(key, tuple):
        for part in key[:-1]:
            tree = tree.setdefault(part, {})
        tree[key[-1]] = value
    else:
        tree[key] = value


def _leaves(td: TensorDictBase, what: str) -> dict[NestedKey, torch.Tensor]:
    """All tensor leaves of ``td`` by nested key; anything else (non-tensor data) is rejected."""
    leaves: dict[NestedKey, torch.Tensor] = {}
    for key, value in td.items(include_nested=True):
        if isinstance(value, torch.Tensor):
            leaves[key] = value
        elif not isinstance(value, TensorDictBase):
            raise TypeError(
                f"{what}: entry {key!r} is a {type(value).__name__}; only tensor entries can be stored"
            )
    if not leaves:
        raise ValueError(f"{what}: the TensorDict has no tensor entries")
    return leaves


def _kept(leaves: dict[NestedKey, torch.Tensor], keys: list[NestedKey] | None, what: str) -> dict:
    """The leaves named by ``keys`` (all of them when ``keys`` is None); a missing one is an error."""
    if keys is None:
        return leaves
    missing = [k for k in keys if k not in leaves]
    if missing:
        raise KeyError(f"{what}: the storage keeps {keys}, but {missing} are missing; present: {list(leaves)}")
    return {k: leaves[k] for k in keys}


class TensorDictStorage:
    """A fixed-capacity ring of transitions held in one preallocated TensorDict of shape ``[capacity]``.

    The layout (keys, per-item shapes, dtypes) is taken from the first :meth:`extend`; later writes must
    match it exactly. Writes go to ``cursor, cursor + 1, ...`` modulo ``capacity`` with one indexed
    assignment per call, overwriting the oldest items once full.

    Args:
        capacity: maximum number of stored items.
        device: device of the storage; ``None`` keeps each entry on the device of the first batch.
        keys: the entries to store (nested keys as tuples); other entries of written TensorDicts are
            dropped. ``None`` stores every entry (or those of ``layout``).
        layout: the per-item shape and dtype of every stored entry, when known in advance (from the
            env's specs): written and loaded data must have it, and :attr:`item_nbytes` tells the
            memory the storage will take before it is allocated.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data.storage import TensorDictStorage
        >>> storage = TensorDictStorage(3)
        >>> storage.extend(TensorDict({"x": torch.arange(4)}, batch_size=[4])).tolist()
        [1, 2, 0]
        >>> storage.data["x"].tolist(), len(storage), storage.cursor
        ([3, 1, 2], 3, 1)
    """

    def __init__(self, capacity: int, *, device: torch.device | str | None = None,
                 keys: Sequence[NestedKey] | None = None,
                 layout: Mapping[NestedKey, tuple[Sequence[int], torch.dtype]] | None = None) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self._layout = None if layout is None else {
            unravel_key(k): (torch.Size(shape), dtype) for k, (shape, dtype) in layout.items()
        }
        if self._layout is not None:
            if keys is None:
                keys = list(self._layout)
            elif {unravel_key(k) for k in keys} != set(self._layout):
                raise ValueError(f"layout keys {list(self._layout)} differ from keys {list(keys)}")
        if keys is not None:
            keys = [unravel_key(k) for k in keys]
            if not keys or len(set(keys)) != len(keys):
                raise ValueError(f"keys must be a non-empty list of distinct entry names, got {keys!r}")
        self.keys = keys
        self.capacity = capacity
        self._device = torch.device(device) if device is not None else None
        self._data: TensorDictBase | None = None
        # The stored leaves by nested key, and their device: read on every write and sample, so kept
        # next to the TensorDict rather than looked up in it each time (refreshed when _data changes).
        self._leaves: dict[NestedKey, torch.Tensor] = {}
        self._leaf_device: torch.device | None = None
        self._cursor = 0
        self._size = 0
        self._version = 0

    def like(self, capacity: int) -> TensorDictStorage:
        """An empty plain storage of ``capacity`` items with this one's device, kept keys and layout
        (what a subclass keeps besides, such as :class:`~rlkit.data.frames.FrameStorage`'s frames,
        is not part of it)."""
        layout = None if self._layout is None else dict(self._layout)
        return TensorDictStorage(capacity, device=self._device, keys=None if layout else self.keys, layout=layout)

    @property
    def layout(self) -> dict[NestedKey, tuple[torch.Size, torch.dtype]] | None:
        """The per-item shape and dtype of every stored entry given at construction (``None``: set by
        the first write)."""
        return None if self._layout is None else dict(self._layout)

    @property
    def data(self) -> TensorDictBase:
        """The whole ``[capacity]`` TensorDict (slots ``>= len(self)`` hold garbage until written).

        Read it, or write into its tensors in place; replacing an entry (``data[key] = tensor``) is
        not seen by the storage, which keeps its own references to the stored tensors."""
        if self._data is None:
            raise RuntimeError("the storage is empty: its layout is set by the first extend()")
        return self._data

    @property
    def item_nbytes(self) -> int | None:
        """Bytes one stored item takes (``None`` when the layout is only known at the first write)."""
        if self._layout is None:
            return None
        return sum(shape.numel() * dtype.itemsize for shape, dtype in self._layout.values())

    @property
    def cursor(self) -> int:
        """Slot that the next write goes to."""
        return self._cursor

    @property
    def device(self) -> torch.device | None:
        """Device of the stored data (``None`` before the first write unless given)."""
        if self._data is None:
            return self._device
        return self._leaf_device

    def __len__(self) -> int:
        return self._size

    def __contains__(self, key: NestedKey) -> bool:
        return self._data is not None and key in self._data.keys(include_nested=True)

    @property
    def oldest(self) -> int:
        """Slot of the oldest stored item; items run from there to ``cursor - 1`` modulo capacity."""
        return (self._cursor - self._size) % self.capacity

    @property
    def version(self) -> int:
        """Counter bumped by every write or load, so readers can cache what they derive from the data."""
        return self._version

    def oldest_first(self, key: NestedKey) -> torch.Tensor:
        """Entry ``key`` of the stored items, oldest first (``[len(self), *item_shape]``)."""
        value = self.data.get(key)
        # A roll is a contiguous copy, much cheaper than gathering with a modulo index on large buffers.
        return (value if self.oldest == 0 else value.roll(-self.oldest, dims=0))[: self._size]

    def _allocate(self, leaves: dict[NestedKey, torch.Tensor]) -> None:
        if self._layout is not None:
            for key, value in leaves.items():
                shape, dtype = self._layout[key]
                if value.shape[1:] != shape or value.dtype != dtype:
                    raise ValueError(
                        f"entry {key!r} arrives with per-item shape {list(value.shape[1:])} and dtype "
                        f"{value.dtype}; the storage was laid out for {list(shape)} and {dtype}"
                    )
        data = TensorDict({}, batch_size=[self.capacity], device=self._device)
        for key, value in leaves.items():
            device = self._device if self._device is not None else value.device
            data.set(key, torch.zeros((self.capacity, *value.shape[1:]), dtype=value.dtype, device=device))
        self._set_data(data)

    def _set_data(self, data: TensorDictBase | None) -> None:
        self._data = data
        self._leaves = {} if data is None else _leaves(data, "storage")
        self._leaf_device = None if data is None else next(iter(self._leaves.values())).device

    def _check_layout(self, leaves: dict[NestedKey, torch.Tensor]) -> None:
        stored = self._leaves
        if leaves.keys() == stored.keys() and all(
            value.shape[1:] == stored[key].shape[1:] and value.dtype == stored[key].dtype
            for key, value in leaves.items()
        ):
            return
        missing = [k for k in stored if k not in leaves]
        unexpected = [k for k in leaves if k not in stored]
        if missing or unexpected:
            raise KeyError(
                f"the TensorDict's keys differ from the storage's: missing {missing}, unexpected "
                f"{unexpected}; stored keys are {list(stored)}"
            )
        for key, value in leaves.items():
            ref = stored[key]
            if value.shape[1:] != ref.shape[1:]:
                raise ValueError(
                    f"entry {key!r} has per-item shape {list(value.shape[1:])}, the storage holds "
                    f"{list(ref.shape[1:])}"
                )
            if value.dtype != ref.dtype:
                raise TypeError(f"entry {key!r} has dtype {value.dtype}, the storage holds {ref.dtype}")

    def _read_kept(self, td: TensorDictBase) -> dict[NestedKey, torch.Tensor]:
        """The entries named by :attr:`keys`, read one by one (cheaper than walking every leaf of a
        batch that holds more); a missing or non-tensor one gets the error of the full walk."""
        assert self.keys is not None  # only called when the storage keeps named entries (extend)
        leaves = {}
        for key in self.keys:
            value = td.get(key, None)
            if not isinstance(value, torch.Tensor):
                return _kept(_leaves(td, "extend"), self.keys, "extend")  # raises, naming the entry
            leaves[key] = value
        return leaves

    def extend(self, td: TensorDictBase) -> torch.Tensor:
        """Write the ``N`` items of a flat ``[N]`` TensorDict; returns the slots written (int64 ``[M]``).

        With ``N > capacity`` only the last ``capacity`` items are kept (``M = capacity``), exactly as if
        they had been written one by one.
        """
        if not isinstance(td, TensorDictBase):
            raise TypeError(f"expected a TensorDict, got {type(td).__name__}")
        if td.batch_dims != 1:
            raise ValueError(
                f"expected a flat TensorDict with batch_size [N], got batch_size {list(td.batch_size)}; "
                "flatten the batch dims first (e.g. td.reshape(-1))"
            )
        leaves = _leaves(td, "extend") if self.keys is None else self._read_kept(td)
        return self._write(leaves, td.batch_size[0])

    def extend_leaves(self, leaves: dict[NestedKey, torch.Tensor]) -> torch.Tensor:
        """:meth:`extend` with the batch given as its entries: ``{nested key: [N, *item]}``, exactly
        the stored keys (every entry of the layout), no TensorDict built or read.

        Examples:
            >>> import torch
            >>> from rlkit.data.storage import TensorDictStorage
            >>> storage = TensorDictStorage(4, layout={("next", "r"): ([], torch.float32)})
            >>> storage.extend_leaves({("next", "r"): torch.ones(3)}).tolist(), len(storage)
            ([0, 1, 2], 3)
        """
        lengths = {key: value.shape[0] if value.dim() else None for key, value in leaves.items()}
        if len(set(lengths.values())) != 1 or None in lengths.values():
            raise ValueError(f"extend_leaves: every entry must hold the same number of items on its first dim, "
                             f"got {lengths}")
        return self._write(leaves, next(iter(leaves.values())).shape[0])

    def _write(self, leaves: dict[NestedKey, torch.Tensor], n: int) -> torch.Tensor:
        """Writes the ``n`` items of ``leaves`` (each ``[n, *item]``); returns the slots."""
        if self._data is None:
            expected = self.keys if self._layout is None else list(self._layout)
            if expected is not None and set(leaves) != set(expected):
                raise KeyError(f"extend: the storage keeps {expected}, the batch brings {list(leaves)}")
            self._allocate(leaves)
        else:
            self._check_layout(leaves)
        kept = min(n, self.capacity)
        device = self._leaf_device
        start = (self._cursor + n - kept) % self.capacity
        if start + kept <= self.capacity:
            # Without wrap-around the slots are one contiguous slice: a plain copy, no scatter.
            slots = torch.arange(start, start + kept, device=device)
            where: slice | torch.Tensor = slice(start, start + kept)
        else:
            slots = where = (torch.arange(n - kept, n, device=device) + self._cursor) % self.capacity
        if kept:
            for key, value in leaves.items():
                # One assignment per entry; slots are distinct because kept <= capacity.
                stored = self._leaves[key]
                value = value if kept == n else value[n - kept:]
                stored[where] = value if value.device == stored.device else value.to(stored.device)
        self._cursor = (self._cursor + n) % self.capacity
        self._size = min(self._size + n, self.capacity)
        self._version += 1
        return slots

    def __getitem__(self, index: torch.Tensor) -> TensorDictBase:
        """Gather a copy of the items at ``index`` (slots in ``[0, capacity)``, any shape); the result
        has the index's shape."""
        return self.gather(index)

    def gather(self, index: torch.Tensor, extra: dict[str, torch.Tensor] | None = None) -> TensorDictBase:
        """``self[index]``, with the top-level entries ``extra`` (of the index's shape) added to the
        result as it is built (one TensorDict construction instead of a construction and a set)."""
        data = self.data
        out = self._gathered(index)
        if extra:
            out.update(extra)
        # Gathered from the storage's own tensors: shapes and device fit by construction.
        return assembled(out, index.shape, data.device)

    def _gathered(self, index: torch.Tensor) -> dict:
        """The stored entries at ``index`` as a nested dict of tensors (what :meth:`gather` assembles)."""
        # index_select: the same copy as value[index] for an int64 index of slots on the data's
        # device, without the indexing parser (which also accepts a CPU index for CUDA data)
        device = self._leaf_device
        host = index.device.type == "cpu" and not (index.is_floating_point() or index.is_complex()
                                                   or index.dtype == torch.bool)
        if host and self._device is not None and device is not None and device != index.device:
            # A host index of slots for entries all on an accelerator (the storage's device) goes
            # there once, not once per entry.
            index = index.to(device)
        fast = index.dim() > 0 and index.dtype == torch.int64 and index.device == device
        flat = index.reshape(-1) if fast else index
        out: dict = {}
        for key, value in self._leaves.items():
            if fast:
                put(out, key, torch.index_select(value, 0, flat).view(*index.shape, *value.shape[1:]))
            else:
                put(out, key, value[index])
        return out

    def state_dict(self) -> dict[str, Any]:
        """Capacity, write cursor, size and the stored items, as plain tensors/ints/dicts.

        ``data`` holds the rows of the slots that hold items, nothing of the empty ones: stored items
        always occupy slots ``[0, len(self))`` (writes start at slot 0 and reach slot 0 again only once
        the storage is full, and a loaded storage is where the saved one was), so a storage that is not
        full saves its first ``len(self)`` rows, copied out to the host (``torch.save`` writes a view's
        whole underlying storage; a copy on a CUDA storage's device would double its GPU memory just
        before ``torch.save`` moves it to the host), and a full one its ``capacity`` rows, shared with
        the storage (like ``nn.Module.state_dict``): save or clone the result before writing more data
        if it must stay a snapshot. :meth:`load_state_dict` also takes the ``capacity`` rows of a
        storage that is not full (what checkpoints saved before).
        """
        if self._data is None:
            contents: dict = {}
        elif self._size == self.capacity:
            contents = self._data.to_dict()
        else:
            contents = {}
            for key, value in self._leaves.items():
                put(contents, key, value[: self._size].to("cpu", copy=True))
        return {"capacity": self.capacity, "cursor": self._cursor, "size": self._size, "data": contents}

    def load_device(self, saved: torch.device) -> torch.device:
        """The device :meth:`load_state_dict` puts a saved tensor lying on ``saved`` on: the storage's
        own (``device=``), else where it lies."""
        return self._device if self._device is not None else saved

    def _position_problem(self, cursor: Any, size: Any) -> str | None:
        """What is wrong with a saved write cursor and size (integers with ``0 <= cursor < capacity``,
        ``0 <= size <= capacity``; a full storage's cursor is where it wraps), or ``None``."""
        if as_int(cursor) is None or as_int(size) is None:
            return f"has cursor {cursor!r} and size {size!r}; both must be integers"
        cursor, size = int(cursor), int(size)
        if not (0 <= size <= self.capacity and 0 <= cursor < self.capacity):
            return (f"has cursor {cursor} and size {size}; need 0 <= cursor < {self.capacity} "
                    f"and 0 <= size <= {self.capacity}")
        if size < self.capacity and cursor != size:
            return (f"has cursor {cursor} and size {size}; a storage that is not full writes at its size "
                    f"(cursor == size)")
        return None

    def state_mismatch(self, state: dict[str, Any]) -> str | None:
        """Where ``state`` does not fit this storage (capacity, kept entries, per-item shapes and
        dtypes), or ``None``. Entries the storage does not keep may be present (they are dropped)."""
        for key in ("capacity", "cursor", "size", "data"):
            if key not in state:
                return f"storage state lacks {key!r}"
        if state["capacity"] != self.capacity:
            return f"storage capacity is {state['capacity']}, this run's is {self.capacity}"
        position = self._position_problem(state["cursor"], state["size"])
        if position is not None:
            return position
        size = int(state["size"])
        if not state["data"]:
            return None if size == 0 else f"storage state holds no data, but size {size}"
        try:
            saved = _leaves(TensorDict(state["data"], batch_size=[]), "storage state")
        except (RuntimeError, TypeError, ValueError) as err:
            return f"storage data is not a dict of tensors: {str(err).splitlines()[0]}"
        for entry, value in saved.items():
            rows = value.shape[0] if value.dim() else None
            if rows not in (size, self.capacity):
                found = "a 0-dim tensor" if rows is None else f"{rows} rows"
                allowed = (f"{size} (its filled rows) or {self.capacity} (all rows, as saved before)"
                           if size < self.capacity else f"{self.capacity}")
                return (f"stored entry {entry!r} holds {found}; a storage of capacity {self.capacity} holding "
                        f"{size} items saves {allowed}")
        expected = self._layout or {k: (v.shape[1:], v.dtype) for k, v in self._leaves.items()}
        keys = list(expected) or self.keys or []
        missing = [k for k in keys if k not in saved]
        if missing:
            return f"storage holds {list(saved)}, this run stores {keys} ({missing} missing)"
        for key, (shape, dtype) in expected.items():
            value = saved[key]
            if value.shape[1:] != shape or value.dtype != dtype:
                return (f"stored entry {key!r} has per-item shape {list(value.shape[1:])} and dtype {value.dtype}, "
                        f"this run stores {list(shape)} and {dtype}")
        return None

    def load_state_dict(self, state: dict[str, Any], *, copy: bool = True) -> None:
        """Restore contents and write position saved by :meth:`state_dict`, whose entries hold either
        the filled rows (``size`` of them) or all ``capacity`` rows (copies the tensors; with
        ``copy=False`` it takes those of ``capacity`` rows as they are where they already lie on the
        storage's device, for tensors made for it alone)."""
        for key in ("capacity", "cursor", "size", "data"):
            if key not in state:
                raise KeyError(f"storage state_dict lacks {key!r}; it has {sorted(state)}")
        if state["capacity"] != self.capacity:
            raise ValueError(
                f"state_dict capacity {state['capacity']} does not match this buffer's capacity "
                f"{self.capacity}"
            )
        position = self._position_problem(state["cursor"], state["size"])
        if position is not None:
            raise ValueError(f"state_dict {position}")
        mismatch = TensorDictStorage.state_mismatch(self, state)  # (its own part: the kept entries)
        if mismatch is not None:
            raise ValueError(f"state_dict does not fit this storage: {mismatch}")
        cursor, size = int(state["cursor"]), int(state["size"])
        if not state["data"]:
            self._set_data(None)
        else:
            saved = _leaves(TensorDict(state["data"], batch_size=[]), "load_state_dict")
            if self.keys is not None:  # a state saved with more entries: only the kept ones load
                saved = _kept(saved, self.keys, "load_state_dict")
            data = TensorDict({}, batch_size=[self.capacity], device=self._device)
            for entry, value in saved.items():
                device = self.load_device(value.device)
                if value.shape[0] == self.capacity:  # a full storage's rows, or all rows as saved before
                    # Copied so that the buffer never aliases the (possibly reused) state dict.
                    data.set(entry, value.to(device=device, copy=copy))
                else:  # the filled rows [0, size): the rest is allocated empty, as a first write does
                    rows = torch.zeros((self.capacity, *value.shape[1:]), dtype=value.dtype, device=device)
                    rows[: value.shape[0]] = value
                    data.set(entry, rows)
            self._set_data(data)
        self._cursor, self._size = cursor, size
        self._version += 1
