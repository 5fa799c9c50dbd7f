"""Training loop, evaluation, loggers and checkpoints (no algorithm is known by name here)."""
from __future__ import annotations

from rlkit.trainers.callbacks import TrainerCallback
from rlkit.trainers.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from rlkit.trainers.evaluator import Evaluator
from rlkit.trainers.loggers import (
    ConsoleLogger,
    CSVLogger,
    Logger,
    MultiLogger,
    NoneLogger,
    TensorBoardLogger,
    WandbLogger,
    read_metrics_csv,
)
from rlkit.trainers.trainer import (
    NonFiniteError,
    Trainer,
    TrainerSettings,
    TrainingInterrupted,
)

__all__ = [
    "CSVLogger",
    "ConsoleLogger",
    "Evaluator",
    "Logger",
    "MultiLogger",
    "NonFiniteError",
    "NoneLogger",
    "TensorBoardLogger",
    "Trainer",
    "TrainerCallback",
    "TrainerSettings",
    "TrainingInterrupted",
    "WandbLogger",
    "find_checkpoint",
    "load_checkpoint",
    "read_metrics_csv",
    "save_checkpoint",
]
