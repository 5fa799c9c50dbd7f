"""Tiny studies on CartPole: a few hundred frames per seed, evaluations every 200 frames."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rlkit import cli

CONF = str(Path(__file__).resolve().parents[2] / "conf")
TINY = ["total_frames=600", "trainer.eval_interval=200", "trainer.eval_episodes=2", "trainer.log_interval=200",
        "trainer.checkpoint_interval=0", "trainer.early_stop=false", "logger=none", "algo.learning_starts=100",
        "algo.batch_size=16", "algo.hidden_sizes=[16]", "tune.seeds=2", "tune.n_startup_trials=1",
        "tune.n_warmup_evals=0", "tune.sampler_seed=0"]


def tune_config(tmp_path: Path, *overrides: str):
    """``conf/tune.yaml`` composed with the tiny budget, the study in ``tmp_path/study``."""
    cli.register_resolvers()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("tune", overrides=[*TINY, f"tune.dir={tmp_path / 'study'}", *overrides])


@pytest.fixture
def study_parts(tmp_path):
    """A function of overrides -> (training config, TuneSettings), checked as tune.py checks them."""
    def parts(*overrides: str):
        return cli.tune_parts(tune_config(tmp_path, *overrides))
    return parts
