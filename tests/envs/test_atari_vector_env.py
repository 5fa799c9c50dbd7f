"""ale-py's ``AtariVectorEnv`` (C++ preprocessing) against rlkit's Atari pipeline, as measured in
docs/atari_vector_env.md: what is bit-identical (the frame pipeline; machado with the derived seed)
and what differs (the stack's padding at a reset; the nature protocol's FIRE reset and loss of a
life; no emulator state capture). A failure here means ale-py changed: update the document."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

ale_py = pytest.importorskip("ale_py")
cv2 = pytest.importorskip("cv2")

_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "atari_vector_compare.py"
_spec = importlib.util.spec_from_file_location("atari_vector_compare", _SCRIPT)
assert _spec is not None and _spec.loader is not None
compare_script = sys.modules.setdefault("atari_vector_compare", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(compare_script)

STEPS = 300


def _traces(game: str, config: str, seed: int, steps: int = STEPS):
    options, kwargs = compare_script.CONFIGS[config]
    n_actions = {"Breakout": 4, "Pong": 6}[game]
    actions = np.random.default_rng(seed).integers(0, n_actions, steps)
    ours = compare_script.run_rlkit(game, options, seed, actions)
    theirs = compare_script.run_vector(game, kwargs, seed, actions, 108_000)
    return ours, theirs


def _assert_same_but_padding(ours, theirs) -> None:
    """Newest frames, rewards, flags and lives identical at every step; the stacks differ only where
    the vector env pads with zero frames after a reset (gymnasium repeats the reset frame)."""
    for name in ("reward", "terminated", "truncated", "lives"):
        assert getattr(ours, name) == getattr(theirs, name), name
    padded = 0
    for a, b in zip(ours.next_obs + ours.obs, theirs.next_obs + theirs.obs):
        np.testing.assert_array_equal(a[-1], b[-1])
        for i in range(a.shape[0] - 1):
            if not np.array_equal(a[i], b[i]):
                # the vector env's zero frame stands where gymnasium repeats the frame after it
                assert not b[i].any() and np.array_equal(a[i], a[i + 1]), "not a padding difference"
                padded += 1
    assert padded > 0  # the padding difference is still there (ale-py zero-fills the stack at a reset)


@pytest.mark.parametrize("game", ["Breakout", "Pong"])
def test_the_frame_pipeline_is_bit_identical_up_to_the_reset_padding(game):
    """nature with no-ops, FIRE reset and life loss off: frame skip 4, max of the last two frames,
    greyscale, INTER_AREA 84x84 resize, raw rewards, game over, lives: the same bytes."""
    _assert_same_but_padding(*_traces(game, "frames", seed=1))


def test_machado_is_bit_identical_given_the_ale_seed_that_atari_env_derives():
    """Sticky actions (0.25) draw from the emulator's generator: identical when the vector env is
    seeded with ``AtariEnv``'s derived ALE seed (possible only when it is non-negative)."""
    assert compare_script.ale_seed(1) >= 0 > compare_script.ale_seed(0)
    _assert_same_but_padding(*_traces("Breakout", "machado", seed=1))


def test_the_vector_fire_reset_is_one_fire_frame_before_the_noops():
    """AtariVectorEnv: reset_game, one emulator frame of FIRE, then its no-ops; rlkit (SB3's
    FireResetEnv): after the no-ops, FIRE then action 2 as agent steps (4 frames each)."""
    from ale_py.vector_env import AtariVectorEnv

    gym.register_envs(ale_py)
    raw = gym.make("ALE/Breakout-v5", frameskip=1, repeat_action_probability=0.0)
    raw.reset(seed=1)
    raw.step(1)
    expected = cv2.resize(raw.unwrapped.ale.getScreenGrayscale(), (84, 84), interpolation=cv2.INTER_AREA)
    vec = AtariVectorEnv("breakout", 1, num_threads=1, noop_max=0, use_fire_reset=True)
    obs, _ = vec.reset(seed=1)
    vec.close()
    np.testing.assert_array_equal(obs[0, -1], expected)
    assert not obs[0, :-1].any()
    ours, _ = _traces("Breakout", "nature_noop0", seed=1, steps=1)
    assert not np.array_equal(ours.obs[0][-1], expected)


def test_the_vector_episodic_life_restarts_the_game_at_a_lost_life():
    """rlkit's EpisodicLife ends the learning episode and goes on with the game (lives 5, 4, ...);
    AtariVectorEnv(episodic_life=True) resets the game itself: every life starts with 5 lives."""
    ours, theirs = _traces("Breakout", "nature_noop0", seed=1, steps=150)
    t_ours, t_theirs = ours.terminated.index(True), theirs.terminated.index(True)
    assert ours.lives[t_ours] == 4 and ours.lives[t_ours + 1] == 4  # the game went on
    assert theirs.lives[t_theirs] == 4 and theirs.lives[t_theirs + 1] == 5  # a new game
    assert max(ours.lives[t_ours + 1:]) == 4 and min(theirs.lives[t_theirs + 1:]) >= 4


def test_the_vector_interface_cannot_capture_the_emulators_state():
    """rlkit checkpoints each emulator (``AtariEnv.clone_state``) to resume exactly; ale-py's vector
    interface has no such call."""
    public = {name for name in dir(ale_py.ALEVectorInterface) if not name.startswith("_")}
    assert public == {"get_action_set", "get_num_envs", "get_observation_shape", "handle", "recv", "reset", "send"}
