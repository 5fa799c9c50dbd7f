"""rlkit.optim.RMSpropTF against the formulas computed by hand in float64."""
from __future__ import annotations

import math

import pytest
import torch

from rlkit.optim import RMSpropTF


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_steps_follow_the_tensorflow_formulas(centered, momentum):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
    opt = RMSpropTF([p], lr=0.01, alpha=0.9, eps=1e-5, centered=centered, momentum=momentum, weight_decay=0.1)
    ref = p.detach().clone().tolist()
    v, m, b = [1.0] * 5, [0.0] * 5, [0.0] * 5
    for _ in range(4):
        grad = torch.randn(5, dtype=torch.float64)
        p.grad = grad.clone()
        opt.step()
        for i, g in enumerate(grad.tolist()):
            g = g + 0.1 * ref[i]
            v[i] = 0.9 * v[i] + 0.1 * g * g
            m[i] = 0.9 * m[i] + 0.1 * g
            d = math.sqrt(v[i] - m[i] ** 2 + 1e-5) if centered else math.sqrt(v[i] + 1e-5)
            if momentum:
                b[i] = momentum * b[i] + g / d
                ref[i] -= 0.01 * b[i]
            else:
                ref[i] -= 0.01 * g / d
        assert p.detach().tolist() == pytest.approx(ref, rel=1e-12, abs=1e-14)


def test_it_differs_from_torchs_rmsprop_where_tensorflow_does():
    a = torch.nn.Parameter(torch.ones(1))
    b = torch.nn.Parameter(torch.ones(1))
    tf, pt = RMSpropTF([a], lr=0.1, alpha=0.99, eps=1e-5), torch.optim.RMSprop([b], lr=0.1, alpha=0.99, eps=1e-5)
    a.grad, b.grad = torch.ones(1), torch.ones(1)
    tf.step()
    pt.step()
    assert float(a) == pytest.approx(1 - 0.1 / math.sqrt(1.0 + 1e-5))  # v starts at 1: a small first step
    assert float(b) == pytest.approx(1 - 0.1 / (math.sqrt(0.01) + 1e-5), abs=1e-6)  # torch's v starts at 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="RMSpropTF needs lr >= 0, got -1"):
        RMSpropTF([torch.nn.Parameter(torch.ones(1))], lr=-1)
