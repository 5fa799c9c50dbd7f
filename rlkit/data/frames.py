"""Replay storage for stacked-frame observations that keeps every frame once.

An Atari observation is ``k`` stacked frames (``[4, 84, 84]`` uint8), and the next observation
shares ``k - 1`` of them: storing both stacks per transition takes ``2k`` times the frames' memory
(about 56 GB for a million transitions). :class:`FrameStorage` stores, per transition, only the
newest frame of its observation, with a link to the previous transition of the same episode, and
rebuilds both stacks when a batch is gathered:

- ``observation`` = the newest frames of the transition and of its ``k - 1`` predecessors in the
  episode, oldest first; at the start of an episode the stack the env gave is stored whole (so any
  padding, the reset frame repeated or zeros, comes back as it was);
- ``("next", "observation")`` = the observation shifted by one frame, plus the next frame: the
  following transition's newest frame, or, where the episode ended, its final frame (stored once,
  apart), or, for the newest transition of a running episode, the frame the batch brought.

Stacks never cross an episode boundary. Links follow ``traj_id`` (unique per episode, as the
collector writes it), so transitions of several envs may interleave. The ring of frames holds a few
batches more than the transitions' ring (``slack``), so the predecessors of the oldest stored
transition are still there; sampling (uniform, prioritised, slices) is the replay buffer's own and
sees the same transitions and stacks as a buffer storing every stack (tested against one).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from tensordict import TensorDictBase
from tensordict.utils import NestedKey, unravel_key

from rlkit import keys
from rlkit.data.storage import TensorDictStorage, put
from rlkit.utils.tensordicts import assembled
from rlkit.utils.values import as_int

__all__ = ["FrameStorage"]


class FrameStorage(TensorDictStorage):
    """A :class:`~rlkit.data.storage.TensorDictStorage` whose stacked-frame observations are kept
    as single frames (see the module docstring).

    Args:
        capacity: transitions kept.
        stack: frames per observation (the leading dim of an observation item).
        frame_shape: the shape of one frame, e.g. ``(84, 84)``.
        frame_dtype: the frames' dtype (uint8 for Atari).
        obs_key: the observation entry (``next_obs_key`` is its next-step counterpart).
        traj_key: the per-transition episode id entry (stored; links transitions into episodes).
        done_key: the per-transition end-of-episode flag (stored).
        slack: extra frames kept beyond ``capacity``; ``None``: ``stack`` times the first batch's
            size (every later batch must be at most that size).
        device: storage device.
        keys: the other entries to store (``traj_key`` and ``done_key`` included).
        layout: their per-item shapes and dtypes, as for :class:`TensorDictStorage`.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data.frames import FrameStorage
        >>> frames = torch.arange(6, dtype=torch.uint8).reshape(6, 1, 1).expand(6, 2, 2)
        >>> obs = torch.stack([frames[[0, 0, 1, 2, 3]], frames[[0, 1, 2, 3, 4]]], 1)  # stacks of 2
        >>> nxt = torch.stack([frames[[0, 1, 2, 3, 4]], frames[[1, 2, 3, 4, 5]]], 1)
        >>> batch = TensorDict({"observation": obs, "traj_id": torch.zeros(5, dtype=torch.int64),
        ...                     "next": {"observation": nxt, "done": torch.zeros(5, 1, dtype=torch.bool)}}, [5])
        >>> storage = FrameStorage(10, stack=2, frame_shape=(2, 2), keys=["traj_id", ("next", "done")])
        >>> _ = storage.extend(batch)
        >>> out = storage.gather(torch.tensor([3]))
        >>> out["observation"][0, :, 0, 0].tolist(), out["next", "observation"][0, :, 0, 0].tolist()
        ([2, 3], [3, 4])
    """

    def __init__(self, capacity: int, *, stack: int, frame_shape: Sequence[int], frame_dtype: torch.dtype = torch.uint8,
                 obs_key: NestedKey = keys.OBSERVATION, next_obs_key: NestedKey | None = None,
                 traj_key: NestedKey = keys.TRAJ_ID, done_key: NestedKey = keys.next_(keys.DONE),
                 slack: int | None = None, device: torch.device | str | None = None,
                 keys: Sequence[NestedKey] | None = None,
                 layout: Mapping[NestedKey, tuple[Sequence[int], torch.dtype]] | None = None) -> None:
        if (as_int(stack) or 0) < 1:
            raise ValueError(f"stack must be a positive int, got {stack!r}")
        stack = int(stack)
        if not all((as_int(d) or 0) >= 1 for d in frame_shape):
            raise ValueError(f"frame_shape must hold positive ints (one frame's shape), got {tuple(frame_shape)!r}")
        if slack is not None and (as_int(slack) is None or int(slack) < stack):
            raise ValueError(f"slack must be an int >= stack ({stack}: room for the stacks of a batch of one), or "
                             f"None (sized from the first batch), got {slack!r}")
        self.obs_key = unravel_key(obs_key)
        self.next_obs_key = unravel_key(next_obs_key if next_obs_key is not None else keys_next(obs_key))
        self.traj_key, self.done_key = unravel_key(traj_key), unravel_key(done_key)
        if keys is not None:
            named = [unravel_key(k) for k in keys]
            if self.obs_key in named or self.next_obs_key in named:
                raise ValueError(f"keys {named} must not name the frame entries {self.obs_key!r} / {self.next_obs_key!r}: "
                                 "the frame storage keeps them itself")
            missing = [k for k in (self.traj_key, self.done_key) if k not in named]
            if missing:
                raise ValueError(f"a FrameStorage needs {missing} among its stored keys (episode links)")
        super().__init__(capacity, device=device, keys=keys, layout=layout)
        self.stack = stack
        self.frame_shape = torch.Size(frame_shape)
        self.frame_dtype = frame_dtype
        self.slack = None if slack is None else int(slack)
        self._slack_given = slack is not None
        self._frames: torch.Tensor | None = None  # [ring, *frame_shape]
        self._prev = torch.empty(0, dtype=torch.int64)  # write number of the episode's previous transition, -1: none
        self._succ = torch.empty(0, dtype=torch.int64)  # write number of the next one, -1: not (yet) written
        self._written = 0  # transitions written since the start (write numbers 0, 1, ...)
        # Episode-start transition -> the k - 1 frames its stack holds before its own frame: nothing
        # kept for the standard paddings (zeros, or the first frame repeated: _padded's codes), the
        # frames themselves otherwise.
        self._heads: dict[int, torch.Tensor] = {}
        self._padded: dict[int, int] = {}
        self._finals: dict[int, torch.Tensor] = {}  # episode-end transition -> its final (next) frame
        self._pending: dict[int, tuple[int, torch.Tensor]] = {}  # running episode -> (newest write, next frame)

    # -- sizes ---------------------------------------------------------------------------------------
    @property
    def ring(self) -> int:
        """Frames kept: ``capacity`` plus the slack (0 until the slack is known)."""
        return 0 if self.slack is None else self.capacity + self.slack

    @property
    def item_nbytes(self) -> int | None:
        base = super().item_nbytes
        if base is None:
            return None
        # One frame and two int64 links per transition (the slack's few batches are not counted).
        return base + self.frame_shape.numel() * self.frame_dtype.itemsize + 16

    # -- writing -------------------------------------------------------------------------------------
    def _allocate_frames(self, n: int) -> None:
        if self.slack is None:
            self.slack = self.stack * n
        device = self._device or torch.device("cpu")
        # Uninitialised: only written slots are ever read, so the memory of a slot is touched when it
        # is first written (a short run with a 1M-frame buffer takes what it writes, not 6.6 GiB).
        self._frames = torch.empty((self.ring, *self.frame_shape), dtype=self.frame_dtype, device=device)
        self._prev = torch.full((self.ring,), -1, dtype=torch.int64)
        self._succ = torch.full((self.ring,), -1, dtype=torch.int64)

    def extend(self, td: TensorDictBase) -> torch.Tensor:
        """Write a flat ``[N]`` batch (stacked observations included); returns the slots written."""
        if not isinstance(td, TensorDictBase) or td.batch_dims != 1:
            return super().extend(td)  # (the base class's errors)
        obs, nxt = td.get(self.obs_key, None), td.get(self.next_obs_key, None)
        expected = (self.stack, *self.frame_shape)
        for key, value in ((self.obs_key, obs), (self.next_obs_key, nxt)):
            if not isinstance(value, torch.Tensor) or tuple(value.shape[1:]) != expected or value.dtype != self.frame_dtype:
                got = (tuple(value.shape[1:]), value.dtype) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"entry {key!r} must hold stacks of shape {expected} and dtype {self.frame_dtype} per "
                                 f"item, got {got}")
        n = td.batch_size[0]
        if n == 0:  # nothing to write (and the first batch's size must not set the slack to 0)
            return torch.empty(0, dtype=torch.int64)
        if self._frames is None:
            self._allocate_frames(n)
        assert self.slack is not None and self._frames is not None
        if n * self.stack > self.slack:
            given = "given" if self._slack_given else "stack x the first batch's size"
            raise ValueError(f"a batch of {n} transitions is larger than this FrameStorage's slack allows "
                             f"({self.slack} frames, {given}: room for batches of up to {self.slack // self.stack}); "
                             f"give slack= of at least stack x the largest batch ({n * self.stack} here)")
        # A storage of named keys reads only those; otherwise every entry but the frames is stored.
        slots = super().extend(td if self.keys is not None else td.exclude(self.obs_key, self.next_obs_key))
        traj, done = _host_lists(td.get(self.traj_key).reshape(n), td.get(self.done_key).reshape(n))
        frames = self._frames
        ring = self.ring
        first = self._written
        frames_at = torch.arange(first, first + n, device=frames.device) % ring  # (made there: no copy)
        frames.index_copy_(0, frames_at, obs[:, -1].to(frames.device))
        for i in range(n):
            w = first + i
            at = w % ring
            pending = self._pending.pop(traj[i], None)
            if pending is None:  # the episode starts here (or its earlier part is not stored)
                self._prev[at] = -1
                self._keep_head(w, obs[i])
            else:
                self._prev[at] = pending[0]
                self._succ[pending[0] % ring] = w
            self._succ[at] = -1
            if done[i]:
                self._finals[w] = nxt[i, -1].to(frames.device, copy=True)
            else:
                self._pending[traj[i]] = (w, nxt[i, -1].to(frames.device, copy=True))
        self._written += n
        self._forget(self._written - ring)
        return slots

    def _keep_head(self, w: int, stack: torch.Tensor) -> None:
        """What rebuilds the frames before the first one of an episode starting at write ``w``."""
        if self.stack == 1:
            return
        older, first = stack[:-1], stack[-1]
        # Both answers in one read (one wait for a stack on an accelerator); any() of uint8 frames
        # is uint8, made a flag to be stacked with all()'s.
        nonzero, repeated = torch.stack((older.any().bool(), (older == first).all())).tolist()
        if not nonzero:
            self._padded[w] = _ZEROS
        elif repeated:
            self._padded[w] = _REPEATED
        else:
            assert self._frames is not None
            self._heads[w] = older.to(self._frames.device, copy=True)

    def _forget(self, oldest: int) -> None:
        """Drops the boundary frames of transitions no longer in the ring (write number < ``oldest``)."""
        for store in (self._heads, self._finals, self._padded):
            while store:
                w = next(iter(store))  # insertion order = write order
                if w >= oldest:
                    break
                del store[w]
        stale = [t for t, (w, _) in self._pending.items() if w < oldest]
        for t in stale:
            del self._pending[t]

    # -- reading -------------------------------------------------------------------------------------
    def write_numbers(self, slots: torch.Tensor) -> torch.Tensor:
        """The write number of the transition in each storage slot (same shape)."""
        last = self._written - 1
        slots = slots.to("cpu", torch.int64)
        return slots + ((last - slots) // self.capacity) * self.capacity

    def _stacks(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Observation and next-observation stacks of the transitions with write numbers ``w`` (flat,
        on the host: the episode links are walked there)."""
        assert self._frames is not None
        frames, ring, k = self._frames, self.ring, self.stack
        n = w.shape[0]
        # Positions in the ring of the chain w, prev(w), prev(prev(w)), ... (-1 past an episode start).
        chain = [w]
        for _ in range(k - 1):
            current = chain[-1]
            prev = torch.where(current >= 0, self._prev[current.clamp(min=0) % ring], torch.full_like(current, -1))
            chain.append(prev)
        order = torch.stack(chain[::-1], 1)  # [n, k], oldest first
        succ = self._succ[w % ring]
        # The ring positions of the stacks' frames and of the next frames, sent to the frames' device
        # in one copy; non_blocking: a host tensor of pageable memory is staged at once, without
        # waiting for the kernels queued on the device.
        at = torch.cat((order.clamp(min=0).reshape(-1), succ.clamp(min=0))) % ring
        at = at.to(frames.device, non_blocking=True)
        obs = frames[at[: n * k]].view(n, k, *frames.shape[1:])
        for row in torch.nonzero((order < 0).any(1)).reshape(-1).tolist():
            # Past the episode's start: the older positions come from the stack the env gave there.
            missing = int((order[row] < 0).sum())
            start = int(order[row, missing])  # the episode's first transition
            padded = self._padded.get(start)
            if padded == _ZEROS:
                obs[row, :missing] = 0
            elif padded == _REPEATED:
                obs[row, :missing] = frames[start % ring]
            else:  # its older frames as kept (k - 1 of them; older checkpoints kept all k: the same first k - 1)
                obs[row, :missing] = self._heads[start][k - 1 - missing: k - 1]
        next_frame = frames[at[n * k:]]
        for row in torch.nonzero(succ < 0).reshape(-1).tolist():
            key = int(w[row])
            final = self._finals.get(key)
            if final is None:  # the newest transition of a running episode
                final = next(frame for wp, frame in self._pending.values() if wp == key)
            next_frame[row] = final
        nxt = torch.cat([obs[:, 1:], next_frame.unsqueeze(1)], 1)
        return obs, nxt

    def gather(self, index: torch.Tensor, extra: dict[str, torch.Tensor] | None = None) -> TensorDictBase:
        out = self._gathered(index)
        obs, nxt = self._stacks(self.write_numbers(index.reshape(-1)))
        device = self._leaf_device
        for key, value in ((self.obs_key, obs), (self.next_obs_key, nxt)):
            value = value.reshape(*index.shape, *value.shape[1:])
            put(out, key, value if device is None else value.to(device))
        if extra:
            out.update(extra)
        return assembled(out, index.shape, self.data.device)

    # -- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """:meth:`TensorDictStorage.state_dict <rlkit.data.storage.TensorDictStorage.state_dict>` (the
        filled rows of the stored entries) plus ``"frames"``: the ring's written frames and episode links
        (its first ``min(written, ring)`` positions, the only ones written: a buffer filling up does not
        save its empty ones) and the sparse episode boundaries."""
        state = super().state_dict()
        pending = sorted(self._pending.items())
        written = min(self._written, self.ring)
        # Copies of the ring's written part while it fills up, since torch.save writes a view's whole
        # underlying storage: made on the host, where torch.save puts them anyway (a copy on a CUDA
        # ring's device would double its GPU memory at each checkpoint), and never sharing memory with
        # the ring (on a CPU ring too); a full ring is saved as it is (a copy of 1M Atari frames is
        # 6.6 GiB more at each checkpoint, which check_memory does not count).
        full = written == self.ring
        prev, succ = (self._prev, self._succ) if full else (self._prev[:written].to("cpu", copy=True),
                                                            self._succ[:written].to("cpu", copy=True))
        frames = None if self._frames is None else self._frames if full else self._frames[:written].to("cpu", copy=True)
        state["frames"] = {
            "written": self._written, "slack": self.slack, "stack": self.stack,
            "frames": frames,
            "prev": prev, "succ": succ,
            "heads": _sparse(self._heads), "finals": _sparse(self._finals),
            "padded": {"write": torch.tensor(list(self._padded), dtype=torch.int64),
                       "kind": torch.tensor(list(self._padded.values()), dtype=torch.int64)},
            "pending": {"traj": torch.tensor([t for t, _ in pending], dtype=torch.int64),
                        "write": torch.tensor([w for _, (w, _) in pending], dtype=torch.int64),
                        "frame": torch.stack([f for _, (_, f) in pending]) if pending else None},
        }
        return state

    def state_mismatch(self, state: dict[str, Any]) -> str | None:
        if "frames" not in state:
            return "storage state has no frames (it was saved by a storage keeping whole observations)"
        frames = state["frames"]
        if frames["stack"] != self.stack:
            return f"stored frame stacks hold {frames['stack']} frames, this run's {self.stack}"
        saved = frames["frames"]
        if saved is not None and (tuple(saved.shape[1:]) != tuple(self.frame_shape) or saved.dtype != self.frame_dtype):
            return (f"stored frames have shape {tuple(saved.shape[1:])} and dtype {saved.dtype}, this run's "
                    f"{tuple(self.frame_shape)} and {self.frame_dtype}")
        rows = self._ring_rows_problem(frames)
        if rows is not None:
            return rows
        saved_slack = frames["slack"]
        if self._slack_given and saved_slack is not None and int(saved_slack) < int(self.slack or 0):
            # (the ring's positions follow its size: the saved ring cannot take larger batches)
            room, needed = int(saved_slack) // self.stack, int(self.slack or 0) // self.stack
            return (f"the stored frame ring was sized for batches of up to {room} transitions (a slack of "
                    f"{saved_slack} frames), and this storage's batches hold {needed}: use batches of at most "
                    f"{room} transitions")
        return super().state_mismatch({k: v for k, v in state.items() if k != "frames"})

    def _ring_rows_problem(self, frames: dict[str, Any]) -> str | None:
        """What is wrong with the number of saved ring positions, or ``None``: the frames of the
        written positions (none before the first write), and their episode links (or, as saved
        before, those of the whole ring)."""
        written, slack = as_int(frames["written"]), frames["slack"]
        extra = None if slack is None else as_int(slack)
        if written is None or written < 0 or (extra is None and (slack is not None or written > 0)) or (
                extra is not None and extra < 0):
            return (f"stored frames have written {frames['written']!r} and slack {slack!r}; need ints >= 0 "
                    "(slack None only before the first write)")
        ring = 0 if extra is None else self.capacity + extra
        filled = min(written, ring)
        for name in ("frames", "prev", "succ"):
            value = frames[name]
            if name == "frames" and written == 0:
                if value is None:
                    continue
                allowed: tuple[int, ...] = ()
            else:
                allowed = (filled,) if name == "frames" or written == 0 else (filled, ring)
            rows = value.shape[0] if isinstance(value, torch.Tensor) and value.dim() else None
            if rows not in allowed:
                found = ("no tensor" if not isinstance(value, torch.Tensor)
                         else "a 0-dim tensor" if rows is None else f"{rows} rows")
                expected = " or ".join(str(n) for n in dict.fromkeys(allowed)) or "nothing (no frames written)"
                return (f"stored frame ring entry {name!r} holds {found}; a ring of {ring} positions with {written} "
                        f"transitions written saves {expected}")
        return None

    def load_state_dict(self, state: dict[str, Any], *, copy: bool = True) -> None:
        mismatch = self.state_mismatch(state)
        if mismatch:
            raise ValueError(mismatch)
        super().load_state_dict({k: v for k, v in state.items() if k != "frames"}, copy=copy)
        frames = state["frames"]
        self.slack, self._written = frames["slack"], int(frames["written"])
        device = self._device or torch.device("cpu")
        self._frames = None
        if frames["frames"] is not None:
            self._frames = torch.empty((self.ring, *self.frame_shape), dtype=self.frame_dtype, device=device)
            # copy_ moves saved host frames straight into the ring (.to(device) first would make a second
            # whole copy of them on a CUDA ring's device for the time of the assignment).
            self._frames[: frames["frames"].shape[0]].copy_(frames["frames"])
        ring = 0 if self._frames is None else self.ring
        self._prev, self._succ = _ring_links(frames["prev"], ring), _ring_links(frames["succ"], ring)
        self._heads = _dense(frames["heads"], device)
        padded = frames.get("padded")  # (absent from checkpoints before it existed: all heads kept whole)
        self._padded = {} if padded is None else dict(zip(padded["write"].tolist(), padded["kind"].tolist()))
        self._finals = _dense(frames["finals"], device)
        pending = frames["pending"]
        self._pending = {} if pending["frame"] is None else {
            int(t): (int(w), f.to(device, copy=True))
            for t, w, f in zip(pending["traj"].tolist(), pending["write"].tolist(), pending["frame"])}


#: Codes of the standard paddings of an episode's first stack (FrameStorage._padded).
_ZEROS, _REPEATED = 0, 1


def keys_next(key: NestedKey) -> NestedKey:
    """``("next", key)``."""
    key = unravel_key(key)
    return (keys.NEXT, *key) if isinstance(key, tuple) else (keys.NEXT, key)


def _ring_links(saved: torch.Tensor, ring: int) -> torch.Tensor:
    """Episode links of a ring of ``ring`` positions from those saved: all of them, or the written
    first ones (the others hold -1, never written), copied."""
    if saved.shape[0] >= ring:
        return saved.clone()
    links = torch.full((ring,), -1, dtype=torch.int64)
    links[: saved.shape[0]] = saved
    return links


def _host_lists(*flat: torch.Tensor) -> list[list]:
    """The values of same-length flat tensors as lists, read in one copy (one wait for tensors on an
    accelerator): each converted to the first one's dtype for the copy, so integers and flags stay
    exact when the first is an integer tensor (0/1 for flags: the same truth values)."""
    head = flat[0]
    return torch.stack([t.to(head.device, head.dtype) for t in flat]).tolist()


def _sparse(store: dict[int, torch.Tensor]) -> dict[str, Any]:
    return {"write": torch.tensor(list(store), dtype=torch.int64),
            "value": torch.stack(list(store.values())) if store else None}


def _dense(saved: dict[str, Any], device: torch.device) -> dict[int, torch.Tensor]:
    if saved["value"] is None:
        return {}
    return {int(w): v.to(device, copy=True) for w, v in zip(saved["write"].tolist(), saved["value"])}
