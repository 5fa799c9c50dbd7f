"""Greedy evaluation on a separately seeded environment."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from rlkit import keys
from rlkit.data import Categorical
from rlkit.modules import ExplorationType, action_call, set_exploration_type
from rlkit.modules.gaussian import GSDEHead

log = logging.getLogger(__name__)


def warn_unfinished(finished: np.ndarray, max_steps: int, who: str = "evaluation") -> None:
    """Warns when the step cap ended an evaluation before all its episodes finished (their returns so
    far are what gets reported): the cap is a safety net, not a protocol."""
    left = int((~finished).sum())
    if left:
        log.warning("%s stopped at its cap of %d steps with %d of %d episodes unfinished: their returns so far are "
                    "reported (a policy that never ends an episode, or a cap too low for the env)", who, max_steps,
                    left, finished.size)


def return_label(epsilon: float) -> str:
    """What the end lines call an evaluation's mean return: greedy, or ε-greedy with ``epsilon``.

    Examples:
        >>> from rlkit.trainers.evaluator import return_label
        >>> return_label(0.0), return_label(0.05)
        ('greedy eval return', 'eval return (epsilon 0.05)')
    """
    return "greedy eval return" if not epsilon else f"eval return (epsilon {epsilon:g})"


class Evaluator:
    """Runs one greedy episode in each sub-env of ``env`` and reports the mean return.

    With ``epsilon > 0`` each action is replaced by a uniformly random allowed one with that
    probability (the Atari evaluation protocols' ε-greedy, e.g. 0.05 in Mnih et al. 2015), drawn
    from a generator seeded with ``seed`` at every evaluation (discrete actions only).

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
        epsilon: probability of a random action.
        deterministic: act on the policy's deterministic action (greedy, a Gaussian's mean); with
            ``False`` a stochastic policy samples its actions (``ExplorationType.RANDOM``) from torch's
            global generator seeded with ``seed`` (and a gSDE head draws its exploration weights
            from it), all put back as they were after: an evaluation during training leaves the
            training's random draws and exploration weights alone.

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

    def __init__(self, env: Any, policy: Any, *, seed: int, max_steps: int = 100_000, epsilon: float = 0.0,
                 deterministic: bool = True) -> None:
        self.env = env
        self.policy = policy
        self.seed = int(seed)
        self.max_steps = int(max_steps)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        if epsilon > 0 and not isinstance(env.action_spec, Categorical):
            raise ValueError(f"an evaluation epsilon needs discrete actions (one index per env), the env's action spec "
                             f"is {type(env.action_spec).__name__}")
        self.epsilon = float(epsilon)
        self.exploration = ExplorationType.DETERMINISTIC if deterministic else ExplorationType.RANDOM
        self._action = action_call(policy)
        self._in_keys = list(getattr(policy, "in_keys", [keys.OBSERVATION]))
        #: Which episodes of the last :meth:`episodes` call ended before the ``max_steps`` cap (bool,
        #: one per sub-env; the others' returns are their returns so far).
        self.finished = np.zeros(0, dtype=bool)

    @torch.no_grad()
    def __call__(self) -> dict[str, float]:
        return evaluation_metrics(*self.episodes())

    @torch.no_grad()
    def episodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Plays one episode in each sub-env; returns their returns (float64, the env's own
        rewards) and lengths (int64), one entry per sub-env."""
        if self.exploration != ExplorationType.RANDOM:
            return self._play()
        # Sampled actions draw from torch's global generator: seeded here and restored after (every
        # device's, as manual_seed seeds them all), as are a gSDE head's exploration weights. CUDA's
        # generators are forked only where CUDA is initialised: reading them would initialise it (a
        # CUDA context on the GPU for a run on the CPU), and where it is not, nothing drew from them
        # (manual_seed only queues their seeding for an initialisation that a CPU run never makes).
        noise = {m: m.noise_state_dict() for m in self.policy.modules() if isinstance(m, GSDEHead)}
        with torch.random.fork_rng(devices=None if torch.cuda.is_initialized() else []):
            torch.manual_seed(self.seed)
            try:
                for head in noise:
                    head.resample()
                return self._play()
            finally:
                for head, state in noise.items():
                    head.load_noise_state_dict(state)

    def _play(self) -> tuple[np.ndarray, np.ndarray]:
        env, n = self.env, self.env.num_envs
        env.reset(seed=self.seed)
        returns, lengths = np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.int64)
        finished = np.zeros(n, dtype=bool)
        obs, mask = env.next_state_tensors()
        generator = torch.Generator().manual_seed(self.seed)
        with set_exploration_type(self.exploration):
            for _ in range(self.max_steps):
                inputs = [obs if key == keys.OBSERVATION else mask for key in self._in_keys]
                action = self._action(*inputs)
                if self.epsilon > 0:
                    action = epsilon_explore(action, mask, int(self.env.action_spec.n), self.epsilon, generator)
                res = env.advance(action)
                running = ~finished
                returns += res.raw_reward.astype(np.float64) * running  # the env's own rewards
                lengths += running
                finished |= res.done
                if finished.all():
                    break
                obs, mask = res.observation, res.action_mask
        warn_unfinished(finished, self.max_steps)
        self.finished = finished
        return returns, lengths

    def explore(self, action: torch.Tensor, mask: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """``action`` with each entry replaced by a random allowed one with probability ``epsilon``
        (draws from ``generator``): :func:`epsilon_explore` with this evaluator's env and epsilon."""
        return epsilon_explore(action, mask, int(self.env.action_spec.n), self.epsilon, generator)

    def close(self) -> None:
        self.env.close()


def epsilon_explore(action: torch.Tensor, mask: torch.Tensor | None, num_actions: int, epsilon: float,
                    generator: torch.Generator) -> torch.Tensor:
    """``action`` (indices ``[N]``) with each entry replaced, with probability ``epsilon``, by a
    uniformly random allowed action (``mask``: bool ``[N, num_actions]``, True = allowed); the coins
    and the actions are drawn from ``generator``.

    Examples:
        >>> import torch
        >>> from rlkit.trainers.evaluator import epsilon_explore
        >>> g = torch.Generator().manual_seed(0)
        >>> epsilon_explore(torch.zeros(4, dtype=torch.int64), None, 3, 0.0, g).tolist()
        [0, 0, 0, 0]
        >>> mask = torch.tensor([[False, False, True]] * 4)
        >>> epsilon_explore(torch.zeros(4, dtype=torch.int64), mask, 3, 1.0, g).tolist()
        [2, 2, 2, 2]
    """
    n = action.shape[0]
    coins = torch.rand(n, generator=generator) < epsilon
    allowed = torch.ones(n, num_actions) if mask is None else mask.to("cpu", torch.float32)
    random = torch.multinomial(allowed, 1, generator=generator).reshape(n)
    return torch.where(coins.to(action.device), random.to(action.device, action.dtype), action)


def evaluation_metrics(returns: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """The logged summary of one evaluation's episodes: mean return, its (population) std and the
    mean length."""
    returns_t, lengths_t = torch.from_numpy(returns), torch.from_numpy(lengths)
    std = float(returns_t.std(unbiased=False)) if len(returns) > 1 else 0.0
    return {
        "eval_return": float(returns_t.mean()),
        "eval_return_std": std,
        "eval_length": float(lengths_t.double().mean()),
    }
