"""The refusals a user can cause, as one exception family.

Every :class:`RlkitError` carries a one-line message that names the offending value and what would be
valid; the command line (``train.py``) prints it as ``rlkit: <message>`` and exits with status 2,
without a traceback. Anything else that escapes is a bug in rlkit and keeps its traceback.

The classes also derive from the builtin exception a caller would expect (``ValueError``,
``FileNotFoundError``), so ``except ValueError`` keeps working.

Examples:
    >>> from rlkit.errors import ConfigError, RlkitError
    >>> try:
    ...     raise ConfigError("seed=-1 is invalid: expected an integer >= 0")
    ... except RlkitError as err:
    ...     print(f"rlkit: {err}")
    rlkit: seed=-1 is invalid: expected an integer >= 0
"""
from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "ConfigError",
    "CorruptCheckpointError",
    "EnvError",
    "failure_line",
    "LoggerError",
    "MissingCheckpointError",
    "NotStackableError",
    "ResourceError",
    "RlkitError",
    "RunDirBusyError",
    "RunDirError",
    "UnsafeCheckpointError",
]


class RlkitError(Exception):
    """A refusal a user can cause; the message is one line, printed as is."""


class ConfigError(RlkitError, ValueError):
    """A config value is invalid; the message names the key, the value and the valid choices."""


class NotStackableError(ConfigError):
    """``num_seeds > 1`` with networks the batched multi-seed trainer cannot stack (train those
    one process per seed)."""


class EnvError(RlkitError, ValueError):
    """The environment cannot be built, or its spaces do not fit the algorithm."""


class ResourceError(RlkitError, ValueError):
    """The run needs more of something (memory, CPUs, a device) than this machine has."""


class RunDirError(RlkitError):
    """The run directory cannot be used: not empty, not a run, or another run's directory."""


class RunDirBusyError(RunDirError):
    """Another process holds the run directory's lock; the message names its pid."""


class LoggerError(RlkitError):
    """The configured logger's backend could not start (wandb without credentials, ...); the message
    names the logger and the backend's own error."""


class MissingCheckpointError(RlkitError, FileNotFoundError):
    """No checkpoint where one was asked for."""


class CheckpointError(RlkitError, ValueError):
    """A checkpoint cannot be used (base of the kinds below)."""


class CorruptCheckpointError(CheckpointError):
    """The file's bytes are not those that were written (truncated, bit flips): its checksum fails."""


class UnsafeCheckpointError(CheckpointError):
    """The file is intact but holds objects that only arbitrary code could rebuild (not an rlkit file)."""


class CheckpointMismatchError(CheckpointError):
    """An intact checkpoint of another run: algorithm, network shapes, optimiser or buffer differ."""


def failure_line(err: BaseException) -> str:
    r"""An exception in one line: its type and the first line of its message.

    >>> from rlkit.errors import failure_line
    >>> failure_line(ValueError("not enough values to unpack (expected 5, got 4)\nmore"))
    'ValueError: not enough values to unpack (expected 5, got 4)'
    """
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__
