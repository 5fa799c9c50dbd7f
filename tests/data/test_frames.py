"""FrameStorage against a naive buffer that stores every stack: random episodes of several envs with
boundaries, interleaved env-major batches, wrap-around, both padding kinds, uniform and prioritised
samples, n-step slices, and an exact state round trip."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from cuda_marks import DEVICES, needs_cuda
from tensordict import TensorDict

from rlkit import keys
from rlkit.data import PrioritizedReplayBuffer, ReplayBuffer
from rlkit.data.frames import FrameStorage

from checkpoint_bytes import through_file  # (tests/data/checkpoint_bytes.py)
from device_copies import DeviceWatch  # (tests/data/device_copies.py)

STACK, H, W = 4, 3, 2
KEYS = [keys.ACTION, keys.TRAJ_ID, keys.STEP_COUNT, keys.next_(keys.DONE), keys.next_(keys.REWARD)]


def collect(num_envs: int, steps_per_batch: int, batches: int, seed: int, padding: str):
    """Env-major batches ``[num_envs * T]`` of a fake frame-stacking env: each step's frame is unique
    (a counter), episodes end at random, a new episode's stack is padded (``reset``: the first frame
    repeated; ``zero``: zeros, as stable-baselines3's VecFrameStack; ``noops``: other frames, as
    after no-op starts)."""
    rng = np.random.default_rng(seed)
    counter = [1]
    next_traj = [0]

    def frame() -> torch.Tensor:
        counter[0] += 1
        return torch.full((H, W), counter[0] % 251, dtype=torch.uint8) + torch.arange(H * W, dtype=torch.uint8).reshape(H, W)

    def new_episode():
        if padding == "noops":  # frames of steps before the episode's first (Atari's no-op starts)
            older = [frame() for _ in range(STACK - 1)]
            first = frame()
        else:
            first = frame()
            older = [first if padding == "reset" else torch.zeros(H, W, dtype=torch.uint8)] * (STACK - 1)
        next_traj[0] += 1
        return {"stack": torch.stack([*older, first]), "traj": next_traj[0] - 1, "t": 0}

    envs = [new_episode() for _ in range(num_envs)]
    out = []
    for _ in range(batches):
        rows = []
        for env in envs:
            for _ in range(steps_per_batch):
                obs = env["stack"]
                nxt = torch.cat([obs[1:], frame()[None]])
                done = bool(rng.random() < 0.15)
                rows.append({"obs": obs, "next": nxt, "done": done, "traj": env["traj"], "t": env["t"],
                             "action": int(rng.integers(4)), "reward": float(rng.normal())})
                if done:
                    env.update(new_episode())
                else:
                    env["stack"], env["t"] = nxt, env["t"] + 1
        out.append(TensorDict({
            keys.OBSERVATION: torch.stack([r["obs"] for r in rows]),
            keys.ACTION: torch.tensor([r["action"] for r in rows]),
            keys.TRAJ_ID: torch.tensor([r["traj"] for r in rows]),
            keys.STEP_COUNT: torch.tensor([r["t"] for r in rows]),
            keys.NEXT: {keys.OBSERVATION: torch.stack([r["next"] for r in rows]),
                        keys.DONE: torch.tensor([[r["done"]] for r in rows]),
                        keys.REWARD: torch.tensor([[r["reward"]] for r in rows])},
        }, batch_size=[len(rows)]))
    return out


def buffers(capacity: int, prioritized: bool = False):
    frame_storage = FrameStorage(capacity, stack=STACK, frame_shape=(H, W), keys=KEYS)
    cls = PrioritizedReplayBuffer if prioritized else ReplayBuffer
    frames = cls(capacity, storage=frame_storage, generator=torch.Generator().manual_seed(3))
    naive = cls(capacity, generator=torch.Generator().manual_seed(3))
    return frames, naive


def assert_same(a: TensorDict, b: TensorDict) -> None:
    assert set(a.keys(True, True)) == set(b.keys(True, True))
    for key in b.keys(True, True):
        assert torch.equal(a.get(key), b.get(key)), key


def filled(capacity: int, first: int, *, seed: int, padding: str) -> tuple[ReplayBuffer, list, dict]:
    """A frame buffer fed the first ``first`` of 30 collected batches, those batches, and its state."""
    frames, _ = buffers(capacity=capacity)
    batches = collect(2, 4, batches=30, seed=seed, padding=padding)
    for batch in batches[:first]:
        frames.extend(batch)
    return frames, batches, frames.state_dict()


def continues_alike(frames: ReplayBuffer, state: dict, batches: list) -> None:
    """A frame buffer restored from ``state`` (saved by ``frames``) samples as ``frames`` does while
    both take ``batches``."""
    capacity = frames._storage.capacity
    restored = ReplayBuffer(capacity, storage=FrameStorage(capacity, stack=STACK, frame_shape=(H, W), keys=KEYS))
    restored.load_state_dict(state)
    for batch in batches:
        frames.extend(batch)
        restored.extend(batch)
        assert_same(frames.sample(8), restored.sample(8))


@pytest.mark.parametrize("padding", ["reset", "zero", "noops"])
@pytest.mark.parametrize(("num_envs", "steps"), [(1, 1), (1, 7), (3, 5)])
def test_samples_equal_a_naive_stacked_buffer(padding, num_envs, steps):
    frames, naive = buffers(capacity=60)
    for batch in collect(num_envs, steps, batches=40, seed=num_envs * 10 + steps, padding=padding):
        frames.extend(batch)
        naive.extend(batch)
        assert len(frames) == len(naive)
        assert_same(frames.sample(16), naive.sample(16))
        assert_same(frames.storage.gather(torch.arange(len(naive))), naive.storage.gather(torch.arange(len(naive))))


def test_slices_for_n_step_targets_equal_the_naive_buffers():
    frames, naive = buffers(capacity=80)
    for batch in collect(2, 10, batches=20, seed=5, padding="reset"):
        frames.extend(batch)
        naive.extend(batch)
    a, b = frames.sample_slices(6, 4), naive.sample_slices(6, 4)
    assert a.batch_size == (6, 4)
    assert_same(a, b)


def test_prioritised_sampling_works_on_frames():
    frames, naive = buffers(capacity=50, prioritized=True)
    for batch in collect(2, 3, batches=30, seed=9, padding="reset"):
        frames.extend(batch)
        naive.extend(batch)
        a, b = frames.sample(8), naive.sample(8)
        assert_same(a, b)
        for buffer, sample in ((frames, a), (naive, b)):
            sample[keys.TD_ERROR] = sample[keys.next_(keys.REWARD)].abs()
            buffer.update_tensordict_priority(sample)


def test_state_round_trip_continues_exactly():
    frames, batches, state = filled(40, 15, seed=2, padding="reset")
    continues_alike(frames, {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()},
                    batches[15:])


def test_a_checkpoint_holds_the_written_frames_only_and_loads_with_the_same_samples(tmp_path):
    frames, batches, state = filled(400, 3, seed=3, padding="zero")  # 24 of 400 transitions
    saved = state["storage"]["frames"]["frames"]
    # Its own memory: torch.save writes a tensor's whole storage, which for a view is the whole ring.
    assert saved.untyped_storage().nbytes() == saved.numel() == 24 * H * W
    path = tmp_path / "buffer.pt"
    torch.save(state, path)
    continues_alike(frames, torch.load(path, weights_only=True), batches[3:])


@pytest.mark.parametrize("padding", ["reset", "zero", "noops"])
def test_an_episode_start_keeps_frames_only_where_its_padding_cannot_be_rebuilt(padding):
    frames, _ = buffers(capacity=400)
    for batch in collect(2, 4, batches=10, seed=4, padding=padding):
        frames.extend(batch)
    storage = frames._storage
    starts = len(storage._heads) + len(storage._padded)
    assert starts > 2  # episodes started
    assert len(storage._heads) == (starts if padding == "noops" else 0)
    assert all(head.shape == (STACK - 1, H, W) for head in storage._heads.values())


def test_a_checkpoint_from_before_the_padding_codes_loads_with_the_same_samples():
    frames, batches, state = filled(40, 15, seed=5, padding="reset")
    old = state["storage"]["frames"]
    ring = frames._storage._frames
    # The earlier format: every episode start's whole stack under "heads", no "padded".
    heads = {int(w): torch.stack([ring[int(w) % frames._storage.ring]] * STACK)
             for w in old.pop("padded")["write"].tolist()}
    old["heads"] = {"write": torch.tensor(list(heads), dtype=torch.int64), "value": torch.stack(list(heads.values()))}
    continues_alike(frames, {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in state.items()},
                    batches[15:])


def test_an_empty_first_batch_writes_nothing_and_later_batches_fit():
    frames, naive = buffers(capacity=40)
    batches = collect(1, 4, batches=5, seed=6, padding="zero")
    assert frames.extend(batches[0][:0]).numel() == 0 and len(frames) == 0
    for batch in batches:
        frames.extend(batch)
        naive.extend(batch)
    assert_same(frames._storage.gather(torch.arange(len(frames))), naive._storage.gather(torch.arange(len(naive))))


def test_memory_holds_each_frame_once():
    storage = FrameStorage(1000, stack=4, frame_shape=(84, 84), keys=KEYS,
                           layout={k: ((), torch.int64) if k in (keys.ACTION, keys.TRAJ_ID, keys.STEP_COUNT)
                                   else ((1,), torch.bool if k == keys.next_(keys.DONE) else torch.float32)
                                   for k in KEYS})
    per_item = storage.item_nbytes
    assert 84 * 84 <= per_item < 84 * 84 + 64  # one frame, links and the small entries; not 8 frames


def resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the resident set from /proc")
def test_the_frame_ring_takes_memory_as_it_is_written():
    """A short run with a full-size buffer (Atari's 1M frames: 6.6 GiB) takes the memory of the
    frames it writes, not of the whole ring: here a 2.8 GB ring after one batch of 4 frames."""
    storage = FrameStorage(400_000, stack=4, frame_shape=(84, 84), keys=[keys.TRAJ_ID, keys.next_(keys.DONE)])
    obs = torch.randint(0, 255, (4, 4, 84, 84), dtype=torch.uint8)
    batch = TensorDict({keys.OBSERVATION: obs, keys.TRAJ_ID: torch.zeros(4, dtype=torch.int64),
                        keys.NEXT: {keys.OBSERVATION: obs, keys.DONE: torch.zeros(4, 1, dtype=torch.bool)}}, [4])
    before = resident_bytes()
    storage.extend(batch)
    assert storage._frames is not None and storage._frames.numel() >= 400_000 * 84 * 84
    assert resident_bytes() - before < 200 * 2**20  # (the two links arrays, 6.4 MB, and the first frames)
    assert torch.equal(storage.gather(torch.tensor([3]))[keys.OBSERVATION][0, -1], obs[3, -1])


def test_bad_batches_and_settings_are_refused():
    with pytest.raises(ValueError, match="needs \\[\\('next', 'done'\\)\\] among its stored keys"):
        FrameStorage(10, stack=4, frame_shape=(H, W), keys=[keys.TRAJ_ID])
    storage = FrameStorage(10, stack=2, frame_shape=(H, W), keys=KEYS)
    bad = collect(1, 2, 1, 0, "reset")[0]
    with pytest.raises(ValueError, match=r"entry 'observation' must hold stacks of shape \(2, 3, 2\)"):
        storage.extend(bad)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"slack": -3}, r"slack must be an int >= stack \(2: room for the stacks of a batch of one\), or None"),
    ({"slack": 0}, r"slack must be an int >= stack"),  # (accepted, then no batch could be written)
    ({"frame_shape": (-1, 2)}, r"frame_shape must hold positive ints \(one frame's shape\), got \(-1, 2\)"),
    ({"stack": True}, r"stack must be a positive int, got True"),
])
def test_bad_sizes_are_refused_when_built(kwargs, message):
    """A negative slack failed only at the first extend, with a message about something else."""
    with pytest.raises(ValueError, match=message):
        FrameStorage(10, **{"stack": 2, "frame_shape": (2, 2), **kwargs})



def test_sizes_of_any_integer_kind_are_taken_and_a_batch_beyond_a_given_slack_is_named():
    storage = FrameStorage(10, stack=np.int64(2), frame_shape=np.array([2, 2]), slack=torch.tensor(4))
    assert (storage.stack, tuple(storage.frame_shape), storage.slack) == (2, (2, 2), 4)
    frames = torch.zeros(3, 2, 2, 2, dtype=torch.uint8)
    batch = TensorDict({"observation": frames, "traj_id": torch.zeros(3, dtype=torch.int64),
                        "next": {"observation": frames, "done": torch.zeros(3, 1, dtype=torch.bool)}}, [3])
    with pytest.raises(ValueError, match=r"larger than this FrameStorage's slack allows \(4 frames, given: room for "
                                         r"batches of up to 2\); give slack= of at least stack x the largest batch \(6 here\)"):
        storage.extend(batch)


def test_a_checkpoint_holds_the_written_positions_episode_links_only():
    frames, batches, state = filled(400, 3, seed=3, padding="zero")  # 24 of 400 transitions
    saved = state["storage"]["frames"]
    for name in ("prev", "succ"):
        assert saved[name].shape == (24,) and saved[name].untyped_storage().nbytes() == 24 * 8
    assert state["storage"]["data"][keys.TRAJ_ID].shape == (24,)
    continues_alike(frames, through_file(state)[0], batches[3:])


@pytest.mark.parametrize("device", DEVICES)
def test_a_filling_ring_is_saved_as_host_copies_that_later_writes_do_not_reach(device):
    """While the ring fills up, its written frames and episode links and the storage's filled rows are
    saved as copies on the host, where ``torch.save`` puts them anyway (copies on a CUDA ring's
    device doubled its GPU memory at each checkpoint), in memory of their own: writes to the storage
    after ``state_dict()`` leave the saved state as it was, and it loads back onto the device."""
    def built() -> FrameStorage:
        return FrameStorage(400, stack=STACK, frame_shape=(H, W), keys=KEYS, device=device)

    storage, reference = built(), FrameStorage(400, stack=STACK, frame_shape=(H, W), keys=KEYS)
    batches = collect(2, 4, batches=6, seed=11, padding="noops")
    for batch in batches[:3]:  # 24 of 400 transitions
        storage.extend(batch)
        reference.extend(batch)
    state = storage.state_dict()
    ring = state["frames"]
    rows = TensorDict(state["data"], batch_size=[24])
    saved = {"frames": ring["frames"], "prev": ring["prev"], "succ": ring["succ"],
             **{str(key): rows.get(key) for key in KEYS}}
    assert all(value.device == torch.device("cpu") for value in saved.values())
    expected = {name: value.clone() for name, value in saved.items()}
    assert storage._frames is not None
    storage._frames.fill_(250)
    storage._prev.fill_(-1)
    storage._succ.fill_(-1)
    for key in KEYS:
        storage.data.get(key).zero_()
    assert all(torch.equal(saved[name], expected[name]) for name in saved)
    restored = built()
    restored.load_state_dict(state)
    assert restored._frames is not None and restored._frames.device.type == torch.device(device).type
    for batch in batches[3:]:
        restored.extend(batch)
        reference.extend(batch)
    index = torch.arange(len(reference))
    assert_same(restored.gather(index).cpu(), reference.gather(index))


@needs_cuda
def test_a_cuda_ring_is_saved_and_loaded_without_a_second_copy_of_its_frames_on_the_gpu():
    """``state_dict()`` copies a filling CUDA ring's written frames straight to the host and
    ``load_state_dict()`` copies them straight into the new ring: neither makes another copy of them
    on the GPU (for a million Atari frames, 6.6 GiB)."""
    envs, frame = 8, (84, 84)
    gen = torch.Generator().manual_seed(0)

    def built() -> FrameStorage:
        return FrameStorage(512, stack=1, frame_shape=frame, keys=[keys.TRAJ_ID, keys.next_(keys.DONE)], device="cuda")

    def batch() -> TensorDict:  # a step of `envs` running episodes
        return TensorDict({
            keys.OBSERVATION: torch.randint(0, 256, (envs, 1, *frame), dtype=torch.uint8, generator=gen),
            keys.TRAJ_ID: torch.arange(envs),
            keys.NEXT: {keys.OBSERVATION: torch.randint(0, 256, (envs, 1, *frame), dtype=torch.uint8, generator=gen),
                        keys.DONE: torch.zeros(envs, 1, dtype=torch.bool)},
        }, batch_size=[envs])

    storage = built()
    for _ in range(32):  # 256 transitions of the 512 (a ring of 520 frames, filling)
        storage.extend(batch())
    written = 256 * frame[0] * frame[1]
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    state = storage.state_dict()
    assert state["frames"]["frames"].device == torch.device("cpu") and state["frames"]["frames"].shape[0] == 256
    # (what it makes on the GPU is the running episodes' next frames, 8 of them)
    assert torch.cuda.memory_allocated() - before < written // 4
    restored = built()
    torch.cuda.reset_peak_memory_stats()
    restored.load_state_dict(state)
    assert torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated() < written // 4  # (no temporary)
    index = torch.arange(256)
    assert_same(restored.gather(index), storage.gather(index))


def test_a_full_ring_checkpoint_continues_exactly():
    frames, batches, state = filled(40, 15, seed=7, padding="noops")  # 120 transitions into 40 (+ slack)
    ring = frames._storage.ring
    assert state["storage"]["frames"]["prev"].shape == (ring,) and state["storage"]["data"][keys.ACTION].shape == (40,)
    continues_alike(frames, through_file(state)[0], batches[15:])


def test_a_checkpoint_of_the_whole_ring_of_links_and_rows_loads_and_a_corrupt_one_is_refused():
    frames, batches, state = filled(400, 3, seed=8, padding="reset")
    ring = frames._storage.ring
    old = {**state, "storage": {**state["storage"], "frames": dict(state["storage"]["frames"])}}
    # As checkpoints saved before: the links of the whole ring (-1 where unwritten), every storage row.
    for name in ("prev", "succ"):
        old["storage"]["frames"][name] = torch.cat([state["storage"]["frames"][name],
                                                    torch.full((ring - 24,), -1, dtype=torch.int64)])
    old["storage"]["data"] = frames._storage.data.clone().to_dict()
    corrupt = {**old, "storage": {**old["storage"], "frames": {**old["storage"]["frames"],
                                                               "succ": torch.full((30,), -1, dtype=torch.int64)}}}
    storage = FrameStorage(400, stack=STACK, frame_shape=(H, W), keys=KEYS)
    expected = ("stored frame ring entry 'succ' holds 30 rows; a ring of 432 positions with 24 transitions written "
                "saves 24 or 432")
    assert ring == 432 and storage.state_mismatch(corrupt["storage"]) == expected
    with pytest.raises(ValueError, match=f"^{expected}$"):
        storage.load_state_dict(corrupt["storage"])
    continues_alike(frames, old, batches[3:])


def test_a_batch_is_read_on_the_host_once_and_an_episode_start_once_more():
    """Writing a batch reads its episode ids and ends in one copy (the episode links are host
    bookkeeping), and the padding of each episode start it brings in one more."""
    [first] = collect(2, 5, batches=1, seed=1, padding="reset")
    storage = FrameStorage(40, stack=STACK, frame_shape=(H, W), keys=KEYS)
    starts = [int(t) for t, s in zip(first[keys.TRAJ_ID], first[keys.STEP_COUNT]) if int(s) == 0]
    with DeviceWatch() as watch:
        storage.extend(first)
    assert watch.reads == ["tolist"] * (1 + len(starts))
    assert len(storage._padded) == len(starts) > 0


def test_a_sample_sends_its_frame_indices_to_the_frames_device_in_one_copy():
    """A ``meta`` ring (its frames cannot be read, nor indexed here with a host index): the slots go
    to its device once for the stored entries, the frames' positions (stacks and next frames, walked
    from the episode links on the host) once, and no frame is indexed with a host index."""
    storage = FrameStorage(30, stack=STACK, frame_shape=(H, W), keys=KEYS, device="meta")
    for batch in collect(2, 5, batches=5, seed=4, padding="noops"):  # (host batches written into the ring)
        storage.extend(batch)
    with DeviceWatch() as watch:
        out = storage.gather(torch.arange(30))  # (every stored transition: episode starts and ends among them)
    assert watch.copied == [(30,), (30 * STACK + 30,)]
    assert out[keys.OBSERVATION].shape == (30, STACK, H, W) and out[keys.OBSERVATION].device.type == "meta"
    assert out[keys.next_(keys.OBSERVATION)].shape == (30, STACK, H, W)


def test_a_storage_sized_for_larger_batches_refuses_a_ring_saved_for_smaller_ones():
    """A ring's positions follow its size (capacity + slack): a storage whose given slack is larger
    than the saved ring's cannot take it (its larger batches would not fit); a smaller one can."""
    def storage(slack: int) -> FrameStorage:
        return FrameStorage(10, stack=2, frame_shape=(2, 2), slack=slack, keys=["traj_id", ("next", "done")])

    frames = torch.zeros(2, 2, 2, 2, dtype=torch.uint8)
    batch = TensorDict({"observation": frames, "traj_id": torch.zeros(2, dtype=torch.int64),
                        "next": {"observation": frames, "done": torch.zeros(2, 1, dtype=torch.bool)}}, [2])
    saved = storage(4)
    saved.extend(batch)
    state = saved.state_dict()
    assert storage(8).state_mismatch(state) == (
        "the stored frame ring was sized for batches of up to 2 transitions (a slack of 4 frames), and this "
        "storage's batches hold 4: use batches of at most 2 transitions")
    smaller = storage(2)
    assert smaller.state_mismatch(state) is None
    smaller.load_state_dict(state)
    assert smaller.slack == 4 and smaller.extend(batch).tolist() == [2, 3]
