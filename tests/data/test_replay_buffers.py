from __future__ import annotations

import io
import math

import pytest
import torch
from cuda_marks import DEVICES
from tensordict import TensorDict, TensorDictBase

from rlkit.data.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer



def _transitions(start: int, n: int) -> TensorDict:
    frame = torch.arange(start, start + n)
    return TensorDict(
        {
            "frame": frame,
            "observation": frame.float().unsqueeze(-1).repeat(1, 3),
            "action": (frame % 2),
            "next": {"reward": frame.float().unsqueeze(-1), "done": torch.zeros(n, 1, dtype=torch.bool)},
        },
        batch_size=[n],
    )


def _assert_td_equal(a: TensorDictBase, b: TensorDictBase) -> None:
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    for key in a.keys(True, True):
        assert torch.equal(a.get(key), b.get(key)), key


def _assert_batch_matches_storage(rb: ReplayBuffer, batch: TensorDictBase) -> None:
    stored = rb.storage.data[batch["index"]]
    _assert_td_equal(batch.exclude("index", "priority_weight"), stored)


def _seeded(cls: type, capacity: int, seed: int = 0, **kwargs) -> ReplayBuffer:
    return cls(capacity, generator=torch.Generator().manual_seed(seed), **kwargs)


# ----------------------------------------------------------------------------- uniform buffer


@pytest.mark.parametrize("device", DEVICES)
def test_wrap_around_contents_after_overfill(device: str) -> None:
    rb = ReplayBuffer(5, device=device)
    rb.extend(_transitions(0, 4))
    rb.extend(_transitions(4, 3))
    assert len(rb) == 5
    assert rb.storage.data["frame"].tolist() == [5, 6, 2, 3, 4]
    assert rb.storage.data["next", "reward"].squeeze(-1).tolist() == [5.0, 6.0, 2.0, 3.0, 4.0]
    assert rb.add(_transitions(7, 1)[0]) == 2
    assert rb.storage.data["frame"].tolist() == [5, 6, 7, 3, 4]
    batch = rb.sample(16)
    assert batch.batch_size == torch.Size([16])
    assert batch["index"].device.type == device and batch["observation"].device.type == device
    _assert_batch_matches_storage(rb, batch)


def test_extend_with_more_than_capacity_keeps_the_last_items() -> None:
    rb = ReplayBuffer(4)
    rb.extend(_transitions(0, 1))
    rb.extend(_transitions(1, 10))
    assert sorted(rb.storage.data["frame"].tolist()) == [7, 8, 9, 10]
    assert rb.storage.data["frame"].tolist() == [8, 9, 10, 7]  # as if written one at a time from slot 1


def test_uniform_sampling_frequencies() -> None:
    rb = _seeded(ReplayBuffer, 100)
    rb.extend(_transitions(0, 130))  # wrapped: every slot holds data
    n = 200_000
    batch = rb.sample(n)
    counts = torch.bincount(batch["index"], minlength=100).double()
    p = 1 / 100
    sigma = math.sqrt(n * p * (1 - p))
    assert ((counts - n * p).abs() < 5 * sigma).all()
    assert torch.equal(batch["frame"], rb.storage.data["frame"][batch["index"]])


def test_partially_filled_buffer_only_samples_written_slots() -> None:
    rb = _seeded(ReplayBuffer, 50)
    rb.extend(_transitions(0, 7))
    idx = rb.sample(5000)["index"]
    assert set(idx.tolist()) == set(range(7))


def test_sampling_uses_the_buffer_generator_only() -> None:
    a, b = _seeded(ReplayBuffer, 20, seed=3), _seeded(ReplayBuffer, 20, seed=3)
    a.extend(_transitions(0, 20))
    b.extend(_transitions(0, 20))
    first = a.sample(10)
    torch.manual_seed(123)  # the global RNG plays no part
    torch.rand(5)
    _assert_td_equal(first, b.sample(10))
    a.seed(7)
    again = a.sample(10)
    a.seed(7)
    _assert_td_equal(again, a.sample(10))


def test_default_generator_is_seeded_from_the_global_rng() -> None:
    torch.manual_seed(11)
    a = ReplayBuffer(20)
    torch.manual_seed(11)
    b = ReplayBuffer(20)
    a.extend(_transitions(0, 20))
    b.extend(_transitions(0, 20))
    assert torch.equal(a.sample(30)["index"], b.sample(30)["index"])


def _round_trip_through_file(rb: ReplayBuffer, fresh: ReplayBuffer) -> ReplayBuffer:
    buffer = io.BytesIO()
    torch.save(rb.state_dict(), buffer)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    return fresh


def test_state_dict_round_trip_is_exact() -> None:
    rb = _seeded(ReplayBuffer, 16, seed=1)
    rb.extend(_transitions(0, 21))
    rb.sample(5)
    loaded = _round_trip_through_file(rb, _seeded(ReplayBuffer, 16, seed=99))
    assert len(loaded) == 16 and loaded.storage.cursor == rb.storage.cursor == 5
    for _ in range(3):
        _assert_td_equal(rb.sample(8), loaded.sample(8))
    rb.extend(_transitions(100, 3))
    loaded.extend(_transitions(100, 3))
    _assert_td_equal(rb.storage.data, loaded.storage.data)
    _assert_td_equal(rb.sample(8), loaded.sample(8))


def test_state_dict_of_an_empty_buffer_round_trips() -> None:
    loaded = _round_trip_through_file(ReplayBuffer(4), _seeded(ReplayBuffer, 4))
    assert len(loaded) == 0
    loaded.extend(_transitions(0, 2))
    assert len(loaded) == 2


@pytest.mark.parametrize("cls", [ReplayBuffer, PrioritizedReplayBuffer])
def test_keys_store_only_the_named_entries_and_sample_like_a_full_buffer(cls) -> None:
    keys = ["observation", "action", ("next", "reward")]
    kept, full = _seeded(cls, 16, seed=3, keys=keys), _seeded(cls, 16, seed=3)
    for rb in (kept, full):
        rb.extend(_transitions(0, 21))
    assert sorted(kept.storage.data.keys(True, True), key=str) == sorted(keys, key=str)
    for _ in range(3):
        a, b = kept.sample(8), full.sample(8)
        _assert_td_equal(a, b.select(*keys, "index", *(["priority_weight"] if cls is PrioritizedReplayBuffer else [])))
    with pytest.raises(KeyError, match=r"the storage keeps .* but \['action'\] are missing"):
        kept.extend(_transitions(0, 2).exclude("action"))


def test_a_keyed_buffer_loads_a_full_state_and_continues_exactly() -> None:
    keys = ["frame", ("next", "reward")]
    full = _seeded(ReplayBuffer, 16, seed=1)
    full.extend(_transitions(0, 21))
    loaded = _round_trip_through_file(full, _seeded(ReplayBuffer, 16, seed=99, keys=keys))
    assert sorted(loaded.storage.data.keys(True, True), key=str) == sorted(keys, key=str)
    for _ in range(3):
        _assert_td_equal(full.sample(8).select(*keys, "index"), loaded.sample(8))
    with pytest.raises(ValueError, match=r"load_state_dict: storage holds .*, this run stores \['nope'\] \(\['nope'\] missing\)"):
        ReplayBuffer(16, keys=["nope"]).load_state_dict(full.state_dict())


def test_bad_keys_are_refused() -> None:
    with pytest.raises(ValueError, match=r"keys \['index'\] are reserved"):
        ReplayBuffer(4, keys=["observation", "index"])
    with pytest.raises(ValueError, match="non-empty list of distinct entry names"):
        ReplayBuffer(4, keys=["a", ("a",)])
    with pytest.raises(ValueError, match="non-empty list of distinct entry names"):
        ReplayBuffer(4, keys=[])


def test_uniform_buffer_errors() -> None:
    with pytest.raises(ValueError, match="capacity must be a positive int, got 0"):
        ReplayBuffer(0)
    rb = ReplayBuffer(4)
    with pytest.raises(RuntimeError, match="cannot sample from an empty ReplayBuffer; extend"):
        rb.sample(2)
    rb.extend(_transitions(0, 3))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        rb.sample(0)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 2.0"):
        rb.sample(2.0)
    with pytest.raises(ValueError, match="key 'index' is reserved"):
        rb.extend(_transitions(0, 2).set("index", torch.zeros(2)))
    with pytest.raises(ValueError, match=r"add\(\) takes one transition with batch_size \[\], got \[2\]"):
        rb.add(_transitions(0, 2))
    with pytest.raises(ValueError, match=r"got batch_size \[1, 2\]"):
        rb.extend(_transitions(0, 2).unsqueeze(0))
    with pytest.raises(ValueError, match=r"entry 'observation' has per-item shape \[4\], the storage holds"):
        rb.extend(_transitions(0, 2).set("observation", torch.zeros(2, 4)))
    with pytest.raises(KeyError, match="ReplayBuffer state_dict lacks 'generator'"):
        rb.load_state_dict({"storage": rb.state_dict()["storage"]})


# ----------------------------------------------------------------------------- slices


def _collect(
    num_envs: int, steps_per_env: int, batches: int, seed: int, step_count: bool = True
) -> list[TensorDict]:
    """Env-major collector batches: per env a contiguous block, episodes of random length end with done.
    ``"frame"`` counts the stored items, ``"env"`` and ``"t"`` say whose stream and which step of it."""
    gen = torch.Generator().manual_seed(seed)
    traj = list(range(num_envs))
    step = [0] * num_envs
    next_traj, frame, out = num_envs, 0, []
    for batch in range(batches):
        rows = []
        for env in range(num_envs):
            for i in range(steps_per_env):
                done = bool(torch.rand((), generator=gen) < 0.2)
                rows.append((frame, traj[env], step[env], done, env, batch * steps_per_env + i))
                frame += 1
                step[env] += 1
                if done:
                    traj[env], step[env], next_traj = next_traj, 0, next_traj + 1
        cols = list(zip(*rows))
        td = TensorDict(
            {
                "frame": torch.tensor(cols[0]),
                "traj_id": torch.tensor(cols[1]),
                "env": torch.tensor(cols[4]),
                "t": torch.tensor(cols[5]),
                "next": {"done": torch.tensor(cols[3]).unsqueeze(-1)},
            },
            batch_size=[len(rows)],
        )
        if step_count:
            td["step_count"] = torch.tensor(cols[2]).unsqueeze(-1)
        out.append(td)
    return out


def _reference_starts(rb: ReplayBuffer, slice_len: int) -> set[int]:
    """Frames at which a valid slice starts, by a plain loop over each env's stored steps in time order."""
    data = rb.storage.data
    rows = sorted((int(data["env"][s]), int(data["t"][s]), int(data["frame"][s]), int(data["traj_id"][s]),
                   bool(data["next", "done"][s]), int(data["step_count"][s]) if "step_count" in data.keys() else 0)
                  for s in range(len(rb)))
    starts = set()
    for k in range(len(rows) - slice_len + 1):
        ok = all(
            rows[j + 1][0] == rows[j][0]  # the same env's stream,
            and rows[j + 1][1] == rows[j][1] + 1  # its next step (none overwritten between),
            and rows[j + 1][3] == rows[j][3]  # the same episode,
            and not rows[j][4]
            and rows[j + 1][5] == rows[j][5] + ("step_count" in data.keys())
            for j in range(k, k + slice_len - 1)
        )
        if ok:
            starts.add(rows[k][2])
    return starts


def _check_slices(batch: TensorDictBase, slice_len: int) -> None:
    traj, done = batch["traj_id"], batch["next", "done"].squeeze(-1)
    assert batch.batch_size[1] == slice_len
    assert (batch["env"] == batch["env"][:, :1]).all()
    assert (batch["t"][:, 1:] == batch["t"][:, :-1] + 1).all()  # consecutive steps of one env's stream
    assert (traj == traj[:, :1]).all()
    assert not done[:, :-1].any()  # only the last step may be a done step
    if "step_count" in batch.keys():
        step = batch["step_count"].squeeze(-1)
        assert (step[:, 1:] == step[:, :-1] + 1).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("step_count", [True, False])
def test_slices_respect_episodes_with_interleaved_envs_and_wrap_around(
    device: str, step_count: bool
) -> None:
    rb = ReplayBuffer(50, device=device, generator=torch.Generator().manual_seed(0))
    for td in _collect(num_envs=3, steps_per_env=6, batches=5, seed=1, step_count=step_count):
        rb.extend(td)
    assert rb.storage.cursor == 90 % 50
    batch = rb.sample_slices(3000, 4)
    assert batch.batch_size == torch.Size([3000, 4])
    assert batch["index"].shape == (3000, 4) and batch["index"].device.type == device
    _assert_batch_matches_storage(rb, batch)
    _check_slices(batch, 4)
    assert (batch["frame"][:, 1:] != batch["frame"][:, :-1] + 1).any()  # some run on into the env's next block
    expected = _reference_starts(rb, 4)
    assert 5 < len(expected) < 50
    assert set(batch["frame"][:, 0].tolist()) == expected


def test_slices_never_cross_from_newest_to_oldest() -> None:
    # One endless episode without step counters: only the write position separates old from new.
    rb = _seeded(ReplayBuffer, 10)
    td = TensorDict({"frame": torch.arange(25), "traj_id": torch.zeros(25, dtype=torch.long)}, [25])
    rb.extend(td)
    batch = rb.sample_slices(2000, 3)
    assert (batch["frame"][:, 1:] == batch["frame"][:, :-1] + 1).all()
    assert set(batch["frame"][:, 0].tolist()) == set(range(15, 23))


def test_pieces_shorter_than_the_slice_are_never_sampled() -> None:
    traj = torch.tensor([0, 0, 1, 1, 1, 1, 1, 2, 3, 3, 3])
    td = TensorDict({"frame": torch.arange(11), "traj_id": traj}, batch_size=[11])
    rb = _seeded(ReplayBuffer, 20)
    rb.extend(td)
    starts = rb.sample_slices(2000, 3)["frame"][:, 0]
    assert set(starts.tolist()) == {2, 3, 4, 8}
    counts = torch.bincount(starts, minlength=11)[[2, 3, 4, 8]].double()
    assert ((counts - 500).abs() < 5 * math.sqrt(2000 * 0.25 * 0.75)).all()  # uniform over valid starts


def test_cached_slice_starts_follow_new_writes() -> None:
    rb = _seeded(ReplayBuffer, 6)

    def write(frames: list[int], traj: list[int]) -> None:
        rb.extend(TensorDict({"frame": torch.tensor(frames), "traj_id": torch.tensor(traj)}, [len(frames)]))

    def starts() -> set[int]:
        return set(rb.sample_slices(300, 2)["frame"][:, 0].tolist())

    write([0, 1, 2], [0, 0, 1])
    assert starts() == {0}
    write([3, 4, 5], [1, 1, 2])
    assert starts() == {0, 2, 3}
    write([6, 7], [2, 2])  # overwrites frames 0 and 1
    assert starts() == {2, 3, 5, 6}
    rb.load_state_dict(_seeded(ReplayBuffer, 6).state_dict())  # loading empties it
    with pytest.raises(RuntimeError, match="empty"):
        rb.sample_slices(2, 2)


def test_time_major_interleaved_envs_give_slices_of_one_env() -> None:
    # Steps stored env 0, env 1, env 0, ...: a slice follows one trajectory through the interleaving.
    rb = _seeded(ReplayBuffer, 20)
    rb.extend(TensorDict({"traj_id": torch.tensor([0, 1] * 5), "frame": torch.arange(10)}, batch_size=[10]))
    frames = rb.sample_slices(500, 3)["frame"]
    assert set(map(tuple, frames.tolist())) == {(0, 2, 4), (2, 4, 6), (4, 6, 8), (1, 3, 5), (3, 5, 7), (5, 7, 9)}


def test_slice_errors() -> None:
    rb = ReplayBuffer(20)
    with pytest.raises(RuntimeError, match="cannot sample from an empty ReplayBuffer"):
        rb.sample_slices(2, 2)
    # Episodes of one step each: no piece of two steps.
    rb.extend(TensorDict({"traj_id": torch.arange(10)}, batch_size=[10]))
    with pytest.raises(ValueError, match="no valid slice of length 2: no stored trajectory piece has 2"):
        rb.sample_slices(4, 2)
    with pytest.raises(ValueError, match="slice_len must be a positive int, got 0"):
        rb.sample_slices(4, 0)
    with pytest.raises(KeyError, match="trajectory id 'episode'"):
        rb.sample_slices(4, 1, traj_key="episode")


# ----------------------------------------------------------------------------- prioritised buffer


def _probabilities(priority: torch.Tensor, alpha: float, eps: float) -> torch.Tensor:
    p = (priority.double() + eps) ** alpha
    return p / p.sum()


def test_prioritized_frequencies_follow_p_alpha() -> None:
    rb = _seeded(PrioritizedReplayBuffer, 100, alpha=0.7)
    rb.extend(_transitions(0, 100))
    priority = (torch.arange(100) % 7).double() + 0.5
    rb.update_priority(torch.arange(100), priority)
    expected = _probabilities(priority, 0.7, rb.eps)
    counts = torch.zeros(100, dtype=torch.float64)
    for _ in range(200):
        batch = rb.sample(1000)
        counts += torch.bincount(batch["index"], minlength=100)
    n = 200_000
    sigma = (n * expected * (1 - expected)).sqrt()
    assert ((counts - n * expected).abs() < 5 * sigma).all()
    # Stratified: within one batch each item's count is within 2 of its expectation.
    big = torch.bincount(rb.sample(100_000)["index"], minlength=100).double()
    assert ((big - 100_000 * expected).abs() <= 2).all()
    _assert_batch_matches_storage(rb, batch)


@pytest.mark.parametrize("device", DEVICES)
def test_importance_weights_match_the_formula(device: str) -> None:
    gen = torch.Generator().manual_seed(0)
    rb = PrioritizedReplayBuffer(8, alpha=0.5, beta=0.4, device=device, generator=gen)
    rb.extend(_transitions(0, 5))
    priority = [1.0, 4.0, 1e-4, 9.0, 2.0]
    rb.update_priority(torch.arange(5, device=device), torch.tensor(priority, device=device))
    batch = rb.sample(16)
    # The max weight belongs to slot 2, which this batch does not contain: the normaliser is buffer-wide.
    assert 2 not in batch["index"].tolist()
    n, eps = 5, rb.eps
    p = [(q + eps) ** 0.5 for q in priority]
    prob = [x / sum(p) for x in p]
    raw = [(n * pr) ** -0.4 for pr in prob]
    expected = torch.tensor([raw[i] / max(raw) for i in batch["index"].tolist()])
    weight = batch["priority_weight"]
    assert weight.shape == (16, 1) and weight.dtype == torch.float32 and weight.device.type == device
    torch.testing.assert_close(weight.squeeze(-1).cpu(), expected.float(), rtol=1e-6, atol=0)
    assert float(weight.max()) < 0.2


def test_beta_anneals_linearly_per_sample_call() -> None:
    rb = _seeded(
        PrioritizedReplayBuffer, 4, alpha=1.0, beta=0.2, beta_end=1.0, beta_annealing_steps=4, eps=1e-6
    )
    rb.extend(_transitions(0, 2))
    rb.update_priority(torch.tensor([0, 1]), torch.tensor([1.0, 2.0]))
    for expected_beta in [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]:
        assert rb.beta == pytest.approx(expected_beta)
        batch = rb.sample(32)
        weight = batch["priority_weight"].squeeze(-1)
        ratio = (2.0 + 1e-6) / (1.0 + 1e-6)
        want = torch.where(batch["index"] == 1, ratio ** -expected_beta, 1.0).float()
        torch.testing.assert_close(weight, want)
    immediate = _seeded(PrioritizedReplayBuffer, 4, beta=0.3, beta_end=0.9, beta_annealing_steps=0)
    assert immediate.beta == 0.9


def test_new_items_get_the_running_max_priority() -> None:
    rb = _seeded(PrioritizedReplayBuffer, 3, alpha=0.5)
    rb.extend(_transitions(0, 2))
    assert rb.priority(torch.tensor([0, 1])).tolist() == [1.0, 1.0]
    rb.update_priority(torch.tensor([0, 1]), torch.tensor([3.0, 0.5]))
    assert rb.max_priority == pytest.approx(3.0 + 1e-6)
    rb.update_priority(torch.tensor([0]), torch.tensor([0.1]))  # the max never decreases
    rb.extend(_transitions(2, 2))  # slot 2, then wraps onto slot 0
    expected = (3.0 + 1e-6) ** 0.5
    assert rb.priority(torch.tensor([2, 0])).tolist() == pytest.approx([expected, expected])
    assert float(rb.priority(torch.tensor(1))) == pytest.approx((0.5 + 1e-6) ** 0.5)


def test_update_priority_shapes_duplicates_and_tensordict() -> None:
    rb = _seeded(PrioritizedReplayBuffer, 6, alpha=1.0, eps=0.01)
    rb.extend(_transitions(0, 6))
    rb.update_priority(torch.tensor([1, 4, 1]), torch.tensor([[2.0], [3.0], [5.0]]))
    assert rb.priority(torch.tensor([1, 4])).tolist() == pytest.approx([5.01, 3.01])
    batch = rb.sample(10)
    batch["td_error"] = torch.full((10, 1), 0.5, requires_grad=True)
    rb.update_tensordict_priority(batch)
    assert rb.priority(batch["index"]).tolist() == pytest.approx([0.51] * 10)
    custom = _seeded(PrioritizedReplayBuffer, 4, priority_key=("loss", "prio"))
    custom.extend(_transitions(0, 2))
    sample = custom.sample(3)
    sample["loss", "prio"] = torch.zeros(3)
    custom.update_tensordict_priority(sample)
    assert custom.priority(sample["index"]).tolist() == pytest.approx([(1e-6) ** 0.6] * 3)
    rb.update_priority(torch.tensor([], dtype=torch.long), torch.tensor([]))  # no-op


def test_prioritized_slices_are_uniform_and_unweighted() -> None:
    rb = _seeded(PrioritizedReplayBuffer, 50)
    for td in _collect(num_envs=2, steps_per_env=8, batches=2, seed=0):
        rb.extend(td)
    batch = rb.sample_slices(100, 3)
    _check_slices(batch, 3)
    assert "priority_weight" not in batch.keys()
    batch["td_error"] = torch.ones(100, 3, 1)
    rb.update_tensordict_priority(batch)
    expected = torch.full((100, 3), (1 + 1e-6) ** 0.6, dtype=torch.float64)
    torch.testing.assert_close(rb.priority(batch["index"]), expected)


def test_prioritized_state_dict_round_trip_is_exact() -> None:
    rb = _seeded(PrioritizedReplayBuffer, 16, seed=2, alpha=0.8, beta=0.3, beta_annealing_steps=7)
    rb.extend(_transitions(0, 20))
    for _ in range(3):
        batch = rb.sample(6)
        rb.update_priority(batch["index"], batch["frame"].float() / 3)
    fresh = _seeded(PrioritizedReplayBuffer, 16, seed=5)  # default hyperparameters: restored from the state
    loaded = _round_trip_through_file(rb, fresh)
    assert (loaded.alpha, loaded.beta, loaded.max_priority) == (rb.alpha, rb.beta, rb.max_priority)
    for _ in range(3):
        a, b = rb.sample(8), loaded.sample(8)
        _assert_td_equal(a, b)
        rb.update_priority(a["index"], a["frame"].float())
        loaded.update_priority(b["index"], b["frame"].float())
    rb.extend(_transitions(50, 2))
    loaded.extend(_transitions(50, 2))
    _assert_td_equal(rb.sample(8), loaded.sample(8))
    empty = _round_trip_through_file(PrioritizedReplayBuffer(16), _seeded(PrioritizedReplayBuffer, 16))
    assert len(empty) == 0


def test_prioritized_errors() -> None:
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0, got -0.5"):
        PrioritizedReplayBuffer(4, alpha=-0.5)
    with pytest.raises(ValueError, match="beta must be a finite number >= 0, got nan"):
        PrioritizedReplayBuffer(4, beta=float("nan"))
    with pytest.raises(ValueError, match="beta_end must be a finite number >= 0, got -1"):
        PrioritizedReplayBuffer(4, beta_end=-1)
    with pytest.raises(ValueError, match="beta_annealing_steps must be an int >= 0, got 1.5"):
        PrioritizedReplayBuffer(4, beta_annealing_steps=1.5)
    with pytest.raises(ValueError, match="eps must be a finite number > 0, got 0"):
        PrioritizedReplayBuffer(4, eps=0)
    rb = PrioritizedReplayBuffer(4)
    with pytest.raises(RuntimeError, match="cannot sample from an empty PrioritizedReplayBuffer"):
        rb.sample(2)
    with pytest.raises(RuntimeError, match="the PrioritizedReplayBuffer is empty; extend"):
        rb.priority(torch.tensor([0]))
    rb.extend(_transitions(0, 3))
    with pytest.raises(ValueError, match="key 'priority_weight' is reserved"):
        rb.extend(_transitions(0, 1).set("priority_weight", torch.ones(1)))
    with pytest.raises(TypeError, match="index must be an integer tensor, got dtype torch.float32"):
        rb.update_priority(torch.tensor([0.0]), torch.tensor([1.0]))
    with pytest.raises(IndexError, match=r"got min 0, max 3, but only slots \[0, 3\) hold data"):
        rb.update_priority(torch.tensor([0, 3]), torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"priority of shape \[2, 2\] does not match index of shape \[2\]"):
        rb.update_priority(torch.tensor([0, 1]), torch.ones(2, 2))
    match = r"priorities must be finite and >= 0, got \[nan, -1.0\] at positions \[1, 2\]"
    with pytest.raises(ValueError, match=match):
        rb.update_priority(torch.tensor([0, 1, 2]), torch.tensor([1.0, float("nan"), -1.0]))
    batch = rb.sample(2)
    with pytest.raises(KeyError, match="update_tensordict_priority needs 'td_error' in the TensorDict"):
        rb.update_tensordict_priority(batch)
    with pytest.raises(KeyError, match="PrioritizedReplayBuffer state_dict lacks 'prioritized'"):
        rb.load_state_dict(ReplayBuffer(4).state_dict())


@pytest.mark.parametrize("damage", ["layout", "generator", "trees", "alpha", "max_priority"])
def test_a_state_that_does_not_fit_is_refused_before_anything_is_replaced(damage) -> None:
    """Every part is checked before the first is loaded: a bad generator state or prioritised part
    used to fail after the storage had been replaced (and a state of another layout loaded, to fail
    at the next extend)."""
    source = _seeded(PrioritizedReplayBuffer, 8, seed=1)
    source.extend(_transitions(0, 3))
    source.sample(2)
    state = source.state_dict()
    if damage == "layout":
        state["storage"]["data"]["observation"] = torch.zeros(8, 7)
    elif damage == "generator":
        state["generator"] = torch.zeros(5, dtype=torch.uint8)
    elif damage == "trees":
        state["prioritized"]["trees"] = {"sum": {}, "min": {}}
    elif damage == "alpha":
        state["prioritized"]["alpha"] = -3.0
    else:
        state["prioritized"]["max_priority"] = float("nan")
    target = _seeded(PrioritizedReplayBuffer, 8, seed=2)
    target.extend(_transitions(10, 2))
    data, generator, cursor = target.storage.data.clone(), target.state_dict()["generator"].clone(), target.storage.cursor
    assert target.state_mismatch(state) is not None
    with pytest.raises(ValueError, match="PrioritizedReplayBuffer.load_state_dict: "):
        target.load_state_dict(state)
    assert (target.storage.data == data).all() and torch.equal(target.state_dict()["generator"], generator)
    assert (target.storage.cursor, len(target)) == (cursor, 2)
    target.extend(_transitions(20, 1))  # still the buffer it was


def test_checking_a_prioritised_state_leaves_the_global_generator_alone() -> None:
    """The check built a throwaway buffer, which drew from torch's global generator."""
    source = _seeded(PrioritizedReplayBuffer, 8, seed=1)
    source.extend(_transitions(0, 3))
    state = source.state_dict()
    target = _seeded(PrioritizedReplayBuffer, 8, seed=2)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    assert target.state_mismatch(state) is None
    target.load_state_dict(state)
    assert torch.equal(torch.rand(3), expected)


def _prioritised_steps(buffers: list, steps: int, start: int) -> None:
    """The buffers sample, update the sampled priorities and take new items alike (bit for bit)."""
    for step in range(steps):
        samples = [rb.sample(6) for rb in buffers]
        for sample in samples[1:]:
            _assert_td_equal(sample, samples[0])
        for rb, sample in zip(buffers, samples):
            rb.update_priority(sample["index"], sample["frame"].float() / 7 + step)
            rb.extend(_transitions(start + 10 * step, 3))
        for rb in buffers[1:]:
            for mine, theirs in zip(rb._trees(), buffers[0]._trees()):
                assert torch.equal(mine._tree, theirs._tree)
            assert rb.max_priority == buffers[0].max_priority


@pytest.mark.parametrize("filled", [5, 21])  # part of the 16 slots, or full and wrapped
def test_prioritized_state_saves_the_stored_items_priorities_and_resumes_exactly(filled: int) -> None:
    rb = _seeded(PrioritizedReplayBuffer, 16, seed=4, alpha=0.7, beta_annealing_steps=9)
    rb.extend(_transitions(0, filled))
    _prioritised_steps([rb], 1, 100)  # (a priority update and 3 more items)
    state = rb.state_dict()
    items = len(rb)
    for name in ("sum", "min"):
        assert list(state["prioritized"]["trees"][name]) == ["leaves"]
        assert state["prioritized"]["trees"][name]["leaves"].shape == (items,)
    assert state["storage"]["data"]["observation"].shape == (items, 3)
    loaded = _round_trip_through_file(rb, _seeded(PrioritizedReplayBuffer, 16, seed=9))
    for mine, theirs in zip(loaded._trees(), rb._trees()):
        assert torch.equal(mine._tree, theirs._tree)
    _prioritised_steps([rb, loaded], 6, 200)  # past the capacity in both cases


def test_prioritized_checkpoint_size_follows_the_items() -> None:
    rb = _seeded(PrioritizedReplayBuffer, 1 << 16)
    rb.extend(_transitions(0, 10))
    buffer = io.BytesIO()
    torch.save(rb.state_dict(), buffer)
    assert buffer.tell() < 30_000  # the whole trees alone: 2 * 2**17 * 8 bytes = 2 MB


def test_an_old_prioritized_checkpoint_of_whole_trees_and_all_rows_loads_and_resumes_exactly() -> None:
    rb = _seeded(PrioritizedReplayBuffer, 16, seed=4, alpha=0.7)
    rb.extend(_transitions(0, 5))
    _prioritised_steps([rb], 1, 100)
    state = rb.state_dict()
    # As checkpoints saved before: every node of both trees, every row of the storage.
    state["prioritized"]["trees"] = {"sum": rb._trees()[0].state_dict(), "min": rb._trees()[1].state_dict()}
    assert state["prioritized"]["trees"]["sum"]["tree"].shape == (32,)
    state["storage"]["data"] = rb.storage.data.clone().to_dict()
    loaded = _seeded(PrioritizedReplayBuffer, 16, seed=9)
    assert loaded.state_mismatch(state) is None
    loaded.load_state_dict(state)
    _prioritised_steps([rb, loaded], 6, 200)


@pytest.mark.parametrize("filled", [5, 21])
def test_a_prioritized_state_with_leaves_for_other_than_its_items_is_refused(filled: int) -> None:
    rb = _seeded(PrioritizedReplayBuffer, 16, seed=4)
    rb.extend(_transitions(0, filled))
    state = rb.state_dict()
    items = len(rb)
    state["prioritized"]["trees"]["min"] = {"leaves": torch.ones(items - 1, dtype=torch.float64)}
    expected = (f"PrioritizedReplayBuffer.load_state_dict: the prioritised state does not fit: the min tree of "
                f"capacity 16 saves {items - 1} leaves; expected {items} (one per stored item)")
    with pytest.raises(ValueError) as err:
        _seeded(PrioritizedReplayBuffer, 16).load_state_dict(state)
    assert str(err.value) == expected


def test_prioritized_replay_off_the_cpu_never_reads_on_the_host() -> None:
    """Sampling, priority updates and new items on a ``meta`` buffer, whose values cannot be read at
    all: nothing waits for an accelerator's buffer, until its max priority is asked for."""
    rb = PrioritizedReplayBuffer(8, alpha=0.6, device="meta", generator=torch.Generator().manual_seed(0))
    rb.extend(_transitions(0, 5))
    for step in range(3):
        batch = rb.sample(4)
        assert batch["index"].device.type == batch["priority_weight"].device.type == "meta"
        batch["td_error"] = torch.rand(4, 1, device="meta")
        rb.update_tensordict_priority(batch)
        rb.extend(_transitions(5 + 2 * step, 2))  # (the running max, kept on the device, goes to new items)
    with pytest.raises(RuntimeError, match="meta"):
        rb.max_priority  # noqa: B018 (reading it is what fails)


def test_priorities_kept_on_a_device_give_the_samples_and_max_of_priorities_read_at_once(monkeypatch) -> None:
    """The buffer as on an accelerator (every tensor taken as one whose reading waits): the running
    max stays a tensor until asked for, new items get it all the same, and sampling goes on as with
    priorities read at once (new items' ``p^alpha`` worked out by a tensor's pow: the same to rounding)."""
    def run() -> tuple[list[torch.Tensor], PrioritizedReplayBuffer]:
        rb = _seeded(PrioritizedReplayBuffer, 16, seed=3, alpha=0.7)
        rb.extend(_transitions(0, 10))
        samples = []
        for step in range(8):
            batch = rb.sample(6)
            samples += [batch["index"], batch["priority_weight"]]
            rb.update_priority(batch["index"], batch["frame"].float() / 7 + step)
            rb.extend(_transitions(10 + 3 * step, 3))  # (wraps onto older slots)
        return samples, rb

    read, eager = run()
    assert eager._max_pending is None
    for module in ("rlkit.data.sum_tree", "rlkit.data.replay_buffers"):
        monkeypatch.setattr(f"{module}.reading_waits", lambda device: True)
    kept, deferred = run()
    assert deferred._max_pending is not None and deferred._max_pending.dim() == 0
    for a, b in zip(read, kept):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=0)  # (float32 weights; the indices exactly)
    for mine, theirs in zip(deferred._trees(), eager._trees()):
        torch.testing.assert_close(mine._tree, theirs._tree, rtol=1e-13, atol=0)
    assert deferred.state_dict()["prioritized"]["max_priority"] == eager.max_priority
    assert deferred._max_pending is None  # (read for the state: a number again)
