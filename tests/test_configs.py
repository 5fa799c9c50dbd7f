"""Every config group composes; every valid (algo, value_estimator) pair builds; bad configs are refused."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from rlkit.builders import validate_config
from rlkit.config_schema import ConfigError
from rlkit.factories import build_trainer

CONF = str(Path(__file__).resolve().parents[1] / "conf")
VALID = {
    "dqn": ["td0", "td1", "td_lambda"],
    "c51": ["td0"],
    "a2c": ["gae", "td0", "td1", "td_lambda"],
}
ALL_ESTIMATORS = ["td0", "td1", "td_lambda", "gae"]
ESTIMATOR_CLASSES = {"td0": "TD0Estimator", "td1": "TD1Estimator", "td_lambda": "TDLambdaEstimator", "gae": "GAE"}


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize("algo,default", [("dqn", "td0"), ("c51", "td0"), ("a2c", "gae")])
def test_each_algo_picks_its_default_estimator(algo, default):
    assert _compose(f"algo={algo}").value_estimator.name == default


THRESHOLDS = {"CartPole": ("CartPole-v1", 475.0), "Acrobot": ("Acrobot-v1", -100.0),
              "MountainCar": ("MountainCar-v0", -110.0), "LunarLander": ("LunarLander-v3", 200.0),
              "Pendulum": ("Pendulum-v1", None), "MountainCarContinuous": ("MountainCarContinuous-v0", 90.0),
              "FrozenLake": ("FrozenLake-v1", 0.7)}


@pytest.mark.parametrize("env", sorted(THRESHOLDS))
def test_env_group_options_validate_with_their_spec_threshold(env):
    settings = validate_config(_compose(f"env={env}"))
    assert (settings.env.id, settings.env.target_return) == THRESHOLDS[env]


def test_overriding_the_id_never_keeps_another_envs_threshold():
    settings = validate_config(_compose("env=MountainCar", "env.id=CartPole-v1"))
    assert settings.env.target_return == 475.0  # CartPole's, not MountainCar's -110
    assert validate_config(_compose("env=gym", "env.id=Acrobot-v1")).env.target_return == -100.0
    assert validate_config(_compose("env=CartPole", "env.target_return=null")).env.target_return is None
    assert validate_config(_compose("env=CartPole", "env.target_return=100")).env.target_return == 100


@pytest.mark.parametrize(("override", "message"), [
    ("+trainer.eval_interva=100", r"^unknown key trainer\.eval_interva \(did you mean 'eval_interval'\?\); valid keys: "
                                  r"\['log_interval', 'eval_interval'"),
    ("trainer.log_interval=1.5", r"^trainer\.log_interval=1\.5 is invalid: expected an integer$"),
    ("total_frames=1e5", r"^total_frames=100000\.0 is invalid: expected an integer; write total_frames=100000$"),
    ("total_frames=abc", r"^total_frames='abc' is invalid: expected an integer$"),
    ("total_frames=null", r"^total_frames=null is invalid: expected an integer$"),
    ("algo.hidden_sizes=64", r"^algo\.hidden_sizes=64 is invalid: expected a list \(\[a, b, \.\.\.\]\)$"),
    ("algo.optim=adam", r"^algo\.optim='adam' is invalid: expected a mapping \(\{key: value, \.\.\.\}\)$"),
    # OmegaConf reads any number as a bool: double_dqn=2 trained as true and was saved as 2.
    ("algo.double_dqn=2", r"^algo\.double_dqn=2 is invalid: expected true or false$"),
    ("trainer.early_stop=0", r"^trainer\.early_stop=0 is invalid: expected true or false$"),
    # ... and yes / on / off as bools, saving the string in config.yaml
    ("algo.double_dqn=off", r"^algo\.double_dqn='off' is invalid: expected true or false$"),
    ("trainer.early_stop=yes", r"^trainer\.early_stop='yes' is invalid: expected true or false$"),
])
def test_bad_values_in_nested_and_root_sections_are_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(_compose(override))


@pytest.mark.parametrize("value", [100, -50])
def test_an_initial_log_std_whose_variance_is_no_float32_is_refused(value):
    """log_std_init=100 passed, then the run stopped with a non-finite loss at its first update."""
    with pytest.raises(ConfigError, match=rf"^algo\.log_std_init={float(value)} is invalid: expected a number in "
                                          r"\[-40, 40\] \(the log of the initial standard deviation"):
        validate_config(_compose("algo=a2c", f"algo.log_std_init={value}"))
    validate_config(_compose("algo=a2c", "algo.log_std_init=-2"))


@pytest.mark.parametrize(("overrides", "message"), [
    (["env=gym"], r"env\.id is missing: give it a value \(env\.id=\.\.\.\)"),
    (["env.id=NoSuchEnv-v0"], r"env\.id='NoSuchEnv-v0' is not a registered gymnasium id; run gymnasium\.pprint_registry"),
    (["env.id=no_such_module:Thing-v0"], r"env\.id='no_such_module:Thing-v0': cannot import module 'no_such_module' "
                                         r"\(No module named 'no_such_module'\); a module of yours must be importable: "
                                         r"put its folder on PYTHONPATH"),
    # an id its module does not register: the ids it does (not close matches from all of gymnasium)
    (["env.id=corridor_env:Nope-v0"], r"env\.id='corridor_env:Nope-v0' is not a registered gymnasium id; the ids "
                                      r"with entry points in module 'corridor_env': \['ArrayRewardCorridor-v0', "),
    # (a module of hundreds of ids: the first ten)
    (["env.id=ale_py:Pongg-v9"], r"the ids with entry points in module 'ale_py': \[[^\]]*\] and [0-9]+ more\)$"),
    (["env.id=corridor_env:MaskedCoridor-v0"], r"close matches: \['MaskedCorridor-v0'.*\] \(the ids with entry points "
                                               r"in module 'corridor_env': \['ArrayRewardCorridor-v0', "),
    (["env.target_return=solved"], r"env\.target_return='solved' is invalid: expected a number, 'auto'"),
    # (OmegaConf's own message named only the section: "bad value for env: Cannot assign str to Dict[str, Any]")
    (["+env.transforms=[normalize]"], r"^env\.transforms\[0\]='normalize' is invalid: expected a mapping "
                                      r"\(\{key: value, \.\.\.\}\), as in env\.transforms=\[\{name: normalize\}\]$"),
    (["+env.transforms=[{name: normalize}, 3]"], r"^env\.transforms\[1\]=3 is invalid: expected a mapping "
                                                 r"\(\{key: value, \.\.\.\}\), as in env\.transforms=\[\{key: value\}\]$"),
    (["+env.transforms=[{name: blur}]"], r"env\.transforms\[0\]\.name='blur' is not a transform; valid choices: "),
    (["+env.transforms=[{name: normalize, gain: 2}]"], r"env\.transforms\[0\] \(normalize\) has unknown keys \['gain'\]"),
    (["+env.transforms=[{name: normalize}, {name: time_limit, max_episode_steps: 9}]"],
     r"env\.transforms\[1\] \(time_limit\) wraps each sub-env, so it must come before the vector transform"),
    # Knob values out of range (each once silently broke training: every observation at the bound,
    # every reward 0, a stack of 2.7 frames truncated to 2).
    (["+env.transforms=[{name: normalize, clip_observation: -10.0}]"],
     r"env\.transforms\[0\]\.clip_observation=-10\.0 is invalid \(normalize\): expected a finite number > 0"),
    (["+env.transforms=[{name: normalize, clip_reward: 0.0}]"],
     r"env\.transforms\[0\]\.clip_reward=0\.0 is invalid \(normalize\): expected a finite number > 0"),
    (["+env.transforms=[{name: normalize, observation: 'no'}]"],
     r"env\.transforms\[0\]\.observation='no' is invalid \(normalize\): expected true or false"),
    (["+env.transforms=[{name: frame_stack, stack_size: 2.7}]"],
     r"env\.transforms\[0\]\.stack_size=2\.7 is invalid \(frame_stack\): expected an integer >= 1"),
    (["+env.transforms=[{name: time_limit, max_episode_steps: 0}]"],
     r"env\.transforms\[0\]\.max_episode_steps=0 is invalid \(time_limit\): expected an integer >= 1"),
    (["+env.transforms=[{name: clip_reward, low: 1.0, high: -1.0}]"],
     r"env\.transforms\[0\] \(clip_reward\) has low=1\.0 >= high=-1\.0: expected low < high"),
    (["+env.transforms=[{name: normalize, clip_observation: inf}]"],
     r"env\.transforms\[0\]\.clip_observation=inf is invalid \(normalize\): expected a finite number > 0"),
    (["+env.transforms=[{name: clip_reward, low: nan}]"],
     r"env\.transforms\[0\]\.low=nan is invalid \(clip_reward\): expected a number \(-inf: no lower bound\)"),
])
def test_env_sections_that_cannot_work_are_refused(overrides, message):
    overrides = [o.replace("+env.transforms", "env.transforms") for o in overrides]
    with pytest.raises(ConfigError, match=message):
        validate_config(_compose(*overrides))


def test_infinite_values_are_taken_where_they_mean_something():
    """A one-sided clip_reward (its class takes -inf: no lower bound) and an env constructor's
    infinite Box bound were refused as 'expected a finite number'."""
    settings = validate_config(_compose("env.transforms=[{name: clip_reward, low: -inf, high: 1.0}]"))
    assert settings.env.transforms[0]["low"] == float("-inf")
    settings = validate_config(_compose("env=gym", "env.id=corridor_env:FreeCorridor-v0", "+env.make_kwargs.low=-inf",
                                        "+env.make_kwargs.high=inf"))
    assert settings.env.make_kwargs["low"] == float("-inf")
    with pytest.raises(ConfigError, match=r"algo\.optim\.lr=inf is invalid: expected a finite number"):
        validate_config(_compose("algo.optim.lr=inf"))
    # NaN still is not (a resume compares the saved value with itself, and NaN equals nothing)
    with pytest.raises(ConfigError, match=r"^env\.make_kwargs\.low=nan is invalid: expected a number$"):
        validate_config(_compose("env=gym", "env.id=corridor_env:FreeCorridor-v0", "+env.make_kwargs.low=nan"))


@pytest.mark.parametrize("logger", ["csv", "wandb", "none", "tensorboard"])
def test_logger_group_options_validate(logger):
    import importlib.util

    assert validate_config(_compose(f"logger={logger}")).logger.name == logger  # (a saved run's config reads)
    if logger == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        # its optional package missing: a start is refused in one line before anything is written
        from rlkit.run import preflight

        with pytest.raises(ConfigError, match=r"logger=tensorboard needs the optional 'tensorboard' package \(not "
                                              r"installed\): pip install -e \"\.\[tensorboard\]\""):
            preflight(_compose(f"logger={logger}"))


@pytest.mark.parametrize("algo,estimator", [(a, e) for a, es in VALID.items() for e in es])
def test_every_valid_pair_builds(algo, estimator, tmp_path):
    cfg = _compose(f"algo={algo}", f"value_estimator={estimator}", "trainer.eval_episodes=2",
                   "trainer.progress=false", "logger=none")
    trainer = build_trainer(validate_config(cfg), tmp_path)
    try:
        assert type(trainer.loss_module.value_estimator).__name__ == ESTIMATOR_CLASSES[estimator]
        assert float(trainer.loss_module.value_estimator.gamma) == pytest.approx(cfg.value_estimator.gamma)
    finally:
        trainer.close()


@pytest.mark.parametrize("algo", ["dqn", "c51"])
def test_trainer_anneals_the_epsilon_the_collector_acts_with(algo, tmp_path):
    cfg = _compose(f"algo={algo}", "trainer.eval_episodes=2", "trainer.progress=false", "logger=none",
                   "algo.eps_annealing_frames=100", "algo.eps_end=0.0", "algo.learning_starts=1000")
    trainer = build_trainer(validate_config(cfg), tmp_path)
    try:
        # The schedule the trainer steps is the one inside the collector's policy.
        assert trainer.exploration is trainer.collector.policy.explore
        trainer.exploration.step(100)
        batch = trainer.collector.next_batch()  # eps = 0: the greedy actions of the Q-network
        greedy = trainer.collector.policy.policy(batch.select("observation"))["action"]
        assert torch.equal(batch["action"], greedy)
        # Only the action is collected (the Q-values would be missing on exploring steps).
        assert "action_value" not in batch.keys()
    finally:
        trainer.close()


@pytest.mark.parametrize("algo", ["dqn", "c51", "a2c"])
def test_the_network_settings_reach_the_built_networks(algo, tmp_path):
    """``algo.hidden_sizes`` and ``algo.activation`` shape every network the loss trains (a builder
    that hard-coded the default activation or widths would train another model than the config says)."""
    cfg = _compose(f"algo={algo}", "algo.hidden_sizes=[7,5]", "algo.activation=elu", "trainer.eval_episodes=2",
                   "trainer.progress=false", "logger=none")
    trainer = build_trainer(validate_config(cfg), tmp_path)
    try:
        obs_dim, n_actions = 4, 2  # CartPole
        atoms = cfg.algo.n_atoms if algo == "c51" else 1
        heads = {"dqn": [n_actions], "c51": [n_actions * atoms], "a2c": [n_actions, 1]}[algo]
        nets = [m for m in trainer.loss_module.modules() if isinstance(m, torch.nn.Sequential)
                and any(isinstance(layer, torch.nn.Linear) for layer in m)]
        # Online networks (and, for the Q-learners, a target copy): each one [Linear, ELU] * 2 + Linear.
        assert nets
        for net in nets:
            assert [type(layer) for layer in net] == [torch.nn.Linear, torch.nn.ELU] * 2 + [torch.nn.Linear]
            widths = [(layer.in_features, layer.out_features) for layer in net if isinstance(layer, torch.nn.Linear)]
            assert widths[:2] == [(obs_dim, 7), (7, 5)] and widths[2][0] == 5
        assert sorted({net[-1].out_features for net in nets}) == sorted(heads)
    finally:
        trainer.close()


def test_the_c51_support_is_the_configured_one(tmp_path):
    """The atoms C51 projects onto and acts with are ``linspace(algo.v_min, algo.v_max, algo.n_atoms)``."""
    cfg = _compose("algo=c51", "algo.v_min=-7", "algo.v_max=3", "algo.n_atoms=11", "trainer.eval_episodes=2",
                   "trainer.progress=false", "logger=none")
    trainer = build_trainer(validate_config(cfg), tmp_path)
    try:
        supports = [buf for name, buf in trainer.loss_module.named_buffers() if name.split(".")[-1] == "support"]
        supports += [buf for name, buf in trainer.collector.policy.named_buffers() if name.split(".")[-1] == "support"]
        assert supports
        for support in supports:
            assert torch.equal(support, torch.linspace(-7.0, 3.0, 11))
    finally:
        trainer.close()


@pytest.mark.parametrize("algo,estimator", [("dqn", "td0"), ("dqn", "td_lambda"), ("c51", "td0")])
def test_replay_stores_what_the_loss_reads(algo, estimator, tmp_path):
    cfg = _compose(f"algo={algo}", f"value_estimator={estimator}", "trainer.eval_episodes=2",
                   "trainer.progress=false", "logger=none", "total_frames=200", "algo.learning_starts=100",
                   "algo.batch_size=16")
    trainer = build_trainer(validate_config(cfg), tmp_path)
    try:
        trainer.fit()
        stored = set(trainer.replay_buffer.storage.data.keys(True, True))
        expected = {"observation", "action", ("next", "observation"), ("next", "reward"), ("next", "terminated"),
                    ("next", "done")}
        assert stored == (expected | {"traj_id", "step_count"} if estimator == "td_lambda" else expected)
        # The collector's batches keep everything (the buffer drops the rest).
        assert {"traj_id", ("next", "truncated")} <= set(trainer.collector.next_batch().keys(True, True))
    finally:
        trainer.close()


@pytest.mark.parametrize("algo", ["dqn", "c51"])
def test_q_learning_algos_use_the_fused_adam_kernel(algo, tmp_path):
    cfg = _compose(f"algo={algo}", "trainer.eval_episodes=2", "trainer.progress=false", "logger=none")
    trainer = build_trainer(validate_config(cfg), tmp_path)
    try:
        assert type(trainer.optimizer) is torch.optim.Adam and trainer.optimizer.defaults["fused"] is True
    finally:
        trainer.close()
    # Switching optimiser means dropping the Adam-only argument, as the refusal above says.
    cfg = _compose(f"algo={algo}", "algo.optim._target_=torch.optim.RMSprop", "~algo.optim.fused")
    assert validate_config(cfg).algo.optim["_target_"] == "torch.optim.RMSprop"


@pytest.mark.parametrize("algo,estimator", [(a, e) for a in VALID for e in ALL_ESTIMATORS if e not in VALID[a]])
def test_every_invalid_pair_is_refused(algo, estimator):
    cfg = _compose(f"algo={algo}", f"value_estimator={estimator}")
    with pytest.raises(ConfigError, match=f"value_estimator='{estimator}' is not supported by algo='{algo}'"
                       rf".*valid choices for {algo}: \[.*'{VALID[algo][0]}'"):
        validate_config(cfg)


@pytest.mark.parametrize("algo,estimator", [(a, e) for a in ("dqn", "c51") for e in ("td1", "td_lambda") if e in VALID[a]])
def test_prioritized_replay_with_slices_is_refused(algo, estimator):
    """[B, T] slices are sampled uniformly: priorities would be computed and never used."""
    cfg = _compose(f"algo={algo}", f"value_estimator={estimator}", "algo.prioritized=true")
    with pytest.raises(ConfigError, match=rf"algo\.prioritized=true with value_estimator='{estimator}': its \[B, T\] "
                                          r"slices are sampled uniformly .* use value_estimator=td0"):
        validate_config(cfg)
    assert validate_config(_compose(f"algo={algo}", "value_estimator=td0", "algo.prioritized=true")).algo.prioritized


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["+algo.lrr=1"], r"unknown key algo.lrr; valid keys: \[.name., .num_envs."),
        (["+algo.batch_sise=1"], r"unknown key algo.batch_sise \(did you mean .batch_size.\?\)"),
        (["algo.batch_size=abc"], r"algo.batch_size"),
        (["algo.batch_size=-4"], r"algo.batch_size=-4 is invalid: expected a positive number"),
        (["algo.eps_end=1.5"], r"algo.eps_end=1.5 is invalid: expected a number in \[0, 1\]"),
        (["algo.eps_init=0.1", "algo.eps_end=0.5"],
         r"^algo.eps_end=0.5 is invalid: expected at most algo.eps_init=0.1 \(epsilon decays"),
        (["value_estimator.gamma=1.2"], r"value_estimator.gamma=1.2 is invalid"),
        (["algo=a2c", "algo.activation=gelu"], r"algo.activation='gelu' is invalid: expected one of \['tanh', 'relu', 'elu', 'silu'\]"),
        (["env.id=CartPol-v1"], r"env.id='CartPol-v1' is not a registered gymnasium id; close matches: \['CartPole-v1'"),
        # (an id no registration adds: tests may have registered ale-py's)
        (["env=gym", "env.id=ALE/Pongg-v5"], r"'ALE/Pongg-v5' is not a registered gymnasium id; Atari games are "
                                             r"env=atari env.game=Pongg"),
        (["logger=wandb", "logger.mode=sometimes"], r"logger.mode='sometimes' is invalid: expected one of"),
        (["device=tpu9"], r"device='tpu9' is not a torch device"),
        (["algo.optim._target_=torch.optim.Nope"], r"cannot be imported: torch.optim has no 'Nope'; its optimisers: \["),
        (["algo.optim._target_=torch.optim.Adamm"], r"torch.optim has no 'Adamm' \(did you mean torch.optim.Adam\?\)"),
        (["+algo.optim.momentumm=0.9"], r"algo.optim has arguments Adam does not take"),
        (["algo.optim._target_=torch.optim.RMSprop"],
         r"RMSprop does not take .*fused.*RMSprop takes \[.*'lr'.*~algo.optim.fused"),
        (["total_frames=0"], r"total_frames=0 is invalid"),
        # resume=$RUN with $RUN unset must not start a new full-length run
        (["resume="], r"resume='' is invalid: expected a run directory or a checkpoint file; leave resume unset"),
        (["resume=' '"], r"resume=' ' is invalid"),
        (["+seedd=1"], r"unknown top-level key 'seedd' \(did you mean 'seed'\?\)"),
    ],
)
def test_bad_configs_are_refused_with_the_key_and_choices(overrides, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(_compose(*overrides))


def test_lunar_lander_without_box2d_names_the_extra(monkeypatch):
    """An env whose optional gymnasium extra is missing is refused up front with the pip command."""
    import gymnasium as gym

    from rlkit.errors import EnvError
    from rlkit.run import preflight

    def make(*args, **kwargs):
        raise gym.error.DependencyNotInstalled('Box2D is not installed, run `pip install "gymnasium[box2d]"`')

    monkeypatch.setattr(gym, "make", make)
    with pytest.raises(EnvError, match=r"env 'LunarLander-v3' needs an optional dependency .*pip install \"gymnasium\[box2d\]\""):
        preflight(_compose("env=LunarLander"))


def test_num_seeds_is_capped_before_any_seed_is_built(tmp_path):
    """num_seeds=100000 was accepted: every seed's envs, networks and buffer were built (twice) for
    minutes before the memory check of their replay buffers."""
    from rlkit.config_schema import MAX_NUM_SEEDS
    from rlkit.run import run

    assert validate_config(_compose(f"num_seeds={MAX_NUM_SEEDS}")).root.num_seeds == MAX_NUM_SEEDS
    with pytest.raises(ConfigError, match=rf"^num_seeds=100000 is invalid: expected an integer in \[1, {MAX_NUM_SEEDS}\] "
                                          rf"\(seeds seed \.\. seed \+ num_seeds - 1 train in one process, at most "
                                          rf"{MAX_NUM_SEEDS}: train more as several runs, e\.g\. seed={5 + MAX_NUM_SEEDS} "
                                          r"num_seeds=\.\.\. for the next ones\)$"):
        run(_compose("num_seeds=100000", "seed=5"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match=r"^num_seeds=3 is invalid: expected an integer in \[1, 2\] \(seeds seed \.\. "
                                          r"seed \+ num_seeds - 1 train in one process\)$"):  # (numpy's seed range)
        validate_config(_compose("num_seeds=3", "seed=2147483646"))
