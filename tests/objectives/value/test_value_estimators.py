"""Estimator modules on [N, T] TensorDicts with a linear critic, against a manual computation."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule

from rlkit.objectives.value import GAE, TD0Estimator, TD1Estimator, TDLambdaEstimator

N, T, OBS = 4, 6, 3
GAMMA, LMBDA = 0.9, 0.8


def make_critic():
    return TensorDictModule(torch.nn.Linear(OBS, 1), in_keys=["observation"], out_keys=["state_value"])


def make_td(n=N, t=T):
    terminated = torch.rand(n, t, 1) < 0.2
    truncated = (torch.rand(n, t, 1) < 0.2) & ~terminated
    return TensorDict(
        {
            "observation": torch.randn(n, t, OBS),
            "next": {
                "observation": torch.randn(n, t, OBS),
                "reward": torch.randn(n, t, 1),
                "done": terminated | truncated,
                "terminated": terminated,
                "truncated": truncated,
            },
        },
        batch_size=[n, t],
    )


def manual(critic, td, kind):
    """Backward recursion, one sample and one step at a time, with values from W x + b."""
    w, b = critic.module.weight.detach(), critic.module.bias.detach()
    value = (td["observation"] @ w.T + b).squeeze(-1).tolist()
    nxt = (td["next", "observation"] @ w.T + b).squeeze(-1).tolist()
    reward = td["next", "reward"].squeeze(-1).tolist()
    done = td["next", "done"].squeeze(-1).tolist()
    term = td["next", "terminated"].squeeze(-1).tolist()
    lmbda = {"td0": 0.0, "td1": 1.0, "td_lambda": LMBDA, "gae": LMBDA}[kind]
    targets, advantages = [], []
    for i in range(len(reward)):
        g, a = 0.0, 0.0
        row_g, row_a = [], []
        for j in reversed(range(len(reward[i]))):
            boot = 0.0 if term[i][j] else nxt[i][j]
            chain = not done[i][j] and j < len(reward[i]) - 1
            if kind == "gae":
                a = reward[i][j] + GAMMA * boot - value[i][j] + (GAMMA * lmbda * a if chain else 0.0)
                g = a + value[i][j]
            else:
                g = reward[i][j] + GAMMA * (((1 - lmbda) * boot + lmbda * g) if chain else boot)
                a = g - value[i][j]
            row_g.insert(0, g)
            row_a.insert(0, a)
        targets.append(row_g)
        advantages.append(row_a)
    as_t = lambda x: torch.tensor(x).unsqueeze(-1)  # noqa: E731
    return as_t(value), as_t(nxt), as_t(advantages), as_t(targets)


def build(kind, **kw):
    if kind == "td0":
        return TD0Estimator(gamma=GAMMA, **kw)
    if kind == "td1":
        return TD1Estimator(gamma=GAMMA, **kw)
    if kind == "td_lambda":
        return TDLambdaEstimator(gamma=GAMMA, lmbda=LMBDA, **kw)
    return GAE(gamma=GAMMA, lmbda=LMBDA, **kw)


KINDS = ["td0", "td1", "td_lambda", "gae"]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_matches_manual(kind):
    critic, td = make_critic(), make_td()
    out = build(kind, value_network=critic)(td)
    assert out is td
    value, nxt, adv, target = manual(critic, td, kind)
    tol = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(td["state_value"], value, **tol)
    torch.testing.assert_close(td["next", "state_value"], nxt, **tol)
    torch.testing.assert_close(td["advantage"], adv, **tol)
    torch.testing.assert_close(td["value_target"], target, **tol)


@pytest.mark.parametrize("kind", KINDS)
def test_nan_next_value_at_terminated_step_does_not_leak(kind):
    critic, td = make_critic(), make_td()
    td["next", "terminated"][1, 2] = True
    td["next", "done"][1, 2] = True
    td["next", "observation"][1, 2] = float("nan")
    build(kind, value_network=critic)(td)
    assert td["next", "state_value"][1, 2].isnan().all()
    assert td["value_target"].isfinite().all() and td["advantage"].isfinite().all()


def test_params_and_target_params_override():
    critic, td = make_critic(), make_td()
    own = critic.module.weight.detach().clone()
    params = TensorDict.from_module(critic).detach().apply(torch.zeros_like)
    params["module", "bias"] = torch.ones(1)
    target_params = params.clone()
    target_params["module", "bias"] = torch.full((1,), 2.0)
    est = TD0Estimator(gamma=GAMMA, value_network=critic)
    est(td, params=params, target_params=target_params)
    assert (td["state_value"] == 1).all() and (td["next", "state_value"] == 2).all()
    keep = ~td["next", "terminated"]
    torch.testing.assert_close(td["value_target"], td["next", "reward"] + GAMMA * 2 * keep)
    torch.testing.assert_close(critic.module.weight, own)  # the network's own parameters are back

    # Without target_params the next value uses params; without either, the network's own.
    td2 = make_td()
    est(td2, params=params)
    assert (td2["next", "state_value"] == 1).all()
    td3 = make_td()
    est(td3, target_params=target_params)
    assert (td3["next", "state_value"] == 2).all()
    torch.testing.assert_close(td3["state_value"], manual(critic, td3, "td0")[0], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_the_network_only_when_differentiable(kind):
    critic = make_critic()
    td = build(kind, value_network=critic)(make_td())
    assert not td["value_target"].requires_grad and not td["advantage"].requires_grad
    assert not td["state_value"].requires_grad

    td = build(kind, value_network=critic, differentiable=True)(make_td())
    (td["value_target"].sum() + td["advantage"].sum()).backward()
    assert critic.module.weight.grad is not None and critic.module.weight.grad.abs().sum() > 0


def test_state_value_with_grad_in_td_is_used_and_kept():
    critic, td = make_critic(), make_td()
    calls = []
    critic.register_forward_hook(lambda *args: calls.append(1))
    value = torch.randn(N, T, 1, requires_grad=True)
    td["state_value"] = value
    GAE(gamma=GAMMA, lmbda=LMBDA, value_network=critic)(td)
    assert len(calls) == 1  # only the next step ran through the critic
    assert td["state_value"].requires_grad  # not replaced by a detached copy
    assert not td["advantage"].requires_grad
    torch.testing.assert_close(td["value_target"] - td["advantage"], value.detach())


@pytest.mark.parametrize("est_cls", [TD1Estimator, TDLambdaEstimator, GAE])
def test_multi_step_estimators_refuse_flat_batches(est_cls):
    kw = {"lmbda": LMBDA} if est_cls is not TD1Estimator else {}
    est = est_cls(gamma=GAMMA, value_network=make_critic(), **kw)
    flat = make_td().reshape(-1)
    with pytest.raises(ValueError, match=r"needs a TensorDict with batch dims \[\*B, T\].*\(24,\)"):
        est(flat)
    with pytest.raises(ValueError, match="would chain unrelated samples as time"):
        est.value_estimate(flat)


@pytest.mark.parametrize("shape", [(N * T,), ()])
def test_td0_on_flat_and_empty_batches(shape):
    critic, full = make_critic(), make_td()
    flat = full.reshape(-1) if shape else full[0, 0]
    TD0Estimator(gamma=GAMMA, value_network=critic)(flat)
    expected = manual(critic, full, "td0")[3]
    expected = expected.reshape(-1, 1) if shape else expected[0, 0]
    assert flat["value_target"].shape == shape + (1,)
    torch.testing.assert_close(flat["value_target"], expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_value_estimate_with_next_value_calls_no_network(kind):
    td = make_td()
    td["state_value"] = torch.randn(N, T, 1)
    next_value = torch.randn(N, T, 1, requires_grad=True)
    est = build(kind)  # no network and no ("next", "state_value"): nothing else could be read
    target = est.value_estimate(td, next_value=next_value)
    assert "value_target" not in td.keys() and "advantage" not in td.keys()
    assert not target.requires_grad
    td["next", "state_value"] = next_value.detach()
    torch.testing.assert_close(target, est(td)["value_target"])
    assert build(kind, differentiable=True).value_estimate(td, next_value=next_value).requires_grad


def test_value_estimate_with_network_matches_forward():
    critic, td = make_critic(), make_td()
    est = TDLambdaEstimator(gamma=GAMMA, lmbda=LMBDA, value_network=critic)
    target = est.value_estimate(td)
    torch.testing.assert_close(target, manual(critic, td, "td_lambda")[3], atol=1e-5, rtol=1e-5)


def test_average_gae_standardises_advantage_only():
    critic, td = make_critic(), make_td()
    plain = GAE(gamma=GAMMA, lmbda=LMBDA, value_network=critic)(td.clone())
    avg = GAE(gamma=GAMMA, lmbda=LMBDA, value_network=critic, average_gae=True)(td.clone())
    adv = plain["advantage"]
    torch.testing.assert_close(avg["advantage"], (adv - adv.mean()) / adv.std())
    assert abs(avg["advantage"].mean().item()) < 1e-6 and abs(avg["advantage"].std().item() - 1) < 1e-5
    torch.testing.assert_close(avg["value_target"], plain["value_target"])
    one = GAE(gamma=GAMMA, lmbda=LMBDA, value_network=critic, average_gae=True)(make_td(1, 1))
    assert one["advantage"].item() == 0.0


def test_missing_flags_are_derived():
    critic, td = make_critic(), make_td()
    est = TD1Estimator(gamma=GAMMA, value_network=critic)
    ref = est(td.clone())["value_target"]
    no_term = td.clone()
    del no_term["next", "terminated"]  # terminated = done & ~truncated
    torch.testing.assert_close(est(no_term)["value_target"], ref)
    no_done = td.clone()
    del no_done["next", "done"]  # done = terminated | truncated
    torch.testing.assert_close(est(no_done)["value_target"], ref)
    only_done = td.clone()
    del only_done["next", "terminated"], only_done["next", "truncated"]  # every done is terminal
    expected = td.clone()
    expected["next", "terminated"] = expected["next", "done"]
    torch.testing.assert_close(est(only_done)["value_target"], est(expected)["value_target"])
