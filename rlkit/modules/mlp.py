"""A plain multi-layer perceptron."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MLP(nn.Sequential):
    """``Linear -> activation`` for each hidden size in ``num_cells``, then a final ``Linear``.

    Its forward runs the layers' own ``forward`` one after the other rather than calling each layer
    as a module: the numbers are those of ``nn.Sequential``, without ``nn.Module.__call__``'s
    overhead for every layer (a third of a small network's forward on one thread). Hooks registered
    on the MLP itself run as usual; hooks on its individual layers do not (an MLP with lazy layers,
    ``in_features=None``, calls them as modules: they initialise in a forward pre-hook). Integer
    inputs (``uint8`` observations, say) are cast to the weights' dtype.

    Args:
        in_features: input size; ``None`` infers it from the first input (``nn.LazyLinear``), so the
            observation size need not be known when the network is built.
        out_features: output size.
        num_cells: hidden sizes, one per hidden layer (``[]`` gives a single linear layer).
        activation_class: activation module class placed after each hidden layer.

    Examples:
        >>> import torch
        >>> from rlkit.modules import MLP
        >>> net = MLP(4, 2, num_cells=[32, 32])
        >>> net(torch.randn(5, 4)).shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        in_features: int | None,
        out_features: int,
        num_cells: Sequence[int],
        activation_class: type[nn.Module] = nn.ReLU,
    ) -> None:
        if isinstance(num_cells, (int, str)) or not isinstance(num_cells, Sequence):
            raise TypeError(f"num_cells must be a list of hidden sizes such as [64, 64], got {num_cells!r}")
        sizes = [int(n) for n in num_cells]
        # in_features may be None (lazy); out_features may not.
        for name, value, optional in (("in_features", in_features, True), ("out_features", out_features, False)):
            if (value is None and not optional) or (value is not None and int(value) < 1):
                raise ValueError(f"{name} must be a positive int, got {value}")
        if any(n < 1 for n in sizes):
            raise ValueError(f"num_cells must hold positive sizes, got {sizes}")
        layers: list[nn.Module] = []
        previous = in_features
        for width in sizes + [int(out_features)]:
            layers.append(nn.LazyLinear(width) if previous is None else nn.Linear(int(previous), width))
            layers.append(activation_class())
            previous = width
        super().__init__(*layers[:-1])  # no activation after the output layer
        self.in_features = in_features
        self.out_features = int(out_features)
        self.num_cells = sizes

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not input.is_floating_point():  # e.g. uint8 observations: the weights' dtype
            first = self[0]
            assert isinstance(first, nn.Linear)  # (an MLP starts with a linear layer)
            input = input.to(first.weight.dtype)
        if self.in_features is None:  # lazy layers: module calls, so that their pre-hooks run
            return super().forward(input)
        for layer in self:
            input = layer.forward(input)
        return input
