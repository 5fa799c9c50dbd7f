"""Estimator plumbing: registry names, keys, hyperparameter buffers and every error message."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictModuleBase

from rlkit.objectives.value import (
    ESTIMATORS,
    GAE,
    TD0Estimator,
    TD1Estimator,
    TDLambdaEstimator,
    ValueEstimatorBase,
    ValueEstimators,
    get_estimator_class,
)


def make_td(n=2, t=3):
    done = torch.zeros(n, t, 1, dtype=torch.bool)
    return TensorDict(
        {
            "observation": torch.randn(n, t, 3),
            "next": {"observation": torch.randn(n, t, 3), "reward": torch.ones(n, t, 1), "done": done},
        },
        batch_size=[n, t],
    )


def critic(out_key="state_value", module=None):
    return TensorDictModule(module or torch.nn.Linear(3, 1), in_keys=["observation"], out_keys=[out_key])


# -- registry ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        (ValueEstimators.TD0, TD0Estimator),
        ("td0", TD0Estimator),
        ("TD0", TD0Estimator),
        ("td1", TD1Estimator),
        ("TDLambda", TDLambdaEstimator),
        ("td_lambda", TDLambdaEstimator),
        ("tdlambda", TDLambdaEstimator),
        ("GAE", GAE),
        ("gae", GAE),
        (ValueEstimators.GAE, GAE),
    ],
)
def test_get_estimator_class(name, cls):
    assert get_estimator_class(name) is cls
    assert cls.value_type is get_estimator_class(name).value_type


def test_registry_covers_the_enum():
    assert set(ESTIMATORS) == set(ValueEstimators)
    assert [m.value for m in ValueEstimators] == ["td0", "td1", "td_lambda", "gae"]
    assert ValueEstimators("td_lambda") is ValueEstimators.TDLambda
    assert str(ValueEstimators.GAE) == "gae"
    for cls in ESTIMATORS.values():
        assert issubclass(cls, ValueEstimatorBase) and issubclass(cls, TensorDictModuleBase)


@pytest.mark.parametrize("bad", ["td2", "lambda", 3, None])
def test_get_estimator_class_unknown(bad):
    # One resolver for every estimator name (ValueEstimators.resolve), one message.
    match = r"Unknown value estimator .*; valid choices: \['td0', 'td1', 'td_lambda', 'gae'\] \(or the member names"
    with pytest.raises(ValueError, match=match):
        get_estimator_class(bad)


def test_base_is_abstract():
    with pytest.raises(TypeError, match="abstract"):
        ValueEstimatorBase(gamma=0.9, value_network=None, differentiable=False)


# -- hyperparameters ---------------------------------------------------------------------------------


def test_gamma_and_lmbda_are_buffers_that_move():
    est = GAE(gamma=0.9, lmbda=torch.tensor(0.5))
    assert est.gamma.item() == pytest.approx(0.9) and est.lmbda.item() == 0.5
    assert {"gamma", "lmbda"} <= dict(est.named_buffers()).keys()
    moved = est.to("meta")
    assert moved.gamma.device.type == "meta" and moved.lmbda.device.type == "meta"
    assert TD0Estimator(gamma=0.9).to(torch.float64).gamma.dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(gamma=1.2, lmbda=0.5), r"gamma must lie in \[0, 1\], got 1.2"),
        (dict(gamma=0.9, lmbda=-0.5), r"lmbda must lie in \[0, 1\], got -0.5"),
        (dict(gamma="0.9", lmbda=0.5), r"gamma must be a float in \[0, 1\], got '0.9'"),
        (dict(gamma=True, lmbda=0.5), r"gamma must be a float in \[0, 1\], got True"),
        (dict(gamma=torch.ones(2), lmbda=0.5), r"gamma must be .* got a tensor of shape \(2,\)"),
        (dict(gamma=0.9, lmbda=torch.tensor(1)), r"lmbda must be .* dtype torch.int64"),
    ],
)
def test_bad_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TDLambdaEstimator(**kwargs)


# -- keys ----------------------------------------------------------------------------------------------


def test_default_keys_and_module_keys():
    est = GAE(gamma=0.9, lmbda=0.9, value_network=critic())
    keys = est.tensor_keys
    assert (keys.advantage, keys.value_target, keys.value) == ("advantage", "value_target", "state_value")
    assert (keys.reward, keys.done, keys.terminated, keys.truncated) == (
        "reward", "done", "terminated", "truncated",
    )
    assert "observation" in est.in_keys and ("next", "observation") in est.in_keys
    assert ("next", "reward") in est.in_keys and ("next", "terminated") in est.in_keys
    assert est.out_keys == ["advantage", "value_target", "state_value", ("next", "state_value")]


def test_set_keys_renames_and_none_resets():
    td = make_td()
    td.rename_key_(("next", "reward"), ("next", "rew"))
    est = TD1Estimator(gamma=0.5, value_network=critic("v"))
    est.set_keys(reward="rew", value="v", advantage=("out", "adv"), value_target="vt")
    assert ("next", "rew") in est.in_keys and ("out", "adv") in est.out_keys
    est(td)
    assert {"v", "vt", ("out", "adv"), ("next", "v")} <= set(td.keys(include_nested=True))
    torch.testing.assert_close(td["out", "adv"], td["vt"] - td["v"])
    est.set_keys(reward=None, advantage=None)
    assert est.tensor_keys.reward == "reward" and est.tensor_keys.advantage == "advantage"
    assert est.tensor_keys.value == "v"


def test_set_keys_unknown():
    est = TD0Estimator(gamma=0.9)
    with pytest.raises(ValueError, match=r"'rewards' is not an accepted key; accepted keys: \['advantage'"):
        est.set_keys(value="v", rewards="r")
    assert est.tensor_keys.value == "state_value"  # nothing applied from a rejected call


# -- errors on the data -------------------------------------------------------------------------------


def test_missing_reward():
    td = make_td()
    del td["next", "reward"]
    with pytest.raises(ValueError, match=r"needs the reward under key \('next', 'reward'\), which is miss"):
        TD1Estimator(gamma=0.9, value_network=critic())(td)


def test_missing_done_and_terminated():
    td = make_td()
    del td["next", "done"]
    match = r"needs the done flag \(or the terminated flag\) under key \('next', 'done'\)"
    with pytest.raises(ValueError, match=match):
        TD1Estimator(gamma=0.9, value_network=critic())(td)


def test_missing_values_without_network():
    td = make_td()
    with pytest.raises(ValueError, match=r"needs the state value .* under key 'state_value'"):
        TD0Estimator(gamma=0.9)(td)
    td["state_value"] = torch.zeros(2, 3, 1)
    with pytest.raises(ValueError, match=r"next state value .* under key \('next', 'state_value'\)"):
        TD0Estimator(gamma=0.9)(td)


def test_missing_next_entries_with_network():
    td = TensorDict({"observation": torch.randn(2, 3, 3)}, batch_size=[2, 3])
    with pytest.raises(ValueError, match=r"needs the next-step entries under key 'next'"):
        TD0Estimator(gamma=0.9, value_network=critic())(td)


def test_network_writing_another_key():
    with pytest.raises(ValueError, match=r"did not write the value key 'state_value' .* \['value'\]"):
        TD0Estimator(gamma=0.9, value_network=critic("value"))(make_td())


def test_value_shapes_are_checked():
    flat_critic = critic(module=torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(-2)))
    match = r"state value 'state_value' has shape \(2, 3\), expected \(2, 3, 1\)"
    with pytest.raises(ValueError, match=match):
        TD0Estimator(gamma=0.9, value_network=flat_critic)(make_td())
    with pytest.raises(ValueError, match=r"next_value has shape \(2, 3\), expected \(2, 3, 1\)"):
        TD0Estimator(gamma=0.9).value_estimate(make_td(), next_value=torch.zeros(2, 3))
