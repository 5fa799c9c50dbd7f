"""The config check of a start, once per process: :func:`check` runs :func:`rlkit.run.preflight` (in
the callback :class:`~rlkit.cli.callbacks.ConfigCheck`, or in a sweep job's directory resolver) and
keeps the settings it found, which the task reuses (:func:`checked_settings`), so that a run validates
its config once."""
from __future__ import annotations

import json

from omegaconf import DictConfig, OmegaConf

from rlkit.builders import Settings
from rlkit.cli.base import refuse
from rlkit.errors import RlkitError
from rlkit.run import preflight


# The settings of the last config this process checked, so that the run validates it once: the
# check runs in Hydra's callback (or the sweep job's resolver), the run in the task, same process.
_checked: tuple[str, Settings] | None = None


def _key(cfg: DictConfig) -> str:
    """The config's content without the ``hydra`` node (resolving that node here would run this
    check again from its own resolver)."""
    body = OmegaConf.masked_copy(cfg, [str(key) for key in cfg.keys() if key != "hydra"])  # (str keys)
    return json.dumps(OmegaConf.to_container(body, resolve=True), sort_keys=True, default=str)


def check(cfg: DictConfig) -> None:
    """:func:`rlkit.run.preflight` of ``cfg``, refused (:func:`~rlkit.cli.base.refuse`) when it fails;
    its settings are kept for :func:`checked_settings`."""
    global _checked
    try:
        settings = preflight(cfg)
    except RlkitError as err:
        refuse(err)
    _checked = (_key(cfg), settings)


def checked_settings(cfg: DictConfig) -> Settings | None:
    """The settings :func:`check` found for this very config, if it checked it."""
    if _checked is not None and _checked[0] == _key(cfg):
        return _checked[1]
    return None
