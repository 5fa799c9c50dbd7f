"""The contract every loss honours, run over every registered loss (and double DQN)."""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from loss_builders import CASES, transition_batch
from tensordict import TensorDict

import rlkit.agents  # noqa: F401  (registers the built-in algorithms)
from rlkit.objectives import LossModule
from rlkit.registry import ALGORITHMS


def test_every_registered_loss_is_covered():
    covered = {type(build(**{})) for build, _ in CASES.values()}
    assert {entry.loss for entry in ALGORITHMS.values()} <= covered


@pytest.fixture(params=sorted(CASES))
def case(request) -> tuple[Callable[..., LossModule], tuple[int, ...]]:
    return CASES[request.param]


def _loss_entries(out: TensorDict) -> dict[str, torch.Tensor]:
    entries = {k: v for k, v in out.items() if k.startswith("loss_")}
    assert entries, "a loss must return at least one loss_* entry"
    return entries


def test_loss_entries_are_finite_scalars_and_diagnostics_detached(case):
    build, shape = case
    out = build()(transition_batch(shape))
    assert out.batch_size == torch.Size([])
    for key, value in _loss_entries(out).items():
        assert value.shape == torch.Size([]), key
        assert torch.isfinite(value), key
        assert value.requires_grad, key
    for key, value in out.items():
        if not key.startswith("loss_"):
            assert not value.requires_grad, key


def test_gradients_reach_online_parameters_and_not_targets(case):
    build, shape = case
    loss = build()
    out = loss(transition_batch(shape))
    sum(_loss_entries(out).values()).backward()
    params = dict(loss.named_parameters())
    assert params
    for name, param in params.items():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    for name, buffer in loss.named_buffers():
        assert not buffer.requires_grad and buffer.grad is None, name
    assert not any(name.startswith("target_") for name in params)


def _loss_total(loss: LossModule, td: TensorDict) -> torch.Tensor:
    with torch.no_grad():
        return sum(_loss_entries(loss(td.clone())).values())


@pytest.mark.parametrize("flag", ["terminated", "truncated"])
def test_bootstrap_stops_on_terminated_not_truncated(case, flag):
    build, shape = case
    loss = build()
    td = transition_batch(shape, terminated=flag == "terminated", truncated=flag == "truncated")
    moved = td.clone()
    moved["next", "observation"] = moved["next", "observation"] + 5.0
    changed = not torch.allclose(_loss_total(loss, td), _loss_total(loss, moved))
    # A terminal next state is never valued; a truncated one is.
    assert changed == (flag == "truncated")


def test_reduction_none_gives_per_sample_values_averaging_to_mean(case):
    build, shape = case
    td = transition_batch(shape)
    mean_loss, none_loss, sum_loss = build(), build(reduction="none"), build(reduction="sum")
    none_loss.load_state_dict(mean_loss.state_dict())
    sum_loss.load_state_dict(mean_loss.state_dict())
    means = _loss_entries(mean_loss(td.clone()))
    per_sample = _loss_entries(none_loss(td.clone()))
    sums = _loss_entries(sum_loss(td.clone()))
    assert per_sample.keys() == means.keys()
    for key, value in per_sample.items():
        assert value.shape == torch.Size(shape), key
        torch.testing.assert_close(value.mean(), means[key])
        torch.testing.assert_close(value.sum(), sums[key])


def test_loss_does_not_modify_the_batch_except_priorities(case):
    build, shape = case
    td = transition_batch(shape)
    before = td.clone()
    build()(td)
    for key in before.keys(True, True):
        assert torch.equal(td[key], before[key]), key
    assert set(td.keys(True, True)) - set(before.keys(True, True)) <= {"td_error"}
