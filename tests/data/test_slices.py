from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from rlkit.data.slices import slice_starts, valid_slice_starts
from rlkit.data.storage import TensorDictStorage


def _loop_reference(traj: list[int], step: list[int] | None, done: list[bool] | None, t: int) -> list[bool]:
    out = []
    for k in range(len(traj)):
        ok = k + t <= len(traj)
        for j in range(k, min(k + t - 1, len(traj) - 1)):
            same = traj[j + 1] == traj[j]
            if step is not None:
                same = same and step[j + 1] == step[j] + 1
            if done is not None:
                same = same and not done[j]
            ok = ok and same
        out.append(ok)
    return out


@pytest.mark.parametrize("slice_len", [1, 2, 3, 5, 40])
@pytest.mark.parametrize("use_step,use_done", [(False, False), (True, False), (False, True), (True, True)])
def test_mask_matches_loop_reference(slice_len: int, use_step: bool, use_done: bool) -> None:
    gen = torch.Generator().manual_seed(slice_len)
    traj = torch.randint(0, 3, (30,), generator=gen).sort().values  # runs of equal ids
    step = torch.arange(30) - (torch.rand(30, generator=gen) < 0.1).long().cumsum(0)  # a few gaps
    done = torch.rand(30, generator=gen) < 0.15
    mask = valid_slice_starts(
        traj, slice_len, step_count=step if use_step else None, done=done if use_done else None
    )
    expected = _loop_reference(
        traj.tolist(), step.tolist() if use_step else None, done.tolist() if use_done else None, slice_len
    )
    assert mask.tolist() == expected


def test_hand_computed_mask() -> None:
    traj = torch.tensor([7, 7, 7, 7, 8, 8])
    done = torch.tensor([False, True, False, False, False, True])
    # A slice may end on the done at 1 (start 0) but never runs past it (start 1 is invalid).
    assert valid_slice_starts(traj, 2, done=done).tolist() == [True, False, True, False, True, False]
    assert valid_slice_starts(traj, 7).tolist() == [False] * 6
    assert valid_slice_starts(traj[:0], 2).tolist() == []


def _storage(**entries: torch.Tensor) -> TensorDictStorage:
    storage = TensorDictStorage(8)
    n = next(iter(entries.values())).shape[0]
    storage.extend(TensorDict(entries, batch_size=[n]))
    return storage


def test_slice_starts_follow_oldest_first_order_after_wrap_around() -> None:
    storage = TensorDictStorage(5)
    traj = torch.tensor([0, 0, 1, 1, 1, 1, 1])
    storage.extend(TensorDict({"traj_id": traj, "step_count": torch.tensor([0, 1, 0, 1, 2, 3, 4])}, [7]))
    # Oldest first the buffer holds traj 1 steps 0..4 in slots 2, 3, 4, 0, 1.
    assert storage.oldest == 2
    assert slice_starts(storage, 3).starts.tolist() == [0, 1, 2]
    assert slice_starts(storage, 3).order is None


def test_slice_starts_accept_column_shaped_entries_and_int_done() -> None:
    storage = _storage(traj_id=torch.zeros(4, 1, dtype=torch.long), done=torch.tensor([[0], [1], [0], [0]]))
    assert slice_starts(storage, 2, done_key="done").starts.tolist() == [0, 2]


def test_slices_of_env_major_blocks_run_on_into_the_env_s_next_block() -> None:
    # Two envs, blocks of 2 steps: env 0's episode 0 is at slots 0, 1, 4, 5; env 1's episode 1 at 2, 3, 6, 7.
    storage = _storage(traj_id=torch.tensor([0, 0, 1, 1, 0, 0, 1, 1]), step_count=torch.tensor([0, 1, 0, 1, 2, 3, 2, 3]))
    found = slice_starts(storage, 3)
    assert found.order is not None and found.order.tolist() == [0, 1, 4, 5, 2, 3, 6, 7]
    assert found.positions(torch.arange(found.starts.numel()), 3).tolist() == [[0, 1, 4], [1, 4, 5], [2, 3, 6], [3, 6, 7]]


def test_slice_starts_errors() -> None:
    storage = _storage(x=torch.zeros(4))
    match = r"needs the per-transition trajectory id 'traj_id' in the buffer; stored keys are \['x'\]"
    with pytest.raises(KeyError, match=match):
        slice_starts(storage, 2)
    with pytest.raises(KeyError, match=r"stored keys are \[\]"):
        slice_starts(TensorDictStorage(3), 2)
    storage = _storage(traj_id=torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"'traj_id' must hold one value per transition, got per-item shape"):
        slice_starts(storage, 2)
    storage = _storage(traj_id=torch.zeros(4))
    with pytest.raises(TypeError, match=r"'traj_id' must be an integer tensor \(int64\), got dtype"):
        slice_starts(storage, 2)
    storage = _storage(traj_id=torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="no valid slice of length 2: no stored trajectory piece has 2"):
        slice_starts(storage, 2)
