"""Greedy evaluation on a separately seeded environment."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlkit import keys
from rlkit.modules import ExplorationType, action_call, set_exploration_type


class Evaluator:
    """Runs one greedy episode in each sub-env of ``env`` and reports the mean return.

    The env is reset with the same ``seed`` at every evaluation, so an evaluation is a pure function of
    the policy's parameters (which keeps resumed runs identical to uninterrupted ones). The policy
    acts through its tensor-level action call (:func:`rlkit.modules.action_call`), the env through
    :meth:`~rlkit.envs.GymEnv.advance`.

    Args:
        env: an :class:`rlkit.envs.GymEnv` with ``num_envs`` = the number of evaluation episodes.
        policy: the policy module (reads ``"observation"``, and ``"action_mask"`` when the env has
            one; writes ``"action"``); run under ``ExplorationType.DETERMINISTIC``.
        seed: reset seed of every evaluation.
        max_steps: safety cap on steps per evaluation.

    Examples:
        >>> import torch
        >>> from rlkit.data import Categorical
        >>> from rlkit.envs import GymEnv
        >>> from rlkit.modules import QValueActor
        >>> from rlkit.trainers import Evaluator
        >>> policy = QValueActor(torch.nn.Linear(4, 2), spec=Categorical(2))
        >>> result = Evaluator(GymEnv("CartPole-v1", num_envs=4), policy, seed=10_000)()
        >>> sorted(result)
        ['eval_length', 'eval_return', 'eval_return_std']
    """

    def __init__(self, env: Any, policy: Any, *, seed: int, max_steps: int = 100_000) -> None:
        self.env = env
        self.policy = policy
        self.seed = int(seed)
        self.max_steps = int(max_steps)
        self._action = action_call(policy)
        self._in_keys = list(getattr(policy, "in_keys", [keys.OBSERVATION]))

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        env, n = self.env, self.env.num_envs
        env.reset(seed=self.seed)
        returns, lengths = np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.int64)
        finished = np.zeros(n, dtype=bool)
        obs, mask = env.next_state_tensors()
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            for _ in range(self.max_steps):
                inputs = [obs if key == keys.OBSERVATION else mask for key in self._in_keys]
                res = env.advance(self._action(*inputs))
                running = ~finished
                returns += res.raw_reward.astype(np.float64) * running  # the env's own rewards
                lengths += running
                finished |= res.done
                if finished.all():
                    break
                obs, mask = res.observation, res.action_mask
        returns_t, lengths_t = torch.from_numpy(returns), torch.from_numpy(lengths)
        std = float(returns_t.std(unbiased=False)) if n > 1 else 0.0
        return {
            "eval_return": float(returns_t.mean()),
            "eval_return_std": std,
            "eval_length": float(lengths_t.double().mean()),
        }

    def close(self) -> None:
        self.env.close()
