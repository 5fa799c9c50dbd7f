"""rlkit: config-driven DQN, C51 and A2C on torch + tensordict."""
from __future__ import annotations

__version__ = "0.1.0"
