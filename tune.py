"""rlkit hyperparameter tuning (Optuna): `python tune.py algo=dqn env=CartPole tune.n_trials=50 tune.seeds=3`.

Thin: the config is conf/tune.yaml (the training config plus `tune`), everything Hydra-specific is in
rlkit/cli.py, the study itself in rlkit/tune/. README "Tuning" has the commands and the outputs.
"""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from rlkit import cli

cli.register_resolvers()


@hydra.main(config_path="conf", config_name="tune", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return cli.tune_task(cfg)


if __name__ == "__main__":
    cli.prepare_argv(sys.argv, config_name="tune")
    main()
