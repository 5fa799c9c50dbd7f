"""Several seeds in one process (``num_seeds``): independence of the seeds, the N = 1 batched run
against the ordinary one, exact resume, non-finite seeds, the stacked kernels and optimiser."""
from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from cuda_marks import DEVICES
from hydra import compose, initialize_config_dir

from rlkit.builders import validate_config
from rlkit.errors import MissingCheckpointError, NotStackableError, RunDirError
from rlkit.factories import build_multiseed_trainer, build_trainer, open_multiseed_outputs, open_outputs
from rlkit.modules import MLP, MinAtarNet, NatureCNN
from rlkit.modules.mlp import stack_seed_parameters_
from rlkit.run import run, seed_everything
from rlkit.trainers import NonFiniteError, load_checkpoint, read_metrics_csv
from rlkit.trainers.multiseed import SEED_END_FILE, MultiSeedTrainer, read_seed_end, seed_views

CONF = str(Path(__file__).resolve().parents[2] / "conf")
TINY = ["trainer.eval_episodes=2", "trainer.progress=false", "trainer.early_stop=false",
        "trainer.log_interval=200", "trainer.eval_interval=400"]
ALGO = {
    "dqn": ["algo=dqn", "algo.learning_starts=200", "algo.batch_size=32", "algo.hidden_sizes=[32]"],
    "c51": ["algo=c51", "algo.learning_starts=200", "algo.batch_size=32", "algo.hidden_sizes=[32]",
            "algo.n_atoms=11"],
    "a2c": ["algo=a2c", "algo.hidden_sizes=[32]", "algo.max_grad_norm=0.5"],
    "minatar": ["experiment=dqn_minatar_breakout", "algo.learning_starts=200", "algo.buffer_size=2000",
                "algo.eps_annealing_frames=600", "algo.target_update_interval=100"],  # conv net, RMSprop
    "a2c_minatar": ["algo=a2c", "env=minatar", "env.game=breakout", "algo.network={_target_: rlkit.modules.MinAtarNet}",
                    "algo.shared_trunk=true", "algo.num_envs=2", "algo.optim._target_=rlkit.optim.RMSpropTF",
                    "algo.max_grad_norm=0.5"],  # a shared conv trunk, TF's RMSprop
}


def settings(algo: str, seed: int, num_seeds: int, frames: int = 1200, extra: tuple[str, ...] = ()):
    overrides = [*ALGO[algo], *TINY, f"total_frames={frames}", f"seed={seed}", f"num_seeds={num_seeds}", *extra]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return validate_config(compose("config", overrides=overrides))


def batched(tmp: Path, algo: str, seed: int, num_seeds: int, **kw) -> tuple[Path, dict]:
    s = settings(algo, seed, num_seeds, **kw)
    trainer = build_multiseed_trainer(s, tmp)
    open_multiseed_outputs(trainer, s, [{} for _ in trainer.seeds])
    try:
        trainer.fit()
    finally:
        trainer.close()
    return tmp, {n: p.detach().clone() for n, p in trainer.loss_module.named_parameters()}


def ordinary(tmp: Path, algo: str, seed: int, extra: tuple[str, ...] = ()) -> tuple[Path, dict]:
    s = settings(algo, seed, 1, extra=extra)
    seed_everything(seed)
    trainer = build_trainer(s, tmp)
    open_outputs(trainer, s, tmp, {})
    try:
        trainer.fit()
    finally:
        trainer.close()
    return tmp, {n: p.detach().clone() for n, p in trainer.loss_module.named_parameters()}


def rows(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "fps"} for row in read_metrics_csv(path)]


@pytest.mark.parametrize(("algo", "extra"), [
    ("dqn", ()), ("c51", ()), ("a2c", ()),
    ("dqn", ("algo.prioritized=true", "algo.double_dqn=true")),  # per-seed priorities
    ("dqn", ("value_estimator=td_lambda", "algo.slice_len=4", "algo.tau=0.05")),  # [N, B, T] slices, soft updates
    ("dqn", ("algo.optim.fused=false",)),  # one optimiser over the stacked tensors
    ("a2c", ("value_estimator=gae", "value_estimator.average_gae=true")),  # per-seed advantage statistics
    ("minatar", ()),  # conv networks, uint8 channels, centred RMSprop
    ("a2c_minatar", ()),
])
def test_a_seed_among_others_is_the_seed_alone_bit_for_bit(tmp_path, algo, extra):
    among, p3 = batched(tmp_path / "three", algo, 0, 3, extra=extra)
    alone, p1 = batched(tmp_path / "one", algo, 1, 1, extra=extra)
    assert (among / "seed_1" / "episodes.csv").read_text() == (alone / "seed_1" / "episodes.csv").read_text()
    assert rows(among / "seed_1" / "metrics.csv") == rows(alone / "seed_1" / "metrics.csv")
    assert p3.keys() == p1.keys()
    for name in p1:
        assert torch.equal(p3[name][1], p1[name][0]), name


def test_a_continuous_seed_among_others_is_the_seed_alone_up_to_the_last_bits(tmp_path):
    """torch's CPU kernels of transcendental functions (here the softplus of the policy's scale)
    compute a tensor's elements in a vectorised body and its last ones in a scalar tail, which round
    differently; with N seeds the tensor is N times longer, so an element of seed k can fall in the
    body among others and in the tail alone. Pendulum's 1-dim actions over 8 envs make per-seed
    blocks that are not a multiple of the vector width (CartPole's are, hence the bit-for-bit test
    above). Measured over this budget: the same episodes, parameters within 6e-8."""
    extra = ("env=Pendulum", "algo.distribution=tanh_normal", "algo.entropy_coeff=0")
    among, p3 = batched(tmp_path / "three", "a2c", 0, 3, extra=extra)
    alone, p1 = batched(tmp_path / "one", "a2c", 1, 1, extra=extra)
    assert (among / "seed_1" / "episodes.csv").read_text() == (alone / "seed_1" / "episodes.csv").read_text()
    for name in p1:
        torch.testing.assert_close(p3[name][1], p1[name][0], rtol=0, atol=1e-6)


@pytest.mark.parametrize(("algo", "extra"), [
    ("dqn", ()), ("c51", ()), ("a2c", ()),
    ("dqn", ("trainer.eval_epsilon=0.5",)),  # the batched evaluator's ε draws are the ordinary one's
])
def test_one_batched_seed_is_the_ordinary_run_up_to_float_rounding(tmp_path, algo, extra):
    """The batched network call (baddbmm) and the per-seed loss reduction round differently from
    the ordinary run's addmm and fused mean: the same episodes over this budget, parameters within
    1e-5 (measured: below 3e-7)."""
    alone, p1 = batched(tmp_path / "one", algo, 1, 1, extra=extra)
    plain, po = ordinary(tmp_path / "plain", algo, 1, extra=extra)
    assert (alone / "seed_1" / "episodes.csv").read_text() == (plain / "episodes.csv").read_text()
    for name in po:
        assert torch.allclose(p1[name][0], po[name], atol=1e-5, rtol=0), name
    # The logged rows: the same columns at the same frames, the losses and norms equal up to that rounding.
    batched_rows, plain_rows = rows(alone / "seed_1" / "metrics.csv"), rows(plain / "metrics.csv")
    assert [sorted(r) for r in batched_rows] == [sorted(r) for r in plain_rows]
    assert [r["step"] for r in batched_rows] == [r["step"] for r in plain_rows]
    for got, want in zip(batched_rows, plain_rows):
        for key, value in want.items():
            assert got[key] == (value if value is None else pytest.approx(value, rel=1e-4, abs=1e-6)), (got["step"], key)


@pytest.mark.parametrize("device", DEVICES)
def test_the_global_generators_are_where_they_were_after_a_multi_seed_build(tmp_path, device):
    """Each seed's build draws from the global generators; the run's own draws after the build
    (none today, but a callback's or a user's) must not depend on how many seeds were built."""
    import random

    import numpy as np

    def draws() -> tuple:
        cuda = (torch.rand((), device=device).item(),) if device == "cuda" else ()
        return random.random(), np.random.rand(), torch.rand(()).item(), *cuda

    seed_everything(7)
    before = draws()
    seed_everything(7)
    trainer = build_multiseed_trainer(settings("dqn", 0, 2, extra=(f"device={device}",)), tmp_path)
    trainer.close()
    assert draws() == before


def test_the_seeds_differ(tmp_path):
    out, params = batched(tmp_path, "dqn", 0, 2, frames=600)
    assert (out / "seed_0" / "episodes.csv").read_text() != (out / "seed_1" / "episodes.csv").read_text()
    weight = next(iter(params.values()))
    assert not torch.equal(weight[0], weight[1])


def _train(run_dir: Path, overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return run(cfg, run_dir, overrides=overrides)


@pytest.mark.parametrize("algo", ["dqn", "a2c"])
def test_resume_of_a_multi_seed_run_is_exact(tmp_path, algo):
    base = [*ALGO[algo], *TINY, "seed=3", "num_seeds=2"]
    _train(tmp_path / "full", [*base, "total_frames=1200"])
    _train(tmp_path / "cut", [*base, "total_frames=700"])
    args = [f"resume={tmp_path / 'cut'}", "total_frames=1200"]
    _train(tmp_path / "cut", args)
    for seed in (3, 4):
        full, cut = tmp_path / "full" / f"seed_{seed}", tmp_path / "cut" / f"seed_{seed}"
        assert (full / "episodes.csv").read_text() == (cut / "episodes.csv").read_text()
        assert rows(full / "metrics.csv") == rows(cut / "metrics.csv")
        assert "seed: %d\nnum_seeds: 1\n" % seed in (cut / "config.yaml").read_text()
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")["loss_module"]
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["loss_module"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _poison(trainer, k: int) -> None:
    with torch.no_grad():
        trainer.params[0][k].fill_(float("nan"))


def test_a_non_finite_seed_stops_the_run_naming_it(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="rlkit")
    s = settings("dqn", 5, 2, frames=600)
    trainer = build_multiseed_trainer(s, tmp_path)
    open_multiseed_outputs(trainer, s, [{}, {}])
    _poison(trainer, 1)
    with pytest.raises(NonFiniteError, match="seed 6: non-finite loss"):
        trainer.fit()
    trainer.close()
    # train.log's end line has an ordinary run's fields (it had neither the updates nor the wall time)
    end = [r.getMessage() for r in caplog.records if r.getMessage().startswith("end: ")]
    assert len(end) == 1 and end[0].startswith("end: non-finite at 200 frames, 0 updates, wall "), end
    assert "s (non-finite values at update 1 (frame 200): seed 6: non-finite loss " in end[0]
    assert end[0].endswith("; greedy eval return by seed: seed 5 (stopped) no evaluation, seed 6 (stopped) no evaluation")


def test_a_seed_whose_gradient_norm_overflows_is_named_so(tmp_path):
    """Finite gradients whose norm overflows float32: the message said "non-finite gradient"."""
    s = settings("dqn", 5, 2, frames=600)
    trainer = build_multiseed_trainer(s, tmp_path)
    open_multiseed_outputs(trainer, s, [{}, {}])

    def huge_for_seed_6(grad):
        grad = grad.clone()
        grad[1] = 1e30
        return grad

    trainer.params[0].register_hook(huge_for_seed_6)
    with pytest.raises(NonFiniteError) as err:
        trainer.fit()
    trainer.close()
    assert str(err.value).startswith("non-finite values at update 1 (frame 200): seed 6: gradient norm overflowed "
                                     "(inf), every gradient is finite; the last good checkpoint is ")


def test_a_non_finite_seed_can_be_dropped(tmp_path):
    s = settings("dqn", 5, 2, frames=600, extra=("trainer.drop_non_finite_seeds=true",))
    trainer = build_multiseed_trainer(s, tmp_path, drop_non_finite=True)
    open_multiseed_outputs(trainer, s, [{}, {}])
    _poison(trainer, 1)
    result = trainer.fit()
    trainer.close()
    assert [out.status for out in trainer.outputs] == ["running", "dropped"]
    assert result[5] and read_metrics_csv(tmp_path / "seed_5" / "metrics.csv")[-1]["step"] == 600
    assert all(row["step"] < 600 for row in read_metrics_csv(tmp_path / "seed_6" / "metrics.csv"))
    # How each seed ended is in its directory (what reproduce.py reads): the seed that trained to the
    # end has no record; the dropped one says when and why.
    assert read_seed_end(tmp_path / "seed_5") is None and not (tmp_path / "seed_5" / SEED_END_FILE).exists()
    end = read_seed_end(tmp_path / "seed_6")
    assert end is not None
    assert (end["seed"], end["status"], end["reason"], end["frames"]) == (6, "dropped", "non_finite", 200)
    assert end["message"].startswith("dropped at frame 200: non-finite values at update 1 (frame 200): seed 6: "
                                     "non-finite loss")


def test_the_gradient_norms_of_an_update_that_left_no_gradient_lie_with_the_parameters():
    """Where no parameter got a gradient, the (zero) norms are made on the parameters' device, as
    the losses they are stacked with (made on the CPU, an update on CUDA failed there). Parameters
    on the meta device stand in for parameters on another device than the CPU."""
    trainer = SimpleNamespace(num_seeds=3, params=[torch.zeros(3, 2, device="meta", requires_grad=True)])
    norms = MultiSeedTrainer._grad_norms(trainer)  # type: ignore[arg-type]
    assert norms.device == torch.device("meta") and norms.shape == (3,)


def test_a_seed_end_record_that_is_not_one_is_named(tmp_path):
    (tmp_path / SEED_END_FILE).write_text("{}")
    with pytest.raises(ValueError, match=r"end.json is not a seed's end record \(expected JSON with status"):
        read_seed_end(tmp_path)


def _record_ends(trainer) -> dict[int, tuple[str, str]]:
    ends: dict[int, tuple[str, str]] = {}
    for out in trainer.outputs:
        def log_end(reason, message, *, step, _seed=out.seed):
            assert _seed not in ends, "log_end twice"
            ends[_seed] = (reason, message)
        out.logger.log_end = log_end
    return ends


def test_a_callback_stops_every_seed_of_a_batched_run(tmp_path, caplog):
    """Outside the tuner: ``on_seed_evaluations`` sees each seed's metrics by seed number, and
    ``True`` ends the run at that evaluation, every seed told why, with a checkpoint there."""
    from rlkit.trainers import TrainerCallback

    caplog.set_level(logging.INFO, logger="rlkit")

    class StopAtSecond(TrainerCallback):
        def __init__(self) -> None:
            self.seen: list[tuple[int, list[int]]] = []

        def on_seed_evaluations(self, frames, by_seed):
            self.seen.append((frames, sorted(by_seed)))
            return len(self.seen) == 2

    hook = StopAtSecond()
    s = settings("dqn", 3, 2, frames=2000)
    trainer = build_multiseed_trainer(s, tmp_path, callbacks=[hook])
    open_multiseed_outputs(trainer, s, [{}, {}])
    ends = _record_ends(trainer)
    trainer.fit()
    trainer.close()
    assert hook.seen == [(400, [3, 4]), (800, [3, 4])]  # eval_interval 400; no closing evaluation asked more
    assert trainer.frames == 800 and [out.status for out in trainer.outputs] == ["running", "running"]
    assert {seed: reason for seed, (reason, _) in ends.items()} == {3: "callback", 4: "callback"}
    # train.log's end line said each seed had its "budget done" (a pruned tuning trial's seeds, say)
    end = [r.getMessage() for r in caplog.records if r.getMessage().startswith("end: ")]
    assert len(end) == 1 and end[0].startswith("end: stopped by a callback at 800 frames, "), end
    assert "seed 3 (stopped by a callback) " in end[0] and "seed 4 (stopped by a callback) " in end[0]
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["frames"] == 800
    for seed in (3, 4):
        assert read_metrics_csv(tmp_path / f"seed_{seed}" / "metrics.csv")[-1]["step"] == 800


def test_a_dropped_seed_with_prioritized_replay_leaves_the_other_seed_as_it_is_alone(tmp_path):
    per = ("algo.prioritized=true",)
    s = settings("dqn", 5, 2, frames=600, extra=(*per, "trainer.drop_non_finite_seeds=true"))
    trainer = build_multiseed_trainer(s, tmp_path / "two", drop_non_finite=True)
    open_multiseed_outputs(trainer, s, [{}, {}])
    ends = _record_ends(trainer)
    update = trainer._optimise

    def poisoned_after_five_updates(sample):  # (so that the optimiser has momentum for that seed)
        if trainer.updates == 5:
            _poison(trainer, 1)
        update(sample)

    trainer._optimise = poisoned_after_five_updates
    trainer.fit()  # the dropped seed's non-finite TD errors are not written as its priorities
    trainer.close()
    assert [out.status for out in trainer.outputs] == ["running", "dropped"]
    assert ends[5] == ("budget", "done: 600 frames")
    assert ends[6][0] == "non_finite" and "seed 6: non-finite loss" in ends[6][1]
    together = {n: p.detach().clone() for n, p in trainer.loss_module.named_parameters()}
    alone, p1 = batched(tmp_path / "one", "dqn", 5, 1, frames=600, extra=per)
    assert (tmp_path / "two" / "seed_5" / "episodes.csv").read_text() == (alone / "seed_5" / "episodes.csv").read_text()
    assert all(torch.equal(together[name][0], p1[name][0]) for name in p1)
    # No update, nor the optimiser's momentum, moved the dropped seed's parameters.
    frozen = trainer._frozen[1]
    for p, f in zip(trainer.params, frozen, strict=True):
        torch.testing.assert_close(p[1], f, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("device", DEVICES)
def test_a_resume_puts_the_stopped_seeds_frozen_parameters_where_the_parameters_are(tmp_path, device):
    """A checkpoint loads on the CPU, and every update copies a stopped seed's frozen parameters back
    into the parameters: they go to the parameters' device on resume (left on the CPU, a run on CUDA
    made a blocking host-to-device copy per tensor per update). On the CPU, parameters on the meta
    device stand in for parameters on another device than the checkpoint's."""
    trainer = build_multiseed_trainer(settings("dqn", 0, 2, extra=(f"device={device}",)), tmp_path)
    state = trainer.state_dict()
    frozen = [p[1].detach().to("cpu", copy=True) + 1 for p in trainer.params]  # (as a checkpoint loads)
    state["frozen"] = {"1": frozen}
    trainer.load_state_dict(state)
    loaded = trainer._frozen[1]
    assert [t.device for t in loaded] == [p.device for p in trainer.params]
    assert all(torch.equal(t.cpu(), f) for t, f in zip(loaded, frozen, strict=True))
    loaded[0].zero_()  # (its own copy: the state stays as it was)
    assert bool(frozen[0].ne(0).any())
    if device == "cpu":
        trainer.params = [p.detach().to("meta") for p in trainer.params]
        trainer.load_state_dict(state)
        assert all(t.device == torch.device("meta") for t in trainer._frozen[1])
    trainer.close()


def test_a_seed_dropped_in_a_checkpoint_from_before_freezing_is_frozen_on_resume(tmp_path):
    """Checkpoints written before dropped seeds were frozen hold no frozen parameters nor
    transform statistics for them: resuming one freezes the seed as the checkpoint holds it."""
    extra = ("trainer.drop_non_finite_seeds=true", "env.transforms=[{name: normalize}]")
    s = settings("dqn", 5, 2, frames=600, extra=extra)
    trainer = build_multiseed_trainer(s, tmp_path / "cut", drop_non_finite=True)
    open_multiseed_outputs(trainer, s, [{}, {}])
    update = trainer._optimise

    def poisoned_after_five_updates(sample):
        if trainer.updates == 5:
            with torch.no_grad():  # one weight only: the other tensors keep Adam momentum to move them
                trainer.params[0][1, 0, 0] = float("nan")
        update(sample)

    trainer._optimise = poisoned_after_five_updates
    trainer.fit()
    trainer.close()
    old = trainer.state_dict()
    old["frozen"] = {}  # as written before dropped seeds were frozen
    old["outputs"][1]["frozen_transforms"] = None
    at_checkpoint = [p[1].clone() for p in trainer.params]
    stats_at_checkpoint = copy.deepcopy(trainer.collector.collectors[1].env.transforms[0].state_dict())

    s = settings("dqn", 5, 2, frames=1200, extra=extra)
    resumed = build_multiseed_trainer(s, tmp_path / "cut", drop_non_finite=True)
    resumed.load_state_dict(old)
    open_multiseed_outputs(resumed, s, [{}, {}], resume_state=old)
    resumed.fit()
    resumed.close()
    assert resumed.frames == 1200 and [out.status for out in resumed.outputs] == ["running", "dropped"]
    for p, f in zip(resumed.params, at_checkpoint, strict=True):
        torch.testing.assert_close(p[1], f, rtol=0, atol=0, equal_nan=True)
    kept = resumed.outputs[1].frozen_transforms[0]["obs_rms"]
    assert torch.equal(kept["mean"], stats_at_checkpoint["obs_rms"]["mean"])


def test_a_run_whose_seeds_are_all_dropped_is_a_non_finite_error(tmp_path, caplog):
    """train.log's lines: one warning naming both seeds (it said "seed 5 dropped, no seed is left" and
    then the same of seed 6), and an end line with its reason, as an ordinary run's."""
    caplog.set_level(logging.INFO, logger="rlkit")
    s = settings("dqn", 5, 2, frames=600, extra=("trainer.drop_non_finite_seeds=true",))
    trainer = build_multiseed_trainer(s, tmp_path, drop_non_finite=True)
    open_multiseed_outputs(trainer, s, [{}, {}])
    trainer.save()  # the last good checkpoint, every seed training
    _poison(trainer, 0)
    _poison(trainer, 1)
    ends = _record_ends(trainer)
    console: list[str] = []
    trainer.progress.log_end = lambda reason, message, *, step: console.append(reason)
    with pytest.raises(NonFiniteError, match=r"^every seed was dropped for non-finite values, the last at update 1 "
                                             r"\(frame 200\): seed 5: non-finite loss .*, seed 6: non-finite loss .*; "
                                             r"the last good checkpoint is .*last.pt$"):
        trainer.fit()
    trainer.close()
    # The last good checkpoint is kept, as a run that does not drop seeds keeps it (it was overwritten
    # with every seed dropped, which a resume with a fix could not train on).
    kept = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert kept["frames"] == 0 and [out["status"] for out in kept["outputs"]] == ["running", "running"]
    # Each seed's end.json says it was dropped (reports and reproduce.py took them for unfinished seeds and
    # resumed them into the same failure); a resume from the kept checkpoint trains them and removes the files.
    assert [read_seed_end(tmp_path / f"seed_{seed}")["status"] for seed in (5, 6)] == ["dropped", "dropped"]
    assert {seed: reason for seed, (reason, _) in ends.items()} == {5: "non_finite", 6: "non_finite"}
    assert console == ["non_finite"]  # once
    dropped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "dropped" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].endswith("; seeds 5, 6 dropped, no seed is left"), dropped
    end = [r.getMessage() for r in caplog.records if r.getMessage().startswith("end: ")]
    assert len(end) == 1 and end[0].startswith("end: non-finite at 200 frames, 0 updates, wall "), end
    assert end[0].endswith("by seed: seed 5 (dropped: non-finite) no evaluation, seed 6 (dropped: non-finite) no evaluation")


def test_a_seed_stopped_early_keeps_the_statistics_it_stopped_with(tmp_path, monkeypatch):
    from rlkit.agent import load_agent

    _first_seed_reaches_the_target_at_frame_400(monkeypatch)
    overrides = [*ALGO["a2c"], *TINY, "trainer.early_stop=true", "env.transforms=[{name: normalize}]", "seed=3",
                 "num_seeds=2", "total_frames=1200"]
    _train(tmp_path, overrides)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    stopped, running = state["outputs"]
    assert stopped["status"] == "stopped" and stopped["ended"][0] == 400 and running["status"] == "running"
    at_stop = stopped["frozen_transforms"][0]["obs_rms"]["mean"]
    live = state["collector"]["collectors"][0]["env"]["transforms"][0]["obs_rms"]["mean"]
    assert not torch.equal(at_stop, live)  # its env stepped on in lockstep with the other seed's
    agent = load_agent(tmp_path / "seed_3")
    assert torch.equal(torch.from_numpy(agent.transforms[0].obs_rms.mean), at_stop)
    assert read_metrics_csv(tmp_path / "seed_3" / "metrics.csv")[-1]["step"] == 400


def _first_seed_reaches_the_target_at_frame_400(monkeypatch) -> None:
    from rlkit.trainers.multiseed import MultiSeedTrainer

    original = MultiSeedTrainer._evaluate

    def evaluate(self, which):
        results = original(self, which)
        if self.frames == 400 and 0 in results:
            results[0]["eval_return"] = 1e9
        return results

    monkeypatch.setattr(MultiSeedTrainer, "_evaluate", evaluate)


def test_resume_after_a_seed_stopped_is_exact(tmp_path, monkeypatch):
    _first_seed_reaches_the_target_at_frame_400(monkeypatch)
    base = [*ALGO["a2c"], *TINY, "trainer.early_stop=true", "env.transforms=[{name: normalize}]", "seed=3",
            "num_seeds=2"]
    _train(tmp_path / "full", [*base, "total_frames=1200"])
    _train(tmp_path / "cut", [*base, "total_frames=700"])
    _train(tmp_path / "cut", [f"resume={tmp_path / 'cut'}", "total_frames=1200"])
    for seed in (3, 4):
        full, cut = tmp_path / "full" / f"seed_{seed}", tmp_path / "cut" / f"seed_{seed}"
        assert (full / "episodes.csv").read_text() == (cut / "episodes.csv").read_text()
        assert rows(full / "metrics.csv") == rows(cut / "metrics.csv")
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert all(torch.equal(a["loss_module"][k], b["loss_module"][k]) for k in a["loss_module"])
    assert a["outputs"][0]["status"] == b["outputs"][0]["status"] == "stopped"
    assert torch.equal(a["outputs"][0]["frozen_transforms"][0]["obs_rms"]["mean"],
                       b["outputs"][0]["frozen_transforms"][0]["obs_rms"]["mean"])


def _ends(run_dir: Path) -> dict[int, str | None]:
    return {seed: (read_seed_end(run_dir / f"seed_{seed}") or {}).get("status") for seed in (3, 4)}


def test_a_resume_trains_stopped_seeds_on_where_their_ordinary_runs_would(tmp_path):
    """Every seed stopped at the target: a resume with the same settings has nothing to train and is
    refused before anything is written (it ran nothing and ended "target reached"); with early stop
    off, the seeds train on to the new budget, as an ordinary run resumed so does."""
    base = [*ALGO["dqn"], *TINY, "trainer.early_stop=true", "env.target_return=1", "seed=3", "num_seeds=2",
            "total_frames=2000"]
    _train(tmp_path, base)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["frames"] == 400 and [out["status"] for out in state["outputs"]] == ["stopped", "stopped"]
    assert _ends(tmp_path) == {3: "stopped", 4: "stopped"}
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(RunDirError, match=r"^run .*: every seed has ended \(seed 3 stopped at frame 400, greedy eval "
                                          r"return .* >= target 1; seed 4 stopped at frame 400, .*\); nothing to "
                                          r"resume \(a stopped seed trains on with trainer.early_stop=false or an "
                                          r"env.target_return above its last return\)$"):
        _train(tmp_path, [f"resume={tmp_path}"])
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files  # nothing written
    _train(tmp_path, [f"resume={tmp_path}", "trainer.early_stop=false", "total_frames=1200"])
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["frames"] == 1200 and [out["status"] for out in state["outputs"]] == ["running", "running"]
    assert state["frozen"] == {} and _ends(tmp_path) == {3: None, 4: None}
    for seed in (3, 4):
        assert read_metrics_csv(tmp_path / f"seed_{seed}" / "metrics.csv")[-1]["step"] == 1200
    assert "seed 3 trains on from frame 400: it stopped at the target at frame 400, trainer.early_stop is off " \
           "now" in (tmp_path / "train.log").read_text()



def test_the_console_counts_the_seeds_by_how_they_ended(tmp_path, capsys):
    """It said "seeds 3..4 at frame 400: 2 reached the target", which read as seed 2."""
    _train(tmp_path, [*ALGO["dqn"], *TINY, "trainer.early_stop=true", "env.target_return=1", "seed=3", "num_seeds=2",
                      "total_frames=2000", "trainer.progress=true"])
    assert "seeds 3..4, training ended at frame 400: 2 seeds reached the target\n" in capsys.readouterr().err

def test_a_raised_target_reopens_the_seeds_below_it_only(tmp_path, monkeypatch):
    """Seed 3 stopped at 1e9, seed 4 at its real return: with the target raised to 50 (early stop
    still on) seed 4 trains on and seed 3, which its ordinary run would stop again, stays stopped
    with the parameters it stopped with."""
    _first_seed_reaches_the_target_at_frame_400(monkeypatch)
    base = [*ALGO["dqn"], *TINY, "trainer.early_stop=true", "env.target_return=1", "seed=3", "num_seeds=2",
            "total_frames=1200"]
    _train(tmp_path, base)
    before = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert [out["status"] for out in before["outputs"]] == ["stopped", "stopped"]
    _train(tmp_path, [f"resume={tmp_path}", "env.target_return=50"])
    after = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert after["frames"] == 1200 and [out["status"] for out in after["outputs"]] == ["stopped", "running"]
    assert _ends(tmp_path) == {3: "stopped", 4: None}
    for name, value in before["loss_module"].items():
        if name.startswith("value_network_params."):  # (its online network: what its agent is)
            assert torch.equal(after["loss_module"][name][0], value[0]), name  # seed 3 as it stopped
    assert read_metrics_csv(tmp_path / "seed_4" / "metrics.csv")[-1]["step"] == 1200


def test_a_checkpoint_whose_every_seed_is_dropped_is_refused_on_resume(tmp_path):
    """(What an older version saved when every seed was dropped.)"""
    s = settings("dqn", 5, 2, frames=600, extra=("trainer.drop_non_finite_seeds=true",))
    trainer = build_multiseed_trainer(s, tmp_path, drop_non_finite=True)
    state = trainer.state_dict()
    trainer.close()
    for out in state["outputs"]:
        out["status"], out["ended"] = "dropped", [200, "dropped at frame 200: ..."]
    resumed = build_multiseed_trainer(s, tmp_path, drop_non_finite=True)
    with pytest.raises(RunDirError, match=r"every seed has ended \(seed 5 dropped at frame 200 \(non-finite\); seed 6 "
                                          r"dropped at frame 200 \(non-finite\)\); nothing to resume \(a dropped seed "
                                          r"stays dropped: start a new run to train it again\)$"):
        resumed.load_state_dict(state)
    assert resumed.frames == 0 and [out.status for out in resumed.outputs] == ["running", "running"]
    resumed.close()


def test_the_console_follows_the_run_after_the_first_seed_stops(tmp_path, monkeypatch, capsys):
    _first_seed_reaches_the_target_at_frame_400(monkeypatch)
    tiny = [o for o in TINY if not o.startswith("trainer.progress")]
    _train(tmp_path, [*ALGO["dqn"], *tiny, "trainer.progress=true", "trainer.early_stop=true", "seed=3",
                      "num_seeds=2", "total_frames=1200"])
    lines = [line for line in capsys.readouterr().err.splitlines() if "frames (" in line]
    assert lines and lines[-1].startswith("1,200/1,200 frames (100.0%)")


def test_multi_seed_periodic_checkpoints_are_kept_when_asked(tmp_path):
    _train(tmp_path, [*ALGO["dqn"], *TINY, "seed=3", "num_seeds=2", "total_frames=1200",
                      "trainer.checkpoint_interval=400", "trainer.keep_checkpoints=true"])
    assert {p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")} == {"step_400.pt", "step_800.pt",
                                                                              "step_1200.pt"}


def test_num_seeds_refuses_a_sampled_entropy_and_videos():
    with pytest.raises(NotStackableError, match="TanhNormal distribution has no closed-form entropy"):
        build_multiseed_trainer(settings("a2c", 0, 2, extra=("env=Pendulum", "algo.distribution=tanh_normal",
                                                             "algo.entropy_coeff=0.01")), Path("."))
    from rlkit.errors import ConfigError
    with pytest.raises(ConfigError, match=r"trainer.video_interval=1000 is invalid: expected null with num_seeds > 1"):
        settings("dqn", 0, 2, extra=("trainer.video_interval=1000",))


def test_num_seeds_refuses_networks_it_cannot_stack():
    s = settings("a2c", 0, 2, extra=("env=Pendulum",))
    with pytest.raises(NotStackableError, match="num_seeds=2: the batched multi-seed trainer stacks rlkit's MLP and conv"):
        build_multiseed_trainer(s, Path("."))


@pytest.mark.parametrize("out_features", [1, 2, 64])
@pytest.mark.parametrize("rows_", [1, 8, 128])
def test_stacked_mlp_rows_do_not_depend_on_the_number_of_seeds(out_features, rows_):
    torch.manual_seed(0)
    nets = [MLP(4, out_features, [64, 64], activation_class=torch.nn.Tanh) for _ in range(5)]
    x = torch.randn(5, rows_, 4)
    stacked = MLP(4, out_features, [64, 64], activation_class=torch.nn.Tanh)
    stack_seed_parameters_(stacked, nets)
    out = stacked(x)
    out.sum().backward()
    for k in range(5):
        alone = MLP(4, out_features, [64, 64], activation_class=torch.nn.Tanh)
        stack_seed_parameters_(alone, nets[k:k + 1])
        one = alone(x[k:k + 1])
        one.sum().backward()
        assert torch.equal(out[k], one[0])
        assert torch.allclose(out[k], nets[k](x[k]), atol=1e-6)
        for a, b in zip(stacked.parameters(), alone.parameters()):
            assert torch.equal(a.grad[k], b.grad[0])


@pytest.mark.parametrize("optim", [torch.optim.Adam, torch.optim.RMSprop])
@pytest.mark.parametrize(("layout", "kernel"), [("views", {"fused": True}), ("views", {"foreach": False}),
                                                ("stacked", {"foreach": False}), ("stacked", {"foreach": True})])
def test_one_optimiser_over_the_seeds_is_n_optimisers(optim, layout, kernel):
    """Seed k's entries get the numbers of its own optimiser over its own tensors: over per-seed
    views (what a fused kernel needs) or over the stacked tensors themselves (the single-tensor and
    foreach kernels: an entry's numbers do not depend on where it sits, even in the partial vector
    that CartPole DQN's 84- and 2-entry biases leave)."""
    if "fused" in kernel and optim is torch.optim.RMSprop:
        pytest.skip("RMSprop has no fused kernel")
    torch.manual_seed(0)
    n, shapes = 5, [(120, 4), (120,), (84, 120), (84,), (2, 84), (2,)]
    stacked = [torch.nn.Parameter(torch.randn(n, *s)) for s in shapes]
    apart = [[torch.nn.Parameter(p[k].detach().clone()) for p in stacked] for k in range(n)]
    kwargs = {"alpha": 0.95, "eps": 0.01, "centered": True} if optim is torch.optim.RMSprop else {}
    views = seed_views(stacked, n) if layout == "views" else None
    together = optim(stacked if views is None else [v for per_seed in views for v in per_seed], lr=1e-2, **kernel,
                     **kwargs)
    alone = [optim(ps, lr=1e-2, **({"fused": True} if "fused" in kernel else {"foreach": False}), **kwargs)
             for ps in apart]
    for _ in range(200):
        grads = [torch.randn(n, *s) for s in shapes]
        for i, g in enumerate(grads):
            stacked[i].grad = g
            for k in range(n):
                apart[k][i].grad = g[k].clone()
                if views is not None:
                    views[k][i].grad = g[k]
        together.step()
        for opt in alone:
            opt.step()
    for k in range(n):
        for p, q in zip(stacked, apart[k]):
            assert torch.equal(p[k], q)


def test_resume_refuses_a_checkpoint_of_other_seeds(tmp_path):
    base = [*ALGO["dqn"], *TINY, "total_frames=400", "num_seeds=2"]
    _train(tmp_path / "a", [*base, "seed=0"])
    shutil.copy(tmp_path / "a" / "checkpoints" / "last.pt", tmp_path / "other.pt")
    s = settings("dqn", 1, 2, frames=400)
    trainer = build_multiseed_trainer(s, tmp_path / "b")
    with pytest.raises(Exception, match=r"holds seeds \[0, 1\], this run trains seeds \[1, 2\] \(seed and "
                                        r"num_seeds cannot change on resume\)"):
        trainer.load_state_dict(load_checkpoint(tmp_path / "other.pt"))
    trainer.close()
    # A seed's folder is not the run: the message names the run to resume.
    from rlkit.trainers import find_checkpoint
    with pytest.raises(MissingCheckpointError, match=r"'.*seed_1' is seed 1's folder of the multi-seed run in "
                                                     r"'.*a', whose checkpoint holds every seed: resume=.*a$"):
        find_checkpoint(tmp_path / "a" / "seed_1")


def test_train_log_of_a_multi_seed_run(tmp_path):
    """The run's train.log (one for all seeds): start, the seeds, the config, each seed's evaluations,
    the checkpoints and the end with every seed's final return."""
    _train(tmp_path / "run", [*ALGO["dqn"], *TINY, "total_frames=800", "num_seeds=2"])
    texts = [line.split(" - ", 1)[1] for line in (tmp_path / "run" / "train.log").read_text().splitlines()]
    assert texts[0].startswith("start: dqn CartPole-v1 seed 0, 800 frames")
    assert texts[1].startswith("2 seeds 0..1 in one process, outputs in seed_0, seed_1")
    assert any(t.startswith("config: algo dqn") for t in texts)
    evals = [t for t in texts if t.startswith("eval: ")]
    assert [t.split(":")[1] for t in evals] == [" seed 0, frame 400", " seed 1, frame 400", " seed 0, frame 800",
                                                " seed 1, frame 800"]
    assert sum(t.startswith("checkpoint: frame ") for t in texts) >= 2  # frame 0 and the end
    assert texts[-1].startswith("end: budget done at 800 frames, ") and "seed 0 (budget done)" in texts[-1] and "seed 1 (budget done)" in texts[-1]


@pytest.mark.parametrize("make", [lambda: MinAtarNet((4, 10, 10), 6), lambda: NatureCNN((4, 84, 84), 4),
                                  lambda: MLP(4, 2, [120, 84]), lambda: MLP(4, 1, [64, 64])])
@pytest.mark.parametrize("rows_", [1, 5, 32])
def test_a_stacked_network_gives_each_seed_the_numbers_it_gives_that_seed_alone(make, rows_):
    """Forward and gradients of seed k among 3 seeds are bit for bit those of seed k stacked alone
    (conv layers per seed, linear layers batched; one seed is padded to two, since batched gemm
    rounds one matrix otherwise), and within float rounding of its ordinary network."""
    torch.manual_seed(0)
    nets = [make() for _ in range(3)]
    stacked = make()
    stack_seed_parameters_(stacked, nets)
    shape = (4, 10, 10) if isinstance(stacked, MinAtarNet) else (4, 84, 84) if isinstance(stacked, NatureCNN) else (4,)
    x = torch.randint(0, 2, (3, rows_, *shape), dtype=torch.uint8)
    out = stacked(x)
    out.square().sum().backward()
    for k in range(3):
        alone = make()
        stack_seed_parameters_(alone, nets[k:k + 1])
        one = alone(x[k:k + 1])
        one.square().sum().backward()
        assert torch.equal(out[k], one[0])
        for a, b in zip(stacked.parameters(), alone.parameters()):
            assert torch.equal(a.grad[k], b.grad[0])
        assert torch.allclose(out[k], nets[k](x[k]), atol=1e-5, rtol=1e-5)


def test_uniform_replay_is_one_storage_and_the_seeds_must_fit_in_memory_together(tmp_path, monkeypatch):
    from rlkit.data.seed_replay import PerSeedReplay, SeedStackedReplay
    from rlkit.errors import ResourceError

    trainer = build_multiseed_trainer(settings("dqn", 0, 2), tmp_path / "a")
    one = trainer.replay.buffers[0].nbytes
    assert isinstance(trainer.replay, SeedStackedReplay) and one
    trainer.close()
    trainer = build_multiseed_trainer(settings("dqn", 0, 2, extra=("algo.prioritized=true",)), tmp_path / "b")
    assert isinstance(trainer.replay, PerSeedReplay)
    trainer.close()
    # Room for one seed's buffer, not for three: refused before anything is allocated, naming the setting.
    monkeypatch.setattr("rlkit.factories._free_memory", lambda device: (int(1.5 * one), 10 * one))
    with pytest.raises(ResourceError, match=r"algo.buffer_size=\d+ with num_seeds=3: the replay buffers of 3 seeds"):
        build_multiseed_trainer(settings("dqn", 0, 3), tmp_path / "c")


def test_a_warning_of_the_seeds_builds_is_logged_once(tmp_path, caplog):
    """Every seed's build is the first seed's but for the seed: what it warns of is said once."""
    pytest.importorskip("ale_py")
    overrides = ["experiment=dqn_atari", "algo.buffer_size=400", "trainer.progress=false", "env.options.screen_size=20",
                 "algo.hidden_sizes=[8]", "env.transforms=[{name: normalize, reward: false, observation: true}]",
                 "++algo.network={_target_: rlkit.modules.ConvNet, channels: [4], kernels: [4], strides: [4], hidden: [8]}",
                 "num_seeds=3"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        s = validate_config(compose("config", overrides=overrides))
    with caplog.at_level("WARNING", logger="rlkit"):
        build_multiseed_trainer(s, tmp_path).close()
        assert logging.getLogger("rlkit").level == logging.WARNING  # as the build found it
        assert logging.root.manager.disable == logging.NOTSET
    said = [r.getMessage() for r in caplog.records if "no frame replay" in r.getMessage()]
    assert len(said) == 1, said
    # A module logger with a level of its own (a user debugging it) says it once too.
    caplog.clear()
    with caplog.at_level("DEBUG", logger="rlkit.factories"):
        build_multiseed_trainer(s, tmp_path / "own_level").close()
    said = [r.getMessage() for r in caplog.records if "no frame replay" in r.getMessage()]
    assert len(said) == 1, said
