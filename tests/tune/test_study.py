"""Studies end to end on CartPole with tiny budgets: pruning, failures, resume, exact counts with two
workers on one SQLite file, interrupted and surplus trials, and the refusal of another study's settings."""
from __future__ import annotations

import csv
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from rlkit.errors import ConfigError
from rlkit.tune import parse_space, tune
from rlkit.tune import study as study_module
from rlkit.tune.study import SURPLUS_ATTR, counted, open_study, work
from rlkit.tune.trial import TrialResult

ROOT = Path(__file__).resolve().parents[2]
HOPELESS = [{"name": "time_limit", "max_episode_steps": 1}]  # every episode returns 1


def setup(study_parts, space=None, **changes):
    base, settings = study_parts()
    if space is not None:
        changes["space"] = parse_space(space)
    return base, dataclasses.replace(settings, **changes)


def rows(settings) -> list[dict]:
    with open(settings.dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def test_a_study_prunes_the_hopeless_region_and_writes_its_outputs(study_parts):
    space = {"env": {"transforms": [[], HOPELESS]}, "algo": {"optim": {"lr": {"type": "float", "low": 1e-4,
                                                                                "high": 1e-2, "log": True}}}}
    base, settings = setup(study_parts, space, n_trials=6, sampler="random")
    study = tune(base, settings, stream=None)
    trials = study.get_trials()
    assert len(trials) == 6 and all(t.state.is_finished() for t in trials)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    # Every hopeless trial with completed trials before it is pruned (the median pruner may prune a
    # trial of the good region too, below the median at its first evaluation).
    hopeless = [t for t in trials if t.params["env.transforms"] == '[{"name": "time_limit", "max_episode_steps": 1}]']
    compared = [t for t in hopeless if any(c.state == TrialState.COMPLETE and c.number < t.number for c in trials)]
    assert compared and all(t in pruned for t in compared), [(t.state, t.params) for t in trials]
    best = study.best_trial
    assert best.params["env.transforms"] == "[]"
    table = rows(settings)
    assert [int(r["number"]) for r in table] == list(range(6))
    assert list(table[0]) == ["number", "state", "value", "env.transforms", "algo.optim.lr", "seed_0", "seed_1",
                              "duration_s", "error"]
    complete = next(r for r in table if r["state"] == "COMPLETE")
    assert float(complete["value"]) == pytest.approx((float(complete["seed_0"]) + float(complete["seed_1"])) / 2)
    for name in ("history.png", "importances.png", "slice.png", "experiment/best.yaml"):
        assert (settings.dir / name).is_file(), name
    assert sorted(p.name for p in (settings.dir / "trials").iterdir()) == [f"{n:04d}" for n in range(6)]


def test_the_best_trial_trains_with_train_py(study_parts, tmp_path):
    base, settings = setup(study_parts, {"algo": {"hidden_sizes": [[8], [12]]}}, n_trials=1, pruner="none")
    study = tune(base, settings, groups={"algo": "dqn", "env": "CartPole"}, stream=None)
    best_file = settings.dir / "experiment" / "best.yaml"
    text = best_file.read_text()
    assert text.startswith("# @package _global_\n")
    assert "  - override /algo: dqn\n  - override /env: CartPole\n" in text
    run_dir = tmp_path / "best_run"
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "--config-dir", str(settings.dir), "experiment=best",
                           "total_frames=200", f"hydra.run.dir={run_dir}"], cwd=tmp_path, text=True,
                          capture_output=True, env={**os.environ, "WANDB_MODE": "disabled"}, timeout=300)
    assert done.returncode == 0, done.stderr
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["algo"]["hidden_sizes"] == yaml.safe_load(study.best_trial.params["algo.hidden_sizes"])
    assert saved["total_frames"] == 200 and saved["trainer"]["eval_interval"] == 200


def test_a_failing_trial_is_recorded_with_its_error_and_the_study_goes_on(study_parts):
    base, settings = setup(study_parts, {"algo": {"optim": {"lr": [1e-3, 1e30]}}}, n_trials=2, sampler="grid",
                           pruner="none")
    study = tune(base, settings, stream=None)
    states = {t.params["algo.optim.lr"]: t for t in study.get_trials()}
    assert states[1e30].state == TrialState.FAIL
    assert states[1e30].user_attrs["error"].startswith("NonFiniteError: non-finite")
    assert states[1e-3].state == TrialState.COMPLETE
    failed = next(r for r in rows(settings) if r["state"] == "FAIL")
    assert failed["error"].startswith("NonFiniteError: non-finite") and failed["value"] == ""


def test_a_rerun_resumes_the_study_and_leaves_its_trials_alone(study_parts):
    base, settings = setup(study_parts, n_trials=2, pruner="none", sampler="random")
    first = [(t.number, t.params, t.value, t.datetime_complete) for t in tune(base, settings, stream=None).get_trials()]
    study = tune(base, dataclasses.replace(settings, n_trials=4), stream=None)
    trials = study.get_trials()
    assert len(trials) == 4 and all(t.state == TrialState.COMPLETE for t in trials)
    assert [(t.number, t.params, t.value, t.datetime_complete) for t in trials[:2]] == first
    assert len(rows(settings)) == 4
    again = tune(base, dataclasses.replace(settings, n_trials=4), stream=None)  # complete: nothing runs
    assert len(again.get_trials()) == 4


def test_two_workers_on_one_sqlite_file_run_exactly_n_trials(study_parts):
    base, settings = setup(study_parts, n_trials=5, jobs=2, pruner="none", sampler="random", sampler_seed=None)
    study = tune(base, settings, stream=None)
    trials = [t for t in study.get_trials() if counted(t)]
    assert len(trials) == 5 and all(t.state == TrialState.COMPLETE for t in trials)
    numbers = [t.number for t in trials]
    assert sorted(p.name for p in (settings.dir / "trials").iterdir()) == [f"{n:04d}" for n in numbers]
    assert [int(r["number"]) for r in rows(settings)] == numbers
    # each trial: its 2 seeds in one process (num_seeds), each seed's outputs in seed_<s>/
    assert all({"seed_0", "seed_1", "config.yaml", "checkpoints"} <= {p.name for p in (settings.dir / "trials" /
                                                                     f"{n:04d}").iterdir()} for n in numbers)


def fake_trial(*args, **kwargs) -> TrialResult:
    return TrialResult("complete", 1.0, {0: 1.0, 1: 1.0})


def interrupted_then_rerun(base, settings, monkeypatch) -> optuna.Study:
    """The study's first trial interrupted (Ctrl-C), then the same command again, its trials faked."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study_module, "run_trial", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tune(base, settings, stream=None)
    assert [(r["state"], r["error"]) for r in rows(settings)] == [("FAIL", "interrupted (KeyboardInterrupt); runs again when the study is rerun")]
    monkeypatch.setattr(study_module, "run_trial", fake_trial)
    return tune(base, settings, stream=None)


def test_an_interrupted_trial_is_recorded_and_replaced_on_rerun(study_parts, monkeypatch):
    base, settings = setup(study_parts, n_trials=2, pruner="none", sampler="random")
    study = interrupted_then_rerun(base, settings, monkeypatch)
    states = [t.state for t in study.get_trials()]
    assert states == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert "interrupted" in study.get_trials()[0].user_attrs
    assert [r["error"] for r in rows(settings)] == ["interrupted (KeyboardInterrupt); replaced by trial 1", "", ""]


@pytest.mark.parametrize("sampler", ["grid", "random"])
def test_an_interrupted_trial_runs_again_with_its_configuration(study_parts, monkeypatch, sampler):
    """The replacement of a trial without a result runs that trial's configuration: the grid
    sampler counts the interrupted trial's point as visited and would never evaluate it."""
    space = {"algo": {"hidden_sizes": [[8], [12], [16]]}}
    base, settings = setup(study_parts, space, n_trials=3, pruner="none", sampler=sampler)
    study = interrupted_then_rerun(base, settings, monkeypatch)
    first, *rest = study.get_trials()
    assert first.state == TrialState.FAIL and [t.state for t in rest] == [TrialState.COMPLETE] * 3
    assert rest[0].params == first.params and rest[0].user_attrs["rlkit_replaces"] == 0
    if sampler == "grid":  # every point evaluated once
        assert sorted(t.params["algo.hidden_sizes"] for t in rest) == sorted({t.params["algo.hidden_sizes"] for t in rest})


def test_a_trial_asked_when_another_worker_took_the_last_place_is_surplus(study_parts, monkeypatch):
    base, settings = setup(study_parts, n_trials=1, pruner="none")
    study = open_study(base, settings, slots=3)
    ask = study.ask

    def racing_ask():
        other = ask()  # another worker's trial, created (and finished) first
        study.tell(other, 5.0)
        return ask()

    ran = []
    monkeypatch.setattr(study, "ask", racing_ask)
    monkeypatch.setattr(study_module, "run_trial", lambda *a, **k: ran.append(a) or fake_trial())
    work(study, base, settings, slots=3, n_trials=1)
    first, surplus = study.get_trials()
    assert ran == [] and first.state == TrialState.COMPLETE
    assert surplus.state == TrialState.FAIL and surplus.user_attrs[SURPLUS_ATTR] is True and not counted(surplus)


def test_a_rerun_with_other_settings_is_refused(study_parts):
    base, settings = setup(study_parts)
    open_study(base, settings, slots=3)
    other = base.copy()
    other.total_frames = 800
    with pytest.raises(ConfigError, match=r"study 'dqn_CartPole' in sqlite:///.* was started with other settings "
                                          r"\(total_frames: the study has 600, this command 800\); rerun it with its own "
                                          r"settings, or start another with tune.study=<name> \(and its own tune.dir where "
                                          r"you set one"):
        open_study(other, settings, slots=4)
    with pytest.raises(ConfigError, match=r"\(seeds: the study has \[0, 1\], this command \[0, 1, 2\]\)"):
        open_study(base, dataclasses.replace(settings, seeds=(0, 1, 2)), slots=3)
    # (its trials report in lockstep or seed after seed: the pruner would compare the two)
    with pytest.raises(ConfigError, match=r"\(batched_seeds: the study has True, this command False\)"):
        open_study(base, dataclasses.replace(settings, batched_seeds=False), slots=3)
    free = base.copy()
    free.device, free.trainer.progress = "cpu", True  # where and how a run executes: free to change
    free.trainer.log_interval = 100  # (the metrics rows' cadence: neither the training nor the evaluations)
    assert open_study(free, settings, slots=3).study_name == "dqn_CartPole"


def test_a_study_that_recorded_the_log_interval_resumes_with_another(study_parts):
    """A study started before trainer.log_interval was a free key kept its value in its identity."""
    from rlkit.tune.study import IDENTITY_ATTR, _identity

    base, settings = setup(study_parts)
    old = _identity(base, settings)
    old["config"]["trainer"]["log_interval"] = 200
    open_study(base, settings, slots=3).set_user_attr(IDENTITY_ATTR, old)
    other = base.copy()
    other.trainer.log_interval = 50
    assert open_study(other, settings, slots=3).study_name == "dqn_CartPole"


def test_the_base_value_of_a_searched_key_does_not_tell_studies_apart(study_parts):
    """Every trial replaces a searched key's base value: it is not part of what the study measures. A
    study started with algo.learning_starts=500 beside a space searching it (before tune.py refused
    that) could then be resumed neither with the override (refused) nor without it (other settings)."""
    from rlkit.tune.study import IDENTITY_ATTR, _identity

    base, settings = setup(study_parts)
    assert "algo.learning_starts" in [p.path for p in settings.space.params]
    old = _identity(base, settings)  # as a study started before kept it: with the searched keys' values
    old["config"]["algo"]["learning_starts"], old["config"]["algo"]["batch_size"] = 500, 64
    study = open_study(base, settings, slots=3)
    study.set_user_attr(IDENTITY_ATTR, old)
    other = base.copy()
    other.algo.learning_starts = 1000
    assert open_study(other, settings, slots=3).study_name == "dqn_CartPole"
    other.algo.tau = 0.5  # (not searched: still another study)
    with pytest.raises(ConfigError, match=r"\(algo.tau: the study has None, this command 0.5\)"):
        open_study(other, settings, slots=3)


def test_a_tune_dir_holding_another_studys_trials_is_refused(study_parts, monkeypatch):
    """Trial directories are numbered: a second study in the same tune.dir (or the first one after its
    study.db was deleted) would find them taken and replace the first study's outputs."""
    base, settings = setup(study_parts, n_trials=1, pruner="none")
    monkeypatch.setattr(study_module, "run_trial", lambda *a, run_root, **k: (run_root.mkdir(parents=True), fake_trial())[1])
    tune(base, settings, stream=None)
    before = sorted(str(p) for p in settings.dir.rglob("*"))
    other = dataclasses.replace(settings, study="other")
    message = (r"tune\.dir=.* holds trial directories \(0000\) that are not trials of study 'other' in its storage "
               r"\(another study's, or a deleted study\.db's\); give this study its own tune\.dir")
    with pytest.raises(ConfigError, match=message):
        tune(base, other, stream=None)
    assert sorted(str(p) for p in settings.dir.rglob("*")) == before  # nothing written
    assert len(tune(base, settings, stream=None).get_trials()) == 1  # the study itself reruns
    (settings.dir / "study.db").unlink()
    with pytest.raises(ConfigError, match=r"holds trial directories \(0000\) that are not trials of study 'dqn_CartPole'"):
        tune(base, settings, stream=None)


def test_tune_refuses_a_resume_and_a_directory_that_holds_no_study(study_parts, tmp_path):
    """rlkit.tune.tune (also with TuneSettings made by hand) refuses what tune.py refuses: a training
    config that resumes a run, and a tune.dir holding other files; nothing is written."""
    from omegaconf import OmegaConf

    from rlkit.errors import RunDirError
    from rlkit.tune.report import PLOTS
    from rlkit.tune.studydir import STUDY_FILES

    base, settings = setup(study_parts, n_trials=1)
    with pytest.raises(ConfigError, match=r"^resume='.*run' continues a training run \(a train.py key\), not a study"):
        study_parts("tune.n_trials=1", f"resume={tmp_path / 'run'}")  # (tune.py's checks, before anything is made)
    resumed = OmegaConf.merge(base, {"resume": str(tmp_path / "run")})
    with pytest.raises(ConfigError, match=r"^resume='.*run' continues a training run \(a train.py key\), not a study"):
        tune(resumed, settings, stream=None)
    assert not settings.dir.exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(RunDirError, match=r"is not empty \(config.yaml\) and holds no study of tune.py"):
        tune(base, dataclasses.replace(settings, dir=other), stream=None)
    assert [p.name for p in other.iterdir()] == ["config.yaml"]
    assert set(PLOTS) <= STUDY_FILES  # (what a study writes is taken as its own on a rerun)


def test_lost_trials_of_a_dead_worker_are_replaced(study_parts, monkeypatch):
    monkeypatch.setattr(study_module, "HEARTBEAT_S", 1)
    monkeypatch.setattr(study_module, "GRACE_S", 1)
    base, settings = setup(study_parts, n_trials=1, pruner="none")
    study = open_study(base, settings, slots=3)
    dead = study.ask()  # a worker that died mid-trial: one heartbeat, then silence
    storage = study_module.open_storage(settings.storage_url)
    storage.record_heartbeat(storage.get_trial_id_from_study_id_trial_number(
        storage.get_study_id_from_name(settings.study), dead.number))
    _a_run(settings.dir / "trials" / "0000")  # (what the dead worker's training left)
    time.sleep(2.5)
    monkeypatch.setattr(study_module, "run_trial", fake_trial)
    study = tune(base, settings, stream=None)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.COMPLETE]
    assert rows(settings)[0]["error"] == ("lost: its worker died; not counted (from scratch; this run moved to "
                                          "interrupted/0000)")
    assert not (settings.dir / "trials" / "0000").exists()
    assert list((settings.dir / "interrupted" / "0000").rglob("checkpoints"))  # nothing of the run is deleted


def test_a_trial_whose_worker_died_before_its_first_heartbeat_is_replaced(study_parts, monkeypatch):
    """A process killed between asking for a trial and its first heartbeat left it running with no
    heartbeat, which Optuna never takes as lost: a rerun waited for it forever."""
    base, settings = setup(study_parts, n_trials=1, pruner="none")
    study = open_study(base, settings, slots=3)
    study.ask()  # (then the process died)
    monkeypatch.setattr(study_module, "run_trial", fake_trial)
    monkeypatch.setattr(study_module, "UNSTARTED_S", 0.5)
    time.sleep(1.0)
    study = tune(base, settings, stream=None)
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.COMPLETE]
    assert rows(settings)[0]["error"] == "lost: its worker died; not counted"


def test_a_running_trial_that_beat_is_left_to_its_heartbeat(study_parts, monkeypatch):
    base, settings = setup(study_parts, n_trials=1, pruner="none")
    study = open_study(base, settings, slots=3)
    alive = study.ask()  # another worker's trial, past its first heartbeat
    alive.set_user_attr("seeds", [0, 1])
    monkeypatch.setattr(study_module, "UNSTARTED_S", 0.0)
    seen = {0: time.monotonic() - 10.0}
    study_module._fail_unstarted(study, seen)
    assert study.get_trials()[0].state == TrialState.RUNNING and seen == {}


def test_an_unstarted_trial_is_timed_by_this_worker_s_clock_not_the_asking_machine_s(study_parts, monkeypatch):
    """Optuna writes a trial's start in the asking machine's local time: a worker in another time zone
    took a trial asked a moment ago as hours old."""
    base, settings = setup(study_parts, n_trials=1, pruner="none")
    study = open_study(base, settings, slots=3)
    study.ask()  # another worker's, between its ask and its first heartbeat
    monkeypatch.setattr(study_module, "UNSTARTED_S", 60.0)
    seen: dict[int, float] = {}
    study_module._fail_unstarted(study, seen)
    assert study.get_trials()[0].state == TrialState.RUNNING and list(seen) == [0]
    seen[0] -= 61.0  # (a minute later)
    study_module._fail_unstarted(study, seen)
    assert study.get_trials()[0].state == TrialState.FAIL


def test_a_storage_that_cannot_be_opened_is_refused(study_parts, tmp_path):
    base, settings = setup(study_parts, storage=f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    with pytest.raises(ConfigError, match=r"tune.storage='sqlite:///.*/missing/dir/x.db' cannot be opened: "):
        open_study(base, settings, slots=3)


def test_a_storage_whose_tables_another_process_creates_is_opened_on_a_second_try(tmp_path, monkeypatch):
    """Two tune.py processes on one new study: one failed with "UNIQUE constraint failed:
    alembic_version.version_num", reported as an invalid config."""
    import sqlalchemy.exc

    real, calls = optuna.storages.RDBStorage, []

    def racing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", {}, Exception(
                "UNIQUE constraint failed: alembic_version.version_num"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    storage = study_module.open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(calls) == 2 and storage.get_all_studies() == []


def test_a_replacement_that_ended_before_drawing_its_configuration_is_queued_again(study_parts):
    """A worker popped an interrupted trial's queued configuration and was stopped before drawing it:
    the replacement ended with no parameters, and the configuration was never run (a grid point
    never evaluated)."""
    base, settings = setup(study_parts, n_trials=2, pruner="none")
    study = open_study(base, settings, slots=3)
    first = study.ask()
    first.suggest_float("algo.optim.lr", 1e-4, 1e-2, log=True)
    first.set_user_attr("interrupted", "SIGINT")
    study.tell(first, state=TrialState.FAIL)
    study_module._requeue_unfinished(study, settings)
    popped = study.ask()  # the replacement, stopped before its suggest
    assert popped.user_attrs["rlkit_replaces"] == 0
    popped.set_user_attr("interrupted", "SIGINT")
    study.tell(popped, state=TrialState.FAIL)
    study_module._requeue_unfinished(study, settings)
    waiting = [t for t in study.get_trials() if t.state == TrialState.WAITING]
    assert [t.user_attrs["rlkit_replaces"] for t in waiting] == [0]
    again = study.ask()
    assert again.suggest_float("algo.optim.lr", 1e-4, 1e-2, log=True) == first.params["algo.optim.lr"]


@pytest.mark.parametrize("where", ["ask", "tell"])
def test_a_signal_during_the_storage_s_bookkeeping_waits_for_it_then_marks_the_trial(study_parts, monkeypatch, where):
    """SIGTERM raised in the middle of study.ask() left a running trial with no heartbeat (a rerun
    waited minutes for it); in the middle of telling a result, a finished trial was thrown away."""
    import signal

    base, settings = setup(study_parts, n_trials=2, pruner="none")
    study = open_study(base, settings, slots=3)
    real = getattr(study, where)

    def signalled(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)  # (handled at once: the gate holds it)
        return real(*args, **kwargs)

    monkeypatch.setattr(study, where, signalled)
    monkeypatch.setattr(study_module, "run_trial", fake_trial)
    with pytest.raises(study_module.StudyInterrupted), study_module._stop_on_signals():
        work(study, base, settings, slots=3, n_trials=2)
    first = study.get_trials()[0]
    if where == "ask":  # asked, then stopped before training: interrupted, replaced on a rerun
        assert first.state == TrialState.FAIL and first.user_attrs["interrupted"] == "SIGTERM"
    else:  # its result recorded, then stopped
        assert first.state == TrialState.COMPLETE and len(study.get_trials()) == 1
    assert study_module._GATE.pending is None and study_module._GATE.depth == 0


def test_an_error_of_the_storage_stops_the_heartbeat_and_leaves_the_trial_to_be_replaced(study_parts, monkeypatch):
    """An exception that is not the sampled config's result left the trial running with its heartbeat
    thread beating: a rerun in the same process waited for it forever."""
    import threading

    import sqlalchemy.exc

    base, settings = setup(study_parts, n_trials=1, pruner="none")
    study = open_study(base, settings, slots=3)

    def broken(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception("disk I/O error\nmore lines"))

    monkeypatch.setattr(study_module, "run_trial", broken)
    threads = threading.active_count()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        work(study, base, settings, slots=3, n_trials=1)
    assert threading.active_count() == threads
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL and not counted(trial)
    assert trial.user_attrs["interrupted"].startswith("OperationalError: (builtins.Exception) disk I/O error")
    assert "\n" not in trial.user_attrs["interrupted"]


def test_an_error_the_sampled_configuration_raises_outside_training_is_its_result(study_parts, monkeypatch):
    """Recorded as interrupted, such an error was replayed first by every rerun, and the next
    configuration never ran."""
    base, settings = setup(study_parts, n_trials=2, pruner="none")
    study = open_study(base, settings, slots=3)
    calls = []

    def broken_once(*args, **kwargs):
        calls.append(None)
        if len(calls) == 1:
            raise ValueError("cannot stack this network")
        return fake_trial()

    monkeypatch.setattr(study_module, "run_trial", broken_once)
    work(study, base, settings, slots=3, n_trials=2)
    first, second = study.get_trials()
    assert first.state == TrialState.FAIL and counted(first) and first.user_attrs["error"] == (
        "ValueError: cannot stack this network")
    assert second.state == TrialState.COMPLETE

def test_a_trial_another_worker_took_as_lost_does_not_end_the_worker(study_parts, monkeypatch, caplog):
    """Its result came after another worker failed it as stale (SQLite waits up to a minute per
    statement): optuna's UpdateFinishedTrialError ended the worker with a traceback."""
    base, settings = setup(study_parts, n_trials=1, pruner="none")
    study = open_study(base, settings, slots=3)
    tell = study_module._tell

    def lost_meanwhile(study, trial, result):
        study.tell(trial.number, state=TrialState.FAIL)  # (the other worker)
        tell(study, trial, result)

    calls = []
    monkeypatch.setattr(study_module, "run_trial", lambda *a, **k: calls.append(1) or fake_trial())

    def once(study, trial, result):
        if len(calls) == 1:
            return lost_meanwhile(study, trial, result)
        return tell(study, trial, result)

    monkeypatch.setattr(study_module, "_tell", once)
    work(study, base, settings, slots=3, n_trials=1)
    assert "was finished by another worker (taken as lost) before its result was recorded" in caplog.text
    assert [t.state for t in study.get_trials()] == [TrialState.FAIL, TrialState.COMPLETE]


def test_a_signal_during_training_stops_the_study_and_is_not_the_trial_s_result(study_parts, monkeypatch):
    """TrainingInterrupted is a RuntimeError: caught as the sampled configuration's error, it would be
    a counted failure and the study would go on."""
    from rlkit.trainers import TrainingInterrupted

    base, settings = setup(study_parts, n_trials=2, pruner="none")
    study = open_study(base, settings, slots=3)

    def interrupted(*args, run_root, **kwargs):
        raise TrainingInterrupted(15, run_root / "checkpoints" / "last.pt")

    monkeypatch.setattr(study_module, "run_trial", interrupted)
    with pytest.raises(TrainingInterrupted):
        work(study, base, settings, slots=3, n_trials=2)
    (trial,) = study.get_trials()
    assert trial.state == TrialState.FAIL and not counted(trial)
    assert trial.user_attrs["interrupted"].startswith("training interrupted by SIGTERM")


def _metrics_evals(path: Path) -> list[tuple[str, str]]:
    """A run's greedy evaluations: (frames, return) from its metrics.csv."""
    with open(path / "metrics.csv") as f:
        return [(r["step"], r["eval_return"]) for r in csv.DictReader(f) if r.get("eval_return")]


def test_the_best_trial_s_printed_command_reproduces_its_evaluations(study_parts, tmp_path):
    """best.yaml said num_seeds: 1 and "Train with it: ... seed=0": a trial trains its seeds together
    in one process (num_seeds=2), which differs from one seed alone by float rounding, so the
    printed command gave other evaluations than the trial's."""
    import io

    base, settings = setup(study_parts, {"algo": {"hidden_sizes": [[8]]}}, n_trials=1, pruner="none")
    printed = io.StringIO()
    study = tune(base, settings, groups={"algo": "dqn", "env": "CartPole"}, stream=printed)
    assert study.best_trial.user_attrs["num_seeds"] == 2
    text = (settings.dir / "experiment" / "best.yaml").read_text()
    command = f"python train.py --config-dir {settings.dir} experiment=best seed=0 num_seeds=2"
    # one seed per run in the file (reproduce.py batched=false and tune.py take it as it is); the command adds them
    assert yaml.safe_load(text)["num_seeds"] == 1
    assert f"#   {command}   # seeds 0..1 together in one process, as trial 0 ran them\n" in text
    line = next(line for line in printed.getvalue().splitlines() if "best trial 0" in line)
    assert line.endswith(f"train it as it ran (its 2 seeds together in one process; one seed alone differs from the "
                         f"trial's by float rounding): {command}")
    run_dir = tmp_path / "again"
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), *command.split()[2:], f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, text=True, capture_output=True, env={**os.environ, "WANDB_MODE": "disabled"},
                          timeout=300)
    assert done.returncode == 0, done.stderr
    evals = {seed: [float(value) for _, value in _metrics_evals(run_dir / f"seed_{seed}")] for seed in (0, 1)}
    best = study.best_trial
    assert [evals[0][-1], evals[1][-1]] == [best.user_attrs["seed_0"], best.user_attrs["seed_1"]]  # (objective final)
    # every evaluation: the trial reported the mean over its seeds at each one
    assert [(a + b) / 2 for a, b in zip(evals[0], evals[1])] == [best.intermediate_values[k] for k in range(3)]


def test_the_best_trial_of_seeds_run_one_after_another_names_each_seed_s_command(study_parts):
    from optuna.distributions import CategoricalDistribution

    from rlkit.tune.report import best_experiment

    base, settings = setup(study_parts, {"algo": {"hidden_sizes": [[8], [12]]}}, seeds=(0, 5))
    best = optuna.trial.create_trial(params={"algo.hidden_sizes": "[12]"}, value=3.0, user_attrs={
        "num_seeds": 1, "seed_0": 2.0, "seed_5": 4.0}, distributions={"algo.hidden_sizes": CategoricalDistribution(
            ["[8]", "[12]"])})
    text = best_experiment(best, base, settings)
    assert yaml.safe_load(text)["num_seeds"] == 1 and yaml.safe_load(text)["algo"]["hidden_sizes"] == [12]
    assert ("# Its seeds trained one after another (num_seeds: 1); each command trains one of them as the trial did:\n"
            f"#   python train.py --config-dir {settings.dir} experiment=best seed=0   # trial {best.number}'s seed 0\n"
            f"#   python train.py --config-dir {settings.dir} experiment=best seed=5   # trial {best.number}'s seed 5\n"
            ) in text


def _a_run(run_root: Path) -> None:
    """What a trial's training leaves in ``run_root``: a multi-seed run with its checkpoints."""
    for folder in (run_root, run_root / "seed_0", run_root / "seed_1"):
        (folder / "checkpoints").mkdir(parents=True)
        (folder / "checkpoints" / "last.pt").write_bytes(b"0" * 100)
        (folder / "config.yaml").write_text("seed: 0\n")
    (run_root / "seed_0" / "metrics.csv").write_text("step,eval_return\n200,1.0\n")


def test_an_interrupted_trial_s_run_leaves_trials_for_interrupted(study_parts, monkeypatch):
    """Its folder stayed in trials/ though the rerun trained the configuration again from scratch, and
    compare.py then refused the study (seed 0 of one configuration twice): it moves to interrupted/,
    whole (nothing of a user's run is deleted)."""
    from rlkit.trainers import TrainingInterrupted

    base, settings = setup(study_parts, n_trials=1, pruner="none")

    def interrupted(*args, run_root, **kwargs):
        _a_run(run_root)
        raise TrainingInterrupted(2, run_root / "checkpoints" / "last.pt")

    monkeypatch.setattr(study_module, "run_trial", interrupted)
    with pytest.raises(TrainingInterrupted):
        tune(base, settings, stream=None)
    moved = settings.dir / "interrupted" / "0000"
    assert not (settings.dir / "trials" / "0000").exists()
    assert sorted(str(p.relative_to(moved)) for p in moved.rglob("*")) == [  # the whole run, nothing deleted
        "checkpoints", "checkpoints/last.pt", "config.yaml", "seed_0", "seed_0/checkpoints", "seed_0/checkpoints/last.pt",
        "seed_0/config.yaml", "seed_0/metrics.csv", "seed_1", "seed_1/checkpoints", "seed_1/checkpoints/last.pt",
        "seed_1/config.yaml"]
    assert [r["error"] for r in rows(settings)] == [
        "interrupted (training interrupted by SIGINT); runs again when the study is rerun (from scratch; this run "
        "moved to interrupted/0000)"]
    monkeypatch.setattr(study_module, "run_trial", lambda *a, run_root, **k: (_a_run(run_root), fake_trial())[1])
    tune(base, settings, stream=None)
    assert [p.name for p in (settings.dir / "trials").iterdir()] == ["0001"]
    assert rows(settings)[0]["error"].startswith("interrupted (training interrupted by SIGINT); replaced by trial 1 "
                                                 "(from scratch; this run moved to interrupted/0000")


def test_the_study_s_lines_go_to_its_log_and_the_trials_lines_do_not(study_parts, monkeypatch):
    """tune.log held each trial's train.log lines and matplotlib's "Using categorical units" lines, and
    none of the study's own (progress, best trial)."""
    import io
    import logging

    base, settings = setup(study_parts, {"algo": {"hidden_sizes": [[8], [12]]}}, n_trials=2, pruner="none",
                           sampler="grid")
    settings.dir.mkdir(parents=True)
    handler = logging.FileHandler(settings.dir / "tune.log")  # (as Hydra's job logging under tune.py)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)

    def chatty(*args, **kwargs):
        logging.getLogger("rlkit").info("eval: frame 200: a trial's line")
        return fake_trial()

    monkeypatch.setattr(study_module, "run_trial", chatty)
    try:
        tune(base, settings, stream=io.StringIO())
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
    log = (settings.dir / "tune.log").read_text()
    assert "tune dqn_CartPole: trial 2/2 | 2 complete" in log and "best trial 0 (1)" in log
    assert "a trial's line" not in log and "categorical units" not in log, log
    assert (settings.dir / "slice.png").is_file()  # (plotted: a categorical axis)
    assert not handler.filters


def test_a_rerun_with_fewer_trials_than_the_study_has_says_nothing_runs(study_parts, monkeypatch):
    import io

    base, settings = setup(study_parts, n_trials=2, pruner="none")
    monkeypatch.setattr(study_module, "run_trial", fake_trial)
    tune(base, settings, stream=None)
    printed = io.StringIO()
    assert len(tune(base, dataclasses.replace(settings, n_trials=1), stream=printed).get_trials()) == 2
    assert printed.getvalue().splitlines()[0] == ("tune dqn_CartPole: nothing to run: the study already has 2 finished "
                                                  "trials and tune.n_trials=1; raise tune.n_trials (above 2) to run more")


def test_a_worker_waiting_for_a_trial_running_elsewhere_says_so(study_parts):
    """After a kill -9 the rerun waited a minute in silence for the lost trial's heartbeat to expire."""
    base, settings = setup(study_parts, n_trials=1, pruner="none")
    study = open_study(base, settings, slots=3)
    elsewhere = study.ask()
    elsewhere.set_user_attr("seeds", [0, 1])  # (it beat: Optuna's heartbeat decides when it is lost)
    said: list[str] = []

    class Said(Exception):
        pass

    def say(text: str) -> None:
        said.append(text)
        raise Said

    with pytest.raises(Said):
        work(study, base, settings, slots=3, n_trials=1, say=say)
    assert said == ["tune dqn_CartPole: waiting for trial 0, running in another worker or lost with a worker that died "
                    "(a lost trial is taken as such 60 s after its last heartbeat, 300 s after it was asked if it never "
                    "sent one, and then runs again)"]


def test_a_storage_password_is_masked_in_refusals(study_parts):
    base, settings = setup(study_parts, storage="postgresql://user:s3cret@127.0.0.1:1/rlkit")
    with pytest.raises(ConfigError) as refused:
        open_study(base, settings, slots=3)
    assert "tune.storage='postgresql://user:***@127.0.0.1:1/rlkit' cannot be opened: " in str(refused.value)
    assert "s3cret" not in str(refused.value)
    assert settings.shown_storage == "postgresql://user:***@127.0.0.1:1/rlkit"


def test_a_lost_trial_whose_run_a_process_still_holds_is_not_moved(study_parts):
    """A worker taken for lost (no heartbeat for a while) may still train: its trial's folder stays in
    trials/ while a process holds one of its runs, and moves to interrupted/ once none does."""
    from rlkit.rundir import RunDir

    _, settings = setup(study_parts, n_trials=1, pruner="none")
    run = settings.dir / "trials" / "0003" / "seed_0"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("seed: 0\n")
    with RunDir.claim(run, fresh=False):
        assert study_module.set_aside(settings, 3) is None
        assert (run / "config.yaml").is_file()
    assert study_module.set_aside(settings, 3) == settings.dir / "interrupted" / "0003"
    assert (settings.dir / "interrupted" / "0003" / "seed_0" / "config.yaml").is_file()


def test_the_best_trial_s_command_carries_the_study_s_searchpath(study_parts, tmp_path):
    """A study of an algorithm from the user's conf folder (``hydra.searchpath``): best.yaml's header and
    the printed "train it as it ran" command give that searchpath (a relative folder made absolute
    against tune.py's directory), without which train.py cannot find the algorithm's group."""
    import dataclasses
    import io

    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict
    from optuna.distributions import CategoricalDistribution

    from rlkit.cli.tuning import _study_searchpath
    from rlkit.tune.report import write_outputs

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        job = compose("tune", return_hydra_config=True)
    with open_dict(job):
        job.hydra.searchpath = ["file://my_conf", "pkg://my_algos.conf"]
        job.hydra.runtime.cwd = str(tmp_path)
    HydraConfig.instance().set_config(job)  # (as tune.py's job holds it)
    try:
        searchpath = _study_searchpath()  # (what tune_parts puts in the study's settings)
    finally:
        HydraConfig.instance().cfg = None
    assert searchpath == [f"file://{tmp_path}/my_conf", "pkg://my_algos.conf"]

    base, settings = setup(study_parts, {"algo": {"hidden_sizes": [[8], [12]]}}, seeds=(0,))
    settings = dataclasses.replace(settings, searchpath=tuple(searchpath))
    best = optuna.trial.create_trial(params={"algo.hidden_sizes": "[12]"}, value=3.0, user_attrs={
        "num_seeds": 1, "seed_0": 3.0}, distributions={"algo.hidden_sizes": CategoricalDistribution(["[8]", "[12]"])})
    study = optuna.create_study(direction="maximize")
    study.add_trial(best)
    out = io.StringIO()
    settings.dir.mkdir(parents=True)
    write_outputs(study, base, settings, stream=out)
    command = (f"python train.py --config-dir {settings.dir} 'hydra.searchpath=[file://{tmp_path}/my_conf,"
               f"pkg://my_algos.conf]' experiment=best seed=0")
    assert f"train it as it ran: {command}\n" in out.getvalue()
    assert f"#   {command}   # trial 0's seed 0\n" in (settings.dir / "experiment" / "best.yaml").read_text()
