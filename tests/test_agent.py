"""rlkit.load_agent: a run's agent rebuilt and verified; act() on numpy and torch, single and batched,
the frozen normalisation applied inside as the evaluation env applies it; refusals."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import rlkit
from rlkit import keys
from rlkit.agent import Agent, given_or_loaded, load_agent, open_run
from rlkit.errors import (
    CheckpointError,
    CheckpointMismatchError,
    ConfigError,
    CorruptCheckpointError,
    MissingCheckpointError,
    RunDirError,
)
from rlkit.factories import make_env
from rlkit.modules import ExplorationType, action_call, set_exploration_type

ALL = ["dqn", "c51", "a2c", "a2c_pendulum", "a2c_tanh", "dqn_minatar"]


def random_observations(agent: Agent, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (n, *agent.observation_spec.shape)
    if agent.observation_spec.dtype == torch.uint8:
        return torch.randint(0, 2, shape, generator=g, dtype=torch.uint8)
    return torch.randn(shape, generator=g) * 2


def same(a, b) -> bool:
    """Equal actions: discrete ones exactly; continuous ones up to float rounding (a batch of 1 and
    a batch of 5 may take different matmul kernels)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return torch.equal(a, b) if not a.is_floating_point() else torch.allclose(a, b, rtol=1e-5, atol=1e-6)


def files(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("name", ALL)
def test_act_takes_numpy_and_torch_single_and_batched(tiny_run, name):
    agent = rlkit.load_agent(tiny_run(name))
    obs = random_observations(agent, 5)
    batch = agent.act(obs)
    assert isinstance(batch, torch.Tensor) and batch.shape[0] == 5
    if not batch.is_floating_point():
        assert agent.action_spec.is_in(batch)
    single = agent.act(obs[0])
    assert single.shape == batch.shape[1:] and same(single, batch[0])
    as_numpy = agent.act(obs.numpy())
    assert isinstance(as_numpy, np.ndarray) and np.array_equal(as_numpy, batch.numpy())
    assert same(agent.act(obs[0].numpy()), batch[0])
    assert agent.frames >= 300 and agent.run_dir == tiny_run(name)


@pytest.mark.parametrize("name", ALL)
def test_act_is_the_evaluation_envs_policy_on_the_envs_observations(tiny_run, name):
    """The greedy action of act() on the env's raw observations equals the actor's on the evaluation
    env's observations (the run's transforms frozen, numpy arithmetic), step after step."""
    agent = load_agent(tiny_run(name))
    env = make_env(agent.settings, num_envs=3, seed=7, evaluating=agent.transforms)
    raw_env = make_env(agent.settings, num_envs=3, seed=7, evaluating=[])  # the same sub-envs, no transforms
    actor = action_call(agent.actor)
    try:
        obs, _ = env.next_state_tensors()
        raw, _ = raw_env.next_state_tensors()
        for _ in range(20):
            with set_exploration_type(ExplorationType.DETERMINISTIC), torch.no_grad():
                expected = actor(obs)
            assert torch.equal(agent.act(raw), expected)
            obs, raw = env.advance(expected).observation, raw_env.advance(expected).observation
    finally:
        env.close()
        raw_env.close()


def test_a_normalising_run_folds_its_statistics_into_the_policy(tiny_run):
    agent = load_agent(tiny_run("a2c_pendulum"))
    (norm,) = agent.transforms
    assert norm.obs_rms is not None and not np.allclose(norm.obs_rms.mean, 0.0)
    obs = random_observations(agent, 4)
    transformed = agent.policy.observation_transform(obs)
    expected = np.clip((obs.numpy() - norm.obs_rms.mean) / np.sqrt(norm.obs_rms.var + norm.epsilon), -10, 10)
    assert np.array_equal(transformed.numpy(), expected.astype(np.float32))


def test_stochastic_acting_samples_a_stochastic_policy(tiny_run):
    agent = load_agent(tiny_run("a2c_pendulum"))
    obs = random_observations(agent, 64)
    assert torch.equal(agent.act(obs), agent.act(obs))
    assert not torch.equal(agent.act(obs, deterministic=False), agent.act(obs))


def test_stochastic_acting_of_a_q_learner_uses_the_evaluation_epsilon(tiny_run):
    agent = load_agent(tiny_run("dqn"))
    obs = random_observations(agent, 200)
    assert torch.equal(agent.act(obs, deterministic=False), agent.act(obs))  # eval_epsilon 0: greedy
    agent.epsilon = 1.0
    assert not torch.equal(agent.act(obs, deterministic=False), agent.act(obs))


def test_the_agent_exposes_its_modules_and_specs(tiny_run):
    agent = load_agent(tiny_run("a2c"))
    assert agent.actor is agent.loss.actor_network or agent.actor in agent.loss.modules()
    assert agent.settings.algo.name == "a2c" and keys.OBSERVATION in agent.actor.in_keys
    assert tuple(agent.observation_spec.shape) == (4,) and agent.action_spec.n == 2
    assert "a2c" in repr(agent)


def test_a_wrongly_shaped_observation_is_refused(tiny_run):
    agent = load_agent(tiny_run("dqn"))
    with pytest.raises(ValueError, match=r"observation of shape \(5, 3\); this agent takes \(4,\)"):
        agent.act(np.zeros((5, 3), dtype=np.float32))


def test_a_checkpoint_file_names_its_run(tiny_run):
    run = tiny_run("dqn")
    agent = load_agent(run / "checkpoints" / "last.pt")
    assert agent.run_dir == run


def test_a_named_checkpoint_of_a_run_directory_is_loaded(tiny_run, tmp_path):
    """``checkpoint=`` picks a checkpoint of the directory by file name; a bad name, a missing one
    and a name beside a checkpoint file are refused, naming the problem."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run("dqn"), run)
    snapshot = run / "checkpoints" / "step_1.pt"
    shutil.copy(run / "checkpoints" / "last.pt", snapshot)
    assert load_agent(run, checkpoint="step_1.pt").settings.algo.name == "dqn"
    assert open_run(run, checkpoint="step_1.pt").checkpoint == snapshot
    assert open_run(run, checkpoint=Path("step_1.pt")).checkpoint == snapshot  # a path-like name
    # a resume from an earlier snapshot sets the later ones aside in a sub-folder: still reachable
    (run / "checkpoints" / "abandoned_1").mkdir()
    shutil.copy(snapshot, run / "checkpoints" / "abandoned_1" / "step_5.pt")
    assert open_run(run, checkpoint="abandoned_1/step_5.pt").checkpoint.parent.name == "abandoned_1"
    choices = r"\['last.pt', 'step_1.pt', 'abandoned_1/step_5.pt'\]"
    with pytest.raises(CheckpointError, match=r"checkpoint='../last.pt' is invalid: expected the name of one of the "
                                              r"run's checkpoints in .*: " + choices):
        load_agent(run, checkpoint="../last.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint='1' is invalid \(did you mean step_1.pt\?\)"):
        load_agent(run, checkpoint="1")
    with pytest.raises(CheckpointError, match=r"run=.*last.pt' is a file already"):
        load_agent(run / "checkpoints" / "last.pt", checkpoint="step_1.pt")
    with pytest.raises(MissingCheckpointError, match=r"checkpoint='step_2.pt' is not among the checkpoints of run "
                                                     r".*: " + choices):
        load_agent(run, checkpoint="step_2.pt")
    with pytest.raises(ConfigError, match=r"checkpoint='step_1.pt' with agent=: the agent was loaded from "):
        rlkit.evaluate(run, agent=load_agent(run), checkpoint="step_1.pt")
    # an agent of another run, or of another checkpoint than the file named: refused (the output went
    # to the agent's run, not to run=)
    other = tiny_run("a2c")
    before = sorted(other.rglob("*")), sorted(run.rglob("*"))
    with pytest.raises(ConfigError, match=rf"run='{re.escape(str(other))}' with agent=: the agent was loaded from "
                                          rf".*last.pt \(run {re.escape(str(run))}\), another run; give that run"):
        rlkit.export(other, agent=load_agent(run))
    snapshot_agent = load_agent(run, checkpoint="step_1.pt")
    with pytest.raises(ConfigError, match=r"run='.*last.pt' with agent=: the agent was loaded from .*step_1.pt, "
                                          r"another checkpoint; give that file or its run directory"):
        rlkit.export(run / "checkpoints" / "last.pt", agent=snapshot_agent)
    assert (sorted(other.rglob("*")), sorted(run.rglob("*"))) == before
    for named in (run, snapshot):  # the run, or the file the agent was loaded from
        assert given_or_loaded(snapshot_agent, named, device="cpu", checkpoint=None) is snapshot_agent


def test_refusals_name_the_problem_and_write_nothing(tiny_run, tmp_path):
    with pytest.raises(MissingCheckpointError, match="no checkpoint file or run directory at"):
        load_agent(tmp_path / "nope")
    with pytest.raises(MissingCheckpointError, match="no checkpoint in run directory"):
        load_agent(tmp_path)
    run = tmp_path / "run"
    shutil.copytree(tiny_run("dqn"), run)
    (run / "config.yaml").rename(run / "config.bak")
    with pytest.raises(RunDirError, match="has no config.yaml"):
        load_agent(run)
    (run / "config.bak").rename(run / "config.yaml")
    # a checkpoint of another run (C51's networks for DQN's config)
    shutil.copy(tiny_run("c51") / "checkpoints" / "last.pt", run / "checkpoints" / "last.pt")
    before = files(run)
    with pytest.raises(CheckpointMismatchError, match="does not belong to the run in"):
        load_agent(run)
    # a corrupt one
    data = bytearray((run / "checkpoints" / "last.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (run / "checkpoints" / "last.pt").write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match="is corrupt"):
        load_agent(run)
    assert files(run) == before


def test_a_seed_of_a_multiseed_run_is_loaded_from_the_runs_stacked_checkpoint(tmp_path):
    """``num_seeds=2``: one checkpoint holds both seeds' networks stacked; ``seed_<s>/`` names one of
    them for load_agent, evaluate and export (the run directory itself is refused, naming the seeds)."""
    from rlkit.evaluation import evaluate
    from rlkit.exporter import export_policy
    from rlkit.trainers import read_metrics_csv

    out = tmp_path / "ms"
    result = rlkit.train(["num_seeds=2", "total_frames=600", "algo.learning_starts=100", "trainer.eval_episodes=3",
                          "trainer.progress=false", "trainer.checkpoint_interval=300", "trainer.keep_checkpoints=true"],
                         output_dir=out)
    assert sorted(result.agents) == [0, 1] and result.agent is result.agents[0] and sorted(result.metrics) == [0, 1]
    with pytest.raises(RunDirError, match=r"trained 2 seeds in one process: give one of them, run=.*seed_0 "
                                          r"\(seeds 0..1\)"):
        load_agent(out)
    # A snapshot: the advice names the seed folder with the snapshot's name, and that form loads it.
    with pytest.raises(RunDirError, match=r"give one of them, run=.*seed_0 checkpoint=step_300.pt \(seeds 0..1\)"):
        load_agent(out / "checkpoints" / "step_300.pt")
    snapshot = torch.load(out / "checkpoints" / "step_300.pt", weights_only=False)["loss_module"]
    for seed in (0, 1):
        early = load_agent(out / f"seed_{seed}", checkpoint="step_300.pt")
        assert early.settings.root.seed == seed
        for name, value in early.loss.state_dict().items():
            saved = snapshot[name]
            assert torch.equal(value, saved[seed] if saved.dim() == value.dim() + 1 else saved), name
    assert not all(torch.equal(a, b) for a, b in zip(load_agent(out / "seed_1", checkpoint="step_300.pt").loss.state_dict().values(),
                                                     load_agent(out / "seed_1").loss.state_dict().values()))
    early_eval = evaluate(out / "seed_1", episodes=2, checkpoint="step_300.pt", output_dir=tmp_path / "early")
    assert early_eval["checkpoint"] == str(out / "checkpoints" / "step_300.pt") and early_eval["frames"] == 300
    with pytest.raises(MissingCheckpointError, match=r"checkpoint='step_400.pt' is not among the checkpoints of "
                                                     r"run .*: \['last.pt', 'step_300.pt', 'step_600.pt'\]"):
        load_agent(out / "seed_0", checkpoint="step_400.pt")
    for seed in (0, 1):
        agent = load_agent(out / f"seed_{seed}")
        assert agent.settings.root.seed == seed and agent.run_dir == out / f"seed_{seed}"
        # its weights are the seed's slice of the stacked ones
        stacked = torch.load(out / "checkpoints" / "last.pt", weights_only=False)["loss_module"]
        for name, value in agent.loss.state_dict().items():
            saved = stacked[name]
            assert torch.equal(value, saved[seed] if saved.dim() == value.dim() + 1 else saved), name
        # the run's own last evaluation replayed (the batched trainer evaluated all seeds in one call)
        last = [row for row in read_metrics_csv(out / f"seed_{seed}") if "eval_return" in row][-1]
        assert evaluate(out / f"seed_{seed}", episodes=3)["return_mean"] == pytest.approx(last["eval_return"])
        path = export_policy(out / f"seed_{seed}", "torchscript", tmp_path / f"policy_{seed}.pt")
        obs = random_observations(agent, 5)
        assert torch.equal(torch.jit.load(str(path))(obs), torch.as_tensor(agent.act(obs)))
    # A seed's directory named relatively, from inside it or beside it.
    import os

    cwd = os.getcwd()
    try:
        os.chdir(out / "seed_1")
        for name in (".", "../seed_1"):
            assert load_agent(name).settings.root.seed == 1, name
    finally:
        os.chdir(cwd)


def test_an_atari_run_is_evaluated_acted_and_exported(tmp_path):
    """Atari (4 stacked uint8 frames, frame replay, the emulator's state in the checkpoint):
    load_agent, evaluate and a torchscript export agree."""
    pytest.importorskip("ale_py")
    from rlkit.evaluation import evaluate
    from rlkit.exporter import export_policy

    out = tmp_path / "atari"
    rlkit.train(["experiment=dqn_atari", "total_frames=300", "algo.learning_starts=100", "algo.buffer_size=1000",
                 "trainer.eval_episodes=1", "trainer.eval_interval=0", "trainer.progress=false", "logger=none",
                 "env.options.max_episode_frames=1000"], output_dir=out)
    agent = load_agent(out)
    assert tuple(agent.observation_spec.shape) == (4, 84, 84) and agent.observation_spec.dtype == torch.uint8
    results = evaluate(out, episodes=1)
    assert results["episodes"] == 1 and results["length_mean"] > 0
    path = export_policy(out, "torchscript", tmp_path / "policy.pt")
    obs = torch.randint(0, 256, (5, 4, 84, 84), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    assert torch.equal(torch.jit.load(str(path))(obs), torch.as_tensor(agent.act(obs)))


@pytest.mark.parametrize(("overrides", "message"), [
    (["experiment=dqn_cartpol"], "experiment='dqn_cartpol' is not a choice; valid choices: ['a2c_acrobot', "),
    (["algo.gamma=0.9"], "unknown key algo.gamma (did you mean value_estimator.gamma?); valid keys of algo: "),
])
def test_rlkit_train_names_a_bad_group_choice_or_key_as_the_command_line_does(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as info:
        rlkit.train(overrides, output_dir=tmp_path / "run")
    assert str(info.value).startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_a_saved_config_with_a_number_for_a_true_false_setting_still_loads(tiny_run, tmp_path):
    """Runs saved before such numbers were refused (algo.double_dqn=1 trained as true) stay usable;
    a new command line is refused (tests/test_configs.py)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run("dqn"), run)
    text = (run / "config.yaml").read_text()
    assert "double_dqn: false" in text
    (run / "config.yaml").write_text(text.replace("double_dqn: false", "double_dqn: 0"))
    assert load_agent(run).frames > 0


def test_act_honours_an_action_mask_and_refuses_one_it_cannot_read(tiny_run):
    """A masked-out action is never chosen; a mask of floats, of the wrong width, or for a policy
    that reads none is refused (it was cast to bool, or dropped, silently)."""
    masked = load_agent(tiny_run("dqn_masked"))
    obs = random_observations(masked, 6)
    for allowed in (0, 1):
        mask = np.array([i == allowed for i in range(2)])
        assert masked.act(obs[0].numpy(), action_mask=mask) == allowed
        assert (masked.act(obs, action_mask=torch.from_numpy(mask).expand(6, 2)) == allowed).all()
        assert masked.act(obs[0].numpy(), action_mask=mask.astype(np.int8)) == allowed  # 0/1 integers
        assert masked.act(obs[0].numpy(), action_mask=mask.astype(np.float32)) == allowed  # a Box mask space's
    with pytest.raises(ValueError, match=r"action_mask must be bool \(True = allowed\), or 0/1 numbers .*; got float64 "
                                         r"values \[0.0, 0.2\]"):
        masked.act(obs[0].numpy(), action_mask=[0.2, 0.0])
    with pytest.raises(ValueError, match=r"action_mask has shape \(3,\); the observation needs \(2,\)"):
        masked.act(obs[0].numpy(), action_mask=[True, False, True])
    with pytest.raises(ValueError, match=r"action_mask has shape \(2,\); the batch needs \(6, 2\)"):
        masked.act(obs, action_mask=[True, False])
    plain = load_agent(tiny_run("dqn"))
    with pytest.raises(ValueError, match="this agent's policy reads no action mask"):
        plain.act(random_observations(plain, 1)[0], action_mask=[True, False])


def test_act_takes_a_dict_observation_as_the_env_gives_it(tiny_run):
    """The docstring's "as the env gives it" failed for a Dict space: numpy made an object array of
    the dict. Its mask entry is honoured unless a mask is given."""
    import gymnasium as gym

    masked = load_agent(tiny_run("dqn_masked"))
    env = gym.make("corridor_env:MaskedCorridor-v0")
    obs, _ = env.reset(seed=0)
    assert not obs["action_mask"][0]  # (left is not allowed at the start)
    assert masked.act(obs) == masked.act(obs["observation"], action_mask=obs["action_mask"].astype(bool)) == 1
    only_left = np.array([True, False])
    assert masked.act(obs, action_mask=only_left) == 0  # a mask given wins over the dict's
    batch = {"observation": np.stack([obs["observation"]] * 3), "action_mask": np.stack([obs["action_mask"]] * 3)}
    assert (masked.act(batch) == 1).all()
    with pytest.raises(ValueError, match=r"a dict observation needs an 'observation' entry .*; got the entries "
                                         r"\['obs'\]"):
        masked.act({"obs": obs["observation"]})


def test_a_run_trained_with_more_threads_than_this_machine_has_can_be_loaded(tiny_run, tmp_path):
    """A run from a larger machine (num_threads 32) was refused by load_agent, evaluate and export."""
    from rlkit.config_schema import usable_cpus

    run_dir = tmp_path / "big"
    shutil.copytree(tiny_run("dqn"), run_dir)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace("num_threads: 1", f"num_threads: {usable_cpus() + 30}"))
    assert f"num_threads: {usable_cpus() + 30}" in config.read_text()
    agent = load_agent(run_dir)
    assert agent.settings.root.num_threads == usable_cpus()
    assert np.isfinite(rlkit.evaluate(run_dir, episodes=1)["return_mean"])


def test_a_seed_that_stopped_early_reports_the_frames_it_trained(tmp_path):
    """In a multi-seed run a seed that reaches the target stops (its parameters are those of that
    frame) while the others train on: its agent and results.json said the run's last frame."""
    # (seed 1's greedy return at frame 500 is 80.5, seeds 0 and 2 stay near 9.5: only seed 1 stops)
    result = rlkit.train({"num_seeds": 3, "total_frames": 1500, "trainer.eval_interval": 500, "env.target_return": 50.0,
                          "trainer.eval_episodes": 2, "trainer.progress": False, "logger": "csv",
                          "algo.learning_starts": 100}, output_dir=tmp_path / "run")
    from rlkit.trainers import read_metrics_csv

    ends = {}
    for seed, agent in result.agents.items():
        ends[seed] = int(read_metrics_csv(agent.run_dir)[-1]["step"])
        assert agent.frames == ends[seed]
        assert rlkit.evaluate(agent.run_dir, episodes=1)["frames"] == agent.frames
    assert ends == {0: 1500, 1: 500, 2: 1500}  # (one seed stopped early, the others trained on)


def test_a_discrete_observation_is_taken_as_the_env_gives_it(tmp_path):
    """FrozenLake / Taxi observations are indices; act(314) failed ("this agent takes (500,)")."""
    import gymnasium as gym

    result = rlkit.train(["env=FrozenLake", "algo.learning_starts=100", "total_frames=200", "trainer.eval_episodes=2",
                          "logger=none", "trainer.progress=false"], output_dir=tmp_path / "run")
    agent = rlkit.load_agent(result.run_dir)
    assert agent.discrete_observations == (16, 0)
    one_hot = np.eye(16, dtype=np.float32)
    assert agent.act(5) == agent.act(one_hot[5]) and agent.act(np.int64(5)) == agent.act(one_hot[5])
    np.testing.assert_array_equal(agent.act(np.array([0, 5, 15])), agent.act(one_hot[[0, 5, 15]]))
    assert torch.equal(agent.act(torch.tensor([3, 4])), agent.act(torch.from_numpy(one_hot[[3, 4]])))
    with pytest.raises(ValueError, match=r"observation \[16\] is outside the env's Discrete\(16, start=0\) space"):
        agent.act([16])
    # A float or bool one-hot vector is one observation; 16 indices go in as [16, 1].
    for dtype in (np.bool_, np.float32):
        assert agent.act(one_hot[5].astype(dtype)) == agent.act(one_hot[5])
    np.testing.assert_array_equal(agent.act(np.arange(16)[:, None]), agent.act(one_hot))
    # 16 integers are refused, whatever their values: 16 sub-envs' indices (0..15 here, or all 0 but
    # one 1 a step after a reset) read as one encoding gave one action for 16 observations
    for ambiguous in (np.arange(16), one_hot[1].astype(np.int64)):
        with pytest.raises(ValueError, match=r"16 integers are 16 indices of the env's Discrete\(16\) space or one "
                                             r"one-hot encoding; give a batch of 16 indices as shape \(16, 1\), an "
                                             r"encoding as float or bool"):
            agent.act(ambiguous)
    env = gym.make("FrozenLake-v1")
    obs, _ = env.reset(seed=0)
    assert agent.act(obs) in range(4)
