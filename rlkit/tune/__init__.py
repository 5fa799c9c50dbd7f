"""Hyperparameter tuning with Optuna (the ``[tune]`` extra): ``python tune.py algo=dqn env=CartPole``.

- :mod:`rlkit.tune.space`: search spaces (``conf/tune/<algo>.yaml``) -> parameters;
- :mod:`rlkit.tune.settings`: the ``tune`` section, the sampler and the pruner;
- :mod:`rlkit.tune.trial`: one trial, its seeds run in sequence, reported through a trainer callback;
- :mod:`rlkit.tune.study`: the storage, the workers and the exact trial count;
- :mod:`rlkit.tune.report`: ``trials.csv``, the best trial's experiment file, plots.
"""
from __future__ import annotations

from rlkit.tune.settings import TuneSettings, parse_tune_settings
from rlkit.tune.space import Param, SearchSpace, parse_space
from rlkit.tune.study import tune
from rlkit.tune.trial import TrialResult, run_trial

__all__ = ["Param", "SearchSpace", "TrialResult", "TuneSettings", "parse_space", "parse_tune_settings", "run_trial",
           "tune"]
