"""Metric loggers: console progress, CSV, wandb, TensorBoard, and their fan-out.

Every logger takes plain Python objects (paths, numbers, dicts); the builder maps the config to them.
"""
from __future__ import annotations

from rlkit.trainers.loggers.base import (
    END_REASONS,
    EndReason,
    Logger,
    MultiLogger,
    NoneLogger,
    to_scalar_metrics,
)
from rlkit.trainers.loggers.console import ConsoleLogger
from rlkit.trainers.loggers.csv_logger import CSVLogger, DamagedCSVError, read_checked_csv, read_metrics_csv
from rlkit.trainers.loggers.tensorboard_logger import TensorBoardLogger
from rlkit.trainers.loggers.wandb_logger import WandbLogger, WandbMode

__all__ = [
    "CSVLogger",
    "ConsoleLogger",
    "DamagedCSVError",
    "END_REASONS",
    "EndReason",
    "Logger",
    "MultiLogger",
    "NoneLogger",
    "TensorBoardLogger",
    "WandbLogger",
    "WandbMode",
    "read_checked_csv",
    "read_metrics_csv",
    "to_scalar_metrics",
]
