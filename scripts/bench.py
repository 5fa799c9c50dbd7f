"""Wall time of rlkit training vs a plain single-file torch implementation of the same algorithm.

Both sides train on CartPole-v1 for the same number of frames with the same hyperparameters,
single-threaded, and finish with the same greedy evaluation (``trainer.eval_episodes`` episodes, one
per sub-env of a vector env). The cases:

- ``dqn``: rlkit's ``algo=dqn`` defaults (20k frames; most actions random, warm-up 1k frames);
- ``dqn-cleanrl``: CleanRL ``dqn.py``'s settings (50k frames, learning_starts 10k, epsilon 1 -> 0.05
  over 25k frames, batch 128, an update every 10 frames, a hard target copy every 500 frames, a
  120-84 MLP, Adam lr 2.5e-4 with torch's default (unfused) kernel on both sides): here greedy
  acting dominates;
- ``a2c``: rlkit's ``algo=a2c`` defaults, RL Zoo's CartPole-v1 settings (40k frames);
- ``minatar``: ``experiment=dqn_minatar_breakout`` (MinAtar's ``examples/dqn.py`` settings: the
  MinAtar conv network, one update of batch 32 per frame after 5k frames, centred RMSprop) for 20k
  frames, against a plain loop on ``minatar.Environment`` written like ``dqn.py`` but with
  preallocated replay tensors. Target: rlkit at least 0.9x the plain loop's frames/s (time ratio
  1.11).

- rlkit: ``rlkit.run.run(cfg, tmpdir)`` in-process (``logger=none``, no progress, no periodic
  evaluation, a checkpoint only at the end), i.e. what ``train.py`` does without Hydra's start-up.
- plain DQN: a CleanRL-style loop on one ``gymnasium.make`` env, a replay buffer of preallocated
  tensors, a 120-84 MLP, Adam, a hard target copy every ``target_update_interval`` updates.
- plain A2C: the native 8-env CartPole vector env, ``n_steps`` 5, GAE, separate 64-64 tanh actor
  and critic (orthogonal init), RMSprop, grad-norm clipping; gymnasium's autoreset steps are masked.

Repetitions alternate the two (the order flips every repetition); the medians, their ratio and the
median of per-repetition ratios are printed, against the targets (:data:`TARGETS`: DQN 1.15x at
rlkit's defaults, 1.10x at CleanRL's settings, A2C 1.0x).

Usage: python scripts/bench.py [--cases dqn dqn-cleanrl a2c] [--frames N] [--repeats 3]
                               [--plain-fused]  # also: plain DQN with fused Adam, as rlkit's algo=dqn uses
                               [--profile]      # cProfile one rlkit run per case, top functions
"""
from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from rlkit.script_args import interruptible, positive_int
from torch import nn

ROOT = Path(__file__).resolve().parent.parent


def rlkit_config(algo: str, frames: int, seed: int, extra: list[str] | None = None) -> DictConfig:
    """The composed config of ``train.py algo=<algo> env=CartPole`` (or, for an ``experiment=...``
    in ``extra``, of that experiment) for a timing run."""
    from hydra import compose, initialize_config_dir

    base = [] if any(o.startswith("experiment=") for o in extra or []) else [f"algo={algo}", "env=CartPole"]
    overrides = [*base, "logger=none", "trainer.progress=false", f"total_frames={frames}",
                 "trainer.eval_interval=0", "trainer.checkpoint_interval=0", "trainer.early_stop=false",
                 f"seed={seed}", *(extra or [])]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides)


def rlkit_train(cfg: DictConfig) -> None:
    from rlkit.run import run

    with tempfile.TemporaryDirectory(prefix="rlkit-bench-") as tmp:
        run(cfg, tmp)


# -- plain implementations -----------------------------------------------------------------------
def mlp(sizes: list[int], act: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def greedy_eval(policy: Callable[[torch.Tensor], torch.Tensor], episodes: int, seed: int) -> float:
    """Mean return of one greedy episode per sub-env of a native CartPole vector env."""
    envs = gym.make_vec("CartPole-v1", num_envs=episodes)
    obs, _ = envs.reset(seed=seed)
    returns, finished = np.zeros(episodes), np.zeros(episodes, dtype=bool)
    with torch.no_grad():
        while not finished.all():
            obs, reward, term, trunc, _ = envs.step(policy(torch.from_numpy(obs)).numpy())
            returns += reward * ~finished
            finished |= term | trunc
    envs.close()
    return float(returns.mean())


def plain_dqn(h: Any, frames: int, seed: int, eval_episodes: int, fused: bool = False) -> float:
    """CleanRL-style DQN for ``frames`` env steps; returns the greedy evaluation return. ``fused``
    picks torch's fused Adam kernel (rlkit's ``algo=dqn`` default) instead of torch's default one."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    env = gym.make("CartPole-v1")
    env.action_space.seed(seed)
    q = mlp([4, *h.hidden_sizes, 2], nn.ReLU)
    target = copy.deepcopy(q)
    opt = torch.optim.Adam(q.parameters(), lr=h.optim["lr"], eps=h.optim.get("eps", 1e-8), fused=fused)
    size = h.buffer_size
    b_obs, b_next = torch.zeros(size, 4), torch.zeros(size, 4)
    b_act, b_rew, b_term = torch.zeros(size, dtype=torch.int64), torch.zeros(size), torch.zeros(size)
    obs, _ = env.reset(seed=seed)
    ptr = filled = updates = 0
    episode_return, returns = 0.0, []
    for frame in range(1, frames + 1):
        eps = max(h.eps_end, h.eps_init + (h.eps_end - h.eps_init) * frame / h.eps_annealing_frames)
        if rng.random() < eps:
            action = int(env.action_space.sample())
        else:
            with torch.no_grad():
                action = int(q(torch.from_numpy(obs)).argmax())
        next_obs, reward, term, trunc, _ = env.step(action)
        b_obs[ptr], b_next[ptr] = torch.from_numpy(obs), torch.from_numpy(next_obs)
        b_act[ptr], b_rew[ptr], b_term[ptr] = action, reward, float(term)
        ptr, filled = (ptr + 1) % size, min(filled + 1, size)
        episode_return += reward
        if term or trunc:
            returns.append(episode_return)
            episode_return = 0.0
            next_obs, _ = env.reset()
        obs = next_obs
        if frame >= h.learning_starts and frame % h.train_frequency == 0:
            idx = torch.randint(filled, (h.batch_size,))
            with torch.no_grad():
                y = b_rew[idx] + 0.99 * target(b_next[idx]).max(-1).values * (1 - b_term[idx])
            q_sa = q(b_obs[idx]).gather(-1, b_act[idx, None]).squeeze(-1)
            loss = F.mse_loss(q_sa, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            updates += 1
            if updates % h.target_update_interval == 0:
                target.load_state_dict(q.state_dict())
    env.close()
    return greedy_eval(lambda o: q(o).argmax(-1), eval_episodes, seed + 10_000)


def _orthogonal(net: nn.Sequential, last_gain: float) -> nn.Sequential:
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for i, layer in enumerate(linears):
        nn.init.orthogonal_(layer.weight, last_gain if i == len(linears) - 1 else 2 ** 0.5)
        nn.init.zeros_(layer.bias)
    return net


def gae(reward: torch.Tensor, terminated: torch.Tensor, done: torch.Tensor, values: torch.Tensor,
        gamma: float, lmbda: float) -> torch.Tensor:
    """GAE over time-major ``[T, N]`` rollouts; ``values`` is ``[T + 1, N]`` (the last row bootstraps)."""
    adv = torch.empty_like(reward)
    last = torch.zeros_like(reward[0])
    for t in reversed(range(reward.shape[0])):
        delta = reward[t] + gamma * values[t + 1] * (1 - terminated[t]) - values[t]
        last = delta + gamma * lmbda * (1 - done[t]) * last
        adv[t] = last
    return adv


def plain_a2c(h: Any, frames: int, seed: int, eval_episodes: int, gamma: float = 0.99, lmbda: float = 0.95) -> float:
    """SB3-style A2C for ``frames`` env steps; returns the greedy evaluation return."""
    torch.manual_seed(seed)
    n, steps = h.num_envs, h.n_steps
    envs = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="vector_entry_point")
    actor = _orthogonal(mlp([4, *h.hidden_sizes, 2], nn.Tanh), 0.01)
    critic = _orthogonal(mlp([4, *h.hidden_sizes, 1], nn.Tanh), 1.0)
    params = [*actor.parameters(), *critic.parameters()]
    optim = {k: v for k, v in h.optim.items() if k != "_target_"}
    opt = torch.optim.RMSprop(params, **optim)
    obs_np, _ = envs.reset(seed=seed)
    obs = torch.from_numpy(obs_np)
    prev_done = torch.zeros(n, dtype=torch.bool)
    for _ in range(frames // (n * steps)):
        b_obs = torch.empty(steps + 1, n, 4)
        b_act = torch.empty(steps, n, dtype=torch.int64)
        b_rew, b_term, b_done = torch.empty(steps, n), torch.empty(steps, n), torch.empty(steps, n)
        b_valid = torch.empty(steps, n)
        for t in range(steps):
            b_obs[t] = obs
            with torch.no_grad():
                action = torch.distributions.Categorical(logits=actor(obs)).sample()
            obs_np, reward, term, trunc, _ = envs.step(action.numpy())
            done = torch.from_numpy(term | trunc)
            b_act[t], b_rew[t], b_term[t], b_done[t] = action, torch.from_numpy(reward), torch.from_numpy(term), done
            b_valid[t] = (~prev_done).float()  # the step after a done is gymnasium's autoreset: masked
            prev_done = done
            obs = torch.from_numpy(obs_np)
        b_obs[steps] = obs
        values = critic(b_obs).squeeze(-1)
        v = values.detach()
        adv = gae(b_rew, b_term, b_done, v, gamma, lmbda)
        log_prob = torch.distributions.Categorical(logits=actor(b_obs[:steps])).log_prob(b_act)
        count = b_valid.sum().clamp_min(1)
        policy_loss = -(adv * log_prob * b_valid).sum() / count
        value_loss = ((values[:steps] - (adv + v[:steps])) ** 2 * b_valid).sum() / count
        loss = policy_loss + h.critic_coeff * value_loss
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, h.max_grad_norm)
        opt.step()
    envs.close()
    return greedy_eval(lambda o: actor(o).argmax(-1), eval_episodes, seed + 10_000)


def plain_minatar_dqn(h: Any, frames: int, seed: int, eval_episodes: int, game: str = "breakout") -> float:
    """MinAtar's ``examples/dqn.py`` loop (random actions for ``learning_starts`` frames, epsilon
    decaying after them, one update per frame, Huber loss, centred RMSprop, a target copy every
    ``target_update_interval`` updates) on ``minatar.Environment`` directly, with preallocated uint8
    replay tensors; returns the mean greedy return of ``eval_episodes`` episodes."""
    from minatar import Environment

    from rlkit.modules import MinAtarNet

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = Environment(game, sticky_action_prob=0.1)
    env.seed(seed)
    shape = (env.state_shape()[2], *env.state_shape()[:2])
    n = env.num_actions()
    q, target = MinAtarNet(shape, n), MinAtarNet(shape, n)
    target.load_state_dict(q.state_dict())
    o = {k: v for k, v in h.optim.items() if k != "_target_" and v is not None}
    opt = torch.optim.RMSprop(q.parameters(), **o)
    size = h.buffer_size
    b_obs, b_next = torch.zeros(size, *shape, dtype=torch.uint8), torch.zeros(size, *shape, dtype=torch.uint8)
    b_act, b_rew, b_term = torch.zeros(size, dtype=torch.int64), torch.zeros(size), torch.zeros(size)

    def state() -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(env.state().transpose(2, 0, 1), dtype=np.uint8))

    env.reset()
    obs = state()
    ptr = filled = updates = 0
    for frame in range(frames):
        start = h.eps_annealing_start
        eps = 1.0 if frame < start else max(h.eps_end, h.eps_init + (h.eps_end - h.eps_init) * (frame - start)
                                             / h.eps_annealing_frames)
        if frame < h.learning_starts or rng.random() < eps:
            action = int(rng.integers(n))
        else:
            with torch.no_grad():
                action = int(q(obs[None]).argmax())
        reward, terminal = env.act(action)
        next_obs = state()
        b_obs[ptr], b_next[ptr] = obs, next_obs
        b_act[ptr], b_rew[ptr], b_term[ptr] = action, reward, float(terminal)
        ptr, filled = (ptr + 1) % size, min(filled + 1, size)
        if terminal:
            env.reset()
            next_obs = state()
        obs = next_obs
        if frame + 1 >= h.learning_starts:
            idx = torch.randint(filled, (h.batch_size,))
            with torch.no_grad():
                y = b_rew[idx] + 0.99 * target(b_next[idx]).max(-1).values * (1 - b_term[idx])
            q_sa = q(b_obs[idx]).gather(-1, b_act[idx, None]).squeeze(-1)
            loss = F.smooth_l1_loss(q_sa, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            updates += 1
            if updates % h.target_update_interval == 0:
                target.load_state_dict(q.state_dict())
    returns = []
    for episode in range(eval_episodes):
        evaluation = Environment(game, sticky_action_prob=0.1)
        evaluation.seed(seed + 10_000 + episode)
        evaluation.reset()
        total, done = 0.0, False
        while not done:
            x = torch.from_numpy(np.ascontiguousarray(evaluation.state().transpose(2, 0, 1), dtype=np.uint8))
            with torch.no_grad():
                reward, done = evaluation.act(int(q(x[None]).argmax()))
            total += reward
        returns.append(total)
    return float(np.mean(returns))


PLAIN = {"dqn": plain_dqn, "a2c": plain_a2c, "minatar": plain_minatar_dqn}

#: Targets of rlkit's time over the plain loop's (ratio of medians).
TARGETS = {"dqn": 1.15, "dqn-cleanrl": 1.10, "a2c": 1.00, "minatar": 1 / 0.9}

#: Case -> (algo, rlkit overrides, default frames).
CASES: dict[str, tuple[str, list[str], int]] = {
    "dqn": ("dqn", [], 20_000),
    "dqn-cleanrl": ("dqn", ["algo.learning_starts=10000", "algo.eps_annealing_frames=25000",
                            "algo.optim.fused=false"], 50_000),
    "a2c": ("a2c", [], 40_000),
    "minatar": ("minatar", ["experiment=dqn_minatar_breakout", "trainer.eval_episodes=10"], 20_000),
}


# -- timing --------------------------------------------------------------------------------------
def bench(case: str, frames: int, repeats: int, seed: int = 0, warmup_frames: int = 2000,
          plain_fused: bool = False) -> dict[str, Any]:
    """Alternating timings of rlkit and the plain implementation(s); medians and ratios.

    With ``plain_fused`` (DQN only), a third runner is the plain DQN with torch's fused Adam kernel
    (as rlkit's ``algo=dqn`` uses), which separates rlkit's own overhead from the kernel choice.
    """
    from rlkit.builders import validate_config

    algo, extra, _ = CASES[case]
    cfg = rlkit_config(algo, frames, seed, extra)
    settings = validate_config(cfg)
    episodes = settings.root.trainer.eval_episodes
    runners = {
        "rlkit": lambda: rlkit_train(cfg),
        "plain": lambda: PLAIN[algo](settings.algo, frames, seed, episodes),
    }
    if plain_fused and algo == "dqn" and settings.algo.optim.get("fused"):
        runners["plain-fused"] = lambda: plain_dqn(settings.algo, frames, seed, episodes, fused=True)
    # Warm-up (imports, first-call initialisation) outside the timings.
    per_env = settings.algo.n_steps if algo == "a2c" else settings.algo.train_frequency
    warm_frames = max(warmup_frames, settings.algo.num_envs * per_env)
    rlkit_train(rlkit_config(algo, warm_frames, seed, extra))
    PLAIN[algo](settings.algo, warm_frames, seed, episodes)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for rep in range(repeats):
        order = list(runners) if rep % 2 == 0 else list(reversed(runners))
        for name in order:
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
        shown = "  ".join(f"{name} {times[name][-1]:.2f}s" for name in runners)
        print(f"  {case} rep {rep + 1}/{repeats}: {shown}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    baselines = [name for name in runners if name != "rlkit"]
    ratio = {name: med["rlkit"] / med[name] for name in baselines}
    per_rep = {name: statistics.median(r / p for r, p in zip(times["rlkit"], times[name])) for name in baselines}
    return {"algo": case, "frames": frames, "times": times, "median": med, "ratio": ratio, "per_rep_ratio": per_rep}


def profile(case: str, frames: int, top: int = 25) -> None:
    """cProfile of one rlkit run: the ``top`` functions by cumulative and by own time."""
    import cProfile
    import pstats

    algo, extra, _ = CASES[case]
    cfg = rlkit_config(algo, frames, 0, extra)
    prof = cProfile.Profile()
    prof.runcall(rlkit_train, cfg)
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", "--algos", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--frames", type=positive_int, default=None, help="frames per run (default: the case's)")
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile one rlkit run per algorithm")
    parser.add_argument("--plain-fused", action="store_true",
                        help="also time the plain DQN with torch's fused Adam kernel (rlkit's algo=dqn default)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    frames = {case: args.frames or CASES[case][2] for case in args.cases}
    if args.profile:
        for case in args.cases:
            profile(case, frames[case])
        return
    results = [bench(case, frames[case], args.repeats, plain_fused=args.plain_fused) for case in args.cases]
    envs = dict.fromkeys(next((o.split("=", 1)[1] for o in CASES[case][1] if o.startswith("experiment=")), "CartPole-v1")
                         for case in args.cases)  # (the minatar case trains its experiment's game)
    print(f"\n{', '.join(envs)}, torch {torch.__version__}, {torch.get_num_threads()} thread, {args.repeats} repetitions")
    print("| case | frames | baseline | rlkit median (s) | baseline median (s) | ratio (medians) | median per-rep "
          "ratio | target | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        for name, ratio in r["ratio"].items():
            target = TARGETS.get(r["algo"], 1.15)
            ok = "yes" if ratio <= target else "no"
            print(f"| {r['algo']} | {r['frames']:,} | {name} | {r['median']['rlkit']:.2f} | {r['median'][name]:.2f} | "
                  f"{ratio:.3f} | {r['per_rep_ratio'][name]:.3f} | {target:.2f}x | {ok} |")


if __name__ == "__main__":
    from rlkit.trainers import TrainingInterrupted

    sys.exit(interruptible(main, "bench.py", "no figures were printed for the case it was timing",
                          stops=(KeyboardInterrupt, TrainingInterrupted)))
