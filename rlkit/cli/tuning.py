"""Everything of ``tune.py`` (the study itself is :mod:`rlkit.tune`): :func:`tune_parts` splits its
config into the training config and the study's settings; its Hydra callbacks :class:`TuneCheck` (bad
settings) and :class:`SearchedOverrideCheck` (a command-line value of a searched key) refuse before the
study directory exists; :func:`tune_task` is its task body."""
from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit import startup
from rlkit.builders import GROUP_KEYS, validate_config
from rlkit.cli.base import refuse
from rlkit.cli.resume import absolute_searchpath
from rlkit.errors import ConfigError, RlkitError
from rlkit.rundir import check_creatable
from rlkit.run import preflight


def original_cwd(cfg: DictConfig) -> Path | None:
    """The directory ``tune.py`` was started in, from ``cfg``'s hydra node (Hydra's
    ``hydra.runtime.cwd``, as its callbacks see it); None without one. (Not from Hydra's global
    config: in a process that ran Hydra before, a config without the node would get that run's.)"""
    cwd = OmegaConf.select(cfg, "hydra.runtime.cwd", default=None) if "hydra" in cfg else None
    return Path(str(cwd)) if cwd else None


def _study_searchpath() -> list[str]:
    """The ``hydra.searchpath`` of the running ``tune.py`` (Hydra's config of the job), each relative
    folder made absolute against the directory it started in: where the study found config groups of
    the user's own (an algorithm added outside the package, README "Adding an algorithm"), which
    ``experiment/best.yaml`` chooses too. Empty outside a Hydra job."""
    if not HydraConfig.initialized():
        return []
    hydra_cfg = HydraConfig.get()
    entries, cwd = hydra_cfg.searchpath, hydra_cfg.runtime.cwd
    return absolute_searchpath([str(entry) for entry in entries or ()], str(cwd) if cwd else None)


def tune_parts(cfg: DictConfig, cwd: Path | None = None) -> tuple[DictConfig, Any]:
    """Splits ``tune.py``'s config into the training config (validated as the trials run it: every
    searched key present, each bound or choice of the space accepted by the config checks, and with
    the seeds trained together, ``num_seeds`` = their count, where they will be) and the study's
    :class:`~rlkit.tune.TuneSettings`. A relative ``tune.dir`` is taken from the directory tune.py
    was started in (``cwd``, default :func:`original_cwd`), whether or not Hydra changes into its run
    directory (``hydra.job.chdir=true``). Writes nothing.

    Raises:
        RlkitError: the first problem, naming the key, the value and the valid choices.
    """
    from rlkit.tune import parse_tune_settings
    from rlkit.tune.studydir import resume_refusal
    from rlkit.tune.trial import batchable, trial_config

    tune_node = cfg.get("tune")
    if not isinstance(tune_node, DictConfig):
        raise ConfigError("tune.py needs the tune section of conf/tune.yaml (tune.n_trials, tune.space, ...)")
    base = OmegaConf.masked_copy(cfg, [str(key) for key in cfg.keys() if key not in ("tune", "hydra")])
    if base.get("resume"):  # (set by an experiment file or a config of the user's; tune.py's argv is checked first)
        raise ConfigError(resume_refusal(str(base.resume)))
    num_seeds = base.get("num_seeds", 1)
    if num_seeds != 1:
        span = (f"tune.seeds={num_seeds}: seed .. seed+{num_seeds - 1}" if isinstance(num_seeds, int)
                else "tune.seeds=3: seed .. seed+2")
        raise ConfigError(f"num_seeds={num_seeds!r} cannot be set for a study: tune.seeds sets every trial's seeds "
                          f"({span}, trained together in one process with tune.batched_seeds=true); drop the "
                          "override (num_seeds=1 where an experiment file sets it)")
    try:
        container = OmegaConf.to_container(tune_node, resolve=True)
    except OmegaConfBaseException as err:
        raise ConfigError(f"tune: {err.msg}") from None
    assert isinstance(container, dict)
    cwd = cwd if cwd is not None else original_cwd(cfg)
    folder = container.get("dir")
    if cwd is not None and isinstance(folder, str) and folder.strip() and not os.path.isabs(folder):
        if Path.cwd().resolve() != cwd.resolve():  # (hydra.job.chdir=true: the job runs in the study directory)
            container["dir"] = str(cwd / folder)
    settings = parse_tune_settings({str(k): v for k, v in container.items()}, base_seed=int(cfg.get("seed", 0)))
    settings = dataclasses.replace(settings, searchpath=tuple(_study_searchpath()))
    check_creatable(settings.dir, "tune.dir=")
    preflight(base)
    together = len(settings.seeds) if settings.batched_seeds and batchable(settings.seeds) else 1

    def as_run(params: Mapping[str, Any]) -> DictConfig:
        """The config of a trial with ``params``, as it trains (its seeds together: num_seeds)."""
        trial = trial_config(base, params, settings.seeds[0])
        trial.num_seeds = together
        return trial

    if together > 1:
        try:
            validate_config(as_run({}))
        except ConfigError as err:
            raise ConfigError(f"{err} (a trial trains its tune.seeds={together} seeds together in one process, "
                              f"num_seeds={together}; tune.batched_seeds=false trains them one after another)") from None
    missing = object()
    for param in settings.space.params:
        if OmegaConf.select(base, param.path, default=missing) is missing:
            raise ConfigError(f"tune.space.{param.path}: {param.path} is not a key of the training config (algo="
                              f"{OmegaConf.select(base, 'algo.name')}); drop it with ~tune.space.{param.path}")
        for value in param.examples():
            try:
                validate_config(as_run({param.path: value}))
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
        >>> searched_override_problem(["algo=dqn", "algo.learning_starts=500"], ["algo.learning_starts", "algo.optim.lr"],
        ...                           ["algo"])
        'algo.learning_starts=500 is given on the command line but tune.space searches algo.learning_starts; drop one: remove the override, or fix it by removing it from the space with ~tune.space.algo.learning_starts'
        >>> searched_override_problem(["algo.optim.lr=0.1"], ["algo.learning_starts", "algo.optim.lr"])[-42:]
        'from the space with ~tune.space.algo.optim'
        >>> searched_override_problem(["algo.learning_starts=500"], ["algo.learning_starts"])[-45:]
        'the only key it searches; remove the override'
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
    removal = _space_removal(path, searched)
    if removal is None:  # (removing it would leave the space empty, which tune.py refuses)
        return (f"{line} is given on the command line but tune.space searches {path}, the only key it searches; "
                f"remove the override")
    also = "".join(f"; likewise {o} (~tune.space.{r})" for o, p in others
                   if (r := _space_removal(p, searched)) is not None)
    return (f"{line} is given on the command line but tune.space searches {path}; drop one: remove the override, or "
            f"fix it by removing it from the space with ~tune.space.{removal}{also}")


def _space_removal(path: str, searched: Sequence[str]) -> str | None:
    """The key of ``tune.space`` whose deletion removes ``path`` and nothing else that the space
    searches: its highest group holding no other searched key (a group left empty is refused); None
    when the space searches nothing else.

    Examples:
        >>> from rlkit.cli.tuning import _space_removal
        >>> _space_removal("algo.optim.lr", ["algo.optim.lr", "algo.batch_size"])
        'algo.optim'
        >>> _space_removal("algo.optim.lr", ["algo.optim.lr", "algo.optim.eps"])
        'algo.optim.lr'
        >>> _space_removal("algo.optim.lr", ["algo.optim.lr"]) is None
        True
    """
    others = [p for p in searched if p != path]
    if not others:
        return None
    parts = path.split(".")
    for depth in range(1, len(parts) + 1):
        group = ".".join(parts[:depth])
        if not any(_overlap(group, other) for other in others):
            return group
    return path


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

    startup.mark("running")
    runtime = HydraConfig.get().runtime  # (the task's config has no hydra node: the job's own, current here)
    choices = runtime.choices
    try:
        base, settings = tune_parts(cfg, cwd=Path(str(runtime.cwd)))
    except RlkitError as err:
        refuse(err)
    try:
        study = tune(base, settings, groups={group: str(choices[group]) for group in GROUP_KEYS if choices.get(group)})
    except RlkitError as err:
        refuse(err)
    except (KeyboardInterrupt, TrainingInterrupted) as stop:
        signum = getattr(stop, "signum", 2)
        line = interrupt_line(settings)
        print(f"\n{line}", file=sys.stderr)
        logging.getLogger("rlkit.tune").info("%s", line)  # (tune.log)
        raise SystemExit(128 + signum) from None
    startup.mark("done")
    return study_result(study.get_trials(deepcopy=False), settings.dir)


def interrupt_line(settings: Any) -> str:
    """What ``tune.py`` says when a signal stopped the study (its storage URL's password masked).

    Examples:
        >>> from pathlib import Path
        >>> from types import SimpleNamespace as T
        >>> from rlkit.cli.tuning import interrupt_line
        >>> print(interrupt_line(T(dir=Path("s"), shown_storage="postgresql://u:***@db/rlkit")))  # doctest: +NORMALIZE_WHITESPACE
        interrupted; a trial it was running, if any, is marked failed and its run moved to s/interrupted/: a
        rerun of the same command trains its configuration again, from scratch, as a new trial (the study
        resumes from postgresql://u:***@db/rlkit)
    """
    return (f"interrupted; a trial it was running, if any, is marked failed and its run moved to "
            f"{Path(settings.dir) / 'interrupted'}/: a rerun of the same command trains its configuration again, from "
            f"scratch, as a new trial (the study resumes from {settings.shown_storage})")


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
