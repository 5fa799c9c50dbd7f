"""Target-network updaters and loss helpers."""
from __future__ import annotations

import pytest
import torch
from loss_builders import build_dqn
from tensordict import TensorDict
from torch import nn

from rlkit.modules import QValueActor
from rlkit.objectives import DQNLoss, HardUpdate, SoftUpdate, distance_loss


def _online_and_target(loss):
    online = loss.value_network_params.detach().clone()
    target = loss.target_value_network_params.detach().clone()
    return online, target


def _perturb_online(loss):
    with torch.no_grad():
        for p in loss.parameters():
            p.add_(torch.randn_like(p))


@pytest.mark.parametrize("kwargs", [{"eps": 0.75}, {"tau": 0.25}])
def test_soft_update_arithmetic_is_exact(kwargs):
    loss = build_dqn()
    updater = SoftUpdate(loss, **kwargs)
    for _ in range(2):
        _perturb_online(loss)
        online, target = _online_and_target(loss)
        updater.step()
        for key, value in loss.target_value_network_params.items(True, True):
            assert torch.equal(value, target[key] * 0.75 + online[key] * 0.25), key


def test_soft_update_copies_non_float_entries():
    net = nn.Sequential(nn.Linear(4, 2), nn.BatchNorm1d(2))
    loss = DQNLoss(QValueActor(net, action_space="categorical"))
    net[1].num_batches_tracked.fill_(7)
    SoftUpdate(loss, eps=0.5).step()
    assert loss.target_value_network_params["module", "0", "module", "1", "num_batches_tracked"] == 7


@pytest.mark.parametrize(
    "kwargs, match",
    [({}, "exactly one of eps and tau, got eps=None and tau=None"), ({"eps": 0.1, "tau": 0.9}, "exactly one"),
     ({"tau": 1.5}, r"tau \(= 1 - eps\) in \[0, 1\], got tau=1.5"),
     ({"eps": -0.5}, r"eps \(= 1 - tau\) in \[0, 1\], got eps=-0.5")],
)
def test_soft_update_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SoftUpdate(build_dqn(), **kwargs)


@pytest.mark.parametrize("interval", [1, 3])
def test_hard_update_copies_exactly_on_calls_n_2n(interval):
    # Known defect 7: the copy happens on calls N, 2N, ... and not one call later.
    loss = build_dqn()
    updater = HardUpdate(loss, value_network_update_interval=interval)
    for call in range(1, 3 * interval + 1):
        _perturb_online(loss)
        online, target = _online_and_target(loss)
        updater.step()
        expected = online if call % interval == 0 else target
        now = loss.target_value_network_params
        assert all(torch.equal(now[k], expected[k]) for k in expected.keys(True, True)), call


def test_hard_update_counter_round_trips_through_state_dict():
    loss = build_dqn()
    first = HardUpdate(loss, value_network_update_interval=3)
    first.step()
    first.step()
    second = HardUpdate(loss, value_network_update_interval=3)
    second.load_state_dict(first.state_dict())
    _perturb_online(loss)
    online, _ = _online_and_target(loss)
    second.step()
    assert second.state_dict() == {"counter": 3}
    key = ("module", "0", "module", "0", "weight")
    assert torch.equal(loss.target_value_network_params[key], online[key])


@pytest.mark.parametrize("interval", [0, 2.5, True])
def test_hard_update_bad_interval(interval):
    with pytest.raises(ValueError, match="value_network_update_interval must be an integer >= 1"):
        HardUpdate(build_dqn(), value_network_update_interval=interval)


def test_init_copies_online_into_target_and_target_module_follows():
    loss = build_dqn()
    _perturb_online(loss)
    td_obs = torch.randn(3, 4)
    SoftUpdate(loss, tau=0.1).init_()
    out = loss._call_target("value_network", TensorDict(observation=td_obs, batch_size=[3]))
    expected = loss.value_network(TensorDict(observation=td_obs, batch_size=[3]))
    torch.testing.assert_close(out["action_value"], expected["action_value"].detach())


def test_distance_loss_values_and_error():
    pred, target = torch.tensor([0.5, 3.0]), torch.tensor([0.0, 0.0])
    torch.testing.assert_close(distance_loss(pred, target, "l2"), torch.tensor([0.25, 9.0]))
    torch.testing.assert_close(distance_loss(pred, target, "l1"), torch.tensor([0.5, 3.0]))
    torch.testing.assert_close(distance_loss(pred, target, "smooth_l1"), torch.tensor([0.125, 2.5]))
    with pytest.raises(ValueError, match=r"Unknown loss_function 'l0'; valid choices"):
        distance_loss(pred, target, "l0")
