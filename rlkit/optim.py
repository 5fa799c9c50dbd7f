"""Optimisers that published settings need and torch does not ship.

:class:`RMSpropTF` is RMSprop as TensorFlow computes it, which stable-baselines3 offers as
``RMSpropTFLike`` for A2C on Atari (RL Zoo's ``a2c.yml`` Atari entry): the squared-gradient average
starts at one rather than zero, and epsilon is added under the square root rather than after it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["RMSpropTF"]


class RMSpropTF(torch.optim.Optimizer):
    """RMSprop, TensorFlow's way. Per parameter, with gradient ``g``:

    - ``v <- alpha * v + (1 - alpha) * g^2`` (``v`` starts at 1);
    - centred: ``m <- alpha * m + (1 - alpha) * g`` (``m`` starts at 0) and ``d = sqrt(v - m^2 + eps)``,
      otherwise ``d = sqrt(v + eps)``;
    - ``p <- p - lr * g / d`` (with ``momentum > 0``: ``b <- momentum * b + lr * g / d``, ``p <- p - b``:
      TensorFlow keeps the learning rate inside the buffer, which differs from torch's way once the
      learning rate changes during training).

    ``weight_decay`` adds ``weight_decay * p`` to ``g`` first.

    Examples:
        >>> import torch
        >>> from rlkit.optim import RMSpropTF
        >>> p = torch.nn.Parameter(torch.tensor([1.0]))
        >>> opt = RMSpropTF([p], lr=0.1, alpha=0.9, eps=0.0)
        >>> p.grad = torch.tensor([2.0])
        >>> opt.step()
        >>> round(float(p), 6)  # v = 0.9 * 1 + 0.1 * 4 = 1.3; p = 1 - 0.1 * 2 / sqrt(1.3)
        0.824588
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        for name, value in (("lr", lr), ("alpha", alpha), ("eps", eps), ("weight_decay", weight_decay),
                            ("momentum", momentum)):
            if not value >= 0.0:
                raise ValueError(f"RMSpropTF needs {name} >= 0, got {value}")
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                  "momentum": momentum, "centered": centered})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            alpha, eps, lr = group["alpha"], group["eps"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if g.is_sparse:
                    raise RuntimeError("RMSpropTF does not take sparse gradients")
                if group["weight_decay"]:
                    g = g.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["square_avg"] = torch.ones_like(p)
                    if group["centered"]:
                        state["grad_avg"] = torch.zeros_like(p)
                    if group["momentum"] > 0:
                        state["momentum_buffer_lr"] = torch.zeros_like(p)
                state["step"] += 1
                v = state["square_avg"]
                v.mul_(alpha).addcmul_(g, g, value=1 - alpha)
                if group["centered"]:
                    m = state["grad_avg"]
                    m.mul_(alpha).add_(g, alpha=1 - alpha)
                    denom = v.addcmul(m, m, value=-1).add_(eps).sqrt_()
                else:
                    denom = v.add(eps).sqrt_()
                if group["momentum"] > 0:  # (the learning rate inside the buffer, as TensorFlow: it differs once lr changes)
                    if "momentum_buffer" in state:  # saved before the rate moved in: lr * it is the step it stood for
                        state["momentum_buffer_lr"] = state.pop("momentum_buffer").mul_(lr)
                    buf = state.setdefault("momentum_buffer_lr", torch.zeros_like(p))
                    buf.mul_(group["momentum"]).addcdiv_(g, denom, value=lr)
                    p.sub_(buf)
                else:
                    p.addcdiv_(g, denom, value=-lr)
        return loss
