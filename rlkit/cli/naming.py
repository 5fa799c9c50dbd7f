"""Names of runs and sweep jobs: the ``rlkit_*`` resolvers ``conf/config.yaml`` uses for run and sweep
directory names (:func:`register_resolvers`; unique per start: a random token, see
:func:`token_resolver`), the keys a sweep varies (:data:`SWEPT_KEYS_ENV`, :func:`swept_keys`), and a
sweep job's label on the console (:func:`job_label`)."""
from __future__ import annotations

import hashlib
import os
import re
import secrets
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from rlkit.cli.preflight import check
from rlkit.envs import env_label
from rlkit.run import run_dir_of


def token_resolver() -> str:
    """``${rlkit_token:}``: 6 random hex digits, the same for the whole process (registered with
    ``use_cache``; Hydra copies the cache into each sweep job's config), so two starts in the same
    second get different directories."""
    return secrets.token_hex(3)


def run_dir_resolver(resume: str | None, default: str) -> str:
    """``hydra.run.dir``: the resumed run's own directory, else ``default``."""
    return str(run_dir_of(resume)) if resume and resume.strip() else default  # (a blank one is refused)


#: Environment variable through which the sweep's process tells its jobs (also those a launcher
#: starts in other processes) which keys the sweep varies; set in
#: :meth:`rlkit.cli.callbacks.ConfigCheck.on_multirun_start`.
SWEPT_KEYS_ENV = "RLKIT_SWEPT_KEYS"
#: Longest sweep job directory name (longer ones are cut and end in a hash of the whole name).
MAX_JOB_DIR = 96
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


def job_dir_name(num: int, overrides: list[str], swept: list[str], default: str) -> str:
    """The directory name of sweep job ``num``: its values of the swept keys, ``<num>_lr=0.001,seed=1``.

    Keys are shortened to their last component unless two swept keys share it; characters outside
    ``A-Za-z0-9._=,+-`` become ``_``; names over :data:`MAX_JOB_DIR` characters are cut and end in 6
    hex digits of a hash of the whole name. A job that varies no key gets ``<num>_<default>``.

    >>> from rlkit.cli import job_dir_name
    >>> job_dir_name(3, ["algo=dqn", "algo.optim.lr=0.001", "seed=1"], ["algo.optim.lr", "seed"], "x")
    '3_lr=0.001,seed=1'
    >>> job_dir_name(0, ["seed=0"], [], "dqn_CartPole_s0")
    '0_dqn_CartPole_s0'
    >>> job_dir_name(1, ["env.id=ALE/Pong-v5"], ["env.id"], "x")
    '1_id=ALE_Pong-v5'
    """
    values: dict[str, str] = {}
    for override in overrides:
        key, sep, value = str(override).partition("=")
        key = key.lstrip("+~")
        if sep and key in swept:
            values[key] = value
    if not values:
        return f"{num}_{default}"
    last = [k.rsplit(".", 1)[-1] for k in values]
    short = {k: (s if last.count(s) == 1 else k) for k, s in zip(values, last)}
    name = _UNSAFE.sub("_", f"{num}_" + ",".join(f"{short[k]}={v}" for k, v in values.items()))
    if len(name) > MAX_JOB_DIR:
        name = name[:MAX_JOB_DIR - 7] + "_" + hashlib.sha1(name.encode()).hexdigest()[:6]
    return name


def swept_keys(overrides: list[str]) -> list[str]:
    """The keys that command-line ``overrides`` sweep (``seed=0,1``, ``lr=range(1,3)``, ``glob(...)``).

    >>> from rlkit.cli import swept_keys
    >>> swept_keys(["algo=dqn,a2c", "seed=0", "algo.optim.lr=range(1,4)", "+x=[1,2]"])
    ['algo', 'algo.optim.lr']
    """
    parsed = OverridesParser.create().parse_overrides(overrides=[str(o) for o in overrides])
    return [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]


def job_subdir_resolver(num: int, default: str, *, _root_: DictConfig) -> str:
    """``hydra.sweep.subdir``: checks each sweep job (:func:`rlkit.run.preflight`) before Hydra creates
    its directory (Hydra has no callback there), and names it by :func:`job_dir_name`."""
    check(_root_)
    overrides = OmegaConf.select(_root_, "hydra.overrides.task", default=[]) or []
    return job_dir_name(int(num), list(overrides), _swept(), default)


def _swept() -> list[str]:
    """The keys this sweep varies (:data:`SWEPT_KEYS_ENV`); empty outside a sweep."""
    return [k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k]


def swept_overrides(overrides: list[str]) -> list[str]:
    """The overrides of a sweep job that set a swept key; all of them if none does."""
    swept = _swept()
    chosen = [o for o in overrides if str(o).partition("=")[0].lstrip("+~") in swept]
    return chosen or overrides


def env_label_resolver(*args: Any, _root_: Any = None) -> str:
    """``${rlkit_env_label:}``: the env's short name in directory names (the game of a game suite, else
    :func:`rlkit.envs.env_label` of the id), read from the config's ``env`` section. An env whose id is
    not given yet (``env=gym`` without ``env.id``) is named by its suite: the config check then refuses
    it in one line, where an interpolation of the missing id failed in Hydra's traceback first. The
    older form ``${rlkit_env_label:<id>,<game>}`` takes them as arguments.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli import env_label_resolver
        >>> env_label_resolver(_root_=OmegaConf.create({"env": {"suite": "gym", "id": "CartPole-v1", "game": None}}))
        'CartPole'
        >>> env_label_resolver(_root_=OmegaConf.create({"env": {"suite": "gym", "id": "???", "game": None}}))
        'gym'
    """
    if args:
        env_id, game = (*args, None)[:2]
    else:
        env_id, game = (OmegaConf.select(_root_, f"env.{key}", default=None, throw_on_missing=False)
                        for key in ("id", "game"))
        if not env_id and not game:
            return str(OmegaConf.select(_root_, "env.suite", default=None, throw_on_missing=False) or "env")
    return str(game) if game else env_label(str(env_id))


def register_resolvers() -> None:
    """Registers the resolvers ``conf/config.yaml`` uses (idempotent)."""
    OmegaConf.register_new_resolver("rlkit_token", token_resolver, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("rlkit_env_label", env_label_resolver, replace=True)
    OmegaConf.register_new_resolver("rlkit_run_dir", run_dir_resolver, replace=True)
    OmegaConf.register_new_resolver("rlkit_job_subdir", job_subdir_resolver, replace=True)


#: The longest sweep-job label on the console (a long override list would crowd out the progress).
LABEL_MAX = 40


def job_label(num: int, overrides: list[str], max_len: int = LABEL_MAX) -> str:
    """The console label of sweep job ``num``: ``[job <num> <overrides>]``, each override with its key's
    last component (``algo.optim.lr=0.001`` -> ``lr=0.001``); overrides that would make it longer than
    ``max_len`` are left out, and ``..`` says so.

    Examples:
        >>> from rlkit.cli import job_label
        >>> job_label(3, ["algo.optim.lr=0.001", "seed=1"])
        '[job 3 lr=0.001 seed=1]'
        >>> job_label(12, ["algo=c51", "env=Acrobot", "algo.optim.lr=0.00025", "seed=2", "total_frames=20000"])
        '[job 12 algo=c51 env=Acrobot ..]'
    """
    text = f"job {num}"
    for i, override in enumerate(overrides):
        key, sep, value = override.partition("=")
        item = f" {key.rsplit('.', 1)[-1]}{sep}{value}"
        room = max_len - 2 - (0 if i == len(overrides) - 1 else 3)  # (room for " ..")
        if len(text) + len(item) > room:
            return f"[{text} ..]"
        text += item
    return f"[{text}]"
