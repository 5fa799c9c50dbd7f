"""A resumed run's own config groups: Hydra composes the command line before rlkit reads the saved
config, so ``resume=<run>`` gets the run's groups (:func:`resume_group_overrides`, read by
:func:`run_group_choices`) unless the command line gives them."""
from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.builders import GROUP_KEYS
from rlkit.cli.base import refuse
from rlkit.errors import RlkitError
from rlkit.rundir import override_value, quoted
from rlkit.run import CONFIG_FILE, PROVENANCE_DIR, check_resume_target, run_dir_of


def _env_group_of(conf_dir: Path, env: dict) -> str:
    """The ``conf/env`` group of a saved env section: the one with its id (a gym env) or its suite
    (a game suite such as minatar); ``gym`` (any id) when none is."""
    suite = env.get("suite", "gym")
    for path in sorted((conf_dir / "env").glob("*.yaml")):
        try:
            group = OmegaConf.load(path)
        except (OSError, OmegaConfBaseException):
            continue
        if not isinstance(group, DictConfig) or group.get("suite", "gym") != suite:
            continue
        if suite != "gym" or OmegaConf.select(group, "id", throw_on_missing=False) == env.get("id"):
            return path.stem
    return "gym"


#: What reading a missing or damaged YAML file of a run raises: no file or no access (OSError), not
#: text (UnicodeDecodeError, a ValueError), not YAML (yaml.YAMLError), or YAML of another shape
#: (omegaconf's errors; AttributeError / TypeError for scalars and lists where a mapping belongs).
_UNREADABLE = (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError, OmegaConfBaseException)


def run_group_choices(resume: str, conf_dir: Path | None = None) -> dict[str, str]:
    """The config-group choices (``{"algo": "a2c", "env": "Acrobot", ...}``) of the run that
    ``resume`` names: those Hydra recorded at its first start (``.hydra/hydra.yaml``); for a run
    started in Python, its algorithm's name and the ``conf_dir/env`` group with its env id. Empty
    when the run's config cannot be read (the start then fails with the usual message)."""
    run_dir = run_dir_of(resume)
    try:
        hydra_saved = OmegaConf.load(run_dir / PROVENANCE_DIR / "hydra.yaml")
        recorded = OmegaConf.to_container(hydra_saved.hydra.runtime.choices)
        if isinstance(recorded, dict):
            return {str(k): v for k, v in recorded.items() if k in GROUP_KEYS and isinstance(v, str)}
    except _UNREADABLE:  # no provenance, or damaged: the saved config is read instead
        pass
    try:
        saved = OmegaConf.to_container(OmegaConf.load(run_dir / CONFIG_FILE))
    except _UNREADABLE:  # unreadable, or not YAML: the resume itself says so in one line
        return {}
    choices: dict[str, str] = {}
    if isinstance(saved, dict) and isinstance(saved.get("algo"), dict) and "name" in saved["algo"]:
        choices["algo"] = str(saved["algo"]["name"])
    if isinstance(saved, dict) and isinstance(saved.get("env"), dict) and conf_dir is not None:
        choices["env"] = _env_group_of(conf_dir, saved["env"])
    return choices


def run_searchpath(resume: str) -> list[str]:
    """The ``hydra.searchpath`` the run that ``resume`` names started with (``.hydra/hydra.yaml``):
    the config folders of its own that its groups may come from; empty when it had none or the file
    cannot be read."""
    try:
        saved = OmegaConf.select(OmegaConf.load(run_dir_of(resume) / PROVENANCE_DIR / "hydra.yaml"),
                                 "hydra.searchpath", default=None)
    except _UNREADABLE:
        return []
    return [path for path in saved if isinstance(path, str)] if isinstance(saved, ListConfig) else []


def resume_group_overrides(args: list[str], conf_dir: Path | None = None) -> list[str]:
    """Group choices (``algo=a2c``, ``env=Acrobot``, ...) of the run that ``resume=<path>`` in
    ``args`` names (:func:`run_group_choices`), for the groups ``args`` does not set.

    Hydra composes the command line before rlkit reads the saved config: without the run's groups it
    would compose the default algorithm, and an override of a key that only the run's algorithm has
    (``resume=<a2c run> algo.n_steps=10``) would fail. The run's ``hydra.searchpath``
    (:func:`run_searchpath`) comes too, unless ``args`` gives one: a group of the user's own (an
    algorithm added outside the package) is found where it was. Returns ``[]`` when there is no
    ``resume``. A ``resume`` that names a file which is not a checkpoint, or a checkpoint of an
    abandoned branch (:func:`~rlkit.run.check_resume_target`), is refused here, in one line.

    Examples:
        >>> from rlkit.cli import resume_group_overrides
        >>> resume_group_overrides(["total_frames=1000"])
        []
    """
    values = dict(a.lstrip("+").split("=", 1) for a in args if "=" in a and not a.startswith("-"))
    resume = override_value(values.get("resume", ""))
    if not resume or resume == "null":
        return []
    try:
        check_resume_target(resume)
    except RlkitError as err:
        refuse(err)
    choices = run_group_choices(resume, conf_dir)
    groups = [f"{group}={choices[group]}" for group in GROUP_KEYS if group not in values and group in choices]
    searchpath = run_searchpath(resume)
    if searchpath and not any(key.startswith("hydra.searchpath") for key in values):
        # the folders the run's groups came from (an algorithm of the user's own: README "Adding an algorithm")
        groups.append(f"hydra.searchpath=[{','.join(quoted(path) for path in searchpath)}]")
    # The gym group names no env (env.id: ???), and the run directory's default name reads env.id:
    # the run's own id, unless the line gives one.
    if override_value(values.get("env", choices.get("env", ""))) == "gym" and "env.id" not in values:
        saved_id = _saved_env_id(resume)
        if saved_id is not None:
            groups.append(f"env.id={quoted(saved_id)}")
    return groups


def _saved_env_id(resume: str) -> str | None:
    """The ``env.id`` of the run that ``resume`` names, read from its ``config.yaml`` (None when it
    has none or the file cannot be read: the resume itself then says why)."""
    try:
        saved = OmegaConf.load(run_dir_of(resume) / CONFIG_FILE)
        value = OmegaConf.select(saved, "env.id", throw_on_missing=False)
    except _UNREADABLE:
        return None
    return value if isinstance(value, str) else None
