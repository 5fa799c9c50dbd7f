"""The schedules the trainers step while they train: ε-greedy exploration (logged in ``metrics.csv``)
and prioritised replay's importance-sampling exponent β, checked through whole runs against the
schedules worked out by hand from the config."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rlkit.builders import validate_config
from rlkit.factories import build_multiseed_trainer, build_trainer
from rlkit.run import run, seed_everything
from rlkit.trainers import read_metrics_csv

CONF = str(Path(__file__).resolve().parents[2] / "conf")
# train_frequency 10 frames per env per batch (dqn.yaml); one evaluation, at the end
TINY = ["algo=dqn", "env=CartPole", "algo.batch_size=16", "algo.hidden_sizes=[16]", "trainer.eval_episodes=2",
        "trainer.eval_interval=0", "trainer.early_stop=false", "trainer.progress=false"]
EPS = {"eps_init": 1.0, "eps_end": 0.05, "start": 30, "frames": 100}
EPS_OVERRIDES = [f"algo.eps_init={EPS['eps_init']}", f"algo.eps_end={EPS['eps_end']}",
                 f"algo.eps_annealing_start={EPS['start']}", f"algo.eps_annealing_frames={EPS['frames']}"]


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=overrides)


def eps_at(frames: int) -> float:
    """The linear ε schedule after ``frames`` env frames (all envs): ``eps_init`` until ``start``,
    then linear to ``eps_end`` over ``frames`` frames, then flat."""
    progress = min(max(frames - EPS["start"], 0) / EPS["frames"], 1.0)
    return EPS["eps_init"] + (EPS["eps_end"] - EPS["eps_init"]) * progress


def assert_eps_rows(metrics_dir: Path, frames_per_batch: int, total: int) -> None:
    rows = read_metrics_csv(metrics_dir)
    # A row after every batch (log_interval = one batch), then the closing evaluation's row.
    assert [r["step"] for r in rows] == [*range(frames_per_batch, total + 1, frames_per_batch), total]
    for row in rows:
        assert row["eps"] == pytest.approx(eps_at(int(row["step"])), abs=1e-6), row["step"]
    # The budget covers the schedule's three parts: before the decay, during it (a batch straddles
    # its start at 30 frames and its end at 130) and after it.
    logged = [r["eps"] for r in rows]
    assert logged[0] == 1.0 and logged[-1] == pytest.approx(EPS["eps_end"])
    assert any(EPS["eps_end"] + 1e-3 < v < 1.0 - 1e-3 for v in logged)


@pytest.mark.parametrize("num_envs", [1, 2])
def test_the_logged_epsilon_follows_the_linear_schedule_through_training(tmp_path, num_envs):
    """A user reads in metrics.csv how much the agent still explores, and relies on ε-greedy
    exploration decaying over training as ``algo.eps_*`` say: each row's ``eps`` is the schedule at
    the frames (of all envs) collected so far, stepped after every collected batch, held at
    ``eps_init`` for ``eps_annealing_start`` frames. (A trainer that stops stepping the schedule
    explores at ε = 1 for the whole run.)"""
    total = 200
    cfg = compose_cfg([*TINY, *EPS_OVERRIDES, f"total_frames={total}", f"algo.num_envs={num_envs}",
                       "algo.learning_starts=100", f"trainer.log_interval={10 * num_envs}"])
    run(cfg, tmp_path / "run")
    assert_eps_rows(tmp_path / "run", 10 * num_envs, total)


def test_each_seeds_logged_epsilon_follows_the_schedule_in_a_multi_seed_run(tmp_path):
    """``num_seeds=2``: every seed's own metrics.csv shows the ε schedule at the frames that seed
    collected (per seed, not summed over the seeds), as its ordinary run would."""
    total = 200
    cfg = compose_cfg([*TINY, *EPS_OVERRIDES, f"total_frames={total}", "num_seeds=2", "algo.num_envs=2",
                       "algo.learning_starts=100", "trainer.log_interval=20"])
    run(cfg, tmp_path / "run")
    for seed in (0, 1):
        assert_eps_rows(tmp_path / "run" / f"seed_{seed}", 20, total)


def record_betas(buffer) -> list[float]:
    """Wraps ``buffer.sample`` to record the β each call samples with (:attr:`beta` before it)."""
    betas: list[float] = []
    sample = buffer.sample

    def recording(batch_size: int):
        betas.append(buffer.beta)
        return sample(batch_size)

    buffer.sample = recording
    return betas


def assert_beta_schedule(betas: list[float], calls: int, updates_per_batch: int, beta0: float = 0.4) -> None:
    assert len(betas) == calls
    assert betas[0] == beta0
    assert betas[-1] == 1.0  # exactly: the run ends with full importance-sampling correction
    # Linear per sampling call until it reaches 1, and it reaches 1 only with the last collected batch.
    ramp = [b for b in betas if b < 1.0]
    assert len(betas) - len(ramp) <= updates_per_batch, betas
    steps = [b - a for a, b in zip(ramp, ramp[1:])]
    assert all(math.isclose(s, steps[0], rel_tol=1e-9) for s in steps), betas
    assert math.isclose(ramp[-1] + steps[0], 1.0, rel_tol=1e-9), betas  # the next step of the ramp is 1


# (total_frames, learning_starts, num_envs, updates_per_batch, sampling calls), the calls by hand: a batch
# collects 10 * num_envs frames and is followed by updates_per_batch samples once the frames counted
# after it reach learning_starts; the collector collects ceil(total / batch) batches.
BETA_CASES = [
    (200, 100, 1, 1, 11),   # batches at 100, 110, ..., 200
    (200, 105, 1, 1, 10),   # 110, ..., 200
    (200, 0, 1, 1, 20),     # every batch: 10, ..., 200
    (205, 100, 1, 1, 12),   # 21 batches (the last one ends at 210): 100, ..., 210
    (200, 100, 1, 2, 22),   # 11 batches, 2 updates each
    (210, 95, 2, 3, 21),    # batches of 20 frames, 11 of them (to 220): 100, 120, ..., 220 -> 7 x 3
]


def prioritized_run(tmp_path: Path, overrides: list[str]) -> tuple[list[float], float]:
    """The β of every sampling call of a prioritised DQN run, and its β at the end."""
    cfg = compose_cfg([*TINY, "algo.prioritized=true", "logger=none", *overrides])
    seed_everything(0)
    trainer = build_trainer(validate_config(cfg), tmp_path)
    betas = record_betas(trainer.replay_buffer)
    try:
        trainer.fit()
    finally:
        trainer.close()
    return betas, trainer.replay_buffer.beta


@pytest.mark.parametrize(("total", "learning_starts", "num_envs", "updates_per_batch", "calls"), BETA_CASES)
def test_prioritized_beta_anneals_to_exactly_one_by_the_end_of_training(tmp_path, total, learning_starts, num_envs,
                                                                         updates_per_batch, calls):
    """``algo.beta`` is annealed to 1 "by total_frames" (dqn.yaml): the first update samples with
    ``algo.beta``, the importance-sampling correction grows linearly per update, and the last
    update of the run samples with β = 1 exactly (not below it, the bias uncorrected at the end;
    nor long before the end), whatever learning_starts, num_envs and updates_per_batch."""
    betas, final = prioritized_run(tmp_path, [f"total_frames={total}", f"algo.learning_starts={learning_starts}",
                                              f"algo.num_envs={num_envs}", f"algo.updates_per_batch={updates_per_batch}"])
    assert_beta_schedule(betas, calls, updates_per_batch)
    assert final == 1.0


@pytest.mark.parametrize("updates_per_batch", [1, 2])
def test_when_only_the_last_batch_samples_it_samples_at_beta_one(tmp_path, updates_per_batch):
    """learning_starts within the last batch: no ramp is left, the run's only updates correct fully."""
    betas, _ = prioritized_run(tmp_path, ["total_frames=200", "algo.learning_starts=195",
                                          f"algo.updates_per_batch={updates_per_batch}"])
    assert betas == [1.0] * updates_per_batch


def test_each_seeds_prioritized_beta_anneals_to_exactly_one_in_a_multi_seed_run(tmp_path):
    """``num_seeds=2``: every seed's prioritised buffer follows the β schedule of its ordinary run."""
    cfg = compose_cfg([*TINY, "algo.prioritized=true", "logger=none", "total_frames=200", "algo.learning_starts=0",
                       "num_seeds=2"])
    trainer = build_multiseed_trainer(validate_config(cfg), tmp_path)
    assert trainer.replay is not None
    betas = [record_betas(buffer) for buffer in trainer.replay.buffers]
    try:
        trainer.fit()
    finally:
        trainer.close()
    for seed_betas in betas:
        assert_beta_schedule(seed_betas, 20, 1)
