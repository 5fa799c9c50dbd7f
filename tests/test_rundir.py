"""rlkit.rundir: one writer per run directory (also across processes and after kill -9), fresh starts
into empty directories, failed starts leave nothing, stale temp files are removed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rlkit.errors import RunDirBusyError, RunDirError
from rlkit.rundir import LOCK_NAME, RunDir, check_fresh_run_dir, lock_holder

HOLD = """
import sys, time
from rlkit.rundir import RunDir
held = RunDir.claim(sys.argv[1], fresh=False)
print("held", flush=True)
time.sleep(60)
"""


def hold_in_another_process(run_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_second_claim_is_refused_naming_the_holder_and_allowed_once_released(tmp_path):
    with RunDir.claim(tmp_path / "run", fresh=True):
        with pytest.raises(RunDirBusyError, match=rf"is in use by pid {os.getpid()} on .*{LOCK_NAME}"):
            RunDir.claim(tmp_path / "run", fresh=False)
        assert lock_holder(tmp_path / "run").startswith(f"pid {os.getpid()} on ")
    assert lock_holder(tmp_path / "run") is None
    RunDir.claim(tmp_path / "run", fresh=False).release()


def test_the_lock_is_held_across_processes_and_released_by_kill_9(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = hold_in_another_process(run_dir)
    try:
        with pytest.raises(RunDirBusyError, match=rf"in use by pid {proc.pid} on "):
            RunDir.claim(run_dir, fresh=False)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    RunDir.claim(run_dir, fresh=False).release()  # the OS released it


def test_a_run_directory_that_cannot_be_written_is_refused_in_one_line(tmp_path, monkeypatch):
    """A run on a read-only file system (or a full disk): its resume is refused naming the directory
    and the reason, with the run as it was (tested by failing the lock file's open: as root, a
    folder's permissions would not stop the write)."""
    import errno
    import os

    import rlkit.rundir

    (tmp_path / "config.yaml").write_text("seed: 0\n")
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(LOCK_NAME) and flags & os.O_CREAT:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(rlkit.rundir.os, "open", read_only)
    with pytest.raises(RunDirError, match=rf"^cannot write in {tmp_path}: opening its lock file .* failed \(Read-only "
                                          r"file system\); a run writes in its directory"):
        RunDir.claim(tmp_path, fresh=False)
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


@pytest.mark.parametrize("name", ["", "."])
def test_the_current_directory_is_never_a_new_run_dir(name):
    with pytest.raises(RunDirError, match="is the current directory"):
        check_fresh_run_dir(name)


def test_a_new_run_needs_a_new_or_empty_directory(tmp_path):
    check_fresh_run_dir(tmp_path / "new")
    check_fresh_run_dir(tmp_path)
    (tmp_path / "README.md").write_text("mine")
    with pytest.raises(RunDirError, match=r"is not empty \(README.md\); a new run needs a new or empty directory"):
        RunDir.claim(tmp_path, fresh=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]  # not even a lock file
    (tmp_path / "config.yaml").write_text("seed: 0")
    with pytest.raises(RunDirError, match=rf"already holds a run \(README.md, config.yaml\); continue it with "
                                          rf"resume={tmp_path}"):
        check_fresh_run_dir(tmp_path)


def test_an_interrupted_start_is_cleared_by_the_next_start(tmp_path):
    # What a start killed before it wrote config.yaml (its commit) leaves behind.
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"frame 0")
    (tmp_path / "metrics.csv").write_text("step\n")
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".config.yaml.x7q2m9ab.tmp").write_text("half a config")  # killed while writing its commit
    (tmp_path / LOCK_NAME).write_text("pid 1 on elsewhere\n")
    with RunDir.claim(tmp_path, fresh=True) as held:
        assert sorted(p.name for p in held.path.iterdir()) == [LOCK_NAME]


def test_files_with_a_starts_names_but_no_lock_are_someone_elses_and_kept(tmp_path):
    """Without rlkit's lock file no start of rlkit's wrote here: a user's metrics.csv, checkpoints/ and
    wandb/ are refused like any other files, and nothing is deleted."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "my_model.pt").write_bytes(b"weights")
    (tmp_path / "wandb").mkdir()
    (tmp_path / "wandb" / "notes.txt").write_text("mine")
    (tmp_path / "metrics.csv").write_text("step\n")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(RunDirError, match=r"is not empty \(checkpoints, metrics.csv, wandb\); a new run needs"):
        check_fresh_run_dir(tmp_path)
    with pytest.raises(RunDirError, match="is not empty"):
        RunDir.claim(tmp_path, fresh=True)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("trained", ["episodes", "metrics", "snapshot", "set_aside"])
def test_a_trained_run_that_lost_its_config_is_not_taken_for_an_interrupted_start(tmp_path, trained):
    """A run whose config.yaml was deleted still holds what only training writes (CSV rows, numbered
    snapshots, a set-aside branch): a new start there is refused, and nothing is deleted."""
    (tmp_path / LOCK_NAME).write_text("pid 1 on elsewhere\n")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"frame 30000")
    (tmp_path / "episodes.csv").write_text("frame,return,length\n" + ("120,9.0,9\n" if trained == "episodes" else ""))
    (tmp_path / "metrics.csv").write_text("step,loss\n" + ("1000,0.5\n" if trained == "metrics" else ""))
    if trained == "snapshot":
        (tmp_path / "checkpoints" / "step_10000.pt").write_bytes(b"frame 10000")
    if trained == "set_aside":
        (tmp_path / "checkpoints" / "abandoned_1").mkdir()
    before = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(RunDirError, match="is not empty"):
        RunDir.claim(tmp_path, fresh=True)
    assert {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_an_interrupted_multi_seed_start_is_cleared_by_the_next_start(tmp_path):
    """A multi-seed start writes each seed's directory (with its config.yaml) before the run's own
    commit: killed before that commit, the seed directories are artefacts of a start that never
    trained, and the same command starts again."""
    for seed in (0, 1):
        (tmp_path / f"seed_{seed}").mkdir()
        (tmp_path / f"seed_{seed}" / "config.yaml").write_text(f"seed: {seed}\n")
    (tmp_path / "train.log").write_text("start: ...\n")
    (tmp_path / LOCK_NAME).write_text("pid 1 on elsewhere\n")
    with RunDir.claim(tmp_path, fresh=True) as held:
        assert sorted(p.name for p in held.path.iterdir()) == [LOCK_NAME, "train.log"]
    (tmp_path / "seed_0").mkdir()
    (tmp_path / "config.yaml").write_text("seed: 0\n")  # committed: a run, not an interrupted start
    with pytest.raises(RunDirError, match="already holds a run"):
        RunDir.claim(tmp_path, fresh=True)


def test_runs_kept_in_seed_folders_are_not_taken_for_an_interrupted_start(tmp_path):
    """A folder of ordinary runs named seed_<k> (each with its checkpoints) is not empty: a start
    there is refused, and nothing is deleted."""
    (tmp_path / "seed_0" / "checkpoints").mkdir(parents=True)
    (tmp_path / "seed_0" / "checkpoints" / "last.pt").write_bytes(b"a finished run")
    (tmp_path / "seed_0" / "config.yaml").write_text("seed: 0\n")
    with pytest.raises(RunDirError, match=r"is not empty \(seed_0\)"):
        RunDir.claim(tmp_path, fresh=True)
    assert (tmp_path / "seed_0" / "checkpoints" / "last.pt").read_bytes() == b"a finished run"


def test_abandon_removes_what_the_start_created_and_keeps_the_rest(tmp_path):
    held = RunDir.claim(tmp_path / "new", fresh=True)
    (tmp_path / "new" / "metrics.csv").write_text("step\n")
    (tmp_path / "new" / "checkpoints").mkdir()
    held.abandon()
    assert not (tmp_path / "new").exists()

    (tmp_path / "given").mkdir()
    (tmp_path / "given" / "train.log").write_text("hydra's log")
    held = RunDir.claim(tmp_path / "given", fresh=True)
    (tmp_path / "given" / "config.yaml").write_text("seed: 0")
    held.abandon()
    assert sorted(p.name for p in (tmp_path / "given").iterdir()) == ["train.log"]
    RunDir.claim(tmp_path / "given", fresh=True).release()  # the lock went with it


def test_stale_temp_files_of_interrupted_writes_are_removed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / ".hydra" / "resume_1").mkdir(parents=True)
    stale = [tmp_path / "checkpoints" / ".last.pt.ab3_x9qz.tmp", tmp_path / ".metrics.csv.k2j4h5g6.tmp",
             tmp_path / ".hydra" / "resume_1" / ".config.yaml.ko00pyx_.tmp"]
    kept = [tmp_path / "checkpoints" / "last.pt", tmp_path / "notes.tmp", tmp_path / ".hidden"]
    for path in stale + kept:
        path.write_bytes(b"x")
    with RunDir.claim(tmp_path, fresh=False) as held:
        assert sorted(held.remove_stale_temp_files()) == sorted(stale)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_a_claim_for_resume_needs_an_existing_directory(tmp_path):
    with pytest.raises(RunDirError, match="cannot resume: .* is not a directory"):
        RunDir.claim(tmp_path / "missing", fresh=False)
    assert not (tmp_path / "missing").exists()


def test_a_released_lock_can_be_taken_again_at_once(tmp_path):
    # No stale lock file to delete by hand: the file stays, the lock goes with its holder.
    for _ in range(3):
        RunDir.claim(tmp_path, fresh=False).release()
    assert (tmp_path / LOCK_NAME).is_file() and lock_holder(tmp_path) is None


NASTY_PATHS = ["outputs/run", "multirun/x/0_seed=0", "out/a#b", "out/a&b;c", "out/a!b", "out/~x", "out/ü/run",
               "out/a b", "out/it's", "out/$HOME", "out/`id`", 'out/say "hi"', "out/a\\b", "out/end\\",
               "out/q\\'x", "out/a,b[0]", "/runs/a!b c", "0", "null", "1e3", "true", "run",
               "out/a${x}", "out/a${x", "out/a\\${x}", "out/a\\\\${x}", "out/${now:%H}/b'c", "out/$x/${"]


@pytest.mark.parametrize("path", NASTY_PATHS)
def test_the_resume_override_parses_back_to_the_path_in_hydra_and_in_a_shell(path):
    import subprocess

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from rlkit.rundir import override_value, resume_hint, resume_override

    override = resume_override(path)
    parsed = OverridesParser.create().parse_override(override).value()
    # As Hydra reads it into the config: a "${" there would be an interpolation, resolved on access.
    assert OmegaConf.create({"resume": parsed}).resume == path
    assert override_value(override.split("=", 1)[1]) == path
    # The hint as printed, pasted into a POSIX shell, is the override as one word.
    echoed = subprocess.run(["sh", "-c", f"printf '%s' {resume_hint(path)}"], capture_output=True, text=True, check=True)
    assert echoed.stdout == override
    # Interactive bash expands "!" inside double quotes (history expansion): the hint survives it.
    echoed = subprocess.run(["bash", "-c", f"set -H; printf '%s' {resume_hint(path)}"], capture_output=True, text=True,
                            check=True)
    assert echoed.stdout == override


def test_check_creatable_removes_exactly_what_it_made(tmp_path, monkeypatch):
    from pathlib import Path

    from rlkit.rundir import check_creatable

    # A name too long for the file system: the levels made before it failed are removed too.
    with pytest.raises(RunDirError, match=r"^out= '.*' cannot be created: File name too long$"):
        check_creatable(tmp_path / "new" / "deeper" / ("L" * 300), "out=")
    check_creatable(tmp_path / "q" / "r" / ".." / "s", "out=")
    assert list(tmp_path.iterdir()) == []
    # Another process makes the folder meanwhile: it is neither refused nor removed.
    real = Path.mkdir

    def racing(self, *args, **kwargs):
        real(self, *args, **kwargs)
        if self.name == "shared":
            raise FileExistsError(17, "File exists")

    monkeypatch.setattr(Path, "mkdir", racing)
    check_creatable(tmp_path / "shared", "tune.dir=")
    assert (tmp_path / "shared").is_dir()
