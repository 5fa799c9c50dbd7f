"""Action distributions for :class:`~rlkit.modules.ProbabilisticActor`.

``OneHotCategorical`` and ``NormalParamExtractor`` are tensordict's own classes, re-exported.
``Categorical`` adds ``deterministic_sample`` (the mode) to torch's, so tensordict needs no fallback.
``TanhNormal`` is a normal squashed by tanh into ``(low, high)``, as used by SAC
(Haarnoja et al. 2018, https://arxiv.org/abs/1801.01290, appendix C). ``IndependentNormal`` is a
diagonal Gaussian over an action vector (stable-baselines3's ``DiagGaussianDistribution``);
``SDENormal`` the same Gaussian sampled with generalized state-dependent exploration's noise
(:class:`~rlkit.modules.GSDEHead`).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from tensordict.nn import InteractionType, NormalParamExtractor, OneHotCategorical
from torch import distributions as D
from torch.distributions import constraints

from rlkit.modules.tensor_call import recording_graph


class Categorical(D.Categorical):
    """:class:`torch.distributions.Categorical` with ``deterministic_sample`` = the mode (first max).

    Argument and sample validation is off unless ``validate_args=True``: a policy builds one per
    env step and per update, from logits that are finite by construction, and torch's default
    checks cost more than the distribution itself there.

    Examples:
        >>> import torch
        >>> from rlkit.modules import Categorical
        >>> Categorical(logits=torch.tensor([0.0, 2.0, 2.0])).deterministic_sample
        tensor(1)
    """

    def __init__(
        self,
        probs: torch.Tensor | None = None,
        logits: torch.Tensor | None = None,
        validate_args: bool | None = None,
    ) -> None:
        super().__init__(probs=probs, logits=logits, validate_args=bool(validate_args))

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mode


class TanhNormal(D.Distribution):
    """``low + (high - low) * (tanh(x) + 1) / 2`` with ``x ~ Normal(loc, scale)``.

    The last ``event_dims`` dims are the event (log-probabilities are summed over them).
    ``deterministic_sample`` / ``mode`` is the squashed ``loc``. Sampling with
    :meth:`rsample_and_log_prob` scores the pre-tanh draw, so saturated samples keep a finite
    log-probability; :meth:`log_prob` clamps its input just inside ``(low, high)`` for the same reason.

    Args:
        loc: mean of the normal before squashing.
        scale: standard deviation before squashing (positive).
        low: lower bound of the support.
        high: upper bound of the support (> ``low``).
        event_dims: number of trailing event dims.
        validate_args: torch's argument and sample checks; off unless ``True`` (as for
            :class:`Categorical`). The bounds and ``event_dims`` are always checked.

    Examples:
        >>> import torch
        >>> from rlkit.modules import TanhNormal
        >>> dist = TanhNormal(torch.zeros(3, 2), torch.ones(3, 2))
        >>> a, lp = dist.rsample_and_log_prob()
        >>> a.shape, lp.shape, bool((a.abs() < 1).all())
        (torch.Size([3, 2]), torch.Size([3]), True)
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    has_rsample = True

    def __init__(
        self,
        loc: torch.Tensor,
        scale: torch.Tensor,
        low: float | torch.Tensor = -1.0,
        high: float | torch.Tensor = 1.0,
        event_dims: int = 1,
        validate_args: bool | None = None,
    ) -> None:
        self.loc, self.scale = torch.broadcast_tensors(loc, scale)
        low_t = torch.as_tensor(low, dtype=self.loc.dtype, device=self.loc.device)
        high_t = torch.as_tensor(high, dtype=self.loc.dtype, device=self.loc.device)
        if not recording_graph() and bool((low_t >= high_t).any()):
            raise ValueError(f"TanhNormal needs low < high, got low={low} high={high}")
        if not 0 <= event_dims <= self.loc.dim():
            raise ValueError(f"event_dims must be in [0, {self.loc.dim()}] for loc of shape {tuple(self.loc.shape)}")
        self.low, self.high = low_t, high_t
        self._mid = (high_t + low_t) / 2
        self._half = (high_t - low_t) / 2
        self._event_dims = event_dims
        # Off unless asked, as for the other rlkit distributions (a policy builds one per step and per
        # update); and torch's checks branch on tensor values, which a recorded graph cannot (rlkit.exporter).
        validate = bool(validate_args) and not recording_graph()
        self._base = D.Normal(self.loc, self.scale, validate_args=validate)
        split = self.loc.dim() - event_dims
        super().__init__(self.loc.shape[:split], self.loc.shape[split:], validate_args=validate)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self) -> constraints.Constraint:
        return constraints.interval(self.low, self.high)

    def _squash(self, x: torch.Tensor) -> torch.Tensor:
        return self._mid + self._half * torch.tanh(x)

    def _log_prob_pre_tanh(self, x: torch.Tensor) -> torch.Tensor:
        # log|d tanh(x)/dx| = 2 * (log 2 - x - softplus(-2x)), stable for large |x|.
        log_det = 2.0 * (math.log(2.0) - x - F.softplus(-2.0 * x)) + self._half.log()
        lp = self._base.log_prob(x) - log_det
        return lp.sum(tuple(range(-self._event_dims, 0))) if self._event_dims else lp

    def rsample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = torch.Size()) -> torch.Tensor:
        return self._squash(self._base.rsample(sample_shape))

    def rsample_and_log_prob(self, sample_shape: torch.Size = torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised sample and its log-probability, scored before squashing."""
        x = self._base.rsample(sample_shape)
        return self._squash(x), self._log_prob_pre_tanh(x)

    def sample_and_log_prob(self, sample_shape: torch.Size = torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`rsample_and_log_prob`, without gradients."""
        with torch.no_grad():
            return self.rsample_and_log_prob(sample_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        eps = torch.finfo(value.dtype).eps
        y = ((value - self._mid) / self._half).clamp(-1.0 + eps, 1.0 - eps)
        return self._log_prob_pre_tanh(torch.atanh(y))

    @property
    def mode(self) -> torch.Tensor:
        return self._squash(self.loc)

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.mode


class IndependentNormal(D.Independent):
    """A diagonal Gaussian over the last dim: ``Normal(loc, scale)`` whose log-probability and
    entropy are summed over the action vector (stable-baselines3's ``DiagGaussianDistribution``);
    ``deterministic_sample`` is ``loc``.

    Examples:
        >>> import torch
        >>> from rlkit.modules import IndependentNormal
        >>> dist = IndependentNormal(torch.zeros(3, 2), torch.ones(3, 2))
        >>> dist.log_prob(torch.zeros(3, 2)).shape, round(float(dist.entropy()[0]), 4)
        (torch.Size([3]), 2.8379)
    """

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, validate_args: bool | None = None) -> None:
        super().__init__(D.Normal(loc, scale, validate_args=bool(validate_args)), 1,
                         validate_args=bool(validate_args))

    @property
    def deterministic_sample(self) -> torch.Tensor:
        return self.base_dist.loc


class SDENormal(IndependentNormal):
    """:class:`IndependentNormal` ``(loc, scale)`` whose draws are ``loc + noise``: generalized
    state-dependent exploration (Raffin et al. 2022, https://arxiv.org/abs/2005.05719), where
    ``noise = latent @ W`` with exploration weights ``W`` drawn once per rollout, and ``scale`` the
    standard deviation of that noise given the latent (:class:`~rlkit.modules.GSDEHead` computes
    both). Log-probabilities and entropy are the Gaussian's.

    Examples:
        >>> import torch
        >>> from rlkit.modules import SDENormal
        >>> dist = SDENormal(torch.zeros(2, 1), torch.ones(2, 1), noise=torch.tensor([[0.5], [-1.0]]))
        >>> dist.sample()
        tensor([[ 0.5000],
                [-1.0000]])
    """

    has_rsample = False

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, noise: torch.Tensor,
                 validate_args: bool | None = None) -> None:
        super().__init__(loc, scale, validate_args=validate_args)
        self.noise = noise

    def sample(self, sample_shape: torch.Size | list[int] | tuple[int, ...] = torch.Size()) -> torch.Tensor:
        if tuple(sample_shape):
            raise ValueError("SDENormal draws one action per latent (its noise is fixed per rollout); "
                             f"got sample_shape={tuple(sample_shape)}")
        with torch.no_grad():
            return self.base_dist.loc + self.noise


def sample(dist: D.Distribution, kind: InteractionType) -> torch.Tensor:
    """The action a policy takes from ``dist`` under the exploration type ``kind``.

    ``RANDOM``: a draw (reparameterised where the distribution can). ``DETERMINISTIC``: the
    distribution's ``deterministic_sample`` when it has one, else its mean (continuous support) or
    mode (discrete). ``MODE``, ``MEAN``, ``MEDIAN``: that statistic. These are tensordict's rules,
    so TensorDict calls and tensor-level calls agree.

    Examples:
        >>> import torch
        >>> from rlkit.modules import Categorical, ExplorationType, sample
        >>> sample(Categorical(logits=torch.tensor([0.0, 3.0])), ExplorationType.DETERMINISTIC)
        tensor(1)
    """
    if kind is InteractionType.RANDOM:
        return dist.rsample() if dist.has_rsample else dist.sample()
    if kind is InteractionType.DETERMINISTIC:
        deterministic = getattr(dist, "deterministic_sample", None)
        if deterministic is not None:
            return deterministic
        try:
            support = dist.support
            # torch annotates ``support`` as Optional but asserts it is set where it reads it.
            assert support is not None
            kind = InteractionType.MODE if support.is_discrete else InteractionType.MEAN
        except NotImplementedError:
            kind = InteractionType.MEAN
    if kind is InteractionType.MODE:
        return dist.mode
    if kind is InteractionType.MEAN:
        return dist.mean
    if kind is InteractionType.MEDIAN:
        return dist.icdf(torch.full_like(dist.mean, 0.5))
    raise ValueError(f"unknown exploration type {kind!r}; valid choices: {[k.name for k in InteractionType]}")


def sample_and_log_prob(dist: D.Distribution, kind: InteractionType) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`sample` and the log-probability of the value taken. A random draw of a distribution that
    can score its own draw (``rsample_and_log_prob`` / ``sample_and_log_prob``, e.g.
    :class:`TanhNormal`, whose pre-tanh draw stays finite where the squashed value saturates) is
    scored that way; anything else by ``dist.log_prob``."""
    if kind is InteractionType.RANDOM:
        joint = getattr(dist, "rsample_and_log_prob" if dist.has_rsample else "sample_and_log_prob", None)
        if joint is not None:
            return joint()
    value = sample(dist, kind)
    return value, dist.log_prob(value)


__all__ = [
    "Categorical",
    "IndependentNormal",
    "NormalParamExtractor",
    "OneHotCategorical",
    "SDENormal",
    "TanhNormal",
    "sample",
    "sample_and_log_prob",
]
