"""TorchRL's import path of its TensorDict modules (``torchrl.modules.tensordict_module``), so that
code written against it runs with ``rlkit`` in place of ``torchrl``; the classes are those of
:mod:`rlkit.modules` (import them from there in new code). :mod:`.actors` is the path of the actors.

Examples:
    >>> from rlkit.modules import QValueModule as Q
    >>> from rlkit.modules.tensordict_module import QValueModule
    >>> QValueModule is Q
    True
"""
from __future__ import annotations

from rlkit.modules.actors import SafeModule, SafeSequential
from rlkit.modules.exploration import EGreedyModule
from rlkit.modules.tensordict_module import actors
from rlkit.modules.tensordict_module.actors import *  # noqa: F403 (the actors' names, as TorchRL's path has them)

__all__ = sorted([*actors.__all__, "EGreedyModule", "SafeModule", "SafeSequential"])
