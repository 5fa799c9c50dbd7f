"""GymEnv: flags, true final observations, no autoreset transitions, seeding (known dynamics)."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv
from toy_envs import counter_fn

from rlkit.envs import GymEnv
from rlkit.envs.single import SingleEnv


def _counter_env(kind: str, num_envs: int, **kwargs) -> GymEnv:
    fn = counter_fn(**kwargs)
    if kind == "factory":  # SyncVectorEnv, autoreset DISABLED (rlkit resets finished sub-envs)
        return GymEnv.from_factory(fn, num_envs, seed=0)
    if kind == "single":  # one env driven directly (rlkit resets it)
        return GymEnv.from_factory(fn, num_envs, seed=0, vectorization="single")
    mode = {"same_step": AutoresetMode.SAME_STEP, "next_step": AutoresetMode.NEXT_STEP}[kind]
    return GymEnv.from_vector_env(SyncVectorEnv([fn] * num_envs, autoreset_mode=mode), seed=0)


def _rollout(env: GymEnv, steps: int, action: int = 0) -> list:
    """(td with "next") per step, driven by step / next_state."""
    out = []
    td = env.reset()
    for _ in range(steps):
        td["action"] = torch.full((env.num_envs,), action, dtype=torch.int64)
        td = env.step(td)
        out.append(td)
        td = env.next_state(td)
    return out


@pytest.mark.parametrize(("kind", "num_envs"), [
    ("factory", 1), ("factory", 3), ("same_step", 1), ("same_step", 3), ("next_step", 1), ("next_step", 3),
    ("single", 1),
])
def test_flags_final_obs_and_no_autoreset_transition(kind, num_envs):
    # terminates when t reaches 3; TimeLimit(2) truncates first in the second variant
    for terminate_at, max_steps, expect_term, expect_trunc, length in [(3, 5, True, False, 3), (5, 2, False, True, 2)]:
        env = _counter_env(kind, num_envs, terminate_at=terminate_at, max_steps=max_steps)
        steps = _rollout(env, 3 * length)
        for i, td in enumerate(steps):
            t_next = i % length + 1
            obs, nxt = td["observation"], td["next", "observation"]
            # every transition is a real step: the counter advances by one within one episode
            assert (nxt[:, 0] == obs[:, 0] + 1).all() and (nxt[:, 1] == obs[:, 1]).all()
            assert (nxt[:, 0] == t_next).all()  # the true final observation when the episode ends
            assert (td["next", "reward"] == float(t_next)).all()
            ends = t_next == length
            assert td["next", "terminated"].eq(ends and expect_term).all()
            assert td["next", "truncated"].eq(ends and expect_trunc).all()
            assert td["next", "done"].eq(ends).all()
            assert td["next", "reward"].shape == (num_envs, 1) and td["next", "done"].shape == (num_envs, 1)
            assert td["next", "reward"].dtype == torch.float32 and td["next", "done"].dtype == torch.bool
        env.close()


@pytest.mark.parametrize(("kind", "num_envs"), [("factory", 2), ("single", 1)])
def test_next_state_gives_reset_observation_after_episode_end(kind, num_envs):
    env = _counter_env(kind, num_envs, terminate_at=2)
    td = env.reset()
    starts = td["observation"][:, 1].clone()
    for _ in range(2):
        td["action"] = torch.zeros(num_envs, dtype=torch.int64)
        td = env.step(td)
        nxt = env.next_state(td)
        td = nxt
    assert (nxt["observation"][:, 0] == 0).all()  # reset observation (t = 0) for the policy
    assert not torch.equal(nxt["observation"][:, 1], starts)  # a new episode start was drawn


def test_async_vector_env_next_step_mode():
    fn = counter_fn(terminate_at=2)
    vec = AsyncVectorEnv([fn] * 2, autoreset_mode=AutoresetMode.NEXT_STEP, context="fork")
    with GymEnv.from_vector_env(vec, seed=0, env_id="counter") as env:
        steps = _rollout(env, 6)
    assert [int(td["next", "observation"][0, 0]) for td in steps] == [1, 2, 1, 2, 1, 2]
    assert all((td["next", "observation"][:, 0] == td["observation"][:, 0] + 1).all() for td in steps)


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.DISABLED])
def test_async_vector_env_without_shared_memory(mode):
    """Without shared memory, gymnasium's worker keeps a NEXT_STEP autoreset pending through a
    reset, so a sub-env rlkit resets would be reset again: refused, naming the fixes. DISABLED works."""
    fn = counter_fn(terminate_at=2)
    vec = AsyncVectorEnv([fn] * 2, autoreset_mode=mode, shared_memory=False, context="fork")
    if mode == AutoresetMode.NEXT_STEP:
        with pytest.raises(ValueError, match=r"AsyncVectorEnv\(shared_memory=False\) .* NEXT_STEP; use shared_memory=True"):
            GymEnv.from_vector_env(vec, seed=0, env_id="counter")
        vec.close()
        return
    with GymEnv.from_vector_env(vec, seed=0, env_id="counter") as env:
        steps = _rollout(env, 6)
    assert [int(td["next", "observation"][0, 0]) for td in steps] == [1, 2, 1, 2, 1, 2]


def _cartpole_step(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Reference CartPole dynamics (Barto, Sutton & Anderson 1983; gymnasium's constants)."""
    x, x_dot, theta, theta_dot = obs.double().unbind(-1)
    force = torch.where(action == 1, 10.0, -10.0).double()
    cos, sin = torch.cos(theta), torch.sin(theta)
    temp = (force + 0.05 * theta_dot**2 * sin) / 1.1
    theta_acc = (9.8 * sin - cos * temp) / (0.5 * (4.0 / 3.0 - 0.1 * cos**2 / 1.1))
    x_acc = temp - 0.05 * theta_acc * cos / 1.1
    return torch.stack(
        [x + 0.02 * x_dot, x_dot + 0.02 * x_acc, theta + 0.02 * theta_dot, theta_dot + 0.02 * theta_acc], -1
    )


@pytest.mark.parametrize(("vectorization", "num_envs"), [
    ("native", 1), ("native", 4), ("sync", 1), ("sync", 4), ("single", 1),
])
def test_cartpole_transitions_follow_the_dynamics(vectorization, num_envs):
    env = GymEnv("CartPole-v1", num_envs=num_envs, seed=1, vectorization=vectorization,
                 make_kwargs={"max_episode_steps": 12})
    assert env.vectorization == vectorization
    td = env.reset()
    elapsed = torch.zeros(num_envs, dtype=torch.long)
    episodes = torch.zeros(num_envs, dtype=torch.long)
    n_term = n_trunc = 0
    for _ in range(80):
        # alternate episodes: always push right (falls: terminated), or balance (truncated at 12)
        balance = (td["observation"][:, 2] > 0).long()
        td["action"] = torch.where(episodes % 2 == 0, torch.ones_like(balance), balance)
        td = env.step(td)
        nxt = td["next", "observation"]
        # the true next observation of every transition, final ones included (no autoreset step)
        torch.testing.assert_close(nxt.double(), _cartpole_step(td["observation"], td["action"]), atol=1e-4, rtol=0)
        elapsed += 1
        fell = (nxt[:, 0].abs() > 2.4) | (nxt[:, 2].abs() > 12 * 2 * np.pi / 360)
        assert torch.equal(td["next", "terminated"].squeeze(-1), fell)
        assert torch.equal(td["next", "truncated"].squeeze(-1), elapsed == 12)  # TimeLimit at 12 steps
        n_term += int(fell.sum())
        n_trunc += int(td["next", "truncated"].sum())
        done = td["next", "done"].squeeze(-1)
        elapsed[done] = 0
        episodes += done.long()
        td = env.next_state(td)
        assert (td["observation"][done].abs() <= 0.05).all()  # fresh reset states
    assert n_term > 0 and n_trunc > 0
    env.close()


@pytest.mark.parametrize(("vectorization", "num_envs"), [("native", 3), ("sync", 3), ("single", 1)])
def test_same_seed_same_trajectories_different_seed_different(vectorization, num_envs):
    def observations(seed):
        env = GymEnv("CartPole-v1", num_envs=num_envs, seed=seed, vectorization=vectorization)
        obs = [td["next", "observation"] for td in _rollout(env, 40, action=1)]
        sample = env.vector_env.action_space.sample()
        env.close()
        return torch.stack(obs), sample

    a, sample_a = observations(7)
    b, sample_b = observations(7)
    c, _ = observations(8)
    assert torch.equal(a, b) and np.array_equal(sample_a, sample_b)  # the action space is seeded too
    assert not torch.equal(a, c)


@pytest.mark.parametrize(("vectorization", "num_envs"), [("sync", 2), ("single", 1)])
def test_reset_with_seed_restarts_the_same_trajectory(vectorization, num_envs):
    env = GymEnv.from_factory(counter_fn(terminate_at=(2, 6)), num_envs, seed=3, vectorization=vectorization)
    first = [td["next", "observation"] for td in _rollout(env, 10)]
    env.reset(seed=3)
    td = env.next_state()
    again = []
    for _ in range(10):
        td["action"] = torch.zeros(num_envs, dtype=torch.int64)
        td = env.step(td)
        again.append(td["next", "observation"])
        td = env.next_state(td)
    assert torch.equal(torch.stack(first), torch.stack(again))


def test_properties_and_repr():
    env = GymEnv("CartPole-v1", num_envs=2, seed=0)
    assert env.env_id == "CartPole-v1" and env.num_envs == 2 and env.batch_size == torch.Size([2])
    assert env.vectorization == "native"  # "auto" picks gymnasium's native CartPole vector env
    assert env.reward_spec.shape == (1,) and env.device is None
    assert env.observation_spec["observation"].shape == (4,)
    assert "CartPole-v1" in repr(env) and "Categorical(n=2)" in repr(env)
    td = env.reset()
    td["action"] = env.rand_action()
    env.step(td)
    assert env.step_count == 1
    env.close()


def test_gymnasium_acrobot_uses_sync_vectorization():
    env = GymEnv("Acrobot-v1", num_envs=2, seed=0)
    assert env.vectorization == "sync"
    assert isinstance(env.vector_env, gym.vector.SyncVectorEnv)
    env.close()


def test_single_env_seeds_like_sub_env_zero_of_a_sync_vector_env():
    # the same initial state and trajectory as the first sub-env of the vectorised paths
    def observations(vectorization, num_envs):
        env = GymEnv("CartPole-v1", num_envs=num_envs, seed=5, vectorization=vectorization)
        obs = torch.stack([td["next", "observation"][0] for td in _rollout(env, 30, action=1)])
        env.close()
        return obs

    assert torch.equal(observations("single", 1), observations("sync", 2))


def test_single_env_vector_interface():
    vec = GymEnv("CartPole-v1", seed=0, make_kwargs={"max_episode_steps": 3}).vector_env
    assert isinstance(vec, SingleEnv) and vec.num_envs == 1 and vec.action_space.shape == (1,)
    obs, _ = vec.reset(seed=[4])
    assert obs.shape == (1, 4)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = vec.step(np.array([0]))
    assert obs.shape == (1, 4) and reward.tolist() == [1.0] and truncated.tolist() == [True]  # no autoreset
    obs, _ = vec.reset(options={"reset_mask": np.array([True])})
    assert (np.abs(obs) <= 0.05).all()
    with pytest.raises(ValueError, match=r"SingleEnv.reset got reset_mask=\[False\], which resets nothing"):
        vec.reset(options={"reset_mask": np.array([False])})
    vec.close()
    with pytest.raises(ValueError, match=r"unknown vectorization 'native' for from_factory; valid choices: \['sync', 'single'\]"):
        GymEnv.from_factory(counter_fn(), 1, vectorization="native")
    with pytest.raises(ValueError, match="vectorization='single' drives one env, got num_envs=2"):
        GymEnv.from_factory(counter_fn(), 2, vectorization="single")


def test_one_env_driven_directly_steps_as_a_vector_env_of_one():
    # The same seed gives sub-env 0 of a SyncVectorEnv and the single env the same trajectory; both
    # go through advance, which returns the same result type for 1..N envs.
    a = GymEnv("CartPole-v1", num_envs=1, seed=3, vectorization="sync")
    b = GymEnv("CartPole-v1", num_envs=1, seed=3, vectorization="single")
    ends = 0
    for t in range(120):
        action = torch.tensor([t % 2 if t % 7 else 0])
        res, one = a.advance(action), b.advance(action)
        for field in ("next_observation", "reward", "terminated", "truncated", "done"):
            x, y = getattr(res, field), getattr(one, field)
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y), field
        assert one.reward.dtype == np.float32 and one.done.dtype == bool
        assert torch.equal(res.observation, one.observation) and one.observation is b.next_state_tensors()[0]
        ends += bool(one.done[0])
    assert ends >= 3 and a.step_count == b.step_count == 120


def test_a_single_env_refuses_bad_actions_like_a_vector_env():
    env = GymEnv("CartPole-v1", num_envs=1, seed=0, vectorization="single")
    with pytest.raises(ValueError, match=r"action 2 for sub-env 0 .* is outside the action spec"):
        env.advance(torch.tensor([2]))
    with pytest.raises(ValueError, match=r"must be a tensor of shape \(1,\)"):
        env.advance(torch.tensor([0, 1]))
    assert env.advance(torch.tensor([1], dtype=torch.int32)).reward.tolist() == [1.0]  # validated, then stepped
