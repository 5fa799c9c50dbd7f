"""DistributionalDQNLoss (C51) against a loop reference, on every batch shape."""
from __future__ import annotations

import pytest
import torch
from cuda_marks import needs_cuda
from loss_builders import transition_batch
from tensordict import TensorDict
from torch import nn

from rlkit.modules import DistributionalQValueActor, QValueActor, SafeModule
from rlkit.objectives import DistributionalDQNLoss, ValueEstimators

ATOMS, ACTIONS = 5, 3
SUPPORT = torch.linspace(-2.0, 2.0, ATOMS)


def make_loss(action_space: str = "categorical", **kwargs) -> tuple[DistributionalDQNLoss, nn.Linear, nn.Linear]:
    online = nn.Linear(4, ATOMS * ACTIONS)
    net = nn.Sequential(online, nn.Unflatten(-1, (ATOMS, ACTIONS)))
    loss = DistributionalDQNLoss(DistributionalQValueActor(net, SUPPORT, action_space=action_space), **kwargs)
    target = nn.Linear(4, ATOMS * ACTIONS)  # fresh random weights, copied into the target buffers
    params = loss.target_value_network_params["module", "0", "module", "0"]
    with torch.no_grad():
        params["weight"].copy_(target.weight)
        params["bias"].copy_(target.bias)
    return loss, online, target


def log_probs(layer: nn.Linear, obs: torch.Tensor) -> torch.Tensor:
    return layer(obs).unflatten(-1, (ATOMS, ACTIONS)).log_softmax(-2).detach()


def loop_projection(probs, reward, terminated, gamma):
    """Bellemare et al. 2017, Algorithm 1, one sample and one atom at a time."""
    v_min, v_max = SUPPORT[0].item(), SUPPORT[-1].item()
    dz = (v_max - v_min) / (ATOMS - 1)
    out = torch.zeros_like(probs)
    for n in range(probs.shape[0]):
        for j in range(ATOMS):
            tz = reward[n].item() + (0.0 if terminated[n] else gamma * SUPPORT[j].item())
            b = (min(max(tz, v_min), v_max) - v_min) / dz
            low, up = int(torch.tensor(b).floor()), int(torch.tensor(b).ceil())
            if low == up:
                out[n, low] += probs[n, j]
            else:
                out[n, low] += probs[n, j] * (up - b)
                out[n, up] += probs[n, j] * (b - low)
    return out


def reference(td: TensorDict, online: nn.Linear, target: nn.Linear, gamma: float, chooser: nn.Linear | None = None):
    """(projected target [N, K], per-sample loss [N]) with the batch flattened to N samples; the
    next action is the greedy one of ``chooser`` (default: the online network)."""
    flat = td.reshape(-1)
    next_obs = flat["next", "observation"]
    q_choice = (log_probs(chooser or online, next_obs).exp() * SUPPORT.unsqueeze(-1)).sum(-2)
    best = q_choice.argmax(-1)
    next_probs = log_probs(target, next_obs).exp()[torch.arange(len(best)), :, best]
    reward, terminated = flat["next", "reward"].squeeze(-1), flat["next", "terminated"].squeeze(-1)
    proj = loop_projection(next_probs, reward, terminated, gamma)
    action = flat["action"] if flat["action"].dim() == 1 else flat["action"].argmax(-1)
    taken = log_probs(online, flat["observation"])[torch.arange(len(action)), :, action]
    return proj, -(proj * taken).sum(-1)


@pytest.mark.parametrize("shape", [(1,), (6,), (3, 4)])
@pytest.mark.parametrize("action_space", ["categorical", "one-hot"])
def test_c51_equals_loop_reference_on_every_batch_shape(shape, action_space):
    # Known defect 6: 2-D batches and categorical actions with batch size 1 must work.
    loss, online, target = make_loss(action_space, reduction="none")
    loss.make_value_estimator(gamma=0.8)
    terminated = torch.arange(int(torch.Size(shape).numel())).reshape(shape) % 3 == 1
    td = transition_batch(shape, n_actions=ACTIONS, action_space=action_space, terminated=terminated)
    td["next", "reward"] = td["next", "reward"] * 2  # some atoms leave the support and are clamped
    proj_ref, loss_ref = reference(td, online, target, 0.8)
    proj = loss.target_distribution(td)
    assert proj.shape == (*shape, ATOMS)
    torch.testing.assert_close(proj.sum(-1), torch.ones(shape))
    torch.testing.assert_close(proj.reshape(-1, ATOMS), proj_ref)
    out = loss(td)["loss_value"]
    assert out.shape == shape
    torch.testing.assert_close(out.reshape(-1), loss_ref)
    torch.testing.assert_close(td["td_error"], out.detach().unsqueeze(-1))


def test_without_double_dqn_the_target_network_picks_the_next_action():
    loss, online, target = make_loss(reduction="none", double_dqn=False)
    loss.make_value_estimator(gamma=0.9)
    td = transition_batch((64,), n_actions=ACTIONS, action_space="categorical",
                          terminated=torch.zeros(64, dtype=torch.bool))
    next_obs = td["next", "observation"]
    q = {n: (log_probs(net, next_obs).exp() * SUPPORT.unsqueeze(-1)).sum(-2).argmax(-1)
         for n, net in (("online", online), ("target", target))}
    assert (q["online"] != q["target"]).any()  # the two choices differ on some samples
    proj_ref, loss_ref = reference(td, online, target, 0.9, chooser=target)
    torch.testing.assert_close(loss.target_distribution(td), proj_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(loss(td.clone())["loss_value"], loss_ref, atol=1e-5, rtol=0)
    online_choice = make_loss(reduction="none")[0]
    assert online_choice.double_dqn and not loss.double_dqn


def test_gamma_comes_from_the_estimator_at_every_call():
    # Known defect 6: make_value_estimator(gamma=...) must not be ignored.
    loss, online, target = make_loss(gamma=0.5)
    td = transition_batch((4,), n_actions=ACTIONS)
    assert loss.value_estimator.gamma.item() == 0.5
    torch.testing.assert_close(loss(td.clone())["loss_value"], reference(td, online, target, 0.5)[1].mean())
    loss.make_value_estimator(ValueEstimators.TD0, gamma=0.9)
    torch.testing.assert_close(loss(td.clone())["loss_value"], reference(td, online, target, 0.9)[1].mean())


def test_priority_weight_and_custom_keys():
    loss, online, target = make_loss(priority_key="prio")
    td = transition_batch((4,), n_actions=ACTIONS)
    td["priority_weight"] = torch.tensor([0.0, 1.0, 2.0, 0.5])
    out = loss(td)
    per_sample = reference(td, online, target, 0.99)[1]
    torch.testing.assert_close(out["loss_value"], (td["priority_weight"] * per_sample).mean())
    torch.testing.assert_close(td["prio"].squeeze(-1), per_sample)


def test_bad_networks_and_estimators_raise():
    with pytest.raises(ValueError, match="needs a network exposing its atoms as `support`"):
        DistributionalDQNLoss(QValueActor(nn.Linear(4, 2), action_space="categorical"))
    net = nn.Sequential(nn.Linear(4, ATOMS * 4), nn.Unflatten(-1, (ATOMS, 4)))
    binary = DistributionalQValueActor(net, SUPPORT, action_space="binary")
    with pytest.raises(ValueError, match=r"supports the action spaces \['categorical', 'one-hot'\], got 'binary'"):
        DistributionalDQNLoss(binary)
    loss, _, _ = make_loss()
    with pytest.raises(ValueError, match=r"does not support the 'td1' value estimator; supported: \['td0'\]"):
        loss.make_value_estimator("td1")


def test_masked_next_actions_are_never_the_target_action():
    online = nn.Linear(4, ATOMS * ACTIONS)
    net = nn.Sequential(online, nn.Unflatten(-1, (ATOMS, ACTIONS)))
    actor = DistributionalQValueActor(net, SUPPORT, action_space="categorical", action_mask_key="action_mask")
    loss = DistributionalDQNLoss(actor, delay_value=False)
    td = transition_batch((6,), n_actions=ACTIONS)
    next_lp = log_probs(online, td["next", "observation"])
    q = (next_lp.exp() * SUPPORT.unsqueeze(-1)).sum(-2)
    mask = torch.ones(6, ACTIONS, dtype=torch.bool).scatter(-1, q.argmax(-1, keepdim=True), False)
    td["next", "action_mask"] = mask
    best = q.masked_fill(~mask, float("-inf")).argmax(-1)
    next_probs = next_lp.exp()[torch.arange(6), :, best]
    reward, terminated = td["next", "reward"].squeeze(-1), td["next", "terminated"].squeeze(-1)
    torch.testing.assert_close(loss.target_distribution(td), loop_projection(next_probs, reward, terminated, 0.99))


@pytest.mark.parametrize("double", [False, True])
def test_a_game_over_state_that_allows_no_action_is_no_error_when_terminated(double):
    # A terminated transition's next distribution is not used: its next mask may allow nothing.
    online = nn.Linear(4, ATOMS * ACTIONS)
    net = nn.Sequential(online, nn.Unflatten(-1, (ATOMS, ACTIONS)))
    actor = DistributionalQValueActor(net, SUPPORT, action_space="categorical", action_mask_key="action_mask")
    loss = DistributionalDQNLoss(actor, delay_value=False, double_dqn=double)
    terminated = torch.tensor([True, False, True])
    td = transition_batch((3,), n_actions=ACTIONS, terminated=terminated)
    mask = torch.ones(3, ACTIONS, dtype=torch.bool)
    mask[0] = mask[2] = False
    td["next", "action_mask"] = mask
    next_lp = log_probs(online, td["next", "observation"])
    best = (next_lp.exp() * SUPPORT.unsqueeze(-1)).sum(-2).argmax(-1)
    next_probs = next_lp.exp()[torch.arange(3), :, best]
    reward = td["next", "reward"].squeeze(-1)
    torch.testing.assert_close(loss.target_distribution(td), loop_projection(next_probs, reward, terminated, 0.99))
    td["next", "terminated"][2] = False
    with pytest.raises(ValueError, match="forbids every action"):
        loss.target_distribution(td)


def test_tensordict_path_matches_the_tensor_fast_path():
    # A SafeModule core is run through TensorDicts (it may project); the result must not change.
    loss, online, target = make_loss()
    core = SafeModule(nn.Sequential(online, nn.Unflatten(-1, (ATOMS, ACTIONS))), ["observation"], ["action_value"])
    slow = DistributionalDQNLoss(DistributionalQValueActor(core, SUPPORT, action_space="categorical"))
    with torch.no_grad():
        targets = (loss.target_value_network_params, slow.target_value_network_params)
        for a, b in zip(*(t.values(True, True) for t in targets)):
            b.copy_(a)
    td = transition_batch((2, 3), n_actions=ACTIONS, terminated=torch.rand(2, 3) < 0.3)
    torch.testing.assert_close(slow(td.clone())["loss_value"], loss(td.clone())["loss_value"])
    torch.testing.assert_close(slow.target_distribution(td), loss.target_distribution(td))


@needs_cuda
def test_projection_runs_on_the_tensors_device():
    # Known defect 6: the projection must stay on the device of the batch.
    loss, _, _ = make_loss()
    loss = loss.cuda()
    td = transition_batch((2, 3), n_actions=ACTIONS).cuda()
    assert loss.target_distribution(td).device.type == "cuda"
    assert loss(td)["loss_value"].device.type == "cuda"


def test_without_a_terminated_entry_a_truncated_step_still_bootstraps():
    """Where ``("next", "terminated")`` is absent it is ``done & ~truncated``, as the value estimators
    derive it: the target of a truncated step is the projected next distribution, not the reward atom."""
    from loss_builders import build_c51

    loss = build_c51()
    td = transition_batch((4,), terminated=torch.tensor([False, True, False, False]),
                          truncated=torch.tensor([True, False, False, False]))
    full = loss.target_distribution(td.clone())
    without = td.clone()
    del without["next", "terminated"]
    torch.testing.assert_close(loss.target_distribution(without), full, rtol=0, atol=0)
    no_flags = without.clone()
    del no_flags["next", "truncated"]  # only done: every done step is taken as terminal
    assert not torch.equal(loss.target_distribution(no_flags)[0], full[0])
    torch.testing.assert_close(loss.target_distribution(no_flags)[1:], full[1:], rtol=0, atol=0)
