"""Runs a policy in a :class:`~rlkit.envs.GymEnv` and yields batches of transitions."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import unravel_key

from rlkit import keys
from rlkit.collectors.episodes import EpisodeTracker
from rlkit.envs import GymEnv
from rlkit.modules import ExplorationType, set_exploration_type, tensor_call
from rlkit.utils.tensordicts import assembled

Layout = Literal["time", "flat"]
LAYOUTS = ("time", "flat")


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def pack(data: dict, next_obs: np.ndarray, rewards: np.ndarray, terms: np.ndarray, truncs: np.ndarray,
         dones: np.ndarray, next_masks: np.ndarray | None, batch_shape: list[int], device: torch.device,
         td_device: torch.device | None) -> TensorDict:
    """A batch TensorDict of ``batch_shape`` (on ``td_device``, the env's) from the policy side's
    tensors ``data`` (``traj_id`` and ``step_count`` as arrays) and the env side's arrays (rewards
    and flags without their trailing singleton dim), which go to ``device`` (the actions')."""
    on_cpu = device.type == "cpu"

    def tensor(array: np.ndarray) -> torch.Tensor:
        out = torch.from_numpy(array)
        return out if on_cpu else out.to(device)

    nxt = {
        keys.OBSERVATION: tensor(next_obs),
        keys.REWARD: tensor(rewards[..., None]),
        keys.TERMINATED: tensor(terms[..., None]),
        keys.TRUNCATED: tensor(truncs[..., None]),
        keys.DONE: tensor(dones[..., None]),
    }
    if next_masks is not None:
        nxt[keys.ACTION_MASK] = tensor(next_masks)
    data[keys.TRAJ_ID] = tensor(data[keys.TRAJ_ID])
    data[keys.STEP_COUNT] = tensor(data[keys.STEP_COUNT])
    # Every entry was made with the batch shape, on the env's device: no re-validation.
    size = torch.Size(batch_shape)
    data[keys.NEXT] = assembled(nxt, size, td_device)
    return assembled(data, size, td_device)


class Collector:
    """Collects ``frames_per_batch`` frames per batch from ``env`` with ``policy``, up to ``total_frames``.

    The policy reads ``"observation"`` (and ``"action_mask"`` when the env has one) and writes
    ``"action"``; it is called on tensors through its tensor-level call
    (:func:`rlkit.modules.tensor_call`: an rlkit module's ``act``, any other TensorDict module's
    TensorDict call), under ``torch.no_grad()`` and ``set_exploration_type(exploration_type)``.
    Batches hold, for each transition, everything the policy read and wrote (its ``in_keys`` and
    ``out_keys``, e.g. ``"logits"``), the env's
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
        >>> from rlkit.collectors import Collector
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
        policy: TensorDictModuleBase,
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
        self._act = tensor_call(policy)
        if not isinstance(policy, TensorDictModuleBase):
            raise TypeError(f"the policy must be a TensorDict module (with in_keys and out_keys), got "
                            f"{type(policy).__name__}; wrap a function in tensordict.nn.TensorDictModule")
        # What the env provides each step, stored with every transition.
        self._state_keys = [keys.OBSERVATION] + ([keys.ACTION_MASK] if keys.ACTION_MASK in env.observation_spec.keys()
                                                 else [])
        in_keys = [unravel_key(k) for k in policy.in_keys]
        self._out_keys = [unravel_key(k) for k in policy.out_keys]
        unknown = [k for k in in_keys if k not in self._state_keys]
        if unknown:
            raise ValueError(f"the policy reads {unknown}, which env {env.env_id!r} does not provide; it provides "
                             f"{self._state_keys}")
        if keys.ACTION not in self._out_keys:
            raise ValueError(f"the policy writes {self._out_keys}, not {keys.ACTION!r}")
        self._policy_positions = [self._state_keys.index(k) for k in in_keys]
        self._action_at = self._out_keys.index(keys.ACTION)
        self._fillers: tuple | None = None
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
        with torch.no_grad(), set_exploration_type(self.exploration_type):
            act = self._random_act() if self.frames < self.init_random_frames else self._act
            taken, results = self._collect(steps, act)
        return self.finish_batch(taken, results)

    @property
    def steps_per_batch(self) -> int:
        """Steps of every sub-env per batch."""
        return self.frames_per_batch // self.env.num_envs

    @property
    def state_keys(self) -> list:
        """What the env provides each step and every transition stores: the observation, then the
        action mask where the env has one."""
        return list(self._state_keys)

    @property
    def out_keys(self) -> list:
        """The policy's outputs every transition stores (``"action"`` among them)."""
        return list(self._out_keys)

    def finish_batch(self, taken: list[tuple], results: list) -> TensorDict:
        """The batch of the steps :meth:`_collect` took: ``taken`` holds, per step, what the env
        provided (:attr:`state_keys` order) followed by the policy's outputs (:attr:`out_keys`
        order); ``results`` the env's :class:`~rlkit.envs.gym_env.StepResult` of each step. Does
        the episode bookkeeping (:meth:`record_episodes`) and counts the frames."""
        keys_in_order = [*self._state_keys, *self._out_keys]
        columns = list(zip(*taken))
        # The env's results by field: next observation, reward, terminated, truncated, done, next
        # action mask (the step results' first six fields), and the raw rewards (the episodes' returns).
        fields = list(zip(*results))
        batch = self._assemble(keys_in_order, columns, fields[:6], fields[8], fields[9])
        self.frames += self.frames_per_batch
        self.batches += 1
        return batch

    def _collect(self, steps: int, act: Callable[..., tuple]) -> tuple[list[tuple], list]:
        """``steps`` steps of every sub-env: what the env provided and the policy's outputs at each
        step (in ``state_keys`` then ``out_keys`` order), and the env's step results."""
        env, action_at, positions = self.env, self._action_at, self._policy_positions
        obs, mask = env.next_state_tensors()
        plain = positions == [0]  # the policy reads the observation alone
        taken: list[tuple] = []
        results: list = []
        for _ in range(steps):
            state = (obs,) if mask is None else (obs, mask)
            outputs = act(obs) if plain else act(*[state[i] for i in positions])
            taken.append(state + outputs)
            res = env.advance(outputs[action_at])
            results.append(res)
            obs, mask = res.observation, res.action_mask
        return taken, results

    def _random_act(self) -> Callable[..., tuple]:
        """Uniformly random (allowed) actions in the policy's output layout: its other outputs are
        zeros (found by one dry run of the policy that leaves the random generators untouched), so
        every batch has the same keys."""
        if self._fillers is None:
            obs, mask = self.env.next_state_tensors()
            state = (obs,) if mask is None else (obs, mask)
            inputs = [state[i] for i in self._policy_positions]
            devices = [obs.device] if obs.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):
                outputs = self._act(*inputs)
            self._fillers = tuple(torch.zeros_like(value) for value in outputs)
        fillers, action_at, env = self._fillers, self._action_at, self.env

        def random_act(*inputs: torch.Tensor) -> tuple:
            return fillers[:action_at] + (env.rand_action(),) + fillers[action_at + 1:]

        return random_act

    def _assemble(self, keys_in_order: list, columns: list[tuple], stores: list[tuple],
                  raw_rewards: tuple, episode_ends: tuple) -> TensorDict:
        env = self.env
        n, steps = env.num_envs, len(stores[0])
        flat = self.layout == "flat"
        # [N, T, ...] tensors, or flat [N * T, ...] env-major ones (a tensor reshape, not a TensorDict one).
        batch_shape = [n * steps] if flat else [n, steps]

        def join(parts: tuple) -> Any:
            if n == 1:  # the steps end to end are already the env-major order
                out = torch.cat(parts) if isinstance(parts[0], torch.Tensor) else np.concatenate(parts)
                return out if flat else out[None]
            out = torch.stack(parts, 1) if isinstance(parts[0], torch.Tensor) else np.stack(parts, 1)
            return out.reshape(n * steps, *out.shape[2:]) if flat else out

        data = {key: join(column) for key, column in zip(keys_in_order, columns)}
        device = data[keys.ACTION].device
        # Only the mask store may hold None (an env without action masks).
        joined: list[Any] = [join(store) if store[0] is not None else None for store in stores]
        next_obs, rewards, terms, truncs, dones, next_masks = joined
        raw = rewards if raw_rewards[0] is stores[1][0] else join(raw_rewards)  # the same arrays without transforms
        # Games, not lives (Atari): the done arrays themselves unless a step's differ.
        same = all(end is done for end, done in zip(episode_ends, stores[4]))
        ends = dones if same else join(episode_ends)
        traj_id, step_count = self.record_episodes(raw.reshape(n, steps), ends.reshape(n, steps))
        data[keys.TRAJ_ID] = traj_id.reshape(batch_shape)
        data[keys.STEP_COUNT] = step_count.reshape(batch_shape)
        return pack(data, next_obs, rewards, terms, truncs, dones, next_masks, batch_shape, device, env.device)

    def record_episodes(self, raw_rewards: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Episode bookkeeping of one batch (``[num_envs, T]`` raw rewards and episode ends): sets
        :attr:`episode_returns` / :attr:`episode_lengths`; returns the transitions' ``traj_id`` and
        ``step_count`` (``[num_envs, T]``)."""
        episodes = self._episodes.update(raw_rewards, ends)
        self.episode_returns = torch.from_numpy(episodes.returns.astype(np.float32))
        self.episode_lengths = torch.from_numpy(episodes.lengths)
        return episodes.traj_id, episodes.step_count

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
