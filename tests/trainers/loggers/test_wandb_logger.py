"""WandbLogger (offline, read back from disk without network) and the offline run reader."""
from __future__ import annotations

import struct
import zlib

import pytest
import torch

from rlkit.trainers.loggers import WandbLogger, find_offline_runs, read_offline_run
from rlkit.trainers.loggers.wandb_logger import resume_id
from rlkit.trainers.loggers.wandb_offline import _FILE_HEADER


def test_offline_run_holds_every_logged_metric_and_the_config(tmp_path):
    run_dir = tmp_path / "run"
    with WandbLogger(
        run_dir, name="dqn-seed0", group="sweep", tags=["dqn", "cartpole"], config={"algo": {"lr": 1e-3}}
    ) as logger:
        logger.log_config({"seed": 0, "algo": {"lr": 3e-4}})
        logger.log_metrics({"loss_value": torch.tensor(1.5), "loss_aux": 0.25}, step=0)
        logger.log_metrics({"loss_value": 0.75, "episode_return": 10}, step=256)
        logger.log_metrics({"loss_value": 0.5}, step=512)
        wandb_dir = logger.wandb_dir
    assert wandb_dir is not None and wandb_dir.parent == run_dir / "wandb"
    run = read_offline_run(run_dir)  # close() waited for the log to reach the disk: no wait_s needed
    assert run.complete and run.path.parent == wandb_dir
    assert run.history["loss_value"] == [1.5, 0.75, 0.5]
    assert run.steps("loss_value") == [0, 256, 512]
    assert run.history["loss_aux"] == [0.25] and run.steps("episode_return") == [256]
    assert run.summary == {"loss_value": 0.5, "loss_aux": 0.25, "episode_return": 10}
    assert run.config == {"algo": {"lr": 3e-4}, "seed": 0}
    assert (run.project, run.name, run.group, run.tags) == ("rlkit", "dqn-seed0", "sweep", ["dqn", "cartpole"])


def test_sequential_loggers_in_one_process_get_their_own_runs(tmp_path):
    first = WandbLogger(tmp_path, mode="offline")
    first.log_metrics({"loss_value": 1.0}, step=1)
    # A new logger finishes a run left open (reinit="finish_previous"), e.g. after a crashed job.
    second = WandbLogger(tmp_path, mode="offline")
    second.log_metrics({"loss_value": 2.0}, step=2)
    second.close()
    first.close()
    assert first.wandb_dir != second.wandb_dir
    runs = find_offline_runs(tmp_path)
    assert [p.parent for p in runs] == [first.wandb_dir, second.wandb_dir]
    assert read_offline_run(runs[0]).history["loss_value"] == [1.0]
    assert read_offline_run(second.wandb_dir).history["loss_value"] == [2.0]
    with pytest.raises(ValueError, match="2 wandb runs under .*; pass one of"):
        read_offline_run(tmp_path)


def test_large_config_spanning_several_log_blocks_reads_back(tmp_path):
    blob = "x" * 80_000  # > two 32 KiB blocks: exercises chunked records and block padding
    with WandbLogger(tmp_path, config={"blob": blob}) as logger:
        for step in range(50):
            logger.log_metrics({"loss_value": step / 7}, step=step)
    run = read_offline_run(tmp_path)
    assert run.config["blob"] == blob
    assert run.history["loss_value"] == [step / 7 for step in range(50)]


def test_disabled_mode_writes_nothing(tmp_path):
    with WandbLogger(tmp_path, mode="disabled") as logger:
        logger.log_metrics({"loss_value": 1.0}, step=0)
        assert logger.wandb_dir is None
    assert not (tmp_path / "wandb").exists()


def test_bad_mode_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown wandb mode 'offlne'; valid modes: offline, online, disabled"):
        WandbLogger(tmp_path, mode="offlne")


def _record(kind: int, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(bytes([kind])))
    return struct.pack("<IHB", crc, len(payload), kind) + payload


def test_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no wandb run log"):
        read_offline_run(tmp_path)
    bad_header = tmp_path / "run-bad.wandb"
    bad_header.write_bytes(b"PK\x03\x04" + b"\0" * 20)
    with pytest.raises(ValueError, match="is not a wandb run log: expected header"):
        read_offline_run(bad_header)
    corrupt = tmp_path / "run-corrupt.wandb"
    record = bytearray(_record(1, b"\x08\x01"))
    record[-1] ^= 0xFF
    corrupt.write_bytes(_FILE_HEADER + bytes(record))
    with pytest.raises(ValueError, match="is corrupt: bad checksum for the record at byte 7"):
        read_offline_run(corrupt)
    unknown = tmp_path / "run-unknown.wandb"
    unknown.write_bytes(_FILE_HEADER + _record(9, b"\x08\x01"))
    with pytest.raises(ValueError, match="is corrupt: unknown record type 9"):
        read_offline_run(unknown)


def test_reader_stops_at_a_truncated_final_record(tmp_path):
    with WandbLogger(tmp_path) as logger:
        logger.log_metrics({"loss_value": 1.0}, step=0)
        wandb_dir = logger.wandb_dir
    (log,) = wandb_dir.glob("*.wandb")
    data = log.read_bytes()
    cut = tmp_path / "run-cut.wandb"
    cut.write_bytes(data[:-3])  # a writer killed mid-record (the final exit record)
    run = read_offline_run(cut, wait_s=0.05)
    assert run.history["loss_value"] == [1.0] and not run.complete
    cut.write_bytes(data[:4])  # nothing flushed yet but the start of the header
    run = read_offline_run(cut)
    assert run.rows == [] and not run.complete


def test_close_warns_when_the_log_never_completes(tmp_path, monkeypatch):
    from rlkit.trainers.loggers import wandb_logger
    from rlkit.trainers.loggers.wandb_offline import OfflineRun

    logger = WandbLogger(tmp_path, flush_timeout_s=0.0)
    monkeypatch.setattr(wandb_logger, "read_offline_run", lambda path, wait_s: OfflineRun(path=path))
    with pytest.warns(UserWarning, match="was still incomplete 0.0 s after run.finish"):
        logger.close()


def test_resume_id_is_the_recorded_one_online_only(tmp_path):
    assert resume_id(tmp_path, "online") is None  # nothing recorded yet
    with WandbLogger(tmp_path, mode="offline") as first:
        first.log_metrics({"loss_value": 1.0}, step=1)
    assert (tmp_path / "wandb" / "rlkit-run-id").read_text() == first.run.id
    assert resume_id(tmp_path, "online") == first.run.id
    assert resume_id(tmp_path, "offline") is None and resume_id(tmp_path, "disabled") is None
    # Offline, a resumed segment is a run of its own (wandb sync would overwrite one id's history).
    with WandbLogger(tmp_path, mode="offline", resume=True) as resumed:
        resumed.log_metrics({"loss_value": 2.0}, step=2)
    assert resumed.run.id != first.run.id
    assert resume_id(tmp_path, "online") == resumed.run.id
