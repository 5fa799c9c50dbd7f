"""Array-backed segment trees (sum and min) with batched, vectorised updates and queries.

The trees back :class:`~rlkit.data.replay_buffers.PrioritizedReplayBuffer` (Schaul et al. 2016,
https://arxiv.org/abs/1511.05952): the sum tree draws indices proportionally to their priority and the
min tree gives the smallest priority, from which the largest importance weight follows.

Layout: a complete binary tree over ``P = next_pow2(capacity)`` leaves stored in one tensor of size
``2 * P``; node ``1`` is the root, node ``k`` has children ``2k`` and ``2k + 1`` and leaf ``i`` lives at
node ``P + i``. Every operation walks the ``log2(P)`` levels with one tensor operation per level for the
whole batch, so there is no Python loop over items. Parents are always recomputed from their children
(never updated by deltas), so sums do not drift however many updates are made.
"""
from __future__ import annotations

import abc

import torch

from rlkit.utils.devices import reading_waits

__all__ = ["MinTree", "SumTree", "tree_state_problem"]


def tree_leaves(capacity: int) -> int:
    """The leaves of a segment tree over ``capacity`` items (the next power of two); the tree's
    tensor holds twice as many entries."""
    return 1 << max(capacity - 1, 0).bit_length()


def tree_state_problem(state: object, capacity: int, *, items: int | None = None, what: str = "a tree") -> str | None:
    """What keeps a segment tree of ``capacity`` leaves from loading ``state`` (what its ``state_dict``
    gives), or ``None``: ``{"tree": tensor}`` must hold its ``2 * next_pow2(capacity)`` nodes,
    ``{"leaves": tensor}`` one value per leaf it restores (``items`` of them when given, else at most
    ``capacity``). ``what`` names the tree in the message.

    Examples:
        >>> import torch
        >>> from rlkit.data.sum_tree import tree_state_problem
        >>> tree_state_problem({"leaves": torch.ones(3)}, 4, items=3) is None
        True
        >>> tree_state_problem({"leaves": torch.ones(5)}, 8, items=3, what="the sum tree")
        'the sum tree of capacity 8 saves 5 leaves; expected 3 (one per stored item)'
    """
    if not isinstance(state, dict) or sum(key in state for key in ("tree", "leaves")) != 1 or not all(
            isinstance(value, torch.Tensor) for value in state.values()):
        got = f"a dict with keys {sorted(state, key=str)}" if isinstance(state, dict) else f"a {type(state).__name__}"
        return f"{what}'s state is a dict holding its 'leaves' (or, as saved before, its 'tree') tensor, got {got}"
    if "tree" in state:
        shape, nodes = list(state["tree"].shape), [2 * tree_leaves(capacity)]
        if shape != nodes:
            return f"tree of shape {shape} does not fit capacity {capacity} (expected {nodes})"
        return None
    leaves = state["leaves"]
    count = leaves.shape[0] if leaves.dim() == 1 else None
    if count is None or (items is not None and count != items) or count > capacity:
        found = f"{count} leaves" if count is not None else f"a tensor of shape {list(leaves.shape)} as leaves"
        expected = f"{items} (one per stored item)" if items is not None else f"at most {capacity}"
        return f"{what} of capacity {capacity} saves {found}; expected {expected}"
    return None


class _SegmentTree(abc.ABC):
    """A binary tree whose internal nodes hold an associative reduction of their leaves."""

    def __init__(self, capacity: int, *, device: torch.device | str | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self._num_leaves = tree_leaves(capacity)
        self._depth = self._num_leaves.bit_length() - 1
        self._tree = torch.full((2 * self._num_leaves,), self._neutral, dtype=dtype, device=device)

    @property
    @abc.abstractmethod
    def _neutral(self) -> float:
        """Value of an empty leaf (the identity of the reduction)."""

    @abc.abstractmethod
    def _reduce(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Combine the values of two children."""

    @property
    def device(self) -> torch.device:
        """Device the tree lives on."""
        return self._tree.device

    def _check_index(self, index: torch.Tensor) -> torch.Tensor:
        """``index`` flat, int64, on the tree's device; its dtype is checked, its range only where it
        lies on the CPU (:func:`reading_waits`: elsewhere the caller answers for it, as the replay
        buffer does with the slots it gave out)."""
        index = torch.as_tensor(index)
        if index.dtype in (torch.bool,) or index.is_floating_point() or index.is_complex():
            raise TypeError(f"index must be an integer tensor, got dtype {index.dtype}")
        index = index.reshape(-1)
        checked = index.numel() > 0 and not reading_waits(index.device)
        if checked and (int(index.min()) < 0 or int(index.max()) >= self.capacity):
            raise IndexError(
                f"index out of range [0, {self.capacity}): min {int(index.min())}, max {int(index.max())}"
            )
        return index.to(device=self._tree.device, dtype=torch.int64)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        """Leaf values at ``index`` (any shape), with the index's shape."""
        flat = self._check_index(index)
        return self._tree[flat + self._num_leaves].reshape(torch.as_tensor(index).shape)

    def update(self, index: torch.Tensor, value: torch.Tensor | float) -> None:
        """Set leaves ``index`` to ``value`` and refresh their ancestors.

        Duplicate indices are resolved deterministically: the last occurrence wins, as it would in a
        sequential loop.

        Args:
            index: integer tensor of leaf indices, any shape.
            value: a scalar or a tensor with as many elements as ``index``.
        """
        flat = self._check_index(index)
        if isinstance(value, (int, float)):  # filled on the device (a host number copied there would wait for it)
            value = torch.full(flat.shape, value, dtype=self._tree.dtype, device=self._tree.device)
        value = torch.as_tensor(value, dtype=self._tree.dtype, device=self._tree.device)
        value = value.expand(flat.shape) if value.numel() == 1 else value.reshape(-1)
        if value.numel() != flat.numel():
            raise ValueError(f"got {value.numel()} values for {flat.numel()} indices")
        if flat.numel() == 0:
            return
        flat, value = _last_occurrence(flat, value)
        nodes = flat + self._num_leaves
        self._tree[nodes] = value  # (a repeated leaf is written its last value at each of its occurrences)
        for _ in range(self._depth):
            # Siblings share a parent, a repeated leaf repeats its ancestors: duplicates write the same
            # value, so the result is deterministic.
            nodes = nodes // 2
            self._tree[nodes] = self._reduce(self._tree[2 * nodes], self._tree[2 * nodes + 1])

    def reduce_all(self) -> torch.Tensor:
        """Reduction over all leaves (the root), a 0-dim tensor."""
        return self._tree[1].clone()

    def state_dict(self, items: int | None = None) -> dict[str, torch.Tensor]:
        """The tree as plain tensors, copied to the host (where ``torch.save`` puts them anyway: no
        second copy on a CUDA tree's device), loadable with ``torch.load(weights_only=True)``.

        Without ``items``: ``{"tree": tensor}``, every node. With ``items``: ``{"leaves": tensor}``,
        the values of leaves ``[0, items)`` only, for a tree whose other leaves are empty (never
        written, as those of a buffer's empty slots): :meth:`load_state_dict` recomputes the other
        nodes, which gives back exactly this tree since every inner node is always its children's
        reduction.
        """
        if items is None:
            return {"tree": self._tree.to("cpu", copy=True)}
        if not 0 <= items <= self.capacity:
            raise ValueError(f"items must be in [0, {self.capacity}], got {items}")
        return {"leaves": self._tree[self._num_leaves: self._num_leaves + items].to("cpu", copy=True)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore a tree saved by :meth:`state_dict` (same capacity; either form)."""
        problem = tree_state_problem(state, self.capacity, what=f"a {type(self).__name__}")
        if problem is not None:
            raise ValueError(problem)
        if "tree" in state:
            self._tree = state["tree"].to(device=self._tree.device, dtype=self._tree.dtype, copy=True)
            return
        leaves = state["leaves"]
        tree = torch.full_like(self._tree, self._neutral)
        # (copy_ casts and moves the saved leaves in one go, without a converted copy of them first)
        tree[self._num_leaves: self._num_leaves + leaves.shape[0]].copy_(leaves)
        level = self._num_leaves
        for _ in range(self._depth):  # each level's nodes [level, 2 * level) from their children's
            level //= 2
            tree[level: 2 * level] = self._reduce(tree[2 * level: 4 * level: 2], tree[2 * level + 1: 4 * level: 2])
        self._tree = tree


class SumTree(_SegmentTree):
    """Sum tree: the root is the total mass; :meth:`find_prefix_sum` samples proportionally to leaves.

    Examples:
        >>> import torch
        >>> from rlkit.data.sum_tree import SumTree
        >>> tree = SumTree(4)
        >>> tree.update(torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, 2.0, 3.0, 4.0]))
        >>> float(tree.reduce_all())
        10.0
        >>> tree.find_prefix_sum(torch.tensor([0.5, 1.0, 5.9, 9.99])).tolist()
        [0, 1, 2, 3]
    """

    @property
    def _neutral(self) -> float:
        return 0.0

    def _reduce(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return left + right

    def find_prefix_sum(self, mass: torch.Tensor) -> torch.Tensor:
        """For each ``mass`` in ``[0, total)``, the smallest leaf ``i`` with ``sum(leaves[:i+1]) > mass``.

        The descent only ever enters subtrees with positive mass, so even when rounding pushes ``mass``
        to (or past) the total the result is a leaf with positive value, never an empty slot.

        An empty tree (total mass 0) is refused where the tree lies on the CPU; elsewhere reading its
        total would wait for the device (:func:`reading_waits`), and the descent gives leaf 0.

        Args:
            mass: float tensor of any shape; values are clamped to ``>= 0``.

        Returns:
            int64 leaf indices with the shape of ``mass``, on the tree's device.
        """
        if not reading_waits(self._tree.device) and float(self._tree[1]) <= 0:
            raise ValueError("cannot sample from a SumTree whose total mass is 0")
        shape = mass.shape
        mass = mass.to(device=self._tree.device, dtype=self._tree.dtype).reshape(-1).clamp_min(0)
        node = torch.ones_like(mass, dtype=torch.long)
        for _ in range(self._depth):
            left = 2 * node
            left_mass = self._tree[left]
            right_mass = self._tree[left + 1]
            go_right = (mass >= left_mass) & (right_mass > 0)
            mass = torch.where(go_right, mass - left_mass, mass)
            node = torch.where(go_right, left + 1, left)
        return (node - self._num_leaves).reshape(shape)


class MinTree(_SegmentTree):
    """Min tree: the root is the smallest leaf; empty leaves hold ``+inf``.

    Examples:
        >>> import torch
        >>> from rlkit.data.sum_tree import MinTree
        >>> tree = MinTree(3)
        >>> tree.update(torch.tensor([0, 2]), torch.tensor([5.0, 2.0]))
        >>> float(tree.reduce_all())
        2.0
    """

    @property
    def _neutral(self) -> float:
        return float("inf")

    def _reduce(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        return torch.minimum(left, right)


def _last_occurrence(index: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``index`` sorted, each of its occurrences with the value of the last occurrence of that index:
    written in one go, every leaf gets the value a sequential loop would leave (its duplicates write
    the same value). Nothing is removed, so no size depends on the data (``torch.unique``'s output
    size would make a CUDA tree wait for the device at every update).

    Examples:
        >>> import torch
        >>> from rlkit.data.sum_tree import _last_occurrence
        >>> index, value = _last_occurrence(torch.tensor([2, 1, 2, 2, 1]), torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
        >>> index.tolist(), value.tolist()
        ([1, 1, 2, 2, 2], [5.0, 5.0, 4.0, 4.0, 4.0])
    """
    n = index.numel()
    order = torch.sort(index, stable=True).indices  # equal indices in the order they occur
    ordered = index[order]
    run_end = torch.ones(n, dtype=torch.bool, device=index.device)  # the last occurrence of each index
    run_end[:-1] = ordered[1:] != ordered[:-1]
    # For each sorted position, the first run end at or after it: its index's last occurrence.
    position = torch.arange(n, device=index.device)
    last = torch.where(run_end, position, n).flip(0).cummin(0).values.flip(0)
    return ordered, value[order[last]]

