"""TanhNormal against change-of-variables references; Categorical's deterministic sample."""
from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from rlkit.modules import Categorical, OneHotCategorical, TanhNormal


def test_log_prob_matches_change_of_variables():
    loc, scale = torch.tensor([[0.3, -0.2]]), torch.tensor([[0.5, 1.2]])
    y = torch.tensor([[0.4, -0.7]])
    expected = 0.0
    for i in range(2):  # slow scalar reference: N(atanh y) / (1 - y^2), summed over the event dim
        x = math.atanh(y[0, i].item())
        normal = -0.5 * ((x - loc[0, i].item()) / scale[0, i].item()) ** 2 - math.log(scale[0, i].item() * math.sqrt(2 * math.pi))
        expected += normal - math.log(1 - y[0, i].item() ** 2)
    assert TanhNormal(loc, scale).log_prob(y).item() == pytest.approx(expected, rel=1e-5)
    reference = D.TransformedDistribution(D.Independent(D.Normal(loc, scale), 1), [D.TanhTransform()])
    torch.testing.assert_close(TanhNormal(loc, scale).log_prob(y), reference.log_prob(y))


def test_bounds_shift_log_prob_by_log_half_width():
    loc, scale = torch.zeros(3), torch.ones(3)
    y = torch.tensor([0.1, -0.5, 0.9])
    wide = TanhNormal(loc, scale, low=-2.0, high=2.0, event_dims=0)
    narrow = TanhNormal(loc, scale, event_dims=0)
    torch.testing.assert_close(wide.log_prob(2 * y), narrow.log_prob(y) - math.log(2.0))
    assert wide.mode.tolist() == [0.0, 0.0, 0.0]


def test_sample_and_log_prob_consistent_and_finite_when_saturated():
    dist = TanhNormal(torch.tensor([[0.1, 20.0]]), torch.tensor([[0.3, 0.1]]))
    torch.manual_seed(0)
    a, lp = dist.rsample_and_log_prob((1000,))
    assert a.shape == (1000, 1, 2) and lp.shape == (1000, 1)
    assert torch.isfinite(lp).all() and torch.isfinite(dist.log_prob(a)).all()
    # Far from saturation the two ways of scoring agree.
    moderate = TanhNormal(torch.zeros(2, 3), torch.ones(2, 3) * 0.5)
    a, lp = moderate.rsample_and_log_prob()
    torch.testing.assert_close(moderate.log_prob(a), lp, rtol=1e-4, atol=1e-4)


def test_rsample_has_gradients_and_deterministic_sample():
    loc = torch.zeros(4, 2, requires_grad=True)
    dist = TanhNormal(loc, torch.ones(4, 2))
    dist.rsample().sum().backward()
    assert loc.grad is not None
    torch.testing.assert_close(TanhNormal(torch.tensor([0.5]), torch.ones(1)).deterministic_sample, torch.tanh(torch.tensor([0.5])))


def test_tanh_normal_errors():
    with pytest.raises(ValueError, match="needs low < high, got low=1.0 high=-1.0"):
        TanhNormal(torch.zeros(2), torch.ones(2), low=1.0, high=-1.0)
    with pytest.raises(ValueError, match=r"event_dims must be in \[0, 1\]"):
        TanhNormal(torch.zeros(2), torch.ones(2), event_dims=2)


def test_tanh_normal_validates_only_on_request():
    loc, scale = torch.zeros(2, 3), torch.ones(2, 3)
    assert not TanhNormal(loc, scale)._validate_args and not TanhNormal(loc, scale)._base._validate_args
    assert TanhNormal(loc, scale, validate_args=True)._validate_args
    with pytest.raises(ValueError, match="Expected parameter scale"):
        TanhNormal(loc, -scale, validate_args=True)
    TanhNormal(loc, -scale)  # unchecked by default, as Categorical


def test_categorical_deterministic_sample_first_max():
    dist = Categorical(logits=torch.tensor([[0.0, 2.0, 2.0], [3.0, 1.0, 3.0]]))
    assert dist.deterministic_sample.tolist() == [1, 0]
    onehot = OneHotCategorical(logits=torch.tensor([0.0, 2.0, 2.0]))
    assert onehot.deterministic_sample.tolist() == [0, 1, 0]


def test_categorical_validates_only_on_request():
    logits = torch.tensor([[0.0, 1.0, -1.0]])
    fast = Categorical(logits=logits)
    assert not fast._validate_args
    reference = D.Categorical(logits=logits, validate_args=True)
    torch.testing.assert_close(fast.log_prob(torch.tensor([2])), reference.log_prob(torch.tensor([2])))
    torch.testing.assert_close(fast.entropy(), reference.entropy())
    with pytest.raises(ValueError, match="Expected value argument"):
        Categorical(logits=logits, validate_args=True).log_prob(torch.tensor([3]))
    with pytest.raises(ValueError, match="Expected parameter probs"):
        Categorical(probs=torch.tensor([[-1.0, 2.0]]), validate_args=True)
