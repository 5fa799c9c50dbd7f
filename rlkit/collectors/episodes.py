"""Episode bookkeeping (trajectory ids, step counts, returns), computed once per batch."""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch


# Batches of at most this many transitions are tracked by a Python loop (see EpisodeTracker._update_loop).
_LOOP_MAX = 64


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
        >>> from rlkit.collectors.episodes import EpisodeTracker
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
        if n * steps <= _LOOP_MAX:
            return self._update_loop(reward, done)
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

    def _update_loop(self, reward: np.ndarray, done: np.ndarray) -> BatchEpisodes:
        """:meth:`update` as a Python loop over the steps (time first, then sub-env), faster than
        the array version for small batches and equal to it bit for bit: returns are the same
        float64 differences of running sums."""
        n, steps = done.shape
        rewards, dones = reward.astype(np.float64).tolist(), done.tolist()
        traj, length = self.traj.tolist(), self.length.tolist()
        before = [-r for r in self.ret.tolist()]  # running sum before the current episode's first step
        csum = [0.0] * n
        last = [0.0] * n  # return of the current episode so far
        traj_out = [[0] * steps for _ in range(n)]
        step_out = [[0] * steps for _ in range(n)]
        returns, lengths = [], []
        next_traj = self.next_traj
        for t in range(steps):
            for i in range(n):
                total = rewards[i][t] if t == 0 else csum[i] + rewards[i][t]
                csum[i] = total
                traj_out[i][t], step_out[i][t] = traj[i], length[i]
                if dones[i][t]:
                    returns.append(total - before[i])
                    lengths.append(length[i] + 1)
                    traj[i], length[i], before[i], last[i] = next_traj, 0, total, 0.0
                    next_traj += 1
                else:
                    length[i] += 1
                    last[i] = total - before[i]
        self.traj = np.array(traj, dtype=np.int64)
        self.length = np.array(length, dtype=np.int64)
        self.ret = np.array(last, dtype=np.float64)
        self.next_traj = next_traj
        return BatchEpisodes(np.array(traj_out, dtype=np.int64), np.array(step_out, dtype=np.int64),
                             np.array(returns, dtype=np.float64), np.array(lengths, dtype=np.int64))

    def restart_all(self) -> None:
        """Every sub-env starts a new episode now (its env was reset): the running ones are dropped."""
        n = self.traj.size
        self.traj = self.next_traj + np.arange(n, dtype=np.int64)
        self.next_traj += n
        self.length = np.zeros(n, dtype=np.int64)
        self.ret = np.zeros(n, dtype=np.float64)

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
