"""Every conf/experiment/ setting composes, validates and carries the published hyperparameters."""
from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from published import PUBLISHED
from rlkit.builders import validate_config
from rlkit.envs.suites import get_suite

CONF = Path(__file__).resolve().parents[2] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _settings(name: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return validate_config(compose("config", overrides=[f"experiment={name}"]))


def test_every_experiment_has_a_published_figure_and_back():
    assert set(EXPERIMENTS) == set(PUBLISHED)
    assert len(EXPERIMENTS) == 18


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_matches_its_published_setting(name):
    s = _settings(name)
    pub = PUBLISHED[name]
    assert get_suite(s.env.suite).resolve(s.env.id, s.env.game, s.env.options).env_id == pub.env_id
    assert s.root.total_frames == pub.frames
    assert s.algo.name == name.split("_")[0]
    assert s.root.trainer.early_stop is False  # the figures are at the full budget


@pytest.mark.parametrize("name", [n for n in EXPERIMENTS if n.split("_")[0] in ("dqn", "c51")
                                  and "minatar" not in n and "atari" not in n])
def test_cleanrl_settings(name):
    s = _settings(name)
    a = s.algo
    # target_network_frequency 500 frames, train_frequency 10 -> one copy every 50 updates
    assert a.target_update_interval * a.train_frequency == 500 and a.tau is None
    assert a.eps_annealing_frames == 0.5 * s.root.total_frames  # exploration_fraction 0.5
    assert (a.learning_starts, a.batch_size, a.buffer_size, a.hidden_sizes) == (10_000, 128, 10_000, [120, 84])
    assert (a.eps_init, a.eps_end, a.num_envs, a.max_grad_norm) == (1.0, 0.05, 1, None)
    assert a.optim["_target_"] == "torch.optim.Adam" and a.optim["lr"] == 2.5e-4
    if a.name == "c51":
        assert a.optim["eps"] == 0.01 / a.batch_size  # c51.py: Adam(eps=0.01 / batch_size)
        assert (a.n_atoms, a.v_min, a.v_max) == (101, -100.0, 100.0)
    else:
        assert "eps" not in a.optim and a.loss_function == "l2" and not a.double_dqn


@pytest.mark.parametrize(("name", "num_envs", "frames", "normalize"), [  # the classic-control ones
    ("a2c_cartpole", 8, 500_000, False), ("a2c_acrobot", 16, 500_000, True), ("a2c_mountaincar", 16, 1_000_000, True),
])
def test_rl_zoo_a2c_settings(name, num_envs, frames, normalize):
    s = _settings(name)
    a = s.algo
    assert a.num_envs == num_envs and a.n_steps == 5 and s.root.total_frames == frames
    assert s.value_estimator.gamma == 0.99
    assert (s.value_estimator.name, s.value_estimator.lmbda, s.value_estimator.average_gae) == ("gae", 1.0, False)
    assert (a.entropy_coeff, a.critic_coeff, a.max_grad_norm, a.loss_critic_type) == (0.0, 0.5, 0.5, "l2")
    assert a.optim == {"_target_": "torch.optim.RMSprop", "lr": 7e-4, "alpha": 0.99, "eps": 1e-5}
    assert (a.hidden_sizes, a.activation, a.shared_trunk, a.normalize_advantage) == ([64, 64], "tanh", False, False)
    assert (a.ortho_init, a.distribution, a.lr_schedule) == (True, "auto", "constant")
    assert ([t["name"] for t in s.env.transforms] == ["normalize"]) == normalize


def test_rl_zoo_a2c_pendulum_settings():
    """a2c.yml's tuned Pendulum-v1 entry, key by key."""
    s = _settings("a2c_pendulum")
    a, est = s.algo, s.value_estimator
    assert (a.num_envs, a.n_steps, s.root.total_frames) == (8, 8, 1_000_000)
    assert (est.name, est.gamma, est.lmbda, est.average_gae) == ("gae", 0.9, 0.9, False)
    assert (a.entropy_coeff, a.critic_coeff, a.max_grad_norm, a.loss_critic_type) == (0.0, 0.4, 0.5, "l2")
    assert a.optim == {"_target_": "torch.optim.RMSprop", "lr": 7e-4, "alpha": 0.99, "eps": 1e-5}
    assert a.lr_schedule == "linear" and not a.normalize_advantage
    assert (a.distribution, a.log_std_init, a.sde_sample_freq, a.ortho_init) == ("gsde", -2.0, -1, False)
    assert (a.hidden_sizes, a.activation, a.shared_trunk) == ([64, 64], "tanh", False)
    assert s.env.transforms == [{"name": "normalize"}]


@pytest.mark.parametrize("game", ["asterix", "breakout", "freeway", "seaquest", "space_invaders"])
def test_minatar_dqn_settings(game):
    """MinAtar's examples/dqn.py, constant by constant."""
    s = _settings(f"dqn_minatar_{game}")
    a = s.algo
    assert (s.env.suite, s.env.game, s.env.options) == (
        "minatar", game, {"full_action_set": True, "sticky_action_prob": 0.1, "difficulty_ramping": True})
    assert (a.batch_size, a.buffer_size, a.learning_starts, a.target_update_interval) == (32, 100_000, 5_000, 1_000)
    assert (a.train_frequency, a.updates_per_batch, a.num_envs, a.tau, a.prioritized) == (1, 1, 1, None, False)
    assert (a.eps_init, a.eps_end, a.eps_annealing_frames, a.eps_annealing_start) == (1.0, 0.1, 100_000, 5_000)
    assert {k: v for k, v in a.optim.items() if v is not None} == {
        "_target_": "torch.optim.RMSprop", "lr": 2.5e-4, "alpha": 0.95, "eps": 0.01, "centered": True}
    assert (a.loss_function, a.double_dqn, a.max_grad_norm) == ("smooth_l1", False, None)
    assert a.network == {"_target_": "rlkit.modules.MinAtarNet"}
    assert (s.value_estimator.name, s.value_estimator.gamma, s.root.total_frames) == ("td0", 0.99, 5_000_000)
    pub = PUBLISHED[f"dqn_minatar_{game}"]
    assert pub.curve[-1][0] == 5_000_000 and pub.mean == pub.curve[-1][1] and pub.runs == 30


@pytest.mark.parametrize(("name", "lr", "target_every", "extra"), [
    ("dqn_atari", 1e-4, 250, {}), ("c51_atari", 2.5e-4, 2500, {"eps": 0.01 / 32}),
])
def test_cleanrl_atari_settings(name, lr, target_every, extra):
    """dqn_atari.py / c51_atari.py: their Args, in rlkit's units (targets in updates of one per 4 steps)."""
    s = _settings(name)
    a = s.algo
    assert (s.env.suite, s.env.game, s.env.options["protocol"]) == ("atari", "Breakout", "nature")
    assert (a.buffer_size, a.batch_size, a.learning_starts, a.train_frequency) == (1_000_000, 32, 80_000, 4)
    assert a.target_update_interval * a.train_frequency == target_every * 4 and a.tau is None
    assert (a.eps_init, a.eps_end, a.eps_annealing_frames) == (1.0, 0.01, 0.1 * s.root.total_frames)
    assert a.optim == {"_target_": "torch.optim.Adam", "lr": lr, "fused": False, **extra}
    assert a.network == {"_target_": "rlkit.modules.NatureCNN"} and s.root.trainer.eval_epsilon == 0.05
    if name == "c51_atari":
        assert (a.n_atoms, a.v_min, a.v_max, a.double_dqn) == (51, -10.0, 10.0, False)


def test_rl_zoo_a2c_atari_settings():
    s = _settings("a2c_atari")
    a = s.algo
    assert (a.num_envs, a.n_steps, s.root.total_frames, a.shared_trunk, a.ortho_init) == (16, 5, 10_000_000, True, True)
    assert (a.entropy_coeff, a.critic_coeff, a.max_grad_norm) == (0.01, 0.25, 0.5)
    assert a.optim == {"_target_": "rlkit.optim.RMSpropTF", "lr": 7e-4, "alpha": 0.99, "eps": 1e-5}
    assert (s.value_estimator.gamma, s.value_estimator.lmbda) == (0.99, 1.0)
