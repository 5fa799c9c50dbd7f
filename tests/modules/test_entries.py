"""entry_function: a policy on plain dicts gives the TensorDict call's outputs and random draws."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn

from rlkit.data import Categorical, OneHot
from rlkit.modules import (
    MLP,
    DistributionalQValueActor,
    EGreedyModule,
    ExplorationType,
    ProbabilisticActor,
    QValueActor,
    QValueModule,
    SafeModule,
    TanhNormal,
    ValueOperator,
    set_exploration_type,
)
from rlkit.modules import Categorical as CategoricalDist
from rlkit.modules._entries import entry_function


def _dqn_policy(mask: bool = False, spec=None) -> TensorDictSequential:
    spec = spec or Categorical(3)
    mask_key = "action_mask" if mask else None
    actor = QValueActor(MLP(4, 3, [8]), spec=spec, action_mask_key=mask_key)
    return TensorDictSequential(actor, EGreedyModule(spec, eps_init=0.5, action_mask_key=mask_key))


def _a2c_actor() -> ProbabilisticActor:
    logits = TensorDictModule(MLP(4, 3, [8], activation_class=nn.Tanh), ["observation"], ["logits"])
    return ProbabilisticActor(logits, ["logits"], distribution_class=CategoricalDist, return_log_prob=True)


class _LocScale(nn.Module):
    def forward(self, obs: torch.Tensor):
        return obs[..., :2], obs[..., 2:].abs() + 0.1


POLICIES = {
    "dqn": lambda: _dqn_policy(),
    "dqn-masked": lambda: _dqn_policy(mask=True),
    "dqn-one-hot": lambda: _dqn_policy(spec=OneHot(3)),
    "c51": lambda: DistributionalQValueActor(nn.Sequential(nn.Linear(4, 15), nn.Unflatten(-1, (5, 3))),
                                             torch.linspace(-1, 1, 5), spec=Categorical(3)),
    "a2c": _a2c_actor,
    "tanh-normal": lambda: ProbabilisticActor(
        TensorDictModule(_LocScale(), ["observation"], ["loc", "scale"]), ["loc", "scale"],
        distribution_class=TanhNormal, return_log_prob=True),
    "value": lambda: ValueOperator(nn.Linear(4, 1)),
}


def _inputs(mask: bool) -> dict:
    entries = {"observation": torch.randn(6, 4)}
    if mask:
        allowed = torch.rand(6, 3) > 0.5
        allowed[:, 1] = True
        entries["action_mask"] = allowed
    return entries


@pytest.mark.parametrize("name", list(POLICIES))
@pytest.mark.parametrize("kind", [ExplorationType.RANDOM, ExplorationType.DETERMINISTIC, None])
def test_same_outputs_and_random_draws_as_the_tensordict_call(name, kind):
    policy = POLICIES[name]()
    run = entry_function(policy)
    assert run is not None
    for seed in range(3):
        entries = _inputs(mask=name == "dqn-masked")
        td = TensorDict(dict(entries), batch_size=[6])
        with set_exploration_type(kind), torch.no_grad():
            torch.manual_seed(seed)
            expected = policy(td)
            after_td = torch.rand(())  # the generator advanced by the same draws
            torch.manual_seed(seed)
            run(entries)
            after_entries = torch.rand(())
        assert set(entries) == set(expected.keys(True, True))
        for key, value in entries.items():
            torch.testing.assert_close(value, expected[key], rtol=0, atol=0)
        assert after_td == after_entries


def test_unsupported_structures_keep_the_tensordict_call():
    hooked = ValueOperator(nn.Linear(4, 1))
    hooked.register_forward_hook(lambda module, args, out: out)
    assert entry_function(hooked) is None
    assert entry_function(TensorDictModule(nn.Linear(4, 1), ["observation"], ["v"], inplace=False)) is None
    assert entry_function(SafeModule(nn.Identity(), ["observation"], ["y"], spec=Categorical(2), safe=True)) is None
    assert entry_function(TensorDictModule(nn.Linear(4, 1), in_keys={"input": "observation"}, out_keys=["v"])) is None
    assert entry_function(TensorDictSequential(hooked, inplace=False)) is None
    assert entry_function(lambda td: td) is None

    class OwnForward(QValueModule):
        def forward(self, tensordict):
            return tensordict

    assert entry_function(OwnForward("categorical")) is None  # the inherited entry function would be wrong


def test_missing_entries_and_bad_outputs_are_named():
    with pytest.raises(KeyError, match=r"ValueOperator reads \['observation'\], which are missing; keys present: \['obs'\]"):
        entry_function(ValueOperator(nn.Linear(4, 1)))({"obs": torch.zeros(1, 4)})
    with pytest.raises(KeyError, match=r"QValueModule reads the action values from 'action_value', which is missing; keys present: \['q'\]"):
        entry_function(QValueModule("categorical"))({"q": torch.zeros(1, 2)})
    with pytest.raises(KeyError, match=r"EGreedyModule reads the action from 'action', which is missing; keys present: \['q'\]"):
        entry_function(EGreedyModule(Categorical(2)))({"q": torch.zeros(1, 2)})
    with pytest.raises(KeyError, match=r"EGreedyModule reads the action mask from 'action_mask', which is missing"):
        entry_function(EGreedyModule(Categorical(2), action_mask_key="action_mask"))({"action": torch.zeros(1).long()})
    two = TensorDictModule(lambda obs: obs, ["observation"], ["a", "b"])
    with pytest.raises(ValueError, match=r"TensorDictModule writes \['a', 'b'\] but its module returned Tensor"):
        entry_function(two)({"observation": torch.zeros(1, 4)})


@pytest.mark.parametrize("name", list(POLICIES))
@pytest.mark.parametrize("kind", [ExplorationType.RANDOM, ExplorationType.DETERMINISTIC])
def test_outputs_hint_keeps_the_named_entries_and_the_random_draws(name, kind):
    # Asked for the action alone, a module may skip other outputs; what it writes is unchanged.
    policy = POLICIES[name]()
    full, lean = entry_function(policy), entry_function(policy, outputs=["action"])
    wanted = "action" if "action" in policy.out_keys else policy.out_keys[-1]
    lean = lean if wanted == "action" else entry_function(policy, outputs=[wanted])
    entries = _inputs(mask=name == "dqn-masked")
    with set_exploration_type(kind), torch.no_grad():
        torch.manual_seed(0)
        a = dict(entries)
        full(a)
        after_full = torch.rand(())
        torch.manual_seed(0)
        b = dict(entries)
        lean(b)
        after_lean = torch.rand(())
    assert set(b) <= set(a)
    torch.testing.assert_close(b[wanted], a[wanted], rtol=0, atol=0)
    assert after_full == after_lean


@pytest.mark.parametrize("actor", [
    lambda: QValueActor(MLP(4, 3, [8]), spec=Categorical(3)),
    lambda: DistributionalQValueActor(nn.Sequential(nn.Linear(4, 15), nn.Unflatten(-1, (5, 3))),
                                      torch.linspace(-1, 1, 5), spec=Categorical(3)),
])
def test_q_value_heads_asked_for_the_action_skip_their_other_outputs(actor):
    entries = {"observation": torch.randn(6, 4)}
    entry_function(actor(), outputs=["action"])(entries)
    assert sorted(entries) == ["action", "action_value", "observation"]  # the net's output, no chosen value
    module = actor()
    entries = {"observation": torch.randn(6, 4)}
    entry_function(module, outputs=list(module.out_keys))(entries)  # asked for everything: all written
    assert sorted(entries) == sorted(["observation", *module.out_keys])
