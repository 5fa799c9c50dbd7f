"""rlkit entry point: `python train.py algo=dqn env=CartPole [key=value ...]` (Hydra; `-m` sweeps)."""
from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlkit.builders import job_subdir_resolver, run_dir_resolver

OmegaConf.register_new_resolver("rlkit_run_dir", run_dir_resolver, replace=True)
OmegaConf.register_new_resolver("rlkit_job_subdir", job_subdir_resolver, replace=True)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    from rlkit.config_schema import ConfigError
    from rlkit.run import run
    from rlkit.trainers import TrainingInterrupted

    hc = HydraConfig.get()
    try:
        result = run(cfg, hc.runtime.output_dir, overrides=list(hc.overrides.task))
    except ConfigError as err:  # e.g. a resume override the saved config refuses: the message is enough
        sys.exit(f"rlkit: invalid config: {err}")
    except TrainingInterrupted as stop:
        print(f"\n{stop}\nresume with: python train.py resume={hc.runtime.output_dir}", file=sys.stderr)
        sys.exit(128 + stop.signum)
    print(f"done: greedy eval return {result.get('eval_return')} | run dir {hc.runtime.output_dir}", file=sys.stderr)
    return result.get("eval_return")  # the sweep objective


def cli() -> None:
    """The command line: on resume, Hydra composes the run's own config groups (so that keys only
    the run's algorithm has can be overridden), then :func:`main` runs."""
    from rlkit.builders import resume_group_overrides

    args = sys.argv[1:]
    groups = resume_group_overrides(args)
    if groups:  # right before resume=, among the overrides (Hydra's flags may come first)
        at = 1 + next(i for i, a in enumerate(args) if a.lstrip("+").startswith("resume="))
        sys.argv[at:at] = groups
    main()


if __name__ == "__main__":
    cli()
