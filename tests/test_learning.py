"""Does it learn? Default settings solve CartPole-v1 (slow: ``make test-slow``, a few minutes).

Each run uses ``train.py``'s defaults for its algorithm (early stop at the env's target return of
475 over the greedy evaluation episodes) with a frame budget well above what seed 0 needs, so a
failure means a learning regression, not an unlucky seed. Kept out of CI by the ``slow`` marker.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rlkit.run import run
from rlkit.trainers import read_metrics_csv

CONF = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.mark.slow
@pytest.mark.parametrize(("algo", "budget"), [("a2c", 100_000), ("dqn", 300_000), ("c51", 300_000)])
def test_default_settings_solve_cartpole(algo, budget, tmp_path):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[f"algo={algo}", "env=CartPole", "seed=0", f"total_frames={budget}",
                                           "trainer.progress=false"])
    result = run(cfg, tmp_path)
    rows = read_metrics_csv(tmp_path)
    assert result["eval_return"] >= 475, f"{algo} reached {result['eval_return']} in {rows[-1]['step']} frames"
    assert rows[-1]["step"] < budget  # stopped early: solved before the budget ran out
