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
    for step, lr in enumerate([0.01, 0.01, 0.004, 0.02]):  # (a changing rate, as a linear schedule sets it)
        grad = torch.randn(5, dtype=torch.float64)
        p.grad = grad.clone()
        opt.param_groups[0]["lr"] = lr
        opt.step()
        for i, g in enumerate(grad.tolist()):
            g = g + 0.1 * ref[i]
            v[i] = 0.9 * v[i] + 0.1 * g * g
            m[i] = 0.9 * m[i] + 0.1 * g
            d = math.sqrt(v[i] - m[i] ** 2 + 1e-5) if centered else math.sqrt(v[i] + 1e-5)
            if momentum:  # TensorFlow's ApplyRMSProp: mom = momentum * mom + lr * g / d; var -= mom
                b[i] = momentum * b[i] + lr * g / d
                ref[i] -= b[i]
            else:
                ref[i] -= lr * g / d
        assert p.detach().tolist() == pytest.approx(ref, rel=1e-12, abs=1e-14)


def test_a_momentum_buffer_saved_before_the_rate_moved_into_it_resumes_with_the_same_step():
    """Checkpoints of rlkit before the fix hold ``momentum_buffer`` = sum of g / d (the rate applied
    outside): taken as is by the TensorFlow form, the first step after a resume was 1 / lr too large."""
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = RMSpropTF([p], lr=0.01, alpha=0.9, eps=1e-5, momentum=0.5)
    old = {"step": torch.tensor(3.0), "square_avg": torch.tensor([2.0, 3.0], dtype=torch.float64),
           "momentum_buffer": torch.tensor([4.0, -5.0], dtype=torch.float64)}
    opt.load_state_dict({"state": {0: old}, "param_groups": opt.state_dict()["param_groups"]})
    g = [0.5, -1.5]
    p.grad = torch.tensor(g, dtype=torch.float64)
    opt.step()
    expected = []
    for i, (start, v, b) in enumerate(zip([1.0, -2.0], [2.0, 3.0], [4.0, -5.0])):
        v = 0.9 * v + 0.1 * g[i] ** 2
        b = 0.5 * b + g[i] / math.sqrt(v + 1e-5)  # the old form: the buffer without the rate ...
        expected.append(start - 0.01 * b)  # ... which multiplied the whole buffer
    assert p.detach().tolist() == pytest.approx(expected, rel=1e-12)
    assert set(opt.state[p]) == {"step", "square_avg", "momentum_buffer_lr"}


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


@pytest.mark.parametrize("optim", [
    {"_target_": "torch.optim.Adam", "lr": 2.5e-4},
    {"_target_": "torch.optim.RMSprop", "lr": 2.5e-4, "alpha": 0.95, "eps": 0.01, "centered": True},
    {"_target_": "torch.optim.AdamW", "lr": 1e-3, "weight_decay": 0.1},
    {"_target_": "torch.optim.SGD", "lr": 1e-2, "momentum": 0.9},
])
def test_the_foreach_kernels_rlkit_defaults_to_give_the_single_tensor_numbers_bit_for_bit(optim):
    """``build_optimizer`` picks ``foreach=True`` where the config says neither ``foreach`` nor
    ``fused``: on CPU it must change no number, for tensor sizes with and without a partial vector
    at their end, over many steps (this is what lets it replace torch's CPU default)."""
    from rlkit.factories import build_optimizer

    torch.manual_seed(0)
    shapes = [(120, 4), (120,), (84, 120), (84,), (2, 84), (2,), (3, 5, 7)]
    ours = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    single = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    fast = build_optimizer(optim, ours)
    target = optim["_target_"].rsplit(".", 1)[1]
    slow = getattr(torch.optim, target)(single, foreach=False, **{k: v for k, v in optim.items() if k != "_target_"})
    assert fast.defaults["foreach"] is True
    for _ in range(50):
        for a, b in zip(ours, single):
            a.grad = torch.randn(a.shape)
            b.grad = a.grad.clone()
        fast.step()
        slow.step()
    assert all(torch.equal(a, b) for a, b in zip(ours, single))


def test_an_explicit_kernel_choice_is_kept():
    from rlkit.factories import build_optimizer

    params = [torch.nn.Parameter(torch.zeros(3))]
    assert build_optimizer({"_target_": "torch.optim.Adam", "lr": 1e-3, "foreach": False}, params).defaults["foreach"] is False
    fused = build_optimizer({"_target_": "torch.optim.Adam", "lr": 1e-3, "fused": True}, params).defaults
    assert fused["fused"] is True and not fused["foreach"]
    assert "foreach" not in build_optimizer({"_target_": "rlkit.optim.RMSpropTF", "lr": 1e-3}, params).defaults
