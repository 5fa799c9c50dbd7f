"""rlkit.export / export.py's logic: the greedy policy as a standalone file (torchscript, pt2, onnx),
loaded in a fresh interpreter that never imports rlkit, acting as load_agent(...).act does."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import rlkit
from rlkit.errors import ConfigError, MissingCheckpointError, RlkitError
from rlkit.exporter import export_policy

RUNS = ["dqn", "c51", "a2c", "a2c_pendulum", "a2c_tanh", "a2c_gsde", "dqn_minatar"]
HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxscript", "onnxruntime"))
FORMATS = ["torchscript", "pt2"] + (["onnx"] if HAS_ONNX else [])

# Runs in a fresh interpreter: loads every exported file without rlkit and writes its actions.
LOADER = r"""
import json, sys
import numpy as np
import torch
jobs = json.load(open(sys.argv[1]))
out = {}
for key, (fmt, path, obs_path) in jobs.items():
    obs = np.load(obs_path)
    if fmt == "torchscript":
        action = torch.jit.load(path)(torch.from_numpy(obs)).numpy()
    elif fmt == "pt2":
        action = torch.export.load(path).module()(torch.from_numpy(obs)).numpy()
    else:
        import onnxruntime
        action = onnxruntime.InferenceSession(path).run(None, {"observation": obs})[0]
    np.save(obs_path.replace(".npy", f".{fmt}.out.npy"), action)
    out[key] = obs_path.replace(".npy", f".{fmt}.out.npy")
assert "rlkit" not in sys.modules and not any(m.startswith("rlkit.") for m in sys.modules), "rlkit was imported"
json.dump(out, open(sys.argv[2], "w"))
"""


def observations(agent, n: int, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    shape = (n, *agent.observation_spec.shape)
    if agent.observation_spec.dtype == torch.uint8:
        return torch.randint(0, 2, shape, generator=g, dtype=torch.uint8).numpy()
    return (torch.randn(shape, generator=g) * 2).numpy()


def test_exported_policies_load_without_rlkit_and_act_as_the_agent(tiny_run, tmp_path):
    jobs, expected = {}, {}
    for name in RUNS:
        run = tiny_run(name)
        agent = rlkit.load_agent(run)
        obs = observations(agent, 7, seed=len(name))  # a batch size other than the traced one
        obs_path = tmp_path / f"{name}.npy"
        np.save(obs_path, obs)
        expected[name] = agent.act(obs)
        for fmt in FORMATS:
            path = export_policy(run, fmt, agent=agent)
            assert path.parent == run / "export" and path.is_file()
            jobs[f"{name}:{fmt}"] = (fmt, str(path), str(obs_path))
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no PYTHONPATH: rlkit is not importable by path
    done = subprocess.run([sys.executable, "-c", LOADER, str(tmp_path / "jobs.json"), str(tmp_path / "out.json")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = json.loads((tmp_path / "out.json").read_text())
    assert sorted(outputs) == sorted(jobs)
    for key, out_path in outputs.items():
        name = key.split(":")[0]
        got, want = np.load(out_path), expected[name]
        assert got.shape == want.shape, key
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(got, want, err_msg=key)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_masked_policy_exports_in_every_format_and_acts_as_the_agent(tiny_run, fmt):
    # The greedy head's "some action allowed" check branched on the data: pt2 and ONNX failed to export.
    run = tiny_run("dqn_masked")
    agent = rlkit.load_agent(run)
    g = torch.Generator().manual_seed(0)
    obs = torch.rand(9, *agent.observation_spec.shape, generator=g)
    mask = torch.rand(9, 2, generator=g) < 0.6
    mask[:, 1] |= ~mask[:, 0]  # at least one allowed action per row
    want = agent.act(obs.numpy(), action_mask=mask.numpy())
    path = export_policy(run, fmt, agent=agent)
    if fmt == "torchscript":
        got = torch.jit.load(str(path))(obs, mask).numpy()
    elif fmt == "pt2":
        got = torch.export.load(str(path)).module()(obs, mask).numpy()
    else:
        import onnxruntime
        got = onnxruntime.InferenceSession(str(path)).run(None, {"observation": obs.numpy(), "action_mask": mask.numpy()})[0]
    np.testing.assert_array_equal(got, want)


def test_the_output_path_and_an_existing_export(tiny_run, tmp_path):
    out = tmp_path / "sub" / "my_policy.pt"
    assert export_policy(tiny_run("dqn"), "torchscript", out) == out
    export_policy(tiny_run("dqn"), "torchscript", out)  # replaced atomically
    assert sorted(p.name for p in out.parent.iterdir()) == ["my_policy.pt"]  # no temporary file left
    obs = torch.randn(3, 4)
    assert torch.equal(torch.jit.load(str(out))(obs), rlkit.load_agent(tiny_run("dqn")).act(obs))


def test_a_checkpoint_other_than_the_latest_exports_to_its_own_default_file(tiny_run, tmp_path):
    """Without ``out=``, the latest checkpoint exports to ``export/policy.pt`` and any other one to
    ``export/policy_<checkpoint>.pt``: a snapshot's export does not replace the trained policy's."""
    from rlkit.exporter import checkpoint_label, default_export_path

    run = tmp_path / "run"
    shutil.copytree(tiny_run("dqn"), run)
    ckpts = run / "checkpoints"
    (ckpts / "abandoned_1").mkdir()
    shutil.copy(ckpts / "last.pt", ckpts / "step_100.pt")
    shutil.copy(ckpts / "last.pt", ckpts / "abandoned_1" / "step_200.pt")
    latest = export_policy(run, "torchscript")
    assert latest == run / "export" / "policy.pt"
    assert export_policy(ckpts / "last.pt", "torchscript") == latest  # the latest named as a file
    assert latest.stat().st_mode & 0o777 == (run / "config.yaml").stat().st_mode & 0o777  # shareable, as run files
    assert export_policy(run, "pt2", checkpoint="step_100.pt") == run / "export" / "policy_step_100.pt2"
    assert export_policy(ckpts / "step_100.pt", "torchscript") == run / "export" / "policy_step_100.pt"
    assert (export_policy(run, "torchscript", checkpoint="abandoned_1/step_200.pt")
            == run / "export" / "policy_abandoned_1_step_200.pt")
    assert checkpoint_label(ckpts / "abandoned_1" / "step_200.pt", run) == ("abandoned_1/step_200.pt", False)
    # Without last.pt the newest snapshot is the latest.
    (ckpts / "last.pt").unlink()
    assert checkpoint_label(ckpts / "step_100.pt", run) == ("step_100.pt", True)
    assert default_export_path(rlkit.load_agent(run), "onnx") == run / "export" / "policy.onnx"


def test_export_names_follow_the_run_not_symbolic_links(tiny_run, tmp_path):
    """A checkpoints/ folder linked to scratch storage, a checkpoint file linked into a store
    (git-annex), a run kept in a folder that happens to be named checkpoints: the default export
    name comes from the checkpoint's place in the run, as the paths are given."""
    scratch = tmp_path / "scratch"
    shutil.copytree(tiny_run("dqn") / "checkpoints", scratch)
    (scratch / "abandoned_1").mkdir()
    shutil.copy(scratch / "last.pt", scratch / "abandoned_1" / "step_100.pt")
    linked = tmp_path / "linked"
    shutil.copytree(tiny_run("dqn"), linked, ignore=shutil.ignore_patterns("checkpoints", "export"))
    (linked / "checkpoints").symlink_to(scratch)
    assert export_policy(linked, "torchscript") == linked / "export" / "policy.pt"
    assert (export_policy(linked, "torchscript", checkpoint="abandoned_1/step_100.pt")
            == linked / "export" / "policy_abandoned_1_step_100.pt")
    annexed = tmp_path / "annexed"
    shutil.copytree(tiny_run("dqn"), annexed, ignore=shutil.ignore_patterns("checkpoints", "export"))
    (annexed / "checkpoints").mkdir()
    shutil.copy(scratch / "last.pt", tmp_path / "blob")
    (annexed / "checkpoints" / "last.pt").symlink_to(tmp_path / "blob")
    assert export_policy(annexed, "torchscript") == annexed / "export" / "policy.pt"
    nested = tmp_path / "checkpoints" / "run"  # a run in a folder named checkpoints, its checkpoint beside its config
    shutil.copytree(tiny_run("dqn"), nested, ignore=shutil.ignore_patterns("checkpoints", "export"))
    shutil.copy(scratch / "last.pt", nested / "last.pt")
    assert export_policy(nested, "torchscript") == nested / "export" / "policy.pt"


def test_refusals_write_nothing(tiny_run, tmp_path, monkeypatch):
    run = tiny_run("dqn")
    before = sorted(str(p) for p in run.rglob("*"))
    with pytest.raises(ConfigError, match=r"format='tflite' is not an export format; valid choices: \['onnx', 'pt2', "
                                          r"'torchscript'\]"):
        export_policy(run, "tflite")
    with pytest.raises(MissingCheckpointError):
        export_policy(tmp_path / "nope", "torchscript")
    with pytest.raises(ConfigError, match="is a directory"):
        export_policy(run, "torchscript", tmp_path)
    # A file named for another format (and, for pt2, any name but .pt2): refused before the run is read.
    for fmt, name, hint in [("pt2", "x.onnx", r"the suffix of format=onnx; format=pt2 writes \.pt2 files: use "
                                               r"out='.*x\.pt2' or format=onnx"),
                            ("pt2", "x.bin", r"not \.pt2; format=pt2 writes \.pt2 files: use out='.*x\.pt2'$"),
                            ("torchscript", "x.pt2", r"the suffix of format=pt2; format=torchscript writes \.pt files"),
                            ("onnx", "x.pt", r"the suffix of format=torchscript; format=onnx writes \.onnx files")]:
        with pytest.raises(ConfigError, match=rf"out='.*{name.replace('.', '[.]')}' ends in '\.\w+', {hint}"):
            export_policy(tmp_path / "nope", fmt, tmp_path / "out" / name)
    assert not (tmp_path / "out").exists()
    # Inside the run, anywhere but its export/ folder: its checkpoint and config stay as they are.
    for inside in (run / "checkpoints" / "last.pt", run / "config.yaml", run / "policy.pt"):
        with pytest.raises(ConfigError, match=r"out='.*' is inside the run directory '.*', among its own files; "
                                              r"write the export into '.*export' or outside the run"):
            export_policy(run, "torchscript", inside)
    # A folder that cannot be made: one line naming out=.
    with pytest.raises(RlkitError, match=r"out='/proc/rlkit-no/policy\.pt': cannot write there: "):
        export_policy(run, "torchscript", "/proc/rlkit-no/policy.pt")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(RlkitError, match=r'format=onnx needs onnx \(not installed\): pip install -e "\.\[onnx\]"'):
        export_policy(run, "onnx")
    assert sorted(str(p) for p in run.rglob("*")) == before
    # An exporter's own failure (torch.export refusing a module): one line naming the format and the others.
    import rlkit.exporter

    def refusing(module, example, path):
        path.write_bytes(b"half")
        raise RuntimeError("Constraints violated (batch)!\nmore detail")

    monkeypatch.setitem(rlkit.exporter._WRITERS, "pt2", refusing)
    with pytest.raises(RlkitError, match=r"format=pt2 could not export the policy of .*: RuntimeError: Constraints "
                                         r"violated \(batch\)!; the other formats: \['onnx', 'torchscript'\]"):
        export_policy(run, "pt2", tmp_path / "out" / "policy.pt2")
    assert not (tmp_path / "out").exists()  # neither the half-written file nor the folder made for it
    with pytest.raises(RlkitError, match="format=pt2 could not export"):
        export_policy(run, "pt2")  # the default place: the run's export/ folder is not left behind
    assert sorted(str(p) for p in run.rglob("*")) == before
    # Moving the finished file into place fails (a read-only folder, another file system): one line too.
    import errno

    def failing_replace(src, dst):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(rlkit.exporter.os, "replace", failing_replace)
    (tmp_path / "kept").mkdir()
    with pytest.raises(RlkitError, match=r"out='.*policy\.pt': the exported policy could not be put there: Permission denied"):
        export_policy(run, "torchscript", tmp_path / "kept" / "policy.pt")
    assert list((tmp_path / "kept").iterdir()) == []  # (a folder that was there stays)


def test_a_seed_folder_of_a_multi_seed_run_exports_into_its_own_export_folder(tmp_path):
    from rlkit.rundir import check_outside_run_files

    run, seed = tmp_path / "run", tmp_path / "run" / "seed_0"
    (run / "checkpoints").mkdir(parents=True)
    seed.mkdir()
    for folder in (run, seed):
        (folder / "config.yaml").write_text("seed: 0\n")
    (seed / "metrics.csv").write_text("step\n")
    check_outside_run_files(seed / "export" / "policy.pt", "export", "the export")  # export.py run=<run>/seed_0's default
    for inside in (seed / "config.yaml", seed / "policy.pt", run / "checkpoints" / "last.pt"):
        with pytest.raises(ConfigError, match="is inside the run directory"):
            check_outside_run_files(inside, "export", "the export")


def without_the_mark(path) -> None:
    """Makes ``path``, an export, one written before exports carried their mark (the extra file of a
    TorchScript / pt2 archive, the metadata property of an ONNX model)."""
    import zipfile

    if zipfile.is_zipfile(path):
        kept = path.with_name(path.name + ".kept")
        with zipfile.ZipFile(path) as old, zipfile.ZipFile(kept, "w") as new:
            for entry in old.infolist():
                if not entry.filename.endswith("/extra/rlkit_export.json"):
                    new.writestr(entry, old.read(entry))
        kept.replace(path)
    else:
        import onnx

        model = onnx.load(str(path))
        del model.metadata_props[:]
        onnx.save(model, str(path))


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_earlier_export_is_replaced_also_one_written_before_exports_were_marked(tiny_run, tmp_path, fmt):
    """Re-exporting replaces the earlier export, at out= and at the default path, and an export from
    before the mark (recognised by the module it traces) too."""
    import zipfile

    from rlkit.exporter import EXPORT_FORMATS, is_export

    run = tmp_path / "run"
    shutil.copytree(tiny_run("dqn"), run, ignore=shutil.ignore_patterns("export"))
    agent = rlkit.load_agent(run)
    for out in (tmp_path / f"my_policy{EXPORT_FORMATS[fmt]}", None):
        path = export_policy(run, fmt, out, agent=agent)
        assert is_export(path)
        assert export_policy(run, fmt, out, agent=agent) == path
        without_the_mark(path)
        if zipfile.is_zipfile(path):
            assert not any(n.endswith("/extra/rlkit_export.json") for n in zipfile.ZipFile(path).namelist())
        assert is_export(path)
        assert export_policy(run, fmt, out, agent=agent) == path
        assert not [p.name for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left
    obs = torch.randn(3, 4)
    if fmt == "torchscript":
        assert torch.equal(torch.jit.load(str(path))(obs), agent.act(obs))


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_existing_file_that_is_not_an_export_is_refused_and_kept(tiny_run, tmp_path, fmt):
    """out= naming a file of something else (notes, a checkpoint, an archive) replaced it with the
    export and exit 0; the default path's file too."""
    from rlkit.exporter import EXPORT_FORMATS, is_export

    run = tmp_path / "run"
    shutil.copytree(tiny_run("dqn"), run, ignore=shutil.ignore_patterns("export"))
    suffix = EXPORT_FORMATS[fmt]
    others = {"notes.txt": b"my notes\n", f"notes{suffix}": b"my notes\n", f"ckpt{suffix}": (run / "checkpoints" / "last.pt").read_bytes(),
              f"onnxish{suffix}": b"\x08\x07not an onnx model", f"empty{suffix}": b""}
    if fmt == "pt2":
        others = {name: data for name, data in others.items() if name.endswith(".pt2")}
    (tmp_path / "keep").mkdir()
    for name, data in others.items():
        (tmp_path / "keep" / name).write_bytes(data)
    (run / "export").mkdir()
    (run / "export" / f"policy{suffix}").write_bytes(b"not the policy")
    before = files(tmp_path)
    for out in [*(tmp_path / "keep" / name for name in others), None]:
        shown = out if out is not None else run / "export" / f"policy{suffix}"
        named = "out=" if out is not None else "the default export file "  # (no out= was given)
        assert not is_export(shown)
        with pytest.raises(ConfigError, match=rf"^{named}'{re.escape(str(shown))}' exists and is not a policy file export\.py wrote, which "
                                              r"is all an export replaces; it is left as it is: give another out= or "
                                              r"remove the file first$"):
            export_policy(run, fmt, out)
    assert files(tmp_path) == before
    assert all((tmp_path / "keep" / name).read_bytes() == data for name, data in others.items())


def files(path) -> list[tuple[str, bytes]]:
    return sorted((str(p), p.read_bytes() if p.is_file() else b"") for p in path.rglob("*"))


def test_an_export_into_another_runs_export_folder_is_refused(tiny_run, tmp_path):
    """out= naming another run's export replaced it with this run's policy (both are exports, and an
    export replaces an export); the run's own export folder and a folder outside any run still take it."""
    from rlkit.errors import ConfigError
    from rlkit.exporter import export_policy

    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    shutil.copytree(tiny_run("dqn"), mine, ignore=shutil.ignore_patterns("export", "eval"))
    shutil.copytree(tiny_run("c51"), theirs, ignore=shutil.ignore_patterns("export", "eval"))
    their_export = export_policy(theirs, "torchscript")
    kept = their_export.read_bytes()
    with pytest.raises(ConfigError, match=rf"^out='{re.escape(str(their_export))}' is in the export folder of another "
                                          rf"run, '{re.escape(str(theirs.resolve()))}'; write the export into "
                                          rf"'{re.escape(str(mine / 'export'))}' or outside any run$"):
        export_policy(mine, "torchscript", their_export)
    assert their_export.read_bytes() == kept
    assert export_policy(mine, "torchscript", mine / "export" / "other.pt").is_file()
    assert export_policy(mine, "torchscript", tmp_path / "elsewhere" / "policy.pt").is_file()
