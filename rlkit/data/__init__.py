"""Specs and replay buffers."""
from __future__ import annotations

from rlkit.data.replay_buffers import PrioritizedReplayBuffer, ReplayBuffer
from rlkit.data.specs import (
    Binary,
    Bounded,
    Categorical,
    Composite,
    MultiOneHot,
    OneHot,
    OneHotDiscreteTensorSpec,
    TensorSpec,
    Unbounded,
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
