"""scripts/device_check.py: the GPU session's one call works where there is no GPU, and tells a
failed resume from a device whose kernels are not deterministic."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import device_check


def test_a_case_trains_stops_resumes_and_loads_on_the_cpu(tmp_path):
    """The whole script on one case, ``--device cpu``: trained, stopped by SIGINT at its first
    evaluation, resumed bit for bit, loaded on the CPU, evaluated and exported."""
    code = device_check.main(["--device", "cpu", "--only", "dqn-cartpole", "--skip-tests", "--skip-frames",
                              "--out", str(tmp_path)])
    summary = json.loads((tmp_path / "device_check.json").read_text())
    assert code == 0, summary
    [case] = summary["cases"]
    assert case["status"] == "ok" and case["detail"] == "stopped at 700, resumed: = straight, bit for bit"
    assert [c["case"] for c in summary["checks"]] == ["load-cpu:dqn-cartpole", "evaluate-cpu", "export-torchscript"]
    assert all(c["status"] == "ok" for c in summary["checks"])
    # The interrupted copy was stopped where the case says, then resumed to the end.
    log = (tmp_path / "dqn-cartpole-split" / "train.log").read_text()
    assert "interrupted by SIGINT at frame 700" in log and "end: budget done at 1500 frames" in log
    # The same command again (a GPU session reruns its check): the earlier check's runs are replaced
    # (every case failed with "already holds a run"), and a --summary that cannot be written is
    # refused before any check runs.
    assert device_check.main(["--device", "cpu", "--only", "dqn-cartpole", "--skip-tests", "--skip-frames",
                              "--out", str(tmp_path)]) == 0
    (tmp_path / "file").write_text("")
    assert device_check.main(["--device", "cpu", "--only", "dqn-cartpole", "--skip-tests", "--skip-frames",
                              "--out", str(tmp_path / "other"), "--summary", str(tmp_path / "file" / "s.json")]) == 2
    assert not (tmp_path / "other" / "dqn-cartpole-straight").exists()


def test_a_ctrl_c_of_the_user_stops_the_check_rather_than_passing_for_its_planned_stop(tmp_path, monkeypatch):
    """The planned stop is a SIGINT the script sends itself at an evaluation: a user's Ctrl-C during
    the split run was taken for it, and the case reported "ok"; in another run it was reported as
    that case's failure and the check went on."""
    import signal

    import rlkit.run
    from rlkit.trainers import TrainingInterrupted

    def interrupted(*args, **kwargs):
        raise TrainingInterrupted(signal.SIGINT, tmp_path / "last.pt")

    monkeypatch.setattr(rlkit.run, "run", interrupted)
    for stop_at in (None, 700):
        with pytest.raises(KeyboardInterrupt):
            device_check._train(tmp_path / "run", ["total_frames=1500"], stop_at=stop_at)


@pytest.mark.parametrize(("outcome", "differing"), [
    ("ok", ()),  # resumed = straight
    ("nondeterministic", ("-split",)),  # only the default kernels' runs differ
    ("FAIL", ("-split",) * 2),  # the resume differs with deterministic algorithms too
    ("nondeterministic-even-so", ("-split", "-again")),  # deterministic straight runs differ too
])
def test_resume_differences_are_told_from_nondeterministic_kernels(tmp_path, monkeypatch, outcome, differing):
    """A resumed run that differs is run again, with its straight run, under deterministic algorithms:
    a failure only when it differs there too while two deterministic straight runs agree."""
    trained: list[tuple[str, int | None, bool]] = []

    def fake_train(run_dir: Path, overrides: list[str], stop_at: int | None = None,
                   syncs=None) -> tuple[float, int | None]:
        trained.append((run_dir.name, stop_at, torch.are_deterministic_algorithms_enabled()))
        if syncs is not None:  # (what a CUDA machine counts over the interrupted run's first part)
            syncs.update({"rlkit/collectors/collector.py:10": 60, "rlkit/trainers/trainer.py:20": 20})
        return 1.0, stop_at

    rows = {"run/metrics": [{"loss_value": "0.5", "frames": "100"}], "run/episodes": [{"return": "9.0"}]}

    def fake_outputs(run_dir: Path) -> dict:
        deterministic = "deterministic" in run_dir.name
        differs = {"ok": False, "nondeterministic": not deterministic and run_dir.name.endswith("-split"),
                   "FAIL": run_dir.name.endswith("-split"),
                   "nondeterministic-even-so": run_dir.name.endswith(("-split", "-again"))}[outcome]
        return {**rows, "run/episodes": [{"return": "10.0"}]} if differs else rows

    monkeypatch.setattr(device_check, "_train", fake_train)
    monkeypatch.setattr(device_check, "_outputs", fake_outputs)
    case = device_check.Case("toy", ["algo=dqn"], 100, 40)
    result = device_check.check_case(case, "cpu", tmp_path)
    assert result["status"] == {"nondeterministic-even-so": "nondeterministic"}.get(outcome, outcome)
    default = [("toy-straight", None, False), ("toy-split", 40, False), ("toy-split", None, False)]
    strict = [("toy-deterministic-straight", None, True), ("toy-deterministic-split", 40, True),
              ("toy-deterministic-split", None, True)]
    again = [("toy-deterministic-again", None, True)]
    assert trained == default + {"ok": [], "nondeterministic": strict}.get(outcome, strict + again)
    assert not torch.are_deterministic_algorithms_enabled()  # (restored)
    assert result["syncs_per_frame"] == 2.0  # 80 over the 40 frames before the stop
    assert result["sync_sites"] == {"rlkit/collectors/collector.py:10": 60, "rlkit/trainers/trainer.py:20": 20}
    if outcome == "FAIL":
        assert result["detail"] == ("resumed run differs from the straight run, also with deterministic algorithms: "
                                    "run/episodes row 1, return: 9.0 against 10.0")


def test_syncs_are_counted_by_the_innermost_line_of_rlkit_and_other_warnings_still_show():
    from collections import Counter

    shown: list[str] = []
    syncs: Counter[str] = Counter()
    count = device_check._sync_counter(syncs, lambda message, *rest: shown.append(str(message)))
    count("called a synchronizing CUDA operation", UserWarning, "/x/torch/_tensor.py", 7)
    count("another warning", UserWarning, "/x/y.py", 1)
    assert shown == ["another warning"]
    [(site, n)] = syncs.items()  # (called from this test file: no rlkit frame on the stack)
    assert site == "_tensor.py:7" and n == 1
    # Called from a line of rlkit (code compiled as if it were rlkit/trainers/fake.py, line 3).
    fake = str(device_check.ROOT / "rlkit" / "trainers" / "fake.py")
    exec(compile("\n\ncount('called a synchronizing CUDA operation', UserWarning, '/x/torch/_tensor.py', 7)",
                 fake, "exec"), {"count": count})
    assert syncs["rlkit/trainers/fake.py:3 (_tensor.py:7)"] == 1


def test_a_run_without_a_finite_loss_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(device_check, "_train", lambda run_dir, overrides, stop_at=None, syncs=None: (1.0, stop_at))
    monkeypatch.setattr(device_check, "_outputs", lambda run_dir: {"run/metrics": [{"loss_value": "nan"}]})
    result = device_check.check_case(device_check.Case("toy", [], 100, 40), "cpu", tmp_path)
    assert result["status"] == "FAIL" and result["detail"] == "no finite loss_* in metrics.csv"


def test_the_cuda_tests_are_found_in_their_files():
    files = device_check.cuda_test_files()
    assert "tests/trainers/test_checkpoint.py" in files and "tests/data/test_replay_buffers.py" in files
    assert all("from cuda_marks import" in (device_check.ROOT / f).read_text() for f in files)
