"""The replay of a multi-seed run (:mod:`rlkit.trainers.multiseed`): ``N`` seeds' buffers behind one
interface that writes every seed's batch and samples every seed's minibatch at once.

:class:`SeedStackedReplay` keeps uniform buffers in one storage with a seed dimension;
:class:`PerSeedReplay` drives the seeds' own buffers one by one (prioritized replay, frame storages,
``[B, T]`` slices). Both give seed ``k`` the samples its own :class:`~rlkit.data.ReplayBuffer` would,
drawn from that buffer's generator, and both save the list of the seeds' buffer states, so a
checkpoint reads the same whichever wrote it.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.utils import NestedKey

from rlkit import keys
from rlkit.data.replay_buffers import ReplayBuffer, _check_positive_int
from rlkit.data.storage import TensorDictStorage, put

__all__ = ["PerSeedReplay", "SeedReplay", "SeedStackedReplay", "seed_replay"]


def _flat(td: TensorDictBase) -> TensorDictBase:
    """A collector batch as a buffer takes it: ``[E, T]`` env-major to ``[E * T]``."""
    return td if td.batch_dims == 1 else td.reshape(-1)


def _rows(batches: TensorDictBase | Sequence[TensorDictBase]) -> list[TensorDictBase]:
    """The seeds' batches of a stacked ``[N, ...]`` batch (or of a list of them)."""
    return list(batches.unbind(0)) if isinstance(batches, TensorDictBase) else list(batches)


class SeedReplay(Protocol):
    """What the multi-seed trainer asks of its replay (``N`` seeds, lists indexed by seed)."""

    buffers: list[ReplayBuffer]

    def extend(self, batches: TensorDictBase | Sequence[TensorDictBase]) -> None: ...

    def sample(self, batch_size: int) -> TensorDictBase: ...

    def sample_slices(self, batch_size: int, slice_len: int) -> TensorDictBase: ...

    def update_priorities(self, sample: TensorDictBase, seeds: Sequence[int]) -> None: ...

    def state_dict(self) -> list[dict[str, Any]]: ...

    def state_mismatch(self, states: Sequence[dict[str, Any]]) -> str | None: ...

    def load_state_dict(self, states: Sequence[dict[str, Any]]) -> None: ...


class PerSeedReplay:
    """The seeds' own buffers, each written and sampled in turn; samples stacked ``[N, ...]``."""

    def __init__(self, buffers: Sequence[ReplayBuffer]) -> None:
        self.buffers = list(buffers)

    def extend(self, batches: TensorDictBase | Sequence[TensorDictBase]) -> None:
        """Seed ``k``'s collector batch (row ``k`` of a stacked batch) into its buffer."""
        for buffer, batch in zip(self.buffers, _rows(batches), strict=True):
            buffer.extend(_flat(batch))

    def sample(self, batch_size: int) -> TensorDictBase:
        return torch.stack([b.sample(batch_size) for b in self.buffers])  # type: ignore[return-value]

    def sample_slices(self, batch_size: int, slice_len: int) -> TensorDictBase:
        return torch.stack([b.sample_slices(batch_size, slice_len) for b in self.buffers])  # type: ignore[return-value]

    def update_priorities(self, sample: TensorDictBase, seeds: Sequence[int]) -> None:
        """Seed ``k``'s priorities from row ``k`` of ``sample`` for each of ``seeds`` (prioritized
        buffers; a no-op for uniform ones)."""
        for k in seeds:
            buffer = self.buffers[k]
            if hasattr(buffer, "update_tensordict_priority"):
                buffer.update_tensordict_priority(sample[k])

    def state_dict(self) -> list[dict[str, Any]]:
        return [b.state_dict() for b in self.buffers]

    def state_mismatch(self, states: Sequence[dict[str, Any]]) -> str | None:
        if len(states) != len(self.buffers):
            return f"it holds {len(states)} replay buffers, this run has {len(self.buffers)} seeds"
        for buffer, state in zip(self.buffers, states):
            mismatch = buffer.state_mismatch(state)
            if mismatch:
                return mismatch
        return None

    def load_state_dict(self, states: Sequence[dict[str, Any]]) -> None:
        for buffer, state in zip(self.buffers, states, strict=True):
            buffer.load_state_dict(state)


class SeedStackedReplay:
    """``N`` seeds' uniform replay buffers in one storage of ``N * capacity`` items.

    The seeds train in lockstep, so they write equally many items at every step: seed ``k``'s
    ``m``-th slot (the one its own buffer would write) is slot ``m * N + k`` of the shared
    :class:`~rlkit.data.storage.TensorDictStorage`. A lockstep write is one contiguous write of all
    seeds' items, a sample of every seed one gather. Seed ``k`` draws its slots from its own buffer's
    generator with the same call as :meth:`ReplayBuffer.sample <rlkit.data.ReplayBuffer.sample>`,
    so row ``k`` of a sample is, bit for bit, what that buffer alone would return (``"index"`` holds
    the per-seed slots). The seeds' buffers (``buffers``, never written themselves) lend their
    generators and check saved states; :meth:`state_dict` is the list of their states.

    Args:
        buffers: the seeds' empty uniform buffers (exactly :class:`~rlkit.data.ReplayBuffer` over a
            plain :class:`~rlkit.data.storage.TensorDictStorage` with a known layout, all alike; see
            :meth:`stackable`).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data import ReplayBuffer
        >>> from rlkit.data.seed_replay import SeedStackedReplay
        >>> layout = {"x": ([2], torch.float32)}
        >>> alone = [ReplayBuffer(8, layout=layout, generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
        >>> replay = SeedStackedReplay([ReplayBuffer(8, layout=layout, generator=torch.Generator().manual_seed(s))
        ...                             for s in (0, 1)])
        >>> batches = [TensorDict({"x": torch.randn(5, 2)}, batch_size=[5]) for _ in range(2)]
        >>> replay.extend(batches); [b.extend(batch) for b, batch in zip(alone, batches)] and None
        >>> sample = replay.sample(3)
        >>> sample.shape, torch.equal(sample[1]["x"], alone[1].sample(3)["x"])
        (torch.Size([2, 3]), True)
    """

    def __init__(self, buffers: Sequence[ReplayBuffer]) -> None:
        why = self.unstackable(buffers)
        if why:
            raise ValueError(f"SeedStackedReplay: {why}")
        self.buffers = list(buffers)
        first = self.buffers[0].storage
        self.num_seeds = n = len(self.buffers)
        self.capacity = first.capacity  # per seed
        self._storage = first.like(first.capacity * n)
        layout = first.layout
        assert layout is not None  # (unstackable checked it)
        self._keys: list[NestedKey] = list(layout)
        self._generators = [b.generator for b in self.buffers]
        self._seed_offsets: torch.Tensor | None = None

    @staticmethod
    def unstackable(buffers: Sequence[ReplayBuffer]) -> str | None:
        """Why ``buffers`` cannot share one storage (``None``: they can)."""
        if not buffers:
            return "no buffers"
        for k, buffer in enumerate(buffers):
            if type(buffer) is not ReplayBuffer or type(buffer.storage) is not TensorDictStorage:
                return (f"seed {k}'s buffer is a {type(buffer).__name__} over a {type(buffer.storage).__name__}; "
                        "only uniform ReplayBuffers over a plain TensorDictStorage share one storage")
            if buffer.storage.layout is None:
                return f"seed {k}'s buffer has no layout given in advance"
            if len(buffer):
                return f"seed {k}'s buffer holds data already"
            if buffer.generator.device != buffers[0].generator.device:
                return (f"seed {k}'s buffer samples with a generator on {buffer.generator.device}, seed 0's on "
                        f"{buffers[0].generator.device}")
        first = buffers[0].storage
        for k, buffer in enumerate(buffers[1:], 1):
            storage = buffer.storage
            if (storage.capacity, storage.layout, storage.device) != (first.capacity, first.layout, first.device):
                return f"seed {k}'s buffer differs from seed 0's in capacity, layout or device"
        return None

    def __len__(self) -> int:
        """Items per seed."""
        return len(self._storage) // self.num_seeds

    def extend(self, batches: TensorDictBase | Sequence[TensorDictBase]) -> None:
        """Writes seed ``k``'s collector batch (row ``k`` of a stacked ``[N, ...]`` batch, or
        ``batches[k]``; ``[M]`` or env-major ``[E, T]``, as many items for every seed) where its own
        buffer would write it."""
        n = self.num_seeds
        if not isinstance(batches, TensorDictBase):  # (a list of the seeds' batches: stacked first)
            if len(batches) != n:
                raise ValueError(f"{len(batches)} batches for {n} seeds")
            batches = torch.stack([_flat(batch) for batch in batches])  # type: ignore[assignment]
        assert isinstance(batches, TensorDictBase)
        if batches.batch_size[0] != n:
            raise ValueError(f"{batches.batch_size[0]} batches for {n} seeds")
        leaves = {}
        for key in self._keys:
            value = batches.get(key)
            stacked = value.reshape(n, -1, *value.shape[batches.batch_dims:]).transpose(0, 1)
            # [M, N, *item] flattened: seed k's item m lands at m * N + k.
            leaves[key] = stacked.reshape(-1, *stacked.shape[2:])
        self._storage.extend_leaves(leaves)

    def _offsets(self, device: torch.device) -> torch.Tensor:
        if self._seed_offsets is None or self._seed_offsets.device != device:
            self._seed_offsets = torch.arange(self.num_seeds, device=device).unsqueeze(1)
        return self._seed_offsets

    def sample(self, batch_size: int) -> TensorDictBase:
        """``[N, batch_size]`` transitions, row ``k`` drawn uniformly from seed ``k``'s items with
        its generator; ``"index"`` holds the per-seed slots."""
        _check_positive_int("batch_size", batch_size)
        if len(self) == 0:
            raise RuntimeError("cannot sample from an empty SeedStackedReplay; extend() it first")
        high = len(self)
        draws = [torch.randint(0, high, (batch_size,), generator=g, device=g.device) for g in self._generators]
        slots = torch.stack(draws)
        device = self._storage.device
        if device is not None and slots.device != device:
            slots = slots.to(device)
        return self._storage.gather(slots * self.num_seeds + self._offsets(slots.device), {keys.INDEX: slots})

    def sample_slices(self, batch_size: int, slice_len: int) -> TensorDictBase:
        raise ValueError("SeedStackedReplay samples transitions, not slices: build the replay with "
                         "seed_replay(buffers, slices=True)")

    def update_priorities(self, sample: TensorDictBase, seeds: Sequence[int]) -> None:
        """Uniform buffers keep no priorities: nothing to do."""

    # -- state: the seeds' own buffer states ------------------------------------------------------
    def state_dict(self) -> list[dict[str, Any]]:
        """Seed ``k``'s entry is the :meth:`ReplayBuffer.state_dict <rlkit.data.ReplayBuffer.state_dict>`
        its own buffer would give: its filled rows while the buffers are not full, else all its
        ``capacity`` rows. Its items are strided views of the shared storage's state (its filled rows,
        copied out to the host once for all seeds, or the storage itself once full), as a buffer's
        state shares its stored tensors: ``torch.save`` writes those rows once for all seeds (no other
        copy is made, on the device or on the host), and ``torch.load`` gives them back as views of
        one storage again."""
        n = self.num_seeds
        shared = self._storage.state_dict()
        saved = TensorDict(shared["data"], batch_size=[]) if shared["data"] else None
        states = []
        for k, generator in enumerate(self._generators):
            data: dict = {}
            if saved is not None:
                for key in self._keys:
                    value = saved.get(key)  # [rows * N, *item]: seed k's row m at m * N + k
                    put(data, key, value.view(value.shape[0] // n, n, *value.shape[1:])[:, k])
            storage = {"capacity": self.capacity, "cursor": shared["cursor"] // n, "size": shared["size"] // n,
                       "data": data}
            states.append({"storage": storage, "generator": generator.get_state()})
        return states

    def state_mismatch(self, states: Sequence[dict[str, Any]]) -> str | None:
        mismatch = PerSeedReplay(self.buffers).state_mismatch(states)
        if mismatch:
            return mismatch
        positions = {(int(s["storage"]["cursor"]), int(s["storage"]["size"]), bool(s["storage"]["data"])) for s in states}
        if len(positions) > 1:
            return f"the seeds' replay buffers are at different positions {sorted(positions)}; a lockstep run writes them alike"
        return None

    def load_state_dict(self, states: Sequence[dict[str, Any]]) -> None:
        """Restores :meth:`state_dict` (or a :class:`PerSeedReplay`'s; either form of rows) into the
        shared storage."""
        mismatch = self.state_mismatch(states)
        if mismatch:
            raise ValueError(mismatch)
        n, first = self.num_seeds, states[0]["storage"]
        data: dict = {}
        if first["data"]:
            # Each seed's entries hold its filled rows or (as saved before, or once full) all its rows.
            per_seed = [TensorDict(s["storage"]["data"], batch_size=[]) for s in states]
            for key in self._keys:
                values = [td.get(key) for td in per_seed]
                device = self._storage.load_device(values[0].device)
                stacked = torch.zeros((self.capacity, n, *values[0].shape[1:]), dtype=values[0].dtype, device=device)
                for k, value in enumerate(values):
                    stacked[: value.shape[0], k] = value
                put(data, key, stacked.view(-1, *stacked.shape[2:]))
        # (the stacked tensors are this storage's own, of its whole capacity: taken, not copied again)
        self._storage.load_state_dict({"capacity": self.capacity * n, "cursor": int(first["cursor"]) * n,
                                       "size": int(first["size"]) * n, "data": data}, copy=False)
        for generator, state in zip(self._generators, states):
            generator.set_state(state["generator"].clone())


def seed_replay(buffers: Sequence[ReplayBuffer], *, slices: bool = False) -> SeedReplay:
    """The multi-seed replay over the seeds' ``buffers``: one shared storage where they allow it
    (:meth:`SeedStackedReplay.unstackable`) and transitions are sampled, else the buffers in turn."""
    if not slices and SeedStackedReplay.unstackable(buffers) is None:
        return SeedStackedReplay(buffers)
    return PerSeedReplay(buffers)
