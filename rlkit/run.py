"""Seed, build, train, close: one run in one directory, with one writer, checked before it writes.

The order of a start is what makes a run trustworthy:

1. validate the config and build every component in memory (nothing written yet);
2. take the run directory's lock (:class:`~rlkit.rundir.RunDir`): one writer per directory;
3. on resume, load the checkpoint, verify its integrity and that it belongs to this run, and that
   ``total_frames`` is not below the frames already done;
4. only then touch files: remove stale temporary files, write ``config.yaml`` and the provenance
   files, truncate the CSVs to the checkpoint; a fresh start writes its frame-0 checkpoint and then,
   last, ``config.yaml``, which commits it.

A fresh start that fails before it commits removes what it wrote; one killed before it commits
leaves no ``config.yaml``, and the next start into that directory clears it. A committed run always
holds a checkpoint to resume from.
"""
from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rlkit.builders import Settings, apply_overrides, resolved_container, validate_config
from rlkit.errors import CheckpointError, ConfigError, RunDirError
from rlkit.factories import (
    build_multiseed_trainer,
    build_trainer,
    open_multiseed_outputs,
    open_outputs,
    seed_dir_name,
)
from rlkit.rundir import COMMIT_NAME, RunDir
from rlkit.trainers import Trainer
from rlkit.trainers.multiseed import MultiSeedTrainer
from rlkit.trainers.checkpoint import find_checkpoint, load_checkpoint
from rlkit.utils.io import atomic_write

__all__ = ["CONFIG_FILE", "PROVENANCE_DIR", "load_run_config", "preflight", "run", "run_dir_of", "seed_everything"]

CONFIG_FILE = COMMIT_NAME  # the saved config; its creation commits a fresh start
#: Where a start records how it was launched: the first start in it, resume ``k`` in ``resume_<k>/``.
PROVENANCE_DIR = ".hydra"

log = logging.getLogger("rlkit")


def seed_everything(seed: int) -> None:
    """Seeds python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_dir_of(resume: str | os.PathLike[str]) -> Path:
    """The run directory of ``resume``: the directory itself, or the run a checkpoint file belongs to
    (``<run>/checkpoints/<file>``, or ``<run>/<file>``)."""
    path = Path(resume)
    if path.is_file():
        return path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return path


def load_run_config(run_dir: str | os.PathLike, overrides: list[str] | None = None) -> DictConfig:
    """The saved config of ``run_dir`` with ``key=value`` overrides (``resume`` is dropped)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"cannot resume: {path} does not exist (is {run_dir} an rlkit run directory?)")
    # A mapping: rlkit writes the file (a hand-edited list would fail in apply_overrides).
    saved = cast(dict, OmegaConf.to_container(OmegaConf.load(path)))
    extra = [o for o in (overrides or []) if o.split("=", 1)[0].lstrip("+") != "resume"]
    return apply_overrides(saved, extra)


def preflight(cfg: DictConfig) -> Settings:
    """Everything a start checks before its run directory may exist: the config (:func:`validate_config`),
    then every component built in memory (the env and its spaces, the networks, the replay buffer's
    memory) and closed again. Writes nothing.

    Raises:
        RlkitError: the first problem, in one line.
    """
    settings = validate_config(cfg)
    _build(settings, Path(".")).close()
    return settings


def _build(settings: Settings, run_dir: Path) -> Trainer | MultiSeedTrainer:
    """The run's trainer: the ordinary one, or the batched multi-seed one for ``num_seeds > 1``."""
    if settings.root.num_seeds > 1:
        return build_multiseed_trainer(settings, run_dir,
                                       drop_non_finite=settings.root.trainer.drop_non_finite_seeds)
    return build_trainer(settings, run_dir)


def _seed_configs(container: dict, trainer: MultiSeedTrainer) -> list[dict]:
    """Each seed's config, as its ordinary run would have saved it: its seed, ``num_seeds`` 1."""
    return [{**container, "seed": seed, "num_seeds": 1} for seed in trainer.seeds]


def _open(trainer: Trainer | MultiSeedTrainer, settings: Settings, run_dir: Path, container: dict,
          resume_state: dict | None = None) -> None:
    """Attaches the run's outputs; a multi-seed run writes each seed's config into its directory."""
    if isinstance(trainer, MultiSeedTrainer):
        configs = _seed_configs(container, trainer)
        open_multiseed_outputs(trainer, settings, configs, resume_state)
        for out, config in zip(trainer.outputs, configs):
            _write_config(out.run_dir, config)
    else:
        open_outputs(trainer, settings, run_dir, container, resume_state=resume_state)


def run(cfg: DictConfig, output_dir: str | os.PathLike, *, overrides: list[str] | None = None,
        provenance: Mapping[str, str] | None = None, validated: Settings | None = None) -> dict:
    """Trains the run described by ``cfg`` into ``output_dir``; returns the last evaluation metrics.

    Args:
        cfg: the composed config (``conf/config.yaml``).
        output_dir: the run directory (config, metrics, checkpoints). A new run needs a new or empty
            directory; with ``cfg.resume`` it must be the resumed run's directory.
        overrides: the command-line overrides; with ``cfg.resume`` they are applied to the saved config.
        provenance: files (name -> text) recording how this start was launched, written into
            ``.hydra/`` (the first start) or ``.hydra/resume_<k>/`` once the start is verified.
        validated: what :func:`validate_config` (or :func:`preflight`) returned for ``cfg``, when the
            caller checked it already (the command line does, before the run directory exists):
            the config is then not validated again. Ignored on resume (the run's saved config is).

    Raises:
        RlkitError: a refusal, before anything in ``output_dir`` changed: a bad config
            (``ConfigError``), an env that cannot be built (``EnvError``), a directory that is not
            empty or is held by another process (``RunDirError``), a checkpoint that is missing,
            corrupt, unsafe or of another run (``CheckpointError``), or a ``total_frames`` below the
            frames already done (``ConfigError``).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from hydra import compose, initialize_config_dir
        >>> import rlkit
        >>> from rlkit.run import run
        >>> conf = Path(rlkit.__file__).parents[1] / "conf"  # the configs of a source checkout
        >>> out = Path(tempfile.mkdtemp()) / "demo"
        >>> with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        ...     metrics = run(compose("config", overrides=["total_frames=1000", "trainer.progress=false"]), out)
        >>> sorted(metrics)
        ['eval_length', 'eval_return', 'eval_return_std']
        >>> sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
        ['checkpoints', 'config.yaml', 'episodes.csv', 'metrics.csv']
    """
    output_dir = Path(output_dir)
    if cfg.get("resume"):
        return _resume(cfg, output_dir, overrides, provenance)
    settings = validated if validated is not None else validate_config(cfg)
    torch.set_num_threads(settings.root.num_threads)
    seed_everything(settings.root.seed)
    trainer = _build(settings, output_dir)
    try:
        held = RunDir.claim(output_dir, fresh=True)
    except BaseException:
        trainer.close()
        raise
    try:
        container = _saved_config(cfg)
        try:
            _write_provenance(output_dir, provenance, segment=0)
            _open(trainer, settings, output_dir, container)
            trainer.save()  # frame 0: from here on the run can always be resumed
            _write_config(output_dir, container)  # the commit: written last (see rlkit.rundir)
            env = _env(trainer)
            log.info("start: %s %s seed %d, %d frames, run dir %s", settings.algo.name, env.env_id,
                     settings.root.seed, settings.root.total_frames, output_dir)
            if settings.root.num_seeds > 1:
                log.info("%d seeds %d..%d in one process, outputs in %s", settings.root.num_seeds, settings.root.seed,
                         settings.root.seed + settings.root.num_seeds - 1,
                         ", ".join(seed_dir_name(s) for s in range(settings.root.seed,
                                                                   settings.root.seed + settings.root.num_seeds)))
            if not env.exact_state:
                log.info("env %s cannot save its sub-envs' state: a resume of this run will restart the "
                         "episodes it interrupts (everything else resumes exactly)", env.env_id)
        except BaseException:
            trainer.close()
            held.abandon()
            raise
        return _fit(trainer)
    finally:
        held.release()


def _resume(cfg: DictConfig, run_dir: Path, overrides: list[str] | None,
            provenance: Mapping[str, str] | None) -> dict:
    named = run_dir_of(cfg.resume)
    if named.resolve() != run_dir.resolve():
        raise RunDirError(
            f"resume={cfg.resume} belongs to the run in {named}, but the output directory is {run_dir}; a "
            "resumed run continues in its own directory (do not set hydra.run.dir with resume=)"
        )
    checkpoint = find_checkpoint(cfg.resume)
    held = RunDir.claim(run_dir, fresh=False)
    try:
        verified = _verify_resume(run_dir, overrides, checkpoint)
    except BaseException:
        held.release(restore=True)  # refused: the directory byte for byte as it was
        raise
    trainer, settings, state = verified.trainer, verified.settings, verified.state
    try:
        try:
            # Verified: from here on the run's files change.
            stale = held.remove_stale_temp_files()
            container = _saved_config(verified.cfg)
            segment = _next_segment(run_dir)
            _write_config(run_dir, container)
            _write_provenance(run_dir, provenance, segment=segment)
            _open(trainer, settings, run_dir, container, resume_state=state)
            log.info("resume %d: from %s at %d frames, to %d frames", segment, checkpoint, int(state["frames"]),
                     settings.root.total_frames)
            if stale:
                log.info("removed %d temporary file(s) of interrupted writes: %s", len(stale),
                         ", ".join(p.name for p in stale))
            env = _env(trainer)
            if env.restarted:
                log.warning(
                    "env %s cannot save its sub-envs' state: this resume is exact in everything but the %d "
                    "interrupted episode(s), which restart (reset with the run's seed)",
                    env.env_id, env.num_envs)
        except BaseException:
            trainer.close()
            raise
        return _fit(trainer)
    finally:
        held.release()


@dataclass
class _Verified:
    """A resume that passed every check: its config, settings, checkpoint and loaded trainer."""

    cfg: DictConfig
    settings: Settings
    state: dict
    trainer: Trainer | MultiSeedTrainer


def _env(trainer: Trainer | MultiSeedTrainer):
    """The (first seed's) training env."""
    if isinstance(trainer, MultiSeedTrainer):
        return trainer.collector.collectors[0].env
    return trainer.collector.env


def _verify_resume(run_dir: Path, overrides: list[str] | None, checkpoint: Path) -> _Verified:
    """The resumed run built in memory with the checkpoint loaded into it, after every check: the
    run's config with the overrides, the checkpoint's integrity, format and fit, and a
    ``total_frames`` not below the frames done. Nothing in ``run_dir`` is written."""
    cfg = load_run_config(run_dir, overrides)
    settings = validate_config(cfg)
    torch.set_num_threads(settings.root.num_threads)
    seed_everything(settings.root.seed)
    state = load_checkpoint(checkpoint)
    done = int(state["frames"])
    if settings.root.total_frames < done:
        raise ConfigError(f"total_frames={settings.root.total_frames} is below the {done} frames this run "
                          f"has done; give total_frames >= {done}")
    trainer = _build(settings, run_dir)
    try:
        try:
            trainer.load_state_dict(state)
        except CheckpointError as err:
            raise type(err)(f"{checkpoint} does not belong to this run: {err}") from err
    except BaseException:
        trainer.close()
        raise
    return _Verified(cfg, settings, state, trainer)


def _fit(trainer) -> dict:
    try:
        result = trainer.fit()
        log.info("end: %d frames, last evaluation %s", trainer.frames, result)
        return result
    finally:
        trainer.close()


def _saved_config(cfg: DictConfig) -> dict:
    container = resolved_container(cfg)
    container["resume"] = None
    return container


def _next_segment(run_dir: Path) -> int:
    """1 + the number of resumes recorded in the run's provenance directory."""
    folder = run_dir / PROVENANCE_DIR
    if not folder.is_dir():
        return 1
    return 1 + sum(1 for p in folder.iterdir() if p.is_dir() and p.name.startswith("resume_"))


def _write_config(run_dir: Path, container: dict) -> None:
    with atomic_write(run_dir / CONFIG_FILE) as f:
        f.write(OmegaConf.to_yaml(OmegaConf.create(container)))


def _write_provenance(run_dir: Path, provenance: Mapping[str, str] | None, *, segment: int) -> None:
    if provenance:
        folder = run_dir / PROVENANCE_DIR if segment == 0 else run_dir / PROVENANCE_DIR / f"resume_{segment}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in provenance.items():
            with atomic_write(folder / name) as f:
                f.write(text)
