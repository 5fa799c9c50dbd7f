"""The algorithm registry: the built-in entries declare what the builders read, and an algorithm
defined outside the package (``tests/toy_algorithm.py``: loss, config schema, agent builder, entry)
trains, checkpoints and resumes through the same builders as the built-in ones, registered by a test
or by the module a run's ``imports`` names, in ``train.py``, ``evaluate.py`` and ``export.py`` too."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import rlkit.agents  # noqa: F401  (registers the built-in algorithms)
from rlkit import keys
from rlkit.builders import validate_config
from rlkit.errors import ConfigError, NotStackableError
from rlkit.objectives import A2CLoss, DistributionalDQNLoss, DQNLoss, ValueEstimators
from rlkit.registry import ALGORITHMS, Algorithm, get_algorithm, register_algorithm
from rlkit.run import run
from rlkit.trainers import load_checkpoint, read_metrics_csv
from toy_algorithm import BanditConfig, BanditLoss, bandit_entry, build_bandit

ROOT = Path(__file__).resolve().parents[1]
CONF = str(ROOT / "conf")
TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS / "objectives"))
from loss_builders import build_a2c, build_c51, build_dqn  # noqa: E402

PLUGIN = ["imports=[toy_algorithm_plugin]", "algo=toy_bandit", f"hydra.searchpath=[file://{TESTS / 'plugin_conf'}]"]
sys.path.insert(0, str(Path(__file__).resolve().parent / "objectives"))
from loss_builders import build_a2c, build_c51, build_dqn  # noqa: E402

EXPECTED = {
    "dqn": (DQNLoss, True, ["td0", "td1", "td_lambda"]),
    "c51": (DistributionalDQNLoss, True, ["td0"]),
    "a2c": (A2CLoss, False, ["gae", "td0", "td1", "td_lambda"]),
}


def test_built_in_entries_declare_loss_policy_kind_and_estimators():
    assert set(EXPECTED) <= set(ALGORITHMS)
    for name, (loss, off_policy, estimators) in EXPECTED.items():
        entry = get_algorithm(name)
        assert (entry.loss, entry.off_policy) == (loss, off_policy)
        assert entry.supported_value_estimators == estimators
    assert get_algorithm("dqn").slice_len is not None and get_algorithm("c51").slice_len is None


@pytest.mark.parametrize(("name", "estimator"), [(n, e) for n, (_, _, es) in EXPECTED.items() for e in es])
def test_every_supported_pair_builds_at_the_loss_level(name, estimator):
    loss = {"dqn": build_dqn, "c51": build_c51, "a2c": build_a2c}[name]()
    loss.make_value_estimator(estimator)
    assert loss.value_type == ValueEstimators(estimator)


def test_unknown_and_duplicate_names_are_refused():
    with pytest.raises(KeyError, match=r"algo='ppo' is not registered; valid choices: \['a2c', 'c51', 'dqn'"):
        get_algorithm("ppo")
    with pytest.raises(ValueError, match="an algorithm named 'dqn' is registered already"):
        register_algorithm(get_algorithm("dqn"))


# -- an algorithm added from outside the package (tests/toy_algorithm.py) ----------------------------
@pytest.fixture
def bandit():
    entry = register_algorithm(bandit_entry("bandit"))
    yield entry
    del ALGORITHMS["bandit"]


def bandit_config(overrides: list[str]):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=["trainer.progress=false", "trainer.eval_episodes=2",
                                           "trainer.log_interval=200", "trainer.eval_interval=400", *overrides])
    OmegaConf.set_struct(cfg, False)
    algo = OmegaConf.to_container(cfg.algo)
    for dqn_only in ("loss_function", "double_dqn", "slice_len"):
        algo.pop(dqn_only)
    cfg.algo = {**algo, "name": "bandit", "learning_starts": 100, "batch_size": 32}
    return cfg


def test_an_algorithm_registered_from_a_test_file_trains_and_resumes_through_the_builders(bandit, tmp_path):
    cfg = bandit_config(["total_frames=600"])
    assert type(validate_config(cfg).algo) is BanditConfig
    run(cfg, tmp_path)
    rows = read_metrics_csv(tmp_path)
    assert len([r for r in rows if "loss_value" in r]) >= 2 and "eval_return" in rows[-1]
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["frames"] == 600 and state["components"]["loss_module"] == "BanditLoss"
    assert sorted(state["replay_buffer"]["storage"]["data"]) == ["action", "next", "observation"]
    resume = ["resume=" + str(tmp_path), "total_frames=800"]
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        run(compose("config", overrides=resume), tmp_path, overrides=resume)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["frames"] == 800


def test_an_estimator_the_loss_does_not_declare_is_refused(bandit):
    cfg = bandit_config(["value_estimator=td1"])
    with pytest.raises(ConfigError, match=r"value_estimator='td1' is not supported by algo='bandit'; valid choices "
                                          r"for bandit: \['td0'\]"):
        validate_config(cfg)


@dataclass
class LooseConfig:
    """An off-policy section that does not derive from ``OffPolicyConfig``."""

    name: str


def test_an_off_policy_algorithm_whose_schema_lacks_the_off_policy_fields_is_refused_at_registration():
    with pytest.raises(ValueError, match=r"^algorithm 'loose': its schema LooseConfig lacks \['num_envs', 'optim', "
                                         r"'lr_schedule', 'max_grad_norm', .*more'\], which the builders read from "
                                         r"every algorithm's section \(an off-policy one .*derive the schema from "
                                         r"rlkit\.agents\.common\.OffPolicyConfig, which has them\)$"):
        register_algorithm(Algorithm(name="loose", schema=LooseConfig, loss=BanditLoss, build_agent=build_bandit,
                                     replay_keys=lambda agent: [keys.OBSERVATION]))
    assert "loose" not in ALGORITHMS


@dataclass
class OnPolicyWithoutClipping:
    """An on-policy section without the fields the trainer reads (a traceback at the first run before)."""

    name: str
    num_envs: int
    n_steps: int
    optim: dict


def test_an_on_policy_schema_without_the_fields_the_trainer_reads_is_refused_at_registration():
    with pytest.raises(ValueError, match=r"^algorithm 'bare': its schema OnPolicyWithoutClipping lacks "
                                         r"\['lr_schedule', 'max_grad_norm'\], which the builders read from every "
                                         r"algorithm's section \(an on-policy one: \['name', 'num_envs', 'optim', "
                                         r"'lr_schedule', 'max_grad_norm', 'n_steps'\]\)$"):
        register_algorithm(Algorithm(name="bare", schema=OnPolicyWithoutClipping, loss=BanditLoss,
                                     build_agent=build_bandit))
    with pytest.raises(ValueError, match=r"its schema <class 'dict'> is not a dataclass"):
        register_algorithm(Algorithm(name="bare", schema=dict, loss=BanditLoss, build_agent=build_bandit))
    assert "bare" not in ALGORITHMS


def test_the_built_in_algorithms_declare_that_they_train_stacked_seeds():
    assert all(get_algorithm(name).stacked_seeds for name in EXPECTED)
    assert not bandit_entry("x").stacked_seeds  # (the default: a loss of one's own is not assumed to keep the seed dim)


def test_num_seeds_with_an_algorithm_that_does_not_declare_stacked_seeds_is_refused_before_the_run(bandit, tmp_path):
    """The toy's loss reduces to a scalar: a multi-seed run of it failed at its first update with a
    traceback, leaving a started run directory."""
    cfg = bandit_config(["num_seeds=2", "total_frames=600"])
    message = (r"^num_seeds=2: algo='bandit' does not declare that it trains several seeds in one process \(its "
               r"registry entry's stacked_seeds: .*use num_seeds=1 \(one process per seed, e\.g\. a sweep seed=0,1,2\)$")
    with pytest.raises(NotStackableError, match=message):
        validate_config(cfg)
    with pytest.raises(NotStackableError, match=message):
        run(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


# -- an algorithm a run imports (imports=[...]) ------------------------------------------------------
def test_imports_registers_a_users_algorithm_before_the_config_is_checked():
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=PLUGIN)
    assert validate_config(cfg).algo.name == "toy_bandit" and get_algorithm("toy_bandit").loss is BanditLoss


@pytest.mark.parametrize(("imports", "message"), [
    ("[no_module_of_yours]", r"^imports\[0\]='no_module_of_yours': cannot import module 'no_module_of_yours' \(No "
                             r"module named 'no_module_of_yours'\); a module of yours must be importable: put its "
                             r"folder on PYTHONPATH"),
    ("[json,'my algos']", r"^imports\[1\]='my algos' is invalid: expected a module's dotted name"),
])
def test_a_module_that_cannot_be_imported_is_refused_by_name(imports, message):
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("config", overrides=[f"imports={imports}"])
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_train_evaluate_and_export_import_a_runs_modules(tmp_path):
    """Fresh interpreters, as users run the scripts: the run's saved ``imports`` are imported again
    by evaluate.py and export.py (and a resume), which knew nothing of the toy algorithm before."""
    env = {**os.environ, "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "0", "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}"}

    def script(name: str, *args: str, cwd: Path = tmp_path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / name), *args], cwd=cwd, env=env, text=True,
                              capture_output=True, timeout=300)

    # The conf folder given relative to the start's directory; the resume, from another directory,
    # gives a searchpath of its own: the run's folder is found all the same.
    shutil.copytree(TESTS / "plugin_conf", tmp_path / "my_conf")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = tmp_path / "run"
    trained = script("train.py", *PLUGIN[:2], "hydra.searchpath=[file://my_conf]", "total_frames=300",
                     "trainer.eval_episodes=2", "trainer.progress=false", f"hydra.run.dir={run_dir}")
    assert trained.returncode == 0, trained.stderr
    assert OmegaConf.load(run_dir / "config.yaml").imports == ["toy_algorithm_plugin"]
    evaluated = script("evaluate.py", f"run={run_dir}", "episodes=2")
    assert evaluated.returncode == 0, evaluated.stderr
    exported = script("export.py", f"run={run_dir}")
    assert exported.returncode == 0, exported.stderr
    resumed = script("train.py", f"resume={run_dir}", "total_frames=400", "trainer.progress=false",
                     f"hydra.searchpath=[file://{elsewhere}]", cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"] == 400


# -- resuming a run whose algorithm comes from a config folder of the user's -------------------------
def _run_recorded_by_hydra(tmp_path: Path, searchpath: list[str], cwd: Path) -> Path:
    """A run directory as far as a resume's command line reads it: Hydra's ``.hydra/hydra.yaml`` of a
    ``train.py`` start of the toy algorithm, with ``searchpath`` given in ``cwd``."""
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    OmegaConf.save({"hydra": {"searchpath": searchpath, "runtime": {"cwd": str(cwd), "choices": {"algo": "toy_bandit"}}}},
                   run_dir / ".hydra" / "hydra.yaml")
    return run_dir


def _searchpath_of(argv: list[str]) -> list[str]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    given = [a for a in argv if a.startswith("hydra.searchpath=")]
    assert len(given) == 1, argv
    return OverridesParser.create().parse_overrides(given)[0].value()


def _composed_algo(args: list[str]) -> str:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("config", overrides=args).algo.name


def test_a_searchpath_given_on_resume_is_followed_by_the_runs_own(tmp_path):
    """``resume=R hydra.searchpath=[<other>]``: the run's folders come after the user's (once), so its
    algorithm's group is still found (Hydra: "Could not find 'algo/toy_bandit'")."""
    from rlkit.cli import prepare_argv

    plugin = f"file://{TESTS / 'plugin_conf'}"
    other = f"file://{tmp_path}"
    run_dir = _run_recorded_by_hydra(tmp_path, [plugin], ROOT)
    argv = [str(ROOT / "train.py"), f"resume={run_dir}", f"hydra.searchpath=[{other}]"]
    prepare_argv(argv)
    assert _searchpath_of(argv) == [other, plugin]
    assert _composed_algo(argv[1:]) == "toy_bandit"
    argv = [str(ROOT / "train.py"), f"hydra.searchpath=['{plugin}/',{other}]", f"resume={run_dir}"]
    prepare_argv(argv)
    assert _searchpath_of(argv) == [f"{plugin}/", other]  # (the run's folder given already: not twice)


def test_a_relative_searchpath_is_read_against_the_directory_the_run_started_in(tmp_path, monkeypatch):
    from rlkit.cli import prepare_argv
    from rlkit.cli.resume import run_searchpath

    run_dir = _run_recorded_by_hydra(tmp_path, ["file://tests/plugin_conf", "pkg://rlkit"], ROOT)
    monkeypatch.chdir(tmp_path)
    assert run_searchpath(str(run_dir)) == [f"file://{TESTS / 'plugin_conf'}", "pkg://rlkit"]
    argv = [str(ROOT / "train.py"), f"resume={run_dir}"]
    prepare_argv(argv)
    assert _composed_algo(argv[1:]) == "toy_bandit"


def test_a_run_started_from_python_resumes_with_its_searchpath_from_elsewhere(tmp_path, monkeypatch):
    """``rlkit.train`` writes no ``hydra.yaml``: it records its searchpath (``.hydra/searchpath.yaml``,
    with its working directory), so ``train.py resume=R`` finds the toy algorithm's group (it was
    refused: "algo='toy_bandit' is not a choice")."""
    import rlkit
    from rlkit.cli import prepare_argv

    monkeypatch.chdir(ROOT)
    result = rlkit.train([*PLUGIN[:2], "hydra.searchpath=[file://tests/plugin_conf]", "total_frames=200",
                          "trainer.eval_episodes=2", "trainer.progress=false", "logger=none"],
                         output_dir=tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    argv = [str(ROOT / "train.py"), f"resume={result.run_dir}", "total_frames=400"]
    prepare_argv(argv)
    assert _searchpath_of(argv) == [f"file://{TESTS / 'plugin_conf'}"]
    assert _composed_algo(argv[1:]) == "toy_bandit"
