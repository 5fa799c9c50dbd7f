from __future__ import annotations

import pytest
import torch
from cuda_marks import DEVICES

from rlkit.data.sum_tree import MinTree, SumTree


@pytest.mark.parametrize("capacity", [1, 5, 8, 37])
def test_random_updates_match_a_plain_array(capacity: int) -> None:
    gen = torch.Generator().manual_seed(capacity)
    ref = torch.zeros(capacity, dtype=torch.float64)
    sums, mins = SumTree(capacity), MinTree(capacity)
    ref_min = torch.full((capacity,), float("inf"), dtype=torch.float64)
    for _ in range(20):
        idx = torch.randint(0, capacity, (7,), generator=gen)
        val = torch.rand(7, generator=gen, dtype=torch.float64) + 0.1
        sums.update(idx, val)
        mins.update(idx, val)
        for i, v in zip(idx.tolist(), val.tolist()):  # sequential reference: the last write wins
            ref[i] = v
            ref_min[i] = v
        assert torch.allclose(sums.reduce_all(), ref.sum(), rtol=1e-12)
        assert mins.reduce_all() == ref_min.min()
        assert torch.equal(sums[torch.arange(capacity)], ref)


def test_duplicate_indices_keep_the_last_value() -> None:
    tree = SumTree(4)
    tree.update(torch.tensor([2, 1, 2, 2, 1]), torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert tree[torch.tensor([0, 1, 2, 3])].tolist() == [0.0, 5.0, 4.0, 0.0]
    assert float(tree.reduce_all()) == 9.0


def test_scalar_value_broadcasts_and_empty_update_is_a_no_op() -> None:
    tree = MinTree(3)
    tree.update(torch.tensor([0, 2]), 2.5)
    tree.update(torch.tensor([], dtype=torch.long), torch.tensor([]))
    assert tree[torch.tensor([[0, 1, 2]])].tolist() == [[2.5, float("inf"), 2.5]]


def test_find_prefix_sum_matches_searchsorted_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    values = torch.rand(13, generator=gen, dtype=torch.float64)
    values[[3, 4, 12]] = 0.0  # empty slots must never be returned
    tree = SumTree(13)
    tree.update(torch.arange(13), values)
    mass = torch.rand(1000, generator=gen, dtype=torch.float64) * values.sum()
    expected = torch.searchsorted(values.cumsum(0), mass, right=True)
    assert torch.equal(tree.find_prefix_sum(mass), expected)
    # Rounding can push the mass to the total: the result is still the last leaf with mass.
    edge = tree.find_prefix_sum(torch.tensor([values.sum() * (1 + 1e-12), 0.0]))
    assert edge.tolist() == [11, 0]


def test_find_prefix_sum_keeps_shape() -> None:
    tree = SumTree(4)
    tree.update(torch.arange(4), torch.tensor([1.0, 1.0, 1.0, 1.0]))
    out = tree.find_prefix_sum(torch.tensor([[0.5, 1.5], [2.5, 3.5]]))
    assert out.tolist() == [[0, 1], [2, 3]]


def test_state_dict_round_trip() -> None:
    tree = SumTree(6)
    tree.update(torch.arange(6), torch.arange(6.0))
    other = SumTree(6)
    state = tree.state_dict()
    other.load_state_dict(state)
    state["tree"].zero_()  # the loaded tree does not alias the state dict
    assert torch.equal(other[torch.arange(6)], torch.arange(6.0, dtype=torch.float64))
    assert float(other.reduce_all()) == 15.0


@pytest.mark.parametrize("device", DEVICES)
def test_a_state_is_a_host_copy_of_the_tree_and_loads_back_onto_its_device(device) -> None:
    """Both forms of a tree's state are copied straight to the host (a copy on a CUDA tree's device
    was made before ``torch.save`` moved it to the host anyway), apart from the tree: later updates
    do not reach them, and they load back onto the loading tree's device."""
    tree = SumTree(6, device=device)
    tree.update(torch.arange(6), torch.arange(6.0))
    before = torch.cuda.memory_allocated() if tree.device.type == "cuda" else 0
    whole, leaves = tree.state_dict(), tree.state_dict(4)
    assert (torch.cuda.memory_allocated() if tree.device.type == "cuda" else 0) == before
    assert whole["tree"].device == leaves["leaves"].device == torch.device("cpu")
    tree.update(torch.arange(6), torch.zeros(6))
    assert whole["tree"][8:14].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert leaves["leaves"].tolist() == [0.0, 1.0, 2.0, 3.0]
    for state, expected in ((whole, 15.0), (leaves, 6.0)):
        other = SumTree(6, device=device)
        other.load_state_dict(state)
        assert other.device.type == tree.device.type and float(other.reduce_all()) == expected


def test_errors() -> None:
    with pytest.raises(ValueError, match="capacity must be a positive int, got 0"):
        SumTree(0)
    tree = SumTree(4)
    with pytest.raises(TypeError, match="index must be an integer tensor, got dtype torch.float32"):
        tree.update(torch.tensor([0.0]), 1.0)
    with pytest.raises(IndexError, match=r"index out of range \[0, 4\): min 0, max 4"):
        tree.update(torch.tensor([0, 4]), 1.0)
    with pytest.raises(ValueError, match="got 3 values for 2 indices"):
        tree.update(torch.tensor([0, 1]), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="total mass is 0"):
        tree.find_prefix_sum(torch.tensor([0.0]))
    with pytest.raises(ValueError, match=r"tree of shape \[16\] does not fit capacity 4 \(expected \[8\]\)"):
        tree.load_state_dict(SumTree(5).state_dict())


@pytest.mark.parametrize("cls", [SumTree, MinTree])
@pytest.mark.parametrize(("capacity", "items"), [(1, 0), (1, 1), (6, 4), (37, 20), (37, 37), (64, 64)])
def test_the_leaves_of_the_stored_items_give_back_the_same_tree(cls, capacity: int, items: int) -> None:
    """A tree saved as its first leaves (those of a buffer's items, the others empty) is rebuilt node
    for node: every inner node is always its children's reduction."""
    gen = torch.Generator().manual_seed(capacity + items)
    tree = cls(capacity)
    for _ in range(5):
        index = torch.randint(0, max(items, 1), (7,), generator=gen) if items else torch.empty(0, dtype=torch.int64)
        tree.update(index, torch.rand(index.numel(), generator=gen, dtype=torch.float64) * 3)
    state = tree.state_dict(items)
    assert list(state) == ["leaves"] and state["leaves"].shape == (items,)
    assert state["leaves"].untyped_storage().nbytes() == 8 * items  # its own memory, not the tree's
    other = cls(capacity)
    other.load_state_dict(state)
    assert torch.equal(other._tree, tree._tree)
    index = torch.arange(max(items, 1)) % capacity
    for t in (tree, other):  # and it goes on alike
        t.update(index, torch.arange(index.numel(), dtype=torch.float64) + 0.5)
    assert torch.equal(other._tree, tree._tree)


def test_a_leaves_state_of_the_wrong_length_is_refused() -> None:
    tree = SumTree(4)
    with pytest.raises(ValueError, match=r"^a SumTree of capacity 4 saves 5 leaves; expected at most 4$"):
        tree.load_state_dict({"leaves": torch.ones(5, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"saves a tensor of shape \[2, 2\] as leaves"):
        tree.load_state_dict({"leaves": torch.ones(2, 2, dtype=torch.float64)})
    with pytest.raises(ValueError, match=r"^a MinTree's state is a dict holding its 'leaves' \(or, as saved before, its "
                                         r"'tree'\) tensor, got a dict with keys \['leaves', 'tree'\]$"):
        MinTree(4).load_state_dict({"tree": torch.ones(8), "leaves": torch.ones(2)})
    with pytest.raises(ValueError, match=r"items must be in \[0, 4\], got 5"):
        tree.state_dict(5)


@pytest.mark.parametrize("cls", [SumTree, MinTree])
def test_batched_updates_with_duplicates_give_the_sequential_loops_tree_node_for_node(cls) -> None:
    """Repeated indices are written their last value at every occurrence (no deduplication, whose
    output size depends on the data): the tree is, bit for bit, the one of one update per item."""
    gen = torch.Generator().manual_seed(4)
    batched, sequential = cls(37), cls(37)
    for size in (1, 2, 7, 64, 200):
        index = torch.randint(0, 37 if size != 64 else 3, (size,), generator=gen)
        value = torch.rand(size, generator=gen, dtype=torch.float64)
        batched.update(index, value)
        for i in range(size):
            sequential.update(index[i: i + 1], value[i: i + 1])
        assert torch.equal(batched._tree, sequential._tree)


def test_a_tree_off_the_cpu_never_reads_its_values_on_the_host() -> None:
    """Updates (repeated indices, a scalar), leaf reads and the proportional descent on a ``meta``
    tree, whose values cannot be read at all: nothing waits for an accelerator's tree (the range of
    an index and an empty tree's total are checked on the CPU only, as ``test_errors`` shows)."""
    sums, mins = SumTree(5, device="meta"), MinTree(5, device="meta")
    for tree in (sums, mins):
        tree.update(torch.tensor([0, 3, 0, 4], device="meta"), torch.ones(4, dtype=torch.float64, device="meta"))
        tree.update(torch.arange(5, device="meta"), 2.0)
        assert tree[torch.tensor([[1, 2]], device="meta")].shape == (1, 2)
        assert tree.reduce_all().device.type == "meta"
    slots = sums.find_prefix_sum(torch.rand(6, device="meta", dtype=torch.float64) * sums.reduce_all())
    assert slots.shape == (6,) and slots.dtype == torch.int64 and slots.device.type == "meta"
