"""The README's "Library use" snippet runs as written (in this process, in a temporary directory)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def library_snippet() -> str:
    """The first python block of the README's "Library use" section."""
    section = README.read_text().split("\n## Library use\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_library_snippet_trains_evaluates_acts_and_exports(tmp_path, monkeypatch, capsys):
    code = library_snippet()
    assert "rlkit.train(" in code and "rlkit.evaluate(" in code and "agent.act(" in code
    monkeypatch.chdir(tmp_path)  # the run goes to ./outputs/
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)
    torch.set_num_threads(1)
    result, results, agent = scope["result"], scope["results"], scope["agent"]
    assert result.run_dir.is_relative_to("outputs") and (tmp_path / result.run_dir / "config.yaml").is_file()
    assert len(results["returns"]) == 5 and results["episodes"] == 5
    assert scope["action"] in (0, 1) and isinstance(scope["action"], np.ndarray)
    obs = torch.randn(6, 4)
    assert torch.equal(agent.act(obs), result.agent.act(obs))
    assert torch.equal(torch.jit.load(str(scope["path"]))(obs), agent.act(obs))
    printed = capsys.readouterr().out
    assert str(result.run_dir) in printed
