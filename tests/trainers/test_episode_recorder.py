"""episodes.csv: one row per finished episode, exact values, trimmed on resume."""
from __future__ import annotations

import os

import pytest
import torch

from rlkit.trainers.episodes import EpisodeRecorder, read_episodes


def test_rows_round_trip_exactly(tmp_path):
    rec = EpisodeRecorder(tmp_path)
    rec.record(10, torch.tensor([1.0 / 3.0]), torch.tensor([3]))
    rec.record(20, torch.tensor([2.5, -7.0]), torch.tensor([5, 7]))
    rec.close()
    assert read_episodes(tmp_path) == [
        {"frame": 10, "return": float(torch.tensor(1.0 / 3.0)), "length": 3},
        {"frame": 20, "return": 2.5, "length": 5},
        {"frame": 20, "return": -7.0, "length": 7},
    ]


def test_resume_drops_rows_after_the_checkpoint_and_appends(tmp_path):
    rec = EpisodeRecorder(tmp_path)
    for frame in (10, 20, 30):
        rec.record(frame, torch.tensor([float(frame)]), torch.tensor([frame]))
    rec.close()
    rec = EpisodeRecorder(tmp_path, keep_until_frame=20)
    rec.record(40, torch.tensor([40.0]), torch.tensor([40]))
    rec.close()
    assert [r["frame"] for r in read_episodes(tmp_path / "episodes.csv")] == [10, 20, 40]
    assert not list(tmp_path.glob(".*tmp"))


def test_failed_trim_keeps_the_file_and_leaves_no_temp(tmp_path, monkeypatch):
    rec = EpisodeRecorder(tmp_path)
    rec.record(10, torch.tensor([1.0]), torch.tensor([1]))
    rec.record(20, torch.tensor([2.0]), torch.tensor([2]))
    rec.close()
    before = (tmp_path / "episodes.csv").read_bytes()

    def power_cut(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        EpisodeRecorder(tmp_path, keep_until_frame=10)
    assert (tmp_path / "episodes.csv").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["episodes.csv"]
