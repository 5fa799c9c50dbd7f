"""Seed, build, train, close: the only place besides the builders that sees a config."""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rlkit.builders import apply_overrides, resolved_container, validate_config
from rlkit.factories import build_trainer
from rlkit.trainers.checkpoint import find_checkpoint, load_checkpoint
from rlkit.utils.io import atomic_write

CONFIG_FILE = "config.yaml"


def seed_everything(seed: int) -> None:
    """Seeds python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# What a run writes into its directory (besides Hydra's .hydra/ and the log file).
RUN_OUTPUTS = (CONFIG_FILE, "metrics.csv", "episodes.csv", "checkpoints")


def check_fresh_run_dir(run_dir: str | os.PathLike) -> None:
    """Refuses to start a new run in a directory that already holds one: its ``metrics.csv`` and
    ``episodes.csv`` would get a second run's rows appended and its checkpoint replaced.

    Raises:
        FileExistsError: naming the run's files, how to continue that run and how to start elsewhere.
    """
    run_dir = Path(run_dir)
    found = [name for name in RUN_OUTPUTS if (run_dir / name).exists()]
    if found:
        raise FileExistsError(
            f"{run_dir} already holds a run ({', '.join(found)}); continue it with resume={run_dir}, "
            "or start the new run in another directory (hydra.run.dir=...)"
        )


def load_run_config(run_dir: str | os.PathLike, overrides: list[str] | None = None) -> DictConfig:
    """The saved config of ``run_dir`` with ``key=value`` overrides (``resume`` is dropped)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: {path} does not exist (is {run_dir} an rlkit run directory?)")
    saved = OmegaConf.to_container(OmegaConf.load(path))
    extra = [o for o in (overrides or []) if o.split("=", 1)[0].lstrip("+") != "resume"]
    return apply_overrides(saved, extra)


def run(cfg: DictConfig, output_dir: str | os.PathLike, *, overrides: list[str] | None = None) -> dict:
    """Trains the run described by ``cfg`` into ``output_dir``; returns the last evaluation metrics.

    Args:
        cfg: the composed config (``conf/config.yaml``).
        output_dir: the run directory (config, metrics, checkpoints).
        overrides: the command-line overrides; with ``cfg.resume`` they are applied to the saved config.

    Raises:
        FileExistsError: a new run (no ``cfg.resume``) into a directory that already holds a run.

    Examples:
        >>> from hydra import compose, initialize_config_dir  # doctest: +SKIP
        >>> with initialize_config_dir(config_dir="/abs/conf", version_base="1.3"):  # doctest: +SKIP
        ...     run(compose("config", overrides=["total_frames=2000"]), "outputs/demo")
    """
    output_dir = Path(output_dir)
    checkpoint = None
    if cfg.get("resume"):
        checkpoint = find_checkpoint(cfg.resume)
        cfg = load_run_config(output_dir, overrides)
    else:
        check_fresh_run_dir(output_dir)
    settings = validate_config(cfg)
    torch.set_num_threads(settings.root.num_threads)
    seed_everything(settings.root.seed)
    output_dir.mkdir(parents=True, exist_ok=True)
    container = resolved_container(cfg)
    container["resume"] = None
    with atomic_write(output_dir / CONFIG_FILE) as f:
        f.write(OmegaConf.to_yaml(OmegaConf.create(container)))
    state = load_checkpoint(checkpoint) if checkpoint is not None else None
    trainer = build_trainer(settings, output_dir, container, resume_state=state)
    try:
        if state is not None:
            trainer.load_state_dict(state)
        return trainer.fit()
    finally:
        trainer.close()
