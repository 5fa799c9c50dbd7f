"""Input validation shared by the return kernels: shapes, dtypes, time dim, discount factors."""
from __future__ import annotations

import numbers

import torch

from rlkit import keys

Scalar = float | torch.Tensor


def check_same_shape(time_dim: int, **tensors: torch.Tensor | None) -> int:
    """Check that every given tensor is a ``[*B, T, 1]`` tensor of one shape; return the time dim.

    The first tensor sets the reference shape. Entries whose name starts with one of ``done``,
    ``terminated`` or ``truncated`` must be bool; the others floating point. ``None`` entries are
    skipped. The returned time dim is non-negative.
    """
    ref_name, ref = None, None
    for name, x in tensors.items():
        if x is None:
            continue
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if name in (keys.DONE, keys.TERMINATED, keys.TRUNCATED):
            if x.dtype != torch.bool:
                raise TypeError(f"{name} must be a bool tensor, got dtype {x.dtype}")
        elif not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if ref is None:
            ref_name, ref = name, x
            if x.dim() < 2 or x.shape[-1] != 1:
                raise ValueError(
                    f"{name} must have shape [*B, T, 1] (a time dim and a trailing singleton dim), "
                    f"got shape {tuple(x.shape)}"
                )
        elif x.shape != ref.shape:
            raise ValueError(
                f"{name} has shape {tuple(x.shape)} but {ref_name} has shape {tuple(ref.shape)}; "
                "all inputs must share one shape [*B, T, 1]"
            )
    assert ref is not None, "check_same_shape needs at least one tensor"
    ndim = ref.dim()
    if isinstance(time_dim, bool) or not isinstance(time_dim, int):
        raise TypeError(f"time_dim must be an int, got {time_dim!r}")
    # The trailing singleton can never be the time dim.
    if not -ndim <= time_dim < ndim or time_dim % ndim == ndim - 1:
        raise ValueError(
            f"time_dim={time_dim} is out of range for inputs of shape {tuple(ref.shape)}: it must "
            f"name a dim other than the trailing singleton, i.e. lie in [{-ndim}, -2] or "
            f"[0, {ndim - 2}]"
        )
    return time_dim % ndim


def as_factor(value: Scalar, name: str, like: torch.Tensor) -> torch.Tensor:
    """Turn a discount-like factor into a tensor on ``like``'s device and dtype, shape-checked.

    Python numbers are range-checked here (free); tensors are not, since that would synchronise
    with the device on every call (the estimator modules check their buffers once, at build time).
    """
    if isinstance(value, torch.Tensor):
        try:  # a 0-dim factor broadcasts to anything (torch.broadcast_shapes is slow Python)
            shape = like.shape if value.dim() == 0 else torch.broadcast_shapes(value.shape, like.shape)
        except RuntimeError:
            shape = None
        if shape != like.shape:
            raise ValueError(
                f"{name} of shape {tuple(value.shape)} does not broadcast to the inputs' shape "
                f"{tuple(like.shape)}"
            )
        return value if value.dtype == like.dtype and value.device == like.device else value.to(like.device, like.dtype)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float or a tensor, got {type(value).__name__}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return torch.as_tensor(float(value), dtype=like.dtype, device=like.device)


def continues(done: torch.Tensor, time_dim: int) -> torch.Tensor:
    """Mask of the steps whose return chains into the next step: not done and not last in window."""
    last = torch.zeros_like(done)
    if done.shape[time_dim] > 0:
        last.narrow(time_dim, done.shape[time_dim] - 1, 1).fill_(True)
    return ~(done | last)


SHORT_WINDOW = 10  # at most this many steps: a loop beats the doubling scan (crossover ~12 on CPU)


def reverse_affine_scan(offset: torch.Tensor, coef: torch.Tensor, time_dim: int) -> torch.Tensor:
    """Solve ``g[t] = offset[t] + coef[t] * g[t + 1]`` backwards along ``time_dim``, with ``g[T] = 0``.

    A Hillis-Steele doubling scan on the affine maps ``g -> offset + coef * g``: after the round with
    shift ``s``, entry ``t`` holds the composition of the maps ``t .. t + 2s - 1``. It takes
    ``ceil(log2 T)`` rounds of whole-tensor ops, multiplies only factors in ``[0, 1]`` (no division,
    so a zero discount or a long window cannot overflow) and is differentiable. On one CPU thread it
    was 4x faster than a loop over T at T=128, B=64 (0.18 ms vs 0.74 ms) and 35x at T=2048. Short
    windows (``T <= SHORT_WINDOW``, e.g. A2C's 5-step rollouts) take the plain backward loop, which
    needs fewer ops there (at T=5, B=8: 45 us vs 100 us).
    """
    n = offset.shape[time_dim]
    if 0 < n <= SHORT_WINDOW:
        g = offset.select(time_dim, n - 1)
        out = [g]
        for t in range(n - 2, -1, -1):
            g = offset.select(time_dim, t) + coef.select(time_dim, t) * g
            out.append(g)
        out.reverse()
        return torch.stack(out, time_dim)
    shift = 1
    while shift < n:
        keep = n - shift
        head_off = offset.narrow(time_dim, 0, keep)
        head_coef = coef.narrow(time_dim, 0, keep)
        offset = torch.cat(
            [head_off + head_coef * offset.narrow(time_dim, shift, keep),
             offset.narrow(time_dim, keep, shift)],
            time_dim,
        )
        # Maps that already reach past the window end are complete: g[T] = 0 beyond it.
        tail = coef.narrow(time_dim, keep, shift)
        coef = torch.cat([head_coef * coef.narrow(time_dim, shift, keep), torch.zeros_like(tail)], time_dim)
        shift *= 2
    return offset
