"""One trial: the sampled config trained with every seed of the study, one after another, reporting
to the pruner after each greedy evaluation (through a :class:`~rlkit.trainers.TrainerCallback`).

Seeds and pruning: the seeds run in sequence in this process. A seed has ``E`` evaluation slots
(:func:`~rlkit.tune.settings.evaluations_per_seed`), one per ``trainer.eval_interval`` frames; an
evaluation goes to the slot of its frames (:func:`~rlkit.tune.settings.evaluation_slot`), so a trial
whose batches span several intervals leaves some slots empty and is compared with the others at the
same frames. The slots are reported at steps ``seed_index * E + slot``,
and the value reported at a slot is the *running mean over the seeds so far* at that slot: the first
seed's evaluation alone, then the mean of seeds 0 and 1, and so on. Every trial runs the same seeds
in the same order, so the pruner always compares like with like (the same seeds' mean at the same
evaluation), and once the last seed runs, its values are the trial's mean curve over all seeds.

A seed that stops early (``trainer.early_stop``: it reached ``env.target_return``) keeps its last
evaluation for its remaining slots, and a slot no evaluation fell in holds the one before it: each
slot holds the latest evaluation by its frames. The objective of a seed is its last evaluation
(``final``) or the mean of its slots from its first evaluation on (``auc``, the area under its
evaluation curve); the trial's is the mean over its seeds.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import optuna
from omegaconf import DictConfig, OmegaConf
from sqlalchemy.exc import SQLAlchemyError

from rlkit.errors import NotStackableError
from rlkit.run import run
from rlkit.trainers import TrainerCallback, TrainingInterrupted
from rlkit.tune.settings import evaluation_slot

__all__ = ["TrialResult", "describe_error", "run_trial", "seed_objective", "trial_config"]

log = logging.getLogger(__name__)

#: Exceptions that are not a sampled configuration's result, though raised while it trains: a signal
#: (TrainingInterrupted is a RuntimeError) and the study storage's errors (reports to the pruner).
NOT_THE_CONFIGS: tuple[type[BaseException], ...] = (TrainingInterrupted, SQLAlchemyError,
                                                    optuna.exceptions.StorageInternalError)


class Reporter(Protocol):
    """What a trial reports to (an ``optuna.Trial``)."""

    def report(self, value: float, step: int) -> None: ...

    def should_prune(self) -> bool: ...


class _Silent:
    """A reporter that records nothing and never prunes (a fallen-back trial's seeds, reported
    together once they are done)."""

    def report(self, value: float, step: int) -> None:
        pass

    def should_prune(self) -> bool:
        return False


_SILENT = _Silent()


@dataclass
class TrialResult:
    """How a trial ended: its state, objective value, each finished seed's value and, on failure,
    the error (``"<Type>: <first line>"``); ``num_seeds``: how its seeds trained, all together in one
    process (their count) or one after another (1)."""

    state: Literal["complete", "pruned", "failed"]
    value: float | None
    seed_values: dict[int, float] = field(default_factory=dict)
    error: str | None = None
    failed_seed: int | None = None
    pruned_at: str | None = None  # where the pruner stopped it (``_pruned_where``)
    num_seeds: int = 1


def trial_config(base: DictConfig, params: Mapping[str, Any], seed: int) -> DictConfig:
    """``base`` with the sampled ``params`` (dotted path -> value), ``seed`` (one seed: ``num_seeds``
    1, where ``base`` has the key; :func:`run_trial` sets the count of seeds trained together), and
    the console progress bar off (the study prints its own progress).

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.tune.trial import trial_config
        >>> cfg = trial_config(OmegaConf.create({"seed": 0, "algo": {"optim": {"lr": 1e-3}}, "trainer": {}}),
        ...                    {"algo.optim.lr": 0.01}, seed=4)
        >>> cfg.seed, cfg.algo.optim.lr, cfg.trainer.progress
        (4, 0.01, False)
    """
    cfg = OmegaConf.create(OmegaConf.to_container(base, resolve=True))
    assert isinstance(cfg, DictConfig)  # (a DictConfig's container)
    for path, value in params.items():
        OmegaConf.update(cfg, path, value, merge=False)
    cfg.seed = seed
    if "num_seeds" in cfg:
        cfg.num_seeds = 1
    OmegaConf.update(cfg, "trainer.progress", False, merge=False)
    return cfg


def seed_objective(curve: Sequence[float | None], objective: str) -> float:
    """A seed's value from its evaluation slots (``None``: a slot before its first evaluation): the
    last (``final``) or the mean of its slots (``auc``: each slot holds the latest evaluation by its
    frames, so this is the area under the evaluation curve from the first evaluation on).

    Examples:
        >>> from rlkit.tune.trial import seed_objective
        >>> seed_objective([10.0, 50.0, 30.0], "final"), seed_objective([10.0, 50.0, 30.0], "auc")
        (30.0, 30.0)
        >>> seed_objective([None, 10.0, 10.0, 50.0], "auc")  # (evaluated at slots 1 and 3: slot 2 holds 10.0)
        23.333333333333332
    """
    values = [float(v) for v in curve if v is not None]
    return values[-1] if objective == "final" else sum(values) / len(values)


_WARNED: set[tuple[int, int]] = set()  # (eval_interval, first slot) warned about by warn_late


class _Slots:
    """The evaluation slots of a trial's runs: ``count`` of them, an evaluation's slot from its frames
    (:func:`~rlkit.tune.settings.evaluation_slot`)."""

    def __init__(self, count: int, base: DictConfig) -> None:
        self.count, self.total_frames = count, int(base.total_frames)
        self.eval_interval = int(base.trainer.eval_interval)

    def of(self, frames: int) -> int:
        return min(evaluation_slot(frames, self.total_frames, self.eval_interval), self.count - 1)

    def frames(self, slot: int) -> int:
        """The frames a slot stands for: its multiple of the interval, or the end."""
        return self.total_frames if slot == self.count - 1 else (slot + 1) * self.eval_interval

    def warn_late(self, slot: int, frames: int) -> None:
        """Warns (once per process and interval) when a run's first evaluation falls after the first
        slot: its batches are longer than ``trainer.eval_interval``, and its curve starts later than
        that of a trial with shorter ones."""
        if slot > 0 and (self.eval_interval, slot) not in _WARNED:
            _WARNED.add((self.eval_interval, slot))
            log.warning("the first evaluation came at %s frames, after %d of the study's evaluation slots "
                        "(batches longer than trainer.eval_interval=%s): such a trial's auc and pruning leave those "
                        "slots out, which favours it over trials evaluated from the first slot; a "
                        "trainer.eval_interval of at least the longest batch compares all trials alike",
                        f"{frames:,}", slot, f"{self.eval_interval:,}")


class _Curve(TrainerCallback):
    """Records one seed's evaluations into their slots and reports the running mean over the seeds so
    far to ``reporter``; asks the trainer to stop once the pruner says so. A slot no evaluation fell
    in (the batches span several intervals) holds the evaluation before it, as does every slot after
    an early stop: each slot holds the latest evaluation by its frames."""

    def __init__(self, reporter: Reporter, seed_index: int, slots: _Slots, earlier: list[list[float | None]],
                 prune: bool) -> None:
        self.reporter, self.seed_index, self.slots, self.earlier, self.prune = reporter, seed_index, slots, earlier, prune
        self.values: list[float | None] = [None] * slots.count
        self.last = -1  # the latest slot filled
        self.sources = [0] * slots.count  # each slot's evaluation's frames
        self.pruned_at: int | None = None  # the slot at which the pruner stopped the run

    @property
    def pruned(self) -> bool:
        return self.pruned_at is not None

    def on_evaluation(self, frames: int, metrics: Mapping[str, float]) -> bool | None:
        value, slot = float(metrics["eval_return"]), self.slots.of(frames)
        if slot <= self.last:  # (a closing evaluation in the slot of the one before: it replaces it)
            self.values[slot], self.sources[slot] = value, frames
            return None
        if self.last < 0:
            self.slots.warn_late(slot, frames)
        # The slots in between hold the evaluation before (the latest by their frames), and the pruner
        # is asked at each: successive halving fills its rungs from the step it is asked at.
        if self._carry(slot):
            return True
        self.values[slot], self.sources[slot], self.last = value, frames, slot
        return self._report(slot)

    def _carry(self, until: int) -> bool:
        """Fills and reports the slots before ``until`` after the last filled one with its value;
        True once pruned."""
        while 0 <= self.last < until - 1 and not self.pruned:
            self.last += 1
            self.values[self.last] = self.values[self.last - 1]
            self.sources[self.last] = self.sources[self.last - 1]
            self._report(self.last)
        return self.pruned

    def _report(self, slot: int) -> bool:
        known = [v for v in (curve[slot] for curve in self.earlier) if v is not None] + [self.values[slot]]
        mean = sum(v for v in known if v is not None) / len(known)
        if math.isfinite(mean):
            self.reporter.report(mean, self.seed_index * self.slots.count + slot)
        if self.prune and self.reporter.should_prune():
            self.pruned_at = slot
        return self.pruned

    def fill(self) -> list[float | None]:
        """The curve once the run ended: after an early stop the remaining slots keep the last value,
        and are reported too (another trial's seed that ran on is compared with this one's result)."""
        self._carry(self.slots.count)
        return self.values


class _Lockstep(TrainerCallback):
    """The seeds of a trial trained in one process (``num_seeds``): each evaluation covers every seed
    at the same frames, so the evaluation in ``slot`` reports the mean over all seeds at step ``slot``.
    A seed that stopped early (not evaluated again) keeps its last value; slots are filled as
    :class:`_Curve` fills them."""

    def __init__(self, reporter: Reporter, seeds: Sequence[int], slots: _Slots, prune: bool) -> None:
        self.reporter, self.seeds, self.slots, self.prune = reporter, list(seeds), slots, prune
        self.values: dict[int, list[float | None]] = {seed: [None] * slots.count for seed in self.seeds}
        self.last = -1  # the latest slot filled
        self.sources = [0] * slots.count  # each slot's evaluation's frames
        self.pruned_at: int | None = None

    @property
    def pruned(self) -> bool:
        return self.pruned_at is not None

    def on_seed_evaluations(self, frames: int, by_seed: Mapping[int, Mapping[str, float]]) -> bool | None:
        slot = self.slots.of(frames)
        if slot <= self.last:  # (a closing evaluation in the slot of the one before: it replaces it)
            for seed, metrics in by_seed.items():
                self.values[seed][slot] = float(metrics["eval_return"])
            self.sources[slot] = frames
            return None
        if self.last < 0:
            self.slots.warn_late(slot, frames)
        if self._carry(slot):  # (as _Curve's)
            return True
        self.sources[slot] = frames
        for seed, curve in self.values.items():
            if seed in by_seed:
                curve[slot] = float(by_seed[seed]["eval_return"])
            else:  # (it stopped early)
                curve[slot] = curve[self.last] if self.last >= 0 else math.nan
        self.last = slot
        return self._report(slot)

    def _carry(self, until: int) -> bool:
        while 0 <= self.last < until - 1 and not self.pruned:
            self.last += 1
            for curve in self.values.values():
                curve[self.last] = curve[self.last - 1]
            self.sources[self.last] = self.sources[self.last - 1]
            self._report(self.last)
        return self.pruned

    def _report(self, slot: int) -> bool:
        values = [curve[slot] for curve in self.values.values()]
        mean = sum(math.nan if v is None else v for v in values) / len(values)
        if math.isfinite(mean):
            self.reporter.report(mean, slot)
        if self.prune and self.reporter.should_prune():
            self.pruned_at = slot
        return self.pruned

    def fill(self) -> dict[int, list[float | None]]:
        """Every seed's curve once the run ended (an early end of all seeds keeps the last values)."""
        self._carry(self.slots.count)
        return self.values


def batchable(seeds: Sequence[int]) -> bool:
    """Whether a trial's seeds can train in one process (``num_seeds``): two or more, consecutive.

    Examples:
        >>> from rlkit.tune.trial import batchable
        >>> batchable([0, 1, 2]), batchable([0]), batchable([0, 5])
        (True, False, False)
    """
    return len(seeds) > 1 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds)))


def _run_batched(reporter: Reporter, base: DictConfig, params: Mapping[str, Any], *, seeds: Sequence[int],
                 slots: int, objective: str, run_root: Path, prune: bool) -> TrialResult | None:
    """The trial's seeds in one process; None when its networks cannot be stacked (run them one by one)."""
    cfg = trial_config(base, params, seeds[0])
    cfg.num_seeds = len(seeds)
    curves = _Lockstep(reporter, seeds, _Slots(slots, base), prune)
    try:
        run(cfg, run_root, callbacks=[curves])
    except NotStackableError:
        return None
    except NOT_THE_CONFIGS:  # the study's to handle: it stops
        raise
    except Exception as err:  # noqa: BLE001 (any failure of a sampled config is the trial's result)
        return TrialResult("failed", None, {}, error=describe_error(err), num_seeds=len(seeds))
    if curves.last < 0:
        return TrialResult("failed", None, {}, error="the run made no greedy evaluation", num_seeds=len(seeds))
    values = curves.fill()
    if curves.pruned_at is not None:
        where = _pruned_where(curves.slots, curves.pruned_at, curves.sources[curves.pruned_at], f"seeds {list(seeds)}")
        return TrialResult("pruned", None, {}, pruned_at=where, num_seeds=len(seeds))
    seed_values = {seed: seed_objective(values[seed], objective) for seed in seeds}
    value = sum(seed_values.values()) / len(seed_values)
    if not math.isfinite(value):
        return TrialResult("failed", None, seed_values, error=_non_finite_objective(value, seed_values, run_root),
                           num_seeds=len(seeds))
    return TrialResult("complete", value, seed_values, num_seeds=len(seeds))


def _non_finite_objective(value: float, seed_values: Mapping[int, float], run_dir: Path) -> str:
    """A batched trial's failure for a non-finite objective, naming the seeds whose objective is not
    finite and those of them its run dropped for non-finite values (``trainer.drop_non_finite_seeds``).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.tune.trial import _non_finite_objective
        >>> _non_finite_objective(float("nan"), {0: 9.5, 1: float("nan")}, Path(tempfile.mkdtemp()))
        'non-finite objective nan (seed 1: nan)'
    """
    from rlkit.trainers.multiseed import seed_dropped

    bad = [seed for seed, v in seed_values.items() if not math.isfinite(v)]
    shown = ", ".join(f"seed {seed}: {seed_values[seed]}"
                      + (" (dropped for non-finite values)" if seed_dropped(run_dir / f"seed_{seed}") else "")
                      for seed in bad)
    return f"non-finite objective {value} ({shown})"


def _pruned_where(slots: _Slots, slot: int, judged: int, who: str) -> str:
    """Where a pruned trial stopped: ``"seed 1's evaluation at 40,000 frames"``, or, where the slot
    judged holds an earlier evaluation (its batches span several intervals, or the seed stopped
    early), that slot's frames and the evaluation's."""
    if slots.of(judged) == slot:
        return f"{who}'s evaluation at {judged:,} frames"
    return f"{who} at the {slots.frames(slot):,}-frame step, on its evaluation at {judged:,} frames"


def describe_error(err: BaseException) -> str:
    """``"<Type>: <first line of the message>"``."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def run_trial(reporter: Reporter, base: DictConfig, params: Mapping[str, Any], *, seeds: Sequence[int],
              slots: int, objective: str, run_root: Path, prune: bool = True, batched: bool = False) -> TrialResult:
    """Trains ``base`` with ``params`` once per seed into ``run_root/seed_<seed>``.

    With ``batched`` and consecutive seeds (:func:`batchable`), the seeds train in one process
    (``num_seeds``; ``run_root`` is that run's directory, each seed's outputs in its ``seed_<seed>/``)
    and report in lockstep (:class:`_Lockstep`: evaluation ``k``'s mean over all seeds at step
    ``k``); a config whose networks cannot be stacked falls back to one seed after another.

    Args:
        reporter: receives the running mean over seeds after each evaluation (see the module's
            docstring) and decides pruning.
        base: the training config (``conf/config.yaml`` composed, without ``tune``).
        params: sampled config values (dotted path -> value).
        seeds: the study's seeds, in order.
        slots: evaluation slots per seed (:func:`~rlkit.tune.settings.evaluations_per_seed`); an
            evaluation's slot comes from its frames (:func:`~rlkit.tune.settings.evaluation_slot`).
        objective: ``final`` or ``auc`` (:func:`seed_objective`).
        run_root: the trial's directory.
        prune: whether to ask the reporter's pruner.
        batched: train consecutive seeds in one process (see above).

    A seed that raises (a config the builders refuse, a ``NonFiniteError`` of a diverging run, any
    crash) fails the trial with its error; the remaining seeds do not run. Interrupts
    (``KeyboardInterrupt``, :class:`~rlkit.trainers.TrainingInterrupted`) propagate.
    """
    fell_back = False
    if batched and batchable(seeds):
        result = _run_batched(reporter, base, params, seeds=seeds, slots=slots, objective=objective,
                              run_root=run_root, prune=prune)
        if result is not None:
            return result
        fell_back = True
    # A trial that fell back to one seed after another in a study whose trials train their seeds
    # together reports as they do (slot k: the mean over all seeds at step k), once its seeds are
    # done: its running means at seed * slots + slot would meet the pruner at the steps where the
    # others report all-seed means. It is not pruned (its reports come when it has finished).
    curves: list[list[float | None]] = []
    seed_values: dict[int, float] = {}
    for index, seed in enumerate(seeds):
        curve = _Curve(_SILENT if fell_back else reporter, index, _Slots(slots, base), curves, prune and not fell_back)
        try:
            run(trial_config(base, params, seed), run_root / f"seed_{seed}", callbacks=[curve])
        except NOT_THE_CONFIGS:  # the study's to handle: it stops
            raise
        except Exception as err:  # noqa: BLE001 (any failure of a sampled config is the trial's result)
            return TrialResult("failed", None, seed_values, error=describe_error(err), failed_seed=seed)
        if curve.last < 0:
            return TrialResult("failed", None, seed_values, error="the run made no greedy evaluation", failed_seed=seed)
        values = curve.fill()
        if curve.pruned_at is not None:
            where = _pruned_where(curve.slots, curve.pruned_at, curve.sources[curve.pruned_at], f"seed {seed}")
            return TrialResult("pruned", None, seed_values, pruned_at=where)
        seed_values[seed] = seed_objective(values, objective)
        curves.append(values)
    if fell_back:
        for slot in range(slots):
            known = [curve[slot] for curve in curves]
            mean = sum(math.nan if v is None else v for v in known) / len(known)
            if math.isfinite(mean):
                reporter.report(mean, slot)
    value = sum(seed_values.values()) / len(seed_values)
    if not math.isfinite(value):
        return TrialResult("failed", None, seed_values, error=f"non-finite objective {value}")
    return TrialResult("complete", value, seed_values)
