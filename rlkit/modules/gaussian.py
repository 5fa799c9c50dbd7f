"""Heads of Gaussian policies over Box actions: a state-independent log standard deviation
(stable-baselines3's ``DiagGaussianDistribution``), and generalized state-dependent exploration
(gSDE, Raffin et al. 2022, https://arxiv.org/abs/2005.05719; stable-baselines3's
``StateDependentNoiseDistribution`` with ``full_std=True``, no ``expln``, no squashing, features not
learned through the noise).

Each head maps the actor's last hidden features to the parameters of its distribution, for a
:class:`~rlkit.modules.ProbabilisticActor` (``GaussianHead`` -> ``loc, scale`` for
:class:`~rlkit.modules.IndependentNormal`; ``GSDEHead`` -> ``loc, scale, noise`` for
:class:`~rlkit.modules.SDENormal`).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from rlkit.modules.exploration import ExplorationType, exploration_type

__all__ = ["GSDEExploration", "GSDEHead", "GaussianHead"]

#: Added to gSDE's variance before the square root (stable-baselines3's epsilon).
SDE_EPSILON = 1e-6


class GaussianHead(nn.Module):
    """``loc = net(x)``, ``scale = exp(log_std)`` with one learned ``log_std`` per action dimension,
    whatever the state.

    Args:
        net: maps the input to the mean action ``[*B, action_dim]``.
        action_dim: size of the action vector.
        log_std_init: initial value of every ``log_std`` entry.

    Examples:
        >>> import torch
        >>> from rlkit.modules import GaussianHead
        >>> head = GaussianHead(torch.nn.Linear(8, 2), 2, log_std_init=-1.0)
        >>> loc, scale = head(torch.randn(5, 8))
        >>> loc.shape, scale.shape, round(float(scale[0, 0]), 4)
        (torch.Size([5, 2]), torch.Size([5, 2]), 0.3679)
    """

    def __init__(self, net: nn.Module, action_dim: int, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc = self.net(x)
        return loc, self.log_std.exp().expand_as(loc)


class GSDEHead(nn.Module):
    """gSDE: ``loc = Linear(z)``; the exploration noise ``z @ W`` with weights ``W ~ N(0, exp(log_std)^2)``
    (``log_std``: one learned entry per feature and action dimension) drawn once per rollout and
    per sub-env; ``scale = sqrt((z^2) @ exp(log_std)^2 + 1e-6)``, the standard deviation of that
    noise given ``z``. ``z``, the actor's last hidden features, enters the noise and the scale
    detached (features are learned through ``loc`` only).

    While acting with exploration on ``num_envs`` rows, each sub-env uses its own ``W``; any other
    batch uses one shared ``W`` (the noise is not needed to score actions).
    :meth:`resample` draws new weights (:class:`GSDEExploration` calls it after every collected
    batch, i.e. before each rollout); with ``sample_freq > 0`` they are also redrawn every
    ``sample_freq`` exploring steps within a rollout.

    Args:
        in_features: width of the features ``z``.
        action_dim: size of the action vector.
        log_std_init: initial value of every ``log_std`` entry.
        num_envs: sub-envs the policy acts in (one ``W`` each).
        sample_freq: exploring steps between redraws within a rollout; ``-1``: once per rollout.

    Examples:
        >>> import torch
        >>> from rlkit.modules import GSDEHead, SDENormal
        >>> head = GSDEHead(4, 1, log_std_init=-2.0, num_envs=3)
        >>> loc, scale, noise = head(torch.randn(3, 4))
        >>> SDENormal(loc, scale, noise).sample().shape
        torch.Size([3, 1])
    """

    def __init__(self, in_features: int, action_dim: int, log_std_init: float = -2.0, *, num_envs: int = 1,
                 sample_freq: int = -1) -> None:
        super().__init__()
        if sample_freq == 0 or sample_freq < -1:
            raise ValueError(f"sample_freq must be -1 (once per rollout) or a positive number of steps, got {sample_freq}")
        self.mean = nn.Linear(in_features, action_dim)
        self.log_std = nn.Parameter(torch.full((in_features, action_dim), float(log_std_init)))
        self.num_envs = int(num_envs)
        self.sample_freq = int(sample_freq)
        self.steps = 0  # exploring steps since the last redraw of a rollout
        self.weights = torch.zeros(in_features, action_dim)  # shared W
        self.env_weights = torch.zeros(self.num_envs, in_features, action_dim)  # one W per sub-env
        self.resample()

    def resample(self) -> None:
        """Draws new exploration weights (torch's global generator)."""
        with torch.no_grad():
            std = self.log_std.exp()
            self.weights = torch.normal(torch.zeros_like(std), std)
            self.env_weights = torch.normal(torch.zeros_like(std).expand(self.num_envs, -1, -1).contiguous(),
                                            std.expand(self.num_envs, -1, -1))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        loc = self.mean(features)
        z = features.detach()
        scale = (z.square() @ self.log_std.exp().square() + SDE_EPSILON).sqrt()
        # Sampling for the envs (one row each, their own weights): the only use of the per-env noise.
        # Otherwise (the mode, the losses' log-probabilities) the noise is not read, and no branch on
        # the batch size is taken (an exported policy keeps its batch size symbolic).
        # (One env samples with the shared weights; its redraws every sample_freq steps count all the same.)
        acting = (exploration_type() is ExplorationType.RANDOM and features.dim() == 2
                  and features.shape[0] == self.num_envs)
        if acting:
            if self.sample_freq > 0 and self.steps % self.sample_freq == 0:
                self.resample()
            self.steps += 1
        with torch.no_grad():
            if acting and self.num_envs > 1:
                noise = (z.unsqueeze(-2) @ self.env_weights.to(z)).squeeze(-2)
            else:
                noise = z @ self.weights.to(z)
        return loc, scale, noise

    def noise_state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.clone(), "env_weights": self.env_weights.clone(), "steps": self.steps}

    def load_noise_state_dict(self, state: Mapping[str, Any]) -> None:
        if tuple(state["env_weights"].shape) != tuple(self.env_weights.shape):
            raise ValueError(f"gSDE weights of shape {tuple(state['env_weights'].shape)}, this head's are "
                             f"{tuple(self.env_weights.shape)}")
        self.weights = state["weights"].to(self.log_std, copy=True)
        self.env_weights = state["env_weights"].to(self.log_std, copy=True)
        self.steps = int(state["steps"])


class GSDEExploration:
    """The trainer's exploration hook for a :class:`GSDEHead`: after every collected batch (so
    before each rollout) it redraws the head's weights; its state is the current weights (the head's
    parameters belong to the loss module's state).

    Examples:
        >>> from rlkit.modules import GSDEExploration, GSDEHead
        >>> head = GSDEHead(4, 1, num_envs=2)
        >>> explore = GSDEExploration(head)
        >>> before = head.env_weights.clone()
        >>> explore.step(16)
        >>> bool((head.env_weights != before).any()), head.steps
        (True, 0)
    """

    def __init__(self, head: GSDEHead) -> None:
        self.head = head

    def step(self, frames: int) -> None:  # noqa: ARG002 (the exploration hook's signature)
        self.head.resample()
        self.head.steps = 0

    def state_dict(self) -> dict[str, Any]:
        return self.head.noise_state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.head.load_noise_state_dict(state)
