"""Everything Hydra-specific of rlkit's command line; nothing else in ``rlkit`` imports Hydra.

``train.py`` is a thin entry over this module:

- :func:`register_resolvers`: the ``rlkit_*`` resolvers ``conf/config.yaml`` uses for run and sweep
  directory names (unique per start: a random token, see :func:`token_resolver`);
- :class:`ConfigCheck`: the Hydra callback that refuses a bad start before its run directory exists;
- :func:`prepare_argv`: on resume, composes the run's own config groups;
- :func:`train_task`: the task function's body: :func:`rlkit.run.run`, refusals as one line.

Refusals end the process with ``rlkit: <message>`` on stderr and exit status 2; an interrupt
(Ctrl-C, SIGTERM) with a checkpoint and status 128 + the signal number.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.builders import GROUP_KEYS, Settings
from rlkit.envs import env_label
from rlkit.errors import ConfigError, RlkitError, RunDirBusyError, RunDirError
from rlkit.rundir import check_fresh_run_dir, lock_holder
from rlkit.run import CONFIG_FILE, PROVENANCE_DIR, preflight, run, run_dir_of
from rlkit.trainers.checkpoint import find_checkpoint

__all__ = [
    "ConfigCheck",
    "EXIT_REFUSED",
    "prepare_argv",
    "refuse",
    "register_resolvers",
    "resume_group_overrides",
    "train_task",
]

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
    return str(run_dir_of(resume)) if resume else default


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
    swept = [k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k]
    return job_dir_name(int(num), list(overrides), swept, default)


def env_label_resolver(env_id: str | None, game: str | None = None) -> str:
    """``${rlkit_env_label:${env.id},${env.game}}``: the env's short name in directory names (the game
    of a game suite, else :func:`rlkit.envs.env_label` of the id)."""
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
        if config.get("resume"):
            self._check_resume(config)
            return
        run_dir = OmegaConf.select(config, "hydra.run.dir")
        try:
            if run_dir is not None:
                if not str(run_dir).strip():
                    raise RunDirError("hydra.run.dir is empty; give a directory for the run, or leave it unset")
                _check_not_held(Path(run_dir))
                check_fresh_run_dir(run_dir)
        except RlkitError as err:
            refuse(err)
        _check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("resume"):
            refuse(f"resume={config.resume} continues one run; it cannot be swept (-m): resume each run on "
                   "its own")
        overrides = OmegaConf.select(config, "hydra.overrides.task", default=[]) or []
        os.environ[SWEPT_KEYS_ENV] = ",".join(swept_keys(list(overrides)))

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
    except (OSError, OmegaConfBaseException, AttributeError):
        pass
    try:
        saved = OmegaConf.to_container(OmegaConf.load(run_dir / CONFIG_FILE))
    except (OSError, OmegaConfBaseException):
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
    resume = values.get("resume")
    if not resume or resume == "null":
        return []
    choices = run_group_choices(resume, conf_dir)
    return [f"{group}={choices[group]}" for group in GROUP_KEYS if group not in values and group in choices]


def prepare_argv(argv: list[str]) -> None:
    """Inserts the resumed run's groups (:func:`resume_group_overrides`) into ``argv`` in place,
    right before ``resume=`` (Hydra's flags may come first)."""
    args = argv[1:]
    groups = resume_group_overrides(args, Path(argv[0]).resolve().parent / "conf")
    if groups:
        at = 1 + next(i for i, a in enumerate(args) if a.lstrip("+").startswith("resume="))
        argv[at:at] = groups


# -- the task --------------------------------------------------------------------------------------
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


def train_task(cfg: DictConfig) -> float | None:
    """The body of ``train.py``'s task: trains the run Hydra composed into its run directory.

    Returns the last greedy evaluation return (the objective a Hydra sweeper reads).
    """
    from rlkit.trainers import TrainingInterrupted

    hc = HydraConfig.get()
    run_dir = hc.runtime.output_dir
    multirun = hc.mode == RunMode.MULTIRUN
    label = f"job {hc.job.num} " if multirun else ""
    provenance = {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": OmegaConf.to_container(hc)})),
        "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(list(hc.overrides.task))),
    }
    try:
        settings = None if cfg.get("resume") else _checked_settings(cfg)
        result = run(cfg, run_dir, overrides=_own_overrides(cfg, hc), provenance=provenance, validated=settings)
    except RlkitError as err:
        if multirun:  # the other jobs of the sweep go on
            print(f"rlkit: {label}({run_dir}) failed: {_describe(err)}", file=sys.stderr)
            return None
        refuse(err)
    except TrainingInterrupted as stop:
        print(f"\n{stop}\nresume with: python train.py resume={run_dir}", file=sys.stderr)
        raise SystemExit(128 + stop.signum) from None
    if result and all(isinstance(k, int) for k in result):  # a multi-seed run: by seed
        returns = ", ".join(f"seed {k}: {m.get('eval_return')}" for k, m in result.items())
        print(f"done: {label}greedy eval return {returns} | run dir {run_dir}", file=sys.stderr)
        values = [m["eval_return"] for m in result.values() if "eval_return" in m]
        return sum(values) / len(values) if values else None  # a sweep's objective: the seeds' mean
    print(f"done: {label}greedy eval return {result.get('eval_return')} | run dir {run_dir}", file=sys.stderr)
    return result.get("eval_return")
