"""Losses (DQN, C51, A2C), their base class and target-network updaters.

Examples:
    >>> import torch
    >>> from rlkit.modules import QValueActor
    >>> from rlkit.objectives import DQNLoss, SoftUpdate, ValueEstimators
    >>> loss = DQNLoss(QValueActor(torch.nn.Linear(4, 2), action_space="categorical"), double_dqn=True)
    >>> _ = loss.make_value_estimator(ValueEstimators.TD0, gamma=0.9)
    >>> updater = SoftUpdate(loss, tau=0.01)
"""
from __future__ import annotations

from rlkit.objectives._functional import add_random_module
from rlkit.objectives.a2c import A2CLoss
from rlkit.objectives.c51 import DistributionalDQNLoss
from rlkit.objectives.common import LossModule
from rlkit.objectives.dqn import DQNLoss
from rlkit.objectives.target_updaters import HardUpdate, SoftUpdate, TargetNetUpdater
from rlkit.objectives.utils import distance_loss
from rlkit.objectives.value import ValueEstimators

__all__ = [
    "A2CLoss",
    "DQNLoss",
    "DistributionalDQNLoss",
    "HardUpdate",
    "LossModule",
    "SoftUpdate",
    "TargetNetUpdater",
    "ValueEstimators",
    "add_random_module",
    "distance_loss",
]
