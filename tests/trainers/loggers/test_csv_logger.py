"""CSVLogger: wide format, exact values, flushed rows, atomic header widening, resume."""
from __future__ import annotations

import math
import os

import pytest
import torch

from rlkit.trainers.loggers import CSVLogger, read_metrics_csv
from rlkit.trainers.loggers import csv_logger as csv_module


def test_wide_format_with_sorted_columns_and_empty_cells(tmp_path):
    with CSVLogger(tmp_path / "run") as logger:
        logger.log_metrics({"loss_value": 1.0}, step=0)
        logger.log_metrics({"loss_value": torch.tensor(0.5), "episode_return": 9}, step=100)
        logger.log_metrics({"eval_return": 200.0}, step=100)
        assert logger.columns == ["step", "episode_return", "eval_return", "loss_value"]
    text = (tmp_path / "run" / "metrics.csv").read_text()
    assert text.split("\n") == [
        "step,episode_return,eval_return,loss_value",
        "0,,,1.0",
        "100,9.0,,0.5",
        "100,,200.0,",
        "",
    ]
    assert read_metrics_csv(tmp_path / "run") == [
        {"step": 0, "loss_value": 1.0},
        {"step": 100, "loss_value": 0.5, "episode_return": 9.0},
        {"step": 100, "eval_return": 200.0},
    ]


def test_values_round_trip_exactly(tmp_path):
    values = {"a": 0.1 + 0.2, "b": 1e-310, "c": float("inf"), "d": 2.0**60 + 1, "e": float("nan")}
    with CSVLogger(tmp_path) as logger:
        logger.log_metrics(values, step=7)
    (row,) = read_metrics_csv(tmp_path / "metrics.csv")
    assert row["step"] == 7 and type(row["step"]) is int
    assert row["a"] == 0.1 + 0.2 and row["b"] == 1e-310 and row["c"] == math.inf
    assert row["d"] == float(2**60 + 1) and math.isnan(row["e"])


def test_each_row_is_on_disk_before_close(tmp_path):
    logger = CSVLogger(tmp_path)
    logger.log_metrics({"loss_value": 2.0}, step=1)
    logger.log_metrics({"loss_value": 3.0}, step=2)  # appended, not a rewrite
    assert read_metrics_csv(tmp_path) == [{"step": 1, "loss_value": 2.0}, {"step": 2, "loss_value": 3.0}]
    logger.close()


def test_widening_is_atomic_and_fsynced(tmp_path, monkeypatch):
    logger = CSVLogger(tmp_path)
    logger.log_metrics({"loss_value": 1.0}, step=0)
    before = (tmp_path / "metrics.csv").read_bytes()

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(csv_module.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        logger.log_metrics({"loss_value": 2.0, "new_metric": 5.0}, step=1)
    assert (tmp_path / "metrics.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]  # temp file removed

    monkeypatch.undo()
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(csv_module.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    logger.log_metrics({"loss_value": 2.0, "new_metric": 5.0}, step=1)  # the logger is still usable
    logger.close()
    assert synced, "the widened file must be fsynced before it replaces metrics.csv"
    assert read_metrics_csv(tmp_path) == [
        {"step": 0, "loss_value": 1.0},
        {"step": 1, "loss_value": 2.0, "new_metric": 5.0},
    ]


def test_resume_appends_to_the_existing_file(tmp_path):
    with CSVLogger(tmp_path) as logger:
        logger.log_metrics({"loss_value": 1.0}, step=0)
    with CSVLogger(tmp_path) as logger:
        assert logger.columns == ["step", "loss_value"]
        logger.log_metrics({"loss_value": 0.5}, step=10)
        logger.log_metrics({"episode_return": 3.0}, step=20)
    assert read_metrics_csv(tmp_path) == [
        {"step": 0, "loss_value": 1.0},
        {"step": 10, "loss_value": 0.5},
        {"step": 20, "episode_return": 3.0},
    ]


def test_keys_with_commas_and_quotes_survive(tmp_path):
    with CSVLogger(tmp_path) as logger:
        logger.log_metrics({'loss,"weird"': 1.5}, step=3)
    assert read_metrics_csv(tmp_path) == [{"step": 3, 'loss,"weird"': 1.5}]


def test_refuses_a_foreign_metrics_file(tmp_path):
    (tmp_path / "metrics.csv").write_text("time,value\n1,2\n")
    with pytest.raises(ValueError, match=r"metrics.csv' exists but is not a metrics CSV.*\['time'\]"):
        CSVLogger(tmp_path)


def test_step_is_a_reserved_metric_name(tmp_path):
    with CSVLogger(tmp_path) as logger, pytest.raises(ValueError, match="'step' is reserved"):
        logger.log_metrics({"step": 3.0}, step=3)


def test_read_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metrics CSV at .*metrics.csv"):
        read_metrics_csv(tmp_path)


def test_log_config_writes_nothing(tmp_path):
    with CSVLogger(tmp_path) as logger:
        logger.log_config({"algo": {"name": "dqn"}})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv"]
    assert (tmp_path / "metrics.csv").read_text() == "step\n"
