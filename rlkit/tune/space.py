"""Search spaces: which config keys a study samples, and from what.

A space is a nested mapping that mirrors the training config (``conf/tune/<algo>.yaml``); each leaf
is an entry for one config key (its dotted path is the parameter's name):

- ``{type: float, low: 1e-5, high: 1e-2, log: true}`` (optional ``step``, not with ``log``);
- ``{type: int, low: 16, high: 256, log: true}`` (optional ``step``);
- ``{type: categorical, choices: [...]}``, or just the list ``[...]``. Choices may be any YAML values
  (``[[64, 64], [256, 256]]`` for ``algo.hidden_sizes``): those that are not a number, string, bool
  or null are given to the sampler as their JSON text and decoded back.

Parsing refuses a malformed entry with a :class:`~rlkit.errors.ConfigError` that names its key.
"""
from __future__ import annotations

import json
import math
from decimal import Decimal, localcontext
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from rlkit.errors import ConfigError

__all__ = ["ENTRY_KEYS", "PARAM_TYPES", "Param", "SearchSpace", "parse_space"]

ParamType = Literal["float", "int", "categorical"]
#: The entry types of a search space.
PARAM_TYPES: tuple[ParamType, ...] = ("float", "int", "categorical")
#: The keys of each type of entry.
ENTRY_KEYS: dict[str, tuple[str, ...]] = {
    "float": ("type", "low", "high", "log", "step"),
    "int": ("type", "low", "high", "log", "step"),
    "categorical": ("type", "choices"),
}
_PRIMITIVE = (type(None), bool, int, float, str)


class Suggester(Protocol):
    """What a parameter draws its value from (an ``optuna.Trial``)."""

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class Param:
    """One searched config key: ``path`` (dotted), its type and range or choices."""

    path: str
    type: ParamType
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    @property
    def encoded(self) -> bool:
        """Whether the sampler sees the choices as JSON text (some choice is a list or mapping)."""
        return any(not isinstance(c, _PRIMITIVE) for c in self.choices)

    def sampler_choices(self) -> list[Any]:
        """The choices as the sampler sees them."""
        return [json.dumps(c) for c in self.choices] if self.encoded else list(self.choices)

    def decode(self, value: Any) -> Any:
        """The config value of a sampled ``value`` (the identity but for encoded choices)."""
        return json.loads(value) if self.encoded and isinstance(value, str) else value

    def suggest(self, trial: Suggester) -> Any:
        """Draws this parameter's config value from ``trial``."""
        assert self.type in PARAM_TYPES
        if self.type == "categorical":
            return self.decode(trial.suggest_categorical(self.path, self.sampler_choices()))
        assert self.low is not None and self.high is not None  # (checked by parse_space)
        if self.type == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.path, float(self.low), float(self.high), step=self.step, log=self.log)

    def examples(self) -> list[Any]:
        """Values the space can produce at its edges (the bounds, or every choice): a start checks
        that the config accepts each before a trial runs."""
        if self.type == "categorical":
            return list(self.choices)
        return [self.low, self.high]

    def grid(self) -> list[Any] | None:
        """The values of a grid search (as the sampler sees them); None for a float without ``step``."""
        if self.type == "categorical":
            return self.sampler_choices()
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return None
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def describe(self) -> dict[str, Any]:
        """The entry as written in a space file (a plain mapping)."""
        if self.type == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of a study, in the order of the space file.

    Examples:
        >>> from rlkit.tune import parse_space
        >>> space = parse_space({"algo": {"optim": {"lr": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}},
        ...                               "hidden_sizes": [[64], [64, 64]]}})
        >>> [(p.path, p.type) for p in space.params]
        [('algo.optim.lr', 'float'), ('algo.hidden_sizes', 'categorical')]
        >>> space.grid() is None  # a float without a step has no grid
        True
    """

    params: tuple[Param, ...]

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.params]

    def suggest(self, trial: Suggester) -> dict[str, Any]:
        """A config value for every parameter (path -> value), drawn from ``trial``."""
        return {p.path: p.suggest(trial) for p in self.params}

    def decode(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Config values of a trial's recorded parameters (path -> sampled value)."""
        by_path = {p.path: p for p in self.params}
        return {path: by_path[path].decode(value) if path in by_path else value for path, value in params.items()}

    def grid(self) -> dict[str, list[Any]] | None:
        """The grid (path -> values) of a grid search; None when a parameter has no finite grid."""
        grid = {p.path: p.grid() for p in self.params}
        if any(values is None for values in grid.values()):
            return None
        return {path: values for path, values in grid.items() if values is not None}

    def describe(self) -> dict[str, dict[str, Any]]:
        """Path -> entry (what a study records to recognise its space on resume)."""
        return {p.path: p.describe() for p in self.params}


def _number(where: str, key: str, value: Any, integer: bool) -> float:
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(f"{where}: {key}={value!r} must be {kind}")
    return value


def _entry(where: str, path: str, node: Any) -> Param:
    if isinstance(node, (list, tuple)):
        node = {"type": "categorical", "choices": list(node)}
    kind = node.get("type")
    if kind not in PARAM_TYPES:
        raise ConfigError(f"{where}: type={kind!r} is not a parameter type; valid choices: {list(PARAM_TYPES)}")
    unknown = [k for k in node if k not in ENTRY_KEYS[kind]]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} in a {kind} entry; valid keys: {list(ENTRY_KEYS[kind])}")
    if kind == "categorical":
        choices = node.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ConfigError(f"{where}: choices={choices!r} must be a non-empty list")
        texts = [json.dumps(c, sort_keys=True) for c in choices]
        if len(set(texts)) != len(texts):
            raise ConfigError(f"{where}: choices={list(choices)!r} repeat a value")
        return Param(path, "categorical", choices=tuple(choices))
    missing = [k for k in ("low", "high") if k not in node]
    if missing:
        raise ConfigError(f"{where}: a {kind} entry needs low and high (missing {missing[0]}); e.g. "
                          f"{{type: {kind}, low: 1, high: 10}}")
    integer = kind == "int"
    low, high = _number(where, "low", node["low"], integer), _number(where, "high", node["high"], integer)
    log, step = node.get("log", False), node.get("step")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log={log!r} must be true or false")
    if low >= high:
        raise ConfigError(f"{where}: low={low!r} must be below high={high!r}")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got low={low!r}")
    if step is not None:
        step = _number(where, "step", step, integer)
        if step <= 0:
            raise ConfigError(f"{where}: step={step!r} must be positive")
        if log:
            raise ConfigError(f"{where}: step and log cannot be combined (the sampler has no log-scale steps)")
        _check_step(where, low, high, step, integer)
    return Param(path, kind, low=low, high=high, log=log, step=step)


def _check_step(where: str, low: float, high: float, step: float, integer: bool) -> None:
    """Refuses a step that does not divide ``high - low`` (the sampler would silently cut the range to
    the last step below ``high``, a single value when the step exceeds the range).

    Examples:
        >>> from rlkit.tune.space import parse_space
        >>> parse_space({"algo": {"batch_size": {"type": "int", "low": 16, "high": 64, "step": 10}}})
        Traceback (most recent call last):
        rlkit.errors.ConfigError: tune.space.algo.batch_size: step=10 does not divide the range [16, 64] (width 48); the sampler would cut it at 56: give high=56 or high=66, or another step
    """
    # In decimal, as the sampler checks it (0.3 - 0.1 is not a multiple of 0.1 in binary), with the
    # digits any two floats need (their exponents reach 1e308).
    with localcontext() as context:
        context.prec, context.Emax, context.Emin = 1000, 10_000, -10_000
        first, width = Decimal(str(low)), Decimal(str(step))
        span = Decimal(str(high)) - first
        if span % width == 0:
            return
        count = span // width

        def text(value: Decimal) -> str:
            return str(int(value)) if integer else repr(float(value))

        highs = [f"high={text(first + n * width)}" for n in (count, count + 1) if n > 0]
        raise ConfigError(f"{where}: step={text(width)} does not divide the range [{text(first)}, "
                          f"{text(Decimal(str(high)))}] (width {text(span)}); the sampler would cut it at "
                          f"{text(first + count * width)}: give {' or '.join(highs)}, or another step")


def parse_space(node: Mapping[str, Any], prefix: str = "tune.space") -> SearchSpace:
    """The :class:`SearchSpace` of a nested mapping (a ``conf/tune/<algo>.yaml`` as a plain dict).

    Raises:
        ConfigError: a malformed entry (named by its key ``tune.space.<path>``), or an empty space.

    Examples:
        >>> from rlkit.tune import parse_space
        >>> parse_space({"algo": {"batch_size": {"type": "int", "low": 16, "high": 8}}})
        Traceback (most recent call last):
        rlkit.errors.ConfigError: tune.space.algo.batch_size: low=16 must be below high=8
    """
    params: list[Param] = []

    def walk(sub: Any, path: list[str]) -> None:
        where = ".".join([prefix, *path])
        if isinstance(sub, Mapping) and "type" not in sub:
            if not sub and path:
                raise ConfigError(f"{where} is empty: give an entry such as {{type: float, low: 0.9, high: 0.999}}")
            for key, value in sub.items():
                walk(value, [*path, str(key)])
        elif isinstance(sub, (Mapping, list, tuple)) and path:
            params.append(_entry(where, ".".join(path), sub))
        else:
            raise ConfigError(f"{where}={sub!r} is not a search-space entry; expected {{type: float|int|categorical, "
                              "...} or a list of choices")

    walk(node, [])
    if not params:
        raise ConfigError(f"{prefix} is empty: nothing to search (conf/tune/<algo>.yaml, or "
                          f"+{prefix}.<key>='{{type: float, low: ..., high: ...}}')")
    return SearchSpace(tuple(params))
