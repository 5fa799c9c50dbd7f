"""train.py as users run it: refused configs (one subprocess, the rest through its Hydra entry in-process),
SIGINT + resume, sweeps with the basic, joblib and submitit launchers (subprocesses)."""
from __future__ import annotations

import importlib.util
import logging
import os
import re
import signal
import socket
import subprocess
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir

from rlkit import cli as cli_module
from rlkit import startup
from rlkit.cli import tasks as cli_tasks  # (train_task looks run up there: patch it there)
from rlkit.errors import RunDirError
from rlkit.run import run
from rlkit.trainers import load_checkpoint, read_metrics_csv

TRAIN = str(Path(__file__).resolve().parents[1] / "train.py")
#: The algo options of conf/algo/ as a refusal lists them (an algorithm added there adds itself).
ALGOS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "algo").glob("*.yaml"))
TINY = ["total_frames=400", "trainer.eval_episodes=2", "trainer.log_interval=200", "trainer.eval_interval=0",
        "trainer.progress=false"]
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, TRAIN, *args], cwd=cwd, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def train(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TRAIN, *args], cwd=cwd, env=ENV, text=True, capture_output=True,
                          timeout=timeout)


def saved_config(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())


def test_bad_config_is_refused_with_its_message_before_the_run_dir_exists(tmp_path):
    done = train(["algo.batch_size=-1", f"hydra.run.dir={tmp_path / 'x'}"], tmp_path)
    assert done.returncode == 2
    assert done.stderr == "rlkit: invalid config: algo.batch_size=-1 is invalid: expected a positive number\n"
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def cli(monkeypatch, tmp_path, capsys):
    """Runs ``train.py``'s Hydra entry in this process (what a subprocess does, minus 3 s of imports).

    Returns a function of the command-line arguments that expects the run to be refused (exit status
    2) and returns what it printed on stderr, less the final newline.
    """
    spec = importlib.util.spec_from_file_location("rlkit_train_entry", TRAIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # Hydra finds conf/ next to the file of a task function defined in __main__, as when run as a script.
    module.main.__wrapped__.__module__ = "__main__"
    monkeypatch.chdir(tmp_path)
    handlers, level = logging.root.handlers[:], logging.root.level  # Hydra configures the root logger
    # A completed run leaves its stop signals with "nothing to stop" for the rest of train.py's process.
    stops = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    def entry(args: tuple[str, ...]) -> None:
        argv = [TRAIN, *args]
        module.cli.prepare_argv(argv)
        monkeypatch.setattr(sys, "argv", argv)
        module.main()

    def refused(*args: str) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            entry(args)
        err = capsys.readouterr().err
        assert info.value.code == 2, err
        lines = err.splitlines()
        assert lines[-1].startswith("rlkit: ") and not any(line.startswith("rlkit: ") for line in lines[:-1]), err
        return lines[-1]

    def accepted(*args: str) -> None:
        entry(args)

    refused.accepted = accepted
    yield refused
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)
    for stop, handler in stops.items():
        signal.signal(stop, handler)
    startup.mark("starting")  # (train_task marked its stage in this process)


BAD = {
    "pair": (["algo=c51", "value_estimator=gae"],
             "rlkit: invalid config: value_estimator='gae' is not supported by algo='c51'; "
             "valid choices for c51: ['td0']"),
    "unknown_key": (["+algo.foo=1"], "rlkit: invalid config: unknown key algo.foo; valid keys: ['name', "),
    "env_id": (["env.id=CartPole-v9"],
               "rlkit: invalid config: env.id='CartPole-v9' is not a registered gymnasium id; "
               "close matches: ['CartPole-v1'"),
    "resume": (["resume=does/not/exist"],
               "rlkit: no checkpoint file or run directory at 'does/not/exist'"),
    # resume=$RUN with $RUN unset: refused, not a new full-length run
    # the default run directory's name read the missing env.id: Hydra's 60-line interpolation traceback
    "gym_without_id": (["env=gym"], "rlkit: invalid config: env.id is missing: give it a value (env.id=...)"),
    "empty_resume": (["resume="], "rlkit: invalid config: resume='' is invalid: expected a run directory"),
    # Hydra: a multi-line grammar error, and "Multiple values for algo", exit 1
    "list_split_by_the_shell": (["algo.hidden_sizes=[64,", "64]"],
                                "rlkit: invalid config: cannot read the override 'algo.hidden_sizes=[64,' (the shell "
                                "splits at spaces): quote it whole, 'algo.hidden_sizes=[64, 64]'"),
    "added_group": (["+algo=c51"], "rlkit: invalid config: +algo=c51 adds a second algo, which the config already "
                                   "chooses; choose it without +: algo=c51"),
    "key_of_an_empty_mapping": (["env.make_kwargs.sutton_barto_reward=true"],
                                "rlkit: invalid config: env.make_kwargs has no key 'sutton_barto_reward' yet; add it "
                                "with +: +env.make_kwargs.sutton_barto_reward=..."),
    "batch_size": (["algo.batch_size=0"], "rlkit: invalid config: algo.batch_size=0 is invalid: expected a positive"),
    # Hydra's own texts are a screen of search paths, or (for the optional experiment) the defaults trained.
    "group": (["algo=dqm"], f"rlkit: invalid config: algo='dqm' is not a choice; valid choices: {ALGOS}"),
    "experiment": (["experiment=DQN_cartpole"],
                   "rlkit: invalid config: experiment='DQN_cartpole' is not a choice; valid choices: ['a2c_acrobot', "),
    # Without +, Hydra's "not in struct" text; the key's namesake elsewhere is named.
    "missing_key": (["algo.gamma=0.9"], "rlkit: invalid config: unknown key algo.gamma (did you mean "
                                        "value_estimator.gamma?); valid keys of algo: ['activation', "),
    # A node's shape changed from the command line: Hydra's "Cannot merge" traceback, exit 1.
    "list_for_mapping": (["algo.hidden_sizes={a: 1}"],
                         "rlkit: invalid config: algo.hidden_sizes={a: 1} gives a mapping where the config has a list "
                         "of values (algo.hidden_sizes=[120, 84]); give a list"),
    # (it advised '~env.transforms' '+env.transforms={name: normalize}', which the config check then refused)
    "mapping_for_a_list_of_mappings": (["env.transforms={name: normalize}"],
                                       "rlkit: invalid config: env.transforms={name: normalize} gives a mapping where "
                                       "the config has a list; give a list: 'env.transforms=[{name: normalize}]'"),
    "new_keys_in_mapping": (["algo.optim={lr: 0.1, momentum: 0.9}"],
                            "rlkit: invalid config: algo.optim={lr: 0.1, momentum: 0.9} adds algo.optim.momentum, "
                            "which the config does not have; merge it with + ('+algo.optim={lr: 0.1, momentum: 0.9}'"),
    "key_below_a_list": (["algo.hidden_sizes.foo=1"], "rlkit: invalid config: algo.hidden_sizes is a list, which has "
                                                      "no key 'foo': give the whole list (algo.hidden_sizes=[...])"),
    # Hydra: "Ambiguous value for argument", six lines, exit 1; several seeds are what a user meant
    "sweep_without_m": (["seed=0,1,2"], "rlkit: invalid config: seed=0,1,2 gives 3 values and a run takes one: sweep "
                                        "them with python train.py -m seed=0,1,2, or train the 3 seeds in one process "
                                        "with seed=0 num_seeds=3"),
    "range_without_m": (["algo.batch_size=range(32,96,32)"],
                        "rlkit: invalid config: algo.batch_size=range(32,96,32) gives 2 values and a run takes one (a "
                        "list is key=[a,b], a string with commas is quoted: key='a,b'); to sweep them: python train.py "
                        "-m algo.batch_size=range(32,96,32)"),
    "misspelt_key": (["algo=c51", "algo.optim.lrr=1"], "rlkit: invalid config: unknown key algo.optim.lrr (did you "
                                                       "mean algo.optim.lr?); valid keys of algo.optim: "),
}


# With an explicit hydra.run.dir, resume= is refused as such (test_resume_refuses_another_output_dir).
@pytest.mark.parametrize(("name", "run_dir"), [(name, run_dir) for name in sorted(BAD) for run_dir in
                                               ("explicit", "default") if (name, run_dir) != ("resume", "explicit")])
def test_bad_config_is_refused_before_any_output_dir(cli, tmp_path, name, run_dir):
    # The ConfigCheck callback refuses before Hydra creates the directory, also an explicit one.
    args = BAD[name][0] + ([f"hydra.run.dir={tmp_path / 'x'}"] if run_dir == "explicit" else [])
    assert cli(*args).startswith(BAD[name][1])
    assert list(tmp_path.iterdir()) == []


def test_bad_sweep_job_is_refused_before_any_job_runs(cli, tmp_path):
    message = cli("-m", "algo.batch_size=32,-1", "seed=0,1", "total_frames=100", "trainer.eval_episodes=2",
                  "trainer.progress=false", f"hydra.sweep.dir={tmp_path / 'sw'}")
    assert message == ("rlkit: sweep job 2 (algo.batch_size=-1 seed=0): invalid config: algo.batch_size=-1 is "
                       "invalid: expected a positive number; no job has run")
    # Every job is validated first: the valid jobs 0 and 1 did not train.
    assert not (tmp_path / "sw").exists() or not any(p.is_dir() for p in (tmp_path / "sw").iterdir())


def test_a_sweep_over_an_unknown_choice_is_refused_before_hydra_writes_its_sweep_dir(cli, tmp_path):
    message = cli("-m", "algo=dqn,nope", f"hydra.sweep.dir={tmp_path / 'sw'}")
    assert message == f"rlkit: invalid config: algo='nope' is not a choice; valid choices: {ALGOS}"
    assert not (tmp_path / "sw").exists()


def test_keys_of_the_chosen_groups_and_of_a_resumed_runs_groups_are_accepted(tmp_path):
    from rlkit.cli import CONF_DIR, check_command_line

    # Keys that only the chosen algorithm or experiment has; a sweep over a group is left to Hydra.
    check_command_line(["algo=a2c", "algo.n_steps=8", "algo.optim.alpha=0.9"], CONF_DIR)
    check_command_line(["experiment=dqn_minatar_breakout", "env.game=asterix"], CONF_DIR)
    check_command_line(["-m", "algo=dqn,a2c", "algo.n_steps=8"], CONF_DIR)
    check_command_line(["+algo.extra=1", "++trainer.x=2", "~logger", "hydra.run.dir=x"], CONF_DIR)
    # A key whose value is ??? (env=gym's id), quoted and .yaml choices, glob sweeps, and configs from
    # another directory (tune.py's experiment=best), which only Hydra can look up.
    check_command_line(["env=gym", "env.id=CartPole-v1", "+env.make_kwargs.length=10"], CONF_DIR)
    check_command_line(["algo='c51'", "-m", "value_estimator=\"td0\",'td0'", "logger=csv.yaml"], CONF_DIR)
    check_command_line(["-m", "algo=glob(dq*)", "experiment=glob(dqn_*)"], CONF_DIR)
    (tmp_path / "study" / "experiment").mkdir(parents=True)
    (tmp_path / "study" / "experiment" / "best.yaml").write_text("# @package _global_\n")
    check_command_line([f"--config-dir={tmp_path / 'study'}", "experiment=best"], CONF_DIR)
    check_command_line(["--config-dir", str(tmp_path / "study"), "experiment=best"], CONF_DIR)
    check_command_line([f"hydra.searchpath=[file://{tmp_path / 'study'}]", "experiment=best"], CONF_DIR)
    check_command_line(["hydra.searchpath=[pkg://my_algos.conf]", "algo=mine"], CONF_DIR)  # (only Hydra looks there)


def test_a_typo_in_a_group_is_one_line_also_with_config_folders_of_ones_own(tmp_path):
    """With hydra.searchpath or --config-dir on the line (an algorithm of one's own, a tuned
    experiment=best), a typo gave Hydra's 15-line "Could not find 'algo/myregg'"."""
    from rlkit.cli import CONF_DIR, command_line_problem

    (tmp_path / "algo").mkdir()
    (tmp_path / "algo" / "myreg.yaml").write_text("name: myreg\n")
    searchpath = f"hydra.searchpath=[file://{tmp_path}]"
    assert command_line_problem([searchpath, "algo=myreg"], CONF_DIR) is None
    assert command_line_problem([searchpath, "algo=myregg"], CONF_DIR) == (
        f"algo='myregg' is not a choice; valid choices: {sorted([*ALGOS, 'myreg'])}")
    assert command_line_problem([searchpath, "env=Cartpole"], CONF_DIR).startswith("env='Cartpole' is not a choice")
    assert command_line_problem(["--config-dir", str(tmp_path), "experiment=bets"], CONF_DIR).startswith(
        "experiment='bets' is not a choice; valid choices: ['a2c_acrobot'")
    # A folder that moved (a resumed run brings the searchpath it started with): said so.
    assert command_line_problem([f"hydra.searchpath=[file://{tmp_path / 'moved'}]", "algo=myreg"], CONF_DIR) == (
        f"algo='myreg' is not a choice; valid choices: {ALGOS} (the config folder {tmp_path / 'moved'} "
        "of hydra.searchpath / --config-dir does not exist: give it where it is now)")


def test_resume_refuses_a_group_change_with_its_message(cli, tmp_path):
    with initialize_config_dir(config_dir=str(Path(TRAIN).parent / "conf"), version_base="1.3"):
        run(compose("config", overrides=["total_frames=100", "trainer.eval_episodes=2", "trainer.progress=false"]),
            tmp_path / "run")
    message = cli(f"resume={tmp_path / 'run'}", "algo=a2c")
    assert message == "rlkit: invalid config: algo=a2c: cannot change the config group 'algo' when resuming (the " \
                      "run's algo is 'dqn'); resume uses the run's config"


def test_resume_overrides_a_key_only_the_runs_algorithm_has(cli, tmp_path, capsys):
    with initialize_config_dir(config_dir=str(Path(TRAIN).parent / "conf"), version_base="1.3"):
        run(compose("config", overrides=["algo=a2c", "env=Acrobot", "total_frames=200", "trainer.eval_episodes=2",
                                         "trainer.progress=false"]), tmp_path / "run")
    # The default algo (dqn) has no n_steps: Hydra must compose the run's a2c / Acrobot groups.
    cli.accepted(f"resume={tmp_path / 'run' / 'checkpoints' / 'last.pt'}", "algo.n_steps=10", "total_frames=600")
    saved = saved_config(tmp_path / "run")
    assert (saved["algo"]["name"], saved["env"]["id"], saved["algo"]["n_steps"]) == ("a2c", "Acrobot-v1", 10)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["frames"] == 600
    cli.accepted(f"resume={tmp_path / 'run'}", "algo=a2c", "total_frames=1000")  # the run's own group: allowed
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["frames"] == 1000
    capsys.readouterr()
    cli.accepted("--cfg", "job", f"resume={tmp_path / 'run'}", "algo.n_steps=12")  # Hydra flags first
    printed = yaml.safe_load(capsys.readouterr().out)
    assert (printed["algo"]["name"], printed["env"]["id"], printed["algo"]["n_steps"]) == ("a2c", "Acrobot-v1", 12)


def test_the_done_line_names_an_epsilon_greedy_evaluation(cli, tmp_path, capsys):
    """A run that evaluates ε-greedily (the Atari protocols) does not report a "greedy" return, nor does
    its resume, whose command line does not repeat trainer.eval_epsilon."""
    run_dir = tmp_path / "run"
    common = ["total_frames=200", "trainer.eval_episodes=2", "trainer.progress=false", "logger=none"]
    cli.accepted(*common, "trainer.eval_epsilon=0.05", f"hydra.run.dir={run_dir}")
    assert capsys.readouterr().err.splitlines()[-1].startswith("done: eval return (epsilon 0.05) ")
    cli.accepted(f"resume={run_dir}", "total_frames=400")
    assert capsys.readouterr().err.splitlines()[-1].startswith("done: eval return (epsilon 0.05) ")


def test_a_run_of_any_gymnasium_env_resumes_without_repeating_its_id(cli, tmp_path):
    """``env=gym`` leaves env.id ``???`` and the default run directory's name reads it: resuming an
    ``env=gym env.id=...`` run (the README's own example) failed in Hydra unless the line repeated
    ``env.id``."""
    with initialize_config_dir(config_dir=str(Path(TRAIN).parent / "conf"), version_base="1.3"):
        run(compose("config", overrides=["env=gym", "env.id=examples.corridor:Corridor-v0", "total_frames=200",
                                         "trainer.eval_episodes=2", "trainer.progress=false", "logger=none"]),
            tmp_path / "run")
    cli.accepted(f"resume={tmp_path / 'run'}", "total_frames=400")
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["frames"] == 400
    assert saved_config(tmp_path / "run")["env"]["id"] == "examples.corridor:Corridor-v0"


def test_sigint_checkpoints_exits_130_and_resumes(tmp_path):
    run_dir = tmp_path / "run"
    proc = start(["total_frames=1000000", "algo.learning_starts=100", "algo.batch_size=32",
                  "trainer.log_interval=100", "trainer.eval_episodes=2", "trainer.progress=false",
                  f"hydra.run.dir={run_dir}"], tmp_path)
    deadline = time.monotonic() + 90
    while not ((run_dir / "metrics.csv").is_file() and read_metrics_csv(run_dir)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "training interrupted by SIGINT; checkpoint written to" in err
    assert f"resume with: python train.py resume={run_dir}" in err
    frames = load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"]
    assert 100 <= frames < 1_000_000

    done = train([f"resume={run_dir}", f"total_frames={frames + 300}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"] == frames + 300
    assert read_metrics_csv(run_dir)[-1]["step"] == frames + 300
    assert saved_config(run_dir)["total_frames"] == frames + 300
    assert list(tmp_path.iterdir()) == [run_dir]  # the resume wrote into the same run


def test_multirun_gives_isolated_runs(tmp_path):
    sweep = tmp_path / "sweep"
    done = train(["-m", "algo=dqn,a2c", "seed=0,1", *TINY, f"hydra.sweep.dir={sweep}"], tmp_path)
    assert done.returncode == 0, done.stderr
    # job directories name the swept values (the fixed overrides in TINY are left out)
    names = ["0_algo=dqn,seed=0", "1_algo=dqn,seed=1", "2_algo=a2c,seed=0", "3_algo=a2c,seed=1"]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == names
    returns = {}
    for name in names:
        config = saved_config(sweep / name)
        algo, seed = name.split("=")[1].split(",")[0], int(name[-1])
        assert (config["algo"]["name"], config["seed"]) == (algo, seed)
        rows = read_metrics_csv(sweep / name)
        assert [row["step"] for row in rows] == [200, 400, 400]
        assert load_checkpoint(sweep / name / "checkpoints" / "last.pt")["frames"] == 400
        returns[algo, seed] = [row.get("episode_return") for row in rows]
    assert returns["dqn", 0] != returns["dqn", 1] and returns["a2c", 0] != returns["a2c", 1]
    assert "loss_objective" in read_metrics_csv(sweep / names[2])[0]


def test_a_run_directory_with_an_equals_sign_resumes_with_the_quoted_override(tmp_path):
    """Sweep jobs' directories are named "<n>_<key>=<value>": resume=<dir> must be quoted for Hydra
    (the hints rlkit prints say so), and the quoted path still finds the run's config groups."""
    run_dir = tmp_path / "0_seed=0"
    first = train(["algo=a2c", *TINY, f"hydra.run.dir='{run_dir}'"], tmp_path)
    assert first.returncode == 0, first.stderr
    again = train([f"resume='{run_dir}'", "total_frames=800", "algo.n_steps=5"], tmp_path)  # an a2c-only key
    assert again.returncode == 0, again.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"] == 800
    # The path as the run printed it, unquoted (Hydra's grammar refused it in a screenful): quoted for it.
    done = train([f"resume={run_dir}", "total_frames=1200"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"] == 1200
    # the final line: the return with 6 significant digits, as train.log's end line
    assert re.fullmatch(rf"done: greedy eval return -?[0-9.e+-]{{1,12}} \| run dir {re.escape(str(run_dir))}",
                        done.stderr.strip().splitlines()[-1]), done.stderr


def test_quote_paths_leaves_what_hydra_reads_as_meant(tmp_path, monkeypatch):
    """Only a path Hydra would refuse, or split into a sweep although it exists, is quoted."""
    from rlkit.cli import quote_paths

    monkeypatch.chdir(tmp_path)
    (tmp_path / "null").mkdir()
    (tmp_path / "a,b").mkdir()
    long_sweep = "run=" + ",".join(["outputs/2026-12-07/10-00-00_dqn_CartPole_s0"] * 9)  # longer than a file name
    args = ["out=null", "run=a,b", "run=c,d", long_sweep, "resume=x=1", "seed=1,2", "+run=e=f"]
    assert quote_paths(args) == ["out=null", "run='a,b'", "run=c,d", long_sweep, "resume='x=1'", "seed=1,2",
                                 "+run='e=f'"]


@pytest.mark.parametrize("arg", ["algo=c51", "+algo=dqn", "++env=Acrobot", "experiment=dqn_cartpole"])
def test_a_training_group_given_to_evaluate_or_export_is_an_unknown_key(arg):
    """Hydra's default help offered them the training groups; given, they failed in a screenful."""
    from rlkit.cli import CONF_DIR, command_line_problem

    key = arg.lstrip("+").split("=")[0]
    assert command_line_problem(["run=x", arg], CONF_DIR, "export") == (
        f"unknown key {key}; valid keys: ['checkpoint', 'device', 'format', 'out', 'run']")
    assert command_line_problem(["run=x", arg], CONF_DIR, "evaluate").startswith(f"unknown key {key}; valid keys: [")
    assert command_line_problem([arg.lstrip("+")], CONF_DIR, "config") is None  # train.py: a group choice


def test_a_sweep_with_a_failed_job_ends_with_status_1(tmp_path):
    """A job that fails (its directory already holds a run) lets the others run, and the sweep's exit
    status says so: scripts (reproduce.py) decide success from it."""
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0,1", *TINY, f"hydra.sweep.dir={sweep}"]
    assert train(args, tmp_path).returncode == 0
    shutil.rmtree(sweep / "1_seed=1")  # job 1 can run again; job 0's directory holds its run
    again = train(args, tmp_path)
    assert again.returncode == 1, again.stderr
    assert "rlkit: 1 job(s) of the sweep failed:\n  job 0: " in again.stderr and "already holds a run" in again.stderr
    assert load_checkpoint(sweep / "1_seed=1" / "checkpoints" / "last.pt")["frames"] == 400


def test_a_sweep_job_that_fails_with_a_bug_of_its_env_is_listed_too(tmp_path):
    """A job's error that is not rlkit's (the env raised while training) ended the sweep with Hydra's
    traceback, without the list of failed jobs the README promises."""
    sweep = tmp_path / "sweep"
    tests = str(Path(__file__).resolve().parent)  # (corridor_env.py, importable by the jobs)
    done = subprocess.run([sys.executable, TRAIN, "-m", "env=gym", "env.id=corridor_env:BrokenStepCorridor-v0",
                           "+env.make_kwargs.after=200,100000", *TINY, f"hydra.sweep.dir={sweep}"], cwd=tmp_path,
                          env={**ENV, "PYTHONPATH": os.pathsep.join([tests, ENV.get("PYTHONPATH", "")])}, text=True,
                          capture_output=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "RuntimeError: physics exploded" in done.stderr  # (the traceback, for the bug's owner)
    assert "rlkit: 1 job(s) of the sweep failed:\n  job 0: " in done.stderr
    assert done.stderr.rstrip().endswith(": RuntimeError: physics exploded"), done.stderr[-500:]
    assert load_checkpoint(sweep / "1_after=100000" / "checkpoints" / "last.pt")["frames"] == 400


def test_joblib_launcher_runs_c51_jobs_in_parallel(tmp_path):
    sweep = tmp_path / "sweep"
    done = train(["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "algo=c51", "seed=0,1",
                  "algo.learning_starts=200", "algo.batch_size=32", "algo.n_atoms=11", *TINY,
                  f"hydra.sweep.dir={sweep}"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Joblib.Parallel(n_jobs=2" in done.stdout + done.stderr
    for seed in (0, 1):
        run_dir = sweep / f"{seed}_seed={seed}"
        assert saved_config(run_dir)["seed"] == seed
        assert [row["step"] for row in read_metrics_csv(run_dir) if "loss_value" in row] == [200, 400]



def test_ctrl_c_in_a_joblib_sweep_checkpoints_every_running_job_and_starts_no_other(tmp_path):
    """A terminal's Ctrl-C reaches every process of the sweep. Its main process took it as a
    KeyboardInterrupt, on which joblib killed its workers: a run writing its interrupt checkpoint died
    with it (frames lost, no end: line), and the sweep ended saying "interrupted before it started;
    nothing was written". Now each running job checkpoints, the queued one does not start, and the
    sweep ends with 130 and the list of its stopped jobs."""
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, TRAIN, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             "seed=0,1,2", "total_frames=1000000", "algo.learning_starts=100", "algo.batch_size=32",
                             "trainer.log_interval=100", "trainer.eval_episodes=2", "trainer.progress=false",
                             f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    jobs = [sweep / "0_seed=0", sweep / "1_seed=1"]
    deadline = time.monotonic() + 120
    while not all((job / "metrics.csv").is_file() and read_metrics_csv(job) for job in jobs):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # (as a terminal's Ctrl-C: the whole process group)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "nothing was written" not in err and "Traceback" not in err, err
    assert "rlkit: [job 2 seed=2]: not started: the sweep was interrupted" in err
    assert "rlkit: the sweep was interrupted by SIGINT (its jobs that had finished are complete):" in err
    for num, job in enumerate(jobs):
        assert f"  job {num}: interrupted, checkpoint written ({job}); resume with: python train.py" in err
        frames = load_checkpoint(job / "checkpoints" / "last.pt")["frames"]
        log = (job / "train.log").read_text().splitlines()
        assert log[-1].split(" - ", 1)[1].startswith(f"end: interrupted at {frames} frames"), log[-3:]
        assert read_metrics_csv(job)[-1]["step"] <= frames
    assert "  job 2: not started" in err and not (sweep / "2_seed=2").exists()


def test_ctrl_c_as_a_joblib_sweep_starts_its_jobs_stops_the_sweep(tmp_path):
    """The sweep's main process held Ctrl-C back and its workers ignored it until their job had begun:
    one in the seconds the workers took to start was lost, and the sweep trained to its end with
    status 0. Now the main process records it, and no job trains."""
    import threading

    sweep = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, TRAIN, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                             "seed=0,1,2", "total_frames=3000", "trainer.eval_episodes=2", "trainer.progress=false",
                             f"hydra.sweep.dir={sweep}"], cwd=tmp_path, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    launched, out = threading.Event(), []

    def read() -> None:
        for line in proc.stdout:
            out.append(line)
            if "Launching jobs" in line:
                launched.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert launched.wait(120), proc.stderr.read()
    os.killpg(proc.pid, signal.SIGINT)
    err = proc.stderr.read()
    proc.wait(timeout=120)
    reader.join(10)
    assert proc.returncode == 130, err
    assert "rlkit: Ctrl-C: stopping the sweep" in err and "done:" not in err and "Traceback" not in err, err
    for seed in (0, 1, 2):
        assert re.search(rf"  job {seed}: (not started|interrupted as it started); train it with: python train.py "
                         rf"seed={seed} total_frames=3000", err), err
        assert not (sweep / f"{seed}_seed={seed}" / "config.yaml").exists()

def test_submitit_local_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    done = train(["-m", "hydra/launcher=submitit_local", "algo=a2c", "seed=3", *TINY, f"hydra.sweep.dir={sweep}"],
                 tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = sweep / "0_a2c_CartPole_s3"  # a sweep of one job varies no key: the default name
    assert saved_config(run_dir)["seed"] == 3
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"] == 400
    assert "loss_objective" in read_metrics_csv(run_dir)[0]


def test_a_new_run_into_a_directory_holding_a_run_is_refused_and_leaves_it_as_it_was(cli, tmp_path):
    overrides = ["total_frames=100", "trainer.eval_episodes=2", "trainer.progress=false"]
    with initialize_config_dir(config_dir=str(Path(TRAIN).parent / "conf"), version_base="1.3"):
        run(compose("config", overrides=overrides), tmp_path / "run")
        before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
        # In-process: run() itself refuses (metrics.csv / episodes.csv would get a second run's rows).
        with pytest.raises(RunDirError, match=r"already holds a run \(checkpoints, config.yaml, "
                                              r"episodes.csv, metrics.csv\); continue it with resume="):
            run(compose("config", overrides=overrides), tmp_path / "run")
    # The command line: refused before Hydra writes its .hydra/ files into the directory.
    message = cli(*overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert message.startswith(f"rlkit: {tmp_path / 'run'} already holds a run")
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    # Nor a new folder among its files (its checkpoints/, .hydra/ or any other).
    for inside in ("checkpoints/new", ".hydra/x", "sub"):
        message = cli(*overrides, f"hydra.run.dir={tmp_path / 'run' / inside}")
        assert message == (f"rlkit: invalid config: hydra.run.dir={tmp_path / 'run' / inside} is inside the run "
                           f"directory '{tmp_path / 'run'}', among its own files; write a new run outside it")
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before
    assert not (tmp_path / "run" / "sub").exists() and not (tmp_path / "run" / "checkpoints" / "new").exists()


# -- runs you can trust: one writer per directory, refusals in one line before anything is written --
def test_two_starts_in_the_same_second_get_their_own_directories(tmp_path):
    procs = [start(TINY, tmp_path) for _ in range(2)]
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outs
    run_dirs = sorted((tmp_path / "outputs").glob("*/*"))
    # <time>_dqn_CartPole_s0_<6 hex digits>: started in the same second (as they usually are), the
    # names differ only in the random suffix.
    assert len(run_dirs) == 2 and all(re.fullmatch(r"\d\d-\d\d-\d\d_dqn_CartPole_s0_[0-9a-f]{6}", d.name)
                                      for d in run_dirs)
    for run_dir in run_dirs:
        assert [row["step"] for row in read_metrics_csv(run_dir)] == [200, 400, 400]
    assert without_fps(read_metrics_csv(run_dirs[0])) == without_fps(read_metrics_csv(run_dirs[1]))


def without_fps(rows):
    return [{k: v for k, v in row.items() if k != "fps"} for row in rows]


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    run_dir = tmp_path / "run"
    first = start(["total_frames=1000000", "trainer.progress=false", "trainer.eval_episodes=2",
                   f"hydra.run.dir={run_dir}"], tmp_path)
    try:
        deadline = time.monotonic() + 90
        while not (run_dir / "config.yaml").is_file():  # committed: it holds the lock and trains
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        for args in ([f"resume={run_dir}"], [f"hydra.run.dir={run_dir}", "seed=1"]):
            done = train([*args, "trainer.progress=false"], tmp_path)
            assert done.returncode == 2, done.stderr
            assert done.stderr == (f"rlkit: {run_dir} is in use by pid {first.pid} on {socket.gethostname()}; one "
                                   "process writes a run at a time: wait for it to end, or stop it and resume\n")
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 130


def test_resume_refuses_another_output_dir(cli, tmp_path):
    with initialize_config_dir(config_dir=str(Path(TRAIN).parent / "conf"), version_base="1.3"):
        run(compose("config", overrides=["total_frames=100", "trainer.eval_episodes=2", "trainer.progress=false"]),
            tmp_path / "run")
    before = sorted(p.name for p in tmp_path.iterdir())
    message = cli(f"resume={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'elsewhere'}")
    assert message == (f"rlkit: resume={tmp_path / 'run'} continues in its own directory ({tmp_path / 'run'}); "
                       f"hydra.run.dir={tmp_path / 'elsewhere'} cannot be given with resume=")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(("args", "message"), [
    (["hydra.run.dir="], "rlkit: hydra.run.dir is empty; give a directory for the run, or leave it unset"),
    (["hydra.run.dir=."], "rlkit: the run directory '.' is the current directory"),
    (["seed=4294967296"], "rlkit: invalid config: seed=4294967296 is invalid: expected an integer in [0, 2147483647]"),
    (["total_frames=99999999999999999999999"],
     "rlkit: invalid config: total_frames=99999999999999999999999 is invalid: expected an integer in [1, "),
    (["num_threads=100000"], "rlkit: invalid config: num_threads=100000 is invalid: expected an integer in [1, "),
    (["device=cpu:999"], "rlkit: invalid config: device='cpu:999' does not exist: the CPU device is 'cpu'"),
    (["algo.optim.lr=inf"], "rlkit: invalid config: algo.optim.lr=inf is invalid: expected a finite number"),
    (["algo.v_min=-inf", "algo=c51"], "rlkit: invalid config: algo.v_min=-inf is invalid: expected a finite number"),
    (["+env.make_kwargs.foo=1"], "rlkit: env 'CartPole-v1' could not be built with env.make_kwargs={'foo': 1}: "
                                 "CartPoleEnv.__init__() got an unexpected keyword argument 'foo'"),
    # (it blamed algo.loss_function, a key of the experiment's the user never typed)
    (["experiment=dqn_cartpole", "algo=c51"], "rlkit: invalid config: experiment=dqn_cartpole is made for algo=dqn "
                                              "(its algo.* settings are for dqn): drop algo=c51, or choose an "
                                              "experiment made for c51 (conf/experiment/)"),
    # an env whose step breaks the gymnasium API or raises: refused by a step taken in memory
    (["env=gym", "env.id=corridor_env:BrokenStepCorridor-v0", "+env.make_kwargs.mode=four_tuple"],
     "rlkit: env 'corridor_env:BrokenStepCorridor-v0' failed in its first step: ValueError: not enough values to unpack "
     "(expected 5, got 4)"),
    (["algo=a2c", "env=gym", "env.id=corridor_env:BrokenStepCorridor-v0", "algo.num_envs=2"],
     "rlkit: env 'corridor_env:BrokenStepCorridor-v0' failed in its first step: RuntimeError: physics exploded"),
    # a constructor's KeyError says only the key: the error's type says what it is
    (["env=FrozenLake", "+env.make_kwargs.map_name=9x9"],
     "rlkit: env 'FrozenLake-v1' could not be built with env.make_kwargs={'map_name': '9x9'}: KeyError: '9x9'"),
    (["algo.buffer_size=1000000000000"], "rlkit: algo.buffer_size=1000000000000: the replay buffer needs 41.8 TiB "
                                         "of cpu memory; this machine has "),
    # (it failed on gae's lmbda, which the renamed section kept; value_estimator.name=td1 ran as td1 unseen)
    (["algo=a2c", "value_estimator.name=td0"], "rlkit: invalid config: value_estimator.name=td0 renames the "
                                               "value_estimator section without choosing its file, whose keys it "
                                               "keeps; choose it with value_estimator=td0"),
    # a batch past the budget trained 80x the frames asked for; a huge rollout was killed for memory
    (["algo=a2c", "algo.n_steps=20000", "total_frames=2000"],
     "rlkit: invalid config: algo.n_steps=20000 x algo.num_envs=8 = 160,000 frames per batch is more than "
     "total_frames=2000: the collector takes whole batches; lower algo.n_steps or raise total_frames"),
    (["algo=dqn", "algo.train_frequency=300", "algo.num_envs=2", "total_frames=500"],
     "rlkit: invalid config: algo.train_frequency=300 x algo.num_envs=2 = 600 frames per batch is more than "),
    (["algo=a2c", "algo.n_steps=100000000", "total_frames=800000000"],
     "rlkit: algo.n_steps=100000000 x algo.num_envs=8: the rollout batch needs about 3.0 TiB of cpu memory; this "
     "machine has "),
    (["env=MountainCar", "env.id=Pendulum-v1"], "rlkit: env 'Pendulum-v1' has action space Box(-2.0, 2.0, (1,), "
                                                "float32); algo=dqn supports discrete action spaces; algorithms for box actions: ['a2c']"),
])
def test_a_start_that_cannot_work_is_refused_in_one_line_before_its_directory_exists(cli, tmp_path, args, message):
    assert cli(*args, "trainer.progress=false").startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_two_sweeps_started_together_get_their_own_directories(cli, tmp_path):
    for _ in range(2):
        cli.accepted("-m", "seed=0", *TINY)
    sweeps = sorted((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(sweeps) == 2 and sweeps[0] != sweeps[1]
    for sweep in sweeps:
        assert [p.name for p in sweep.iterdir() if p.is_dir()] == ["0_dqn_CartPole_s0"]


def test_the_command_line_validates_a_start_once(cli, tmp_path, monkeypatch):
    import rlkit.run as run_module

    calls = []
    validate = run_module.validate_config

    def counting(cfg):
        calls.append(1)
        return validate(cfg)

    monkeypatch.setattr(run_module, "validate_config", counting)
    cli.accepted(*TINY, f"hydra.run.dir={tmp_path / 'run'}")
    assert len(calls) == 1  # by the check before the run directory exists; the run reuses its settings
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_sweep_jobs_print_labelled_plain_lines_and_announce_an_early_stop(tmp_path):
    """stderr is a pipe: plain progress lines, each with its job's label, the early stop announced in
    one line before the job's summary; under Hydra's job logging each train.log line is written once."""
    sweep = tmp_path / "sweep"
    done = train(["-m", "seed=0,1", "env.target_return=1", "total_frames=1000", "algo.learning_starts=200",
                  "algo.batch_size=32", "trainer.eval_episodes=2", "trainer.eval_interval=400",
                  "trainer.log_interval=200", f"hydra.sweep.dir={sweep}"], tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("[job") or line.startswith("done:")]
    for job in (0, 1):
        label = f"[job {job} seed={job}]"  # the swept values only
        mine = [line for line in lines if line.startswith(label) or line.startswith(f"done: {label}")]
        assert re.fullmatch(re.escape(label) + r" 400/1,000 frames \(40\.0%\) \| [\d,]+ frames/s \| return \S+ \| "
                            r"eval \S+ \| \d\d:\d\d<\d\d:\d\d", mine[-3]), mine
        assert re.fullmatch(re.escape(label) + r" stopped early at frame 400: greedy eval return \S+ reached the "
                            r"target 1", mine[-2]), mine
        assert mine[-1].startswith(f"done: {label} greedy eval return ")
        log = (sweep / f"{job}_seed={job}" / "train.log").read_text().splitlines()
        texts = [line.split(" - ", 1)[1] for line in log]
        assert texts[0].startswith("start: dqn CartPole-v1 seed") and texts[-1].startswith("end: target reached at 400")
        assert len(set(texts)) == len(texts)  # each line once: rlkit adds no handler beside Hydra's


@pytest.mark.parametrize("damage", [b"- a list\n", b"hydra: [\n", b"hydra: 3\n", b"\xff\xfe\x00", None])
def test_a_resume_reads_the_group_choices_from_config_yaml_when_the_provenance_is_damaged(tmp_path, damage):
    """run_group_choices falls back from a missing or damaged .hydra/hydra.yaml to config.yaml, and
    gives no choice (the resume then names the problem itself) when that is damaged too."""
    from rlkit.cli import CONF_DIR, run_group_choices
    from rlkit.run import CONFIG_FILE, PROVENANCE_DIR

    (tmp_path / CONFIG_FILE).write_text(yaml.safe_dump({"algo": {"name": "a2c"}, "env": {"id": "Acrobot-v1"}}))
    if damage is not None:
        (tmp_path / PROVENANCE_DIR).mkdir()
        (tmp_path / PROVENANCE_DIR / "hydra.yaml").write_bytes(damage)
    assert run_group_choices(str(tmp_path), CONF_DIR) == {"algo": "a2c", "env": "Acrobot"}
    (tmp_path / CONFIG_FILE).write_bytes(damage or b"algo: [\n")
    assert run_group_choices(str(tmp_path), CONF_DIR) == {}


def test_a_mapping_merged_onto_a_group_s_node_is_not_taken_for_a_choice():
    assert cli_module.command_line_problem(["algo={optim: {lr: 0.01}, batch_size: 64}"], cli_module.CONF_DIR) is None
    assert cli_module.command_line_problem(["value_estimator={gamma: 0.98}"], cli_module.CONF_DIR) is None


def test_ctrl_c_before_training_ends_in_one_line_and_leaves_no_run_folder(cli, tmp_path, monkeypatch, capsys):
    """Ctrl-C while the run was built printed a KeyboardInterrupt traceback of 60 to 80 lines and left
    the empty folder Hydra made for the run."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_tasks, "run", interrupted)
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.accepted("total_frames=300", f"hydra.run.dir={tmp_path / 'runs' / 'one'}")
    err = capsys.readouterr().err
    assert info.value.code == 130, err
    assert err.strip() == "train.py interrupted; the run had not started; nothing was kept", err
    assert list((tmp_path / "runs").iterdir()) == []


def test_a_second_ctrl_c_in_a_started_run_ends_with_the_resume_hint(cli, tmp_path, monkeypatch, capsys):
    """(A bare KeyboardInterrupt from a started run, e.g. Ctrl-C again while the checkpoint of the
    first is written, said "the run had not started; nothing was kept".)"""
    real_run = cli_tasks.run

    def interrupted_after_the_start(cfg, run_dir, **kwargs):
        real_run(cfg, run_dir, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_tasks, "run", interrupted_after_the_start)
    capsys.readouterr()
    run_dir = tmp_path / "runs" / "one"
    with pytest.raises(SystemExit) as info:
        cli.accepted("total_frames=300", "trainer.progress=false", f"hydra.run.dir={run_dir}")
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 130 and err[-1].startswith("train.py interrupted; resume with: python train.py resume="), err
    assert (run_dir / "config.yaml").is_file()


def test_an_experiment_that_chooses_no_algorithm_takes_any_algo(tmp_path):
    """experiment=<e> algo=<a> is refused only where <e> is made for another algorithm: a user's
    experiment of env and budget settings combines with any algo= (and experiment=null with all)."""
    from rlkit.cli.command_line import _experiment_algo_problem

    conf = tmp_path / "conf"
    shutil.copytree(cli_module.CONF_DIR, conf)
    (conf / "experiment" / "long_acrobot.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /env: Acrobot\n\ntotal_frames: 1000\n")
    (conf / "experiment" / "tuned_dqn.yaml").write_text("# @package _global_\nalgo:\n  batch_size: 64\n")
    assert _experiment_algo_problem(conf, "config", ["experiment=long_acrobot", "algo=a2c"]) is None
    assert _experiment_algo_problem(conf, "config", ["experiment=tuned_dqn", "algo=a2c"]).startswith(
        "experiment=tuned_dqn is made for algo=dqn")
    assert _experiment_algo_problem(conf, "config", ["experiment=a2c_cartpole", "algo=dqn"]).startswith(
        "experiment=a2c_cartpole is made for algo=a2c")


@pytest.mark.parametrize("failing", ["periodic", "frame 0"])
def test_a_full_disk_is_refused_in_one_line_naming_the_file_the_space_and_what_to_do(cli, tmp_path, monkeypatch,
                                                                                       failing):
    """A full disk gave a 40-line Hydra traceback ending in torch's `RuntimeError: [enforce fail at
    inline_container.cc:672] . unexpected pos 203520 vs 203408`."""
    import errno

    import torch

    save, saves = torch.save, []

    def disk_fills_up(obj, f, *args, **kwargs):
        saves.append(obj["frames"])
        if obj["frames"] > 0 or failing == "frame 0":
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 203520 vs 203408")
        return save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_fills_up)
    run_dir = tmp_path / "runs" / "one"
    line = cli("total_frames=300", "algo.learning_starts=100", "trainer.checkpoint_interval=100", f"hydra.run.dir={run_dir}")
    last = run_dir / "checkpoints" / "last.pt"
    if failing == "frame 0":
        assert re.fullmatch(rf"rlkit: no space left on the device writing {re.escape(str(last))} \(.+ free\); the run "
                            r"had not started, and nothing of it was kept; free some space and start it again", line)
        assert not run_dir.exists()  # (the start was undone)
        return
    assert re.fullmatch(rf"rlkit: no space left on the device writing {re.escape(str(last))} \(.+ free\); the last good "
                        rf"checkpoint is {re.escape(str(last))}; free some space and resume with: python train.py "
                        rf"resume={re.escape(str(run_dir))}", line), line
    monkeypatch.undo()
    assert load_checkpoint(last)["frames"] == 0
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]
    end = (run_dir / "train.log").read_text().splitlines()[-1]
    assert "end: failed at" in end and "no space left on the device writing" in end, end


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "export.py", "tune.py"])
@pytest.mark.parametrize("during", ["the imports", "the command line's check"])
def test_ctrl_c_before_a_script_starts_ends_in_one_line(tmp_path, monkeypatch, capsys, script, during):
    """Ctrl-C in the first seconds (imports, argument checks) printed a KeyboardInterrupt traceback
    of 38 to 72 lines."""
    import builtins
    import runpy

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if during == "the imports":
        real_import = builtins.__import__

        def importing(name, *args, **kwargs):
            if name == "hydra":
                raise KeyboardInterrupt
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", importing)
    else:
        monkeypatch.setattr(cli_module, "prepare_argv", interrupted)
    monkeypatch.setattr(sys, "argv", [script, "run=x"])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(startup, "_stage", "starting")  # (a task run in this process before marked its stage)
    exits = []
    monkeypatch.setattr(startup, "before_exit", lambda: exits.append(script))  # (this process goes on)
    with pytest.raises(SystemExit) as info:
        try:
            runpy.run_path(str(Path(TRAIN).with_name(script)), run_name="__main__")
        except KeyboardInterrupt:  # (what ends in the traceback)
            pytest.fail(f"{script} let the KeyboardInterrupt through")
    assert info.value.code == 130
    # (once imported, the script spares its exit the last garbage collection: see before_exit)
    assert exits == ([] if during == "the imports" else [script])
    assert capsys.readouterr().err.strip() == f"rlkit: {script} interrupted before it started; nothing was written"
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def script_main(monkeypatch, tmp_path):
    """Runs an entry script as ``__main__`` in this process (``runpy``) with the given arguments, in
    ``tmp_path``; returns its exit status and the scripts that called :func:`rlkit.startup.before_exit`
    (recorded, not run: this process goes on)."""
    import runpy

    exits: list[str] = []
    monkeypatch.setattr(startup, "before_exit", lambda: exits.append("called"))
    monkeypatch.chdir(tmp_path)
    handlers, level = logging.root.handlers[:], logging.root.level  # Hydra configures the root logger
    stops = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    def main(script: str, *args: str) -> tuple[int | str | None, list[str]]:
        exits.clear()
        monkeypatch.setattr(sys, "argv", [script, *args])
        with pytest.raises(SystemExit) as info:
            runpy.run_path(str(Path(TRAIN).with_name(script)), run_name="__main__")
        return info.value.code, list(exits)

    yield main
    logging.root.handlers[:] = handlers
    logging.root.setLevel(level)
    for stop, handler in stops.items():
        signal.signal(stop, handler)
    startup.mark("starting")


@pytest.mark.parametrize(("script", "arg"), [("train.py", "resume=missing/run"), ("evaluate.py", "run=missing/run"),
                                             ("export.py", "run=missing/run"), ("tune.py", "resume=missing/run")])
def test_a_script_spares_its_exit_the_last_garbage_collection_also_when_refused(script_main, script, arg):
    """Each script's process ended about a second after its work (the interpreter's last garbage
    collection over everything torch, tensordict and Hydra made): it now calls before_exit first."""
    assert script_main(script, arg) == (2, ["called"])


def test_a_completed_training_spares_its_exit_the_last_garbage_collection(script_main, tmp_path):
    run_dir = tmp_path / "run"
    assert script_main("train.py", *TINY, f"hydra.run.dir={run_dir}") == (0, ["called"])
    assert read_metrics_csv(run_dir)[-1]["step"] == 400


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_checkpoints_and_exits_129(tmp_path):
    """Closing the terminal ended the run with status 129 and no checkpoint nor end: line."""
    run_dir = tmp_path / "run"
    proc = start(["total_frames=1000000", "algo.learning_starts=100", "algo.batch_size=32",
                  "trainer.log_interval=100", "trainer.eval_interval=0", "trainer.progress=false",
                  f"hydra.run.dir={run_dir}"], tmp_path)
    deadline = time.monotonic() + 90
    while not ((run_dir / "metrics.csv").is_file() and read_metrics_csv(run_dir)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 129, err
    assert "training interrupted by SIGHUP; checkpoint written to" in err
    assert f"resume with: python train.py resume={run_dir}" in err
    frames = load_checkpoint(run_dir / "checkpoints" / "last.pt")["frames"]
    assert 100 <= frames < 1_000_000
    assert f"end: interrupted at {frames} frames" in (run_dir / "train.log").read_text()


@pytest.mark.parametrize(("stage", "sweep", "status", "line"), [
    ("starting", False, 130, "rlkit: train.py interrupted before it started; nothing was written"),
    ("done", True, 130, "rlkit: train.py interrupted between the runs of a sweep; the runs that finished are kept"),
    ("done", False, None, "rlkit: train.py: Ctrl-C after its work completed; nothing to stop"),
])
def test_a_ctrl_c_outside_a_run_says_what_it_interrupted(monkeypatch, capsys, stage, sweep, status, line):
    """It said "interrupted before it started; nothing was written" also after a completed run (exit 130:
    a resume then answers "complete") and between a sweep's jobs (whose runs are written)."""
    monkeypatch.setattr(startup, "_stage", stage)
    if status is None:
        startup.interrupted("train.py", sweep=sweep)  # (returns: the script ends with its run's status)
    else:
        with pytest.raises(SystemExit) as info:
            startup.interrupted("train.py", sweep=sweep)
        assert info.value.code == status
    assert capsys.readouterr().err.strip() == line


def test_a_stop_signal_while_a_complete_run_closes_leaves_it_complete(tmp_path, monkeypatch, capfd):
    """A signal after training, while the run closed its envs and loggers, gave exit status 143 (no
    .rlkit.closed written) or 130 with a resume hint, for a run a resume then calls complete."""
    from rlkit.trainers import Trainer

    close = Trainer.close

    def closing(self):
        os.kill(os.getpid(), signal.SIGTERM)
        close(self)

    monkeypatch.setattr(Trainer, "close", closing)
    overrides = ["total_frames=200", "algo.learning_starts=100", "trainer.eval_episodes=2", "trainer.progress=false"]
    with initialize_config_dir(config_dir=str(Path(TRAIN).parent / "conf"), version_base="1.3"):
        metrics = run(compose("config", overrides=overrides), tmp_path / "run")
    assert "eval_return" in metrics and (tmp_path / "run" / ".rlkit.closed").read_text() == "200\n"
    assert "SIGTERM received after the run completed: nothing to stop" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # (restored once the run closed)


def test_the_done_line_marks_a_dropped_seed_and_never_shows_none(tmp_path):
    """A multi-seed run with a dropped seed printed ``seed 1: None`` (train.log said nan)."""
    import json

    from rlkit.cli.tasks import _seed_shown
    from rlkit.trainers.multiseed import SEED_END_FILE

    (tmp_path / "seed_1").mkdir()
    (tmp_path / "seed_1" / SEED_END_FILE).write_text(json.dumps(
        {"seed": 1, "status": "dropped", "reason": "non_finite", "frames": 1010, "message": "dropped at frame 1,010"}))
    assert _seed_shown(tmp_path, 0, {"eval_return": 9.125}) == "9.125"
    assert _seed_shown(tmp_path, 1, {}) == "no evaluation (dropped: non-finite)"
    assert _seed_shown(tmp_path, 1, {"eval_return": 9.3}) == "9.3 (dropped: non-finite)"
