"""Replay buffers over preallocated TensorDict storage: uniform and prioritised sampling, time slices."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey

from rlkit import keys
from rlkit.data.slices import SliceStarts, slice_starts
from rlkit.data.storage import TensorDictStorage
from rlkit.data.sum_tree import MinTree, SumTree, tree_state_problem
from rlkit.utils.devices import reading_waits
from rlkit.utils.values import as_int, as_real

__all__ = ["PrioritizedReplayBuffer", "ReplayBuffer"]


def _check_positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class ReplayBuffer:
    """Circular replay buffer over one preallocated TensorDict, with uniform sampling.

    The storage layout (keys, per-item shapes and dtypes; nested keys such as ``("next", "reward")``
    allowed) is fixed by the first :meth:`extend`. Sampling draws from a ``torch.Generator`` owned by the
    buffer, so it is reproducible (``generator=`` or :meth:`seed`) and independent of the global RNG after
    construction; without ``generator=`` the buffer's generator is seeded once from the global RNG, so
    ``torch.manual_seed`` before construction makes a run reproducible. Sampled batches carry the storage
    slots under ``"index"`` (so this key cannot be stored).

    :meth:`sample_slices` returns ``[B, T]`` windows of consecutive transitions of one trajectory for
    n-step / TD(lambda) targets. It needs a per-transition integer ``"traj_id"`` (unique per episode,
    constant along it, continued across collector batches) and uses ``"step_count"`` (steps
    ``t, t + 1, ...``) and ``("next", "done")`` when they are stored. A slice is ``T`` items of one
    trajectory that follow each other in storage order (:mod:`rlkit.data.slices`: the env-major blocks
    of a collector with several envs interleave, and a slice runs on into its env's next block); slices
    never cross a trajectory change, a step-count gap or a done step (a slice may end on one), and never
    run from the newest item to the oldest. Starts are uniform over all valid starts; pieces shorter than
    ``T`` are never sampled (no padding).

    Args:
        capacity: maximum number of transitions; the oldest are overwritten when full.
        device: storage device; ``None`` keeps the device of the first batch.
        generator: random generator used for sampling (CPU unless you pass another one).
        keys: the entries to store (e.g. only those the loss reads); the other entries of extended
            batches are dropped, and so are those of a loaded state. ``None`` stores every entry.
        layout: per-item shape and dtype of each stored entry when known in advance (see
            :class:`~rlkit.data.storage.TensorDictStorage`); then :attr:`nbytes` is known before the
            first write.
        storage: a storage of ``capacity`` items to use instead of a new
            :class:`~rlkit.data.storage.TensorDictStorage` (e.g. a
            :class:`~rlkit.data.frames.FrameStorage`); ``keys``, ``layout`` and ``device`` are its own then.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data import ReplayBuffer
        >>> rb = ReplayBuffer(100, generator=torch.Generator().manual_seed(0))
        >>> rb.extend(TensorDict({"observation": torch.randn(10, 4)}, batch_size=[10])).shape
        torch.Size([10])
        >>> batch = rb.sample(32)
        >>> batch["observation"].shape, batch["index"].shape, len(rb)
        (torch.Size([32, 4]), torch.Size([32]), 10)
    """

    _reserved_keys: tuple[str, ...] = (keys.INDEX,)

    def __init__(
        self,
        capacity: int,
        *,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        keys: Sequence[NestedKey] | None = None,
        layout: Mapping[NestedKey, tuple[Sequence[int], torch.dtype]] | None = None,
        storage: TensorDictStorage | None = None,
    ) -> None:
        named = list(keys or []) + list(layout or []) + list((storage.keys or []) if storage is not None else [])
        reserved = [k for k in self._reserved_keys if k in named]
        if reserved:
            raise ValueError(f"keys {reserved} are reserved: the buffer writes them into sampled batches")
        if storage is not None and storage.capacity != capacity:
            raise ValueError(f"the storage holds {storage.capacity} items, the buffer's capacity is {capacity}")
        self._storage = storage if storage is not None else TensorDictStorage(
            capacity, device=device, keys=keys, layout=layout)
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(int(torch.randint(0, 2**62, ()).item()))
        self._generator = generator
        self._slice_cache: tuple[tuple, SliceStarts] | None = None

    @property
    def capacity(self) -> int:
        """Maximum number of stored transitions."""
        return self._storage.capacity

    @property
    def nbytes(self) -> int | None:
        """Memory the full buffer takes (``None`` until known, see ``layout``)."""
        item = self._storage.item_nbytes
        return None if item is None else item * self.capacity + self._index_nbytes()

    def _index_nbytes(self) -> int:
        return 0

    @property
    def storage(self) -> TensorDictStorage:
        """The underlying circular storage."""
        return self._storage

    @property
    def generator(self) -> torch.Generator:
        """The generator all sampling draws from."""
        return self._generator

    def seed(self, seed: int) -> None:
        """Reseed the buffer's sampling generator."""
        self._generator.manual_seed(seed)

    def __len__(self) -> int:
        return len(self._storage)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={len(self)}, capacity={self.capacity})"

    def extend(self, td: TensorDictBase) -> torch.Tensor:
        """Append the items of a flat ``[N]`` TensorDict; returns the storage slots written.

        With ``N > capacity`` only the last ``capacity`` items are kept.
        """
        # A keyed buffer stores only its keys, which exclude the reserved ones: nothing to refuse.
        if self._storage.keys is None and isinstance(td, TensorDictBase):
            for key in self._reserved_keys:
                if key in td.keys():
                    raise ValueError(
                        f"key {key!r} is reserved: the buffer writes it into sampled batches; drop it "
                        f"before storing (td.exclude({key!r}))"
                    )
        return self._storage.extend(td)

    def add(self, td: TensorDictBase) -> int:
        """Append one transition (a TensorDict with ``batch_size=[]``); returns its storage slot."""
        if not isinstance(td, TensorDictBase) or td.batch_dims != 0:
            shape = list(td.batch_size) if isinstance(td, TensorDictBase) else type(td).__name__
            raise ValueError(f"add() takes one transition with batch_size [], got {shape}; use extend()")
        return int(self.extend(td.unsqueeze(0))[0])

    def _check_can_sample(self, batch_size: int) -> None:
        _check_positive_int("batch_size", batch_size)
        if len(self) == 0:
            raise RuntimeError(f"cannot sample from an empty {type(self).__name__}; extend() it first")

    def _randint(self, high: int, batch_size: int) -> torch.Tensor:
        """``batch_size`` uniform ints in ``[0, high)`` from the buffer's generator, on the storage device."""
        draw = torch.randint(0, high, (batch_size,), generator=self._generator, device=self._generator.device)
        device = self._storage.device
        return draw if device is None or draw.device == device else draw.to(device)

    def sample(self, batch_size: int) -> TensorDictBase:
        """``batch_size`` transitions drawn uniformly with replacement, slots under ``"index"``."""
        self._check_can_sample(batch_size)
        # Stored items always occupy slots [0, len) whatever the cursor, so no remapping is needed.
        slots = self._randint(len(self), batch_size)
        return self._storage.gather(slots, {keys.INDEX: slots})

    def sample_slices(
        self,
        batch_size: int,
        slice_len: int,
        *,
        traj_key: NestedKey = keys.TRAJ_ID,
        step_key: NestedKey | None = keys.STEP_COUNT,
        done_key: NestedKey | None = keys.next_(keys.DONE),
    ) -> TensorDictBase:
        """``batch_size`` windows of ``slice_len`` consecutive transitions of one trajectory each.

        See the class docstring for what makes a window valid. ``step_key`` and ``done_key`` are used when
        stored and skipped otherwise (pass ``None`` to skip them explicitly).

        Returns:
            A ``[batch_size, slice_len]`` TensorDict with the storage slots under ``"index"``.
        """
        self._check_can_sample(batch_size)
        _check_positive_int("slice_len", slice_len)
        # The valid starts only change when the storage is written, so reuse them between writes.
        cache_key = (self._storage.version, slice_len, traj_key, step_key, done_key)
        if self._slice_cache is None or self._slice_cache[0] != cache_key:
            starts = slice_starts(self._storage, slice_len, traj_key=traj_key, step_key=step_key,
                                  done_key=done_key)
            self._slice_cache = (cache_key, starts)
        starts = self._slice_cache[1]
        positions = starts.positions(self._randint(starts.starts.numel(), batch_size), slice_len)
        slots = (positions + self._storage.oldest) % self.capacity
        return self._storage.gather(slots, {keys.INDEX: slots})

    def state_dict(self) -> dict[str, Any]:
        """Storage contents, write cursor, size and generator state (tensors, ints and dicts only).

        Saved with ``torch.save`` it loads with ``torch.load(weights_only=True)``. Stored tensors are
        shared with the buffer, as with ``nn.Module.state_dict``.
        """
        return {"storage": self._storage.state_dict(), "generator": self._generator.get_state()}

    def state_mismatch(self, state: dict[str, Any]) -> str | None:
        """Where ``state`` does not fit this buffer (see :meth:`TensorDictStorage.state_mismatch`),
        or ``None``."""
        missing = [key for key in self._state_keys if key not in state]
        if missing:
            return f"{type(self).__name__} state lacks {missing} (it has {sorted(state)})"
        generator, own = state["generator"], self._generator.get_state()
        if not (isinstance(generator, torch.Tensor) and generator.dtype == own.dtype and generator.shape == own.shape):
            got = (f"a {generator.dtype} tensor of shape {list(generator.shape)}" if isinstance(generator, torch.Tensor)
                   else type(generator).__name__)
            return (f"the sampling generator's state is {got}; this buffer's generator ({own.dtype}, shape "
                    f"{list(own.shape)}) takes its own kind of state")
        return self._storage.state_mismatch(state["storage"])

    _state_keys: tuple[str, ...] = ("storage", "generator")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`: afterwards sampling continues exactly as in the saved buffer."""
        for key in ("storage", "generator"):
            if key not in state:
                raise KeyError(f"{type(self).__name__} state_dict lacks {key!r}; it has {sorted(state)}")
        mismatch = self.state_mismatch(state)  # everything checked before anything is replaced
        if mismatch is not None:
            raise ValueError(f"{type(self).__name__}.load_state_dict: {mismatch}")
        self._storage.load_state_dict(state["storage"])
        self._generator.set_state(state["generator"].clone())


def _prioritized_settings_problem(alpha: Any, beta: Any, beta_end: Any, beta_annealing_steps: Any, eps: Any) -> str | None:
    """What is wrong with prioritised replay's settings (a constructor's or a saved state's), or ``None``."""
    for name, value in (("alpha", alpha), ("beta", beta), ("beta_end", beta_end)):
        number = as_real(value)
        if number is None or not math.isfinite(number) or number < 0:
            return f"{name} must be a finite number >= 0, got {value!r}"
    steps = as_int(beta_annealing_steps)
    if steps is None or steps < 0:
        return f"beta_annealing_steps must be an int >= 0, got {beta_annealing_steps!r}"
    number = as_real(eps)
    if number is None or not math.isfinite(number) or number <= 0:
        return f"eps must be a finite number > 0, got {eps!r}"
    return None


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritised replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952).

    Item ``i`` with priority ``p_i`` (``|td error| + eps``) is drawn with probability
    ``P(i) = p_i^alpha / sum_j p_j^alpha`` and carries the importance weight
    ``w_i = (N * P(i))^-beta / max_j w_j`` (``N = len(self)``, the max over all stored items, so that
    weights are in ``(0, 1]`` and only scale updates down). Sampling is stratified: the total mass is cut
    into ``batch_size`` equal segments and one point is drawn uniformly in each, which keeps the
    proportions of plain sampling with less variance (as in the paper). A sum tree and a min tree over
    ``p^alpha`` make draws and the max weight ``O(log N)`` per item, batched over the levels.

    New items get the largest priority seen so far (a running max, starting at 1). ``beta`` anneals
    linearly from ``beta`` to ``beta_end`` over ``beta_annealing_steps`` calls of :meth:`sample`; the
    first call uses ``beta``. Sampled batches carry ``"index"`` ``[B]`` and ``"priority_weight"`` float32
    ``[B, 1]`` (the trailing-singleton layout of rewards and of the priorities losses write); multiply
    per-sample losses of shape ``[B, 1]`` by it. :meth:`sample_slices` is inherited: slice starts are
    uniform and no weights are written.

    Args:
        capacity: maximum number of transitions.
        alpha: priority exponent (0 = uniform).
        beta: initial importance-sampling exponent.
        beta_end: final importance-sampling exponent.
        beta_annealing_steps: number of :meth:`sample` calls over which beta anneals (0 = at once).
        eps: added to every priority so that no item becomes unreachable; must be > 0.
        priority_key: key that :meth:`update_tensordict_priority` reads the priorities from.
        device: storage device.
        generator: random generator used for sampling.
        keys: the entries to store (``None``: all), as for :class:`ReplayBuffer`.
        layout: per-item shapes and dtypes, as for :class:`ReplayBuffer`.
        storage: a storage to use, as for :class:`ReplayBuffer`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data import PrioritizedReplayBuffer
        >>> rb = PrioritizedReplayBuffer(100, alpha=0.6, beta=0.4, generator=torch.Generator().manual_seed(0))
        >>> _ = rb.extend(TensorDict({"observation": torch.randn(10, 4)}, batch_size=[10]))
        >>> batch = rb.sample(8)
        >>> batch["priority_weight"].shape
        torch.Size([8, 1])
        >>> batch["td_error"] = torch.rand(8, 1)
        >>> rb.update_tensordict_priority(batch)
    """

    _reserved_keys = (keys.INDEX, keys.PRIORITY_WEIGHT)
    _state_keys = ("storage", "generator", "prioritized")

    def __init__(
        self,
        capacity: int,
        *,
        alpha: float = 0.6,
        beta: float = 0.4,
        beta_end: float = 1.0,
        beta_annealing_steps: int = 100_000,
        eps: float = 1e-6,
        priority_key: NestedKey = keys.TD_ERROR,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
        keys: Sequence[NestedKey] | None = None,
        layout: Mapping[NestedKey, tuple[Sequence[int], torch.dtype]] | None = None,
        storage: TensorDictStorage | None = None,
    ) -> None:
        super().__init__(capacity, device=device, generator=generator, keys=keys, layout=layout, storage=storage)
        problem = _prioritized_settings_problem(alpha, beta, beta_end, beta_annealing_steps, eps)
        if problem is not None:
            raise ValueError(problem)
        self.alpha, self.beta_start, self.beta_end = float(alpha), float(beta), float(beta_end)
        self.beta_annealing_steps, self.eps = beta_annealing_steps, float(eps)
        self.priority_key = priority_key
        self._max_priority = 1.0
        # The running max of priorities on an accelerator since it was last read (None: none), kept
        # there: reading it at every update would wait for the device (see max_priority).
        self._max_pending: torch.Tensor | None = None
        self._sample_calls = 0
        self._sum_tree: SumTree | None = None
        self._min_tree: MinTree | None = None

    def _index_nbytes(self) -> int:
        # A sum tree and a min tree of float64 over the next power of two of leaves, twice that in nodes.
        leaves = 1 << max(self.capacity - 1, 0).bit_length()
        return 2 * (2 * leaves * 8)

    @property
    def beta(self) -> float:
        """Importance-sampling exponent the next :meth:`sample` call uses."""
        if self._sample_calls >= self.beta_annealing_steps:
            return self.beta_end
        frac = self._sample_calls / self.beta_annealing_steps
        return self.beta_start + frac * (self.beta_end - self.beta_start)

    @property
    def max_priority(self) -> float:
        """Priority (``eps`` included, before ``alpha``) that new items receive.

        Priorities on the CPU raise it at once; those on an accelerator through a running max kept
        there (new items get it there too), read here: asking waits for the device."""
        if self._max_pending is not None:
            self._max_priority = max(self._max_priority, float(self._max_pending))
            self._max_pending = None
        return self._max_priority

    def _new_priority(self) -> float | torch.Tensor:
        """``max_priority ** alpha``, what new items get: a number for trees on the CPU; elsewhere a
        0-dim tensor worked out on the trees' device, where the running max kept on the device joins
        it unread (always there, so a run gives new items the same values whenever it reads the max)."""
        device = self._trees()[0].device
        if not reading_waits(device):
            return self.max_priority**self.alpha
        top = torch.full((), self._max_priority, dtype=torch.float64, device=device)
        if self._max_pending is not None:
            top = torch.maximum(top, self._max_pending.to(device))
        return top.pow(self.alpha)

    def priority(self, index: torch.Tensor) -> torch.Tensor:
        """Stored ``p^alpha`` of the items at ``index`` (float64, the index's shape)."""
        return self._trees()[0][self._check_stored(index)].reshape(torch.as_tensor(index).shape)

    def _trees(self) -> tuple[SumTree, MinTree]:
        if self._sum_tree is None or self._min_tree is None:
            raise RuntimeError(f"the {type(self).__name__} is empty; extend() it first")
        return self._sum_tree, self._min_tree

    def extend(self, td: TensorDictBase) -> torch.Tensor:
        """Append the items of a flat ``[N]`` TensorDict with the current max priority; returns slots."""
        slots = super().extend(td)
        if self._sum_tree is None:
            self._sum_tree = SumTree(self.capacity, device=self._storage.device)
            self._min_tree = MinTree(self.capacity, device=self._storage.device)
        new = self._new_priority()
        for tree in self._trees():
            tree.update(slots, new)
        return slots

    def sample(self, batch_size: int) -> TensorDictBase:
        """``batch_size`` transitions drawn proportionally to ``p^alpha`` (stratified), with weights."""
        self._check_can_sample(batch_size)
        sum_tree, min_tree = self._trees()
        beta = self.beta
        self._sample_calls += 1
        gen = self._generator
        uniform = torch.rand(batch_size, generator=gen, device=gen.device, dtype=torch.float64)
        segment = (torch.arange(batch_size, device=gen.device, dtype=torch.float64) + uniform) / batch_size
        slots = sum_tree.find_prefix_sum(segment.to(sum_tree.device) * sum_tree.reduce_all())
        # (N P_i)^-beta / max_j (N P_j)^-beta = (p_i / min_j p_j)^-beta with p = priority^alpha.
        weight = (sum_tree[slots] / min_tree.reduce_all()).pow(-beta)
        slots = slots.to(self._storage.device)
        weight = weight.to(device=slots.device, dtype=torch.float32).unsqueeze(-1)
        return self._storage.gather(slots, {keys.INDEX: slots, keys.PRIORITY_WEIGHT: weight})

    def _check_stored(self, index: torch.Tensor) -> torch.Tensor:
        """``index`` flat; its dtype checked, and its range where it lies on the CPU (elsewhere reading
        it would wait for the device: a sampled batch's ``"index"`` holds stored slots anyway)."""
        index = torch.as_tensor(index)
        if index.is_floating_point() or index.is_complex() or index.dtype == torch.bool:
            raise TypeError(f"index must be an integer tensor, got dtype {index.dtype}")
        checked = index.numel() > 0 and not reading_waits(index.device)
        if checked and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            raise IndexError(
                f"index out of range: got min {int(index.min())}, max {int(index.max())}, but only slots "
                f"[0, {len(self)}) hold data"
            )
        return index.reshape(-1)

    def update_priority(self, index: torch.Tensor, priority: torch.Tensor) -> None:
        """Set the priorities of stored items to ``priority + eps``.

        The slots' range and the values are checked where they lie on the CPU; on an accelerator
        reading them would wait for the device at every update (a trainer refuses a non-finite
        loss, and with it non-finite TD errors, before it updates priorities).

        Args:
            index: storage slots (e.g. a batch's ``"index"``), any shape ``[*B]``; duplicates: last wins.
            priority: finite values ``>= 0`` of shape ``[*B]`` or ``[*B, 1]``; gradients are ignored.
        """
        index = self._check_stored(index).reshape(torch.as_tensor(index).shape)
        priority = torch.as_tensor(priority).detach()
        if priority.shape != index.shape and priority.shape != (*index.shape, 1):
            raise ValueError(
                f"priority of shape {list(priority.shape)} does not match index of shape "
                f"{list(index.shape)} (expected {list(index.shape)} or {[*index.shape, 1]})"
            )
        if index.numel() == 0:
            return
        priority = priority.to(torch.float64).reshape(-1)
        on_host = not reading_waits(priority.device)
        bad = ~torch.isfinite(priority) | (priority < 0) if on_host else None
        if bad is not None and bool(bad.any()):
            raise ValueError(
                f"priorities must be finite and >= 0, got {priority[bad][:5].tolist()} at positions "
                f"{bad.nonzero().squeeze(-1)[:5].tolist()}"
            )
        priority = priority + self.eps
        if on_host:
            self._max_priority = max(self._max_priority, float(priority.max()))
        else:  # kept on the device until read (max_priority)
            top = priority.max()
            self._max_pending = top if self._max_pending is None else torch.maximum(self._max_pending, top)
        for tree in self._trees():
            tree.update(index.reshape(-1), priority.pow(self.alpha).to(tree.device))

    def update_tensordict_priority(self, td: TensorDictBase) -> None:
        """Update priorities from a sampled batch: slots ``td["index"]``, values ``td[priority_key]``."""
        for key in (keys.INDEX, self.priority_key):
            if key not in td.keys(include_nested=True):
                raise KeyError(
                    f"update_tensordict_priority needs {key!r} in the TensorDict; it has "
                    f"{list(td.keys(include_nested=True, leaves_only=True))}"
                )
        self.update_priority(td.get(keys.INDEX), td.get(self.priority_key))

    def state_dict(self) -> dict[str, Any]:
        """Base state plus both trees, the running max priority, the beta schedule and alpha/eps.

        Each tree is saved as the priorities of the stored items (``{"leaves": [len(self)]}``, slots
        ``[0, len(self))``, those of the storage's saved rows; the empty slots' leaves and the inner
        nodes follow from them), not its ``2 * next_pow2(capacity)`` nodes; :meth:`load_state_dict`
        also takes the whole trees (``{"tree": ...}``) that checkpoints saved before."""
        state = super().state_dict()
        items = len(self)
        trees = {} if self._sum_tree is None else {
            "sum": self._sum_tree.state_dict(items), "min": self._trees()[1].state_dict(items)
        }
        state["prioritized"] = {
            "trees": trees, "max_priority": self.max_priority, "sample_calls": self._sample_calls,
            "alpha": self.alpha, "beta": self.beta_start, "beta_end": self.beta_end,
            "beta_annealing_steps": self.beta_annealing_steps, "eps": self.eps,
        }
        return state

    def state_mismatch(self, state: dict[str, Any]) -> str | None:
        """:meth:`ReplayBuffer.state_mismatch`, and the prioritised part: its settings within their
        ranges, its trees of this capacity."""
        problem = super().state_mismatch(state)
        if problem is not None:
            return problem
        prio = state["prioritized"]
        names = ("trees", "max_priority", "sample_calls", "alpha", "beta", "beta_end", "beta_annealing_steps", "eps")
        if not isinstance(prio, dict) or any(name not in prio for name in names):
            return f"the prioritised state must hold {list(names)}, got {sorted(prio) if isinstance(prio, dict) else prio!r}"
        problem = _prioritized_settings_problem(prio["alpha"], prio["beta"], prio["beta_end"],
                                                prio["beta_annealing_steps"], prio["eps"]) or self._trees_problem(
            prio["trees"], int(state["storage"]["size"]))
        if problem is not None:
            return f"the prioritised state does not fit: {problem}"
        priority = prio["max_priority"]
        if not (isinstance(priority, (int, float)) and math.isfinite(priority) and priority > 0):
            return f"the prioritised state's max_priority must be a finite number > 0, got {priority!r}"
        return None

    def _trees_problem(self, trees: Any, items: int) -> str | None:
        """What is wrong with saved trees (``{}``: none yet; else ``"sum"`` and ``"min"``, each a dict
        holding the ``"leaves"`` of the ``items`` stored items or, as saved before, the ``"tree"``
        tensor of a tree of this capacity), or ``None``."""
        if not isinstance(trees, dict):
            return f"trees must be a dict, got {type(trees).__name__}"
        if not trees:
            return None
        if set(trees) != {"sum", "min"}:
            return f"trees must hold 'sum' and 'min', got {sorted(trees)}"
        for name in ("sum", "min"):
            problem = tree_state_problem(trees[name], self.capacity, items=items, what=f"the {name} tree")
            if problem is not None:
                return problem
        return None

    def _loaded_trees(self, trees: dict, device: torch.device | None) -> tuple[SumTree | None, MinTree | None]:
        """The saved trees (checked by :meth:`_trees_problem`; ``{}``: none yet) in new trees."""
        if not trees:
            return None, None
        sum_tree, min_tree = SumTree(self.capacity, device=device), MinTree(self.capacity, device=device)
        sum_tree.load_state_dict(trees["sum"])
        min_tree.load_state_dict(trees["min"])
        return sum_tree, min_tree

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`, including trees, beta schedule, alpha and eps."""
        if "prioritized" not in state:
            raise KeyError(f"{type(self).__name__} state_dict lacks 'prioritized'; it has {sorted(state)}")
        super().load_state_dict(state)  # (checks the whole state, prioritised part included, first)
        prio = state["prioritized"]
        self._sum_tree, self._min_tree = self._loaded_trees(prio["trees"], self._storage.device)
        self._max_priority, self._sample_calls = float(prio["max_priority"]), int(prio["sample_calls"])
        self._max_pending = None
        self.alpha, self.beta_start, self.beta_end = prio["alpha"], prio["beta"], prio["beta_end"]
        self.beta_annealing_steps, self.eps = prio["beta_annealing_steps"], prio["eps"]
