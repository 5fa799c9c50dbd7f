"""Search-space entries: parsing, refusals naming the key, suggestions and grids."""
from __future__ import annotations

import optuna
import pytest

from rlkit.errors import ConfigError
from rlkit.tune import parse_space


def test_nested_entries_become_dotted_parameters_in_file_order():
    space = parse_space({"value_estimator": {"gamma": [0.9, 0.99]},
                         "algo": {"optim": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
                                  "batch_size": {"type": "int", "low": 16, "high": 64, "step": 16}}})
    assert space.paths == ["value_estimator.gamma", "algo.optim.lr", "algo.batch_size"]
    assert space.params[0].type == "categorical" and space.params[0].choices == (0.9, 0.99)
    assert space.grid() is None  # lr: a float without a step


def test_suggestions_are_config_values_and_lists_round_trip():
    space = parse_space({"algo": {"hidden_sizes": [[64], [64, 64]], "batch_size": {"type": "int", "low": 16, "high": 64}}})
    trial = optuna.trial.FixedTrial({"algo.hidden_sizes": "[64, 64]", "algo.batch_size": 32})
    assert space.suggest(trial) == {"algo.hidden_sizes": [64, 64], "algo.batch_size": 32}
    assert space.decode({"algo.hidden_sizes": "[64]"}) == {"algo.hidden_sizes": [64]}


def test_grid_of_ints_floats_with_step_and_choices():
    space = parse_space({"a": {"type": "int", "low": 1, "high": 7, "step": 3},
                         "b": {"type": "float", "low": 0.1, "high": 0.3, "step": 0.1}, "c": ["x", "y"]})
    assert space.grid() == {"a": [1, 4, 7], "b": [0.1, 0.2, 0.3], "c": ["x", "y"]}


@pytest.mark.parametrize("entry, message", [
    ({"type": "uniform", "low": 0, "high": 1}, "tune.space.k: type='uniform' is not a parameter type; valid choices: "
                                               "['float', 'int', 'categorical']"),
    ({"type": "float", "low": 0, "high": 1, "scale": 2}, "tune.space.k: unknown key 'scale' in a float entry; valid "
                                                         "keys: ['type', 'low', 'high', 'log', 'step']"),
    ({"type": "float", "high": 1}, "tune.space.k: a float entry needs low and high (missing low)"),
    ({"type": "float", "low": 1, "high": 1}, "tune.space.k: low=1 must be below high=1"),
    ({"type": "float", "low": 0, "high": 1, "log": True}, "tune.space.k: a log scale needs low > 0, got low=0"),
    ({"type": "int", "low": 1.5, "high": 4}, "tune.space.k: low=1.5 must be an integer"),
    ({"type": "float", "low": "a", "high": 4}, "tune.space.k: low='a' must be a finite number"),
    ({"type": "float", "low": 1, "high": 4, "step": 1, "log": True}, "tune.space.k: step and log cannot be combined"),
    ({"type": "float", "low": 1, "high": 4, "step": -1}, "tune.space.k: step=-1 must be positive"),
    ({"type": "int", "low": 16, "high": 64, "step": 100}, "tune.space.k: step=100 does not divide the range [16, 64] "
                                                          "(width 48); the sampler would cut it at 16: give high=116, or"),
    ({"type": "float", "low": 0.9, "high": 0.999, "step": 0.01}, "tune.space.k: step=0.01 does not divide the range "
                                                                "[0.9, 0.999] (width 0.099); the sampler would cut it at "
                                                                "0.99: give high=0.99 or high=1.0, or another step"),
    ({"type": "int", "low": 0, "high": 10**30 + 1, "step": 7}, "tune.space.k: step=7 does not divide the range [0, "
                                                              "1000000000000000000000000000001]"),
    ({"type": "float", "low": 1, "high": 4, "log": "yes"}, "tune.space.k: log='yes' must be true or false"),
    ({"type": "categorical", "choices": []}, "tune.space.k: choices=[] must be a non-empty list"),
    ([1, 1], "tune.space.k: choices=[1, 1] repeat a value"),
    (3, "tune.space.k=3 is not a search-space entry; expected {type: float|int|categorical, ...} or a list"),
    ({}, "tune.space.k is empty"),
])
def test_malformed_entries_are_refused_naming_their_key(entry, message):
    with pytest.raises(ConfigError) as err:
        parse_space({"k": entry})
    assert str(err.value).startswith(message)


def test_an_empty_space_is_refused():
    with pytest.raises(ConfigError, match="tune.space is empty: nothing to search"):
        parse_space({})
