"""MinAtar through rlkit: registration, channel-first uint8 observations, action sets, exact state,
and a DQN run with the paper's network that checkpoints and resumes bit for bit."""
from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from rlkit.envs import GymEnv
from rlkit.envs.minatar import GAMES, minatar_id
from rlkit.run import run
from rlkit.trainers import load_checkpoint, read_metrics_csv

pytest.importorskip("minatar")
CONF = str(Path(__file__).resolve().parents[2] / "conf")


@pytest.mark.parametrize("game", GAMES)
def test_every_game_is_registered_channel_first_uint8_with_both_action_sets(game):
    full = gym.make(minatar_id(game))
    minimal = gym.make(minatar_id(game, full_action_set=False))
    obs, _ = full.reset(seed=0)
    channels = {"asterix": 4, "breakout": 4, "freeway": 7, "seaquest": 10, "space_invaders": 6}[game]
    assert obs.shape == (channels, 10, 10) and obs.dtype == np.uint8 and set(np.unique(obs)) <= {0, 1}
    assert full.action_space.n == 6 and minimal.action_space.n == {"asterix": 5, "breakout": 3, "freeway": 3,
                                                                    "seaquest": 6, "space_invaders": 4}[game]
    assert full.observation_space.contains(obs)


def test_observations_are_minatars_state_transposed():
    from minatar import Environment

    env = gym.make(minatar_id("breakout"))
    obs, _ = env.reset(seed=7)
    reference = Environment("breakout")
    reference.seed(7)
    reference.reset()
    np.testing.assert_array_equal(obs, reference.state().transpose(2, 0, 1).astype(np.uint8))
    for action in [1, 3, 3, 0, 1, 2, 4, 5, 1, 3]:  # the full action set maps action i to minatar's i
        obs, reward, terminated, _, _ = env.step(action)
        ref_reward, ref_terminal = reference.act(action)
        assert (reward, terminated) == (ref_reward, ref_terminal)
        np.testing.assert_array_equal(obs, reference.state().transpose(2, 0, 1).astype(np.uint8))


@pytest.mark.parametrize("game", GAMES)
def test_state_round_trip_replays_the_same_future(game):
    env = GymEnv(minatar_id(game), num_envs=2, seed=3, vectorization="sync")
    rng = np.random.default_rng(0)
    for _ in range(30):
        env.advance(torch.as_tensor(rng.integers(0, 6, 2)))
    state = env.state_dict()
    actions = [torch.as_tensor(rng.integers(0, 6, 2)) for _ in range(60)]
    first = [env.advance(a) for a in actions]
    env.load_state_dict(state)
    second = [env.advance(a) for a in actions]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.next_observation, b.next_observation)
        np.testing.assert_array_equal(a.reward, b.reward)
        np.testing.assert_array_equal(a.done, b.done)


def test_dqn_with_the_minatar_network_resumes_exactly(tmp_path):
    common = ["experiment=dqn_minatar_breakout", "algo.learning_starts=200", "algo.buffer_size=2000",
              "algo.target_update_interval=50", "trainer.log_interval=200", "trainer.eval_interval=400",
              "trainer.eval_episodes=2", "trainer.progress=false", "trainer.checkpoint_interval=300"]

    def train(run_dir, frames, resume=False):
        overrides = ([f"resume={run_dir}"] if resume else common) + [f"total_frames={frames}"]
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        return run(cfg, run_dir, overrides=overrides)

    train(tmp_path / "straight", 900)
    train(tmp_path / "split", 600)
    train(tmp_path / "split", 900, resume=True)
    drop = {"fps"}
    a = [{k: v for k, v in r.items() if k not in drop} for r in read_metrics_csv(tmp_path / "straight")]
    b = [{k: v for k, v in r.items() if k not in drop} for r in read_metrics_csv(tmp_path / "split")]
    assert a == b and any("loss_value" in r for r in a)
    sa, sb = (load_checkpoint(tmp_path / d / "checkpoints" / "last.pt") for d in ("straight", "split"))
    for key, value in sa["loss_module"].items():
        assert torch.equal(value, sb["loss_module"][key]), key
    stored = sa["replay_buffer"]["storage"]["data"]["observation"]
    assert stored.dtype == torch.uint8 and tuple(stored.shape[1:]) == (4, 10, 10)


def _first_divergence(env: gym.Env, reference, actions, reference_actions, seed: int) -> int | None:
    """Drives ``env`` and minatar's ``reference`` (seeded alike, restarted together after each game)
    with the given actions; the first step whose observation, reward or terminal differs, or None."""
    obs, _ = env.reset(seed=seed)
    reference.seed(seed)
    reference.reset()
    assert np.array_equal(obs, reference.state().transpose(2, 0, 1).astype(np.uint8))
    for t, (action, ref_action) in enumerate(zip(actions, reference_actions)):
        obs, reward, terminated, truncated, _ = env.step(action)
        ref_reward, ref_terminal = reference.act(ref_action)
        if (not np.array_equal(obs, reference.state().transpose(2, 0, 1).astype(np.uint8))
                or (reward, terminated, truncated) != (float(ref_reward), bool(ref_terminal), False)):
            return t
        if terminated:
            env.reset()
            reference.reset()
    return None


@pytest.mark.parametrize("game", ["asterix", "space_invaders"])
def test_no_sticky_actions_and_no_ramping_are_minatars_settings(game):
    """``env.options.sticky_action_prob=0`` and ``difficulty_ramping=false`` give minatar's
    ``Environment(game, sticky_action_prob=0.0, difficulty_ramping=False)``, step for step over
    several games (asterix ramps every 100 steps a game lasts, which these games reach)."""
    from minatar import Environment

    from rlkit.envs.suites import get_suite

    resolved = get_suite("minatar").resolve(None, game, {"sticky_action_prob": 0.0, "difficulty_ramping": False})
    actions = np.random.default_rng(0).integers(0, 6, 600).tolist()
    env = gym.make(resolved.env_id, **resolved.make_kwargs)
    reference = Environment(game, sticky_action_prob=0.0, difficulty_ramping=False)
    assert _first_divergence(env, reference, actions, actions, seed=11) is None
    if game == "asterix":  # the comparison can tell: minatar's defaults (sticky, ramping) diverge from it
        for kwargs in ({"sticky_action_prob": 0.1}, {"difficulty_ramping": True}):
            other = Environment(game, **{"sticky_action_prob": 0.0, "difficulty_ramping": False, **kwargs})
            assert _first_divergence(gym.make(resolved.env_id, **resolved.make_kwargs), other, actions, actions, 11) is not None


@pytest.mark.parametrize("game", ["breakout", "freeway"])
def test_minimal_action_a_is_minatars_minimal_action_set_entry_a(game):
    """The minimal action set's action ``a`` is minatar's ``minimal_action_set()[a]`` (breakout
    [0, 1, 3], freeway [0, 2, 4]: not the first n actions), with minatar's default dynamics."""
    from minatar import Environment

    reference = Environment(game)
    minimal = list(reference.minimal_action_set())
    assert minimal != list(range(len(minimal)))
    env = gym.make(minatar_id(game, full_action_set=False))
    assert env.action_space.n == len(minimal)
    actions = np.random.default_rng(1).integers(0, len(minimal), 300).tolist()
    assert _first_divergence(env, reference, actions, [minimal[a] for a in actions], seed=5) is None


@pytest.mark.parametrize("prob", [1.0, -0.1])
def test_a_sticky_action_probability_outside_0_1_is_refused(prob):
    """1.0 repeats the first action (NOOP) for good: every episode ran to its cap."""
    from rlkit.envs.suites import get_suite

    with pytest.raises(ValueError, match=rf"env.options.sticky_action_prob={prob!r} is invalid: expected a number in "
                                         r"\[0, 1\)"):
        get_suite("minatar").resolve(None, "breakout", {"sticky_action_prob": prob, "difficulty_ramping": False,
                                                        "full_action_set": False})
