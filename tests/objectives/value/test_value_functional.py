"""Return kernels against slow forward-view loop references and a hand-computed example."""
from __future__ import annotations

import pytest
import torch
from cuda_marks import DEVICES

from rlkit.objectives.value.functional import (
    generalized_advantage_estimate,
    td0_return_estimate,
    td1_return_estimate,
    td_lambda_return_estimate,
)

# -- slow references: pure Python loops over batch and time, forward view ------------------------
# Each one walks forward from t to the step e where the chain stops (done or the window's last step)
# and sums the definition term by term, the opposite direction of the kernels' backward recursion.


def _stop(done, b, t):
    e = t
    while not done[b][e] and e < len(done[b]) - 1:
        e += 1
    return e


def _boot(next_value, terminated, b, j):
    return 0.0 if terminated[b][j] else next_value[b][j]


def ref_td0(gamma, next_value, reward, terminated):
    return [
        [reward[b][t] + gamma * _boot(next_value, terminated, b, t) for t in range(len(reward[b]))]
        for b in range(len(reward))
    ]


def _n_step(gamma, next_value, reward, terminated, b, t, n):
    ret = sum(gamma**k * reward[b][t + k] for k in range(n))
    return ret + gamma**n * _boot(next_value, terminated, b, t + n - 1)


def ref_td_lambda(gamma, lmbda, next_value, reward, done, terminated):
    out = []
    for b in range(len(reward)):
        row = []
        for t in range(len(reward[b])):
            steps = _stop(done, b, t) - t + 1
            # lambda-return: (1 - lmbda)-weighted n-step returns, remaining weight on the longest one.
            ret = sum(
                (1 - lmbda) * lmbda ** (n - 1) * _n_step(gamma, next_value, reward, terminated, b, t, n)
                for n in range(1, steps)
            )
            ret += lmbda ** (steps - 1) * _n_step(gamma, next_value, reward, terminated, b, t, steps)
            row.append(ret)
        out.append(row)
    return out


def ref_td1(gamma, next_value, reward, done, terminated):
    return [
        [
            _n_step(gamma, next_value, reward, terminated, b, t, _stop(done, b, t) - t + 1)
            for t in range(len(reward[b]))
        ]
        for b in range(len(reward))
    ]


def ref_gae(gamma, lmbda, value, next_value, reward, done, terminated):
    adv = []
    for b in range(len(reward)):
        row = []
        for t in range(len(reward[b])):
            total = 0.0
            for k in range(_stop(done, b, t) - t + 1):
                j = t + k
                delta = reward[b][j] + gamma * _boot(next_value, terminated, b, j) - value[b][j]
                total += (gamma * lmbda) ** k * delta
            row.append(total)
        adv.append(row)
    target = [[a + v for a, v in zip(ra, rv)] for ra, rv in zip(adv, value)]
    return adv, target


def _lists(x):
    return x.squeeze(-1).tolist()


def _tensor(rows):
    return torch.tensor(rows, dtype=torch.float64).unsqueeze(-1)


@pytest.fixture(params=[4, 10, 11, 33], ids=lambda t: f"T{t}")
def batch(request):
    # T <= SHORT_WINDOW (10) takes the loop in reverse_affine_scan, longer windows the doubling scan.
    n, t = 5, request.param
    terminated = torch.rand(n, t, 1) < 0.15
    truncated = (torch.rand(n, t, 1) < 0.15) & ~terminated
    return dict(
        value=torch.randn(n, t, 1, dtype=torch.float64),
        next_value=torch.randn(n, t, 1, dtype=torch.float64),
        reward=torch.randn(n, t, 1, dtype=torch.float64),
        terminated=terminated,
        done=terminated | truncated,
    )


# -- random data against the references -----------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
def test_td0_matches_reference(batch, gamma):
    out = td0_return_estimate(
        gamma, batch["next_value"], batch["reward"], batch["terminated"], done=batch["done"]
    )
    ref = ref_td0(gamma, _lists(batch["next_value"]), _lists(batch["reward"]), _lists(batch["terminated"]))
    torch.testing.assert_close(out, _tensor(ref), atol=1e-6, rtol=0)


@pytest.mark.parametrize("gamma", [0.0, 0.9, 1.0])
def test_td1_matches_reference(batch, gamma):
    out = td1_return_estimate(
        gamma, batch["next_value"], batch["reward"], batch["done"], terminated=batch["terminated"]
    )
    ref = ref_td1(gamma, *[_lists(batch[k]) for k in ("next_value", "reward", "done", "terminated")])
    torch.testing.assert_close(out, _tensor(ref), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("gamma", "lmbda"), [(0.9, 0.0), (0.99, 0.95), (0.8, 1.0), (1.0, 0.5)])
def test_td_lambda_matches_reference(batch, gamma, lmbda):
    out = td_lambda_return_estimate(
        gamma, lmbda, batch["next_value"], batch["reward"], batch["done"], terminated=batch["terminated"]
    )
    ref = ref_td_lambda(
        gamma, lmbda, *[_lists(batch[k]) for k in ("next_value", "reward", "done", "terminated")]
    )
    torch.testing.assert_close(out, _tensor(ref), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("gamma", "lmbda"), [(0.9, 0.0), (0.99, 0.95), (0.8, 1.0)])
def test_gae_matches_reference(batch, gamma, lmbda):
    adv, target = generalized_advantage_estimate(
        gamma,
        lmbda,
        batch["value"],
        batch["next_value"],
        batch["reward"],
        batch["done"],
        terminated=batch["terminated"],
    )
    ref_adv, ref_target = ref_gae(
        gamma, lmbda, *[_lists(batch[k]) for k in ("value", "next_value", "reward", "done", "terminated")]
    )
    torch.testing.assert_close(adv, _tensor(ref_adv), atol=1e-6, rtol=0)
    torch.testing.assert_close(target, _tensor(ref_target), atol=1e-6, rtol=0)


def test_lambda_extremes_are_td0_and_td1(batch):
    args = (batch["next_value"], batch["reward"], batch["done"])
    kw = dict(terminated=batch["terminated"])
    td0 = td0_return_estimate(0.9, batch["next_value"], batch["reward"], batch["terminated"])
    torch.testing.assert_close(td_lambda_return_estimate(0.9, 0.0, *args, **kw), td0)
    torch.testing.assert_close(
        td_lambda_return_estimate(0.9, 1.0, *args, **kw), td1_return_estimate(0.9, *args, **kw)
    )


def test_long_float32_window_matches_float64(batch):
    # 300 steps exercise many doubling rounds; float32 stays close to the float64 result.
    reward, next_value = torch.randn(3, 300, 1), torch.randn(3, 300, 1)
    done = torch.rand(3, 300, 1) < 0.02
    out = td_lambda_return_estimate(0.99, 0.95, next_value, reward, done)
    ref = td_lambda_return_estimate(0.99, 0.95, next_value.double(), reward.double(), done)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, atol=1e-4, rtol=0)


# -- hand-computed example --------------------------------------------------------------------------
# gamma = lmbda = 0.5, one trajectory of 5 steps, reward 1 at every step,
# next values V(s[t+1]) = [2, 4, 6, 8, 10], state values V(s[t]) = [1, 2, 3, 4, 5];
# step 1 is terminated, step 3 truncated (done, not terminated), step 4 is the window's last step.
HAND = dict(
    reward=[1.0, 1.0, 1.0, 1.0, 1.0],
    next_value=[2.0, 4.0, 6.0, 8.0, 10.0],
    value=[1.0, 2.0, 3.0, 4.0, 5.0],
    terminated=[False, True, False, False, False],
    done=[False, True, False, True, False],
)


def _hand(name, nan_at_terminal=False):
    values = list(HAND[name])
    if nan_at_terminal:
        values[1] = float("nan")
    dtype = torch.bool if name in ("terminated", "done") else torch.float64
    return torch.tensor(values, dtype=dtype).view(1, 5, 1)


@pytest.mark.parametrize("nan_at_terminal", [False, True])
def test_hand_computed_example(nan_at_terminal):
    nv = _hand("next_value", nan_at_terminal)
    r, d, term, v = _hand("reward"), _hand("done"), _hand("terminated"), _hand("value")
    # TD(0): [1 + .5*2, 1 (terminated), 1 + .5*6, 1 + .5*8 (truncated bootstraps), 1 + .5*10]
    assert _lists(td0_return_estimate(0.5, nv, r, term)) == [[2.0, 1.0, 4.0, 5.0, 6.0]]
    # TD(1): G1 = 1, G0 = 1 + .5*1; G3 = 1 + .5*8, G2 = 1 + .5*5; G4 = 1 + .5*10
    assert _lists(td1_return_estimate(0.5, nv, r, d, terminated=term)) == [[1.5, 1.0, 3.5, 5.0, 6.0]]
    # TD(.5): G0 = 1 + .5*(.5*2 + .5*1) = 1.75; G2 = 1 + .5*(.5*6 + .5*5) = 3.75
    out = td_lambda_return_estimate(0.5, 0.5, nv, r, d, terminated=term)
    assert _lists(out) == [[1.75, 1.0, 3.75, 5.0, 6.0]]
    # GAE: delta = [1 + 1 - 1, 1 + 0 - 2, 1 + 3 - 3, 1 + 4 - 4, 1 + 5 - 5] = [1, -1, 1, 1, 1]
    # A = [1 + .25*(-1), -1, 1 + .25*1, 1, 1] (the chain stops after steps 1 and 3)
    adv, target = generalized_advantage_estimate(0.5, 0.5, v, nv, r, d, terminated=term)
    assert _lists(adv) == [[0.75, -1.0, 1.25, 1.0, 1.0]]
    assert _lists(target) == [[1.75, 1.0, 4.25, 5.0, 6.0]]


def test_missing_terminated_means_done_is_terminal():
    nv, r, d = _hand("next_value"), _hand("reward"), _hand("done")
    # Step 3 (truncated above) now counts as terminal: G3 = 1, G2 = 1 + .5*(.5*6 + .5*1) = 2.75.
    assert _lists(td_lambda_return_estimate(0.5, 0.5, nv, r, d)) == [[1.75, 1.0, 2.75, 1.0, 6.0]]
    assert _lists(td1_return_estimate(0.5, nv, r, d)) == [[1.5, 1.0, 1.5, 1.0, 6.0]]


def test_terminated_implies_done_even_if_done_is_false():
    nv, r, term = _hand("next_value"), _hand("reward"), _hand("terminated")
    out = td1_return_estimate(0.5, nv, r, torch.zeros_like(term), terminated=term)
    # Step 0 must not chain into a terminated step's successor: same as with done = terminated.
    assert _lists(out) == _lists(td1_return_estimate(0.5, nv, r, term, terminated=term))


# -- layouts, factors and gradients ------------------------------------------------------------------


@pytest.mark.parametrize("time_dim", [0, -3])
def test_time_dim_first(batch, time_dim):
    moved = {k: v.transpose(0, 1) for k, v in batch.items()}
    out = generalized_advantage_estimate(
        0.9, 0.8, moved["value"], moved["next_value"], moved["reward"], moved["done"],
        terminated=moved["terminated"], time_dim=time_dim,
    )
    ref = generalized_advantage_estimate(
        0.9, 0.8, batch["value"], batch["next_value"], batch["reward"], batch["done"],
        terminated=batch["terminated"],
    )
    for got, want in zip(out, ref):
        torch.testing.assert_close(got.transpose(0, 1), want)


def test_per_sample_tensor_gamma(batch):
    gammas = torch.tensor([0.0, 0.5, 0.9, 0.99, 1.0], dtype=torch.float64).view(5, 1, 1)
    out = td_lambda_return_estimate(
        gammas, 0.7, batch["next_value"], batch["reward"], batch["done"], terminated=batch["terminated"]
    )
    for b, g in enumerate(gammas.flatten().tolist()):
        row = td_lambda_return_estimate(
            g, 0.7, batch["next_value"][b : b + 1], batch["reward"][b : b + 1],
            batch["done"][b : b + 1], terminated=batch["terminated"][b : b + 1],
        )
        torch.testing.assert_close(out[b : b + 1], row)




@pytest.mark.parametrize("device", DEVICES)
def test_kernels_run_on_the_inputs_device(batch, device):
    on = {k: v.to(device) for k, v in batch.items()}
    gamma = torch.tensor(0.9, dtype=torch.float32)  # a CPU float32 buffer is moved and cast
    adv, target = generalized_advantage_estimate(
        gamma, 0.8, on["value"], on["next_value"], on["reward"], on["done"], terminated=on["terminated"]
    )
    ret = td_lambda_return_estimate(gamma, 0.8, on["next_value"], on["reward"], on["done"])
    assert adv.device == target.device == ret.device == on["reward"].device
    assert ret.dtype == torch.float64
    ref_adv, _ = generalized_advantage_estimate(
        gamma.item(), 0.8, batch["value"], batch["next_value"], batch["reward"], batch["done"],
        terminated=batch["terminated"],
    )
    torch.testing.assert_close(adv.cpu(), ref_adv)


def test_empty_time_window():
    empty, flags = torch.zeros(2, 0, 1), torch.zeros(2, 0, 1, dtype=torch.bool)
    assert td_lambda_return_estimate(0.9, 0.9, empty, empty, flags).shape == (2, 0, 1)


def test_gae_gradients_match_finite_differences():
    value = torch.randn(2, 4, 1, dtype=torch.float64, requires_grad=True)
    next_value = torch.randn(2, 4, 1, dtype=torch.float64, requires_grad=True)
    reward = torch.randn(2, 4, 1, dtype=torch.float64)
    done = torch.tensor([[0, 1, 0, 0], [0, 0, 1, 0]], dtype=torch.bool).unsqueeze(-1)

    def fn(v, nv):
        return generalized_advantage_estimate(0.9, 0.8, v, nv, reward, done, terminated=done)

    assert torch.autograd.gradcheck(fn, (value, next_value))


# -- errors --------------------------------------------------------------------------------------------


def _args():
    return torch.zeros(2, 3, 1), torch.zeros(2, 3, 1), torch.zeros(2, 3, 1, dtype=torch.bool)


def test_error_mismatched_shapes():
    nv, r, d = _args()
    with pytest.raises(ValueError, match=r"reward has shape \(2, 4, 1\) but next_state_value has shape"):
        td1_return_estimate(0.9, nv, torch.zeros(2, 4, 1), d)


def test_error_missing_trailing_singleton():
    with pytest.raises(ValueError, match=r"next_state_value must have shape \[\*B, T, 1\].*\(2, 3\)"):
        td0_return_estimate(0.9, torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"got shape \(1,\)"):
        td0_return_estimate(0.9, torch.zeros(1), torch.zeros(1), torch.zeros(1, dtype=torch.bool))


def test_error_non_bool_flags():
    nv, r, d = _args()
    with pytest.raises(TypeError, match="done must be a bool tensor, got dtype torch.float32"):
        td1_return_estimate(0.9, nv, r, d.float())
    with pytest.raises(TypeError, match="terminated must be a bool tensor, got dtype torch.int64"):
        td1_return_estimate(0.9, nv, r, d, terminated=d.long())


def test_error_non_float_values_and_non_tensors():
    nv, r, d = _args()
    with pytest.raises(TypeError, match="reward must be a floating-point tensor, got dtype torch.int64"):
        td0_return_estimate(0.9, nv, r.long(), d)
    with pytest.raises(TypeError, match="state_value must be a torch.Tensor, got list"):
        generalized_advantage_estimate(0.9, 0.9, [0.0], nv, r, d)


@pytest.mark.parametrize("time_dim", [-1, 2, -4, 7])
def test_error_time_dim_out_of_range(time_dim):
    nv, r, d = _args()
    with pytest.raises(ValueError, match=rf"time_dim={time_dim} is out of range .* \[-3, -2\] or \[0, 1\]"):
        td_lambda_return_estimate(0.9, 0.9, nv, r, d, time_dim=time_dim)


def test_error_time_dim_not_int():
    nv, r, d = _args()
    with pytest.raises(TypeError, match="time_dim must be an int, got 1.0"):
        td1_return_estimate(0.9, nv, r, d, time_dim=1.0)


def test_error_bad_factors():
    nv, r, d = _args()
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\], got 1.5"):
        td1_return_estimate(1.5, nv, r, d)
    with pytest.raises(ValueError, match=r"lmbda must lie in \[0, 1\], got -0.1"):
        td_lambda_return_estimate(0.9, -0.1, nv, r, d)
    with pytest.raises(TypeError, match="gamma must be a float or a tensor, got str"):
        td0_return_estimate("0.9", nv, r, d)
    with pytest.raises(ValueError, match=r"lmbda of shape \(3, 1, 1\) does not broadcast .* \(2, 3, 1\)"):
        generalized_advantage_estimate(0.9, torch.ones(3, 1, 1), nv, nv, r, d)
