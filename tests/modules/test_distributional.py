"""DistributionalQValueModule / Hook: expected values over a support, every action space, masks."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from torch import nn

from rlkit.data import Binary, Categorical, MultiOneHot, OneHot
from rlkit.modules import DistributionalQValueHook, DistributionalQValueModule, expected_action_values

SUPPORT = torch.tensor([-1.0, 1.0])


def logp_for_q(q: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``[*B, 2, A]`` over SUPPORT whose expected value is ``q`` (``p(+1) = (q+1)/2``)."""
    p_up = (q + 1) / 2
    return torch.stack([1 - p_up, p_up], -2).log()


Q = torch.tensor([[0.2, 0.6, -0.8, 0.1], [-0.2, -0.1, -0.6, 0.4]])


def test_expected_values_against_loop():
    logits = torch.randn(3, 5, 4)
    logp = logits.log_softmax(-2)
    support = torch.linspace(-2, 2, 5)
    expected = torch.zeros(3, 4)
    for b in range(3):
        for a in range(4):
            for k in range(5):
                expected[b, a] += logp[b, k, a].exp() * support[k]
    torch.testing.assert_close(expected_action_values(logp, support), expected)
    torch.testing.assert_close(expected_action_values(logp_for_q(Q), SUPPORT), Q)


@pytest.mark.parametrize(
    "space, expected",
    [
        ("categorical", [1, 3]),
        ("one_hot", [[0, 1, 0, 0], [0, 0, 0, 1]]),
        ("multi_one_hot", [[0, 1, 0, 1], [0, 1, 0, 1]]),
        ("binary", [[1, 1, 0, 1], [0, 0, 0, 1]]),
    ],
)
def test_every_action_space_hand_computed(space, expected):
    logp = logp_for_q(Q)
    module = DistributionalQValueModule(space, support=SUPPORT, var_nums=2)
    action, value = module(logp)
    assert action.dtype == torch.int64
    assert action.tolist() == expected
    assert value is logp
    td = module(TensorDict(action_value=logp, batch_size=[2]))
    assert sorted(td.keys()) == ["action", "action_value"]


@pytest.mark.parametrize("spec, space", [(OneHot(4), "one-hot"), (Categorical(4), "categorical"), (Binary(4), "binary")])
def test_spec_decides_action_space(spec, space):
    assert DistributionalQValueModule(None, SUPPORT, spec=spec).action_space == space


def test_var_nums_inferred_from_spec():
    module = DistributionalQValueModule(None, SUPPORT, spec=MultiOneHot([1, 3]))
    assert module.var_nums == [1, 3]
    action, _ = module(logp_for_q(Q))
    assert action.tolist() == [[1, 1, 0, 0], [1, 0, 0, 1]]


def test_ties_first_max_exactly_one():
    q = torch.tensor([[0.5, 0.5, 0.5, -0.5]])
    action, _ = DistributionalQValueModule("one-hot", SUPPORT)(logp_for_q(q))
    assert action.tolist() == [[1, 0, 0, 0]]


def test_support_is_a_float_buffer():
    module = DistributionalQValueModule("categorical", support=torch.arange(3))
    assert "support" in dict(module.named_buffers())
    assert module.support.dtype == torch.get_default_dtype()
    assert module.support.tolist() == [0.0, 1.0, 2.0]


def test_defect2_masked_action_never_wins_even_with_negative_values():
    # Every allowed action has a negative expected value; a masked action must not win with Q = 0.
    q = torch.tensor([[-0.9, -0.5, -0.8], [-0.2, -0.1, -0.6]])
    mask = torch.tensor([[True, False, True], [True, False, True]])
    module = DistributionalQValueModule("categorical", SUPPORT, action_mask_key="action_mask")
    td = module(TensorDict(action_value=logp_for_q(q), action_mask=mask, batch_size=[2]))
    assert td["action"].tolist() == [2, 0]
    one_hot = DistributionalQValueModule("one-hot", SUPPORT, action_mask_key="action_mask")
    assert one_hot(logp_for_q(q), mask)[0].tolist() == [[0, 0, 1], [1, 0, 0]]


@pytest.mark.parametrize("space", ["categorical", "one-hot", "mult-one-hot", "binary"])
def test_mask_every_space(space):
    mask = torch.tensor([[True, False, True, True], [True, True, True, False]])
    module = DistributionalQValueModule(space, SUPPORT, var_nums=2, action_mask_key="action_mask")
    expected = {
        "categorical": [0, 1],
        "one-hot": [[1, 0, 0, 0], [0, 1, 0, 0]],
        "mult-one-hot": [[1, 0, 0, 1], [0, 1, 1, 0]],
        "binary": [[1, 0, 0, 1], [0, 0, 0, 0]],
    }[space]
    assert module(logp_for_q(Q), mask)[0].tolist() == expected


def test_mask_with_atom_dim():
    mask = torch.tensor([[True, False, True, True], [True, True, True, False]]).unsqueeze(-2)  # [B, 1, A]
    module = DistributionalQValueModule("categorical", SUPPORT, action_mask_key="action_mask")
    assert module(logp_for_q(Q), mask)[0].tolist() == [0, 1]


def test_mask_errors():
    module = DistributionalQValueModule("categorical", SUPPORT, action_mask_key="action_mask")
    with pytest.raises(ValueError, match="forbids every action in at least one row"):
        module(logp_for_q(Q), torch.tensor([[True] * 4, [False] * 4]))
    with pytest.raises(TypeError, match="action mask must be a bool tensor"):
        module(logp_for_q(Q), torch.ones(2, 4))
    with pytest.raises(ValueError, match=r"must have shape \[\*B, A\] or \[\*B, 1, A\], got \(2, 2, 4\)"):
        module(logp_for_q(Q), torch.ones(2, 2, 4, dtype=torch.bool))


def test_error_k_mismatch():
    module = DistributionalQValueModule("categorical", support=torch.linspace(0, 1, 3))
    with pytest.raises(ValueError, match=r"support has K=3 atoms but the input has 2 on its atom dim \(-2\)"):
        module(logp_for_q(Q))


def test_error_not_log_probabilities():
    module = DistributionalQValueModule("categorical", SUPPORT)
    probs = logp_for_q(Q).exp()
    with pytest.raises(ValueError, match=r"not log-probabilities \(it has values > 0\)"):
        module(probs)


def test_error_input_rank_and_support_shape():
    module = DistributionalQValueModule("categorical", SUPPORT)
    with pytest.raises(ValueError, match=r"expected log-probabilities of shape \[\*B, K, A\], got shape \(4,\)"):
        module(torch.zeros(4))
    with pytest.raises(ValueError, match=r"support must be a 1-D tensor of atom values, got shape \(2, 2\)"):
        DistributionalQValueModule("categorical", torch.zeros(2, 2))


def test_error_unknown_space_and_missing_key():
    with pytest.raises(ValueError, match="unknown action_space 'bogus'; valid action spaces"):
        DistributionalQValueModule("bogus", SUPPORT)
    with pytest.raises(KeyError, match="keys present"):
        DistributionalQValueModule("categorical", SUPPORT)(TensorDict(observation=torch.zeros(2)))


def test_safe_projection():
    spec = Categorical(4, mask=torch.tensor([True, False, True, True]))
    action, _ = DistributionalQValueModule(None, SUPPORT, spec=spec, safe=True)(logp_for_q(Q))
    assert action.tolist() == [0, 3]  # 1 is forbidden by the spec: projected to the nearest lower allowed


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3 * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(-1, 3, 2).log_softmax(-2)


def test_hook():
    net = _Net()
    hook = DistributionalQValueHook("one_hot", support=torch.arange(3))
    assert hook.action_space == "one-hot"
    assert hook.support.tolist() == [0.0, 1.0, 2.0]
    net.register_forward_hook(hook)
    x = torch.randn(5, 4)
    action, logp = net(x)
    q = expected_action_values(logp, torch.arange(3.0))
    assert torch.equal(action.argmax(-1), q.argmax(-1)) and (action.sum(-1) == 1).all()


def test_the_log_space_check_runs_on_the_cpu_only():
    # Off the CPU the check's answer would have to be read back at every acting step and update (a
    # wait for the device); like rlkit's other checks of tensor contents it runs on the CPU only. A
    # meta tensor stands in for a device tensor here: reading any of its values raises.
    probs = logp_for_q(Q).exp()
    with pytest.raises(ValueError, match=r"not log-probabilities \(it has values > 0\)"):
        expected_action_values(probs, SUPPORT)
    q = expected_action_values(probs.to("meta"), SUPPORT.to("meta"))
    assert q.device.type == "meta" and q.shape == Q.shape
    module = DistributionalQValueModule("categorical", SUPPORT).to("meta")
    action, _ = module(probs.to("meta"))
    assert action.device.type == "meta" and action.shape == Q.shape[:-1]
