"""Convolutional networks for image observations ``[*B, C, H, W]`` (channel-first), chosen in config
with ``algo.network: {_target_: rlkit.modules.<Name>, ...}``:

- :class:`NatureCNN`: Mnih et al. 2015's DQN network (conv 32 8x8/4, 64 4x4/2, 64 3x3/1, 512 units);
- :class:`MinAtarNet`: Young & Tian 2019's MinAtar DQN network (conv 16 3x3/1, 128 units);
- :class:`ConvNet`: a conv stack of your choice (channels, kernels, strides, hidden widths).

Each takes ``in_shape`` (the observation shape) and ``out_features``; with ``out_features=None`` it
ends at its last hidden layer (``features_dim`` wide), the trunk A2C shares between actor and
critic. Integer observations (uint8 frames) stay integers until the network, which casts them and
multiplies by ``scale`` (1/255 for frames in [0, 255]; 1 for MinAtar's 0/1 channels); floating-point
observations (a normalising transform's, standardised already) are taken as they come.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from rlkit.modules.mlp import stacked_linear
from rlkit.utils.values import as_int

__all__ = ["ConvNet", "MinAtarNet", "NatureCNN"]


class ConvNet(nn.Module):
    """``Conv2d -> ReLU`` per entry of ``channels``, flatten, ``Linear -> ReLU`` per entry of
    ``hidden``, then ``Linear(out_features)`` (none with ``out_features=None``). The forward calls
    the layers' own ``forward`` one after the other (as :class:`~rlkit.modules.MLP`), so hooks on the
    individual layers do not run.

    Args:
        in_shape: the observation shape ``(C, H, W)``.
        out_features: outputs, or ``None`` for the features of the last hidden layer.
        channels: output channels of each conv layer.
        kernels: kernel size of each conv layer.
        strides: stride of each conv layer.
        hidden: widths of the fully connected hidden layers.
        scale: what integer inputs are multiplied by once cast to float (1/255 for 8-bit frames);
            floating-point inputs are not scaled.

    Seed-stacked weights (:func:`~rlkit.modules.mlp.stack_seed_parameters_`: every weight with a
    leading dim of ``N`` seeds): the input is ``[N, *B, C, H, W]`` and row ``k`` goes through seed
    ``k``'s network. The conv layers run once per seed, on that seed's rows with its weights: the
    same call, and the same numbers, as its network alone (a grouped convolution over all seeds
    would round differently, and by ``N``); the fully connected layers run batched as in
    :class:`~rlkit.modules.MLP`.

    Examples:
        >>> import torch
        >>> from rlkit.modules import ConvNet
        >>> net = ConvNet((4, 10, 10), 6, channels=[16], kernels=[3], strides=[1], hidden=[128])
        >>> net(torch.zeros(2, 4, 10, 10, dtype=torch.uint8)).shape, net.features_dim
        (torch.Size([2, 6]), 128)
    """

    seed_stackable = True

    def __init__(self, in_shape: Sequence[int], out_features: int | None, *, channels: Sequence[int],
                 kernels: Sequence[int], strides: Sequence[int], hidden: Sequence[int], scale: float = 1.0) -> None:
        super().__init__()
        shape = tuple(as_int(d) or 0 for d in in_shape)  # (a non-integer is refused below, as 0)
        if len(shape) != 3:
            raise ValueError(f"{type(self).__name__} takes channel-first image observations (C, H, W), got shape {shape}")
        if not (len(channels) == len(kernels) == len(strides)) or not channels:
            raise ValueError(f"channels, kernels and strides need one entry per conv layer, got {list(channels)}, "
                             f"{list(kernels)}, {list(strides)}")
        for name, values in (("in_shape", in_shape), ("channels", channels), ("kernels", kernels), ("strides", strides),
                             ("hidden", hidden), ("out_features", [] if out_features is None else [out_features])):
            bad = [v for v in values if (as_int(v) or 0) < 1]
            if bad:
                raise ValueError(f"{type(self).__name__}: {name}={list(values) if name != 'out_features' else out_features!r} "
                                 f"is invalid; expected integers >= 1")
        layers: list[nn.Module] = []
        previous = shape[0]
        for width, kernel, stride in zip(channels, kernels, strides):
            layers += [nn.Conv2d(previous, int(width), int(kernel), int(stride)), nn.ReLU()]
            previous = int(width)
        layers.append(nn.Flatten())
        self.convs = nn.Sequential(*layers)
        with torch.no_grad():
            try:
                flat = int(self.convs(torch.zeros(1, *shape)).shape[-1])
            except RuntimeError as err:  # a kernel larger than what reaches its layer
                raise ValueError(f"{type(self).__name__}: the conv layers (kernels {list(kernels)}, strides "
                                 f"{list(strides)}) do not fit observations of shape {shape}: "
                                 f"{str(err).splitlines()[0]}") from None
        if flat < 1:
            raise ValueError(f"the conv layers leave nothing of observations of shape {shape}")
        fc: list[nn.Module] = []
        for width in hidden:
            fc += [nn.Linear(flat, int(width)), nn.ReLU()]
            flat = int(width)
        self.hidden = nn.Sequential(*fc)
        self.features_dim = flat
        self.head = nn.Linear(flat, int(out_features)) if out_features is not None else None
        self.out_features = out_features
        self.in_shape = shape
        self.scale = float(scale)
        self._layers: tuple[nn.Module, ...] = (*self.convs, *self.hidden, *(() if self.head is None else (self.head,)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-3:] != self.in_shape:
            raise ValueError(f"{type(self).__name__} takes channel-first observations of shape (C, H, W) = "
                             f"{self.in_shape}, got an input of shape {tuple(x.shape)}")
        if not x.is_floating_point():  # integer frames are cast and scaled here; floating-point inputs
            x = x.to(cast(nn.Conv2d, self.convs[0]).weight.dtype)  # (a normalising transform's) are used as they come
            if self.scale != 1.0:
                x = x * self.scale
        elif x.dtype != torch.float32 and x.dtype != cast(nn.Conv2d, self.convs[0]).weight.dtype:
            x = x.to(cast(nn.Conv2d, self.convs[0]).weight.dtype)  # e.g. float64 observations, not scaled
        if cast(nn.Conv2d, self.convs[0]).weight.dim() == 5:  # seed-stacked networks
            return self._stacked_forward(x)
        batch = x.shape[:-3]
        flat = x.dim() != 4  # one batch dim is what conv2d takes; others are flattened into it
        if flat:
            x = x.reshape(-1, *x.shape[-3:])
        # The layers' own forward, one after the other: nn.Sequential's numbers without
        # nn.Module.__call__ for each of its layers (see rlkit.modules.MLP).
        for layer in self._layers:
            x = layer.forward(x)
        return x.reshape(*batch, x.shape[-1]) if flat else x

    def _stacked_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, *B, C, H, W] -> [N, *B, out]`` with seed ``k``'s weights on row ``k``."""
        n, batch = x.shape[0], x.shape[1:-3]
        x = x.reshape(n, -1, *x.shape[-3:])
        for layer in self.convs:
            if isinstance(layer, nn.Conv2d):
                x = torch.stack([nn.functional.conv2d(x[k], layer.weight[k], layer.bias[k] if layer.bias is not None
                                                      else None, layer.stride, layer.padding, layer.dilation)
                                 for k in range(n)])
            elif isinstance(layer, nn.Flatten):
                x = x.flatten(2)
            else:  # the activations act elementwise
                x = layer.forward(x)
        for layer in (*self.hidden, *(() if self.head is None else (self.head,))):
            x = stacked_linear(layer, x) if isinstance(layer, nn.Linear) else layer.forward(x)
        return x.reshape(n, *batch, x.shape[-1])


class NatureCNN(ConvNet):
    """Mnih et al. 2015 (Nature), "Methods": 32 filters 8x8 stride 4, 64 4x4 stride 2, 64 3x3 stride 1,
    each followed by a ReLU, a fully connected layer of 512 ReLUs, a linear output; inputs are
    8-bit frames scaled to [0, 1].

    Examples:
        >>> import torch
        >>> from rlkit.modules import NatureCNN
        >>> NatureCNN((4, 84, 84), 4)(torch.zeros(3, 4, 84, 84, dtype=torch.uint8)).shape
        torch.Size([3, 4])
    """

    def __init__(self, in_shape: Sequence[int], out_features: int | None, scale: float = 1 / 255) -> None:
        super().__init__(in_shape, out_features, channels=[32, 64, 64], kernels=[8, 4, 3], strides=[4, 2, 1],
                         hidden=[512], scale=scale)


class MinAtarNet(ConvNet):
    """Young & Tian 2019 (MinAtar), its ``examples/dqn.py`` ``QNetwork``: 16 filters 3x3 stride 1 and
    a ReLU, a fully connected layer of 128 ReLUs, a linear output; inputs are the 0/1 channels.

    Examples:
        >>> import torch
        >>> from rlkit.modules import MinAtarNet
        >>> net = MinAtarNet((4, 10, 10), 6)
        >>> sum(p.numel() for p in net.parameters())  # (16*4*9 + 16) + (1024*128 + 128) + (128*6 + 6)
        132566
    """

    def __init__(self, in_shape: Sequence[int], out_features: int | None, scale: float = 1.0) -> None:
        super().__init__(in_shape, out_features, channels=[16], kernels=[3], strides=[1], hidden=[128], scale=scale)
