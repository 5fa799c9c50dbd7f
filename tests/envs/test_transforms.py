"""Env transforms (rlkit/envs/transforms.py): VecNormalize semantics against a slow exact reference,
reward clipping, gymnasium wrappers from config, state round trips and frozen evaluation views."""
from __future__ import annotations

from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest
import torch
from toy_envs import counter_fn

from rlkit.envs import GymEnv
from rlkit.envs.transforms import ClipReward, Normalize, RunningMeanStd, TransformStep, build_transforms


# -- a slow reference of stable-baselines3's VecNormalize, in exact rational arithmetic ------------
class SlowStats:
    """Running mean / variance of rows, merged batch by batch exactly as VecNormalize's
    RunningMeanStd does (mean 0, var 1, count 1e-4 to start), one element at a time, with Fractions."""

    def __init__(self, size: int) -> None:
        self.mean = [Fraction(0)] * size
        self.var = [Fraction(1)] * size
        self.count = Fraction(1, 10_000)

    def update(self, rows: list[list[Fraction]]) -> None:
        n = len(rows)
        for j in range(len(self.mean)):
            column = [row[j] for row in rows]
            batch_mean = sum(column) / n
            batch_var = sum((x - batch_mean) ** 2 for x in column) / n
            delta = batch_mean - self.mean[j]
            total = self.count + n
            m2 = self.var[j] * self.count + batch_var * n + delta ** 2 * self.count * n / total
            self.mean[j] = self.mean[j] + delta * n / total
            self.var[j] = m2 / total
        self.count += n


class SlowVecNormalize:
    """VecNormalize's reset / step formulas, one sub-env and one element at a time."""

    def __init__(self, num_envs: int, size: int, gamma: float, clip: float = 10.0, eps: float = 1e-8) -> None:
        self.obs, self.ret = SlowStats(size), SlowStats(1)
        self.returns = [Fraction(0)] * num_envs
        self.gamma, self.clip, self.eps = Fraction(gamma), clip, eps

    def norm_obs(self, row) -> list[float]:
        out = []
        for j, x in enumerate(row):
            value = float(Fraction(float(x)) - self.obs.mean[j]) / np.sqrt(float(self.obs.var[j]) + self.eps)
            out.append(min(max(value, -self.clip), self.clip))
        return out

    def reset(self, obs) -> list[list[float]]:
        self.obs.update([[Fraction(float(x)) for x in row] for row in obs])
        return [self.norm_obs(row) for row in obs]

    def step(self, next_obs, obs, reward, done):
        self.obs.update([[Fraction(float(x)) for x in row] for row in obs])
        for i, r in enumerate(reward):
            self.returns[i] = self.returns[i] * self.gamma + Fraction(float(r))
        self.ret.update([[g] for g in self.returns])
        scale = np.sqrt(float(self.ret.var[0]) + self.eps)
        rewards = [min(max(float(r) / scale, -self.clip), self.clip) for r in reward]
        for i, d in enumerate(done):
            if d:
                self.returns[i] = Fraction(0)
        return [self.norm_obs(row) for row in next_obs], [self.norm_obs(row) for row in obs], rewards


def test_running_stats_match_the_exact_reference_and_a_hand_computed_value():
    rng = np.random.default_rng(0)
    rms, slow = RunningMeanStd((3,)), SlowStats(3)
    for _ in range(5):
        batch = rng.normal(2.0, 3.0, size=(4, 3))
        rms.update(batch)
        slow.update([[Fraction(float(x)) for x in row] for row in batch])
    np.testing.assert_allclose(rms.mean, [float(m) for m in slow.mean], rtol=1e-12)
    np.testing.assert_allclose(rms.var, [float(v) for v in slow.var], rtol=1e-12)
    # By hand: the batch [1, 3] merged into (mean 0, var 1, count 1e-4): total 2.0001,
    # mean = 2 * 2 / 2.0001, M2 = 1e-4 + 1 * 2 + 2^2 * 1e-4 * 2 / 2.0001, var = M2 / 2.0001.
    one = RunningMeanStd(())
    one.update(np.array([1.0, 3.0]))
    assert float(one.mean) == pytest.approx(1.9999000049997497, rel=1e-12)
    assert float(one.var) == pytest.approx(1.0001999800015, rel=1e-12)
    assert one.count == pytest.approx(2.0001)


def test_float16_observations_do_not_overflow_the_variance():
    """1000^2 is past float16's largest value: the variance was inf, and the feature normalised to 0
    for good."""
    rms = RunningMeanStd((1,))
    rms.update(np.array([[0.0], [1000.0]], dtype=np.float16))
    wide = RunningMeanStd((1,))
    wide.update(np.array([[0.0], [1000.0]]))
    assert np.isfinite(rms.var).all() and rms.var == pytest.approx(wide.var, rel=1e-12)
    assert rms.mean == pytest.approx(wide.mean, rel=1e-12)


def test_normalize_first_steps_by_hand():
    """Two sub-envs, one observation element, gamma 0.5: the numbers worked out on paper."""
    norm = Normalize(gamma=0.5)
    out = norm.reset(np.array([[1.0], [3.0]]))
    # stats after the reset batch: mean 1.9999, var 1.0002 (see the test above)
    np.testing.assert_allclose(out[:, 0], [(1 - 1.9999000049997497) / np.sqrt(1.0001999800015 + 1e-8),
                                           (3 - 1.9999000049997497) / np.sqrt(1.0001999800015 + 1e-8)], rtol=1e-6)
    assert out.dtype == np.float32
    # step 1: rewards [1, 1] -> returns [1, 1]; their stats: mean 2/2.0001, var ~ 1e-4 (M2 =
    # 1e-4 + 0 + 1 * 1e-4 * 2 / 2.0001), so the scaled reward ~ 1 / 0.01 = 100 is clipped to 10.
    step = norm.step(TransformStep(np.array([[2.0], [4.0]]), np.array([[2.0], [4.0]]),
                                   np.array([1.0, 1.0]), np.array([False, True])))
    assert step.reward.tolist() == [10.0, 10.0]
    assert float(norm.ret_rms.var) == pytest.approx((1e-4 + 1e-4 * 2 / 2.0001) / 2.0001, rel=1e-9)
    # the finished sub-env's return restarts at 0, the other keeps its 1
    assert norm.returns.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_normalize_in_an_env_matches_the_slow_reference_with_episode_ends_in_both_sub_envs(gamma):
    """Through GymEnv: the true final observation of an episode is normalised too, returns restart
    where an episode ended, observation stats see the reset observations the policy gets."""
    env = GymEnv.from_factory(counter_fn(terminate_at=(2, 4), max_steps=3), 2, seed=5,
                              transforms=[Normalize(gamma)])
    raw = GymEnv.from_factory(counter_fn(terminate_at=(2, 4), max_steps=3), 2, seed=5)
    slow = SlowVecNormalize(2, 2, gamma)
    first = slow.reset(raw.reset()["observation"].numpy())
    np.testing.assert_allclose(env.reset()["observation"].numpy(), first, rtol=1e-5, atol=1e-6)
    ends = np.zeros(2, int)
    for _ in range(12):
        action = torch.zeros(2, dtype=torch.int64)
        got, want = env.advance(action), raw.advance(action)
        ref_next, ref_obs, ref_reward = slow.step(want.next_observation, want.observation.numpy(),
                                                  want.reward, want.done)
        np.testing.assert_allclose(got.next_observation, ref_next, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.observation.numpy(), ref_obs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.reward, ref_reward, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got.raw_reward, want.reward)  # what returns are reported from
        assert got.next_observation.dtype == np.float32
        ends += got.done
    assert (ends >= 2).all(), f"each sub-env should finish episodes, got {ends}"
    assert env.observation_spec["observation"].dtype == torch.float32


def test_normalize_keeps_a_finished_episodes_final_observation_apart_from_the_reset_one():
    norm = Normalize(0.99, reward=False)
    norm.reset(np.zeros((2, 1)))
    step = norm.step(TransformStep(np.array([[5.0], [1.0]]), np.array([[0.0], [1.0]]), np.zeros(2),
                                   np.array([True, False])))
    assert step.next_observation[0, 0] != step.observation[0, 0]
    assert step.reward.tolist() == [0.0, 0.0]  # rewards untouched with reward=False


def test_observations_are_clipped():
    norm = Normalize(0.99, clip_observation=2.0)
    norm.reset(np.zeros((2, 1)))
    norm.training = False  # statistics stay at mean ~0, var ~1
    out = norm.step(TransformStep(np.array([[1e6], [-1e6]]), np.array([[1e6], [-1e6]]), np.zeros(2),
                                  np.zeros(2, bool)))
    assert out.observation[:, 0].tolist() == [2.0, -2.0]


def test_normalize_state_round_trip_and_the_frozen_view():
    norm = Normalize(0.99)
    norm.reset(np.array([[1.0, 2.0], [3.0, 5.0]]))
    norm.step(TransformStep(np.ones((2, 2)), np.ones((2, 2)), np.array([1.0, 2.0]), np.array([True, False])))
    frozen = norm.frozen()
    probe = np.array([[2.0, 2.0], [0.0, 1.0]])
    before = frozen.reset(probe)
    other = Normalize(0.99)
    other.load_state_dict(norm.state_dict())
    # every statistic round-trips exactly (a resumed run normalises and scales rewards as before)
    for mine, theirs in ((other.obs_rms, norm.obs_rms), (other.ret_rms, norm.ret_rms)):
        np.testing.assert_array_equal(mine.mean, theirs.mean)
        np.testing.assert_array_equal(mine.var, theirs.var)
        assert mine.count == theirs.count
    np.testing.assert_array_equal(other.returns, norm.returns)
    assert norm.ret_rms.count > 1 and norm.obs_rms.count > 4  # (updated: the round trip is not of priors)
    # the frozen view never updates its source, and leaves rewards as the env gives them
    count = norm.obs_rms.count
    step = frozen.step(TransformStep(np.ones((2, 2)), np.ones((2, 2)), np.array([7.0, -3.0]), np.zeros(2, bool)))
    assert norm.obs_rms.count == count and step.reward.tolist() == [7.0, -3.0]
    # the view reads its source live: after the source loads other statistics, it normalises with them
    elsewhere = Normalize(0.99)
    elsewhere.reset(np.array([[10.0, -4.0], [30.0, 6.0]]))
    norm.load_state_dict(elsewhere.state_dict())
    mean, var = elsewhere.obs_rms.mean, elsewhere.obs_rms.var
    expected = np.clip((probe - mean) / np.sqrt(var + 1e-8), -10.0, 10.0).astype(np.float32)
    after = frozen.reset(probe)
    np.testing.assert_array_equal(after, expected)
    assert not np.array_equal(after, before)


def test_a_state_of_another_shape_is_refused():
    norm = Normalize(0.99)
    norm.reset(np.zeros((2, 3)))
    other = Normalize(0.99)
    other.reset(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"running statistics of shape \(4,\), this transform's are \(3,\)"):
        norm.load_state_dict(other.state_dict())


def test_clip_reward_clips_what_is_learned_not_what_is_reported():
    env = GymEnv.from_factory(counter_fn(terminate_at=5), 2, seed=0, transforms=[ClipReward(-1.0, 1.5)])
    env.reset()
    for t in (1, 2, 3):
        step = env.advance(torch.zeros(2, dtype=torch.int64))
        assert step.reward.tolist() == [min(t, 1.5)] * 2
        assert step.raw_reward.tolist() == [t] * 2


def test_frame_stack_and_time_limit_from_config():
    wrappers, vector = build_transforms([{"name": "time_limit", "max_episode_steps": 4},
                                         {"name": "frame_stack", "stack_size": 3}], gamma=0.99)
    assert vector == []
    env = GymEnv("CartPole-v1", num_envs=2, seed=0, wrappers=wrappers)
    assert env.observation_spec["observation"].shape == (3, 4)
    obs = env.reset()["observation"]
    assert obs.shape == (2, 3, 4) and (obs[:, 0] == obs[:, 2]).all()  # gymnasium pads with the reset frame
    steps = 0
    while True:
        steps += 1
        result = env.advance(torch.zeros(2, dtype=torch.int64))
        if result.done.any():
            break
    assert steps <= 4  # the time limit from config truncates


@pytest.mark.parametrize(("limits", "length"), [([150], 150), ([250], 250), ([50, 100], 50), ([300, 250], 250)])
def test_time_limit_lifts_a_shorter_registered_limit(limits, length):
    # Pendulum never terminates; gymnasium.make registers a 200-step limit, which a longer time_limit
    # used to leave in force. Several limits: the shortest ends the episode.
    wrappers, _ = build_transforms([{"name": "time_limit", "max_episode_steps": n} for n in limits], gamma=0.99)
    env = GymEnv("Pendulum-v1", num_envs=1, seed=0, wrappers=wrappers)
    env.reset()
    steps = 1
    while not env.advance(torch.zeros(1, 1)).done.any():
        steps += 1
    assert steps == length


def test_a_time_limit_behind_another_transform_lifts_the_registered_limit_too():
    wrappers, _ = build_transforms([{"name": "frame_stack", "stack_size": 2},
                                    {"name": "time_limit", "max_episode_steps": 300}], gamma=0.99)
    env = GymEnv("Pendulum-v1", num_envs=1, seed=0, wrappers=wrappers)
    env.reset()
    steps = 1
    while not env.advance(torch.zeros(1, 1)).done.any():
        steps += 1
    assert steps == 300


def test_gymnasium_wrapper_for_an_env_with_a_uint8_box_keeps_the_dtype():
    env = GymEnv.from_factory(lambda: gym.wrappers.TransformObservation(
        gym.make("CartPole-v1"), lambda o: np.clip(o * 10 + 100, 0, 255).astype(np.uint8),
        gym.spaces.Box(0, 255, (4,), np.uint8)), 2, seed=0)
    assert env.observation_spec["observation"].dtype == torch.uint8
    assert env.reset()["observation"].dtype == torch.uint8


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"gamma": float("nan")}, r"Normalize: gamma=nan is invalid; expected a number in \[0, 1\]"),
    ({"gamma": 1.5}, r"Normalize: gamma=1.5 is invalid"),
    ({"gamma": 0.99, "epsilon": -1}, r"Normalize: epsilon=-1 is invalid; expected a finite number > 0"),
    ({"gamma": 0.99, "clip_observation": 0}, r"Normalize: clip_observation=0 is invalid"),
    ({"gamma": 0.99, "clip_reward": float("inf")}, r"Normalize: clip_reward=inf is invalid"),
    ({"gamma": 0.99, "observation": 1}, r"Normalize: observation=1 is invalid; expected True or False"),
])
def test_normalize_built_in_python_checks_its_arguments(kwargs, message):
    """The config path checked these already; built directly, NaN gamma or a negative epsilon made
    every reward or observation NaN and clip_observation=0 every observation 0."""
    with pytest.raises(ValueError, match=message):
        Normalize(**kwargs)


def test_clip_reward_built_in_python_checks_its_bounds():
    with pytest.raises(ValueError, match=r"ClipReward: low=nan is invalid; expected a number \(-inf: no lower bound\)"):
        ClipReward(float("nan"), 1.0)
    assert ClipReward(np.float32(-1), 1).low == -1.0
    assert ClipReward(0.0, float("inf")).high == float("inf")  # one-sided clipping
    assert Normalize(0.99, observation=np.bool_(True)).normalize_observation is True
