"""scripts/fault_trials.py: a handful of fault trials of every kind against train.py (subprocesses)."""
from __future__ import annotations

import pytest

import fault_trials


@pytest.mark.slow
def test_a_few_fault_trials_of_every_kind_pass(tmp_path, capsys):
    # 8 trials: 4 kill/resume (at random, during a checkpoint write, during resumes), 1 concurrency,
    # 1 corruption, 2 bad command lines (see fault_trials.allocate).
    assert fault_trials.allocate(8) == {"kill/resume": 4, "concurrency": 1, "corruption": 1, "bad command line": 2}
    status = fault_trials.main(["--trials", "8", "--seed", "0", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert printed.count("\ntrial ") == 8 and "FAIL" not in printed
