"""TensorBoard event files, through ``torch.utils.tensorboard`` (needs the optional ``tensorboard``)."""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlkit.trainers.loggers.base import Logger

__all__ = ["TensorBoardLogger"]

INSTALL_HINT = 'pip install "rlkit[tensorboard]"'


class TensorBoardLogger(Logger):
    """Writes scalars to TensorBoard event files in ``<run_dir>/tensorboard/``.

    Each metric becomes a scalar series with ``step`` as its x-axis; ``log_config`` stores the config
    as JSON text under the tag ``"config"``. Requires the optional ``tensorboard`` package.

    Args:
        run_dir: the run's output directory.
        resumed_at: on resume, the frames of the checkpoint it resumes from: the points an earlier
            segment wrote after them (lost by an interrupt, or the abandoned branch of a rewind, which
            ``metrics.csv`` drops too) are purged from what TensorBoard shows (``SummaryWriter``'s
            ``purge_step``), so each step holds the values the run kept.

    Raises:
        ImportError: ``tensorboard`` is not installed (the message gives the install command).

    Examples:
        >>> import importlib.util
        >>> import tempfile
        >>> from rlkit.trainers.loggers import TensorBoardLogger
        >>> if importlib.util.find_spec("tensorboard") is not None:  # the optional package
        ...     with TensorBoardLogger(tempfile.mkdtemp()) as logger:
        ...         logger.log_metrics({"loss_value": 0.25}, step=64)
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, resumed_at: int | None = None) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(
                f"TensorBoardLogger needs the optional 'tensorboard' package ({err}); "
                f"install it with: {INSTALL_HINT}, or choose another logger (csv, wandb)"
            ) from err
        self.log_dir = Path(run_dir) / "tensorboard"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        purge = None if resumed_at is None else int(resumed_at) + 1  # (the rows at the checkpoint's frames stay)
        self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge)

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, global_step=step)
        self._writer.flush()

    def _log_config(self, config: Mapping[str, Any]) -> None:
        text = json.dumps(config, indent=2, sort_keys=True, default=str)
        # Markdown code block so TensorBoard's text tab keeps the indentation.
        self._writer.add_text("config", "```\n" + text + "\n```")

    def _close(self) -> None:
        self._writer.close()
