"""The loss registry and the (loss, value estimator) pairs it allows."""
from __future__ import annotations

import pytest
from loss_builders import build_a2c, build_c51, build_dqn

from rlkit.objectives import (
    LOSSES,
    A2CLoss,
    DistributionalDQNLoss,
    DQNLoss,
    ValueEstimators,
    check_value_estimator,
    get_loss_class,
    supported_value_estimators,
)

EXPECTED = {
    "dqn": ("td0", "td1", "td_lambda"),
    "c51": ("td0",),
    "a2c": ("gae", "td0", "td1", "td_lambda"),
}
BUILDERS = {"dqn": build_dqn, "c51": build_c51, "a2c": build_a2c}


def test_registry_names_classes_and_estimators():
    assert LOSSES == {"dqn": DQNLoss, "c51": DistributionalDQNLoss, "a2c": A2CLoss}
    for name, estimators in EXPECTED.items():
        assert get_loss_class(name) is LOSSES[name]
        assert sorted(supported_value_estimators(name)) == sorted(estimators)


@pytest.mark.parametrize("name, estimator", [(n, e) for n, es in EXPECTED.items() for e in es])
def test_every_supported_pair_builds(name, estimator):
    assert check_value_estimator(name, estimator) == ValueEstimators(estimator)
    loss = BUILDERS[name]()
    loss.make_value_estimator(estimator)
    assert loss.value_type == ValueEstimators(estimator)


def test_unknown_loss_and_unsupported_estimator_raise():
    with pytest.raises(ValueError, match=r"Unknown loss 'ppo'; valid names: \['a2c', 'c51', 'dqn'\]"):
        get_loss_class("ppo")
    with pytest.raises(ValueError, match=r"Loss 'c51' does not support the value estimator 'gae'; valid: \['td0'\]"):
        check_value_estimator("c51", "gae")
    with pytest.raises(ValueError, match=r"Loss 'dqn' does not support .*valid: \['td0', 'td1', 'td_lambda'\]"):
        check_value_estimator("dqn", ValueEstimators.GAE)
