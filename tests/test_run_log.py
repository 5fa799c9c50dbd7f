"""The run's log (``train.log``) and the console's stop announcements, for ``rlkit.run.run`` in-process:
the documented lines (README "Run log"), once each, through a start, a resume and the three early
ends; the application's own logging left as it was."""
from __future__ import annotations

import logging
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from rlkit.registry import ALGORITHMS
from rlkit.run import run
from rlkit.trainers import NonFiniteError, TrainingInterrupted

CONF = str(Path(__file__).resolve().parents[1] / "conf")
TINY = ["algo=dqn", "algo.learning_starts=200", "algo.batch_size=32", "algo.hidden_sizes=[32]",
        "trainer.eval_episodes=2", "trainer.early_stop=false", "trainer.log_interval=200",
        "trainer.eval_interval=400", "trainer.checkpoint_interval=500"]
LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]\[rlkit\]\[(INFO|WARNING)\] - (?P<text>.*)$")


def train(run_dir: Path, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return run(cfg, run_dir, overrides=overrides)


def log_lines(run_dir: Path) -> list[str]:
    lines = (run_dir / "train.log").read_text().splitlines()
    assert all(LINE.match(line) for line in lines), lines
    return [LINE.match(line)["text"] for line in lines]


def kinds(lines: list[str]) -> list[str]:
    return [line.split(":")[0].split(" ")[0] for line in lines]


def test_train_log_has_the_documented_lines_for_a_start_and_a_resume(tmp_path):
    train(tmp_path, TINY + ["total_frames=1000", "trainer.progress=false"])
    lines = log_lines(tmp_path)
    assert kinds(lines)[:4] == ["start", "config", "config", "config"] and kinds(lines)[-1] == "end"
    assert set(kinds(lines)[4:-1]) == {"checkpoint", "eval"}
    assert lines[0] == f"start: dqn CartPole-v1 seed 0, 1000 frames, run dir {tmp_path}"
    assert lines[1] == ("config: algo dqn, env CartPole-v1, seed 0, total_frames 1000, device cpu, num_threads 1, "
                        "value_estimator td0, logger csv")
    assert lines[2].startswith("config: algo num_envs=1 hidden_sizes=[32] ") and " optim.lr=0.00025 " in lines[2]
    assert lines[3] == "config: value_estimator gamma=0.99"
    last = tmp_path / "checkpoints" / "last.pt"
    # (frame 1000 once: the periodic checkpoint there is the one the run would write at its end)
    assert [line for line in lines if line.startswith("checkpoint")] == [
        f"checkpoint: frame {frames} -> {last}" for frames in (0, 500, 1000)]
    evals = [line for line in lines if line.startswith("eval")]
    assert [line.split(":")[1] for line in evals] == [" frame 400", " frame 800", " frame 1000"]
    assert all(re.fullmatch(r"eval: frame \d+: return [\d.]+ ± [\d.]+, length [\d.]+", line) for line in evals)
    assert re.fullmatch(r"end: budget done at 1000 frames, \d+ updates, wall [\d.]+ s; eval_return [\d.]+, "
                        r"eval_return_std [\d.]+, eval_length [\d.]+", lines[-1])

    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        args = [f"resume={tmp_path}", "total_frames=1200"]
        run(compose("config", overrides=args), tmp_path, overrides=args)
    resumed = log_lines(tmp_path)[len(lines):]
    assert resumed[0] == f"resume 1: from {last} at 1000 frames, to 1200 frames"
    assert kinds(resumed)[:4] == ["resume", "config", "config", "config"]
    assert resumed[4].startswith("eval: frame 1200: return ") and resumed[5] == f"checkpoint: frame 1200 -> {last}"
    assert resumed[-1].startswith("end: budget done at 1200 frames")



def test_a_resume_given_a_relative_path_logs_the_checkpoint_by_its_absolute_path(tmp_path, monkeypatch):
    """train.log names files by their absolute paths (read from anywhere later); a resume's line had the
    path as typed."""
    monkeypatch.chdir(tmp_path)
    base = ["total_frames=200", "trainer.eval_episodes=1", "trainer.progress=false", "logger=none"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        run(compose("config", overrides=base), Path("run"))
        args = ["resume=run", "total_frames=300"]
        run(compose("config", overrides=args), Path("run"), overrides=args)
    resumed = [line for line in log_lines(tmp_path / "run") if line.startswith("resume 1:")]
    assert resumed == [f"resume 1: from {tmp_path / 'run' / 'checkpoints' / 'last.pt'} at 200 frames, to 300 frames"]

def test_an_early_stop_is_announced_and_logged(tmp_path, capsys):
    train(tmp_path, TINY + ["total_frames=3000", "trainer.early_stop=true", "env.target_return=1"])
    err = capsys.readouterr().err.splitlines()  # not a terminal: plain lines
    assert re.fullmatch(r"400/3,000 frames \(13\.3%\) \| [\d,]+ frames/s \| return \S+ \| eval \S+ \| "
                        r"\d\d:\d\d<\d\d:\d\d", err[-2])
    assert re.fullmatch(r"stopped early at frame 400: greedy eval return \S+ reached the target 1", err[-1])
    end = log_lines(tmp_path)[-1]
    assert end.startswith("end: target reached at 400 frames") and "(stopped early at frame 400: greedy" in end


def test_a_non_finite_stop_is_announced_and_logged(tmp_path, monkeypatch, capsys):
    forward = ALGORITHMS["dqn"].loss.forward
    calls = []

    def nan_at_update_30(self, td):
        out = forward(self, td)
        calls.append(None)
        return out.set("loss_value", out["loss_value"] * torch.nan) if len(calls) == 30 else out

    monkeypatch.setattr(ALGORITHMS["dqn"].loss, "forward", nan_at_update_30)
    with pytest.raises(NonFiniteError):
        train(tmp_path, TINY + ["total_frames=1000"])
    err = capsys.readouterr().err.splitlines()
    assert err[-2].startswith("490/1,000 frames (49.0%) | ")  # the last state, then why it stopped
    assert err[-1] == "stopped: non-finite loss at update 30 (frame 490): loss_value=nan"
    assert log_lines(tmp_path)[-1].startswith("end: non-finite at 490 frames, 29 updates, wall ")


@pytest.mark.parametrize("seeds", [[], ["num_seeds=2"]])
def test_an_interrupt_is_announced_and_logged(tmp_path, monkeypatch, capsys, seeds):
    """The checkpoint line, then the end line (a multi-seed run logged its end before its checkpoint)."""
    forward = ALGORITHMS["dqn"].loss.forward
    calls = []

    def interrupting(self, td):
        calls.append(None)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return forward(self, td)

    monkeypatch.setattr(ALGORITHMS["dqn"].loss, "forward", interrupting)
    with pytest.raises(TrainingInterrupted):
        train(tmp_path, TINY + ["total_frames=1000", *seeds])
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "interrupted by SIGTERM at frame 240; checkpoint written"
    lines = log_lines(tmp_path)
    assert lines[-2] == f"checkpoint: frame 240 -> {tmp_path / 'checkpoints' / 'last.pt'}" + (
        " (all 2 seeds)" if seeds else "")
    assert lines[-1].startswith("end: interrupted at 240 frames, 5 updates, wall ")  # (a multi-seed run's too)
    assert "s (interrupted by SIGTERM at frame 240; checkpoint written); " in lines[-1]
    if seeds:
        assert lines[-1].endswith("by seed: seed 0 (interrupted) no evaluation, seed 1 (interrupted) no evaluation"), lines[-1]


@pytest.mark.parametrize("seeds", [[], ["num_seeds=2"]])
def test_a_signal_right_after_a_periodic_checkpoint_does_not_write_it_again(tmp_path, monkeypatch, seeds):
    """The interrupt wrote the state the periodic checkpoint of the same frame had just written (a
    second 7 GB write for a full Atari replay)."""
    forward = ALGORITHMS["dqn"].loss.forward
    calls = []

    def interrupting(self, td):
        calls.append(None)
        if len(calls) == 5:  # (in the batch that ends at frame 240, whose checkpoint is due)
            os.kill(os.getpid(), signal.SIGTERM)
        return forward(self, td)

    monkeypatch.setattr(ALGORITHMS["dqn"].loss, "forward", interrupting)
    with pytest.raises(TrainingInterrupted):
        train(tmp_path, TINY + ["total_frames=1000", "trainer.checkpoint_interval=240", *seeds])
    lines = log_lines(tmp_path)
    assert [line for line in lines if line.startswith("checkpoint: frame 240 ")] == [lines[-2]]
    assert lines[-1].startswith("end: interrupted")
    from rlkit.trainers import load_checkpoint

    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["frames"] == 240


@pytest.mark.parametrize("seeds", [[], ["num_seeds=2"]])
def test_a_signal_during_an_evaluation_is_announced_at_once(tmp_path, monkeypatch, capfd, seeds):
    """An Atari evaluation takes minutes and the stop waited for it in silence: users pressed Ctrl-C
    again, which stops without a checkpoint. The first signal is now announced as it arrives."""
    from rlkit.trainers import evaluator as evaluator_module
    from rlkit.trainers import multiseed

    patched = multiseed.MultiSeedEvaluator if seeds else evaluator_module.Evaluator
    evaluate = patched.__call__
    def signalled(self, *args):
        os.kill(os.getpid(), signal.SIGTERM)  # (the handler runs here, during the evaluation)
        return evaluate(self, *args)

    monkeypatch.setattr(patched, "__call__", signalled)
    with pytest.raises(TrainingInterrupted):
        train(tmp_path, TINY + ["total_frames=1000", *seeds])
    message = ("SIGTERM received during an evaluation at frame 400: the run stops when it ends, with a "
               "checkpoint; a second signal stops at once, without one")
    assert message in capfd.readouterr().err  # (os.write: before the evaluation went on)
    lines = log_lines(tmp_path)
    first_eval = next(i for i, line in enumerate(lines) if line.startswith("eval: ") and "frame 400" in line)
    assert lines.index(message) < first_eval  # (said as it arrived, before the evaluation ended)
    assert lines[-2].startswith("checkpoint: frame 400 -> ")


def test_the_applications_logging_is_left_as_it_was(tmp_path):
    """The application logs warnings only: rlkit's INFO lines go to train.log, not to its handler;
    rlkit's warnings still reach it; the logger's level and propagation are restored."""
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    root = logging.getLogger()
    root.addHandler(handler)
    rlkit_log = logging.getLogger("rlkit")
    before = (rlkit_log.level, rlkit_log.propagate, list(rlkit_log.handlers), root.level)
    try:
        root.setLevel(logging.WARNING)
        train(tmp_path, TINY + ["total_frames=400", "trainer.progress=false"])
        rlkit_log.warning("a warning after the run")
    finally:
        root.removeHandler(handler)
    assert [r.getMessage() for r in seen if r.name == "rlkit"] == ["a warning after the run"]
    assert (rlkit_log.level, rlkit_log.propagate, list(rlkit_log.handlers), root.level) == before
    assert kinds(log_lines(tmp_path))[0] == "start"


def test_a_run_from_before_a_root_key_existed_resumes_and_loads_with_its_default(tmp_path):
    """A run started before ``num_seeds`` / ``trainer.video_interval`` existed: its saved config lacks
    them; resume and ``load_agent`` give them the root config's defaults and the resume logs them."""
    import yaml

    from rlkit import load_agent

    train(tmp_path, TINY + ["total_frames=500", "trainer.progress=false"])
    config = tmp_path / "config.yaml"
    saved = yaml.safe_load(config.read_text())
    del saved["num_seeds"], saved["trainer"]["video_interval"]
    config.write_text(yaml.safe_dump(saved))
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        args = [f"resume={tmp_path}", "total_frames=700"]
        run(compose("config", overrides=args), tmp_path, overrides=args)
    lines = log_lines(tmp_path)
    added = [line for line in lines if line.startswith("config keys added")]
    assert added == ["config keys added since this run started take their defaults: num_seeds=1, "
                     "trainer.video_interval=None"]
    resaved = yaml.safe_load(config.read_text())
    assert resaved["num_seeds"] == 1 and resaved["trainer"]["video_interval"] is None
    del resaved["num_seeds"]
    config.write_text(yaml.safe_dump(resaved))
    assert load_agent(tmp_path).act(torch.zeros(4)).shape == ()
