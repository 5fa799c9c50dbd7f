"""Test-wide settings: one torch thread, wandb offline in a temp dir, no network."""
from __future__ import annotations

import os
import tempfile

import pytest
import torch

_WANDB_TMP = tempfile.mkdtemp(prefix="rlkit-wandb-")
for _var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
    os.environ[_var] = _WANDB_TMP
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


# Tiny trained runs (a few hundred frames each), trained once per session on first use, for the tests
# of what reads a finished run (rlkit.agent, rlkit.evaluation, rlkit.exporter).
TINY_TRAIN = ["total_frames=300", "trainer.eval_episodes=2", "trainer.log_interval=300", "trainer.eval_interval=0",
              "trainer.progress=false"]
TINY_RUNS: dict[str, list[str]] = {
    "dqn": ["algo=dqn", "env=CartPole", "algo.learning_starts=100", "algo.batch_size=32"],
    "c51": ["algo=c51", "env=CartPole", "algo.learning_starts=100", "algo.batch_size=32"],
    "a2c": ["algo=a2c", "env=CartPole"],
    # continuous actions (a Gaussian's mean) and VecNormalize statistics folded into the policy
    "a2c_pendulum": ["algo=a2c", "env=Pendulum", "env.transforms=[{name: normalize}]"],
    "a2c_tanh": ["algo=a2c", "env=Pendulum", "algo.distribution=tanh_normal"],
    # uint8 channel-first frames scaled inside the conv network
    "dqn_minatar": ["algo=dqn", "env=minatar", "env.game=breakout", "algo.learning_starts=100",
                    "algo.batch_size=32", "algo.network={_target_: rlkit.modules.MinAtarNet}"],
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """``tiny_run(name)``: the run directory of the :data:`TINY_RUNS` entry ``name``, trained on first use."""
    import rlkit

    made: dict[str, object] = {}

    def get(name: str):
        if name not in made:
            out = tmp_path_factory.mktemp("runs") / name
            made[name] = rlkit.train([*TINY_TRAIN, *TINY_RUNS[name]], output_dir=out).run_dir
            torch.set_num_threads(1)
        return made[name]

    return get
