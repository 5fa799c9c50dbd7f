"""scripts/bench.py: the plain implementations compute what rlkit computes, and a tiny timing run works."""
from __future__ import annotations

import dataclasses
import math
import sys

import pytest
import torch
from hydra import compose, initialize_config_dir

import bench
from rlkit.builders import validate_config
from rlkit.objectives.value.functional import generalized_advantage_estimate


def test_plain_gae_matches_rlkit_kernel_with_terminations_and_truncations():
    g = torch.Generator().manual_seed(0)
    steps, n = 6, 3
    reward, values = torch.randn(steps, n, generator=g), torch.randn(steps + 1, n, generator=g)
    terminated = torch.zeros(steps, n)
    truncated = torch.zeros(steps, n)
    terminated[2, 0] = terminated[5, 1] = 1.0
    truncated[3, 2] = 1.0  # a truncated step bootstraps from its own next value but stops the chain
    done = ((terminated + truncated) > 0).float()
    plain = bench.gae(reward, terminated, done, values, 0.99, 0.95)

    def env_major(x: torch.Tensor) -> torch.Tensor:  # [T, N] -> [N, T, 1]
        return x.T.unsqueeze(-1)

    adv, _ = generalized_advantage_estimate(
        0.99, 0.95, env_major(values[:-1]), env_major(values[1:]), env_major(reward),
        env_major(done).bool(), terminated=env_major(terminated).bool())
    torch.testing.assert_close(plain, adv.squeeze(-1).T)
    # hand check of the last step of env 1 (terminated): r - V
    assert math.isclose(float(plain[5, 1]), float(reward[5, 1] - values[5, 1]), rel_tol=1e-6)


def _algo(name: str, **changes):
    with initialize_config_dir(config_dir=str(bench.ROOT / "conf"), version_base="1.3"):
        settings = validate_config(compose("config", overrides=[f"algo={name}"]))
    return dataclasses.replace(settings.algo, **changes)


def test_plain_implementations_train_and_evaluate():
    torch.set_num_threads(1)
    dqn = bench.plain_dqn(_algo("dqn", learning_starts=100, eps_annealing_frames=200), 300, 0, 2)
    a2c = bench.plain_a2c(_algo("a2c"), 400, 0, 2)
    for value in (dqn, a2c):
        assert 8.0 <= value <= 500.0  # a CartPole return: at least 8 steps, at most the 500-step limit


def test_bench_reports_medians_and_ratio(capsys):
    result = bench.bench("a2c", frames=80, repeats=2, warmup_frames=40)
    assert len(result["times"]["rlkit"]) == len(result["times"]["plain"]) == 2
    assert result["ratio"] == {"plain": result["median"]["rlkit"] / result["median"]["plain"]}
    assert result["ratio"]["plain"] > 0
    assert "a2c rep 2/2" in capsys.readouterr().out


def test_bench_times_the_fused_adam_baseline_when_asked(capsys):
    result = bench.bench("dqn", frames=60, repeats=1, warmup_frames=30, plain_fused=True)
    assert sorted(result["times"]) == ["plain", "plain-fused", "rlkit"]
    assert result["ratio"]["plain-fused"] == result["median"]["rlkit"] / result["median"]["plain-fused"]
    assert "plain-fused" in capsys.readouterr().out



@pytest.mark.parametrize(("script", "args", "message"), [
    ("bench", ["--repeats", "0"], "argument --repeats: '0' is not an integer >= 1"),
    ("bench", ["--frames", "-5"], "argument --frames: '-5' is not an integer >= 1"),
    ("bench_frames", ["--seconds", "0"], "argument --seconds: '0' is not a finite number > 0"),
    ("bench_frames", ["--device", "bogus"], "--device bogus: device='bogus' is not a torch device"),
    ("bench_losses", ["--iters", "0"], "argument --iters: '0' is not an integer >= 1"),
    ("bench_collector", ["--envs", "0"], "argument --envs: '0' is not an integer >= 1"),
])
def test_the_benchmarks_refuse_a_bad_number_in_one_usage_line(monkeypatch, capsys, script, args, message):
    """--repeats 0 ended in a StatisticsError traceback, --frames 0 silently took the case's default,
    --seconds 0 in a ZeroDivisionError, --device bogus in torch's RuntimeError."""
    import importlib

    module = importlib.import_module(script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *args])
    with pytest.raises(SystemExit) as stop:
        module.main()
    assert stop.value.code == 2 and message in capsys.readouterr().err
