"""scripts/published.py's protocols, and how reproduce_report pairs each published figure with rlkit's
number measured the same way (the stochastic-policy evaluation of RL Zoo's Atari rows included)."""
from __future__ import annotations

import json
import typing

import pytest
import yaml

import reproduce_report as report
from published import PUBLISHED, Protocol


def _run(tmp_path, name="a", seed=0, frames=200, evaluations=()):
    """A finished run dir: 100 training episodes of return 2, a greedy evaluation of 0 at ``frames``,
    and ``evaluations``: (folder, results) pairs written as evaluate.py writes them under eval/."""
    path = tmp_path / name
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "total_frames": frames}))
    (path / "metrics.csv").write_text(f"step,episode_return,episodes,eval_return,eval_return_std\n"
                                      f"{frames // 2},2.0,100.0,,\n{frames},,,0.0,0.0\n")
    for folder, results in evaluations:
        (path / "eval" / folder).mkdir(parents=True)
        (path / "eval" / folder / "results.json").write_text(json.dumps(results))
    return report.load_run(path)


def _sampled(frames=200, mean=250.0, std=50.0, episodes=10, **changes):
    return {"deterministic": False, "epsilon": 0.0, "frames": frames, "return_mean": mean, "return_std": std,
            "episodes": episodes, **changes}


def test_every_figure_names_a_known_protocol_and_the_zoo_atari_row_is_a_stochastic_one():
    assert {pub.protocol for pub in PUBLISHED.values()} <= set(typing.get_args(Protocol))
    # benchmark.md: "It uses the deterministic policy except for Atari games".
    assert PUBLISHED["a2c_atari"].protocol == "stochastic_eval"
    assert all(pub.protocol == "greedy_eval" for name, pub in PUBLISHED.items()
               if pub.source.startswith("RL Zoo") and name != "a2c_atari")
    assert "life" in PUBLISHED["a2c_atari"].note and "FIRE" in PUBLISHED["a2c_atari"].note


def test_the_zoo_atari_figure_is_not_put_beside_the_deterministic_evaluation(tmp_path):
    run = _run(tmp_path)
    assert run.stochastic is None
    summary = report.summarize("a2c_atari", [run], PUBLISHED["a2c_atari"], "ALE/Breakout-v5")
    train_row, greedy_row, sampled_row = report.summary_rows(summary)
    assert train_row.endswith("| — |") and greedy_row.endswith("| — |")
    assert "| stochastic-policy evaluation (last checkpoint) | not run: `python evaluate.py run=<run> " \
           "deterministic=false` for each seed's run | n/a | 279.79 ± 122.18 (" in sampled_row
    report.write_markdown(summary, tmp_path / "results.md", command="cmd", figure=None)
    text = (tmp_path / "results.md").read_text()
    assert "| 0 | 200 | 2.00 | 100 | 0.00 ± 0.00 | not run | `" in text
    assert "- Not the published setting: the zoo sampled its policy in its training wrapper" in text


def test_a_stochastic_evaluation_of_the_last_checkpoint_is_paired_with_the_zoo_figure(tmp_path):
    evaluations = [("2026-01-01_10-00-00", _sampled(mean=100.0)),  # an older one of the same checkpoint
                   ("2026-01-02_10-00-00", _sampled(mean=250.0)),
                   ("2026-01-03_10-00-00", _sampled(mean=900.0, frames=100)),  # an earlier checkpoint
                   ("2026-01-04_10-00-00", _sampled(mean=800.0, deterministic=True)),  # the policy's mode
                   ("2026-01-05_10-00-00", _sampled(mean=700.0, epsilon=0.05))]  # with ε
    a = _run(tmp_path, "a", 0, evaluations=evaluations)
    b = _run(tmp_path, "b", 1, evaluations=[("2026-01-01_10-00-00", _sampled(mean=350.0, std=10.0, episodes=5))])
    c = _run(tmp_path, "c", 2)
    (c.path / "eval" / "broken").mkdir(parents=True)
    (c.path / "eval" / "broken" / "results.json").write_text("{not json")
    assert report.load_run(c.path).stochastic is None
    summary = report.summarize("a2c_atari", [a, b, c], PUBLISHED["a2c_atari"], "ALE/Breakout-v5")
    assert [s["stochastic_eval_return"] for s in summary["per_seed"]][:2] == [250.0, 350.0]
    assert summary["stochastic_eval"]["mean"] == 300.0 and summary["stochastic_eval"]["seeds"] == 2
    sampled_row = report.summary_rows(summary)[2]
    assert "| 300.00 ± 50.00 (2 of 3 seeds) |" in sampled_row and "| 279.79 ± 122.18 (" in sampled_row
    assert sampled_row.endswith("1 run, std over episodes, at 10,000,000 frames; these runs train 200) |")
    report.write_markdown(summary, tmp_path / "results.md", command="cmd", figure=None)
    text = (tmp_path / "results.md").read_text()
    assert "| 0.00 ± 0.00 | 250.00 ± 50.00 (10 episodes) |" in text and "| 350.00 ± 10.00 (5 episodes) |" in text
    assert "- Stochastic-policy evaluation: `python evaluate.py run=<run> deterministic=false`" in text
    # summary.json keeps it (the seed without one as null) and a collected table reads the same rows.
    report.write_json(summary, tmp_path / "summary.json")
    assert json.loads((tmp_path / "summary.json").read_text())["per_seed"][2]["stochastic_eval_return"] is None
    found = report.collect(tmp_path).summaries
    assert len(found) == 1 and report.summary_rows(found[0]) == report.summary_rows(summary)


@pytest.mark.parametrize("name", ["a2c_cartpole", "dqn_cartpole"])
def test_other_reports_keep_two_rows_unless_a_seed_was_evaluated_stochastically(tmp_path, name):
    plain = report.summarize(name, [_run(tmp_path, "a")], PUBLISHED[name], PUBLISHED[name].env_id)
    assert len(report.summary_rows(plain)) == 2
    sampled = report.summarize(name, [_run(tmp_path, "b", evaluations=[("e", _sampled())])], PUBLISHED[name],
                               PUBLISHED[name].env_id)
    rows = report.summary_rows(sampled)
    assert len(rows) == 3 and rows[2].endswith("| 250.00 ± n/a (1 seed) | 250.00 [n/a: 1 seed] | — |")


def test_a_summary_written_before_the_stochastic_row_reads_as_it_did():
    old = {"experiment": "a2c_atari", "env_id": "ALE/Breakout-v5", "seeds": [0], "budget": 200,
           "last100_exact": True, "per_seed": [], "published": None,
           "train_last100": {"mean": 2.0, "std": 0.0, "iqm": 2.0, "iqm_ci_low": None, "iqm_ci_high": None, "seeds": 1},
           "greedy_eval": {"mean": 0.0, "std": 0.0, "iqm": 0.0, "iqm_ci_low": None, "iqm_ci_high": None, "seeds": 1}}
    assert len(report.summary_rows(report.with_nans(old))) == 2
