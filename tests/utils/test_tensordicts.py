"""assembled(): the public TensorDict constructor's result."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from rlkit.utils.tensordicts import assembled


def _source() -> dict:
    return {"obs": torch.randn(4, 3), "action": torch.arange(4),
            "next": {"reward": torch.ones(4, 1), "deeper": {"flag": torch.zeros(4, dtype=torch.bool)}}}


@pytest.mark.parametrize("device", [None, torch.device("cpu")])
def test_same_tensordict_as_the_public_constructor(device):
    source = _source()
    got = assembled(source, torch.Size([4]), device)
    want = TensorDict(_source() | {}, batch_size=[4], device=device)
    assert type(got) is TensorDict and got.batch_size == want.batch_size and got.device == want.device
    assert sorted(got.keys(True, True), key=str) == sorted(want.keys(True, True), key=str)
    assert isinstance(got["next"], TensorDict) and got["next", "deeper"].batch_size == torch.Size([4])
    for key in got.keys(True, True):
        assert got[key] is source[key] if isinstance(key, str) else torch.equal(got[key], want[key])
    got["obs"] += 1  # shares the given tensors, as the public constructor does
    assert torch.equal(source["obs"], got["obs"])


def test_batchless():
    loss = torch.tensor(2.0)
    td = assembled({"loss_value": loss}, torch.Size([]))
    assert td.batch_size == torch.Size([]) and td["loss_value"] is loss
