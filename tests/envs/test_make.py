"""Building envs from ids: unknown ids, missing extras, vectorization choices."""
from __future__ import annotations

import sys

import gymnasium as gym
import pytest

from rlkit.envs import GymEnv
from rlkit.envs.make import dependency_error, find_env_spec


def test_unknown_env_id_suggests_close_ids():
    with pytest.raises(ValueError, match=r"env id 'CartPol-v1' is not a registered gymnasium id; close matches: \[.*'CartPole-v1'"):
        GymEnv("CartPol-v1")
    with pytest.raises(ValueError, match=r"env id 'Zzzqqq-v0' is not a registered gymnasium id; run gymnasium.pprint_registry"):
        GymEnv("Zzzqqq-v0")
    with pytest.raises(ValueError, match="env id must be a non-empty string, got ''"):
        find_env_spec("")
    with pytest.raises(ValueError, match="env id 'no_such_module_xyz:Foo-v0': cannot import module 'no_such_module_xyz'"):
        GymEnv("no_such_module_xyz:Foo-v0")


def test_missing_box2d_says_how_to_install(monkeypatch):
    # As on a machine without the extra (the test extra installs it): Box2D cannot be imported.
    monkeypatch.setitem(sys.modules, "Box2D", None)
    for name in [m for m in sys.modules if m.startswith("gymnasium.envs.box2d")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError, match=r"'LunarLander-v3' needs an optional dependency.*pip install \"gymnasium\[box2d\]\""):
        GymEnv("LunarLander-v3")


def test_dependency_error_infers_the_extra():
    spec = gym.envs.registration.EnvSpec("Ant-v5", entry_point="gymnasium.envs.mujoco.ant_v5:AntEnv")
    err = dependency_error("Ant-v5", spec, gym.error.DependencyNotInstalled("No module named 'mujoco'"))
    assert 'pip install "gymnasium[mujoco]"' in str(err)

    def needs_dep(**kwargs):
        raise gym.error.DependencyNotInstalled("the 'foo' package is missing")

    gym.register("RlkitTest/NeedsDep-v0", entry_point=needs_dep)
    with pytest.raises(ImportError, match=r"'RlkitTest/NeedsDep-v0' needs an optional.*'foo' package.*install the package that provides it"):
        GymEnv("RlkitTest/NeedsDep-v0")


def test_bad_vectorization():
    with pytest.raises(ValueError, match=r"unknown vectorization 'async'; valid choices: \['auto', 'native', 'sync', 'single'\]"):
        GymEnv("CartPole-v1", vectorization="async")
    with pytest.raises(ValueError, match=r"vectorization='single' drives one env, got num_envs=2; use 'auto' or 'sync'"):
        GymEnv("CartPole-v1", num_envs=2, vectorization="single")
    with pytest.raises(ValueError, match=r"env 'Acrobot-v1' has no native vector env; envs with one: \[.*'CartPole-v1'"):
        GymEnv("Acrobot-v1", vectorization="native")


@pytest.mark.parametrize(("env_id", "num_envs", "expected"), [
    ("CartPole-v1", 1, "single"), ("CartPole-v1", 2, "native"), ("Acrobot-v1", 1, "single"), ("Acrobot-v1", 2, "sync"),
])
def test_auto_drives_one_env_directly_and_vectorises_several(env_id, num_envs, expected):
    env = GymEnv(env_id, num_envs=num_envs, seed=0)
    assert env.vectorization == expected
    env.close()
