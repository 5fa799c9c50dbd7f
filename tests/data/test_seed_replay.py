"""The multi-seed replay against the seeds' own buffers: the same samples, the same saved states."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from rlkit.data import PrioritizedReplayBuffer, ReplayBuffer
from rlkit.data.seed_replay import PerSeedReplay, SeedStackedReplay, seed_replay

from checkpoint_bytes import through_file  # (tests/data/checkpoint_bytes.py)

LAYOUT = {"observation": ([3], torch.float32), "action": ([], torch.int64), ("next", "reward"): ([1], torch.float32)}


def _buffers(n: int, capacity: int = 7, cls: type = ReplayBuffer, **kwargs) -> list[ReplayBuffer]:
    return [cls(capacity, layout=LAYOUT, generator=torch.Generator().manual_seed(100 + k), **kwargs) for k in range(n)]


def _batch(seed: int, step: int, shape: tuple[int, ...]) -> TensorDict:
    """A collector-like batch of seed ``seed`` whose entries tell which seed and step wrote them."""
    base = seed * 1000 + step * 10 + torch.arange(int(torch.Size(shape).numel())).reshape(shape)
    return TensorDict({"observation": base.float().unsqueeze(-1).repeat(*([1] * len(shape)), 3),
                       "action": base, "next": {"reward": -base.float().unsqueeze(-1)},
                       "ignored": torch.zeros(shape)}, batch_size=list(shape))


@pytest.mark.parametrize("shape", [(3,), (2, 3)])  # one env's steps, or env-major [E, T]
def test_rows_are_the_seeds_own_buffers_through_wraparound(shape: tuple[int, ...]) -> None:
    n = 3
    alone, stacked = _buffers(n), SeedStackedReplay(_buffers(n))
    for step in range(6):  # 18 or 36 items a seed into 7 slots: several wraps
        batches = [_batch(k, step, shape) for k in range(n)]
        stacked.extend(batches)
        for buffer, batch in zip(alone, batches):
            buffer.extend(batch.reshape(-1))
        assert len(stacked) == len(alone[0])
        sample = stacked.sample(5)
        assert sample.batch_size == torch.Size([n, 5])
        for k, buffer in enumerate(alone):
            own = buffer.sample(5)
            for key in ("observation", "action", ("next", "reward"), "index"):
                assert torch.equal(sample[k].get(key), own.get(key)), (step, k, key)


def test_state_dict_is_the_seeds_buffer_states_both_ways() -> None:
    n = 2
    stacked, alone = SeedStackedReplay(_buffers(n)), PerSeedReplay(_buffers(n))
    for step in range(4):
        batches = [_batch(k, step, (3,)) for k in range(n)]
        stacked.extend(batches)
        alone.extend(batches)
    saved = stacked.state_dict()
    for ours, theirs in zip(saved, alone.state_dict()):
        assert ours["storage"]["cursor"] == theirs["storage"]["cursor"] and ours["storage"]["size"] == theirs["storage"]["size"]
        for key in ("observation", "action"):
            assert torch.equal(ours["storage"]["data"][key], theirs["storage"]["data"][key])
        assert torch.equal(ours["generator"], theirs["generator"])
    # A per-seed checkpoint loads into the shared storage and vice versa; sampling continues alike.
    into_stacked, into_alone = SeedStackedReplay(_buffers(n)), PerSeedReplay(_buffers(n))
    into_stacked.load_state_dict(alone.state_dict())
    into_alone.load_state_dict(saved)
    a, b, c = into_stacked.sample(4), into_alone.sample(4), alone.sample(4)
    assert torch.equal(a["observation"], b["observation"]) and torch.equal(a["observation"], c["observation"])
    # The saved state carries the generators' states: sampling goes on as the saver's would.
    again = SeedStackedReplay(_buffers(n))
    again.load_state_dict(saved)
    assert torch.equal(again.sample(4)["observation"], stacked.sample(4)["observation"])


def test_a_saved_state_copies_nothing_and_loads_back() -> None:
    """The seeds' items in a saved state are views of the one storage (a checkpoint needs no second
    copy of the replay, on the device or the host), and ``torch.save`` / ``torch.load`` bring them back."""
    import io

    n, layout = 3, {"observation": ([16], torch.float32)}
    stacked = SeedStackedReplay([ReplayBuffer(100, layout=layout, generator=torch.Generator().manual_seed(k))
                                 for k in range(n)])
    stacked.extend([TensorDict({"observation": torch.randn(100, 16)}, batch_size=[100]) for _ in range(n)])
    saved = stacked.state_dict()
    live = stacked._storage.data["observation"].untyped_storage().data_ptr()
    assert all(s["storage"]["data"]["observation"].untyped_storage().data_ptr() == live for s in saved)
    buffer = io.BytesIO()
    torch.save(saved, buffer)
    buffer.seek(0)
    loaded = SeedStackedReplay([ReplayBuffer(100, layout=layout, generator=torch.Generator()) for _ in range(n)])
    loaded.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(loaded.sample(8)["observation"], stacked.sample(8)["observation"])

def test_empty_state_round_trips_and_mismatches_are_named() -> None:
    stacked = SeedStackedReplay(_buffers(2))
    empty = stacked.state_dict()
    SeedStackedReplay(_buffers(2)).load_state_dict(empty)
    assert "3 seeds" not in (stacked.state_mismatch(empty) or "")
    assert "2 replay buffers, this run has 3 seeds" in (SeedStackedReplay(_buffers(3)).state_mismatch(empty) or "")
    other = SeedStackedReplay(_buffers(2, capacity=9)).state_dict()
    assert "capacity" in (stacked.state_mismatch(other) or "")
    alone = PerSeedReplay(_buffers(2))
    alone.buffers[0].extend(_batch(0, 0, (3,)))  # seeds at different positions: not a lockstep run's
    with pytest.raises(ValueError, match="different positions"):
        stacked.load_state_dict(alone.state_dict())


def test_sampling_errors() -> None:
    stacked = SeedStackedReplay(_buffers(2))
    with pytest.raises(RuntimeError, match="empty"):
        stacked.sample(4)
    stacked.extend([_batch(k, 0, (3,)) for k in range(2)])
    with pytest.raises(ValueError, match="batch_size"):
        stacked.sample(0)
    with pytest.raises(ValueError, match="2 seeds"):
        stacked.extend([_batch(0, 1, (3,))])
    with pytest.raises(ValueError, match="slices"):
        stacked.sample_slices(2, 2)


def test_seed_replay_shares_a_storage_only_where_it_can() -> None:
    assert isinstance(seed_replay(_buffers(2)), SeedStackedReplay)
    assert isinstance(seed_replay(_buffers(2), slices=True), PerSeedReplay)
    prioritized = _buffers(2, cls=PrioritizedReplayBuffer, alpha=0.6, beta=0.4)
    assert isinstance(seed_replay(prioritized), PerSeedReplay)
    unlaid = [ReplayBuffer(7) for _ in range(2)]
    assert isinstance(seed_replay(unlaid), PerSeedReplay)
    mixed = _buffers(1) + _buffers(1, capacity=9)
    assert "differs from seed 0's" in (SeedStackedReplay.unstackable(mixed) or "")
    with pytest.raises(ValueError, match="SeedStackedReplay: seed 1's buffer"):
        SeedStackedReplay(mixed)


def test_loading_takes_the_stacked_rows_without_another_copy(monkeypatch):
    """Resuming holds the checkpoint and one stacked copy of the replay, not two copies."""
    from rlkit.data.storage import TensorDictStorage

    stacked = SeedStackedReplay(_buffers(2))
    stacked.extend([_batch(k, 0, (3,)) for k in range(2)])
    copies = []
    original = TensorDictStorage.load_state_dict

    def spy(self, state, *, copy=True):
        copies.append(copy)
        return original(self, state, copy=copy)

    monkeypatch.setattr(TensorDictStorage, "load_state_dict", spy)
    loaded = SeedStackedReplay(_buffers(2))
    loaded.load_state_dict(stacked.state_dict())
    assert copies == [False]
    assert torch.equal(loaded.sample(4)["observation"], stacked.sample(4)["observation"])


def _continue_alike(replays: list, n: int, first_step: int) -> None:
    """The replays take the same batches (several wraps of 7 slots) and sample alike."""
    for step in range(first_step, first_step + 5):
        batches = [_batch(k, step, (3,)) for k in range(n)]
        for replay in replays:
            replay.extend(batches)
        samples = [replay.sample(5) for replay in replays]
        for sample in samples[1:]:
            for key in ("observation", "action", ("next", "reward"), "index"):
                assert torch.equal(sample.get(key), samples[0].get(key)), (step, key)


def test_a_partly_filled_multi_seed_replay_saves_the_filled_rows_once_and_resumes_exactly() -> None:
    n = 3
    stacked, alone = SeedStackedReplay(_buffers(n, capacity=10)), PerSeedReplay(_buffers(n, capacity=10))
    for step in range(2):
        batches = [_batch(k, step, (3,)) for k in range(n)]
        stacked.extend(batches)
        alone.extend(batches)
    saved = stacked.state_dict()
    theirs = alone.state_dict()
    for ours, own in zip(saved, theirs):
        for key in ("observation", "action"):
            assert ours["storage"]["data"][key].shape[0] == 6
            assert torch.equal(ours["storage"]["data"][key], own["storage"]["data"][key])
    # The seeds' rows are views of one copy of the 6 * 3 filled rows, written once by torch.save.
    observations = [s["storage"]["data"]["observation"] for s in saved]
    assert len({o.untyped_storage().data_ptr() for o in observations}) == 1
    assert observations[0].untyped_storage().nbytes() == 6 * n * 3 * 4
    loaded = through_file(saved)[0]
    into_stacked, from_alone = SeedStackedReplay(_buffers(n, capacity=10)), SeedStackedReplay(_buffers(n, capacity=10))
    into_alone = PerSeedReplay(_buffers(n, capacity=10))
    into_stacked.load_state_dict(loaded)
    into_alone.load_state_dict(loaded)
    from_alone.load_state_dict(through_file(theirs)[0])
    assert torch.equal(into_stacked._storage.data["observation"], stacked._storage.data["observation"])
    _continue_alike([stacked, alone, into_stacked, into_alone, from_alone], n, 2)  # 21 items a seed: wrapped
    assert torch.equal(into_stacked._storage.data["observation"], stacked._storage.data["observation"])
    # What the MinAtar checkpoints showed: the size follows the items, not the seeds' capacity.
    large = SeedStackedReplay(_buffers(n, capacity=10_000))
    large.extend([_batch(k, 0, (3,)) for k in range(n)])
    assert through_file(large.state_dict())[1] < 20_000  # all rows: 3 seeds * 10000 * 24 bytes = 720 kB


def test_a_full_multi_seed_replay_resumes_exactly() -> None:
    n = 2
    stacked = SeedStackedReplay(_buffers(n))
    for step in range(4):  # 12 items a seed into 7 slots
        stacked.extend([_batch(k, step, (3,)) for k in range(n)])
    saved = stacked.state_dict()
    assert saved[0]["storage"]["data"]["observation"].shape[0] == 7
    loaded = SeedStackedReplay(_buffers(n))
    loaded.load_state_dict(through_file(saved)[0])
    _continue_alike([stacked, loaded], n, 4)


def test_an_old_multi_seed_checkpoint_of_all_capacity_rows_loads_and_a_corrupt_one_is_refused() -> None:
    n = 2
    stacked = SeedStackedReplay(_buffers(n))
    stacked.extend([_batch(k, 0, (3,)) for k in range(n)])
    saved = stacked.state_dict()

    def padded(states: list, rows: int) -> list:
        """The states with every entry grown to ``rows`` rows of garbage (how checkpoints saved all rows)."""
        out = []
        for state in states:
            data = TensorDict(state["storage"]["data"], batch_size=[3])
            grown = TensorDict({}, batch_size=[rows])
            for key, value in data.items(True, True):
                grown.set(key, torch.cat([value, torch.full((rows - 3, *value.shape[1:]), 9).to(value.dtype)]))
            out.append({**state, "storage": {**state["storage"], "data": grown.to_dict()}})
        return out

    old = SeedStackedReplay(_buffers(n))
    old.load_state_dict(padded(saved, 7))
    _continue_alike([stacked, old], n, 1)
    corrupt = padded(saved, 5)
    expected = ("stored entry 'observation' holds 5 rows; a storage of capacity 7 holding 3 items saves 3 (its "
                "filled rows) or 7 (all rows, as saved before)")
    assert SeedStackedReplay(_buffers(n)).state_mismatch(corrupt) == expected
    with pytest.raises(ValueError, match=r"^stored entry 'observation' holds 5 rows; .* saves 3 \(its filled rows\) or 7"):
        SeedStackedReplay(_buffers(n)).load_state_dict(corrupt)
