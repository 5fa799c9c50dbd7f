"""LossModule: functional parameters, targets, keys, value estimators, state."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from loss_builders import build_a2c, build_dqn, transition_batch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlkit.modules import QValueActor
from rlkit.objectives import DQNLoss, LossModule, ValueEstimators, add_random_module
from rlkit.objectives._functional import RANDOM_MODULE_TYPES
from rlkit.objectives.value import GAE, TD0Estimator, TD1Estimator, TDLambdaEstimator


class MyLoss(LossModule):
    """The seed's example, as written."""

    @dataclass
    class _AcceptedKeys:
        action = "action"

    def _forward_value_estimator_keys(self, **kwargs) -> None:
        pass


def test_seed_example_and_set_keys_rules():
    loss = MyLoss()
    loss.set_keys(action="action2")
    assert loss.tensor_keys.action == "action2"
    loss.set_keys(action=None)
    assert loss.tensor_keys.action == "action"
    loss.set_keys(action_key=("nested", "action"))
    assert loss.tensor_keys.action == ("nested", "action")
    with pytest.raises(ValueError, match=r"MyLoss.set_keys got unknown key 'reward'; accepted keys: \['action'\]"):
        loss.set_keys(reward="r")
    with pytest.raises(ValueError, match="Key 'action' must be a string or a tuple of strings, got 3"):
        loss.set_keys(action=3)


def test_set_keys_is_atomic_and_reaches_the_estimator():
    loss = build_dqn()
    with pytest.raises(ValueError, match="unknown key 'bogus'"):
        loss.set_keys(reward="r", bogus="x")
    assert loss.tensor_keys.reward == "reward"
    loss.set_keys(reward="r")  # before the estimator exists
    assert loss.value_estimator.tensor_keys.reward == "r"
    loss.set_keys(terminated="term")  # after
    assert loss.value_estimator.tensor_keys.terminated == "term"


def test_convert_to_functional_shares_online_parameters_and_copies_targets():
    net = nn.Linear(4, 2)
    loss = DQNLoss(QValueActor(net, action_space="categorical"))
    names = [name for name, _ in loss.named_parameters()]
    assert names == ["value_network_params.module.0.module.weight", "value_network_params.module.0.module.bias"]
    # The loss trains the very parameters of the user's network (shared with a collector).
    assert loss.value_network_params["module", "0", "module", "weight"] is net.weight
    buffers = dict(loss.named_buffers())
    target = buffers["target_value_network_params.module.0.module.weight"]
    assert not isinstance(target, nn.Parameter) and torch.equal(target, net.weight)
    with torch.no_grad():
        net.weight.add_(1.0)
    assert not torch.equal(target, net.weight)
    assert loss.functional


def test_missing_target_is_a_detached_view():
    loss = build_dqn(delay_value=False)
    view = loss.target_value_network_params
    for key, value in view.items(True, True):
        assert not value.requires_grad and value.data_ptr() == loss.value_network_params[key].data_ptr()
    with pytest.raises(AttributeError):
        loss.target_other_params


def test_expand_dim_stacks_independent_copies_and_vmaps():
    loss = MyLoss()
    shared = nn.Linear(4, 3)
    net = TensorDictModule(nn.Sequential(shared, nn.ReLU(), nn.Linear(3, 2)), ["observation"], ["out"])
    loss.convert_to_functional(net, "net", expand_dim=3, compare_against=list(shared.parameters()))
    params = loss.net_params
    weight = params["module", "2", "weight"]
    assert isinstance(weight, nn.Parameter) and weight.shape == (3, 2, 3)
    assert not torch.equal(weight[0], weight[1])
    original = net.module[2].weight
    assert original.min() <= weight.min() and weight.max() <= original.max()
    # Entries shared with compare_against are detached expansions of the originals.
    first = params["module", "0", "weight"]
    assert not isinstance(first, nn.Parameter) and torch.equal(first[2], shared.weight)
    assert {name for name, _ in loss.named_parameters()} == {"net_params.module.2.weight", "net_params.module.2.bias"}
    td = TensorDict(observation=torch.randn(5, 4), batch_size=[5])
    out = loss._call_expanded("net", td)
    assert out["out"].shape == (3, 5, 2)
    with torch.no_grad():
        hidden = torch.relu(shared(td["observation"]))
        expected = hidden @ weight[1].transpose(0, 1) + params["module", "2", "bias"][1]
    torch.testing.assert_close(out["out"][1], expected)
    stateful = loss.get_stateful_net("net")
    assert stateful.module[2].weight.shape == (3, 2, 3) and stateful.module[2].weight is not weight
    assert torch.equal(stateful.module[2].weight, weight)
    with torch.no_grad():
        stateful.module[2].weight.mul_(0.0)  # e.g. a custom initialisation, loaded back
    loss.from_stateful_net("net", stateful)
    assert (weight == 0).all()
    assert loss.get_stateful_net("net", copy=False).module[2].weight is weight


def test_expand_dim_errors():
    loss = MyLoss()
    with pytest.raises(ValueError, match="expand_dim must be a positive integer or None, got 0"):
        loss.convert_to_functional(nn.Linear(2, 2), "net", expand_dim=0)
    dqn = build_dqn()
    with pytest.raises(ValueError, match="Network 'value_network' was not converted with expand_dim"):
        dqn._call_expanded("value_network", TensorDict())


def test_stateful_net_round_trip():
    loss = build_dqn()
    copy = loss.get_stateful_net("value_network")
    assert copy is not loss.value_network
    assert loss.get_stateful_net("value_network", copy=False) is loss.value_network
    with torch.no_grad():
        for p in copy.parameters():
            p.mul_(2.0)
    loss.from_stateful_net("value_network", copy)
    for (_, mine), theirs in zip(loss.named_parameters(), copy.parameters()):
        assert torch.equal(mine, theirs) and mine is not theirs
    with pytest.raises(ValueError, match=r"Unknown network 'critic'; this loss holds: \['value_network'\]"):
        loss.get_stateful_net("critic")
    with pytest.raises(ValueError, match="the network's entries differ; missing"):
        loss.from_stateful_net("value_network", nn.Linear(4, 2))
    wide = QValueActor(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2)), action_space="categorical")
    narrow = build_dqn()  # MLP(4, 2, [16]) has the same layout
    wide.module[0].module[0].weight.data = torch.zeros(8, 4)
    with pytest.raises(ValueError, match=r"has shape \(8, 4\), expected \(16, 4\)"):
        narrow.from_stateful_net("value_network", wide)


def test_make_value_estimator_accepts_enum_name_class_and_instance():
    loss = build_dqn()
    assert isinstance(loss.value_estimator, TD0Estimator) and loss.value_type is ValueEstimators.TD0
    assert loss.value_estimator.gamma.item() == pytest.approx(0.99)
    requests = [
        (ValueEstimators.TD1, TD1Estimator),
        ("TDLambda", TDLambdaEstimator),
        ("td_LAMBDA", TDLambdaEstimator),
        (TD1Estimator, TD1Estimator),
    ]
    for spec, cls in requests:
        assert isinstance(loss.make_value_estimator(spec, gamma=0.5).value_estimator, cls)
        assert loss.value_estimator.gamma.item() == 0.5
    instance = TD0Estimator(gamma=0.3)
    loss.value_estimator = instance
    assert loss.value_estimator is instance and loss.value_type is ValueEstimators.TD0


def test_a_loss_that_declares_only_its_default_estimator_is_told_to_declare_the_supported_ones():
    """A loss ported from TorchRL sets ``default_value_estimator`` alone; rlkit's losses declare the
    estimators they support, and the refusal said "supported: []"."""

    class DefaultOnly(LossModule):
        default_value_estimator = ValueEstimators.TD0

        def forward(self, tensordict):
            return tensordict

    with pytest.raises(ValueError, match=r"^DefaultOnly declares no supported_value_estimators: set that class "
                                         r"attribute .*default_value_estimator alone does not declare them$"):
        DefaultOnly().make_value_estimator(gamma=0.9)


def test_make_value_estimator_errors():
    loss = build_dqn()
    supported = r"supported: \['td0', 'td1', 'td_lambda'\]"
    with pytest.raises(ValueError, match=rf"DQNLoss does not support the 'gae' value estimator; {supported}"):
        loss.make_value_estimator("gae")
    with pytest.raises(ValueError, match="does not support the 'gae'"):
        loss.make_value_estimator(GAE)
    valid = r"valid choices: \['td0', 'td1', 'td_lambda', 'gae'\]"
    with pytest.raises(ValueError, match=rf"Unknown value estimator 'td2'; {valid}"):
        loss.make_value_estimator("td2")
    with pytest.raises(ValueError, match="Linear is not a known value estimator class"):
        loss.make_value_estimator(nn.Linear)
    with pytest.raises(ValueError, match=r"Hyperparameters \['gamma'\] cannot be applied to an estimator instance"):
        loss.make_value_estimator(TD0Estimator(gamma=0.3), gamma=0.5)


def test_vmap_randomness_default_detection_and_setter():
    assert build_dqn().vmap_randomness == "error"
    loss = DQNLoss(QValueActor(nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.1)), action_space="categorical"))
    assert loss.vmap_randomness == "different"
    loss.vmap_randomness = "same"
    assert loss.vmap_randomness == "same"
    valid = r"valid choices: \['error', 'same', 'different'\]"
    with pytest.raises(ValueError, match=rf"Unknown vmap_randomness 'random'; {valid}"):
        loss.vmap_randomness = "random"

    class Noisy(nn.Linear):
        pass

    add_random_module(Noisy)
    try:
        assert DQNLoss(QValueActor(Noisy(4, 2), action_space="categorical")).vmap_randomness == "different"
    finally:
        RANDOM_MODULE_TYPES.remove(Noisy)


def test_state_dict_holds_each_tensor_once_and_round_trips():
    source, dest = build_a2c(), build_a2c()
    source.make_value_estimator("gae", gamma=0.5, lmbda=0.5)
    keys = list(source.state_dict())
    assert all(k.startswith(("actor_network_params.", "critic_network_params.", "_value_estimator.")) for k in keys)
    dest.make_value_estimator("gae")
    dest.load_state_dict(source.state_dict())
    td = transition_batch((2, 3))
    torch.testing.assert_close(dest(td.clone())["loss_critic"], source(td.clone())["loss_critic"])
    assert dest.value_estimator.gamma.item() == 0.5
    wrapper = nn.ModuleDict({"loss": build_dqn()})
    result = wrapper.load_state_dict(nn.ModuleDict({"loss": build_dqn()}).state_dict())
    assert not result.missing_keys and not result.unexpected_keys


def test_a_state_saved_after_the_estimator_was_built_loads_into_a_fresh_loss():
    """The value estimator is built lazily (at the first forward): a fresh loss builds the default
    one to load a state that holds it; an estimator of another kind is named as the difference."""
    trained = build_dqn()
    trained(transition_batch((4,)))  # builds the default estimator (its gamma is in the state from now on)
    fresh = build_dqn()
    fresh.load_state_dict(trained.state_dict())
    assert fresh.value_estimator.gamma.item() == trained.value_estimator.gamma.item()
    other = build_dqn().make_value_estimator("td_lambda")
    with pytest.raises(RuntimeError, match=r"unexpected '_value_estimator\.lmbda'|lacks '_value_estimator\.lmbda'"):
        trained.load_state_dict(other.state_dict())
    with pytest.raises(RuntimeError, match=r"the value estimators differ: build the saved loss's one with "
                                           r"make_value_estimator"):
        trained.load_state_dict(other.state_dict())


def test_train_eval_reaches_the_target_copy():
    loss = DQNLoss(QValueActor(nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.5)), action_space="categorical"))
    loss.eval()
    target = loss._functional_nets["value_network"].target_module
    assert not any(m.training for m in target.modules())
    td = TensorDict(observation=torch.ones(2, 4), batch_size=[2])
    first = loss._call_target("value_network", td.clone())["action_value"]
    torch.testing.assert_close(first, loss._call_target("value_network", td.clone())["action_value"])
    loss.train()
    assert all(m.training for m in target.modules())
