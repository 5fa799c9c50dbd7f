"""``rlkit.train``: a run started from Python (:func:`train`, which returns a :class:`TrainResult`), its
config composed with Hydra's ``compose`` from the package's ``conf/`` and checked as ``train.py``
checks a command line."""
from __future__ import annotations

import dataclasses
import os
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.builders import GROUP_KEYS
from rlkit.cli.base import CONF_DIR
from rlkit.cli.command_line import command_line_problem
from rlkit.cli.naming import env_label_resolver, register_resolvers
from rlkit.cli.resume import SEARCHPATH_FILE, searchpath_given
from rlkit.errors import ConfigError
from rlkit.rundir import quoted
from rlkit.run import preflight, run
from rlkit.trainers.callbacks import check_callbacks

if TYPE_CHECKING:
    from rlkit.agent import Agent
    from rlkit.trainers import TrainerCallback


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path  #: the run directory
    #: the last evaluation's metrics (``eval_return``, ...); with ``num_seeds > 1``, by seed
    metrics: dict[Any, Any]
    agent: Agent  #: the trained agent (:func:`rlkit.load_agent` of ``run_dir``; the first seed's)
    #: every seed's agent (``num_seeds > 1``: of ``run_dir/seed_<s>``), by seed
    agents: dict[int, Agent] = dataclasses.field(default_factory=dict)


def _override(key: str, value: Any) -> str:
    """``key=value`` in Hydra's override grammar (booleans, null, lists and dicts included); a string
    is quoted, so that it stays that string (``"1e3"``, ``"null"``, ``"a, b"``), except a config
    group's choice (``algo``, ``env``, ...), which names a file.

    Examples:
        >>> from rlkit.cli.api import _override
        >>> _override("logger.group", "my group, v2"), _override("algo", "a2c"), _override("lr", 0.1)
        ("logger.group='my group, v2'", 'algo=a2c', 'lr=0.1')
    """
    def text(v: Any) -> str:
        if v is None:
            return "null"
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return quoted(v)
        if isinstance(v, (list, tuple)):
            return "[" + ",".join(text(x) for x in v) + "]"
        if isinstance(v, Mapping):
            return "{" + ",".join(f"{k}:{text(x)}" for k, x in v.items()) + "}"
        return str(v)

    if isinstance(value, str) and key.lstrip("+~") in (*GROUP_KEYS, "experiment"):
        return f"{key}={value}"
    return f"{key}={text(value)}"


def train(overrides: Sequence[str] | Mapping[str, Any] | None = None, *,
          output_dir: str | Path | None = None, callbacks: Sequence[TrainerCallback] = ()) -> TrainResult:
    """Trains a run from Python: what ``python train.py <overrides>`` does, in this process.

    The config is composed with Hydra's ``compose`` from the package's ``conf/`` (:data:`CONF_DIR`)
    and validated; ``torch.set_num_threads`` follows its ``num_threads`` (default 1, as
    ``train.py``). The run writes what a ``train.py`` run writes (``config.yaml``, metrics,
    checkpoints, ``.hydra/config.yaml`` and ``overrides.yaml``; ``.hydra/searchpath.yaml`` with a
    ``hydra.searchpath``), and can be resumed with ``train.py resume=<run_dir>``.

    Args:
        overrides: ``["algo=a2c", "total_frames=1000"]`` or ``{"algo": "a2c", "total_frames": 1000}``.
        output_dir: the run directory (new or empty); default
            ``outputs/<date>/<time>_<algo>_<env>_s<seed>_<token>`` under the current directory
            (``hydra.run.dir``, train.py's way to choose it, is refused here).
        callbacks: :class:`~rlkit.trainers.TrainerCallback` objects the trainer calls (after each
            evaluation, ...; README "Library use").

    Returns:
        The run directory, the last evaluation's metrics and the trained agent.

    Raises:
        RlkitError: a refusal (a bad config, an env that cannot be built, a directory in use or
            not empty, ...); nothing is left behind.

    Examples:
        >>> import tempfile
        >>> import rlkit
        >>> result = rlkit.train({"total_frames": 300, "trainer.progress": False, "logger": "none"},
        ...                      output_dir=tempfile.mkdtemp())
        >>> sorted(result.metrics), result.agent.frames
        (['eval_length', 'eval_return', 'eval_return_std'], 300)
    """
    from rlkit.agent import load_agent

    if overrides is None:
        args: list[str] = []
    elif isinstance(overrides, Mapping):
        args = [_override(str(k), v) for k, v in overrides.items()]
    elif isinstance(overrides, (str, bytes)) or not isinstance(overrides, Iterable):
        raise ConfigError(f"overrides={overrides!r}: give a list of key=value strings or a dict")
    else:
        args = [str(o) for o in overrides]
    if output_dir is not None and not isinstance(output_dir, (str, os.PathLike)):
        raise ConfigError(f"output_dir={output_dir!r}: give a path (a str or pathlib.Path) of a new or empty directory")
    callbacks = check_callbacks(callbacks, num_seeds=None)  # (each hook against num_seeds once the run is built)
    placed = [a for a in args if a.lstrip("+~").split("=", 1)[0] in ("hydra", "hydra.run", "hydra.sweep")
              or a.lstrip("+~").startswith(("hydra.run.", "hydra.sweep."))]
    if placed:
        raise ConfigError(f"{placed[0]}: rlkit.train writes the run into output_dir= (its argument), not where "
                          "train.py's hydra.run.dir / hydra.sweep.dir would put it")
    register_resolvers()
    problem = command_line_problem(args, CONF_DIR)
    if problem is not None:
        raise ConfigError(problem)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=args)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(str(err).strip().splitlines()[0]) from None
    if cfg.get("resume"):
        raise ConfigError(f"resume={cfg.resume}: rlkit.train starts new runs; resume one with python train.py "
                          f"resume={cfg.resume}")
    settings = preflight(cfg)  # (as train.py: the env built and stepped once in memory before the run directory)
    if output_dir is None:
        env_label = env_label_resolver(settings.env.id, settings.env.game)
        output_dir = (Path("outputs") / time.strftime("%Y-%m-%d") / f"{time.strftime('%H-%M-%S')}_{settings.algo.name}_"
                      f"{env_label}_s{settings.root.seed}_{secrets.token_hex(3)}")
    provenance = {"config.yaml": OmegaConf.to_yaml(cfg), "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(args))}
    searchpath = searchpath_given(args)
    if searchpath is not None:
        # Where `train.py resume=<run>` finds the run's own groups (an algorithm of the user's, README
        # "Adding an algorithm"): train.py's hydra.yaml records them; this run has none. Laid out as
        # hydra.yaml, with the directory a relative folder is read against.
        provenance[SEARCHPATH_FILE] = OmegaConf.to_yaml(OmegaConf.create(
            {"hydra": {"searchpath": searchpath[1], "runtime": {"cwd": os.getcwd()}}}))
    metrics = run(cfg, output_dir, overrides=args, provenance=provenance, validated=settings, callbacks=callbacks)
    root = settings.root
    if root.num_seeds > 1:
        from rlkit.factories import seed_dir_name

        agents = {s: load_agent(Path(output_dir) / seed_dir_name(s), device=root.device)
                  for s in range(root.seed, root.seed + root.num_seeds)}
        return TrainResult(run_dir=Path(output_dir), metrics=metrics, agent=agents[root.seed], agents=agents)
    agent = load_agent(output_dir, device=root.device)
    return TrainResult(run_dir=Path(output_dir), metrics=metrics, agent=agent, agents={root.seed: agent})
