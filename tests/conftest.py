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


class FakeWandbRun:
    """What ``wandb.init`` returns, recording the calls rlkit makes on it (see ``fake_wandb``)."""

    def __init__(self, kwargs: dict, number: int) -> None:
        self.init_kwargs = kwargs
        self.id = kwargs.get("id") or f"fake{number:04d}"
        self.dir = os.path.join(kwargs["dir"], "wandb", f"{kwargs['mode']}-run-{self.id}", "files")
        self.logged: list[tuple[dict, int]] = []
        self.config = _FakeConfig(dict(kwargs.get("config") or {}))
        self.summary: dict = {}
        self.finished = 0

    def log(self, data: dict, step: int) -> None:
        self.logged.append((dict(data), step))
        self.summary.update(data)

    def finish(self) -> None:
        self.finished += 1


class _FakeConfig(dict):
    def update(self, data: dict, allow_val_change: bool = False) -> None:  # type: ignore[override]
        assert allow_val_change
        super().update(data)


@pytest.fixture
def fake_wandb(monkeypatch):
    """Replaces ``wandb.init`` by a recorder: returns the list of :class:`FakeWandbRun` it made, in
    order. Nothing is written; rlkit's side of the boundary is what the tests check."""
    import wandb

    runs: list[FakeWandbRun] = []

    def init(**kwargs):
        runs.append(FakeWandbRun(kwargs, len(runs)))
        return runs[-1]

    monkeypatch.setattr(wandb, "init", init)
    return runs


# Tiny trained runs (a few hundred frames each), trained once per session on first use, for the tests
# of what reads a finished run (rlkit.agent, rlkit.evaluation, rlkit.exporter).
TINY_TRAIN = ["total_frames=300", "trainer.eval_episodes=2", "trainer.log_interval=300", "trainer.eval_interval=0",
              "trainer.progress=false"]
TINY_RUNS: dict[str, list[str]] = {
    "dqn": ["algo=dqn", "env=CartPole", "algo.learning_starts=100", "algo.batch_size=32"],
    "c51": ["algo=c51", "env=CartPole", "algo.learning_starts=100", "algo.batch_size=32"],
    # evaluated epsilon-greedily, as the Atari experiments are
    "dqn_eps": ["algo=dqn", "env=CartPole", "algo.learning_starts=100", "algo.batch_size=32",
                "trainer.eval_epsilon=0.5"],
    "a2c": ["algo=a2c", "env=CartPole"],
    # an env with action masks (tests/corridor_env.py)
    "dqn_masked": ["algo=dqn", "env=gym", "env.id=corridor_env:MaskedCorridor-v0", "algo.learning_starts=100",
                   "algo.batch_size=16"],
    # continuous actions (a Gaussian's mean) and VecNormalize statistics folded into the policy
    "a2c_pendulum": ["algo=a2c", "env=Pendulum", "env.transforms=[{name: normalize}]"],
    "a2c_tanh": ["algo=a2c", "env=Pendulum", "algo.distribution=tanh_normal"],
    "a2c_gsde": ["algo=a2c", "env=Pendulum", "algo.distribution=gsde"],
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
