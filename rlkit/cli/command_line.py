"""The command line before Hydra sees it (:func:`prepare_argv`): path values quoted
(:func:`quote_paths`), a resumed run's own groups inserted (:mod:`rlkit.cli.resume`), and what Hydra
would refuse in a screenful refused in one line (:func:`check_command_line`,
:func:`command_line_problem`: an unknown group choice or key, an override its grammar cannot read, a
node's shape changed)."""
from __future__ import annotations

import difflib
import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rlkit.builders import GROUP_KEYS, takes_list_of_mappings
from rlkit.cli.base import refuse
from rlkit.cli.resume import resume_group_overrides, searchpath_given, with_run_searchpath
from rlkit.errors import ConfigError
from rlkit.rundir import quoted


def prepare_argv(argv: list[str], config_name: str = "config") -> None:
    """Refuses a command line Hydra would refuse in a screenful (:func:`check_command_line`), in
    one line; then inserts the resumed run's groups (:func:`resume_group_overrides`) into ``argv``
    in place, right before ``resume=`` (Hydra's flags may come first), and adds the run's
    ``hydra.searchpath`` entries to one the line gives (:func:`with_run_searchpath`). Paths that
    Hydra's grammar would misread are quoted first (:func:`quote_paths`)."""
    argv[1:] = quote_paths(argv[1:])
    args = argv[1:]
    conf_dir = Path(argv[0]).resolve().parent / "conf"
    groups = resume_group_overrides(args, conf_dir)
    argv[1:] = args = with_run_searchpath(args)
    if groups:
        at = 1 + next(i for i, a in enumerate(args) if a.lstrip("+").startswith("resume="))
        argv[at:at] = groups
    check_command_line(argv[1:], conf_dir, config_name)


#: The command-line keys whose value is a path (a run, a checkpoint file, a file to write).
PATH_KEYS = ("resume", "run", "out")


def quote_paths(args: Sequence[str]) -> list[str]:
    """``args`` with each path value of :data:`PATH_KEYS` that Hydra's override grammar would refuse
    or split quoted (:func:`~rlkit.rundir.quoted`): a sweep job's directory such as
    ``3_lr=0.0003,seed=1`` is pasted as the run prints it. A value that Hydra cannot parse is quoted;
    one that it reads as a sweep or a list is quoted only when it names an existing path as written
    (``null``, numbers and the like are left to Hydra).

    Examples:
        >>> from rlkit.cli import quote_paths
        >>> quote_paths(["resume=/runs/3_lr=0.0003,seed=1", "total_frames=10", "run=a,b"])
        ["resume='/runs/3_lr=0.0003,seed=1'", 'total_frames=10', 'run=a,b']
    """
    parser = OverridesParser.create()
    out = []
    for arg in args:
        key, sep, value = arg.partition("=")
        if (sep and not arg.startswith("-") and key.lstrip("+") in PATH_KEYS and value
                and value[0] not in "'\""):
            try:
                parsed = parser.parse_overrides([arg])[0]
                split = parsed.is_sweep_override() or isinstance(parsed.value(), (list, dict))
                plain = not (split and _is_path(value))
            except HydraException:
                plain = False
            if not plain:
                arg = f"{key}={quoted(value)}"
        out.append(arg)
    return out


def _is_path(text: str) -> bool:
    """Whether ``text`` names an existing file or folder (a comma-joined sweep list may be longer than
    a file name can be)."""
    try:
        return Path(text).exists()
    except (OSError, ValueError):
        return False


#: The config groups a command line picks from (``conf/<group>/<choice>.yaml``).
CHOSEN_GROUPS = (*GROUP_KEYS, "experiment")
#: The configs that compose the training config and its groups (evaluate.py's and export.py's have none).
GROUPED_CONFIGS = ("config", "tune")
#: The groups whose files name themselves (``name:``, read by the registries): a ``<group>.name=``
#: override would rename the section, not choose another file.
NAMED_GROUPS = ("algo", "value_estimator", "logger")


def _group_choices(conf_dirs: Sequence[Path], group: str) -> list[str]:
    return sorted({path.stem for conf_dir in conf_dirs for path in (conf_dir / group).glob("*.yaml")})


def _extra_conf_dirs(args: Sequence[str]) -> list[Path] | None:
    """The config folders a command line adds to ``conf/``: the folders of its ``hydra.searchpath``
    (``file://<folder>``, or a bare path) and its ``--config-dir``. None where a config comes from
    where only Hydra can look (a ``pkg://`` entry, ``--config-path``, ``--config-name``).

    Examples:
        >>> from rlkit.cli.command_line import _extra_conf_dirs
        >>> _extra_conf_dirs(["algo=mine", "hydra.searchpath=[file:///my/conf]", "--config-dir", "/study"])
        [PosixPath('/study'), PosixPath('/my/conf')]
        >>> _extra_conf_dirs(["hydra.searchpath=[pkg://my_algos.conf]"]) is None
        True
    """
    dirs: list[Path] = []
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag in ("--config-dir", "-cd"):
            dirs.append(Path(value if eq else args[i + 1] if i + 1 < len(args) else ""))
        elif flag in _OTHER_CONFIGS:
            return None
    given = searchpath_given(hydra_overrides(args))
    if given is None:
        return None if any(a.lstrip("+~").startswith("hydra.searchpath") for a in args) else dirs
    for entry in given[1]:
        scheme, sep, path = entry.partition("://")
        if sep and scheme != "file":
            return None
        dirs.append(Path(path if sep else entry))
    return dirs


def check_command_line(args: Sequence[str], conf_dir: Path, config_name: str = "config") -> None:
    """Refuses (:func:`refuse`) what :func:`command_line_problem` finds.

    Examples:
        >>> from rlkit.cli import CONF_DIR, check_command_line
        >>> check_command_line(["algo=c51", "algo.n_atoms=11"], CONF_DIR)  # fine: nothing happens
        >>> try:
        ...     check_command_line(["algo=dqm"], CONF_DIR)
        ... except SystemExit as stop:
        ...     print(stop.code)
        2
    """
    problem = command_line_problem(args, conf_dir, config_name)
    if problem is not None:
        refuse(ConfigError(problem))


def command_line_problem(args: Sequence[str], conf_dir: Path, config_name: str = "config") -> str | None:
    """What Hydra would refuse in a screenful, found before it composes anything, as one line naming
    the value and the valid choices (``None`` when nothing is found):

    - a choice of a config group (``algo``, ``env``, ``value_estimator``, ``logger``,
      ``experiment``) that is not a file of ``conf/<group>/``, each value of a sweep included
      (Hydra prints a screen of search paths; when ``experiment`` was an optional group, it
      trained the defaults);
    - an override of a key the composed config does not have (Hydra's "not in struct" text);
    - a ``<group>.name=`` override of a group whose files name themselves (:data:`NAMED_GROUPS`).

    What this cannot judge (glob sweeps, keys under a group that a sweep varies, configs from
    another directory: ``--config-dir``, ``hydra.searchpath``) is left to Hydra and to
    :class:`ConfigCheck`.

    Examples:
        >>> from rlkit.cli import CONF_DIR, command_line_problem
        >>> command_line_problem(["algo=a2c", "algo.n_steps=8"], CONF_DIR) is None
        True
        >>> command_line_problem(["algo=dqm"], CONF_DIR)
        "algo='dqm' is not a choice; valid choices: ['a2c', 'c51', 'dqn']"
        >>> command_line_problem(["algo=a2c", "value_estimator.name=td0"], CONF_DIR)
        'value_estimator.name=td0 renames the value_estimator section without choosing its file, whose keys it keeps; choose it with value_estimator=td0'
    """
    from hydra.core.override_parser.types import Glob

    extra = _extra_conf_dirs(args)
    if extra is None:
        return None  # configs from where only Hydra looks (a package's, another primary config)
    dirs = [conf_dir, *extra]  # (tune.py's experiment=best, an algorithm of the user's own)
    overrides = hydra_overrides(args)
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return _parse_problem(overrides)
    sweep = _sweep_without_multirun(args, parsed, config_name)
    if sweep:
        return sweep
    groups = CHOSEN_GROUPS if config_name in GROUPED_CONFIGS else ()
    for override in parsed:
        if override.is_add() and override.key_or_group in groups and not isinstance(override.value(), dict):
            # Hydra: "Multiple values for algo. To override a value use 'override algo: c51'"
            given = override.input_line or f"+{override.key_or_group}={override.get_value_string()}"
            return (f"{given} adds a second {override.key_or_group}, which the config already "
                    f"chooses; choose it without +: {given.lstrip('+')}")
    for override in parsed:
        group, _, leaf = override.key_or_group.partition(".")
        if leaf == "name" and group in groups and group in NAMED_GROUPS and not override.is_delete():
            # (it renamed the section and kept the chosen file's other keys: value_estimator.name=td0
            # under algo=a2c failed on gae's lmbda, value_estimator.name=td1 ran as td1 unseen)
            value = override.get_value_string()
            return (f"{override.input_line or override.key_or_group} renames the {group} section without choosing its "
                    f"file, whose keys it keeps; choose it with {group}={value}")
    chosen: list[str] = []
    merged: list[Any] = []
    swept_group = False
    for override in parsed:
        group = override.key_or_group
        if override.is_hydra_override() or override.is_delete() or group not in groups:
            continue
        if not override.is_sweep_override() and isinstance(override.value(), dict):
            merged.append(override)  # (a mapping merged onto the group's node, not a choice: algo={batch_size: 64})
            continue
        if isinstance(override.value(), Glob):
            values: list[str] = []  # glob(...): Hydra matches it against the files itself
            swept_group = True
        elif override.is_sweep_override():
            values = [_unquoted(v) for v in override.sweep_string_iterator()]
            swept_group = True
        else:
            values = [_unquoted(override.get_value_string())]
            chosen.append(f"{group}={values[0]}")
        valid = _group_choices(dirs, group)
        for value in values:
            if value not in valid and value.removesuffix(".yaml") not in valid and value != "null":
                gone = [str(d) for d in extra if not d.is_dir()]
                many = len(gone) > 1
                moved = (f" (the config folder{'s' if many else ''} {', '.join(gone)} of hydra.searchpath / --config-dir "
                         f"{'do' if many else 'does'} not exist: give {'them' if many else 'it'} where "
                         f"{'they are' if many else 'it is'} now)" if gone else "")
                return f"{group}={value!r} is not a choice; valid choices: {valid}{moved}"
    if swept_group or extra:
        return None  # (the checks below compose rlkit's own conf/ alone)
    mismatch = _experiment_algo_problem(conf_dir, config_name, chosen)
    if mismatch:
        return mismatch
    # An added key is checked only where it would add a training group to evaluate.py/export.py's config.
    plain = [o for o in parsed if not (o.is_hydra_override() or o.is_delete() or o.key_or_group in groups
                                       or o.package is not None or ((o.is_add() or o.is_force_add())
                                                                    and (groups or o.key_or_group not in CHOSEN_GROUPS)))]
    if not plain and not merged:
        return None
    try:
        cfg = _composed(conf_dir, config_name, chosen)
    except (HydraException, OmegaConfBaseException):
        return None  # Hydra's own composition says what is wrong
    for override in merged:
        problem = _shape_problem(cfg, override)
        if problem:
            return problem
    for override in plain:
        problem = _missing_key(cfg, override.key_or_group) or _shape_problem(cfg, override)
        if problem:
            return problem
    return None


def _sweep_without_multirun(args: Sequence[str], parsed: Sequence[Any], config_name: str) -> str | None:
    """A sweep (``seed=0,1,2``, ``range(...)``, ``choice(...)``) on a command line that does not
    sweep: Hydra refuses it in a screenful ("Ambiguous value"); the line names the ways out.

    Examples:
        >>> from rlkit.cli import CONF_DIR, command_line_problem
        >>> command_line_problem(["seed=0,1,2"], CONF_DIR)
        'seed=0,1,2 gives 3 values and a run takes one: sweep them with python train.py -m seed=0,1,2, or train the 3 seeds in one process with seed=0 num_seeds=3'
        >>> command_line_problem(["algo.hidden_sizes=64,64"], CONF_DIR)
        "algo.hidden_sizes=64,64 gives 2 values and a run takes one (a list is key=[a,b], a string with commas is quoted: key='a,b'); to sweep them: python train.py -m algo.hidden_sizes=64,64"
        >>> command_line_problem(["-m", "seed=0,1,2"], CONF_DIR) is None
        True
        >>> command_line_problem(["algo.lr=1,2"], CONF_DIR, "tune")
        "algo.lr=1,2 gives 2 values and tune.py takes one per key (a list is key=[a,b], a string with commas is quoted: key='a,b'; a search goes in tune.space)"
    """
    multirun = any(a in ("-m", "--multirun") for a in args) or any(
        o.is_hydra_override() and o.key_or_group == "hydra.mode" and str(o.value()).upper() == "MULTIRUN"
        for o in parsed)
    if multirun:
        return None
    for override in parsed:
        if override.is_hydra_override() or not override.is_sweep_override():
            continue
        line = override.input_line or f"{override.key_or_group}={override.get_value_string()}"
        try:
            values = list(override.sweep_string_iterator())
        except HydraException:  # (a glob or an interval: Hydra expands it against the config)
            values = []
        count = f"{len(values)} values" if values else "several values"
        script = {"evaluate": "evaluate.py", "export": "export.py"}.get(config_name, "train.py")
        meant = "a list is key=[a,b], a string with commas is quoted: key='a,b'"
        if config_name == "tune":
            return f"{line} gives {count} and tune.py takes one per key ({meant}; a search goes in tune.space)"
        if override.key_or_group == "seed" and values and all(v.isdigit() for v in values):
            seeds = sorted(int(v) for v in values)
            if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
                return (f"{line} gives {count} and a run takes one: sweep them with python {script} -m {line}, or "
                        f"train the {len(seeds)} seeds in one process with seed={seeds[0]} num_seeds={len(seeds)}")
        return f"{line} gives {count} and a run takes one ({meant}); to sweep them: python {script} -m {line}"
    return None


#: Hydra's command-line flags that take a value (``--cfg job``), and ``--info``'s optional one.
_VALUED_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                 "-cd", "--experimental-rerun"}
_INFO_CHOICES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def hydra_overrides(args: Sequence[str]) -> list[str]:
    """The overrides among ``args``: Hydra's flags and their values left out.

    Examples:
        >>> from rlkit.cli import hydra_overrides
        >>> hydra_overrides(["--cfg", "job", "algo=c51", "-m", "--info", "plugins", "seed=1"])
        ['algo=c51', 'seed=1']
    """
    out: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _VALUED_FLAGS or (arg in ("--info", "-i") and i + 1 < len(args)
                                            and args[i + 1] in _INFO_CHOICES)
        else:
            out.append(arg)
    return out


def _parse_problem(overrides: Sequence[str]) -> str:
    """The first override Hydra's grammar cannot read, as one line: a list or mapping with spaces that
    the shell split into several arguments gets the quoted form that works.

    Examples:
        >>> from rlkit.cli.command_line import _parse_problem
        >>> _parse_problem(["seed=1", "algo.hidden_sizes=[64,", "64]"])
        "cannot read the override 'algo.hidden_sizes=[64,' (the shell splits at spaces): quote it whole, 'algo.hidden_sizes=[64, 64]'"
        >>> _parse_problem(["a=b=c"])
        "cannot read the override 'a=b=c' (mismatched input '=' expecting <EOF>); see https://hydra.cc/docs/1.2/advanced/override_grammar/basic"
    """
    parser = OverridesParser.create()
    for i, arg in enumerate(overrides):
        try:
            parser.parse_overrides([arg])
            continue
        except HydraException as err:
            lines = [line.strip() for line in str(err).splitlines()
                     if line.strip() and line.strip() != "^" and not line.startswith("See ")
                     and not line.startswith("LexerNoViableAltException")]
            detail = lines[-1] if lines else "an unbalanced quote or bracket, or not key=value"
        depth = 0
        for j in range(i, len(overrides)):  # the arguments that close its brackets, if any
            depth += sum(overrides[j].count(c) for c in "[{(") - sum(overrides[j].count(c) for c in "]})")
            if depth <= 0:
                break
        if j > i and depth == 0:
            joined = " ".join(overrides[i:j + 1])
            return f"cannot read the override {arg!r} (the shell splits at spaces): quote it whole, {shlex.quote(joined)}"
        return (f"cannot read the override {arg!r} ({detail}); see "
                "https://hydra.cc/docs/1.2/advanced/override_grammar/basic")
    return "cannot read the overrides " + " ".join(overrides)


def _shape_problem(cfg: DictConfig, override: Any) -> str | None:
    """What Hydra would refuse in a traceback when ``override`` changes a node's shape (a list for a
    mapping, or the reverse) or gives a mapping keys the one there lacks, at any depth (a mapping on
    the command line is merged onto the one there), as one line with the override that works;
    ``None`` otherwise.

    Examples:
        >>> from rlkit.cli import CONF_DIR, command_line_problem
        >>> command_line_problem(["algo.hidden_sizes={a: 1}"], CONF_DIR)
        'algo.hidden_sizes={a: 1} gives a mapping where the config has a list of values (algo.hidden_sizes=[120, 84]); give a list'
        >>> command_line_problem(["env.transforms={name: normalize}"], CONF_DIR)
        "env.transforms={name: normalize} gives a mapping where the config has a list; give a list: 'env.transforms=[{name: normalize}]'"
        >>> command_line_problem(["algo.optim={lr: 0.1, momentum: 0.9}"], CONF_DIR)
        "algo.optim={lr: 0.1, momentum: 0.9} adds algo.optim.momentum, which the config does not have; merge it with + ('+algo.optim={lr: 0.1, momentum: 0.9}', keeping the other keys of algo.optim) or replace the node ('~algo.optim' '+algo.optim={lr: 0.1, momentum: 0.9}')"
    """
    if override.is_sweep_override():
        return None
    key = override.key_or_group
    try:
        node = OmegaConf.select(cfg, key, throw_on_missing=False)
    except OmegaConfBaseException:
        return None  # (a key below a list: Hydra's own message names it)
    value = override.value()
    given = override.input_line or f"{key}={override.get_value_element_as_str()}"
    replace = f"{shlex.quote('~' + key)} {shlex.quote('+' + given)}"
    if isinstance(node, DictConfig) and isinstance(value, list):
        return f"{given} gives a list where the config has a mapping; replace the node: {replace}"
    if isinstance(node, ListConfig) and isinstance(value, dict):
        if key == "tune.space" or key.startswith("tune.space."):  # (a search-space entry may be either)
            return f"{given} gives a mapping where the config has a list; replace the node: {replace}"
        name, _, text = given.partition("=")
        if takes_list_of_mappings(cfg, key) or any(isinstance(item, DictConfig) for item in node):
            return f"{given} gives a mapping where the config has a list; give a list: {shlex.quote(f'{name}=[{text}]')}"
        shown = json.dumps(OmegaConf.to_container(node, resolve=True))
        return f"{given} gives a mapping where the config has a list of values ({name.lstrip('+')}={shown}); give a list"
    if _retyped_entry(key, node, value):
        return f"{given} changes a search-space entry's type, which a merge cannot; replace the node: {replace}"
    if isinstance(node, DictConfig) and isinstance(value, dict):
        new, reshaped = _merge_problems(node, value, key)
        if reshaped:
            path = reshaped[0]
            return (f"{given} changes the shape of {path} (a list for a mapping, the reverse, or a search-space "
                    f"entry's type), which a mapping on the command line cannot; give that node on its own: "
                    f"{shlex.quote('~' + path)} "
                    f"{shlex.quote('+' + path + '=...')}")
        if new:
            if key == "tune.space" or key.startswith("tune.space."):
                for path, given_parent in new.items():
                    problem = _new_space_key_problem(cfg, path, given_parent)
                    if problem:
                        return f"{given} adds {path}: {problem}"
            return (f"{given} adds {', '.join(new)}, which the config does not have; merge it with + "
                    f"({shlex.quote('+' + given)}, keeping the other keys of {key}) or replace the node ({replace})")
    return None


def _merge_problems(node: DictConfig, value: dict, path: str) -> tuple[dict[str, dict], list[str]]:
    """The keys ``value`` gives that the mapping ``node`` lacks, at any depth (dotted path -> the given
    mapping that holds it; a new mapping that is not a search-space entry counts by its leaves), and
    the paths whose shape differs (a list for a mapping, or the reverse)."""
    new: dict[str, dict] = {}
    reshaped: list[str] = []
    for k, v in value.items():
        child = node._get_node(str(k), validate_access=False) if str(k) in node else None
        where = f"{path}.{k}"
        if child is None:
            new.update(_leaves(v, where, value))
        elif child._is_none() or child._is_interpolation():
            continue
        elif ((isinstance(child, DictConfig) and isinstance(v, list))
              or (isinstance(child, ListConfig) and isinstance(v, dict)) or _retyped_entry(where, child, v)):
            reshaped.append(where)  # (a list for a mapping, the reverse, or a search-space entry's type)
        elif isinstance(child, DictConfig) and isinstance(v, dict):
            more, shaped = _merge_problems(child, v, where)
            new.update(more)
            reshaped += shaped
    return new, reshaped


def _retyped_entry(key: str, node: Any, value: Any) -> bool:
    """Whether the mapping ``value`` given for the config node at ``key`` changes the ``type`` of a
    search-space entry (``tune.space.<key>``), which a merge cannot do."""
    return (key.startswith("tune.space.") and isinstance(node, DictConfig) and isinstance(value, dict)
            and node.get("type") not in (None, value.get("type", node.get("type"))))


def _leaves(value: Any, path: str, parent: dict) -> dict[str, dict]:
    """``path`` (held by ``parent``), or, for a mapping that is not a search-space entry (no
    ``type``), its leaves."""
    if isinstance(value, dict) and value and "type" not in value:
        found: dict[str, dict] = {}
        for k, v in value.items():
            found.update(_leaves(v, f"{path}.{k}", value))
        return found
    return {path: parent}


def _new_space_key_problem(cfg: DictConfig, path: str, given_parent: dict) -> str | None:
    """Why a key new to ``tune.space`` (``path``, dotted, in the given mapping ``given_parent``) would
    be refused once merged (None: it is a training key the space may search, or a key of an entry)."""
    from rlkit.tune.settings import FIXED_KEYS
    from rlkit.tune.space import ENTRY_KEYS

    parent_path, _, name = path.rpartition(".")
    parent = OmegaConf.select(cfg, parent_path, throw_on_missing=False)
    kind = given_parent.get("type") or (parent.get("type") if isinstance(parent, DictConfig) else None)
    if kind in ENTRY_KEYS:
        return None if name in ENTRY_KEYS[kind] else f"a {kind} entry's keys are {list(ENTRY_KEYS[kind])}"
    trained = path.removeprefix("tune.space.")
    if trained in FIXED_KEYS:
        return f"{trained} cannot be searched (every trial of a study shares it)"
    if trained.startswith("tune") or _missing_key(cfg, trained) is not None:
        return f"{trained} is not a key of the training config{_space_namesake(cfg, name)}"
    return None


#: Hydra's flags that add or replace config directories (their groups' choices are not conf/'s).
_OTHER_CONFIGS = ("--config-dir", "-cd", "--config-path", "-cp", "--config-name", "-cn")


def _unquoted(value: str) -> str:
    """A choice as Hydra reads it: ``'c51'`` and ``"c51"`` are ``c51``."""
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"" else value


def _experiment_algo_problem(conf_dir: Path, config_name: str, chosen: list[str]) -> str | None:
    """``experiment=<e> algo=<a>`` where the experiment is made for another algorithm: it chooses one
    (its algo differs from the config's default), or it sets ``algo.*`` values of the default one.
    Its ``algo.*`` settings would then be read as ``<a>``'s: Hydra refused a key of the experiment's,
    which the user never typed, or trained a mixture.

    Examples:
        >>> from rlkit.cli.base import CONF_DIR
        >>> from rlkit.cli.command_line import _experiment_algo_problem
        >>> _experiment_algo_problem(CONF_DIR, "config", ["experiment=dqn_cartpole", "algo=c51"])
        'experiment=dqn_cartpole is made for algo=dqn (its algo.* settings are for dqn): drop algo=c51, or choose an experiment made for c51 (conf/experiment/)'
        >>> [_experiment_algo_problem(CONF_DIR, "config", choice) for choice in
        ...  (["experiment=dqn_cartpole", "algo=dqn"], ["experiment=null", "algo=c51"], ["algo=c51"])]
        [None, None, None]
    """
    given = dict(choice.split("=", 1) for choice in chosen)
    experiment, algo = given.get("experiment"), given.get("algo")
    if not experiment or not algo or "null" in (experiment, algo):
        return None
    try:
        made = _composed(conf_dir, config_name, [f"experiment={experiment}"]).algo
        default = _composed(conf_dir, config_name, []).algo
    except (HydraException, OmegaConfBaseException):
        return None  # Hydra's own composition says what is wrong
    made_for = made.name
    if made_for == algo or (made_for == default.name and made == default):
        return None  # (an experiment that neither chooses an algorithm nor sets one's values)
    return (f"experiment={experiment} is made for algo={made_for} (its algo.* settings are for {made_for}): drop "
            f"algo={algo}, or choose an experiment made for {algo} (conf/experiment/)")


def _composed(conf_dir: Path, config_name: str, overrides: list[str]) -> DictConfig:
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=overrides)
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def _missing_key(cfg: DictConfig, key: str) -> str | None:
    """What is wrong with overriding ``key`` (a dotted path) in ``cfg``, or ``None`` where it is
    there (or where only Hydra can tell: list indices, a ``null`` or interpolated parent)."""
    parts = key.split(".")
    if any(part.isdigit() for part in parts):
        return None
    node: Any = cfg
    for depth, part in enumerate(parts):
        if isinstance(node, ListConfig):
            where = ".".join(parts[:depth])
            return f"{where} is a list, which has no key {part!r}: give the whole list ({where}=[...])"
        if not isinstance(node, DictConfig):
            return None
        # (not `in`: a key whose value is ??? is not "in" a DictConfig)
        if node._get_node(part, validate_access=False) is None:
            where = ".".join(parts[:depth])
            siblings = sorted(str(k) for k in node.keys() if k != "hydra")
            if key.startswith("tune.space.") and depth >= 2:  # (tune.py's config: its space exists)
                return _unknown_space_key(cfg, parts, depth, siblings)
            if where and not siblings:  # an empty mapping (env.make_kwargs): its keys are the user's to add
                return f"{where} has no key {part!r} yet; add it with +: +{key}=..."
            return f"unknown key {key}{_did_you_mean(cfg, parts, depth, siblings)}; valid keys" + \
                (f" of {where}" if where else "") + f": {siblings}"
        node = node._get_node(part)
        if node is None or (node._is_interpolation() or node._is_none()) and depth < len(parts) - 1:
            return None
        if isinstance(node, DictConfig):
            continue
    return None


def _unknown_space_key(cfg: DictConfig, parts: list[str], depth: int, siblings: list[str]) -> str:
    """The line for an override of a ``tune.space`` key the space lacks: a key new to an entry
    (``step``) or a training key the space does not search yet are added with ``+``; another name is
    matched with the training keys (``tune.space.algo.gamma``: did you mean
    ``tune.space.value_estimator.gamma``?)."""
    from rlkit.tune.settings import FIXED_KEYS
    from rlkit.tune.space import ENTRY_KEYS

    key, where = ".".join(parts), ".".join(parts[:depth])
    head = f"unknown key {key}"
    tail = f"; valid keys of {where}: {siblings}"
    parent = OmegaConf.select(cfg, where, throw_on_missing=False)
    kind = parent.get("type") if isinstance(parent, DictConfig) else None
    if kind in ENTRY_KEYS:
        if parts[depth] in ENTRY_KEYS[kind] and depth == len(parts) - 1:
            return f"{head}{tail} (a {kind} entry takes it with +: +{key}=...)"
        return f"{head}{tail}; a {kind} entry's keys: {list(ENTRY_KEYS[kind])}"
    trained = ".".join(parts[2:])
    if trained not in FIXED_KEYS and not trained.startswith("tune") and _missing_key(cfg, trained) is None:
        return f"{head}{tail} (a config key the space does not search yet is added with +: +{key}=...)"
    return f"{head}{_space_namesake(cfg, parts[-1])}{tail}"


def _space_namesake(cfg: DictConfig, name: str) -> str:
    """`` (did you mean tune.space.<path>?)`` for a training key named ``name`` a space may search."""
    from rlkit.tune.settings import FIXED_KEYS

    matches = [path for path in _key_paths(cfg) if path.rsplit(".", 1)[-1] == name
               and not path.startswith(("hydra", "tune")) and path not in FIXED_KEYS]
    return f" (did you mean tune.space.{matches[0]}?)" if matches else ""


def _did_you_mean(cfg: DictConfig, parts: list[str], depth: int, siblings: list[str]) -> str:
    """`` (did you mean <key>?)``: a key of the same name elsewhere (``algo.gamma`` ->
    ``value_estimator.gamma``), else a close spelling among ``siblings``."""
    name = parts[depth]
    elsewhere = [path for path in _key_paths(cfg) if path.rsplit(".", 1)[-1] == name and not path.startswith("hydra")]
    close = [".".join([*parts[:depth], match]) for match in difflib.get_close_matches(name, siblings, n=1)]
    found = elsewhere or close
    return f" (did you mean {found[0]}?)" if found else ""


def _key_paths(node: DictConfig, prefix: str = "") -> list[str]:
    paths = []
    for k in node.keys():
        path = f"{prefix}{k!s}"
        paths.append(path)
        child = node._get_node(str(k))
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_interpolation():
            paths += _key_paths(child, f"{path}.")
    return paths
