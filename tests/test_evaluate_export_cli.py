"""evaluate.py and export.py as users run them (subprocesses, a few): a tiny train.py run evaluated with
and without video and exported; the evaluation's episodes replayed with load_agent(...).act and with the
exported file on plain gymnasium envs give the same returns; bad input refused in one line, status 2,
nothing written."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlkit
from rlkit.trainers import read_metrics_csv

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0",
       "PYTHONPATH": str(ROOT)}
HAS_MOVIEPY = importlib.util.find_spec("moviepy") is not None


def script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / name), *args], cwd=cwd, env=ENV, text=True,
                          capture_output=True, timeout=300)


def files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def rollout(act, seed: int) -> float:
    """The return of one CartPole episode (gymnasium's own env, reset with ``seed``) acting with ``act``."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(int(act(obs)))
        total += float(reward)
        done = terminated or truncated
    env.close()
    return total


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("cli")
    run = cwd / "run"
    done = script("train.py", "total_frames=400", "algo.learning_starts=100", "trainer.eval_episodes=3",
                  "trainer.eval_interval=0", "trainer.progress=false", f"hydra.run.dir={run}", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return cwd, run


def test_evaluate_then_export_act_alike(cli_run):
    cwd, run = cli_run
    done = script("evaluate.py", f"run={run}", "episodes=3", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("eval: 3 episodes | return ") and "results.json" in done.stdout
    (results_path,) = run.glob("eval/*/results.json")
    results = json.loads(results_path.read_text())
    # the run's seed + 10000 and its trainer.eval_episodes: the episodes of its closing evaluation
    assert results["return_mean"] == pytest.approx(read_metrics_csv(run)[-1]["eval_return"])

    done = script("export.py", f"run={run}", "format=torchscript", cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"exported: {run / 'export' / 'policy.pt'} (torchscript; checkpoint last.pt, the latest, "
                           "400 frames)\n")
    exported = torch.jit.load(str(run / "export" / "policy.pt"))
    agent = rlkit.load_agent(run)
    seeds = [10_000 + i for i in range(3)]
    by_agent = [rollout(agent.act, s) for s in seeds]
    by_file = [rollout(lambda o: exported(torch.as_tensor(o)[None])[0], s) for s in seeds]
    assert by_agent == by_file
    if HAS_MOVIEPY:
        # with video the sub-envs run in a loop, seeded seed + i: gymnasium's own envs with those seeds
        done = script("evaluate.py", f"run={run}", "episodes=3", "video=true", f"out={cwd / 'video'}", cwd=cwd)
        assert done.returncode == 0, done.stderr
        videoed = json.loads((cwd / "video" / "results.json").read_text())
        assert videoed["returns"] == by_agent
        assert sorted(p.name for p in (cwd / "video").glob("*.mp4")) == [f"episode-{i}.mp4" for i in range(3)]


def test_exporting_a_snapshot_names_it_and_keeps_the_latest_export(cli_run, tmp_path):
    """A snapshot's export goes to its own file (it replaced the run's ``export/policy.pt``), and the
    printed line names the checkpoint exported."""
    run = tmp_path / "run"
    shutil.copytree(cli_run[1], run, ignore=shutil.ignore_patterns("export"))
    shutil.copy(run / "checkpoints" / "last.pt", run / "checkpoints" / "step_200.pt")
    (run / "export").mkdir()
    (run / "export" / "policy.pt").write_bytes(b"the latest policy")
    done = script("export.py", f"run={run}", "checkpoint=step_200.pt", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    snapshot = run / "export" / "policy_step_200.pt"
    assert done.stdout == f"exported: {snapshot} (torchscript; checkpoint step_200.pt, 400 frames)\n"
    assert (run / "export" / "policy.pt").read_bytes() == b"the latest policy"
    obs = torch.randn(5, 4)
    assert torch.equal(torch.jit.load(str(snapshot))(obs), rlkit.load_agent(run, checkpoint="step_200.pt").act(obs))


def test_a_sweep_of_evaluations_leaves_no_folder_where_it_ran_and_goes_on_past_a_failed_job(cli_run, tmp_path):
    """evaluate.py -m wrote Hydra's multirun/<date>/<time>/ (multirun.yaml, empty job folders) into
    the working directory, although its results go into the run. A job refused (a run that is not
    there) ended the whole sweep there, leaving that folder too; the other jobs now go on, as
    train.py's do, and the sweep ends with status 1 naming the failed jobs."""
    _, run = cli_run
    done = script("evaluate.py", "-m", f"run={tmp_path / 'nope'},{run}", "episodes=1,2",
                  f"out={tmp_path / 'results'}/${{hydra:job.num}}", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.count("eval: 1 episode | ") == 1 and done.stdout.count("eval: 2 episodes | ") == 1
    assert files(tmp_path) == ["results", "results/2", "results/2/results.json", "results/3", "results/3/results.json"]
    failed = [line for line in done.stderr.splitlines() if line.startswith("rlkit: [job ")]
    assert len(failed) == 2 and all(f"failed: no checkpoint file or run directory at '{tmp_path / 'nope'}'" in line
                                    for line in failed), done.stderr
    assert "rlkit: 2 job(s) of the sweep failed:\n  job 0: " in done.stderr


@pytest.mark.skipif(HAS_MOVIEPY, reason="moviepy is installed; the video run is part of the test above")
def test_video_needs_moviepy(cli_run):
    cwd, run = cli_run
    done = script("evaluate.py", f"run={run}", "video=true", cwd=cwd)
    assert done.returncode == 2 and 'pip install -e ".[video]"' in done.stderr


@pytest.mark.parametrize(("name", "args", "message"), [
    ("evaluate.py", ["run={tmp}/nope"], "rlkit: no checkpoint file or run directory at "),
    ("evaluate.py", ["run={run}", "episodes=0"], "rlkit: invalid config: episodes=0 is invalid: expected a positive integer"),
    ("export.py", ["run={run}", "format=tflite"], "rlkit: invalid config: format='tflite' is not an export format"),
    # A misspelt key without + (Hydra's "not in struct" text before), and with + (Hydra takes any: it
    # ran 10 episodes as if it had been the default).
    ("export.py", ["run={run}", "formatt=onnx"], "rlkit: invalid config: unknown key formatt (did you mean format?); "
                                                "valid keys: ['checkpoint', 'device', 'format', 'out', 'run']"),
    ("evaluate.py", ["run={run}", "+episode=3"], "rlkit: invalid config: unknown key episode (did you mean episodes?); "
                                                "valid keys of evaluate.py: ['checkpoint', 'deterministic', "),
    # checkpoint= names a file of the run directory (a number reads as an int to Hydra)
    ("evaluate.py", ["run={run}", "checkpoint=50000"], "rlkit: checkpoint='50000' is invalid (did you mean "
                                                      "step_50000.pt?): expected the name of one of the run's checkpoints"),
    ("export.py", ["run={run}", "checkpoint=step_9.pt"], "rlkit: checkpoint='step_9.pt' is not among the checkpoints "),
    # among the run's own files (evaluate.py wrote results.json there; export.py refused it already)
    ("evaluate.py", ["run={run}", "out={run}/checkpoints/ev"], "rlkit: invalid config: output directory '{run}/checkpoints/ev' "
                                                             "is inside the run directory '{run}', among its own files; "
                                                             "write the evaluation into '{run}/eval' or outside the run\n"),
    ("export.py", ["run={run}", "out={run}/.hydra/policy.pt"], "rlkit: invalid config: out='{run}/.hydra/policy.pt' is "
                                                              "inside the run directory '{run}', among its own files"),
])
def test_bad_input_is_refused_in_one_line_and_writes_nothing(cli_run, tmp_path, name, args, message):
    cwd, run = cli_run
    before, before_cwd = files(run), files(cwd)
    done = script(name, *[a.format(tmp=tmp_path, run=run) for a in args], cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(message.format(run=run)) and done.stderr.count("\n") == 1, done.stderr
    assert files(run) == before and files(cwd) == before_cwd and list(tmp_path.iterdir()) == []


def test_export_keeps_an_existing_file_that_is_not_an_export(cli_run, tmp_path):
    """export.py out=<an unrelated file> replaced it with the exported zip and exit 0."""
    cwd, run = cli_run
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    before = files(run)
    done = script("export.py", f"run={run}", f"out={notes}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"rlkit: invalid config: out='{notes}' exists and is not a policy file export.py wrote, which "
                           "is all an export replaces; it is left as it is: give another out= or remove the file first\n")
    assert notes.read_text() == "my notes\n" and files(tmp_path) == ["notes.txt"] and files(run) == before


@pytest.mark.parametrize("sent", [None, "SIGTERM"])
@pytest.mark.parametrize("task", ["export", "evaluate"])
def test_ctrl_c_ends_export_and_evaluate_with_one_line(task, sent, monkeypatch, capsys, tmp_path):
    """Ctrl-C printed a ~60-line traceback from export.py / evaluate.py (train.py prints one line). A
    SIGTERM killed evaluate.py, leaving its half-made folder (with video=true it was not seen at all:
    SDL had taken it); it now interrupts as Ctrl-C does, status 143."""
    import os
    import signal

    from omegaconf import OmegaConf

    from rlkit import cli, evaluation, exporter

    def interrupted(*args, **kwargs):
        if sent is None:
            raise KeyboardInterrupt
        os.kill(os.getpid(), getattr(signal, sent))
        return None  # (the old code: the stand-in handler below took the signal, and the task went on)

    before = signal.signal(signal.SIGTERM, lambda *args: None)  # (this test process is not killed either way)

    monkeypatch.setattr(exporter if task == "export" else evaluation, f"{task}_policy" if task == "export" else task,
                        interrupted)
    if task == "export":  # (export.py loads the agent first, to name its checkpoint)
        loaded = SimpleNamespace(checkpoint=tmp_path / "last.pt", run_dir=tmp_path)
        monkeypatch.setattr(rlkit.agent, "load_agent", lambda *args, **kwargs: loaded)
        monkeypatch.setattr(exporter, "checkpoint_label", lambda *args: ("last.pt", True))
    defaults = OmegaConf.load(Path(cli.CONF_DIR) / f"{task}.yaml")
    values = OmegaConf.to_container(defaults, throw_on_missing=False)
    cfg = OmegaConf.create({k: v for k, v in values.items() if k not in ("defaults", "hydra")} | {"run": str(tmp_path)})
    try:
        with pytest.raises(SystemExit) as stop:
            getattr(cli, f"{task}_task")(cfg)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stop.value.code == (130 if sent is None else 143)
    err = capsys.readouterr().err.strip().splitlines()
    by = "" if sent is None else f" by {sent}"
    assert len(err) == 1 and err[0].startswith(f"{task}.py interrupted{by}; nothing was written")


@pytest.mark.skipif(not HAS_MOVIEPY, reason="video needs moviepy (the [video] extra)")
def test_a_recording_that_writes_no_video_says_so(tmp_path):
    """An env declaring 'rgb_array' whose render() returns None gave "videos": [] and exit 0, silently."""
    result = rlkit.train(["env=gym", "env.id=corridor_env:BlankCorridor-v0", "algo.learning_starts=100",
                          "total_frames=200", "trainer.eval_episodes=2", "logger=none", "trainer.progress=false"],
                         output_dir=tmp_path / "run")
    with pytest.warns(RuntimeWarning, match=r"the video of 2 of the 2 episodes was not written: the env's render\(\) "
                                            r"returned no frames"):
        results = rlkit.evaluate(result.run_dir, episodes=2, video=True, output_dir=tmp_path / "eval")
    assert results["videos"] == []
