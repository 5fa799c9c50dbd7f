"""Pure return and advantage kernels, and the C51 categorical projection.

Every return kernel takes tensors of one shape ``[*B, T, 1]`` (``time_dim`` names T, ``-2`` by
default) and returns tensors of that shape. Flag semantics, shared by all kernels:

* ``terminated[t]`` (bool): ``s[t+1]`` is terminal, so step ``t`` does not bootstrap; its next value is
  replaced by 0 with ``torch.where``, so a NaN or inf next value there never leaks into the result.
* ``done[t] = terminated[t] | truncated[t]`` (bool): the multi-step chain stops at ``t`` and does not
  cross into the next episode. A truncated (done, not terminated) step bootstraps from its own next
  value. ``terminated`` implies done even where ``done`` says otherwise.
* The last step of the window always bootstraps from its next value (unless terminated).
* When ``terminated`` is None, ``done`` is taken as ``terminated`` (no bootstrapping at any done step),
  the safe choice when truncation is not recorded.

``gamma`` and ``lmbda`` are Python floats in ``[0, 1]`` or tensors broadcastable to the inputs' shape
(for instance a per-sample discount ``[*B, 1, 1]``).

References: Sutton & Barto, *Reinforcement Learning: An Introduction* (2nd ed., 2018), ch. 6-7 and
12 (TD(0), n-step and TD(lambda) returns); Schulman et al., *High-Dimensional Continuous Control Using
Generalized Advantage Estimation* (2015), https://arxiv.org/abs/1506.02438; Bellemare et al., *A
Distributional Perspective on Reinforcement Learning* (2017), https://arxiv.org/abs/1707.06887.

Examples:
    >>> import torch
    >>> from rlkit.objectives.value.functional import td_lambda_return_estimate
    >>> reward = torch.ones(1, 3, 1)
    >>> next_value = torch.full((1, 3, 1), 10.0)
    >>> done = torch.tensor([False, False, True]).view(1, 3, 1)
    >>> td_lambda_return_estimate(0.5, 1.0, next_value, reward, done).flatten().tolist()
    [1.75, 1.5, 1.0]
"""
from __future__ import annotations

import torch

from rlkit.objectives.value._checks import (
    Scalar,
    as_factor,
    check_same_shape,
    continues,
    reverse_affine_scan,
)

__all__ = [
    "categorical_projection",
    "check_support",
    "generalized_advantage_estimate",
    "td0_return_estimate",
    "td1_return_estimate",
    "td_lambda_return_estimate",
]


def _flags(done: torch.Tensor, terminated: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if terminated is None:
        return done, done
    return done | terminated, terminated


def _bootstrap(next_state_value: torch.Tensor, terminated: torch.Tensor) -> torch.Tensor:
    return torch.where(terminated, torch.zeros_like(next_state_value), next_state_value)


def _chain_inputs(
    time_dim: int,
    gamma: Scalar,
    next_state_value: torch.Tensor,
    reward: torch.Tensor,
    done: torch.Tensor,
    terminated: torch.Tensor | None,
    state_value: torch.Tensor | None = None,
) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The checks and masks every multi-step kernel starts with.

    Returns ``(time_dim, gamma, cont, next_value)``: the non-negative time dim, gamma as a tensor, the
    mask of steps that chain into the next one, and ``V(s[t+1])`` zeroed where terminated.
    """
    time_dim = check_same_shape(
        time_dim,
        state_value=state_value,
        next_state_value=next_state_value,
        reward=reward,
        done=done,
        terminated=terminated,
    )
    gamma = as_factor(gamma, "gamma", reward)
    done, terminated = _flags(done, terminated)
    return time_dim, gamma, continues(done, time_dim), _bootstrap(next_state_value, terminated)


def td0_return_estimate(
    gamma: Scalar,
    next_state_value: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    *,
    done: torch.Tensor | None = None,
    time_dim: int = -2,
) -> torch.Tensor:
    """One-step TD target ``r[t] + gamma * V(s[t+1])``, with no bootstrap where terminated.

    Args:
        gamma: discount factor.
        next_state_value: ``V(s[t+1])``, ``[*B, T, 1]``.
        reward: ``r[t]``, ``[*B, T, 1]``.
        terminated: bool ``[*B, T, 1]``.
        done: bool ``[*B, T, 1]``; shape-checked only, since a one-step target never crosses a step.
        time_dim: the time dim (checked for range; TD(0) is elementwise).

    Returns:
        The target, ``[*B, T, 1]``.
    """
    check_same_shape(
        time_dim, next_state_value=next_state_value, reward=reward, terminated=terminated, done=done
    )
    gamma = as_factor(gamma, "gamma", reward)
    return reward + gamma * _bootstrap(next_state_value, terminated)


def td_lambda_return_estimate(
    gamma: Scalar,
    lmbda: Scalar,
    next_state_value: torch.Tensor,
    reward: torch.Tensor,
    done: torch.Tensor,
    *,
    terminated: torch.Tensor | None = None,
    time_dim: int = -2,
) -> torch.Tensor:
    """TD(lambda) return (Sutton & Barto, ch. 12), computed backwards over the window.

    ``G[t] = r[t] + gamma * ((1 - lmbda) * V(s[t+1]) + lmbda * G[t+1])`` while the chain continues;
    ``G[t] = r[t] + gamma * V(s[t+1])`` at a truncated step or the window's last step;
    ``G[t] = r[t]`` at a terminated step. ``lmbda=0`` gives TD(0), ``lmbda=1`` gives TD(1).

    Args:
        gamma: discount factor.
        lmbda: trace-decay factor.
        next_state_value: ``V(s[t+1])``, ``[*B, T, 1]``.
        reward: ``r[t]``, ``[*B, T, 1]``.
        done: bool ``[*B, T, 1]``, terminated or truncated.
        terminated: bool ``[*B, T, 1]``; None means ``done``.
        time_dim: the time dim.

    Returns:
        The lambda-return, ``[*B, T, 1]``.
    """
    time_dim, gamma, cont, nxt = _chain_inputs(time_dim, gamma, next_state_value, reward, done, terminated)
    lmbda = as_factor(lmbda, "lmbda", reward)
    # Where the chain continues, V(s[t+1]) keeps weight (1 - lmbda) and G[t+1] gets lmbda.
    weighted = torch.where(cont, (1 - lmbda) * nxt, nxt)
    offset = reward + gamma * weighted
    coef = torch.where(cont, gamma * lmbda, torch.zeros_like(offset))
    return reverse_affine_scan(offset, coef, time_dim)


def td1_return_estimate(
    gamma: Scalar,
    next_state_value: torch.Tensor,
    reward: torch.Tensor,
    done: torch.Tensor,
    *,
    terminated: torch.Tensor | None = None,
    time_dim: int = -2,
) -> torch.Tensor:
    """TD(1) return: the discounted sum of rewards to the episode or window end, then bootstrapped.

    ``G[t] = r[t] + gamma * G[t+1]`` while the chain continues, and as TD(0) where it stops (a
    truncated step or the window's last step bootstraps from its own next value; a terminated step
    does not bootstrap). Next values of continuing steps are not read at all.

    Args:
        gamma: discount factor.
        next_state_value: ``V(s[t+1])``, ``[*B, T, 1]``.
        reward: ``r[t]``, ``[*B, T, 1]``.
        done: bool ``[*B, T, 1]``, terminated or truncated.
        terminated: bool ``[*B, T, 1]``; None means ``done``.
        time_dim: the time dim.

    Returns:
        The Monte-Carlo-style return, ``[*B, T, 1]``.
    """
    time_dim, gamma, cont, nxt = _chain_inputs(time_dim, gamma, next_state_value, reward, done, terminated)
    offset = reward + gamma * torch.where(cont, torch.zeros_like(nxt), nxt)
    coef = torch.where(cont, gamma, torch.zeros_like(offset))
    return reverse_affine_scan(offset, coef, time_dim)


def generalized_advantage_estimate(
    gamma: Scalar,
    lmbda: Scalar,
    state_value: torch.Tensor,
    next_state_value: torch.Tensor,
    reward: torch.Tensor,
    done: torch.Tensor,
    *,
    terminated: torch.Tensor | None = None,
    time_dim: int = -2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al. 2015, https://arxiv.org/abs/1506.02438).

    ``delta[t] = r[t] + gamma * V(s[t+1]) - V(s[t])`` (no bootstrap where terminated) and
    ``A[t] = delta[t] + gamma * lmbda * A[t+1]`` while the chain continues, ``A[t] = delta[t]`` where it
    stops. The value target is ``A[t] + V(s[t])``, which equals the TD(lambda) return when
    ``next_state_value[t] == state_value[t+1]`` inside episodes.

    Args:
        gamma: discount factor.
        lmbda: trace-decay factor.
        state_value: ``V(s[t])``, ``[*B, T, 1]``.
        next_state_value: ``V(s[t+1])``, ``[*B, T, 1]``.
        reward: ``r[t]``, ``[*B, T, 1]``.
        done: bool ``[*B, T, 1]``, terminated or truncated.
        terminated: bool ``[*B, T, 1]``; None means ``done``.
        time_dim: the time dim.

    Returns:
        ``(advantage, value_target)``, both ``[*B, T, 1]``.
    """
    time_dim, gamma, cont, nxt = _chain_inputs(
        time_dim, gamma, next_state_value, reward, done, terminated, state_value=state_value
    )
    lmbda = as_factor(lmbda, "lmbda", reward)
    delta = reward + gamma * nxt - state_value
    coef = torch.where(cont, gamma * lmbda, torch.zeros_like(delta))
    advantage = reverse_affine_scan(delta, coef, time_dim)
    return advantage, advantage + state_value


def check_support(support: torch.Tensor) -> None:
    """Refuses a support :func:`categorical_projection` cannot project onto: not 1-D with at least two
    atoms, not finite, not increasing or not evenly spaced (to a relative tolerance of 1e-4 of the
    spacing). A loss checks its network's support once, when it is built; the projection itself does
    not (that would synchronise with the device on every call).

    Examples:
        >>> import torch
        >>> from rlkit.objectives.value.functional import check_support
        >>> check_support(torch.linspace(-10, 10, 51))
        >>> check_support(torch.tensor([1.0, 0.0, -1.0]))
        Traceback (most recent call last):
        ...
        ValueError: the support must be increasing, evenly spaced atoms v_min .. v_max (as torch.linspace(v_min, v_max, K)), got [1.0, 0.0, -1.0]
    """
    values = support.detach().to("cpu", torch.float64).reshape(-1)
    shown = [round(v, 6) for v in values[:8].tolist()] + (["..."] if values.numel() > 8 else [])
    if support.dim() != 1 or values.numel() < 2 or not bool(torch.isfinite(values).all()):
        raise ValueError(f"the support must be a 1-D tensor of at least 2 finite atoms, got shape "
                         f"{tuple(support.shape)}: {shown}")
    spacing = (values[-1] - values[0]) / (values.numel() - 1)
    even = torch.linspace(float(values[0]), float(values[-1]), values.numel(), dtype=torch.float64)
    # Within rounding of the support's own dtype (a float16 linspace is evenly spaced to its precision).
    precision = torch.finfo(support.dtype if support.is_floating_point() else torch.get_default_dtype()).eps
    tolerance = max(1e-4 * float(spacing), 4 * precision * float(values.abs().max()))
    if not (spacing > 0 and bool(values.diff().gt(0).all()) and bool(((values - even).abs() <= tolerance).all())):
        raise ValueError(f"the support must be increasing, evenly spaced atoms v_min .. v_max (as "
                         f"torch.linspace(v_min, v_max, K)), got {shown}")


def categorical_projection(
    next_probs: torch.Tensor,
    reward: torch.Tensor,
    terminated: torch.Tensor,
    support: torch.Tensor,
    *,
    gamma: Scalar,
) -> torch.Tensor:
    """Project the distribution of ``r + gamma * Z(s')`` onto a fixed support (C51).

    Bellemare et al. 2017 (https://arxiv.org/abs/1707.06887), Algorithm 1: each shifted atom
    ``Tz = clamp(r + gamma * z, v_min, v_max)`` splits its probability between the two neighbouring
    atoms ``l = floor(b)`` and ``u = ceil(b)``, ``b = (Tz - v_min) / dz``, in proportion to closeness;
    when ``Tz`` falls exactly on an atom (``l == u``) that atom gets all of it. At terminated rows the
    whole mass goes to the projection of ``r`` and ``next_probs`` is not read (a NaN there cannot
    leak). Batched with ``scatter_add`` on the inputs' device; no loop over samples.

    Args:
        next_probs: probabilities of the next-state return over atoms, ``[*N, K]``; rows sum to 1.
        reward: ``[*N, 1]`` or ``[*N]``.
        terminated: bool, same shape as ``reward``.
        support: ``[K]`` increasing, evenly spaced atoms ``v_min .. v_max``, ``K >= 2``; read as
            ``v_min = support[0]``, ``v_max = support[-1]`` (the spacing is not checked, to avoid a
            device synchronisation per call).
        gamma: discount, a float or a tensor broadcastable to ``[*N, 1]`` (e.g. ``gamma ** n``).

    Returns:
        The target probabilities ``[*N, K]``, rows summing to 1.

    Examples:
        >>> import torch
        >>> from rlkit.objectives.value.functional import categorical_projection
        >>> support = torch.tensor([-1.0, 0.0, 1.0])
        >>> probs = torch.tensor([[0.2, 0.5, 0.3]])
        >>> target = categorical_projection(
        ...     probs, torch.tensor([0.5]), torch.tensor([False]), support, gamma=0.5
        ... )
        >>> [round(p, 4) for p in target[0].tolist()]  # Tz = [0, 0.5, 1]
        [0.0, 0.45, 0.55]
    """
    if not isinstance(next_probs, torch.Tensor) or not next_probs.is_floating_point():
        got = getattr(next_probs, "dtype", type(next_probs).__name__)
        raise TypeError(f"next_probs must be a floating-point tensor [*N, K], got {got}")
    if not isinstance(support, torch.Tensor) or support.dim() != 1 or support.shape[0] < 2:
        shape = tuple(support.shape) if isinstance(support, torch.Tensor) else type(support).__name__
        raise ValueError(f"support must be a 1-D tensor of K >= 2 atoms, got {shape}")
    n_atoms = support.shape[0]
    if next_probs.dim() < 1 or next_probs.shape[-1] != n_atoms:
        raise ValueError(
            f"next_probs must have shape [*N, K] with K = {n_atoms} atoms (the support's size), "
            f"got shape {tuple(next_probs.shape)}"
        )
    batch = next_probs.shape[:-1]
    reward = _as_column(reward, "reward", batch)
    terminated = _as_column(terminated, "terminated", batch)
    if terminated.dtype != torch.bool:
        raise TypeError(f"terminated must be a bool tensor, got dtype {terminated.dtype}")
    if not reward.is_floating_point():
        raise TypeError(f"reward must be a floating-point tensor, got dtype {reward.dtype}")
    support = support.to(next_probs.dtype)
    column = reward.to(next_probs.dtype)
    gamma = as_factor(gamma, "gamma", column)
    discount = torch.where(terminated, torch.zeros_like(column), gamma)
    probs = torch.where(terminated, torch.full_like(next_probs, 1.0 / n_atoms), next_probs)
    v_min, v_max = support[0], support[-1]
    spacing = (v_max - v_min) / (n_atoms - 1)
    shifted = (column + discount * support).clamp(v_min, v_max)
    # Clamp again in index space: rounding in (Tz - v_min) / dz can overshoot K - 1 by an ulp.
    pos = ((shifted - v_min) / spacing).clamp(0, n_atoms - 1)
    lower, upper = pos.floor(), pos.ceil()
    lower_weight = (upper - pos) + (lower == upper).to(pos.dtype)
    upper_weight = pos - lower
    target = torch.zeros_like(probs)
    target.scatter_add_(-1, lower.long(), probs * lower_weight)
    target.scatter_add_(-1, upper.long(), probs * upper_weight)
    return target


def _as_column(x: torch.Tensor, name: str, batch: torch.Size) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.shape == batch + (1,):
        return x
    if x.shape == batch:
        return x.unsqueeze(-1)
    raise ValueError(
        f"{name} must have shape {tuple(batch) + (1,)} or {tuple(batch)} to match next_probs' batch, "
        f"got shape {tuple(x.shape)}"
    )
