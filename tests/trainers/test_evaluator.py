"""Evaluator: one greedy episode per sub-env, against a plain gymnasium loop, for rlkit modules (their
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
