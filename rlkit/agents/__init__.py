"""The built-in algorithms' agents; importing this package registers them (:mod:`rlkit.registry`).

Each module holds one algorithm's config schema, its agent builder and its registry entry.
"""
from __future__ import annotations

from rlkit.agents.a2c import A2C, A2CConfig, build_a2c
from rlkit.agents.c51 import C51, C51Config, build_c51
from rlkit.agents.common import Agent
from rlkit.agents.dqn import DQN, DQNConfig, build_dqn

__all__ = ["A2C", "A2CConfig", "Agent", "C51", "C51Config", "DQN", "DQNConfig", "build_a2c", "build_c51", "build_dqn"]
