"""The tune section: choices, counts, seeds, storage, and the sampler and pruner it builds."""
from __future__ import annotations

import math

import optuna
import pytest

from rlkit.errors import ConfigError
from rlkit.tune import parse_tune_settings
from rlkit.tune.settings import make_pruner, make_sampler

SPACE = {"algo": {"optim": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}}}


def settings(**values):
    return parse_tune_settings({"study": "s", "dir": "d", "space": SPACE, "seeds": 2, **values}, base_seed=3)


@pytest.mark.parametrize("values, message", [
    ({"sampler": "cmaes"}, "tune.sampler='cmaes' is not valid; valid choices: ['tpe', 'random', 'grid']"),
    ({"pruner": "hyperband"}, "tune.pruner='hyperband' is not valid; valid choices: ['median', 'halving', 'none']"),
    ({"objective": "max"}, "tune.objective='max' is not valid; valid choices: ['final', 'auc']"),
    ({"n_trials": 0}, "tune.n_trials=0 is invalid: expected an integer >= 1"),
    ({"jobs": "2"}, "tune.jobs='2' is invalid: expected an integer >= 1"),
    ({"seeds": [1, 1]}, "tune.seeds=[1, 1] is invalid"),
    ({"seeds": 0}, "tune.seeds=0 is invalid"),
    ({"seeds": [0, 3_000_000_000]}, "tune.seeds=[0, 3000000000] is invalid: expected a count in [1, 65536] "
                                    "(tune.seeds=3: seed, seed+1, seed+2) or a list of distinct seeds in [0, 2147483647]"),
    ({"seeds": 1 << 31}, "tune.seeds=2147483648 is invalid: expected a count in [1, 65536]"),
    ({"storage": "study.db"}, "tune.storage='study.db' is not a storage URL"),
    ({"study": "a/b"}, "tune.study='a/b' is invalid"),
    ({"n_trails": 3}, "unknown key tune.n_trails (did you mean 'n_trials'?)"),
    ({"sampler": "grid"}, "tune.sampler=grid needs a finite grid, but tune.space.algo.optim.lr is a float range"),
    ({"space": {"trainer": {"eval_interval": [500, 1000]}}}, "tune.space.trainer.eval_interval cannot be searched: "
                                                             "every trial of a study shares it"),
    ({"space": {**SPACE, "total_frames": {"type": "int", "low": 1000, "high": 5000}}},
     "tune.space.total_frames cannot be searched"),
])
def test_bad_settings_are_refused_naming_the_value_and_the_choices(values, message):
    with pytest.raises(ConfigError) as err:
        settings(**values)
    assert str(err.value).startswith(message)


def test_seeds_count_from_the_config_seed_or_are_listed():
    assert settings().seeds == (3, 4)
    assert settings(seeds=[0, 5, 9]).seeds == (0, 5, 9)


def test_storage_defaults_to_sqlite_in_the_study_dir(tmp_path):
    assert settings(dir=str(tmp_path)).storage_url == f"sqlite:///{tmp_path / 'study.db'}"
    assert settings(storage="postgresql://u:p@host/db").storage_url == "postgresql://u:p@host/db"


def test_samplers_and_pruners():
    assert isinstance(make_sampler(settings()), optuna.samplers.TPESampler)
    assert isinstance(make_sampler(settings(sampler="random")), optuna.samplers.RandomSampler)
    grid = settings(sampler="grid", space={"a": [1, 2]})
    assert isinstance(make_sampler(grid), optuna.samplers.GridSampler)
    median = make_pruner(settings(), evaluations=9)
    assert isinstance(median, optuna.pruners.MedianPruner) and median._n_warmup_steps == 3  # RL Zoo: a third
    assert isinstance(make_pruner(settings(pruner="halving"), 9), optuna.pruners.SuccessiveHalvingPruner)
    assert isinstance(make_pruner(settings(pruner="none"), 9), optuna.pruners.NopPruner)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_seeded_samplers_never_repeat_a_trial_s_draws_and_reproduce_a_study(sampler):
    """Each trial draws with a seed of sampler_seed and its number. A sampler seeded once per process
    had a resumed study, and two processes on one study, propose the configurations already run."""
    import logging

    optuna.logging.set_verbosity(logging.ERROR)
    space = {"algo": {"optim": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}}}
    s = settings(sampler=sampler, sampler_seed=3, space=space, n_startup_trials=2)

    def run(study: optuna.Study, n: int) -> list[float]:
        out = []
        for _ in range(n):
            trial = study.ask()
            lr = s.space.suggest(trial)["algo.optim.lr"]
            study.tell(trial, -abs(math.log10(lr) + 3))
            out.append(lr)
        return out

    storage = optuna.storages.InMemoryStorage()
    first = run(optuna.create_study(storage=storage, sampler=make_sampler(s), direction="maximize"), 3)
    # a rerun (a new process on the same storage) and a second process go on with new draws
    again = run(optuna.load_study(study_name=None, storage=storage, sampler=make_sampler(s)), 2)
    other = run(optuna.load_study(study_name=None, storage=storage, sampler=make_sampler(s)), 2)
    assert len(set(first + again + other)) == 7
    # the same seed from scratch proposes the same study
    fresh = optuna.create_study(storage=optuna.storages.InMemoryStorage(), sampler=make_sampler(s), direction="maximize")
    assert run(fresh, 7) == first + again + other


def test_grid_workers_share_one_seed():
    """The grid sampler's seed orders the grid, and workers share which positions were visited: a
    seed per worker would repeat some points and never evaluate others."""
    import logging

    optuna.logging.set_verbosity(logging.ERROR)
    s = settings(sampler="grid", sampler_seed=7, space={"a": [1, 2, 3, 4, 5, 6]})

    def points() -> list:
        study = optuna.create_study(sampler=make_sampler(s), direction="maximize")
        return [s.space.suggest(study.ask())["a"] for _ in range(6)]

    assert points() == points()


def test_the_sampler_seed_is_documented_as_the_samplers_use_it():
    """conf/tune.yaml (and tune.py --help, generated from it) said "tpe/random worker k: seed + k", the
    seeding before each trial drew with a seed of sampler_seed and its number (the tests above)."""
    from pathlib import Path

    conf = (Path(__file__).resolve().parents[2] / "conf" / "tune.yaml").read_text()
    comment = next(line for line in conf.splitlines() if line.strip().startswith("sampler_seed:")).partition("#")[2]
    assert "seed + k" not in comment and "worker k" not in comment
    assert "tpe/random: each trial draws with a seed of this one and its trial number" in comment
    assert "grid: it orders the grid" in comment
