"""The ``tune`` section of ``conf/tune.yaml``, validated once, and the sampler and pruner it names."""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import optuna

from rlkit.config_schema import MAX_SEED, MAX_SEED_COUNT
from rlkit.errors import ConfigError
from rlkit.tune.space import SearchSpace, parse_space
from rlkit.tune.studydir import check_study_dir

__all__ = ["FIXED_KEYS", "OBJECTIVES", "PRUNERS", "SAMPLERS", "TuneSettings", "evaluation_slot", "evaluations_per_seed",
           "make_pruner", "make_sampler", "parse_tune_settings", "shown_url"]

Sampler = Literal["tpe", "random", "grid"]
Pruner = Literal["median", "halving", "none"]
Objective = Literal["final", "auc"]
SAMPLERS: tuple[Sampler, ...] = ("tpe", "random", "grid")
PRUNERS: tuple[Pruner, ...] = ("median", "halving", "none")
#: ``final``: each seed's last greedy evaluation; ``auc``: the area under its evaluation curve (the
#: mean of its evaluation slots: :func:`evaluation_slot`, :func:`rlkit.tune.trial.seed_objective`).
OBJECTIVES: tuple[Objective, ...] = ("final", "auc")


@dataclass(frozen=True)
class TuneSettings:
    """A study's settings (``tune.*``); see ``conf/tune.yaml`` for each knob."""

    study: str
    dir: Path
    space: SearchSpace
    seeds: tuple[int, ...]
    n_trials: int = 50
    jobs: int = 1
    storage: str | None = None
    objective: Objective = "final"
    sampler: Sampler = "tpe"
    pruner: Pruner = "median"
    n_startup_trials: int = 5
    n_warmup_evals: int | None = None
    sampler_seed: int | None = None
    batched_seeds: bool = True
    #: The study's ``hydra.searchpath`` (absolute; set by tune.py from Hydra, not a ``tune.*`` key): the
    #: printed commands that train the best trial carry it, for groups of the user's own.
    searchpath: tuple[str, ...] = ()

    @property
    def storage_url(self) -> str:
        """The storage: ``tune.storage``, or the SQLite file ``<dir>/study.db``."""
        return self.storage or f"sqlite:///{(self.dir / 'study.db').resolve()}"

    @property
    def shown_storage(self) -> str:
        """:attr:`storage_url` as messages show it, its password masked (:func:`shown_url`)."""
        return shown_url(self.storage_url)


_KEYS = [f.name for f in dataclasses.fields(TuneSettings)]
# (the password runs to the last "@" before the host: an unescaped "@" in it stays masked)
_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:)(?P<password>[^/]*)@")


def shown_url(url: str) -> str:
    """A storage URL as rlkit prints it: the password, if the URL holds one, replaced by ``***``.

    Examples:
        >>> from rlkit.tune.settings import shown_url
        >>> shown_url("postgresql://user:s3cret@db-host/rlkit"), shown_url("sqlite:///outputs/tune/a/study.db")
        ('postgresql://user:***@db-host/rlkit', 'sqlite:///outputs/tune/a/study.db')
        >>> shown_url("postgresql://u:p@ss@host/db")
        'postgresql://u:***@host/db'
    """
    return _PASSWORD.sub(lambda m: f"{m['head']}***@", str(url), count=1)


def masked_text(text: str, url: str) -> str:
    """``text`` (an error of the storage, say) with ``url`` shown as :func:`shown_url` shows it and its
    ``user:password@`` part masked where it appears alone (not the bare password elsewhere: a short
    one would mask pieces of host names and numbers).

    Examples:
        >>> from rlkit.tune.settings import masked_text
        >>> url = "postgresql://rlkit:rlkit@10.0.0.1:5432/rlkit"
        >>> masked_text(f'cannot open {url}: database "rlkit" does not exist; user rlkit:rlkit@10.0.0.1', url)
        'cannot open postgresql://rlkit:***@10.0.0.1:5432/rlkit: database "rlkit" does not exist; user rlkit:***@10.0.0.1'
    """
    match = _PASSWORD.match(str(url))
    if match is None:
        return text
    credentials = match.group(0).partition("://")[2]  # user:password@
    return text.replace(url, shown_url(url)).replace(credentials, f"{match['head'].partition('://')[2]}***@")


#: Config keys a search space may not name: the study fixes them for every trial.
FIXED_KEYS = ("seed", "num_seeds", "total_frames", "trainer.eval_interval")


def _choice(node: Mapping[str, Any], key: str, valid: tuple[str, ...]) -> Any:
    value = node.get(key)
    if value not in valid:
        raise ConfigError(f"tune.{key}={value!r} is not valid; valid choices: {list(valid)}")
    return value


def _count(node: Mapping[str, Any], key: str, minimum: int, optional: bool = False) -> Any:
    value = node.get(key)
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"tune.{key}={value!r} is invalid: expected an integer >= {minimum}")
    return value


def _seeds(value: Any, base_seed: int) -> tuple[int, ...]:
    most = min(MAX_SEED_COUNT, MAX_SEED - base_seed + 1)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most:
        return tuple(base_seed + i for i in range(value))
    if (isinstance(value, (list, tuple)) and 0 < len(value) <= MAX_SEED_COUNT
            and all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in value)
            and len(set(value)) == len(value)):
        return tuple(value)
    raise ConfigError(f"tune.seeds={value!r} is invalid: expected a count in [1, {most}] (tune.seeds=3: seed, seed+1, "
                      f"seed+2) or a list of distinct seeds in [0, {MAX_SEED}] (tune.seeds=[0,5,9])")


def parse_tune_settings(node: Mapping[str, Any], base_seed: int = 0) -> TuneSettings:
    """Validates the ``tune`` section (a plain, resolved mapping); ``base_seed`` is the config's
    ``seed``, the first of ``tune.seeds=N`` seeds.

    Raises:
        ConfigError: an unknown key or an invalid value, named with the valid choices.
        RunDirError: ``tune.dir`` holds files but no earlier study
            (:func:`~rlkit.tune.studydir.check_study_dir`; the directory is only read).

    Examples:
        >>> from rlkit.tune import parse_tune_settings
        >>> space = {"algo": {"optim": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}}}
        >>> s = parse_tune_settings({"study": "demo", "dir": "outputs/tune/demo", "space": space, "seeds": 2})
        >>> s.seeds, s.sampler, s.pruner, s.objective, s.storage_url.endswith("outputs/tune/demo/study.db")
        ((0, 1), 'tpe', 'median', 'final', True)
        >>> parse_tune_settings({"study": "demo", "dir": "d", "space": space, "seeds": 2, "sampler": "cmaes"})
        Traceback (most recent call last):
        rlkit.errors.ConfigError: tune.sampler='cmaes' is not valid; valid choices: ['tpe', 'random', 'grid']
    """
    for key in node:
        if key not in _KEYS:
            hint = difflib.get_close_matches(str(key), _KEYS, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"unknown key tune.{key}{did_you_mean}; valid keys: {_KEYS}")
    full = {"n_trials": 50, "jobs": 1, "storage": None, "objective": "final", "sampler": "tpe", "pruner": "median",
            "n_startup_trials": 5, "n_warmup_evals": None, "sampler_seed": None, "batched_seeds": True, **node}
    study = full.get("study")
    if not isinstance(study, str) or not study.strip() or "/" in study or study in (".", ".."):
        raise ConfigError(f"tune.study={study!r} is invalid: expected a name (it names the study's directory)")
    directory = full.get("dir")
    if not isinstance(directory, str) or not directory.strip():
        raise ConfigError(f"tune.dir={directory!r} is invalid: expected a directory")
    storage = full["storage"]
    if storage is not None and (not isinstance(storage, str) or "://" not in storage):
        raise ConfigError(f"tune.storage={shown_url(str(storage))!r} is not a storage URL; e.g. sqlite:///study.db, "
                          "postgresql://user:password@host/db, mysql://user:password@host/db (null: <tune.dir>/study.db)")
    space = full.get("space")
    if not isinstance(space, Mapping):
        raise ConfigError(f"tune.space={space!r} must be a mapping of config keys to entries (conf/tune/<algo>.yaml)")
    seed = full["sampler_seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"tune.sampler_seed={seed!r} is invalid: expected an integer or null")
    batched = full["batched_seeds"]
    if not isinstance(batched, bool):
        raise ConfigError(f"tune.batched_seeds={batched!r} is invalid: expected true or false")
    settings = TuneSettings(
        study=study, dir=Path(directory), space=parse_space(space), seeds=_seeds(full.get("seeds"), base_seed),
        n_trials=_count(full, "n_trials", 1), jobs=_count(full, "jobs", 1), storage=storage,
        objective=cast(Objective, _choice(full, "objective", OBJECTIVES)),
        sampler=cast(Sampler, _choice(full, "sampler", SAMPLERS)),
        pruner=cast(Pruner, _choice(full, "pruner", PRUNERS)),
        n_startup_trials=_count(full, "n_startup_trials", 0),
        n_warmup_evals=_count(full, "n_warmup_evals", 0, optional=True), sampler_seed=seed, batched_seeds=batched,
    )
    fixed = [p.path for p in settings.space.params if p.path in FIXED_KEYS]
    if fixed:
        raise ConfigError(f"tune.space.{fixed[0]} cannot be searched: every trial of a study shares it (the seeds are "
                          f"tune.seeds; the evaluation slots the pruner and objective compare come from total_frames "
                          f"and trainer.eval_interval); keys a space may not name: {list(FIXED_KEYS)}")
    if settings.sampler == "grid" and settings.space.grid() is None:
        bad = next(p.path for p in settings.space.params if p.grid() is None)
        raise ConfigError(f"tune.sampler=grid needs a finite grid, but tune.space.{bad} is a float range without a "
                          f"step; give it a step (+tune.space.{bad}.step=..., with tune.space.{bad}.log=false where "
                          "it is log-scaled) or a list of choices")
    check_study_dir(settings.dir)
    return settings


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler, less its ``study.stop()`` once the grid is visited (allowed only inside
    ``Study.optimize``; rlkit's ask/tell loop stops by itself: a grid study's ``n_trials`` is capped at
    the grid's size)."""

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, state: optuna.trial.TrialState,
                    values: Any) -> None:
        return None


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """Samples each trial with a fresh sampler seeded from ``seed`` and the trial's number.

    Trial numbers come from the study's storage and are never reused, so the draws differ between
    trials whichever process asks: a resumed study, the workers of ``tune.jobs`` and processes on
    several machines never repeat each other's draws, and a study run again from scratch with the
    same seed proposes the same configurations (TPE's model is rebuilt from the study's history at
    every trial; only its random numbers need the seed). A sampler seeded once per process had every
    process restart the same sequence.

    Args:
        make: builds the sampler of one trial from its seed.
        seed: ``tune.sampler_seed``.
    """

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._make, self._seed = make, int(seed)
        self._samplers: dict[int, optuna.samplers.BaseSampler] = {}

    def _of(self, trial: optuna.trial.FrozenTrial) -> optuna.samplers.BaseSampler:
        sampler = self._samplers.get(trial.number)
        if sampler is None:
            seed = int(np.random.SeedSequence([self._seed, trial.number]).generate_state(1)[0])
            sampler = self._samplers[trial.number] = self._make(seed)
        return sampler

    def infer_relative_search_space(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        return self._of(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                        search_space: dict[str, Any]) -> dict[str, Any]:
        return self._of(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        return self._of(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._of(trial).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial, state: optuna.trial.TrialState,
                    values: Any) -> None:
        self._of(trial).after_trial(study, trial, state, values)
        self._samplers.pop(trial.number, None)

    def reseed_rng(self) -> None:
        return None  # (the seeds are the trials' own)


def make_sampler(settings: TuneSettings) -> optuna.samplers.BaseSampler:
    """The sampler ``settings`` names: TPE (multivariate, ``n_startup_trials`` random trials first, as
    RL Zoo's ``exp_manager.py``), random, or grid (over :meth:`SearchSpace.grid`).

    With ``sampler_seed``, TPE and random draw each trial with a seed of ``sampler_seed`` and the
    trial's number (:class:`TrialSeededSampler`), so no two trials of a study share their draws,
    whichever process or worker runs them. The grid sampler keeps ``sampler_seed`` itself for every
    process: its seed orders the grid, and the workers share which positions of that order were
    visited."""
    seed = settings.sampler_seed
    if settings.sampler == "tpe":
        def tpe(seed: int | None) -> optuna.samplers.BaseSampler:
            return optuna.samplers.TPESampler(n_startup_trials=settings.n_startup_trials, multivariate=True, seed=seed)
        return tpe(None) if seed is None else TrialSeededSampler(tpe, seed)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler() if seed is None else TrialSeededSampler(optuna.samplers.RandomSampler,
                                                                                         seed)
    grid = settings.space.grid()
    assert grid is not None  # (checked by parse_tune_settings)
    return _GridSampler(grid, seed=seed)


def make_pruner(settings: TuneSettings, evaluations: int) -> optuna.pruners.BasePruner:
    """The pruner ``settings`` names, for trials reporting ``evaluations`` values per seed.

    ``median``: a trial stops when its value is below the median of the other trials' at the same
    step, after ``n_startup_trials`` trials have finished and ``n_warmup_evals`` (default: a third of
    a seed's evaluations) steps (RL Zoo's ``MedianPruner(n_startup_trials, n_evaluations // 3)``).
    ``halving``: asynchronous successive halving (``min_resource=1, reduction_factor=4`` as RL Zoo).
    """
    if settings.pruner == "median":
        warmup = settings.n_warmup_evals if settings.n_warmup_evals is not None else evaluations // 3
        return optuna.pruners.MedianPruner(n_startup_trials=settings.n_startup_trials, n_warmup_steps=warmup)
    if settings.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=4)
    return optuna.pruners.NopPruner()


def evaluations_per_seed(total_frames: int, eval_interval: int) -> int:
    """The evaluation slots of one run: one per ``eval_interval`` frames, the last at the end
    (``ceil(total_frames / eval_interval)``; 1 when only the end is evaluated).

    Examples:
        >>> from rlkit.tune.settings import evaluations_per_seed
        >>> evaluations_per_seed(20_000, 5_000), evaluations_per_seed(20_000, 6_000), evaluations_per_seed(20_000, 0)
        (4, 4, 1)
    """
    return max(1, math.ceil(total_frames / eval_interval)) if eval_interval > 0 else 1


def evaluation_slot(frames: int, total_frames: int, eval_interval: int) -> int:
    """The slot of an evaluation made at ``frames``: slot ``k - 1`` holds the one made once the frames
    passed ``k * eval_interval`` (:func:`rlkit.trainers.trainer.due`), the last slot the closing one at
    ``total_frames``. Keyed by frames, a trial whose batches span several intervals (A2C with a long
    ``n_steps``) leaves slots empty rather than shifting its evaluations into earlier slots, so the
    pruner compares trials at the same frames.

    Examples:
        >>> from rlkit.tune.settings import evaluation_slot
        >>> [evaluation_slot(f, 8_000, 1_000) for f in (1_000, 2_048, 4_096, 6_144, 8_192)]
        [0, 1, 3, 5, 7]
        >>> [evaluation_slot(f, 20_000, 6_000) for f in (6_000, 12_000, 18_000, 20_000)]
        [0, 1, 2, 3]
    """
    last = evaluations_per_seed(total_frames, eval_interval) - 1
    if frames >= total_frames or eval_interval <= 0:
        return last
    return min(max(frames // eval_interval - 1, 0), last)
