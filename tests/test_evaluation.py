"""rlkit.evaluate / evaluate.py's logic: the run's own evaluation reproduced, results.json with every
episode, videos (one mp4 per episode), refusals before anything is written."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import rlkit
from rlkit.errors import ConfigError, EnvError, MissingCheckpointError, RlkitError
from rlkit.evaluation import RESULTS_FILE, evaluate
from rlkit.trainers import read_metrics_csv

HAS_MOVIEPY = importlib.util.find_spec("moviepy") is not None


def files(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_the_default_evaluation_is_the_runs_last_one(tiny_run):
    """The run's seed + 10000 and trainer.eval_episodes episodes: the episodes of its closing evaluation."""
    run = tiny_run("dqn")
    results = rlkit.evaluate(run, episodes=2)
    last = read_metrics_csv(run / "metrics.csv")[-1]
    assert results["return_mean"] == pytest.approx(float(last["eval_return"]))
    assert results["length_mean"] == pytest.approx(float(last["eval_length"]))
    written = json.loads((run / "eval").glob("*/results.json").__next__().read_text())
    assert written == results
    assert len(results["returns"]) == len(results["lengths"]) == 2 and results["videos"] == []
    assert results["seed"] == 10_000 and results["frames"] >= 300 and results["algo"] == "dqn"
    assert results["unfinished"] == 0 and results["finished"] == [True, True] and results["max_steps"] == 100_000


def test_episodes_the_step_cap_cuts_short_are_recorded_in_results_json(tiny_run, tmp_path, monkeypatch, caplog):
    """A cap-cut evaluation says so in results.json and the summary line, not only in the log."""
    from rlkit import evaluation
    from rlkit.evaluation import format_results
    from rlkit.trainers.evaluator import Evaluator

    class Capped(Evaluator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs, max_steps=5)

    monkeypatch.setattr(evaluation, "Evaluator", Capped)
    results = evaluate(tiny_run("dqn"), episodes=2, output_dir=tmp_path / "out")
    written = json.loads((tmp_path / "out" / RESULTS_FILE).read_text())
    assert written["unfinished"] == 2 and written["finished"] == [False, False] and written["max_steps"] == 5
    assert written["lengths"] == [5, 5]
    assert "| 2 unfinished at the 5-step cap |" in format_results(results)
    assert "stopped at its cap of 5 steps with 2 of 2 episodes unfinished" in caplog.text


def test_an_epsilon_greedy_run_is_evaluated_with_its_own_epsilon_by_default(tiny_run, tmp_path):
    """A run that evaluated ε-greedily (the Atari protocols' trainer.eval_epsilon) is replayed with its
    ε by default, as its closing evaluation; epsilon=0 gives other, greedy episodes, and
    deterministic (a stochastic policy's mode) does not change a Q-value policy's episodes."""
    run = tiny_run("dqn_eps")
    results = evaluate(run, episodes=2, output_dir=tmp_path / "default")
    last = read_metrics_csv(run / "metrics.csv")[-1]
    assert results["epsilon"] == 0.5
    assert results["return_mean"] == pytest.approx(float(last["eval_return"]))
    assert results["length_mean"] == pytest.approx(float(last["eval_length"]))
    again = evaluate(run, episodes=2, deterministic=False, output_dir=tmp_path / "sampled")
    assert again["returns"] == results["returns"]
    greedy = evaluate(run, episodes=2, epsilon=0, output_dir=tmp_path / "greedy")
    assert greedy["epsilon"] == 0.0 and greedy["returns"] == evaluate(tiny_run("dqn_eps"), episodes=2, epsilon=0.0,
                                                                       output_dir=tmp_path / "greedy2")["returns"]
    assert greedy["lengths"] != results["lengths"]
    # A continuous policy ignores an epsilon (there is no uniformly random index to take).
    assert evaluate(tiny_run("a2c_pendulum"), episodes=1, epsilon=0.3, output_dir=tmp_path / "c")["epsilon"] == 0.0


@pytest.mark.parametrize("name", ["c51", "a2c_pendulum", "a2c_tanh", "a2c_gsde", "dqn_masked", "dqn_minatar"])
def test_every_algorithm_and_suite_evaluates_as_its_run_did(tiny_run, tmp_path, name):
    """Each kind of run (C51, a normalising Gaussian A2C, tanh-normal and gSDE policies, action masks,
    MinAtar frames) is evaluated as its training evaluated it: the default evaluation repeats the
    run's closing one (an evaluation env without the run's frozen statistics, or another policy or
    seeding, would give other episodes); another seed gives its own episodes, reproducibly."""
    run = tiny_run(name)
    results = evaluate(run, episodes=2, output_dir=tmp_path / "default")  # trainer.eval_episodes
    last = read_metrics_csv(run / "metrics.csv")[-1]
    assert results["return_mean"] == pytest.approx(float(last["eval_return"]), rel=1e-6)
    assert results["length_mean"] == pytest.approx(float(last["eval_length"]))
    results = evaluate(run, episodes=3, seed=5, output_dir=tmp_path / "out")
    assert (tmp_path / "out" / RESULTS_FILE).is_file()
    assert len(results["returns"]) == 3 and all(n > 0 for n in results["lengths"]) and results["seed"] == 5
    again = evaluate(run, episodes=3, seed=5, output_dir=tmp_path / "again")
    assert again["returns"] == results["returns"] and again["lengths"] == results["lengths"]


@pytest.mark.parametrize("name", ["a2c", "a2c_gsde"])
def test_stochastic_evaluation_samples_reproducibly_from_its_seed(tiny_run, tmp_path, name):
    """Sampled actions (and gSDE's exploration weights) are drawn from the evaluation's seed: the
    seed written to results.json gives the same episodes again; another seed, other ones."""
    import torch

    greedy = evaluate(tiny_run(name), episodes=4, output_dir=tmp_path / "a")
    again = evaluate(tiny_run(name), episodes=4, output_dir=tmp_path / "b")
    assert greedy["returns"] == again["returns"]
    # Each call loads the agent afresh (gSDE's weights were drawn then, from the unseeded generator).
    sampled = [evaluate(tiny_run(name), episodes=4, deterministic=False, seed=seed, output_dir=tmp_path / f"s{i}")
               for i, seed in enumerate((3, 3, 4))]
    assert sampled[0]["returns"] == sampled[1]["returns"] != sampled[2]["returns"]
    agent = rlkit.load_agent(tiny_run(name))
    before = torch.get_rng_state()
    weights = [p.detach().clone() for p in agent.actor.parameters()]
    noise = [dict(m.noise_state_dict()) for m in agent.actor.modules() if hasattr(m, "noise_state_dict")]
    evaluate(tiny_run(name), episodes=2, deterministic=False, output_dir=tmp_path / "x", agent=agent)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's global generator is left as it was
    assert all(torch.equal(a, b) for a, b in zip(weights, agent.actor.parameters()))  # and its agent too
    after = [m.noise_state_dict() for m in agent.actor.modules() if hasattr(m, "noise_state_dict")]
    assert len(after) == len(noise) and (len(noise) > 0) == (name == "a2c_gsde")
    assert all(torch.equal(a["weights"], b["weights"]) and a["steps"] == b["steps"] for a, b in zip(noise, after))
    assert sampled[0]["returns"] != evaluate(tiny_run(name), episodes=4, seed=3, output_dir=tmp_path / "g")["returns"]


@pytest.mark.skipif(not HAS_MOVIEPY, reason='moviepy is not installed (pip install -e ".[video]")')
def test_video_records_one_mp4_per_episode(tiny_run, tmp_path):
    results = evaluate(tiny_run("dqn"), episodes=2, video=True, output_dir=tmp_path / "v")
    names = sorted(p.name for p in (tmp_path / "v").glob("*.mp4"))
    assert names == ["episode-0.mp4", "episode-1.mp4"]
    assert all((tmp_path / "v" / n).stat().st_size > 0 for n in names)
    assert [p.rsplit("/", 1)[1] for p in results["videos"]] == names


def test_video_without_moviepy_names_the_extra_and_writes_nothing(tiny_run, monkeypatch):
    run = tiny_run("dqn")
    before = files(run)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "moviepy" else real(name, *a))
    with pytest.raises(RlkitError, match=r'needs moviepy \(not installed\): pip install -e "\.\[video\]"'):
        evaluate(run, episodes=1, video=True)
    assert files(run) == before


@pytest.mark.skipif(not HAS_MOVIEPY, reason='moviepy is not installed (pip install -e ".[video]")')
def test_a_minatar_run_records_its_episodes(tiny_run, tmp_path):
    """MinAtar's grid is rendered in colour (rlkit.envs.minatar.rgb_frame), so its agents can be watched."""
    results = evaluate(tiny_run("dqn_minatar"), episodes=1, video=True, output_dir=tmp_path / "v")
    assert [Path(v).name for v in results["videos"]] == ["episode-0.mp4"]
    assert (tmp_path / "v" / "episode-0.mp4").stat().st_size > 0


@pytest.mark.skipif(not HAS_MOVIEPY, reason='moviepy is not installed (pip install -e ".[video]")')
def test_video_of_an_env_that_cannot_render_is_refused(tiny_run):
    run = tiny_run("dqn_masked")  # (tests/corridor_env.py: no render mode)
    before = files(run)
    with pytest.raises(EnvError, match="cannot render frames"):
        evaluate(run, episodes=1, video=True)
    assert files(run) == before


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"episodes": 0}, ConfigError, "episodes=0 is invalid: expected a positive integer"),
    ({"episodes": -3}, ConfigError, "episodes=-3 is invalid"),
    ({"episodes": "ten"}, ConfigError, "episodes='ten' is invalid"),
    ({"seed": -1}, ConfigError, "seed=-1 is invalid"),
    ({"deterministic": "yes"}, ConfigError, "deterministic='yes' is invalid"),
    ({"epsilon": 1.5}, ConfigError, r"epsilon=1.5 is invalid: expected a number in \[0, 1\], or null for the run's "
                                    "trainer.eval_epsilon"),
    ({"epsilon": "0.1"}, ConfigError, "epsilon='0.1' is invalid"),
    ({"epsilon": True}, ConfigError, "epsilon=True is invalid"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tiny_run, kwargs, error, message):
    run = tiny_run("dqn")
    before = files(run)
    with pytest.raises(error, match=message):
        evaluate(run, **{"episodes": 1, **kwargs})
    assert files(run) == before


def test_a_missing_run_is_refused(tmp_path):
    with pytest.raises(MissingCheckpointError, match="no checkpoint file or run directory"):
        evaluate(tmp_path / "nope")
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_config_is_named_in_words_of_evaluation_not_of_resuming(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run("dqn"), run)
    (run / "config.yaml").write_text("algo: [unclosed")
    with pytest.raises(RlkitError, match=r"^cannot load the run: .*config\.yaml is not a readable config"):
        evaluate(run, episodes=1)


def test_an_output_path_that_is_a_file_is_refused(tiny_run, tmp_path):
    (tmp_path / "results.json").write_text("keep")
    with pytest.raises(ConfigError, match=r"output directory .*results\.json is a file; give a new or empty directory"):
        evaluate(tiny_run("dqn"), episodes=1, output_dir=tmp_path / "results.json")
    with pytest.raises(ConfigError, match=r"output directory /proc/rlkit-no/eval cannot be created: "):
        evaluate(tiny_run("dqn"), episodes=1, output_dir="/proc/rlkit-no/eval")


@pytest.mark.parametrize("video", [False, pytest.param(True, marks=pytest.mark.skipif(
    not HAS_MOVIEPY, reason='moviepy is not installed (pip install -e ".[video]")'))])
@pytest.mark.parametrize("where", ["new", "given", "default"])
def test_a_failure_during_the_episodes_leaves_nothing_written(tiny_run, tmp_path, monkeypatch, video, where):
    """No results.json and no videos of unfinished episodes: a directory evaluate created is removed,
    with the parent folders it created for it (the run's ``eval/`` by default); an empty one the
    caller gave is left empty."""
    from rlkit.envs import GymEnv

    advance = GymEnv.advance
    calls = []

    def failing(self, action):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return advance(self, action)

    run = tiny_run("dqn")
    out = tmp_path / "deeper" / "out"
    if where == "given":
        out.mkdir(parents=True)
    before = sorted(p.name for p in Path(run).iterdir())
    monkeypatch.setattr(GymEnv, "advance", failing)
    with pytest.raises(KeyboardInterrupt):
        evaluate(run, episodes=2, video=video, output_dir=None if where == "default" else out)
    if where == "given":
        assert files(out) == []
    else:
        assert not (tmp_path / "deeper").exists()
        assert sorted(p.name for p in Path(run).iterdir()) == before  # (no eval/ left in the run)


def test_a_non_empty_output_directory_is_refused(tiny_run, tmp_path):
    (tmp_path / "x").write_text("keep")
    with pytest.raises(ConfigError, match="is not empty"):
        evaluate(tiny_run("dqn"), episodes=1, output_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


def test_an_output_directory_among_a_runs_own_files_is_refused(tiny_run, tmp_path):
    """out=<run>/checkpoints/ev or <run>/.hydra/x was taken: results.json written among the run's own
    files (export.py refused the same); another run's too. The run's eval/ folder is its own."""
    import shutil

    run, other = tmp_path / "run", tmp_path / "other"
    for copy in (run, other):
        shutil.copytree(tiny_run("dqn"), copy, ignore=shutil.ignore_patterns("eval", "export"))
    before = files(tmp_path)
    for owner, out in [(run, run / "checkpoints" / "ev"), (run, run / ".hydra" / "x"), (run, run / "ev"),
                       (other, other / "checkpoints" / "ev"), (other, other / ".hydra")]:
        with pytest.raises(ConfigError, match=rf"^output directory '{out}' is inside the run directory '{owner}', "
                                              rf"among its own files; write the evaluation into '{owner / 'eval'}' "
                                              r"or outside the run$"):
            evaluate(run, episodes=1, output_dir=out)
    with pytest.raises(ConfigError, match=rf"^output directory '{run}' is the run directory '{run}', among its own"):
        evaluate(run, episodes=1, output_dir=run)
    assert files(tmp_path) == before
    results = evaluate(run, episodes=1, output_dir=run / "eval" / "mine")
    assert results["output_dir"] == str(run / "eval" / "mine") and (run / "eval" / "mine" / RESULTS_FILE).is_file()
