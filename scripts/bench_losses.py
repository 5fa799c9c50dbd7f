"""Time one DQN, C51 and A2C update in rlkit next to the same update written in plain torch.

An update is forward + backward + optimiser step on a batch of 128 transitions (A2C: 8 rollouts of
16 steps) with CartPole-sized networks: 4 observations, 2 actions, MLP 64-64 (C51: 51 atoms).
rlkit and plain blocks alternate; each block's mean time per update is recorded and the medians
are compared. Target: rlkit within 1.3x of plain torch.

Usage: python scripts/bench_losses.py [--repeats 15] [--iters 40] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlkit.modules import (
    MLP,
    Categorical,
    DistributionalQValueActor,
    ProbabilisticActor,
    QValueActor,
    ValueOperator,
)
from rlkit.objectives import A2CLoss, DistributionalDQNLoss, DQNLoss
from rlkit.script_args import interruptible, positive_int

OBS, ACTIONS, HIDDEN, ATOMS, BATCH, GAMMA, LMBDA = 4, 2, [64, 64], 51, 128, 0.99, 0.95


def batch(shape: tuple[int, ...]) -> TensorDict:
    terminated = torch.rand(*shape, 1) < 0.05
    return TensorDict(
        {
            "observation": torch.randn(*shape, OBS),
            "action": torch.randint(ACTIONS, shape),
            "next": {
                "observation": torch.randn(*shape, OBS),
                "reward": torch.randn(*shape, 1),
                "terminated": terminated,
                "truncated": torch.zeros(*shape, 1, dtype=torch.bool),
                "done": terminated.clone(),
            },
        },
        batch_size=shape,
    )


def step(optim: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optim.zero_grad(set_to_none=True)
    loss.backward()
    optim.step()


# ---------------------------------------------------------------- DQN
def dqn_pair(td: TensorDict) -> tuple[Callable[[], None], Callable[[], None]]:
    loss = DQNLoss(QValueActor(MLP(OBS, ACTIONS, HIDDEN), action_space="categorical"))
    loss.make_value_estimator(gamma=GAMMA)
    optim = torch.optim.Adam(loss.parameters(), lr=1e-3)

    def rlkit_update() -> None:
        out = loss(td)
        step(optim, sum(v for k, v in out.items() if k.startswith("loss_")))

    net, target = MLP(OBS, ACTIONS, HIDDEN), MLP(OBS, ACTIONS, HIDDEN)
    target.load_state_dict(net.state_dict())
    plain_optim = torch.optim.Adam(net.parameters(), lr=1e-3)
    obs, action, next_obs = td["observation"], td["action"].unsqueeze(-1), td["next", "observation"]
    reward, terminated = td["next", "reward"], td["next", "terminated"]

    def plain_update() -> None:
        q = net(obs).gather(-1, action)
        with torch.no_grad():
            next_q = target(next_obs).max(-1, keepdim=True).values
            y = reward + GAMMA * (~terminated) * next_q
        step(plain_optim, F.mse_loss(q, y))

    return rlkit_update, plain_update


# ---------------------------------------------------------------- C51
def c51_net() -> nn.Module:
    return nn.Sequential(MLP(OBS, ATOMS * ACTIONS, HIDDEN), nn.Unflatten(-1, (ATOMS, ACTIONS)))


def plain_projection(
    probs: torch.Tensor, reward: torch.Tensor, terminated: torch.Tensor, support: torch.Tensor
) -> torch.Tensor:
    v_min, v_max = support[0], support[-1]
    dz = (v_max - v_min) / (ATOMS - 1)
    tz = (reward + GAMMA * (~terminated) * support).clamp(v_min, v_max)
    b = (tz - v_min) / dz
    low, up = b.floor().long(), b.ceil().long()
    same = low == up
    out = torch.zeros_like(probs)
    out.scatter_add_(-1, low, probs * (up.float() - b + same.float()))
    out.scatter_add_(-1, up, probs * (b - low.float()))
    return out


def c51_pair(td: TensorDict) -> tuple[Callable[[], None], Callable[[], None]]:
    support = torch.linspace(-10.0, 10.0, ATOMS)
    loss = DistributionalDQNLoss(DistributionalQValueActor(c51_net(), support, action_space="categorical"), gamma=GAMMA)
    optim = torch.optim.Adam(loss.parameters(), lr=1e-3)

    def rlkit_update() -> None:
        out = loss(td)
        step(optim, sum(v for k, v in out.items() if k.startswith("loss_")))

    net, target = c51_net(), c51_net()
    target.load_state_dict(net.state_dict())
    plain_optim = torch.optim.Adam(net.parameters(), lr=1e-3)
    obs, action, next_obs = td["observation"], td["action"], td["next", "observation"]
    reward, terminated = td["next", "reward"], td["next", "terminated"]
    rows = torch.arange(BATCH)

    def plain_update() -> None:
        log_p = net(obs).log_softmax(-2)[rows, :, action]
        with torch.no_grad():
            next_best = (net(next_obs).softmax(-2) * support.unsqueeze(-1)).sum(-2).argmax(-1)
            next_probs = target(next_obs).softmax(-2)[rows, :, next_best]
            proj = plain_projection(next_probs, reward, terminated, support)
        step(plain_optim, -(proj * log_p).sum(-1).mean())

    return rlkit_update, plain_update


# ---------------------------------------------------------------- A2C
def a2c_pair(td: TensorDict) -> tuple[Callable[[], None], Callable[[], None]]:
    logits = TensorDictModule(MLP(OBS, ACTIONS, HIDDEN), ["observation"], ["logits"])
    actor = ProbabilisticActor(logits, ["logits"], distribution_class=Categorical)
    loss = A2CLoss(actor, ValueOperator(MLP(OBS, 1, HIDDEN)))
    loss.make_value_estimator("gae", gamma=GAMMA, lmbda=LMBDA)
    optim = torch.optim.Adam(loss.parameters(), lr=1e-3)

    def rlkit_update() -> None:
        out = loss(td)
        step(optim, sum(v for k, v in out.items() if k.startswith("loss_")))

    policy, critic = MLP(OBS, ACTIONS, HIDDEN), MLP(OBS, 1, HIDDEN)
    plain_optim = torch.optim.Adam([*policy.parameters(), *critic.parameters()], lr=1e-3)
    obs, action, next_obs = td["observation"], td["action"], td["next", "observation"]
    reward, terminated, done = td["next", "reward"], td["next", "terminated"], td["next", "done"]

    def plain_update() -> None:
        with torch.no_grad():
            value, next_value = critic(obs), critic(next_obs)
            delta = reward + GAMMA * (~terminated) * next_value - value
            advantage = torch.empty_like(delta)
            running = torch.zeros_like(delta[:, 0])
            for t in reversed(range(delta.shape[1])):
                running = delta[:, t] + GAMMA * LMBDA * (~done[:, t]) * running
                advantage[:, t] = running
            value_target = advantage + value
        dist = torch.distributions.Categorical(logits=policy(obs))
        loss_pg = -(dist.log_prob(action) * advantage.squeeze(-1)).mean()
        loss_entropy = -0.01 * dist.entropy().mean()
        loss_critic = F.smooth_l1_loss(critic(obs), value_target)
        step(plain_optim, loss_pg + loss_entropy + loss_critic)

    return rlkit_update, plain_update


def time_block(fn: Callable[[], None], iters: int) -> float:
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=positive_int, default=15, help="alternating rlkit / plain blocks")
    parser.add_argument("--iters", type=positive_int, default=40, help="updates per block")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = {
        "DQN": dqn_pair(batch((BATCH,))),
        "C51": c51_pair(batch((BATCH,))),
        "A2C": a2c_pair(batch((8, BATCH // 8))),
    }
    print(f"batch {BATCH}, obs {OBS}, {ACTIONS} actions, MLP {HIDDEN}, {ATOMS} atoms; "
          f"{args.repeats} x {args.iters} updates, {args.threads} thread(s)")
    print(f"{'loss':<5} {'rlkit (us)':>11} {'plain (us)':>11} {'ratio':>7}")
    for name, (rlkit_update, plain_update) in cases.items():
        for fn in (rlkit_update, plain_update):
            time_block(fn, 10)  # warm-up
        rlkit_times, plain_times = [], []
        for _ in range(args.repeats):
            rlkit_times.append(time_block(rlkit_update, args.iters))
            plain_times.append(time_block(plain_update, args.iters))
        ours, theirs = statistics.median(rlkit_times), statistics.median(plain_times)
        print(f"{name:<5} {ours * 1e6:>11.1f} {theirs * 1e6:>11.1f} {ours / theirs:>6.2f}x")


if __name__ == "__main__":
    sys.exit(interruptible(main, "bench_losses.py"))
