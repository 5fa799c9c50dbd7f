"""What every part of rlkit's command line shares: the configs' directory (:data:`CONF_DIR`) and the
one-line refusal (:func:`refuse`: ``rlkit: <message>`` on stderr, exit status :data:`EXIT_REFUSED`)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

from rlkit.errors import ConfigError


#: The configs of a source checkout (``conf/`` beside the package), which :func:`rlkit.cli.api.train`
#: composes.
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"

#: Exit status of a refusal (a bad config, a busy directory, a corrupt checkpoint, ...).
EXIT_REFUSED = 2


def refuse(err: BaseException | str) -> NoReturn:
    """Prints ``rlkit: <message>`` (one line) on stderr and exits with :data:`EXIT_REFUSED`.

    Raised as ``SystemExit``, which neither Hydra nor OmegaConf intercept (they would print an
    exception inside a traceback of some hundred lines)."""
    print(f"rlkit: {describe(err)}", file=sys.stderr)
    raise SystemExit(EXIT_REFUSED)


def describe(err: BaseException | str) -> str:
    """A refusal's message: ``invalid config: ...`` for a :class:`~rlkit.errors.ConfigError`."""
    return f"invalid config: {err}" if isinstance(err, ConfigError) else str(err)
