"""A study's outputs in its directory: ``trials.csv``, ``experiment/best.yaml`` (the best trial as an
experiment file for ``train.py``) and plots (``history.png``, ``importances.png``, ``slice.png``)."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import shlex
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.trial import FrozenTrial, TrialState

from rlkit.tune.settings import TuneSettings
from rlkit.tune.space import SearchSpace
from rlkit.tune.states import (
    ERROR_ATTR,
    FREE_KEYS,
    INTERRUPTED_ATTR,
    NUM_SEEDS_ATTR,
    PRUNED_AT_ATTR,
    SURPLUS_ATTR,
    counted,
    counts,
    replaced_trial,
)
from rlkit.tune.trial import batchable, trial_config
from rlkit.rundir import searchpath_override
from rlkit.utils.io import atomic_write

log = logging.getLogger(__name__)

__all__ = ["BEST_FILE", "INTERRUPTED_DIR", "PLOTS", "best_commands", "best_experiment", "trained_together", "trials_table",
           "write_outputs"]

#: The best trial's experiment file, relative to the study directory.
BEST_FILE = Path("experiment") / "best.yaml"
#: Where a trial that ended without a result (interrupted, or lost with its worker) has its run moved
#: (:func:`rlkit.tune.study.set_aside`), in the study directory: ``interrupted/<number>``. Its
#: configuration runs again from scratch as a new trial, and ``trials/`` holds each one's runs once.
INTERRUPTED_DIR = "interrupted"
#: Keys of a trial's config that ``best.yaml`` leaves out: where and how a run executes (its seed and
#: seed count are the reproducing command's, written in the file's header). It keeps ``imports``: the
#: modules that register a user's algorithm are needed wherever the experiment runs.
_LEFT_OUT = tuple(key for key in FREE_KEYS if key not in ("trainer.log_interval", "imports"))
#: The plots: file name -> ``optuna.visualization.matplotlib`` function.
PLOTS = {"history.png": "plot_optimization_history", "importances.png": "plot_param_importances",
         "slice.png": "plot_slice"}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _error(trial: FrozenTrial, replaced_by: Mapping[int, int], study_dir: Path) -> str:
    if ERROR_ATTR in trial.user_attrs:
        return str(trial.user_attrs[ERROR_ATTR])
    again = (f"replaced by trial {replaced_by[trial.number]}" if trial.number in replaced_by
             else "runs again when the study is rerun" if trial.params
             else "not counted")  # (it ended before drawing a configuration)
    moved = Path(INTERRUPTED_DIR) / f"{trial.number:04d}"
    reason = str(trial.user_attrs.get(INTERRUPTED_ATTR, ""))
    if (study_dir / moved).is_dir():
        again += f" (from scratch; this run moved to {moved})"
        # (a study from before the move recorded the checkpoint's path under trials/)
        reason = reason.replace(str(study_dir / "trials" / moved.name), str(study_dir / moved))
    if INTERRUPTED_ATTR in trial.user_attrs:
        return f"interrupted ({reason}); {again}"
    if trial.state == TrialState.FAIL:
        return f"lost: its worker died; {again}"
    if trial.state == TrialState.PRUNED and PRUNED_AT_ATTR in trial.user_attrs:
        return f"pruned: {trial.user_attrs[PRUNED_AT_ATTR]}"
    if trial.state == TrialState.PRUNED and trial.intermediate_values:  # (a study from before pruned_at)
        step = max(trial.intermediate_values)
        return f"pruned at step {step} (reported {trial.intermediate_values[step]:.6g})"
    return ""


def trials_table(trials: list[FrozenTrial], settings: TuneSettings) -> str:
    """``trials.csv``: one row per trial (surplus ones left out): number, state, objective value (of a
    completed trial), each searched key, each seed's value, duration in seconds, and the error of a
    failed trial or the step at which a pruned one stopped."""
    space: SearchSpace = settings.space
    seeds = [f"seed_{s}" for s in settings.seeds]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "state", "value", *space.paths, *seeds, "duration_s", "error"])
    replaced_by: dict[int, int] = {}  # (the first replacement stands: a later one is surplus)
    for t in sorted(trials, key=lambda t: t.number):
        replaced = replaced_trial(t)
        if replaced is not None:
            replaced_by.setdefault(replaced, t.number)
    for trial in trials:
        if trial.user_attrs.get(SURPLUS_ATTR):
            continue
        params = space.decode(trial.params)
        duration = trial.duration.total_seconds() if trial.duration is not None else None
        value = trial.value if trial.state == TrialState.COMPLETE else None  # (a pruned one's is its last report)
        writer.writerow([trial.number, trial.state.name, _cell(value), *(_cell(params.get(p)) for p in space.paths),
                         *(_cell(trial.user_attrs.get(s)) for s in seeds),
                         "" if duration is None else f"{duration:.1f}", _error(trial, replaced_by, settings.dir)])
    return out.getvalue()


def _without(container: dict, keys: tuple[str, ...]) -> dict:
    for key in keys:
        head, _, tail = key.partition(".")
        if tail and isinstance(container.get(head), dict):
            container[head].pop(tail, None)
        elif not tail:
            container.pop(key, None)
    return container


def trained_together(trial: FrozenTrial, settings: TuneSettings) -> int:
    """How many of the trial's seeds trained together in one process (``num_seeds``), from the first;
    1: one after another. Recorded on the trial; a trial from before that record: as the study's
    settings would run it (consecutive seeds with ``tune.batched_seeds``), or as its directory shows
    it (a multi-seed run's ``config.yaml`` in ``trials/<number>/``)."""
    recorded = trial.user_attrs.get(NUM_SEEDS_ATTR)
    if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded >= 1:
        return recorded
    if not (settings.batched_seeds and batchable(settings.seeds)):
        return 1
    run_root = settings.dir / "trials" / f"{trial.number:04d}"
    if run_root.is_dir() and not (run_root / "config.yaml").is_file():  # (seed_<s>/ runs of their own)
        return 1
    return len(settings.seeds)


def best_commands(best: FrozenTrial, settings: TuneSettings, where: str | Path,
                  searchpath: Sequence[str] = ()) -> list[str]:
    """The ``train.py`` commands that train the best trial's experiment file (in ``where``) as the
    trial ran: one command for its seeds trained together (``seed=<first> num_seeds=<N>``), or one
    per seed, each followed by what it reproduces. With the study's ``searchpath``
    (``settings.searchpath``), which the experiment's groups may come from.

    Examples:
        >>> from types import SimpleNamespace as T
        >>> from pathlib import Path
        >>> from rlkit.tune.report import best_commands
        >>> together = T(number=3, user_attrs={"num_seeds": 2})
        >>> best_commands(together, T(seeds=(0, 1), dir=Path("s"), batched_seeds=True), "s")[0]
        'python train.py --config-dir s experiment=best seed=0 num_seeds=2   # seeds 0..1 together in one process, as trial 3 ran them'
        >>> apart = T(number=3, user_attrs={"num_seeds": 1})
        >>> for line in best_commands(apart, T(seeds=(0, 5), dir=Path("s"), batched_seeds=True), "s"):
        ...     print(line)
        python train.py --config-dir s experiment=best seed=0   # trial 3's seed 0
        python train.py --config-dir s experiment=best seed=5   # trial 3's seed 5
        >>> best_commands(together, T(seeds=(0, 1), dir=Path("s"), batched_seeds=True), "s", ["file:///my/conf"])[0]
        "python train.py --config-dir s 'hydra.searchpath=[file:///my/conf]' experiment=best seed=0 num_seeds=2   # seeds 0..1 together in one process, as trial 3 ran them"
    """

    given = f" {shlex.quote(searchpath_override(searchpath))}" if searchpath else ""
    command = f"python train.py --config-dir {where}{given} experiment=best"
    together = trained_together(best, settings)
    if together > 1:
        first = settings.seeds[0]
        return [f"{command} seed={first} num_seeds={together}   # seeds {first}..{first + together - 1} together in "
                f"one process, as trial {best.number} ran them"]
    return [f"{command} seed={seed}   # trial {best.number}'s seed {seed}" for seed in settings.seeds]


def best_experiment(best: FrozenTrial, base: DictConfig, settings: TuneSettings,
                    groups: Mapping[str, str] | None = None, searchpath: Sequence[str] | None = None) -> str:
    """The text of ``experiment/best.yaml``: a ``# @package _global_`` experiment with the config
    groups of the study and its whole training config with the best trial's values (less the keys
    that only say where and how a run executes: seed, device, threads, logger, progress, checkpoints),
    its ``num_seeds`` 1 (an experiment sets one seed per run: ``reproduce.py`` and ``tune.py`` take it
    as it is).

    Its header says which ``train.py`` command reproduces the trial (:func:`best_commands`): seeds
    trained together differ from the same seeds trained one per process by float rounding (README
    "Several seeds in one process"), so the trial's own seeds are reproduced by the command that
    trains them as it did; with ``searchpath`` (default: the study's, ``settings.searchpath``)."""
    params = settings.space.decode(best.params)
    together = trained_together(best, settings)
    container = OmegaConf.to_container(trial_config(base, params, seed=0), resolve=True)
    assert isinstance(container, dict)
    _without(container, _LEFT_OUT)
    if "num_seeds" in container:
        # One seed per run, as an experiment file should set it: a num_seeds here would ride along into
        # every job of `reproduce.py batched=false` (overlapping seed ranges) and into tune.py. The
        # command in the header adds num_seeds where the trial trained its seeds together.
        container["num_seeds"] = 1
    chosen = {"algo": str(base.algo.name), "value_estimator": str(base.value_estimator.name), **(groups or {})}
    chosen.pop("logger", None)
    seeds = ", ".join(f"{s}: {best.user_attrs.get(f'seed_{s}', float('nan')):.4g}" for s in settings.seeds)
    if together > 1:
        how = (f"# Its seeds trained together in one process (num_seeds={together}); this trains them as the trial "
               "did, with the same evaluations:")
        other = ["# (one seed alone, num_seeds=1, or the seeds in another count, trains the same config but differs "
                 "from the trial by float rounding)"]
    else:
        how = "# Its seeds trained one after another (num_seeds: 1); each command trains one of them as the trial did:"
        other = []
    header = [
        "# @package _global_",
        f"# The best trial of the rlkit study {settings.study!r} (tune.py): trial {best.number}, objective "
        f"{settings.objective} = {best.value:.6g}",
        f"# (the mean over seeds; per seed {seeds}).",
        how,
        *(f"#   {line}" for line in best_commands(best, settings, settings.dir,
                                                settings.searchpath if searchpath is None else searchpath)),
        *other,
        "# The tuned values:",
        *(f"#   {path}: {json.dumps(value)}" for path, value in params.items()),
        "defaults:",
        *(f"  - override /{group}: {chosen[group]}" for group in ("algo", "env", "value_estimator") if group in chosen),
    ]
    return "\n".join(header) + "\n\n" + OmegaConf.to_yaml(OmegaConf.create(container))


@contextlib.contextmanager
def _quiet_matplotlib() -> Iterator[None]:
    """matplotlib's loggers at WARNING while the block runs (its INFO lines, "Using categorical units to
    plot a list of strings ...", one per categorical axis, filled tune.log)."""
    logger = logging.getLogger("matplotlib")
    level = logger.level
    if logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _plot(study: optuna.Study, function: str, path: Path) -> str | None:
    """Saves one plot; the reason when it cannot be drawn (too few trials, one parameter, ...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    try:
        with warnings.catch_warnings(), _quiet_matplotlib():
            warnings.simplefilter("ignore")
            # PED-ANOVA importances need no scikit-learn (fANOVA, the default before Optuna 5, does)
            kwargs = {"evaluator": PedAnovaImportanceEvaluator()} if function == "plot_param_importances" else {}
            axes = getattr(optuna.visualization.matplotlib, function)(study, **kwargs)
            figure = np.atleast_1d(axes).flat[0].figure
            figure.set_size_inches(max(6.4, figure.get_size_inches()[0]), 4.8)
            figure.tight_layout()
            figure.savefig(path, dpi=100, bbox_inches="tight")  # (legends outside the axes)
        plt.close(figure)
    except Exception as err:  # noqa: BLE001 (optuna and matplotlib refuse small studies in many ways)
        plt.close("all")
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return text
    return None


def _say(text: str, stream: TextIO | None) -> None:
    """A line of the study's: on ``stream`` and, at INFO, in the log (``tune.log`` under tune.py)."""
    if stream is not None:
        print(text, file=stream)
    log.info("%s", text)


def write_outputs(study: optuna.Study, base: DictConfig, settings: TuneSettings, *,
                  groups: Mapping[str, str] | None = None, stream: TextIO | None = None) -> dict[str, Path]:
    """Writes ``trials.csv``, ``experiment/best.yaml`` (when a trial completed) and the plots into
    ``settings.dir``, each atomically (workers ending together write the same files). Returns what
    was written (name -> path); plots that cannot be drawn are skipped with a note on ``stream``
    (and in the log, as the other lines: :func:`_say`). The commands it prints and writes carry the
    study's ``hydra.searchpath`` (``settings.searchpath``)."""
    trials = study.get_trials(deepcopy=False)
    searchpath = settings.searchpath
    written: dict[str, Path] = {}
    path = settings.dir / "trials.csv"
    with atomic_write(path) as f:
        f.write(trials_table(trials, settings))
    written["trials.csv"] = path
    best = counts(trials).best
    if best is not None:
        path = settings.dir / BEST_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            f.write(best_experiment(best, base, settings, groups, searchpath))
        written["best"] = path
    plotted = [t for t in trials if counted(t)]
    if any(t.state == TrialState.COMPLETE for t in plotted):
        for name, function in PLOTS.items():
            skipped = _plot(study, function, settings.dir / name)
            if skipped is None:
                written[name] = settings.dir / name
            else:
                _say(f"tune {settings.study}: {name} not drawn: {skipped}", stream)
    _say(f"tune {settings.study}: outputs in {settings.dir}: {', '.join(sorted(written))}", stream)
    if best is not None:
        commands = [line.partition("   # ")[0] for line in best_commands(best, settings, settings.dir, searchpath)]
        found = f"tune {settings.study}: best trial {best.number} ({best.value:.6g})"
        if trained_together(best, settings) > 1:
            _say(f"{found}; train it as it ran (its {len(settings.seeds)} seeds together in one process; one seed alone "
                 f"differs from the trial's by float rounding): {commands[0]}", stream)
        elif len(commands) == 1:
            _say(f"{found}; train it as it ran: {commands[0]}", stream)
        else:
            seeds = ", ".join(str(s) for s in settings.seeds)
            _say(f"{found}; its seeds trained one after another: train each as it ran with "
                 f"{commands[0].rpartition(' seed=')[0]} seed=<s>, s in {seeds}", stream)
    return written
