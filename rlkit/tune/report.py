"""A study's outputs in its directory: ``trials.csv``, ``experiment/best.yaml`` (the best trial as an
experiment file for ``train.py``) and plots (``history.png``, ``importances.png``, ``slice.png``)."""
from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Mapping
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
    PRUNED_AT_ATTR,
    SURPLUS_ATTR,
    counted,
    counts,
    replaced_trial,
)
from rlkit.tune.trial import trial_config
from rlkit.utils.io import atomic_write

__all__ = ["BEST_FILE", "PLOTS", "best_experiment", "trials_table", "write_outputs"]

#: The best trial's experiment file, relative to the study directory.
BEST_FILE = Path("experiment") / "best.yaml"
#: The plots: file name -> ``optuna.visualization.matplotlib`` function.
PLOTS = {"history.png": "plot_optimization_history", "importances.png": "plot_param_importances",
         "slice.png": "plot_slice"}


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _error(trial: FrozenTrial, replaced_by: Mapping[int, int]) -> str:
    if ERROR_ATTR in trial.user_attrs:
        return str(trial.user_attrs[ERROR_ATTR])
    again = (f"replaced by trial {replaced_by[trial.number]}" if trial.number in replaced_by
             else "runs again when the study is rerun" if trial.params
             else "not counted")  # (it ended before drawing a configuration)
    if INTERRUPTED_ATTR in trial.user_attrs:
        return f"interrupted ({trial.user_attrs[INTERRUPTED_ATTR]}); {again}"
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
                         "" if duration is None else f"{duration:.1f}", _error(trial, replaced_by)])
    return out.getvalue()


def _without(container: dict, keys: tuple[str, ...]) -> dict:
    for key in keys:
        head, _, tail = key.partition(".")
        if tail and isinstance(container.get(head), dict):
            container[head].pop(tail, None)
        elif not tail:
            container.pop(key, None)
    return container


def best_experiment(best: FrozenTrial, base: DictConfig, settings: TuneSettings,
                    groups: Mapping[str, str] | None = None) -> str:
    """The text of ``experiment/best.yaml``: a ``# @package _global_`` experiment with the config
    groups of the study and its whole training config with the best trial's values (less the keys
    that only say where and how a run executes: seed, device, threads, logger, progress, checkpoints).

    ``python train.py --config-dir <study dir> experiment=best`` trains it."""
    params = settings.space.decode(best.params)
    container = OmegaConf.to_container(trial_config(base, params, seed=0), resolve=True)
    assert isinstance(container, dict)
    _without(container, FREE_KEYS)
    chosen = {"algo": str(base.algo.name), "value_estimator": str(base.value_estimator.name), **(groups or {})}
    chosen.pop("logger", None)
    seeds = ", ".join(f"{s}: {best.user_attrs.get(f'seed_{s}', float('nan')):.4g}" for s in settings.seeds)
    header = [
        "# @package _global_",
        f"# The best trial of the rlkit study {settings.study!r} (tune.py): trial {best.number}, objective "
        f"{settings.objective} = {best.value:.6g}",
        f"# (the mean over seeds; per seed {seeds}). Train with it:",
        f"#   python train.py --config-dir {settings.dir} experiment=best seed=0",
        "# The tuned values:",
        *(f"#   {path}: {json.dumps(value)}" for path, value in params.items()),
        "defaults:",
        *(f"  - override /{group}: {chosen[group]}" for group in ("algo", "env", "value_estimator") if group in chosen),
    ]
    return "\n".join(header) + "\n\n" + OmegaConf.to_yaml(OmegaConf.create(container))


def _plot(study: optuna.Study, function: str, path: Path) -> str | None:
    """Saves one plot; the reason when it cannot be drawn (too few trials, one parameter, ...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    try:
        with warnings.catch_warnings():
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


def write_outputs(study: optuna.Study, base: DictConfig, settings: TuneSettings, *,
                  groups: Mapping[str, str] | None = None, stream: TextIO | None = None) -> dict[str, Path]:
    """Writes ``trials.csv``, ``experiment/best.yaml`` (when a trial completed) and the plots into
    ``settings.dir``, each atomically (workers ending together write the same files). Returns what
    was written (name -> path); plots that cannot be drawn are skipped with a note on ``stream``."""
    trials = study.get_trials(deepcopy=False)
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
            f.write(best_experiment(best, base, settings, groups))
        written["best"] = path
    plotted = [t for t in trials if counted(t)]
    if any(t.state == TrialState.COMPLETE for t in plotted):
        for name, function in PLOTS.items():
            skipped = _plot(study, function, settings.dir / name)
            if skipped is None:
                written[name] = settings.dir / name
            elif stream is not None:
                print(f"tune {settings.study}: {name} not drawn: {skipped}", file=stream)
    if stream is not None:
        print(f"tune {settings.study}: outputs in {settings.dir}: {', '.join(sorted(written))}", file=stream)
        if best is not None:
            print(f"tune {settings.study}: best trial {best.number} ({best.value:.6g}); train it with: python train.py "
                  f"--config-dir {settings.dir} experiment=best", file=stream)
    return written
