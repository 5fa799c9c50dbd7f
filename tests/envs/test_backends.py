"""state_dict / load_state_dict: a restored env continues the exact same trajectories."""
from __future__ import annotations

import io

import gymnasium as gym
import pytest
import torch
from gymnasium.vector import AutoresetMode
from toy_envs import CounterEnv, SpaceEnv, TinyVectorEnv, counter_fn

from rlkit.envs import GymEnv


def _through_disk(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _run(env: GymEnv, actions: list) -> list:
    out = []
    td = env.next_state()
    for action in actions:
        td = env.step(td.set("action", action))
        out.append(td["next"].clone())
        out.append(env.next_state(td)["observation"])
        td = env.next_state(td)
    return out


BUILDERS = {
    "cartpole-native": lambda seed: GymEnv("CartPole-v1", num_envs=3, seed=seed, vectorization="native",
                                           make_kwargs={"max_episode_steps": 7}),
    "cartpole-sync": lambda seed: GymEnv("CartPole-v1", num_envs=2, seed=seed, vectorization="sync",
                                         make_kwargs={"max_episode_steps": 7}),
    "cartpole-single": lambda seed: GymEnv("CartPole-v1", seed=seed, make_kwargs={"max_episode_steps": 7}),
    "acrobot-single": lambda seed: GymEnv("Acrobot-v1", seed=seed, make_kwargs={"max_episode_steps": 6}),
    "counter-single (own state_dict)": lambda seed: GymEnv.from_factory(
        counter_fn((2, 5), max_steps=4), 1, seed=seed, env_id="counter", vectorization="single"),
    "acrobot": lambda seed: GymEnv("Acrobot-v1", num_envs=2, seed=seed, make_kwargs={"max_episode_steps": 6}),
    "mountaincar": lambda seed: GymEnv("MountainCar-v0", num_envs=2, seed=seed, make_kwargs={"max_episode_steps": 6}),
    "mountaincar-continuous": lambda seed: GymEnv("MountainCarContinuous-v0", num_envs=1, seed=seed,
                                                  make_kwargs={"max_episode_steps": 6}),
    "pendulum": lambda seed: GymEnv("Pendulum-v1", num_envs=2, seed=seed, make_kwargs={"max_episode_steps": 6}),
    "counter (own state_dict)": lambda seed: GymEnv.from_factory(counter_fn((2, 5), max_steps=4), 2, seed=seed,
                                                                 env_id="counter"),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_round_trip_continues_the_same_trajectories(name):
    env = BUILDERS[name](0)
    actions = [env.action_spec.rand(env.batch_size) for _ in range(25)]
    _run(env, actions[:9])  # k steps, episodes ended on the way
    state = _through_disk(env.state_dict())
    expected = _run(env, actions[9:])
    restored = BUILDERS[name](123)  # a fresh env, seeded differently
    restored.load_state_dict(state)
    got = _run(restored, actions[9:])
    assert any(bool(td["done"].any()) for td in expected[::2])  # resets happen after the restore
    for a, b in zip(expected, got):
        assert (a == b).all()
    assert restored.step_count == env.step_count


def test_state_of_a_fresh_env_includes_the_initial_observation():
    env = BUILDERS["cartpole-native"](5)
    state = _through_disk(env.state_dict())
    restored = BUILDERS["cartpole-native"](6)
    restored.load_state_dict(state)
    assert torch.equal(restored.reset()["observation"], env.reset()["observation"])


def test_backends_name_why_a_state_cannot_be_captured():
    env = GymEnv.from_factory(lambda: SpaceEnv(gym.spaces.Discrete(2)), 1, env_id="space")
    with pytest.raises(ValueError, match=r"cannot capture the state of env 'space' \(SpaceEnv\); supported: classic-control"):
        env._backend.state_dict()
    single = GymEnv.from_factory(lambda: SpaceEnv(gym.spaces.Discrete(2)), 1, env_id="space", vectorization="single")
    with pytest.raises(ValueError, match=r"cannot capture the state of env 'space' \(SpaceEnv\); supported: classic-control"):
        single._backend.state_dict()
    wrapped = GymEnv.from_factory(lambda: gym.wrappers.RecordEpisodeStatistics(CounterEnv()), 1, env_id="counter")
    with pytest.raises(ValueError, match=r"cannot capture the state of env 'counter': wrapper RecordEpisodeStatistics is not supported"):
        wrapped._backend.state_dict()
    tiny = GymEnv.from_vector_env(TinyVectorEnv(AutoresetMode.SAME_STEP), env_id="tiny")
    with pytest.raises(ValueError, match=r"cannot capture the state of env 'tiny' \(TinyVectorEnv\)"):
        tiny._backend.state_dict()
    for inexact in (env, single, wrapped, tiny):
        assert not inexact.exact_state
    assert BUILDERS["cartpole-native"](0).exact_state and BUILDERS["cartpole-single"](0).exact_state


@pytest.mark.parametrize("vectorization", ["sync", "single"])
def test_an_env_without_state_capture_saves_the_rest_and_restarts_its_episodes_on_load(vectorization):
    def make():
        return GymEnv.from_factory(lambda: gym.wrappers.RecordEpisodeStatistics(CounterEnv()), 1, seed=3,
                                   env_id="counter", vectorization=vectorization)

    env = make()
    _run(env, [torch.tensor([1])] * 2)
    state = _through_disk(env.state_dict())
    assert state["vector"] is None and state["step_count"] == 2
    first, second = make(), make()
    first.load_state_dict(state)
    second.load_state_dict(state)
    assert first.restarted and second.restarted and not env.restarted
    assert first.step_count == 2
    # The same checkpoint restarts the same way.
    assert torch.equal(first.next_state()["observation"], second.next_state()["observation"])
    actions = [torch.tensor([1])] * 5
    assert all((a == b).all() for a, b in zip(_run(first, actions), _run(second, actions)))


def test_loading_a_mismatched_state_raises():
    native = BUILDERS["cartpole-native"](0)
    with pytest.raises(ValueError, match=r"state of 3 x 'CartPole-v1' does not match this env \(2 x 'CartPole-v1'\)"):
        BUILDERS["cartpole-sync"](0).load_state_dict(native.state_dict())
    sync3 = GymEnv("CartPole-v1", num_envs=3, seed=0, vectorization="sync", make_kwargs={"max_episode_steps": 7})
    with pytest.raises(ValueError, match="state does not match a SyncVectorEnv of 3 copies of 'CartPole-v1'"):
        sync3.load_state_dict(native.state_dict())
    with pytest.raises(ValueError, match="state does not match a native CartPoleVectorEnv of 3 envs"):
        native.load_state_dict(sync3.state_dict())
    single = BUILDERS["cartpole-single"](0)
    sync1 = GymEnv("CartPole-v1", seed=0, vectorization="sync", make_kwargs={"max_episode_steps": 7})
    with pytest.raises(ValueError, match="state does not match a single 'CartPole-v1' env .* saved from a 'sync' vector env"):
        single.load_state_dict(sync1.state_dict())
    limited = GymEnv.from_factory(counter_fn(max_steps=4), 1, env_id="counter")
    plain = GymEnv.from_factory(counter_fn(), 1, env_id="counter")
    with pytest.raises(ValueError, match="state of env 'counter' has 1 wrappers, the env has 0"):
        plain.load_state_dict(limited.state_dict())
