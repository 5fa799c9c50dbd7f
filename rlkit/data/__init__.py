"""Specs and replay buffers.

``specs`` holds the spec base class and the discrete specs, ``box_specs`` the continuous ones,
``composite`` the keyed container; import them from here."""
from __future__ import annotations

from rlkit.data.box_specs import Bounded, Unbounded
from rlkit.data.composite import Composite
from rlkit.data.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer
from rlkit.data.specs import (
    Binary,
    Categorical,
    MultiOneHot,
    OneHot,
    OneHotDiscreteTensorSpec,
    TensorSpec,
)

__all__ = [
    "Binary",
    "Bounded",
    "Categorical",
    "Composite",
    "MultiOneHot",
    "OneHot",
    "OneHotDiscreteTensorSpec",
    "PrioritizedReplayBuffer",
    "ReplayBuffer",
    "TensorSpec",
    "Unbounded",
]
