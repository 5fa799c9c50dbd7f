"""EpisodeTracker: per-batch bookkeeping (array and loop forms) checked against hand values, a slow
reference loop and each other."""
from __future__ import annotations

import numpy as np
import pytest

from rlkit.collectors import episodes
from rlkit.collectors.episodes import EpisodeTracker


@pytest.fixture(params=["arrays", "loop"], autouse=True)
def form(request, monkeypatch):
    """Every test runs on both forms of update(): the array one (large batches) and the loop one."""
    monkeypatch.setattr(episodes, "_LOOP_MAX", 0 if request.param == "arrays" else 10**9)
    return request.param


def test_hand_computed_example():
    tracker = EpisodeTracker(2)
    done = np.array([[False, True, False], [False, False, False]])
    reward = np.array([[1.0, 2.0, 4.0], [1.0, 1.0, 1.0]], dtype=np.float32)
    out = tracker.update(reward, done)
    assert out.traj_id.tolist() == [[0, 0, 2], [1, 1, 1]]
    assert out.step_count.tolist() == [[0, 1, 0], [0, 1, 2]]
    assert out.returns.tolist() == [3.0] and out.lengths.tolist() == [2]
    done = np.array([[True, False, False], [False, True, True]])
    out = tracker.update(reward, done)
    assert out.traj_id.tolist() == [[2, 3, 3], [1, 1, 4]]
    assert out.step_count.tolist() == [[1, 0, 1], [3, 4, 0]]
    assert out.returns.tolist() == [5.0, 5.0, 1.0]  # ended at (t=0, env 0), (t=1, env 1), (t=2, env 1)
    assert out.lengths.tolist() == [2, 5, 1]
    assert tracker.traj.tolist() == [3, 5] and tracker.next_traj == 6


def _slow_reference(rewards: list, dones: list, n: int):
    traj, length, ret, next_id = list(range(n)), [0] * n, [0.0] * n, n
    out = []
    for reward, done in zip(rewards, dones):
        steps = done.shape[1]
        ids = np.zeros((n, steps), dtype=np.int64)
        counts = np.zeros((n, steps), dtype=np.int64)
        ended_r, ended_l = [], []
        for t in range(steps):
            for i in range(n):
                ids[i, t], counts[i, t] = traj[i], length[i]
                ret[i] += float(reward[i, t])
                length[i] += 1
            for i in range(n):
                if done[i, t]:
                    ended_r.append(ret[i])
                    ended_l.append(length[i])
                    traj[i], length[i], ret[i], next_id = next_id, 0, 0.0, next_id + 1
        out.append((ids, counts, ended_r, ended_l))
    return out


@pytest.mark.parametrize("n", [1, 4])
def test_matches_a_slow_loop_over_many_batches(n):
    rng = np.random.default_rng(0)
    rewards = [rng.normal(size=(n, 7)).astype(np.float32) for _ in range(6)]
    dones = [rng.random((n, 7)) < 0.3 for _ in range(6)]
    tracker = EpisodeTracker(n)
    for (ids, counts, ended_r, ended_l), reward, done in zip(_slow_reference(rewards, dones, n), rewards, dones):
        out = tracker.update(reward, done)
        assert np.array_equal(out.traj_id, ids) and np.array_equal(out.step_count, counts)
        np.testing.assert_allclose(out.returns, ended_r, rtol=1e-12, atol=1e-12)
        assert out.lengths.tolist() == ended_l


def test_state_round_trip_and_mismatch():
    tracker = EpisodeTracker(2)
    tracker.update(np.ones((2, 3), np.float32), np.array([[False, True, False], [False, False, False]]))
    other = EpisodeTracker(2)
    other.load_state_dict(tracker.state_dict())
    batch = (np.ones((2, 2), np.float32), np.array([[True, False], [False, True]]))
    a, b = tracker.update(*batch), other.update(*batch)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    with pytest.raises(ValueError, match="episode state is for 2 envs, this collector has 3"):
        EpisodeTracker(3).load_state_dict(tracker.state_dict())


def test_array_and_loop_forms_agree_bit_for_bit(monkeypatch):
    rng = np.random.default_rng(1)
    for _ in range(200):
        n, steps = int(rng.integers(1, 6)), int(rng.integers(1, 12))
        by_arrays, by_loop = EpisodeTracker(n), EpisodeTracker(n)
        for _ in range(4):
            reward = (rng.normal(size=(n, steps)) * 3.3).astype(np.float32)
            done = rng.random((n, steps)) < 0.3
            monkeypatch.setattr(episodes, "_LOOP_MAX", 0)
            a = by_arrays.update(reward, done)
            monkeypatch.setattr(episodes, "_LOOP_MAX", 10**9)
            b = by_loop.update(reward, done)
            for x, y in zip(a, b):
                assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)
            for name in ("traj", "length", "ret"):
                x, y = getattr(by_arrays, name), getattr(by_loop, name)
                assert x.dtype == y.dtype and np.array_equal(x, y)
            assert by_arrays.next_traj == by_loop.next_traj
