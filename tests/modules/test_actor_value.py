"""ActorValueOperator: the standalone operators share the very same modules and parameters."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import ProbabilisticTensorDictSequential, TensorDictModule
from torch import nn

from rlkit.data import Categorical
from rlkit.modules import ActorValueOperator, Categorical as CategoricalDist, ProbabilisticActor, SafeModule, ValueOperator


def _operator() -> ActorValueOperator:
    common = SafeModule(nn.Linear(4, 8), in_keys=["observation"], out_keys=["hidden"])
    logits = TensorDictModule(nn.Linear(8, 3), in_keys=["hidden"], out_keys=["logits"])
    policy = ProbabilisticActor(logits, ["logits"], spec=Categorical(3), distribution_class=CategoricalDist, return_log_prob=True)
    value = ValueOperator(nn.Linear(8, 1), in_keys=["hidden"])
    return ActorValueOperator(common, policy, value)


def _ptrs(module: nn.Module) -> dict:
    return {name: p.data_ptr() for name, p in module.named_parameters()}


def test_operators_share_parameter_objects():
    op = _operator()
    common, policy, value = op.module
    policy_op, value_op = op.get_policy_operator(), op.get_value_operator()
    own = {id(p) for p in op.parameters()}
    assert {id(p) for p in policy_op.parameters()} == {id(p) for p in common.parameters()} | {id(p) for p in policy.parameters()}
    assert {id(p) for p in value_op.parameters()} == {id(p) for p in common.parameters()} | {id(p) for p in value.parameters()}
    assert {id(p) for p in policy_op.parameters()} <= own and {id(p) for p in value_op.parameters()} <= own
    assert set(_ptrs(policy_op).values()) | set(_ptrs(value_op).values()) == set(_ptrs(op).values())
    assert op.get_policy_head() is policy and op.get_value_head() is value


def test_in_place_change_is_seen_by_all():
    op = _operator()
    value_op = op.get_value_operator()
    td = TensorDict(observation=torch.randn(5, 4), batch_size=[5])
    before = value_op(td.clone())["state_value"]
    with torch.no_grad():
        op.module[0].module.bias.add_(1.0)  # shared trunk
        op.module[2].module.bias.add_(2.0)  # value head
    after_op = op(td.clone())["state_value"]
    after_standalone = value_op(td.clone())["state_value"]
    torch.testing.assert_close(after_op, after_standalone)
    assert not torch.allclose(before, after_standalone)


def test_policy_operator_is_probabilistic_with_spec_and_no_value():
    op = _operator()
    policy_op = op.get_policy_operator()
    assert isinstance(policy_op, ProbabilisticTensorDictSequential)
    assert isinstance(policy_op.spec, Categorical)
    td = policy_op(TensorDict(observation=torch.randn(5, 4), batch_size=[5]))
    assert "state_value" not in td.keys() and td["action"].shape == (5,)
    dist = policy_op.get_dist(td)
    torch.testing.assert_close(dist.log_prob(td["action"]), td["action_log_prob"])
    value_td = op.get_value_operator()(TensorDict(observation=torch.randn(5, 4), batch_size=[5]))
    assert "action" not in value_td.keys() and value_td["state_value"].shape == (5, 1)


def test_deterministic_policy_operator():
    common = TensorDictModule(nn.Linear(4, 8), in_keys=["observation"], out_keys=["hidden"])
    policy = TensorDictModule(nn.Linear(8, 2), in_keys=["hidden"], out_keys=["action"])
    op = ActorValueOperator(common, policy, ValueOperator(nn.Linear(8, 1), in_keys=["hidden"]))
    td = op.get_policy_operator()(TensorDict(observation=torch.randn(3, 4), batch_size=[3]))
    assert sorted(td.keys()) == ["action", "hidden", "observation"]


def test_needs_tensordict_modules():
    with pytest.raises(TypeError, match="the value operator must be a TensorDict module, got Linear"):
        ActorValueOperator(
            TensorDictModule(nn.Linear(4, 8), ["observation"], ["hidden"]),
            TensorDictModule(nn.Linear(8, 2), ["hidden"], ["action"]),
            nn.Linear(8, 1),
        )
