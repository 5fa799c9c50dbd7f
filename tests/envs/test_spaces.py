"""Specs derived from gymnasium spaces, action encoding, and action masks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from toy_envs import MaskedEnv, SpaceEnv

from rlkit.data import Binary, Bounded, Categorical, MultiOneHot, OneHot
from rlkit.envs import GymEnv
from rlkit.envs.spaces import SpaceCodec


def _space_env(action_space, observation_space=None, num_envs=2, **kwargs) -> GymEnv:
    return GymEnv.from_factory(lambda: SpaceEnv(action_space, observation_space), num_envs, seed=0, **kwargs)


def _sent(env: GymEnv) -> list:
    """The action each sub-env last received from gymnasium."""
    return [np.asarray(e.unwrapped.last_action).tolist() for e in env.vector_env.envs]


def test_discrete_categorical_and_one_hot():
    env = _space_env(spaces.Discrete(3, start=-1))
    assert env.action_spec == Categorical(3)
    env.step(env.reset().set("action", torch.tensor([0, 2])))
    assert _sent(env) == [-1, 1]  # index + start
    env = _space_env(spaces.Discrete(3), action_encoding="one-hot")
    assert env.action_spec == OneHot(3)
    env.step(env.reset().set("action", torch.tensor([[0, 0, 1], [0, 1, 0]])))
    assert _sent(env) == [2, 1]


def test_multi_discrete_is_multi_one_hot():
    env = _space_env(spaces.MultiDiscrete([2, 3]))
    assert isinstance(env.action_spec, MultiOneHot) and env.action_spec.nvec == [2, 3]
    env.step(env.reset().set("action", torch.tensor([[0, 1, 0, 0, 1], [1, 0, 1, 0, 0]])))
    assert _sent(env) == [[1, 2], [0, 0]]


def test_multi_binary_is_binary():
    env = _space_env(spaces.MultiBinary(3))
    assert env.action_spec == Binary(3)
    env.step(env.reset().set("action", torch.tensor([[1, 0, 1], [0, 0, 0]])))
    assert _sent(env) == [[1, 0, 1], [0, 0, 0]]


def test_box_actions_are_bounded_float32_and_box_observations_keep_their_dtype():
    box = spaces.Box(np.array([-1.0, 0.0]), np.array([1.0, 2.0]), dtype=np.float64)
    env = _space_env(box, observation_space=spaces.Box(0, 255, (2, 2), np.uint8))
    assert env.action_spec == Bounded(torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 2.0]), (2,))
    td = env.reset()
    assert td["observation"].dtype == torch.uint8 and td["observation"].shape == (2, 2, 2)  # pixels stay uint8
    spec = env.observation_spec["observation"]
    assert spec.shape == (2, 2) and spec.dtype == torch.uint8 and spec.high.max() == 255
    env.step(td.set("action", torch.tensor([[0.5, 1.5], [-1.0, 2.0]])))
    assert _sent(env) == [[0.5, 1.5], [-1.0, 2.0]]
    env.step(env.next_state().set("action", torch.tensor([[3.0, -1.0], [0.0, 9.0]])))
    assert _sent(env) == [[1.0, 0.0], [0.0, 2.0]]  # clipped to the bounds when stepping


def test_discrete_observation_is_one_hot():
    env = _space_env(spaces.Discrete(2), observation_space=spaces.Discrete(4, start=1))
    obs = env.reset()["observation"]
    assert obs.shape == (2, 4) and obs.dtype == torch.float32 and (obs.sum(-1) == 1).all()
    raw = [int(e.unwrapped.last_obs) for e in env.vector_env.envs]
    assert obs.argmax(-1).tolist() == [r - 1 for r in raw]  # index - start


@pytest.mark.parametrize("same_step", [False, True])
@pytest.mark.parametrize("mask_in", ["obs", "info"])
def test_action_mask_from_observation_or_info(mask_in, same_step):
    if same_step:  # a SAME_STEP vector env keeps the final observation and mask in info
        vec = SyncVectorEnv([lambda: MaskedEnv(mask_in)] * 2, autoreset_mode=AutoresetMode.SAME_STEP)
        env = GymEnv.from_vector_env(vec, seed=0)
    else:
        env = GymEnv.from_factory(lambda: MaskedEnv(mask_in), 2, seed=0)
    assert env.observation_spec["action_mask"] == Binary(3, dtype=torch.bool)
    td = env.reset()
    assert td["action_mask"].tolist() == [[True, False, True]] * 2
    td = env.step(td.set("action", torch.tensor([0, 2])))
    assert td["next", "action_mask"].tolist() == [[False, True, True]] * 2
    for _ in range(3):  # episode ends at t == 4: the final mask is in "next", the reset one is next
        td = env.next_state(td)
        td["action"] = torch.tensor([2, 2])
        td = env.step(td)
    assert td["next", "done"].all() and td["next", "observation"].tolist() == [[4.0]] * 2
    assert td["next", "action_mask"].tolist() == [[False, True, True]] * 2  # t = 4
    assert env.next_state(td)["action_mask"].tolist() == [[True, False, True]] * 2  # t = 0
    assert env.next_state(td)["observation"].tolist() == [[0.0]] * 2
    for _ in range(20):  # random actions never pick a masked action
        td = env.next_state(td)
        action = env.rand_action()
        assert td["action_mask"].gather(-1, action[:, None]).all()
        td = env.step(td.set("action", action))


def test_an_integer_box_action_takes_the_nearest_integer_within_the_bounds():
    # A Gaussian's float samples were cast with astype: 0.7 -> 0 and -0.7 -> 0 (truncation toward zero).
    codec = SpaceCodec(spaces.Box(-1, 1, (2,)), spaces.Box(-3, 3, (2,), np.int64), "categorical", "demo")
    encoded, ok = codec.encode_action(torch.tensor([[0.7, -0.7], [2.5, -1e30]]))
    assert ok and encoded.dtype == np.int64
    assert encoded.tolist() == [[1, -1], [2, -3]]  # (numpy rounds halves to even; clipped before the cast)
    assert not codec.encode_action(torch.tensor([[float("nan"), 0.0]]))[1]
    full = SpaceCodec(spaces.Box(-1, 1, (2,)), spaces.Box(-np.inf, np.inf, (2,), np.int64), "categorical", "demo")
    encoded, ok = full.encode_action(torch.tensor([[1e30, -1e30]]))  # (the cast overflowed to the minimum)
    assert ok and encoded.tolist() == [[np.iinfo(np.int64).max, np.iinfo(np.int64).min]]
