"""Collects the batches of several seeds at once: one env per seed, one batched policy call per step."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import unravel_key

from rlkit import keys
from rlkit.collectors.collector import Collector
from rlkit.modules import EGreedyPolicy, ExplorationType, ProbabilisticActor, action_call, set_exploration_type
from rlkit.utils.seeds import SeedStreams

__all__ = ["MultiSeedCollector"]

Act = Callable[[list[torch.Tensor], list[list[torch.Tensor]]], list[tuple[torch.Tensor, ...]]]


class MultiSeedCollector:
    """Drives one :class:`~rlkit.collectors.Collector` per seed in lockstep.

    Every step stacks the seeds' observations (``[N, num_envs, ...]``), runs the seed-stacked
    ``policy`` once (its networks hold the ``N`` seeds' parameters on a leading dim, see
    :func:`rlkit.modules.mlp.stack_seed_parameters_`) and advances each seed's env with its slice.
    Each seed's random draws (exploration coins and random actions of an
    :class:`~rlkit.modules.EGreedyPolicy`, the action samples of a
    :class:`~rlkit.modules.ProbabilisticActor`) come from that seed's own stream in ``streams``, in
    the order the ordinary collector makes them; each seed's batch is assembled by its own
    collector (:meth:`~rlkit.collectors.Collector.finish_batch`). Seed ``k``'s batches are thus
    those of the ordinary run of seed ``k`` up to the float rounding of the batched network call,
    and never depend on the other seeds.

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

    def _make_act(self, policy: TensorDictModuleBase) -> Act:
        streams = self.streams
        if isinstance(policy, EGreedyPolicy) and policy.explores_seeds and streams.device is None:
            # One draw call per seed from its own generator, no swapping of the global state.
            greedy_seeds = action_call(policy.policy)
            n_inputs = len(policy.policy.in_keys)
            generators = [streams.generator(k) for k in range(len(streams))]

            def egreedy_seeds(state: list[torch.Tensor], per_seed: list[list[torch.Tensor]]) -> list[tuple]:
                actions = policy.explore_seeds(state[0], lambda: greedy_seeds(*state[:n_inputs]), generators)
                return [(action,) for action in actions]

            return egreedy_seeds
        if isinstance(policy, EGreedyPolicy):
            greedy_call = action_call(policy.policy)
            n_greedy = len(policy.policy.in_keys)
            mask_at = policy.mask_position  # (the greedy policy may read the mask too)

            def egreedy(state: list[torch.Tensor], per_seed: list[list[torch.Tensor]]) -> list[tuple[torch.Tensor, ...]]:
                cache: list[torch.Tensor] = []

                def greedy_all() -> torch.Tensor:  # one batched call, only when some seed acts greedily
                    if not cache:
                        cache.append(greedy_call(*state[:n_greedy]))
                    return cache[0]

                def greedy_of(k: int) -> Callable[[], torch.Tensor]:
                    return lambda: greedy_all()[k]

                actions: list[tuple[torch.Tensor, ...]] = []
                for k, inputs in enumerate(per_seed):
                    mask = None if mask_at is None else inputs[mask_at]
                    with streams.use(k):
                        actions.append((policy.explore_around(inputs[0], greedy_of(k), mask),))
                return actions

            return egreedy
        if isinstance(policy, ProbabilisticActor):
            def probabilistic(state: list[torch.Tensor], per_seed: list[list[torch.Tensor]]) -> list[tuple]:
                def sample_with(sample: Callable[..., tuple], *params: torch.Tensor) -> tuple[torch.Tensor, ...]:
                    drawn = []
                    for k in range(len(streams)):
                        with streams.use(k):
                            drawn.append(sample(*[p[k] for p in params]))
                    return tuple(torch.stack(column) for column in zip(*drawn))

                outputs = policy.act(*state, sample_with=sample_with)
                return [tuple(o[k] for o in outputs) for k in range(len(streams))]

            return probabilistic
        raise TypeError(f"a multi-seed run acts with an EGreedyPolicy or a ProbabilisticActor, got "
                        f"{type(policy).__name__}")

    def next_batches(self) -> list[TensorDict]:
        """One batch per seed (each of its collector's ``frames_per_batch`` frames)."""
        collectors = self.collectors
        steps = collectors[0].steps_per_batch
        current = [c.env.next_state_tensors() for c in collectors]
        taken: list[list[tuple]] = [[] for _ in collectors]
        results: list[list] = [[] for _ in collectors]
        positions, action_at = self._positions, self._action_at
        with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
            for _ in range(steps):
                states = [(obs,) if mask is None else (obs, mask) for obs, mask in current]
                per_seed = [[s[i] for i in positions] for s in states]
                stacked = [torch.stack([inputs[j] for inputs in per_seed]) for j in range(len(positions))]
                outputs = self._act(stacked, per_seed)
                for k, collector in enumerate(collectors):
                    res = collector.env.advance(outputs[k][action_at])
                    taken[k].append(states[k] + outputs[k])
                    results[k].append(res)
                    current[k] = (res.observation, res.action_mask)
        return [c.finish_batch(t, r) for c, t, r in zip(collectors, taken, results)]

    def state_dict(self) -> dict:
        return {"collectors": [c.state_dict() for c in self.collectors], "streams": self.streams.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        for collector, part in zip(self.collectors, state["collectors"], strict=True):
            collector.load_state_dict(part)
        self.streams.load_state_dict(state["streams"])

    def close(self) -> None:
        for collector in self.collectors:
            collector.env.close()
