"""Atari through rlkit: the protocol wrappers against hand-made sequences (a fake game with lives)
and against ale-py itself, per-game reporting, the evaluation epsilon and exact state capture."""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlkit.envs import GymEnv
from rlkit.envs.atari import EpisodicLife, FireReset, atari_env_id
from rlkit.envs.suites import get_suite

ale_py = pytest.importorskip("ale_py")


class FakeGame(gym.Env):
    """A game with ``lives`` lives: each step's observation is its step count; a life is lost every
    ``life_every`` steps; the game ends with the last life, or is cut by a time limit
    (``truncated``) at step ``truncate_at`` of the game. Records the actions it is given."""

    observation_space = gym.spaces.Box(0, 10_000, (1,), np.int64)
    action_space = gym.spaces.Discrete(4)

    class _Ale:
        def __init__(self, game: "FakeGame") -> None:
            self.game = game

        def lives(self) -> int:
            return self.game.lives_left

    def __init__(self, lives: int = 3, life_every: int = 4, truncate_at: int | None = None) -> None:
        self.lives_total, self.life_every, self.truncate_at = lives, life_every, truncate_at
        self.ale = self._Ale(self)
        self.actions: list[Any] = []
        self.resets = 0
        self.t = 0
        self.lives_left = lives

    def get_action_meanings(self) -> list[str]:
        return ["NOOP", "FIRE", "RIGHT", "LEFT"]

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.resets += 1
        self.t, self.lives_left = 0, self.lives_total
        return np.array([0]), {}

    def step(self, action):
        self.actions.append(int(action))
        self.t += 1
        if self.t % self.life_every == 0:
            self.lives_left -= 1
        return np.array([self.t]), 1.0, self.lives_left == 0, self.t == self.truncate_at, {}


def test_episodic_life_ends_learning_episodes_at_a_lost_life_and_goes_on_with_the_game():
    game = FakeGame(lives=3, life_every=4)
    env = EpisodicLife(game)
    env.reset(seed=0)
    flags = [env.step(2) for _ in range(4)]
    assert [f[2] for f in flags] == [False, False, False, True]  # terminated at the lost life
    assert flags[-1][4]["game_over"] is False
    obs, _ = env.reset()  # not a new game: one NOOP step, the count goes on
    assert game.resets == 1 and game.actions[-1] == 0 and obs[0] == 5
    for _ in range(3):
        out = env.step(2)
    assert out[2] and out[4]["game_over"] is False  # second life lost at t = 8
    env.reset()
    while True:
        out = env.step(2)
        if out[2]:
            break
    assert out[4]["game_over"] is True  # the last life: the game is over
    env.reset()
    assert game.resets == 2  # now a real reset



def _flags(step_result) -> tuple[bool, bool, bool]:
    _, _, terminated, truncated, info = step_result
    return terminated, truncated, info["game_over"]


def test_episodic_life_passes_a_time_limit_through_as_truncation_and_the_end_of_the_game():
    """A time limit (the 108,000-frame cap) is a truncation, not a terminal: learning bootstraps from
    it (terminated=False), and it ends the game (game_over), so the next reset starts a new game and
    the reported episode is the whole game. A lost life on the same step is still a terminal for
    learning (as stable-baselines3's EpisodicLifeEnv, which returns both flags)."""
    # Truncation with lives left: step 4 loses a life, the reset's NOOP is step 5, step 6 is cut.
    game = FakeGame(lives=3, life_every=4, truncate_at=6)
    env = EpisodicLife(game)
    env.reset(seed=0)
    assert [_flags(env.step(2)) for _ in range(4)] == [(False, False, False)] * 3 + [(True, False, False)]
    env.reset()
    assert game.resets == 1 and game.actions[-1] == 0  # the game went on
    assert _flags(env.step(2)) == (False, True, True)
    env.reset()
    assert game.resets == 2 and game.t == 0  # a new game, not a NOOP step of the cut one

    # Truncation on the very step that loses a life (and not the last one).
    game = FakeGame(lives=3, life_every=4, truncate_at=4)
    env = EpisodicLife(game)
    env.reset(seed=0)
    assert [_flags(env.step(2)) for _ in range(4)][-1] == (True, True, True)
    assert game.lives_left == 2  # lives were left: only the time limit ended the game
    env.reset()
    assert game.resets == 2 and game.t == 0 and game.actions[-1] == 2  # a real reset, no NOOP step

    # A real game over (the last life lost), no time limit involved.
    game = FakeGame(lives=2, life_every=3, truncate_at=100)
    env = EpisodicLife(game)
    env.reset(seed=0)
    flags = [_flags(env.step(2)) for _ in range(3)]
    env.reset()
    flags += [_flags(env.step(2)) for _ in range(2)]  # the reset's NOOP was game step 4
    assert flags == [(False, False, False), (False, False, False), (True, False, False),
                     (False, False, False), (True, False, True)]
    env.reset()
    assert game.resets == 2


@pytest.mark.parametrize("mode", ["same_step", "disabled"])
def test_a_time_limit_ends_the_reported_game_without_terminating_it(mode):
    """Through rlkit's vector env: a truncated game is done (truncated, not terminated) and ends a
    reported episode, with or without lives left; a lost life is done but no episode end."""
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    autoreset = {"same_step": AutoresetMode.SAME_STEP, "disabled": AutoresetMode.DISABLED}[mode]
    # Sub-env 0: life lost at game step 4, NOOP step 5, cut at game step 7 (collected step 5, index 5).
    # Sub-env 1: cut at game step 3, the same step as its first lost life.
    vec = SyncVectorEnv([lambda: EpisodicLife(FakeGame(lives=3, life_every=4, truncate_at=7)),
                         lambda: EpisodicLife(FakeGame(lives=3, life_every=3, truncate_at=3))], autoreset_mode=autoreset)
    env = GymEnv.from_vector_env(vec, seed=0, env_id="fake")
    steps = []
    for _ in range(7):
        res = env.advance(torch.tensor([2, 2]))
        steps.append([(bool(res.terminated[i]), bool(res.truncated[i]), bool(res.episode_end[i])) for i in range(2)])
    env.close()
    quiet = (False, False, False)
    assert [s[0] for s in steps] == [quiet, quiet, quiet, (True, False, False), quiet, (False, True, True), quiet]
    assert [s[1] for s in steps] == [quiet, quiet, (True, True, True)] * 2 + [quiet]



def test_ales_frame_cap_is_a_truncation_that_ends_the_reported_game():
    """On ale-py under the nature protocol (lives as learning episodes): the per-game frame cap
    (``max_episode_frames``, 108,000 by default; 200 here, 50 steps) arrives as truncated, not
    terminated, and ends the reported episode, also after a lost life in the same game."""
    resolved = get_suite("atari").resolve(None, "Breakout", {"max_episode_frames": 200})
    env = GymEnv(resolved.env_id, num_envs=1, seed=1, make_kwargs=resolved.make_kwargs, wrappers=resolved.train_wrappers)
    env.reset()
    ends = []
    for t in range(90):
        res = env.advance(torch.tensor([t % 4]))
        if res.done[0]:
            ends.append((bool(res.terminated[0]), bool(res.truncated[0]), bool(res.episode_end[0])))
    env.close()
    # Seed 1: the first game is cut with all its lives; the second loses a life, then is cut.
    assert ends == [(False, True, True), (True, False, False), (False, True, True)]


def test_fire_reset_presses_fire_then_2_after_every_reset():
    game = FakeGame(lives=2, life_every=50)
    env = FireReset(game)
    env.reset(seed=0)
    assert game.actions == [1, 2]
    with pytest.raises(ValueError, match="FireReset needs FIRE as action 1"):
        FireReset(gym.make("CartPole-v1"))


def _frames_env(**options):
    resolved = get_suite("atari").resolve(None, "Breakout", options)
    return resolved


def test_the_nature_protocol_matches_ale_frames_max_pooled_and_resized():
    """One step = 4 emulator frames; the observation's newest frame is the pixel-wise max of the
    last two, greyscale, resized to 84x84 (gymnasium's AtariPreprocessing, checked on ale-py)."""
    import cv2

    gym.register_envs(ale_py)
    raw = gym.make("ALE/Breakout-v5", frameskip=1, repeat_action_probability=0.0)
    raw.reset(seed=0)
    resolved = _frames_env(noop_max=0, fire_reset=False, terminal_on_life_loss=False)
    env = gym.make(resolved.env_id, **resolved.make_kwargs)
    for wrap in resolved.train_wrappers:
        env = wrap(env)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    actions = [1, 2, 2, 3, 0, 3]
    for action in actions:
        obs, *_ = env.step(action)
        grey = []
        for _ in range(4):
            raw.step(action)
            grey.append(raw.unwrapped.ale.getScreenGrayscale())
        pooled = np.maximum(grey[-2], grey[-1])
        expected = cv2.resize(pooled, (84, 84), interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(obs[-1], expected)


def test_frame_stack_holds_the_last_four_frames_and_restarts_after_a_lost_life():
    resolved = _frames_env()
    env = GymEnv(resolved.env_id, num_envs=1, seed=1, make_kwargs=resolved.make_kwargs, wrappers=resolved.train_wrappers)
    first = env.reset()["observation"][0]
    assert all(torch.equal(first[i], first[-1]) for i in range(3))  # padded with the reset frame
    previous = first
    for t in range(400):
        res = env.advance(torch.tensor([t % 4]))
        current = torch.from_numpy(res.next_observation[0])
        if res.done[0]:
            after = res.observation[0]  # the stack after a lost life starts again from one frame
            assert all(torch.equal(after[i], after[-1]) for i in range(3))
            break
        assert torch.equal(current[:3], previous[1:])  # shifted by one frame per step
        previous = current
    else:
        pytest.fail("no life was lost in 400 steps")


def test_one_frame_is_a_channel_first_stack_of_one_that_a_conv_dqn_trains_on(tmp_path):
    """``frame_stack=1`` gives ``(1, 84, 84)`` frames (conv networks take ``(C, H, W)``), and
    ``experiment=dqn_atari`` trains on them."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from rlkit.run import run
    from rlkit.trainers import read_metrics_csv

    resolved = _frames_env(frame_stack=1)
    env = GymEnv(resolved.env_id, num_envs=1, seed=1, make_kwargs=resolved.make_kwargs, wrappers=resolved.train_wrappers)
    first = env.reset()["observation"]
    assert first.shape == (1, 1, 84, 84) and first.dtype == torch.uint8
    res = env.advance(torch.tensor([1]))
    assert res.next_observation.shape == (1, 1, 84, 84)
    env.close()
    overrides = ["experiment=dqn_atari", "env.options.frame_stack=1", "algo.buffer_size=500",
                 "algo.learning_starts=100", "algo.eps_annealing_frames=200",
                 "++algo.network={_target_: rlkit.modules.ConvNet, channels: [8], kernels: [8], strides: [8], hidden: [16]}",
                 "trainer.log_interval=100", "trainer.eval_interval=0", "trainer.progress=false", "total_frames=200"]
    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    run(cfg, tmp_path, overrides=overrides)
    assert any("loss_value" in row for row in read_metrics_csv(tmp_path))


def test_reported_episodes_are_full_games_and_rewards_clipped_only_for_learning():
    resolved = _frames_env()
    from rlkit.envs.transforms import build_transforms

    _, clip = build_transforms(resolved.train_transforms, 0.99)
    env = GymEnv(resolved.env_id, num_envs=1, seed=3, make_kwargs=resolved.make_kwargs,
                 wrappers=resolved.train_wrappers, transforms=clip)
    lives_lost = games = 0
    for t in range(3000):
        res = env.advance(torch.tensor([[1, 2, 3][t % 3]]))
        assert float(res.reward[0]) in (0.0, 1.0) and float(res.raw_reward[0]) >= float(res.reward[0])
        lives_lost += int(res.done[0] and not res.episode_end[0])
        games += int(res.episode_end[0])
        if games == 1:
            break
    assert games == 1 and lives_lost == 4  # Breakout: 5 lives, 4 lost before the game ends


def test_the_evaluation_env_plays_full_games_without_clipping():
    resolved = _frames_env()
    assert not any(w is EpisodicLife for w in resolved.eval_wrappers)
    assert any(w is EpisodicLife for w in resolved.train_wrappers)


def test_machado_protocol_settings():
    resolved = get_suite("atari").resolve(None, "space_invaders", {"protocol": "machado", "full_action_set": True})
    assert resolved.env_id == atari_env_id("SpaceInvaders") == "ALE/SpaceInvaders-v5"
    assert resolved.make_kwargs["repeat_action_probability"] == 0.25 and resolved.make_kwargs["full_action_space"]
    assert not any(w is EpisodicLife for w in resolved.train_wrappers)


@pytest.mark.parametrize(("options", "message"), [
    ({"protocol": "deepmind"}, r"env.options.protocol='deepmind' is not an Atari protocol; valid choices: \['machado', 'nature'\]"),
    ({"frame_stack": 0}, r"env.options.frame_stack=0 is invalid: expected a positive integer"),
    ({"frame_stack": -1}, r"env.options.frame_stack=-1 is invalid: expected a positive integer"),
    ({"sticky": 0.1}, r"env.options has keys env.suite='atari' does not take: \['sticky'\]"),
    # Options the protocol sets (default null) are typed too: 'no' would have switched life loss on.
    ({"terminal_on_life_loss": "no"}, r"terminal_on_life_loss='no' is invalid: expected true or false or null"),
    ({"fire_reset": "maybe"}, r"fire_reset='maybe' is invalid: expected true or false or null"),
    ({"sticky_action_prob": True}, r"sticky_action_prob=True is invalid: expected a number or null"),
    ({"sticky_action_prob": "abc"}, r"sticky_action_prob='abc' is invalid: expected a number or null"),
    ({"noop_max": 1.5}, r"noop_max=1.5 is invalid: expected an integer >= 0 or null"),
    ({"noop_max": -1}, r"noop_max=-1 is invalid: expected an integer >= 0 or null"),
    # (1.0 repeats the first action, NOOP, for good: an evaluation ran to the 108k-frame cap)
    ({"sticky_action_prob": 1.0}, r"sticky_action_prob=1.0 is invalid: expected a number in \[0, 1\)"),
])
def test_bad_atari_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        get_suite("atari").resolve(None, "Breakout", options)


def test_an_unknown_game_is_refused_with_close_names():
    with pytest.raises(ValueError, match=r"env.game='Breakou' is not one of the atari games \(did you mean \[.*'Breakout'"):
        get_suite("atari").resolve(None, "Breakou", {})
    with pytest.raises(ValueError, match=r"env.game='PONG' is not one of the atari games \(did you mean \['Pong'"):
        get_suite("atari").resolve(None, "PONG", {})


@pytest.mark.parametrize("protocol", ["nature", "machado"])
def test_atari_state_round_trip_replays_the_same_future(protocol):
    resolved = get_suite("atari").resolve(None, "Breakout", {"protocol": protocol})
    env = GymEnv(resolved.env_id, num_envs=2, seed=5, make_kwargs=resolved.make_kwargs,
                 wrappers=resolved.train_wrappers, vectorization="sync")
    assert env.exact_state
    rng = np.random.default_rng(0)
    for _ in range(40):
        env.advance(torch.as_tensor(rng.integers(0, 4, 2)))
    state = env.state_dict()
    actions = [torch.as_tensor(rng.integers(0, 4, 2)) for _ in range(150)]
    first = [env.advance(a) for a in actions]
    env.load_state_dict(state)
    second = [env.advance(a) for a in actions]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.next_observation, b.next_observation)
        np.testing.assert_array_equal(a.reward, b.reward)
        np.testing.assert_array_equal(a.episode_end, b.episode_end)


def test_dqn_on_atari_with_frame_replay_resumes_exactly(tmp_path):
    """A short DQN run on Breakout (a small conv net, frames kept once in replay) checkpointed and
    resumed equals the uninterrupted run: losses, parameters and the replay's frames."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from rlkit.run import run
    from rlkit.trainers import load_checkpoint, read_metrics_csv

    conf = str(Path(__file__).resolve().parents[2] / "conf")
    common = ["experiment=dqn_atari", "algo.buffer_size=3000", "algo.learning_starts=200",
              "algo.target_update_interval=20", "algo.eps_annealing_frames=500",
              "++algo.network={_target_: rlkit.modules.ConvNet, channels: [8], kernels: [8], strides: [8], hidden: [32]}",
              "trainer.log_interval=100", "trainer.eval_interval=400", "trainer.eval_episodes=1",
              "trainer.progress=false", "trainer.checkpoint_interval=300"]

    def train(run_dir, frames, resume=False):
        overrides = ([f"resume={run_dir}"] if resume else common) + [f"total_frames={frames}"]
        with initialize_config_dir(config_dir=conf, version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        return run(cfg, run_dir, overrides=overrides)

    train(tmp_path / "straight", 700)
    train(tmp_path / "split", 400)
    train(tmp_path / "split", 700, resume=True)
    drop = {"fps"}
    a = [{k: v for k, v in r.items() if k not in drop} for r in read_metrics_csv(tmp_path / "straight")]
    b = [{k: v for k, v in r.items() if k not in drop} for r in read_metrics_csv(tmp_path / "split")]
    assert a == b and any("loss_value" in r for r in a)
    sa, sb = (load_checkpoint(tmp_path / d / "checkpoints" / "last.pt") for d in ("straight", "split"))
    for key, value in sa["loss_module"].items():
        assert torch.equal(value, sb["loss_module"][key]), key
    frames_a, frames_b = sa["replay_buffer"]["storage"]["frames"], sb["replay_buffer"]["storage"]["frames"]
    assert frames_a["written"] == frames_b["written"] == 700
    assert torch.equal(frames_a["frames"], frames_b["frames"]) and frames_a["frames"].shape[1:] == (84, 84)
    assert "observation" not in sa["replay_buffer"]["storage"]["data"]  # stacks are not stored


def test_a_resume_whose_batches_outgrow_the_frame_ring_is_refused_before_anything_changes(tmp_path):
    """The frame ring is sized at the start for the run's batches: a resume with a larger
    ``algo.train_frequency`` was accepted, rewrote config.yaml and failed at its first batch with a
    traceback naming the storage's ``slack=`` (every later resume failing the same way). Smaller
    batches fit the ring and resume."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from rlkit.errors import ConfigError
    from rlkit.run import run
    from rlkit.trainers import load_checkpoint

    conf = str(Path(__file__).resolve().parents[2] / "conf")
    run_dir = tmp_path / "run"

    def train(overrides):
        with initialize_config_dir(config_dir=conf, version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        return run(cfg, run_dir, overrides=overrides)

    train(["experiment=dqn_atari", "algo.buffer_size=1000", "algo.learning_starts=100", "total_frames=200",
           "++algo.network={_target_: rlkit.modules.ConvNet, channels: [4], kernels: [8], strides: [8], hidden: [8]}",
           "trainer.eval_episodes=1", "trainer.progress=false", "logger=none", "env.options.max_episode_frames=400"])
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=r"^algo\.train_frequency=8 cannot grow when resuming this run: its frame "
                                          r"replay was sized at its start for batches of up to 4 transitions "
                                          r"\(algo\.train_frequency x algo\.num_envs=1\); resume with "
                                          r"algo\.train_frequency <= 4, or start a new run for larger batches$"):
        train([f"resume={run_dir}", "total_frames=400", "algo.train_frequency=8"])
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before
    train([f"resume={run_dir}", "total_frames=300", "algo.train_frequency=2"])
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"] == 300


@pytest.mark.parametrize("normalize_observations", [True, False])
def test_frame_replay_only_where_no_transform_rewrites_the_stacked_frames(tmp_path, normalize_observations):
    """Observation normalisation rewrites each stack slot with the statistics of its own step, so the
    older slots are not earlier steps' newest frames: such a replay stores the stacks whole, and the
    observations read back equal those collected (frame replay would rebuild other values)."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from rlkit.builders import validate_config
    from rlkit.data.frames import FrameStorage
    from rlkit.factories import build_trainer

    conf = str(Path(__file__).resolve().parents[2] / "conf")
    overrides = ["experiment=dqn_atari", "algo.buffer_size=400", "algo.train_frequency=100", "trainer.progress=false",
                 "env.options.screen_size=20", "algo.hidden_sizes=[8]",
                 f"env.transforms=[{{name: normalize, reward: false, observation: {normalize_observations}}}]",
                 "++algo.network={_target_: rlkit.modules.ConvNet, channels: [4], kernels: [4], strides: [4], hidden: [8]}"]
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        settings = validate_config(compose("config", overrides=overrides))
    trainer = build_trainer(settings, tmp_path)
    try:
        storage = trainer.replay_buffer._storage
        assert isinstance(storage, FrameStorage) is not normalize_observations
        batches = []
        for _ in range(3):
            batch = trainer.collector.next_batch()
            trainer.replay_buffer.extend(batch)
            batches.append(batch)
        stored = storage.gather(torch.arange(300))
        collected = torch.cat([b.get("observation") for b in batches])
        assert torch.equal(stored.get("observation"), collected)
        assert torch.equal(stored.get(("next", "observation")), torch.cat([b.get(("next", "observation")) for b in batches]))
    finally:
        trainer.close()


@pytest.mark.parametrize("mode", ["same_step", "disabled"])
def test_game_ends_are_read_in_every_autoreset_mode(mode):
    """A vector env of life-loss episodes reports an episode end at each game over and not at a lost
    life, also in SAME_STEP mode, where a finished sub-env's own info is under ``final_info``."""
    from gymnasium.vector import AutoresetMode, SyncVectorEnv

    autoreset = {"same_step": AutoresetMode.SAME_STEP, "disabled": AutoresetMode.DISABLED}[mode]
    vec = SyncVectorEnv([lambda: EpisodicLife(FakeGame(lives=3, life_every=4)),
                         lambda: EpisodicLife(FakeGame(lives=2, life_every=3))], autoreset_mode=autoreset)
    env = GymEnv.from_vector_env(vec, seed=0, env_id="fake")
    ends = []
    for _ in range(24):
        res = env.advance(torch.tensor([2, 2]))
        ends.append([bool(e) for e in res.episode_end])
    env.close()
    # Sub-env 0: lives lost at game steps 4, 8, 12; each lost life's reset takes one NOOP step of the
    # game, not collected, so the game ends at the 10th collected step. Sub-env 1: steps 3, 6: the 5th.
    assert [t for t, e in enumerate(ends) if e[0]] == [9, 19]
    assert [t for t, e in enumerate(ends) if e[1]] == [4, 9, 14, 19]


@pytest.mark.parametrize("protocol", ["nature", "machado"])
def test_a_time_limit_transform_is_refused_where_episodes_are_lives(protocol):
    """Under the life-loss protocol a time_limit wrapper sits outside the life-loss wrapper: it would
    cut a learning episode while the game went on (and restart its count at every lost life)."""
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from rlkit.builders import validate_config
    from rlkit.errors import ConfigError

    conf = str(Path(__file__).resolve().parents[2] / "conf")
    overrides = ["env=atari", "env.game=Breakout", f"env.options.protocol={protocol}",
                 "env.transforms=[{name: time_limit, max_episode_steps: 100}]"]
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    if protocol == "machado":  # games are episodes: a time limit ends a game
        assert validate_config(cfg).env.transforms[0]["max_episode_steps"] == 100
        return
    with pytest.raises(ConfigError, match=r"env\.transforms\[0\] \(time_limit\) would end the suite's learning "
                                          r"episodes \(lives\), not its games; cap games with env\.options\.max_episode_frames"):
        validate_config(cfg)


def test_a_conv_net_taking_8_bit_frames_unscaled_is_warned_about_once(tmp_path, caplog):
    """README's ConvNet override for an Atari experiment gave no scale: ConvNet's default 1 trained on
    0..255 frames without a word (NatureCNN scales by 1/255). The warning names the fix; MinAtar's 0/1
    channels and a scale given are not warned about; the start's in-memory build (preflight) holds its
    warnings back, so the run says it once."""
    from pathlib import Path
    from types import SimpleNamespace

    from hydra import compose, initialize_config_dir

    from rlkit.agents.networks import make_network
    from rlkit.run import preflight

    conv = {"_target_": "rlkit.modules.ConvNet", "channels": [4], "kernels": [8], "strides": [8], "hidden": [8]}

    def warned(network, high):
        caplog.clear()
        with caplog.at_level("WARNING", logger="rlkit"):
            make_network(SimpleNamespace(network=network), (4, 84, 84), 4, what="the Q-network", obs_dtype=torch.uint8,
                         obs_high=high)
        return [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]

    assert warned(conv, 255.0) == [
        "algo.network rlkit.modules.ConvNet takes uint8 observations up to 255 unscaled (its scale is 1): give it "
        "scale: 0.003921568627 (1/255; on the command line +algo.network.scale=0.003921568627) to scale them to "
        "[0, 1] as NatureCNN does, or scale: 1 to keep them as they are"]
    assert warned({**conv, "scale": 1 / 255}, 255.0) == [] and warned({**conv, "scale": 1.0}, 255.0) == []
    assert warned(conv, 1.0) == [] and warned({"_target_": "rlkit.modules.NatureCNN"}, 255.0) == []
    caplog.clear()
    with caplog.at_level("WARNING", logger="rlkit"):  # A2C's separate actor and critic: said once
        from rlkit.run import run

        with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[2] / "conf"), version_base="1.3"):
            a2c = compose("config", overrides=["env=atari", "env.game=Pong", "algo=a2c", "algo.shared_trunk=false",
                                               "++algo.network={_target_: rlkit.modules.ConvNet, channels: [4], "
                                               "kernels: [8], strides: [8], hidden: [8]}", "total_frames=80",
                                               "trainer.eval_episodes=1", "env.options.max_episode_frames=200",
                                               "trainer.progress=false", "logger=none"])
        run(a2c, tmp_path / "a2c")
    assert sum("unscaled" in r.getMessage() for r in caplog.records) == 1
    conf = str(Path(__file__).resolve().parents[2] / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose("config", overrides=["experiment=dqn_atari", "algo.buffer_size=1000", "trainer.progress=false",
                                           f"++algo.network={{_target_: rlkit.modules.ConvNet, channels: [4], "
                                           f"kernels: [8], strides: [8], hidden: [8]}}"])
    caplog.clear()
    with caplog.at_level("WARNING", logger="rlkit"):
        preflight(cfg)
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
