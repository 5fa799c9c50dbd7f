"""Greedy evaluation on a separately seeded environment."""
from __future__ import annotations

import numpy as np
import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase

from rlkit.modules import ExplorationType, set_exploration_type
from rlkit.modules._entries import entry_function


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
        td: TensorDictBase = self.env.reset(seed=self.seed)
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            run = entry_function(self.policy, outputs=["action"])  # only the action is read
            returns, lengths = self._episodes(td) if run is None else self._episodes_on_dicts(run)
        std = float(returns.std(unbiased=False)) if n > 1 else 0.0
        return {
            "eval_return": float(returns.mean()),
            "eval_return_std": std,
            "eval_length": float(lengths.double().mean()),
        }

    def _episodes(self, td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns and lengths of one episode per sub-env, the policy called on TensorDicts."""
        n = self.env.num_envs
        returns, lengths = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.int64)
        finished = torch.zeros(n, dtype=torch.bool)
        for _ in range(self.max_steps):
            td = self.env.step(self.policy(td))
            running = ~finished
            returns += td["next", "reward"].reshape(n).double().cpu() * running
            lengths += running.long()
            finished |= td["next", "done"].reshape(n).cpu()
            if bool(finished.all()):
                break
            td = self.env.next_state(td)
        return returns, lengths

    def _episodes_on_dicts(self, run) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`_episodes` through the policy's dict form and the env's array steps (same numbers,
        a fraction of the per-step overhead; see :func:`rlkit.modules.entry_function`)."""
        n = self.env.num_envs
        returns, lengths = np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.int64)
        finished = np.zeros(n, dtype=bool)
        obs, mask = self.env.next_state_tensors()
        for _ in range(self.max_steps):
            entries = {"observation": obs} if mask is None else {"observation": obs, "action_mask": mask}
            run(entries)
            res = self.env.advance(entries["action"])
            running = ~finished
            returns += res.reward.astype(np.float64) * running
            lengths += running
            finished |= res.done
            if finished.all():
                break
            obs, mask = res.observation, res.action_mask
        return torch.from_numpy(returns), torch.from_numpy(lengths)

    def close(self) -> None:
        self.env.close()
