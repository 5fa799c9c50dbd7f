"""Settings for the docstring examples (``pytest --doctest-modules rlkit``, part of ``make test``).

Each example runs with empty globals, as in a fresh interpreter: it imports what it uses instead of
reading the names of the module that holds it. wandb keeps its files (offline runs, logs, cache) in
a temporary directory, as in the test suite.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

_WANDB_TMP = tempfile.mkdtemp(prefix="rlkit-doctest-wandb-")
for _var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
    os.environ.setdefault(_var, _WANDB_TMP)
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(autouse=True)
def _fresh_doctest_globals(request: pytest.FixtureRequest) -> Iterator[None]:
    """A doctest's globals start empty (pytest fills in ``getfixture`` and ``doctest_namespace``
    after the autouse fixtures ran)."""
    test = getattr(request.node, "dtest", None)
    if test is not None:
        test.globs.clear()
        test.globs["__name__"] = "__main__"
    yield
