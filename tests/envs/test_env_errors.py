"""Every error a user can cause names the offending value (and the valid choices)."""
from __future__ import annotations

import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from toy_envs import CounterEnv, MaskedEnv, SpaceEnv, TinyVectorEnv, counter_fn

from rlkit.envs import GymEnv


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_envs must be a positive int, got 0"):
        GymEnv("CartPole-v1", num_envs=0)
    with pytest.raises(ValueError, match="num_envs must be a positive int, got 2.0"):
        GymEnv.from_factory(counter_fn(), 2.0)
    with pytest.raises(ValueError, match=r"unknown action_encoding 'onehot'; valid choices: \['categorical', 'one-hot'\]"):
        GymEnv("CartPole-v1", action_encoding="onehot")
    with pytest.raises(TypeError, match="expected a gymnasium.vector.VectorEnv, got CounterEnv"):
        GymEnv.from_vector_env(counter_fn()())


def test_unsupported_spaces_list_the_supported_ones():
    with pytest.raises(TypeError, match=r"unsupported action space Tuple.*supported action spaces: Discrete"):
        GymEnv.from_factory(lambda: SpaceEnv(spaces.Tuple([spaces.Discrete(2)])))
    with pytest.raises(TypeError, match=r"unsupported observation space Text.*supported observation spaces: Box"):
        GymEnv.from_factory(lambda: SpaceEnv(spaces.Discrete(2), spaces.Text(5)))
    extra = spaces.Dict({"observation": spaces.Box(0, 1, (2,)), "goal": spaces.Box(0, 1, (2,))})
    with pytest.raises(ValueError, match=r"unsupported Dict observation space with keys \['goal', 'observation'\]"):
        GymEnv.from_factory(lambda: SpaceEnv(spaces.Discrete(2), extra))
    bad_mask = spaces.Dict({"observation": spaces.Box(0, 1, (2,)), "action_mask": spaces.Discrete(3)})
    with pytest.raises(TypeError, match=r"unsupported 'action_mask' space Discrete\(3\)"):
        GymEnv.from_factory(lambda: SpaceEnv(spaces.Discrete(3), bad_mask))
    masked = spaces.Dict({"observation": spaces.Box(0, 1, (2,)), "action_mask": spaces.MultiBinary(3)})
    with pytest.raises(ValueError, match=r"action mask has 3 entries but there are 2 actions"):
        GymEnv.from_factory(lambda: SpaceEnv(spaces.Discrete(2), masked))
    with pytest.raises(TypeError, match=r"provides an action mask, which needs a Discrete action space; got Box"):
        GymEnv.from_factory(lambda: SpaceEnv(spaces.Box(0, 1, (3,)), masked))


@pytest.mark.parametrize("vectorization", ["sync", "single"])
def test_non_finite_observation_and_reward_name_env_step_sub_env_and_value(vectorization):
    env = GymEnv.from_factory(counter_fn(terminate_at=9, nan_at=2), 1, env_id="counter", vectorization=vectorization)
    td = env.reset().set("action", torch.zeros(1, dtype=torch.int64))
    env.step(td)
    with pytest.raises(ValueError, match=r"non-finite observation from env 'counter' at step 2, sub-env 0: \[nan, \d+\.0\]"):
        env.step(td)
    env = GymEnv.from_factory(counter_fn(terminate_at=9, inf_reward_at=1), 2, env_id="counter")
    with pytest.raises(ValueError, match=r"non-finite reward from env 'counter' at step 1, sub-env 0: \[inf\]"):
        env.step(env.reset().set("action", torch.zeros(2, dtype=torch.int64)))
    with pytest.raises(ValueError, match=r"non-finite observation from env 'counter' at step 0, sub-env 0"):
        GymEnv.from_factory(counter_fn(nan_at=0), 1, env_id="counter", vectorization=vectorization)
    env = GymEnv.from_factory(counter_fn(terminate_at=9, inf_reward_at=1), 1, env_id="counter",
                              vectorization=vectorization)
    with pytest.raises(ValueError, match=r"non-finite reward from env 'counter' at step 1, sub-env 0: \[inf\]"):
        env.step(env.reset().set("action", torch.zeros(1, dtype=torch.int64)))
    env = GymEnv.from_factory(counter_fn(terminate_at=1, nan_reset_episode=1), 1, env_id="counter",
                              vectorization=vectorization)
    with pytest.raises(ValueError, match=r"non-finite observation \(after reset\) from env 'counter' at step 1, sub-env 0: \[0\.0, nan\]"):
        env.step(env.reset().set("action", torch.zeros(1, dtype=torch.int64)))
    env = GymEnv.from_factory(counter_fn(terminate_at=1, nan_reset_episode=1), 2, env_id="counter")
    with pytest.raises(ValueError, match=r"non-finite observation \(after reset\) from env 'counter' at step 1, sub-env 0: \[0\.0, nan\]"):
        env.step(env.reset().set("action", torch.zeros(2, dtype=torch.int64)))


@pytest.mark.parametrize("vectorization", ["sync", "single"])
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_a_reward_beyond_float32_is_refused_as_non_finite(vectorization, monkeypatch):
    # Rewards are stored as float32: 1e39 would be inf there, so it is refused like inf itself.
    monkeypatch.setattr(CounterEnv, "step", lambda self, action: (self._obs(), 1e39, False, False, {}))
    env = GymEnv.from_factory(counter_fn(terminate_at=9), 1, env_id="counter", vectorization=vectorization)
    with pytest.raises(ValueError, match=r"non-finite reward from env 'counter' at step 1, sub-env 0: \[inf\]"):
        env.step(env.reset().set("action", torch.zeros(1, dtype=torch.int64)))


def test_bad_actions_name_the_value_sub_env_and_step():
    env = GymEnv("CartPole-v1", num_envs=3, seed=0)
    td = env.reset()
    with pytest.raises(ValueError, match=r"action 2 for sub-env 1 of env 'CartPole-v1' at step 1 is outside the action spec Categorical\(n=2\)"):
        env.step(td.set("action", torch.tensor([0, 2, 1])))
    with pytest.raises(ValueError, match=r"action -1 for sub-env 0 .* outside the action spec"):
        env.step(td.set("action", torch.tensor([-1, 0, 1])))
    with pytest.raises(ValueError, match=r"action for env 'CartPole-v1' at step 1 must be a tensor of shape \(3,\), got \(2,\)"):
        env.advance(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"must be a tensor of shape \(3,\), got list"):
        env.advance([0, 1, 0])
    with pytest.raises(KeyError, match=r"step needs an 'action' entry; the TensorDict has keys \['observation'\]"):
        env.step(env.reset())
    wide = GymEnv("CartPole-v1", num_envs=40, seed=0)  # the vectorised check used for many envs
    bad = torch.zeros(40, dtype=torch.int64)
    bad[33] = 5
    with pytest.raises(ValueError, match=r"action 5 for sub-env 33 .* outside the action spec"):
        wide.step(wide.reset().set("action", bad))
    single = GymEnv("CartPole-v1", seed=0)
    with pytest.raises(ValueError, match=r"action 2 for sub-env 0 of env 'CartPole-v1' at step 1 is outside the action spec"):
        single.advance(torch.tensor([2]))
    with pytest.raises(ValueError, match=r"action for env 'CartPole-v1' at step 1 must be a tensor of shape \(1,\), got \(\)"):
        single.advance(torch.tensor(1))
    # Box actions beyond the bounds are clipped when stepping (a policy's sample may leave them); NaN is refused.
    box = GymEnv.from_factory(lambda: SpaceEnv(spaces.Box(-1.0, 1.0, (2,))), 2, env_id="box")
    with pytest.raises(ValueError, match=r"action \[0\.0, nan\] for sub-env 1 of env 'box' at step 1 holds NaN; the action spec is Bounded\(low=\[-1\.0, -1\.0\], high=\[1\.0, 1\.0\]\)"):
        box.step(box.reset().set("action", torch.tensor([[0.0, 0.0], [0.0, float("nan")]])))
    # An out-of-bounds (clipped, legal) row before the NaN one is not the culprit.
    with pytest.raises(ValueError, match=r"action \[nan, 0\.0\] for sub-env 1 of env 'box' at step 1 holds NaN"):
        box.advance(torch.tensor([[5.0, 0.0], [float("nan"), 0.0]]))


def test_masked_action_is_rejected_with_the_allowed_ones():
    env = GymEnv.from_factory(lambda: MaskedEnv("obs"), 2, env_id="masked", action_encoding="one-hot")
    td = env.reset().set("action", torch.tensor([[0, 0, 1], [0, 1, 0]]))
    with pytest.raises(ValueError, match=r"action 1 for sub-env 1 of env 'masked' at step 1 is masked out; allowed actions: \[0, 2\]"):
        env.step(td)
    for mask_in in ("obs", "info"):  # the single-env path reads the mask from both places
        single = GymEnv.from_factory(lambda: MaskedEnv(mask_in), 1, env_id="masked", vectorization="single")
        td = single.reset()
        for t in range(6):  # allowed: action t % 4 % 3 and 2 (episodes of 4 steps)
            assert td["action_mask"].tolist() == [[i in (t % 4 % 3, 2) for i in range(3)]]
            td = single.next_state(single.step(td.set("action", torch.tensor([t % 4 % 3]))))
        with pytest.raises(ValueError, match=r"action 1 for sub-env 0 of env 'masked' at step 7 is masked out; allowed actions: \[2\]"):
            single.step(td.set("action", torch.tensor([1])))


def test_unknown_vector_env_class_needs_same_step():
    with pytest.raises(ValueError, match=r"cannot reset single sub-envs of TinyVectorEnv \(env 'tiny'\) in autoreset mode NEXT_STEP"):
        GymEnv.from_vector_env(TinyVectorEnv(AutoresetMode.NEXT_STEP), env_id="tiny")
    env = GymEnv.from_vector_env(TinyVectorEnv(AutoresetMode.SAME_STEP), env_id="tiny")
    td = env.step(env.reset().set("action", torch.tensor([1])))
    assert td["next", "observation"].tolist() == [[1.0, 1.0]]  # the final obs from info
    assert env.next_state(td)["observation"].tolist() == [[0.0, 0.0]]


def test_the_finite_check_skips_integer_pixels_but_not_a_float_reward_beside_them():
    import numpy as np

    from rlkit.envs.checks import all_finite

    pixels = np.full((4, 84, 84), 255, dtype=np.uint8)  # summed, these would cost a pass over every frame
    assert all_finite(np.zeros(1, np.float32), pixels, pixels.astype(bool))
    assert not all_finite(np.array([np.inf], np.float32), pixels)
    assert not all_finite(np.zeros(1, np.float32), np.full((3, 30), np.nan))


def test_a_device_that_does_not_exist_is_named():
    """``device='cuda:7'`` on a machine without it raised torch's AssertionError at the first step."""
    for device, message in [("gpu", r"GymEnv: device='gpu' is not a torch device"),
                            ("cpu:3", r"GymEnv: device='cpu:3' does not exist")]:
        with pytest.raises(ValueError, match=message):
            GymEnv("CartPole-v1", device=device)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"GymEnv: device='cuda:7' but CUDA is not available here; use device=cpu"):
            GymEnv("CartPole-v1", device="cuda:7")
