"""Test-wide settings: one torch thread, wandb offline in a temp dir, no network."""
from __future__ import annotations

import os
import tempfile

import pytest
import torch

_WANDB_TMP = tempfile.mkdtemp(prefix="rlkit-wandb-")
for _var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
    os.environ[_var] = _WANDB_TMP
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
