"""scripts/reproduce.py: aggregation numerics, the command line, incremental runs, and one short end-to-end run."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import reproduce
import reproduce_report as report
from published import PUBLISHED
from rlkit.trainers.episodes import read_episodes

TINY = ["total_frames=1000", "algo.learning_starts=200", "algo.eps_annealing_frames=500", "trainer.log_interval=100",
        "trainer.eval_interval=500", "trainer.eval_episodes=2"]


# -- aggregation ---------------------------------------------------------------------------------
def _rows(*cells):
    return [{"step": 100 * (i + 1), "episode_return": r, "episodes": float(n)} for i, (r, n) in enumerate(cells)]


def test_last_episodes_mean_exact_when_rows_fill_the_window():
    # newest rows: 40 episodes of 10 and 60 of 20 -> (400 + 1200) / 100; the 30 of 1000 are older
    assert report.last_episodes_mean(_rows((1000.0, 30), (20.0, 60), (10.0, 40))) == (16.0, 100, True)


def test_last_episodes_mean_splits_the_oldest_row():
    # 50 of 4 (newest) + 50 of the 80 episodes of 2 -> (200 + 100) / 100, an approximation
    assert report.last_episodes_mean(_rows((2.0, 80), (4.0, 50))) == (3.0, 100, False)


def test_last_episodes_mean_with_fewer_episodes_and_rows_without_episodes():
    rows = _rows((1.0, 3), (3.0, 1)) + [{"step": 300, "eval_return": 9.0}]
    assert report.last_episodes_mean(rows) == (1.5, 4, True)
    mean, used, _ = report.last_episodes_mean([{"step": 1, "eval_return": 1.0}])
    assert math.isnan(mean) and used == 0


def test_trailing_curve_is_the_running_last_n_mean():
    steps, values = report.trailing_curve(_rows((1.0, 2), (3.0, 2), (5.0, 2)), n=4)
    assert steps == [100, 200, 300]
    assert values == [1.0, 2.0, 4.0]


def test_episode_curve_is_the_exact_running_mean():
    steps, values = report.episode_curve([(10, 1.0), (20, 3.0), (35, 8.0)], n=2)
    assert steps == [10, 20, 35] and values == [1.0, 2.0, 5.5]


def test_across_seeds_population_std_and_iqm():
    agg = report.across_seeds([1.0, 3.0, math.nan])  # a seed without episodes yet is left out
    assert (agg["mean"], agg["std"], agg["iqm"]) == (2.0, 1.0, 2.0)
    assert math.isnan(agg["iqm_ci_low"]) and report.interval(agg) == "[n/a: 2 seeds]"  # (it would be [1, 3])
    five = report.across_seeds([1.0, 2.0, 3.0, 4.0, 50.0])
    assert 1.0 < five["iqm_ci_low"] <= five["iqm"] == 3.0 <= five["iqm_ci_high"] < 50.0
    # 4 seeds: the IQM drops the best and the worst
    assert report.across_seeds([0.0, 10.0, 20.0, 1000.0])["iqm"] == 15.0
    empty = report.across_seeds([])
    assert empty.pop("seeds") == 0 and all(math.isnan(x) for x in empty.values())
    assert agg["seeds"] == 2 and report.seeds_label(agg, 3) == "(2 of 3 seeds)"
    assert report.seeds_label(report.across_seeds([1.0, 2.0, 3.0]), 3) == "(3 seeds)"


def _fake_run(tmp_path, name, seed, rows, total_frames=200, episodes=None):
    path = tmp_path / name
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "total_frames": total_frames}))
    keys = sorted({k for r in rows for k in r if k != "step"})
    lines = [",".join(["step", *keys])] + [",".join([str(r["step"]), *(repr(r[k]) if k in r else "" for k in keys)])
                                          for r in rows]
    (path / "metrics.csv").write_text("\n".join(lines) + "\n")
    if episodes is not None:
        (path / "episodes.csv").write_text("frame,return,length\n" + "".join(f"1,{e},1\n" for e in episodes))
    return report.load_run(path)


def test_summarize_uses_episodes_csv_exactly_and_the_last_evaluation(tmp_path):
    evals = [{"step": 200, "eval_return": 7.0, "eval_return_std": 1.0}]
    a = _fake_run(tmp_path, "a", 0, _rows((2.0, 80), (4.0, 50)) + evals, episodes=[0.0] * 30 + [1.0] * 100)
    b = _fake_run(tmp_path, "b", 1, _rows((3.0, 100)) + [{"step": 200, "eval_return": 9.0, "eval_return_std": 0.0}])
    assert a.complete and b.complete
    summary = report.summarize("dqn_cartpole", [b, a], PUBLISHED["dqn_cartpole"], "CartPole-v1")
    assert summary["seeds"] == [0, 1]
    assert [s["last100"] for s in summary["per_seed"]] == [1.0, 3.0]  # seed 0 from episodes.csv: the last 100
    assert {k: v for k, v in summary["train_last100"].items() if "ci" not in k} == {"mean": 2.0, "std": 1.0,
                                                                                    "iqm": 2.0, "seeds": 2}
    assert {k: v for k, v in summary["greedy_eval"].items() if "ci" not in k} == {"mean": 8.0, "std": 1.0,
                                                                                  "iqm": 8.0, "seeds": 2}
    assert all(math.isnan(summary[part][f"iqm_ci_{end}"]) for part in ("train_last100", "greedy_eval")
               for end in ("low", "high"))
    assert "2.00 [n/a: 2 seeds]" in report.summary_rows(summary)[0]
    assert summary["last100_exact"]
    train_row, eval_row = report.summary_rows(summary)
    assert "2.00 ± 1.00 (2 seeds)" in train_row and "488.69 ± 16.11" in train_row
    assert "8.00 ± 1.00" in eval_row and eval_row.endswith("| — |")


def test_one_seed_has_no_std_and_an_epsilon_evaluation_is_named_as_such(tmp_path):
    run = _fake_run(tmp_path, "a", 0, _rows((2.0, 100)) + [{"step": 200, "eval_return": 7.0, "eval_return_std": 1.0}])
    summary = report.summarize("dqn_atari", [run], None, "ALE/Breakout-v5", eval_epsilon=0.05)
    train_row, eval_row = report.summary_rows(summary)
    assert "| 2.00 ± n/a (1 seed) | 2.00 [n/a: 1 seed] |" in train_row
    assert "| ε-greedy evaluation (ε = 0.05) (last) | 7.00 ± n/a (1 seed) |" in eval_row
    report.write_markdown(summary, tmp_path / "results.md", command="cmd", figure=None)
    text = (tmp_path / "results.md").read_text()
    assert "random actions with probability ε = 0.05" in text and "deterministic policy" not in text
    greedy = report.summarize("dqn_cartpole", [run], None, "CartPole-v1")
    report.write_markdown(greedy, tmp_path / "greedy.md", command="cmd", figure=None)
    assert "| greedy evaluation (last) |" in report.summary_rows(greedy)[1]
    assert "deterministic policy" in (tmp_path / "greedy.md").read_text()


@pytest.mark.parametrize("module", ["reproduce", "reproduce_report", "compare", "published"])
def test_the_docstring_examples_of_the_scripts_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.failed == 0


def test_the_curve_is_compared_at_the_published_frames_each_seed_reached(tmp_path):
    from dataclasses import replace

    published = replace(PUBLISHED["dqn_minatar_breakout"], curve=((100, 5.0), (200, 6.0), (400, 9.0)))
    a = _fake_run(tmp_path, "a", 0, _rows((1.0, 1), (2.0, 1), (4.0, 1)), total_frames=400)
    b = _fake_run(tmp_path, "b", 1, _rows((3.0, 1)), total_frames=400)
    # Per-episode returns at their frames: the curve is the running mean of the last 100 episodes.
    c = _fake_run(tmp_path, "c", 2, _rows((1.0, 1), (2.0, 1), (4.0, 1)), total_frames=400)
    a.episodes, b.episodes = [(50, 1.0), (150, 3.0), (250, 5.0)], [(90, 3.0), (100, 7.0)]
    c.episodes = [(150, 8.0)]  # no episode finished by frame 100
    summary = report.summarize("dqn_minatar_breakout", [a, b, c], published, "MinAtar/Breakout")
    points = summary["curve_points"]
    assert [p["frames"] for p in points] == [100, 200]  # no run reached frame 400
    assert points[0]["per_seed"] == {"0": 1.0, "1": 5.0} and points[0]["mean"] == 3.0 and points[0]["published"] == 5.0
    assert points[1]["per_seed"] == {"0": 2.0, "2": 8.0}  # seed 1 stopped at frame 100
    expected = ["| 100 | 5.0 | 3.00 ± 2.00 (2 seeds) | 1.00 | 5.00 |  |", "| 200 | 6.0 | 5.00 ± 3.00 (2 seeds) | 2.00 |  | 8.00 |"]
    report.write_markdown(summary, tmp_path / "results.md", command="cmd", figure=None)
    assert all(row in (tmp_path / "results.md").read_text() for row in expected)
    # The same table from the summary as summary.json keeps it.
    report.write_json(summary, tmp_path / "summary.json")
    reloaded = json.loads((tmp_path / "summary.json").read_text())
    assert report.curve_table(reloaded)[-2:] == expected


def test_greedy_protocol_puts_the_published_figure_on_the_evaluation_row(tmp_path):
    run = _fake_run(tmp_path, "a", 0, _rows((2.0, 80), (4.0, 50)) + [{"step": 100, "eval_return": 500.0}])
    assert not run.complete  # 100 of 200 frames
    summary = report.summarize("a2c_cartpole", [run], PUBLISHED["a2c_cartpole"], "CartPole-v1")
    train_row, eval_row = report.summary_rows(summary)
    assert "3.00 ± n/a (≈) (1 seed; 1 unfinished, at 100 of 200 frames)" in train_row and train_row.endswith("| — |")
    assert "500.00 ± n/a (1 seed; 1 unfinished, at 100 of 200 frames)" in eval_row
    assert "1 run, std over episodes" in eval_row


def test_summary_json_is_strict_json_and_reads_back_as_written(tmp_path):
    """A missing number (one seed's interval, a published figure without a std) is null in
    summary.json, not a bare NaN that jq and JavaScript refuse, and the table read back is the same."""
    run = _fake_run(tmp_path, "a", 0, _rows((2.0, 80), (4.0, 50)) + [{"step": 100, "eval_return": 500.0}])
    summary = report.summarize("a2c_cartpole", [run], PUBLISHED["a2c_cartpole"], "CartPole-v1")
    assert math.isnan(summary["greedy_eval"]["iqm_ci_low"])
    report.write_json(summary, tmp_path / "summary.json")

    def refuse(constant):
        raise AssertionError(f"summary.json holds {constant}")

    strict = json.loads((tmp_path / "summary.json").read_text(), parse_constant=refuse)
    assert strict["greedy_eval"]["iqm_ci_low"] is None
    found = report.collect(tmp_path).summaries
    assert len(found) == 1 and report.summary_rows(found[0]) == report.summary_rows(summary)


def test_collect_makes_one_table_of_every_summary(tmp_path, capsys):
    for name in ("c51_acrobot", "a2c_cartpole"):
        run = _fake_run(tmp_path, name, 0, _rows((1.0, 100)) + [{"step": 200, "eval_return": 2.0}])
        (tmp_path / name / "summary.json").write_text(
            json.dumps(report.summarize(name, [run], PUBLISHED[name], PUBLISHED[name].env_id)))
    # a second reproduction of one experiment (another budget, another folder): its rows are told apart
    (tmp_path / "more").mkdir()
    again = _fake_run(tmp_path / "more", "c51_acrobot", 0, _rows((5.0, 100)) + [{"step": 200, "eval_return": 2.0}])
    (tmp_path / "more" / "c51_acrobot" / "summary.json").write_text(
        json.dumps(report.summarize("c51_acrobot", [again], PUBLISHED["c51_acrobot"], "Acrobot-v1")))
    assert reproduce.main([f"summary={tmp_path}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"| reproduction {report.TABLE_HEADER[0]}" and len(lines) == 8
    assert lines[2].startswith("| `a2c_cartpole` | a2c_cartpole |")
    assert lines[4].startswith("| `c51_acrobot` | c51_acrobot |") and "| 1.00 ± n/a" in lines[4]
    assert lines[6].startswith("| `more/c51_acrobot` | c51_acrobot |") and "| 5.00 ± n/a" in lines[6]


# -- command line --------------------------------------------------------------------------------
def test_parse_args_splits_own_keys_from_overrides(tmp_path):
    opts = reproduce.parse_args(["experiment=a2c_acrobot", "seeds=0,4", "jobs=1", f"out={tmp_path}",
                                 "aggregate_only=true", "total_frames=100"])
    assert (opts.experiment, opts.seeds, opts.jobs, opts.out) == ("a2c_acrobot", [0, 4], 1, tmp_path)
    assert opts.aggregate_only and opts.overrides == ["total_frames=100"]
    assert reproduce.parse_args(["experiment=dqn_cartpole"]).seeds == [0, 1, 2]


def test_the_default_out_is_in_the_working_directory(tmp_path, monkeypatch):
    """As train.py's and tune.py's outputs/ (it was the project's, wherever the script ran)."""
    monkeypatch.chdir(tmp_path)
    assert reproduce.parse_args(["experiment=dqn_cartpole"]).out == tmp_path.resolve() / "outputs" / "reproduce" / "dqn_cartpole"


@pytest.mark.parametrize(("argv", "match"), [
    (["experiment=nope"], r"experiment='nope' is not in conf/experiment/; available: \['a2c_acrobot'"),
    (["experiment"], "is not key=value"),
    ([], r"experiment= is required \(python scripts/reproduce.py experiment=<name> seeds=3\); available: \["),
    (["experiment=dqn_cartpole", "seed=1"], "seed is set by this script; use seeds=N"),
    (["experiment=dqn_cartpole", "hydra/launcher=joblib"], "hydra/launcher is set by this script"),
    (["experiment=dqn_cartpole", "seeds=x"], "seeds='x' must be a count"),
    (["experiment=dqn_cartpole", "seeds=0"],
     r"^seeds='0' asks for no seeds; give a count >= 1 or a list \(seeds=\[0\]\)$"),
    (["experiment=dqn_cartpole", "seeds=-2"], r"^seeds='-2' asks for no seeds; give a count >= 1"),
    (["experiment=dqn_cartpole", "seeds=[]"], r"^seeds='\[\]' lists no seed; give a count"),
    (["experiment=dqn_cartpole", "seeds=[0,1"], r"^seeds='\[0,1' must be a count"),
    (["experiment=dqn_cartpole", "seeds=0,"], r"^seeds='0,' must be a count"),
    # A list that repeats a seed was told it "must be a count ... or a list" (it is a list).
    (["experiment=dqn_cartpole", "seeds=[0, 0]"], r"^seeds='\[0, 0\]' repeats seed 0; give distinct seeds$"),
    (["experiment=dqn_cartpole", "seeds=3,1,3"], r"^seeds='3,1,3' repeats seed 3; give distinct seeds$"),
    # A huge count is refused before it is listed (2**31 seeds filled the memory), an out-of-range seed at once.
    (["experiment=dqn_cartpole", "seeds=2147483648"], "seeds='2147483648' asks for more than 65536 seeds"),
    (["experiment=dqn_cartpole", "seeds=" + "9" * 5000], "asks for more than 65536 seeds"),  # (int() takes 4300 digits)
    (["experiment=dqn_cartpole", "seeds=0,3000000000"], r"^seeds='0,3000000000': seed 3000000000 is not in "
                                                       r"\[0, 2147483647\]$"),
    (["experiment=dqn_cartpole", "seeds=[-1]"], r"seed -1 is not in \[0, 2147483647\]$"),
    # One key twice: the last one silently won.
    (["experiment=dqn_cartpole", "seeds=2", "seeds=3"],
     r"^seeds= is given twice \(seeds='2' and seeds='3'\); give it once$"),
    # num_seeds= came after the script's own num_seeds=<n> in each batched command and won: seeds trained twice.
    (["experiment=dqn_cartpole", "num_seeds=2"], r"^num_seeds is set by this script; use seeds=N "),
    (["experiment=dqn_cartpole", "+hydra.job.chdir=true"], r"^\+hydra.job.chdir is set by this script"),
    (["experiment=dqn_cartpole", "+seeds=2"], r"^\+seeds is one of reproduce.py's own keys, not a training override; "
                                              r"write seeds=<value>$"),
    # summary= beside other arguments was dropped without a word.
    (["experiment=dqn_cartpole", "summary=outputs"], r"^summary= takes no other argument"),
    (["-v"], r"^argument '-v' is not key=value; see python scripts/reproduce.py --help$"),
    (["experiment=dqn_cartpole", "jobs=\u00b2"], "must be an integer >= 1"),  # (str.isdigit took it; int() did not)
    (["experiment=dqn_cartpole", "logger=none"], "logger=none writes no metrics.csv, which the report reads"),
    (["experiment=dqn_cartpole", "jobs=0"], "jobs='0' must be an integer >= 1"),
    (["experiment=dqn_cartpole", "jobs=two"], "jobs='two' must be an integer >= 1"),
    (["experiment=dqn_cartpole", "aggregate_only=maybe"], "aggregate_only='maybe' is not a boolean"),
    # resume= passed the checks, wrote request.json and train.log, then every train.py command failed
    (["experiment=dqn_cartpole", "resume=outputs/run"],
     r"^resume=outputs/run: reproduce.py resumes the unfinished runs of out= itself: rerun the same reproduce.py "
     r"command \(to continue one run on its own: python train.py resume=outputs/run\)$"),
    # out= (empty) silently trained into the default
    (["experiment=dqn_cartpole", "out="], r"^out= is empty; give a directory, or drop out= for the default "
                                          r"\(outputs/reproduce/dqn_cartpole\)$"),
])
def test_parse_args_errors(argv, match):
    with pytest.raises(reproduce.UsageError, match=match):
        reproduce.parse_args(argv)


def test_parse_args_accepts_a_null_resume():
    assert reproduce.parse_args(["experiment=dqn_cartpole", "resume=null"]).overrides == ["resume=null"]


@pytest.mark.parametrize(("value", "seeds"), [("3", [0, 1, 2]), ("0,4,7", [0, 4, 7]), ("[0, 4, 7]", [0, 4, 7]),
                                              ("[5]", [5]), (" 2 ", [0, 1])])
def test_seeds_are_a_count_or_a_list_and_the_report_writes_them_back(value, seeds):
    assert reproduce.parse_args(["experiment=dqn_cartpole", f"seeds={value}"]).seeds == seeds
    # results.md's command asks for the same seeds (seeds=[5], not seeds=5: that is five seeds)
    assert reproduce._seeds(reproduce.seeds_argument(seeds)) == seeds
    assert reproduce.seeds_argument([5]) == "[5]"


@pytest.mark.parametrize("argv", [["--help"], ["-h"], ["experiment=dqn_cartpole", "--help"]])
def test_help_prints_the_usage(argv, capsys):
    """--help was refused as 'not key=value' (exit status 2)."""
    assert reproduce.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("Reproduce a published result")
    for key in ("experiment=", "seeds=", "jobs=", "out=", "aggregate_only=", "batched=", "summary="):
        assert key in out, key
    assert "experiments: a2c_acrobot, " in out and "dqn_cartpole" in out


def refused(argv: list[str], capsys) -> str:
    """The line ``reproduce.main(argv)`` refuses ``argv`` with: exit status 2 as train.py's, one line."""
    with pytest.raises(SystemExit) as stop:
        reproduce.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("rlkit: "), err
    return err.rstrip("\n")


@pytest.mark.parametrize(("override", "line"), [
    # train.py's lines (rlkit.cli.command_line_problem): Hydra printed 17 lines for env=Cartpole, 2 for sedes=3
    ("env=Cartpole", "rlkit: invalid config: env='Cartpole' is not a choice; valid choices: ['Acrobot', 'CartPole', "),
    ("sedes=3", "rlkit: invalid config: unknown key sedes (did you mean seeds?); reproduce.py's keys: ['experiment', "
                "'seeds', 'jobs', 'out', 'aggregate_only', 'summary', 'batched'], and the training config's: ['algo', "),
    ("total_frame=100", "rlkit: invalid config: unknown key total_frame (did you mean total_frames?); reproduce.py's "
                        "keys: ['experiment', "),
    ("algo.bogus=1", "rlkit: invalid config: unknown key algo.bogus; valid keys of algo: ['activation', "),
    ("algo.batch_size=0", "rlkit: invalid overrides ['algo.batch_size=0']: algo.batch_size=0 is invalid: expected a "
                          "positive number"),
    ("seeds=x", "rlkit: seeds='x' must be a count"),
])
def test_bad_overrides_are_refused_before_training(tmp_path, capsys, override, line):
    assert refused(["experiment=dqn_cartpole", f"out={tmp_path}", override], capsys).startswith(line)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("aggregate_only", ["false", "true"])
def test_an_out_that_is_not_a_reproduction_s_is_refused(tmp_path, capsys, aggregate_only):
    """out=<a training run> was trained (and reported) into, among the run's own files."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    line = refused(["experiment=dqn_cartpole", "seeds=1", f"out={run}", f"aggregate_only={aggregate_only}"], capsys)
    assert line == (f"rlkit: out='{run}' is not empty (checkpoints, config.yaml) and is not an output of reproduce.py "
                    "(no request.json, runs, summary.json); give a new or empty directory, or the out= of an earlier "
                    "reproduction to continue it")
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.yaml"]
    line = refused(["experiment=dqn_cartpole", "seeds=1", f"out={run / 'sub'}", f"aggregate_only={aggregate_only}"],
                   capsys)  # nor a new folder among the run's files
    assert line == (f"rlkit: out='{run / 'sub'}' is inside the run directory '{run}', among its own files; write a "
                    "reproduction outside it")
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.yaml"]
    for mark in ("request.json", "runs", "summary.json"):  # an earlier reproduction's: it continues there
        earlier = tmp_path / f"earlier_{mark}"
        earlier.mkdir()
        (earlier / mark).mkdir() if mark == "runs" else (earlier / mark).write_text("{}")
        reproduce.check_out(earlier)


def test_train_commands_sweep_new_seeds_and_resume_unfinished_runs(tmp_path):
    opts = reproduce.parse_args(["experiment=c51_cartpole", "jobs=2", f"out={tmp_path}", "total_frames=100",
                                 "batched=false"])
    resume, sweep = reproduce.train_commands(opts, [1, 2], [tmp_path / "runs" / "0_c51_CartPole_s0"])
    assert resume[-2:] == [f"resume={tmp_path}/runs/0_c51_CartPole_s0", "trainer.progress=false"]
    assert sweep[2:6] == ["-m", "experiment=c51_cartpole", "seed=1,2", f"hydra.sweep.dir='{tmp_path}/runs'"]
    assert sweep[-4:] == ["trainer.progress=false", "total_frames=100", "hydra/launcher=joblib",
                          "hydra.launcher.n_jobs=2"]
    assert "hydra/launcher=joblib" not in reproduce.train_commands(opts, [3], [])[0]
    # A sweep job's directory ("<n>_seed=<k>") resumes with its path quoted for Hydra's grammar.
    assert reproduce.train_commands(opts, [], [tmp_path / "runs" / "0_seed=0"])[0][2] == \
        f"resume='{tmp_path}/runs/0_seed=0'"


def test_train_commands_batch_consecutive_seeds_into_one_process(tmp_path):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", f"out={tmp_path}", "total_frames=100"])
    commands = reproduce.train_commands(opts, [0, 1, 2, 7], [])
    assert [c[2:5] for c in commands] == [["experiment=dqn_cartpole", "seed=0", "num_seeds=3"],
                                          ["experiment=dqn_cartpole", "seed=7", "num_seeds=1"]]
    assert commands[0][5] == f"hydra.run.dir='{tmp_path}/runs/seeds_0-2'"


def test_more_seeds_than_one_process_takes_are_split_into_processes_train_py_accepts(tmp_path):
    from rlkit.config_schema import MAX_NUM_SEEDS

    opts = reproduce.parse_args(["experiment=dqn_cartpole", f"out={tmp_path}", "total_frames=100"])
    commands = reproduce.train_commands(opts, list(range(2 * MAX_NUM_SEEDS + 1)), [])
    counts = [int(c[4].removeprefix("num_seeds=")) for c in commands]
    assert len(commands) == 3 and max(counts) <= MAX_NUM_SEEDS and sum(counts) == 2 * MAX_NUM_SEEDS + 1
    assert [c[3] for c in commands] == ["seed=0", f"seed={counts[0]}", f"seed={counts[0] + counts[1]}"]


def test_an_experiment_whose_networks_cannot_be_stacked_trains_one_process_per_seed(tmp_path):
    opts = reproduce.parse_args(["experiment=a2c_pendulum", f"out={tmp_path}", "total_frames=100"])
    assert not reproduce.batchable(opts)
    assert reproduce.train_commands(opts, [0, 1], [])[0][2] == "-m"


def test_find_runs_reads_the_seeds_of_a_multi_seed_run(tmp_path):
    for seed in (0, 1):
        (tmp_path / "seeds_0-1" / f"seed_{seed}").mkdir(parents=True)
        (tmp_path / "seeds_0-1" / f"seed_{seed}" / "config.yaml").write_text(f"seed: {seed}\nnum_seeds: 1\n")
    (tmp_path / "seeds_0-1" / "config.yaml").write_text("seed: 0\nnum_seeds: 2\n")
    assert reproduce.find_runs(tmp_path) == {0: tmp_path / "seeds_0-1" / "seed_0", 1: tmp_path / "seeds_0-1" / "seed_1"}


# -- incremental runs ----------------------------------------------------------------------------
def _write_run(opts, expected, name, seed, metrics=None, checkpoint=False):
    path = opts.out / "runs" / name
    path.mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({**expected, "seed": seed}))
    if metrics:
        (path / "metrics.csv").write_text(metrics)
    if checkpoint:
        (path / "checkpoints").mkdir()
        (path / "checkpoints" / "last.pt").write_bytes(b"")
    return path


def test_progress_eta_of_a_resumed_reproduction_counts_the_frames_of_this_start(tmp_path, monkeypatch):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=2", f"out={tmp_path}", *TINY])
    expected = reproduce.compose(opts)
    header = "step,episode_return,episodes\n"
    a = _write_run(opts, expected, "0_s0", 0, header + "400,9.0,3\n500,9.5,1\n")
    _write_run(opts, expected, "1_s1", 1, header + "200,5.0,2\n")
    clock = [1000.0]
    monkeypatch.setattr(reproduce.time, "monotonic", lambda: clock[0])
    progress = reproduce.Progress(opts, 1000)
    assert progress.baseline == 700
    # Seed 0 resumes from its checkpoint at frame 400: its metrics are cut back there first.
    (a / "metrics.csv").write_text(header + "400,9.0,3\n")
    clock[0] = 1010.0
    assert progress.line().endswith("| 00:10<--:--") and progress.baseline == 600
    (a / "metrics.csv").write_text(header + "400,9.0,3\n600,11.0,2\n")  # 200 frames in 100 s
    clock[0] = 1100.0
    # 1200 frames left at 2 frames/s: 10 minutes.
    assert progress.line() == "[dqn_cartpole]  40.0% | s0  60% ret 11 | s1  20% ret 5 | 01:40<10:00"


def test_the_progress_line_counts_the_seeds_of_a_large_reproduction(tmp_path):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", f"seeds={reproduce.PROGRESS_SEEDS_SHOWN + 1}",
                                 f"out={tmp_path}", *TINY])
    expected = reproduce.compose(opts)
    header = "step,episode_return,episodes\n"
    _write_run(opts, expected, "0_s0", 0, header + "1000,9.0,3\n")
    _write_run(opts, expected, "1_s1", 1, header + "200,5.0,2\n")
    _write_run(opts, expected, "2_s2", 2)  # started, no row yet
    line = reproduce.Progress(opts, 1000).line()
    assert f"| {reproduce.PROGRESS_SEEDS_SHOWN + 1} seeds: 1 done, 2 training, 10 queued |" in line
    assert "s0" not in line and line.startswith("[dqn_cartpole]   9.2% |")


def test_plan_keeps_complete_runs_resumes_checkpointed_ones_and_restarts_the_rest(tmp_path):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=4", f"out={tmp_path}", *TINY])
    expected = reproduce.compose(opts)
    _write_run(opts, expected, "0_s0", 0, "step,episode_return,episodes,eval_return\n1000,9.0,3,9.5\n")
    part = _write_run(opts, expected, "1_s1", 1, "step,episode_return,episodes\n500,9.0,3\n", checkpoint=True)
    _write_run(opts, expected, "2_s2", 2)  # died before its first checkpoint
    assert reproduce.plan(opts, expected) == ([2, 3], [part], [0])
    assert not (tmp_path / "runs" / "2_s2").exists()
    assert [p.name.split("-")[0] for p in (tmp_path / "stale").iterdir()] == ["2_s2"]


def test_a_run_stopped_early_at_its_target_is_complete(tmp_path):
    """With trainer.early_stop, a run that closed with an evaluation at the target is done: resuming it
    would train it on past where it stopped (and each rerun of reproduce.py a little further)."""
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=2", f"out={tmp_path}", *TINY,
                                 "trainer.early_stop=true", "env.target_return=9"])
    expected = reproduce.compose(opts)
    _write_run(opts, expected, "0_s0", 0, "step,episode_return,episodes,eval_return\n500,9.0,3,9.5\n", checkpoint=True)
    below = _write_run(opts, expected, "1_s1", 1, "step,episode_return,episodes,eval_return\n500,9.0,3,8.5\n",
                       checkpoint=True)
    assert reproduce.plan(opts, expected) == ([], [below], [0])


def test_a_run_trained_on_a_gpu_is_read_where_there_is_none(tmp_path):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=1", f"out={tmp_path}", *TINY, "trainer.early_stop=true"])
    expected = {**reproduce.compose(opts), "device": "cuda"}
    path = _write_run(opts, expected, "0_s0", 0, "step,episode_return,episodes,eval_return\n1000,9.0,3,9.5\n")
    assert report.load_run(path).complete


def test_plan_refuses_runs_trained_with_another_config(tmp_path):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=1", f"out={tmp_path}", *TINY])
    other = reproduce.compose(reproduce.parse_args(["experiment=dqn_cartpole", *TINY[1:], "total_frames=2000"]))
    _write_run(opts, other, "0_s0", 0)
    with pytest.raises(reproduce.UsageError,
                       match=r"0_s0 was trained with a different config \(differs at \['total_frames'\]"):
        reproduce.plan(opts, reproduce.compose(opts))


def test_plan_refuses_a_run_that_a_process_still_trains_and_moves_nothing(tmp_path):
    """reproduce.py killed with kill -9 leaves its train.py children running: a rerun names the process
    that holds a run before anything is moved or started (it failed later with "training failed")."""
    from rlkit.rundir import RunDir

    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=2", f"out={tmp_path}", *TINY])
    expected = reproduce.compose(opts)
    _write_run(opts, expected, "0_s0", 0)  # no checkpoint yet: would be moved to stale/
    busy = _write_run(opts, expected, "1_s1", 1, "step,episode_return,episodes\n500,9.0,3\n", checkpoint=True)
    with RunDir.claim(busy, fresh=False):
        before = tree(tmp_path)
        with pytest.raises(reproduce.UsageError, match=rf"^{busy} is in use by pid {os.getpid()} on .*: its training "
                                                       r"still runs"):
            reproduce.plan(opts, expected)
        assert tree(tmp_path) == before


def test_plan_refuses_a_run_still_starting_that_a_process_holds(tmp_path):
    """A multi-seed run claimed by its train.py but not yet committed (no config.yaml: find_runs does not
    see it) is refused too: a rerun would plan a second train.py into the same held folder."""
    from rlkit.rundir import RunDir

    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=2", f"out={tmp_path}", *TINY])
    with RunDir.claim(tmp_path / "runs" / "seeds_0-1", fresh=True):
        with pytest.raises(reproduce.UsageError, match=r"seeds_0-1 is in use by pid \d+ on .*: its training still runs"):
            reproduce.plan(opts, reproduce.compose(opts))


def tree(root):
    """Every path under ``root`` with its modification time (what a refusal must leave as it was)."""
    return {p: p.stat().st_mtime_ns for p in [root, *root.rglob("*")]}


def test_a_rerun_with_another_budget_is_refused_in_one_line_before_anything_is_written(tmp_path, capsys):
    """It printed the path and the differing keys without the rlkit: prefix, exit status 1; and a seed
    before it that had died without a checkpoint was already moved to stale/."""
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=2", f"out={tmp_path}", *TINY])
    _write_run(opts, reproduce.compose(opts), "0_s0", 0)  # (no checkpoint: moved aside when the plan goes ahead)
    other = reproduce.compose(reproduce.parse_args(["experiment=dqn_cartpole", *TINY[1:], "total_frames=2000"]))
    _write_run(opts, {**other, "seed": 1}, "1_s1", 1)
    before = tree(tmp_path)
    line = refused(["experiment=dqn_cartpole", "seeds=2", f"out={tmp_path}", *TINY], capsys)
    assert line == (f"rlkit: {tmp_path / 'runs' / '1_s1'} was trained with a different config (differs at "
                    "['total_frames']); rerun with the overrides it was trained with, use another out=, or remove "
                    "that run")
    assert tree(tmp_path) == before


def test_runs_that_cannot_be_read_are_refused_in_one_line(tmp_path, capsys):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=1", f"out={tmp_path}", *TINY])
    argv = ["experiment=dqn_cartpole", "seeds=1", f"out={tmp_path}", *TINY]
    for name in ("0_s0", "1_s0"):  # (a traceback-free SystemExit, status 1, before)
        _write_run(opts, {"total_frames": 1}, name, 0)
    with pytest.raises(reproduce.UsageError, match="two runs with seed 0 in .*: 0_s0 and 1_s0; remove one"):
        reproduce.find_runs(tmp_path / "runs")
    assert refused(argv, capsys).startswith("rlkit: two runs with seed 0 in ")
    (tmp_path / "runs" / "1_s0" / "config.yaml").write_text("seed: [unclosed\n")  # (a yaml traceback)
    assert refused(argv, capsys).startswith(f"rlkit: {tmp_path / 'runs' / '1_s0' / 'config.yaml'} is not a run's "
                                            "config (ParserError: ")
    (tmp_path / "runs" / "1_s0" / "config.yaml").write_text("- a list\n")
    assert refused(argv, capsys).startswith(f"rlkit: {tmp_path / 'runs' / '1_s0' / 'config.yaml'} is not a run's "
                                            "config (AttributeError: ")
    (tmp_path / "runs" / "1_s0" / "config.yaml").unlink()
    (tmp_path / "runs" / "1_s0").rmdir()
    (tmp_path / "request.json").write_text("{not json")  # aggregate_only reads it (a JSONDecodeError traceback)
    assert refused([*argv, "aggregate_only=true"], capsys).startswith(
        f"rlkit: {tmp_path / 'request.json'} cannot be read (Expecting property name")


def test_failed_training_shows_the_log_tail(tmp_path):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", f"out={tmp_path}"])
    command = [sys.executable, "-c", "print('boom: bad things'); raise SystemExit(3)"]
    with pytest.raises(SystemExit, match=r"(?s)training failed \(exit 3\).*boom: bad things"):
        reproduce.run_training(opts, [command], total_frames=10, interval=0.05)


def test_commands_run_up_to_jobs_at_a_time(tmp_path):
    """Two resumed runs and a sweep of two jobs with jobs=2: the resumes together, then the sweep."""
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "jobs=2", f"out={tmp_path}"])
    stamp = "import sys, time; open(sys.argv[1], 'a').write(f'{time.monotonic()}\\n'); time.sleep(0.5)"
    commands = [[sys.executable, "-c", stamp, str(tmp_path / name), *extra]
                for name, extra in (("a", []), ("b", []), ("c", ["hydra.launcher.n_jobs=2"]))]
    reproduce.run_training(opts, commands, total_frames=10, interval=0.05)
    a, b, c = (float((tmp_path / name).read_text()) for name in "abc")
    assert abs(a - b) < 0.4 and c - max(a, b) >= 0.45  # a and b at once; c (two slots) once both ended


def test_a_failure_lets_the_running_commands_end_and_starts_no_more(tmp_path):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "jobs=2", f"out={tmp_path}"])
    slow = [sys.executable, "-c", f"import time; time.sleep(0.5); open({str(tmp_path / 'slow')!r}, 'w')"]
    never = [sys.executable, "-c", f"open({str(tmp_path / 'never')!r}, 'w')"]
    fail = [sys.executable, "-c", "raise SystemExit(4)"]
    with pytest.raises(SystemExit, match=r"training failed \(exit 4\)"):
        reproduce.run_training(opts, [fail, slow, never], total_frames=10, interval=0.05)
    assert (tmp_path / "slow").exists() and not (tmp_path / "never").exists()


def test_aggregate_only_without_runs_says_so(tmp_path, capsys):
    """A refusal as the others (it was a line without rlkit:, exit status 1)."""
    assert refused(["experiment=dqn_cartpole", "seeds=2", f"out={tmp_path}", "aggregate_only=true"], capsys) == \
        f"rlkit: no run for seeds [0, 1] in {tmp_path / 'runs'}; run without aggregate_only=true"
    # nothing trained: the default 3
    assert refused(["experiment=dqn_cartpole", f"out={tmp_path}", "aggregate_only=true"], capsys).startswith(
        "rlkit: no run for seeds [0, 1, 2] in ")
    assert list(tmp_path.iterdir()) == []


# A command that stands for train.py: it sends its parent the signal (as Ctrl-C or a scheduler would),
# then waits for the parent to pass it on; it records the signal it got and exits as train.py does.
SIGNALLER = """import os, signal, sys, time
def stop(signum, frame):
    open(sys.argv[1], "w").write(signal.Signals(signum).name)
    sys.exit(128 + signum)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
os.kill(os.getppid(), int(sys.argv[2]))
time.sleep(10)
"""


# A command that stands for ``train.py -m hydra/launcher=joblib``: it starts a worker (in its process
# group, as loky's are), then sends its parent the signal (as Ctrl-C or a scheduler would) and waits
# without a handler: the signal ends it at once, as Hydra's process. The worker stands for a sweep's
# job: it holds its run's lock while it trains; on the signal it checkpoints (half a second), records
# the signal it got and exits as train.py does. Its ``mode``: "exit"; "idle": its job ends there but
# it lives on, as a joblib worker waits for more work (its run released, the signal's default action
# back); a pid: it sends that process the signal again (a second Ctrl-C) and does not end. Without a
# signal, it ends in 30 s, writing "no signal".
SWEEP = """import os, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", *sys.argv[1:]], stdout=subprocess.PIPE)
worker.stdout.readline()  # (its handlers are set)
os.kill(os.getppid(), int(sys.argv[3]))
time.sleep(30)
"""
WORKER = """import fcntl, os, signal, sys, time
got, mode, run = sys.argv[1], sys.argv[3], sys.argv[4]
lock = open(os.path.join(run, ".rlkit.lock"), "w")
fcntl.flock(lock, fcntl.LOCK_EX)
def stop(signum, frame):
    if mode not in ("exit", "idle"):
        os.kill(int(mode), signum)
        time.sleep(30)
    time.sleep(0.5)
    open(got, "w").write(signal.Signals(signum).name)
    if mode == "idle":
        signal.signal(signum, signal.SIG_DFL)
        lock.close()
        time.sleep(30)
        open(got, "w").write("left idle")
    sys.exit(128 + signum)
signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)
open(got + ".pid.tmp", "w").write(str(os.getpid()))
os.replace(got + ".pid.tmp", got + ".pid")  # (whole once it exists: a signal may come right after)
print(flush=True)
time.sleep(30)
open(got, "w").write("no signal")
"""


def _running(pid):
    """Whether process ``pid`` runs (a zombie, an orphan an init has not reaped yet, does not)."""
    if Path("/proc/self/stat").exists():
        try:
            return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _interrupt_a_sweep(tmp_path, signum, mode="exit"):
    """Runs :data:`SWEEP` through run_training; returns the :class:`Interrupted` it raised and whether
    the worker still runs once it returned."""
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=1", f"out={tmp_path}"])
    got, run = tmp_path / "got", tmp_path / "runs" / "0_seed=0"
    run.mkdir(parents=True)
    command = [sys.executable, "-c", SWEEP, WORKER, str(got), str(int(signum)), mode, str(run)]
    handlers = {s: signal.getsignal(s) for s in reproduce.STOP_SIGNALS}
    try:
        with pytest.raises(reproduce.Interrupted) as stop:
            reproduce.run_training(opts, [command], total_frames=10, interval=5.0)
        return stop.value, _running(int(Path(f"{got}.pid").read_text()))
    finally:
        if Path(f"{got}.pid").exists() and _running(pid := int(Path(f"{got}.pid").read_text())):
            os.kill(pid, signal.SIGKILL)  # (a failed test leaves no process)
        assert {s: signal.getsignal(s) for s in reproduce.STOP_SIGNALS} == handlers  # (restored)


@pytest.mark.parametrize(("signum", "passed"), [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM"),
                                                (signal.SIGHUP, "SIGTERM")], ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_an_interrupt_is_passed_on_to_the_runs_and_their_processes_and_waits_for_them(tmp_path, signum, passed):
    """SIGINT or SIGTERM to reproduce.py alone (a kill, a scheduler) reaches the commands training and the
    processes they started (a joblib sweep's workers), which checkpoint and stop, before it ends: they were
    left training on without it (a sweep's workers even when it was passed on: Hydra's process ended at
    once and its workers trained on, orphans that never checkpointed). A hangup is passed on as SIGTERM."""
    stop, running = _interrupt_a_sweep(tmp_path, signum)
    assert stop.signum == signum
    assert (tmp_path / "got").read_text() == passed  # passed on to the worker,
    assert not running  # and waited for


def test_a_process_left_idle_once_its_run_is_released_is_ended(tmp_path):
    """A joblib worker outlives its job, waiting (5 minutes) for work from Hydra's process, which has
    ended: once no run is held, what is left of the command's group is ended, not waited for."""
    stop, running = _interrupt_a_sweep(tmp_path, signal.SIGTERM, "idle")
    assert stop.signum == signal.SIGTERM
    assert (tmp_path / "got").read_text() == "SIGTERM" and not running


def test_a_second_signal_kills_the_runs_and_their_processes(tmp_path):
    """A second signal while the runs checkpoint kills their process groups: the worker, which sends it
    and would not end, is gone too when reproduce.py ends."""
    stop, running = _interrupt_a_sweep(tmp_path, signal.SIGTERM, str(os.getpid()))
    assert stop.signum == signal.SIGTERM
    assert not running and not (tmp_path / "got").exists()


def test_a_signal_while_a_command_starts_is_passed_on_to_it(tmp_path, monkeypatch):
    """A signal that arrives while a command starts (before it is among those running) is passed on to
    it too, once it is: in a session of its own, it does not get the terminal's."""
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=1", f"out={tmp_path}"])
    got, run = tmp_path / "got", tmp_path / "runs" / "0_seed=0"
    run.mkdir(parents=True)
    popen = subprocess.Popen

    def starting(*args, **kwargs):
        proc = popen(*args, **kwargs)
        deadline = time.monotonic() + 30
        while not Path(f"{got}.pid").exists() and time.monotonic() < deadline:  # (its handlers are set)
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)
        return proc

    monkeypatch.setattr(reproduce.subprocess, "Popen", starting)
    try:
        with pytest.raises(reproduce.Interrupted) as stop:
            reproduce.run_training(opts, [[sys.executable, "-c", WORKER, str(got), "15", "exit", str(run)]],
                                   total_frames=10, interval=5.0)
        assert stop.value.signum == signal.SIGTERM and got.read_text() == "SIGTERM"
    finally:
        if Path(f"{got}.pid").exists() and _running(pid := int(Path(f"{got}.pid").read_text())):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_ends_in_one_line_with_status_130(tmp_path, capsys, monkeypatch):
    """Ctrl-C printed a KeyboardInterrupt traceback from time.sleep; now one line says what is kept."""
    out = tmp_path / "rep"
    monkeypatch.setattr(reproduce, "train_commands", lambda *_: [
        [sys.executable, "-c", SIGNALLER, str(tmp_path / "got"), str(int(signal.SIGINT))]])
    with pytest.raises(SystemExit) as stop:
        reproduce.main(["experiment=dqn_cartpole", "seeds=1", f"out={out}", *TINY])
    assert stop.value.code == 130 and (tmp_path / "got").read_text() == "SIGINT"
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (f"reproduce.py interrupted; the runs in {out / 'runs'} were stopped; rerun the "
                                    "same command to resume them from their checkpoints (complete runs are not "
                                    "retrained)")
    assert json.loads((out / "request.json").read_text())["seeds"] == [0]  # (what the rerun continues)

    def interrupt(_options):
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "compose", interrupt)  # before anything is written
    with pytest.raises(SystemExit) as stop:
        reproduce.main(["experiment=dqn_cartpole", "seeds=1", f"out={tmp_path / 'new'}"])
    assert stop.value.code == 130
    assert capsys.readouterr().err == "reproduce.py interrupted; nothing was written\n"
    assert not (tmp_path / "new").exists()


# -- end to end ----------------------------------------------------------------------------------
def test_short_reproduction_end_to_end_then_aggregate_only_does_not_retrain(tmp_path, capsys):
    out = tmp_path / "rep"
    assert reproduce.main(["experiment=dqn_cartpole", "seeds=2", "jobs=1", f"out={out}", *TINY]) == 0
    captured = capsys.readouterr()
    assert "[dqn_cartpole]" in captured.err and "s1 100%" in captured.err  # progress lines
    assert "| dqn_cartpole | CartPole-v1 | last 100 training episodes |" in captured.out
    for name in ("results.md", "summary.json", "dqn_cartpole.png", "train.log", "request.json"):
        assert (out / name).is_file(), name
    assert (out / "dqn_cartpole.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1] and all(s["complete"] and s["frames"] == 1000 for s in summary["per_seed"])
    for seed in summary["per_seed"]:  # exact: the mean of the last 100 rows of the run's episodes.csv
        tail = [r["return"] for r in read_episodes(seed["path"])[-100:]]
        assert seed["last100_exact"] and seed["last100"] == pytest.approx(sum(tail) / len(tail))
    text = (out / "results.md").read_text()
    assert "488.69 ± 16.11" in text and "![learning curves](dqn_cartpole.png)" in text
    assert "trainer.eval_episodes=2" in text  # the regenerate command keeps the overrides
    commit = reproduce.git_commit()  # this checkout's commit, recorded when the runs were trained
    assert summary["commits"] == {"0": [commit or "unknown"], "1": [commit or "unknown"]}
    assert f"rlkit commit `{commit or 'unknown'}`" in text  # (unknown: not a git checkout)

    runs = sorted([*(out / "runs").glob("*/metrics.csv"), *(out / "runs").glob("*/seed_*/metrics.csv")])  # batched: seeds_0-1/seed_<k>
    assert len(runs) == 2
    before = {p: p.stat().st_mtime_ns for p in [*runs, out / "train.log"]}
    assert reproduce.main(["experiment=dqn_cartpole", "seeds=2", f"out={out}", "aggregate_only=true"]) == 0
    # without seeds=: the seeds it trained (request.json), not the default 3
    assert json.loads((out / "request.json").read_text())["seeds"] == [0, 1]
    assert reproduce.main(["experiment=dqn_cartpole", f"out={out}", "aggregate_only=true"]) == 0
    assert json.loads((out / "summary.json").read_text())["seeds"] == [0, 1]
    assert reproduce.main(["experiment=dqn_cartpole", "seeds=2", f"out={out}", *TINY]) == 0
    assert "seeds [0, 1]: complete runs found, not retrained" in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert "trainer.eval_episodes=2" in (out / "results.md").read_text()


def test_each_seed_keeps_the_commits_it_was_trained_with(tmp_path, capsys, monkeypatch):
    """Adding seeds rewrote request.json's one commit: the seeds trained before were reported as
    trained by the new checkout. A report of fewer seeds than were trained says so."""
    out = tmp_path / "rep"
    monkeypatch.setattr(reproduce, "git_commit", lambda: "aaa")
    assert reproduce.main(["experiment=dqn_cartpole", "seeds=1", "jobs=1", f"out={out}", *TINY]) == 0
    monkeypatch.setattr(reproduce, "git_commit", lambda: "bbb")
    assert reproduce.main(["experiment=dqn_cartpole", "seeds=2", "jobs=1", f"out={out}", *TINY]) == 0
    assert json.loads((out / "request.json").read_text())["commits"] == {"0": ["aaa"], "1": ["bbb"]}
    assert "- Trained with rlkit commits: seed 0 `aaa`; seed 1 `bbb`." in (out / "results.md").read_text()
    capsys.readouterr()
    assert reproduce.main(["experiment=dqn_cartpole", "seeds=[1]", f"out={out}", "aggregate_only=true"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {out} also holds runs of seeds [0], which this report (seeds=[1]) leaves out" in err
    text = (out / "results.md").read_text()
    assert "The runs of seeds [0] in this reproduction's folder are not in this report" in text
    assert "- Trained with rlkit commit `bbb`." in text  # (the one seed reported)


def test_files_written_before_keep_their_meaning(tmp_path):
    """A summary.json aggregated before held a 3-seed 'interval' (the seeds' range) and a 1-seed std
    of 0; a request.json from before it named its seeds held one commit: reports read from them now
    show neither and keep the commit."""
    old_three = {"mean": 10.07, "std": 0.93, "iqm": 10.07, "iqm_ci_low": 9.05, "iqm_ci_high": 11.30, "seeds": 3}
    assert report.interval(old_three) == "[n/a: 3 seeds]" and report.pm_seeds(old_three) == "10.07 ± 0.93"
    old_one = {"mean": 9.82, "std": 0.0, "iqm": 9.82, "iqm_ci_low": math.nan, "iqm_ci_high": math.nan, "seeds": 1}
    assert report.pm_seeds(old_one) == "9.82 ± n/a"
    assert reproduce.request_commits({"experiment": "dqn_minatar_breakout", "overrides": [], "commit": "f7b6"},
                                     [0, 1, 2]) == {"0": ["f7b6"], "1": ["f7b6"], "2": ["f7b6"]}


def test_the_regenerate_command_keeps_how_the_seeds_trained(tmp_path):
    """batched=false trains another way (each seed's ordinary run) and gives other numbers than the
    batched default: the command a report gives to regenerate it must say so."""
    (tmp_path / "runs").mkdir()
    for seed in (0, 1):
        _fake_run(tmp_path / "runs", f"{seed}_seed={seed}", seed, _rows((1.0, 100)) + [{"step": 200, "eval_return": 2.0}])
    expected = {"env": {"suite": "gym", "id": "CartPole-v1", "game": None, "options": {}},
                "trainer": {"eval_epsilon": 0.0}}

    def command(*args: str) -> str:
        reproduce.aggregate(reproduce.parse_args(["experiment=dqn_cartpole", f"out={tmp_path}", *args]), expected)
        return (tmp_path / "results.md").read_text().split("```bash\n")[1].split("\n")[0]

    assert f"seeds=2 batched=false out={tmp_path} total_frames=200" in command("seeds=2", "batched=false",
                                                                                "total_frames=200")
    assert f"seeds=2 jobs=2 out={tmp_path} total_frames=200" in command("seeds=2", "jobs=2", "total_frames=200")
    assert f"seeds=2 out={tmp_path} total_frames=200" in command("seeds=2", "total_frames=200")
    trained = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=2", "batched=false", f"out={tmp_path}",
                                    "total_frames=200"])
    (tmp_path / "request.json").write_text(json.dumps(reproduce.training_request(trained, [0, 1], {})))
    assert f"seeds=2 batched=false out={tmp_path} total_frames=200" in command("seeds=2", "aggregate_only=true")


def test_jobs_splits_batched_seeds_into_that_many_processes(tmp_path):
    """jobs= was ignored by batched training: seeds=3 jobs=2 trained in one process on one core."""
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=3", "jobs=2", f"out={tmp_path}"])
    assert [c[3:5] for c in reproduce.train_commands(opts, [0, 1, 2], [])] == [["seed=0", "num_seeds=2"],
                                                                                ["seed=2", "num_seeds=1"]]
    default = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=3", f"out={tmp_path}"])
    assert [c[3:5] for c in reproduce.train_commands(default, [0, 1, 2], [])] == [["seed=0", "num_seeds=3"]]


def test_summary_of_a_directory_without_summaries_points_to_compare(tmp_path, capsys):
    assert refused([f"summary={tmp_path}"], capsys).startswith(f"rlkit: no summary.json under {tmp_path} (not a "
                                                                "reproduce.py output); to compare the runs of a sweep")
    assert refused(["summary="], capsys) == ("rlkit: summary= is empty; give the directory to look for reproductions "
                                             "(summary.json) under")


def test_env_name_of_a_suite_is_its_env_id():
    assert reproduce.env_name({"suite": "atari", "id": None, "game": "Pong", "options": {}}) == "ALE/Pong-v5"
    assert reproduce.env_name({"suite": "gym", "id": "Acrobot-v1", "game": None, "options": {}}) == "Acrobot-v1"


def test_the_published_figure_is_read_at_the_runs_budget(tmp_path):
    """Runs trained to a shorter budget than the published figure's are compared with the published
    curve there, or told apart from it where the curve has no point at that budget."""
    from dataclasses import replace

    run = _fake_run(tmp_path, "a", 0, _rows((3.0, 100)) + [{"step": 200, "eval_return": 9.0}], total_frames=200)
    published = replace(PUBLISHED["dqn_minatar_breakout"], curve=((100, 5.0), (200, 6.0), (400, 9.0)), frames=400,
                        mean=9.0)
    train_row, _ = report.summary_rows(report.summarize("dqn_minatar_breakout", [run], published, "MinAtar/Breakout"))
    assert "| 6.00 (std not published) (" in train_row and "30 runs, its curve at 200 frames)" in train_row
    no_point = replace(published, curve=((100, 5.0), (400, 9.0)))
    train_row, _ = report.summary_rows(report.summarize("dqn_minatar_breakout", [run], no_point, "MinAtar/Breakout"))
    assert "| 9.00 (std not published) (" in train_row and "at 400 frames; these runs train 200)" in train_row


def test_a_directory_that_is_not_a_run_is_one_line(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.yaml").write_text("")
    with pytest.raises(SystemExit, match=r"bad: config.yaml is not a run's config \(no seed or total_frames\)"):
        report.load_run(bad)
    (bad / "config.yaml").write_text("seed: [unclosed\n")
    with pytest.raises(SystemExit, match=r"bad: config.yaml cannot be read: "):
        report.load_run(bad)


def test_rows_of_runs_short_of_their_budget_say_so_with_the_frames_reached(tmp_path):
    """A report refreshed while the runs train compares them with the published figure at the full
    budget: the rlkit cell names the unfinished runs and how far they got."""
    a = _fake_run(tmp_path, "a", 0, _rows((2.0, 80)), total_frames=500)  # (rows every 100 frames)
    b = _fake_run(tmp_path, "b", 1, _rows((3.0, 100), (3.0, 160), (3.0, 10)), total_frames=500)
    c = _fake_run(tmp_path, "c", 2, _rows(*[(4.0, 100)] * 5) + [{"step": 500, "eval_return": 9.0}], total_frames=500)
    assert not a.complete and not b.complete and c.complete
    summary = report.summarize("dqn_cartpole", [a, b, c], None, "CartPole-v1")
    train_row, eval_row = report.summary_rows(summary)
    assert "(3 seeds; 2 unfinished, at 100–300 of 500 frames)" in train_row
    assert "(1 of 3 seeds; 2 unfinished, at 100–300 of 500 frames)" in eval_row  # (the others: no evaluation yet)
    assert report.seeds_label({"seeds": 2}, 2, [{"frames": 3_000_000, "complete": False},
                                                {"frames": 5_000_000, "complete": True}], 5_000_000) == \
        "(2 seeds; 1 unfinished, at 3,000,000 of 5,000,000 frames)"


def test_an_out_that_cannot_be_a_directory_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "f").write_text("keep")
    assert refused(["experiment=dqn_cartpole", "seeds=1", f"out={tmp_path / 'f'}"], capsys) == \
        f"rlkit: out= '{tmp_path / 'f'}' is a file; give a directory"
    assert refused(["experiment=dqn_cartpole", "seeds=1", f"out={tmp_path / 'f' / 'runs'}"], capsys) == \
        f"rlkit: out= '{tmp_path / 'f' / 'runs'}' cannot be created: Not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_an_env_that_cannot_step_is_refused_not_trained_per_seed(tmp_path, capsys):
    """batchable() took any refusal of a 2-seed start for 'not stackable' and launched one failing
    training per seed; what fails for one seed too is refused before anything is written."""
    out = tmp_path / "rep"
    line = refused(["experiment=dqn_cartpole", "seeds=2", f"out={out}", "env=gym",
                    "env.id=corridor_env:BrokenStepCorridor-v0", *TINY], capsys)
    assert line == ("rlkit: env 'corridor_env:BrokenStepCorridor-v0' failed in its first step: RuntimeError: physics "
                    "exploded")
    assert not (out / "request.json").exists() and not (out / "runs").exists()


# -- seeds of a multi-seed run dropped for non-finite values --------------------------------------
def _drop(path: Path, seed: int, frames: int) -> None:
    """What the multi-seed trainer writes into a dropped seed's directory (rlkit.trainers.multiseed)."""
    (path / "end.json").write_text(json.dumps({"seed": seed, "status": "dropped", "reason": "non_finite",
                                               "frames": frames, "message": f"dropped at frame {frames:,}: ..."}))


def test_a_dropped_seed_is_labelled_so_and_left_out_of_the_aggregates_with_a_count(tmp_path):
    """It was labelled "unfinished, at 1,000 of 1,500 frames" and averaged in."""
    evals = [{"step": 1500, "eval_return": 9.0, "eval_return_std": 0.0}]
    a = _fake_run(tmp_path, "a", 0, [{"step": 1000, "episode_return": 20.0, "episodes": 10.0}] + evals,
                  total_frames=1500)
    b_path = tmp_path / "b"
    _fake_run(tmp_path, "b", 1, [{"step": 1000, "episode_return": 90.0, "episodes": 10.0, "eval_return": 500.0}],
              total_frames=1500)
    _drop(b_path, 1, 1010)
    b = report.load_run(b_path)
    assert a.complete and a.label == "complete"
    assert b.dropped and b.ended and not b.complete and b.label == "dropped (non-finite)"
    summary = report.summarize("dqn_cartpole", [a, b], None, "CartPole-v1")
    assert summary["train_last100"]["mean"] == 20.0 and summary["train_last100"]["seeds"] == 1
    assert summary["greedy_eval"]["mean"] == 9.0 and summary["greedy_eval"]["seeds"] == 1
    dropped = summary["per_seed"][1]
    assert (dropped["dropped"], dropped["end"], dropped["frames"], dropped["last100"]) == (
        True, "dropped (non-finite)", 1010, 90.0)  # (listed with its own figures)
    train_row, eval_row = report.summary_rows(summary)
    assert "20.00 ± n/a (1 of 2 seeds; 1 dropped (non-finite), at 1,010 frames)" in train_row
    assert "unfinished" not in train_row + eval_row
    report.write_markdown(summary, tmp_path / "results.md", command="cmd", figure=None)
    text = (tmp_path / "results.md").read_text()
    assert "| 1 | 1,010, dropped (non-finite) | 90.00 |" in text
    assert "- Seed 1 was dropped for non-finite values (`trainer.drop_non_finite_seeds`): listed above" in text


def test_a_seed_end_record_that_cannot_be_read_is_one_line(tmp_path):
    _fake_run(tmp_path, "a", 0, _rows((2.0, 1)))
    (tmp_path / "a" / "end.json").write_text("not json")
    with pytest.raises(SystemExit, match=r"end.json is not a seed's end record"):
        report.load_run(tmp_path / "a")


def _write_group(opts, expected, metrics: dict[int, str], dropped: dict[int, int]) -> Path:
    group = opts.out / "runs" / "seeds_0-1"
    (group / "checkpoints").mkdir(parents=True)
    (group / "checkpoints" / "last.pt").write_bytes(b"")
    (group / "config.yaml").write_text(yaml.safe_dump({**expected, "seed": 0, "num_seeds": 2}))
    for seed, rows in metrics.items():
        (group / f"seed_{seed}").mkdir()
        (group / f"seed_{seed}" / "config.yaml").write_text(yaml.safe_dump({**expected, "seed": seed, "num_seeds": 1}))
        (group / f"seed_{seed}" / "metrics.csv").write_text(rows)
    for seed, frames in dropped.items():
        _drop(group / f"seed_{seed}", seed, frames)
    return group


def test_a_group_whose_seeds_are_complete_or_dropped_is_not_resumed(tmp_path, capsys):
    """Every rerun resumed the group, which train.py refused ("nothing to resume", exit 2)."""
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=2", f"out={tmp_path}", *TINY])
    expected = reproduce.compose(opts)
    head = "step,episode_return,episodes,eval_return\n"
    _write_group(opts, expected, {0: head + "1000,9.0,3,9.5\n", 1: head + "500,9.0,3,\n"}, {1: 510})
    assert reproduce.plan(opts, expected) == ([], [], [0, 1])
    assert reproduce.dropped_seeds(opts, [0, 1]) == [1]


def test_a_group_with_an_unfinished_seed_is_resumed_beside_its_dropped_one(tmp_path):
    opts = reproduce.parse_args(["experiment=dqn_cartpole", "seeds=2", f"out={tmp_path}", *TINY])
    expected = reproduce.compose(opts)
    head = "step,episode_return,episodes,eval_return\n"
    group = _write_group(opts, expected, {0: head + "600,9.0,3,\n", 1: head + "500,9.0,3,\n"}, {1: 510})
    assert reproduce.plan(opts, expected) == ([], [group], [1])
