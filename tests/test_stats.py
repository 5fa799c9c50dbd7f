"""rlkit.stats against hand-computed values and scipy's trimmed mean."""
from __future__ import annotations

import numpy as np
import pytest

from rlkit.stats import MIN_RUNS_FOR_CI, aggregate, iqm, mean, median, stratified_bootstrap_ci


def test_iqm_drops_a_quarter_at_each_end():
    # 8 values: the 2 lowest (-50, 1) and the 2 highest (6, 100) are dropped -> mean(2, 3, 4, 5)
    assert iqm([1, 2, 3, 4, 100, -50, 5, 6]) == 3.5
    # 5 values: floor(5 / 4) = 1 dropped at each end -> mean(2, 3, 4)
    assert iqm([5, 1, 4, 2, 3]) == 3.0
    # fewer than 4 values: nothing dropped
    assert iqm([1, 2, 9]) == 4.0


def test_iqm_matches_scipy_trim_mean():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4, 5, 7, 10, 13, 40):
        values = rng.normal(size=n) * 10
        assert iqm(values) == pytest.approx(float(scipy_stats.trim_mean(values, 0.25)), abs=1e-12)


def test_tasks_are_pooled_for_the_point_statistics():
    scores = [[0.0, 1.0, 2.0], [10.0, 20.0]]  # two tasks, ragged
    assert mean(scores) == pytest.approx(33.0 / 5)
    assert median(scores) == 2.0
    assert iqm(scores) == pytest.approx((1.0 + 2.0 + 10.0) / 3)  # 5 values: 0 and 20 dropped
    # a (runs, tasks) matrix is the same as its columns
    matrix = np.array([[0.0, 10.0], [1.0, 20.0]])
    assert iqm(matrix) == iqm([[0.0, 1.0], [10.0, 20.0]])


def test_bootstrap_interval_of_the_mean_of_two_values():
    # resamples of [0, 1]: mean 0 (p 1/4), 0.5 (p 1/2), 1 (p 1/4): the 2.5 % / 97.5 % quantiles are
    # 0 and 1, the 30 % / 70 % quantiles (confidence 0.4) both 0.5.
    point, low, high = stratified_bootstrap_ci([0.0, 1.0], mean, reps=4000, seed=3)
    assert (point, low, high) == (0.5, 0.0, 1.0)
    point, low, high = stratified_bootstrap_ci([0.0, 1.0], mean, reps=4000, confidence=0.4, seed=3)
    assert (point, low, high) == (0.5, 0.5, 0.5)


def test_bootstrap_is_stratified_by_task():
    # Every resample keeps 2 runs of task A (all 0) and 2 of task B (all 1): the mean is always 0.5.
    # An unstratified bootstrap of the 4 pooled values would give means from 0 to 1.
    scores = [[0.0, 0.0], [1.0, 1.0]]
    assert stratified_bootstrap_ci(scores, mean, reps=500) == (0.5, 0.5, 0.5)
    seen: list[list[int]] = []

    def sizes(tasks):  # a statistic outside rlkit.stats takes the generic path
        seen.append([len(t) for t in tasks])
        return float(np.concatenate(tasks).mean())

    assert stratified_bootstrap_ci([[0.0, 0.0, 0.0], [1.0]], sizes, reps=50) == (0.25, 0.25, 0.25)
    assert all(s == [3, 1] for s in seen) and len(seen) == 51


def test_generic_and_vectorised_paths_agree():
    rng = np.random.default_rng(0)
    scores = [rng.normal(size=5), rng.normal(size=3) + 4]
    fast = stratified_bootstrap_ci(scores, iqm, reps=300, seed=7)
    slow = stratified_bootstrap_ci(scores, lambda tasks: iqm(tasks), reps=300, seed=7)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_bootstrap_is_reproducible_and_seeded():
    scores = list(np.random.default_rng(5).normal(size=12))
    assert stratified_bootstrap_ci(scores, seed=1) == stratified_bootstrap_ci(scores, seed=1)
    assert stratified_bootstrap_ci(scores, seed=1) != stratified_bootstrap_ci(scores, seed=2)


def test_aggregate():
    result = aggregate([1.0, 2.0, 3.0, 10.0, 11.0])
    assert result.mean == 5.4
    assert result.std == pytest.approx(np.std([1.0, 2.0, 3.0, 10.0, 11.0]))
    assert result.iqm == 5.0
    low, high = result.ci
    assert 1.0 < low <= result.iqm <= high < 11.0
    assert set(result.as_dict()) == {"mean", "std", "iqm", "iqm_ci_low", "iqm_ci_high"}


@pytest.mark.parametrize("runs", [2, 3, 4])
def test_fewer_runs_than_the_minimum_get_no_interval_since_it_would_be_their_range(runs):
    """With 3 or 4 runs the percentile interval of the IQM is [min, max] of the runs (with 4, a
    resample holding 3 copies of the lowest has IQM = lowest with probability 5 %, above 2.5 %):
    printed as a 95 % interval it would claim a coverage it does not have."""
    values = list(np.random.default_rng(runs).normal(size=runs))
    if runs == 4:  # (the claim itself, on the bootstrap the interval would come from)
        assert stratified_bootstrap_ci(values, iqm)[1:] == (min(values), max(values))
    agg = aggregate(values)
    assert np.isnan(agg.ci[0]) and np.isnan(agg.ci[1])
    assert agg.mean == pytest.approx(np.mean(values)) and agg.std == pytest.approx(np.std(values))
    assert not np.isnan(aggregate(list(values) + [0.5] * (MIN_RUNS_FOR_CI - runs)).ci[0])


def test_one_run_has_no_std():
    assert np.isnan(aggregate([7.0]).std) and aggregate([7.0]).mean == 7.0


@pytest.mark.parametrize("bad, message", [
    ([], "at least one run"),
    ([[1.0], []], "at least one run"),
    (np.zeros((2, 2, 2)), "1-D"),
])
def test_bad_scores(bad, message):
    with pytest.raises(ValueError, match=message):
        iqm(bad)


def test_bad_bootstrap_arguments():
    with pytest.raises(ValueError, match="reps"):
        stratified_bootstrap_ci([1.0], reps=0)
    with pytest.raises(ValueError, match="confidence"):
        stratified_bootstrap_ci([1.0], confidence=1.0)


@pytest.mark.parametrize("statistic", [iqm, mean, median])
def test_a_missing_score_makes_the_point_and_its_interval_nan_not_a_narrower_interval(statistic):
    """A NaN among the scores (a run without a result) must not be trimmed away by the bootstrap's
    vectorised statistic while the point estimate says NaN."""
    scores = [float(i) for i in range(40)] + [float("nan")]
    point, low, high = stratified_bootstrap_ci(scores, statistic, reps=200, seed=0)
    assert np.isnan(point) and np.isnan(low) and np.isnan(high)
    assert all(np.isnan(x) for x in aggregate(scores)[2:])
