"""A plain multi-layer perceptron."""
from __future__ import annotations

from typing import Any, Sequence, cast

import torch
from torch import nn

from rlkit.utils.values import as_int


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
    a leading dim (weights ``[N, out, in]``, biases ``[N, out]``; see :func:`stack_seed_parameters_`),
    the input is ``[N, *B, in]`` and row ``k`` goes through network ``k`` (``torch.baddbmm`` per
    layer: one batched kernel for all seeds, each seed's numbers independent of the others').

    Examples:
        >>> import torch
        >>> from rlkit.modules import MLP
        >>> net = MLP(4, 2, num_cells=[32, 32])
        >>> net(torch.randn(5, 4)).shape
        torch.Size([5, 2])
    """

    seed_stackable = True  # it takes seed-stacked weights (see stack_seed_parameters_)

    def __init__(
        self,
        in_features: int | None,
        out_features: int,
        num_cells: Sequence[int],
        activation_class: type[nn.Module] = nn.ReLU,
    ) -> None:
        if isinstance(num_cells, (int, str)) or not isinstance(num_cells, Sequence):
            raise TypeError(f"num_cells must be a list of hidden sizes such as [64, 64], got {num_cells!r}")
        def whole(value: Any) -> bool:  # (a float is refused, not truncated)
            count = as_int(value)
            return count is not None and count >= 1

        # in_features may be None (lazy); out_features may not.
        for name, value, optional in (("in_features", in_features, True), ("out_features", out_features, False)):
            if (value is None and not optional) or (value is not None and not whole(value)):
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not all(whole(n) for n in num_cells):
            raise ValueError(f"num_cells must hold positive int sizes, got {list(num_cells)}")
        sizes = [int(n) for n in num_cells]
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
        if input.dtype != torch.float32:  # e.g. uint8 or float64 observations: the weights' dtype
            first = self[0]
            assert isinstance(first, nn.Linear)  # (an MLP starts with a linear layer)
            if input.dtype != first.weight.dtype:
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
            x = stacked_linear(layer, x) if isinstance(layer, nn.Linear) else layer.forward(x)  # (activations: elementwise)
        return x.reshape(n, *batch, x.shape[-1])


def stacked_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``[N, b, in] -> [N, b, out]`` through a linear layer holding ``N`` seeds' weights
    ``[N, out, in]`` and biases ``[N, out]``: row ``k`` through seed ``k``'s weights, with numbers
    that do not depend on ``N`` (one batched kernel)."""
    weight: torch.Tensor = layer.weight
    bias: torch.Tensor = layer.bias
    if weight.shape[1] == 1:
        # One output (a critic): a product and a sum over the inputs is the same for every N.
        return (x * weight).sum(-1, keepdim=True) + bias.unsqueeze(1)
    if x.shape[0] == 1:
        # Batched gemm takes another kernel for one matrix than for several (measured: other
        # roundings for some shapes, forward and backward): one seed goes beside a zero one.
        pad = torch.zeros_like(x), torch.zeros_like(weight), torch.zeros_like(bias)
        x, weight, bias = torch.cat([x, pad[0]]), torch.cat([weight, pad[1]]), torch.cat([bias, pad[2]])
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))[:1]
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def stack_seed_parameters_(target: nn.Module, sources: Sequence[nn.Module]) -> None:
    """Makes every seed-stackable network in ``target`` (a module whose class sets
    ``seed_stackable = True``: :class:`MLP`, :class:`~rlkit.modules.ConvNet` and its subclasses)
    hold the weights of the corresponding networks of ``sources`` (modules of the same structure)
    stacked on a new leading dim, in place: the parameter objects are kept (``.data`` is replaced),
    so every container that holds them (a loss's functional parameters, an optimiser built
    afterwards) follows. Such a network then takes inputs ``[N, *B, ...]`` and sends row ``k``
    through seed ``k``'s weights.

    Examples:
        >>> import torch
        >>> from rlkit.modules import MLP
        >>> from rlkit.modules.mlp import stack_seed_parameters_
        >>> nets = [MLP(4, 2, num_cells=[8]) for _ in range(3)]
        >>> stacked = MLP(4, 2, num_cells=[8])
        >>> stack_seed_parameters_(stacked, nets)
        >>> x = torch.randn(3, 5, 4)
        >>> torch.allclose(stacked(x)[1], nets[1](x[1]), atol=1e-6)
        True
    """
    mine = _stackable(target)
    theirs = [_stackable(source) for source in sources]
    if any(len(group) != len(mine) for group in theirs):
        raise ValueError("stack_seed_parameters_: the sources hold other numbers of stackable networks than the target")
    for index, net in enumerate(mine):
        for name, tensor in _weights(net).items():  # parameters, or buffers in a target copy
            tensor.data = torch.stack([_weights(group[index])[name].detach() for group in theirs])


def _stackable(module: nn.Module) -> list[nn.Module]:
    """The seed-stackable networks in ``module``, outermost first, none inside another."""
    found: list[nn.Module] = []
    inside: set[int] = set()
    for m in module.modules():
        if id(m) in inside:
            continue
        if getattr(type(m), "seed_stackable", False):
            found.append(m)
            inside.update(id(child) for child in m.modules())
    return found


def _weights(mlp: nn.Module) -> dict[str, torch.Tensor]:
    return {**dict(mlp.named_parameters()), **dict(mlp.named_buffers())}
