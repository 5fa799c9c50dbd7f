"""The CSVs a resume reads back: every cell checked, a damaged line named with its file and number."""
from __future__ import annotations

import pytest
import torch

from rlkit.errors import RunDirError
from rlkit.trainers.episodes import EpisodeRecorder, read_episodes
from rlkit.trainers.loggers import CSVLogger, DamagedCSVError, read_metrics_csv


@pytest.fixture
def episodes(tmp_path):
    recorder = EpisodeRecorder(tmp_path)
    recorder.record(100, torch.tensor([9.0, 12.0]), torch.tensor([9, 12]))
    recorder.record(200, torch.tensor([30.0]), torch.tensor([30]))
    recorder.close()
    return recorder.path


@pytest.mark.parametrize(("lines", "message"), [
    (["frame,return,length", "100,9.0,9", "12x,oops"], r"line 3: frame '12x' is not an integer"),
    (["frame,return,length", "100,9.0,9", "110,9.0"], r"line 3: it has 2 cells, the header has 3"),
    (["frame,return,length", "100,9.0,9", "110,9.0,9,1"], r"line 3: it has 4 cells, the header has 3"),
    (["frame,return,length", "100,,9"], r"line 2: its 'return' cell is empty"),
    (["frame,return,length", "100,nine,9"], r"line 2: return 'nine' is not a number"),
    (["frame,return,len", "100,9.0,9"], r"line 1: the header is 'frame,return,len', expected 'frame,return,length'"),
    ([""], r"line 1: no header \(the line is empty\)"),
])
def test_a_damaged_episodes_csv_names_the_line_and_what_is_wrong(tmp_path, lines, message):
    """read_episodes failed with int()'s own error, naming neither the file nor the line."""
    path = tmp_path / "episodes.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DamagedCSVError, match=rf"^{path} {message}$"):
        read_episodes(path)


@pytest.mark.parametrize(("lines", "message"), [
    (["Step,loss", "100,0.5"], r"line 1: the header starts with 'Step', expected 'step'"),
    (["step,loss,loss", "100,0.5,0.5"], r"line 1: the header names column 'loss' twice"),
    (["step,,loss", "100,,0.5"], r"line 1: the header's column 2 has no name"),
    (["step,loss", "100,0.5", "200.5,0.4"], r"line 3: step '200\.5' is not an integer"),
    (["step,loss", "100,0.5", ",0.4"], r"line 3: its 'step' cell is empty"),
    (["step,loss", "100,0.5", "200,0.4x"], r"line 3: loss '0\.4x' is not a number"),
    (["step,loss", "100,0.5", "", "200,0.4"], r"line 3: it has 0 cells, the header has 2"),
])
def test_a_damaged_metrics_csv_names_the_line_and_what_is_wrong(tmp_path, lines, message):
    """read_metrics_csv raised KeyError('step') for a renamed header and int()'s error for a bad step."""
    path = tmp_path / "metrics.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DamagedCSVError, match=rf"^{path} {message}$"):
        read_metrics_csv(path)


def test_the_errors_are_refusals_and_value_errors(tmp_path):
    """A refusal (one line, exit status 2 from train.py), still caught by ``except ValueError``."""
    assert issubclass(DamagedCSVError, RunDirError) and issubclass(DamagedCSVError, ValueError)


def test_what_rlkit_writes_reads_back_and_a_row_cut_off_by_a_crash_is_left_out(tmp_path, episodes):
    with CSVLogger(tmp_path) as logger:
        logger.log_metrics({"loss": 0.5}, step=100)
        logger.log_metrics({"eval_return": 9.0}, step=100)
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(metrics.read_text() + "200,0.")  # (killed mid-write: no newline)
    assert read_metrics_csv(metrics) == [{"step": 100, "loss": 0.5}, {"step": 100, "eval_return": 9.0}]
    episodes.write_text(episodes.read_text() + "300,1")
    assert [row["frame"] for row in read_episodes(episodes)] == [100, 100, 200]
