"""Networks a user might get wrong, for ``algo.network`` refusal tests."""
from __future__ import annotations

import torch
from torch import nn


class WrongWidth(nn.Module):
    """Ignores ``out_features``: returns 3 outputs whatever is asked."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def not_a_module(in_features: int, out_features: int) -> str:
    return "nope"
