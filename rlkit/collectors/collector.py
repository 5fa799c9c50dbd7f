"""Runs a policy in a :class:`~rlkit.envs.GymEnv` and yields batches of transitions."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import torch
from tensordict import TensorDict

from rlkit.collectors.episodes import EpisodeTracker
from rlkit.envs import GymEnv
from rlkit.modules import ExplorationType, set_exploration_type
from rlkit.modules._entries import EntryFunction, entry_function
from rlkit.utils.tensordicts import assembled

Layout = Literal["time", "flat"]
LAYOUTS = ("time", "flat")
_UNSET = object()


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


class Collector:
    """Collects ``frames_per_batch`` frames per batch from ``env`` with ``policy``, up to ``total_frames``.

    The policy (a TensorDict -> TensorDict callable such as a ``TensorDictModule``) reads
    ``"observation"`` (and ``"action_mask"`` when the env has one) and writes ``"action"``; it runs
    under ``torch.no_grad()`` and ``set_exploration_type(exploration_type)``. Batches hold, for each
    transition, everything the policy read and wrote (e.g. ``"action_log_prob"``), the env's
    ``("next", ...)`` entries, ``"traj_id"`` (int64, unique per episode within the run, constant
    along an episode, continued across batches) and ``"step_count"`` (int64, index of the step
    within its episode); ``traj_id`` and ``step_count`` have no trailing singleton dim.

    Layouts: ``"time"`` gives ``[num_envs, T]`` batches (``T = frames_per_batch // num_envs``, each
    row a contiguous piece of one sub-env's stream, for on-policy losses); ``"flat"`` gives
    ``[frames_per_batch]`` env-major (each sub-env's ``T`` steps contiguous, for replay buffers).

    Batches whose first frame comes before ``init_random_frames`` use uniformly random (allowed)
    actions instead of the policy's; the policy's other outputs are zeros there (found by one dry
    run of the policy that leaves the random generators untouched), so every batch has the same
    keys.
    The number of batches is ``ceil(total_frames / frames_per_batch)``. The collector starts from
    ``env.reset()`` (for a freshly built env, its seeded initial observation).

    After each batch, :attr:`episode_returns` (float32) and :attr:`episode_lengths` (int64) hold the
    episodes that finished during that batch, in the order they finished (time step, then sub-env
    index; empty when none), and :attr:`frames` the frames
    collected so far. Random actions use torch's global generator: save ``torch.get_rng_state()``
    next to :meth:`state_dict` for a bit-exact resume.

    Examples:
        >>> import torch
        >>> from tensordict.nn import TensorDictModule
        >>> from rlkit.envs import GymEnv
        >>> env = GymEnv("CartPole-v1", num_envs=4, seed=0)
        >>> policy = TensorDictModule(lambda obs: (obs[..., 2] > 0).long(), ["observation"], ["action"])
        >>> collector = Collector(env, policy, frames_per_batch=64, total_frames=128)
        >>> [tuple(batch.batch_size) for batch in collector]
        [(4, 16), (4, 16)]
        >>> collector.frames
        128
    """

    def __init__(
        self,
        env: GymEnv,
        policy: Callable[[TensorDict], TensorDict],
        *,
        frames_per_batch: int,
        total_frames: int,
        layout: Layout = "time",
        exploration_type: ExplorationType = ExplorationType.RANDOM,
        init_random_frames: int = 0,
    ) -> None:
        _positive_int("frames_per_batch", frames_per_batch)
        _positive_int("total_frames", total_frames)
        _positive_int("init_random_frames", init_random_frames, minimum=0)
        if frames_per_batch % env.num_envs:
            raise ValueError(
                f"frames_per_batch={frames_per_batch} is not divisible by num_envs={env.num_envs}"
            )
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout {layout!r}; valid choices: {list(LAYOUTS)}")
        self.env = env
        self.policy = policy
        self.frames_per_batch = frames_per_batch
        self.total_frames = total_frames
        self.layout = layout
        self.exploration_type = exploration_type
        self.init_random_frames = init_random_frames
        self.frames = 0
        self.batches = 0
        self._episodes = EpisodeTracker(env.num_envs)
        self._fillers: dict | None = None
        self._entries: EntryFunction | None | object = _UNSET  # found on the first policy batch
        self.episode_returns = torch.zeros(0, dtype=torch.float32)
        self.episode_lengths = torch.zeros(0, dtype=torch.int64)
        env.reset()

    def __len__(self) -> int:
        return math.ceil(self.total_frames / self.frames_per_batch)

    def __iter__(self) -> Iterator[TensorDict]:
        while self.frames < self.total_frames:
            yield self.next_batch()

    def next_batch(self) -> TensorDict:
        """Collects one batch (whatever :attr:`frames` and :attr:`total_frames` say)."""
        env = self.env
        steps = self.frames_per_batch // env.num_envs
        random = self.frames < self.init_random_frames
        with torch.no_grad(), set_exploration_type(self.exploration_type):
            if random:
                fillers = self._policy_fillers(env.next_state())
            elif self._entries is _UNSET:
                self._entries = entry_function(self.policy)
            if random or self._entries is not None:
                taken, results = self._collect_entries(steps, fillers if random else None)
            else:
                taken, results = self._collect_tensordicts(steps)
        # The policy's entries by key, then the env's results by field: next observation, reward,
        # terminated, truncated, done, next action mask (the step results' first six fields).
        keys = list(taken[0])
        columns = [[entries[key] for entries in taken] for key in keys]
        batch = self._assemble(keys, columns, list(zip(*results))[:6])
        self.frames += self.frames_per_batch
        self.batches += 1
        return batch

    def _collect_entries(self, steps: int, fillers: dict | None) -> tuple[list[dict], list]:
        """The policy's steps on plain dicts of tensors (its :func:`~rlkit.modules.entry_function`),
        or random actions when ``fillers`` (the zeros of the policy's other outputs) are given.
        Returns each step's entries and the env's step results."""
        env, run = self.env, self._entries
        advance = env.advance_one if env.num_envs == 1 else env.advance  # one env: scalars, no arrays
        obs, mask = env.next_state_tensors()
        taken: list[dict] = []
        results: list = []
        for _ in range(steps):
            # A fresh dict each step: a policy writing in place cannot alter stored steps.
            entries = {"observation": obs} if mask is None else {"observation": obs, "action_mask": mask}
            if fillers is None:
                run(entries)
            else:
                entries["action"] = env.rand_action()
                entries.update(fillers)
            taken.append(entries)
            res = advance(entries["action"])
            results.append(res)
            obs, mask = res.observation, res.action_mask
        return taken, results

    def _collect_tensordicts(self, steps: int) -> tuple[list[dict], list]:
        """The policy's steps on TensorDicts (policies without an entry function)."""
        env = self.env
        taken: list[dict] = []
        results: list = []
        td = env.next_state()
        for _ in range(steps):
            out = self.policy(td)
            td = td if out is None else out  # callables may write in place and return None
            taken.append({key: td.get(key) for key in td.keys(include_nested=True, leaves_only=True)})
            res = env.advance(td.get("action"))
            results.append(res)
            # A fresh TensorDict each step: a policy writing in place cannot alter stored steps.
            td = self._policy_input(res)
        return taken, results

    def _policy_fillers(self, td: TensorDict) -> dict:
        """Zeros for the policy's outputs other than "action", so that random batches carry the
        same keys as policy batches (replay storages require it). Found by one dry run of the
        policy that leaves the random number generators as they were."""
        if self._fillers is None:
            devices = [td.device] if td.device is not None and td.device.type == "cuda" else []
            probe = td.clone()
            with torch.random.fork_rng(devices=devices):
                out = self.policy(probe)
            out = probe if out is None else out
            inputs = set(td.keys(include_nested=True, leaves_only=True))
            self._fillers = {
                key: torch.zeros_like(out.get(key))
                for key in out.keys(include_nested=True, leaves_only=True)
                if key not in inputs and key != "action"
            }
        return self._fillers

    def _policy_input(self, res) -> TensorDict:
        entries = {"observation": res.observation}
        if res.action_mask is not None:
            entries["action_mask"] = res.action_mask
        return TensorDict(entries, batch_size=self.env.batch_size, device=self.env.device)

    def _assemble(self, keys: list, columns: list[list[torch.Tensor]], stores: list[tuple]) -> TensorDict:
        env = self.env
        n, steps = env.num_envs, len(stores[0])
        flat = self.layout == "flat"
        # [N, T, ...] tensors, or flat [N * T, ...] env-major ones (a tensor reshape, not a TensorDict one).
        batch_shape = [n * steps] if flat else [n, steps]
        if n == 1:
            # One env: the steps joined end to end are already the env-major order. Rewards and flags
            # of GymEnv.advance_one are Python scalars (float32 values, bools).
            def join(parts: list) -> Any:
                first = parts[0]
                if isinstance(first, torch.Tensor):
                    out = torch.cat(parts)
                elif isinstance(first, np.ndarray):
                    out = np.concatenate(parts)
                else:
                    out = np.array(parts, dtype=np.float32 if type(first) is float else None)
                return out if flat else out[None]
        else:
            def join(parts: list) -> Any:
                out = torch.stack(parts, 1) if isinstance(parts[0], torch.Tensor) else np.stack(parts, 1)
                return out.reshape(n * steps, *out.shape[2:]) if flat else out

        data = {key: join(column) for key, column in zip(keys, columns)}
        device = data["action"].device
        next_obs, rewards, terms, truncs, dones, next_masks = (
            join(store) if store[0] is not None else None for store in stores
        )
        episodes = self._episodes.update(rewards.reshape(n, steps), dones.reshape(n, steps))
        self.episode_returns = torch.from_numpy(episodes.returns.astype(np.float32))
        self.episode_lengths = torch.from_numpy(episodes.lengths)
        on_cpu = device.type == "cpu"

        def tensor(array: np.ndarray) -> torch.Tensor:
            out = torch.from_numpy(array)
            return out if on_cpu else out.to(device)

        nxt = {
            "observation": tensor(next_obs),
            "reward": tensor(rewards[..., None]),
            "terminated": tensor(terms[..., None]),
            "truncated": tensor(truncs[..., None]),
            "done": tensor(dones[..., None]),
        }
        if next_masks is not None:
            nxt["action_mask"] = tensor(next_masks)
        data["traj_id"] = tensor(episodes.traj_id.reshape(batch_shape))
        data["step_count"] = tensor(episodes.step_count.reshape(batch_shape))
        # Every entry was made here with the batch shape, on the env's device: no re-validation.
        size = torch.Size(batch_shape)
        data["next"] = assembled(nxt, size, env.device)
        return assembled(data, size, env.device)

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Counters, episode bookkeeping and the env's state (``torch.load(weights_only=True)``-safe)."""
        return {
            "frames": self.frames,
            "batches": self.batches,
            "episodes": self._episodes.state_dict(),
            "episode_returns": self.episode_returns.clone(),
            "episode_lengths": self.episode_lengths.clone(),
            "env": self.env.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`: the next batches are exactly those that would have followed
        (given the same torch RNG state). Where the env could not save its sub-envs' state, their
        episodes restart (``env.restarted``): the interrupted ones are dropped, not recorded."""
        self._episodes.load_state_dict(state["episodes"])
        self.env.load_state_dict(state["env"])
        if getattr(self.env, "restarted", False):
            self._episodes.restart_all()
        self.frames = int(state["frames"])
        self.batches = int(state["batches"])
        self.episode_returns = state["episode_returns"].clone()
        self.episode_lengths = state["episode_lengths"].clone()
