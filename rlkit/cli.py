"""Everything Hydra-specific of rlkit's command line; nothing else in ``rlkit`` imports Hydra.

``train.py`` is a thin entry over this module:

- :func:`register_resolvers`: the ``rlkit_*`` resolvers ``conf/config.yaml`` uses for run and sweep
  directory names (unique per start: a random token, see :func:`token_resolver`);
- :class:`ConfigCheck`: the Hydra callback that refuses a bad start before its run directory exists;
- :func:`prepare_argv`: on resume, composes the run's own config groups;
- :func:`train_task`: the task function's body: :func:`rlkit.run.run`, refusals as one line;
- :class:`TuneCheck` and :func:`tune_task`: the same two for ``tune.py`` (:mod:`rlkit.tune`).

Refusals end the process with ``rlkit: <message>`` on stderr and exit status 2; an interrupt
(Ctrl-C, SIGTERM) with a checkpoint and status 128 + the signal number.
"""
from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.builders import GROUP_KEYS, Settings, validate_config
from rlkit.envs import env_label
from rlkit.errors import ConfigError, RlkitError, RunDirBusyError, RunDirError
from rlkit.rundir import check_fresh_run_dir, lock_holder
from rlkit.run import CONFIG_FILE, PROVENANCE_DIR, preflight, run, run_dir_of
from rlkit.trainers.checkpoint import find_checkpoint

__all__ = [
    "ConfigCheck",
    "EXIT_REFUSED",
    "TuneCheck",
    "prepare_argv",
    "refuse",
    "register_resolvers",
    "resume_group_overrides",
    "train_task",
    "tune_parts",
    "tune_task",
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


def job_subdir_resolver(subdir: str, *, _root_: DictConfig) -> str:
    """``hydra.sweep.subdir``: checks each sweep job (:func:`rlkit.run.preflight`) before Hydra creates
    its directory (Hydra has no callback there)."""
    _check(_root_)
    return subdir


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
    print(f"done: {label}greedy eval return {result.get('eval_return')} | run dir {run_dir}", file=sys.stderr)
    return result.get("eval_return")


# -- tune.py ---------------------------------------------------------------------------------------
def tune_parts(cfg: DictConfig) -> tuple[DictConfig, Any]:
    """Splits ``tune.py``'s config into the training config (validated, every searched key present
    and each bound or choice of the space accepted by the config checks) and the study's
    :class:`~rlkit.tune.TuneSettings`. Writes nothing.

    Raises:
        RlkitError: the first problem, naming the key, the value and the valid choices.
    """
    from rlkit.tune import parse_tune_settings
    from rlkit.tune.trial import trial_config

    tune_node = cfg.get("tune")
    if not isinstance(tune_node, DictConfig):
        raise ConfigError("tune.py needs the tune section of conf/tune.yaml (tune.n_trials, tune.space, ...)")
    base = OmegaConf.masked_copy(cfg, [str(key) for key in cfg.keys() if key not in ("tune", "hydra")])
    try:
        container = OmegaConf.to_container(tune_node, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"tune: {err.msg}") from None
    assert isinstance(container, dict)
    settings = parse_tune_settings({str(k): v for k, v in container.items()}, base_seed=int(cfg.get("seed", 0)))
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
        print(f"\ninterrupted; the interrupted trial is marked failed and runs again when you rerun the same "
              f"command (the study resumes from {settings.storage_url})", file=sys.stderr)
        raise SystemExit(128 + signum) from None
    best = [t.value for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE" and t.value is not None]
    return max(best) if best else None
