"""Collector: batch layouts, no autoreset transitions, episode statistics, seeding, exact resume."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictSequential, interaction_type
from torch import nn

# The toy envs are shared with tests/envs (tests/ is not a package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "envs"))
from toy_envs import MaskedEnv, counter_fn

from rlkit.collectors import Collector
from rlkit.collectors.collector import ExplorationType
from rlkit.envs import GymEnv


def _zeros_policy() -> TensorDictModule:
    return TensorDictModule(lambda obs: torch.zeros(obs.shape[0], dtype=torch.int64), ["observation"], ["action"])


def _random_policy() -> TensorDictModule:
    return TensorDictModule(lambda obs: torch.randint(2, obs.shape[:1]), ["observation"], ["action"])


def _counter(num_envs: int, terminate_at=3, max_steps=None, seed=0, vectorization="sync") -> GymEnv:
    return GymEnv.from_factory(counter_fn(terminate_at, max_steps), num_envs, seed=seed, env_id="counter",
                               vectorization=vectorization)


def test_time_layout_shapes_keys_and_counters():
    collector = Collector(_counter(3), _zeros_policy(), frames_per_batch=12, total_frames=30)
    batches = list(collector)
    assert len(collector) == 3 and len(batches) == 3 and collector.frames == 36 and collector.batches == 3
    batch = batches[0]
    assert batch.batch_size == (3, 4)
    assert set(batch.keys(True, True)) == {
        "observation", "action", "traj_id", "step_count", ("next", "observation"), ("next", "reward"),
        ("next", "terminated"), ("next", "truncated"), ("next", "done"),
    }
    assert batch["next", "reward"].shape == (3, 4, 1) and batch["next", "done"].dtype == torch.bool
    assert batch["traj_id"].dtype == torch.int64 and batch["step_count"].shape == (3, 4)


def test_flat_layout_is_the_env_major_time_layout():
    time = next(iter(Collector(_counter(3, (1, 5)), _zeros_policy(), frames_per_batch=15, total_frames=15)))
    flat = next(iter(Collector(_counter(3, (1, 5)), _zeros_policy(), frames_per_batch=15, total_frames=15,
                               layout="flat")))
    assert flat.batch_size == (15,)
    assert (flat == time.reshape(-1)).all()
    assert (flat[5:10] == time[1]).all()  # sub-env 1's five steps, contiguous


@pytest.mark.parametrize(("num_envs", "vectorization"), [(1, "sync"), (3, "sync"), (1, "single")])
def test_no_autoreset_transitions_and_hand_computed_episode_stats(num_envs, vectorization):
    # episodes of exactly 3 steps with rewards 1, 2, 3: return 6, length 3; T = 5 splits episodes
    collector = Collector(_counter(num_envs, vectorization=vectorization), _zeros_policy(), frames_per_batch=5 * num_envs,
                          total_frames=20 * num_envs)
    seen_ids: list[int] = []
    frames = 0
    for batch in collector:
        frames += batch.numel()
        obs, nxt = batch["observation"], batch["next", "observation"]
        assert (nxt[..., 0] == obs[..., 0] + 1).all()  # every transition is a real step
        assert (nxt[..., 1] == obs[..., 1]).all()
        assert torch.equal(batch["step_count"], obs[..., 0].long())
        done = batch["next", "done"].squeeze(-1)
        assert torch.equal(done, nxt[..., 0] == 3) and not batch["next", "truncated"].any()
        assert collector.episode_returns.tolist() == [6.0] * int(done.sum())
        assert collector.episode_lengths.tolist() == [3] * int(done.sum())
        # trajectory ids: constant within an episode, new after each end
        same = batch["traj_id"][:, 1:] == batch["traj_id"][:, :-1]
        assert torch.equal(same, ~done[:, :-1])
        seen_ids += batch["traj_id"].unique().tolist()
    assert frames == collector.frames == 20 * num_envs
    # ids continue across batches and are handed out without gaps
    assert sorted(set(seen_ids)) == list(range(max(seen_ids) + 1))


def test_random_lengths_match_a_slow_loop_reference():
    env = _counter(3, terminate_at=(1, 6), max_steps=4)  # a mix of terminated and truncated episodes
    collector = Collector(env, _random_policy(), frames_per_batch=12, total_frames=120, layout="flat")
    steps_per_env = 4
    episodes: dict[int, list] = {}
    n_ended = 0
    for batch in collector:
        for i in range(batch.numel()):  # slow reference, transition by transition
            episodes.setdefault(int(batch["traj_id"][i]), []).append(batch[i])
        # episodes that ended in this batch, in the order they ended: time step, then sub-env
        ended = [i for i in range(batch.numel()) if batch["next", "done"][i]]
        ended.sort(key=lambda i: (i % steps_per_env, i // steps_per_env))  # flat is env-major
        expected_r, expected_l = [], []
        for i in ended:
            steps = episodes[int(batch["traj_id"][i])]
            assert [int(s["step_count"]) for s in steps] == list(range(len(steps)))
            expected_r.append(sum(float(s["next", "reward"]) for s in steps))
            expected_l.append(len(steps))
        assert collector.episode_returns.tolist() == expected_r
        assert collector.episode_lengths.tolist() == expected_l
        n_ended += len(ended)
    assert n_ended > 20
    last = [steps[-1] for steps in episodes.values() if steps[-1]["next", "done"]]
    assert sum(int(s["next", "terminated"]) for s in last) > 0
    assert sum(int(s["next", "truncated"]) for s in last) > 0


@pytest.mark.parametrize(("num_envs", "vectorization"), [(1, "native"), (4, "native"), (1, "single")])
def test_cartpole_episode_stats(num_envs, vectorization):
    env = GymEnv("CartPole-v1", num_envs=num_envs, seed=0, vectorization=vectorization,
                 make_kwargs={"max_episode_steps": 15})
    assert env.vectorization == vectorization
    collector = Collector(env, _random_policy(), frames_per_batch=16 * num_envs, total_frames=64 * num_envs)
    lengths: list[int] = []
    for batch in collector:
        done = batch["next", "done"].squeeze(-1)
        # ended episodes in time-major order; each one's length is its last step_count + 1
        assert torch.equal(collector.episode_lengths, batch["step_count"].T[done.T] + 1)
        assert torch.equal(collector.episode_returns, collector.episode_lengths.float())  # reward 1 per step
        assert (batch["next", "reward"] == 1).all()  # no reward-0 autoreset transitions
        lengths += collector.episode_lengths.tolist()
    assert lengths and max(lengths) <= 15


def _collect(seed: int, layout: str = "time", num_envs: int = 2) -> list[TensorDict]:
    torch.manual_seed(seed)
    env = GymEnv("CartPole-v1", num_envs=num_envs, seed=seed)
    return list(Collector(env, _random_policy(), frames_per_batch=20, total_frames=60, layout=layout))


@pytest.mark.parametrize("num_envs", [1, 2])
def test_same_seed_identical_batches_different_seed_different(num_envs):
    a, b, c = _collect(1, num_envs=num_envs), _collect(1, num_envs=num_envs), _collect(2, num_envs=num_envs)
    assert all((x == y).all() for x, y in zip(a, b))
    assert not all((x == y).all() for x, y in zip(a, c))


def test_init_random_frames_skip_the_policy_and_respect_masks():
    calls = []

    def first_allowed(mask: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return mask.long().argmax(-1)

    policy = TensorDictModule(first_allowed, ["action_mask"], ["action"])
    env = GymEnv.from_factory(lambda: MaskedEnv("info"), 2, seed=0)
    collector = Collector(env, policy, frames_per_batch=8, total_frames=32, init_random_frames=10)
    batches = list(collector)
    # batches 1-2 start before frame 10: random; batches 3-4 call the policy (+1 dry run for keys)
    assert len(calls) == 1 + 8
    for batch in batches:
        assert batch["action_mask"].gather(-1, batch["action"][..., None]).all()
        assert ("next", "action_mask") in batch.keys(True)


def test_random_batches_have_the_policy_keys_filled_with_zeros():
    policy = TensorDictModule(_Recorder(), ["observation"], ["action", "action_log_prob"])
    collector = Collector(_counter(2), policy, frames_per_batch=4, total_frames=8, init_random_frames=4)
    random_batch, policy_batch = list(collector)
    assert set(random_batch.keys(True, True)) == set(policy_batch.keys(True, True))
    assert (random_batch["action_log_prob"] == 0).all() and (policy_batch["action_log_prob"] == -0.5).all()


class _Recorder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list = []

    def forward(self, obs: torch.Tensor):
        self.seen.append((interaction_type(), torch.is_grad_enabled()))
        action = torch.zeros(obs.shape[0], dtype=torch.int64)
        return action, torch.full((obs.shape[0],), -0.5)


@pytest.mark.parametrize("exploration_type", [ExplorationType.RANDOM, ExplorationType.DETERMINISTIC])
def test_policy_runs_without_grad_under_the_exploration_type_and_its_outputs_are_kept(exploration_type):
    recorder = _Recorder()
    policy = TensorDictModule(recorder, ["observation"], ["action", "action_log_prob"])
    collector = Collector(_counter(2), policy, frames_per_batch=6, total_frames=6, exploration_type=exploration_type)
    batch = next(iter(collector))
    assert [(t.value, grad) for t, grad in recorder.seen] == [(exploration_type.value, False)] * 3
    assert batch["action_log_prob"].shape == (2, 3) and (batch["action_log_prob"] == -0.5).all()


def _through_disk(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("make_env", [
    lambda seed: GymEnv("CartPole-v1", num_envs=2, seed=seed, make_kwargs={"max_episode_steps": 9}),
    lambda seed: GymEnv("CartPole-v1", num_envs=1, seed=seed, make_kwargs={"max_episode_steps": 9}),
    lambda seed: _counter(3, terminate_at=(1, 6), max_steps=4, seed=seed),
    lambda seed: _counter(1, terminate_at=(1, 6), max_steps=4, seed=seed, vectorization="single"),
], ids=["cartpole-native", "cartpole-single", "counter-sync", "counter-single"])
def test_state_dict_resume_is_bit_exact(make_env):
    torch.manual_seed(0)
    collector = Collector(make_env(0), _random_policy(), frames_per_batch=12, total_frames=10_000,
                          init_random_frames=36)  # the resume happens among the random batches
    for _ in range(2):
        collector.next_batch()
    state, rng = _through_disk(collector.state_dict()), torch.get_rng_state()
    expected = [(collector.next_batch(), collector.episode_returns, collector.episode_lengths) for _ in range(3)]
    resumed = Collector(make_env(99), _random_policy(), frames_per_batch=12, total_frames=10_000,
                        init_random_frames=36)
    resumed.load_state_dict(state)
    torch.set_rng_state(rng)
    assert resumed.frames == 24 and resumed.batches == 2
    for batch, returns, lengths in expected:
        got = resumed.next_batch()
        assert (got == batch).all()
        assert torch.equal(resumed.episode_returns, returns) and torch.equal(resumed.episode_lengths, lengths)
    assert any(r.numel() for _, r, _ in expected)


def test_bad_arguments_are_named():
    env = _counter(3)
    with pytest.raises(ValueError, match="frames_per_batch=10 is not divisible by num_envs=3"):
        Collector(env, _zeros_policy(), frames_per_batch=10, total_frames=30)
    with pytest.raises(ValueError, match=r"unknown layout 'batch'; valid choices: \['time', 'flat'\]"):
        Collector(env, _zeros_policy(), frames_per_batch=9, total_frames=30, layout="batch")
    with pytest.raises(ValueError, match="frames_per_batch must be an int >= 1, got 0"):
        Collector(env, _zeros_policy(), frames_per_batch=0, total_frames=30)
    with pytest.raises(ValueError, match="total_frames must be an int >= 1, got -1"):
        Collector(env, _zeros_policy(), frames_per_batch=9, total_frames=-1)
    with pytest.raises(ValueError, match="init_random_frames must be an int >= 0, got -5"):
        Collector(env, _zeros_policy(), frames_per_batch=9, total_frames=9, init_random_frames=-5)
    two = Collector(_counter(2), _zeros_policy(), frames_per_batch=4, total_frames=4)
    three = Collector(env, _zeros_policy(), frames_per_batch=9, total_frames=9)
    with pytest.raises(ValueError, match="episode state is for 2 envs, this collector has 3"):
        three.load_state_dict(two.state_dict())


def test_tensors_live_on_the_env_device():
    device = torch.device("cpu")  # the only device on CI; the same code path moves tensors for cuda
    env = GymEnv("CartPole-v1", num_envs=2, seed=0, device=device)
    assert env.device == device and env.rand_action().device == device
    batch = next(iter(Collector(env, _zeros_policy(), frames_per_batch=4, total_frames=4)))
    assert batch.device == device and batch["next", "reward"].device == device


def _dqn_policy(env: GymEnv, foreign: bool):
    from rlkit.modules import MLP, EGreedyModule, QValueActor, SafeSequential

    actor = QValueActor(MLP(1, 3, [8]), spec=env.action_spec, action_mask_key="action_mask")
    explore = EGreedyModule(env.action_spec, eps_init=0.5, action_mask_key="action_mask")
    return (TensorDictSequential if foreign else SafeSequential)(actor, explore)


def _a2c_policy(env: GymEnv, foreign: bool):
    from rlkit.modules import MLP, Categorical, ProbabilisticActor

    logits = TensorDictModule(MLP(2, 2, [8]), ["observation"], ["logits"])
    actor = ProbabilisticActor(logits, ["logits"], spec=env.action_spec, distribution_class=Categorical,
                               return_log_prob=True)
    return TensorDictSequential(actor) if foreign else actor


@pytest.mark.parametrize("make_policy", [_dqn_policy, _a2c_policy], ids=["dqn", "a2c"])
@pytest.mark.parametrize(("num_envs", "vectorization"), [(2, "sync"), (1, "single")])
def test_tensor_calls_collect_the_batches_of_the_tensordict_call(make_policy, num_envs, vectorization):
    def batches(foreign: bool) -> list[TensorDict]:
        torch.manual_seed(0)
        masked = make_policy is _dqn_policy  # the DQN policy reads an action mask; the A2C one does not
        env_fn = (lambda: MaskedEnv("info")) if masked else counter_fn((1, 6), 4)
        env = GymEnv.from_factory(env_fn, num_envs, seed=0, vectorization=vectorization)
        # rlkit modules are called through act(); tensordict's own sequence through its TensorDict call
        policy = make_policy(env, foreign)
        collector = Collector(env, policy, frames_per_batch=6 * num_envs, total_frames=30 * num_envs,
                              init_random_frames=6 * num_envs)
        assert collector.policy is policy
        return list(collector)

    fast, slow = batches(False), batches(True)
    assert len(fast) == len(slow) == 5
    for a, b in zip(fast, slow):
        assert set(a.keys(True, True)) == set(b.keys(True, True))
        assert (a == b).all()
        if "action_mask" in a.keys():
            assert a["action_mask"].gather(-1, a["action"][..., None]).all()  # masked actions never taken


@pytest.mark.parametrize("streams_device", [None, torch.device("cuda")])
def test_a_multi_seed_run_explores_each_seed_with_its_cpu_generator_on_any_device(streams_device, monkeypatch):
    """The ε-greedy coins and random actions are drawn on the CPU on every device, so a multi-seed
    run on CUDA takes the per-seed path too (EGreedyPolicy.explore_seeds with each seed's CPU
    generator) and seed k's actions are those of its ordinary run. Streams naming a CUDA device
    stand in for a CUDA run here: without CUDA generators their CPU ones are all there is."""
    from rlkit.collectors.multiseed import MultiSeedCollector
    from rlkit.modules import EGreedyModule, EGreedyPolicy, QValueActor
    from rlkit.utils.seeds import SeedStreams

    seeds = (3, 4)

    def policy_for(env: GymEnv) -> EGreedyPolicy:
        torch.manual_seed(0)
        actor = QValueActor(nn.Linear(2, 2), spec=env.action_spec)
        return EGreedyPolicy(actor, EGreedyModule(env.action_spec, eps_init=0.5, eps_end=0.5))

    calls: list[int] = []
    explore_seeds = EGreedyPolicy.explore_seeds

    def counted(self, *args, **kwargs):
        calls.append(1)
        return explore_seeds(self, *args, **kwargs)

    monkeypatch.setattr(EGreedyPolicy, "explore_seeds", counted)
    envs = [_counter(2, (1, 5), seed=s) for s in seeds]
    policy = policy_for(envs[0])
    collectors = [Collector(env, policy, frames_per_batch=16, total_frames=32) for env in envs]
    streams = SeedStreams([torch.Generator().manual_seed(s).get_state() for s in seeds], None, streams_device)
    assert streams.device == streams_device
    multi = MultiSeedCollector(collectors, policy, streams)
    batches = [multi.next_batch() for _ in range(2)]
    assert len(calls) == 2 * 8  # every step on the per-seed path
    for k, seed in enumerate(seeds):
        env = _counter(2, (1, 5), seed=seed)
        ordinary_policy = policy_for(env)
        torch.manual_seed(seed)  # (the state SeedStreams.seeded starts seed k's stream from)
        alone = list(Collector(env, ordinary_policy, frames_per_batch=16, total_frames=32))
        for batch, ordinary in zip(batches, alone):
            assert torch.equal(batch[k]["action"], ordinary["action"])
            assert torch.equal(batch[k]["observation"], ordinary["observation"])
