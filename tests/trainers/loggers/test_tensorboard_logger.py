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
