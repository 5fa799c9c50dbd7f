"""The logger contract shared by every backend, plus the no-op and fan-out loggers."""
from __future__ import annotations

import abc
import numbers
import operator
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, get_args

import torch

__all__ = ["END_REASONS", "EndReason", "Logger", "MultiLogger", "NoneLogger", "to_scalar_metrics"]

MetricValue = float | int | bool | torch.Tensor

#: Why training ended: the frame budget was used up, a greedy evaluation reached the target return
#: (early stop), a loss or gradient became NaN/inf, or SIGINT/SIGTERM arrived.
EndReason = Literal["budget", "target", "callback", "non_finite", "interrupted", "error"]
END_REASONS: tuple[str, ...] = get_args(EndReason)


def to_scalar_metrics(metrics: Mapping[str, MetricValue]) -> dict[str, float]:
    """Converts metric values to Python floats, naming the key of any value that is not a scalar.

    Called once per log interval, so the ``.item()`` device sync on tensors is acceptable here.

    Args:
        metrics: metric name -> Python number or single-element tensor.

    Returns:
        A new dict with the same keys and ``float`` values.

    Raises:
        TypeError: a key is not a string, or a value is neither a real number nor a one-element tensor.

    Examples:
        >>> import torch
        >>> from rlkit.trainers.loggers import to_scalar_metrics
        >>> to_scalar_metrics({"loss_value": torch.tensor(0.5), "episodes": 3})
        {'loss_value': 0.5, 'episodes': 3.0}
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"metric keys must be strings, got {key!r} ({type(key).__name__})")
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise TypeError(
                    f"metric {key!r} must be a scalar; got a tensor of shape {tuple(value.shape)} "
                    "(reduce it first, e.g. with .mean())"
                )
            if value.is_complex():
                raise TypeError(f"metric {key!r} must be real; got a {value.dtype} tensor")
            out[key] = float(value.item())
        elif isinstance(value, numbers.Real):  # Python and numpy ints/floats/bools
            out[key] = float(value)
        else:
            raise TypeError(
                f"metric {key!r} must be a float, int, bool or one-element tensor; "
                f"got {type(value).__name__}: {value!r}"
            )
    return out


def _check_step(step: Any) -> int:
    if isinstance(step, bool):
        raise TypeError(f"step must be a non-negative int (frames done), got {step!r}")
    try:
        step = operator.index(step)
    except TypeError:
        raise TypeError(
            f"step must be a non-negative int (frames done), got {type(step).__name__}: {step!r}"
        ) from None
    if step < 0:
        raise ValueError(f"step must be a non-negative int (frames done), got {step}")
    return step


class Logger(abc.ABC):
    """Base class of the metric loggers used by the trainer.

    Subclasses implement ``_log_metrics`` (receives plain floats), ``_log_config`` and ``_close``, and
    may implement ``_log_end`` (why training ended; a no-op by default); this base converts values, checks the step, makes ``close`` idempotent and refuses use after closing.
    Loggers are context managers that close on exit.

    Examples:
        >>> from rlkit.trainers.loggers import NoneLogger
        >>> with NoneLogger() as logger:
        ...     logger.log_metrics({"loss_value": 0.1}, step=100)
    """

    _closed: bool = False

    def log_metrics(self, metrics: Mapping[str, MetricValue], step: int) -> None:
        """Records scalar metrics at ``step`` (the number of environment frames done).

        Args:
            metrics: name -> float, int, bool or one-element tensor.
            step: non-negative int; the x-axis shared by every logger.
        """
        self._ensure_open()
        step = _check_step(step)
        self._log_metrics(to_scalar_metrics(metrics), step)

    def log_config(self, config: Mapping[str, Any]) -> None:
        """Records the resolved run configuration (a plain nested dict)."""
        self._ensure_open()
        if not isinstance(config, Mapping):
            raise TypeError(
                f"config must be a mapping (a plain nested dict), got {type(config).__name__}"
            )
        self._log_config(config)

    def log_end(self, reason: EndReason, message: str, *, step: int) -> None:
        """Records why training ended, once, before :meth:`close`.

        Args:
            reason: one of :data:`END_REASONS`.
            message: one line for people (``"stopped early at frame 140,000: ..."``).
            step: the frames done when training ended (may be past the last logged step).

        Raises:
            ValueError: an unknown ``reason`` (the valid ones are listed).
        """
        self._ensure_open()
        if reason not in END_REASONS:
            raise ValueError(f"unknown end reason {reason!r}; valid reasons: {', '.join(END_REASONS)}")
        self._log_end(reason, message, _check_step(step))

    def close(self) -> None:
        """Flushes and releases the backend; calling it again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __enter__(self) -> Logger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed; create a new logger to log again")

    @abc.abstractmethod
    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Writes already-converted metrics."""

    @abc.abstractmethod
    def _log_config(self, config: Mapping[str, Any]) -> None:
        """Writes the configuration."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Releases the backend (called once)."""

    def _log_end(self, reason: EndReason, message: str, step: int) -> None:  # noqa: B027 - optional
        """Records why training ended; backends without a use for it keep this no-op."""


class NoneLogger(Logger):
    """A logger that drops everything (``logger=none`` in the config).

    Examples:
        >>> from rlkit.trainers.loggers import NoneLogger
        >>> NoneLogger().log_metrics({"episode_return": 1.0}, step=0)
    """

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        pass

    def _log_config(self, config: Mapping[str, Any]) -> None:
        pass

    def _close(self) -> None:
        pass


class MultiLogger(Logger):
    """Forwards every call to several loggers, in order.

    ``close`` closes all of them even when one fails, then re-raises the first error.

    Args:
        loggers: the loggers to fan out to; may be empty.

    Examples:
        >>> import torch
        >>> from rlkit.trainers.loggers import MultiLogger, NoneLogger
        >>> logger = MultiLogger([NoneLogger(), NoneLogger()])
        >>> logger.log_metrics({"loss_value": torch.tensor(0.3)}, step=10)
        >>> logger.close()
    """

    def __init__(self, loggers: Iterable[Logger]) -> None:
        self.loggers: list[Logger] = list(loggers)
        for i, logger in enumerate(self.loggers):
            if not isinstance(logger, Logger):
                raise TypeError(
                    f"MultiLogger expects Logger instances; item {i} is {type(logger).__name__}"
                )

    def _log_metrics(self, metrics: dict[str, float], step: int) -> None:
        for logger in self.loggers:
            logger.log_metrics(metrics, step)

    def _log_config(self, config: Mapping[str, Any]) -> None:
        for logger in self.loggers:
            logger.log_config(config)

    def _log_end(self, reason: EndReason, message: str, step: int) -> None:
        for logger in self.loggers:
            logger.log_end(reason, message, step=step)

    def _close(self) -> None:
        first_error: BaseException | None = None
        for logger in self.loggers:
            try:
                logger.close()
            except BaseException as err:  # noqa: BLE001 - close the others before re-raising
                first_error = first_error or err
        if first_error is not None:
            raise first_error
