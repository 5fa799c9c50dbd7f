"""TrainerCallback: called after every evaluation with the frames and the metrics; can stop the run."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rlkit.builders import validate_config
from rlkit.factories import build_trainer, open_outputs
from rlkit.run import run
from rlkit.trainers import Trainer, TrainerCallback, load_checkpoint, read_metrics_csv

CONF = str(Path(__file__).resolve().parents[2] / "conf")
TINY = ["total_frames=300", "trainer.eval_episodes=2", "trainer.progress=false", "trainer.early_stop=false",
        "trainer.checkpoint_interval=0", "trainer.log_interval=100", "algo.learning_starts=100",
        "algo.batch_size=16", "algo.hidden_sizes=[16]"]


class Recorder(TrainerCallback):
    """Keeps every call; asks to stop at the evaluations listed in ``stop_at`` (by frames)."""

    def __init__(self, stop_at: tuple[int, ...] = ()) -> None:
        self.calls: list[tuple[int, dict]] = []
        self.stop_at = stop_at

    def on_evaluation(self, frames, metrics):
        self.calls.append((frames, dict(metrics)))
        return frames in self.stop_at


def config(*overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=TINY + list(overrides))


def make_trainer(run_dir: Path, *callbacks: TrainerCallback, overrides: tuple[str, ...] = ()) -> Trainer:
    settings = validate_config(config(*overrides))
    trainer = build_trainer(settings, run_dir, callbacks)
    open_outputs(trainer, settings, run_dir, {})
    return trainer


def test_called_after_every_evaluation_with_the_frames_and_the_logged_metrics(tmp_path):
    hook = Recorder()
    trainer = make_trainer(tmp_path, hook, overrides=("trainer.eval_interval=100",))
    result = trainer.fit()
    trainer.close()
    assert [frames for frames, _ in hook.calls] == [100, 200, 300]  # the one at 300 is also the last
    rows = [row for row in read_metrics_csv(tmp_path / "metrics.csv") if row.get("eval_return") is not None]
    assert [(row["step"], row["eval_return"]) for row in rows] == [(f, m["eval_return"]) for f, m in hook.calls]
    assert sorted(hook.calls[0][1]) == ["eval_length", "eval_return", "eval_return_std"]
    assert result == hook.calls[-1][1]


def test_the_closing_evaluation_is_reported_too(tmp_path):
    hook = Recorder(stop_at=(300,))  # asking to stop at the end changes nothing
    trainer = make_trainer(tmp_path, hook, overrides=("trainer.eval_interval=0",))
    trainer.fit()
    trainer.close()
    assert [frames for frames, _ in hook.calls] == [300]
    assert trainer.frames == 300


def test_true_stops_the_run_with_a_checkpoint_at_the_frames_reached(tmp_path):
    hook, other = Recorder(stop_at=(100,)), Recorder()
    trainer = make_trainer(tmp_path, hook, other, overrides=("trainer.eval_interval=100",))
    result = trainer.fit()
    trainer.close()
    assert trainer.frames == 100
    assert hook.calls == other.calls and len(other.calls) == 1  # every callback sees the evaluation
    assert result == hook.calls[0][1]
    assert load_checkpoint(trainer.checkpoint_path)["frames"] == 100


def test_none_and_false_let_the_run_go_on(tmp_path):
    class Quiet(TrainerCallback):
        def __init__(self) -> None:
            self.answers = iter([None, False, None])

        def on_evaluation(self, frames, metrics):
            return next(self.answers)

    trainer = make_trainer(tmp_path, Quiet(), TrainerCallback(), overrides=("trainer.eval_interval=100",))
    trainer.fit()
    trainer.close()
    assert trainer.frames == 300


def test_run_passes_its_callbacks_to_the_trainer(tmp_path):
    hook = Recorder(stop_at=(200,))
    result = run(config("trainer.eval_interval=100", "logger=none"), tmp_path / "run", callbacks=[hook])
    assert [frames for frames, _ in hook.calls] == [100, 200]
    assert result == hook.calls[-1][1]
    end = (tmp_path / "run" / "train.log").read_text().splitlines()[-1]
    assert "end: stopped by a callback at 200 frames" in end and "stopped early at frame 200 by a callback" in end



def test_a_callback_is_checked_against_the_hook_its_run_calls():
    """A multi-seed run calls on_seed_evaluations alone: an object implementing only that hook was
    refused as "not a trainer callback" (naming on_evaluation, which the run never calls)."""
    from rlkit.errors import ConfigError
    from rlkit.trainers.callbacks import check_callbacks

    class OnlySeeds:
        def on_seed_evaluations(self, frames, by_seed):
            return None

    class OnlyOne:
        def on_evaluation(self, frames, metrics):
            return None

    seeds, one = OnlySeeds(), OnlyOne()
    assert check_callbacks([seeds], num_seeds=2) == [seeds] and check_callbacks([seeds, one], num_seeds=None)
    assert check_callbacks([one], num_seeds=1) == [one]
    with pytest.raises(ConfigError, match=r"is not a trainer callback: .*\(on_evaluation\(frames, metrics\) -> "):
        check_callbacks([seeds], num_seeds=1)
    with pytest.raises(ConfigError, match=r"\(on_seed_evaluations\(frames, by_seed\), the hook a multi-seed run calls"):
        check_callbacks([one], num_seeds=2)
