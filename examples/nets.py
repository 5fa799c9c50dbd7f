"""A user's network for ``algo.network``: rlkit calls it with the flat observation size and the
number of outputs it needs, plus the keys given in config::

    python train.py algo=dqn algo.network='{_target_: examples.nets.TwoLayer, width: 32}'
"""
from __future__ import annotations

import torch
from torch import nn


class TwoLayer(nn.Module):
    """``in_features -> width -> out_features`` with an ELU between the two linear layers."""

    def __init__(self, in_features: int, out_features: int, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_features, width), nn.ELU(), nn.Linear(width, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.float())
