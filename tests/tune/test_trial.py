"""One trial: seeds in sequence, running-mean reports at seed_index * E + slot, pruning, failures."""
from __future__ import annotations

import pytest

from rlkit.trainers import read_metrics_csv
from rlkit.tune import run_trial
from rlkit.tune.trial import seed_objective


class FakeTrial:
    """Records reports; says prune once a report reaches ``prune_at``."""

    def __init__(self, prune_at: int | None = None) -> None:
        self.reports: list[tuple[int, float]] = []
        self.prune_at = prune_at

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return self.prune_at is not None and self.reports[-1][0] >= self.prune_at


def evals(run_dir) -> list[float]:
    return [row["eval_return"] for row in read_metrics_csv(run_dir / "metrics.csv") if row.get("eval_return") is not None]


@pytest.mark.parametrize("objective", ["final", "auc"])
def test_seeds_run_in_sequence_and_report_the_running_mean(study_parts, tmp_path, objective):
    base, _ = study_parts("logger=csv")
    trial = FakeTrial()
    result = run_trial(trial, base, {"algo.optim.lr": 1e-3}, seeds=(0, 1), slots=3, objective=objective,
                       run_root=tmp_path / "t")
    first, second = evals(tmp_path / "t" / "seed_0"), evals(tmp_path / "t" / "seed_1")
    assert len(first) == len(second) == 3
    assert [step for step, _ in trial.reports] == [0, 1, 2, 3, 4, 5]
    assert [value for _, value in trial.reports] == pytest.approx(first + [(a + b) / 2 for a, b in zip(first, second)])
    assert result.state == "complete"
    assert result.seed_values == {0: seed_objective(first, objective), 1: seed_objective(second, objective)}
    assert result.value == pytest.approx((result.seed_values[0] + result.seed_values[1]) / 2)


def test_pruning_stops_the_running_seed_and_skips_the_rest(study_parts, tmp_path):
    base, _ = study_parts("logger=csv")
    trial = FakeTrial(prune_at=1)
    result = run_trial(trial, base, {}, seeds=(0, 1), slots=3, objective="final", run_root=tmp_path / "t")
    assert result.state == "pruned" and result.value is None
    assert [step for step, _ in trial.reports] == [0, 1]
    assert [row["step"] for row in read_metrics_csv(tmp_path / "t" / "seed_0" / "metrics.csv")][-1] == 400
    assert not (tmp_path / "t" / "seed_1").exists()


def test_a_seed_that_stops_early_keeps_its_last_evaluation(study_parts, tmp_path):
    base, _ = study_parts("trainer.early_stop=true", "env.target_return=0")
    trial = FakeTrial()
    result = run_trial(trial, base, {}, seeds=(0,), slots=3, objective="auc", run_root=tmp_path / "t")
    assert [step for step, _ in trial.reports] == [0, 1, 2]
    assert len({value for _, value in trial.reports}) == 1
    assert result.value == trial.reports[0][1]


def test_a_diverging_config_fails_the_trial_with_its_error(study_parts, tmp_path):
    base, _ = study_parts()
    result = run_trial(FakeTrial(), base, {"algo.optim.lr": 1e30}, seeds=(0, 1), slots=3, objective="final",
                       run_root=tmp_path / "t")
    assert result.state == "failed" and result.failed_seed == 0
    assert result.error is not None and result.error.startswith("NonFiniteError: non-finite")


def test_a_config_the_builders_refuse_fails_the_trial(study_parts, tmp_path):
    base, _ = study_parts()
    result = run_trial(FakeTrial(), base, {"algo.batch_size": -1}, seeds=(0,), slots=3, objective="final",
                       run_root=tmp_path / "t")
    assert result.state == "failed"
    assert result.error == "ConfigError: algo.batch_size=-1 is invalid: expected a positive number"


class SignalledTrial(FakeTrial):
    """A trial during which the process gets SIGINT (a Ctrl-C) at the first report."""

    def report(self, value: float, step: int) -> None:
        import signal

        super().report(value, step)
        if len(self.reports) == 1:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.parametrize("batched", [False, True])
def test_an_interrupt_is_not_a_failed_trial_but_stops_the_study(study_parts, tmp_path, batched):
    """TrainingInterrupted is a RuntimeError: the trial must not record it as a sampled config's
    failure (the study would go on), but let it reach the study, which stops and replaces the trial."""
    from rlkit.trainers import TrainingInterrupted

    base, _ = study_parts()
    with pytest.raises(TrainingInterrupted):
        run_trial(SignalledTrial(), base, {}, seeds=(0, 1), slots=3, objective="final", run_root=tmp_path / "t",
                  batched=batched)
    assert (tmp_path / "t" / ("checkpoints" if batched else "seed_0/checkpoints") / "last.pt").exists()


# -- several seeds in one process (num_seeds): lockstep reports ------------------------------------
@pytest.mark.parametrize("objective", ["final", "auc"])
def test_batched_seeds_report_the_mean_over_all_seeds_at_each_evaluation(study_parts, tmp_path, objective):
    base, _ = study_parts("logger=csv")
    trial = FakeTrial()
    result = run_trial(trial, base, {"algo.optim.lr": 1e-3}, seeds=(0, 1), slots=3, objective=objective,
                       run_root=tmp_path / "t", batched=True)
    assert (tmp_path / "t" / "config.yaml").is_file()  # one run of 2 seeds; each seed's files in seed_<s>/
    first, second = evals(tmp_path / "t" / "seed_0"), evals(tmp_path / "t" / "seed_1")
    assert len(first) == len(second) == 3
    assert trial.reports == [(k, pytest.approx((a + b) / 2)) for k, (a, b) in enumerate(zip(first, second))]
    assert result.state == "complete"
    assert result.seed_values == {0: seed_objective(first, objective), 1: seed_objective(second, objective)}
    assert result.value == pytest.approx((result.seed_values[0] + result.seed_values[1]) / 2)


def test_batched_pruning_stops_every_seed(study_parts, tmp_path):
    base, _ = study_parts("logger=csv")
    trial = FakeTrial(prune_at=1)
    result = run_trial(trial, base, {}, seeds=(0, 1), slots=3, objective="final", run_root=tmp_path / "t",
                       batched=True)
    assert result.state == "pruned" and [step for step, _ in trial.reports] == [0, 1]
    for seed in (0, 1):  # both stopped at the second evaluation (frame 400 of 600)
        assert [row["step"] for row in read_metrics_csv(tmp_path / "t" / f"seed_{seed}" / "metrics.csv")][-1] == 400


def test_networks_that_cannot_be_stacked_run_one_seed_after_another(study_parts, tmp_path):
    base, _ = study_parts("algo.network={_target_: examples.nets.TwoLayer, width: 8}", "logger=csv")  # a user's net
    trial = FakeTrial()
    result = run_trial(trial, base, {}, seeds=(0, 1), slots=3, objective="final", run_root=tmp_path / "t",
                       batched=True)
    assert result.state == "complete" and not (tmp_path / "t" / "config.yaml").exists()
    # Reported as the batched trials of its study report (slot k: the mean over both seeds), once its
    # seeds are done: its running means at seed * 3 + slot met the pruner where the others report
    # all-seed means. It is not pruned: a pruner that would stop it at once is not asked.
    first, second = evals(tmp_path / "t" / "seed_0"), evals(tmp_path / "t" / "seed_1")
    assert trial.reports == [(k, pytest.approx((a + b) / 2)) for k, (a, b) in enumerate(zip(first, second))]
    eager = FakeTrial(prune_at=0)
    again = run_trial(eager, base, {}, seeds=(0, 1), slots=3, objective="final", run_root=tmp_path / "u",
                      batched=True)
    assert again.state == "complete" and [step for step, _ in eager.reports] == [0, 1, 2]


def test_non_consecutive_seeds_run_one_after_another(study_parts, tmp_path):
    base, _ = study_parts("logger=csv")
    trial = FakeTrial()
    run_trial(trial, base, {}, seeds=(0, 5), slots=3, objective="final", run_root=tmp_path / "t", batched=True)
    assert (tmp_path / "t" / "seed_5" / "config.yaml").is_file() and not (tmp_path / "t" / "config.yaml").exists()


# -- evaluation slots keyed by frames ---------------------------------------------------------------
@pytest.mark.parametrize("batched", [False, True])
def test_evaluations_go_to_the_slots_of_their_frames(study_parts, tmp_path, batched):
    """8 envs x 50 frames collect 400 frames per batch, so with evaluations due every 200 frames it
    evaluates at 400, 800 and 1200 frames: slots 1, 3 and 5 of 6, not 0, 1 and 2 (which would compare
    it at 800 frames with a trial evaluated at 400). Slots 2 and 4 hold the evaluation before them
    (the latest one by their frames), so ``auc`` is the area under the evaluation curve."""
    base, _ = study_parts("algo.num_envs=8", "algo.train_frequency=50", "total_frames=1200", "logger=csv")
    trial = FakeTrial()
    result = run_trial(trial, base, {}, seeds=(0, 1), slots=6, objective="auc", run_root=tmp_path / "t",
                       batched=batched)
    rows = [[row for row in read_metrics_csv(tmp_path / "t" / f"seed_{s}" / "metrics.csv")
             if row.get("eval_return") is not None] for s in (0, 1)]
    assert [[row["step"] for row in seed] for seed in rows] == [[400, 800, 1200]] * 2
    (a0, a1, a2), (b0, b1, b2) = ([row["eval_return"] for row in seed] for seed in rows)
    first, second = [a0, a0, a1, a1, a2], [b0, b0, b1, b1, b2]  # slots 1 to 5
    means = [(a + b) / 2 for a, b in zip(first, second)]
    if batched:
        assert trial.reports == [(k, pytest.approx(m)) for k, m in zip(range(1, 6), means)]
    else:
        assert trial.reports == [(k, pytest.approx(m)) for k, m in zip([1, 2, 3, 4, 5, 7, 8, 9, 10, 11], first + means)]
    assert result.seed_values == {0: pytest.approx(sum(first) / 5), 1: pytest.approx(sum(second) / 5)}


def _callbacks(total_frames: int, eval_interval: int):
    from omegaconf import OmegaConf

    from rlkit.tune.trial import _Curve, _Lockstep, _Slots

    base = OmegaConf.create({"total_frames": total_frames, "trainer": {"eval_interval": eval_interval}})
    slots = _Slots(-(-total_frames // eval_interval), base)
    return (_Curve(FakeTrial(), 0, slots, [], prune=False),
            _Lockstep(FakeTrial(), [0, 1], slots, prune=False))


def test_an_early_stop_weighs_as_an_evaluation_in_both_paths():
    """10k frames, evaluations due every 1k, batches of 2k frames: a seed evaluated 10, 50 and 100 at
    2k, 4k and 6k frames, then stopped early. Its objective is the same seed after seed and in
    lockstep beside a seed that runs on, and the same as had it run on at 100: the kept value counts
    as the evaluations it stands for (the fill once weighed it twice as much per frame)."""
    sequential, lockstep = _callbacks(10_000, 1_000)
    for frames, value in ((2_000, 10.0), (4_000, 50.0), (6_000, 100.0)):
        sequential.on_evaluation(frames, {"eval_return": value})
        lockstep.on_seed_evaluations(frames, {0: {"eval_return": value}, 1: {"eval_return": 0.0}})
    for frames in (8_000, 10_000):  # seed 1 runs on
        lockstep.on_seed_evaluations(frames, {1: {"eval_return": 0.0}})
    ran_on, _ = _callbacks(10_000, 1_000)
    for frames, value in ((2_000, 10.0), (4_000, 50.0), (6_000, 100.0), (8_000, 100.0), (10_000, 100.0)):
        ran_on.on_evaluation(frames, {"eval_return": value})
    expected = seed_objective(ran_on.fill(), "auc")
    assert seed_objective(sequential.fill(), "auc") == seed_objective(lockstep.fill()[0], "auc") == expected
    assert expected == pytest.approx((10 + 10 + 50 + 50 + 100 * 5) / 9)  # slots 1-9 (2k to 10k frames)


def test_the_pruner_is_asked_at_the_slots_between_evaluations_and_names_what_it_judged(caplog):
    """Batches of 2k frames, evaluations due every 1k: the slot at 3k frames holds the 2k evaluation,
    and the pruner is asked there (successive halving fills a rung from the step it is asked at: asked
    only at 4k, it took the 4k evaluation for the 3k rung). The pruned row says which evaluation was
    judged at which step."""
    from omegaconf import OmegaConf

    from rlkit.tune.trial import _WARNED, _Curve, _pruned_where, _Slots

    _WARNED.clear()  # (warned once per process)
    trial = FakeTrial(prune_at=2)
    slots = _Slots(10, OmegaConf.create({"total_frames": 10_000, "trainer": {"eval_interval": 1_000}}))
    curve = _Curve(trial, 0, slots, [], prune=True)
    assert not curve.on_evaluation(2_000, {"eval_return": 20.0})
    assert curve.on_evaluation(4_000, {"eval_return": 90.0})
    assert trial.reports == [(1, 20.0), (2, 20.0)] and curve.pruned_at == 2
    assert (_pruned_where(slots, 2, curve.sources[2], "seed 0")
            == "seed 0 at the 3,000-frame step, on its evaluation at 2,000 frames")
    assert _pruned_where(slots, 0, 1_024, "seed 0") == "seed 0's evaluation at 1,024 frames"
    assert "the first evaluation came at 2,000 frames, after 1 of the study's evaluation slots" in caplog.text


def test_a_storage_error_while_reporting_is_not_the_configuration_s_result(study_parts, tmp_path):
    """The pruner's reports go to the study's storage from inside training: a locked database there
    was recorded as the sampled configuration's failure."""
    import sqlalchemy.exc

    class LockedStorage(FakeTrial):
        def report(self, value: float, step: int) -> None:
            raise sqlalchemy.exc.OperationalError("INSERT INTO trial_intermediate_values", {},
                                                  Exception("database is locked"))

    base, _ = study_parts()
    with pytest.raises(sqlalchemy.exc.OperationalError):
        run_trial(LockedStorage(), base, {}, seeds=(0,), slots=3, objective="final", run_root=tmp_path / "t")


def test_a_non_finite_batched_objective_names_its_seeds_and_the_dropped_ones(tmp_path):
    """A trial whose run dropped two of four seeds was recorded as "non-finite objective nan" alone."""
    import json
    import math

    from rlkit.trainers.multiseed import SEED_END_FILE
    from rlkit.tune.trial import _non_finite_objective

    for seed in (1, 2):
        (tmp_path / f"seed_{seed}").mkdir()
        (tmp_path / f"seed_{seed}" / SEED_END_FILE).write_text(json.dumps(
            {"seed": seed, "status": "dropped", "reason": "non_finite", "frames": 1010, "message": "dropped"}))
    values = {0: 9.5, 1: math.nan, 2: math.nan, 3: math.inf}
    assert _non_finite_objective(math.nan, values, tmp_path) == (
        "non-finite objective nan (seed 1: nan (dropped for non-finite values), seed 2: nan (dropped for non-finite "
        "values), seed 3: inf)")
