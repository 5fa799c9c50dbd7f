"""QValueActor and DistributionalQValueActor: spec, action_space, support, masks, log-softmax."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlkit.data import Categorical, MultiOneHot, OneHot
from rlkit.modules import DistributionalQValueActor, QValueActor


def _obs(batch: int = 3) -> TensorDict:
    return TensorDict(observation=torch.randn(batch, 4), batch_size=[batch])


def test_qvalue_actor_spec_and_action_space():
    net = nn.Linear(4, 3)
    actor = QValueActor(net, spec=OneHot(3))
    assert actor.action_space == "one-hot" and isinstance(actor.spec, OneHot)
    td = actor(_obs())
    expected = net(td["observation"])
    assert torch.equal(td["action_value"], expected)
    assert torch.equal(td["action"].argmax(-1), expected.argmax(-1))
    assert torch.equal(td["chosen_action_value"].squeeze(-1), expected.max(-1).values)


def test_defect4_action_space_without_spec_is_readable():
    actor = QValueActor(nn.Linear(4, 3), action_space="one_hot")
    assert actor.spec is None
    assert actor.action_space == "one-hot"  # what a loss reads instead of asking again
    assert actor(_obs())["action"].shape == (3, 3)


def test_qvalue_actor_with_td_module_mask_and_safe():
    net = TensorDictModule(nn.Linear(4, 3), in_keys=["observation"], out_keys=["q"])
    actor = QValueActor(net, action_space="categorical", action_value_key="q", action_mask_key="action_mask")
    td = _obs(5)
    td["action_mask"] = torch.tensor([False, False, True]).expand(5, 3)
    assert (actor(td)["action"] == 2).all()
    assert "action_mask" in actor.in_keys
    safe = QValueActor(nn.Linear(4, 3), spec=Categorical(3, mask=torch.tensor([False, True, False])), safe=True)
    assert (safe(_obs(5))["action"] == 1).all()


def test_qvalue_actor_multionehot_spec_infers_var_nums():
    actor = QValueActor(nn.Linear(4, 5), spec=MultiOneHot([2, 3]))
    action = actor(_obs())["action"]
    assert action[:, :2].sum(-1).tolist() == [1, 1, 1] and action[:, 2:].sum(-1).tolist() == [1, 1, 1]


def test_qvalue_actor_errors():
    net = TensorDictModule(nn.Linear(4, 3), in_keys=["observation"], out_keys=["q"])
    with pytest.raises(ValueError, match=r"the module writes \['q'\] but the actor reads the action values from 'action_value'"):
        QValueActor(net, action_space="categorical")
    with pytest.raises(ValueError, match="in_keys=.* is only used to wrap a plain nn.Module"):
        QValueActor(net, in_keys=["observation"], action_space="categorical", action_value_key="q")
    with pytest.raises(ValueError, match="neither action_space nor spec was given"):
        QValueActor(nn.Linear(4, 3))


class _Atoms(nn.Module):
    def __init__(self, atoms: int = 5, actions: int = 3) -> None:
        super().__init__()
        self.atoms, self.actions = atoms, actions
        self.linear = nn.Linear(4, atoms * actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).unflatten(-1, (self.atoms, self.actions))


def test_distributional_actor_log_softmax_and_support():
    net = _Atoms()
    support = torch.linspace(-1, 1, 5)
    actor = DistributionalQValueActor(net, support, spec=OneHot(3))
    assert actor.action_space == "one-hot" and isinstance(actor.spec, OneHot)
    assert actor.support is dict(actor.named_buffers())["module.2.support"]
    td = actor(_obs())
    logp = net(td["observation"]).log_softmax(-2)
    torch.testing.assert_close(td["action_value"], logp)
    q = (logp.exp() * support.unsqueeze(-1)).sum(-2)
    assert torch.equal(td["action"].argmax(-1), q.argmax(-1))


def test_distributional_actor_without_log_softmax():
    net = _Atoms()
    with_ls = DistributionalQValueActor(net, torch.linspace(-1, 1, 5), action_space="categorical")
    without = DistributionalQValueActor(
        lambda x: net(x).log_softmax(-2), torch.linspace(-1, 1, 5), action_space="categorical", make_log_softmax=False
    )
    assert len(without.module) == 2 and len(with_ls.module) == 3
    td = _obs()
    assert torch.equal(with_ls(td.clone())["action"], without(td.clone())["action"])


def test_distributional_actor_mask_and_var_nums():
    actor = DistributionalQValueActor(
        _Atoms(actions=4), torch.linspace(-1, 1, 5), action_space="mult-one-hot", var_nums=2, action_mask_key="mask"
    )
    td = _obs()
    td["mask"] = torch.tensor([False, True, True, False]).expand(3, 4)
    assert td is actor(td)
    assert td["action"].tolist() == [[0, 1, 1, 0]] * 3
