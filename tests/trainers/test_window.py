"""The trainer's log window: means over the updates of a window, losses with changing keys, state."""
from __future__ import annotations

import pytest
import torch

from rlkit.trainers.trainer import _Window


def test_means_over_the_window_then_reset():
    window = _Window()
    window.add_losses({"loss_a": torch.tensor(1.0), "loss_b": torch.tensor(2.0)}, torch.tensor(0.5))
    window.add_losses({"loss_a": torch.tensor(3.0), "loss_b": torch.tensor(6.0)}, torch.tensor(1.5))
    window.add_episodes(torch.tensor([10.0, 20.0]), torch.tensor([10, 20]))
    assert window.flush() == {"loss_a": 2.0, "loss_b": 4.0, "grad_norm": 1.0, "episode_return": 15.0,
                              "episode_length": 15.0, "episodes": 2}
    assert not window.pending and window.flush() == {}


def test_sums_are_float64_like_a_loop_of_python_floats():
    window = _Window()
    values = [0.1 * (i + 1) for i in range(1000)]
    for v in values:
        window.add_losses({"loss_value": torch.tensor(v, dtype=torch.float32)}, torch.tensor(v))
    expected = sum(float(torch.tensor(v, dtype=torch.float32)) for v in values) / len(values)
    out = window.flush()
    assert out["loss_value"] == pytest.approx(expected, rel=1e-15)
    assert out["grad_norm"] == pytest.approx(expected, rel=1e-15)


def test_keys_that_come_and_go_count_as_zero_where_missing():
    window = _Window()
    window.add_losses({"loss_a": torch.tensor(1.0)}, torch.tensor(1.0))
    window.add_losses({"loss_a": torch.tensor(1.0), "loss_b": torch.tensor(4.0)}, torch.tensor(1.0))
    window.add_losses({"loss_b": torch.tensor(2.0)}, torch.tensor(4.0))
    assert window.flush() == {"loss_a": 2 / 3, "loss_b": 2.0, "grad_norm": 2.0}


def test_mixed_dtypes_are_summed_in_float64():
    window = _Window()
    window.add_losses({"loss_a": torch.tensor(1.0, dtype=torch.float64), "loss_b": torch.tensor(1.0)},
                      torch.tensor(3.0, dtype=torch.float16))
    assert window.flush() == {"loss_a": 1.0, "loss_b": 1.0, "grad_norm": 3.0}


def test_state_round_trip_continues_the_same_means():
    window = _Window()
    window.add_losses({"loss_a": torch.tensor(1.0), "loss_b": torch.tensor(3.0)}, torch.tensor(2.0))
    window.add_episodes(torch.tensor([5.0]), torch.tensor([5]))
    state = window.state_dict()
    assert state["loss_sums"]["loss_a"].dtype == torch.float64 and state["grad_norm_sum"].item() == 2.0
    other = _Window()
    other.load_state_dict(state)
    for w in (window, other):
        w.add_losses({"loss_a": torch.tensor(3.0), "loss_b": torch.tensor(5.0)}, torch.tensor(4.0))
    assert other.flush() == window.flush() == {"loss_a": 2.0, "loss_b": 4.0, "grad_norm": 3.0,
                                               "episode_return": 5.0, "episode_length": 5.0, "episodes": 1}
    empty = _Window()
    empty.load_state_dict(_Window().state_dict())
    assert not empty.pending and empty.flush() == {}
