"""Greedy evaluation on a separately seeded environment."""
from __future__ import annotations

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase

from rlkit.modules import ExplorationType, set_exploration_type


class Evaluator:
    """Runs one greedy episode in each sub-env of ``env`` and reports the mean return.

    The env is reset with the same ``seed`` at every evaluation, so an evaluation is a pure function of
    the policy's parameters (which keeps resumed runs identical to uninterrupted ones).

    Args:
        env: an :class:`rlkit.envs.GymEnv` with ``num_envs`` = the number of evaluation episodes.
        policy: the policy module; run under ``ExplorationType.DETERMINISTIC``.
        seed: reset seed of every evaluation.
        max_steps: safety cap on steps per evaluation.

    Examples:
        >>> from rlkit.envs import GymEnv  # doctest: +SKIP
        >>> Evaluator(GymEnv("CartPole-v1", num_envs=4), policy, seed=10_000)()  # doctest: +SKIP
        {'eval_return': 500.0, 'eval_return_std': 0.0, 'eval_length': 500.0}
    """

    def __init__(self, env, policy: TensorDictModuleBase, *, seed: int, max_steps: int = 100_000) -> None:
        self.env = env
        self.policy = policy
        self.seed = int(seed)
        self.max_steps = int(max_steps)

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        n = self.env.num_envs
        returns = torch.zeros(n, dtype=torch.float64)
        lengths = torch.zeros(n, dtype=torch.int64)
        finished = torch.zeros(n, dtype=torch.bool)
        td: TensorDictBase = self.env.reset(seed=self.seed)
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            for _ in range(self.max_steps):
                td = self.env.step(self.policy(td))
                running = ~finished
                returns += td["next", "reward"].reshape(n).double().cpu() * running
                lengths += running.long()
                finished |= td["next", "done"].reshape(n).cpu()
                if bool(finished.all()):
                    break
                td = self.env.next_state(td)
        std = float(returns.std(unbiased=False)) if n > 1 else 0.0
        return {
            "eval_return": float(returns.mean()),
            "eval_return_std": std,
            "eval_length": float(lengths.double().mean()),
        }

    def close(self) -> None:
        self.env.close()
