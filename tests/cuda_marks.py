"""Marks for tests that need a CUDA device.

Such a test is skipped where there is none (CI, this project's machines) and selected on a machine
with one by ``pytest -m cuda`` (what ``scripts/device_check.py`` runs first).
"""
from __future__ import annotations

import pytest
import torch

#: The marks of a test (or of one parameter) that needs CUDA.
NEEDS_CUDA = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

#: ``@pytest.mark.parametrize("device", DEVICES)``: on the CPU always, on CUDA where there is one.
DEVICES = ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)]


def needs_cuda(test):
    """Decorates a test that needs CUDA (``NEEDS_CUDA``'s marks)."""
    for mark in reversed(NEEDS_CUDA):
        test = mark(test)
    return test
