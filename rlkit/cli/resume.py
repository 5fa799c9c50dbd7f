"""A resumed run's own config groups: Hydra composes the command line before rlkit reads the saved
config, so ``resume=<run>`` gets the run's groups (:func:`resume_group_overrides`, read by
:func:`run_group_choices`) unless the command line gives them, and the config folders they came from
(:func:`run_searchpath`; after the line's own: :func:`with_run_searchpath`)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.builders import GROUP_KEYS
from rlkit.cli.base import refuse
from rlkit.errors import RlkitError
from rlkit.rundir import override_value, quoted, searchpath_override
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


#: Where a run started from Python (:func:`rlkit.train`) records the ``hydra.searchpath`` it was given,
#: in ``.hydra/``, laid out as Hydra's ``hydra.yaml`` (``hydra.searchpath``, ``hydra.runtime.cwd``).
SEARCHPATH_FILE = "searchpath.yaml"


def run_searchpath(resume: str) -> list[str]:
    """The ``hydra.searchpath`` the run that ``resume`` names started with: the config folders of its
    own that its groups may come from; empty when it had none or nothing records it.

    Read from ``.hydra/hydra.yaml`` (a ``train.py`` run), else ``.hydra/searchpath.yaml`` (a run
    started with :func:`rlkit.train`, :data:`SEARCHPATH_FILE`), else the ``hydra.searchpath`` in
    ``.hydra/overrides.yaml`` (a run started with :func:`rlkit.train` before that record). A relative
    folder is made absolute against the directory the run started in (``hydra.runtime.cwd``,
    :func:`absolute_searchpath`), so a resume from another directory finds it."""
    folder = run_dir_of(resume) / PROVENANCE_DIR
    for name in ("hydra.yaml", SEARCHPATH_FILE):
        try:
            saved = OmegaConf.load(folder / name)
            entries = OmegaConf.select(saved, "hydra.searchpath", default=None)
            cwd = OmegaConf.select(saved, "hydra.runtime.cwd", default=None)
        except _UNREADABLE:
            continue
        if isinstance(entries, ListConfig):
            return absolute_searchpath([e for e in entries if isinstance(e, str)], cwd if isinstance(cwd, str) else None)
    try:
        overrides = OmegaConf.to_container(OmegaConf.load(folder / "overrides.yaml"))
    except _UNREADABLE:
        return []
    given = searchpath_given([str(arg) for arg in overrides]) if isinstance(overrides, list) else None
    return given[1] if given is not None else []


def searchpath_given(args: Sequence[str]) -> tuple[int, list[str]] | None:
    """The ``hydra.searchpath=[...]`` of ``args`` that Hydra uses (the first; a ``+``-prefixed one is
    no searchpath to Hydra), read with Hydra's override parser: its index in ``args`` and its
    entries. None when ``args`` gives none, or one that is not a list of strings (Hydra says why).

    Examples:
        >>> from rlkit.cli.resume import searchpath_given
        >>> searchpath_given(["algo=dqn", "hydra.searchpath=[file:///my/conf,'pkg://my_algos.conf']"])
        (1, ['file:///my/conf', 'pkg://my_algos.conf'])
        >>> searchpath_given(["algo=dqn"]) is None
        True
    """
    parser = OverridesParser.create()
    for i, arg in enumerate(args):
        if arg.partition("=")[0].strip() != "hydra.searchpath":
            continue
        try:
            value = parser.parse_overrides([arg])[0].value()
        except HydraException:
            return None
        if isinstance(value, list) and all(isinstance(entry, str) for entry in value):
            return i, list(value)
        return None
    return None


def absolute_searchpath(entries: Sequence[str], cwd: str | None) -> list[str]:
    """``hydra.searchpath`` entries with each relative folder (``file://conf``, or a path without a
    scheme, which Hydra reads as a folder too) made absolute against ``cwd``, the working directory
    they were given in (Hydra reads them against the current one); other schemes (``pkg://``), and
    every entry when ``cwd`` is None, as they are.

    Examples:
        >>> from rlkit.cli.resume import absolute_searchpath
        >>> absolute_searchpath(["file://conf", "file:///abs/conf", "pkg://my_algos.conf"], "/home/me")
        ['file:///home/me/conf', 'file:///abs/conf', 'pkg://my_algos.conf']
    """
    absolute = []
    for entry in entries:
        scheme, sep, path = entry.partition("://")
        if sep and scheme != "file":
            absolute.append(entry)
            continue
        path = path if sep else entry
        if cwd is not None and not os.path.isabs(path):
            path = os.path.normpath(os.path.join(cwd, path))
        absolute.append(f"file://{path}" if sep else path)
    return absolute


def _same_place(entry: str) -> tuple[str, str]:
    """What a searchpath entry names, for finding one given twice: a folder by its real path (a
    relative one against the current directory, as Hydra reads it)."""
    scheme, sep, path = entry.partition("://")
    if sep and scheme != "file":
        return scheme, path.rstrip("/")
    return "file", os.path.realpath(path if sep else entry)


def merged_searchpath(given: Sequence[str], recorded: Sequence[str]) -> list[str]:
    """``given`` (first: its folders are searched first), then the entries of ``recorded`` that name
    a place ``given`` does not.

    Examples:
        >>> from rlkit.cli.resume import merged_searchpath
        >>> merged_searchpath(["file:///other/conf", "file:///my/conf/"], ["file:///my/conf", "pkg://my_algos.conf"])
        ['file:///other/conf', 'file:///my/conf/', 'pkg://my_algos.conf']
    """
    merged = list(given)
    places = {_same_place(entry) for entry in given}
    for entry in recorded:
        if _same_place(entry) not in places:
            merged.append(entry)
            places.add(_same_place(entry))
    return merged


def with_run_searchpath(args: Sequence[str]) -> list[str]:
    """``args``, where they resume a run (``resume=<path>``) and give a ``hydra.searchpath``
    (:func:`searchpath_given`), with that argument followed by the run's own entries it lacks
    (:func:`run_searchpath`, :func:`merged_searchpath`): the user's folders are searched first, and the
    run's groups (an algorithm of the user's own) are still found where the run found them.

    Examples:
        >>> from rlkit.cli.resume import with_run_searchpath
        >>> with_run_searchpath(["hydra.searchpath=[file:///my/conf]"])  # (no resume: as given)
        ['hydra.searchpath=[file:///my/conf]']
    """
    resume = _resume_of(args)
    given = searchpath_given(args)
    if not resume or given is None:
        return list(args)
    at, entries = given
    merged = merged_searchpath(entries, run_searchpath(resume))
    if merged == entries:
        return list(args)
    return [*args[:at], searchpath_override(merged), *args[at + 1:]]


def _given_values(args: Sequence[str]) -> dict[str, str]:
    """The ``key=value`` arguments of ``args`` (``+`` prefixes dropped), by key."""
    return dict(a.lstrip("+").split("=", 1) for a in args if "=" in a and not a.startswith("-"))


def _resume_of(args: Sequence[str]) -> str:
    """The run ``resume=`` in ``args`` names (``""`` when none)."""
    resume = override_value(_given_values(args).get("resume", ""))
    return "" if resume == "null" else resume


def resume_group_overrides(args: list[str], conf_dir: Path | None = None) -> list[str]:
    """Group choices (``algo=a2c``, ``env=Acrobot``, ...) of the run that ``resume=<path>`` in
    ``args`` names (:func:`run_group_choices`), for the groups ``args`` does not set.

    Hydra composes the command line before rlkit reads the saved config: without the run's groups it
    would compose the default algorithm, and an override of a key that only the run's algorithm has
    (``resume=<a2c run> algo.n_steps=10``) would fail. The run's ``hydra.searchpath``
    (:func:`run_searchpath`) comes too where ``args`` gives none (where it gives one,
    :func:`with_run_searchpath` adds the run's entries to it): a group of the user's own (an algorithm
    added outside the package) is found where it was. Returns ``[]`` when there is no
    ``resume``. A ``resume`` that names a file which is not a checkpoint, or a checkpoint of an
    abandoned branch (:func:`~rlkit.run.check_resume_target`), is refused here, in one line.

    Examples:
        >>> from rlkit.cli import resume_group_overrides
        >>> resume_group_overrides(["total_frames=1000"])
        []
    """
    values = _given_values(args)
    resume = _resume_of(args)
    if not resume:
        return []
    try:
        check_resume_target(resume)
    except RlkitError as err:
        refuse(err)
    choices = run_group_choices(resume, conf_dir)
    groups = [f"{group}={choices[group]}" for group in GROUP_KEYS if group not in values and group in choices]
    searchpath = run_searchpath(resume)
    if searchpath and searchpath_given(args) is None:
        # the folders the run's groups came from (an algorithm of the user's own: README "Adding an
        # algorithm"); one the line gives gets them after its own (with_run_searchpath)
        groups.append(searchpath_override(searchpath))
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
