"""Compare the runs of a sweep (or of several reproductions, or any run directories): one row per
configuration, with the seeds of each configuration aggregated.

    python scripts/compare.py outputs/multirun/2026-12-05/10-00-00_ab12cd
    python scripts/compare.py outputs/reproduce/dqn_cartpole outputs/reproduce/c51_cartpole --by algo.name
    python scripts/compare.py run_a run_b run_c --out outputs/compare/mine --target 475

Every directory below the arguments that holds a ``config.yaml`` and a ``metrics.csv`` is a run, but
for the ``interrupted/`` folder of a ``tune.py`` study (beside its ``trials/``): the runs of trials
that ended without a result, whose configurations a later trial trained again (name such a folder
itself to compare its runs).
Runs whose configs differ only in the seed (and in keys that do not change training: resume,
progress, checkpoint cadence) are one configuration; the keys that differ between configurations
become the table's columns. Per configuration, over its seeds:

- ``last100``: the mean return of the last 100 training episodes of each seed;
- ``final eval`` / ``best eval``: the last and the best greedy evaluation of each seed;
- ``frames to target``: the first evaluation at or above the target (``--target``, else the run's
  ``env.target_return``), "n/m" seeds reaching it and the median frames of those that did;
- ``wall (s/seed)``: training time per seed from the logged frame rates (mean over the seeds). The
  seeds of one multi-seed process (``train.py num_seeds=N``: its ``seed_<k>/`` directories, all seeds
  advancing together) share its wall time: each is charged the process's wall time divided by the
  seeds it trained, so that the column means the same for batched seeds and for one process per seed.

Returns are aggregated as mean ± std and as the interquartile mean with its stratified-bootstrap
95 % interval (Agarwal et al. 2021; :mod:`rlkit.stats`). Writes ``comparison.md``, ``comparison.csv``
(one row per configuration), ``seeds.csv`` (one row per run) and ``curves.png`` (IQM over seeds with
its 95 % band, per configuration or per value of ``--by``) into ``--out`` (default: the one directory
given, else ``outputs/compare/<time>``), and prints the table. ``--out`` must not be inside a run
directory (among its config, checkpoints and logs; :func:`rlkit.rundir.check_outside_run_files`).

Refusals (no runs, a bad ``--out`` or ``--target``, a seed twice in one configuration, ...) print one
line, ``rlkit: <message>``, on stderr and exit with status 2, as every rlkit entry point; nothing is
written then.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import reproduce_report as report
from rlkit import stats
from rlkit.cli import refuse
from rlkit.errors import ConfigError, RunDirError
from rlkit.factories import seed_dir_name
from rlkit.rundir import check_creatable, check_outside_run_files
from rlkit.trainers.loggers.csv_logger import read_metrics_csv
from rlkit.utils.io import atomic_write

#: Keys that do not change what a run learns: runs differing only there are one configuration.
IGNORED_KEYS = {"seed", "resume", "imports", "device", "num_threads", "trainer.progress", "trainer.checkpoint_interval",
                "trainer.keep_checkpoints", "trainer.log_interval", "logger"}
CURVE_POINTS = 60


@dataclass
class SeedResult:
    """The figures of one run."""

    path: Path
    seed: int
    frames: int
    last100: float
    final_eval: float
    best_eval: float
    frames_to_target: float  # NaN: never reached (or no target)
    wall_s: float  # this seed's share of its process's wall time (see wall_share)
    complete: bool  # trained to its budget (or stopped early at its target) and evaluated there
    target: float | None = None
    process_seeds: int = 1  # the seeds its process trained (num_seeds), which share its wall time
    dropped: bool = False  # a seed of a multi-seed run dropped for non-finite values (its end.json)


@dataclass
class Config:
    """One configuration: its flattened config (without the ignored keys) and its seeds' runs."""

    key: tuple[tuple[str, str], ...]
    values: dict[str, Any]
    runs: list[report.Run] = field(default_factory=list)
    results: list[SeedResult] = field(default_factory=list)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"algo": {"optim": {"lr": 0.001}}}`` -> ``{"algo.optim.lr": 0.001}`` (lists stay values)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for name, value in tree.items():
        out.update(flatten(value, f"{prefix}.{name}" if prefix else str(name)))
    return out


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in IGNORED_KEYS)


#: A tune.py study's folder of the runs of trials without a result (``rlkit.tune.report.INTERRUPTED_DIR``),
#: beside its ``trials/``: their configurations ran again as other trials, so they are left out.
STUDY_INTERRUPTED = "interrupted"


def _set_aside_by_a_study(run: Path, root: Path) -> bool:
    """Whether ``run`` (below the argument ``root``) lies in a study's ``interrupted/`` folder, one
    below ``root`` whose parent holds the study's ``trials/``."""
    parts = run.relative_to(root).parts
    return any(part == STUDY_INTERRUPTED and (root.joinpath(*parts[:i]) / "trials").is_dir()
               for i, part in enumerate(parts))


def _count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless one (``1 configuration``, ``2 runs``)."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def find_run_dirs(paths: list[Path]) -> list[Path]:
    """Run directories at or below ``paths`` (``.hydra`` copies of configs are not runs, nor the runs a
    ``tune.py`` study set aside in its ``interrupted/`` folder below a path given)."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            refuse(f"no such directory: {path}")
        if not path.is_dir():
            refuse(f"{path} is a file, not a directory: give run directories or folders holding them")
        is_run = (path / "config.yaml").is_file() and (path / "metrics.csv").is_file()
        configs = [path / "config.yaml"] if is_run else sorted(path.rglob("config.yaml"))  # (a multi-seed run's seeds)
        for config in configs:
            run = config.parent
            if ".hydra" in run.parts or not (run / "metrics.csv").is_file() or _set_aside_by_a_study(run, path):
                continue
            if run.resolve() not in {f.resolve() for f in found}:  # (the same run reached by two paths)
                found.append(run)
    if not found:
        refuse(f"no run directories (config.yaml + metrics.csv) under {[str(p) for p in paths]}")
    return found


def wall_seconds(rows: list[dict[str, float]]) -> float:
    """Training time from the metrics rows: each row's frames divided by its logged frames/s (for a
    seed of a multi-seed process, the process's time while that seed trained: see :func:`wall_share`)."""
    total, last = 0.0, 0
    for row in rows:
        step = int(row["step"])
        fps = row.get("fps", math.nan)
        if step > last and fps and not math.isnan(fps):
            total += (step - last) / fps
        last = max(last, step)
    return total


def process_seed_dirs(run_dir: Path, seed: int) -> list[Path] | None:
    """The seed directories of the multi-seed process (``train.py num_seeds=N``) that trained
    ``run_dir`` (a run of ``seed``), or None for a run trained alone in its process.

    Told by the config the process saved in its own directory, the parent of its seeds': ``num_seeds``
    > 1, seeds ``seed .. seed + num_seeds - 1``, each in its :func:`rlkit.factories.seed_dir_name`
    folder (each seed's own ``config.yaml`` says ``num_seeds: 1``, as its ordinary run would)."""
    try:
        saved = yaml.safe_load((run_dir.parent / "config.yaml").read_text())
        first, count = int(saved["seed"]), int(saved.get("num_seeds", 1))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError):
        return None  # no parent config (a run of its own), or not a run's config
    seeds = range(first, first + count)
    if count <= 1 or seed not in seeds or run_dir.name != seed_dir_name(seed):
        return None
    return [run_dir.parent / seed_dir_name(s) for s in seeds]


def wall_share(run: report.Run) -> tuple[float, int]:
    """The wall time charged to one run (seconds) and the number of seeds that share it.

    A run trained alone in its process: its own training time (:func:`wall_seconds`), shared by 1. A
    seed of a multi-seed process: the process's wall time (the longest of its seeds' logged training
    times: all seeds advance together, and each seed's logged frames/s are the process's) divided by
    the seeds it trained, so that the seeds' shares add up to the process's time."""
    seed_dirs = process_seed_dirs(run.path, run.seed)
    if seed_dirs is None:
        return wall_seconds(run.rows), 1
    walls = [wall_seconds(run.rows if d == run.path else read_metrics_csv(d / "metrics.csv"))
             for d in seed_dirs if d == run.path or (d / "metrics.csv").is_file()]
    return max(walls) / len(seed_dirs), len(seed_dirs)


def seed_result(run: report.Run, target: float | None) -> SeedResult:
    evals = [(int(r["step"]), r["eval_return"]) for r in run.rows if "eval_return" in r]
    last100 = report.last_training_mean(run)[0]
    reached = [step for step, value in evals if target is not None and value >= target]
    wall, sharing = wall_share(run)
    return SeedResult(run.path, run.seed, run.frames_reached, last100,
                      evals[-1][1] if evals else math.nan, max(v for _, v in evals) if evals else math.nan,
                      float(reached[0]) if reached else math.nan, wall, run.complete, target, sharing, run.dropped)


def run_target(flat: dict[str, Any]) -> float | None:
    """The run's ``env.target_return``; ``auto`` is the gymnasium spec's ``reward_threshold``."""
    value = flat.get("env.target_return")
    if value == "auto":
        from rlkit.envs import find_env_spec

        try:
            value = find_env_spec(str(flat.get("env.id"))).reward_threshold
        except ValueError:  # a suite's game (no gymnasium id) or an env this interpreter cannot find
            value = None
    return None if value is None else float(value)


def load_run(path: Path) -> report.Run:
    """:func:`reproduce_report.load_run`, its refusal (a config.yaml that cannot be read or is not a
    run's) in one ``rlkit:`` line."""
    try:
        return report.load_run(path)
    except SystemExit as err:
        if isinstance(err.code, str):
            refuse(err.code)
        raise


def group(run_dirs: list[Path], target: float | None) -> tuple[list[Config], list[str]]:
    """Configurations (in order of first appearance) and the keys that differ between them."""
    configs: dict[tuple, Config] = {}
    for path in run_dirs:
        run = load_run(path)  # (first: a config.yaml it cannot read is refused)
        flat = flatten(yaml.safe_load((path / "config.yaml").read_text()))
        values = {k: v for k, v in flat.items() if not _ignored(k)}
        key = tuple(sorted((k, repr(v)) for k, v in values.items()))
        config = configs.setdefault(key, Config(key, values))
        config.runs.append(run)
        config.results.append(seed_result(run, target if target is not None else run_target(flat)))
    groups = list(configs.values())
    for i, c in enumerate(groups):
        # Two runs of one seed under one configuration would count that seed twice: refused.
        by_seed: dict[int, list[Path]] = {}
        for result in c.results:
            by_seed.setdefault(result.seed, []).append(result.path)
        twice = {seed: paths for seed, paths in by_seed.items() if len(paths) > 1}
        if twice:
            seed, paths = next(iter(twice.items()))
            refuse(f"configuration {i} holds seed {seed} {len(paths)} times ({', '.join(str(p) for p in paths)}): "
                   "runs of the same config and seed would count twice; compare such sets of runs separately")
    keys = sorted({k for c in groups for k in c.values})
    differing = [k for k in keys if len({repr(c.values.get(k)) for c in groups}) > 1]
    for c in groups:
        c.results.sort(key=lambda r: r.seed)
    return groups, differing


def _agg(values: list[float]) -> dict[str, float]:
    return report.across_seeds(values)


def _figures(results: list[SeedResult], metric: str) -> list[float]:
    """Each seed's ``metric``, NaN (left out of the aggregates, as ``reproduce.py``'s tables leave it
    out) for a seed dropped for non-finite values: its figures are a diverged agent's at its last good
    update, short of the budget the others are compared at."""
    return [math.nan if r.dropped else getattr(r, metric) for r in results]


def _cell(agg: dict[str, float], total: int) -> str:
    if math.isnan(agg["mean"]):
        return "n/a"
    cell = f"{report.pm_seeds(agg)}; IQM {agg['iqm']:.2f} {report.interval(agg)}"
    used = int(agg.get("seeds", total))
    return cell if used == total else f"{cell} ({used} of {total} seeds)"


def _has_target(results: list[SeedResult]) -> bool:
    return any(r.target is not None for r in results)


def _target_cell(results: list[SeedResult]) -> str:
    """Seeds that reached the target, of those not dropped for non-finite values (left out, as from
    the aggregates), and the median frames they took.

    >>> from pathlib import Path
    >>> def run(frames_to_target, dropped=False):
    ...     return SeedResult(Path("r"), 0, 1, 0.0, 0.0, 0.0, frames_to_target, 1.0, True, 9.0, dropped=dropped)
    >>> _target_cell([run(2000.0), run(math.nan), run(math.nan, dropped=True)])
    '1/2, median 2,000'
    """
    if not _has_target(results):
        return "n/a (no target)"
    kept = [r for r in results if not r.dropped]
    reached = [r.frames_to_target for r in kept if not math.isnan(r.frames_to_target)]
    if not reached:
        return f"0/{len(kept)}"
    return f"{len(reached)}/{len(kept)}, median {int(np.median(reached)):,}"


def _seeds_cell(results: list[SeedResult]) -> str:
    """The number of runs, and how many finished (and were dropped for non-finite values), where
    some did not.

    >>> from pathlib import Path
    >>> def run(complete, dropped=False):
    ...     return SeedResult(Path("r"), 0, 1, 0.0, 0.0, 0.0, math.nan, 1.0, complete, dropped=dropped)
    >>> _seeds_cell([run(True), run(True)]), _seeds_cell([run(True), run(False), run(False, dropped=True)])
    ('2', '3 (1 complete, 1 dropped)')
    """
    done, dropped = sum(r.complete for r in results), sum(r.dropped for r in results)
    if done == len(results):
        return str(len(results))
    return f"{len(results)} ({done} complete" + (f", {dropped} dropped)" if dropped else ")")


def _value(value: Any) -> str:
    return "—" if value is None else str(value)


def table_rows(groups: list[Config], differing: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the comparison table (one row per configuration)."""
    header = ["config", *differing, "seeds", "last-100 training return", "final greedy eval", "best greedy eval",
              "frames to target", "wall (s/seed)"]
    rows = []
    for i, c in enumerate(groups):
        n = len(c.results)
        rows.append([str(i), *(_value(c.values.get(k)) for k in differing), _seeds_cell(c.results),
                     _cell(_agg(_figures(c.results, "last100")), n), _cell(_agg(_figures(c.results, "final_eval")), n),
                     _cell(_agg(_figures(c.results, "best_eval")), n), _target_cell(c.results),
                     f"{np.mean([r.wall_s for r in c.results]):.1f}"])
    return header, rows


def markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_csvs(groups: list[Config], differing: list[str], out: Path) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    metrics = ["last100", "final_eval", "best_eval"]
    writer.writerow(["config", *differing, "seeds", "seeds_complete",
                     *(f"{m}_{s}" for m in metrics for s in ("seeds", "mean", "std", "iqm", "iqm_ci_low", "iqm_ci_high")),
                     "seeds_reaching_target", "frames_to_target_median", "wall_s_mean"])
    for i, c in enumerate(groups):
        cells: list[Any] = [i, *(c.values.get(k) for k in differing), len(c.results), sum(r.complete for r in c.results)]
        for m in metrics:
            agg = _agg(_figures(c.results, m))
            cells += [agg[s] for s in ("seeds", "mean", "std", "iqm", "iqm_ci_low", "iqm_ci_high")]
        reached = [r.frames_to_target for r in c.results if not r.dropped and not math.isnan(r.frames_to_target)]
        cells += [len(reached) if _has_target(c.results) else math.nan,
                  float(np.median(reached)) if reached else math.nan,
                  float(np.mean([r.wall_s for r in c.results]))]
        writer.writerow(cells)
    with atomic_write(out / "comparison.csv") as f:
        f.write(buf.getvalue())
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["config", "seed", "frames", "complete", "dropped", "last100", "final_eval", "best_eval",
                     "frames_to_target", "wall_s", "process_seeds", "path"])
    for i, c in enumerate(groups):
        for r in c.results:
            writer.writerow([i, r.seed, r.frames, r.complete, r.dropped, r.last100, r.final_eval, r.best_eval,
                             r.frames_to_target, r.wall_s, r.process_seeds, r.path])
    with atomic_write(out / "seeds.csv") as f:
        f.write(buf.getvalue())


def iqm_band(curves: list[tuple[list[int], list[float]]], points: int = CURVE_POINTS):
    """Grid, IQM and 95 % bootstrap band over runs of curves interpolated on a common frame grid;
    with fewer than :data:`rlkit.stats.MIN_RUNS_FOR_CI` runs the band is their range (what the
    bootstrap's would be, but named for what it is)."""
    curves = [c for c in curves if len(c[0]) > 0]
    if not curves:
        return None
    lo, hi = max(c[0][0] for c in curves), min(c[0][-1] for c in curves)
    grid = np.linspace(lo, hi, points) if hi > lo else np.array([float(hi)])
    ys = np.stack([np.interp(grid, c[0], c[1]) for c in curves])
    if len(curves) < stats.MIN_RUNS_FOR_CI:
        return grid, np.array([stats.iqm(ys[:, j]) for j in range(grid.size)]), ys.min(0), ys.max(0)
    point, low, high = zip(*(stats.stratified_bootstrap_ci(ys[:, j], reps=500) for j in range(grid.size)))
    return grid, np.array(point), np.array(low), np.array(high)


def plot(groups: list[Config], differing: list[str], by: list[str] | None, path: Path) -> None:
    """Training and greedy-evaluation curves, one line per configuration (or per value of ``by``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    label_keys = by if by else differing
    lines: dict[str, list[report.Run]] = {}
    for i, c in enumerate(groups):
        label = ", ".join(f"{k.rsplit('.', 1)[-1]}={_value(c.values.get(k))}" for k in label_keys)
        if not label or len(label) > 60:  # many keys differ: the table's row number names it
            label = f"config {i}"
        lines.setdefault(label, []).extend(c.runs)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    panels = [("training return (last 100 episodes)", report.train_curve),
              ("greedy evaluation return", lambda run: report.eval_curve(run.rows))]
    for ax, (title, curve) in zip(axes, panels):
        for n, (label, runs) in enumerate(lines.items()):
            band = iqm_band([curve(r) for r in runs])
            if band is None:
                continue
            x, mid, low, high = band
            ax.plot(x, mid, color=f"C{n % 10}", label=f"{label} ({len(runs)} runs)")
            ax.fill_between(x, low, high, color=f"C{n % 10}", alpha=0.2)
        ax.set_title(title)
        ax.set_xlabel("frames")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"return: IQM over runs, 95 % bootstrap band\n(under {stats.MIN_RUNS_FOR_CI} runs: their range)")
    handles, labels = axes[1].get_legend_handles_labels() or axes[0].get_legend_handles_labels()
    if not handles:
        handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(handles)), fontsize=8)
    fig.tight_layout(rect=(0, 0.06 * math.ceil(len(handles) / 3), 1, 1))
    with atomic_write(path, "wb") as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)


class _Parser(argparse.ArgumentParser):
    """argparse's usage errors as the other refusals: one ``rlkit:`` line, exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        refuse(f"{message} (see: python scripts/compare.py --help)")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="compare.py", description=__doc__.split("\n\n")[0],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", type=Path, help="sweep dirs, reproduce outputs or run dirs")
    parser.add_argument("--by", action="append", help="config key to group the curves by (repeatable)")
    parser.add_argument("--target", type=float, help="return that counts as solved (default: env.target_return)")
    parser.add_argument("--out", type=Path, help="where to write (default: the one directory given)")
    parser.add_argument("--no-plot", action="store_true", help="skip curves.png (no matplotlib needed)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.target is not None and not math.isfinite(args.target):
        refuse(f"--target {args.target}: expected a finite return")
    run_dirs = find_run_dirs(args.paths)
    groups, differing = group(run_dirs, args.target)
    for key in args.by or []:
        if not any(key in c.values for c in groups):
            known = ", ".join(differing) or "(no key differs)"
            refuse(f"--by {key}: not a config key of these runs; keys that differ: {known}")
    out = args.out or (args.paths[0] if len(args.paths) == 1 and not (args.paths[0] / "config.yaml").is_file()
                       else Path("outputs/compare") / time.strftime("%Y-%m-%d_%H-%M-%S"))
    shown = f"--out {str(out)!r}" if args.out else f"the default --out {str(out)!r}"
    try:  # (not among a run's own files: its config, checkpoints, logs; nor a seed folder of a multi-seed run)
        check_outside_run_files(out, None, "the comparison", shown=shown)
        check_creatable(out, "--out")
    except (ConfigError, RunDirError) as err:
        refuse(str(err))
    out.mkdir(parents=True, exist_ok=True)
    header, rows = table_rows(groups, differing)
    table = markdown(header, rows)
    notes = [f"{_count(len(run_dirs), 'run')}, {_count(len(groups), 'configuration')}; keys that differ: {', '.join(differing) or 'none'}.",
             "Returns: mean ± std over seeds (population std); IQM = interquartile mean over seeds (the mean of the "
             "middle half; with fewer than 4 seeds nothing is cut and it is their mean) with its stratified-bootstrap "
             f"95 % interval (Agarwal et al. 2021) from {stats.MIN_RUNS_FOR_CI} seeds on; with fewer the interval "
             "would be the seeds' own range and is shown as [n/a: N seeds] (curves.png's band is then their range).",
             "curves.png: each line ends at the last frame all its runs reached (runs stopped early end sooner).",
             "wall (s/seed): training time from the logged frame rates, mean over seeds; the seeds of one multi-seed "
             "process (num_seeds > 1) share its wall time, each charged the process's wall time divided by the seeds "
             "it trained (seeds.csv: process_seeds).",
             "seeds: the runs of a configuration, and how many of them are complete where some are not (their "
             "figures are where they stopped); a cell aggregated over fewer seeds (no episode or evaluation yet) "
             "says so."]
    with atomic_write(out / "comparison.md") as f:
        f.write("# Comparison\n\n" + table + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    write_csvs(groups, differing, out)
    if not args.no_plot:
        plot(groups, differing, args.by, out / "curves.png")
    print(table)
    print("\n".join(notes))
    print(f"wrote {out / 'comparison.md'}, comparison.csv, seeds.csv" + ("" if args.no_plot else ", curves.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
