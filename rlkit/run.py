"""Seed, build, train, close: one run in one directory, with one writer, checked before it writes.

The order of a start is what makes a run trustworthy:

1. validate the config and build every component in memory (nothing written yet);
2. on resume, read back the run's CSVs, every cell checked (a damaged one is refused before the
   lock is even taken); take the run directory's lock (:class:`~rlkit.rundir.RunDir`): one writer
   per directory;
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

import contextlib
import copy
import dataclasses
import logging
import os
import random
import re
import signal
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from rlkit.builders import Settings, apply_overrides, resolved_container, validate_config
from rlkit.config_schema import usable_cpus
from rlkit.data import Bounded, Categorical, OneHot
from rlkit.errors import (
    CheckpointError,
    CheckpointMismatchError,
    ConfigError,
    EnvError,
    MissingCheckpointError,
    RlkitError,
    RunDirError,
    failure_line,
)
from rlkit.envs.transforms import transform_settings
from rlkit.factories import (
    build_multiseed_trainer,
    build_trainer,
    open_multiseed_outputs,
    open_outputs,
    seed_dir_name,
    start_logger_backends,
)
from rlkit.registry import get_algorithm
from rlkit.rundir import CLOSED_NAME, COMMIT_NAME, RunDir, resume_override
from rlkit.trainers import Trainer, TrainerCallback, read_metrics_csv
from rlkit.trainers.trainer import nothing_to_stop, stop_signals
from rlkit.trainers.episodes import EpisodeRecorder, read_episodes
from rlkit.trainers.loggers import CSVLogger, DamagedCSVError
from rlkit.trainers.multiseed import MultiSeedTrainer
from rlkit.trainers.checkpoint import (
    LAST_NAME,
    checkpoint_dir,
    drop_replay,
    find_checkpoint,
    load_resume_state,
    no_space_error,
    set_aside_later_checkpoints,
)
from rlkit.utils.io import atomic_write
from rlkit.utils.values import as_int

__all__ = ["CLOSED_FILE", "CONFIG_FILE", "LOG_FILE", "PROVENANCE_DIR", "check_resume_target", "config_summary",
           "load_run_config", "preflight", "run", "run_dir_of", "run_log", "seed_everything"]

CONFIG_FILE = COMMIT_NAME  # the saved config; its creation commits a fresh start
#: Where a start records how it was launched: the first start in it, resume ``k`` in ``resume_<k>/``.
PROVENANCE_DIR = ".hydra"
#: The run's log in its directory (Hydra's job logging writes the same file, see run_log).
LOG_FILE = "train.log"
#: Written when a run's training ends with its closing evaluation done (``<frames>`` and a newline;
#: removed when a resume starts changing the run): what tells a complete run without ``metrics.csv``.
CLOSED_FILE = CLOSED_NAME
#: The folder a rewinding resume moves the later checkpoints into (``checkpoints/abandoned_<k>``).
_ABANDONED = re.compile(r"abandoned_(\d+)")
#: The format of train.log's lines, as conf/hydra/job_logging/rlkit.yaml writes them.
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"

log = logging.getLogger("rlkit")


class _Forward(logging.Handler):
    """Passes records on to the handlers above a logger that stopped propagating (see run_log)."""

    def __init__(self, parent: logging.Logger, level: int) -> None:
        super().__init__(level)
        self.parent = parent

    def emit(self, record: logging.LogRecord) -> None:
        self.parent.handle(record)


def _writes_into(folder: Path) -> bool:
    """Whether a file handler on the ``rlkit`` logger or above it already writes into ``folder``."""
    current: logging.Logger | None = log
    while current is not None:
        for handler in current.handlers:
            if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == folder:
                return True
        current = current.parent if current.propagate else None
    return False


@contextlib.contextmanager
def run_log(run_dir: str | os.PathLike[str]) -> Iterator[None]:
    """The run's log in ``<run_dir>/train.log`` while the block runs: the ``rlkit`` logger's INFO
    lines (start, config, evaluations, checkpoints, resumes, end) and its warnings.

    Under ``train.py`` Hydra's job logging writes that file already (``conf/hydra/job_logging``): a
    file handler above ``rlkit`` that writes into ``run_dir`` is found and nothing is added, so no line
    is written twice. Otherwise (``run(cfg, dir)`` in Python) a file handler is attached to ``rlkit``
    for the block. When ``rlkit``'s level lets no INFO record through, the logger is set to INFO and
    stops propagating for the block, and what it used to pass on (its previous level and up) still
    reaches the handlers above it: the application's own logging is unchanged. The file is created by
    the first line (a start refused before it logs leaves none).

    Examples:
        >>> import logging, tempfile
        >>> from pathlib import Path
        >>> from rlkit.run import run_log
        >>> run_dir = Path(tempfile.mkdtemp())
        >>> with run_log(run_dir):
        ...     logging.getLogger("rlkit").info("start: a demo")
        >>> (run_dir / "train.log").read_text().strip().endswith("[rlkit][INFO] - start: a demo")
        True
    """
    folder = Path(run_dir).resolve()
    if _writes_into(folder):
        yield
        return
    handler = logging.FileHandler(folder / LOG_FILE, delay=True, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    level, propagate = log.level, log.propagate
    effective = log.getEffectiveLevel()
    forward = _Forward(log.parent, effective) if effective > logging.INFO and log.parent is not None else None
    log.addHandler(handler)
    if forward is not None:
        log.setLevel(logging.INFO)
        log.propagate = False
        if propagate:
            log.addHandler(forward)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()
        if forward is not None:
            log.removeHandler(forward)
            log.setLevel(level)
            log.propagate = propagate


def _flat(prefix: str, value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [item for key, sub in value.items() for item in _flat(f"{prefix}.{key}", sub)]
    return [f"{prefix}={value}"]


def _warn_no_update(settings: Settings) -> None:
    """Warns when an off-policy run's budget ends before its first update (``algo.learning_starts``
    at or above ``total_frames``): a budget cut down from an experiment's (``dqn_atari``'s warm-up is
    80,000 frames) trained nothing and said only its return."""
    algo, total = settings.algo, settings.root.total_frames
    if not get_algorithm(algo.name).off_policy:
        return
    per_batch = algo.train_frequency * algo.num_envs
    collected = -(-total // per_batch) * per_batch  # (whole batches; the first update follows the batch reaching it)
    if algo.learning_starts > collected:
        log.warning("algo.learning_starts=%d > total_frames=%d: the run collects without a single update (lower "
                    "algo.learning_starts, or train longer)", algo.learning_starts, total)


def config_summary(settings: Settings, env_id: str) -> list[str]:
    """``train.log``'s config lines: the run in one line, then every setting of the algorithm and
    the value estimator (the hyperparameters, whatever the algorithm), each in one line.

    Examples:
        >>> from hydra import compose, initialize_config_dir
        >>> from pathlib import Path
        >>> import rlkit
        >>> from rlkit.builders import validate_config
        >>> from rlkit.run import config_summary
        >>> conf = Path(rlkit.__file__).parents[1] / "conf"
        >>> with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        ...     settings = validate_config(compose("config", overrides=["total_frames=20000"]))
        >>> print(config_summary(settings, "CartPole-v1")[0])
        config: algo dqn, env CartPole-v1, seed 0, total_frames 20000, device cpu, num_threads 1, value_estimator td0, logger csv
    """
    root = settings.root
    lines = [f"config: algo {settings.algo.name}, env {env_id}, seed {root.seed}, total_frames {root.total_frames}, "
             f"device {root.device}, num_threads {root.num_threads}, value_estimator {settings.value_estimator.name}, "
             f"logger {settings.logger.name}"]
    for section in ("algo", "value_estimator"):
        fields = dataclasses.asdict(getattr(settings, section))
        fields.pop("name", None)
        lines.append(f"config: {section} " + " ".join(item for key, sub in fields.items() for item in _flat(key, sub)))
    return lines


def seed_everything(seed: int) -> None:
    """Seeds python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_dir_of(resume: str | os.PathLike[str]) -> Path:
    """The run directory of ``resume``: the directory itself, or the run a checkpoint file belongs to
    (``<run>/checkpoints/<file>``, ``<run>/checkpoints/abandoned_<k>/<file>`` or ``<run>/<file>``)."""
    path = Path(resume)
    if path.is_file():
        folder = path.parent
        if _ABANDONED.fullmatch(folder.name) and folder.parent.name == "checkpoints":
            return folder.parent.parent
        return folder.parent if folder.name == "checkpoints" else folder
    return path


def check_resume_target(resume: str | os.PathLike[str]) -> None:
    """Refuses a ``resume=`` that names a file which is not a checkpoint (checkpoints are the ``.pt``
    files in ``<run>/checkpoints/``), or a checkpoint of a branch given up (``<run>/checkpoints/
    abandoned_<k>/``, see :func:`~rlkit.trainers.checkpoint.set_aside_later_checkpoints`): the run's
    CSVs were cut back to the snapshot that resume ``k`` rewound to and hold the branch kept, so the
    given-up one cannot continue in that run; it can be evaluated or exported.

    Raises:
        MissingCheckpointError: a file that is not a checkpoint.
        RunDirError: a checkpoint (or the folder) of an abandoned branch.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.run import check_resume_target
        >>> note = Path(tempfile.mkdtemp()) / "notes.txt"
        >>> _ = note.write_text("not a checkpoint")
        >>> try:
        ...     check_resume_target(note)
        ... except FileNotFoundError as err:
        ...     print(str(err).split(": ", 1)[1].split(" (")[0].removeprefix(str(note)))
         is not a checkpoint
    """
    path = Path(resume)
    folder = path.parent if path.is_file() else path
    branch = _ABANDONED.fullmatch(folder.name)
    if branch and folder.parent.name == "checkpoints" and (path.is_dir() or path.suffix == ".pt"):
        run_dir = folder.parent.parent
        raise RunDirError(
            f"cannot resume: {path} is {'in ' if path.is_file() else ''}a branch given up when resume "
            f"{branch.group(1)} of the run in {run_dir} rewound it to an earlier snapshot; the run's CSVs hold the "
            f"branch kept, so this one cannot continue there: evaluate or export it (python evaluate.py run={run_dir} "
            f"checkpoint={folder.name}/{path.name if path.is_file() else '<file>.pt'}), or continue the run's own "
            f"branch with {resume_override(run_dir)}"
        )
    if path.is_file() and path.suffix != ".pt":
        owner = run_dir_of(path)
        hint = f"; the run in {owner}: {resume_override(owner)}" if (owner / CONFIG_FILE).is_file() else ""
        raise MissingCheckpointError(
            f"cannot resume: {path} is not a checkpoint (checkpoints are the .pt files in <run dir>/checkpoints/): "
            f"give resume=<run dir> or resume=<run dir>/checkpoints/<file>.pt{hint}"
        )


def _check_run_files(run_dir: Path) -> None:
    """Reads every CSV a resume of ``run_dir`` reads back (``metrics.csv`` and ``episodes.csv``, the
    run's and each seed's of a multi-seed run) and refuses a damaged one, before the resume claims
    the run or changes any file.

    Raises:
        RunDirError: naming the file, the line and what is wrong.
    """
    folders = [run_dir, *sorted(p for p in run_dir.glob("seed_*") if p.is_dir())]
    for folder in folders:
        for path, read in ((folder / CSVLogger.FILENAME, read_metrics_csv),
                           (folder / EpisodeRecorder.FILENAME, read_episodes)):
            if not path.is_file():
                continue
            try:
                read(path)
            except DamagedCSVError as err:
                raise RunDirError(f"cannot resume: {err}; the file is damaged: repair that line (or restore the "
                                  "file from a copy) and resume again, the run's files are unchanged") from None
            except OSError as err:
                raise RunDirError(f"cannot resume: {path} cannot be read ({failure_line(err)})") from None


def load_run_config(run_dir: str | os.PathLike, overrides: list[str] | None = None, *,
                    action: str = "resume") -> DictConfig:
    """The saved config of ``run_dir`` with ``key=value`` overrides (``resume`` is dropped); its
    errors say what could not be done (``cannot <action>: ...``)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise RunDirError(f"cannot {action}: {path} does not exist (is {run_dir} an rlkit run directory?)")
    try:
        loaded = OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001 (yaml's and omegaconf's parse errors)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunDirError(f"cannot {action}: {path} is not a readable config ({type(err).__name__}: {first})") from None
    if not isinstance(loaded, DictConfig):  # rlkit writes a mapping
        raise RunDirError(f"cannot {action}: {path} holds a {type(loaded).__name__}, not the run's config (a mapping)")
    saved = cast(dict, OmegaConf.to_container(loaded))
    _fill_added_keys(saved, _root_defaults())
    extra = [o for o in (overrides or []) if o.split("=", 1)[0].lstrip("+") != "resume"]
    return apply_overrides(saved, extra)


def capped_threads(cfg: DictConfig) -> DictConfig:
    """``cfg`` (a saved run's config, read to evaluate or report it) with ``num_threads`` at most this
    machine's usable CPUs: a run trained on a larger machine is read with what this one has."""
    threads = cfg.get("num_threads")
    if isinstance(threads, int) and threads > usable_cpus():
        cfg.num_threads = usable_cpus()
    return cfg


def _root_defaults() -> dict:
    """The root config's own keys and their defaults (``conf/config.yaml`` less its defaults list and
    ``hydra`` section: their one owner); empty where the package runs without its ``conf/``."""
    path = Path(__file__).resolve().parents[1] / "conf" / "config.yaml"
    if not path.is_file():
        return {}
    root = cast(dict, OmegaConf.to_container(OmegaConf.load(path)))
    return {k: v for k, v in root.items() if k not in ("defaults", "hydra")}


def _fill_added_keys(saved: dict, defaults: dict, prefix: str = "") -> list[str]:
    """Gives ``saved`` (a run's config) the keys of ``defaults`` it lacks, in place, and returns them
    as ``key=value``: keys added to the root config after the run started take their defaults, which
    keep the behaviour the run had (``num_seeds: 1``, ``trainer.video_interval: null``), so that an
    older run still resumes and loads.

    Examples:
        >>> from rlkit.run import _fill_added_keys
        >>> saved = {"seed": 3, "trainer": {"log_interval": 100}}
        >>> _fill_added_keys(saved, {"seed": 0, "num_seeds": 1, "trainer": {"log_interval": 2000, "video_interval": None}})
        ['num_seeds=1', 'trainer.video_interval=None']
        >>> saved
        {'seed': 3, 'trainer': {'log_interval': 100, 'video_interval': None}, 'num_seeds': 1}
    """
    added = []
    for key, value in defaults.items():
        if key not in saved:
            saved[key] = value
            added.append(f"{prefix}{key}={value}")
        elif isinstance(value, dict) and isinstance(saved[key], dict):
            added += _fill_added_keys(saved[key], value, f"{prefix}{key}.")
    return added


def keys_added_since(run_dir: str | os.PathLike) -> list[str]:
    """The root config's keys that ``run_dir``'s saved config lacks (added since it started), as
    ``key=default``; :func:`load_run_config` gives them their defaults."""
    saved = cast(dict, OmegaConf.to_container(OmegaConf.load(Path(run_dir) / CONFIG_FILE)))
    return _fill_added_keys(saved, _root_defaults())


def preflight(cfg: DictConfig) -> Settings:
    """Everything a start checks before its run directory may exist: the config (:func:`validate_config`),
    then every component built in memory (the env and its spaces, the networks, the replay buffer's
    memory) and closed again. Writes nothing.

    The warnings of this build (a network taking frames unscaled, a replay storing stacks whole) are
    held back: the run's own build says them again, into its log, and they were printed twice.

    Raises:
        RlkitError: the first problem, in one line.
    """
    settings = validate_config(cfg)
    level = log.level
    log.setLevel(max(logging.ERROR, log.getEffectiveLevel()))
    try:
        trainer = _build(settings, Path("."))
        try:
            _probe_step(_env(trainer))
        finally:
            trainer.close()
    finally:
        log.setLevel(level)
    return settings


def _probe_step(env: Any) -> None:
    """One step of an env built in memory (and thrown away after): an env whose ``reset`` or ``step``
    breaks the gymnasium API, raises, or returns what rlkit refuses is refused in one line, naming the
    env, before the run directory exists. The action is a fixed valid one: the first allowed discrete
    action, the middle of a Box's bounds (0, or the finite bound, where a side is infinite); no random
    number is drawn. During training the same failures keep their traceback (they may be rlkit's)."""
    spec, n = env.action_spec, env.num_envs
    try:
        env.reset()
        mask = env.next_state_tensors()[1]
        if isinstance(spec, (Categorical, OneHot)):
            first = mask.to(torch.float32).argmax(-1) if mask is not None else torch.zeros(n, dtype=torch.long)
            action = torch.nn.functional.one_hot(first, spec.n) if isinstance(spec, OneHot) else first
        elif isinstance(spec, Bounded):
            low, high = spec.low.to(torch.float64), spec.high.to(torch.float64)
            middle = torch.where(low.isinf() | high.isinf(), torch.zeros_like(low), (low + high) / 2)
            middle = torch.where(low.isinf() & ~high.isinf(), high.clamp(max=0.0), middle)
            middle = torch.where(high.isinf() & ~low.isinf(), low.clamp(min=0.0), middle)
            action = middle.expand(n, *middle.shape)
        else:
            action = torch.zeros(n, *spec.shape)
        env.advance(action.to(spec.dtype))
    except RlkitError:
        raise
    except Exception as err:  # the env's own code, or its reset/step breaking the gymnasium API
        raise EnvError(f"env {env.env_id!r} failed in its first step: {failure_line(err)}") from err


def _build(settings: Settings, run_dir: Path,
           callbacks: Sequence[TrainerCallback] = ()) -> Trainer | MultiSeedTrainer:
    """The run's trainer: the ordinary one, or the batched multi-seed one for ``num_seeds > 1``.
    First the logger's optional package, when its settings check one (a run's start and resume, not
    the reading of a saved run to evaluate it)."""
    check_installed = getattr(settings.logger, "check_installed", None)
    if check_installed is not None:
        check_installed()
    if settings.root.num_seeds > 1:
        return build_multiseed_trainer(settings, run_dir, callbacks=callbacks,
                                       drop_non_finite=settings.root.trainer.drop_non_finite_seeds)
    return build_trainer(settings, run_dir, callbacks)


def _seed_configs(container: dict, trainer: MultiSeedTrainer) -> list[dict]:
    """Each seed's config, as its ordinary run would have saved it: its seed, ``num_seeds`` 1."""
    return [{**container, "seed": seed, "num_seeds": 1} for seed in trainer.seeds]


def _open(trainer: Trainer | MultiSeedTrainer, settings: Settings, run_dir: Path, container: dict,
          resume_state: dict | None = None, *, label: str = "", plain_progress: bool | None = None,
          backends: list | None = None) -> None:
    """Attaches the run's outputs; a multi-seed run writes each seed's config into its directory.
    ``backends``: the logger backends a resume started already
    (:func:`~rlkit.factories.start_logger_backends`)."""
    if isinstance(trainer, MultiSeedTrainer):
        configs = _seed_configs(container, trainer)
        open_multiseed_outputs(trainer, settings, configs, resume_state, label=label, plain_progress=plain_progress,
                               backends=backends)
        for out, config in zip(trainer.outputs, configs):
            _write_config(out.run_dir, config)
    else:
        open_outputs(trainer, settings, run_dir, container, resume_state=resume_state, label=label,
                     plain_progress=plain_progress, backend=None if backends is None else backends[0])


def _configs_of(trainer: Trainer | MultiSeedTrainer, container: dict) -> list[dict]:
    """The config each of the run's directories saves: each seed's, or the run's."""
    return _seed_configs(container, trainer) if isinstance(trainer, MultiSeedTrainer) else [container]


def run(cfg: DictConfig, output_dir: str | os.PathLike, *, overrides: list[str] | None = None,
        provenance: Mapping[str, str] | None = None, validated: Settings | None = None, label: str = "",
        plain_progress: bool | None = None,
        callbacks: Sequence[TrainerCallback] = ()) -> dict:
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
        label: prefixes the console's progress lines (a sweep job's ``[job 3 lr=0.001 seed=1]``).
        plain_progress: plain progress lines (``True``) or a redrawn bar (``False``); by default a bar
            when stderr is a terminal. ``trainer.progress=false`` shows neither.
        callbacks: given to the trainer (:class:`~rlkit.trainers.TrainerCallback`): called after each
            greedy evaluation, they may end the run early (a tuner's pruning does).

    The run's log goes to ``<output_dir>/train.log`` (:func:`run_log`): the start or resume, the
    config (:func:`config_summary`), each evaluation and checkpoint, and the end with its reason.

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
        ['checkpoints', 'config.yaml', 'episodes.csv', 'metrics.csv', 'train.log']
        >>> [line.split(" - ")[1].split(":")[0] for line in (out / "train.log").read_text().splitlines()]
        ['start', 'config', 'config', 'config', 'checkpoint', 'checkpoint', 'eval', 'end']
    """
    output_dir = Path(output_dir)
    console: dict[str, Any] = {"label": label, "plain_progress": plain_progress}
    if cfg.get("resume"):
        return _resume(cfg, output_dir, overrides, provenance, console, callbacks)
    settings = validated if validated is not None else validate_config(cfg)
    torch.set_num_threads(settings.root.num_threads)
    seed_everything(settings.root.seed)
    trainer = _build(settings, output_dir, callbacks)
    trainer.restored_config = restored_values(cfg, settings)
    try:
        held = RunDir.claim(output_dir, fresh=True)
    except BaseException:
        trainer.close()
        raise
    try:
        with run_log(output_dir):
            container = _saved_config(cfg, settings)
            try:
                _write_provenance(output_dir, provenance, segment=0, settings=settings)
                _open(trainer, settings, output_dir, container, **console)
                env = _env(trainer)
                env_id = env.env_id
                log.info("start: %s %s seed %d, %d frames, run dir %s", settings.algo.name, env_id,
                         settings.root.seed, settings.root.total_frames, output_dir)
                if settings.root.num_seeds > 1:
                    first, last = settings.root.seed, settings.root.seed + settings.root.num_seeds - 1
                    log.info("%d seeds %d..%d in one process, outputs in %s", settings.root.num_seeds, first, last,
                             ", ".join(seed_dir_name(s) for s in range(first, last + 1)))
                for line in config_summary(settings, env_id):
                    log.info("%s", line)
                _warn_no_update(settings)
                if not env.exact_state:
                    log.info("env %s cannot save its sub-envs' state: a resume of this run will restart the "
                             "episodes it interrupts (everything else resumes exactly)", env_id)
                trainer.save()  # frame 0: from here on the run can always be resumed
                _write_config(output_dir, container)  # the commit: written last (see rlkit.rundir)
            except BaseException:
                trainer.close()
                held.abandon()
                raise
            return _fit(trainer, output_dir)
    finally:
        held.release()


def _resume(cfg: DictConfig, run_dir: Path, overrides: list[str] | None,
            provenance: Mapping[str, str] | None, console: dict[str, Any],
            callbacks: Sequence[TrainerCallback] = ()) -> dict:
    check_resume_target(cfg.resume)
    named = run_dir_of(cfg.resume)
    if named.resolve() != run_dir.resolve():
        raise RunDirError(
            f"resume={cfg.resume} belongs to the run in {named}, but the output directory is {run_dir}; a "
            "resumed run continues in its own directory (do not set hydra.run.dir with resume=)"
        )
    checkpoint = find_checkpoint(cfg.resume)
    _check_run_files(run_dir)  # (before the claim: a damaged CSV leaves even the lock file untouched)
    held = RunDir.claim(run_dir, fresh=False)
    try:
        verified = _verify_resume(run_dir, overrides, checkpoint, callbacks)
        added = keys_added_since(run_dir) if (run_dir / CONFIG_FILE).is_file() else []
    except BaseException:
        held.release(restore=True)  # refused: the directory byte for byte as it was
        raise
    trainer, settings, state = verified.trainer, verified.settings, verified.state
    container = _saved_config(verified.cfg, settings)
    try:  # The logger's backends first (wandb without an API key fails here, with the run as it was).
        backends = start_logger_backends(trainer, settings, run_dir, _configs_of(trainer, container))
    except BaseException:
        trainer.close()
        held.release(restore=True)
        raise
    try:
        with run_log(run_dir):
            try:
                # Verified: from here on the run's files change; the run is no longer closed.
                (run_dir / CLOSED_FILE).unlink(missing_ok=True)
                stale = held.remove_stale_temp_files()
                segment = _next_segment(run_dir)
                # From an earlier snapshot: the later checkpoints belong to the branch given up, and a
                # crash from here on must resume this one. They go aside before the CSVs are cut back
                # (a crash in between resumes from the snapshot, whose rows the CSVs still hold).
                rewound = checkpoint.resolve() != (checkpoint_dir(run_dir) / LAST_NAME).resolve()
                aside = set_aside_later_checkpoints(run_dir, int(state["frames"]), f"abandoned_{segment}") \
                    if rewound else []
                _open(trainer, settings, run_dir, container, resume_state=state, backends=backends, **console)
                _write_config(run_dir, container)
                _write_provenance(run_dir, provenance, segment=segment, settings=settings)
                log.info("resume %d: from %s at %d frames, to %d frames", segment, Path(checkpoint).absolute(), int(state["frames"]),
                         settings.root.total_frames)
                if added:
                    log.info("config keys added since this run started take their defaults: %s", ", ".join(added))
                env = _env(trainer)
                for line in config_summary(settings, env.env_id):
                    log.info("%s", line)
                _warn_no_update(settings)
                if stale:
                    log.info("removed %d temporary file(s) of interrupted writes: %s", len(stale),
                             ", ".join(p.name for p in stale))
                if rewound:
                    trainer.save()  # last.pt: the resumed state (the later ones went aside, see above)
                    if aside:
                        log.info("the later checkpoints of the branch given up (%s) moved to %s",
                                 ", ".join(p.name for p in aside), aside[0].parent)
                if env.restarted:
                    log.warning(
                        "env %s cannot save its sub-envs' state: this resume is exact in everything but the %d "
                        "interrupted episode(s), which restart (reset with the run's seed)",
                        env.env_id, env.num_envs)
            except BaseException:
                trainer.close()
                raise
            return _fit(trainer, run_dir)
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


#: Config keys outside ``algo`` a resume cannot change: the checkpoint restores their values (the
#: discount and lambda are the value estimator's buffers) or the run's identity rests on them (the
#: seed). Each algorithm declares its own (:attr:`rlkit.registry.Algorithm.restored_on_resume`).
RESTORED_ON_RESUME = ("seed", "value_estimator.gamma", "value_estimator.lmbda")


#: Config keys that shape what a checkpoint holds (its env's state, its networks, its replay): a
#: resume cannot change them, and naming the key says more than the checkpoint's shape mismatch.
SHAPED_BY_CHECKPOINT = ("env.suite", "env.id", "env.game", "env.options", "env.make_kwargs", "env.vectorization",
                        "algo.num_envs", "algo.network", "algo.hidden_sizes", "algo.activation", "algo.buffer_size",
                        "algo.prioritized", "algo.n_atoms", "algo.shared_trunk", "algo.distribution")


def _restored_keys(cfg: DictConfig) -> tuple[str, ...]:
    return (*RESTORED_ON_RESUME, *(f"algo.{k}" for k in get_algorithm(str(cfg.algo.name)).restored_on_resume))


def restored_values(cfg: DictConfig, settings: Settings | None = None) -> dict[str, Any]:
    """The values of the keys a checkpoint restores (:data:`RESTORED_ON_RESUME` and the algorithm's),
    as plain Python values: what the trainer saves with each checkpoint (``"restored_config"``), so
    that a resume can tell a ``config.yaml`` edited by hand from the values the run trained with.
    ``settings``: ``cfg`` validated, whose numbers replace those given as strings (see
    :func:`with_validated_numbers`), as ``config.yaml`` saves them."""
    out: dict[str, Any] = {}
    for key in _restored_keys(cfg):
        value = OmegaConf.select(cfg, key)
        out[key] = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
    return out if settings is None else _restored_numbers(out, settings)


def _restored_numbers(values: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``values`` (of :func:`restored_values`) with the numbers ``settings`` holds for strings that spell them."""
    out = {}
    for key, value in values.items():
        first, *rest = key.split(".")
        validated: Any = getattr(settings, first) if first in _GROUPS else getattr(settings.root, first, None)
        for part in rest:
            validated = validated.get(part) if isinstance(validated, Mapping) else getattr(validated, part, None)
        out[key] = _take_numbers(copy.deepcopy(value), validated)
    return out


def _check_trained_with(state: dict, now: dict[str, Any], run_dir: Path, settings: Settings,
                        checkpoint: Path) -> None:
    """Refuses a checkpoint that recorded another value of a restored key than the run's
    ``config.yaml`` gives (the checkpoint's value would be used while the file says otherwise). The
    message blames the one of the two changed last (:func:`_changed_after`): a ``config.yaml``
    edited by hand (``ConfigError``), or another run's checkpoint put in this run
    (``CheckpointMismatchError``). A checkpoint of an older rlkit recorded none, or a number given as
    a string as that string (compared as the number ``settings`` holds)."""
    trained = state.get("restored_config")
    if not isinstance(trained, dict):
        return
    trained = _restored_numbers(trained, settings)
    differs = _first_difference(trained, {key: value for key, value in now.items() if key in trained})
    if differs is not None:
        name, old, new = differs
        if _changed_after(run_dir / CONFIG_FILE, checkpoint):
            raise ConfigError(f"{run_dir / CONFIG_FILE} has {name}={new!r}, but the run trained with {old!r}, which "
                              f"the checkpoint restores: was the file edited? put {old!r} back, or start a new run "
                              "for another value")
        raise CheckpointMismatchError(
            f"{checkpoint} looks like another run's: it was saved with {name}={old!r}, but this run's "
            f"{CONFIG_FILE} has {name}={new!r}; resume the run it belongs to, or put this run's own checkpoint back "
            f"(or, had {CONFIG_FILE} been edited, put {name}={old!r} back in it)"
        )


def _changed_after(path: Path, other: Path) -> bool:
    """Whether ``path`` was last modified after ``other`` (False when either cannot be read): of a
    ``config.yaml`` and a checkpoint that disagree, the one modified last is taken for the one that
    was changed (put there by hand); the message says so, and both cases are refused."""
    try:
        return path.stat().st_mtime_ns > other.stat().st_mtime_ns
    except OSError:
        return False


def _first_difference(before: dict[str, Any], after: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """The first restored key (``name, before, after``) whose values differ; a section is compared key
    by key, a missing key counting as null."""
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        pairs = ([(f"{key}.{k}", old.get(k), new.get(k)) for k in dict.fromkeys([*old, *new])]
                 if isinstance(old, dict) and isinstance(new, dict) else [(key, old, new)])
        for name, a, b in pairs:
            if a != b:
                return name, a, b
    return None


def _check_restored_keys(saved: DictConfig, cfg: DictConfig) -> None:
    """Refuses an override of a key the checkpoint restores (:data:`RESTORED_ON_RESUME` and the
    algorithm's): it would be recorded in ``config.yaml`` while the checkpoint's value is used. Each
    entry is a key, or a section whose every key counts."""
    differs = _first_difference(restored_values(saved), restored_values(cfg))
    if differs is not None:
        name, old, new = differs
        raise ConfigError(f"{name}={new!r} cannot change when resuming (the run has {old!r}): the checkpoint "
                          "restores it; start a new run for another value")
    missing = object()
    for key in SHAPED_BY_CHECKPOINT:
        old, new = (OmegaConf.select(c, key, default=missing) for c in (saved, cfg))
        old, new = (OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v for v in (old, new))
        if old is not missing and old != new:
            differs = (_first_difference({key: old}, {key: new}) if isinstance(old, dict) and isinstance(new, dict)
                       else None)
            if differs is not None:  # (a section: name its key that changed; a null key added or
                key, old, new = differs  # removed is no difference there: the sections are named whole)
            had = "left it unset: its default" if old is None else f"has {old!r}"
            raise ConfigError(f"{key}={new!r} cannot change when resuming (the run {had}): the checkpoint holds "
                              "the run's env, networks and replay as they were made; start a new run for another value")
    _check_device_kind(saved, cfg)
    transforms = [cast(list, OmegaConf.to_container(c.env.transforms, resolve=True)) for c in (saved, cfg)]
    if transform_settings(transforms[0]) != transform_settings(transforms[1]):
        raise ConfigError(f"env.transforms={transforms[1]} cannot change when resuming (the run has {transforms[0]}): "
                          "the checkpoint holds the run's env with its own transforms (and their state, e.g. "
                          "normalisation statistics); start a new run for other transforms")


def _check_device_kind(saved: DictConfig, cfg: DictConfig) -> None:
    """Refuses moving an off-policy run to another kind of device (``cuda`` to ``cpu`` or back): its
    replay buffer samples with a generator on the run's device, and a CPU generator's state and a
    CUDA one's are of different kinds (the buffer's check would then say only that the state does not
    fit). Another device of the same kind (``cuda:1``) and on-policy runs resume anywhere."""
    old, new = (torch.device(str(c.device)).type for c in (saved, cfg))
    if old != new and get_algorithm(str(saved.algo.name)).off_policy:
        raise ConfigError(f"device={cfg.device} cannot change when resuming this run (it trained on {saved.device}): "
                          f"its replay buffer samples with a generator on {old}, whose random stream cannot move to "
                          f"{new}; resume it with device={saved.device}, or evaluate/export its checkpoint on any "
                          "device")


def frame_ring_room(state: Mapping[str, Any]) -> int | None:
    """The largest batch, in transitions, that the frame replay rings of a checkpoint's ``state`` take
    (:class:`~rlkit.data.frames.FrameStorage`: its ring's slack, sized at the run's start for its
    batches); None without frame replay.

    Examples:
        >>> from rlkit.run import frame_ring_room
        >>> frame_ring_room({"replay_buffer": {"storage": {"frames": {"slack": 16, "stack": 4}}}})
        4
        >>> frame_ring_room({"replay_buffer": {"storage": {"data": {}}}}) is None
        True
    """
    rooms: list[int] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            frames = node.get("frames")
            if isinstance(frames, Mapping) and frames.get("slack") is not None and as_int(frames.get("stack")):
                rooms.append(int(frames["slack"]) // int(frames["stack"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(state.get("replay_buffer"))
    walk(state.get("replay_buffers"))
    return min(rooms) if rooms else None


def _check_frame_batches(state: Mapping[str, Any], settings: Settings, frames_per_batch: int) -> None:
    """Refuses a resume whose batches outgrow its frame replay's ring (sized at the run's start for
    its batches of ``algo.train_frequency x algo.num_envs`` transitions): the checkpoint loaded, and
    the run failed at its first batch, every later resume with it."""
    room = frame_ring_room(state)
    if room is None or frames_per_batch <= room:
        return
    algo = settings.algo
    raise ConfigError(f"algo.train_frequency={algo.train_frequency} cannot grow when resuming this run: its frame "
                      f"replay was sized at its start for batches of up to {room} transitions (algo.train_frequency x "
                      f"algo.num_envs={algo.num_envs}); resume with algo.train_frequency <= "
                      f"{max(1, room // algo.num_envs)}, or start a new run for larger batches")


def _verify_resume(run_dir: Path, overrides: list[str] | None, checkpoint: Path,
                   callbacks: Sequence[TrainerCallback] = ()) -> _Verified:
    """The resumed run built in memory with the checkpoint loaded into it, after every check: the
    run's config with the overrides (none of :data:`RESTORED_ON_RESUME`), the checkpoint's integrity,
    format and fit, and a ``total_frames`` not below the frames done. Nothing in ``run_dir`` is written."""
    saved, cfg = load_run_config(run_dir), load_run_config(run_dir, overrides)
    try:
        settings = validate_config(cfg, saved=True)
    except ConfigError as err:
        try:  # the command line's, or the file's own (edited by hand)?
            validate_config(saved, saved=True)
        except ConfigError as own:
            if str(own) == str(err):
                raise ConfigError(f"{run_dir / CONFIG_FILE} (the run's saved config): {err}") from None
        raise
    _check_restored_keys(saved, cfg)
    torch.set_num_threads(settings.root.num_threads)
    seed_everything(settings.root.seed)
    # The replay mapped from the file, not read into memory: copied into the trainer once, it is not
    # held twice while it loads (and not kept mapped once loaded: see drop_replay below).
    state = load_resume_state(checkpoint)
    _check_seeds(state, settings, checkpoint)
    done = int(state["frames"])
    total = settings.root.total_frames
    trainer = _build(settings, run_dir, callbacks)
    trainer.restored_config = restored_values(cfg, settings)
    try:
        _check_frame_batches(state, settings, trainer.collector.frames_per_batch)
        try:
            trainer.load_state_dict(state)
        except CheckpointError as err:
            raise type(err)(f"{checkpoint} does not belong to this run: {err}") from err
        _check_trained_with(state, restored_values(saved, settings), run_dir, settings, checkpoint)  # (the file)
        # The collector takes whole batches: a budget the last batch passed ends where this run ended.
        batch = trainer.collector.frames_per_batch
        if total <= done - batch:
            raise ConfigError(f"total_frames={total} is below the {done} frames this run has done; give "
                              f"total_frames >= {done}")
        if total <= done and (not trainer.end_pending() or closed_at_checkpoint(run_dir, state)):
            raise RunDirError(f"run {run_dir} is complete: {done} frames of total_frames={total}, its closing "
                              f"evaluation done; nothing to resume (give total_frames > {done} to train it further)")
    except BaseException:
        trainer.close()
        raise
    return _Verified(cfg, settings, drop_replay(state), trainer)


def _check_seeds(state: dict, settings: Settings, checkpoint: Path) -> None:
    """Refuses a checkpoint of other seeds than the run's ``seed`` and ``num_seeds`` (a multi-seed
    checkpoint holds ``"seeds"``, an ordinary one none), before the run's seeds are built.

    Raises:
        CheckpointMismatchError: naming the seeds each holds.
    """
    root = settings.root
    wanted = list(range(root.seed, root.seed + root.num_seeds)) if root.num_seeds > 1 else None
    held = [int(s) for s in state["seeds"]] if state.get("seeds") is not None else None
    if held == wanted:
        return
    what = f"seeds {held}" if held is not None else "one seed (an ordinary run's checkpoint, num_seeds 1)"
    trains = f"seeds {wanted}" if wanted is not None else f"seed {root.seed} alone (num_seeds 1)"
    raise CheckpointMismatchError(f"{checkpoint} does not belong to this run: it holds {what}, this run trains "
                                  f"{trains} (seed and num_seeds cannot change on resume)")


def closed_at_checkpoint(run_dir: Path, state: dict) -> bool:
    """Whether the closing row of a run whose end was pending at the checkpoint ``state`` was written:
    its ``metrics.csv`` (each running seed's, for a multi-seed run) holds a row after the checkpoint's
    rows, at its frame. A run's last checkpoint is saved before its closing evaluation and row, so a
    run stopped in between has no such row, and its resume finishes it. Without a ``metrics.csv``
    (``logger=none``), the run's own record of where it closed tells (:data:`CLOSED_FILE`)."""
    frames = int(state["frames"])
    if "outputs" in state:  # a multi-seed run: each seed's directory
        places = [(run_dir / f"seed_{out['seed']}", int(out["log_rows"])) for out in state["outputs"]
                  if out["status"] == "running"]
    else:
        places = [(run_dir, int(state.get("log_rows", 0)))]
    for folder, kept in places:
        try:
            rows = read_metrics_csv(folder)
        except FileNotFoundError:  # no metrics.csv (logger=none)
            return _closed_at(run_dir) == frames
        except (OSError, ValueError, KeyError):  # unreadable: the resume itself deals with it
            return False
        if len(rows) <= kept or rows[kept]["step"] != frames:
            return False
    return bool(places)


def _closed_at(run_dir: Path) -> int | None:
    """The frames at which the run's training last ended with its closing evaluation done
    (:data:`CLOSED_FILE`); None when it has not (or the record is unreadable: then the CSVs tell)."""
    try:
        return int((run_dir / CLOSED_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def _fit(trainer, run_dir: Path) -> dict:
    """Trains; once training ended with its closing evaluation, records that (:data:`CLOSED_FILE`):
    a resume of the run then knows it is complete, with or without ``metrics.csv``.

    The trainer handles stop signals while it trains; around it, a stop signal is a
    ``KeyboardInterrupt`` until training has completed, and then has nothing to stop
    (:func:`~rlkit.trainers.trainer.nothing_to_stop`) while the run closes: a complete run never
    ends with a signal's exit status, which a resume-until-success loop would retry forever."""
    completed = False

    def on_signal(signum: int, frame: Any) -> None:
        if not completed:
            raise KeyboardInterrupt
        nothing_to_stop(signum, frame)

    previous = {s: signal.signal(s, on_signal) for s in stop_signals()}
    try:
        try:
            metrics = trainer.fit()  # (which logs the end: its reason, frames, wall time, final metrics)
            completed = True
        except BaseException:
            try:  # (the failure is what the user hears: a close that fails too, on the same full disk, must not hide it)
                trainer.close()
            except Exception as err:  # noqa: BLE001
                log.warning("closing the run after its failure failed too: %s", failure_line(err))
            raise
        try:
            trainer.close()  # (the CSVs' last rows reach the disk here)
            with atomic_write(run_dir / CLOSED_FILE) as f:
                f.write(f"{int(trainer.frames)}\n")
        except OSError as err:
            full = no_space_error(err, run_dir, checkpoint_dir(run_dir) / LAST_NAME)
            if full is not None:
                raise full from err
            raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return metrics


def _saved_config(cfg: DictConfig, settings: Settings) -> dict:
    """The config a run saves: ``cfg`` resolved, ``resume`` null, and a number given as a string
    (``num_seeds='2'``, which validation accepted as 2) saved as the number the run uses."""
    container = resolved_container(cfg)
    container["resume"] = None
    return with_validated_numbers(container, settings)


_GROUPS = ("algo", "env", "value_estimator", "logger")


def with_validated_numbers(container: dict, settings: Settings) -> dict:
    """``container`` (a config as a dict) with every string that validation read as a number
    (``seed: '1'`` -> 1) replaced by that number, in place; other strings stay (``target_return:
    auto``, an interpolation, a W&B group ``'1e3'`` whose setting is a string).

    Examples:
        >>> from hydra import compose, initialize_config_dir
        >>> from pathlib import Path
        >>> import rlkit
        >>> from rlkit.builders import resolved_container, validate_config
        >>> from rlkit.run import with_validated_numbers
        >>> conf = Path(rlkit.__file__).parents[1] / "conf"
        >>> with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        ...     cfg = compose("config", overrides=["num_seeds='2'", "seed='1'", "value_estimator.gamma='0.98'"])
        >>> saved = with_validated_numbers(resolved_container(cfg), validate_config(cfg))
        >>> saved["num_seeds"], saved["seed"], saved["value_estimator"]["gamma"], saved["env"]["target_return"]
        (2, 1, 0.98, 'auto')
    """
    _take_numbers(container, settings.root)
    for group in _GROUPS:
        if isinstance(container.get(group), dict):
            _take_numbers(container[group], getattr(settings, group))
    return container


def _take_numbers(given: Any, validated: Any) -> Any:
    """``given`` with its strings that ``validated`` (the same part of the validated settings: a
    dataclass, mapping, list or value) holds as the number they spell replaced by that number."""
    if isinstance(given, str):
        if isinstance(validated, bool) or not isinstance(validated, (int, float)):
            return given
        try:
            number = type(validated)(given)
        except ValueError:
            return given
        return validated if number == validated else given
    if isinstance(given, dict):
        for key, value in given.items():
            if dataclasses.is_dataclass(validated) and not isinstance(validated, type):
                if any(f.name == key for f in dataclasses.fields(validated)):
                    given[key] = _take_numbers(value, getattr(validated, key))
            elif isinstance(validated, Mapping) and key in validated:
                given[key] = _take_numbers(value, validated[key])
        return given
    if isinstance(given, list) and isinstance(validated, (list, tuple)) and len(given) == len(validated):
        return [_take_numbers(a, b) for a, b in zip(given, validated)]
    return given


def _next_segment(run_dir: Path) -> int:
    """1 + the number of resumes recorded in the run's provenance directory."""
    folder = run_dir / PROVENANCE_DIR
    if not folder.is_dir():
        return 1
    return 1 + sum(1 for p in folder.iterdir() if p.is_dir() and p.name.startswith("resume_"))


def _write_config(run_dir: Path, container: dict) -> None:
    with atomic_write(run_dir / CONFIG_FILE) as f:
        f.write(OmegaConf.to_yaml(OmegaConf.create(container)))


def _write_provenance(run_dir: Path, provenance: Mapping[str, str] | None, *, segment: int,
                      settings: Settings | None = None) -> None:
    """Writes ``provenance`` into ``.hydra/`` (``segment`` 0) or ``.hydra/resume_<segment>/``; its
    ``config.yaml`` (the composed config) with the numbers given as strings saved as the numbers
    ``settings`` validated (see :func:`with_validated_numbers`)."""
    if provenance and settings is not None and "config.yaml" in provenance:
        composed = OmegaConf.create(provenance["config.yaml"])
        if isinstance(composed, DictConfig):
            given = cast(dict, OmegaConf.to_container(composed, resolve=False))
            typed = with_validated_numbers(copy.deepcopy(given), settings)
            if typed != given:
                provenance = {**provenance, "config.yaml": OmegaConf.to_yaml(OmegaConf.create(typed))}
    if provenance:
        folder = run_dir / PROVENANCE_DIR if segment == 0 else run_dir / PROVENANCE_DIR / f"resume_{segment}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in provenance.items():
            with atomic_write(folder / name) as f:
                f.write(text)
