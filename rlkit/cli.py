"""Everything Hydra-specific of rlkit's command line; nothing else in ``rlkit`` imports Hydra.

``train.py`` is a thin entry over this module:

- :func:`register_resolvers`: the ``rlkit_*`` resolvers ``conf/config.yaml`` uses for run and sweep
  directory names (unique per start: a random token, see :func:`token_resolver`);
- :class:`ConfigCheck`: the Hydra callback that refuses a bad start before its run directory exists
  (and, for ``hydra/launcher=ray``, gives ``ray.init`` the sweep's swept keys);
- :func:`prepare_argv`: on resume, composes the run's own config groups;
- :func:`train_task`: the task function's body: :func:`rlkit.run.run`, refusals as one line;
- :func:`evaluate_task`, :func:`export_task`: the bodies of ``evaluate.py`` and ``export.py``;
- :func:`train`: ``rlkit.train``, a run started from Python (the config composed with Hydra's
  ``compose`` from the package's ``conf/``).
- :class:`TuneCheck` and :func:`tune_task`: the same two for ``tune.py`` (:mod:`rlkit.tune`).

Refusals end the process with ``rlkit: <message>`` on stderr and exit status 2; an interrupt
(Ctrl-C, SIGTERM) with a checkpoint and status 128 + the signal number.
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import re
import secrets
import shutil
import shlex
import sys
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from rlkit.builders import GROUP_KEYS, Settings, takes_list_of_mappings, validate_config
from rlkit.envs import env_label
from rlkit.errors import ConfigError, RlkitError, RunDirBusyError, RunDirError
from rlkit.rundir import (check_creatable, check_fresh_run_dir, check_outside_run_files, lock_holder, override_value,
                          quoted, resume_hint)
from rlkit.run import CONFIG_FILE, PROVENANCE_DIR, preflight, run, run_dir_of
from rlkit.trainers.checkpoint import find_checkpoint

if TYPE_CHECKING:
    from rlkit.agent import Agent

__all__ = [
    "CONF_DIR",
    "ConfigCheck",
    "check_command_line",
    "command_line_problem",
    "EXIT_REFUSED",
    "job_label",
    "TrainResult",
    "evaluate_task",
    "export_task",
    "TuneCheck",
    "NoSweepDir",
    "prepare_argv",
    "quote_paths",
    "refuse",
    "register_resolvers",
    "resume_group_overrides",
    "train",
    "train_task",
    "tune_parts",
    "tune_task",
]

#: The configs of a source checkout (``conf/`` beside the package), which :func:`train` composes.
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"

#: Exit status of a refusal (a bad config, a busy directory, a corrupt checkpoint, ...).
EXIT_REFUSED = 2


def refuse(err: BaseException | str) -> NoReturn:
    """Prints ``rlkit: <message>`` (one line) on stderr and exits with :data:`EXIT_REFUSED`.

    Raised as ``SystemExit``, which neither Hydra nor OmegaConf intercept (they would print an
    exception inside a traceback of some hundred lines)."""
    print(f"rlkit: {_describe(err)}", file=sys.stderr)
    raise SystemExit(EXIT_REFUSED)


def _describe(err: BaseException | str) -> str:
    return f"invalid config: {err}" if isinstance(err, ConfigError) else str(err)


# -- resolvers -------------------------------------------------------------------------------------
def token_resolver() -> str:
    """``${rlkit_token:}``: 6 random hex digits, the same for the whole process (registered with
    ``use_cache``; Hydra copies the cache into each sweep job's config), so two starts in the same
    second get different directories."""
    return secrets.token_hex(3)


def run_dir_resolver(resume: str | None, default: str) -> str:
    """``hydra.run.dir``: the resumed run's own directory, else ``default``."""
    return str(run_dir_of(resume)) if resume and resume.strip() else default  # (a blank one is refused)


#: Environment variable through which the sweep's process tells its jobs (also those a launcher
#: starts in other processes) which keys the sweep varies; set in :meth:`ConfigCheck.on_multirun_start`.
SWEPT_KEYS_ENV = "RLKIT_SWEPT_KEYS"
#: Longest sweep job directory name (longer ones are cut and end in a hash of the whole name).
MAX_JOB_DIR = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


def job_dir_name(num: int, overrides: list[str], swept: list[str], default: str) -> str:
    """The directory name of sweep job ``num``: its values of the swept keys, ``<num>_lr=0.001,seed=1``.

    Keys are shortened to their last component unless two swept keys share it; characters outside
    ``A-Za-z0-9._=,+-`` become ``_``; names over :data:`MAX_JOB_DIR` characters are cut and end in 6
    hex digits of a hash of the whole name. A job that varies no key gets ``<num>_<default>``.

    >>> from rlkit.cli import job_dir_name
    >>> job_dir_name(3, ["algo=dqn", "algo.optim.lr=0.001", "seed=1"], ["algo.optim.lr", "seed"], "x")
    '3_lr=0.001,seed=1'
    >>> job_dir_name(0, ["seed=0"], [], "dqn_CartPole_s0")
    '0_dqn_CartPole_s0'
    >>> job_dir_name(1, ["env.id=ALE/Pong-v5"], ["env.id"], "x")
    '1_id=ALE_Pong-v5'
    """
    values: dict[str, str] = {}
    for override in overrides:
        key, sep, value = str(override).partition("=")
        key = key.lstrip("+~")
        if sep and key in swept:
            values[key] = value
    if not values:
        return f"{num}_{default}"
    last = [k.rsplit(".", 1)[-1] for k in values]
    short = {k: (s if last.count(s) == 1 else k) for k, s in zip(values, last)}
    name = _UNSAFE.sub("_", f"{num}_" + ",".join(f"{short[k]}={v}" for k, v in values.items()))
    if len(name) > MAX_JOB_DIR:
        name = name[:MAX_JOB_DIR - 7] + "_" + hashlib.sha1(name.encode()).hexdigest()[:6]
    return name


def swept_keys(overrides: list[str]) -> list[str]:
    """The keys that command-line ``overrides`` sweep (``seed=0,1``, ``lr=range(1,3)``, ``glob(...)``).

    >>> from rlkit.cli import swept_keys
    >>> swept_keys(["algo=dqn,a2c", "seed=0", "algo.optim.lr=range(1,4)", "+x=[1,2]"])
    ['algo', 'algo.optim.lr']
    """
    parsed = OverridesParser.create().parse_overrides(overrides=[str(o) for o in overrides])
    return [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]


def job_subdir_resolver(num: int, default: str, *, _root_: DictConfig) -> str:
    """``hydra.sweep.subdir``: checks each sweep job (:func:`rlkit.run.preflight`) before Hydra creates
    its directory (Hydra has no callback there), and names it by :func:`job_dir_name`."""
    _check(_root_)
    overrides = OmegaConf.select(_root_, "hydra.overrides.task", default=[]) or []
    return job_dir_name(int(num), list(overrides), _swept(), default)


def _swept() -> list[str]:
    """The keys this sweep varies (:data:`SWEPT_KEYS_ENV`); empty outside a sweep."""
    return [k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k]


def _swept_overrides(overrides: list[str]) -> list[str]:
    """The overrides of a sweep job that set a swept key; all of them if none does."""
    swept = _swept()
    chosen = [o for o in overrides if str(o).partition("=")[0].lstrip("+~") in swept]
    return chosen or overrides


def env_label_resolver(*args: Any, _root_: Any = None) -> str:
    """``${rlkit_env_label:}``: the env's short name in directory names (the game of a game suite, else
    :func:`rlkit.envs.env_label` of the id), read from the config's ``env`` section. An env whose id is
    not given yet (``env=gym`` without ``env.id``) is named by its suite: the config check then refuses
    it in one line, where an interpolation of the missing id failed in Hydra's traceback first. The
    older form ``${rlkit_env_label:<id>,<game>}`` takes them as arguments.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli import env_label_resolver
        >>> env_label_resolver(_root_=OmegaConf.create({"env": {"suite": "gym", "id": "CartPole-v1", "game": None}}))
        'CartPole'
        >>> env_label_resolver(_root_=OmegaConf.create({"env": {"suite": "gym", "id": "???", "game": None}}))
        'gym'
    """
    if args:
        env_id, game = (*args, None)[:2]
    else:
        env_id, game = (OmegaConf.select(_root_, f"env.{key}", default=None, throw_on_missing=False)
                        for key in ("id", "game"))
        if not env_id and not game:
            return str(OmegaConf.select(_root_, "env.suite", default=None, throw_on_missing=False) or "env")
    return str(game) if game else env_label(str(env_id))


def register_resolvers() -> None:
    """Registers the resolvers ``conf/config.yaml`` uses (idempotent)."""
    OmegaConf.register_new_resolver("rlkit_token", token_resolver, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("rlkit_env_label", env_label_resolver, replace=True)
    OmegaConf.register_new_resolver("rlkit_run_dir", run_dir_resolver, replace=True)
    OmegaConf.register_new_resolver("rlkit_job_subdir", job_subdir_resolver, replace=True)


# The settings of the last config this process checked, so that the run validates it once: the
# check runs in Hydra's callback (or the sweep job's resolver), the run in the task, same process.
_checked: tuple[str, Settings] | None = None


def _key(cfg: DictConfig) -> str:
    """The config's content without the ``hydra`` node (resolving that node here would run this
    check again from its own resolver)."""
    body = OmegaConf.masked_copy(cfg, [str(key) for key in cfg.keys() if key != "hydra"])  # (str keys)
    return json.dumps(OmegaConf.to_container(body, resolve=True), sort_keys=True, default=str)


def _check(cfg: DictConfig) -> None:
    global _checked
    try:
        settings = preflight(cfg)
    except RlkitError as err:
        refuse(err)
    _checked = (_key(cfg), settings)


def _checked_settings(cfg: DictConfig) -> Settings | None:
    """The settings :func:`_check` found for this very config, if it checked it."""
    if _checked is not None and _checked[0] == _key(cfg):
        return _checked[1]
    return None


_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _check_sweep_jobs(config: DictConfig, overrides: list[str]) -> None:
    """Validates every job of a grid sweep (Hydra's basic sweeper: its jobs are known in advance)
    before the first one trains: a bad value in the third job must not stop the sweep after the first
    two trained. (Each job's full :func:`rlkit.run.preflight`, which builds its env and networks,
    still runs before its directory is made.)"""
    if str(OmegaConf.select(config, "hydra.sweeper._target_", default="")) != _BASIC_SWEEPER:
        return
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = OverridesParser.create().parse_overrides(overrides=overrides)
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    config_name = str(OmegaConf.select(config, "hydra.job.config_name", default="config"))
    for num, job in enumerate(jobs):
        try:
            validate_config(compose(config_name=config_name, overrides=list(job)))
        except RlkitError as err:
            refuse(f"sweep job {num} ({' '.join(_swept_of(job, overrides))}): {_describe(err)}; no job has run")


def _swept_of(job: Sequence[str], overrides: list[str]) -> list[str]:
    """The overrides of ``job`` that set a key the sweep varies."""
    keys = set(swept_keys(overrides))
    return [o for o in job if o.partition("=")[0].lstrip("+~") in keys] or list(job)


# -- the callbacks ---------------------------------------------------------------------------------
class NoSweepDir(Callback):
    """Hydra callback of ``evaluate.py`` and ``export.py`` (``hydra.callbacks`` in their configs): a
    sweep (``-m run=a,b``) writes into the runs, so the sweep directory Hydra makes (its
    ``multirun.yaml`` and an empty folder per job) is removed when the sweep ends, with the folders
    above it that it leaves empty (``multirun/<date>/``), up to the working directory. Anything else
    found there stays.

    Examples:
        >>> import os, tempfile
        >>> from pathlib import Path
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli import NoSweepDir
        >>> here = Path(tempfile.mkdtemp()); sweep = here / "multirun" / "2026-12-07" / "10-00-00"
        >>> (sweep / "0").mkdir(parents=True); _ = (sweep / "multirun.yaml").write_text("{}")
        >>> old = os.getcwd(); os.chdir(here)
        >>> NoSweepDir().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": "multirun/2026-12-07/10-00-00"}}}))
        >>> os.chdir(old); sorted(p.name for p in here.iterdir())
        []
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = OmegaConf.select(config, "hydra.sweep.dir")
        if not sweep_dir:
            return
        sweep = Path(str(sweep_dir)).absolute()
        (sweep / "multirun.yaml").unlink(missing_ok=True)
        if sweep.is_dir():
            for job in sweep.iterdir():
                if job.is_dir() and not any(job.iterdir()):
                    job.rmdir()
        here = Path.cwd().absolute()
        folder = sweep
        while folder != here and here in folder.parents and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


# -- the callback ----------------------------------------------------------------------------------
class ConfigCheck(Callback):
    """Hydra callback (``hydra.callbacks`` in ``conf/config.yaml``): refuses a bad start before Hydra
    creates the run directory (``on_run_start`` runs before it, also when ``hydra.run.dir`` is given).

    A new run: the directory must be new or empty and not held by another process, and
    :func:`rlkit.run.preflight` must pass (config, env, networks, replay memory). A resume: no other
    output directory, a checkpoint to resume from, a run directory no other process holds; the
    checkpoint itself is verified by :func:`rlkit.run.run` before anything changes.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli import ConfigCheck
        >>> ConfigCheck().on_run_start(OmegaConf.create({"seed": -1}))
        Traceback (most recent call last):
        SystemExit: 2
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("resume") and str(config.resume).strip():  # (a blank resume= is refused by _check)
            self._check_resume(config)
            return
        run_dir = OmegaConf.select(config, "hydra.run.dir")
        try:
            if run_dir is not None:
                if not str(run_dir).strip():
                    raise RunDirError("hydra.run.dir is empty; give a directory for the run, or leave it unset")
                _check_not_held(Path(run_dir))
                check_fresh_run_dir(run_dir)
                check_outside_run_files(run_dir, None, "a new run", shown=f"hydra.run.dir={run_dir}")
        except RlkitError as err:
            refuse(err)
        _check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("resume"):
            refuse(f"resume={config.resume} continues one run; it cannot be swept (-m): resume each run on "
                   "its own")
        global _SWEEP_DIR
        _SWEEP_DIR = Path(str(OmegaConf.select(config, "hydra.sweep.dir"))).absolute()
        shutil.rmtree(_SWEEP_DIR / FAILED_JOBS_DIR, ignore_errors=True)  # (an earlier sweep's, into the same dir)
        overrides = OmegaConf.select(config, "hydra.overrides.task", default=[]) or []
        _check_sweep_jobs(config, [str(o) for o in overrides])
        os.environ[SWEPT_KEYS_ENV] = ",".join(swept_keys(list(overrides)))
        _prepare_ray_launcher(config, os.environ[SWEPT_KEYS_ENV])

    @staticmethod
    def _check_resume(config: DictConfig) -> None:
        given = [o for o in OmegaConf.select(config, "hydra.overrides.hydra", default=[]) or []
                 if str(o).split("=", 1)[0].lstrip("+") == "hydra.run.dir"]
        try:
            if given:
                raise RunDirError(
                    f"resume={config.resume} continues in its own directory ({run_dir_of(config.resume)}); "
                    f"{given[0]} cannot be given with resume="
                )
            find_checkpoint(config.resume)
            run_dir = run_dir_of(config.resume)
            if not (run_dir / CONFIG_FILE).is_file():
                raise RunDirError(f"cannot resume: {run_dir / CONFIG_FILE} does not exist (is {run_dir} an rlkit "
                                  "run directory?)")
            _check_not_held(run_dir)
        except RlkitError as err:
            refuse(err)


#: ``hydra/launcher=ray`` (hydra-ray-launcher).
RAY_LAUNCHER = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"


def _prepare_ray_launcher(config: DictConfig, swept: str) -> None:
    """``hydra/launcher=ray``: what its ``ray.init`` needs before the launcher is built from the config.

    - Jobs run in Ray workers, whose environment is the Ray node's, not this process's: the swept
      keys ``swept`` (:data:`SWEPT_KEYS_ENV`, the job directory names) go to them through
      ``runtime_env.env_vars`` (a ``runtime_env`` given on the command line is kept, the variable
      added).
    - hydra-ray-launcher 1.2 passes ``object_store_memory`` to ``ray.init`` by default, which Ray
      refuses when it joins a running cluster (``hydra.launcher.ray.init.address=auto``); unless
      given, it is left to the cluster there.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli import RAY_LAUNCHER, _prepare_ray_launcher
        >>> cfg = OmegaConf.create({"hydra": {"launcher": {"_target_": RAY_LAUNCHER,
        ...                                                "ray": {"init": {"address": "auto"}}}}})
        >>> _prepare_ray_launcher(cfg, "seed")
        >>> print(OmegaConf.to_yaml(cfg.hydra.launcher.ray.init), end="")
        address: auto
        runtime_env:
          env_vars:
            RLKIT_SWEPT_KEYS: seed
        object_store_memory: null
    """
    if OmegaConf.select(config, "hydra.launcher._target_", default=None) != RAY_LAUNCHER:
        return
    with read_write(config.hydra), open_dict(config.hydra):
        init = config.hydra.launcher.ray.init
        OmegaConf.update(init, f"runtime_env.env_vars.{SWEPT_KEYS_ENV}", swept, force_add=True)
        if init.get("address") is not None and "object_store_memory" not in init:
            init.object_store_memory = None


def _check_not_held(run_dir: Path) -> None:
    holder = lock_holder(run_dir) if run_dir.is_dir() else None
    if holder:
        raise RunDirBusyError(f"{run_dir} is in use by {holder}; one process writes a run at a time: wait for it "
                              "to end, or stop it and resume")


# -- resume: the run's own groups ------------------------------------------------------------------
def _env_group_of(conf_dir: Path, env: dict) -> str:
    """The ``conf/env`` group of a saved env section: the one with its id (a gym env) or its suite
    (a game suite such as minatar); ``gym`` (any id) when none is."""
    suite = env.get("suite", "gym")
    for path in sorted((conf_dir / "env").glob("*.yaml")):
        try:
            group = OmegaConf.load(path)
        except (OSError, OmegaConfBaseException):
            continue
        if not isinstance(group, DictConfig) or group.get("suite", "gym") != suite:
            continue
        if suite != "gym" or OmegaConf.select(group, "id", throw_on_missing=False) == env.get("id"):
            return path.stem
    return "gym"


#: What reading a missing or damaged YAML file of a run raises: no file or no access (OSError), not
#: text (UnicodeDecodeError, a ValueError), not YAML (yaml.YAMLError), or YAML of another shape
#: (omegaconf's errors; AttributeError / TypeError for scalars and lists where a mapping belongs).
_UNREADABLE = (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError, OmegaConfBaseException)


def run_group_choices(resume: str, conf_dir: Path | None = None) -> dict[str, str]:
    """The config-group choices (``{"algo": "a2c", "env": "Acrobot", ...}``) of the run that
    ``resume`` names: those Hydra recorded at its first start (``.hydra/hydra.yaml``); for a run
    started in Python, its algorithm's name and the ``conf_dir/env`` group with its env id. Empty
    when the run's config cannot be read (the start then fails with the usual message)."""
    run_dir = run_dir_of(resume)
    try:
        hydra_saved = OmegaConf.load(run_dir / PROVENANCE_DIR / "hydra.yaml")
        recorded = OmegaConf.to_container(hydra_saved.hydra.runtime.choices)
        if isinstance(recorded, dict):
            return {str(k): v for k, v in recorded.items() if k in GROUP_KEYS and isinstance(v, str)}
    except _UNREADABLE:  # no provenance, or damaged: the saved config is read instead
        pass
    try:
        saved = OmegaConf.to_container(OmegaConf.load(run_dir / CONFIG_FILE))
    except _UNREADABLE:  # unreadable, or not YAML: the resume itself says so in one line
        return {}
    choices: dict[str, str] = {}
    if isinstance(saved, dict) and isinstance(saved.get("algo"), dict) and "name" in saved["algo"]:
        choices["algo"] = str(saved["algo"]["name"])
    if isinstance(saved, dict) and isinstance(saved.get("env"), dict) and conf_dir is not None:
        choices["env"] = _env_group_of(conf_dir, saved["env"])
    return choices


def resume_group_overrides(args: list[str], conf_dir: Path | None = None) -> list[str]:
    """Group choices (``algo=a2c``, ``env=Acrobot``, ...) of the run that ``resume=<path>`` in
    ``args`` names (:func:`run_group_choices`), for the groups ``args`` does not set.

    Hydra composes the command line before rlkit reads the saved config: without the run's groups it
    would compose the default algorithm, and an override of a key that only the run's algorithm has
    (``resume=<a2c run> algo.n_steps=10``) would fail. Returns ``[]`` when there is no ``resume``.

    Examples:
        >>> from rlkit.cli import resume_group_overrides
        >>> resume_group_overrides(["total_frames=1000"])
        []
    """
    values = dict(a.lstrip("+").split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    resume = override_value(values.get("resume", ""))
    if not resume or resume == "null":
        return []
    choices = run_group_choices(resume, conf_dir)
    groups = [f"{group}={choices[group]}" for group in GROUP_KEYS if group not in values and group in choices]
    # The gym group names no env (env.id: ???), and the run directory's default name reads env.id:
    # the run's own id, unless the line gives one.
    if override_value(values.get("env", choices.get("env", ""))) == "gym" and "env.id" not in values:
        saved_id = _saved_env_id(resume)
        if saved_id is not None:
            groups.append(f"env.id={quoted(saved_id)}")
    return groups


def _saved_env_id(resume: str) -> str | None:
    """The ``env.id`` of the run that ``resume`` names, read from its ``config.yaml`` (None when it
    has none or the file cannot be read: the resume itself then says why)."""
    try:
        saved = OmegaConf.load(run_dir_of(resume) / CONFIG_FILE)
        value = OmegaConf.select(saved, "env.id", throw_on_missing=False)
    except _UNREADABLE:
        return None
    return value if isinstance(value, str) else None


def prepare_argv(argv: list[str], config_name: str = "config") -> None:
    """Refuses a command line Hydra would refuse in a screenful (:func:`check_command_line`), in
    one line; then inserts the resumed run's groups (:func:`resume_group_overrides`) into ``argv``
    in place, right before ``resume=`` (Hydra's flags may come first). Paths that Hydra's grammar
    would misread are quoted first (:func:`quote_paths`)."""
    argv[1:] = quote_paths(argv[1:])
    args = argv[1:]
    conf_dir = Path(argv[0]).resolve().parent / "conf"
    groups = resume_group_overrides(args, conf_dir)
    if groups:
        at = 1 + next(i for i, a in enumerate(args) if a.lstrip("+").startswith("resume="))
        argv[at:at] = groups
    check_command_line(argv[1:], conf_dir, config_name)


#: The command-line keys whose value is a path (a run, a checkpoint file, a file to write).
PATH_KEYS = ("resume", "run", "out")


def quote_paths(args: Sequence[str]) -> list[str]:
    """``args`` with each path value of :data:`PATH_KEYS` that Hydra's override grammar would refuse
    or split quoted (:func:`~rlkit.rundir.quoted`): a sweep job's directory such as
    ``3_lr=0.0003,seed=1`` is pasted as the run prints it. A value that Hydra cannot parse is quoted;
    one that it reads as a sweep or a list is quoted only when it names an existing path as written
    (``null``, numbers and the like are left to Hydra).

    Examples:
        >>> from rlkit.cli import quote_paths
        >>> quote_paths(["resume=/runs/3_lr=0.0003,seed=1", "total_frames=10", "run=a,b"])
        ["resume='/runs/3_lr=0.0003,seed=1'", 'total_frames=10', 'run=a,b']
    """
    parser = OverridesParser.create()
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if (sep and not arg.startswith("-") and key.lstrip("+") in PATH_KEYS and value
                and value[0] not in "'\""):
            try:
                parsed = parser.parse_overrides([arg])[0]
                split = parsed.is_sweep_override() or isinstance(parsed.value(), (list, dict))
                plain = not (split and _is_path(value))
            except HydraException:
                plain = False
            if not plain:
                arg = f"{key}={quoted(value)}"
        out.append(arg)
    return out


def _is_path(text: str) -> bool:
    """Whether ``text`` names an existing file or folder (a comma-joined sweep list may be longer than
    a file name can be)."""
    try:
        return Path(text).exists()
    except (OSError, ValueError):
        return False


#: The config groups a command line picks from (``conf/<group>/<choice>.yaml``).
CHOSEN_GROUPS = (*GROUP_KEYS, "experiment")
#: The configs that compose the training config and its groups (evaluate.py's and export.py's have none).
GROUPED_CONFIGS = ("config", "tune")


def _group_choices(conf_dir: Path, group: str) -> list[str]:
    return sorted(path.stem for path in (conf_dir / group).glob("*.yaml"))


def check_command_line(args: Sequence[str], conf_dir: Path, config_name: str = "config") -> None:
    """Refuses (:func:`refuse`) what :func:`command_line_problem` finds.

    Examples:
        >>> from rlkit.cli import CONF_DIR, check_command_line
        >>> check_command_line(["algo=c51", "algo.n_atoms=11"], CONF_DIR)  # fine: nothing happens
        >>> try:
        ...     check_command_line(["algo=dqm"], CONF_DIR)
        ... except SystemExit as stop:
        ...     print(stop.code)
        2
    """
    problem = command_line_problem(args, conf_dir, config_name)
    if problem is not None:
        refuse(ConfigError(problem))


def command_line_problem(args: Sequence[str], conf_dir: Path, config_name: str = "config") -> str | None:
    """What Hydra would refuse in a screenful, found before it composes anything, as one line naming
    the value and the valid choices (``None`` when nothing is found):

    - a choice of a config group (``algo``, ``env``, ``value_estimator``, ``logger``,
      ``experiment``) that is not a file of ``conf/<group>/``, each value of a sweep included
      (Hydra prints a screen of search paths; when ``experiment`` was an optional group, it
      trained the defaults);
    - an override of a key the composed config does not have (Hydra's "not in struct" text).

    What this cannot judge (glob sweeps, keys under a group that a sweep varies, configs from
    another directory: ``--config-dir``, ``hydra.searchpath``) is left to Hydra and to
    :class:`ConfigCheck`.

    Examples:
        >>> from rlkit.cli import CONF_DIR, command_line_problem
        >>> command_line_problem(["algo=a2c", "algo.n_steps=8"], CONF_DIR) is None
        True
        >>> command_line_problem(["algo=dqm"], CONF_DIR)
        "algo='dqm' is not a choice; valid choices: ['a2c', 'c51', 'dqn']"
    """
    from hydra.core.override_parser.types import Glob

    if any(a.split("=", 1)[0] in _OTHER_CONFIGS for a in args) or any(
            a.lstrip("+~").startswith("hydra.searchpath") for a in args):
        return None  # configs from elsewhere (tune.py's experiment=best): only Hydra knows the choices
    overrides = hydra_overrides(args)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return _parse_problem(overrides)
    groups = CHOSEN_GROUPS if config_name in GROUPED_CONFIGS else ()
    for override in parsed:
        if override.is_add() and override.key_or_group in groups and not isinstance(override.value(), dict):
            # Hydra: "Multiple values for algo. To override a value use 'override algo: c51'"
            given = override.input_line or f"+{override.key_or_group}={override.get_value_string()}"
            return (f"{given} adds a second {override.key_or_group}, which the config already "
                    f"chooses; choose it without +: {given.lstrip('+')}")
    chosen: list[str] = []
    merged: list[Any] = []
    swept_group = False
    for override in parsed:
        group = override.key_or_group
        if override.is_hydra_override() or override.is_delete() or group not in groups:
            continue
        if not override.is_sweep_override() and isinstance(override.value(), dict):
            merged.append(override)  # (a mapping merged onto the group's node, not a choice: algo={batch_size: 64})
            continue
        if isinstance(override.value(), Glob):
            values: list[str] = []  # glob(...): Hydra matches it against the files itself
            swept_group = True
        elif override.is_sweep_override():
            values = [_unquoted(v) for v in override.sweep_string_iterator()]
            swept_group = True
        else:
            values = [_unquoted(override.get_value_string())]
            chosen.append(f"{group}={values[0]}")
        valid = _group_choices(conf_dir, group)
        for value in values:
            if value not in valid and value.removesuffix(".yaml") not in valid and value != "null":
                return f"{group}={value!r} is not a choice; valid choices: {valid}"
    if swept_group:
        return None
    # An added key is checked only where it would add a training group to evaluate.py/export.py's config.
    plain = [o for o in parsed if not (o.is_hydra_override() or o.is_delete() or o.key_or_group in groups
                                       or o.package is not None or ((o.is_add() or o.is_force_add())
                                                                    and (groups or o.key_or_group not in CHOSEN_GROUPS)))]
    if not plain and not merged:
        return None
    try:
        cfg = _composed(conf_dir, config_name, chosen)
    except (HydraException, OmegaConfBaseException):
        return None  # Hydra's own composition says what is wrong
    for override in merged:
        problem = _shape_problem(cfg, override)
        if problem:
            return problem
    for override in plain:
        problem = _missing_key(cfg, override.key_or_group) or _shape_problem(cfg, override)
        if problem:
            return problem
    return None


#: Hydra's command-line flags that take a value (``--cfg job``), and ``--info``'s optional one.
_VALUED_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                 "-cd", "--experimental-rerun"}
_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def hydra_overrides(args: Sequence[str]) -> list[str]:
    """The overrides among ``args``: Hydra's flags and their values left out.

    Examples:
        >>> from rlkit.cli import hydra_overrides
        >>> hydra_overrides(["--cfg", "job", "algo=c51", "-m", "--info", "plugins", "seed=1"])
        ['algo=c51', 'seed=1']
    """
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _VALUED_FLAGS or (arg in ("--info", "-i") and i + 1 < len(args)
                                            and args[i + 1] in _INFO_CHOICES)
        else:
            out.append(arg)
    return out


def _parse_problem(overrides: Sequence[str]) -> str:
    """The first override Hydra's grammar cannot read, as one line: a list or mapping with spaces that
    the shell split into several arguments gets the quoted form that works.

    Examples:
        >>> from rlkit.cli import _parse_problem
        >>> _parse_problem(["seed=1", "algo.hidden_sizes=[64,", "64]"])
        "cannot read the override 'algo.hidden_sizes=[64,' (the shell splits at spaces): quote it whole, 'algo.hidden_sizes=[64, 64]'"
        >>> _parse_problem(["a=b=c"])
        "cannot read the override 'a=b=c' (mismatched input '=' expecting <EOF>); see https://hydra.cc/docs/1.2/advanced/override_grammar/basic"
    """
    parser = OverridesParser.create()
    for i, arg in enumerate(overrides):
        try:
            parser.parse_overrides([arg])
            continue
        except HydraException as err:
            lines = [line.strip() for line in str(err).splitlines()
                     if line.strip() and line.strip() != "^" and not line.startswith("See ")
                     and not line.startswith("LexerNoViableAltException")]
            detail = lines[-1] if lines else "an unbalanced quote or bracket, or not key=value"
        depth = 0
        for j in range(i, len(overrides)):  # the arguments that close its brackets, if any
            depth += sum(overrides[j].count(c) for c in "[{(") - sum(overrides[j].count(c) for c in "]})")
            if depth <= 0:
                break
        if j > i and depth == 0:
            joined = " ".join(overrides[i:j + 1])
            return f"cannot read the override {arg!r} (the shell splits at spaces): quote it whole, {shlex.quote(joined)}"
        return (f"cannot read the override {arg!r} ({detail}); see "
                "https://hydra.cc/docs/1.2/advanced/override_grammar/basic")
    return "cannot read the overrides " + " ".join(overrides)


def _shape_problem(cfg: DictConfig, override: Any) -> str | None:
    """What Hydra would refuse in a traceback when ``override`` changes a node's shape (a list for a
    mapping, or the reverse) or gives a mapping keys the one there lacks, at any depth (a mapping on
    the command line is merged onto the one there), as one line with the override that works;
    ``None`` otherwise.

    Examples:
        >>> from rlkit.cli import CONF_DIR, command_line_problem
        >>> command_line_problem(["algo.hidden_sizes={a: 1}"], CONF_DIR)
        'algo.hidden_sizes={a: 1} gives a mapping where the config has a list of values (algo.hidden_sizes=[120, 84]); give a list'
        >>> command_line_problem(["env.transforms={name: normalize}"], CONF_DIR)
        "env.transforms={name: normalize} gives a mapping where the config has a list; give a list: 'env.transforms=[{name: normalize}]'"
        >>> command_line_problem(["algo.optim={lr: 0.1, momentum: 0.9}"], CONF_DIR)
        "algo.optim={lr: 0.1, momentum: 0.9} adds algo.optim.momentum, which the config does not have; merge it with + ('+algo.optim={lr: 0.1, momentum: 0.9}', keeping the other keys of algo.optim) or replace the node ('~algo.optim' '+algo.optim={lr: 0.1, momentum: 0.9}')"
    """
    if override.is_sweep_override():
        return None
    key = override.key_or_group
    try:
        node = OmegaConf.select(cfg, key, throw_on_missing=False)
    except OmegaConfBaseException:
        return None  # (a key below a list: Hydra's own message names it)
    value = override.value()
    given = override.input_line or f"{key}={override.get_value_element_as_str()}"
    replace = f"{shlex.quote('~' + key)} {shlex.quote('+' + given)}"
    if isinstance(node, DictConfig) and isinstance(value, list):
        return f"{given} gives a list where the config has a mapping; replace the node: {replace}"
    if isinstance(node, ListConfig) and isinstance(value, dict):
        if key == "tune.space" or key.startswith("tune.space."):  # (a search-space entry may be either)
            return f"{given} gives a mapping where the config has a list; replace the node: {replace}"
        name, _, text = given.partition("=")
        if takes_list_of_mappings(cfg, key) or any(isinstance(item, DictConfig) for item in node):
            return f"{given} gives a mapping where the config has a list; give a list: {shlex.quote(f'{name}=[{text}]')}"
        shown = json.dumps(OmegaConf.to_container(node, resolve=True))
        return f"{given} gives a mapping where the config has a list of values ({name.lstrip('+')}={shown}); give a list"
    if _retyped_entry(key, node, value):
        return f"{given} changes a search-space entry's type, which a merge cannot; replace the node: {replace}"
    if isinstance(node, DictConfig) and isinstance(value, dict):
        new, reshaped = _merge_problems(node, value, key)
        if reshaped:
            path = reshaped[0]
            return (f"{given} changes the shape of {path} (a list for a mapping, the reverse, or a search-space "
                    f"entry's type), which a mapping on the command line cannot; give that node on its own: "
                    f"{shlex.quote('~' + path)} "
                    f"{shlex.quote('+' + path + '=...')}")
        if new:
            if key == "tune.space" or key.startswith("tune.space."):
                for path, given_parent in new.items():
                    problem = _new_space_key_problem(cfg, path, given_parent)
                    if problem:
                        return f"{given} adds {path}: {problem}"
            return (f"{given} adds {', '.join(new)}, which the config does not have; merge it with + "
                    f"({shlex.quote('+' + given)}, keeping the other keys of {key}) or replace the node ({replace})")
    return None


def _merge_problems(node: DictConfig, value: dict, path: str) -> tuple[dict[str, dict], list[str]]:
    """The keys ``value`` gives that the mapping ``node`` lacks, at any depth (dotted path -> the given
    mapping that holds it; a new mapping that is not a search-space entry counts by its leaves), and
    the paths whose shape differs (a list for a mapping, or the reverse)."""
    new: dict[str, dict] = {}
    reshaped: list[str] = []
    for k, v in value.items():
        child = node._get_node(str(k), validate_access=False) if str(k) in node else None
        where = f"{path}.{k}"
        if child is None:
            new.update(_leaves(v, where, value))
        elif child._is_none() or child._is_interpolation():
            continue
        elif ((isinstance(child, DictConfig) and isinstance(v, list))
              or (isinstance(child, ListConfig) and isinstance(v, dict)) or _retyped_entry(where, child, v)):
            reshaped.append(where)  # (a list for a mapping, the reverse, or a search-space entry's type)
        elif isinstance(child, DictConfig) and isinstance(v, dict):
            more, shaped = _merge_problems(child, v, where)
            new.update(more)
            reshaped += shaped
    return new, reshaped


def _retyped_entry(key: str, node: Any, value: Any) -> bool:
    """Whether the mapping ``value`` given for the config node at ``key`` changes the ``type`` of a
    search-space entry (``tune.space.<key>``), which a merge cannot do."""
    return (key.startswith("tune.space.") and isinstance(node, DictConfig) and isinstance(value, dict)
            and node.get("type") not in (None, value.get("type", node.get("type"))))


def _leaves(value: Any, path: str, parent: dict) -> dict[str, dict]:
    """``path`` (held by ``parent``), or, for a mapping that is not a search-space entry (no
    ``type``), its leaves."""
    if isinstance(value, dict) and value and "type" not in value:
        found: dict[str, dict] = {}
        for k, v in value.items():
            found.update(_leaves(v, f"{path}.{k}", value))
        return found
    return {path: parent}


def _new_space_key_problem(cfg: DictConfig, path: str, given_parent: dict) -> str | None:
    """Why a key new to ``tune.space`` (``path``, dotted, in the given mapping ``given_parent``) would
    be refused once merged (None: it is a training key the space may search, or a key of an entry)."""
    from rlkit.tune.settings import FIXED_KEYS
    from rlkit.tune.space import ENTRY_KEYS

    parent_path, _, name = path.rpartition(".")
    parent = OmegaConf.select(cfg, parent_path, throw_on_missing=False)
    kind = given_parent.get("type") or (parent.get("type") if isinstance(parent, DictConfig) else None)
    if kind in ENTRY_KEYS:
        return None if name in ENTRY_KEYS[kind] else f"a {kind} entry's keys are {list(ENTRY_KEYS[kind])}"
    trained = path.removeprefix("tune.space.")
    if trained in FIXED_KEYS:
        return f"{trained} cannot be searched (every trial of a study shares it)"
    if trained.startswith("tune") or _missing_key(cfg, trained) is not None:
        return f"{trained} is not a key of the training config{_space_namesake(cfg, name)}"
    return None


#: Hydra's flags that add or replace config directories (their groups' choices are not conf/'s).
_OTHER_CONFIGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")


def _unquoted(value: str) -> str:
    """A choice as Hydra reads it: ``'c51'`` and ``"c51"`` are ``c51``."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def _composed(conf_dir: Path, config_name: str, overrides: list[str]) -> DictConfig:
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=overrides)
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def _missing_key(cfg: DictConfig, key: str) -> str | None:
    """What is wrong with overriding ``key`` (a dotted path) in ``cfg``, or ``None`` where it is
    there (or where only Hydra can tell: list indices, a ``null`` or interpolated parent)."""
    parts = key.split(".")
    if any(part.isdigit() for part in parts):
        return None
    node: Any = cfg
    for depth, part in enumerate(parts):
        if isinstance(node, ListConfig):
            where = ".".join(parts[:depth])
            return f"{where} is a list, which has no key {part!r}: give the whole list ({where}=[...])"
        if not isinstance(node, DictConfig):
            return None
        # (not `in`: a key whose value is ??? is not "in" a DictConfig)
        if node._get_node(part, validate_access=False) is None:
            where = ".".join(parts[:depth])
            siblings = sorted(str(k) for k in node.keys() if k != "hydra")
            if key.startswith("tune.space.") and depth >= 2:  # (tune.py's config: its space exists)
                return _unknown_space_key(cfg, parts, depth, siblings)
            if where and not siblings:  # an empty mapping (env.make_kwargs): its keys are the user's to add
                return f"{where} has no key {part!r} yet; add it with +: +{key}=..."
            return f"unknown key {key}{_did_you_mean(cfg, parts, depth, siblings)}; valid keys" + \
                (f" of {where}" if where else "") + f": {siblings}"
        node = node._get_node(part)
        if node is None or (node._is_interpolation() or node._is_none()) and depth < len(parts) - 1:
            return None
        if isinstance(node, DictConfig):
            continue
    return None


def _unknown_space_key(cfg: DictConfig, parts: list[str], depth: int, siblings: list[str]) -> str:
    """The line for an override of a ``tune.space`` key the space lacks: a key new to an entry
    (``step``) or a training key the space does not search yet are added with ``+``; another name is
    matched with the training keys (``tune.space.algo.gamma``: did you mean
    ``tune.space.value_estimator.gamma``?)."""
    from rlkit.tune.settings import FIXED_KEYS
    from rlkit.tune.space import ENTRY_KEYS

    key, where = ".".join(parts), ".".join(parts[:depth])
    head = f"unknown key {key}"
    tail = f"; valid keys of {where}: {siblings}"
    parent = OmegaConf.select(cfg, where, throw_on_missing=False)
    kind = parent.get("type") if isinstance(parent, DictConfig) else None
    if kind in ENTRY_KEYS:
        if parts[depth] in ENTRY_KEYS[kind] and depth == len(parts) - 1:
            return f"{head}{tail} (a {kind} entry takes it with +: +{key}=...)"
        return f"{head}{tail}; a {kind} entry's keys: {list(ENTRY_KEYS[kind])}"
    trained = ".".join(parts[2:])
    if trained not in FIXED_KEYS and not trained.startswith("tune") and _missing_key(cfg, trained) is None:
        return f"{head}{tail} (a config key the space does not search yet is added with +: +{key}=...)"
    return f"{head}{_space_namesake(cfg, parts[-1])}{tail}"


def _space_namesake(cfg: DictConfig, name: str) -> str:
    """`` (did you mean tune.space.<path>?)`` for a training key named ``name`` a space may search."""
    from rlkit.tune.settings import FIXED_KEYS

    matches = [path for path in _key_paths(cfg) if path.rsplit(".", 1)[-1] == name
               and not path.startswith(("hydra", "tune")) and path not in FIXED_KEYS]
    return f" (did you mean tune.space.{matches[0]}?)" if matches else ""


def _did_you_mean(cfg: DictConfig, parts: list[str], depth: int, siblings: list[str]) -> str:
    """`` (did you mean <key>?)``: a key of the same name elsewhere (``algo.gamma`` ->
    ``value_estimator.gamma``), else a close spelling among ``siblings``."""
    name = parts[depth]
    elsewhere = [path for path in _key_paths(cfg) if path.rsplit(".", 1)[-1] == name and not path.startswith("hydra")]
    close = [".".join([*parts[:depth], match]) for match in difflib.get_close_matches(name, siblings, n=1)]
    found = elsewhere or close
    return f" (did you mean {found[0]}?)" if found else ""


def _key_paths(node: DictConfig, prefix: str = "") -> list[str]:
    paths = []
    for k in node.keys():
        path = f"{prefix}{k!s}"
        paths.append(path)
        child = node._get_node(str(k))
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_interpolation():
            paths += _key_paths(child, f"{path}.")
    return paths


# -- the task --------------------------------------------------------------------------------------
#: The longest sweep-job label on the console (a long override list would crowd out the progress).
LABEL_MAX = 40
#: Hydra's own launcher runs sweep jobs one after another in this process; the others run them in
#: parallel processes sharing one terminal, where redrawn bars would overwrite each other.
_SEQUENTIAL_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def job_label(num: int, overrides: list[str], max_len: int = LABEL_MAX) -> str:
    """The console label of sweep job ``num``: ``[job <num> <overrides>]``, each override with its key's
    last component (``algo.optim.lr=0.001`` -> ``lr=0.001``); overrides that would make it longer than
    ``max_len`` are left out, and ``..`` says so.

    Examples:
        >>> from rlkit.cli import job_label
        >>> job_label(3, ["algo.optim.lr=0.001", "seed=1"])
        '[job 3 lr=0.001 seed=1]'
        >>> job_label(12, ["algo=c51", "env=Acrobot", "algo.optim.lr=0.00025", "seed=2", "total_frames=20000"])
        '[job 12 algo=c51 env=Acrobot ..]'
    """
    text = f"job {num}"
    for i, override in enumerate(overrides):
        key, sep, value = override.partition("=")
        item = f" {key.rsplit('.', 1)[-1]}{sep}{value}"
        room = max_len - 2 - (0 if i == len(overrides) - 1 else 3)  # (room for " ..")
        if len(text) + len(item) > room:
            return f"[{text} ..]"
        text += item
    return f"[{text}]"


def _own_overrides(cfg: DictConfig, hc: Any) -> list[str]:
    """The command line's overrides, less (on resume) the group choices that are the run's own:
    :func:`prepare_argv` adds those, and a user may repeat them."""
    overrides = list(hc.overrides.task)
    if not cfg.get("resume"):
        return overrides
    conf_dirs = [Path(source.path.removeprefix("file://")) for source in hc.runtime.config_sources
                 if source.provider == "main" and source.schema == "file"]
    choices = run_group_choices(str(cfg.resume), conf_dirs[0] if conf_dirs else None)
    own = {f"{group}={choice}" for group, choice in choices.items()}
    return [o for o in overrides if o not in own]


#: Where the jobs of a sweep (``-m``) that failed leave a note (one file per job number), in its sweep
#: directory: the jobs may run in other processes (parallel launchers).
FAILED_JOBS_DIR = ".rlkit_failed_jobs"
_SWEEP_DIR: Path | None = None  # this process's sweep (set when it starts one)


def sweep_exit_status() -> int:
    """After ``train.py -m``: 1 (with a line per failed job on stderr) when a job of the sweep this
    process ran failed, else 0; 0 outside a sweep."""
    failed = _SWEEP_DIR / FAILED_JOBS_DIR if _SWEEP_DIR is not None else None
    notes = sorted((p for p in failed.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)) \
        if failed is not None and failed.is_dir() else []
    if not notes:
        return 0
    print(f"rlkit: {len(notes)} job(s) of the sweep failed:", file=sys.stderr)
    for note in notes:
        print(f"  job {note.name}: {note.read_text().strip()}", file=sys.stderr)
    return 1


def train_task(cfg: DictConfig) -> float | None:
    """The body of ``train.py``'s task: trains the run Hydra composed into its run directory.

    Returns the last greedy evaluation return (the objective a Hydra sweeper reads).
    """
    from rlkit.trainers import TrainingInterrupted

    hc = HydraConfig.get()
    run_dir = hc.runtime.output_dir
    multirun = hc.mode == RunMode.MULTIRUN
    label = job_label(int(hc.job.num), _swept_overrides(list(hc.overrides.task))) if multirun else ""
    parallel = multirun and str(hc.launcher.get("_target_", "")) != _SEQUENTIAL_LAUNCHER
    prefix = f"{label} " if label else ""
    provenance = {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": OmegaConf.to_container(hc)})),
        "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(list(hc.overrides.task))),
    }
    try:
        settings = None if cfg.get("resume") else _checked_settings(cfg)
        result = run(cfg, run_dir, overrides=_own_overrides(cfg, hc), provenance=provenance, validated=settings,
                     label=label, plain_progress=True if parallel else None)
    except RlkitError as err:
        if multirun:  # the other jobs of the sweep go on; the sweep's exit status says one failed
            print(f"rlkit: {prefix}({run_dir}) failed: {_describe(err)}", file=sys.stderr)
            failed = Path(str(hc.runtime.cwd)) / str(hc.sweep.dir) / FAILED_JOBS_DIR  # (a job may run elsewhere)
            failed.mkdir(parents=True, exist_ok=True)
            (failed / f"{int(hc.job.num)}").write_text(f"{run_dir}: {_describe(err)}\n")
            return None
        refuse(err)
    except TrainingInterrupted as stop:
        print(f"{prefix}{stop}\nresume with: python train.py {resume_hint(run_dir)}", file=sys.stderr)
        raise SystemExit(128 + stop.signum) from None
    except KeyboardInterrupt:  # not a checkpointed stop: while the run is built or checked, or a second Ctrl-C
        if cfg.get("resume") or (Path(run_dir) / CONFIG_FILE).is_file():  # (a started run can be resumed)
            _interrupted("train.py", f"resume with: python train.py {resume_hint(run_dir)}")
        with contextlib.suppress(OSError):  # the folder Hydra made for the run (a failed start removes its own)
            Path(run_dir).rmdir()
        _interrupted("train.py", "the run had not started; nothing was kept")
    if result and all(isinstance(k, int) for k in result):  # a multi-seed run: by seed
        returns = ", ".join(f"seed {k}: {_shown(m.get('eval_return'))}" for k, m in result.items())
        print(f"done: {prefix}greedy eval return {returns} | run dir {run_dir}", file=sys.stderr)
        values = [m["eval_return"] for m in result.values() if "eval_return" in m]
        return sum(values) / len(values) if values else None  # a sweep's objective: the seeds' mean
    print(f"done: {prefix}greedy eval return {_shown(result.get('eval_return'))} | run dir {run_dir}", file=sys.stderr)
    return result.get("eval_return")


def _shown(value: Any) -> str:
    """A metric as the ``done:`` line shows it: 6 significant digits.

    Examples:
        >>> from rlkit.cli import _shown
        >>> _shown(9.333333333333334), _shown(-1410.16819805149), _shown(None)
        ('9.33333', '-1410.17', 'None')
    """
    return f"{value:.6g}" if isinstance(value, (int, float)) else str(value)


# -- evaluate.py and export.py ----------------------------------------------------------------------
def _task_args(cfg: DictConfig, script: str) -> dict[str, Any]:
    """The arguments of an ``evaluate.py`` / ``export.py`` config as a plain dict (``run`` required)."""
    args = {str(k): OmegaConf.select(cfg, str(k), throw_on_missing=False) for k in cfg.keys() if k != "hydra"}
    known = sorted(str(k) for k in OmegaConf.load(CONF_DIR / f"{Path(script).stem}.yaml").keys()
                   if k not in ("defaults", "hydra"))
    for key in args:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            refuse(ConfigError(f"unknown key {key}{hint}; valid keys of {script}: {known}"))
    if not args.get("run"):
        refuse(f"run= is missing: give a run directory or a checkpoint file (python {script} run=outputs/<date>/<run>)")
    return args


def _checkpoint_name(args: dict[str, Any]) -> str | None:
    """The ``checkpoint=`` argument as a file name (Hydra reads ``checkpoint=50000`` as an int,
    which the check then refuses by name), or None."""
    name = args.get("checkpoint")
    return None if name is None else str(name)


def evaluate_task(cfg: DictConfig) -> dict[str, Any]:
    """The body of ``evaluate.py``: :func:`rlkit.evaluation.evaluate` with the command line's
    arguments, its results as one line on stdout, refusals as one line on stderr (status 2)."""
    from rlkit.evaluation import evaluate, format_results

    args = _task_args(cfg, "evaluate.py")
    try:
        results = evaluate(str(args["run"]), episodes=args["episodes"], video=args["video"], seed=args["seed"],
                           device=str(args["device"]), deterministic=args["deterministic"], output_dir=args["out"],
                           checkpoint=_checkpoint_name(args))
    except RlkitError as err:
        refuse(err)
    except KeyboardInterrupt:
        _interrupted("evaluate.py", "nothing was written: the results are written at the end")
    print(format_results(results))
    return results


def _interrupted(script: str, what: str) -> NoReturn:
    """Ends a script interrupted by Ctrl-C with one line (status 130) instead of a traceback."""
    print(f"\n{script} interrupted; {what}", file=sys.stderr)
    raise SystemExit(130) from None


def export_task(cfg: DictConfig) -> Path:
    """The body of ``export.py``: :func:`rlkit.exporter.export_policy` with the command line's
    arguments; prints the file written, refusals as one line on stderr (status 2)."""
    from rlkit.agent import load_agent
    from rlkit.exporter import check_export_request, checkpoint_label, export_policy

    args = _task_args(cfg, "export.py")
    run, fmt = str(args["run"]), str(args["format"])
    try:
        check_export_request(fmt, args["out"])  # (refused before the run is read)
        agent = load_agent(run, device=str(args["device"]), checkpoint=_checkpoint_name(args))
        label, latest = checkpoint_label(agent.checkpoint, agent.run_dir)
        path = export_policy(run, fmt, args["out"], agent=agent)
    except RlkitError as err:
        refuse(err)
    except KeyboardInterrupt:
        _interrupted("export.py", "nothing was written (the file is written to a temporary name and renamed)")
    print(f"exported: {path} ({fmt}; checkpoint {label}{', the latest' if latest else ''}, {agent.frames:,} frames)")
    return path


# -- rlkit.train -----------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path  #: the run directory
    #: the last evaluation's metrics (``eval_return``, ...); with ``num_seeds > 1``, by seed
    metrics: dict[Any, Any]
    agent: Agent  #: the trained agent (:func:`rlkit.load_agent` of ``run_dir``; the first seed's)
    #: every seed's agent (``num_seeds > 1``: of ``run_dir/seed_<s>``), by seed
    agents: dict[int, Agent] = dataclasses.field(default_factory=dict)


def _override(key: str, value: Any) -> str:
    """``key=value`` in Hydra's override grammar (booleans, null, lists and dicts included); a string
    is quoted, so that it stays that string (``"1e3"``, ``"null"``, ``"a, b"``), except a config
    group's choice (``algo``, ``env``, ...), which names a file.

    Examples:
        >>> from rlkit.cli import _override
        >>> _override("logger.group", "my group, v2"), _override("algo", "a2c"), _override("lr", 0.1)
        ("logger.group='my group, v2'", 'algo=a2c', 'lr=0.1')
    """
    def text(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return quoted(v)
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(text(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{" + ",".join(f"{k}:{text(x)}" for k, x in v.items()) + "}"
        return str(v)

    if isinstance(value, str) and key.lstrip("+~") in (*GROUP_KEYS, "experiment"):
        return f"{key}={value}"
    return f"{key}={text(value)}"


def train(overrides: Sequence[str] | Mapping[str, Any] | None = None, *,
          output_dir: str | Path | None = None) -> TrainResult:
    """Trains a run from Python: what ``python train.py <overrides>`` does, in this process.

    The config is composed with Hydra's ``compose`` from the package's ``conf/`` (:data:`CONF_DIR`)
    and validated; ``torch.set_num_threads`` follows its ``num_threads`` (default 1, as
    ``train.py``). The run writes what a ``train.py`` run writes (``config.yaml``, metrics,
    checkpoints, ``.hydra/config.yaml`` and ``overrides.yaml``), and can be resumed with
    ``train.py resume=<run_dir>``.

    Args:
        overrides: ``["algo=a2c", "total_frames=1000"]`` or ``{"algo": "a2c", "total_frames": 1000}``.
        output_dir: the run directory (new or empty); default
            ``outputs/<date>/<time>_<algo>_<env>_s<seed>_<token>`` under the current directory.

    Returns:
        The run directory, the last evaluation's metrics and the trained agent.

    Raises:
        RlkitError: a refusal (a bad config, an env that cannot be built, a directory in use or
            not empty, ...); nothing is left behind.

    Examples:
        >>> import tempfile
        >>> import rlkit
        >>> result = rlkit.train({"total_frames": 300, "trainer.progress": False, "logger": "none"},
        ...                      output_dir=tempfile.mkdtemp())
        >>> sorted(result.metrics), result.agent.frames
        (['eval_length', 'eval_return', 'eval_return_std'], 300)
    """
    from rlkit.agent import load_agent

    if overrides is None:
        args: list[str] = []
    elif isinstance(overrides, Mapping):
        args = [_override(str(k), v) for k, v in overrides.items()]
    elif isinstance(overrides, str):
        raise ConfigError(f"overrides={overrides!r}: give a list of key=value strings or a dict")
    else:
        args = [str(o) for o in overrides]
    register_resolvers()
    problem = command_line_problem(args, CONF_DIR)
    if problem is not None:
        raise ConfigError(problem)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=args)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(str(err).strip().splitlines()[0]) from None
    if cfg.get("resume"):
        raise ConfigError(f"resume={cfg.resume}: rlkit.train starts new runs; resume one with python train.py "
                          f"resume={cfg.resume}")
    settings = validate_config(cfg)
    if output_dir is None:
        env_label = env_label_resolver(settings.env.id, settings.env.game)
        output_dir = (Path("outputs") / time.strftime("%Y-%m-%d") / f"{time.strftime('%H-%M-%S')}_{settings.algo.name}_"
                      f"{env_label}_s{settings.root.seed}_{secrets.token_hex(3)}")
    provenance = {"config.yaml": OmegaConf.to_yaml(cfg), "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(args))}
    metrics = run(cfg, output_dir, overrides=args, provenance=provenance, validated=settings)
    root = settings.root
    if root.num_seeds > 1:
        from rlkit.factories import seed_dir_name

        agents = {s: load_agent(Path(output_dir) / seed_dir_name(s), device=root.device)
                  for s in range(root.seed, root.seed + root.num_seeds)}
        return TrainResult(run_dir=Path(output_dir), metrics=metrics, agent=agents[root.seed], agents=agents)
    agent = load_agent(output_dir, device=root.device)
    return TrainResult(run_dir=Path(output_dir), metrics=metrics, agent=agent, agents={root.seed: agent})
# -- tune.py ---------------------------------------------------------------------------------------
def tune_parts(cfg: DictConfig) -> tuple[DictConfig, Any]:
    """Splits ``tune.py``'s config into the training config (validated, every searched key present
    and each bound or choice of the space accepted by the config checks) and the study's
    :class:`~rlkit.tune.TuneSettings`. Writes nothing.

    Raises:
        RlkitError: the first problem, naming the key, the value and the valid choices.
    """
    from rlkit.tune import parse_tune_settings
    from rlkit.tune.studydir import resume_refusal
    from rlkit.tune.trial import trial_config

    tune_node = cfg.get("tune")
    if not isinstance(tune_node, DictConfig):
        raise ConfigError("tune.py needs the tune section of conf/tune.yaml (tune.n_trials, tune.space, ...)")
    base = OmegaConf.masked_copy(cfg, [str(key) for key in cfg.keys() if key not in ("tune", "hydra")])
    if base.get("resume"):  # (set by an experiment file or a config of the user's; tune.py's argv is checked first)
        raise ConfigError(resume_refusal(str(base.resume)))
    try:
        container = OmegaConf.to_container(tune_node, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"tune: {err.msg}") from None
    assert isinstance(container, dict)
    settings = parse_tune_settings({str(k): v for k, v in container.items()}, base_seed=int(cfg.get("seed", 0)))
    check_creatable(settings.dir, "tune.dir=")
    preflight(base)
    missing = object()
    for param in settings.space.params:
        if OmegaConf.select(base, param.path, default=missing) is missing:
            raise ConfigError(f"tune.space.{param.path}: {param.path} is not a key of the training config (algo="
                              f"{OmegaConf.select(base, 'algo.name')}); drop it with ~tune.space.{param.path}")
        for value in param.examples():
            try:
                validate_config(trial_config(base, {param.path: value}, int(cfg.get("seed", 0))))
            except ConfigError as err:
                raise ConfigError(f"tune.space.{param.path} allows {param.path}={value!r}, which the config refuses: "
                                  f"{err}") from None
    return base, settings


# -- tune.py: a command-line value of a searched key ----------------------------------------------------
def _set_keys(key: str, value: Any) -> Iterator[str]:
    """The dotted keys an override of ``key`` with ``value`` sets: ``key`` itself, or the leaves of a
    mapping value (Hydra merges a mapping into the node)."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            yield from _set_keys(f"{key}.{name}", item)
    else:
        yield key


def _overlap(given: str, searched: str) -> bool:
    return given == searched or searched.startswith(f"{given}.") or given.startswith(f"{searched}.")


def searched_override_problem(overrides: Sequence[str], searched: Sequence[str],
                              groups: Collection[str] = ()) -> str | None:
    """Why ``tune.py``'s command-line ``overrides`` cannot run: one sets a training key that the search
    space varies (``searched``: the dotted keys of ``tune.space``), whose value every trial would
    replace with a sampled one. The user's intent is unclear (fix the key, or search it), so it is
    refused, naming both ways out. Only the command line counts: a value set by an experiment file or
    a group's default is the base config, which the space is meant to vary. Group choices
    (``groups``: ``algo=dqn``, ``experiment=...``), deletions (``~key``) and ``tune.*`` keys set no
    training value. None: no such override.

    Examples:
        >>> from rlkit.cli import searched_override_problem
        >>> searched_override_problem(["algo=dqn", "algo.learning_starts=500"], ["algo.learning_starts"], ["algo"])
        'algo.learning_starts=500 is given on the command line but tune.space searches algo.learning_starts; drop one: remove the override, or fix it by removing it from the space with ~tune.space.algo.learning_starts'
        >>> searched_override_problem(["algo.optim={lr: 0.1}"], ["algo.optim.lr"])[:70]
        'algo.optim={lr: 0.1} is given on the command line but tune.space searc'
        >>> searched_override_problem(["total_frames=1000", "tune.space.algo.optim.lr=[0.1]"], ["algo.optim.lr"])
        >>> searched_override_problem(["algo={learning_starts: 500}"], ["algo.learning_starts"], ["algo"])[:60]
        'algo={learning_starts: 500} is given on the command line but'
    """
    parser = OverridesParser.create()
    found: list[tuple[str, str]] = []
    for line in overrides:
        try:
            override = parser.parse_override(str(line))
        except HydraException:  # (Hydra has parsed the command line already)
            continue
        key = override.key_or_group
        value = override.value() if not override.is_sweep_override() else None
        chosen = key in groups and not isinstance(value, Mapping)  # (algo={learning_starts: 500} merges, not chooses)
        if (override.is_delete() or override.package is not None or chosen or key in ("tune", "hydra")
                or key.startswith(("tune.", "hydra."))):
            continue
        for given in _set_keys(key, value):
            path = next((p for p in searched if _overlap(given, p)), None)
            if path is not None:
                found.append((str(line), path))
                break
    if not found:
        return None
    (line, path), others = found[0], found[1:]
    also = "".join(f"; likewise {o} (~tune.space.{p})" for o, p in others)
    return (f"{line} is given on the command line but tune.space searches {path}; drop one: remove the override, or "
            f"fix it by removing it from the space with ~tune.space.{path}{also}")


def _searched_override_problem(config: DictConfig) -> str | None:
    """:func:`searched_override_problem` for ``tune.py``'s composed ``config`` (with its ``hydra``
    node). A space that does not parse is left to :class:`TuneCheck`, which names it."""
    from rlkit.tune.space import parse_space

    overrides = OmegaConf.select(config, "hydra.overrides.task", default=None) or []
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    try:
        space = OmegaConf.to_container(config.tune.space, resolve=True)
        searched = ([param.path for param in parse_space({str(k): v for k, v in space.items()}).params]
                    if isinstance(space, dict) else [])
    except (ConfigError, OmegaConfBaseException, AttributeError, TypeError):
        return None
    groups = {str(group).partition("@")[0] for group in choices}
    return searched_override_problem([str(o) for o in overrides], searched, groups)


class SearchedOverrideCheck(Callback):
    """``tune.py``'s Hydra callback (``conf/tune.yaml``): refuses, before the study directory exists,
    a command-line override of a key that ``tune.space`` searches (:func:`searched_override_problem`),
    in one ``rlkit:`` line with exit status 2.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli import SearchedOverrideCheck
        >>> cfg = OmegaConf.create({"algo": {"learning_starts": 500}, "tune": {"space": {"algo": {"learning_starts": [0, 1]}}},
        ...                         "hydra": {"overrides": {"task": ["algo.learning_starts=500"]}, "runtime": {"choices": {}}}})
        >>> SearchedOverrideCheck().on_run_start(cfg)
        Traceback (most recent call last):
        SystemExit: 2
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        problem = _searched_override_problem(config)
        if problem is not None:
            refuse(ConfigError(problem))


class TuneCheck(Callback):
    """``tune.py``'s Hydra callback: refuses bad settings (:func:`tune_parts`) before Hydra creates the
    study directory.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli import TuneCheck
        >>> TuneCheck().on_run_start(OmegaConf.create({"seed": 0}))
        Traceback (most recent call last):
        SystemExit: 2
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            tune_parts(config)
        except RlkitError as err:
            refuse(err)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        refuse("tune.py runs one study (its trials are the sweep): drop -m; for several studies, run tune.py once "
               "per study (tune.study=<name>)")


def tune_task(cfg: DictConfig) -> float | None:
    """The body of ``tune.py``'s task: runs (or resumes) the study into ``tune.dir``; returns the best
    trial's value (None when no trial completed)."""
    from rlkit.trainers import TrainingInterrupted
    from rlkit.tune import tune

    choices = HydraConfig.get().runtime.choices
    try:
        base, settings = tune_parts(cfg)
    except RlkitError as err:
        refuse(err)
    try:
        study = tune(base, settings, groups={group: str(choices[group]) for group in GROUP_KEYS if choices.get(group)})
    except RlkitError as err:
        refuse(err)
    except (KeyboardInterrupt, TrainingInterrupted) as stop:
        signum = getattr(stop, "signum", 2)
        print(f"\ninterrupted; a trial it was running is marked failed and runs again when you rerun the same "
              f"command (the study resumes from {settings.storage_url})", file=sys.stderr)
        raise SystemExit(128 + signum) from None
    return study_result(study.get_trials(deepcopy=False), settings.dir)


def study_result(trials: Sequence[Any], where: Path) -> float | None:
    """The best completed trial's value (``None`` when none completed). A study none of whose
    trials completed while some failed with their own error (not the interrupted, lost or surplus
    ones, which do not count) ends the process with status 1, one line on stderr.

    Examples:
        >>> from pathlib import Path
        >>> from types import SimpleNamespace as T
        >>> from rlkit.cli import study_result
        >>> done, fail = T(name="COMPLETE"), T(name="FAIL")
        >>> crashed = T(state=fail, value=None, user_attrs={"error": "NonFiniteError: ..."})
        >>> study_result([T(state=done, value=1.0, user_attrs={}), crashed], Path("s"))
        1.0
        >>> import contextlib, sys
        >>> try:
        ...     with contextlib.redirect_stderr(sys.stdout):
        ...         study_result([crashed, T(state=fail, value=None, user_attrs={"interrupted": "SIGINT"})], Path("s"))
        ... except SystemExit as stop:
        ...     print(stop.code)
        rlkit: no trial of the study completed: 1 failed (trials.csv in s has each one's error)
        1
    """
    from rlkit.tune.states import ERROR_ATTR

    best = [t.value for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    failed = sum(t.state.name == "FAIL" and ERROR_ATTR in t.user_attrs for t in trials)
    if not best and failed:
        print(f"rlkit: no trial of the study completed: {failed} failed (trials.csv in {where} has each one's "
              "error)", file=sys.stderr)
        raise SystemExit(1)
    return max(best) if best else None
