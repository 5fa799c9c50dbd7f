"""WandbLogger: the calls rlkit makes on wandb (a recording ``wandb.init``, see ``fake_wandb`` in
tests/conftest.py), and real offline and disabled runs through wandb's public API (no network, and
nothing of wandb's files is parsed)."""
from __future__ import annotations

import pytest
import torch

from rlkit.trainers.loggers import WandbLogger
from rlkit.trainers.loggers.wandb_logger import RUN_ID_FILE, resume_id


def test_metrics_config_and_end_reach_the_run(tmp_path, fake_wandb):
    run_dir = tmp_path / "run"
    with WandbLogger(run_dir, name="dqn-seed0", group="sweep", tags=("dqn", "cartpole"),
                     config={"algo": {"lr": 1e-3}}) as logger:
        logger.log_config({"seed": 0, "algo": {"lr": 3e-4}})
        logger.log_metrics({"loss_value": torch.tensor(1.5), "loss_aux": 0.25}, step=0)
        logger.log_metrics({"loss_value": 0.75, "episode_return": 10}, step=256)
        logger.log_end("target", "stopped early at frame 256", step=256)
        assert fake_wandb[0].finished == 0
    (run,) = fake_wandb
    assert run.init_kwargs == {
        "dir": str(run_dir), "id": None, "resume": None, "project": "rlkit", "name": "dqn-seed0", "group": "sweep",
        "mode": "offline", "config": {"algo": {"lr": 1e-3}}, "tags": ["dqn", "cartpole"], "reinit": "create_new",
    }
    assert run.logged == [({"loss_value": 1.5, "loss_aux": 0.25}, 0), ({"loss_value": 0.75, "episode_return": 10.0}, 256)]
    assert all(type(v) is float for metrics, _ in run.logged for v in metrics.values())  # plain floats, no tensors
    assert dict(run.config) == {"algo": {"lr": 3e-4}, "seed": 0}
    assert run.summary["end_reason"] == "target"
    assert run.finished == 1
    logger.close()  # idempotent
    assert run.finished == 1
    assert (run_dir / "wandb" / RUN_ID_FILE).read_text() == run.id
    assert logger.wandb_dir == run_dir / "wandb" / f"offline-run-{run.id}"


def test_a_resume_continues_the_recorded_run_online_only(tmp_path, fake_wandb):
    assert resume_id(tmp_path, "online") is None  # nothing recorded yet
    WandbLogger(tmp_path, mode="online").close()
    first = fake_wandb[0].id
    assert resume_id(tmp_path, "online") == first
    assert resume_id(tmp_path, "offline") is None and resume_id(tmp_path, "disabled") is None
    WandbLogger(tmp_path, mode="online", resume=True).close()
    assert (fake_wandb[1].init_kwargs["id"], fake_wandb[1].init_kwargs["resume"]) == (first, "allow")
    # Offline, a resumed segment is a run of its own (wandb sync would overwrite one id's history).
    WandbLogger(tmp_path, mode="offline", resume=True).close()
    assert (fake_wandb[2].init_kwargs["id"], fake_wandb[2].init_kwargs["resume"]) == (None, None)
    assert resume_id(tmp_path, "online") == fake_wandb[2].id


def test_offline_run_smoke(tmp_path):
    """One real offline run: wandb accepts what rlkit passes, and the run lives under the run dir."""
    with WandbLogger(tmp_path, mode="offline", config={"algo": {"lr": 1e-3}}, name="smoke") as logger:
        logger.log_metrics({"loss_value": 0.5}, step=8)
        logger.log_end("budget", "done: 8 frames", step=8)
        assert logger.run.offline and logger.run.name == "smoke"
        assert logger.run.config["algo"] == {"lr": 1e-3}
        wandb_dir = logger.wandb_dir
    assert wandb_dir is not None and wandb_dir.parent == tmp_path / "wandb"
    assert wandb_dir.name.startswith("offline-run-") and wandb_dir.name.endswith(logger.run.id)
    assert (tmp_path / "wandb" / RUN_ID_FILE).read_text() == logger.run.id


def test_loggers_open_side_by_side_in_one_process_each_log_into_their_own_run(tmp_path):
    """The seeds of a multi-seed run: with reinit="finish_previous" the second logger finished the
    first one's run, whose next row raised wandb's UsageError ("Run ... is finished") and failed the run."""
    first = WandbLogger(tmp_path / "seed_0", mode="offline")
    second = WandbLogger(tmp_path / "seed_1", mode="offline")
    first.log_metrics({"loss_value": 1.0}, step=10)
    second.log_metrics({"loss_value": 2.0}, step=10)
    first.log_end("budget", "done", step=10)
    second.close()
    first.close()
    assert first.run.id != second.run.id and first.wandb_dir != second.wandb_dir
    assert first.wandb_dir.is_dir() and second.wandb_dir.is_dir()


def test_disabled_mode_writes_nothing(tmp_path):
    with WandbLogger(tmp_path, mode="disabled") as logger:
        logger.log_metrics({"loss_value": 1.0}, step=0)
        logger.log_end("interrupted", "interrupted by SIGINT at frame 0; checkpoint written", step=0)
        assert logger.wandb_dir is None
        assert (logger.run.summary["loss_value"], logger.run.summary["end_reason"]) == (1.0, "interrupted")
    assert not (tmp_path / "wandb").exists()


def test_bad_mode_lists_the_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown wandb mode 'offlne'; valid modes: offline, online, disabled"):
        WandbLogger(tmp_path, mode="offlne")
