"""A2CLoss against a hand-written GAE + policy-gradient + critic computation, and its options."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from loss_builders import transition_batch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlkit.modules import (
    ActorValueOperator,
    Categorical,
    NormalParamExtractor,
    ProbabilisticActor,
    TanhNormal,
    ValueOperator,
)
from rlkit.objectives import A2CLoss


def make_loss(**kwargs) -> tuple[A2CLoss, nn.Linear, nn.Linear]:
    policy, critic = nn.Linear(4, 3), nn.Linear(4, 1)
    actor = ProbabilisticActor(
        TensorDictModule(policy, ["observation"], ["logits"]), ["logits"], distribution_class=Categorical
    )
    return A2CLoss(actor, ValueOperator(critic), **kwargs), policy, critic


def loop_gae(reward, value, next_value, terminated, done, gamma, lmbda):
    """Schulman et al. 2015, eq. 16, one step at a time backwards over the last dim of [N, T]."""
    advantage = torch.zeros_like(reward)
    n, t_max = reward.shape
    for i in range(n):
        running = 0.0
        for t in reversed(range(t_max)):
            delta = reward[i, t] + gamma * (0.0 if terminated[i, t] else next_value[i, t]) - value[i, t]
            running = delta if (t == t_max - 1 or done[i, t]) else delta + gamma * lmbda * running
            advantage[i, t] = running
    return advantage


def mixed_time_batch() -> TensorDict:
    terminated = torch.tensor([[False, False, True, False, False], [False, False, False, False, True]])
    truncated = torch.tensor([[False, False, False, False, False], [False, True, False, False, False]])
    return transition_batch((2, 5), n_actions=3, terminated=terminated, truncated=truncated)


def test_a2c_equals_hand_written_gae_policy_gradient_and_critic():
    loss, policy, critic = make_loss(entropy_coeff=0.1, critic_coeff=0.5, loss_critic_type="l2")
    loss.make_value_estimator("GAE", gamma=0.9, lmbda=0.8)
    td = mixed_time_batch()
    out = loss(td)
    with torch.no_grad():
        value = critic(td["observation"]).squeeze(-1)
        next_value = critic(td["next", "observation"]).squeeze(-1)
    flags = [td["next", k].squeeze(-1) for k in ("terminated", "done")]
    advantage = loop_gae(td["next", "reward"].squeeze(-1), value, next_value, *flags, 0.9, 0.8)
    logits = policy(td["observation"])
    log_prob = logits.log_softmax(-1).gather(-1, td["action"].unsqueeze(-1)).squeeze(-1)
    entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)
    value_pred = critic(td["observation"]).squeeze(-1)
    torch.testing.assert_close(out["loss_objective"], -(log_prob * advantage).mean())
    torch.testing.assert_close(out["loss_critic"], 0.5 * ((value_pred - (advantage + value)) ** 2).mean())
    torch.testing.assert_close(out["loss_entropy"], -0.1 * entropy.mean())
    torch.testing.assert_close(out["entropy"], entropy.mean().detach())


def test_given_advantage_is_used_normalised_and_value_clipped():
    loss, policy, critic = make_loss(normalize_advantage=True, clip_value=0.1, entropy_bonus=False)
    td = mixed_time_batch()
    td["advantage"] = torch.randn(2, 5, 1) * 3 + 1
    td["value_target"] = torch.randn(2, 5, 1)
    td["state_value"] = torch.randn(2, 5, 1)
    out = loss(td)
    assert set(out.keys()) == {"loss_objective", "loss_critic"}
    adv = td["advantage"].squeeze(-1)
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    log_prob = policy(td["observation"]).log_softmax(-1).gather(-1, td["action"].unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(out["loss_objective"], -(log_prob * adv).mean())
    value, old, target = critic(td["observation"]), td["state_value"], td["value_target"]
    clipped = old + (value - old).clamp(-0.1, 0.1)
    expected = torch.maximum(
        F.smooth_l1_loss(value, target, reduction="none"), F.smooth_l1_loss(clipped, target, reduction="none")
    )
    torch.testing.assert_close(out["loss_critic"], expected.mean())


def shared_operator() -> ActorValueOperator:
    common = TensorDictModule(nn.Linear(4, 8), ["observation"], ["hidden"])
    policy = ProbabilisticActor(
        TensorDictModule(nn.Linear(8, 3), ["hidden"], ["logits"]), ["logits"], distribution_class=Categorical
    )
    return ActorValueOperator(common, policy, ValueOperator(nn.Linear(8, 1), in_keys=["hidden"]))


@pytest.mark.parametrize("separate", [False, True])
def test_actor_value_operator_and_separate_losses(separate):
    op = shared_operator()
    loss = A2CLoss(op.get_policy_operator(), op.get_value_operator(), separate_losses=separate)
    trunk = op.module[0].module.weight
    assert sum(p is trunk for p in loss.parameters()) == 1
    loss(mixed_time_batch())["loss_critic"].backward()
    # The critic loss trains the shared trunk unless separate_losses is set.
    assert (trunk.grad is not None and trunk.grad.abs().sum() > 0) == (not separate)
    assert op.module[2].module.weight.grad.abs().sum() > 0


def test_flat_batches_need_a_one_step_estimator_and_keys_are_forwarded():
    loss, _, critic = make_loss()
    flat = transition_batch((6,), n_actions=3)
    with pytest.raises(ValueError, match=r"GAE needs a TensorDict with batch dims \[\*B, T\]"):
        loss(flat.clone())
    loss.make_value_estimator("td0", gamma=0.5)
    loss.set_keys(reward="rew")
    flat["next", "rew"] = flat["next"].pop("reward")
    out = loss(flat)
    with torch.no_grad():
        target = flat["next", "rew"] + 0.5 * critic(flat["next", "observation"])
    expected = F.smooth_l1_loss(critic(flat["observation"]), target)
    torch.testing.assert_close(out["loss_critic"], expected)


def test_a2c_errors():
    with pytest.raises(ValueError, match=r"needs an actor with get_dist\(td\).*got ValueOperator"):
        A2CLoss(ValueOperator(nn.Linear(4, 1)), ValueOperator(nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="clip_value must be a positive float or None, got -1"):
        make_loss(clip_value=-1.0)
    with pytest.raises(ValueError, match=r"Unknown loss_function 'l3'"):
        make_loss(loss_critic_type="l3")
    loss, _, _ = make_loss()
    td = mixed_time_batch()
    td["advantage"] = torch.zeros(2, 5, 1)
    with pytest.raises(ValueError, match="needs the value target under 'value_target'"):
        loss(td.clone())
    td["value_target"] = torch.zeros(2, 5, 1)
    loss.clip_value = 0.2
    with pytest.raises(ValueError, match="clip_value needs the old value under 'state_value'"):
        loss(td)


def test_separate_losses_survive_a_dtype_move():
    op = shared_operator()
    loss = A2CLoss(op.get_policy_operator(), op.get_value_operator(), separate_losses=True).double()
    trunk = op.module[0].module.weight
    detached = loss.critic_network_params["module", "0", "module", "weight"]
    assert detached.dtype == torch.float64 and not detached.requires_grad
    assert detached.data_ptr() == trunk.data_ptr()
    td = mixed_time_batch().apply(lambda x: x.double() if x.is_floating_point() else x)
    loss(td)["loss_critic"].backward()
    assert trunk.grad is None and op.module[2].module.weight.grad.abs().sum() > 0


def test_continuous_actor_without_closed_form_entropy():
    # TanhNormal has no closed-form entropy: a one-sample estimate -log_prob(rsample) is used.
    params = TensorDictModule(nn.Sequential(nn.Linear(4, 4), NormalParamExtractor()), ["observation"], ["loc", "scale"])
    actor = ProbabilisticActor(params, ["loc", "scale"], distribution_class=TanhNormal)
    loss = A2CLoss(actor, ValueOperator(nn.Linear(4, 1)), entropy_coeff=1.0)
    td = mixed_time_batch()
    td["action"] = torch.rand(2, 5, 2) * 1.8 - 0.9
    out = loss(td)
    assert all(torch.isfinite(v) for v in out.values())
    out["loss_entropy"].backward()
    assert params.module[0].weight.grad.abs().sum() > 0


def test_the_tanh_normal_entropy_estimate_stays_right_where_tanh_saturates():
    """The one-sample estimate scores the draw before squashing: at loc 10, scale 0.3 (every sample
    squashed to 1 in float32) the entropy is that of the pre-tanh normal less E[log(1 - tanh(x)^2)],
    about -18.4, and raising loc lowers it (re-scoring the squashed sample gave +0.19 and the
    opposite gradient)."""
    from rlkit.objectives.a2c import _entropy

    loc = torch.full((20_000, 1), 10.0, requires_grad=True)
    dist = TanhNormal(loc, torch.full((20_000, 1), 0.3))
    torch.manual_seed(0)
    estimate = _entropy(dist).mean()
    x = torch.distributions.Normal(10.0, 0.3).sample((200_000,)).double()
    # H(tanh X) = H(X) + E[log(1 - tanh(X)^2)], log(1 - tanh(x)^2) = 2 (log 2 - x - softplus(-2x))
    exact = 0.5 * math.log(2 * math.pi * math.e * 0.3**2) + (2 * (math.log(2) - x - torch.nn.functional.softplus(
        -2 * x))).mean().item()
    assert estimate.item() == pytest.approx(exact, abs=0.05)
    estimate.backward()
    assert loc.grad.sum().item() == pytest.approx(-2.0, abs=0.05)  # d/dloc of E[log(1 - tanh^2)] at the right tail


@pytest.mark.parametrize("clip_value", [None, 0.1])
def test_one_critic_call_serves_the_estimator_and_the_critic_loss(clip_value):
    loss, policy, critic = make_loss(entropy_coeff=0.1, clip_value=clip_value)
    loss.make_value_estimator("GAE", gamma=0.9, lmbda=0.8)
    inputs: list[torch.Tensor] = []
    critic.register_forward_hook(lambda module, args, out: inputs.append(args[0]))
    td = mixed_time_batch()
    out = loss(td)
    # One call on [s; s']: V(s) with gradients (reused detached by GAE) and V(s') for GAE
    assert [x.shape for x in inputs] == [(4, 5, 4)]
    assert torch.equal(inputs[0], torch.cat([td["observation"], td["next", "observation"]]))
    assert "advantage" not in td.keys() and "state_value" not in td.keys()  # nothing leaks into the batch
    out_sum = sum(out[k] for k in out.keys() if k.startswith("loss_"))
    grads = torch.autograd.grad(out_sum, [*policy.parameters(), *critic.parameters()])
    # reference: the estimator run on its own (it calls the critic itself), the loss then only once more
    with torch.no_grad():
        reference_td = loss.value_estimator(td.clone())
    ref = loss(reference_td)
    ref_sum = sum(ref[k] for k in ref.keys() if k.startswith("loss_"))
    for k in out.keys():
        assert torch.equal(out[k], ref[k]), k
    for g, r in zip(grads, torch.autograd.grad(ref_sum, [*policy.parameters(), *critic.parameters()])):
        assert torch.equal(g, r)


def test_networks_called_on_tensors_give_the_tensordict_calls_numbers():
    loss, policy, critic = make_loss(entropy_coeff=0.1)
    td = mixed_time_batch()
    out = loss(td.clone())
    # The reference: the actor's and the critic's TensorDict calls (what the loss called before).
    with torch.no_grad():
        value_td = loss.critic_network(td.select("observation").clone())
    dist = loss.actor_network.get_dist(td.select("observation"))
    assert torch.equal(dist.logits, loss._distribution(td).logits)
    assert torch.equal(value_td["state_value"], loss._critic_value(td).detach())
    # A value key given as a tuple of one name is that name (as in a TensorDict).
    loss.set_keys(value=("state_value",))
    tuple_out = loss(td.clone())
    for key in out.keys():
        assert torch.equal(out[key], tuple_out[key]), key


def test_an_actor_overriding_get_dist_is_asked_through_it():
    class Tempered(ProbabilisticActor):
        def get_dist(self, tensordict):
            return Categorical(logits=self.module[0](tensordict)["logits"] / 2)

    policy = nn.Linear(4, 3)
    actor = Tempered(TensorDictModule(policy, ["observation"], ["logits"]), ["logits"], distribution_class=Categorical)
    loss = A2CLoss(actor, ValueOperator(nn.Linear(4, 1)))
    td = mixed_time_batch()
    torch.testing.assert_close(loss._distribution(td).logits, Categorical(logits=policy(td["observation"]) / 2).logits)
