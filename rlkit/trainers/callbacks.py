"""Hooks into the training loop: code outside the trainer (a tuner, a custom monitor) follows a run
and may end it early, without the trainer knowing what it is for."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rlkit.errors import ConfigError

__all__ = ["TrainerCallback", "check_callbacks"]


class TrainerCallback:
    """Base class of the objects :class:`~rlkit.trainers.Trainer` accepts as ``callbacks=[...]``.

    Override the hooks you need; the defaults do nothing. Hooks run in the trainer's process and
    thread, in the order the callbacks were given; an exception a hook raises ends the run (as any
    error in the loop does: the last checkpoint stays).

    - :meth:`on_evaluation`: after every greedy evaluation, the periodic ones
      (``trainer.eval_interval``) and the closing one at the end of the run. Returning ``True``
      asks the trainer to stop: it ends as it does at its frame budget or an early stop (a
      checkpoint at the frames reached, the run's result = the metrics of this evaluation). A
      request after the closing evaluation changes nothing (the run is ending anyway).

    Examples:
        >>> from rlkit.trainers import TrainerCallback
        >>> class StopAbove(TrainerCallback):
        ...     '''Ends a run once a greedy evaluation returns more than ``target``.'''
        ...     def __init__(self, target: float) -> None:
        ...         self.target, self.seen = target, []
        ...     def on_evaluation(self, frames, metrics):
        ...         self.seen.append((frames, metrics["eval_return"]))
        ...         return metrics["eval_return"] > self.target
        >>> hook = StopAbove(100.0)
        >>> hook.on_evaluation(10_000, {"eval_return": 120.0}), hook.seen
        (True, [(10000, 120.0)])
    """

    def on_evaluation(self, frames: int, metrics: Mapping[str, float]) -> bool | None:
        """Called with the frames collected so far and the evaluation's metrics (``eval_return``,
        ``eval_return_std``, ``eval_length``); ``True`` asks the trainer to stop."""
        return None

    def on_seed_evaluations(self, frames: int, by_seed: Mapping[int, Mapping[str, float]]) -> bool | None:
        """What a multi-seed run (``num_seeds > 1``) calls instead of :meth:`on_evaluation`: the
        frames per seed and, by seed, the metrics of the seeds this evaluation covered (a seed that
        stopped early is not evaluated again); ``True`` asks the trainer to stop every seed. A
        multi-seed run refuses a callback that implements :meth:`on_evaluation` but not this."""
        return None


def check_callbacks(callbacks: Any, *, num_seeds: int | None = 1) -> list[TrainerCallback]:
    """``callbacks`` as a list, each one checked before a run starts: an object (not a class) with
    the hook the run calls, ``on_evaluation`` for one seed and ``on_seed_evaluations`` for several
    (``num_seeds > 1``), where one that implements ``on_evaluation`` must implement
    ``on_seed_evaluations`` too; ``num_seeds=None`` (not known yet): either hook.

    Examples:
        >>> from rlkit.trainers.callbacks import TrainerCallback, check_callbacks
        >>> len(check_callbacks((TrainerCallback(),)))
        1
        >>> check_callbacks([print])
        Traceback (most recent call last):
        ...
        rlkit.errors.ConfigError: callbacks[0]=<built-in function print> is not a trainer callback: give objects of a rlkit.trainers.TrainerCallback subclass (on_evaluation(frames, metrics) -> bool | None)

    Raises:
        ConfigError: not a list of callbacks (naming the position and the value), or a callback the
            run would never call.
    """
    if isinstance(callbacks, (str, bytes, Mapping)) or not isinstance(callbacks, Iterable):
        raise ConfigError(f"callbacks={callbacks!r}: give a list of rlkit.trainers.TrainerCallback objects")
    checked = list(callbacks)
    for at, callback in enumerate(checked):
        if isinstance(callback, type):
            raise ConfigError(f"callbacks[{at}]={callback.__name__} is a class: give an instance of it "
                              f"({callback.__name__}(...))")
        hooks = {name for name in ("on_evaluation", "on_seed_evaluations") if callable(getattr(callback, name, None))}
        needed = ({"on_evaluation", "on_seed_evaluations"} if num_seeds is None
                  else {"on_evaluation"} if num_seeds <= 1 else {"on_seed_evaluations"})
        if not hooks & needed:
            hook = "on_evaluation(frames, metrics)" if num_seeds is None or num_seeds <= 1 else \
                "on_seed_evaluations(frames, by_seed), the hook a multi-seed run calls"
            raise ConfigError(f"callbacks[{at}]={callback!r} is not a trainer callback: give objects of a "
                              f"rlkit.trainers.TrainerCallback subclass ({hook} -> bool | None)")
        own = type(callback)
        single = getattr(own, "on_evaluation", None) not in (None, TrainerCallback.on_evaluation)
        several = getattr(own, "on_seed_evaluations", None) not in (None, TrainerCallback.on_seed_evaluations)
        if num_seeds is not None and num_seeds > 1 and single and not several:
            raise ConfigError(f"callback {own.__name__} implements on_evaluation only; a multi-seed run "
                              f"(num_seeds > 1) calls on_seed_evaluations(frames, by_seed): implement it too")
    return checked
