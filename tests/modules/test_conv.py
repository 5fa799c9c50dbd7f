"""Conv networks: the published architectures layer by layer, uint8 scaling inside, trunks, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlkit.modules import ConvNet, MinAtarNet, NatureCNN


def test_nature_cnn_is_mnih_et_al_2015():
    net = NatureCNN((4, 84, 84), 6)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (4, 32, (8, 8), (4, 4)), (32, 64, (4, 4), (2, 2)), (64, 64, (3, 3), (1, 1))]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(3136, 512), (512, 6)]


def test_minatar_net_is_the_papers():
    net = MinAtarNet((7, 10, 10), 3)
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride) == (7, 16, (3, 3), (1, 1))
    assert [(l.in_features, l.out_features) for l in net.modules() if isinstance(l, nn.Linear)] == [(1024, 128), (128, 3)]


def test_uint8_frames_are_scaled_inside_the_network():
    torch.manual_seed(0)
    net = NatureCNN((4, 84, 84), 4)
    frames = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    scaled = frames.float() * (1 / 255)
    torch.testing.assert_close(net(frames), net.head(net.hidden(net.convs(scaled))), rtol=0, atol=0)
    # Floating-point inputs (a normalising transform's, already standardised) are not scaled again.
    standardised = torch.randn(2, 4, 84, 84)
    torch.testing.assert_close(net(standardised), net.head(net.hidden(net.convs(standardised))), rtol=0, atol=0)


def test_reference_forward_and_batch_dims():
    torch.manual_seed(1)
    net = ConvNet((3, 12, 12), 5, channels=[8, 8], kernels=[3, 3], strides=[2, 1], hidden=[16])
    x = torch.rand(6, 3, 12, 12)
    reference = net.head(net.hidden(net.convs(x)))  # the Sequentials called as modules
    torch.testing.assert_close(net(x), reference, rtol=0, atol=0)
    assert net(x.reshape(2, 3, 3, 12, 12)).shape == (2, 3, 5) and net(x[0]).shape == (5,)


def test_a_trunk_returns_its_features():
    trunk = NatureCNN((4, 84, 84), None)
    assert trunk.features_dim == 512 and trunk(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 512)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"in_shape": (84, 84), "out_features": 2, "channels": [8], "kernels": [3], "strides": [1], "hidden": []},
     r"takes channel-first image observations \(C, H, W\), got shape \(84, 84\)"),
    ({"in_shape": (1, 4, 4), "out_features": 2, "channels": [8], "kernels": [8], "strides": [1], "hidden": []},
     r"Kernel size can't be greater than actual input size|leave nothing"),
    ({"in_shape": (1, 8, 8), "out_features": 2, "channels": [8, 8], "kernels": [3], "strides": [1], "hidden": []},
     r"one entry per conv layer"),
])
def test_bad_conv_settings_are_refused(kwargs, message):
    with pytest.raises((ValueError, RuntimeError), match=message):
        ConvNet(**kwargs)


def test_integer_frames_take_the_networks_dtype():
    """A float64 network (``.double()``) takes uint8 and bool frames as it takes float64 ones."""
    from rlkit.modules import MinAtarNet

    net = MinAtarNet((4, 10, 10), 6).double()
    frames = torch.randint(0, 2, (2, 4, 10, 10), dtype=torch.uint8)
    out = net(frames)
    assert out.dtype == torch.float64
    assert torch.equal(out, net(frames.double())) and torch.equal(out, net(frames.bool()))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_floating_frames_of_another_dtype_take_the_networks_dtype_unscaled(dtype):
    """float64 / float16 observations (e.g. a float64 Box space) are cast, not scaled, not refused."""
    from rlkit.modules import MinAtarNet

    net = MinAtarNet((4, 10, 10), 6, scale=0.5)
    frames = torch.randint(0, 2, (2, 4, 10, 10)).to(dtype)
    out = net(frames)
    assert out.dtype == torch.float32 and torch.equal(out, net(frames.float()))


def test_shapes_that_do_not_fit_are_named():
    with pytest.raises(ValueError, match=r"NatureCNN: the conv layers \(kernels \[8, 4, 3\], strides \[4, 2, 1\]\) do "
                                         r"not fit observations of shape \(4, 10, 10\)"):
        NatureCNN((4, 10, 10), 4)
    net = MinAtarNet((4, 10, 10), 3)
    for shape in [(2, 4, 12, 12), (2, 10, 10, 4), (2, 3, 10, 10)]:
        with pytest.raises(ValueError, match=rf"MinAtarNet takes channel-first observations of shape \(C, H, W\) = "
                                             rf"\(4, 10, 10\), got an input of shape \({shape[0]}, "):
            net(torch.zeros(shape))
    for kwargs, name in [({"out_features": 0}, "out_features=0"), ({"hidden": [0]}, r"hidden=\[0\]"),
                         ({"channels": [2.5]}, r"channels=\[2.5\]")]:
        base = {"in_shape": (1, 5, 5), "out_features": 2, "channels": [4], "kernels": [3], "strides": [1], "hidden": [8]}
        with pytest.raises(ValueError, match=rf"ConvNet: {name} is invalid; expected integers >= 1"):
            ConvNet(**{**base, **kwargs})



def test_sizes_of_any_integer_kind_are_taken_and_fractions_refused():
    """gymnasium's Discrete.n is a numpy integer; a fractional size was truncated before."""
    assert MinAtarNet((4, 10, 10), np.int64(6))(torch.zeros(1, 4, 10, 10)).shape == (1, 6)
    assert ConvNet(torch.Size([1, 5, 5]), 2, channels=np.array([4]), kernels=[3], strides=[1], hidden=[8]).features_dim == 8
    with pytest.raises(ValueError, match=r"ConvNet: in_shape=\[4.7, 10, 10\] is invalid; expected integers >= 1"):
        ConvNet((4.7, 10, 10), 2, channels=[4], kernels=[3], strides=[1], hidden=[8])


def _layer_list(net: nn.Module) -> list[tuple]:
    """Every leaf layer of ``net`` in registration order, with its hyperparameters."""
    out: list[tuple] = []
    for m in net.modules():
        if next(m.children(), None) is not None:
            continue
        if isinstance(m, nn.Conv2d):
            out.append(("conv", m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                        m.groups, m.bias is not None))
        elif isinstance(m, nn.Linear):
            out.append(("linear", m.in_features, m.out_features, m.bias is not None))
        else:
            out.append((type(m).__name__,))
    return out


def test_nature_cnn_layers_in_order_are_mnih_et_al_2015():
    # Mnih et al. 2015, Methods: conv 32 8x8 stride 4, conv 64 4x4 stride 2, conv 64 3x3 stride 1 (no
    # padding: 84 -> 20 -> 9 -> 7), each followed by a rectifier; 512 rectifier units; a linear output.
    assert _layer_list(NatureCNN((4, 84, 84), 6)) == [
        ("conv", 4, 32, (8, 8), (4, 4), (0, 0), (1, 1), 1, True), ("ReLU",),
        ("conv", 32, 64, (4, 4), (2, 2), (0, 0), (1, 1), 1, True), ("ReLU",),
        ("conv", 64, 64, (3, 3), (1, 1), (0, 0), (1, 1), 1, True), ("ReLU",),
        ("Flatten",),
        ("linear", 64 * 7 * 7, 512, True), ("ReLU",),
        ("linear", 512, 6, True),
    ]
    # The trunk (A2C's shared features) ends with the ReLU of the 512 units.
    assert _layer_list(NatureCNN((4, 84, 84), None))[-2:] == [("linear", 3136, 512, True), ("ReLU",)]


def test_minatar_net_layers_in_order_are_young_and_tian_2019():
    # MinAtar examples/dqn.py QNetwork: conv 16 3x3 stride 1 (10x10 -> 8x8), ReLU, 128 ReLU units, linear.
    assert _layer_list(MinAtarNet((7, 10, 10), 3)) == [
        ("conv", 7, 16, (3, 3), (1, 1), (0, 0), (1, 1), 1, True), ("ReLU",),
        ("Flatten",),
        ("linear", 16 * 8 * 8, 128, True), ("ReLU",),
        ("linear", 128, 3, True),
    ]


def _by_hand(x: torch.Tensor, convs: list[tuple[nn.Conv2d, int]], linears: list[nn.Linear]) -> torch.Tensor:
    """The published forward written out with torch.nn.functional and the network's weights only."""
    for conv, stride in convs:
        x = F.relu(F.conv2d(x, conv.weight, conv.bias, stride=stride))
    x = x.reshape(x.shape[0], -1)
    for linear in linears[:-1]:
        x = F.relu(F.linear(x, linear.weight, linear.bias))
    return F.linear(x, linears[-1].weight, linears[-1].bias)


def test_nature_cnn_forward_equals_the_papers_computation_by_hand():
    torch.manual_seed(0)
    net = NatureCNN((4, 84, 84), 5)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    frames = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    expected = _by_hand(frames.to(torch.float32) / 255.0, list(zip(convs, [4, 2, 1])), linears)
    torch.testing.assert_close(net(frames), expected, rtol=1e-5, atol=1e-6)
    # A float input (already standardised) is not scaled.
    x = torch.randn(2, 4, 84, 84)
    torch.testing.assert_close(net(x), _by_hand(x, list(zip(convs, [4, 2, 1])), linears), rtol=1e-5, atol=1e-6)


def test_minatar_net_forward_equals_the_papers_computation_by_hand():
    torch.manual_seed(1)
    net = MinAtarNet((4, 10, 10), 6)
    conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    frames = torch.randint(0, 2, (8, 4, 10, 10), dtype=torch.uint8)  # MinAtar's 0/1 channels, not scaled
    torch.testing.assert_close(net(frames), _by_hand(frames.to(torch.float32), [(conv, 1)], linears),
                               rtol=1e-5, atol=1e-6)
