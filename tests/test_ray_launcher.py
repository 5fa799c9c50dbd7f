"""Sweeps on Ray: ``hydra/launcher=ray`` (hydra-ray-launcher) against a local Ray cluster on loopback.

The slow test needs the ``ray`` extra (``pip install -e ".[ray]"`` in a venv of its own: ray pins an
older cloudpickle than the main set-up's) and is skipped without it. It starts a one-node cluster with
``ray start --head`` in a temp dir, runs a two-seed DQN sweep on it as a subprocess and stops the
cluster with ``ray stop --force`` however the test ends; ``ray stop`` stops every Ray process of the
machine, so the test is skipped while another Ray cluster runs.
"""
from __future__ import annotations

import signal

import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from rlkit.cli import RAY_LAUNCHER, SWEPT_KEYS_ENV, ConfigCheck
from rlkit.trainers import load_checkpoint, read_metrics_csv

ROOT = Path(__file__).resolve().parents[1]
TRAIN = str(ROOT / "train.py")
TINY = ["total_frames=400", "trainer.eval_episodes=2", "trainer.log_interval=200", "trainer.eval_interval=0",
        "trainer.progress=false"]
#: Ray on one machine, on loopback only, nothing sent out: Ray's single-node mode (the one it uses on
#: macOS and Windows) binds and advertises 127.0.0.1 instead of the machine's address, which Ray
#: otherwise puts in place of --node-ip-address 127.0.0.1.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def _multirun_config(launcher: dict, task: list[str]) -> OmegaConf:
    cfg = OmegaConf.create({"hydra": {"launcher": launcher, "overrides": {"task": task}}})
    OmegaConf.set_readonly(cfg.hydra, True)  # as Hydra hands it to the callbacks
    return cfg


def test_the_swept_keys_and_the_cluster_settings_reach_ray_init(monkeypatch):
    # Ray workers have the Ray node's environment: the swept keys go through ray.init's runtime_env.
    monkeypatch.delenv(SWEPT_KEYS_ENV, raising=False)
    cfg = _multirun_config({"_target_": RAY_LAUNCHER, "ray": {"init": {
        "address": "auto", "runtime_env": {"env_vars": {"MINE": "1"}, "pip": ["x"]}}}}, ["algo=dqn", "seed=0,1"])
    ConfigCheck().on_multirun_start(cfg)
    assert OmegaConf.to_container(cfg.hydra.launcher.ray.init) == {
        "address": "auto",
        "runtime_env": {"env_vars": {"MINE": "1", SWEPT_KEYS_ENV: "seed"}, "pip": ["x"]},
        "object_store_memory": None,  # hydra-ray-launcher's default, refused when joining a cluster
    }
    # A cluster ray.init starts itself keeps the launcher's object store size; a given one is kept.
    for init, memory in (({"address": None}, "absent"), ({"address": "auto", "object_store_memory": 10**8}, 10**8)):
        cfg = _multirun_config({"_target_": RAY_LAUNCHER, "ray": {"init": init}}, ["seed=0,1"])
        ConfigCheck().on_multirun_start(cfg)
        assert cfg.hydra.launcher.ray.init.get("object_store_memory", "absent") == memory
        assert cfg.hydra.launcher.ray.init.runtime_env.env_vars[SWEPT_KEYS_ENV] == "seed"
    # Other launchers are left alone.
    launcher = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2}
    cfg = _multirun_config(launcher, ["seed=0,1"])
    check = ConfigCheck()
    check.on_multirun_start(cfg)
    try:
        assert OmegaConf.to_container(cfg.hydra.launcher) == launcher
    finally:  # (a joblib sweep's start holds Ctrl-C back in this process until its end)
        check.on_multirun_end(cfg)
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, []) and "RLKIT_SWEEP_STOPS" not in os.environ


def _ray_is_running() -> bool:
    """A Ray node (gcs_server or raylet) of any user runs on this machine (Linux: /proc)."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("gcs_server", "raylet"):
                return True
        except OSError:
            continue
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ray_cluster():
    """A one-node Ray cluster on 127.0.0.1 (2 CPUs, no dashboard), its files in a temp dir; yields
    ``(ray command, GCS address, env)`` and stops it with ``ray stop --force`` afterwards."""
    if importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
        pytest.skip('hydra-ray-launcher is not installed (pip install -e ".[ray]" in a separate venv, see README)')
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray is None:
        pytest.skip("the ray command is not installed beside this Python")
    if _ray_is_running():
        pytest.skip("another Ray cluster runs on this machine; `ray stop` at the end would stop it too")
    # Token authentication with a token of the test's own (not ~/.ray/auth_token, whose presence would
    # otherwise switch it on for the cluster but not for the sweep's driver).
    env = {**os.environ, **RAY_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "1"}
    # Short: Ray's Unix sockets live under it (paths at most 107 characters).
    temp_dir = tempfile.mkdtemp(prefix="rlkit-ray-")
    port = _free_port()
    try:
        started = subprocess.run(
            [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
             "--include-dashboard=false", "--disable-usage-stats", "--object-store-memory", str(100 * 2**20),
             "--temp-dir", temp_dir],
            cwd=temp_dir, env=env, text=True, capture_output=True, timeout=180)
        assert started.returncode == 0, started.stdout + started.stderr
        yield ray, f"127.0.0.1:{port}", env
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_ray_launcher_runs_a_sweep_on_a_local_cluster(ray_cluster, tmp_path):
    ray, address, env = ray_cluster
    sweep = tmp_path / "sweep"  # absolute: Ray workers run in the directory `ray start` ran in
    done = subprocess.run(
        [sys.executable, TRAIN, "-m", "hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}",
         "algo=dqn", "seed=0,1", *TINY, f"hydra.sweep.dir={sweep}"],
        cwd=ROOT, env=env, text=True, capture_output=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert f"Connecting to existing Ray cluster at address: {address}" in output
    # Job directories by their config (their names may change), one per seed.
    runs = {yaml.safe_load(path.read_text())["seed"]: path.parent for path in sweep.glob("*/config.yaml")}
    assert sorted(runs) == [0, 1], output
    returns = {}
    for seed, run_dir in runs.items():
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert (config["algo"]["name"], config["total_frames"]) == ("dqn", 400)
        assert f"seed={seed}" in run_dir.name  # the swept keys reached the Ray workers
        rows = read_metrics_csv(run_dir)
        assert [row["step"] for row in rows if "episode_return" in row] == [200, 400]
        assert rows[-1]["step"] == 400 and "eval_return" in rows[-1]
        assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"] == 400
        returns[seed] = [row.get("episode_return") for row in rows]
    assert returns[0] != returns[1]
