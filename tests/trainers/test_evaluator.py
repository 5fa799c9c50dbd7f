"""Evaluator: one greedy (or ε-greedy) episode per sub-env, against a plain gymnasium loop, for rlkit modules (their
tensor-level call) and foreign TensorDict modules (their TensorDict call)."""
from __future__ import annotations

import gymnasium as gym
import pytest
import torch
from tensordict.nn import TensorDictModule

from rlkit.envs import GymEnv
from rlkit.modules import Actor
from rlkit.trainers.evaluator import Evaluator

SEED = 10_000


def lean_right(obs: torch.Tensor) -> torch.Tensor:
    """Push towards the side the pole leans to (a mediocre deterministic CartPole policy)."""
    return (obs[..., 2] > 0).long()


def reference(n: int) -> tuple[list[float], list[int]]:
    """Sub-env i of a vector env reset with seed s starts from seed s + i."""
    returns, lengths = [], []
    for i in range(n):
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=SEED + i)
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(lean_right(torch.as_tensor(obs))))
            total, steps, done = total + reward, steps + 1, terminated or truncated
        returns.append(total)
        lengths.append(steps)
    return returns, lengths


@pytest.mark.parametrize("module_class", [Actor, TensorDictModule])
def test_one_greedy_episode_per_sub_env_as_a_plain_loop(module_class):
    policy = module_class(lean_right, in_keys=["observation"], out_keys=["action"])
    # A SyncVectorEnv (sub-env i seeded with seed + i) is what the reference loop reproduces.
    evaluator = Evaluator(GymEnv("CartPole-v1", num_envs=4, seed=SEED, vectorization="sync"), policy, seed=SEED)
    returns, lengths = reference(4)
    result = evaluator()
    assert result["eval_return"] == pytest.approx(sum(returns) / 4)
    assert result["eval_length"] == pytest.approx(sum(lengths) / 4)
    assert result["eval_return_std"] == pytest.approx(torch.tensor(returns).std(unbiased=False).item())
    assert len(set(returns)) > 1  # the episodes differ, so the per-sub-env seeding is checked
    assert evaluator() == result  # every evaluation starts from the same seeded states
    evaluator.close()


def test_max_steps_caps_an_evaluation_and_says_so(caplog):
    policy = TensorDictModule(lean_right, in_keys=["observation"], out_keys=["action"])
    with caplog.at_level("WARNING", logger="rlkit"):
        result = Evaluator(GymEnv("CartPole-v1", num_envs=2, seed=SEED), policy, seed=SEED, max_steps=7)()
    assert result["eval_length"] == 7 and result["eval_return"] == 7.0
    assert "evaluation stopped at its cap of 7 steps with 2 of 2 episodes unfinished" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="rlkit"):
        Evaluator(GymEnv("CartPole-v1", num_envs=2, seed=SEED), policy, seed=SEED, max_steps=1000)()
    assert "unfinished" not in caplog.text  # (leaning right ends every episode long before)


@pytest.mark.parametrize("name", ["a2c", "a2c_gsde"])
def test_a_sampling_evaluation_is_seeded_and_leaves_the_generator_and_exploration_weights_alone(tiny_run, name):
    """An Evaluator(deterministic=False) used during training (not only through rlkit.evaluate)
    must not move the training's random stream nor touch its gSDE exploration weights (here redrawn
    every 2 exploring steps), and gives the same episodes for the same seed."""
    import rlkit
    from rlkit.modules.gaussian import GSDEHead

    agent = rlkit.load_agent(tiny_run(name))
    heads = [m for m in agent.actor.modules() if isinstance(m, GSDEHead)]
    assert len(heads) == (name == "a2c_gsde")
    for head in heads:
        head.sample_freq = 2
    env_id = agent.settings.env.id
    num_envs = heads[0].num_envs if heads else 2  # (a head's own weights act on its training num_envs rows)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    noise = [h.noise_state_dict() for h in heads]

    def sampled(seed: int) -> list[float]:
        return Evaluator(GymEnv(env_id, num_envs=num_envs), agent.actor, seed=seed, deterministic=False,
                         max_steps=30).episodes()[0].tolist()

    first = sampled(5)
    assert torch.equal(torch.get_rng_state(), before)
    after = [h.noise_state_dict() for h in heads]
    assert all(torch.equal(n["env_weights"], a["env_weights"]) and torch.equal(n["weights"], a["weights"])
               and n["steps"] == a["steps"] for n, a in zip(noise, after))
    assert sampled(5) == first != sampled(6)


def test_a_sampling_evaluation_forks_cuda_generators_only_where_cuda_is_initialised(monkeypatch):
    """Forking CUDA's generators reads them, which initialises CUDA: a run on the CPU on a GPU
    machine must not (a CUDA context's GPU memory, an error on a GPU in exclusive-process mode); a
    process that initialised CUDA has them forked and put back."""
    policy = TensorDictModule(lean_right, in_keys=["observation"], out_keys=["action"])
    evaluator = Evaluator(GymEnv("CartPole-v1", num_envs=2, seed=SEED), policy, seed=SEED, deterministic=False,
                          max_steps=20)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: None)  # (torch.manual_seed's CUDA part)

    def untouchable(*args, **kwargs):
        raise AssertionError("a CUDA generator was read or written")

    monkeypatch.setattr(torch.cuda, "get_rng_state", untouchable)
    monkeypatch.setattr(torch.cuda, "set_rng_state", untouchable)
    torch.manual_seed(7)
    before = torch.get_rng_state()
    returns = evaluator.episodes()[0].tolist()
    assert torch.equal(torch.get_rng_state(), before)  # (the CPU generator is still forked)
    calls: list[tuple[str, int]] = []

    def get_rng_state(device: int) -> torch.Tensor:
        calls.append(("get", device))
        return torch.zeros(8, dtype=torch.uint8)

    def set_rng_state(state: torch.Tensor, device: int) -> None:
        calls.append(("set", device))

    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state", get_rng_state)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    assert evaluator.episodes()[0].tolist() == returns
    assert calls == [("get", 0), ("set", 0)]
    evaluator.close()


def epsilon_reference(n: int, epsilon: float, seed: int = SEED) -> tuple[list[float], list[int]]:
    """``n`` CartPole episodes (sub-env i reset with seed + i) stepped in lockstep, each action
    ``lean_right``'s replaced with probability ``epsilon`` by a uniformly random one: at every step a
    coin for every sub-env, then a random action for every sub-env (finished ones included), both
    from one ``torch.Generator`` seeded with ``seed``."""
    envs = [gym.make("CartPole-v1") for _ in range(n)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    returns, lengths, done = [0.0] * n, [0] * n, [False] * n
    generator = torch.Generator().manual_seed(seed)
    while not all(done):
        coins = torch.rand(n, generator=generator) < epsilon
        random = torch.multinomial(torch.ones(n, 2), 1, generator=generator).reshape(n)
        for i, env in enumerate(envs):
            if done[i]:
                continue
            action = int(random[i]) if coins[i] else int(lean_right(torch.as_tensor(obs[i])))
            obs[i], reward, terminated, truncated, _ = env.step(action)
            returns[i], lengths[i], done[i] = returns[i] + reward, lengths[i] + 1, terminated or truncated
    return returns, lengths


@pytest.mark.parametrize("epsilon", [0.0, 0.5, 1.0])
def test_epsilon_greedy_evaluation_is_a_seeded_plain_loop(epsilon):
    """The Atari protocols evaluate ε-greedily (``trainer.eval_epsilon``, 0.05 for DQN): a user
    comparing with published numbers relies on each action being random with probability ε (ε = 1:
    a uniformly random policy, ε = 0: the greedy one), and on every evaluation drawing the same
    coins and actions for the same seed (resumed runs report what uninterrupted ones do), another
    seed giving other episodes."""
    policy = Actor(lean_right, in_keys=["observation"], out_keys=["action"])

    def evaluator(seed: int) -> Evaluator:
        return Evaluator(GymEnv("CartPole-v1", num_envs=4, seed=seed, vectorization="sync"), policy, seed=seed,
                         epsilon=epsilon)

    first = evaluator(SEED)
    returns, lengths = first.episodes()
    expected = epsilon_reference(4, epsilon)
    assert (returns.tolist(), lengths.tolist()) == expected
    if epsilon == 0.0:
        assert expected == reference(4)  # greedy: lean_right's own episodes
    else:
        assert expected != reference(4)  # the random actions changed the episodes
    again = first.episodes()  # the coins are drawn anew from the seed at every evaluation
    assert (again[0].tolist(), again[1].tolist()) == expected
    first.close()
    other = evaluator(SEED + 1)
    returns, lengths = other.episodes()
    assert (returns.tolist(), lengths.tolist()) == epsilon_reference(4, epsilon, SEED + 1) != expected
    other.close()
