"""Collects the batches of several seeds at once: one env per seed, one batched policy call per step."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import numpy as np
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import unravel_key

from rlkit import keys
from rlkit.collectors.collector import Collector, pack
from rlkit.envs.gym_env import StepResult
from rlkit.modules import EGreedyPolicy, ExplorationType, ProbabilisticActor, action_call, set_exploration_type
from rlkit.utils.seeds import SeedStreams

__all__ = ["MultiSeedCollector"]

#: A seed-stacked acting call: the policy's inputs ``[N, ...]`` and a function giving them per seed
#: (built only where a path needs them) -> the policy's outputs ``[N, ...]``.
Act = Callable[[list[torch.Tensor], Callable[[], list[list[torch.Tensor]]]], tuple[torch.Tensor, ...]]


class MultiSeedCollector:
    """Drives one :class:`~rlkit.collectors.Collector` per seed in lockstep.

    Every step stacks the seeds' observations (``[N, num_envs, ...]``), runs the seed-stacked
    ``policy`` once (its networks hold the ``N`` seeds' parameters on a leading dim, see
    :func:`rlkit.modules.mlp.stack_seed_parameters_`) and advances each seed's env with its slice.
    Each seed's random draws (exploration coins and random actions of an
    :class:`~rlkit.modules.EGreedyPolicy`, the action samples of a
    :class:`~rlkit.modules.ProbabilisticActor`) come from that seed's own stream in ``streams``, in
    the order the ordinary collector makes them. The seeds' batches are assembled at once, one
    ``[N, *batch]`` TensorDict whose row ``k`` is what seed ``k``'s collector would assemble, with
    that collector keeping the seed's episode bookkeeping. Seed ``k``'s batches are thus those of
    the ordinary run of seed ``k`` up to the float rounding of the batched network call, and never
    depend on the other seeds.

    Args:
        collectors: one per seed, each with its own env (seeded as the ordinary run of that seed).
        policy: the seed-stacked acting policy (an ``EGreedyPolicy`` or a ``ProbabilisticActor``).
        streams: the seeds' random streams.
    """

    def __init__(self, collectors: Sequence[Collector], policy: TensorDictModuleBase, streams: SeedStreams) -> None:
        if len(collectors) != len(streams):
            raise ValueError(f"{len(collectors)} collectors for {len(streams)} seed streams")
        self.collectors = list(collectors)
        self.policy = policy
        self.streams = streams
        first = self.collectors[0]
        self.has_mask = first.env.next_state_tensors()[1] is not None
        state_keys = [keys.OBSERVATION] + ([keys.ACTION_MASK] if self.has_mask else [])
        self._positions = [state_keys.index(unravel_key(k)) for k in policy.in_keys]
        out_keys = [unravel_key(k) for k in policy.out_keys]
        self._action_at = out_keys.index(keys.ACTION)
        self._act = self._make_act(policy)

    @property
    def frames(self) -> int:
        """Frames collected per seed."""
        return self.collectors[0].frames

    @property
    def frames_per_batch(self) -> int:
        """Frames of each seed per batch."""
        return self.collectors[0].frames_per_batch

    def _make_act(self, policy: TensorDictModuleBase) -> Act:
        streams = self.streams
        if isinstance(policy, EGreedyPolicy) and policy.explores_seeds:
            # One draw call per seed from its own generator, no swapping of the global state. The
            # coins and random actions are drawn on the CPU on any device (explores_seeds), so each
            # seed's CPU generator holds what the global one would in its ordinary run, CUDA too.
            greedy_seeds = action_call(policy.policy)
            n_inputs = len(policy.policy.in_keys)
            generators = [streams.generator(k) for k in range(len(streams))]

            def egreedy_seeds(state: list[torch.Tensor], per_seed: Callable[[], list[list[torch.Tensor]]]) -> tuple:
                actions = policy.explore_seeds(state[0], lambda: greedy_seeds(*state[:n_inputs]), generators)
                return (torch.stack(actions),)

            return egreedy_seeds
        if isinstance(policy, EGreedyPolicy):
            greedy_call = action_call(policy.policy)
            n_greedy = len(policy.policy.in_keys)
            mask_at = policy.mask_position  # (the greedy policy may read the mask too)

            def egreedy(state: list[torch.Tensor], per_seed: Callable[[], list[list[torch.Tensor]]]) -> tuple:
                cache: list[torch.Tensor] = []

                def greedy_all() -> torch.Tensor:  # one batched call, only when some seed acts greedily
                    if not cache:
                        cache.append(greedy_call(*state[:n_greedy]))
                    return cache[0]

                def greedy_of(k: int) -> Callable[[], torch.Tensor]:
                    return lambda: greedy_all()[k]

                actions: list[torch.Tensor] = []
                for k, inputs in enumerate(per_seed()):
                    mask = None if mask_at is None else inputs[mask_at]
                    with streams.use(k):
                        actions.append(policy.explore_around(inputs[0], greedy_of(k), mask))
                return (torch.stack(actions),)

            return egreedy
        if isinstance(policy, ProbabilisticActor):
            def probabilistic(state: list[torch.Tensor], per_seed: Callable[[], list[list[torch.Tensor]]]) -> tuple:
                def sample_with(sample: Callable[..., tuple], *params: torch.Tensor) -> tuple[torch.Tensor, ...]:
                    drawn = []
                    for k in range(len(streams)):
                        with streams.use(k):
                            drawn.append(sample(*[p[k] for p in params]))
                    return tuple(torch.stack(column) for column in zip(*drawn))

                return tuple(policy.act(*state, sample_with=sample_with))

            return probabilistic
        raise TypeError(f"a multi-seed run acts with an EGreedyPolicy or a ProbabilisticActor, got "
                        f"{type(policy).__name__}")

    def next_batch(self) -> TensorDict:
        """One batch of every seed, stacked: ``[N, *batch]``, row ``k`` what seed ``k``'s collector
        would give (its ``frames_per_batch`` frames, in its layout)."""
        collectors = self.collectors
        n, steps = len(collectors), collectors[0].steps_per_batch
        current = [c.env.next_state_tensors() for c in collectors]
        per_step: list[tuple[torch.Tensor, ...]] = []  # what the envs provided, then the policy's outputs: [N, E, ...]
        results: list[list[StepResult]] = [[] for _ in collectors]
        positions, action_at = self._positions, self._action_at
        with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
            for _ in range(steps):
                obs = torch.stack([o for o, _ in current])
                state = (obs, torch.stack([cast(torch.Tensor, m) for _, m in current])) if self.has_mask else (obs,)
                inputs = [state[i] for i in positions]
                outputs = self._act(inputs, lambda: [[x[k] for x in inputs] for k in range(n)])
                action = outputs[action_at]
                for k, collector in enumerate(collectors):
                    res = collector.env.advance(action[k])
                    results[k].append(res)
                    current[k] = (res.observation, res.action_mask)
                per_step.append(state + outputs)
        return self._assemble(per_step, results)

    def _assemble(self, per_step: list[tuple[torch.Tensor, ...]], results: list[list[StepResult]]) -> TensorDict:
        """The stacked batch of ``per_step``'s tensors and the seeds' env ``results`` (what
        :meth:`Collector._assemble <rlkit.collectors.Collector>` makes of one seed's, for all seeds
        at once), with each seed's episode bookkeeping done by its collector."""
        collectors = self.collectors
        first = collectors[0]
        n, envs, steps = len(collectors), first.env.num_envs, len(per_step)
        shape = [n, envs * steps] if first.layout == "flat" else [n, envs, steps]
        data: dict = {}
        for key, column in zip([*first.state_keys, *first.out_keys], zip(*per_step)):
            joined = torch.stack(column, 2)  # [N, E, T, ...]
            data[key] = joined.reshape(*shape, *joined.shape[3:])

        def seed_env_time(field: int) -> np.ndarray:
            """Field ``field`` of every step result as ``[N, E, T, ...]``."""
            stacked = np.stack([cast(np.ndarray, res[field]) for seed in results for res in seed])  # [N * T, E, ...]
            return stacked.reshape(n, steps, *stacked.shape[1:]).swapaxes(1, 2)

        def batch(array: np.ndarray) -> np.ndarray:
            return np.ascontiguousarray(array).reshape(*shape, *array.shape[3:])

        fields = StepResult._fields
        rewards = seed_env_time(fields.index("reward"))
        dones = seed_env_time(fields.index("done"))
        # The raw rewards and the episode ends are those arrays themselves unless a transform or a
        # life-loss wrapper made others (as the ordinary collector finds them).
        same_raw = all(seed[0].raw_reward is seed[0].reward for seed in results)
        raw = rewards if same_raw else seed_env_time(fields.index("raw_reward"))
        same_ends = all(res.episode_end is res.done for seed in results for res in seed)
        ends = dones if same_ends else seed_env_time(fields.index("episode_end"))
        traj, step = zip(*(c.record_episodes(raw[k], ends[k]) for k, c in enumerate(collectors)))
        for c in collectors:
            c.frames += c.frames_per_batch
            c.batches += 1
        data[keys.TRAJ_ID] = np.stack(traj).reshape(shape)
        data[keys.STEP_COUNT] = np.stack(step).reshape(shape)
        masks = None if results[0][0].next_action_mask is None else batch(seed_env_time(fields.index("next_action_mask")))
        return pack(data, batch(seed_env_time(fields.index("next_observation"))), batch(rewards),
                    batch(seed_env_time(fields.index("terminated"))), batch(seed_env_time(fields.index("truncated"))),
                    batch(dones), masks, shape, data[keys.ACTION].device, first.env.device)

    def state_dict(self) -> dict:
        return {"collectors": [c.state_dict() for c in self.collectors], "streams": self.streams.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for collector, part in zip(self.collectors, state["collectors"], strict=True):
            collector.load_state_dict(part)
        self.streams.load_state_dict(state["streams"])

    def close(self) -> None:
        for collector in self.collectors:
            collector.env.close()
