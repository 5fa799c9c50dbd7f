"""Aggregation, tables and figures for ``scripts/reproduce.py`` (reads run directories, trains nothing).

A run directory is what ``train.py`` writes: ``config.yaml`` and ``metrics.csv``. Each metrics row
holds the mean ``episode_return`` of the ``episodes`` finished since the previous row, and the rows of
greedy evaluations hold ``eval_return`` / ``eval_return_std``. A stochastic-policy evaluation
(``python evaluate.py run=<run> deterministic=false``, which reproduce.py does not run) is read from
the run's ``eval/*/results.json`` where one was made of its last checkpoint (:func:`stochastic_evaluation`).

"Mean of the last 100 training episodes" needs per-episode returns: runs write every finished
episode to ``episodes.csv`` (frame, return, length), and with it the figure and the curves are exact.
For runs without one (older runs) it is computed from the metrics rows: the newest rows are taken
whole and the row that crosses 100 episodes contributes its mean weighted by the episodes still
needed; exact when that boundary falls between two rows, close when rows are short.

Examples:
    >>> rows = [{"step": 10, "episode_return": 1.0, "episodes": 60.0},
    ...         {"step": 20, "episode_return": 3.0, "episodes": 60.0}]
    >>> last_episodes_mean(rows, 100)
    (2.2, 100, False)
"""
from __future__ import annotations

import bisect
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rlkit import stats
from rlkit.trainers.episodes import EpisodeRecorder, read_episodes
from rlkit.trainers.loggers.csv_logger import read_metrics_csv
from rlkit.trainers.multiseed import read_seed_end
from rlkit.utils.io import atomic_write

LAST_EPISODES = 100


@dataclass
class Run:
    """One training run of a reproduction: its seed, metrics rows and (optional) per-episode returns."""

    path: Path
    seed: int
    total_frames: int
    rows: list[dict[str, float]]
    episodes: list[tuple[int, float]] | None = None  # (frame, return) of every episode, from episodes.csv
    early_stop_return: float | None = None  # the return that stops the run early (trainer.early_stop), if any
    #: How a seed of a multi-seed run ended before its run did (its ``end.json``:
    #: :func:`rlkit.trainers.multiseed.read_seed_end`), None for a seed that trained to the end.
    end: dict[str, Any] | None = None
    #: evaluate.py's results of a stochastic-policy evaluation of the run's last checkpoint, if any.
    stochastic: dict[str, Any] | None = None

    @property
    def frames(self) -> int:
        return int(self.rows[-1]["step"]) if self.rows else 0

    @property
    def frames_reached(self) -> int:
        """The frames the run trained: those of its metrics, or for a dropped seed those it was dropped
        at (its ``end.json``; its ``metrics.csv`` may have no row yet)."""
        if self.dropped and self.end is not None and isinstance(self.end.get("frames"), int):
            return int(self.end["frames"])
        return self.frames

    @property
    def dropped(self) -> bool:
        """A seed of a multi-seed run dropped for non-finite values (``trainer.drop_non_finite_seeds``):
        it trains no more, and a resume of its run leaves it as it is."""
        return self.end is not None and self.end.get("status") == "dropped"

    @property
    def ended(self) -> bool:
        """Nothing is left to train: :attr:`complete`, or :attr:`dropped`."""
        return self.complete or self.dropped

    @property
    def label(self) -> str:
        """How the run ended, for the reports: ``complete``, ``dropped (non-finite)`` or ``unfinished``."""
        return "dropped (non-finite)" if self.dropped else "complete" if self.complete else "unfinished"

    @property
    def complete(self) -> bool:
        """Closed with a greedy evaluation: at its budget, or earlier with the early-stop return reached
        (a resume would train it on past where it stopped). A dropped seed is not complete (its
        figures are those of its last good update, short of the budget)."""
        if self.dropped or not self.rows or "eval_return" not in self.rows[-1]:
            return False
        stopped = self.early_stop_return is not None and self.rows[-1]["eval_return"] >= self.early_stop_return
        return self.frames >= self.total_frames or stopped


def load_run(path: str | os.PathLike) -> Run:
    """Reads ``config.yaml``, ``metrics.csv`` (empty when absent) and ``episodes.csv`` of a run dir."""
    path = Path(path)
    try:
        config = yaml.safe_load((path / "config.yaml").read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SystemExit(f"{path}: config.yaml cannot be read: {str(err).splitlines()[0]}") from err
    missing = [k for k in ("seed", "total_frames") if not isinstance(config, dict) or config.get(k) is None]
    if missing:
        raise SystemExit(f"{path}: config.yaml is not a run's config (no {' or '.join(missing)}); "
                         "give the directories train.py wrote")
    metrics = path / "metrics.csv"
    rows = read_metrics_csv(metrics) if metrics.is_file() else []
    episodes = None
    if (path / EpisodeRecorder.FILENAME).is_file():
        episodes = [(int(r["frame"]), r["return"]) for r in read_episodes(path)]
    try:
        end = read_seed_end(path)
    except ValueError as err:
        raise SystemExit(str(err)) from None
    run = Run(path, int(config["seed"]), int(config["total_frames"]), rows, episodes, _early_stop_return(path, config),
              end)
    run.stochastic = stochastic_evaluation(path, run.frames)
    return run


def stochastic_evaluation(path: Path, frames: int) -> dict[str, Any] | None:
    """The results of ``python evaluate.py run=<path> deterministic=false`` (the policy's actions
    sampled, no ε) of the agent at ``frames``, the run's last: its ``eval/<folder>/results.json``,
    the last such folder by name (evaluate.py names them by time: the newest), with ``path`` added;
    None where there is none. Greedy or ε evaluations, those of an earlier checkpoint and files that
    cannot be read are passed over.

    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> run = Path(tmp.name)
    >>> for folder, deterministic, at in (("2026-01-01_10-00-00", False, 80), ("2026-01-02_10-00-00", True, 80),
    ...                                   ("2026-01-03_10-00-00", False, 40)):
    ...     (run / "eval" / folder).mkdir(parents=True)
    ...     _ = (run / "eval" / folder / "results.json").write_text(json.dumps(
    ...         {"deterministic": deterministic, "epsilon": 0.0, "frames": at, "return_mean": 3.0}))
    >>> stochastic_evaluation(run, 80)["path"].endswith("2026-01-01_10-00-00/results.json")
    True
    >>> stochastic_evaluation(run, 120) is None
    True
    >>> tmp.cleanup()
    """
    found = None
    for file in sorted((path / "eval").glob("*/results.json")):
        try:
            results = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if (isinstance(results, dict) and results.get("deterministic") is False and not results.get("epsilon")
                and results.get("frames") == frames and isinstance(results.get("return_mean"), (int, float))):
            found = {**results, "path": str(file)}
    return found


def _early_stop_return(path: Path, config: dict) -> float | None:
    """The return at which the run stops early, or None (``trainer.early_stop`` off, or no target):
    ``env.target_return`` as the run resolves it (``auto``: the env's registered threshold)."""
    if not (config.get("trainer") or {}).get("early_stop"):
        return None
    target = (config.get("env") or {}).get("target_return")
    if target is None or (isinstance(target, (int, float)) and not isinstance(target, bool)):
        return None if target is None else float(target)
    from rlkit.builders import validate_config
    from rlkit.errors import RlkitError
    from rlkit.run import capped_threads, load_run_config

    try:  # "auto": the env's registered threshold, which needs its spec
        # (on this machine's device and CPUs: a run trained on a GPU or a larger machine is read here)
        resolved = validate_config(capped_threads(load_run_config(path, ["device=cpu"])), saved=True).env.target_return
    except RlkitError:  # (an env whose module is not importable here: the target is unknown)
        return None
    return None if resolved is None else float(resolved)


def last_episodes_mean(rows: list[dict[str, float]], n: int = LAST_EPISODES) -> tuple[float, int, bool]:
    """Mean return of the last ``n`` episodes from metrics rows: ``(mean, episodes used, exact)``.

    Fewer than ``n`` episodes in the whole run gives the mean of all of them (``episodes used < n``).
    ``exact`` is False when a row had to be split (its episodes are assumed to share its mean).
    """
    total, weight, exact = 0.0, 0, True
    for row in reversed(rows):
        count = int(row.get("episodes", 0))
        if count <= 0 or "episode_return" not in row:
            continue
        take = min(count, n - weight)
        exact = exact and take == count
        total += row["episode_return"] * take
        weight += take
        if weight >= n:
            break
    return (total / weight if weight else math.nan), weight, exact


def trailing_curve(rows: list[dict[str, float]], n: int = LAST_EPISODES) -> tuple[list[int], list[float]]:
    """At every metrics row with episodes: the mean return of the last ``n`` episodes finished so far."""
    steps: list[int] = []
    values: list[float] = []
    for i, row in enumerate(rows):
        if row.get("episodes", 0) > 0:
            steps.append(int(row["step"]))
            values.append(last_episodes_mean(rows[: i + 1], n)[0])
    return steps, values


def episode_curve(episodes: list[tuple[int, float]], n: int = LAST_EPISODES) -> tuple[list[int], list[float]]:
    """At every finished episode: the mean return of the last ``n`` episodes (exact)."""
    steps: list[int] = []
    values: list[float] = []
    window = 0.0
    for i, (frame, ret) in enumerate(episodes):
        window += ret - (episodes[i - n][1] if i >= n else 0.0)
        steps.append(frame)
        values.append(window / min(i + 1, n))
    return steps, values


def train_curve(run: Run) -> tuple[list[int], list[float]]:
    """The training-return curve of ``run``: exact from ``episodes.csv``, else from the metrics rows."""
    return episode_curve(run.episodes) if run.episodes is not None else trailing_curve(run.rows)


def value_at(curve: tuple[list[int], list[float]], frame: int) -> float:
    """A curve's value at ``frame``: its latest point at or before ``frame`` (NaN before its first)."""
    steps, values = curve
    at = bisect.bisect_right(steps, frame)
    return values[at - 1] if at else math.nan


def curve_points(runs: list[Run], published: Any) -> list[dict[str, Any]]:
    """At each frame of the published learning curve: the published value and each run's training
    curve there (:func:`train_curve`, the mean of the last ``LAST_EPISODES`` episodes finished by that
    frame), over the runs that reached it with an episode finished by then. ``per_seed`` maps the seed
    (a string, as JSON keeps it) to its value. Frames where no run has a value are left out."""
    curves = {run.seed: train_curve(run) for run in runs}
    points = []
    for frame, value in getattr(published, "curve", ()):
        at = {run.seed: value_at(curves[run.seed], frame) for run in sorted(runs, key=lambda r: r.seed)
              if run.frames >= frame}
        seeds = {str(seed): v for seed, v in at.items() if not math.isnan(v)}
        if seeds:
            points.append({"frames": frame, "published": value, "per_seed": seeds,
                           **across_seeds(list(seeds.values()))})
    return points


def eval_curve(rows: list[dict[str, float]]) -> tuple[list[int], list[float]]:
    """Steps and mean returns of every greedy evaluation."""
    pairs = [(int(r["step"]), r["eval_return"]) for r in rows if "eval_return" in r]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def last_training_mean(run: Run, n: int = LAST_EPISODES) -> tuple[float, int, bool]:
    """``(mean, episodes used, exact)`` of the last ``n`` training episodes of ``run``: exact from
    ``episodes.csv``, else from the metrics rows (:func:`last_episodes_mean`); NaN without episodes."""
    if run.episodes is not None:
        tail = [ret for _, ret in run.episodes[-n:]]
        return (sum(tail) / len(tail) if tail else math.nan), len(tail), True
    return last_episodes_mean(run.rows, n)


def across_seeds(values: list[float]) -> dict[str, float]:
    """Mean ± std over seeds and the IQM with its bootstrap 95 % interval (:mod:`rlkit.stats`); the
    runs' NaNs (no episode or evaluation yet) are left out, all NaN when none is left."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return {"mean": math.nan, "std": math.nan, "iqm": math.nan, "iqm_ci_low": math.nan, "iqm_ci_high": math.nan,
                "seeds": 0}
    return {**stats.aggregate(values).as_dict(), "seeds": len(values)}


def seeds_label(agg: dict[str, float], total: int, per_seed: list[dict[str, Any]] | None = None,
                budget: int | None = None) -> str:
    """``(3 seeds)``, or ``(2 of 3 seeds)`` where some seeds have no figure yet (no episode or
    evaluation) or were dropped, and the aggregate leaves them out; with the ``per_seed`` entries,
    the seeds dropped for non-finite values and the runs still short of their ``budget`` are named
    with the frames they reached.

    Examples:
        >>> seeds_label({"seeds": 3}, 3), seeds_label({"seeds": 2}, 3)
        ('(3 seeds)', '(2 of 3 seeds)')
        >>> seeds_label({"seeds": 2}, 2, [{"frames": 3_000_000, "complete": False},
        ...                               {"frames": 5_000_000, "complete": True}], 5_000_000)
        '(2 seeds; 1 unfinished, at 3,000,000 of 5,000,000 frames)'
        >>> seeds_label({"seeds": 1}, 2, [{"frames": 1_010, "complete": False, "dropped": True},
        ...                               {"frames": 1_500, "complete": True}], 1_500)
        '(1 of 2 seeds; 1 dropped (non-finite), at 1,010 frames)'
    """
    used = int(agg.get("seeds", total))
    word = "seed" if total == 1 else "seeds"
    label = f"{total} {word}" if used == total else f"{used} of {total} {word}"

    def frames(entries: list[int]) -> str:
        return f"{entries[0]:,}" if entries[0] == entries[-1] else f"{entries[0]:,}–{entries[-1]:,}"

    dropped = sorted(int(s["frames"]) for s in per_seed or [] if s.get("dropped"))
    if dropped:
        label += f"; {len(dropped)} dropped (non-finite), at {frames(dropped)} frames"
    short = sorted(int(s["frames"]) for s in per_seed or [] if not s.get("complete", True) and not s.get("dropped"))
    if short:
        label += f"; {len(short)} unfinished, at {frames(short)}" + (f" of {budget:,} frames" if budget else " frames")
    return f"({label})"


def summarize(experiment: str, runs: list[Run], published: Any | None, env_id: str, *,
              eval_epsilon: float = 0.0) -> dict[str, Any]:
    """The numbers of ``results.md`` / ``summary.json`` for ``runs`` (sorted by seed); ``eval_epsilon``
    is the runs' ``trainer.eval_epsilon`` (their evaluation protocol).

    Seeds dropped for non-finite values (``trainer.drop_non_finite_seeds``) are listed per seed
    (``dropped``, ``end``) but left out of the aggregates and the learning curves: their figures are
    those of a diverged agent at its last good update, short of the budget the others are compared
    at; the rows' seed counts say how many were left out (:func:`seeds_label`)."""
    per_seed = []
    for run in sorted(runs, key=lambda r: r.seed):
        last, used, exact = last_training_mean(run)
        evals = [r for r in run.rows if "eval_return" in r]
        sampled = run.stochastic or {}
        per_seed.append({
            "seed": run.seed, "frames": run.frames_reached,
            "complete": run.complete, "dropped": run.dropped, "end": run.label, "path": str(run.path),
            "last100": last, "last100_episodes": used, "last100_exact": exact,
            "eval_return": evals[-1]["eval_return"] if evals else math.nan,
            "eval_return_std": evals[-1].get("eval_return_std", math.nan) if evals else math.nan,
            "stochastic_eval_return": float(sampled.get("return_mean", math.nan)),
            "stochastic_eval_return_std": float(sampled.get("return_std", math.nan)),
            "stochastic_eval_episodes": int(sampled.get("episodes", 0)),
        })
    kept = [s for s in per_seed if not s["dropped"]]
    train = across_seeds([s["last100"] for s in kept])
    greedy = across_seeds([s["eval_return"] for s in kept])
    stochastic = across_seeds([s["stochastic_eval_return"] for s in kept])
    runs = [run for run in runs if not run.dropped]
    pub = None
    budget = max((run.total_frames for run in runs), default=0)
    if published is not None:
        pub = {k: getattr(published, k) for k in ("source", "url", "env_id", "mean", "std", "protocol", "runs",
                                                    "frames", "note")}
        pub["curve"] = [list(point) for point in published.curve]
        pub["at_frames"] = published.frames
        if budget and budget != published.frames:
            # Trained to another budget: the published curve's value there where it has one.
            at = dict(published.curve).get(budget)
            if at is not None:
                pub.update(mean=at, std=math.nan, at_frames=budget, from_curve=True)
    return {
        "experiment": experiment, "env_id": env_id, "seeds": [s["seed"] for s in per_seed], "budget": budget,
        "eval_epsilon": float(eval_epsilon),
        "train_last100": train, "greedy_eval": greedy, "stochastic_eval": stochastic,
        "last100_exact": all(s["last100_exact"] for s in per_seed), "per_seed": per_seed, "published": pub,
        "curve_points": curve_points(runs, published) if published is not None else [],
    }


def _pm(mean: float, std: float, no_std: str = "(std not published)") -> str:
    """``mean ± std``; ``mean <no_std>`` where there is no std (a published figure without one)."""
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.2f} {no_std}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def pm_seeds(agg: dict[str, float]) -> str:
    """``mean ± std`` over seeds; one seed has no std (``± n/a``), not a std of 0 (which a
    ``summary.json`` written before holds).

    >>> pm_seeds({"mean": 2.0, "std": 0.0, "seeds": 1}), pm_seeds({"mean": 2.0, "std": 0.5, "seeds": 2})
    ('2.00 ± n/a', '2.00 ± 0.50')
    """
    std = math.nan if int(agg.get("seeds", 2)) == 1 else agg["std"]
    return _pm(agg["mean"], std, "± n/a")


def _iqm(agg: dict[str, float]) -> str:
    """``IQM [low, high]``, the interval of the IQM over seeds (95 %, stratified bootstrap)."""
    if math.isnan(agg.get("iqm", math.nan)):
        return "n/a"
    return f"{agg['iqm']:.2f} {interval(agg)}"


def interval(agg: dict[str, float]) -> str:
    """``[low, high]``, or ``[n/a: N seeds]`` below :data:`rlkit.stats.MIN_RUNS_FOR_CI` seeds, where
    the bootstrap's interval would be the seeds' own range.

    >>> interval({"iqm_ci_low": 1.0, "iqm_ci_high": 2.5, "seeds": 5}), interval({"iqm_ci_low": float("nan"), "seeds": 3})
    ('[1.00, 2.50]', '[n/a: 3 seeds]')
    """
    n = int(agg.get("seeds", stats.MIN_RUNS_FOR_CI))
    if math.isnan(agg["iqm_ci_low"]) or n < stats.MIN_RUNS_FOR_CI:  # (a summary.json written before has one)
        return f"[n/a: {n} seed{'' if n == 1 else 's'}]"
    return f"[{agg['iqm_ci_low']:.2f}, {agg['iqm_ci_high']:.2f}]"


def _published_cell(pub: dict | None, protocol: str, budget: int | None = None) -> str:
    if pub is None or pub["protocol"] != protocol:
        return "—"
    runs = f"{pub['runs']} runs" if pub["runs"] > 1 else "1 run, std over episodes"
    at = pub.get("at_frames", pub["frames"])
    where = ""
    if pub.get("from_curve"):
        where = f", its curve at {at:,} frames"
    elif budget and budget != at:
        where = f", at {at:,} frames; these runs train {budget:,}"
    return f"{_pm(pub['mean'], pub['std'])} ([{pub['source']}]({pub['url']}), {runs}{where})"


def summary_rows(summary: dict[str, Any]) -> list[str]:
    """Markdown table rows (without header) comparing rlkit with the published figure: the training
    returns, the evaluation the runs made, and the stochastic-policy evaluation where the published
    figure is one or a seed has one (:func:`shows_stochastic`). A published figure sits on the row of
    its protocol only ("—" on the others)."""
    n = len(summary["seeds"])
    pub = summary["published"]
    budget = summary.get("budget")
    approx = "" if summary["last100_exact"] else " (≈)"
    name, env = summary["experiment"], summary["env_id"]
    train, greedy = summary["train_last100"], summary["greedy_eval"]
    per_seed = summary.get("per_seed", [])
    rows = [
        f"| {name} | {env} | last 100 training episodes | {pm_seeds(train)}{approx} "
        f"{seeds_label(train, n, per_seed, budget)} | {_iqm(train)} | {_published_cell(pub, 'last100_train', budget)} |",
        f"| {name} | {env} | {evaluation_label(summary)} (last) | {pm_seeds(greedy)} "
        f"{seeds_label(greedy, n, per_seed, budget)} | {_iqm(greedy)} | {_published_cell(pub, 'greedy_eval', budget)} |",
    ]
    if shows_stochastic(summary):
        sampled = summary.get("stochastic_eval") or {"seeds": 0}
        cell = (f"{pm_seeds(sampled)} {seeds_label(sampled, n, per_seed, budget)}" if sampled.get("seeds")
                else f"not run: `{STOCHASTIC_COMMAND}` for each seed's run")
        iqm = _iqm(sampled) if sampled.get("seeds") else "n/a"
        rows.append(f"| {name} | {env} | {STOCHASTIC_LABEL} | {cell} | {iqm} "
                    f"| {_published_cell(pub, 'stochastic_eval', budget)} |")
    return rows


STOCHASTIC_LABEL = "stochastic-policy evaluation (last checkpoint)"
STOCHASTIC_COMMAND = "python evaluate.py run=<run> deterministic=false"


def shows_stochastic(summary: dict[str, Any]) -> bool:
    """Whether the report has a stochastic-policy evaluation row: the published figure is one (RL Zoo's
    Atari rows), or some seed has one (:func:`stochastic_evaluation`).

    >>> shows_stochastic({"published": {"protocol": "stochastic_eval"}}), shows_stochastic({"published": None})
    (True, False)
    >>> shows_stochastic({"published": None, "stochastic_eval": {"seeds": 2}})
    True
    """
    pub = summary.get("published") or {}
    return pub.get("protocol") == "stochastic_eval" or int((summary.get("stochastic_eval") or {}).get("seeds", 0)) > 0


def evaluation_label(summary: dict[str, Any]) -> str:
    """``greedy evaluation``, or ``ε-greedy evaluation (ε = 0.05)`` for runs evaluated with
    ``trainer.eval_epsilon`` > 0 (the Atari protocols).

    >>> evaluation_label({}), evaluation_label({"eval_epsilon": 0.05})
    ('greedy evaluation', 'ε-greedy evaluation (ε = 0.05)')
    """
    epsilon = float(summary.get("eval_epsilon") or 0.0)
    return f"ε-greedy evaluation (ε = {epsilon:g})" if epsilon > 0 else "greedy evaluation"


TABLE_HEADER = [
    "| experiment | env | protocol | rlkit (mean ± std over seeds) | rlkit IQM [95 % CI] | published |",
    "|---|---|---|---|---|---|",
]


def curve_table(summary: dict[str, Any]) -> list[str]:
    """The ``results.md`` section comparing the training curve with the published one at the published
    curve's frames (none without a published curve)."""
    points = summary.get("curve_points") or []
    if not points:
        return []
    seeds = summary["seeds"]
    lines = ["", "## Learning curve at the published curve's frames", "",
             f"Mean return of the last {LAST_EPISODES} training episodes finished by each frame; the published "
             "value is read off the source's curve. A seed without a finished episode by a frame is blank.", "",
             "| frames | published | rlkit (mean ± std over seeds) | " + " | ".join(f"seed {s}" for s in seeds) + " |",
             "|---|---|---|" + "---|" * len(seeds)]
    for point in points:
        cells = [f"{point['per_seed'][str(s)]:.2f}" if str(s) in point["per_seed"] else "" for s in seeds]
        n = len(point["per_seed"])
        lines.append(f"| {point['frames']:,} | {point['published']:.1f} | {pm_seeds(point)} "
                     f"({n} seed{'s' if n != 1 else ''}) | " + " | ".join(cells) + " |")
    return lines


def write_markdown(summary: dict[str, Any], path: Path, *, command: str, figure: str | None) -> None:
    """Writes ``results.md``: the comparison table, the per-seed numbers and the notes."""
    sampled = shows_stochastic(summary)
    lines = [f"# {summary['experiment']}: rlkit vs published ({summary['env_id']})", "", *TABLE_HEADER,
             *summary_rows(summary), "", "## Per seed", "",
             f"| seed | frames | last-100 training return | episodes used | {evaluation_label(summary)} "
             "(mean ± std over episodes) | " + ("stochastic-policy evaluation (mean ± std over episodes) | "
                                                if sampled else "") + "run |",
             "|---|---|---|---|---|---|" + ("---|" if sampled else "")]
    for s in summary["per_seed"]:
        exact = "" if s["last100_exact"] else " ≈"
        ended = ", dropped (non-finite)" if s.get("dropped") else ""
        stochastic = ""
        if sampled:
            episodes = int(s.get("stochastic_eval_episodes", 0))
            returns = _pm(s["stochastic_eval_return"], s["stochastic_eval_return_std"])
            stochastic = f"{returns} ({episodes} episodes) | " if episodes else "not run | "
        lines.append(f"| {s['seed']} | {s['frames']:,}{ended} | {s['last100']:.2f}{exact} | {s['last100_episodes']} | "
                     f"{_pm(s['eval_return'], s['eval_return_std'])} | {stochastic}`{s['path']}` |")
    lines += curve_table(summary)
    epsilon = float(summary.get("eval_epsilon") or 0.0)
    acting = (f"random actions with probability ε = {epsilon:g} (`trainer.eval_epsilon`), greedy otherwise"
              if epsilon > 0 else "deterministic policy")
    lines += ["", "## Notes", "",
              "- Std over seeds is the population std (numpy default); one seed has none (± n/a). Evaluation: the "
              f"last evaluation of each run ({acting}, `trainer.eval_episodes` episodes on an env seeded "
              "seed + 10000).",
              "- IQM: the interquartile mean over seeds (Agarwal et al. 2021; with fewer than 4 seeds it is the mean), "
              f"with a 95 % percentile bootstrap interval over seeds (2000 resamples, `rlkit.stats`) from "
              f"{stats.MIN_RUNS_FOR_CI} seeds on: with fewer the interval would be the seeds' own range. Its coverage "
              "on normal samples is below 95 %: 0.90 with 5 seeds, 0.92 with 10.",
              "- Curves: mean ± std over seeds, up to the frame every seed has reached."]
    if sampled:
        lines.append(f"- Stochastic-policy evaluation: `{STOCHASTIC_COMMAND}` (actions sampled from the policy, no ε) "
                     "of a seed's last checkpoint, the newest in its run's `eval/`; reproduce.py does not run it, and "
                     "evaluations of earlier checkpoints are left out.")
    dropped = [s["seed"] for s in summary["per_seed"] if s.get("dropped")]
    if dropped:
        which = (f"Seed {dropped[0]} was" if len(dropped) == 1
                 else f"Seeds {', '.join(map(str, dropped[:-1]))} and {dropped[-1]} were")
        lines.append(f"- {which} dropped for non-finite values (`trainer.drop_non_finite_seeds`): "
                     "listed above as they were at their last good update, left out of the aggregates and the "
                     "curves, which compare runs trained to the budget.")
    if not summary["last100_exact"]:
        lines.append("- ≈: the runs have no `episodes.csv`, so the last-100 figure comes from the metrics rows "
                     "(the oldest row of the window is weighted by the episodes it still contributes).")
    pub = summary["published"]
    if pub and pub["note"]:
        lines.append(f"- Not the published setting: {pub['note']}.")
    if figure:
        lines += ["", f"![learning curves]({figure})"]
    lines += commits_lines(summary)
    if summary.get("left_out_seeds"):
        lines.append(f"- The runs of seeds {summary['left_out_seeds']} in this reproduction's folder are not in "
                     "this report (`seeds=` chose the ones above).")
    lines += ["", "Regenerate:", "", "```bash", command, "```", ""]
    with atomic_write(path) as f:
        f.write("\n".join(lines))


def commits_lines(summary: dict[str, Any]) -> list[str]:
    """The notes naming the rlkit commits the seeds were trained with: one commit for all, or each
    seed's (a seed resumed under another commit lists both, in order); none where none is recorded.

    >>> commits_lines({"commits": {"0": ["abc"], "1": ["abc"]}})
    ['- Trained with rlkit commit `abc`.']
    >>> commits_lines({"commits": {"0": ["abc"], "1": ["abc", "def"], "2": ["def"]}})
    ['- Trained with rlkit commits: seed 0 `abc`; seed 1 `abc`, then `def`; seed 2 `def`.']
    >>> commits_lines({"commit": "abc"}), commits_lines({})
    (['- Trained with rlkit commit `abc`.'], [])
    """
    commits = summary.get("commits")
    if not commits:  # (a summary written before the commits were kept per seed)
        return [f"- Trained with rlkit commit `{summary['commit']}`."] if summary.get("commit") else []
    known = {seed: listed for seed, listed in commits.items() if listed}
    if not known:
        return []
    distinct = {tuple(listed) for listed in known.values()}
    if len(distinct) == 1 and len(next(iter(distinct))) == 1 and len(known) == len(commits):
        return [f"- Trained with rlkit commit `{next(iter(distinct))[0]}`."]
    parts = [f"seed {seed} " + (", then ".join(f"`{c}`" for c in listed) if listed else "unknown")
             for seed, listed in sorted(commits.items(), key=lambda item: int(item[0]))]
    return [f"- Trained with rlkit commits: {'; '.join(parts)}."]


#: The numbers of a summary that may be missing (NaN in memory, ``null`` in ``summary.json``).
NUMBER_KEYS = frozenset({"last100", "eval_return", "eval_return_std", "mean", "std", "iqm", "iqm_ci_low",
                         "iqm_ci_high", "stochastic_eval_return", "stochastic_eval_return_std"})


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as ``None``: strict JSON (``jq``, JavaScript and most
    parsers refuse a bare ``NaN``).

    >>> json_safe({"mean": float("nan"), "seeds": [1, 2], "per_seed": [{"std": float("inf")}]})
    {'mean': None, 'seeds': [1, 2], 'per_seed': [{'std': None}]}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def with_nans(value: Any) -> Any:
    """A read ``summary.json`` with its missing numbers (:data:`NUMBER_KEYS` that are ``null``) as NaN,
    as :func:`summarize` made them.

    >>> with_nans({"greedy_eval": {"mean": None, "seeds": 1}, "published": None})
    {'greedy_eval': {'mean': nan, 'seeds': 1}, 'published': None}
    """
    if isinstance(value, dict):
        return {k: math.nan if v is None and k in NUMBER_KEYS else with_nans(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_nans(v) for v in value]
    return value


def write_json(summary: dict[str, Any], path: Path) -> None:
    with atomic_write(path) as f:
        f.write(json.dumps(json_safe(summary), indent=2, allow_nan=False) + "\n")


def _band(curves: list[tuple[list[int], list[float]]], points: int = 200):
    import numpy as np

    curves = [c for c in curves if len(c[0]) > 0]
    if not curves:
        return None
    lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([float(hi)])
    ys = np.stack([np.interp(grid, c[0], c[1]) for c in curves])
    return grid, ys.mean(0), ys.std(0)


def plot(summary: dict[str, Any], runs: list[Run], path: Path) -> None:
    """Learning curves: mean ± std band over seeds (those not dropped for non-finite values, as in
    :func:`summarize`); the published figure as a dashed line."""
    runs = [run for run in runs if not run.dropped]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    pub = summary["published"]
    panels = [("last100_train", "training return (mean of last 100 episodes)", train_curve),
              ("greedy_eval", f"{evaluation_label(summary)} return", lambda run: eval_curve(run.rows))]
    for ax, (protocol, title, curve) in zip(axes, panels):
        band = _band([curve(r) for r in runs])
        if band is not None:
            x, mean, std = band
            marker = "o" if len(x) < 3 else None  # (a curve of one or two points is a marker, not a line)
            ax.plot(x, mean, color="C0", marker=marker, label=f"rlkit ({len(runs)} seed{'' if len(runs) == 1 else 's'})")
            ax.fill_between(x, mean - std, mean + std, color="C0", alpha=0.25)
        if pub is not None and pub["protocol"] == protocol and pub.get("curve"):
            frames, values = zip(*pub["curve"])
            ax.plot(frames, values, color="C3", linestyle="--", marker="o", markersize=3,
                    label=f"{pub['source']} (read off its figure)")
        elif pub is not None and pub["protocol"] == protocol:
            ax.axhline(pub["mean"], color="C3", linestyle="--",
                       label=f"{pub['source']}: {_pm(pub['mean'], pub['std'])}")
        ax.set_title(title)
        ax.set_xlabel("frames")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    axes[0].set_ylabel("episode return")
    fig.suptitle(f"{summary['experiment']} ({summary['env_id']})")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)


@dataclass
class Collected:
    """Summaries found under a directory (one ``summary.json`` per reproduction), each with the folder
    it was found in (``folder``, relative to the directory searched)."""

    summaries: list[dict[str, Any]] = field(default_factory=list)

    def table(self) -> str:
        """One table of every reproduction, its folder first (two of one experiment are told apart)."""
        header = [f"| reproduction {TABLE_HEADER[0]}", f"|---{TABLE_HEADER[1]}"]
        rows = [f"| `{s.get('folder', '')}` {row}" for s in self.summaries for row in summary_rows(s)]
        return "\n".join([*header, *rows])


def collect(root: str | os.PathLike) -> Collected:
    """Every ``summary.json`` under ``root`` (sorted by experiment name, then folder)."""
    found = []
    for path in Path(root).rglob("summary.json"):
        summary = with_nans(json.loads(path.read_text()))  # (one written before holds bare NaNs: read as such)
        summary["folder"] = str(path.parent.relative_to(root)) if path.parent != Path(root) else "."
        found.append(summary)
    return Collected(sorted(found, key=lambda s: (s["experiment"], s["folder"])))
