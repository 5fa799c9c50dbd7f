"""A user's module that registers an algorithm when imported (``imports=[toy_algorithm_plugin]``), with
its YAML in ``tests/plugin_conf/algo/toy_bandit.yaml`` (``hydra.searchpath=[file://<tests>/plugin_conf]``)."""
from rlkit.registry import register_algorithm
from toy_algorithm import bandit_entry

register_algorithm(bandit_entry("toy_bandit"))
