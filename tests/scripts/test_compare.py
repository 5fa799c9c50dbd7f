"""scripts/compare.py: grouping by configuration, the aggregates against hand-computed values, and a
real -m sweep."""
from __future__ import annotations

import csv
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import compare
from rlkit.stats import stratified_bootstrap_ci
from rlkit.trainers.loggers.csv_logger import read_metrics_csv

ROOT = Path(__file__).resolve().parents[2]


def _run(root: Path, name: str, *, lr: float, seed: int, returns: list[float], evals: list[float],
         fps: float = 1000.0, target: float = 100.0, total_frames: int | None = None) -> Path:
    """A run directory with ``returns`` as its training episodes and ``evals`` every 1000 frames."""
    path = root / name
    path.mkdir(parents=True)
    config = {"seed": seed, "algo": {"name": "dqn", "optim": {"lr": lr}}, "env": {"id": "CartPole-v1",
              "target_return": target}, "trainer": {"progress": False},
              "total_frames": total_frames or 1000 * len(evals)}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "episodes.csv").write_text("frame,return,length\n" + "".join(
        f"{10 * (i + 1)},{r},10\n" for i, r in enumerate(returns)))
    rows = ["step,episode_return,episodes,eval_return,fps"]
    rows += [f"{1000 * (i + 1)},1.0,1,{e},{fps}" for i, e in enumerate(evals)]
    (path / "metrics.csv").write_text("\n".join(rows) + "\n")
    return path


def _refused(capsys, argv: list[str]) -> str:
    """Runs ``compare.main(argv)``, which must refuse as every rlkit entry point: one line,
    ``rlkit: <message>``, on stderr and exit status 2. Returns the message."""
    with pytest.raises(SystemExit) as exc:
        compare.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("rlkit: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err[len("rlkit: "):-1]


def test_rows_per_configuration_with_hand_computed_aggregates(tmp_path, capsys):
    # config lr=0.01: 4 seeds whose last-100 returns are 0, 10, 20, 1000 -> mean 257.5, IQM 15 (10, 20)
    for seed, value in enumerate([0.0, 10.0, 20.0, 1000.0]):
        _run(tmp_path, f"{seed}_lr=0.01,seed={seed}", lr=0.01, seed=seed, returns=[5.0] * 50 + [value] * 100,
             evals=[50.0, 100.0 + seed], fps=500.0)
    # config lr=0.001: 2 seeds, one never reaches the target of 100
    _run(tmp_path, "4_lr=0.001,seed=0", lr=0.001, seed=0, returns=[1.0, 3.0], evals=[20.0, 30.0])
    _run(tmp_path, "5_lr=0.001,seed=1", lr=0.001, seed=1, returns=[2.0], evals=[120.0, 90.0])
    (tmp_path / "4_lr=0.001,seed=0" / ".hydra").mkdir()  # Hydra's copies are not runs
    (tmp_path / "4_lr=0.001,seed=0" / ".hydra" / "config.yaml").write_text("seed: 0\n")
    assert compare.main([str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "6 runs, 2 configurations; keys that differ: algo.optim.lr." in printed

    rows = list(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert [(r["config"], r["algo.optim.lr"], r["seeds"]) for r in rows] == [("0", "0.01", "4"), ("1", "0.001", "2")]
    first, second = rows
    assert float(first["last100_mean"]) == 257.5
    assert float(first["last100_iqm"]) == 15.0
    # 4 seeds give no interval: the bootstrap's would be their range (rlkit.stats.MIN_RUNS_FOR_CI)
    assert stratified_bootstrap_ci([0.0, 10.0, 20.0, 1000.0])[1:] == (0.0, 1000.0)
    assert math.isnan(float(first["last100_iqm_ci_low"])) and math.isnan(float(first["last100_iqm_ci_high"]))
    assert float(first["final_eval_mean"]) == 101.5 and float(first["best_eval_mean"]) == 101.5
    assert first["seeds_reaching_target"] == "4" and float(first["frames_to_target_median"]) == 2000.0
    assert float(first["wall_s_mean"]) == 4.0  # 2000 frames at 500 frames/s
    assert float(second["last100_mean"]) == 2.0  # seed 0: mean(1, 3) = 2; seed 1: 2
    assert float(second["final_eval_mean"]) == 60.0 and float(second["best_eval_mean"]) == 75.0
    assert second["seeds_reaching_target"] == "1" and float(second["frames_to_target_median"]) == 1000.0

    seeds = list(csv.DictReader((tmp_path / "seeds.csv").open()))
    assert [(s["config"], s["seed"]) for s in seeds] == [("0", "0"), ("0", "1"), ("0", "2"), ("0", "3"),
                                                         ("1", "0"), ("1", "1")]
    table = (tmp_path / "comparison.md").read_text()
    assert "| 0 | 0.01 | 4 | 257.50 ± " in table and "IQM 15.00 [" in table
    assert "| 1/2, median 1,000 |" in table
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_the_seeds_of_a_multi_seed_run(tmp_path):
    """A ``num_seeds`` run directory: its config.yaml has no metrics beside it; its seed_<k>/ are the runs."""
    run = tmp_path / "ms"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "num_seeds": 2}))
    for seed in (0, 1):
        _run(run, f"seed_{seed}", lr=0.1, seed=seed, returns=[float(seed)], evals=[1.0])
    assert compare.main([str(run), "--no-plot", "--out", str(tmp_path / "out")]) == 0
    (row,) = csv.DictReader((tmp_path / "out" / "comparison.csv").open())
    assert row["seeds"] == "2" and float(row["last100_mean"]) == 0.5
    assert float(row["wall_s_mean"]) == 0.5  # the process's 1 s (1000 frames at 1000 frames/s) over its 2 seeds


def test_the_seeds_of_one_process_share_its_wall_time(tmp_path, capsys):
    """``num_seeds=3``: all seeds advance together and each seed's metrics.csv logs the process's
    frames/s, so each seed's frames / fps is the process's whole wall time. Each seed is charged a
    third of it, as three runs of one process each are charged their own: the column is seconds per
    seed for both."""
    batched = tmp_path / "rep1" / "runs" / "seeds_0-2"
    batched.mkdir(parents=True)
    (batched / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "num_seeds": 3, "total_frames": 2000}))
    (batched / "checkpoints").mkdir()
    for seed in (0, 2):  # 2000 frames at 500 frames/s: the process trained 4 s
        _run(batched, f"seed_{seed}", lr=0.1, seed=seed, returns=[1.0], evals=[1.0, 2.0], fps=500.0)
    # seed 1 stopped early at 1000 frames (2 s); the process went on for the other two
    _run(batched, "seed_1", lr=0.1, seed=1, returns=[1.0], evals=[1.0], fps=500.0, total_frames=2000)
    # the same seeds, one process each (reproduce.py batched=false: seed_<k> directories, but no
    # multi-seed config above them), another learning rate: 4 s each
    alone = tmp_path / "rep2" / "runs"
    for seed in range(3):
        _run(alone, f"seed_{seed}", lr=0.2, seed=seed, returns=[1.0], evals=[1.0, 2.0], fps=500.0)
    assert compare.main([str(tmp_path / "rep1"), str(tmp_path / "rep2"), "--no-plot",
                         "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "comparison.csv").open()))
    assert [(r["algo.optim.lr"], float(r["wall_s_mean"])) for r in rows] == [("0.1", pytest.approx(4 / 3)),
                                                                              ("0.2", 4.0)]
    seeds = list(csv.DictReader((tmp_path / "out" / "seeds.csv").open()))
    assert [(s["seed"], float(s["wall_s"]), s["process_seeds"]) for s in seeds] == [
        ("0", pytest.approx(4 / 3), "3"), ("1", pytest.approx(4 / 3), "3"), ("2", pytest.approx(4 / 3), "3"),
        ("0", 4.0, "1"), ("1", 4.0, "1"), ("2", 4.0, "1")]
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert "| wall (s/seed) |" in table and " | 1.3 |" in table and " | 4.0 |" in table
    assert "process's wall time divided by the seeds it trained" in table


def test_which_runs_are_seeds_of_a_multi_seed_process(tmp_path):
    """Told by the process's config.yaml above the seed's folder, not by the folder's name alone."""
    process = tmp_path / "p"
    process.mkdir()
    (process / "config.yaml").write_text(yaml.safe_dump({"seed": 4, "num_seeds": 2}))
    assert compare.process_seed_dirs(process / "seed_5", 5) == [process / "seed_4", process / "seed_5"]
    assert compare.process_seed_dirs(process / "seed_6", 6) is None  # not one of its seeds
    assert compare.process_seed_dirs(process / "run_5", 5) is None  # not a seed folder of it
    assert compare.process_seed_dirs(tmp_path / "seed_5", 5) is None  # no multi-seed config above
    (process / "config.yaml").write_text(yaml.safe_dump({"seed": 4, "num_seeds": 1}))
    assert compare.process_seed_dirs(process / "seed_4", 4) is None


def test_target_from_the_command_line_and_bad_by(tmp_path, capsys):
    _run(tmp_path / "a", "run", lr=0.1, seed=0, returns=[1.0], evals=[10.0, 60.0])
    out = tmp_path / "out"
    assert compare.main([str(tmp_path / "a" / "run"), "--target", "50", "--out", str(out), "--no-plot"]) == 0
    (row,) = csv.DictReader((out / "comparison.csv").open())
    assert row["seeds_reaching_target"] == "1" and float(row["frames_to_target_median"]) == 2000.0
    assert not (out / "curves.png").exists()
    capsys.readouterr()
    assert _refused(capsys, [str(tmp_path / "a" / "run"), "--target", "nan", "--no-plot"]) == (
        "--target nan: expected a finite return")
    assert _refused(capsys, [str(tmp_path / "a"), "--by", "algo.nope", "--out", str(out)]).startswith(
        "--by algo.nope: not a config key of these runs")
    assert _refused(capsys, [str(tmp_path / "out")]).startswith("no run directories")
    assert _refused(capsys, [str(tmp_path / "nowhere")]) == f"no such directory: {tmp_path / 'nowhere'}"
    (tmp_path / "results.md").write_text("# a table\n")
    assert _refused(capsys, [str(tmp_path / "results.md")]) == (
        f"{tmp_path / 'results.md'} is a file, not a directory: give run directories or folders holding them")
    assert _refused(capsys, [str(tmp_path / "a"), "--bogus"]).startswith("unrecognized arguments: --bogus")
    # An --out that is a file (or under one): one line, the file kept.
    assert re.fullmatch(r"--out '.*comparison\.csv' is a file; give a directory", _refused(
        capsys, [str(tmp_path / "a" / "run"), "--no-plot", "--out", str(out / "comparison.csv")]))
    assert re.fullmatch(r"--out '.*x' cannot be created: Not a directory", _refused(
        capsys, [str(tmp_path / "a" / "run"), "--no-plot", "--out", str(out / "comparison.csv" / "x")]))
    assert (out / "comparison.csv").is_file()


def test_wall_seconds_from_the_frame_rates():
    rows = [{"step": 100, "fps": 100.0}, {"step": 300, "fps": 50.0}, {"step": 300, "eval_return": 1.0}]
    assert compare.wall_seconds(rows) == 5.0
    assert math.isnan(float("nan")) and compare.wall_seconds([]) == 0.0


def test_a_real_sweep(tmp_path):
    """``train.py -m`` over two learning rates and two seeds: one row per learning rate."""
    sweep = tmp_path / "sweep"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "algo.optim.lr=0.001,0.01", "seed=0,1",
                           "total_frames=400", "trainer.eval_episodes=2", "trainer.log_interval=200",
                           "trainer.eval_interval=200", "trainer.progress=false", "algo.learning_starts=100",
                           f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=env, text=True, capture_output=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == [
        "0_lr=0.001,seed=0", "1_lr=0.001,seed=1", "2_lr=0.01,seed=0", "3_lr=0.01,seed=1"]
    assert compare.main([str(sweep), "--no-plot"]) == 0
    rows = list(csv.DictReader((sweep / "comparison.csv").open()))
    assert [(r["algo.optim.lr"], r["seeds"]) for r in rows] == [("0.001", "2"), ("0.01", "2")]
    for row in rows:
        assert not math.isnan(float(row["final_eval_mean"])) and float(row["wall_s_mean"]) > 0


def test_out_inside_a_run_is_refused_and_nothing_written(tmp_path, capsys):
    """``--out`` among a run's own files (its directory, checkpoints/, a multi-seed run's seed folder):
    refused as evaluate.py, export.py and reproduce.py refuse such paths, nothing written."""
    process = tmp_path / "rep1" / "runs" / "seeds_0-1"
    process.mkdir(parents=True)
    (process / "config.yaml").write_text(yaml.safe_dump({"seed": 0, "num_seeds": 2, "total_frames": 1000}))
    (process / "checkpoints").mkdir()
    (process / "checkpoints" / "last.pt").write_bytes(b"x")
    (process / "train.log").write_text("")
    for seed in (0, 1):
        _run(process, f"seed_{seed}", lr=0.1, seed=seed, returns=[1.0], evals=[1.0])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for out, where in [(process / "checkpoints", f"is inside the run directory {str(process)!r}"),
                       (process / "seed_0", f"is the run directory {str(process / 'seed_0')!r}"),
                       (process, f"is the run directory {str(process)!r}"),
                       (process / "seed_1" / "report", f"is inside the run directory {str(process / 'seed_1')!r}")]:
        message = _refused(capsys, [str(tmp_path / "rep1"), "--no-plot", "--out", str(out)])
        assert message == f"--out {str(out)!r} {where}, among its own files; write the comparison outside it"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert compare.main([str(tmp_path / "rep1"), "--no-plot"]) == 0  # the reproduction's own directory: fine
    assert (tmp_path / "rep1" / "comparison.md").is_file()
    # the default --out (the one directory given) inside a run: refused too
    kept = process / "checkpoints" / "old"
    _run(kept, "r", lr=0.1, seed=0, returns=[1.0], evals=[1.0])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    capsys.readouterr()
    assert _refused(capsys, [str(kept), "--no-plot"]) == (
        f"the default --out {str(kept)!r} is inside the run directory {str(process)!r}, among its own files; "
        "write the comparison outside it")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_real_multi_seed_run(tmp_path, capsys):
    """``train.py num_seeds=2``: its seeds share the process's wall time, and neither the run's
    directory, its checkpoints nor a seed's folder is a place for the comparison."""
    run = tmp_path / "ms"
    env = {**os.environ, "WANDB_MODE": "disabled"}
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "num_seeds=2", "total_frames=400",
                           "trainer.eval_episodes=2", "trainer.log_interval=200", "trainer.eval_interval=200",
                           "trainer.progress=false", "algo.learning_starts=100", f"hydra.run.dir={run}"],
                          cwd=tmp_path, env=env, text=True, capture_output=True, timeout=180)
    assert done.returncode == 0, done.stderr
    for out in (run, run / "checkpoints", run / "seed_1"):
        assert "among its own files" in _refused(capsys, [str(run), "--no-plot", "--out", str(out)])
    assert not list(run.rglob("comparison.md"))
    assert compare.main([str(run), "--no-plot", "--out", str(tmp_path / "out")]) == 0
    process_wall = max(compare.wall_seconds(read_metrics_csv(run / f"seed_{k}")) for k in (0, 1))
    seeds = list(csv.DictReader((tmp_path / "out" / "seeds.csv").open()))
    assert [(s["seed"], s["process_seeds"]) for s in seeds] == [("0", "2"), ("1", "2")]
    assert process_wall > 0 and all(float(s["wall_s"]) == pytest.approx(process_wall / 2) for s in seeds)


def test_a_seed_twice_in_one_configuration_is_refused_and_one_run_by_two_paths_counts_once(tmp_path, capsys):
    _run(tmp_path / "a", "r0", lr=0.1, seed=0, returns=[1.0], evals=[1.0])
    _run(tmp_path / "a", "r1", lr=0.1, seed=1, returns=[3.0], evals=[1.0])
    _run(tmp_path / "b", "r0", lr=0.1, seed=0, returns=[5.0], evals=[1.0])  # the same config and seed elsewhere
    assert re.match(r"configuration 0 holds seed 0 2 times \(.*a/r0, .*b/r0\)", _refused(
        capsys, [str(tmp_path / "a"), str(tmp_path / "b"), "--no-plot", "--out", str(tmp_path / "out")]))
    assert not (tmp_path / "out").exists()
    # The same directory given twice (by two spellings) is one set of runs.
    other = tmp_path / "a" / ".." / "a"
    assert compare.main([str(tmp_path / "a"), str(other), "--no-plot", "--out", str(tmp_path / "out")]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "comparison.csv").open()))
    assert rows[0]["seeds"] == "2"


def test_unfinished_seeds_missing_figures_and_no_target_are_said(tmp_path, capsys):
    _run(tmp_path, "r0", lr=0.1, seed=0, returns=[2.0], evals=[1.0, 2.0], target=None)
    unfinished = _run(tmp_path, "r1", lr=0.1, seed=1, returns=[4.0], evals=[3.0, 4.0], target=None)
    # seed 1 stopped half way, before its second evaluation; seed 2 has no episode or evaluation yet
    (unfinished / "metrics.csv").write_text("step,episode_return,episodes,eval_return,fps\n1000,1.0,1,3.0,1000.0\n"
                                            "1500,1.0,1,,1000.0\n")
    late = _run(tmp_path, "r2", lr=0.1, seed=2, returns=[], evals=[1.0, 1.0], target=None)
    (late / "metrics.csv").write_text("step,fps\n100,1000.0\n")
    assert compare.main([str(tmp_path), "--no-plot"]) == 0
    table = (tmp_path / "comparison.md").read_text()
    assert "| 0 | 3 (1 complete) | 3.00 ± 1.00; IQM 3.00 [n/a: 2 seeds] (2 of 3 seeds) |" in table
    assert "| n/a (no target) |" in table
    row = next(csv.DictReader((tmp_path / "comparison.csv").open()))
    assert (row["seeds"], row["seeds_complete"], row["last100_seeds"]) == ("3", "1", "2")
    assert math.isnan(float(row["seeds_reaching_target"]))


def test_a_run_whose_env_cannot_be_imported_here_has_no_target_instead_of_a_traceback(tmp_path, capsys):
    """``target_return: auto`` needs the env's registered threshold; a run of an env whose module is
    not importable where compare.py runs (a user env beside train.py) crashed the whole report."""
    from reproduce_report import load_run

    path = _run(tmp_path, "a", lr=0.1, seed=0, returns=[1.0, 2.0], evals=[3.0])
    config = yaml.safe_load((path / "config.yaml").read_text())
    config["env"] = {"suite": "gym", "id": "nowhere_module_xyz:Thing-v0", "target_return": "auto"}
    config["trainer"]["early_stop"] = True
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    assert load_run(path).early_stop_return is None
    config["env"]["target_return"] = 7.5  # a number needs no env
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    assert load_run(path).early_stop_return == 7.5


@pytest.mark.parametrize("name", [f"{algo}_{env}" for algo in ("dqn", "c51")
                                  for env in ("cartpole", "acrobot", "mountaincar")])
def test_cleanrl_configs_say_the_window_is_rlkits_reading(name):
    """CleanRL's docs give "average episodic returns" without a window; the last 100 training
    episodes per seed are rlkit's reading (scripts/published.py), which the configs' comments say."""
    lines = (ROOT / "conf" / "experiment" / f"{name}.yaml").read_text().splitlines()
    comments = " ".join(line.lstrip("# ") for line in lines if line.startswith("#"))
    assert "a window CleanRL does not state" in comments
    assert "rlkit compares the mean of each seed's last 100 training episodes" in comments
    assert "seeds, the mean of each seed's last 100" not in comments  # (not the published figure's window)


def test_the_curve_band_of_fewer_than_five_runs_is_their_range():
    """A bootstrap band of 3 runs is their range at best; the band says so by being exactly that."""
    curves = [([0, 10], [float(k), float(k) + 1.0]) for k in range(3)]
    grid, mid, low, high = compare.iqm_band(curves, points=3)
    assert list(low) == [0.0, 0.5, 1.0] and list(high) == [2.0, 2.5, 3.0] and list(mid) == [1.0, 1.5, 2.0]
    many = [([0, 10], [float(k), float(k)]) for k in range(8)]
    _, mid, low, high = compare.iqm_band(many, points=2)
    assert 0.0 < low[0] <= mid[0] == 3.5 <= high[0] < 7.0  # a bootstrap interval, inside the range


def test_a_study_directory_leaves_out_the_runs_of_its_interrupted_trials(tmp_path, capsys):
    """tune.py moves the run of a trial without a result (its configuration trained again as a new
    trial) to <tune.dir>/interrupted/: compare.py on the study refused it, "configuration 0 holds seed 0
    2 times (.../trials/0000/seed_0, .../trials/0001/seed_0)" while both were under trials/."""
    study = tmp_path / "study"
    _run(study / "interrupted" / "0000", "seed_0", lr=0.01, seed=0, returns=[1.0], evals=[5.0])
    _run(study / "trials" / "0001", "seed_0", lr=0.01, seed=0, returns=[2.0], evals=[50.0])
    _run(study / "trials" / "0002", "seed_0", lr=0.001, seed=0, returns=[3.0], evals=[30.0])
    assert compare.main([str(study), "--no-plot"]) == 0
    assert "2 runs, 2 configurations" in capsys.readouterr().out
    paths = [row["path"] for row in csv.DictReader((study / "seeds.csv").open())]
    assert sorted(paths) == [str(study / "trials" / "0001" / "seed_0"), str(study / "trials" / "0002" / "seed_0")]
    # named itself, the folder's runs are read; an "interrupted" folder that is no study's is a sweep's like any
    assert compare.main([str(study / "interrupted"), "--no-plot", "--out", str(tmp_path / "c1")]) == 0
    assert "1 run, 1 configuration;" in capsys.readouterr().out
    _run(tmp_path / "sweep" / "interrupted", "0_seed=0", lr=0.01, seed=0, returns=[1.0], evals=[5.0])
    assert compare.main([str(tmp_path / "sweep"), "--no-plot"]) == 0
    assert "1 run, 1 configuration;" in capsys.readouterr().out


def test_the_note_on_the_aggregates_says_what_the_table_shows(tmp_path, capsys):
    """The note said the IQM interval starts at 4 seeds and at 5 in one garbled sentence; the table
    shows [n/a: N seeds] below rlkit.stats.MIN_RUNS_FOR_CI (5) seeds."""
    from rlkit.stats import MIN_RUNS_FOR_CI

    for seed in range(4):
        _run(tmp_path, f"{seed}_seed={seed}", lr=0.01, seed=seed, returns=[float(seed)], evals=[float(seed)])
    assert compare.main([str(tmp_path), "--no-plot"]) == 0
    printed = capsys.readouterr().out
    assert "[n/a: 4 seeds]" in printed
    assert (f"with fewer than 4 seeds nothing is cut and it is their mean) with its stratified-bootstrap 95 % interval "
            f"(Agarwal et al. 2021) from {MIN_RUNS_FOR_CI} seeds on; with fewer the interval would be the seeds' own "
            "range and is shown as [n/a: N seeds]") in printed
    assert "fewer than 4 seeds the IQM is the mean), from" not in (tmp_path / "comparison.md").read_text()


def test_a_dropped_seed_is_counted_as_dropped(tmp_path, capsys):
    """A seed of a multi-seed run dropped for non-finite values (its end.json) is neither complete nor
    merely unfinished: the seeds cell and seeds.csv say it was dropped."""
    import json

    _run(tmp_path, "seed_0", lr=0.01, seed=0, returns=[5.0], evals=[50.0, 60.0])
    dropped = _run(tmp_path, "seed_1", lr=0.01, seed=1, returns=[5.0], evals=[40.0], total_frames=2000)
    (dropped / "end.json").write_text(json.dumps({"seed": 1, "status": "dropped", "reason": "non_finite",
                                                  "frames": 1000, "message": "non-finite loss"}))
    assert compare.main([str(tmp_path)]) == 0
    # counted, and left out of the aggregates (a diverged agent's figures, as reproduce.py's tables leave them out)
    assert "| 2 (1 complete, 1 dropped) | 5.00 ± n/a; IQM 5.00 [n/a: 1 seed] (1 of 2 seeds) | 60.00 ± n/a" in \
        capsys.readouterr().out
    seeds = {row["seed"]: row for row in csv.DictReader((tmp_path / "seeds.csv").open())}
    assert (seeds["0"]["complete"], seeds["0"]["dropped"]) == ("True", "False")
    assert (seeds["1"]["complete"], seeds["1"]["dropped"]) == ("False", "True")


def test_a_dropped_seed_is_left_out_of_the_target_cell_and_keeps_the_frames_it_reached(tmp_path, capsys):
    """The target cell said 1/2 for one seed that reached it beside one dropped, and seeds.csv gave a
    seed dropped before its first metrics row 0 frames (its end.json says 1010)."""
    import json

    _run(tmp_path, "seed_0", lr=0.01, seed=0, returns=[5.0], evals=[50.0, 60.0], target=50.0)
    dropped = _run(tmp_path, "seed_1", lr=0.01, seed=1, returns=[], evals=[], target=50.0, total_frames=2000)
    (dropped / "metrics.csv").write_text("step,episode_return,episodes,eval_return,fps\n")  # (no row yet)
    (dropped / "end.json").write_text(json.dumps({"seed": 1, "status": "dropped", "reason": "non_finite",
                                                  "frames": 1010, "message": "non-finite loss"}))
    assert compare.main([str(tmp_path), "--no-plot"]) == 0
    assert "| 1/1, median 1,000 |" in capsys.readouterr().out
    seeds = {row["seed"]: row for row in csv.DictReader((tmp_path / "seeds.csv").open())}
    assert (seeds["0"]["frames"], seeds["1"]["frames"]) == ("2000", "1010")
