"""Every public class and function that an rlkit subpackage exports (its ``__all__``) has a docstring.

No exceptions. Exported constants (``LAYOUTS``, ``ESTIMATORS``, the registry entries ``DQN``, ...) and
type aliases (``ActionSpace``, ``WandbMode``: ``Literal`` types) are neither classes nor functions
and are not checked; the re-exports from tensordict (``ExplorationType``, ``NormalParamExtractor``,
``OneHotCategorical``) are, and carry tensordict's docstrings.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

import rlkit

SUBPACKAGES = sorted(info.name for info in pkgutil.walk_packages(rlkit.__path__, "rlkit.") if info.ispkg)


def own_docstring(obj: object) -> str | None:
    """The docstring written for ``obj``: for a class its own (not an inherited one), and not the
    signature that ``dataclass`` puts in place of a missing one."""
    if not inspect.isclass(obj):
        return obj.__doc__
    doc = obj.__dict__.get("__doc__")
    if dataclasses.is_dataclass(obj) and doc == obj.__name__ + str(inspect.signature(obj)).replace(" -> None", ""):
        return None
    return doc


def exported() -> dict[str, object]:
    found = {}
    for package in SUBPACKAGES:
        module = importlib.import_module(package)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isroutine(obj):
                found[f"{package}.{name}"] = obj
    return found


EXPORTED = exported()


def test_the_walk_finds_the_exports():
    assert {"rlkit.agents", "rlkit.data", "rlkit.objectives.value", "rlkit.trainers.loggers"} <= set(SUBPACKAGES)
    assert {"rlkit.data.Composite", "rlkit.modules.QValueActor", "rlkit.agents.build_dqn"} <= set(EXPORTED)


def test_a_dataclass_without_a_docstring_is_found():
    @dataclasses.dataclass
    class Bare:
        x: int

    assert own_docstring(Bare) is None
    assert own_docstring(rlkit.trainers.TrainerSettings)


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_public_export_has_a_docstring(name):
    doc = own_docstring(EXPORTED[name])
    assert doc is not None and doc.strip(), f"{name} has no docstring"
