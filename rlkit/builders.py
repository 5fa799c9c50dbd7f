"""DictConfig -> validated settings. Below the command line (``rlkit.cli``) the only rlkit module that
reads a config (with omegaconf; Hydra itself is imported by ``rlkit.cli`` only).

:func:`validate_config` checks the whole config (unknown keys, wrong types, out-of-range values,
unknown names, unsupported algorithm / value-estimator pairs, unknown env ids, missing extras) before
anything is created; :func:`rlkit.factories.build_trainer` then builds env, policy, loss, optimiser,
replay buffer, collector and evaluator.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import importlib
import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, cast

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

import rlkit.agents  # noqa: F401  (registers the built-in algorithms)
from rlkit.config_schema import (
    ESTIMATOR_SCHEMAS,
    LOGGER_SCHEMAS,
    ConfigError,
    EnvConfig,
    RootConfig,
)
from rlkit.errors import NotStackableError
from rlkit.objectives.value import get_estimator_class
from rlkit.registry import ALGORITHMS
from rlkit.utils.devices import device_problem
from rlkit.utils.imports import import_problem

GROUP_KEYS = ("algo", "env", "value_estimator", "logger")


@dataclass
class Settings:
    """The validated config as typed dataclasses."""

    root: RootConfig
    algo: Any
    env: EnvConfig
    value_estimator: Any
    logger: Any


def _typed(section: Any, schema: type, where: str, strict_bools: bool = True) -> Any:
    """Merges ``section`` onto ``schema`` (unknown keys / wrong types fail) and checks ranges;
    ``strict_bools``: a number for a true/false field is refused (:func:`_check_bools`)."""
    valid = [f.name for f in dataclasses.fields(schema)]
    if not isinstance(section, DictConfig):
        raise ConfigError(f"{where} must be a mapping with keys {valid}, got {section!r}")
    for key in section.keys():
        if key not in valid:
            hint = difflib.get_close_matches(str(key), valid, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"unknown key {where}.{key!s}{did_you_mean}; valid keys: {valid}")
    # A key missing from the section is refused, unless the schema gives it a default (a key added
    # after runs were saved, whose saved configs lack it).
    defaulted = {f.name for f in dataclasses.fields(schema)
                 if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}
    missing = [key for key in valid
               if (key not in section and key not in defaulted) or (key in section and OmegaConf.is_missing(section, key))]
    if missing:
        raise ConfigError(f"{where}.{missing[0]} is missing: give it a value ({where}.{missing[0]}=...); the "
                          f"section's keys are {valid}")
    _check_finite(section, where)
    prefix = "" if where == "config" else f"{where}."
    if strict_bools:
        _check_bools(section, schema, prefix)
    _check_mapping_items(section, schema, prefix)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), section)
        return OmegaConf.to_object(merged)
    except ConfigError:
        raise
    except OmegaConfBaseException as err:
        # The key as the user writes it (the root section's keys have no prefix), one line.
        full = getattr(err, "full_key", None) or ""
        name = (full if where == "config" else f"{where}.{full}") if full else where
        nested = getattr(err, "object_type", None)
        if isinstance(err, ConfigKeyError) and dataclasses.is_dataclass(nested) and full:
            valid_nested = [f.name for f in dataclasses.fields(nested)]
            hint = difflib.get_close_matches(full.split(".")[-1], valid_nested, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"unknown key {name}{did_you_mean}; valid keys: {valid_nested}") from None
        expected = _expected_value(schema, full.split(".")) if full else None
        if expected is not None:
            given = OmegaConf.select(section, full, throw_on_missing=False)
            given = OmegaConf.to_container(given) if isinstance(given, (DictConfig, ListConfig)) else given
            advice = f"; write {name}={int(given)}" if expected.startswith("an integer") and isinstance(given, float) \
                and given.is_integer() else ""
            shown = "null" if given is None else repr(given)
            raise ConfigError(f"{name}={shown} is invalid: expected {expected}{advice}") from None
        first = str(err.msg).strip().splitlines()[0] if str(err.msg).strip() else type(err).__name__
        raise ConfigError(f"bad value for {name}: {first}") from None


def _expected_value(schema: Any, path: list[str]) -> str | None:
    """What the field at ``path`` of the dataclass ``schema`` takes, in words (None when the path is
    not a field of it).

    Examples:
        >>> from rlkit.builders import _expected_value
        >>> from rlkit.config_schema import RootConfig
        >>> _expected_value(RootConfig, ["trainer", "log_interval"]), _expected_value(RootConfig, ["resume"])
        ('an integer', 'a string or null')
    """
    hints = typing.get_type_hints(schema) if dataclasses.is_dataclass(schema) else {}
    if not path or path[0] not in hints:
        return None
    kind = hints[path[0]]
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    optional = typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) < len(typing.get_args(kind))
    if optional and len(args) == 1:
        kind = args[0]
    if len(path) > 1:
        return _expected_value(kind, path[1:])
    origin = typing.get_origin(kind) or kind
    words = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             list: "a list ([a, b, ...])", tuple: "a list ([a, b, ...])", dict: "a mapping ({key: value, ...})"}
    word = words.get(origin) or ("a mapping ({key: value, ...})" if dataclasses.is_dataclass(kind) or origin in
                                 (collections.abc.Mapping, typing.Mapping) else None)
    if word is None:
        return None
    return f"{word} or null" if optional else word


def takes_list_of_mappings(cfg: DictConfig, key: str) -> bool:
    """Whether the schema types the dotted config ``key`` as a list of mappings (``env.transforms``),
    for the group section ``cfg`` chooses.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.builders import takes_list_of_mappings
        >>> cfg = OmegaConf.create({"algo": {"name": "dqn"}})
        >>> takes_list_of_mappings(cfg, "env.transforms"), takes_list_of_mappings(cfg, "algo.hidden_sizes")
        (True, False)
    """
    group, _, rest = key.partition(".")
    named = _named_schemas()
    if group == "env":
        kind: Any = EnvConfig
    elif group in named:
        kind = named[group].get(str(OmegaConf.select(cfg, f"{group}.name", default=None)))
    else:
        kind, rest = RootConfig, key
    for name in rest.split("."):
        try:
            hints = typing.get_type_hints(kind) if dataclasses.is_dataclass(kind) else {}
        except Exception:  # noqa: BLE001 (a user's schema whose annotations do not resolve)
            return False
        kind = hints.get(name)
    return _is_list_of_mappings(kind)


def import_modules(modules: list[str]) -> None:
    """Imports the config's ``imports`` (a user's modules that register algorithms), so that the
    registry holds their entries before the ``algo`` section is checked against it.

    Raises:
        ConfigError: a module cannot be imported (named, with where a module of one's own goes).

    Examples:
        >>> from rlkit.builders import import_modules
        >>> import_modules(["json"])
        >>> import_modules(["json", "not_a_module_here"])
        Traceback (most recent call last):
        ...
        rlkit.errors.ConfigError: imports[1]='not_a_module_here': cannot import module 'not_a_module_here' (No module named 'not_a_module_here'); a module of yours must be importable: put its folder on PYTHONPATH (PYTHONPATH=<folder> python train.py ...) or install it
    """
    for i, module in enumerate(modules):
        problem = import_problem(module)
        if problem is not None:
            raise ConfigError(f"imports[{i}]={module!r}: {problem}")


def _named_schemas() -> dict[str, dict[str, type]]:
    """The schema of each choice of the groups a ``name`` selects (the algorithms as registered now)."""
    return {"algo": {name: entry.schema for name, entry in ALGORITHMS.items()}, "value_estimator": ESTIMATOR_SCHEMAS,
            "logger": LOGGER_SCHEMAS}


def _is_list_of_mappings(kind: Any) -> bool:
    items = typing.get_args(kind) if typing.get_origin(kind) is list else ()
    return len(items) == 1 and typing.get_origin(items[0]) is dict


def _check_bools(section: Any, schema: type, prefix: str) -> None:
    """Refuses a number or a string given for a bool field, in nested sections too: OmegaConf reads
    any int as a bool (``algo.double_dqn=2`` trained as true and was saved as 2) and ``yes`` / ``on``
    / ``off`` as bools (``algo.ortho_init=off`` trained as false and was saved as the string)."""
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # noqa: BLE001 (a schema of a user's whose annotations do not resolve: OmegaConf judges)
        return
    for f in dataclasses.fields(schema):
        if f.name not in section:
            continue
        value, kind = section.get(f.name), hints.get(f.name)
        if kind is bool and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            raise ConfigError(f"{prefix}{f.name}={value!r} is invalid: expected true or false")
        if dataclasses.is_dataclass(kind) and isinstance(value, DictConfig):
            _check_bools(value, cast(type, kind), f"{prefix}{f.name}.")


def _check_mapping_items(section: Any, schema: type, prefix: str) -> None:
    """Refuses an item that is not a mapping in a list of mappings (``env.transforms=[normalize]``),
    naming the item: OmegaConf's own error names only the section."""
    try:
        hints = typing.get_type_hints(schema)
    except Exception:  # noqa: BLE001 (a schema of a user's whose annotations do not resolve: OmegaConf judges)
        return
    for f in dataclasses.fields(schema):
        value = section.get(f.name) if f.name in section else None
        if not _is_list_of_mappings(hints.get(f.name)) or not isinstance(value, ListConfig):
            continue
        for i, item in enumerate(value):
            if not isinstance(item, DictConfig):
                example = f"{{name: {item}}}" if isinstance(item, str) else "{key: value}"  # (registry entries)
                raise ConfigError(f"{prefix}{f.name}[{i}]={item!r} is invalid: expected a mapping ({{key: value, "
                                  f"...}}), as in {prefix}{f.name}=[{example}]")


#: Subtrees where an infinite number is a value: ``env.make_kwargs`` go to the env's constructor as
#: given (a Box bound may be infinite).
_INFINITE_TAKEN = ("env.make_kwargs",)
#: Subtrees whose numbers their owner checks: each ``env.transforms`` item by its transform's knob
#: checks (:func:`rlkit.envs.transforms.check_transforms`), where ``clip_reward``'s bounds may be
#: infinite (no bound on that side).
_CHECKED_BY_OWNER = ("env.transforms",)


def _check_finite(node: Any, where: str, infinite: bool = False) -> None:
    """Refuses NaN and infinite numbers anywhere in a section (``algo.optim.lr=inf``): no knob of
    rlkit takes them, and an optimiser or a schedule would only fail later, mid-run. Under
    :data:`_INFINITE_TAKEN` (``infinite``) an infinite number is taken, NaN still refused (a resume
    compares the saved values, and NaN equals nothing); :data:`_CHECKED_BY_OWNER` is left to its owner."""
    if where in _CHECKED_BY_OWNER:
        return
    infinite = infinite or where in _INFINITE_TAKEN
    if isinstance(node, DictConfig):
        node = OmegaConf.to_container(node, resolve=True, throw_on_missing=False)
    if isinstance(node, dict):
        for key, value in node.items():
            _check_finite(value, f"{where}.{key}", infinite)
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            _check_finite(item, f"{where}[{i}]", infinite)
    elif isinstance(node, float) and math.isnan(node):
        raise ConfigError(f"{where}={node!r} is invalid: expected a number")
    elif isinstance(node, float) and not infinite and math.isinf(node):
        raise ConfigError(f"{where}={node!r} is invalid: expected a finite number")


def _named(section: Any, schemas: dict[str, type], group: str, strict_bools: bool = True) -> Any:
    name = section.get("name") if isinstance(section, DictConfig) else None
    if name not in schemas:
        raise ConfigError(f"{group}.name={name!r} is not registered; valid choices: {sorted(schemas)}")
    return _typed(section, schemas[name], group, strict_bools)


def validate_config(cfg: DictConfig, *, saved: bool = False) -> Settings:
    """Validates the whole config; raises :class:`ConfigError` naming the key and valid choices.

    The ``algo`` section is validated by the schema its :mod:`rlkit.registry` entry declares, and the
    value estimator against the ones its loss supports. ``saved``: the config of an existing run
    (resumed, evaluated, exported), which may hold a number for a true/false setting from before
    such numbers were refused; it is read as OmegaConf reads it (any nonzero number is true).
    """
    strict = not saved
    root_keys = [f.name for f in dataclasses.fields(RootConfig)]
    valid_top = root_keys + list(GROUP_KEYS)
    for key in cfg.keys():
        if key not in valid_top and key != "hydra":
            hint = difflib.get_close_matches(str(key), valid_top, n=1)
            did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"unknown top-level key {key!r}{did_you_mean}; valid keys: {valid_top}")
    for group in GROUP_KEYS:
        if group not in cfg:
            raise ConfigError(f"config group {group!r} is missing")
    root = _typed(OmegaConf.masked_copy(cfg, root_keys), RootConfig, "config", strict)
    import_modules(root.imports)
    named = _named_schemas()
    algo = _named(cfg.algo, named["algo"], "algo", strict)
    estimator = _named(cfg.value_estimator, named["value_estimator"], "value_estimator", strict)
    logger = _named(cfg.logger, named["logger"], "logger", strict)
    env = _typed(cfg.env, EnvConfig, "env", strict)

    entry = ALGORITHMS[algo.name]  # (its schema has the fields the builders read: checked at registration)
    if root.num_seeds > 1 and not entry.stacked_seeds:
        raise NotStackableError(f"num_seeds={root.num_seeds}: algo={algo.name!r} does not declare that it trains several "
                                "seeds in one process (its registry entry's stacked_seeds: a loss that keeps the "
                                "seed dim, LossModule.stacked_dims); use num_seeds=1 (one process per seed, e.g. a "
                                "sweep seed=0,1,2)")
    supported = entry.supported_value_estimators
    if estimator.name not in supported:
        raise ConfigError(
            f"value_estimator={estimator.name!r} is not supported by algo={algo.name!r}; "
            f"valid choices for {algo.name}: {supported}"
        )
    slices = entry.off_policy and get_estimator_class(estimator.name).needs_time_dim
    if slices and entry.slice_len is None:
        raise ConfigError(f"value_estimator={estimator.name!r} trains on [B, T] slices, but algo={algo.name!r} "
                          "declares no slice length")
    if slices and algo.prioritized:  # (an off-policy section is an OffPolicyConfig, checked at registration)
        raise ConfigError(f"algo.prioritized=true with value_estimator={estimator.name!r}: its [B, T] slices are "
                          "sampled uniformly (no prioritised slices); use value_estimator=td0 for prioritised "
                          "replay, or algo.prioritized=false")
    env = _check_env(env)
    _check_device(root.device)
    _check_optim(algo.optim)
    return Settings(root=root, algo=algo, env=env, value_estimator=estimator, logger=logger)


def _check_env(env: EnvConfig) -> EnvConfig:
    """The env section with ``target_return: auto`` resolved (the spec's ``reward_threshold``, or
    None); refuses a suite, game or option rlkit does not know, an id gymnasium does not know
    (``module:Id`` imports the module first) and transforms rlkit cannot build. Whether the env
    builds, and its spaces fit the algorithm, is checked by building it (:func:`rlkit.run.preflight`)."""
    from rlkit.envs import find_env_spec
    from rlkit.envs.suites import get_suite
    from rlkit.envs.transforms import check_transforms

    try:
        resolved = get_suite(env.suite).resolve(env.id, env.game, env.options)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    try:
        spec = find_env_spec(resolved.env_id)
    except ValueError as err:
        # find_env_spec names "env id 'X'"; the config key is what the user typed
        raise ConfigError(str(err).replace(f"env id {env.id!r}", f"env.id={env.id!r}", 1)) from None
    try:
        check_transforms(env.transforms, resolved.game_limit_option)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if env.target_return == "auto":
        threshold = spec.reward_threshold
        return dataclasses.replace(env, target_return=None if threshold is None else float(threshold))
    return env


def _check_device(device: str) -> None:
    problem = device_problem(device)
    if problem is not None:
        raise ConfigError(problem)


def _check_optim(optim: dict) -> None:
    target = optim.get("_target_")
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(f"algo.optim._target_={target!r} must name an optimiser class, e.g. torch.optim.Adam")
    module_name, cls_name = target.rsplit(".", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigError(f"algo.optim._target_={target!r} cannot be imported: no module {module_name!r}") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        optimisers = sorted(name for name, value in vars(module).items()
                            if inspect.isclass(value) and issubclass(value, torch.optim.Optimizer)
                            and value is not torch.optim.Optimizer)
        close = difflib.get_close_matches(cls_name, optimisers, n=1)
        hint = f" (did you mean {module_name}.{close[0]}?)" if close else ""
        raise ConfigError(f"algo.optim._target_={target!r} cannot be imported: {module_name} has no {cls_name!r}{hint}; "
                          f"its optimisers: {optimisers}")
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(f"algo.optim._target_={target!r} is not a torch.optim.Optimizer")
    kwargs = {k: v for k, v in optim.items() if k != "_target_" and v is not None}  # null: the class's default
    try:
        inspect.signature(cls).bind(params=[], **kwargs)
    except TypeError as err:
        accepted = [name for name in inspect.signature(cls).parameters if name != "params"]
        raise ConfigError(
            f"algo.optim has arguments {cls_name} does not take ({err}); {cls_name} takes {accepted}. "
            "Drop an inherited one with ~algo.optim.<name> or set it to null (e.g. ~algo.optim.fused when "
            "switching away from Adam)"
        ) from None
    lr = kwargs.get("lr")
    if lr is not None and not (isinstance(lr, (int, float)) and lr > 0):
        raise ConfigError(f"algo.optim.lr={lr!r} is invalid: expected a positive number")


def resolved_container(cfg: DictConfig) -> dict:
    """The config as a plain, resolved dict without the ``hydra`` node."""
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)  # (a DictConfig's container)
    container.pop("hydra", None)
    return container


def apply_overrides(saved: dict, overrides: list[str]) -> DictConfig:
    """A saved run config with command-line ``key=value`` overrides (used on resume)."""
    cfg = OmegaConf.create(saved)
    plain = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.startswith("~"):
            raise ConfigError(f"{item}: a key cannot be deleted when resuming; resume uses the run's config "
                              "(give the key a value instead)")
        key = key.lstrip("+")
        if key in GROUP_KEYS and value == str(saved.get(key, {}).get("name")):
            continue  # the run's own choice (train.py adds those on resume, see resume_group_overrides)
        if key in GROUP_KEYS or key == "experiment":
            section = saved.get(key)
            # (an env section names no group: its game or gymnasium id says which env the run has)
            chosen = (section.get("name") if key != "env" else section.get("game") or section.get("id")) \
                if isinstance(section, dict) else None
            runs = f"the run's {key} is {chosen!r}" if chosen is not None else f"the run chose no {key}"
            raise ConfigError(f"{item}: cannot change the config group {key!r} when resuming ({runs}); resume uses "
                              "the run's config")
        plain.append(item.lstrip("+"))
    if plain:
        merged = OmegaConf.merge(cfg, OmegaConf.from_dotlist(plain))
        assert isinstance(merged, DictConfig)  # (two DictConfigs merge into one)
        cfg = merged
    return cfg
