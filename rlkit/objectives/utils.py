"""Helpers shared by the losses: distances and reduction (pure tensor functions)."""
from __future__ import annotations

import math
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F

from rlkit.utils.values import as_flag, as_real

__all__ = [
    "distance_loss",
    "reduce_loss",
]

LossFunction = Literal["l1", "l2", "smooth_l1"]
Reduction = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")
LOSS_FUNCTIONS: tuple[str, ...] = ("l1", "l2", "smooth_l1")


def distance_loss(
    prediction: torch.Tensor, target: torch.Tensor, loss_function: LossFunction = "l2"
) -> torch.Tensor:
    """Element-wise distance between a prediction and a (detached) target.

    ``"l2"`` is the squared error (no 1/2 factor, as ``torch.nn.functional.mse_loss``), ``"l1"`` the
    absolute error and ``"smooth_l1"`` the Huber loss with ``beta=1``.

    Examples:
        >>> import torch
        >>> from rlkit.objectives import distance_loss
        >>> distance_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 0.0]), "smooth_l1")
        tensor([0.5000, 2.5000])
    """
    if loss_function == "l2":
        return F.mse_loss(prediction, target, reduction="none")
    if loss_function == "l1":
        return F.l1_loss(prediction, target, reduction="none")
    if loss_function == "smooth_l1":
        return F.smooth_l1_loss(prediction, target, reduction="none")
    raise ValueError(f"Unknown loss_function {loss_function!r}; valid choices: {list(LOSS_FUNCTIONS)}.")


def check_flag(owner: str, name: str, value: Any) -> bool:
    """``value`` if it is a bool; anything else (the string ``"false"`` is truthy) is refused."""
    flag = as_flag(value)
    if flag is None:
        raise ValueError(f"{owner}: {name}={value!r} is invalid; expected True or False")
    return flag


def check_coefficient(owner: str, name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number >= 0 (a loss weight), else refused by name."""
    number = as_real(value)
    if number is None or not math.isfinite(number) or number < 0:
        raise ValueError(f"{owner}: {name}={value!r} is invalid; expected a finite number >= 0")
    return number


def check_loss_function(loss_function: str) -> LossFunction:
    """Return ``loss_function`` if it is one of ``l1``, ``l2``, ``smooth_l1``, else raise ``ValueError``."""
    if loss_function not in LOSS_FUNCTIONS:
        raise ValueError(f"Unknown loss_function {loss_function!r}; valid choices: {list(LOSS_FUNCTIONS)}.")
    return cast(LossFunction, loss_function)  # one of LOSS_FUNCTIONS (checked above)


def reduce_loss(loss: torch.Tensor, reduction: Reduction, keep: int = 0) -> torch.Tensor:
    """Reduce a per-sample loss with ``"mean"``, ``"sum"`` or ``"none"`` (returned unchanged).

    ``keep`` leading dims are kept (they index independent models, e.g. the seeds of a multi-seed
    run): the result is ``loss.shape[:keep]``, each entry reduced over its own samples.

    Examples:
        >>> import torch
        >>> from rlkit.objectives.utils import reduce_loss
        >>> reduce_loss(torch.tensor([[1.0, 3.0], [5.0, 7.0]]), "mean", keep=1)
        tensor([2., 6.])
    """
    if reduction == "none":
        return loss
    if keep:
        loss = loss.reshape(*loss.shape[:keep], -1)
        return loss.mean(-1) if reduction == "mean" else loss.sum(-1)
    if reduction == "mean":
        return loss.mean()
    return loss.sum()


def per_model_mean_std(x: torch.Tensor, stacked_dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) std of ``x`` over all but its ``stacked_dims`` leading dims (one pair per
    model of a seed-stacked batch), shaped to broadcast against ``x``.

    Examples:
        >>> import torch
        >>> from rlkit.objectives.utils import per_model_mean_std
        >>> mean, std = per_model_mean_std(torch.tensor([[1.0, 3.0], [10.0, 10.0]]), 1)
        >>> mean.flatten().tolist(), std.flatten().tolist()
        ([2.0, 10.0], [1.4142135381698608, 0.0])
    """
    flat = x.reshape(*x.shape[:stacked_dims], -1)
    shape = (*x.shape[:stacked_dims], *(1,) * (x.dim() - stacked_dims))
    return flat.mean(-1).reshape(shape), flat.std(-1).reshape(shape)
