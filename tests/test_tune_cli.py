"""tune.py as users run it: bad settings refused in one line with exit status 2 before the study
directory exists (one subprocess, the rest through its Hydra callback in-process)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hydra import compose, initialize_config_dir

from rlkit import cli
from rlkit.cli import TuneCheck
from tests.tune.conftest import CONF, tune_config

TUNE = str(Path(__file__).resolve().parents[1] / "tune.py")


def test_a_bad_pruner_is_refused_before_the_study_dir_exists(tmp_path):
    done = subprocess.run([sys.executable, TUNE, "tune.pruner=hyperband", f"tune.dir={tmp_path / 'study'}"], cwd=tmp_path,
                          text=True, capture_output=True, env={**os.environ, "WANDB_MODE": "disabled"}, timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("rlkit: invalid config: tune.pruner='hyperband' is not valid; valid choices: ['median', "
                           "'halving', 'none']\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("overrides, message", [
    (["tune.sampler=cmaes"], "tune.sampler='cmaes' is not valid; valid choices: ['tpe', 'random', 'grid']"),
    (["tune.objective=best"], "tune.objective='best' is not valid; valid choices: ['final', 'auc']"),
    (["tune.space.algo.optim.lr={type: float, low: 1e-2, high: 1e-5}"],
     "tune.space.algo.optim.lr: low=0.01 must be below high=1e-05"),
    (["tune.space.algo.eps_end={type: normal}"],
     "tune.space.algo.eps_end: type='normal' is not a parameter type; valid choices: ['float', 'int', 'categorical']"),
    (["+tune.space.algo.n_atoms=[11, 51]"],
     "tune.space.algo.n_atoms: algo.n_atoms is not a key of the training config (algo=dqn); drop it with "
     "~tune.space.algo.n_atoms"),
    (["tune.space.algo.batch_size=[0, 32]"],
     "tune.space.algo.batch_size allows algo.batch_size=0, which the config refuses: algo.batch_size=0 is invalid: "
     "expected a positive number"),
    (["algo.batch_size=-1"], "algo.batch_size=-1 is invalid: expected a positive number"),
    (["tune.sampler=grid"], "tune.sampler=grid needs a finite grid, but tune.space.algo.optim.lr is a float range"),
])
def test_bad_settings_are_refused_in_one_line(tmp_path, capsys, overrides, message):
    cfg = tune_config(tmp_path, *overrides)
    with pytest.raises(SystemExit) as stop:
        TuneCheck().on_run_start(cfg)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"rlkit: invalid config: {message}") and err.count("\n") == 1
    assert not (tmp_path / "study").exists()


@pytest.mark.parametrize("algo", ["dqn", "c51", "a2c"])
def test_every_algorithm_space_passes_the_checks(tmp_path, algo):
    cli.register_resolvers()
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("tune", overrides=[f"algo={algo}", f"tune.dir={tmp_path / 'study'}"])
    TuneCheck().on_run_start(cfg)


def test_multirun_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        TuneCheck().on_multirun_start(tune_config(tmp_path))
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("rlkit: tune.py runs one study")


def test_a_study_directory_that_cannot_be_made_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("keep")
    cfg = tune_config(tmp_path, f"tune.dir={tmp_path / 'file' / 'study'}")
    with pytest.raises(SystemExit) as stop:
        TuneCheck().on_run_start(cfg)
    assert stop.value.code == 2
    assert capsys.readouterr().err == f"rlkit: tune.dir= '{tmp_path / 'file' / 'study'}' cannot be created: Not a directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
