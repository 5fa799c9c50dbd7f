"""MLP layout and argument checks."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rlkit.modules import MLP


def test_layers_and_output():
    net = MLP(4, 2, num_cells=[8, 16], activation_class=nn.Tanh)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)] == [(4, 8), (8, 16), (16, 2)]
    x = torch.randn(3, 5, 4)
    expected = net[4](torch.tanh(net[2](torch.tanh(net[0](x)))))
    torch.testing.assert_close(net(x), expected)


def test_no_hidden_layer_and_lazy_input():
    assert [type(m).__name__ for m in MLP(4, 2, num_cells=[])] == ["Linear"]
    lazy = MLP(None, 3, num_cells=[5])
    assert lazy(torch.randn(2, 7)).shape == (2, 3)
    assert lazy[0].weight.shape == (5, 7)


def test_errors():
    with pytest.raises(TypeError, match=r"num_cells must be a list of hidden sizes such as \[64, 64\], got 64"):
        MLP(4, 2, num_cells=64)
    with pytest.raises(ValueError, match="num_cells must hold positive int sizes, got \\[8, 0\\]"):
        MLP(4, 2, num_cells=[8, 0])
    with pytest.raises(ValueError, match="out_features must be a positive int, got 0"):
        MLP(4, 0, num_cells=[8])
    with pytest.raises(ValueError, match="out_features must be a positive int, got None"):
        MLP(4, None, num_cells=[8])
    with pytest.raises(ValueError, match=r"num_cells must hold positive int sizes, got \[32.7\]"):
        MLP(4, 2, [32.7])  # (truncated to 32 before)
    with pytest.raises(ValueError, match="in_features must be a positive int, got 2.5"):
        MLP(2.5, 2, [8])
    with pytest.raises(ValueError, match="in_features must be a positive int, got -1"):
        MLP(-1, 2, num_cells=[8])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.int64, torch.bool])
def test_inputs_of_any_dtype_take_the_weights_dtype(dtype):
    """A float64 Box space's observations (MuJoCo's) crashed the float32 MLP with a dtype mismatch."""
    net = MLP(3, 2, [8])
    obs = torch.tensor([[1.0, 0.0, 1.0]]).to(dtype)
    assert torch.equal(net(obs), net(obs.float()))
    double = MLP(3, 2, [8]).double()
    assert double(obs).dtype == torch.float64
