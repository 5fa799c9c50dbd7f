"""TensorBoardLogger: the optional-dependency error, and a read-back when tensorboard is installed."""
from __future__ import annotations

import sys

import pytest

from rlkit.trainers.loggers import TensorBoardLogger


def test_missing_tensorboard_gives_the_install_command(tmp_path, monkeypatch):
    # None in sys.modules makes the import fail whether or not tensorboard is installed.
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ImportError, match=r'needs the optional .tensorboard. package.*pip install "rlkit\[tensorboard\]"'):
        TensorBoardLogger(tmp_path)
    assert not (tmp_path / "tensorboard").exists()


def test_scalars_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with TensorBoardLogger(tmp_path) as logger:
        logger.log_metrics({"loss_value": 0.5, "episode_return": 3.0}, step=10)
        logger.log_metrics({"loss_value": 0.25}, step=20)
        logger.log_config({"algo": {"name": "dqn"}})
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("loss_value")] == [(10, 0.5), (20, 0.25)]
    assert [(e.step, e.value) for e in events.Scalars("episode_return")] == [(10, 3.0)]


def test_a_run_with_logger_tensorboard_writes_every_logged_metric(tmp_path):
    """``logger=tensorboard``: the event files hold the rows of metrics.csv (every ``loss_*`` entry among
    them) at the same frames, and the run's config."""
    pytest.importorskip("tensorboard")
    import csv

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import rlkit

    run_dir = rlkit.train(["algo=dqn", "env=CartPole", "logger=tensorboard", "total_frames=400",
                           "algo.learning_starts=100", "algo.batch_size=16", "trainer.log_interval=100",
                           "trainer.eval_interval=200", "trainer.eval_episodes=2", "trainer.progress=false"],
                          output_dir=tmp_path / "run").run_dir
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss_value", "eval_return"} <= tags
    for tag in tags:
        logged = [(int(row["step"]), float(row[tag])) for row in rows if row.get(tag) not in (None, "")]
        written = events.Scalars(tag)
        assert [e.step for e in written] == [step for step, _ in logged], tag
        # (event files hold float32)
        assert [e.value for e in written] == pytest.approx([value for _, value in logged], rel=1e-6), tag
    assert events.Tags()["tensors"] == ["config/text_summary"]  # the run's config, as text
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert '"total_frames": 400' in text and '"name": "tensorboard"' in text


def test_a_resume_hides_what_earlier_segments_wrote_after_its_checkpoint(tmp_path):
    """A resume cuts metrics.csv back to its checkpoint; TensorBoard kept the lost rows (an interrupt's)
    and both branches of a rewind, two values at one step. The points after the checkpoint's frames
    are purged; those at and before it stay."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with TensorBoardLogger(tmp_path) as first:
        for step in (100, 200, 300, 400):
            first.log_metrics({"eps": step / 1000}, step=step)
    with TensorBoardLogger(tmp_path, resumed_at=200) as resumed:  # (a checkpoint at frame 200)
        for step in (300, 400):
            resumed.log_metrics({"eps": -step / 1000}, step=step)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, round(e.value, 3)) for e in events.Scalars("eps")] == [(100, 0.1), (200, 0.2), (300, -0.3),
                                                                           (400, -0.4)]
