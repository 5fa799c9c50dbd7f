"""scripts/fault_trials.py: a handful of fault trials of every kind against train.py (subprocesses)."""
from __future__ import annotations

import pytest

import fault_trials


@pytest.mark.slow
def test_a_few_fault_trials_of_every_kind_pass(tmp_path, capsys):
    # 8 trials: 4 kill/resume (at random, during a checkpoint write, during resumes), 1 concurrency,
    # 1 corruption, 2 bad command lines (see fault_trials.allocate).
    assert fault_trials.allocate(8) == {"kill/resume": 4, "concurrency": 1, "corruption": 1, "bad command line": 2}
    status = fault_trials.main(["--trials", "8", "--seed", "0", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert printed.count("\ntrial ") == 8 and "FAIL" not in printed


def _scripted_kill_trial(tmp_path, monkeypatch, outcomes):
    """kill_trial with stand-ins for train.py: each start ends with the next of ``outcomes``; the
    first start leaves a committed run directory. Returns the trial and the runs compared."""
    reference = fault_trials.Reference(tmp_path / "ref", 0.1, 1.0)
    starts, compared = [], []

    class Train:
        def __init__(self, args, cwd, logs):
            starts.append(list(args))
            (cwd / "run").mkdir(exist_ok=True)
            (cwd / "run" / "config.yaml").write_text("seed: 0\n")

    outs = iter(outcomes)
    monkeypatch.setattr(fault_trials, "Train", Train)
    monkeypatch.setattr(fault_trials, "run_killing", lambda train, when, delay: next(outs))
    monkeypatch.setattr(fault_trials, "_kill_plan", lambda mode, rng, ref: [fault_trials.Kill("at-random", lambda d: None)])
    monkeypatch.setattr(fault_trials, "compare_runs", lambda got, ref: compared.append((got, ref)) or [])
    monkeypatch.setattr(fault_trials, "temp_files", lambda run_dir, fast=False: [])
    refs = type("Refs", (), {"get": lambda self, args, resumes=(): reference})()
    ctx = fault_trials.Context(refs, tmp_path / "trial")
    trial = fault_trials.kill_trial(ctx, fault_trials.random.Random(0), 0)
    return trial, starts, compared


def test_a_kill_that_lands_after_the_run_completed_is_not_a_failure(tmp_path, monkeypatch):
    # The kill landed while the finished run's process exited: the resume is refused as complete,
    # and the run is compared with its reference like any other.
    refusal = "rlkit: run /x/run is complete: 6000 frames of total_frames=6000, its closing evaluation done; nothing"
    trial, starts, compared = _scripted_kill_trial(tmp_path, monkeypatch, [
        fault_trials.Outcome(None, "done: greedy eval return 17.5 | run dir /x/run\n", 1.4, killed=True),
        fault_trials.Outcome(2, refusal + "\n", 0.5),
    ])
    assert trial.passed, trial.problems
    assert len(starts) == 2 and starts[1][0].startswith("resume=")
    assert compared == [(tmp_path / "trial" / "cwd" / "run", tmp_path / "ref")]
    assert any("after the run completed" in note for note in trial.notes)


def test_a_resume_refused_for_another_reason_after_a_kill_is_a_failure(tmp_path, monkeypatch):
    trial, _, compared = _scripted_kill_trial(tmp_path, monkeypatch, [
        fault_trials.Outcome(None, "", 1.4, killed=True),
        fault_trials.Outcome(2, "rlkit: run /x/run is locked by pid 12 on vm\n", 0.5),
    ])
    assert [kind for kind, _ in trial.problems] == [fault_trials.OTHER] and not compared


def test_a_ctrl_c_stops_the_trials_train_processes_and_removes_the_temporary_folder(monkeypatch, capsys):
    """Each train.py runs in a session of its own, which the terminal's Ctrl-C does not reach: they
    trained on after the script had ended with a traceback, and its temporary folder stayed."""
    import tempfile
    from pathlib import Path

    killed = []

    class Running:
        def kill(self) -> bool:
            killed.append(self)
            return True

    folder = Path(tempfile.mkdtemp(prefix="rlkit-fault-trials-test-"))

    def interrupted(argv):
        fault_trials._TEMPORARY = folder
        fault_trials.Train.live.add(Running())
        raise KeyboardInterrupt

    monkeypatch.setattr(fault_trials, "_trials", interrupted)
    assert fault_trials.main([]) == 130
    assert len(killed) == 1 and not folder.exists()
    assert capsys.readouterr().err == "\nfault_trials.py: interrupted; its train.py processes were stopped\n"
    fault_trials.Train.live.clear()
