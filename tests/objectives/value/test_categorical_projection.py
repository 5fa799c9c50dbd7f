"""C51 categorical projection against a slow loop reference and hand-computed 3-atom examples."""
from __future__ import annotations

import math

import pytest
import torch
from cuda_marks import DEVICES

from rlkit.objectives.value.functional import categorical_projection

SUPPORT3 = [-1.0, 0.0, 1.0]
PROBS3 = [0.2, 0.5, 0.3]


def ref_projection(next_probs, reward, terminated, support, gamma):
    """Bellemare et al. 2017, Algorithm 1, one sample and one atom at a time."""
    v_min, v_max, k = support[0], support[-1], len(support)
    dz = (v_max - v_min) / (k - 1)
    out = []
    for n in range(len(next_probs)):
        m = [0.0] * k
        for j in range(k):
            tz = reward[n] + (0.0 if terminated[n] else gamma[n] * support[j])
            b = (min(max(tz, v_min), v_max) - v_min) / dz
            low, up = math.floor(b), math.ceil(b)
            if low == up:
                m[low] += next_probs[n][j]
            else:
                m[low] += next_probs[n][j] * (up - b)
                m[up] += next_probs[n][j] * (b - low)
        out.append(m)
    return out


def _project3(reward, terminated=False, gamma=0.5, probs=PROBS3):
    return categorical_projection(
        torch.tensor([probs], dtype=torch.float64),
        torch.tensor([reward], dtype=torch.float64),
        torch.tensor([terminated]),
        torch.tensor(SUPPORT3, dtype=torch.float64),
        gamma=gamma,
    )[0].tolist()


def test_hand_computed_three_atoms():
    # r = .25, gamma = .5: Tz = [-.25, .25, .75], b = [.75, 1.25, 1.75]
    # atom 0 (.2): .2*.25 -> 0, .2*.75 -> 1; atom 1 (.5): .5*.75 -> 1, .5*.25 -> 2;
    # atom 2 (.3): .3*.25 -> 1, .3*.75 -> 2.  Total [.05, .15 + .375 + .075, .125 + .225].
    assert _project3(0.25) == pytest.approx([0.05, 0.6, 0.35], abs=1e-12)


def test_atoms_landing_exactly_on_the_support():
    # r = .5, gamma = .5: Tz = [0, .5, 1]; atoms 0 and 2 land on atoms 1 and 2 (l == u) and keep
    # their whole mass; atom 1 splits evenly: [0, .2 + .25, .25 + .3].
    assert _project3(0.5) == pytest.approx([0.0, 0.45, 0.55], abs=1e-12)
    # gamma = 1, r = 0 maps every atom onto itself: the target is the input.
    assert _project3(0.0, gamma=1.0) == pytest.approx(PROBS3, abs=1e-12)


def test_clamping_and_termination():
    # Tz = [1.5, 2, 2.5] all clamp to v_max = 1.
    assert _project3(2.0) == pytest.approx([0.0, 0.0, 1.0], abs=1e-12)
    # Terminated: every atom collapses to r = -.5, halfway between atoms 0 and 1.
    assert _project3(-0.5, terminated=True) == pytest.approx([0.5, 0.5, 0.0], abs=1e-12)


def test_nan_probs_of_terminated_rows_do_not_leak():
    nan = float("nan")
    assert _project3(-0.5, terminated=True, probs=[nan, nan, nan]) == pytest.approx([0.5, 0.5, 0.0])


@pytest.mark.parametrize("device", DEVICES)
def test_matches_loop_reference(device):
    n, k = 64, 11
    support = torch.linspace(-5.0, 5.0, k, dtype=torch.float64, device=device)
    probs = torch.rand(n, k, dtype=torch.float64, device=device).softmax(-1)
    reward = torch.randn(n, 1, dtype=torch.float64, device=device) * 3
    terminated = torch.rand(n, 1, device=device) < 0.3
    gamma = torch.rand(n, 1, dtype=torch.float64, device=device)
    out = categorical_projection(probs, reward, terminated, support, gamma=gamma)
    ref = ref_projection(
        probs.tolist(), reward.flatten().tolist(), terminated.flatten().tolist(),
        support.tolist(), gamma.flatten().tolist(),
    )
    assert out.device == probs.device
    torch.testing.assert_close(out.cpu(), torch.tensor(ref, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(out.sum(-1), torch.ones(n, dtype=torch.float64, device=device))


@pytest.mark.parametrize("device", DEVICES)
def test_identity_on_a_51_atom_float32_support(device):
    support = torch.linspace(-10.0, 10.0, 51, device=device)
    probs = torch.rand(8, 51, device=device).softmax(-1)
    out = categorical_projection(
        probs, torch.zeros(8, device=device), torch.zeros(8, dtype=torch.bool, device=device),
        support, gamma=1.0,
    )
    torch.testing.assert_close(out, probs, atol=1e-5, rtol=0)


def test_batch_shapes():
    support = torch.linspace(-2.0, 2.0, 5)
    probs = torch.rand(3, 4, 5).softmax(-1)
    reward, terminated = torch.randn(3, 4, 1), torch.rand(3, 4, 1) < 0.5
    full = categorical_projection(probs, reward, terminated, support, gamma=0.9)
    assert full.shape == (3, 4, 5)
    flat = categorical_projection(
        probs.reshape(12, 5), reward.reshape(12), terminated.reshape(12), support, gamma=0.9
    )
    torch.testing.assert_close(full.reshape(12, 5), flat)
    single = categorical_projection(probs[0, :1], reward[0, :1], terminated[0, :1], support, gamma=0.9)
    torch.testing.assert_close(single, full[0, :1])
    unbatched = categorical_projection(probs[0, 0], reward[0, 0], terminated[0, 0], support, gamma=0.9)
    torch.testing.assert_close(unbatched, full[0, 0])


def test_errors():
    support, probs = torch.tensor(SUPPORT3), torch.tensor([PROBS3])
    r, t = torch.zeros(1, 1), torch.zeros(1, 1, dtype=torch.bool)
    with pytest.raises(TypeError, match="next_probs must be a floating-point tensor"):
        categorical_projection(probs.long(), r, t, support, gamma=0.9)
    with pytest.raises(ValueError, match=r"support must be a 1-D tensor of K >= 2 atoms, got \(1, 3\)"):
        categorical_projection(probs, r, t, support[None], gamma=0.9)
    with pytest.raises(ValueError, match=r"support must be a 1-D tensor of K >= 2 atoms, got list"):
        categorical_projection(probs, r, t, SUPPORT3, gamma=0.9)
    with pytest.raises(ValueError, match=r"K = 4 atoms .* got shape \(1, 3\)"):
        categorical_projection(probs, r, t, torch.zeros(4), gamma=0.9)
    with pytest.raises(ValueError, match=r"reward must have shape \(1, 1\) or \(1,\) .* got shape \(2,\)"):
        categorical_projection(probs, torch.zeros(2), t, support, gamma=0.9)
    with pytest.raises(TypeError, match="terminated must be a torch.Tensor, got bool"):
        categorical_projection(probs, r, False, support, gamma=0.9)
    with pytest.raises(TypeError, match="terminated must be a bool tensor, got dtype torch.float32"):
        categorical_projection(probs, r, t.float(), support, gamma=0.9)
    with pytest.raises(TypeError, match="reward must be a floating-point tensor, got dtype torch.int64"):
        categorical_projection(probs, r.long(), t, support, gamma=0.9)
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\], got 2"):
        categorical_projection(probs, r, t, support, gamma=2)
