from __future__ import annotations

import pytest
import torch
from cuda_marks import DEVICES
from tensordict import NonTensorData, TensorDict

from rlkit.data.storage import TensorDictStorage

from checkpoint_bytes import through_file  # (tests/data/checkpoint_bytes.py)
from device_copies import DeviceWatch  # (tests/data/device_copies.py)


def _batch(start: int, n: int) -> TensorDict:
    x = torch.arange(start, start + n)
    return TensorDict(
        {
            "x": x,
            "obs": x.float().unsqueeze(-1).expand(n, 3).clone(),
            "next": {"done": (x % 2 == 0).unsqueeze(-1)},
        },
        batch_size=[n],
    )


def test_wrap_around_keeps_exactly_the_newest_items() -> None:
    storage = TensorDictStorage(5)
    assert storage.extend(_batch(0, 3)).tolist() == [0, 1, 2]
    assert storage.extend(_batch(3, 4)).tolist() == [3, 4, 0, 1]
    assert len(storage) == 5 and storage.cursor == 2
    assert storage.data["x"].tolist() == [5, 6, 2, 3, 4]
    assert storage.data["next", "done"].squeeze(-1).tolist() == [False, True, True, False, True]
    assert storage.oldest == 2
    assert storage.oldest_first("x").tolist() == [2, 3, 4, 5, 6]
    assert storage.oldest_first(("next", "done")).shape == (5, 1)
    partial = TensorDictStorage(5)
    partial.extend(_batch(0, 2))
    assert partial.oldest == 0 and partial.oldest_first("x").tolist() == [0, 1]
    assert storage.data["obs"][:, 0].tolist() == [5.0, 6.0, 2.0, 3.0, 4.0]


def test_extend_larger_than_capacity_matches_one_by_one_writes() -> None:
    bulk, single = TensorDictStorage(4), TensorDictStorage(4)
    bulk.extend(_batch(0, 2))
    single.extend(_batch(0, 2))
    assert bulk.extend(_batch(2, 11)).tolist() == [1, 2, 3, 0]
    for i in range(2, 13):
        single.extend(_batch(i, 1))
    assert torch.equal(bulk.data["x"], single.data["x"])
    assert bulk.data["x"].tolist() == [12, 9, 10, 11]
    assert (bulk.cursor, len(bulk)) == (single.cursor, len(single)) == (1, 4)


def test_gather_returns_a_copy_with_the_index_shape() -> None:
    storage = TensorDictStorage(6)
    storage.extend(_batch(0, 6))
    out = storage[torch.tensor([[1, 2], [5, 0]])]
    assert out.batch_size == torch.Size([2, 2])
    assert out["x"].tolist() == [[1, 2], [5, 0]]
    out["x"].zero_()
    assert storage.data["x"].tolist() == [0, 1, 2, 3, 4, 5]


def test_device_argument_places_the_storage() -> None:
    storage = TensorDictStorage(3, device="cpu")
    assert storage.device == torch.device("cpu")
    storage.extend(_batch(0, 2))
    assert storage.data["x"].device == torch.device("cpu")
    assert storage.device == torch.device("cpu")


def test_state_dict_round_trip_and_independence() -> None:
    storage = TensorDictStorage(4)
    storage.extend(_batch(0, 6))
    other = TensorDictStorage(4)
    other.load_state_dict(storage.state_dict())
    assert torch.equal(other.data["x"], storage.data["x"])
    assert torch.equal(other.data["next", "done"], storage.data["next", "done"])
    assert (other.cursor, len(other)) == (2, 4)
    storage.extend(_batch(100, 1))  # writes to the original do not leak into the loaded copy
    assert other.data["x"].tolist() == [4, 5, 2, 3]
    empty = TensorDictStorage(4)
    other.load_state_dict(empty.state_dict())
    assert len(other) == 0 and "x" not in other


def test_layout_errors_name_the_entry() -> None:
    storage = TensorDictStorage(4)
    with pytest.raises(TypeError, match="expected a TensorDict, got dict"):
        storage.extend({"x": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"batch_size \[N\], got batch_size \[2, 3\]"):
        storage.extend(TensorDict({"x": torch.zeros(2, 3)}, batch_size=[2, 3]))
    with pytest.raises(ValueError, match="the TensorDict has no tensor entries"):
        storage.extend(TensorDict({}, batch_size=[2]))
    with_text = TensorDict({"x": torch.zeros(2)}, batch_size=[2])
    with_text["name"] = NonTensorData("a", batch_size=[2])
    with pytest.raises(TypeError, match="entry 'name' is a NonTensorData; only tensor entries can be stored"):
        storage.extend(with_text)
    storage.extend(_batch(0, 2))
    bad_keys = _batch(0, 2).exclude(("next", "done")).set("extra", torch.zeros(2))
    with pytest.raises(KeyError, match=r"missing \[\('next', 'done'\)\], unexpected \['extra'\]"):
        storage.extend(bad_keys)
    bad_shape = _batch(0, 2).set("obs", torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"entry 'obs' has per-item shape \[4\], the storage holds \[3\]"):
        storage.extend(bad_shape)
    bad_dtype = _batch(0, 2).set(("next", "done"), torch.zeros(2, 1))
    match = r"entry \('next', 'done'\) has dtype torch.float32, the storage holds torch.bool"
    with pytest.raises(TypeError, match=match):
        storage.extend(bad_dtype)


def test_constructor_and_empty_errors() -> None:
    with pytest.raises(ValueError, match="capacity must be a positive int, got -1"):
        TensorDictStorage(-1)
    with pytest.raises(RuntimeError, match="the storage is empty"):
        TensorDictStorage(2).data


def test_load_state_dict_errors() -> None:
    storage = TensorDictStorage(4)
    state = storage.state_dict()
    with pytest.raises(KeyError, match="storage state_dict lacks 'cursor'"):
        storage.load_state_dict({k: v for k, v in state.items() if k != "cursor"})
    with pytest.raises(ValueError, match="state_dict capacity 3 does not match this buffer's capacity 4"):
        storage.load_state_dict(TensorDictStorage(3).state_dict())
    with pytest.raises(ValueError, match="state_dict has cursor 4 and size 0"):
        storage.load_state_dict({**state, "cursor": 4})


@pytest.mark.parametrize(("cursor", "size", "problem"), [
    (4, 0, "need 0 <= cursor < 4 and 0 <= size <= 4"),
    (-1, 4, "need 0 <= cursor < 4 and 0 <= size <= 4"),
    (0, 5, "need 0 <= cursor < 4 and 0 <= size <= 4"),
    (1, 3, "a storage that is not full writes at its size"),
    (1.0, 1, "both must be integers"),
    (True, 1, "both must be integers"),
])
def test_a_saved_write_position_out_of_range_is_refused_before_anything_is_loaded(cursor, size, problem) -> None:
    """A damaged checkpoint's cursor/size are named by the pre-check (which trainers run on every part
    before loading any) and refused by the load, which leaves the storage as it was."""
    source = TensorDictStorage(4)
    source.extend(_batch(0, 3))
    state = {**source.state_dict(), "cursor": cursor, "size": size}
    target = TensorDictStorage(4)
    target.extend(_batch(10, 1))
    mismatch = target.state_mismatch(state)
    assert mismatch is not None and problem in mismatch
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        target.load_state_dict(state)
    assert (target.cursor, len(target)) == (1, 1)


@pytest.mark.parametrize(("cursor", "size"), [(0, 0), (3, 3), (0, 4), (2, 4)])
def test_every_reachable_write_position_passes_the_pre_check(cursor, size) -> None:
    storage = TensorDictStorage(4)
    total = size if size < 4 else 4 + cursor
    if total:
        storage.extend(_batch(0, total))
    state = storage.state_dict()
    assert (state["cursor"], state["size"]) == (cursor, size)
    assert TensorDictStorage(4).state_mismatch(state) is None
    assert TensorDictStorage(4).state_mismatch({**state, "cursor": torch.tensor(cursor)}) is None


def test_keyed_storage_reads_the_named_entries_and_names_what_is_missing():
    td = TensorDict({"a": torch.arange(3), "b": torch.zeros(3, 2), "next": {"r": torch.ones(3, 1)}}, batch_size=[3])
    storage = TensorDictStorage(4, keys=["a", ("next", "r")])
    storage.extend(td)
    assert sorted(storage.data.keys(True, True), key=str) == sorted(["a", ("next", "r")], key=str)
    assert storage.data["a"][:3].tolist() == [0, 1, 2]
    with pytest.raises(KeyError, match=r"the storage keeps \['a', \('next', 'r'\)\], but \['a'\] are missing"):
        storage.extend(td.exclude("a"))
    with pytest.raises(KeyError, match=r"but \['next'\] are missing"):  # a sub-TensorDict is not an entry
        TensorDictStorage(4, keys=["next"]).extend(td)
    with pytest.raises(TypeError, match=r"entry 'tag' is a .*; only tensor entries can be stored"):
        TensorDictStorage(4, keys=["a", "tag"]).extend(td.set_non_tensor("tag", "x"))


def test_gather_takes_a_zero_dim_index_and_slots_of_any_shape() -> None:
    storage = TensorDictStorage(4, layout={"r": ([], torch.float32), "x": ([2], torch.float32)})
    storage.extend(TensorDict({"r": torch.arange(3.0), "x": torch.arange(6.0).reshape(3, 2)}, batch_size=[3]))
    one = storage[torch.tensor(1)]
    assert one.batch_size == torch.Size([]) and one["r"].item() == 1.0 and one["x"].tolist() == [2.0, 3.0]
    grid = storage[torch.tensor([[2, 0], [1, 1]])]
    assert grid.batch_size == torch.Size([2, 2]) and grid["r"].tolist() == [[2.0, 0.0], [1.0, 1.0]]
    assert grid["x"][0, 0].tolist() == [4.0, 5.0]


def test_the_first_write_must_bring_every_laid_out_entry() -> None:
    storage = TensorDictStorage(4, layout={"a": ([], torch.float32), "b": ([], torch.float32)})
    with pytest.raises(KeyError, match="the storage keeps"):
        storage.extend_leaves({"a": torch.zeros(2)})
    assert len(storage) == 0


def test_extend_leaves_refuses_entries_of_different_lengths_by_name_and_writes_nothing():
    storage = TensorDictStorage(8, layout={"obs": ([2], torch.float32), "action": ([], torch.int64)})
    for action in (torch.tensor([7]), torch.tensor([1, 2, 3]), torch.tensor(7)):
        with pytest.raises(ValueError, match=r"every entry must hold the same number of items on its first dim, "
                                             r"got \{'obs': 5, 'action': (1|3|None)\}"):
            storage.extend_leaves({"obs": torch.zeros(5, 2), "action": action})
    assert len(storage) == 0
    assert storage.extend_leaves({"obs": torch.zeros(5, 2), "action": torch.arange(5)}).tolist() == [0, 1, 2, 3, 4]


# -- what a checkpoint holds: the filled rows only ---------------------------------------------------
def _continue_alike(a: TensorDictStorage, b: TensorDictStorage, start: int) -> None:
    """Both storages take the same writes (through a wrap-around) and stay equal, slot for slot."""
    for i, n in enumerate((1, 2, 5, 3)):
        assert torch.equal(a.extend(_batch(start + 10 * i, n)), b.extend(_batch(start + 10 * i, n)))
        assert (a.cursor, len(a), a.oldest) == (b.cursor, len(b), b.oldest)
        for key in ("x", "obs", ("next", "done")):
            assert torch.equal(a.data[key], b.data[key]), key  # the unwritten slots too
        index = torch.arange(len(a))
        assert torch.equal(a[index]["obs"], b[index]["obs"])


def test_a_partly_filled_storage_saves_its_filled_rows_and_resumes_exactly() -> None:
    storage = TensorDictStorage(8)
    storage.extend(_batch(0, 3))
    state = storage.state_dict()
    for key in ("x", "obs"):
        saved = state["data"][key]
        # Its own memory: torch.save writes a tensor's whole storage, which for a view is all 8 rows.
        assert saved.shape[0] == 3 and saved.untyped_storage().nbytes() == saved.nbytes
    assert state["data"]["next"]["done"].shape == (3, 1)
    loaded, _ = through_file(state)
    other = TensorDictStorage(8)
    other.load_state_dict(loaded)
    assert (other.cursor, len(other)) == (3, 3) and other.data["x"].shape == (8,)
    storage.extend(_batch(50, 1))  # the saved rows are a snapshot: later writes do not reach them
    assert state["data"]["x"].tolist() == [0, 1, 2]
    other.extend(_batch(50, 1))
    _continue_alike(storage, other, 100)


def _allocated(device: str) -> int:
    """Bytes of tensors held on ``device`` (CUDA's count; 0 on the CPU, whose is not kept)."""
    return torch.cuda.memory_allocated() if torch.device(device).type == "cuda" else 0


@pytest.mark.parametrize("device", DEVICES)
def test_a_filling_storage_saves_its_rows_as_host_copies_that_later_writes_do_not_reach(device) -> None:
    """The filled rows are copied straight to the host, where ``torch.save`` puts them anyway (a copy
    on a CUDA storage's device doubled its GPU memory at each checkpoint), into memory of their own:
    writes to the storage after ``state_dict()``, in place or by ``extend``, leave the saved rows as
    they were, and they load back onto the storage's device."""
    storage = TensorDictStorage(8, device=device)
    storage.extend(_batch(0, 3))
    before = _allocated(device)
    state = storage.state_dict()
    assert _allocated(device) == before  # nothing of the state was made on the device
    saved = TensorDict(state["data"], batch_size=[3])
    entries = ("x", "obs", ("next", "done"))
    assert all(saved[key].device == torch.device("cpu") for key in entries)
    expected = saved.clone()
    for key in entries:
        storage.data[key].zero_()
    storage.extend(_batch(50, 2))
    assert all(torch.equal(saved[key], expected[key]) for key in entries)
    other = TensorDictStorage(8, device=device)
    other.load_state_dict(state)
    assert other.data["x"].device.type == torch.device(device).type and len(other) == 3
    assert other.data["x"][:3].tolist() == [0, 1, 2] and other.data["next", "done"][:3, 0].tolist() == [True, False, True]


def test_a_full_wrapped_storage_saves_its_rows_shared_and_resumes_exactly() -> None:
    storage = TensorDictStorage(4)
    storage.extend(_batch(0, 6))
    state = storage.state_dict()
    assert state["data"]["x"].data_ptr() == storage.data["x"].data_ptr() and state["data"]["x"].shape == (4,)
    other = TensorDictStorage(4)
    other.load_state_dict(through_file(state)[0])
    assert (other.cursor, len(other), other.data["x"].tolist()) == (2, 4, [4, 5, 2, 3])
    _continue_alike(storage, other, 100)


def test_a_checkpoint_is_as_large_as_the_stored_items_not_the_capacity() -> None:
    storage = TensorDictStorage(100_000)
    storage.extend(_batch(0, 10))
    _, nbytes = through_file(storage.state_dict())
    assert nbytes < 20_000  # all rows: 100000 * 21 bytes = 2.1 MB


@pytest.mark.parametrize("keys", [None, ["x", ("next", "done")]])
def test_an_old_checkpoint_of_all_capacity_rows_loads_and_resumes_exactly(keys) -> None:
    """Checkpoints saved before held every row of a storage that was not full; they load as they did."""
    storage = TensorDictStorage(8)
    storage.extend(_batch(0, 3))
    state = storage.state_dict()
    saved = state["data"]
    old = {**state, "data": {"x": torch.cat([saved["x"], torch.full((5,), -7)]),
                             "obs": torch.cat([saved["obs"], torch.full((5, 3), -7.0)]),
                             "next": {"done": torch.cat([saved["next"]["done"], torch.ones(5, 1, dtype=torch.bool)])}}}
    other = TensorDictStorage(8, keys=keys)
    assert other.state_mismatch(old) is None
    other.load_state_dict(through_file(old)[0])
    assert (other.cursor, len(other)) == (3, 3) and other.data["x"].tolist()[:3] == [0, 1, 2]
    fresh = TensorDictStorage(8, keys=keys)
    fresh.load_state_dict(state)
    for n in (2, 4):  # past the end: every old garbage row is overwritten
        for target in (storage, other, fresh):
            target.extend(_batch(20 + n, n))
    assert torch.equal(other.data["x"], storage.data["x"]) and torch.equal(fresh.data["x"], storage.data["x"])
    assert torch.equal(other.data["next", "done"], storage.data["next", "done"])


@pytest.mark.parametrize(("fill", "rows", "expected"), [
    (3, 5, "stored entry 'obs' holds 5 rows; a storage of capacity 8 holding 3 items saves 3 (its filled rows) "
           "or 8 (all rows, as saved before)"),
    (10, 3, "stored entry 'obs' holds 3 rows; a storage of capacity 8 holding 8 items saves 8"),
])
def test_a_saved_entry_of_neither_row_count_is_refused_by_name(fill, rows, expected) -> None:
    source = TensorDictStorage(8)
    source.extend(_batch(0, fill))
    state = source.state_dict()
    state["data"]["obs"] = torch.zeros(rows, 3)
    target = TensorDictStorage(8)
    target.extend(_batch(10, 1))
    assert target.state_mismatch(state) == expected
    with pytest.raises(ValueError) as err:
        target.load_state_dict(state)
    assert str(err.value) == f"state_dict does not fit this storage: {expected}" and "\n" not in str(err.value)
    assert (target.cursor, len(target), target.data["x"][0].item()) == (1, 1, 10)
    state["data"] = {}
    with pytest.raises(ValueError, match=f"storage state holds no data, but size {min(fill, 8)}"):
        target.load_state_dict(state)


def test_a_host_index_goes_to_the_storage_device_once() -> None:
    """Gathering with a host index from a storage on another device (``meta`` here) sends the index
    there once, not once per entry (each copy to an accelerator waits for it), and indexes no stored
    entry with a host index."""
    storage = TensorDictStorage(6, device="meta")
    storage.extend(_batch(0, 4))
    with DeviceWatch() as watch:
        out = storage.gather(torch.tensor([[3, 0], [1, 1]]))
    assert watch.copied == [(2, 2)]
    assert out.batch_size == (2, 2) and out["obs"].shape == (2, 2, 3) and out["next", "done"].device.type == "meta"
