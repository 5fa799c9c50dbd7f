"""scripts/bench_seeds.py's in-process views: the phase timers report and go away, the env-step table."""
from __future__ import annotations

import subprocess
import sys

import pytest

import bench_seeds
from rlkit.trainers.multiseed import MultiSeedTrainer
from rlkit.trainers.trainer import Trainer


def test_loop_timings_time_the_phases_and_restore_the_methods():
    before = (Trainer._optimise, MultiSeedTrainer._optimise)
    tiny = ["algo.learning_starts=100", "algo.eps_annealing_frames=200", "algo.buffer_size=500"]
    ordinary = bench_seeds.loop_timings("dqn_cartpole", 400, 1, tiny)
    batched = bench_seeds.loop_timings("dqn_cartpole", 400, 2, tiny)
    assert (Trainer._optimise, MultiSeedTrainer._optimise) == before
    # an update every 10 frames once 100 frames are in: frames 100, 110, ..., 400
    assert ordinary["update"][1] == batched["update"][1] == 31
    assert batched["collect"][1] == 40 and "collect" not in ordinary  # (the ordinary collector is not wrapped)
    assert all(seconds > 0 for seconds, _ in (*ordinary.values(), *batched.values()))
    assert ordinary["loop"][0] > ordinary["update"][0]


def test_env_steps_prints_one_row_per_n(capsys):
    bench_seeds.print_env_steps([1, 3], steps=50)
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("| N | raw gymnasium") and [r.split("|")[1].strip() for r in rows[2:]] == ["1", "3"]


def test_counts_below_one_are_refused_by_the_argument_parser(capsys, monkeypatch, tmp_path):
    import pytest

    for args in (["--frames", "-5"], ["--jobs", "0"], ["--seeds", "1", "x"]):
        with pytest.raises(SystemExit) as stop:
            bench_seeds.main(args)
        assert stop.value.code == 2
        assert "is not an integer >= 1" in capsys.readouterr().err.splitlines()[-1]


def test_loop_runs_leave_no_folder_behind(monkeypatch, tmp_path):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bench_seeds.loop_timings("dqn_cartpole", 200, 1, ["algo.learning_starts=100", "algo.buffer_size=500"])
    assert list(tmp_path.iterdir()) == []


def test_the_process_table_splits_the_seeds_as_reproduce_does(monkeypatch, capsys, tmp_path):
    import argparse

    calls = []

    def fake_timed(commands, jobs):
        def picked(cmd):
            return tuple(next(a for a in cmd if a.startswith(key)) for key in ("seed=", "num_seeds="))

        calls.append(([picked(c) for c in commands], jobs))
        return 2.0 * len(calls)

    monkeypatch.setattr(bench_seeds, "timed", fake_timed)
    args = argparse.Namespace(experiments=["dqn_cartpole"], seeds=[1, 5], frames=100, jobs=2, no_processes=False)
    bench_seeds.print_processes(args, tmp_path)
    assert [c[0] for c in calls] == [
        [("seed=0", "num_seeds=1")],  # the ordinary run
        [("seed=0", "num_seeds=1")], [("seed=0", "num_seeds=1")],  # N=1: one process, the one ordinary run
        [("seed=0", "num_seeds=5")],  # N=5 in one process
        [(f"seed={s}", "num_seeds=1") for s in range(5)],  # as 5 ordinary runs
        [("seed=0", "num_seeds=3"), ("seed=3", "num_seeds=2")],  # as 2 multi-seed processes
    ]
    assert [jobs for _, jobs in calls] == [1, 1, 2, 1, 2, 2]
    rows = capsys.readouterr().out.splitlines()
    assert rows[-1] == "| dqn_cartpole | 5 | 8.0 | 4.00 | 10.0 | 5.00 | 12.0 | 6.00 | 1.20 |"
    assert rows[-2].endswith("| 6.0 | 3.00 | | | |")  # one seed: nothing to split


def test_the_docstring_examples_run():
    import doctest

    assert doctest.testmod(bench_seeds).failed == 0


def test_a_timed_command_that_fails_says_its_own_last_line():
    """A refused train.py (an unknown experiment) surfaced as this script's CalledProcessError
    traceback, train.py's one line (naming the valid experiments) swallowed."""
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('rlkit: invalid config: nope\\n'); sys.exit(2)"]
    with pytest.raises(bench_seeds.RunFailed, match=r"ended with status 2: rlkit: invalid config: nope$"):
        bench_seeds.timed([failing], 1)
    assert subprocess.run(failing, capture_output=True).returncode == 2  # (the stand-in fails by itself too)
