"""Aggregate statistics across seeds and tasks, as Agarwal et al. (2021) recommend for reporting RL
results ("Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021):

- :func:`iqm`, the interquartile mean: the mean of the middle 50 % of all scores (the lowest and
  highest quarter dropped, ``floor(n / 4)`` values at each end, as ``scipy.stats.trim_mean(x, 0.25)``);
  robust to a diverged seed, yet less noisy than the median;
- :func:`stratified_bootstrap_ci`: a percentile confidence interval of any such statistic, resampling
  the runs of each task with replacement separately ("stratified" by task), so that every resample
  keeps each task's number of runs.

``rliable``, the paper's library, does both but does not import with the pandas this project pins
(its ``arch`` dependency fails at import), hence these few lines, tested against hand-computed cases.

Scores are given per task: a list of 1-D arrays (the runs of each task; tasks may have different
numbers of runs), or a 2-D array ``(runs, tasks)``. One task is the common case here (the seeds of one
configuration); then the stratified bootstrap is the ordinary one.

Examples:
    >>> from rlkit.stats import iqm, stratified_bootstrap_ci
    >>> iqm([1.0, 2.0, 3.0, 4.0, 100.0, -50.0, 5.0, 6.0])   # -50 and 1 dropped, 6 and 100 dropped
    3.5
    >>> point, low, high = stratified_bootstrap_ci([[10.0, 10.0, 10.0]], iqm)
    >>> (point, low, high)
    (10.0, 10.0, 10.0)
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Union

import numpy as np

__all__ = ["MIN_RUNS_FOR_CI", "Aggregate", "aggregate", "iqm", "mean", "median", "stratified_bootstrap_ci"]

Scores = Union[Sequence[Sequence[float]], Sequence[np.ndarray], np.ndarray]
Statistic = Callable[[Sequence[np.ndarray]], float]

#: Bootstrap resamples drawn by default (rliable's default is 2000 for interval estimates).
DEFAULT_REPS = 2000

#: Fewest runs (of all tasks together) :func:`aggregate` gives an interval for. Below it the percentile
#: interval of the IQM is the runs' own range, not an interval: with 4 runs a resample keeps 3 copies
#: of the lowest run (IQM = that run) with probability 5 % > 2.5 %, so the interval is exactly
#: [min, max] always; with 3 runs (IQM = the mean) a resample of three copies of the lowest run has
#: probability 1/27 = 3.7 % > 2.5 %, so it is the range too (up to the rounding of a mean of three
#: equal numbers). Its coverage on normal samples at a nominal 95 % (2,000 samples each): 0.76 (3
#: runs), 0.90 (5), 0.92 (10), 0.94 (20).
MIN_RUNS_FOR_CI = 5


def _tasks(scores: Scores | Sequence[float]) -> list[np.ndarray]:
    """The runs of each task as float arrays; a flat sequence of numbers is one task."""
    if isinstance(scores, np.ndarray):
        if scores.ndim == 1:
            return [scores.astype(float)]
        if scores.ndim != 2:
            raise ValueError(f"scores must be 1-D (one task) or 2-D (runs, tasks), got shape {scores.shape}")
        return [scores[:, t].astype(float) for t in range(scores.shape[1])]
    items: list[Any] = list(scores)
    if items and all(np.ndim(item) == 0 for item in items):
        return [np.asarray(items, dtype=float)]
    tasks = [np.asarray(item, dtype=float).reshape(-1) for item in items]
    if not tasks or any(task.size == 0 for task in tasks):
        raise ValueError("scores: every task needs at least one run")
    return tasks


def _flat(scores: Scores | Sequence[float]) -> np.ndarray:
    values = np.concatenate(_tasks(scores))
    if values.size == 0:
        raise ValueError("scores: no values")
    return values


def iqm(scores: Scores | Sequence[float]) -> float:
    """Interquartile mean of all runs of all tasks: ``floor(n / 4)`` values dropped at each end.

    >>> from rlkit.stats import iqm
    >>> iqm([3.0, 1.0, 2.0])   # n = 3: nothing to drop
    2.0
    >>> iqm([[0.0, 1.0], [2.0, 10.0]])   # two tasks pooled: 0 and 10 dropped
    1.5
    >>> iqm([1.0, 2.0, 3.0, float("nan")])   # a missing score is not cut away unseen
    nan
    """
    values = np.sort(_flat(scores))
    if np.isnan(values).any():  # (sorting would move a NaN past the upper cut, out of sight)
        return math.nan
    cut = int(0.25 * values.size)
    return float(values[cut:values.size - cut].mean())


def mean(scores: Scores | Sequence[float]) -> float:
    """Mean of all runs of all tasks.

    >>> from rlkit.stats import mean
    >>> mean([1.0, 2.0, 6.0])
    3.0
    """
    return float(_flat(scores).mean())


def median(scores: Scores | Sequence[float]) -> float:
    """Median of all runs of all tasks.

    >>> from rlkit.stats import median
    >>> median([1.0, 2.0, 6.0, 7.0])
    4.0
    """
    return float(np.median(_flat(scores)))


def stratified_bootstrap_ci(scores: Scores | Sequence[float], statistic: Statistic = iqm, *,
                            reps: int = DEFAULT_REPS, confidence: float = 0.95,
                            seed: int = 0) -> tuple[float, float, float]:
    """``(statistic, low, high)``: the statistic of ``scores`` and its percentile bootstrap interval.

    Each of ``reps`` resamples draws, for every task separately, as many runs as the task has, with
    replacement; the interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of
    the statistic over the resamples (numpy's linear interpolation). ``seed`` makes it reproducible.

    >>> from rlkit.stats import mean, stratified_bootstrap_ci
    >>> point, low, high = stratified_bootstrap_ci([1.0, 2.0, 3.0, 4.0], mean, reps=500)
    >>> point, 1.0 <= low < point < high <= 4.0
    (2.5, True)
    """
    if reps < 1:
        raise ValueError(f"reps must be >= 1, got {reps}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    tasks = _tasks(scores)
    point = statistic(tasks)
    rng = np.random.default_rng(seed)
    # (reps, runs of all tasks): each task's columns resampled from that task only
    resamples = np.concatenate([task[rng.integers(0, task.size, size=(reps, task.size))] for task in tasks], axis=1)
    pooled = _POOLED.get(statistic)
    if pooled is not None:  # the statistics of this module pool the tasks: one vectorised call
        values = pooled(resamples)
    else:
        bounds = np.cumsum([0] + [task.size for task in tasks])
        values = np.array([statistic([row[a:b] for a, b in zip(bounds[:-1], bounds[1:])]) for row in resamples])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(point), float(low), float(high)


def _iqm_rows(rows: np.ndarray) -> np.ndarray:
    """:func:`iqm` of each row: NaN where the row holds a NaN (sorting would move it past the cut)."""
    missing = np.isnan(rows).any(axis=1)
    rows = np.sort(rows, axis=1)
    cut = int(0.25 * rows.shape[1])
    return np.where(missing, np.nan, rows[:, cut:rows.shape[1] - cut].mean(axis=1))


_POOLED: dict[Callable[..., float], Callable[[np.ndarray], np.ndarray]] = {
    iqm: _iqm_rows,
    mean: lambda rows: rows.mean(axis=1),
    median: lambda rows: np.median(rows, axis=1),
}


class Aggregate(tuple):
    """``(mean, std, iqm, iqm_low, iqm_high)`` of one set of scores (see :func:`aggregate`)."""

    __slots__ = ()

    def __new__(cls, mean: float, std: float, iqm: float, iqm_low: float, iqm_high: float) -> Aggregate:
        return super().__new__(cls, (mean, std, iqm, iqm_low, iqm_high))

    @property
    def mean(self) -> float:
        return float(self[0])

    @property
    def std(self) -> float:
        return float(self[1])

    @property
    def iqm(self) -> float:
        return float(self[2])

    @property
    def ci(self) -> tuple[float, float]:
        """The stratified-bootstrap 95 % interval of the IQM."""
        return float(self[3]), float(self[4])

    def as_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std, "iqm": self.iqm, "iqm_ci_low": self.ci[0],
                "iqm_ci_high": self.ci[1]}

    def __repr__(self) -> str:
        return (f"Aggregate(mean={self.mean:.4g}, std={self.std:.4g}, iqm={self.iqm:.4g}, "
                f"ci=({self.ci[0]:.4g}, {self.ci[1]:.4g}))")


def aggregate(scores: Scores | Sequence[float], *, reps: int = DEFAULT_REPS, seed: int = 0) -> Aggregate:
    """Mean ± population std and IQM with its stratified-bootstrap 95 % interval, in one call.

    The interval is NaN with fewer than :data:`MIN_RUNS_FOR_CI` runs in all (there it would only
    repeat the runs' range) or with one run per task (nothing to resample); the std is NaN for one
    score (a single run has no spread to report, not a spread of 0).

    >>> from rlkit.stats import aggregate
    >>> aggregate([5.0, 5.0, 5.0, 5.0, 5.0])
    Aggregate(mean=5, std=0, iqm=5, ci=(5, 5))
    >>> aggregate([1.0, 2.0, 3.0])   # 3 runs: an interval would be [1, 3], their range
    Aggregate(mean=2, std=0.8165, iqm=2, ci=(nan, nan))
    >>> aggregate([15.0])
    Aggregate(mean=15, std=nan, iqm=15, ci=(nan, nan))
    >>> aggregate([[10.0], [20.0], [30.0], [40.0], [50.0]]).ci  # (one run of each of five tasks)
    (nan, nan)
    """
    values = _flat(scores)
    point, low, high = stratified_bootstrap_ci(scores, iqm, reps=reps, seed=seed)
    tasks = _tasks(scores)
    if values.size < MIN_RUNS_FOR_CI or all(task.size < 2 for task in tasks):
        low = high = math.nan
    std = float(values.std()) if values.size > 1 else math.nan
    return Aggregate(float(values.mean()), std, point, low, high)
