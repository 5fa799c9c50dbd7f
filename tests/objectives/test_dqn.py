"""DQNLoss against hand-written references, action spaces, priorities and estimator rules."""
from __future__ import annotations

import pytest
import torch
from loss_builders import transition_batch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule, TensorDictSequential
from torch import nn

from rlkit.data import Binary, Bounded, Categorical, Composite, MultiOneHot, OneHot
from rlkit.modules import EGreedyModule, QValueActor
from rlkit.objectives import DQNLoss, HardUpdate, ValueEstimators

W_ONLINE = torch.tensor([[0.5, -1.0, 0.25, 2.0], [-0.75, 0.5, 1.5, -0.5]])
B_ONLINE = torch.tensor([0.1, -0.2])
W_TARGET = torch.tensor([[1.0, 0.5, -0.5, 0.25], [0.25, -1.0, 1.0, 0.75]])
B_TARGET = torch.tensor([-0.3, 0.4])


def fixed_loss(**kwargs) -> DQNLoss:
    net = nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(W_ONLINE)
        net.bias.copy_(B_ONLINE)
    loss = DQNLoss(QValueActor(net, action_space=kwargs.pop("action_space", "categorical")), **kwargs)
    if not loss.delay_value:
        return loss
    target = loss.target_value_network_params
    with torch.no_grad():
        target["module", "0", "module", "weight"].copy_(W_TARGET)
        target["module", "0", "module", "bias"].copy_(B_TARGET)
    return loss


def reference_target(td: TensorDict, gamma: float, double: bool) -> torch.Tensor:
    next_obs = td["next", "observation"]
    q_target = next_obs @ W_TARGET.T + B_TARGET
    if double:
        best = (next_obs @ W_ONLINE.T + B_ONLINE).argmax(-1, keepdim=True)
        next_value = q_target.gather(-1, best)
    else:
        next_value = q_target.max(-1, keepdim=True).values
    alive = (~td["next", "terminated"]).float()
    return td["next", "reward"] + gamma * alive * next_value


def reference_pred(td: TensorDict) -> torch.Tensor:
    q = td["observation"] @ W_ONLINE.T + B_ONLINE
    return q.gather(-1, td["action"].unsqueeze(-1))


def mixed_batch() -> TensorDict:
    terminated = torch.tensor([False, True, False, False, True, False, False, False])
    truncated = torch.tensor([False, False, True, False, False, False, True, False])
    return transition_batch((8,), terminated=terminated, truncated=truncated)


@pytest.mark.parametrize(
    "loss_function, distance",
    [
        ("l2", lambda d: d**2),
        ("l1", lambda d: d.abs()),
        ("smooth_l1", lambda d: torch.where(d.abs() < 1, 0.5 * d**2, d.abs() - 0.5)),
    ],
)
@pytest.mark.parametrize("double", [False, True])
def test_dqn_equals_reference(loss_function, distance, double):
    loss = fixed_loss(loss_function=loss_function, double_dqn=double)
    loss.make_value_estimator(gamma=0.9)
    td = mixed_batch()
    out = loss(td)
    diff = reference_target(td, 0.9, double) - reference_pred(td)
    torch.testing.assert_close(out["loss_value"], distance(diff).mean())
    torch.testing.assert_close(td["td_error"], diff.abs())


def test_double_dqn_differs_from_vanilla_as_the_formula_says():
    td = mixed_batch()
    vanilla, double = fixed_loss(reduction="none"), fixed_loss(reduction="none", double_dqn=True)
    next_obs = td["next", "observation"]
    q_target = next_obs @ W_TARGET.T + B_TARGET
    online_best = (next_obs @ W_ONLINE.T + B_ONLINE).argmax(-1, keepdim=True)
    # Target gap: gamma * alive * (max_a Q_t(s', a) - Q_t(s', argmax_a Q_online(s', a))) >= 0.
    alive = (~td["next", "terminated"]).float()
    gap = 0.99 * alive * (q_target.max(-1, keepdim=True).values - q_target.gather(-1, online_best))
    assert (gap > 0).any(), "the fixed weights must make the two estimators disagree somewhere"
    pred = reference_pred(td)
    target_vanilla = reference_target(td, 0.99, double=False)
    expected = ((target_vanilla - pred) ** 2 - (target_vanilla - gap - pred) ** 2).squeeze(-1)
    torch.testing.assert_close(vanilla(td.clone())["loss_value"] - double(td.clone())["loss_value"], expected)


def test_priority_weight_multiplies_per_sample_loss_and_custom_priority_key():
    td = mixed_batch()
    weights = torch.linspace(0.1, 2.0, 8)
    td["priority_weight"] = weights
    loss = fixed_loss(priority_key="my_priority")
    out = loss(td)
    diff = reference_target(td, 0.99, False) - reference_pred(td)
    torch.testing.assert_close(out["loss_value"], (weights * diff.squeeze(-1) ** 2).mean())
    assert td["my_priority"].shape == (8, 1) and "td_error" not in td.keys()


def test_one_hot_mult_one_hot_and_binary_chosen_values():
    td = mixed_batch()
    td["action"] = torch.nn.functional.one_hot(td["action"], 2)
    out = fixed_loss(action_space="one-hot")(td)
    diff = reference_target(td, 0.99, False) - reference_pred(td.set("action", td["action"].argmax(-1)))
    torch.testing.assert_close(out["loss_value"], (diff**2).mean())

    cases = ((MultiOneHot([2, 3]), torch.tensor([[0, 1, 0, 0, 1]])), (Binary(5), torch.tensor([[1, 0, 1, 1, 0]])))
    for spec, action in cases:
        net = nn.Linear(4, 5)
        loss = DQNLoss(QValueActor(net, spec=spec), loss_function="l1", delay_value=False)
        batch = transition_batch((1,), terminated=True)
        batch["action"] = action
        q = net(batch["observation"]).detach()
        expected = (batch["next", "reward"] - (q * action).sum(-1, keepdim=True)).abs().mean()
        torch.testing.assert_close(loss(batch)["loss_value"], expected)


def test_action_space_inferred_from_actor_built_without_spec():
    # Known defect 4: an actor built from action_space alone must be enough for the loss.
    loss = DQNLoss(QValueActor(nn.Linear(4, 2), action_space="one_hot"))
    assert loss.action_space == "one-hot"
    assert DQNLoss(QValueActor(nn.Linear(4, 2), spec=OneHot(2))).action_space == "one-hot"
    assert DQNLoss(nn.Linear(4, 2), action_space="categorical").action_space == "categorical"
    with pytest.raises(ValueError, match="plain nn.Module: pass action_space"):
        DQNLoss(nn.Linear(4, 2))
    bare = TensorDictModule(nn.Linear(4, 2), ["observation"], ["action_value"])
    with pytest.raises(ValueError, match="Cannot infer the action space of TensorDictModule.*Pass action_space="):
        DQNLoss(bare)
    with pytest.raises(ValueError, match="unknown action_space 'discrete'"):
        DQNLoss(QValueActor(nn.Linear(4, 2), action_space="categorical"), action_space="discrete")


def test_action_space_falls_back_to_a_module_spec():
    # A module with only a spec: a discrete one (or a Composite's "action" entry) decides; others are skipped.
    bare = TensorDictModule(nn.Linear(4, 2), ["observation"], ["action_value"])
    bare.spec = Composite(action=OneHot(2))
    assert DQNLoss(bare).action_space == "one-hot"
    bare.spec = MultiOneHot([1, 1])
    assert DQNLoss(bare).action_space == "mult-one-hot"
    for spec in (Composite(other=OneHot(2)), Bounded(-1.0, 1.0, shape=(2,))):
        bare.spec = spec
        with pytest.raises(ValueError, match="Cannot infer the action space of TensorDictModule"):
            DQNLoss(bare)


def test_masked_next_action_is_never_the_bootstrap():
    net = nn.Linear(4, 3)
    actor = QValueActor(net, action_space="categorical", action_mask_key="action_mask")
    loss = DQNLoss(actor, delay_value=False)
    td = transition_batch((5,), n_actions=3)
    next_q = net(td["next", "observation"]).detach()
    mask = torch.ones(5, 3, dtype=torch.bool).scatter(-1, next_q.argmax(-1, keepdim=True), False)
    td["action_mask"] = torch.ones(5, 3, dtype=torch.bool)
    td["next", "action_mask"] = mask
    loss(td)
    pred = net(td["observation"]).detach().gather(-1, td["action"].unsqueeze(-1))
    best_allowed = next_q.masked_fill(~mask, float("-inf")).max(-1, keepdim=True).values
    torch.testing.assert_close(td["td_error"], (td["next", "reward"] + 0.99 * best_allowed - pred).abs())


@pytest.mark.parametrize("double", [False, True])
def test_a_game_over_state_that_allows_no_action_is_no_error_when_terminated(double):
    # Envs (board games) may report an all-False action mask once the game is over; that next value
    # is multiplied by 0, so the loss must not fail on it. A running episode's empty mask still fails.
    net = nn.Linear(4, 3)
    actor = QValueActor(net, action_space="categorical", action_mask_key="action_mask")
    loss = DQNLoss(actor, delay_value=False, double_dqn=double)
    terminated = torch.tensor([True, False, False, True])
    td = transition_batch((4,), n_actions=3, terminated=terminated)
    td["action_mask"] = torch.ones(4, 3, dtype=torch.bool)
    mask = torch.ones(4, 3, dtype=torch.bool)
    mask[0] = mask[3] = False
    mask[1, 0] = False
    td["next", "action_mask"] = mask
    loss(td)
    pred = net(td["observation"]).detach().gather(-1, td["action"].unsqueeze(-1))
    next_q = net(td["next", "observation"]).detach()
    bootstrap = next_q.masked_fill(~mask, float("-inf")).max(-1, keepdim=True).values
    bootstrap = torch.where(terminated[:, None], torch.zeros(()), bootstrap)
    torch.testing.assert_close(td["td_error"], (td["next", "reward"] + 0.99 * bootstrap - pred).abs())
    # Only done given (no terminated flag): done & ~truncated is the terminal flag, as the estimators read it.
    only_done = td.clone()
    only_done["next", "done"] = only_done["next", "terminated"] | only_done["next", "truncated"]
    del only_done["next", "terminated"]
    loss(only_done)
    torch.testing.assert_close(only_done["td_error"], td["td_error"])
    td["next", "terminated"][0] = False
    with pytest.raises(ValueError, match="forbids every action"):
        loss(td)
    td["next", "action_mask"] = torch.ones(4, 3, dtype=torch.bool)
    td["next", "terminated"] = td["next", "terminated"].float()  # named as before, not by the mask's or
    with pytest.raises(TypeError, match="terminated must be a bool tensor, got dtype torch.float32"):  # torch's words
        loss(td)


def loop_lambda_return(reward, next_value, terminated, done, gamma, lmbda):
    """Slow reference of the TD(lambda) return over the last (time) dim of [B, T] tensors."""
    out = torch.zeros_like(reward)
    b, t_max = reward.shape
    for b_i in range(b):
        following = None
        for t in reversed(range(t_max)):
            bootstrap = 0.0 if terminated[b_i, t] else next_value[b_i, t]
            if following is None or done[b_i, t]:
                out[b_i, t] = reward[b_i, t] + gamma * bootstrap
            else:
                out[b_i, t] = reward[b_i, t] + gamma * ((1 - lmbda) * bootstrap + lmbda * following)
            following = out[b_i, t]
    return out


@pytest.mark.parametrize("estimator, lmbda", [(ValueEstimators.TD1, 1.0), ("TDLambda", 0.7), ("td_lambda", 0.0)])
def test_multi_step_targets_on_time_batches(estimator, lmbda):
    loss = fixed_loss()
    kwargs = {"gamma": 0.9} if lmbda == 1.0 else {"gamma": 0.9, "lmbda": lmbda}
    loss.make_value_estimator(estimator, **kwargs)
    terminated = torch.tensor([[False, True, False, False], [False, False, False, True]])
    truncated = torch.tensor([[False, False, False, False], [True, False, False, False]])
    td = transition_batch((2, 4), terminated=terminated, truncated=truncated)
    out = loss(td)
    next_value = (td["next", "observation"] @ W_TARGET.T + B_TARGET).max(-1).values
    target = loop_lambda_return(
        td["next", "reward"].squeeze(-1), next_value, terminated, terminated | truncated, 0.9, lmbda
    )
    pred = reference_pred(td).squeeze(-1)
    torch.testing.assert_close(out["loss_value"], ((target - pred) ** 2).mean())


@pytest.mark.parametrize("estimator", ["td1", "td_lambda"])
def test_multi_step_estimator_on_flat_batch_raises(estimator):
    # Known defect 5: a flat replay batch must not be chained as if it were time.
    loss = fixed_loss()
    loss.make_value_estimator(estimator)
    with pytest.raises(ValueError, match=r"needs a batch with a time dimension \[B, T\].*got batch_size \[8\]"):
        loss(mixed_batch())


def test_without_delay_the_target_is_the_online_network():
    loss = fixed_loss(delay_value=False)
    assert not any(name.startswith("target_") for name, _ in loss.named_buffers())
    for key, value in loss.target_value_network_params.items(True, True):
        assert torch.equal(value, loss.value_network_params[key]) and not value.requires_grad
    td = mixed_batch()
    q_next = (td["next", "observation"] @ W_ONLINE.T + B_ONLINE).max(-1, keepdim=True).values
    expected = td["next", "reward"] + 0.99 * (~td["next", "terminated"]) * q_next - reference_pred(td)
    loss(td)
    torch.testing.assert_close(td["td_error"], expected.abs())
    with pytest.raises(ValueError, match="no target parameters to update"):
        HardUpdate(loss)


def test_bad_loss_function_and_reduction_raise():
    with pytest.raises(ValueError, match=r"Unknown loss_function 'huber'; valid choices: \['l1', 'l2', 'smooth_l1'\]"):
        fixed_loss(loss_function="huber")
    with pytest.raises(ValueError, match=r"Unknown reduction 'avg'; valid choices"):
        fixed_loss(reduction="avg")


def test_target_network_follows_in_place_updates_and_dtype_moves():
    loss = fixed_loss().double()
    td = mixed_batch().apply(lambda x: x.double() if x.is_floating_point() else x)
    out = loss(td)
    assert out["loss_value"].dtype == torch.float64
    as_float = td.apply(lambda x: x.float() if x.is_floating_point() else x)
    diff = reference_target(as_float, 0.99, False) - reference_pred(as_float)
    torch.testing.assert_close(td["td_error"].float(), diff.abs())


def _copy_targets(src: DQNLoss, dst: DQNLoss) -> None:
    with torch.no_grad():
        targets = (src.target_value_network_params, dst.target_value_network_params)
        for a, b in zip(*(t.values(True, True) for t in targets)):
            b.copy_(a)


@pytest.mark.parametrize("double", [False, True])
def test_wrapped_policy_runs_as_a_tensordict_module_in_deterministic_mode(double):
    # With exploration appended the network is no bare QValueActor: the loss calls it as a whole,
    # under the deterministic exploration type, so epsilon-greedy (eps = 1) never acts in the loss.
    fast = fixed_loss(double_dqn=double)
    wrapped = TensorDictSequential(fast.value_network, EGreedyModule(Categorical(2), eps_init=1.0, eps_end=1.0))
    slow = DQNLoss(wrapped, double_dqn=double)
    _copy_targets(fast, slow)
    td = transition_batch((64,))
    torch.testing.assert_close(slow(td.clone())["loss_value"], fast(td.clone())["loss_value"])


def test_vanilla_next_value_is_the_value_at_the_greedy_action_read_with_max_where_argmax_decides():
    # The vanilla next value is max_a Q(s', a): gathered at the greedy action before, read with max
    # now; ties and negative values give the same numbers.
    loss = fixed_loss()
    obs = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 0.5, 3.0], [-1.0, 1.0, -1.0, -1.0]])
    td = TensorDict({"next": TensorDict({"observation": obs}, batch_size=[3])}, batch_size=[3])
    target = loss.target_network("value_network")
    values = target.action_values(obs)
    assert loss._max_is_greedy
    assert torch.equal(loss._next_value(td), values.gather(-1, target.greedy(values).unsqueeze(-1)))
    tied = QValueActor(TensorDictModule(lambda o: o[..., :2] * 0 - 1.0, ["observation"], ["action_value"]),
                       action_space="categorical")
    assert DQNLoss(tied)._next_value(td).tolist() == [[-1.0]] * 3
    masked = DQNLoss(QValueActor(nn.Linear(4, 2), action_space="categorical", action_mask_key="action_mask"))
    one_hot = DQNLoss(QValueActor(nn.Linear(4, 2), action_space="one-hot"))
    assert not masked._max_is_greedy and not one_hot._max_is_greedy
