"""Episode bookkeeping (trajectory ids, step counts, returns), computed once per batch."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch


class BatchEpisodes(NamedTuple):
    """Per-transition ids/counts ``[N, T]`` and the episodes that ended in the batch, in the order
    they ended (time first, then sub-env index)."""

    traj_id: np.ndarray
    step_count: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray


class EpisodeTracker:
    """Tracks each sub-env's current episode across batches.

    New trajectory ids are handed out in the order episodes start (time first, then sub-env index),
    continuing from ``num_envs`` (the first episodes have ids ``0 .. num_envs - 1``).

    Examples:
        >>> import numpy as np
        >>> tracker = EpisodeTracker(1)
        >>> out = tracker.update(np.ones((1, 3), np.float32), np.array([[False, True, False]]))
        >>> out.traj_id.tolist(), out.step_count.tolist(), out.returns.tolist(), out.lengths.tolist()
        ([[0, 0, 1]], [[0, 1, 0]], [2.0], [2])
    """

    def __init__(self, num_envs: int) -> None:
        self.traj = np.arange(num_envs, dtype=np.int64)
        self.next_traj = num_envs
        self.length = np.zeros(num_envs, dtype=np.int64)
        self.ret = np.zeros(num_envs, dtype=np.float64)

    def update(self, reward: np.ndarray, done: np.ndarray) -> BatchEpisodes:
        """Consumes one batch of rewards and done flags, both ``[N, T]``."""
        n, steps = done.shape
        rows = np.arange(n)[:, None]
        t = np.arange(steps)
        # An episode starts inside the batch at t when the step before ended one.
        starts = np.zeros_like(done)
        starts[:, 1:] = done[:, :-1]
        last_start = np.maximum.accumulate(np.where(starts, t, -1), axis=1)
        inside = last_start >= 0
        step_count = np.where(inside, t - last_start, self.length[:, None] + t)

        end_t, end_n = np.nonzero(done.T)  # time-major order
        new_ids = self.next_traj + np.arange(end_t.size, dtype=np.int64)
        start_ids = np.full((n, steps + 1), -1, dtype=np.int64)
        start_ids[end_n, end_t + 1] = new_ids
        traj = np.where(inside, start_ids[rows, np.maximum(last_start, 0)], self.traj[:, None])

        csum = np.cumsum(reward.astype(np.float64), axis=1)
        before = np.where(inside, csum[rows, np.maximum(last_start - 1, 0)], -self.ret[:, None])
        running = csum - before  # return of the current episode up to and including t
        returns = running[end_n, end_t]
        lengths = step_count[end_n, end_t] + 1

        last_done = done[:, -1]
        self.traj = np.where(last_done, start_ids[:, -1], traj[:, -1])
        self.length = np.where(last_done, 0, step_count[:, -1] + 1)
        self.ret = np.where(last_done, 0.0, running[:, -1])
        self.next_traj += int(end_t.size)
        return BatchEpisodes(traj, step_count, returns, lengths)

    def state_dict(self) -> dict[str, Any]:
        return {
            "traj": torch.from_numpy(self.traj.copy()),
            "next_traj": self.next_traj,
            "length": torch.from_numpy(self.length.copy()),
            "return": torch.from_numpy(self.ret.copy()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["traj"].numel() != self.traj.size:
            raise ValueError(
                f"episode state is for {state['traj'].numel()} envs, this collector has {self.traj.size}"
            )
        self.traj = state["traj"].numpy().copy()
        self.next_traj = int(state["next_traj"])
        self.length = state["length"].numpy().copy()
        self.ret = state["return"].numpy().copy()
