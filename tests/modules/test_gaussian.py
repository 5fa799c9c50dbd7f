"""Gaussian policies over Box actions: the distributions against torch.distributions and hand
formulas, gSDE's noise and its state, and the actors A2C builds from config."""
from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from rlkit.modules import (
    ExplorationType,
    GaussianHead,
    GSDEExploration,
    GSDEHead,
    IndependentNormal,
    SDENormal,
    TanhNormal,
    sample,
    set_exploration_type,
)


def test_independent_normal_matches_torch_normal_summed_over_the_action():
    loc, scale = torch.randn(5, 3), torch.rand(5, 3) + 0.1
    value = torch.randn(5, 3)
    dist = IndependentNormal(loc, scale)
    reference = D.Normal(loc, scale)
    torch.testing.assert_close(dist.log_prob(value), reference.log_prob(value).sum(-1))
    torch.testing.assert_close(dist.entropy(), reference.entropy().sum(-1))
    # by hand, one dimension: log N(x; m, s) = -(x - m)^2 / (2 s^2) - log s - log(2 pi) / 2
    one = IndependentNormal(torch.tensor([[1.0]]), torch.tensor([[2.0]]))
    expected = -(0.5 - 1.0) ** 2 / 8 - math.log(2.0) - math.log(2 * math.pi) / 2
    assert float(one.log_prob(torch.tensor([[0.5]]))) == pytest.approx(expected, rel=1e-6)
    assert torch.equal(sample(dist, ExplorationType.DETERMINISTIC), loc)


def test_tanh_normal_log_prob_is_the_change_of_variables_of_a_normal():
    loc, scale = torch.randn(4, 2), torch.rand(4, 2) + 0.2
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])
    dist = TanhNormal(loc, scale, low, high)
    x = torch.randn(4, 2)
    y = torch.tanh(x)
    value = low + (high - low) * (y + 1) / 2
    # p(a) = N(x) / |da/dx|, da/dx = (high - low) / 2 * (1 - tanh(x)^2)
    reference = (D.Normal(loc, scale).log_prob(x) - torch.log((high - low) / 2 * (1 - y ** 2))).sum(-1)
    torch.testing.assert_close(dist.log_prob(value), reference, rtol=1e-4, atol=1e-4)
    assert bool(((value >= low) & (value <= high)).all())


def test_gaussian_head_scale_is_state_independent():
    head = GaussianHead(torch.nn.Linear(3, 2), 2, log_std_init=-0.5)
    loc, scale = head(torch.randn(6, 3))
    assert loc.shape == scale.shape == (6, 2)
    torch.testing.assert_close(scale, torch.full((6, 2), math.exp(-0.5)))


def test_gsde_scale_and_noise_follow_the_paper():
    torch.manual_seed(0)
    head = GSDEHead(4, 2, log_std_init=-1.0, num_envs=3)
    with torch.no_grad():
        head.log_std.copy_(torch.randn(4, 2) * 0.3 - 1.0)
    head.resample()
    z = torch.randn(3, 4)
    with set_exploration_type(ExplorationType.RANDOM):
        loc, scale, noise = head(z)
    std = head.log_std.exp()
    # sigma(s)_j = sqrt(sum_i z_i^2 std_ij^2 + eps); noise_j = sum_i z_i W_ij, one W per sub-env
    expected_scale = torch.sqrt((z ** 2) @ (std ** 2) + 1e-6)
    torch.testing.assert_close(scale, expected_scale)
    for env in range(3):
        torch.testing.assert_close(noise[env], z[env] @ head.env_weights[env])
    torch.testing.assert_close(loc, head.mean(z))
    # the scale does not train the features (detached), log_std gets gradients through it
    z_leaf = z.clone().requires_grad_()
    _, scale, _ = head(z_leaf)
    scale.sum().backward()
    assert z_leaf.grad is None or bool((z_leaf.grad == 0).all())
    assert head.log_std.grad is not None


def test_gsde_noise_variance_matches_the_scale():
    """Over many weight draws, Var(z @ W) = (z^2) @ std^2: the distribution scores its own draws."""
    torch.manual_seed(1)
    head = GSDEHead(3, 1, log_std_init=-0.7, num_envs=2)
    z = torch.tensor([[0.5, -1.0, 2.0]])
    draws = []
    for _ in range(4000):
        head.resample()
        draws.append((z @ head.weights).item())
    empirical = torch.tensor(draws).var().item()
    expected = float((z ** 2) @ head.log_std.detach().exp().square())
    assert empirical == pytest.approx(expected, rel=0.06)


def test_sde_normal_samples_loc_plus_noise_and_scores_with_the_gaussian():
    loc, scale, noise = torch.zeros(2, 1), torch.full((2, 1), 0.5), torch.tensor([[0.3], [-0.2]])
    dist = SDENormal(loc, scale, noise)
    assert torch.equal(sample(dist, ExplorationType.RANDOM), loc + noise)
    assert torch.equal(sample(dist, ExplorationType.DETERMINISTIC), loc)
    torch.testing.assert_close(dist.log_prob(loc + noise), D.Normal(loc, scale).log_prob(loc + noise).sum(-1))
    torch.testing.assert_close(dist.entropy(), D.Normal(loc, scale).entropy().sum(-1))


def test_gsde_weights_stay_fixed_within_a_rollout_and_change_between_rollouts():
    torch.manual_seed(2)
    head = GSDEHead(4, 1, num_envs=2)
    explore = GSDEExploration(head)
    z = torch.randn(2, 4)
    with set_exploration_type(ExplorationType.RANDOM):
        first = [head(z)[2] for _ in range(3)]
        assert all(torch.equal(first[0], n) for n in first)
        explore.step(6)
        assert not torch.equal(head(z)[2], first[0])


@pytest.mark.parametrize("num_envs", [2, 1])
def test_gsde_sample_freq_redraws_within_a_rollout(num_envs):
    """Every sample_freq sampling steps, new weights: also with one env (which samples with the
    shared weights, and once never counted its steps)."""
    torch.manual_seed(3)
    head = GSDEHead(4, 1, num_envs=num_envs, sample_freq=2)
    z = torch.randn(num_envs, 4)
    with set_exploration_type(ExplorationType.RANDOM):
        noises = [head(z)[2] for _ in range(4)]
    assert torch.equal(noises[0], noises[1]) and torch.equal(noises[2], noises[3])
    assert not torch.equal(noises[1], noises[2])
    # deterministic calls (evaluation) neither count nor redraw
    steps = head.steps
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        head(z)
    assert head.steps == steps


def test_gsde_state_round_trip():
    head = GSDEHead(4, 2, num_envs=3)
    state = GSDEExploration(head).state_dict()
    other = GSDEHead(4, 2, num_envs=3)
    GSDEExploration(other).load_state_dict(state)
    assert torch.equal(other.env_weights, head.env_weights) and torch.equal(other.weights, head.weights)
    with pytest.raises(ValueError, match=r"gSDE weights of shape \(3, 4, 2\), this head's are \(5, 4, 2\)"):
        GSDEExploration(GSDEHead(4, 2, num_envs=5)).load_state_dict(state)


def test_bad_sample_freq_is_refused():
    with pytest.raises(ValueError, match="sample_freq must be -1"):
        GSDEHead(4, 1, sample_freq=0)


def test_gsde_noise_follows_the_heads_dtype():
    """The exploration weights are not parameters: after ``.double()`` they are used, and loaded, in
    the head's dtype all the same."""
    from rlkit.modules import ExplorationType, set_exploration_type
    from rlkit.modules.gaussian import GSDEHead

    head = GSDEHead(4, 2, num_envs=3).double()
    with set_exploration_type(ExplorationType.RANDOM):
        loc, scale, noise = head(torch.randn(3, 4, dtype=torch.float64))  # one row per env: the per-env weights
    assert noise.dtype == loc.dtype == scale.dtype == torch.float64
    _, _, shared = head(torch.randn(5, 4, dtype=torch.float64))
    assert shared.dtype == torch.float64
    head.load_noise_state_dict(GSDEHead(4, 2, num_envs=3).noise_state_dict())  # saved in float32
    assert head.weights.dtype == head.env_weights.dtype == torch.float64
