"""rlkit: config-driven DQN, C51 and A2C on torch + tensordict.

The library entry points are imported on first use (``import rlkit`` stays cheap):

- :func:`rlkit.train` (:func:`rlkit.cli.api.train`): trains a run from ``key=value`` overrides;
- :func:`rlkit.load_agent` (:func:`rlkit.agent.load_agent`): a run's trained :class:`~rlkit.agent.Agent`;
- :func:`rlkit.evaluate` (:func:`rlkit.evaluation.evaluate`): evaluation episodes and ``results.json``;
- :func:`rlkit.export` (:func:`rlkit.exporter.export_policy`): the greedy policy as a standalone file.

Examples:
    >>> import rlkit
    >>> callable(rlkit.load_agent), callable(rlkit.train), callable(rlkit.evaluate), callable(rlkit.export)
    (True, True, True, True)
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from rlkit.agent import Agent, load_agent
    from rlkit.cli.api import TrainResult, train
    from rlkit.evaluation import evaluate
    from rlkit.exporter import export_policy as export

__all__ = ["Agent", "TrainResult", "evaluate", "export", "load_agent", "train"]

# name -> (module, attribute): resolved by __getattr__ on first access.
_LAZY = {
    "Agent": ("rlkit.agent", "Agent"),
    "load_agent": ("rlkit.agent", "load_agent"),
    "TrainResult": ("rlkit.cli.api", "TrainResult"),
    "train": ("rlkit.cli.api", "train"),
    "evaluate": ("rlkit.evaluation", "evaluate"),
    "export": ("rlkit.exporter", "export_policy"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rlkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
