"""rlkit.run.run in-process: logged losses, determinism, exact resume, early stop, NaN stop, resume errors."""
from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlkit.config_schema import ConfigError
from rlkit.errors import CheckpointMismatchError, CorruptCheckpointError, LoggerError, RunDirError
from rlkit.registry import ALGORITHMS
from rlkit.run import _check_device_kind, run
from rlkit.trainers.episodes import read_episodes
from rlkit.trainers import NonFiniteError, TrainingInterrupted, load_checkpoint, read_metrics_csv

CONF = str(Path(__file__).resolve().parents[1] / "conf")
TINY = ["trainer.eval_episodes=2", "trainer.progress=false", "trainer.early_stop=false",
        "trainer.log_interval=200", "trainer.eval_interval=400"]
ALGO = {
    "dqn": ["algo=dqn", "algo.learning_starts=200", "algo.batch_size=32", "algo.hidden_sizes=[32]"],
    "c51": ["algo=c51", "algo.learning_starts=200", "algo.batch_size=32", "algo.hidden_sizes=[32]",
            "algo.n_atoms=11"],
    "a2c": ["algo=a2c", "algo.hidden_sizes=[32]"],
}
# (K, N): K is not a multiple of the log or eval interval, so the K-run ends with an extra
# evaluation row and a half-filled log window, which the resumed run must not see.
RESUME_FRAMES = {"dqn": (700, 1200), "a2c": (520, 1200)}


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=overrides)


def train(run_dir: Path, overrides: list[str]) -> dict:
    return run(compose_cfg(overrides), run_dir, overrides=overrides)


def resume(run_dir: Path, *overrides: str) -> dict:
    args = [f"resume={run_dir}", *overrides]
    return run(compose_cfg(args), run_dir, overrides=args)


def final_state(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")


def without_fps(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "fps"} for row in rows]


def assert_same(a, b, path="state"):
    """Exact equality of nested checkpoint contents (tensors compared bit for bit, dtype included)."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for key in a:
            assert_same(a[key], b[key], f"{path}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), path
    else:
        assert a == b, path


def assert_same_state(a: dict, b: dict) -> None:
    """:func:`assert_same` on two checkpoints; replay storage rows past the filled size are skipped.

    (The storage allocates its capacity with ``torch.empty``, so the unfilled rows hold arbitrary bytes.)
    """
    def filled(state: dict) -> dict:
        state = dict(state)
        if "replay_buffer" in state:
            storage = dict(state["replay_buffer"]["storage"])
            storage["data"] = _truncate(storage["data"], storage["size"])
            state["replay_buffer"] = {**state["replay_buffer"], "storage": storage}
        return state

    assert_same(filled(a), filled(b))


def _truncate(data, size: int):
    if isinstance(data, dict):
        return {k: _truncate(v, size) for k, v in data.items()}
    return data[:size]


def assert_same_parameters(a: dict, b: dict) -> None:
    assert a["loss_module"].keys() == b["loss_module"].keys()
    for key, value in a["loss_module"].items():
        assert torch.equal(value, b["loss_module"][key]), key


def assert_training_happened(rows: list[dict], key: str) -> None:
    """Guards the equality tests against passing vacuously."""
    losses = [row[key] for row in rows if key in row]
    assert len(losses) >= 3 and len(set(losses)) == len(losses)


@pytest.mark.parametrize("num_seeds", [1, 2])
def test_the_other_scalars_a_loss_returns_are_logged_as_window_means(tmp_path, monkeypatch, num_seeds):
    """A loss's other scalar outputs (A2C's entropy with an entropy bonus; a user's loss's diagnostics)
    are logged beside its loss_* entries (seed 004: "other scalars present in the output tensordict will
    be logged too"); they were dropped. Each row holds the mean over the updates since the row before."""
    returned: list[list[float]] = []
    forward = ALGORITHMS["a2c"].loss.forward

    def recording(self, td):
        out = forward(self, td)
        returned.append(out["entropy"].detach().reshape(-1).tolist())
        return out

    monkeypatch.setattr(ALGORITHMS["a2c"].loss, "forward", recording)
    train(tmp_path, ALGO["a2c"] + TINY + ["total_frames=600", "algo.entropy_coeff=0.01", f"num_seeds={num_seeds}"])
    seed_dir = tmp_path if num_seeds == 1 else tmp_path / "seed_1"
    column = 0 if num_seeds == 1 else 1
    rows = [row for row in read_metrics_csv(seed_dir) if "entropy" in row]
    assert len(rows) >= 2
    done = 0
    for row in rows:
        window = [values[column] for values in returned[done:int(row["updates"])]]
        assert row["entropy"] == pytest.approx(sum(window) / len(window), rel=1e-12)
        done = int(row["updates"])


def test_loss_outputs_that_are_not_scalars_or_take_a_trainer_name_are_not_logged(tmp_path, monkeypatch):
    """A nested tensordict, a non-tensor, a vector, and the names the trainer and the CSV writes
    (step, eps, grad_norm) in a loss's output: training goes on (a nested one raised a TypeError, a
    diagnostic named step failed the CSV logger) and an integer scalar is logged as a number."""
    from tensordict import TensorDict

    forward = ALGORITHMS["a2c"].loss.forward

    def with_extras(self, td):
        out = forward(self, td)
        out["nested"] = TensorDict({"x": torch.tensor(1.0)}, [])
        out.set_non_tensor("note", "hi")
        out["vector"] = torch.ones(3)
        out["step"], out["eps"], out["grad_norm"] = torch.tensor(-1.0), torch.tensor(-2.0), torch.tensor(-3.0)
        out["clipped"] = torch.tensor(4)
        return out

    monkeypatch.setattr(ALGORITHMS["a2c"].loss, "forward", with_extras)
    train(tmp_path, ALGO["a2c"] + TINY + ["total_frames=400"])
    rows = [row for row in read_metrics_csv(tmp_path) if "loss_objective" in row]
    assert rows and all(row["clipped"] == 4.0 and row["grad_norm"] >= 0 and "eps" not in row for row in rows)
    assert not {"nested", "nested.x", "note", "vector"} & set().union(*rows)


@pytest.mark.parametrize("algo", ["dqn", "c51", "a2c"])
def test_every_loss_key_reaches_metrics_csv_and_wandb(tmp_path, monkeypatch, fake_wandb, algo):
    returned: set[str] = set()
    forward = ALGORITHMS[algo].loss.forward

    def recording(self, td):
        out = forward(self, td)
        returned.update(k for k in out.keys() if k.startswith("loss_"))
        return out

    monkeypatch.setattr(ALGORITHMS[algo].loss, "forward", recording)
    train(tmp_path, ALGO[algo] + TINY + ["total_frames=600", "logger=wandb"])
    rows = read_metrics_csv(tmp_path)
    (wandb_run,) = fake_wandb  # what rlkit passed to wandb.run.log
    assert wandb_run.finished == 1 and wandb_run.summary["end_reason"] == "budget"
    assert returned >= ({"loss_objective", "loss_critic"} if algo == "a2c" else {"loss_value"})
    for key in sorted(returned):
        logged = [(row["step"], row[key]) for row in rows if key in row]
        assert logged and all(step >= 200 for step, _ in logged), key
        sent = [(step, metrics[key]) for metrics, step in wandb_run.logged if key in metrics]
        assert [step for step, _ in sent] == [step for step, _ in logged]
        assert [value for _, value in sent] == pytest.approx([value for _, value in logged], rel=1e-12, abs=0)


@pytest.fixture(scope="module", params=["dqn", "a2c"])
def runs(request, tmp_path_factory):
    """Per algorithm: run N frames twice, and run K frames then resume to N."""
    algo = request.param
    k, n = RESUME_FRAMES[algo]
    root = tmp_path_factory.mktemp(algo)
    common = ALGO[algo] + TINY + [f"trainer.checkpoint_interval={k}", "trainer.keep_checkpoints=true"]
    train(root / "straight", common + [f"total_frames={n}"])
    train(root / "again", common + [f"total_frames={n}"])
    train(root / "split", common + [f"total_frames={k}"])
    end_of_short_run = final_state(root / "split")
    resume(root / "split", f"total_frames={n}")
    return algo, k, n, root, end_of_short_run


def test_same_seed_gives_identical_losses_and_parameters(runs):
    algo, _, _, root, _ = runs
    straight, again = read_metrics_csv(root / "straight"), read_metrics_csv(root / "again")
    assert_training_happened(straight, "loss_value" if algo == "dqn" else "loss_objective")
    assert without_fps(straight) == without_fps(again)
    assert_same_parameters(final_state(root / "straight"), final_state(root / "again"))


def test_checkpoint_at_the_end_of_a_run_equals_a_periodic_one(runs):
    _, k, _, root, end_of_short_run = runs
    periodic = load_checkpoint(root / "straight" / "checkpoints" / f"step_{k}.pt")
    assert periodic["frames"] == end_of_short_run["frames"] == k
    assert_same_state(periodic, end_of_short_run)


def test_resume_equals_uninterrupted(runs):
    algo, k, n, root, _ = runs
    straight, split = read_metrics_csv(root / "straight"), read_metrics_csv(root / "split")
    assert without_fps(split) == without_fps(straight)  # every loss column included
    assert_same_parameters(final_state(root / "split"), final_state(root / "straight"))
    assert_same_state(final_state(root / "split"), final_state(root / "straight"))
    assert final_state(root / "split")["frames"] == n
    assert sum(row["step"] == k for row in split) == sum(row["step"] == k for row in straight)
    assert read_episodes(root / "split") == read_episodes(root / "straight")


def test_episodes_csv_holds_every_finished_episode(runs):
    _, _, _, root, _ = runs
    episodes = read_episodes(root / "straight")
    rows = read_metrics_csv(root / "straight")
    assert len(episodes) == sum(int(row.get("episodes", 0)) for row in rows) > 0
    assert all(e["length"] > 0 and e["frame"] > 0 for e in episodes)


def test_interrupted_run_with_prioritized_replay_resumes_exactly(tmp_path, monkeypatch):
    overrides = ALGO["dqn"] + TINY + ["algo.prioritized=true", "total_frames=1000"]
    train(tmp_path / "straight", overrides)
    forward = ALGORITHMS["dqn"].loss.forward
    calls = []

    def interrupting(self, td):
        calls.append(None)
        if len(calls) == 25:  # update 25 = frame 440: mid log window, after the first evaluation
            os.kill(os.getpid(), signal.SIGINT)
        return forward(self, td)

    monkeypatch.setattr(ALGORITHMS["dqn"].loss, "forward", interrupting)
    with pytest.raises(TrainingInterrupted):
        train(tmp_path / "split", overrides)
    monkeypatch.undo()
    assert final_state(tmp_path / "split")["frames"] == 440
    resume(tmp_path / "split")
    assert without_fps(read_metrics_csv(tmp_path / "split")) == without_fps(read_metrics_csv(tmp_path / "straight"))
    assert_same_state(final_state(tmp_path / "split"), final_state(tmp_path / "straight"))


def test_early_stop_at_the_first_evaluation_reaching_the_target(tmp_path):
    result = train(tmp_path, ALGO["dqn"] + TINY + ["total_frames=3000", "trainer.early_stop=true",
                                                   "env.target_return=1"])
    rows = read_metrics_csv(tmp_path)
    assert result["eval_return"] >= 1
    assert final_state(tmp_path)["frames"] == 400  # the first evaluation
    assert rows[-1]["step"] == 400 and rows[-1]["eval_return"] == result["eval_return"]
    assert sum("eval_return" in row for row in rows) == 1


def test_an_evaluation_off_the_log_grid_shares_its_row_with_the_training_figures(tmp_path):
    """What README "Metrics" says: an evaluation's row is at its frame and carries the training
    figures since the previous row; the log grid goes on; the closing evaluation after a grid row
    gets a row of its own."""
    overrides = ALGO["dqn"] + TINY + ["trainer.log_interval=400", "trainer.eval_interval=600"]
    train(tmp_path / "a", overrides + ["total_frames=1000"])
    rows = read_metrics_csv(tmp_path / "a")
    assert [(row["step"], "eval_return" in row, "loss_value" in row) for row in rows] == [
        (400, False, True), (600, True, True), (800, False, True), (1000, True, True)]
    train(tmp_path / "b", overrides + ["total_frames=800"])
    rows = read_metrics_csv(tmp_path / "b")
    assert [(row["step"], "eval_return" in row, "loss_value" in row) for row in rows] == [
        (400, False, True), (600, True, True), (800, False, True), (800, True, False)]


def test_non_finite_loss_stops_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    forward = ALGORITHMS["dqn"].loss.forward
    calls = []

    def nan_at_update_30(self, td):
        out = forward(self, td)
        calls.append(None)
        return out.set("loss_value", out["loss_value"] * torch.nan) if len(calls) == 30 else out

    monkeypatch.setattr(ALGORITHMS["dqn"].loss, "forward", nan_at_update_30)
    last = tmp_path / "checkpoints" / "last.pt"
    with pytest.raises(NonFiniteError, match=rf"non-finite loss at update 30 \(frame 490\): loss_value=nan; "
                                             rf"the last good checkpoint is {last}"):
        train(tmp_path, ALGO["dqn"] + TINY + ["total_frames=1000", "trainer.checkpoint_interval=300"])
    state = load_checkpoint(last)
    assert (state["frames"], state["updates"]) == (300, 11)
    monkeypatch.undo()
    resume(tmp_path)  # the kept checkpoint still trains to the end
    assert final_state(tmp_path)["frames"] == 1000


def test_resume_refuses_to_change_a_config_group(runs):
    _, _, _, root, _ = runs
    with pytest.raises(ConfigError, match=r"algo=c51: cannot change the config group 'algo' when resuming \(the "
                                          r"run's algo is '(dqn|a2c)'\)"):
        resume(root / "straight", "algo=c51")


def test_resume_needs_the_run_config(tmp_path, runs):
    _, _, _, root, _ = runs
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(root / "straight" / "checkpoints" / "last.pt", tmp_path / "checkpoints")
    with pytest.raises(RunDirError, match=r"cannot resume: .*config.yaml does not exist"):
        resume(tmp_path)


# -- runs you can trust: a refused resume changes nothing ------------------------------------------
def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run directory, byte for byte."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture
def finished(tmp_path):
    """A finished short DQN run (8 metric rows, episodes, a checkpoint at 800 frames)."""
    run_dir = tmp_path / "run"
    train(run_dir, ALGO["dqn"] + TINY + ["total_frames=800", "trainer.checkpoint_interval=400"])
    return run_dir


@pytest.mark.parametrize("other", ["c51", "a2c"])
def test_a_checkpoint_of_another_algorithm_is_refused_before_anything_changes(tmp_path, finished, other):
    """The algorithm is named first (an A2C checkpoint lacks a replay buffer too: that is not the news)."""
    trained = tmp_path / other
    train(trained, ALGO[other] + TINY + ["total_frames=400"])
    shutil.copy(trained / "checkpoints" / "last.pt", finished / "checkpoints" / "last.pt")
    before = snapshot(finished)
    loss = {"c51": "DistributionalDQNLoss", "a2c": "A2CLoss"}[other]
    with pytest.raises(CheckpointMismatchError, match=rf"last.pt does not belong to this run: it was written by another "
                                                      rf"algorithm: its loss is {loss}, this run's is DQNLoss$"):
        resume(finished, "total_frames=1200")
    assert snapshot(finished) == before


def test_a_checkpoint_of_other_network_shapes_is_refused_before_anything_changes(tmp_path, finished):
    """(The checkpoint of a wider run copied in: an override of the width is refused by its key, below.)"""
    wider = tmp_path / "wider"
    train(wider, ALGO["dqn"] + TINY + ["total_frames=400", "algo.hidden_sizes=[64]"])
    saved = (finished / "checkpoints" / "last.pt").read_bytes()
    shutil.copy(wider / "checkpoints" / "last.pt", finished / "checkpoints" / "last.pt")
    before = snapshot(finished)
    with pytest.raises(CheckpointMismatchError, match=r"does not belong to this run: loss_module\['value_network_params"
                                                      r"\.module\.0\.module\.0\.weight'\] has shape \(64, 4\), "
                                                      r"expected \(32, 4\)"):
        resume(finished, "total_frames=1200")
    assert snapshot(finished) == before
    (finished / "checkpoints" / "last.pt").write_bytes(saved)
    resume(finished, "total_frames=1200")  # the plain resume still works (config.yaml was not rewritten)
    assert final_state(finished)["frames"] == 1200


@pytest.mark.parametrize(("override", "message"), [
    ("algo.hidden_sizes=[64]", r"algo\.hidden_sizes=\[64\] cannot change when resuming \(the run has \[32\]\)"),
    ("algo.buffer_size=5000", r"algo\.buffer_size=5000 cannot change when resuming \(the run has \d+\)"),
    ("algo.num_envs=2", r"algo\.num_envs=2 cannot change when resuming \(the run has 1\)"),
    ("env.id=Acrobot-v1", r"env\.id='Acrobot-v1' cannot change when resuming \(the run has 'CartPole-v1'\)"),
    # (the checkpoint's env state "does not match a SyncVectorEnv of 8 copies", said as a foreign checkpoint)
    ("env.vectorization=sync", r"env\.vectorization='sync' cannot change when resuming \(the run has 'auto'\)"),
    # a section's key, not the two whole sections (Atari's env.options has ten keys)
    ("+env.make_kwargs.sutton_barto_reward=true",
     r"env\.make_kwargs\.sutton_barto_reward=True cannot change when resuming \(the run left it unset: its default\)"),
    # (a null key added to a section: no key differs once missing counts as null; it was a TypeError)
    ("+env.make_kwargs.sutton_barto_reward=null",
     r"env\.make_kwargs=\{'sutton_barto_reward': None\} cannot change when resuming \(the run has \{\}\)"),
])
def test_a_setting_that_shapes_the_checkpoint_is_named_when_a_resume_changes_it(finished, override, message):
    """Before, the checkpoint's shapes were named (``loss_module has unexpected 'value_network_params
    .module.0.module.4.weight'``, ``storage capacity is 10000, this run's is 5000``), not the override."""
    before = snapshot(finished)
    with pytest.raises(ConfigError, match=rf"^{message}: the checkpoint holds the run's env, networks and replay as "
                                          r"they were made; start a new run for another value$"):
        resume(finished, "total_frames=1200", override)
    assert snapshot(finished) == before


@pytest.mark.parametrize(("logger", "case"), [("wandb", "last"), ("tensorboard", "last"), ("wandb", "snapshot"),
                                              ("wandb", "seeds")])
def test_a_logger_that_cannot_start_leaves_a_resumed_run_as_it_was(tmp_path, monkeypatch, logger, case):
    """wandb online without an API key: before, the resume had rewritten config.yaml, cut the closing
    row off metrics.csv and added .hydra/resume_1 before wandb failed, with a traceback; each retry
    added another resume_<k>. Now every backend starts first and fails in one line: also before a
    resume from a snapshot sets the later checkpoints aside, and before any seed's CSVs are cut."""
    import rlkit.factories as factories

    if logger == "tensorboard":
        pytest.importorskip("tensorboard")
    run_dir = tmp_path / "run"
    extra = {"last": [], "snapshot": ["trainer.checkpoint_interval=400", "trainer.keep_checkpoints=true"],
             "seeds": ["num_seeds=2"]}[case]
    train(run_dir, ALGO["dqn"] + TINY + ["total_frames=800", f"logger={logger}", *extra])
    target = run_dir / "checkpoints" / "step_400.pt" if case == "snapshot" else run_dir

    def run_files() -> dict[str, bytes]:  # (wandb's service finishes its own logs in the background)
        return {name: data for name, data in snapshot(run_dir).items() if "wandb/" not in name}

    before = run_files()
    started = []

    class Failing:
        def __init__(self, *args, **kwargs):
            started.append(1)
            if len(started) == (2 if case == "seeds" else 1):  # (the second seed's: the first one's closes)
                raise RuntimeError("No API key configured. Use `wandb login` to log in.\nmore text")

        def close(self):
            started.append("closed")

    monkeypatch.setattr(factories, "WandbLogger" if logger == "wandb" else "TensorBoardLogger", Failing)
    with pytest.raises(LoggerError, match=rf"^logger={logger} could not start: RuntimeError: No API key configured\. "
                                          r"Use `wandb login` to log in$"):  # (offline: no advice to go offline)
        args = [f"resume={target}", "total_frames=1200"]
        run(compose_cfg(args), run_dir, overrides=args)
    assert run_files() == before
    assert started == ([1, 1, "closed"] if case == "seeds" else [1])
    monkeypatch.undo()
    resume(run_dir, "total_frames=1200")  # (the retry works once the logger does)
    assert final_state(run_dir)["frames"] == 1200


def test_optimiser_moments_of_other_shapes_are_refused(finished):
    state = final_state(finished)
    adam = state["optimizer"]["state"]
    adam[0] = {k: (v[:1] if v.dim() else v) for k, v in adam[0].items()}  # moments of a (1, 4) layer
    torch.save(state, finished / "checkpoints" / "last.pt")
    before = snapshot(finished)
    with pytest.raises(CheckpointMismatchError, match=r"optimizer state\[0\]\['exp_avg'\] has shape \(1, 4\), its "
                                                      r"parameter has shape \(32, 4\)"):
        resume(finished, "total_frames=1200")
    assert snapshot(finished) == before


def test_a_crash_after_resuming_from_a_snapshot_resumes_that_branch(tmp_path, monkeypatch):
    """Resumed from step_400.pt, the run's later checkpoints (last.pt at 1200 frames among them) belong
    to the branch given up: they move to checkpoints/abandoned_1/ and last.pt is the resumed state, so
    a crash before the next checkpoint resumes from 400 frames, and the run ends as the straight one."""
    from rlkit.trainers import Trainer, read_metrics_csv

    args = ALGO["dqn"] + TINY + ["total_frames=1200", "trainer.checkpoint_interval=400", "trainer.keep_checkpoints=true"]
    train(tmp_path / "straight", args)
    run_dir = tmp_path / "run"
    train(run_dir, args)
    fit = Trainer.fit

    def crash(self):  # a hard crash (no checkpoint) right after the resume's own writes
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", crash)
    with pytest.raises(KeyboardInterrupt):
        run(compose_cfg([f"resume={run_dir / 'checkpoints' / 'step_400.pt'}"]), run_dir,
            overrides=[f"resume={run_dir / 'checkpoints' / 'step_400.pt'}"])
    aside = sorted(p.name for p in (run_dir / "checkpoints" / "abandoned_1").iterdir())
    assert aside == ["last.pt", "step_1200.pt", "step_800.pt"]
    assert final_state(run_dir)["frames"] == 400
    monkeypatch.setattr(Trainer, "fit", fit)
    resume(run_dir)
    assert without_fps(read_metrics_csv(run_dir / "metrics.csv")) == without_fps(read_metrics_csv(tmp_path / "straight" / "metrics.csv"))
    assert (run_dir / "episodes.csv").read_text() == (tmp_path / "straight" / "episodes.csv").read_text()
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.pt")) == ["last.pt", "step_1200.pt", "step_400.pt",
                                                                            "step_800.pt"]


@pytest.mark.parametrize(("override", "message"), [
    ("seed=7", r"seed=7 cannot change when resuming \(the run has 0\): the checkpoint restores it; start a new run"),
    ("algo.optim.lr=0.1", r"algo\.optim\.lr=0\.1 cannot change when resuming \(the run has 0\.00025\)"),
    ("algo.eps_end=0.9", r"algo\.eps_end=0\.9 cannot change when resuming"),
    ("value_estimator.gamma=0.5", r"value_estimator\.gamma=0\.5 cannot change when resuming \(the run has 0\.99\)"),
    ("~algo.batch_size", r"~algo\.batch_size: a key cannot be deleted when resuming"),
    ("algo.alpha=0.2", r"algo\.alpha=0\.2 cannot change when resuming \(the run has 0\.6\)"),  # the replay's
    # The checkpoint holds the transforms' state: a changed list was refused as a foreign checkpoint,
    # changed knobs were accepted.
    ("env.transforms=[{name: clip_reward}]", r"env\.transforms=\[\{'name': 'clip_reward'\}\] cannot change when "
                                             r"resuming \(the run has \[\]\): the checkpoint holds the run's env with its own transforms"),
])
def test_resume_refuses_to_change_what_the_checkpoint_restores(finished, override, message):
    """The optimiser's arguments, epsilon's bounds, the discount and the seed come back from the
    checkpoint: an override would be written into config.yaml and never used."""
    before = snapshot(finished)
    with pytest.raises(ConfigError, match=message):
        resume(finished, "total_frames=1200", override)
    assert snapshot(finished) == before
    resume(finished, "total_frames=1000", "algo.eps_annealing_frames=500")  # a schedule's length may change


def test_resume_takes_the_run_s_transforms_spelled_with_their_defaults(tmp_path):
    run_dir = tmp_path / "run"
    train(run_dir, ALGO["dqn"] + TINY + ["total_frames=400", "env.transforms=[{name: clip_reward}]"])
    resume(run_dir, "total_frames=600", "env.transforms=[{name: clip_reward, low: -1.0, high: 1}]")


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]\n", r"config\.yaml holds a ListConfig, not the run's config \(a mapping\)"),
    ("seed: [\n", r"config\.yaml is not a readable config \(ParserError: "),
])
def test_a_damaged_run_config_is_refused_in_one_line_leaving_the_run_as_it_was(finished, text, message):
    (finished / "config.yaml").write_text(text)
    (finished / ".rlkit.lock").write_bytes(b"pid 1 on the machine that trained it\n")
    before = snapshot(finished)
    with pytest.raises(RunDirError, match=rf"cannot resume: .*{message}"):
        resume(finished, "total_frames=1200")
    assert snapshot(finished) == before


def test_a_refused_resume_leaves_even_the_lock_file_as_it_was(finished):
    lock = finished / ".rlkit.lock"
    lock.write_bytes(b"pid 1 on the machine that trained it\n")
    os.utime(lock, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))  # (2020: any claim changes it)
    before = snapshot(finished)
    with pytest.raises(ConfigError, match="below the 800 frames"):
        resume(finished, "total_frames=10")
    assert snapshot(finished) == before
    assert lock.stat().st_mtime_ns == 1_600_000_000_000_000_000  # its time too


def test_a_corrupt_checkpoint_is_refused_before_anything_changes(finished):
    path = finished / "checkpoints" / "last.pt"
    data = bytearray(path.read_bytes())
    for at in range(len(data) // 3, len(data) // 3 + 20):
        data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    before = snapshot(finished)
    with pytest.raises(CorruptCheckpointError, match=r"last.pt' is corrupt"):
        resume(finished, "total_frames=1200")
    assert snapshot(finished) == before


def test_total_frames_below_the_frames_done_is_refused(finished):
    before = snapshot(finished)
    with pytest.raises(ConfigError, match="total_frames=500 is below the 800 frames this run has done; give "
                                          "total_frames >= 800"):
        resume(finished, "total_frames=500")
    assert snapshot(finished) == before


def test_resuming_a_complete_run_is_refused_and_changes_nothing(finished):
    """A run that reached its budget and wrote its closing row: nothing to resume. (It used to
    redo the closing evaluation, rewrite last.pt and blank the last row's fps.)"""
    before = snapshot(finished)
    with pytest.raises(RunDirError, match=r"is complete: 800 frames of total_frames=800, its closing evaluation done; "
                                          r"nothing to resume \(give total_frames > 800 to train it further\)"):
        resume(finished)
    assert snapshot(finished) == before


def test_a_run_stopped_before_its_closing_row_is_finished_by_its_resume(tmp_path):
    """The last checkpoint is saved before the closing evaluation: a run killed in between resumes
    to the same closing row (and a row cut off mid-write by the kill is dropped, not parsed); once
    written, the run is complete."""
    finished = tmp_path / "run"
    train(finished, ALGO["dqn"] + TINY + ["total_frames=700"])  # evaluations at 400 and (closing) 700
    rows = read_metrics_csv(finished)
    assert rows[-1]["step"] == 700 and "eval_return" in rows[-1]
    metrics = finished / "metrics.csv"
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # the closing row, half written
    episodes = finished / "episodes.csv"
    episodes.write_text(episodes.read_text() + "700,2")  # an episode row cut off too
    resume(finished)
    assert without_fps(read_metrics_csv(finished)) == without_fps(rows)
    assert episodes.read_text().endswith("\n") and "\n700,2\n" not in episodes.read_text()
    with pytest.raises(RunDirError, match="is complete: 700 frames of total_frames=700"):
        resume(finished)
    # A budget that is not whole batches (A2C: 8 envs x 5 steps): the run ends past it, and is complete there.
    a2c = tmp_path / "a2c"
    train(a2c, ALGO["a2c"] + TINY + ["total_frames=390"])
    assert final_state(a2c)["frames"] == 400
    with pytest.raises(RunDirError, match="is complete: 400 frames of total_frames=390"):
        resume(a2c)
    with pytest.raises(ConfigError, match="total_frames=360 is below the 400 frames this run has done"):
        resume(a2c, "total_frames=360")


def test_resume_reads_one_run(tmp_path, finished):
    other = tmp_path / "other"
    other.mkdir()
    args = [f"resume={finished}", "total_frames=1200"]
    with pytest.raises(RunDirError, match=rf"resume={finished} belongs to the run in {finished}, but the output "
                                          rf"directory is {other}"):
        run(compose_cfg(args), other, overrides=args)
    assert list(other.iterdir()) == []


def test_a_resume_keeps_the_first_start_provenance_and_adds_its_own(tmp_path):
    args = ALGO["a2c"] + TINY + ["total_frames=400"]
    run(compose_cfg(args), tmp_path, overrides=args, provenance={"overrides.yaml": "first\n"})
    for frames in (600, 800):
        resume_args = [f"resume={tmp_path}", f"total_frames={frames}"]
        run(compose_cfg(resume_args), tmp_path, overrides=resume_args, provenance={"overrides.yaml": f"{frames}\n"})
    assert (tmp_path / ".hydra" / "overrides.yaml").read_text() == "first\n"
    assert (tmp_path / ".hydra" / "resume_1" / "overrides.yaml").read_text() == "600\n"
    assert (tmp_path / ".hydra" / "resume_2" / "overrides.yaml").read_text() == "800\n"


def test_a_resume_removes_temp_files_of_interrupted_writes(finished):
    stale = finished / "checkpoints" / ".last.pt.q1w2e3r4.tmp"
    stale.write_bytes(b"half a checkpoint")
    resume(finished, "total_frames=1000")
    assert not stale.exists()
    assert not list(finished.rglob("*.tmp"))


def test_a_start_that_fails_before_it_commits_leaves_nothing(tmp_path, monkeypatch):
    import rlkit.run as run_module

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(run_module, "open_outputs", broken)
    with pytest.raises(OSError, match="disk full"):
        train(tmp_path / "run", ALGO["dqn"] + TINY + ["total_frames=400"])
    assert not (tmp_path / "run").exists()
    monkeypatch.undo()
    train(tmp_path / "run", ALGO["dqn"] + TINY + ["total_frames=400"])  # a rerun into it works
    assert final_state(tmp_path / "run")["frames"] == 400


def test_a_committed_run_holds_a_frame_0_checkpoint_that_replays_it(tmp_path, monkeypatch):
    forward = ALGORITHMS["dqn"].loss.forward

    def crash_at_once(self, td):
        raise RuntimeError("a bug mid-run")

    monkeypatch.setattr(ALGORITHMS["dqn"].loss, "forward", crash_at_once)
    overrides = ALGO["dqn"] + TINY + ["total_frames=600"]
    with pytest.raises(RuntimeError, match="a bug mid-run"):
        train(tmp_path / "split", overrides)
    assert final_state(tmp_path / "split")["frames"] == 0
    monkeypatch.setattr(ALGORITHMS["dqn"].loss, "forward", forward)
    resume(tmp_path / "split")  # not a dead end: resumes from frame 0
    train(tmp_path / "straight", overrides)
    assert without_fps(read_metrics_csv(tmp_path / "split")) == without_fps(read_metrics_csv(tmp_path / "straight"))
    assert read_episodes(tmp_path / "split") == read_episodes(tmp_path / "straight")


def test_an_env_without_state_capture_checkpoints_and_resumes(tmp_path, caplog):
    """LunarLander (Box2D) cannot save its state: checkpoints hold everything else, and a resume
    restarts the interrupted episodes (the rest of the run is exact)."""
    overrides = ALGO["dqn"] + TINY + ["env=LunarLander", "total_frames=800", "trainer.checkpoint_interval=300"]
    train(tmp_path, overrides)
    state = final_state(tmp_path)
    assert state["collector"]["env"]["vector"] is None and state["frames"] == 800
    episodes = read_episodes(tmp_path)
    with caplog.at_level("INFO", logger="rlkit"):
        resume(tmp_path, "total_frames=1600")
    assert final_state(tmp_path)["frames"] == 1600
    assert read_episodes(tmp_path)[: len(episodes)] == episodes
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "this resume is exact in everything but the 1 interrupted episode(s)" in warnings[0]


def _mapped_checkpoints(run_dir: Path) -> list[str]:
    """The lines of this process's memory map that map a file of ``run_dir``'s checkpoints."""
    folder = str((run_dir / "checkpoints").resolve())
    with open("/proc/self/maps") as maps:
        return [line.strip() for line in maps if folder in line]


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps (Linux)")
def test_a_resumed_run_keeps_no_checkpoint_mapped_while_it_trains(finished):
    """The resume maps the checkpoint to copy the replay in once (not read it into memory and copy it
    again); nothing may keep that mapping afterwards: the optimiser adopted its moments without a
    copy, which kept the whole file, replay included, mapped and its disk space taken after the next
    checkpoint replaced it, for as long as the run trained."""
    from rlkit.builders import validate_config
    from rlkit.run import _build, load_run_config
    from rlkit.trainers import TrainerCallback

    seen: list[list[str]] = []

    class Look(TrainerCallback):
        def on_evaluation(self, frames, metrics):
            seen.append(_mapped_checkpoints(finished))

    args = ["resume=" + str(finished), "total_frames=1200", "trainer.eval_interval=200"]
    run(compose_cfg(args), finished, overrides=args, callbacks=[Look()])
    assert len(seen) >= 2 and seen == [[]] * len(seen)
    # The trainer's own resume, from Python.
    trainer = _build(validate_config(load_run_config(finished), saved=True), finished)
    try:
        trainer.resume(finished / "checkpoints" / "last.pt")
        assert trainer.frames == 1200 and _mapped_checkpoints(finished) == []
    finally:
        trainer.close()


@pytest.mark.parametrize("value", ["my group, v2", "proj=1", "1e3", "null", "it's"])
def test_string_values_given_to_rlkit_train_as_a_dict_stay_those_strings(value):
    """``rlkit.train({...})`` wrote strings unquoted: a comma read as a sweep, ``=`` failed to parse,
    ``"1e3"`` was saved as 1000.0 and ``"null"`` as None."""
    from rlkit.cli.api import _override

    cfg = compose_cfg(["logger=wandb", _override("logger.group", value), _override("algo", "a2c")])
    assert cfg.logger.group == value and cfg.algo.name == "a2c"


def test_a_callback_written_for_single_runs_is_refused_by_a_multi_seed_run(tmp_path):
    """A multi-seed run calls on_seed_evaluations: a callback with on_evaluation alone was never
    called (its request to stop ignored, the run trained to its budget)."""
    from rlkit.trainers import TrainerCallback

    class StopNow(TrainerCallback):
        def on_evaluation(self, frames, metrics):
            return True

    cfg = compose_cfg(["num_seeds=2", "total_frames=400", "trainer.eval_episodes=2", "trainer.progress=false",
                       "logger=none"])
    with pytest.raises(ValueError, match="callback StopNow implements on_evaluation only; a multi-seed run"):
        run(cfg, tmp_path / "run", callbacks=[StopNow()])
    assert not (tmp_path / "run").exists()


def test_resuming_an_ordinary_run_with_several_seeds_names_what_the_checkpoint_holds(finished):
    before = snapshot(finished)
    with pytest.raises(CheckpointMismatchError, match=r"it holds one seed \(an ordinary run's checkpoint, num_seeds 1\), "
                                                      r"this run trains seeds \[0, 1\]"):
        resume(finished, "num_seeds=2", "total_frames=1200")
    assert snapshot(finished) == before


def test_slices_that_cannot_be_sampled_are_named(tmp_path):
    """TD(lambda) DQN trains on slices of algo.slice_len consecutive steps: episodes shorter than one
    failed mid-run with the replay's internal message. Several envs stored in blocks (of
    algo.train_frequency steps each) shorter than a slice train: slices run on into the env's next block."""
    import rlkit

    base = {"value_estimator": "td_lambda", "trainer.progress": False, "logger": "none", "total_frames": 400}
    rlkit.train({**base, "algo.num_envs": 2, "algo.train_frequency": 4, "algo.slice_len": 8,
                 "algo.learning_starts": 40}, output_dir=tmp_path / "a")
    assert "end: budget done at 400 frames, 46 updates" in (tmp_path / "a" / "train.log").read_text()
    rlkit.train({**base, "algo.learning_starts": 0, "algo.train_frequency": 8, "algo.slice_len": 8},
                output_dir=tmp_path / "c")  # (a first batch as long as a slice: no warm-up needed)
    with pytest.raises(ConfigError, match=r"the replay holds no 40 consecutive steps of one episode \(slice_len=40\): "
                                          r"the env's episodes, or the steps collected before the first update"):
        # (the corridor's episodes last 30 steps at most)
        rlkit.train({**base, "env": "gym", "env.id": "examples.corridor:Corridor-v0", "algo.slice_len": 40,
                     "algo.learning_starts": 100}, output_dir=tmp_path / "b")
    # Any failure ends train.log with an end: line (its own kinds did before; others left none).
    last = (tmp_path / "b" / "train.log").read_text().strip().splitlines()[-1]
    assert "end: failed at 100 frames" in last and "ConfigError: at frame 100 the replay holds no 40" in last


@pytest.mark.parametrize(("edit", "key"), [("seed: 0", "seed"), ("gamma: 0.99", "value_estimator.gamma"),
                                           ("lr: 0.00025", "algo.optim.lr")])
def test_a_config_yaml_edited_by_hand_in_a_key_the_checkpoint_restores_is_refused(finished, edit, key):
    """The resume checked only the command line against config.yaml: an edited file was accepted and
    recorded (train.log said seed 7) while the checkpoint's values trained on."""
    config = finished / "config.yaml"
    text = config.read_text()
    assert edit in text
    config.write_text(text.replace(edit, edit.split(":")[0] + (": 7" if key == "seed" else ": 0.5"), 1))
    before = snapshot(finished)
    with pytest.raises(ConfigError, match=rf"config.yaml has {key}=.*, but the run trained with .*: was the file edited\?"):
        resume(finished, "total_frames=1200")
    assert snapshot(finished) == before
    config.write_text(text)  # put back: the resume goes on
    resume(finished, "total_frames=1200")
    assert final_state(finished)["frames"] == 1200


def test_a_resume_override_equal_to_the_runs_value_is_not_taken_for_an_edited_file(finished):
    """A null added to a restored section is the value the run had (missing): accepted by the
    command-line check, it must not be reported as an edit of config.yaml."""
    resume(finished, "total_frames=1200", "+algo.optim.weight_decay=null")
    assert final_state(finished)["frames"] == 1200


def test_the_wandb_runs_of_a_multi_seed_run_are_named_after_it_and_grouped_by_it(tmp_path, fake_wandb):
    """Every multi-seed run's W&B runs were named seed_0, seed_1, ... with no group: one project's
    runs could not be told apart."""
    run_dir = tmp_path / "12-00-00_dqn_CartPole_s4_ab12cd"
    base = [*ALGO["dqn"], *TINY, "seed=4", "num_seeds=2", "logger=wandb"]
    train(run_dir, [*base, "total_frames=400"])
    resume(run_dir, "total_frames=600")  # (offline: each segment its own W&B run, named alike)
    train(tmp_path / "grouped", [*base, "total_frames=400", "logger.group=mine"])
    named = [(r.init_kwargs["name"], r.init_kwargs["group"], Path(r.init_kwargs["dir"]).name) for r in fake_wandb]
    parent = run_dir.name
    assert named == [(f"{parent}_s4", parent, "seed_4"), (f"{parent}_s5", parent, "seed_5")] * 2 + [
        ("grouped_s4", "mine", "seed_4"), ("grouped_s5", "mine", "seed_5")]
    train(tmp_path / "one", [*ALGO["dqn"], *TINY, "total_frames=400", "logger=wandb"])  # an ordinary run: as before
    assert (fake_wandb[-1].init_kwargs["name"], fake_wandb[-1].init_kwargs["group"]) == ("one", None)


def test_numbers_given_as_strings_are_saved_as_the_numbers_the_run_used(tmp_path):
    """num_seeds='2' seed='1' trained seeds 1 and 2 but config.yaml and .hydra/config.yaml saved the
    strings; the run resumes (the checkpoint records the same numbers)."""
    from omegaconf import OmegaConf

    run_dir = tmp_path / "run"
    args = [*ALGO["dqn"], *TINY, "num_seeds='2'", "seed='1'", "total_frames='400'", "value_estimator.gamma='0.98'"]
    cfg = compose_cfg(args)
    assert cfg.seed == "1" and cfg.num_seeds == "2"
    run(cfg, run_dir, overrides=args, provenance={"config.yaml": OmegaConf.to_yaml(cfg)})
    for path in (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml", run_dir / "seed_2" / "config.yaml"):
        saved = OmegaConf.load(path)
        assert (saved.seed, saved.total_frames, saved.value_estimator.gamma) == (2 if "seed_2" in str(path) else 1, 400,
                                                                                 0.98)
        assert saved.num_seeds == (1 if "seed_2" in str(path) else 2) and saved.env.target_return == "auto", path
    resume(run_dir, "total_frames=800")
    assert final_state(run_dir)["frames"] == 800


@pytest.mark.parametrize("num_seeds", [1, 2, 4])
def test_resuming_a_multi_seed_run_with_another_num_seeds_names_the_seeds(tmp_path, num_seeds):
    """num_seeds=1 said "the checkpoint has no a replay_buffer, this run has one" (A2C: a parameter
    shape mismatch) where 2 or 4 said that seed and num_seeds cannot change on resume."""
    run_dir = tmp_path / "run"
    train(run_dir, [*ALGO["a2c"], *TINY, "num_seeds=3", "total_frames=400"])
    before = snapshot(run_dir)
    trains = "seed 0 alone \\(num_seeds 1\\)" if num_seeds == 1 else re.escape(str(list(range(num_seeds))))
    with pytest.raises(CheckpointMismatchError, match=rf"last\.pt does not belong to this run: it holds seeds \[0, 1, 2\], "
                                                      rf"this run trains (seeds )?{trains} \(seed and num_seeds cannot "
                                                      r"change on resume\)$"):
        resume(run_dir, f"num_seeds={num_seeds}", "total_frames=800")
    assert snapshot(run_dir) == before


def test_rlkit_train_takes_callbacks_and_refuses_hydra_s_run_dir(tmp_path):
    """The library entry had no way to pass a TrainerCallback (README "Library use"), and it ignored
    hydra.run.dir without a word, writing the run under outputs/."""
    import rlkit
    from rlkit.trainers import TrainerCallback

    seen: list[int] = []

    class StopAtFirst(TrainerCallback):
        def on_evaluation(self, frames, metrics):
            seen.append(frames)
            return True

    common = {"total_frames": 2000, "trainer.eval_interval": 400, "trainer.eval_episodes": 2,
              "trainer.progress": False, "logger": "none"}
    result = rlkit.train(common, output_dir=tmp_path / "run", callbacks=[StopAtFirst()])
    assert seen == [400] and result.agent.frames == 400
    with pytest.raises(ConfigError, match=r"^hydra.run.dir='elsewhere': rlkit.train writes the run into output_dir="):
        rlkit.train({**common, "hydra.run.dir": "elsewhere"}, output_dir=tmp_path / "other")
    assert not (tmp_path / "other").exists() and not (tmp_path / "elsewhere").exists()
    for mapping in ({"hydra.run": {"dir": "x"}}, {"hydra": {"run": {"dir": "x"}}}):  # (the mapping forms too)
        with pytest.raises(ConfigError, match=r"rlkit.train writes the run into output_dir="):
            rlkit.train({**common, **mapping}, output_dir=tmp_path / "other")
    assert not (tmp_path / "other").exists()



def test_rlkit_train_refuses_arguments_of_the_wrong_kind_in_one_line_before_anything(tmp_path, monkeypatch):
    """``callbacks=[print]`` trained, then failed at the first evaluation with an AttributeError,
    leaving a started run; ``rlkit.train(5)`` and ``output_dir=5`` were raw TypeErrors."""
    import rlkit
    from rlkit.trainers import TrainerCallback

    monkeypatch.chdir(tmp_path)
    common = {"total_frames": 200, "trainer.progress": False, "logger": "none"}
    cases = [
        (dict(overrides=5), r"^overrides=5: give a list of key=value strings or a dict$"),
        (dict(overrides=common, output_dir=5), r"^output_dir=5: give a path \(a str or pathlib.Path\)"),
        (dict(overrides=common, output_dir=tmp_path / "run", callbacks=[print]),
         r"^callbacks\[0\]=<built-in function print> is not a trainer callback: give objects of a "
         r"rlkit\.trainers\.TrainerCallback subclass"),
        (dict(overrides=common, output_dir=tmp_path / "run", callbacks=print),
         r"^callbacks=<built-in function print>: give a list of rlkit\.trainers\.TrainerCallback objects$"),
        (dict(overrides=common, output_dir=tmp_path / "run", callbacks=[TrainerCallback]),
         r"^callbacks\[0\]=TrainerCallback is a class: give an instance of it \(TrainerCallback\(\.\.\.\)\)$"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            rlkit.train(**kwargs)
    assert sorted(tmp_path.iterdir()) == []
    with pytest.raises(RunDirError, match=r"^run=5: give the path \(a str or pathlib.Path\) of a run directory"):
        rlkit.load_agent(5)

# -- a resume reads the run's files before it touches any (README "Resume") -------------------------
def _lock_as_trained(run_dir: Path) -> Path:
    """The run's lock file with bytes and times of its own, which a claim would change."""
    lock = run_dir / ".rlkit.lock"
    lock.write_bytes(b"pid 1 on the machine that trained it\n")
    os.utime(lock, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    return lock


def _damage(path: Path, line: int, edit) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = edit(lines[line - 1])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(("name", "line", "edit", "message"), [
    ("episodes.csv", 5, lambda _: "12x,oops", r"episodes\.csv line 5: frame '12x' is not an integer"),
    ("episodes.csv", 3, lambda text: text.rsplit(",", 1)[0], r"episodes\.csv line 3: it has 2 cells, the header has 3"),
    ("metrics.csv", 1, lambda text: "S" + text[1:], r"metrics\.csv line 1: the header starts with 'Step', expected "
                                                     r"'step'"),
    ("metrics.csv", 4, lambda text: ",".join([*text.split(",")[:2], "abc", *text.split(",")[3:]]),
     r"metrics\.csv line 4: \w+ 'abc' is not a number"),
], ids=["episodes-row", "episodes-cells", "metrics-header", "metrics-cell"])
def test_a_damaged_csv_is_refused_in_one_line_before_any_file_changes(finished, name, line, edit, message):
    """A damaged row failed with a traceback (ValueError: invalid literal for int() ... '12x') after
    metrics.csv had been cut back and the lock file rewritten; a renamed header said 'choose another
    run_dir'. Both CSVs are read before the run is claimed: the lock file keeps its bytes and times."""
    _damage(finished / name, line, edit)
    lock = _lock_as_trained(finished)
    before = snapshot(finished)
    with pytest.raises(RunDirError, match=rf"^cannot resume: .*{message}; the file is damaged: repair that line"):
        resume(finished, "total_frames=1200")
    assert snapshot(finished) == before
    assert lock.stat().st_mtime_ns == 1_600_000_000_000_000_000


@pytest.mark.parametrize("num_seeds", [1, 2])
def test_a_complete_run_without_metrics_csv_is_refused_and_changes_nothing(tmp_path, num_seeds):
    """With logger=none nothing told that the closing evaluation was done: a resume of a complete run
    redid it, added .hydra/resume_1/, rewrote last.pt and appended to train.log. The run records
    where it closed (.rlkit.closed); a resume that extends it clears that until it closes again."""
    run_dir = tmp_path / "run"
    train(run_dir, ALGO["dqn"] + TINY + ["total_frames=600", "logger=none", f"num_seeds={num_seeds}"])
    assert not list(run_dir.rglob("metrics.csv"))
    before = snapshot(run_dir)
    with pytest.raises(RunDirError, match=r"is complete: 600 frames of total_frames=600, its closing evaluation done"):
        resume(run_dir)
    assert snapshot(run_dir) == before
    resume(run_dir, "total_frames=800")
    assert (run_dir / ".rlkit.closed").read_text() == "800\n"
    with pytest.raises(RunDirError, match=r"is complete: 800 frames of total_frames=800"):
        resume(run_dir)


def test_a_resume_that_fails_after_its_checks_leaves_the_run_not_closed(tmp_path, monkeypatch):
    """The record of a closed run goes once a resume starts changing the run: a crash before the new
    closing evaluation must leave it to be finished by the next resume, not taken as complete."""
    from rlkit.trainers import Trainer

    run_dir = tmp_path / "run"
    train(run_dir, ALGO["dqn"] + TINY + ["total_frames=600", "logger=none"])

    def crash(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "fit", crash)
    with pytest.raises(KeyboardInterrupt):
        resume(run_dir, "total_frames=800")
    assert not (run_dir / ".rlkit.closed").exists()


def test_a_checkpoint_of_an_abandoned_branch_is_refused_saying_what_to_do(finished):
    """It was refused as '.../abandoned_1/config.yaml does not exist (is .../abandoned_1 an rlkit run
    directory?)'. The run's CSVs hold the branch kept, so the given-up one cannot continue there."""
    from rlkit.run import run_dir_of

    aside = finished / "checkpoints" / "abandoned_1"
    aside.mkdir()
    shutil.copy(finished / "checkpoints" / "last.pt", aside / "step_800.pt")
    before = snapshot(finished)
    for given, shown in ((aside / "step_800.pt", "abandoned_1/step_800.pt"), (aside, "abandoned_1/<file>.pt")):
        args = [f"resume={given}", "total_frames=1200"]
        with pytest.raises(RunDirError, match=rf"^cannot resume: {given} is (in )?a branch given up when resume 1 of "
                                              rf"the run in {finished} rewound it .*python evaluate\.py run={finished} "
                                              rf"checkpoint={re.escape(shown)}\), or continue the run's own branch "
                                              rf"with resume={finished}$"):
            run(compose_cfg(args), finished, overrides=args)
    assert snapshot(finished) == before
    assert run_dir_of(aside / "step_800.pt") == finished  # (evaluate.py run=<that file> finds its run)


def test_a_file_that_is_not_a_checkpoint_is_refused_as_such(tmp_path, finished, capsys):
    """It was refused as '<its folder>/config.yaml does not exist (is <its folder> an rlkit run
    directory?)'; train.py refuses it before Hydra composes anything."""
    from rlkit.cli import resume_group_overrides
    from rlkit.errors import MissingCheckpointError

    note = tmp_path / "afile.txt"
    note.write_text("notes\n")
    args = [f"resume={note}"]
    with pytest.raises(MissingCheckpointError, match=rf"^cannot resume: {note} is not a checkpoint \(checkpoints are "
                                                     r"the \.pt files in <run dir>/checkpoints/\)"):
        run(compose_cfg(args), tmp_path, overrides=args)
    with pytest.raises(SystemExit) as exit_status:
        resume_group_overrides([f"resume={finished / 'config.yaml'}"])
    assert exit_status.value.code == 2
    assert capsys.readouterr().err == (f"rlkit: cannot resume: {finished / 'config.yaml'} is not a checkpoint "
                                       "(checkpoints are the .pt files in <run dir>/checkpoints/): give "
                                       "resume=<run dir> or resume=<run dir>/checkpoints/<file>.pt; the run in "
                                       f"{finished}: resume={finished}\n")


def test_another_run_s_checkpoint_is_named_as_such_not_as_an_edited_config(tmp_path, finished):
    """A seed-1 last.pt put in a seed-0 run was reported as 'config.yaml has seed=0 ... was the file
    edited?'."""
    other = tmp_path / "seed1"
    train(other, ALGO["dqn"] + TINY + ["total_frames=400", "seed=1"])
    shutil.copy(other / "checkpoints" / "last.pt", finished / "checkpoints" / "last.pt")
    before = snapshot(finished)
    with pytest.raises(CheckpointMismatchError, match=r"last\.pt looks like another run's: it was saved with seed=1, "
                                                      r"but this run's config\.yaml has seed=0; resume the run it "
                                                      r"belongs to, or put this run's own checkpoint back"):
        resume(finished, "total_frames=1200")
    assert snapshot(finished) == before


def test_an_off_policy_run_cannot_move_to_another_kind_of_device(finished, tmp_path):
    """A replay buffer samples with a generator on the run's device, and a CUDA generator's state
    does not fit a CPU one: the resume said only that the sampler's state was of another kind. (A
    run trained on CUDA is stood in for by its config.yaml: the check reads no checkpoint.)"""
    config = finished / "config.yaml"
    config.write_text(config.read_text().replace("device: cpu\n", "device: cuda\n"))
    before = snapshot(finished)
    with pytest.raises(ConfigError, match=r"^device=cpu cannot change when resuming this run \(it trained on cuda\): "
                                          r"its replay buffer samples with a generator on cuda, whose random stream "
                                          r"cannot move to cpu; resume it with device=cuda, or evaluate/export its "
                                          r"checkpoint on any device$"):
        resume(finished, "total_frames=1200", "device=cpu")
    assert snapshot(finished) == before
    on_policy = tmp_path / "a2c"
    train(on_policy, ALGO["a2c"] + TINY + ["total_frames=400"])
    saved = OmegaConf.load(on_policy / "config.yaml")
    _check_device_kind(saved, OmegaConf.merge(saved, {"device": "cuda"}))  # (no replay: nothing to refuse)
    _check_device_kind(OmegaConf.merge(saved, {"device": "cuda:0"}), OmegaConf.merge(saved, {"device": "cuda:1"}))


def test_an_off_policy_run_whose_budget_ends_before_its_first_update_is_warned_about(tmp_path, caplog):
    """A budget cut down from an experiment's (dqn_atari warms up for 80,000 frames) trained nothing
    and said only its return; an on-policy run updates from its first batch."""
    with caplog.at_level("WARNING", logger="rlkit"):
        train(tmp_path / "dqn", ["total_frames=200", "algo.learning_starts=201", "trainer.eval_episodes=1",
                                 "trainer.progress=false", "logger=none"])
        train(tmp_path / "at", ["total_frames=200", "algo.learning_starts=200", "trainer.eval_episodes=1",
                                "trainer.progress=false", "logger=none"])  # (one update, after the last batch)
        train(tmp_path / "a2c", ["algo=a2c", "total_frames=80", "trainer.eval_episodes=1", "trainer.progress=false",
                                 "logger=none"])
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "algo.learning_starts=201 > total_frames=200: the run collects without a single update (lower "
        "algo.learning_starts, or train longer)"]
    ends = [(tmp_path / d / "train.log").read_text().split(" - end: ")[1] for d in ("dqn", "at")]
    assert ends[0].startswith("budget done at 200 frames, 0 updates") and ends[1].startswith("budget done at 200 frames, 1 updates")
