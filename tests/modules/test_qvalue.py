"""QValueModule / QValueHook: every action space against hand-computed actions and values."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from torch import nn

from rlkit.data import Binary, Bounded, Categorical, Composite, MultiOneHot, OneHot
from rlkit.modules import Actor, QValueHook, QValueModule

VALUES = torch.tensor([[1.0, 3.0, -2.0, 0.5], [-1.0, -0.5, -3.0, 2.0]])


def test_categorical_hand_computed():
    action, value, chosen = QValueModule("categorical")(VALUES)
    assert action.dtype == torch.int64
    assert action.tolist() == [1, 3]
    assert value is VALUES
    assert chosen.tolist() == [[3.0], [2.0]]


@pytest.mark.parametrize("name", ["one-hot", "one_hot", "ONE_HOT"])
def test_one_hot_hand_computed_and_alias(name):
    module = QValueModule(name)
    assert module.action_space == "one-hot"
    action, _, chosen = module(VALUES)
    assert action.dtype == torch.int64
    assert action.tolist() == [[0, 1, 0, 0], [0, 0, 0, 1]]
    assert chosen.tolist() == [[3.0], [2.0]]


@pytest.mark.parametrize("name", ["mult-one-hot", "mult_one_hot", "multi_one_hot"])
def test_mult_one_hot_hand_computed(name):
    # Groups of sizes [2, 2]: argmax of [1, 3] and of [-2, 0.5]; chosen = 3 + 0.5.
    module = QValueModule(name, var_nums=2)
    assert module.action_space == "mult-one-hot"
    action, _, chosen = module(VALUES)
    assert action.tolist() == [[0, 1, 0, 1], [0, 1, 0, 1]]
    assert chosen.tolist() == [[3.5], [1.5]]


def test_mult_one_hot_uneven_groups():
    # Groups [1, 3]: the first group is always on; second group argmax of [3, -2, 0.5] / [-0.5, -3, 2].
    action, _, chosen = QValueModule("mult-one-hot", var_nums=[1, 3])(VALUES)
    assert action.tolist() == [[1, 1, 0, 0], [1, 0, 0, 1]]
    assert chosen.tolist() == [[4.0], [1.0]]


def test_defect8_var_nums_inferred_from_multionehot_spec():
    module = QValueModule(spec=MultiOneHot([1, 3]))
    assert module.action_space == "mult-one-hot"
    assert module.var_nums == [1, 3]
    action, _, _ = module(VALUES)
    assert action.tolist() == [[1, 1, 0, 0], [1, 0, 0, 1]]


def test_defect1_binary_works():
    # Each value is the gain of switching that bit on; chosen = sum of the positive ones.
    module = QValueModule("binary")
    action, _, chosen = module(VALUES)
    assert action.dtype == torch.int64
    assert action.tolist() == [[1, 1, 0, 1], [0, 0, 0, 1]]
    assert chosen.tolist() == [[4.5], [2.0]]
    assert QValueModule(spec=Binary(4)).action_space == "binary"


def test_defect3_one_hot_ties_pick_first_max_once():
    values = torch.tensor([[2.0, 5.0, 5.0, 5.0], [1.0, 1.0, 1.0, 1.0]])
    action, _, chosen = QValueModule("one-hot")(values)
    assert action.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0]]
    assert action.sum(-1).tolist() == [1, 1]
    assert chosen.tolist() == [[5.0], [1.0]]  # not a sum over the tied entries
    cat, _, _ = QValueModule("categorical")(values)
    assert cat.tolist() == [1, 0]
    mult, _, mchosen = QValueModule("mult-one-hot", var_nums=2)(values)
    # Groups [2, 5] | [5, 5] and [1, 1] | [1, 1]: a tie inside a group keeps its first entry.
    assert mult.tolist() == [[0, 1, 1, 0], [1, 0, 1, 0]]
    assert mchosen.tolist() == [[10.0], [2.0]]


@pytest.mark.parametrize(
    "spec, space",
    [(OneHot(4), "one-hot"), (Categorical(4), "categorical"), (MultiOneHot([2, 2]), "mult-one-hot"), (Binary(4), "binary")],
)
def test_spec_class_decides_action_space(spec, space):
    module = QValueModule(spec=spec)
    assert module.action_space == space
    assert module.spec is spec
    # A composite is read at "action".
    assert QValueModule(spec=Composite(action=spec)).spec is spec


def test_batch_dims_and_tensordict_call():
    values = torch.randn(2, 3, 5)
    td = TensorDict(action_value=values, batch_size=[2, 3])
    out = QValueModule("one-hot")(td)
    assert out is td
    assert out["action"].shape == (2, 3, 5)
    assert out["chosen_action_value"].shape == (2, 3, 1)
    assert torch.equal(out["action"].argmax(-1), values.argmax(-1))
    assert torch.equal(out["chosen_action_value"].squeeze(-1), values.max(-1).values)


def test_kwarg_and_custom_key_calls():
    values = torch.tensor([0.0, 4.0, 1.0])
    default = QValueModule("categorical")
    assert default(action_value=values)[0] == 1
    custom = QValueModule("categorical", action_value_key="q")
    action, value, chosen = custom(q=values)
    assert action == 1 and chosen.tolist() == [4.0]
    assert custom.out_keys == ["action", "q", "chosen_action_value"]
    renamed = QValueModule("categorical", out_keys=["a", "v", "c"])
    td = renamed(TensorDict(action_value=values))
    assert td["a"] == 1 and td["c"].tolist() == [4.0]


@pytest.mark.parametrize("space", ["categorical", "one-hot", "mult-one-hot", "binary"])
def test_mask_never_chosen_and_value_unmasked(space):
    values = torch.tensor([[1.0, 3.0, -2.0, 0.5], [-1.0, -0.5, -3.0, 2.0]])
    mask = torch.tensor([[True, False, True, True], [True, True, True, False]])
    module = QValueModule(space, action_mask_key="action_mask", var_nums=2)
    td = module(TensorDict(action_value=values.clone(), action_mask=mask, batch_size=[2]))
    expected = {
        "categorical": [0, 1],
        "one-hot": [[1, 0, 0, 0], [0, 1, 0, 0]],
        "mult-one-hot": [[1, 0, 0, 1], [0, 1, 1, 0]],
        "binary": [[1, 0, 0, 1], [0, 0, 0, 0]],
    }[space]
    assert td["action"].tolist() == expected
    assert torch.equal(td["action_value"], values)  # the network output, unmasked
    # The tuple call takes the mask positionally too.
    assert module(values, mask)[0].tolist() == expected


def test_broadcast_mask_row():
    module = QValueModule("categorical", action_mask_key="action_mask")
    action, _, _ = module(VALUES, torch.tensor([True, False, True, False]))
    assert action.tolist() == [0, 0]


def test_all_masked_row_raises():
    module = QValueModule("categorical", action_mask_key="action_mask")
    mask = torch.tensor([[True, True, True, True], [False, False, False, False]])
    with pytest.raises(ValueError, match="forbids every action in at least one row"):
        module(VALUES, mask)
    mult = QValueModule("mult-one-hot", var_nums=2, action_mask_key="action_mask")
    with pytest.raises(ValueError, match=r"forbids every action .* \(of action group 1\)"):
        mult(VALUES, torch.tensor([True, True, False, False]))


@pytest.mark.parametrize("bad", [torch.tensor([1, 0, 1, 1]), torch.tensor([1.0, 0.0, 1.0, 1.0])])
def test_non_bool_mask_raises(bad):
    module = QValueModule("one-hot", action_mask_key="action_mask")
    with pytest.raises(TypeError, match="action mask must be a bool tensor"):
        module(VALUES, bad)


def test_mask_shape_mismatch_raises():
    module = QValueModule("one-hot", action_mask_key="action_mask")
    with pytest.raises(ValueError, match=r"mask of shape \(3,\) does not broadcast"):
        module(VALUES, torch.tensor([True, False, True]))


def test_safe_projects_onto_spec():
    # The spec forbids action 1; the greedy choice (1) is projected onto the first allowed one.
    spec = OneHot(4, mask=torch.tensor([True, False, True, True]))
    action, _, chosen = QValueModule(spec=spec, safe=True)(VALUES)
    assert action.tolist() == [[1, 0, 0, 0], [0, 0, 0, 1]]
    assert chosen.tolist() == [[1.0], [2.0]]  # value of the projected action
    unsafe, _, _ = QValueModule(spec=spec)(VALUES)
    assert unsafe.tolist()[0] == [0, 1, 0, 0]
    cat_spec = Categorical(4, mask=torch.tensor([True, False, False, True]))
    cat, _, _ = QValueModule(spec=cat_spec, safe=True)(VALUES)
    assert cat.tolist() == [0, 3]  # 1 -> nearest allowed (0); 3 stays


def test_error_unknown_action_space_lists_valid():
    with pytest.raises(ValueError, match=r"unknown action_space 'foo'; valid action spaces: 'categorical', 'one-hot'"):
        QValueModule("foo")


def test_error_missing_spec_and_action_space():
    with pytest.raises(ValueError, match="neither action_space nor spec was given"):
        QValueModule()


def test_error_spec_and_action_space_disagree():
    with pytest.raises(ValueError, match="action_space 'categorical' disagrees with the OneHot spec, which means 'one-hot'"):
        QValueModule("categorical", spec=OneHot(4))
    assert QValueModule("one_hot", spec=OneHot(4)).action_space == "one-hot"


def test_error_spec_without_discrete_class():
    with pytest.raises(ValueError, match="cannot tell the action space from a Bounded spec"):
        QValueModule(spec=Bounded(-1.0, 1.0, (2,)))


def test_error_missing_input_key_names_key_and_present_keys():
    module = QValueModule("categorical")
    with pytest.raises(KeyError, match=r"reads the action values from 'action_value', which is missing; keys present: \['observation'\]"):
        module(TensorDict(observation=torch.zeros(3)))
    masked = QValueModule("categorical", action_mask_key="action_mask")
    with pytest.raises(KeyError, match="reads the action mask from 'action_mask'"):
        masked(TensorDict(action_value=torch.zeros(3)))


def test_error_safe_without_spec():
    with pytest.raises(ValueError, match="safe=True projects the action onto a spec"):
        QValueModule("categorical", safe=True)


def test_error_wrong_number_of_out_keys():
    with pytest.raises(ValueError, match=r"writes 3 outputs .* got out_keys=\['action'\]"):
        QValueModule("categorical", out_keys=["action"])


def test_error_values_width_vs_spec():
    with pytest.raises(ValueError, match="have 4 entries on their action dim but the OneHot spec has 3"):
        QValueModule(spec=OneHot(3))(VALUES)


def test_error_mult_one_hot_var_nums():
    with pytest.raises(ValueError, match="'mult-one-hot' needs var_nums"):
        QValueModule("mult-one-hot")
    with pytest.raises(ValueError, match="var_nums must be positive"):
        QValueModule("mult-one-hot", var_nums=0)
    with pytest.raises(ValueError, match="non-empty list of positive group sizes"):
        QValueModule("mult-one-hot", var_nums=[2, 0])
    with pytest.raises(ValueError, match=r"var_nums \[3, 1\] disagrees with the MultiOneHot spec's nvec \[1, 3\]"):
        QValueModule(var_nums=[3, 1], spec=MultiOneHot([1, 3]))
    with pytest.raises(ValueError, match="var_nums=3 does not divide the 4 action values"):
        QValueModule("mult-one-hot", var_nums=3)(VALUES)
    with pytest.raises(ValueError, match=r"var_nums \[2, 3\] sums to 5 but there are 4 action values"):
        QValueModule("mult-one-hot", var_nums=[2, 3])(VALUES)


def test_hook_returns_triple_and_canonical_space():
    net = nn.Linear(4, 3)
    hook = QValueHook("one_hot")
    assert hook.action_space == "one-hot"
    net.register_forward_hook(hook)
    obs = torch.randn(5, 4)
    action, value, chosen = net(obs)
    expected = torch.nn.functional.linear(obs, net.weight, net.bias)
    assert torch.equal(value, expected)
    assert torch.equal(action.argmax(-1), expected.argmax(-1)) and (action.sum(-1) == 1).all()
    assert torch.equal(chosen.squeeze(-1), expected.max(-1).values)


class _MaskedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.linear(obs)


def test_hook_reads_mask_from_last_input():
    net = _MaskedNet()
    net.register_forward_hook(QValueHook("categorical", action_mask_key="action_mask"))
    actor = Actor(net, in_keys=["observation", "action_mask"], out_keys=["action", "action_value", "chosen_action_value"])
    mask = torch.tensor([[False, True, False]] * 6)
    td = actor(TensorDict(observation=torch.randn(6, 4), action_mask=mask, batch_size=[6]))
    assert (td["action"] == 1).all()


def test_hook_mask_without_mask_input_raises():
    net = nn.Linear(4, 3)
    net.register_forward_hook(QValueHook("categorical", action_mask_key="action_mask"))
    with pytest.raises(ValueError, match="reads the mask from the hooked module's last positional input"):
        net(torch.randn(2, 4))
