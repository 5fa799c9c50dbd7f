"""The package's import graph: no circles, layers import only downwards, Hydra only at the edge.

Built from the source with an AST walk (every ``import`` and ``from ... import``, including those
inside functions and under ``TYPE_CHECKING``): a circle through a function-level import is still a
circle in the design.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlkit"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The rlkit modules that ``path`` imports (``from pkg import name`` counts as importing
    ``pkg.name`` when that is a module, else ``pkg``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "rlkit")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "rlkit":
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in modules else target)
    return {m for m in found if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def without_packages(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph between modules, with a package's ``__init__`` (which re-exports its modules)
    replaced by the modules it re-exports when another module imports the package."""
    packages = {name for name in edges if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()}
    resolved: dict[str, set[str]] = {}
    for name, targets in edges.items():
        out: set[str] = set()
        for target in targets:
            out.update(edges[target] if target in packages and not name.startswith(target + ".") else {target})
        resolved[name] = {t for t in out if t != name}
    return resolved


def test_the_walk_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles_in_rlkit():
    edges = graph()
    assert len(edges) > 40  # the walk saw the package
    assert cycles(edges) == [], "import circles (each a set of modules importing each other)"


def test_hydra_is_imported_by_the_command_line_package_only():
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        if any(n.split(".")[0] == "hydra" for n in names):
            name = module_name(path)
            assert name == "rlkit.cli" or name.startswith("rlkit.cli."), f"{name} imports hydra"


@pytest.mark.parametrize(("lower", "upper"), [
    ("rlkit.data", "rlkit.envs"), ("rlkit.data", "rlkit.modules"), ("rlkit.envs", "rlkit.modules"),
    ("rlkit.modules", "rlkit.objectives"), ("rlkit.objectives", "rlkit.collectors"),
    ("rlkit.collectors", "rlkit.trainers"), ("rlkit.trainers", "rlkit.factories"),
    ("rlkit.factories", "rlkit.run"), ("rlkit.run", "rlkit.cli"), ("rlkit.builders", "rlkit.run"),
])
def test_layers_import_only_downwards(lower, upper):
    edges = graph()
    offending = sorted(f"{name} -> {target}" for name, targets in edges.items() if name.startswith(lower)
                       for target in targets if target.startswith(upper))
    assert offending == []
