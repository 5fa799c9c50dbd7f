"""Collector throughput vs a plain gymnasium + torch loop doing the same work (CartPole-v1).

Both run the same 4-64-64-2 MLP with greedy argmax + epsilon (0.1) exploration on the same
vector env (``gymnasium.make_vec`` default: the native CartPole vector env) and keep every
transition (observation, action, reward, next observation, flags). The plain loop also keeps the
mask of gymnasium's autoreset steps (NEXT_STEP mode), the least it needs to drop those fake
transitions later; the collector never produces them. The two are alternated and repeated; the
medians are reported with their ratio (target: collector within 1.3x of the loop), next to the
median of the per-repeat ratios (robust to the machine's load drifting).

Usage: python scripts/bench_collector.py [--repeats 7] [--envs 1 8 64] [--frames 4000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import gymnasium as gym
import torch
from tensordict.nn import TensorDictModule
from torch import nn

from rlkit.collectors import Collector
from rlkit.envs import GymEnv
from rlkit.script_args import interruptible, positive_int


class GreedyEpsilon(nn.Module):
    """argmax of an MLP's Q-values, replaced by a uniform action with probability ``eps``."""

    def __init__(self, eps: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
        self.eps = eps

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        action = self.net(obs).argmax(-1)
        explore = torch.rand(action.shape) < self.eps
        return torch.where(explore, torch.randint(2, action.shape), action)


def plain_loop(policy: GreedyEpsilon, num_envs: int, frames: int, steps_per_batch: int) -> float:
    """Frames per second of a hand-written loop that stores the same transitions."""
    env = gym.make_vec("CartPole-v1", num_envs=num_envs)
    obs, _ = env.reset(seed=0)
    n_batches = max(1, frames // (num_envs * steps_per_batch))
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(n_batches):
            store = {
                "observation": torch.empty(num_envs, steps_per_batch, 4),
                "action": torch.empty(num_envs, steps_per_batch, dtype=torch.int64),
                "reward": torch.empty(num_envs, steps_per_batch, 1),
                "next_observation": torch.empty(num_envs, steps_per_batch, 4),
                "terminated": torch.empty(num_envs, steps_per_batch, 1, dtype=torch.bool),
                "truncated": torch.empty(num_envs, steps_per_batch, 1, dtype=torch.bool),
                "autoreset": torch.empty(num_envs, steps_per_batch, dtype=torch.bool),
            }
            autoreset = torch.zeros(num_envs, dtype=torch.bool)
            obs_t = torch.from_numpy(obs)
            for t in range(steps_per_batch):
                action = policy(obs_t)
                obs, reward, terminated, truncated, _ = env.step(action.numpy())
                next_t = torch.from_numpy(obs)
                store["observation"][:, t] = obs_t
                store["action"][:, t] = action
                store["reward"][:, t, 0] = torch.from_numpy(reward)
                store["next_observation"][:, t] = next_t
                store["terminated"][:, t, 0] = torch.from_numpy(terminated)
                store["truncated"][:, t, 0] = torch.from_numpy(truncated)
                store["autoreset"][:, t] = autoreset
                autoreset = torch.from_numpy(terminated | truncated)
                obs_t = next_t
    elapsed = time.perf_counter() - start
    env.close()
    return n_batches * num_envs * steps_per_batch / elapsed


def collector_loop(policy: GreedyEpsilon, num_envs: int, frames: int, steps_per_batch: int) -> float:
    """Frames per second of rlkit's Collector on the same work."""
    env = GymEnv("CartPole-v1", num_envs=num_envs, seed=0)
    module = TensorDictModule(policy, in_keys=["observation"], out_keys=["action"])
    n_batches = max(1, frames // (num_envs * steps_per_batch))
    fpb = num_envs * steps_per_batch
    collector = Collector(env, module, frames_per_batch=fpb, total_frames=n_batches * fpb)
    start = time.perf_counter()
    for _ in collector:
        pass
    elapsed = time.perf_counter() - start
    env.close()
    return collector.frames / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=positive_int, default=7)
    parser.add_argument("--envs", type=positive_int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--frames", type=positive_int, default=4000, help="frames per run at 1 env (x envs**0.5 above)")
    parser.add_argument("--steps-per-batch", type=positive_int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    policy = GreedyEpsilon()
    print(f"{'envs':>5} {'plain fps':>12} {'collector fps':>14} {'ratio (plain/collector)':>24} {'paired ratio':>13}")
    for num_envs in args.envs:
        frames = int(args.frames * num_envs**0.5)
        plain, coll = [], []
        collector_loop(policy, num_envs, frames // 4, args.steps_per_batch)  # warm-up
        for _ in range(args.repeats):
            plain.append(plain_loop(policy, num_envs, frames, args.steps_per_batch))
            coll.append(collector_loop(policy, num_envs, frames, args.steps_per_batch))
        p, c = statistics.median(plain), statistics.median(coll)
        paired = statistics.median(a / b for a, b in zip(plain, coll))
        print(f"{num_envs:>5} {p:>12.0f} {c:>14.0f} {p / c:>24.2f} {paired:>13.2f}")


if __name__ == "__main__":
    sys.exit(interruptible(main, "bench_collector.py"))
