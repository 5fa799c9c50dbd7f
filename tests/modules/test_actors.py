"""Actor, SafeModule, ValueOperator, ProbabilisticActor."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlkit.data import Bounded, Categorical, Composite
from rlkit.modules import (
    Actor,
    ExplorationType,
    OneHotCategorical,
    ProbabilisticActor,
    QValueActor,
    SafeModule,
    ValueOperator,
    set_exploration_type,
)
from rlkit.modules import Categorical as CategoricalDist


def _obs(batch: int = 3) -> TensorDict:
    return TensorDict(observation=torch.randn(batch, 4), batch_size=[batch])


def test_actor_and_value_operator_default_keys():
    actor = Actor(nn.Linear(4, 2))
    assert actor.in_keys == ["observation"] and actor.out_keys == ["action"]
    value = ValueOperator(nn.Linear(4, 1))
    assert value.in_keys == ["observation"] and value.out_keys == ["state_value"]
    td = value(actor(_obs()))
    assert td["action"].shape == (3, 2) and td["state_value"].shape == (3, 1)


def test_safe_module_projects_only_when_safe():
    spec = Bounded(-1.0, 1.0, (2,))
    x = torch.tensor([[3.0, -0.5]])
    unsafe = SafeModule(nn.Identity(), ["x"], ["y"], spec=spec)
    assert unsafe(TensorDict(x=x, batch_size=[1]))["y"].tolist() == [[3.0, -0.5]]
    safe = SafeModule(nn.Identity(), ["x"], ["y"], spec=spec, safe=True)
    assert safe(TensorDict(x=x, batch_size=[1]))["y"].tolist() == [[1.0, -0.5]]
    assert safe(x).tolist() == [[1.0, -0.5]]  # tensor call
    composite = SafeModule(nn.Identity(), ["x"], ["y"], spec=Composite(y=spec), safe=True)
    assert composite(TensorDict(x=x, batch_size=[1]))["y"].tolist() == [[1.0, -0.5]]


def test_safe_module_errors():
    with pytest.raises(TypeError, match="spec must be a TensorSpec, got str"):
        SafeModule(nn.Identity(), ["x"], ["y"], spec="bounded")
    with pytest.raises(ValueError, match="safe=True projects outputs onto a spec, but no spec was given"):
        SafeModule(nn.Identity(), ["x"], ["y"], safe=True)


def _logits_module(n: int = 3) -> TensorDictModule:
    return TensorDictModule(nn.Linear(4, n), in_keys=["observation"], out_keys=["logits"])


def test_probabilistic_actor_categorical_log_prob_key_and_get_dist():
    module = _logits_module()
    actor = ProbabilisticActor(module, ["logits"], spec=Categorical(3), distribution_class=CategoricalDist, return_log_prob=True)
    assert isinstance(actor.spec, Categorical)
    td = actor(_obs(6))
    assert td["action"].shape == (6,) and td["action"].dtype == torch.int64
    dist = actor.get_dist(td)
    torch.testing.assert_close(td["action_log_prob"], dist.log_prob(td["action"]))
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        greedy = actor(_obs(6))
    assert torch.equal(greedy["action"], greedy["logits"].argmax(-1))


def test_probabilistic_actor_one_hot_and_mode():
    actor = ProbabilisticActor(_logits_module(), ["logits"], distribution_class=OneHotCategorical)
    with set_exploration_type("mode"):
        td = actor(_obs(4))
    assert torch.equal(td["action"].argmax(-1), td["logits"].argmax(-1)) and (td["action"].sum(-1) == 1).all()


def test_probabilistic_actor_unset_means_random():
    # The logits make both actions equally likely: a sampled action varies, a deterministic one does not.
    module = TensorDictModule(lambda obs: torch.zeros(obs.shape[0], 2), in_keys=["observation"], out_keys=["logits"])
    actor = ProbabilisticActor(module, ["logits"], distribution_class=CategoricalDist)
    assert actor(_obs(200))["action"].float().mean().item() == pytest.approx(0.5, abs=0.15)
    with set_exploration_type("deterministic"):
        assert (actor(_obs(200))["action"] == 0).all()
    pinned = ProbabilisticActor(module, ["logits"], distribution_class=CategoricalDist, default_interaction_type="deterministic")
    assert (pinned(_obs(200))["action"] == 0).all()


def test_probabilistic_actor_custom_out_key_log_prob():
    actor = ProbabilisticActor(_logits_module(), {"logits": "logits"}, out_keys=[("agent", "act")],
                               distribution_class=CategoricalDist, return_log_prob=True)
    td = actor(_obs())
    assert ("agent", "act_log_prob") in td.keys(include_nested=True)


def test_probabilistic_actor_needs_td_module():
    with pytest.raises(TypeError, match="needs a TensorDict module writing the distribution parameters"):
        ProbabilisticActor(nn.Linear(4, 3), ["logits"], distribution_class=CategoricalDist)


def test_the_tensordict_call_honours_tensordict_out_and_params_and_refuses_other_arguments():
    """rlkit modules dropped every argument after the TensorDict: ``params=`` (seed 002's
    ``qvalue_actor(td, params=params)``) computed with the module's own weights, ``tensordict_out=``
    was ignored, a misspelt keyword passed unseen. tensordict's own modules write into
    ``tensordict_out`` and refuse unknown keywords; with ``params`` rlkit computes with them."""
    torch.manual_seed(0)
    actor = QValueActor(nn.Linear(3, 2), action_space="categorical")
    obs = torch.randn(5, 3)
    td = TensorDict(observation=obs, batch_size=[5])
    shifted = TensorDict.from_module(actor).apply(lambda p: p + 1.0)
    with torch.no_grad():
        expected = obs @ (actor.module[0].module.weight + 1).T + (actor.module[0].module.bias + 1)
    out = actor(td.clone(), params=shifted)
    assert torch.allclose(out["action_value"], expected) and torch.equal(out["action"], expected.argmax(-1))
    assert not torch.allclose(actor(td.clone())["action_value"], expected)  # (its own weights are back)
    assert torch.allclose(actor(obs, params=shifted)[1], expected)  # (the tensor call too)
    target = TensorDict(batch_size=[5])
    assert actor(td, tensordict_out=target) is target
    assert sorted(target.keys()) == ["action", "action_value", "chosen_action_value"] and list(td.keys()) == ["observation"]
    with pytest.raises(TypeError, match=r"^QValueActor called with a TensorDict takes no other argument than "
                                        r"tensordict_out= and params=; got \['bogus'\]$"):
        actor(td, bogus=3)
    with pytest.raises(TypeError, match=r"tensordict_out= goes with a TensorDict call"):
        actor(obs, tensordict_out=target)
    with pytest.raises(TypeError, match=r"either positionally or by name, not both"):
        actor(obs, observation=obs)
