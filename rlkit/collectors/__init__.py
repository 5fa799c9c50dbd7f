"""Data collection: env + policy -> batches of transitions."""
from __future__ import annotations

from rlkit.collectors.collector import LAYOUTS, Collector

__all__ = ["LAYOUTS", "Collector"]
