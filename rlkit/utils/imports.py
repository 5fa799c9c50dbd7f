"""Importing a user's module by name: the config's ``imports`` (modules that register algorithms) and
an env id's ``module:`` prefix (modules that register gymnasium envs).

Examples:
    >>> from rlkit.utils.imports import import_problem
    >>> import_problem("json") is None
    True
    >>> print(import_problem("no_such_module_of_yours"))
    cannot import module 'no_such_module_of_yours' (No module named 'no_such_module_of_yours'); a module of yours must be importable: put its folder on PYTHONPATH (PYTHONPATH=<folder> python train.py ...) or install it
"""
from __future__ import annotations

import importlib

__all__ = ["import_problem"]


def import_problem(module: str) -> str | None:
    """Imports ``module`` (once: Python caches modules); None when it imported, else what went wrong
    in a phrase (``cannot import module ...``), with where to put a module of one's own when the
    module itself (not one it imports) is missing. Errors other than an :class:`ImportError` raised
    while the module runs propagate with their traceback: they are the module's own."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        missing = isinstance(err, ModuleNotFoundError) and module.split(".")[0] == (err.name or "").split(".")[0]
        where = ("; a module of yours must be importable: put its folder on PYTHONPATH (PYTHONPATH=<folder> "
                 "python train.py ...) or install it" if missing else "")
        return f"cannot import module {module!r} ({err}){where}"
    return None
