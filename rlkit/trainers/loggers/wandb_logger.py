"""Weights & Biases logging (offline by default, so runs work without network or an account)."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from rlkit.trainers.loggers.base import EndReason, Logger
from rlkit.utils.io import atomic_write

__all__ = ["WandbLogger", "WandbMode", "resume_id"]

WandbMode = Literal["offline", "online", "disabled"]
WANDB_MODES: tuple[str, ...] = get_args(WandbMode)
RUN_ID_FILE = "rlkit-run-id"  # under <run_dir>/wandb/: the id a resumed run continues


def _id_file(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / "wandb" / RUN_ID_FILE


def resume_id(run_dir: str | os.PathLike[str], mode: WandbMode) -> str | None:
    """The id of the wandb run a resumed logger on ``run_dir`` continues: the recorded one in
    ``"online"`` mode, ``None`` (a new run) offline, disabled or when none was recorded."""
    id_file = _id_file(run_dir)
    if mode != "online" or not id_file.is_file():
        return None
    return id_file.read_text().strip() or None


class WandbLogger(Logger):
    """Logs metrics and the config to one wandb run stored under ``<run_dir>/wandb/``.

    Each instance owns its own wandb run, made with ``wandb.init(reinit="create_new")``, which leaves
    the other runs of the process open: the seeds of a multi-seed run log side by side, each into its
    own run, and sequential runs in one process (a Hydra multirun with the basic launcher) each get
    their own run directory. (``"finish_previous"`` finished the first seed's run as the second
    seed's started, and its next row failed the run.) ``log_metrics``
    uses ``step`` as wandb's step; wandb drops (with a warning) a call whose step is lower than the
    latest one it has seen, and merges calls at the same step into one row.

    ``log_end`` records why training ended in the run's summary (``end_reason``). ``close`` finishes
    the run; wandb's service writes the rest of an offline run's log in the background (at the latest
    when the process exits, which waits for it), so ``wandb sync`` an offline run once its process has
    ended. rlkit reads nothing back from wandb's files. ``wandb`` is imported when the logger is
    created (it takes about a second).

    Args:
        run_dir: the run's output directory; wandb writes to ``<run_dir>/wandb/``.
        project: wandb project.
        name: run display name (wandb picks one when ``None``).
        group: groups runs in the UI, e.g. the seeds of one sweep point.
        mode: ``"offline"`` writes to disk only (upload later with ``wandb sync``), ``"online"``
            streams to the server, ``"disabled"`` makes every call a no-op.
        config: the resolved run config, as a plain nested dict.
        tags: run tags.
        resume: in ``"online"`` mode, continue the wandb run of an earlier logger on ``run_dir``
            (its id is kept in ``<run_dir>/wandb/rlkit-run-id``) instead of starting a new one;
            wandb ignores steps at or below the last one it recorded. Offline, wandb cannot resume
            (``wandb sync`` of two offline runs with one id keeps only the second), so each
            segment is its own run, with the same name and group. See :func:`resume_id`.

    Examples:
        >>> import tempfile
        >>> from rlkit.trainers.loggers import WandbLogger
        >>> with WandbLogger(tempfile.mkdtemp(), mode="disabled") as logger:  # offline: the same calls
        ...     logger.log_metrics({"loss_value": 0.25}, step=64)
        ...     logger.log_end("target", "stopped early at frame 64", step=64)
        ...     logger.run.summary["loss_value"], logger.run.summary["end_reason"]
        (0.25, 'target')
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        project: str = "rlkit",
        name: str | None = None,
        group: str | None = None,
        mode: WandbMode = "offline",
        config: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        resume: bool = False,
    ) -> None:
        if mode not in WANDB_MODES:
            raise ValueError(f"unknown wandb mode {mode!r}; valid modes: {', '.join(WANDB_MODES)}")
        import wandb  # slow import: only when this logger is used

        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.mode: WandbMode = mode
        run_id = resume_id(self.run_dir, mode) if resume else None
        self.run = wandb.init(
            dir=str(self.run_dir),
            id=run_id,
            resume="allow" if run_id else None,
            project=project,
            name=name,
            group=group,
            mode=mode,
            config=dict(config) if config is not None else None,
            tags=list(tags) if tags is not None else None,
            reinit="create_new",
        )
        if mode != "disabled":
            id_file = _id_file(self.run_dir)
            id_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(id_file) as f:
                f.write(self.run.id)

    @property
    def wandb_dir(self) -> Path | None:
        """This run's own directory (``<run_dir>/wandb/offline-run-...``); ``None`` when disabled."""
        if self.mode == "disabled":
            return None
        return Path(self.run.dir).parent

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.run.log(metrics, step=step)

    def _log_config(self, config: Mapping[str, Any]) -> None:
        self.run.config.update(dict(config), allow_val_change=True)

    def _log_end(self, reason: EndReason, message: str, step: int) -> None:
        self.run.summary["end_reason"] = reason

    def _close(self) -> None:
        self.run.finish()
