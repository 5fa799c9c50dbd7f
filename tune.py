"""rlkit hyperparameter tuning (Optuna): `python tune.py algo=dqn env=CartPole tune.n_trials=50 tune.seeds=3`.

Thin: the config is conf/tune.yaml (the training config plus `tune`), everything Hydra-specific is in
rlkit/cli/ (tune.py's part in rlkit/cli/tuning.py), the study itself in rlkit/tune/. README "Tuning" has
the commands and the outputs.
"""
from __future__ import annotations

import sys

from rlkit import startup  # (standard library only: quick)

try:
    import hydra
    from omegaconf import DictConfig

    from rlkit import cli
    from rlkit.errors import RlkitError
    from rlkit.tune.studydir import study_command_line

    cli.register_resolvers()
except KeyboardInterrupt:
    if __name__ != "__main__":
        raise
    startup.interrupted("tune.py")


@hydra.main(config_path="conf", config_name="tune", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return cli.tune_task(cfg)


def prepare_argv(argv: list[str]) -> None:
    """``argv`` made ready for Hydra, in place: ``resume=`` refused and ``hydra.run.dir=DIR`` taken as
    ``tune.dir=DIR`` (:func:`rlkit.tune.studydir.study_command_line`), then train.py's own checks
    (:func:`rlkit.cli.prepare_argv`); a refusal is one ``rlkit:`` line, exit status 2."""
    try:
        argv[1:] = study_command_line(argv[1:])
    except RlkitError as err:
        cli.refuse(err)
    cli.prepare_argv(argv, config_name="tune")


if __name__ == "__main__":
    try:
        prepare_argv(sys.argv)
        main()
    except KeyboardInterrupt:  # (outside the study: the study's own interruptions end it with their own line)
        startup.interrupted("tune.py")
    finally:
        startup.before_exit()  # (the study has ended: its exit skips a last GC pass)
