"""A plain multi-layer perceptron."""
from __future__ import annotations

from typing import Sequence, cast

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

    Seed-stacked weights: when the layers hold the weights of ``N`` independent networks stacked on
    a leading dim (weights ``[N, out, in]``, biases ``[N, out]``; see :func:`stack_mlp_parameters_`),
    the input is ``[N, *B, in]`` and row ``k`` goes through network ``k`` (``torch.baddbmm`` per
    layer: one batched kernel for all seeds, each seed's numbers independent of the others').

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
        if cast(nn.Linear, self[0]).weight.dim() == 3:  # seed-stacked networks
            return self._stacked_forward(input)
        for layer in self:
            input = layer.forward(input)
        return input

    def _stacked_forward(self, input: torch.Tensor) -> torch.Tensor:
        """``[N, *B, in] -> [N, *B, out]`` with network ``k``'s weights on row ``k`` (measured on
        CPU: 10-15x faster than ``torch.vmap`` over ``functional_call`` for one observation per seed,
        1.4x for 128)."""
        n, batch = input.shape[0], input.shape[1:-1]
        x = input.reshape(n, -1, input.shape[-1])
        for layer in self:
            if isinstance(layer, nn.Linear) and layer.weight.shape[1] == 1:
                # One output (a critic): batched gemm takes another kernel for N > 1 than for N = 1
                # (measured), a product and a sum over the inputs is the same for every N.
                x = (x * layer.weight).sum(-1, keepdim=True) + layer.bias.unsqueeze(1)
            elif isinstance(layer, nn.Linear):
                x = torch.baddbmm(layer.bias.unsqueeze(1), x, layer.weight.transpose(1, 2))
            else:  # the activations act elementwise
                x = layer.forward(x)
        return x.reshape(n, *batch, x.shape[-1])


def stack_mlp_parameters_(target: nn.Module, sources: Sequence[nn.Module]) -> None:
    """Makes every :class:`MLP` in ``target`` hold the weights of the corresponding MLPs of
    ``sources`` (modules of the same structure) stacked on a new leading dim, in place: the
    parameter objects are kept (``.data`` is replaced), so every container that holds them (a
    loss's functional parameters, an optimiser built afterwards) follows.

    Examples:
        >>> import torch
        >>> from rlkit.modules import MLP
        >>> from rlkit.modules.mlp import stack_mlp_parameters_
        >>> nets = [MLP(4, 2, num_cells=[8]) for _ in range(3)]
        >>> stacked = MLP(4, 2, num_cells=[8])
        >>> stack_mlp_parameters_(stacked, nets)
        >>> x = torch.randn(3, 5, 4)
        >>> torch.allclose(stacked(x)[1], nets[1](x[1]), atol=1e-6)
        True
    """
    mine = [m for m in target.modules() if isinstance(m, MLP)]
    theirs = [[m for m in source.modules() if isinstance(m, MLP)] for source in sources]
    if any(len(group) != len(mine) for group in theirs):
        raise ValueError("stack_mlp_parameters_: the sources hold other numbers of MLPs than the target")
    for index, mlp in enumerate(mine):
        for name, tensor in _weights(mlp).items():  # parameters, or buffers in a target copy
            tensor.data = torch.stack([_weights(group[index])[name].detach() for group in theirs])


def _weights(mlp: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(mlp.named_parameters()), **dict(mlp.named_buffers())}
