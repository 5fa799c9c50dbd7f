"""Action-space names and the greedy kernel called directly."""
from __future__ import annotations

import pytest
import torch

from rlkit.data import Composite, OneHot
from rlkit.modules import QValueModule, canonical_action_space, greedy_action
from rlkit.modules._action_space import action_leaf_spec, chosen_value


@pytest.mark.parametrize(
    "alias, canonical",
    [("categorical", "categorical"), ("one_hot", "one-hot"), ("One-Hot", "one-hot"), ("mult_one_hot", "mult-one-hot"),
     ("multi_one_hot", "mult-one-hot"), ("binary", "binary")],
)
def test_canonical_names(alias, canonical):
    assert canonical_action_space(alias) == canonical


def test_greedy_kernel_unknown_space():
    with pytest.raises(ValueError, match="unknown action_space 'argmax'; valid action spaces"):
        greedy_action(torch.zeros(3), "argmax")


def test_chosen_value_ignores_minus_inf_of_unchosen_entries():
    values = torch.tensor([float("-inf"), 2.0, 1.0])
    assert chosen_value(values, torch.tensor([0, 1, 1]), "binary").tolist() == [3.0]
    assert chosen_value(values, torch.tensor(1), "categorical").tolist() == [2.0]


def test_chosen_value_takes_a_categorical_index_with_or_without_a_trailing_dim():
    values = torch.tensor([[1.0, 5.0, 3.0], [4.0, 0.5, 2.0]])
    expected = [[5.0], [2.0]]
    assert chosen_value(values, torch.tensor([1, 2]), "categorical").tolist() == expected
    assert chosen_value(values, torch.tensor([[1], [2]]), "categorical").tolist() == expected


def test_binary_all_masked_row_raises_like_the_others():
    # One rule for every action space: a row whose mask allows nothing is a bug in the mask.
    module = QValueModule("binary", action_mask_key="action_mask")
    with pytest.raises(ValueError, match="forbids every action in at least one row"):
        module(torch.tensor([1.0, -1.0]), torch.tensor([False, False]))


def test_composite_without_action_entry():
    assert isinstance(action_leaf_spec(Composite(action=OneHot(2))), OneHot)
    with pytest.raises(KeyError, match=r"the Composite spec has no entry 'action'; keys: \['act'\]"):
        QValueModule(spec=Composite(act=OneHot(2)))


@pytest.mark.parametrize("space", ["categorical", "one-hot", "mult-one-hot", "binary"])
def test_a_masked_greedy_action_off_the_cpu_reads_nothing_back(space):
    """The check that a row allows some action runs on the CPU only: on an accelerator it would wait
    for the device at every acting step. The meta device, which holds no values, raises on any read;
    on the CPU a row that allows nothing still raises."""
    values, mask = torch.zeros(2, 4), torch.tensor([[True, False, False, True], [False, False, False, False]])
    action = greedy_action(values.to("meta"), space, mask=mask.to("meta"), var_nums=2)
    assert action.device.type == "meta" and action.shape == ((2,) if space == "categorical" else (2, 4))
    with pytest.raises(ValueError, match="forbids every action"):
        greedy_action(values, space, mask=mask, var_nums=2)
