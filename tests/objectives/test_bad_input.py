"""Bad input to the losses and estimators is refused by name: batches whose entries have another
layout than the networks' (most gave a finite, wrong loss before), missing entries, and arguments
out of range."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlkit.data import OneHot
from rlkit.modules import (
    Categorical,
    DistributionalQValueActor,
    ProbabilisticActor,
    QValueActor,
    ValueOperator,
    check_action_layout,
)
from rlkit.objectives import A2CLoss, DistributionalDQNLoss, DQNLoss


def batch(b: int, action: torch.Tensor | None = None, seed: int = 1) -> TensorDict:
    g = torch.Generator().manual_seed(seed)
    nxt = {"observation": torch.randn(b, 4, generator=g), "reward": torch.ones(b, 1),
           "done": torch.zeros(b, 1, dtype=torch.bool), "terminated": torch.zeros(b, 1, dtype=torch.bool)}
    obs = torch.randn(b, 4, generator=g)
    act = torch.randint(2, (b,), generator=g) if action is None else action
    return TensorDict({"observation": obs, "action": act, "next": nxt}, batch_size=[b])


def hand_dqn(net: nn.Linear, td: TensorDict) -> float:
    with torch.no_grad():
        q = net(td["observation"]).gather(-1, td["action"].reshape(-1, 1))
        target = 1 + 0.99 * net(td["next", "observation"]).max(-1, keepdim=True).values
        return float(((q - target) ** 2).mean())


def test_dqn_takes_index_actions_of_either_shape_and_one_hot_actions_for_a_one_hot_head():
    torch.manual_seed(0)
    net = nn.Linear(4, 2)
    loss = DQNLoss(QValueActor(net, action_space="categorical"), delay_value=False)
    td = batch(8)
    expected = hand_dqn(net, td)
    assert float(loss(td.clone())["loss_value"].detach()) == pytest.approx(expected)
    assert float(loss(batch(8, td["action"][:, None]))["loss_value"].detach()) == pytest.approx(expected)
    assert float(loss(batch(8, td["action"].int()))["loss_value"].detach()) == pytest.approx(expected)
    one_hot = DQNLoss(QValueActor(net, spec=OneHot(2)), delay_value=False)
    assert float(one_hot(batch(8, F.one_hot(td["action"], 2)))["loss_value"].detach()) == pytest.approx(expected)


@pytest.mark.parametrize(("space", "b", "action", "wanted"), [
    ("categorical", 8, lambda a: F.one_hot(a, 2), r"integer indices of shape \(8,\) or \(8, 1\)"),
    ("categorical", 8, lambda a: a.float(), r"integer indices"),
    ("categorical", 8, lambda a: a.bool(), r"integer indices"),
    # B == A: index actions into a one-hot head broadcast silently before
    ("one-hot", 2, lambda a: a, r"a tensor of shape \(2, 2\) \(one entry per action\)"),
])
def test_dqn_refuses_an_action_of_another_layout(space, b, action, wanted):
    net = nn.Linear(4, 2)
    actor = QValueActor(net, action_space="categorical") if space == "categorical" else QValueActor(net, spec=OneHot(2))
    td = batch(b)
    td["action"] = action(td["action"])
    with pytest.raises(ValueError, match=rf"the 'action' entry has shape .* a '{space}' action space takes {wanted}"):
        DQNLoss(actor, delay_value=False)(td)


def test_a_missing_action_is_named():
    with pytest.raises(KeyError, match="the batch has no 'action' entry"):
        DQNLoss(QValueActor(nn.Linear(4, 2), action_space="categorical"))(batch(3).exclude("action"))
    with pytest.raises(KeyError, match="A2CLoss needs the actions taken under 'action'"):
        a2c_loss()(time_batch().exclude("action"))


def test_an_action_space_that_disagrees_with_the_actor_is_refused_at_construction():
    actor = QValueActor(nn.Linear(4, 2), action_space="categorical")
    with pytest.raises(ValueError, match="action_space='one-hot' disagrees with the network's own action space "
                                         "'categorical'"):
        DQNLoss(actor, action_space="one-hot")
    assert DQNLoss(actor, action_space="categorical").action_space == "categorical"


def c51_actor(space: str) -> DistributionalQValueActor:
    module = nn.Sequential(nn.Linear(4, 2 * 5), nn.Unflatten(-1, (5, 2)))
    spec = OneHot(2) if space == "one-hot" else None
    kwargs = {"spec": spec} if spec is not None else {"action_space": "categorical"}
    return DistributionalQValueActor(module, torch.linspace(-1, 1, 5), **kwargs)


def test_c51_refuses_an_action_of_another_layout_and_checks_gamma_when_built():
    td = batch(2)
    one_hot_batch = batch(2, F.one_hot(td["action"], 2))
    assert torch.isfinite(DistributionalDQNLoss(c51_actor("categorical"))(td.clone())["loss_value"])
    assert torch.isfinite(DistributionalDQNLoss(c51_actor("one-hot"))(one_hot_batch.clone())["loss_value"])
    with pytest.raises(ValueError, match=r"a 'categorical' action space takes integer indices of shape \(2,\)"):
        DistributionalDQNLoss(c51_actor("categorical"))(one_hot_batch)
    with pytest.raises(ValueError, match=r"a 'one-hot' action space takes a tensor of shape \(2, 2\)"):
        DistributionalDQNLoss(c51_actor("one-hot"))(td)
    for gamma in (1.5, "x"):
        with pytest.raises(ValueError, match="gamma must"):
            DistributionalDQNLoss(c51_actor("categorical"), gamma=gamma)


def a2c_loss() -> A2CLoss:
    torch.manual_seed(0)
    actor = ProbabilisticActor(TensorDictModule(nn.Linear(4, 2), ["observation"], ["logits"]), ["logits"],
                               distribution_class=Categorical)
    return A2CLoss(actor, ValueOperator(nn.Linear(4, 1)), entropy_bonus=False)


def time_batch() -> TensorDict:
    g = torch.Generator().manual_seed(3)
    shape = (2, 2)
    nxt = {"observation": torch.randn(*shape, 4, generator=g), "reward": torch.ones(*shape, 1),
           "done": torch.zeros(*shape, 1, dtype=torch.bool), "terminated": torch.zeros(*shape, 1, dtype=torch.bool)}
    return TensorDict({"observation": torch.randn(*shape, 4, generator=g), "action": torch.randint(2, shape, generator=g),
                       "next": nxt}, batch_size=list(shape))


@pytest.mark.parametrize("layout", ["trailing one", "one-hot"])
def test_a2c_refuses_actions_that_give_one_log_probability_per_pair_of_samples(layout):
    loss, td = a2c_loss(), time_batch()
    assert torch.isfinite(loss(td.clone())["loss_objective"])
    td["action"] = td["action"][..., None] if layout == "trailing one" else F.one_hot(td["action"], 2)
    with pytest.raises(ValueError, match=r"gives log-probabilities of shape \(2, 2, 2\) .* the batch is \(2, 2\)"):
        loss(td)


def test_a2c_refuses_a_value_target_of_another_shape():
    loss, td = a2c_loss(), time_batch()
    td["advantage"] = torch.zeros(2, 2, 1)
    td["value_target"] = torch.ones(2, 2, 3)
    with pytest.raises(ValueError, match=r"the value target 'value_target' has shape \(2, 2, 3\); the critic's "
                                         r"values have shape \(2, 2, 1\)"):
        loss(td)
    td["value_target"] = torch.ones(2, 2, 1)
    assert torch.isfinite(loss(td)["loss_critic"])


def test_check_action_layout_returns_int64_indices():
    out = check_action_layout(torch.tensor([1, 0], dtype=torch.int32), torch.Size([2, 3]), "categorical")
    assert out.dtype == torch.int64 and out.tolist() == [1, 0]


@pytest.mark.parametrize(("support", "problem"), [
    (torch.linspace(1, -1, 5), "increasing, evenly spaced"),
    (torch.tensor([-1.0, 0.8, 1.0]), "increasing, evenly spaced"),
    (torch.zeros(5), "increasing, evenly spaced"),
    (torch.tensor([0.0, float("nan"), 1.0]), "at least 2 finite atoms"),
    (torch.tensor([1.0]), "at least 2 finite atoms"),
])
def test_c51_refuses_a_support_the_projection_cannot_use(support, problem):
    """A reversed or uneven support gave wrong targets (the projection reads v_min, v_max and the
    spacing from the ends); a constant or NaN one, an indexing error."""
    module = nn.Sequential(nn.Linear(4, 2 * support.numel()), nn.Unflatten(-1, (support.numel(), 2)))
    actor = DistributionalQValueActor(module, support, action_space="categorical")
    with pytest.raises(ValueError, match=f"the support must be .*{problem}"):
        DistributionalDQNLoss(actor)


def test_an_estimator_refusing_its_network_output_leaves_nothing_in_the_batch():
    """A value network of the wrong width is refused; its output is not left in the batch, where the
    next call (with a fixed network) would read it and be refused again."""
    from rlkit.objectives.value import GAE

    def td() -> TensorDict:
        g = torch.Generator().manual_seed(0)
        nxt = {"observation": torch.randn(2, 3, 3, generator=g), "reward": torch.ones(2, 3, 1),
               "done": torch.zeros(2, 3, 1, dtype=torch.bool), "terminated": torch.zeros(2, 3, 1, dtype=torch.bool)}
        return TensorDict({"observation": torch.randn(2, 3, 3, generator=g), "next": nxt}, batch_size=[2, 3])

    batch = td()
    wide = GAE(gamma=0.9, lmbda=0.9, value_network=TensorDictModule(nn.Linear(3, 2), ["observation"], ["state_value"]))
    with pytest.raises(ValueError, match=r"state value 'state_value' has shape \(2, 3, 2\), expected \(2, 3, 1\)"):
        wide(batch)
    assert sorted(map(str, batch.keys(True, True))) == sorted(map(str, td().keys(True, True)))
    right = GAE(gamma=0.9, lmbda=0.9, value_network=TensorDictModule(nn.Linear(3, 1), ["observation"], ["state_value"]))
    assert right(batch)["advantage"].shape == (2, 3, 1)


def test_flags_that_must_be_combined_must_be_bool():
    from rlkit.objectives.value import TD1Estimator

    nxt = {"state_value": torch.zeros(2, 3, 1), "reward": torch.zeros(2, 3, 1),
           "terminated": torch.zeros(2, 3, 1, dtype=torch.bool), "truncated": torch.zeros(2, 3, 1)}
    td = TensorDict({"state_value": torch.zeros(2, 3, 1), "next": nxt}, batch_size=[2, 3])
    with pytest.raises(ValueError, match=r"TD1Estimator needs bool flags; \('next', 'truncated'\) has dtype torch.float32"):
        TD1Estimator(gamma=0.5)(td)
    td["next", "truncated"] = torch.zeros(2, 3, 1, dtype=torch.bool)
    assert TD1Estimator(gamma=0.5)(td)["advantage"].shape == (2, 3, 1)


def test_c51_without_terminated_needs_a_bool_done():
    loss = DistributionalDQNLoss(c51_actor("categorical"))
    td = batch(2).exclude(("next", "terminated"))
    assert torch.isfinite(loss(td.clone())["loss_value"])
    with pytest.raises(KeyError, match=r"needs the terminated flag \('next', 'terminated'\) \(or the done flag"):
        loss(td.exclude(("next", "done")))
    td["next", "done"] = torch.zeros(2, 1)
    with pytest.raises(ValueError, match=r"needs bool flags; \('next', 'done'\) has dtype torch.float32"):
        loss(td)


@pytest.mark.parametrize("missing", ["observation", ("next", "observation")])
def test_a_missing_network_input_is_named(missing):
    for loss in (DQNLoss(QValueActor(nn.Linear(4, 2), action_space="categorical")),
                 DistributionalDQNLoss(c51_actor("categorical"))):
        with pytest.raises(KeyError, match=r"reads the input from .{1,2}observation.{1,2}, which is missing; keys present"):
            loss(batch(3).exclude(missing))


def test_make_value_estimator_names_an_unknown_hyperparameter():
    loss = DQNLoss(QValueActor(nn.Linear(4, 2), action_space="categorical"))
    with pytest.raises(ValueError, match=r"the 'td0' value estimator \(TD0Estimator\) takes no \['gama'\] \(did you "
                                         r"mean 'gamma' for 'gama'\?\); its hyperparameters: \['gamma', 'value_network', 'differentiable'\]"):
        loss.make_value_estimator("td0", gama=0.9)
    with pytest.raises(ValueError, match=r"takes no \['lmbda'\]"):
        loss.make_value_estimator("td0", gamma=0.9, lmbda=0.5)
    loss.make_value_estimator("td_lambda", gamma=0.9, lmbda=0.5)


def test_loss_arguments_out_of_range_are_refused_by_name():
    """``double_dqn="false"`` switched double DQN on; a NaN entropy coefficient made every loss NaN."""
    actor = QValueActor(nn.Linear(4, 2), action_space="categorical")
    with pytest.raises(ValueError, match=r"DQNLoss: double_dqn='false' is invalid; expected True or False"):
        DQNLoss(actor, double_dqn="false")
    with pytest.raises(ValueError, match=r"DistributionalDQNLoss: delay_value=1 is invalid"):
        DistributionalDQNLoss(c51_actor("categorical"), delay_value=1)
    torch.manual_seed(0)
    policy = ProbabilisticActor(TensorDictModule(nn.Linear(4, 2), ["observation"], ["logits"]), ["logits"],
                                distribution_class=Categorical)
    for kwargs, message in [({"entropy_coeff": float("nan")}, "entropy_coeff=nan"), ({"critic_coeff": -1}, "critic_coeff=-1"),
                            ({"entropy_coeff": "abc"}, "entropy_coeff='abc'")]:
        with pytest.raises(ValueError, match=rf"A2CLoss: {message} is invalid; expected a finite number >= 0"):
            A2CLoss(policy, ValueOperator(nn.Linear(4, 1)), **kwargs)


def test_one_hot_actions_must_be_one_hot_and_batches_not_empty():
    net = nn.Linear(4, 2)
    loss = DQNLoss(QValueActor(net, spec=OneHot(2)), delay_value=False)
    for rows in (torch.full((3, 2), 3), torch.ones(3, 2, dtype=torch.int64)):
        with pytest.raises(ValueError, match=r"the 'action' entry is not a 'one-hot' action: it must hold exactly one 1 "
                                             r"per row, 0 elsewhere"):
            loss(batch(3, rows))
    with pytest.raises(ValueError, match=r"DQNLoss got an empty batch \(batch_size \[0\]\); a loss needs at least one"):
        loss(batch(0, torch.zeros(0, 2, dtype=torch.int64)))



def test_legitimate_arguments_of_other_scalar_kinds_are_taken():
    """A value network of the caller's own, numpy flags, one-element tensors, float16 supports."""
    from rlkit.objectives.value import GAE

    policy = ProbabilisticActor(TensorDictModule(nn.Linear(4, 2), ["observation"], ["logits"]), ["logits"],
                                distribution_class=Categorical)
    loss = A2CLoss(policy, ValueOperator(nn.Linear(4, 1)), entropy_coeff=torch.tensor(0.5), separate_losses=np.bool_(False))
    assert loss.entropy_coeff == 0.5 and loss.separate_losses is False
    other = ValueOperator(nn.Linear(4, 1))
    loss.make_value_estimator("gae", gamma=0.9, lmbda=0.9, value_network=other)
    assert isinstance(loss.value_estimator, GAE) and loss.value_estimator.value_network is other
    half = torch.linspace(-10, 10, 51).half()
    module = nn.Sequential(nn.Linear(4, 2 * 51), nn.Unflatten(-1, (51, 2)))
    DistributionalDQNLoss(DistributionalQValueActor(module, half, action_space="categorical"))


def test_check_support_takes_an_integer_support():
    from rlkit.objectives.value.functional import check_support

    check_support(torch.arange(-5, 6))


def test_a2c_refuses_float_actions_for_a_categorical_policy():
    """torch's Categorical.log_prob truncated 0.7 to action 0."""
    loss, td = a2c_loss(), time_batch()
    td["action"] = td["action"].float() + 0.7
    with pytest.raises(ValueError, match=r"the 'action' entry holds torch.float32 values; a categorical policy's "
                                         r"actions are integer indices"):
        loss(td)
