"""Trainer loop: when updates happen, target updates, log rows, progress, checkpoints, signals, NaNs."""
from __future__ import annotations

import errno
import math
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from rlkit.builders import validate_config
from rlkit.errors import ResourceError
from rlkit.factories import build_trainer, open_outputs
from rlkit.trainers import Logger, NonFiniteError, Trainer, TrainerSettings, TrainingInterrupted, load_checkpoint
from rlkit.trainers import trainer as trainer_module

CONF = str(Path(__file__).resolve().parents[2] / "conf")
# DQN collects train_frequency=10 frames (1 env) per batch; A2C 8 envs x 5 steps = 40.
OFF_POLICY = ["algo.learning_starts=100", "algo.batch_size=16", "algo.hidden_sizes=[16]"]


class RecordingLogger(Logger):
    """Keeps every logged row as ``(step, metrics)``."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, float]]] = []

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        self.rows.append((step, dict(metrics)))

    def _log_config(self, config) -> None:
        pass

    def _close(self) -> None:
        pass


def make_trainer(run_dir: Path, *overrides: str, algo: str = "dqn", record: bool = True) -> Trainer:
    base = [f"algo={algo}", "total_frames=300", "trainer.eval_episodes=2", "trainer.progress=false",
            "trainer.early_stop=false", "trainer.eval_interval=0", "trainer.checkpoint_interval=0",
            "logger=none"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=base + (OFF_POLICY if algo != "a2c" else []) + list(overrides))
    settings = validate_config(cfg)
    trainer = build_trainer(settings, run_dir)
    open_outputs(trainer, settings, run_dir, {})
    if record:
        trainer.logger = RecordingLogger()
    return trainer


def record_updates(trainer: Trainer) -> list[tuple[int, dict[str, float]]]:
    """Wraps the loss so that each call appends ``(frames, loss_* values)``."""
    calls: list[tuple[int, dict[str, float]]] = []
    forward = trainer.loss_module.forward

    def recording(td):
        out = forward(td)
        calls.append((trainer.frames, {k: float(out[k].detach()) for k in out.keys() if k.startswith("loss_")}))
        return out

    trainer.loss_module.forward = recording
    return calls


def online_and_target(trainer: Trainer) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    state = trainer.loss_module.state_dict()
    online = [v for k, v in state.items() if k.startswith("value_network_params.")]
    target = [state["target_" + k] for k in state if k.startswith("value_network_params.")]
    return online, target


def test_off_policy_updates_start_at_learning_starts(tmp_path):
    trainer = make_trainer(tmp_path, "algo.updates_per_batch=2")
    calls = record_updates(trainer)
    trainer.fit()
    trainer.close()
    # Batches end at frames 10, 20, ..., 300; updates run from the batch that reaches 100 frames on.
    expected = [frames for frames in range(100, 301, 10) for _ in range(2)]
    assert [frames for frames, _ in calls] == expected
    assert trainer.updates == len(expected) == 42
    assert len(trainer.replay_buffer) == 300


def test_on_policy_optimises_each_rollout_once(tmp_path):
    trainer = make_trainer(tmp_path, "total_frames=200", algo="a2c")
    shapes = []
    forward = trainer.loss_module.forward
    trainer.loss_module.forward = lambda td: (shapes.append(tuple(td.batch_size)), forward(td))[1]
    trainer.fit()
    trainer.close()
    assert shapes == [(8, 5)] * 5  # 200 frames in rollouts of 8 envs x 5 steps
    assert trainer.updates == 5


def test_target_updater_is_stepped_after_every_update(tmp_path):
    trainer = make_trainer(tmp_path)
    seen: list[int] = []
    step = trainer.target_updater.step
    trainer.target_updater.step = lambda: (seen.append(trainer.updates), step())
    trainer.fit()
    trainer.close()
    assert seen == list(range(1, 22))  # 21 updates (frames 100..300), each followed by one step


@pytest.mark.parametrize("interval,synced", [(21, True), (22, False)])
def test_hard_target_copy_happens_on_the_interval_th_update(tmp_path, interval, synced):
    trainer = make_trainer(tmp_path, f"algo.target_update_interval={interval}")
    initial = [p.clone() for p in online_and_target(trainer)[0]]
    trainer.fit()
    trainer.close()
    online, target = online_and_target(trainer)
    assert trainer.updates == 21
    assert all(torch.equal(t, o) for t, o in zip(target, online)) is synced
    assert all(torch.equal(t, i) for t, i in zip(target, initial)) is not synced


@pytest.mark.parametrize("log_interval,steps", [(50, [50, 100, 150, 200, 250, 300]),
                                                (25, [30, 50, 80, 100, 130, 150, 180, 200, 230, 250, 280, 300])])
def test_a_row_is_logged_every_log_interval(tmp_path, log_interval, steps):
    """Batches of 10 frames: a row each time the frames pass a multiple of log_interval (30 for 25,
    50 for 50, ...), not every log_interval frames counted from the last row (30, 60, 90: a drift)."""
    trainer = make_trainer(tmp_path, f"trainer.log_interval={log_interval}")
    calls = record_updates(trainer)
    trainer.fit()
    trainer.close()
    rows = trainer.logger.rows
    # eval_interval=0: one evaluation, at the end, in a row of its own.
    assert [step for step, _ in rows] == steps + [300]
    assert [("eval_return" in m) for _, m in rows] == [False] * len(steps) + [True]
    previous = 0
    for step, metrics in rows[:-1]:
        window = [losses["loss_value"] for frames, losses in calls if previous < frames <= step]
        previous = step
        assert metrics["updates"] == sum(frames <= step for frames, _ in calls)
        if window:  # the row reports the mean loss over the updates since the last row
            assert metrics["loss_value"] == pytest.approx(sum(window) / len(window), rel=1e-12)
        else:
            assert "loss_value" not in metrics and "grad_norm" not in metrics
    assert "loss_value" in rows[-2][1] and "loss_value" not in rows[-1][1]


def test_evaluation_every_eval_interval_and_none_repeated_at_the_end(tmp_path):
    trainer = make_trainer(tmp_path, "trainer.eval_interval=100", "trainer.log_interval=1000")
    evaluations = []
    evaluate = trainer.evaluator.__call__
    trainer.evaluator = lambda: (evaluations.append(trainer.frames), evaluate())[1]
    result = trainer.fit()
    trainer.close()
    assert evaluations == [100, 200, 300]
    assert [step for step, m in trainer.logger.rows if "eval_return" in m] == [100, 200, 300]
    assert result == {k: v for k, v in trainer.logger.rows[-1][1].items() if k.startswith("eval_")}


@pytest.mark.parametrize("progress", [True, False])
def test_progress_output(tmp_path, capsys, progress):
    trainer = make_trainer(tmp_path, f"trainer.progress={str(progress).lower()}", "trainer.log_interval=100",
                           record=False)
    trainer.fit()
    trainer.close()
    err = capsys.readouterr().err
    assert ("300/300 frames (100.0%)" in err) is progress
    assert ("frames/s" in err and "eval " in err) is progress


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, "trainer.checkpoint_interval=100")
    save = torch.save
    saves = []

    def failing_save(obj, f, *args, **kwargs):
        saves.append(obj["frames"])
        if len(saves) == 2:  # half a file, then the disk fills up
            f.write(b"PK\x03\x04 truncated")
            raise OSError("No space left on device")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="No space left"):
        trainer.fit()
    trainer.close()
    monkeypatch.undo()
    assert saves == [100, 200]
    assert os.listdir(tmp_path / "checkpoints") == ["last.pt"]  # no temp file left behind
    resumed = make_trainer(tmp_path)
    resumed.resume(tmp_path / "checkpoints" / "last.pt")
    assert (resumed.frames, resumed.updates) == (100, 1)
    resumed.close()


def signal_at(trainer: Trainer, *signals: int, frames: int = 150) -> None:
    """Makes the trainer's loss send this process ``signals`` on the update at ``frames``."""
    forward = trainer.loss_module.forward

    def signalling(td):
        if trainer.frames == frames:
            for signum in signals:
                os.kill(os.getpid(), signum)
        return forward(td)

    trainer.loss_module.forward = signalling


def test_sigint_stops_after_the_batch_with_a_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path)
    signal_at(trainer, signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match="interrupted by SIGINT; checkpoint written to .*last.pt") as info:
        trainer.fit()
    trainer.close()
    assert info.value.signum == signal.SIGINT
    assert load_checkpoint(info.value.checkpoint)["frames"] == trainer.frames == 150
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


@pytest.mark.parametrize("second", ["the same at once", "another"])
def test_a_signal_delivered_twice_is_one_signal_but_a_second_one_stops_at_once(tmp_path, second):
    """A job scheduler signals every process of a job, and tune.py passes the signal on to its
    workers too: a worker got SIGTERM twice and took the second for a user's "stop now", leaving no
    checkpoint."""
    trainer = make_trainer(tmp_path)
    signal_at(trainer, signal.SIGTERM, signal.SIGTERM if second == "the same at once" else signal.SIGINT)
    if second == "another":
        with pytest.raises(KeyboardInterrupt):
            trainer.fit()
    else:
        with pytest.raises(TrainingInterrupted, match="interrupted by SIGTERM; checkpoint written"):
            trainer.fit()
    trainer.close()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_non_finite_loss_names_update_and_key(tmp_path):
    trainer = make_trainer(tmp_path)
    forward = trainer.loss_module.forward

    def third_is_infinite(td):
        out = forward(td)
        return out.set("loss_value", out["loss_value"] * math.inf) if trainer.updates == 2 else out

    trainer.loss_module.forward = third_is_infinite
    with pytest.raises(NonFiniteError, match=r"non-finite loss at update 3 \(frame 120\): loss_value=inf; "
                                             r"the last good checkpoint is none"):
        trainer.fit()
    trainer.close()


def test_non_finite_gradient_names_the_parameters(tmp_path):
    trainer = make_trainer(tmp_path)
    first = next(iter(trainer.loss_module.parameters()))
    first.register_hook(lambda grad: grad * math.nan)
    with pytest.raises(NonFiniteError, match=r"non-finite gradient at update 1 \(frame 100\) in "
                                             r"\['value_network_params\..*'\]; the last good checkpoint"):
        trainer.fit()
    trainer.close()


def test_a_gradient_norm_that_overflows_says_so_and_that_every_gradient_is_finite(tmp_path):
    """Finite gradients whose squares sum past float32's range: the message said "non-finite gradient
    ... in []" (no parameter named)."""
    trainer = make_trainer(tmp_path)
    first = next(iter(trainer.loss_module.parameters()))
    first.register_hook(lambda grad: torch.full_like(grad, 1e30))
    with pytest.raises(NonFiniteError) as err:
        trainer.fit()
    trainer.close()
    assert str(err.value).startswith("non-finite gradient norm at update 1 (frame 100): the gradient norm "
                                     "overflowed (inf), every gradient is finite; the last good checkpoint")


def test_a_checkpoint_without_a_component_this_run_has_is_named_in_plain_words(tmp_path):
    from rlkit.errors import CheckpointMismatchError

    trainer = make_trainer(tmp_path)
    state = trainer.state_dict()
    del state["components"], state["replay_buffer"]  # (an old checkpoint, or another algorithm's)
    with pytest.raises(CheckpointMismatchError, match=r"^the checkpoint has no replay_buffer, this run has one$"):
        trainer.check_state(state)
    trainer.close()
    a2c = make_trainer(tmp_path / "a2c", algo="a2c")
    with pytest.raises(CheckpointMismatchError, match=r"^the checkpoint has a replay_buffer, this run has none$"):
        a2c.check_state({k: v for k, v in trainer.state_dict().items() if k != "components"})
    a2c.close()


@pytest.mark.parametrize("concat_max", [0, 1 << 20], ids=["get_total_norm", "concatenated"])
@pytest.mark.parametrize("max_grad_norm", ["null", "0.05"])
def test_logged_grad_norm_is_the_norm_before_clipping(tmp_path, max_grad_norm, concat_max, monkeypatch):
    monkeypatch.setattr(trainer_module, "_CONCAT_NORM_MAX", concat_max)  # both ways of taking the norm
    trainer = make_trainer(tmp_path, f"algo.max_grad_norm={max_grad_norm}", "total_frames=120")
    norms: list[float] = []
    step = trainer.optimizer.step

    def recording_step(*args, **kwargs):
        # by optimizer.step the gradients are final: clipped (to 0.05) or untouched (no limit)
        grads = [p.grad for p in trainer.params if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
        return step(*args, **kwargs)

    trainer.optimizer.step = recording_step
    trainer.fit()
    trainer.close()
    rows = [m for _, m in trainer.logger.rows if "grad_norm" in m]
    assert trainer.updates == 3 and len(norms) == 3 and rows
    if max_grad_norm == "null":  # no clipping: the logged mean norm is that of the gradients applied
        assert rows[-1]["grad_norm"] == pytest.approx(sum(norms) / 3, rel=1e-5)
    else:
        assert max(norms) == pytest.approx(0.05, rel=1e-4)
        assert rows[-1]["grad_norm"] > 0.05  # the norm before clipping is logged


def test_the_unclipped_grad_norm_of_a_larger_network_is_get_total_norms_to_the_bit(tmp_path, monkeypatch):
    """Past ``_CONCAT_NORM_MAX`` parameters the norm is taken as ``get_total_norm`` takes it (the
    norm of the per-tensor norms), without its grouping by device and dtype: the same bits."""
    monkeypatch.setattr(trainer_module, "_CONCAT_NORM_MAX", 0)
    trainer = make_trainer(tmp_path, "total_frames=120")
    generator = torch.Generator().manual_seed(0)
    for p in trainer.params:
        p.grad = torch.randn(p.shape, generator=generator) * 1e3
    grads = [p.grad for p in trainer.params]
    reference = torch.nn.utils.get_total_norm

    def refused(*args, **kwargs):
        raise AssertionError("get_total_norm called: one device and dtype take the direct form")

    monkeypatch.setattr(torch.nn.utils, "get_total_norm", refused)
    norm = trainer._grad_norm()
    assert torch.equal(norm, reference(grads))
    trainer.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"max_grad_norm": -1.0}, r"max_grad_norm=-1.0 is invalid; expected a finite number > 0, or None"),
    ({"eval_interval": -5}, r"eval_interval=-5 is invalid; expected an integer >= 0 \(0: never\)"),
    ({"total_frames": -10}, r"total_frames=-10 is invalid"),
    ({"batch_size": 2.5}, r"batch_size=2.5 is invalid"),
    ({"lr_schedule": "cosine"}, r"unknown lr_schedule 'cosine'; valid choices: \['constant', 'linear'\]"),
])
def test_settings_built_in_python_are_checked(kwargs, message):
    """The config path refused these; TrainerSettings built directly took them (a negative
    max_grad_norm made clipping ascend the gradient, a negative interval disabled its feature)."""
    with pytest.raises(ValueError, match=message):
        TrainerSettings(**{"total_frames": 256, **kwargs})


def test_a_collector_and_settings_of_different_budgets_are_refused(tmp_path):
    """The collector's budget ran the loop while the settings' drove the schedules: a linear learning
    rate reached 0 at the settings' 256 frames and three quarters of the 1024 did nothing."""
    from rlkit.collectors import Collector
    from rlkit.envs import GymEnv
    from rlkit.modules import Categorical, ProbabilisticActor, SafeModule, ValueOperator
    from rlkit.objectives import A2CLoss

    env = GymEnv("CartPole-v1", num_envs=2, seed=0)
    actor = ProbabilisticActor(SafeModule(torch.nn.Linear(4, 2), in_keys=["observation"], out_keys=["logits"]),
                               in_keys=["logits"], spec=env.action_spec, distribution_class=Categorical)
    loss = A2CLoss(actor, ValueOperator(torch.nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="the collector collects 1024 frames but settings.total_frames is 256"):
        Trainer(collector=Collector(env, actor, frames_per_batch=32, total_frames=1024), loss_module=loss,
                optimizer=torch.optim.Adam(loss.parameters(), lr=1e-3), run_dir=tmp_path,
                settings=TrainerSettings(total_frames=256, lr_schedule="linear"))
    env.close()


def signalling_evaluator(trainer: Trainer, at_frames: int, signum: int = signal.SIGTERM) -> None:
    """Makes the trainer's evaluation at ``at_frames`` receive ``signum`` while it runs."""
    evaluator = trainer.evaluator

    class Signalling:
        def __call__(self, *args):
            if trainer.frames == at_frames:
                os.kill(os.getpid(), signum)
            return evaluator(*args)

        def __getattr__(self, name):
            return getattr(evaluator, name)

    trainer.evaluator = Signalling()


@pytest.mark.parametrize("last", ["periodic", "closing"])
def test_a_stop_signal_during_the_last_evaluation_completes_the_run_and_says_so(tmp_path, capfd, last):
    """SIGTERM during a run's last evaluation: a periodic one at the budget ended the run interrupted
    (exit 143), but its checkpoint was complete, so the resume said "nothing to resume" (exit 2) and a
    resume-until-success loop never ended; during the closing one, the run completed (exit 0) after a
    notice that it "stops when it ends, with a checkpoint"."""
    interval = "trainer.eval_interval=100" if last == "periodic" else "trainer.eval_interval=0"
    trainer = make_trainer(tmp_path, interval)
    signalling_evaluator(trainer, 300)
    metrics = trainer.fit()  # (complete: no TrainingInterrupted)
    trainer.close()
    assert set(metrics) >= {"eval_return"} and trainer.frames == 300
    err = capfd.readouterr().err
    assert "SIGTERM received during the run's last evaluation at frame 300: its budget is done, so the run " \
           "completes when the evaluation ends (exit status 0, nothing to resume)" in err, err
    assert "SIGTERM received at the end of the run (frame 300" in err and "the run completed; nothing to resume" in err
    assert "stops when it ends, with a checkpoint" not in err
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["frames"] == 300
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize("when", ["the last batch", "the closing checkpoint"])
def test_a_stop_signal_before_the_closing_evaluation_stops_and_the_resume_evaluates(tmp_path, monkeypatch, when):
    """Stopped with the budget done but its closing evaluation not begun: interrupted, with the
    checkpoint of the last frame, whose resume has the evaluation still to do (not "complete")."""
    trainer = make_trainer(tmp_path)
    if when == "the last batch":
        forward = trainer.loss_module.forward

        def interrupting(td):
            if trainer.frames == 300:
                os.kill(os.getpid(), signal.SIGTERM)
            return forward(td)

        trainer.loss_module.forward = interrupting
    else:
        save = trainer.save

        def signalled_save(snapshot=False):
            if trainer.frames == 300:
                os.kill(os.getpid(), signal.SIGTERM)
            return save(snapshot)

        monkeypatch.setattr(trainer, "save", signalled_save)
    with pytest.raises(TrainingInterrupted, match="interrupted by SIGTERM"):
        trainer.fit()
    trainer.close()
    resumed = make_trainer(tmp_path)
    resumed.resume(tmp_path / "checkpoints" / "last.pt")
    assert resumed.frames == 300 and resumed.end_pending()  # (the resume runs the closing evaluation)
    resumed.close()


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_stops_with_a_checkpoint_like_sigterm(tmp_path):
    """Closing the terminal (SIGHUP) killed the run with status 129: no checkpoint, no end: line."""
    trainer = make_trainer(tmp_path)
    signal_at(trainer, signal.SIGHUP)

    def unhandled(signum, frame):
        raise AssertionError("SIGHUP reached the default handler: the trainer does not handle it")

    previous = signal.signal(signal.SIGHUP, unhandled)  # (by default SIGHUP would end pytest itself)
    try:
        with pytest.raises(TrainingInterrupted, match="interrupted by SIGHUP; checkpoint written to .*last.pt") as info:
            trainer.fit()
        assert signal.getsignal(signal.SIGHUP) is unhandled  # handler restored
    finally:
        signal.signal(signal.SIGHUP, previous)
    trainer.close()
    assert info.value.signum == signal.SIGHUP and 128 + info.value.signum == 129
    assert load_checkpoint(info.value.checkpoint)["frames"] == 150


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
@pytest.mark.parametrize("name", ["SIGHUP", "SIGINT"])
def test_a_run_started_with_nohup_goes_on_when_its_terminal_closes(tmp_path, name):
    """nohup ignores SIGHUP; the trainer's handler replaced that, and the run stopped with status 129.
    A shell's background job (``cmd &``) ignores SIGINT: the run stopped on a Ctrl-C at the terminal."""
    sig = getattr(signal, name)
    trainer = make_trainer(tmp_path)
    signal_at(trainer, sig)
    previous = signal.signal(sig, signal.SIG_IGN)  # (as nohup / a shell's background job starts it)
    try:
        trainer.fit()
        assert signal.getsignal(sig) is signal.SIG_IGN
    finally:
        signal.signal(sig, previous)
    trainer.close()
    assert trainer.frames == trainer.settings.total_frames


def test_a_stop_signal_during_the_evaluation_that_stops_the_run_early_completes_it(tmp_path):
    """The run stopped with status 143 at the evaluation that reached the target, and its resume
    trained on past where the uninterrupted run stops: it ends there, complete, as without the signal."""
    trainer = make_trainer(tmp_path, "trainer.early_stop=true", "env.target_return=-1000", "trainer.eval_interval=100")
    evaluate = trainer.evaluator

    def signalled():
        os.kill(os.getpid(), signal.SIGTERM)
        return evaluate()

    trainer.evaluator = signalled
    metrics = trainer.fit()  # (no TrainingInterrupted)
    trainer.close()
    assert trainer.frames == 100 and metrics["eval_return"] >= -1000  # (stopped where it reached the target)


def test_a_full_disk_met_by_a_csv_row_is_named_as_a_checkpoints_is(tmp_path):
    """An episodes.csv row that found no space ended in a traceback of the OSError (only a checkpoint's
    full disk was said in one line)."""
    import errno

    from rlkit.trainers.checkpoint import NoSpaceError

    trainer = make_trainer(tmp_path, "trainer.checkpoint_interval=100")
    record = trainer.episodes.record

    def full(frames, returns, lengths):
        if frames > 200:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "episodes.csv"))
        record(frames, returns, lengths)

    trainer.episodes.record = full
    with pytest.raises(NoSpaceError, match=rf"^no space left on the device writing {tmp_path / 'episodes.csv'} \(.+ "
                                           rf"free\); the last good checkpoint is {trainer.checkpoint_path}$"):
        trainer.fit()
    trainer.close()


def test_a_full_disk_stops_the_run_naming_the_disk_and_the_last_good_checkpoint(tmp_path, monkeypatch):
    """torch.save reported the full disk as `RuntimeError: ... unexpected pos 203520 vs 203408`, and so
    did train.log's end: line."""
    trainer = make_trainer(tmp_path, "trainer.checkpoint_interval=100")
    save = torch.save
    saves = []

    def disk_fills_up(obj, f, *args, **kwargs):
        saves.append(obj["frames"])
        if len(saves) == 2:
            try:
                f.write(b"PK\x03\x04 part of the file")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError:  # (as torch's writer does: its own error, the write's as its context)
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 203520 vs 203408")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_fills_up)
    last = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(ResourceError, match=rf"^no space left on the device writing {re.escape(str(last))} "
                                            rf"\(.* free\); the last good checkpoint is {re.escape(str(last))}$"):
        trainer.fit()
    trainer.close()
    monkeypatch.undo()
    assert os.listdir(tmp_path / "checkpoints") == ["last.pt"]  # no temp file left behind
    assert load_checkpoint(last)["frames"] == 100


def test_several_seeds_in_one_process_complete_on_a_stop_signal_during_their_last_evaluation(tmp_path, capfd):
    """The multi-seed trainer as the ordinary one (see above): interrupted with a complete checkpoint."""
    from rlkit.factories import build_multiseed_trainer, open_multiseed_outputs

    overrides = ["algo=dqn", *OFF_POLICY, "total_frames=300", "num_seeds=2", "trainer.eval_episodes=2",
                 "trainer.progress=false", "trainer.early_stop=false", "trainer.eval_interval=100",
                 "trainer.checkpoint_interval=0", "logger=none"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        settings = validate_config(compose("config", overrides=overrides))
    trainer = build_multiseed_trainer(settings, tmp_path)
    open_multiseed_outputs(trainer, settings, [{} for _ in trainer.seeds])
    signalling_evaluator(trainer, 300)
    try:
        results = trainer.fit()  # (complete: no TrainingInterrupted)
    finally:
        trainer.close()
    assert sorted(results) == [0, 1] and trainer.frames == 300
    assert "the run completes when the evaluation ends" in capfd.readouterr().err


def _counted_reads(monkeypatch) -> dict[str, int]:
    """Counts the host reads of tensor values (``float()``, ``tolist``, ``item``) from now on."""
    counts = {"__float__": 0, "tolist": 0, "item": 0}
    for name in counts:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counts


def test_logged_scalars_read_at_once_are_the_floats_read_one_by_one(monkeypatch):
    """Off the CPU every logged scalar is read in one transfer (before the optimiser step); the values
    are those float() gives, for every dtype a loss may log."""
    from tensordict import TensorDict

    losses = TensorDict({"loss_a": torch.tensor(0.1), "loss_b": torch.tensor(1 / 3, dtype=torch.float64),
                         "entropy": torch.tensor(0.7, dtype=torch.float16), "clipped": torch.tensor(2 ** 40 + 1),
                         "capped": torch.tensor(True)}, [])
    total, norm = losses["loss_a"] + losses["loss_b"], torch.tensor(1e-3)
    loss_keys, extras = trainer_module.logged_outputs(losses)
    expected = (float(total), float(norm), [float(losses[k]) for k in loss_keys], [float(losses[k]) for k in extras])
    counts = _counted_reads(monkeypatch)
    assert trainer_module.read_logged_scalars(total, norm, losses, loss_keys, extras, at_once=True) == expected
    assert counts == {"__float__": 0, "tolist": 1, "item": 0}
    # A single loss is the total; without extras the CPU reads two floats.
    single = TensorDict({"loss_a": torch.tensor(0.1)}, [])
    assert trainer_module.read_logged_scalars(single["loss_a"], norm, single, ["loss_a"], [], at_once=True) == (
        float(single["loss_a"]), float(norm), [float(single["loss_a"])], [])
    assert trainer_module.read_logged_scalars(single["loss_a"], norm, single, ["loss_a"], []) == (
        float(single["loss_a"]), float(norm), [float(single["loss_a"])], [])


def test_an_update_off_the_cpu_reads_its_logged_scalars_once_before_the_step(tmp_path, monkeypatch):
    """A2C's two losses: with every scalar read at once (what a non-CPU device does) the update reads
    the device once, nothing after the optimiser step, and logs the rows of the CPU's reads."""
    def rows(at_once: bool) -> list[tuple[int, dict[str, float]]]:
        read = trainer_module.read_logged_scalars
        monkeypatch.setattr(trainer_module, "read_logged_scalars",
                            lambda *args: read(*args, at_once=at_once) if at_once else read(*args))
        torch.manual_seed(0)  # (the same network and actions in both runs)
        trainer = make_trainer(tmp_path / str(at_once), "total_frames=120", algo="a2c")
        step = trainer.optimizer.step
        after_step: list[int] = []
        trainer.optimizer.step = lambda *a, **k: (step(*a, **k), after_step.append(counts["__float__"]))[0]
        updates = trainer._optimise

        def optimise(sample):
            counts.update(dict.fromkeys(counts, 0))
            updates(sample)
            if at_once:  # one read, before the step; none after it
                assert counts == {"__float__": 0, "tolist": 1, "item": 0} and after_step[-1] == 0

        trainer._optimise = optimise
        trainer.fit()
        trainer.close()
        assert trainer.updates == 3
        return [(step, {k: v for k, v in m.items() if k != "fps"}) for step, m in trainer.logger.rows]

    counts = _counted_reads(monkeypatch)
    assert rows(True) == rows(False)
