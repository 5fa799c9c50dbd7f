"""A dictionary of specs (:class:`Composite`) whose members are TensorDicts."""
from __future__ import annotations

from typing import Any, ItemsView, Iterator, KeysView, ValuesView, cast

import torch
from tensordict import TensorDict

from rlkit.data.specs import DeviceLike, NestedKey, ShapeLike, TensorSpec


class Composite(TensorSpec):
    """A dictionary of specs; members are TensorDicts.

    Examples:
        >>> from rlkit.data import Composite, OneHot, Unbounded
        >>> spec = Composite(observation=Unbounded((4,)), action=OneHot(2))
        >>> td = spec.rand((5,))
        >>> td["action"].shape, spec.is_in(td)
        (torch.Size([5, 2]), True)
    """

    def __init__(
        self,
        specs: dict[NestedKey, TensorSpec] | None = None,
        shape: ShapeLike = (),
        device: DeviceLike | None = None,
        **kwargs: TensorSpec,
    ) -> None:
        super().__init__(shape, torch.float32, device)
        self._specs: dict[str, TensorSpec] = {}
        # NestedKey keys (Any: a dict's key type is invariant, and the kwargs' keys are str).
        entries: dict[Any, TensorSpec] = {**(specs or {}), **kwargs}
        for key, spec in entries.items():
            self[key] = spec

    def __getitem__(self, key: NestedKey) -> TensorSpec:
        if isinstance(key, tuple):
            spec: TensorSpec = self
            for depth, part in enumerate(key):
                if not isinstance(spec, Composite):
                    kind = type(spec).__name__
                    raise KeyError(f"no spec under {key!r}: {key[:depth]!r} holds a {kind}, not a Composite")
                spec = spec[part]
            return spec
        if key not in self._specs:
            raise KeyError(f"no spec under {key!r}; keys: {sorted(self._specs)}")
        return self._specs[key]

    def __setitem__(self, key: NestedKey, spec: TensorSpec) -> None:
        if not isinstance(spec, TensorSpec):
            raise TypeError(f"Composite entries must be TensorSpec, got {type(spec).__name__} for {key!r}")
        if isinstance(key, tuple):
            head, rest = key[0], key[1:]
            if not rest:
                self[head] = spec
                return
            inner = self._specs.setdefault(head, Composite())
            if not isinstance(inner, Composite):
                raise TypeError(f"cannot set {key!r}: {head!r} holds a {type(inner).__name__}, not a Composite")
            inner[rest] = spec
            return
        self._specs[key] = spec

    def __contains__(self, key: object) -> bool:
        try:
            # ``in`` hands over any object; __getitem__ answers KeyError for every hashable non-key.
            self[cast(NestedKey, key)]
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def keys(self) -> KeysView[str]:
        return self._specs.keys()

    def items(self) -> ItemsView[str, TensorSpec]:
        return self._specs.items()

    def values(self) -> ValuesView[TensorSpec]:
        return self._specs.values()

    def rand(self, shape: ShapeLike = ()) -> TensorDict:
        full = self._full_shape(shape)
        return TensorDict({k: s.rand(full) for k, s in self._specs.items()}, batch_size=full)

    def zero(self, shape: ShapeLike = ()) -> TensorDict:
        full = self._full_shape(shape)
        return TensorDict({k: s.zero(full) for k, s in self._specs.items()}, batch_size=full)

    def is_in(self, td: Any) -> bool:
        if not hasattr(td, "keys"):
            return False
        return all(key in td.keys() and spec.is_in(td[key]) for key, spec in self._specs.items())

    def project(self, td: Any) -> TensorDict:  # a TensorDict (Any, like is_in: members are not tensors)
        out = td.copy()
        for key, spec in self._specs.items():
            if key in td.keys():
                out[key] = spec.project(td[key])
        return out

    def to(self, device: DeviceLike) -> Composite:
        return Composite({k: s.to(device) for k, s in self._specs.items()}, shape=self.shape, device=device)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Composite) and self.shape == other.shape and self._specs == other._specs

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._specs.items())
        return f"Composite({inner}, shape={tuple(self.shape)})"


#: Name used by the seed documents.
