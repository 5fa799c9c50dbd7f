"""Any gymnasium env end to end: a user's env by ``module:Id``, FrozenLake's discrete observations,
uint8 observations, continuous actions, normalisation across a resume, user networks, and the
envs rlkit must refuse up front (each case of issue "Any environment")."""
from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlkit.builders import validate_config
from rlkit.config_schema import ConfigError
from rlkit.envs import GymEnv
from rlkit.errors import EnvError
from rlkit.factories import build_trainer
from rlkit.run import preflight, run
from rlkit.trainers import load_checkpoint, read_metrics_csv
from rlkit.trainers.episodes import read_episodes

CONF = str(Path(__file__).resolve().parents[1] / "conf")
TINY = ["trainer.eval_episodes=3", "trainer.progress=false", "trainer.early_stop=false",
        "trainer.log_interval=200", "trainer.eval_interval=400"]
DQN = ["algo=dqn", "algo.learning_starts=100", "algo.batch_size=32", "algo.hidden_sizes=[32]"]
A2C = ["algo=a2c", "algo.hidden_sizes=[32]"]


def compose_cfg(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=overrides)


def train(run_dir: Path, overrides: list[str]) -> dict:
    return run(compose_cfg(overrides), run_dir, overrides=overrides)


def resume(run_dir: Path, *overrides: str) -> dict:
    args = [f"resume={run_dir}", *overrides]
    return run(compose_cfg(args), run_dir, overrides=args)


def evaluate_checkpoint(run_dir: Path) -> dict:
    """A greedy evaluation of the run's last checkpoint, by a trainer built afresh from its config."""
    settings = validate_config(OmegaConf.load(run_dir / "config.yaml"))
    trainer = build_trainer(settings, run_dir)
    try:
        trainer.resume(run_dir / "checkpoints" / "last.pt")
        assert trainer.evaluator is not None
        return trainer.evaluator()
    finally:
        trainer.close()


def last_eval(run_dir: Path) -> dict:
    return [row for row in read_metrics_csv(run_dir) if "eval_return" in row][-1]


@pytest.mark.parametrize("overrides", [
    pytest.param(DQN + ["env=gym", "env.id=examples.corridor:Corridor-v0"], id="dqn-user-env"),
    pytest.param(A2C + ["env=gym", "env.id=examples.corridor:Corridor-v0", "+env.make_kwargs.length=8"],
                 id="a2c-user-env-make-kwargs"),
    pytest.param(DQN + ["env=FrozenLake"], id="dqn-frozenlake"),
    pytest.param(DQN + ["env=gym", "env.id=corridor_env:ByteCorridor-v0"], id="dqn-uint8-observations"),
])
def test_an_env_trains_checkpoints_resumes_and_evaluates(tmp_path, overrides):
    train(tmp_path, overrides + TINY + ["total_frames=600"])
    before = last_eval(tmp_path)
    assert before["step"] == 600
    # the evaluation of the checkpoint, by a trainer built afresh, is the one the run logged
    again = evaluate_checkpoint(tmp_path)
    assert again["eval_return"] == before["eval_return"]
    episodes = read_episodes(tmp_path)
    resume(tmp_path, "total_frames=1200")
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["frames"] == 1200
    assert last_eval(tmp_path)["step"] == 1200
    assert read_episodes(tmp_path)[: len(episodes)] == episodes and len(read_episodes(tmp_path)) > len(episodes)


def test_overriding_the_id_takes_the_new_envs_threshold_and_directory_label():
    from rlkit.cli import env_label_resolver

    settings = validate_config(compose_cfg(DQN + ["env=MountainCar", "env.id=examples.corridor:Corridor-v0"]))
    assert settings.env.target_return == 0.9  # Corridor-v0's reward_threshold, not MountainCar's -110
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["env=MountainCar", "env.id=examples.corridor:Corridor-v0"],
                      return_hydra_config=True)
    pattern = OmegaConf.to_container(cfg.hydra.run, resolve=False)["dir"]
    assert "${rlkit_env_label:}" in pattern and "MountainCar" not in pattern
    assert env_label_resolver(_root_=cfg) == env_label_resolver(cfg.env.id) == "Corridor"


def test_uint8_observations_stay_uint8_in_the_replay_buffer(tmp_path):
    settings = validate_config(compose_cfg(DQN + TINY + ["env=gym", "env.id=corridor_env:ByteCorridor-v0",
                                                         "total_frames=300"]))
    trainer = build_trainer(settings, tmp_path)
    try:
        trainer.fit()
        stored = trainer.replay_buffer.state_dict()["storage"]["data"]["observation"]
        assert stored.dtype == torch.uint8 and int(stored.max()) == 255
    finally:
        trainer.close()


# -- continuous actions ------------------------------------------------------------------------------
@pytest.mark.parametrize("distribution", ["normal", "tanh_normal", "gsde"])
def test_continuous_a2c_trains_resumes_exactly_with_normalisation(tmp_path, distribution):
    common = A2C + TINY + ["env=Pendulum", f"algo.distribution={distribution}",
                           "env.transforms=[{name: normalize}]", "trainer.checkpoint_interval=520",
                           "trainer.keep_checkpoints=true"]
    train(tmp_path / "straight", common + ["total_frames=1040"])
    train(tmp_path / "split", common + ["total_frames=520"])
    before = last_eval(tmp_path / "split")
    assert evaluate_checkpoint(tmp_path / "split")["eval_return"] == before["eval_return"]
    resume(tmp_path / "split", "total_frames=1040")
    straight, split = read_metrics_csv(tmp_path / "straight"), read_metrics_csv(tmp_path / "split")
    drop = ("fps",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in straight] == \
           [{k: v for k, v in r.items() if k not in drop} for r in split]
    a, b = (load_checkpoint(tmp_path / d / "checkpoints" / "last.pt") for d in ("straight", "split"))
    for key, value in a["loss_module"].items():
        assert torch.equal(value, b["loss_module"][key]), key
    norm = a["collector"]["env"]["transforms"][0]
    assert norm["obs_rms"]["count"] > 1000 and torch.equal(norm["obs_rms"]["mean"],
                                                            b["collector"]["env"]["transforms"][0]["obs_rms"]["mean"])


def test_the_linear_learning_rate_schedule_decays_to_zero_at_total_frames(tmp_path):
    train(tmp_path, A2C + TINY + ["algo.lr_schedule=linear", "total_frames=1000"])
    rows = [row for row in read_metrics_csv(tmp_path) if "lr" in row]
    assert len(rows) >= 4
    for row in rows:  # the last update before a row was at the row's frames
        assert row["lr"] == pytest.approx(7e-4 * (1 - row["step"] / 1000), rel=1e-12, abs=1e-15)


def test_box_actions_are_clipped_when_stepping_and_stored_as_sampled():
    received = []

    class Recorder(gym.Env):
        observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        action_space = gym.spaces.Box(-0.5, 2.0, (2,), np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(2, np.float32), {}

        def step(self, action):
            received.append(np.array(action))
            return np.zeros(2, np.float32), 0.0, False, False, {}

    env = GymEnv.from_factory(Recorder, 2, seed=0)
    env.advance(torch.tensor([[3.0, -1.0], [0.1, 2.5]]))
    assert np.array_equal(np.stack(received), np.array([[2.0, -0.5], [0.1, 2.0]], np.float32))
    with pytest.raises(EnvError, match=r"nan"):
        env.advance(torch.tensor([[float("nan"), 0.0], [0.0, 0.0]]))


# -- networks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("algo", [DQN, A2C, ["algo=c51", "algo.learning_starts=100", "algo.batch_size=32",
                                              "algo.n_atoms=11"]])
def test_a_user_network_by_target_is_built_with_the_sizes_and_trained(tmp_path, algo):
    train(tmp_path, algo + TINY + ["total_frames=400", "algo.network={_target_: examples.nets.TwoLayer, width: 12}"])
    params = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["loss_module"]
    widths = {tuple(v.shape) for k, v in params.items() if k.endswith("body.0.weight")}
    assert widths == {(12, 4)}  # CartPole: 4 observations in, the user's width 12


@pytest.mark.parametrize(("overrides", "error", "message"), [
    (["algo.network={_target_: user_nets.WrongWidth}"], EnvError,
     r"algo.network user_nets.WrongWidth as the Q-network maps observations of shape \(2, 4\) to \(2, 3\); expected \(2, 2\)"),
    (["algo.network={_target_: user_nets.not_a_module}"], EnvError, r"returned a str, not a torch nn.Module"),
    (["algo.network={_target_: user_nets.Nope}"], ConfigError, r"algo.network._target_='user_nets.Nope' cannot be imported"),
    (["algo.network={_target_: examples.nets.TwoLayer, depth: 3}"], ConfigError,
     r"cannot be called with in_features, out_features and \['depth'\]"),
    (["algo=a2c", "algo.shared_trunk=true", "algo.network={_target_: examples.nets.TwoLayer}"], EnvError,
     r"algo.network examples.nets.TwoLayer could not be built as the shared trunk \(\(4,\) -> None\)"),
    (["algo=a2c", "algo.network={_target_: examples.nets.TwoLayer}", "algo.distribution=gsde", "env=Pendulum"],
     ConfigError, r"algo.distribution='gsde' reads the actor's last hidden features: with algo.network set, use "
                  r"algo.shared_trunk=true"),
    (["env=minatar", "env.game=breakout"], EnvError, r"env 'rlkit/MinAtar-breakout-v0' has observations of shape \(4, 10, 10\): rlkit's MLP networks take "
                                                      r"flat observations \(shape \(n,\)\); for channel-first images choose a conv network, e.g. "
                                                      r"algo.network=\{_target_: rlkit.modules.MinAtarNet\}"),
    (["algo=a2c", "algo.distribution=normal"], EnvError,
     r"algo.distribution='normal' acts in Box action spaces; env 'CartPole-v1' has Discrete\(2\); valid choices here: "
     r"\['auto', 'categorical'\]"),
    (["algo=a2c", "env=Pendulum", "algo.distribution=categorical"], EnvError,
     r"valid choices here: \['auto', 'normal', 'tanh_normal', 'gsde'\]"),
    (["algo=a2c", "env=gym", "env.id=corridor_env:PairCorridor-v0"], EnvError,
     r"has action space MultiDiscrete\(\[2 2\]\); algo=a2c takes a Discrete action space or a 1-D Box "
     r"\(algo.distribution=normal, tanh_normal or gsde\)"),
    # (it failed at the first step with a NaN action, after the run directory was written)
    (["algo=a2c", "env=gym", "env.id=corridor_env:FreeCorridor-v0", "algo.distribution=tanh_normal"], EnvError,
     r"algo.distribution='tanh_normal' squashes actions into the action space's bounds; env "
     r"'corridor_env:FreeCorridor-v0' has Box\(-inf, inf, \(1,\), float32\), with infinite bounds; valid choices "
     r"here: \['normal', 'gsde'\]"),
    (["algo=a2c", "env=gym", "env.id=corridor_env:FreeCorridor-v0", "algo.distribution=tanh_normal",
      "+env.make_kwargs={low: 1.0, high: 1.0}"], EnvError,
     r"env 'corridor_env:FreeCorridor-v0' has Box\(1.0, 1.0, \(1,\), float32\), where some low is not below its "
     r"high \(no interval to squash into\); valid choices here: \['normal', 'gsde'\]"),
])
def test_networks_and_distributions_that_cannot_work_are_refused_up_front(overrides, error, message):
    with pytest.raises(error, match=message):
        preflight(compose_cfg(overrides))


# -- what rlkit refuses, before the run directory exists --------------------------------------------
@pytest.mark.parametrize(("overrides", "message"), [
    (["env=Pendulum"], r"env 'Pendulum-v1' has action space Box\(-2.0, 2.0, \(1,\), float32\); algo=dqn supports "
                       r"discrete action spaces; algorithms for box actions: \['a2c'\]"),
    (["algo=a2c", "env=gym", "env.id=CarRacing-v3"], r"env 'CarRacing-v3' has observations of shape \(96, 96, 3\): rlkit's MLP networks "
                                                    r"take flat observations \(shape \(n,\)\); \(96, 96, 3\) looks channel-last"),
    # (it did not say that the transform made the 2-D shape)
    (["env.transforms=[{name: frame_stack, stack_size: 4}]"],
     r"env 'CartPole-v1' has observations of shape \(4, 4\): rlkit's MLP networks take flat observations "
     r"\(shape \(n,\)\); rlkit's conv networks take channel-first images \(C, H, W\); if env.transforms has a "
     r"frame_stack of flat observations, that makes \(stack_size, n\): frame_stack is for image observations"),
])
def test_envs_rlkit_cannot_train_are_refused_in_one_line(tmp_path, overrides, message):
    with pytest.raises(EnvError, match=message):
        preflight(compose_cfg(overrides))


@pytest.mark.parametrize("num_seeds", [1, 2])
@pytest.mark.parametrize("algo", ["dqn", "c51"])
def test_action_masks_are_honoured_by_every_seed(tmp_path, algo, num_seeds):
    """Random and greedy actions only among the allowed ones (the env refuses a masked action), for
    one seed and for several in one process."""
    import rlkit

    result = rlkit.train([f"algo={algo}", "env=gym", "env.id=corridor_env:MaskedCorridor-v0", "total_frames=600",
                          "algo.learning_starts=100", "algo.batch_size=16", f"num_seeds={num_seeds}",
                          "trainer.eval_episodes=2", "trainer.progress=false", "logger=none"], output_dir=tmp_path / "run")
    assert result.run_dir.is_dir()


def test_an_algorithm_that_ignores_action_masks_is_refused_on_a_masked_env():
    with pytest.raises(EnvError, match=r"env 'corridor_env:MaskedCorridor-v0' gives action masks, which algo=a2c does "
                                       r"not honour .*; algorithms that do: \['c51', 'dqn'\]"):
        preflight(compose_cfg(["algo=a2c", "env=gym", "env.id=corridor_env:MaskedCorridor-v0"]))


def test_a_step_of_another_shape_names_the_env_step_sub_env_and_key(tmp_path):
    with pytest.raises(EnvError, match=r"env 'corridor_env:Shifty-v0' returned an observation that does not fit its "
                                       r"spec at step \(step 3\), sub-env 0: key 'observation' has shape \(19,\), "
                                       r"the spec has \(20,\)"):
        train(tmp_path / "run", A2C + TINY + ["env=gym", "env.id=corridor_env:Shifty-v0", "total_frames=400"])


@pytest.mark.parametrize("num_envs", [1, 3])
def test_a_reward_that_is_not_one_number_names_the_env_step_and_sub_env(tmp_path, num_envs):
    # A shape-(1,) reward failed with numpy's or the replay's or the loss's words, each path its own.
    with pytest.raises(EnvError, match=r"env 'corridor_env:ArrayRewardCorridor-v0' returned the reward "
                                       r"array\(\[-0.01\], dtype=float32\) \(ndarray of shape \(1,\)\) at step 1, "
                                       r"sub-env 0: a reward is one real number"):
        train(tmp_path / "run", A2C + TINY + ["env=gym", "env.id=corridor_env:ArrayRewardCorridor-v0",
                                              "total_frames=400", f"algo.num_envs={num_envs}"])


@pytest.mark.parametrize("num_envs", [1, 3])
def test_a_mask_that_allows_no_action_while_the_episode_goes_on_names_the_env_step_and_sub_env(tmp_path, num_envs):
    """It failed inside the policy with a traceback ("the action mask forbids every action in at least
    one row") and left the run directory; a terminated step's observation may still allow none."""
    with pytest.raises(EnvError, match=r"^env 'corridor_env:DeadEndCorridor-v0' allows no action at step \d+, "
                                       r"sub-env \d, whose episode goes on \(its action mask \[False, False\]"):
        train(tmp_path / "run", DQN + TINY + ["env=gym", "env.id=corridor_env:DeadEndCorridor-v0", "total_frames=400",
                                              f"algo.num_envs={num_envs}"])


@pytest.mark.parametrize("num_envs", [1, 3])
def test_a_string_reward_is_refused_at_its_first_step(tmp_path, num_envs):
    """With one env a reward "-0.01" was cast by numpy and trained on, until the closing evaluation failed."""
    with pytest.raises(EnvError, match=r"env 'corridor_env:StrRewardCorridor-v0' returned the reward '-0.01' \(str\) "
                                       r"at step 1, sub-env 0: a reward is one real number"):
        train(tmp_path / "run", A2C + TINY + ["env=gym", "env.id=corridor_env:StrRewardCorridor-v0",
                                              "total_frames=400", f"algo.num_envs={num_envs}"])
    episodes = tmp_path / "run" / "episodes.csv"
    assert not episodes.exists() or len(episodes.read_text().splitlines()) <= 1  # (nothing trained on it)


def test_single_vectorization_trains_and_evaluates_with_several_evaluation_episodes(tmp_path):
    """env.vectorization=single drives the one training env; the evaluation env (one sub-env per
    episode) was built 'single' too and refused: the option only worked with trainer.eval_episodes=1."""
    import rlkit

    common = ["algo.learning_starts=100", "total_frames=300", "trainer.eval_episodes=3", "logger=none",
              "trainer.progress=false"]
    single = rlkit.train(["env.vectorization=single", *common], output_dir=tmp_path / "single")
    auto = rlkit.train(common, output_dir=tmp_path / "auto")
    assert single.metrics["eval_return"] == auto.metrics["eval_return"]
    assert len(rlkit.evaluate(single.run_dir, episodes=4, output_dir=tmp_path / "eval")["returns"]) == 4


# -- the start's step of an env built in memory ----------------------------------------------------
@pytest.mark.parametrize("overrides", [
    ["env=gym", "env.id=corridor_env:MaskedCorridor-v0"],  # (its step raises on a masked-out action)
    ["algo=a2c", "env=gym", "env.id=corridor_env:FreeCorridor-v0"],  # a Box with infinite bounds
    ["algo=a2c", "env=gym", "env.id=corridor_env:FreeCorridor-v0", "+env.make_kwargs={low: 0.5, high: inf}"],
    ["env=FrozenLake"],
    ["algo=a2c", "env=Pendulum", "algo.num_envs=3"],
    ["num_seeds=2"],
])
def test_the_start_steps_a_valid_env_once_and_takes_it(overrides):
    assert preflight(compose_cfg(overrides)) is not None


def test_an_env_whose_step_fails_is_refused_before_rlkit_train_writes_anything(tmp_path):
    """The probe ran for train.py only: rlkit.train wrote the run directory and a frame-0 checkpoint
    before the first step failed."""
    import rlkit

    with pytest.raises(EnvError, match=r"env 'corridor_env:BrokenStepCorridor-v0' failed in its first step: "
                                       r"RuntimeError: physics exploded"):
        rlkit.train(["env=gym", "env.id=corridor_env:BrokenStepCorridor-v0"], output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_env_failing_mid_run_keeps_its_traceback(tmp_path, monkeypatch):
    """Only the start's step turns an env's exception into a one-line refusal: later, the exception
    is the env's (or rlkit's) and keeps its type and traceback."""
    from examples.corridor import Corridor

    step = Corridor.step
    calls = []

    def failing_later(self, action):
        calls.append(None)
        if len(calls) == 50:
            raise RuntimeError("physics exploded at step 50")
        return step(self, action)

    monkeypatch.setattr(Corridor, "step", failing_later)
    with pytest.raises(RuntimeError, match="physics exploded at step 50"):
        train(tmp_path, ["env=gym", "env.id=examples.corridor:Corridor-v0", "total_frames=200"])
