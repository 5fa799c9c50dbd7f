"""Which runs of stored transitions form valid ``[T]`` time slices (for n-step / TD(lambda)).

A slice is ``T`` consecutive steps of one trajectory. Collectors with several envs store each
batch env by env (``[num_envs, T] -> reshape(-1)``), so an env's next batch lies past the other
envs' blocks: slices are found in *trajectory order*, the stored items grouped by trajectory id and
in storage order within one (which is time order), so a slice may run from one block of an env into
the next.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from tensordict.utils import NestedKey

from rlkit import keys
from rlkit.data.storage import TensorDictStorage

__all__ = ["NoValidSliceError", "SliceStarts", "slice_starts", "trajectory_order", "valid_slice_starts"]


class NoValidSliceError(ValueError):
    """No stored trajectory piece is as long as the slices asked for (yet, or ever: episodes shorter
    than the slice length)."""


def valid_slice_starts(
    traj_id: torch.Tensor,
    slice_len: int,
    *,
    step_count: torch.Tensor | None = None,
    done: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mask of the positions where a slice of ``slice_len`` consecutive transitions may start.

    The inputs are per-transition values in storage order from oldest to newest (length ``S``).
    Position ``k`` may be followed by ``k + 1`` inside a slice ("linked") when both belong to the same
    trajectory, their step counters (when given) increase by exactly one, and ``k`` is not a done step.
    A start ``k`` is valid when ``k + slice_len <= S`` and every link ``k .. k + slice_len - 2`` holds, so
    a slice may end on a done step but never runs past one, and pieces shorter than ``slice_len`` are
    never sampled. Computed with a cumulative sum over broken links: ``O(S)`` tensor ops, no Python loop.

    Args:
        traj_id: integer ``[S]`` trajectory ids.
        slice_len: ``T >= 1``.
        step_count: optional integer ``[S]`` step counters within the trajectory.
        done: optional bool ``[S]`` episode-end flags.

    Returns:
        bool ``[S]`` mask (``False`` for the last ``T - 1`` positions).

    Examples:
        >>> import torch
        >>> from rlkit.data.slices import valid_slice_starts
        >>> traj = torch.tensor([0, 0, 0, 1, 1, 2])
        >>> valid_slice_starts(traj, 2).tolist()
        [True, True, False, True, False, False]
    """
    size = traj_id.shape[0]
    linked = traj_id[1:] == traj_id[:-1]
    if step_count is not None:
        linked &= step_count[1:] == step_count[:-1] + 1
    if done is not None:
        linked &= ~done[:-1]
    broken = torch.cat([linked.new_zeros(1, dtype=torch.long), (~linked).long().cumsum(0)])
    # broken[j] = number of broken links among the first j links; a window of T-1 links must have none.
    num_starts = max(size - slice_len + 1, 0)
    window = broken[slice_len - 1: slice_len - 1 + num_starts] - broken[:num_starts]
    mask = torch.zeros(size, dtype=torch.bool, device=traj_id.device)
    mask[:num_starts] = window == 0
    return mask


def trajectory_order(traj_id: torch.Tensor) -> torch.Tensor | None:
    """The positions of per-transition ``traj_id`` values (oldest first) grouped by trajectory, in
    storage order within each: a stable sort by id. ``None`` when the ids never decrease (one env's
    stream), where that order is the storage order itself.

    Examples:
        >>> import torch
        >>> from rlkit.data.slices import trajectory_order
        >>> trajectory_order(torch.tensor([0, 0, 1, 1, 0, 2, 1])).tolist()
        [0, 1, 4, 2, 3, 6, 5]
        >>> trajectory_order(torch.tensor([3, 3, 4])) is None
        True
    """
    if traj_id.numel() < 2 or bool((traj_id[1:] >= traj_id[:-1]).all()):
        return None
    low, high = traj_id.aminmax()
    if -(2**31) <= int(low) and int(high) < 2**31:  # int32 keys sort about twice as fast on a CPU
        traj_id = traj_id.to(torch.int32)
    return torch.sort(traj_id, stable=True).indices


class SliceStarts(NamedTuple):
    """Where slices may start: ``starts`` are positions in trajectory ``order`` (a map from those
    positions to oldest-first storage positions; ``None`` when it is the identity)."""

    starts: torch.Tensor
    order: torch.Tensor | None

    def positions(self, chosen: torch.Tensor, slice_len: int) -> torch.Tensor:
        """Oldest-first storage positions ``[B, T]`` of the slices starting at ``starts[chosen]``.

        Examples:
            >>> import torch
            >>> from rlkit.data.slices import SliceStarts
            >>> SliceStarts(torch.tensor([0, 2]), torch.tensor([0, 1, 4, 2, 3])).positions(torch.tensor([1]), 3).tolist()
            [[4, 2, 3]]
        """
        steps = self.starts[chosen].unsqueeze(-1) + torch.arange(slice_len, device=self.starts.device)
        return steps if self.order is None else self.order[steps]


def _per_item_scalar(storage: TensorDictStorage, key: NestedKey, integer: bool) -> torch.Tensor:
    """Entry ``key`` (one value per item) of the stored items oldest first, as a flat tensor."""
    value = storage.data.get(key)
    if value.shape[1:].numel() != 1:
        raise ValueError(
            f"entry {key!r} must hold one value per transition, got per-item shape {list(value.shape[1:])}"
        )
    if integer and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"entry {key!r} must be an integer tensor (int64), got dtype {value.dtype}")
    return storage.oldest_first(key).reshape(len(storage))


def slice_starts(
    storage: TensorDictStorage,
    slice_len: int,
    *,
    traj_key: NestedKey = keys.TRAJ_ID,
    step_key: NestedKey | None = keys.STEP_COUNT,
    done_key: NestedKey | None = keys.next_(keys.DONE),
) -> SliceStarts:
    """Valid slice starts of a storage, in trajectory order (:func:`trajectory_order` of its
    oldest-first items).

    :meth:`SliceStarts.positions` gives the slices' oldest-first positions ``k``; the item at ``k``
    occupies slot ``(storage.oldest + k) % capacity``. ``traj_key`` is required; ``step_key`` and
    ``done_key`` are checked when stored.

    Returns:
        the starts (never empty: ``NoValidSliceError`` when no slice fits) and the order.
    """
    if traj_key not in storage:
        stored = [] if len(storage) == 0 else list(storage.data.keys(include_nested=True, leaves_only=True))
        raise KeyError(
            f"slice sampling needs the per-transition trajectory id {traj_key!r} in the buffer; stored "
            f"keys are {stored}"
        )
    traj = _per_item_scalar(storage, traj_key, integer=True)
    step = done = None
    if step_key is not None and step_key in storage:
        step = _per_item_scalar(storage, step_key, integer=True)
    if done_key is not None and done_key in storage:
        done = _per_item_scalar(storage, done_key, integer=False) != 0
    order = trajectory_order(traj)
    if order is not None:
        traj = traj[order]
        step = None if step is None else step[order]
        done = None if done is None else done[order]
    starts = valid_slice_starts(traj, slice_len, step_count=step, done=done).nonzero().squeeze(-1)
    if starts.numel() == 0:
        raise NoValidSliceError(
            f"no valid slice of length {slice_len}: no stored trajectory piece has {slice_len} consecutive "
            f"transitions (checked {traj_key!r}, {step_key!r}, {done_key!r} over {len(storage)} items)"
        )
    return SliceStarts(starts, order)
