"""Fault trials: ``train.py`` under kill -9, concurrent starts, corrupted checkpoints and bad command lines.

Each trial runs ``train.py`` as a subprocess (short CartPole runs, ``trainer.progress=false``) and
checks one of rlkit's guarantees against an uninterrupted reference run of the same command
(computed once per distinct command and cached under ``<out>/refs/``):

1. kill/resume: a run killed with SIGKILL (at a random moment, the moment a checkpoint's temporary
   file ``.last.pt.<8 chars>.tmp`` appears, or during a resume's start), resumed with
   ``train.py resume=<run dir>`` (resumes killed again in some trials), ends with ``metrics.csv``
   (less the ``fps`` column) and ``episodes.csv`` equal cell for cell to the reference, and no
   ``*.tmp`` file anywhere in the run directory. A run killed before it committed (no
   ``config.yaml`` yet) is started again with the same command into the same directory instead,
   which must clear what it left; such restarts are counted separately.
2. concurrency: (a) two identical starts into one ``hydra.run.dir``: one exits 0, the other 2 with
   one ``rlkit: `` line (directory in use, or already holding a run), and the directory equals the
   reference; (b) two resumes of one run at once: one is refused as in use by a pid, the other
   finishes equal to the reference at the larger budget; (c) two starts without ``hydra.run.dir``
   in the same cwd and second: two directories ``outputs/<date>/..._<6 hex>``, each equal to the
   reference.
3. corruption: bytes of a finished run's ``checkpoints/last.pt`` flipped, or the file truncated;
   ``resume=<run> total_frames=<more>`` exits 2 with one line saying the file ``is corrupt`` and
   leaves every file as it was. Flips that land only in bytes nothing reads (zip alignment padding)
   must instead give a resume equal to the reference; those are counted separately.
4. bad command lines: each exits 2 with exactly one stderr line starting ``rlkit: ``; a fresh
   ``hydra.run.dir`` is not created, the cwd gains nothing, and a resumed run's files are unchanged.

Byte-for-byte means every file, the lock file ``.rlkit.lock`` included: a refused resume writes
its pid there while it verifies and restores the previous bytes when it refuses.

Usage::

    .venv/bin/python scripts/fault_trials.py [--trials 100] [--seed 0] [--out DIR] [--keep]

One line per trial, then a table per kind of trial (trials, passed, counts of each kind of failure).
Without ``--out`` everything goes to a temporary directory, removed at the end unless a trial failed
or ``--keep`` is given; with ``--out`` the references stay there (a later run with the same ``--out``
reuses them). The directories of passed trials are removed unless ``--keep``. Exit status 0 only if
every trial passed.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rlkit.script_args import positive_int  # (standard library only: no torch in this harness)

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "train.py"
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HYDRA_FULL_ERROR": "0"}

PROCESS_TIMEOUT = 300.0  # seconds a train.py may take before it counts as hung
POLL = 0.001  # seconds between polls of a watched run directory
FRAMES = 6000  # total_frames of every first start
MORE_FRAMES = 12000  # total_frames of resumes that extend a finished run

TRAINER = ["env=CartPole", f"total_frames={FRAMES}", "trainer.checkpoint_interval=1000", "trainer.log_interval=500",
           "trainer.eval_interval=2000", "trainer.eval_episodes=2", "trainer.progress=false"]
REPLAY = ["algo.learning_starts=500", "algo.batch_size=32"]  # dqn and c51 only (a2c has no replay)
BIG_CHECKPOINTS = ["algo.buffer_size=300000"]  # the full-capacity storage is saved: ~14 MB per checkpoint

LOCK_FILE = ".rlkit.lock"
#: What a refused resume of a complete run says (rlkit.run.check_resume_target).
COMPLETE_REFUSAL = "is complete: "
TEMP_CHECKPOINT = re.compile(r"^\.last\.pt\.[A-Za-z0-9_]{8}\.tmp$")
RUN_NAME = re.compile(r"^\d\d-\d\d-\d\d_[a-z0-9]+_[A-Za-z]+_s\d+_[0-9a-f]{6}$")

# Failure categories (columns of the summary).
SILENT = "silent corruption"
LOST = "lost rows"
TEMP = "leftover temp files"
REFUSAL = "refusal not one line / wrong exit code"
CHANGED = "file changed by a refused command"
OTHER = "other failure"
CATEGORIES = [SILENT, LOST, TEMP, REFUSAL, CHANGED, OTHER]

KINDS = {"kill/resume": 0.50, "concurrency": 0.15, "corruption": 0.15, "bad command line": 0.20}


def command(algo: str, seed: int = 0, *, big: bool = False, extra: Sequence[str] = ()) -> list[str]:
    """The overrides of a small training run (without ``hydra.run.dir``)."""
    args = [f"algo={algo}", *TRAINER, f"seed={seed}"]
    if algo != "a2c":
        args += REPLAY + (BIG_CHECKPOINTS if big else [])
    return args + list(extra)


# -- processes -------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """How a ``train.py`` ended: ``killed`` by this script (at ``seconds``), or on its own with ``rc``."""

    rc: int | None
    stderr: str
    seconds: float
    killed: bool = False
    timed_out: bool = False

    def tail(self) -> str:
        """The end of stderr, on one line."""
        return ("timed out; " if self.timed_out else "") + " | ".join(self.stderr.strip().splitlines()[-3:])


class Train:
    """One ``python train.py <args>`` started in ``cwd``, its output in files under ``logs``."""

    #: The ones started and not yet waited for (a Ctrl-C of this script kills them: each runs in a
    #: session of its own, which the terminal's Ctrl-C does not reach).
    live: set[Train] = set()

    def __init__(self, args: Sequence[str], cwd: Path, logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.stem = logs / f"{len(list(logs.glob('*.err'))):02d}"
        self.stem.with_suffix(".args").write_text(" ".join(args) + "\n")
        with open(f"{self.stem}.out", "w") as out, open(f"{self.stem}.err", "w") as err:
            # A session (process group) of its own, so that a kill reaches anything it started.
            self.proc = subprocess.Popen([sys.executable, str(TRAIN), *args], cwd=cwd, env=ENV, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True)
        self.started = time.monotonic()
        Train.live.add(self)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> bool:
        """SIGKILLs the process group; False when the process had already ended."""
        if not self.running():
            return False
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.proc.wait()
        return True

    def wait(self, timeout: float = PROCESS_TIMEOUT) -> Outcome:
        timed_out = False
        try:
            self.proc.wait(timeout=max(0.0, timeout - self.elapsed()))
        except subprocess.TimeoutExpired:
            timed_out = self.kill()
        Train.live.discard(self)
        stderr = Path(f"{self.stem}.err").read_text(errors="replace")
        return Outcome(self.proc.returncode, stderr, self.elapsed(), timed_out=timed_out)


Condition = Callable[[Train], bool]
#: Builds the kill condition of one start from its run directory (None: let it finish).
Killer = Callable[[Path], Condition]


def run_killing(train: Train, when: Condition | None, delay: float = 0.0) -> Outcome:
    """Waits for ``train``; kills it (SIGKILL) ``delay`` seconds after ``when`` first holds."""
    if when is not None:
        while train.running() and train.elapsed() < PROCESS_TIMEOUT:
            if when(train):
                if delay:
                    time.sleep(delay)
                at = train.elapsed()
                if train.kill():
                    return Outcome(None, Path(f"{train.stem}.err").read_text(errors="replace"), at, killed=True)
                break
            time.sleep(POLL)
    return train.wait()


def after(seconds: float) -> Condition:
    return lambda train: train.elapsed() >= seconds


def after_path(path: Path, seconds: float) -> Condition:
    """Holds ``seconds`` after ``path`` is first seen to exist."""
    seen: list[float] = []

    def condition(train: Train) -> bool:
        if not seen and path.exists():
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= seconds

    return condition


def nth_temp_checkpoint(run_dir: Path, n: int) -> Condition:
    """Holds once the ``n``-th new ``.last.pt.<8 chars>.tmp`` has appeared in ``checkpoints/`` (one
    left by an earlier kill does not count)."""
    def present() -> set[str]:
        try:
            return {name for name in os.listdir(run_dir / "checkpoints") if TEMP_CHECKPOINT.match(name)}
        except OSError:
            return set()

    old = present()
    seen: set[str] = set()

    def condition(train: Train) -> bool:
        seen.update(present() - old)
        return len(seen) >= n

    return condition


def commit_writing(run_dir: Path) -> Condition:
    """Holds once a fresh start writes its commit: a ``.config.yaml.<8 chars>.tmp`` in the run dir."""

    def condition(train: "Train") -> bool:
        return run_dir.is_dir() and any(p.name.startswith(".config.yaml.") for p in run_dir.iterdir())

    return condition


def resume_writing(run_dir: Path) -> Condition:
    """Holds once a temp file that was not there at the start appears: the start's first write."""
    before = set(temp_files(run_dir, fast=True))
    return lambda train: not set(temp_files(run_dir, fast=True)) <= before


def new_resume_dir(run_dir: Path) -> Condition:
    """Holds once a new ``.hydra/resume_<k>`` exists: the resume is writing its provenance files."""
    before = set(_resume_dirs(run_dir))
    return lambda train: not set(_resume_dirs(run_dir)) <= before


def lock_taken(run_dir: Path) -> Condition:
    """Holds once the started process holds the run's lock (its pid is in the lock file)."""
    def condition(train: Train) -> bool:
        try:
            return (run_dir / LOCK_FILE).read_text().startswith(f"pid {train.proc.pid} ")
        except OSError:
            return False

    return condition


def _resume_dirs(run_dir: Path) -> list[str]:
    try:
        return [n for n in os.listdir(run_dir / ".hydra") if n.startswith("resume_")]
    except OSError:
        return []


# -- run directories -------------------------------------------------------------------------------
def temp_files(run_dir: Path, *, fast: bool = False) -> list[str]:
    """``*.tmp`` files under ``run_dir``, relative to it (``fast``: only where rlkit writes, no full walk)."""
    if not fast:
        return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*.tmp"))
    found = []
    for folder in ("", "checkpoints", ".hydra", *(f".hydra/{d}" for d in _resume_dirs(run_dir))):
        try:
            found += [os.path.join(folder, n) for n in os.listdir(run_dir / folder) if n.endswith(".tmp")]
        except OSError:
            pass
    return found


def snapshot(path: Path) -> dict[str, bytes | None]:
    """Every file (bytes) and directory (None) under ``path``."""
    if not path.exists():
        return {}
    tree: dict[str, bytes | None] = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        tree[rel] = None if p.is_dir() else p.read_bytes()
    return tree


def snapshot_diff(before: dict[str, bytes | None], after: dict[str, bytes | None]) -> str:
    """What changed between two snapshots, in a few words ("" if nothing)."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    parts = [f"{label} {names[:4]}" for label, names in (("added", added), ("removed", removed), ("changed", changed))
             if names]
    return "; ".join(parts)


def read_csv(path: Path, drop: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a CSV as dicts of the raw cells, less the ``drop`` columns."""
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


def compare_runs(got: Path, ref: Path, *, whole: bool = False) -> list[tuple[str, str]]:
    """Problems of ``got`` against the reference run ``ref``: ``metrics.csv`` (less ``fps``) and
    ``episodes.csv`` cell for cell; with ``whole`` also ``config.yaml`` and the same set of files."""
    problems: list[tuple[str, str]] = []
    for name, drop in (("metrics.csv", ["fps"]), ("episodes.csv", [])):
        if not (got / name).is_file():
            problems.append((LOST, f"{name} missing"))
            continue
        rows, expected = read_csv(got / name, drop), read_csv(ref / name, drop)
        if rows == expected:
            continue
        if len(rows) < len(expected) and all(row in expected for row in rows):
            problems.append((LOST, f"{name}: {len(rows)} of {len(expected)} rows"))
        else:
            first = next((i for i, (a, b) in enumerate(zip(rows, expected)) if a != b), min(len(rows), len(expected)))
            problems.append((SILENT, f"{name}: {len(rows)} rows vs {len(expected)}, first difference at row {first}"))
    if whole:
        if not (got / "config.yaml").is_file():
            problems.append((OTHER, "config.yaml missing: the run never committed"))
        elif (got / "config.yaml").read_bytes() != (ref / "config.yaml").read_bytes():
            problems.append((SILENT, "config.yaml differs from the reference's"))
        files, expected_files = _files(got), _files(ref)
        if files != expected_files:
            problems.append((SILENT, f"files differ from the reference's: {sorted(files ^ expected_files)[:6]}"))
    return problems


def _files(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()}


def refusal_problems(out: Outcome, *, contains: Sequence[str] = ()) -> list[tuple[str, str]]:
    """A refusal is exit status 2 and exactly one stderr line, ``rlkit: ...`` (containing one of ``contains``)."""
    lines = out.stderr.splitlines()
    if out.rc != 2:
        return [(REFUSAL, f"exit status {out.rc} (expected 2): {out.tail()}")]
    if len(lines) != 1 or not lines[0].startswith("rlkit: "):
        return [(REFUSAL, f"{len(lines)} stderr lines: {out.tail()}")]
    if contains and not any(text in lines[0] for text in contains):
        return [(REFUSAL, f"message lacks {' / '.join(map(repr, contains))}: {lines[0]}")]
    return []


# -- references ------------------------------------------------------------------------------------
@dataclass
class Reference:
    """A finished, never-interrupted run: ``path``; when its directory appeared and when it ended (s)."""

    path: Path
    t_dir: float
    t_total: float


class References:
    """Uninterrupted reference runs, computed once per (command, resumes) and cached in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, args: Sequence[str], resumes: Sequence[int] = ()) -> Reference:
        """The run of ``train.py <args>``, then ``resume=<it> total_frames=<n>`` for each n of ``resumes``."""
        key = json.dumps([list(args), list(resumes)])
        name = f"{args[0].split('=')[1]}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
        path, meta = self.folder / name, self.folder / f"{name}.json"
        if meta.is_file() and path.is_dir():
            saved = json.loads(meta.read_text())
            if saved["key"] == key:
                return Reference(path, saved["t_dir"], saved["t_total"])
        shutil.rmtree(path, ignore_errors=True)
        logs = self.folder / "logs" / name
        train = Train([*args, f"hydra.run.dir={path}"], self.folder, logs)
        t_dir = None
        while train.running() and train.elapsed() < PROCESS_TIMEOUT:
            if t_dir is None and path.exists():
                t_dir = train.elapsed()
            time.sleep(0.005)
        out = train.wait()
        if out.rc != 0:
            raise RuntimeError(f"reference run {' '.join(args)} failed ({out.rc}): {out.tail()}")
        for frames in resumes:
            done = Train([f"resume={path}", f"total_frames={frames}"], self.folder, logs).wait()
            if done.rc != 0:
                raise RuntimeError(f"reference resume of {' '.join(args)} to {frames} failed ({done.rc}): {done.tail()}")
        meta.write_text(json.dumps({"key": key, "t_dir": t_dir or 0.0, "t_total": out.seconds}))
        return Reference(path, t_dir or 0.0, out.seconds)


# -- trials ----------------------------------------------------------------------------------------
@dataclass
class Trial:
    """The result of one trial."""

    kind: str
    name: str
    problems: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tags: Counter[str] = field(default_factory=Counter)  # cases counted separately (not failures)

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass
class Context:
    refs: References
    folder: Path  # this trial's directory: cwd/ (the subprocesses' cwd) and logs/

    @property
    def cwd(self) -> Path:
        return self.folder / "cwd"

    @property
    def logs(self) -> Path:
        return self.folder / "logs"


def kill_trial(ctx: Context, rng: random.Random, index: int) -> Trial:
    """Kills a run (and in some trials its resumes), resumes until it finishes, compares with the reference."""
    mode = ["random", "checkpoint", "resume"][index % 3]
    algo = rng.choice(["dqn", "c51"] if mode == "checkpoint" else ["dqn", "dqn", "c51", "a2c"])
    args = command(algo, rng.choice([0, 1]), big=mode == "checkpoint")
    ref = ctx.refs.get(args)
    trial = Trial("kill/resume", f"kill-{'during-' if mode != 'random' else 'at-'}{mode}-{algo}")
    run_dir = ctx.cwd / "run"

    plan = _kill_plan(mode, rng, ref)
    ctx.cwd.mkdir(parents=True)
    kills: list[str] = []
    resumes = 0
    for step, kill in enumerate([*plan, None]):
        if (run_dir / "config.yaml").is_file():
            start_args = [f"resume={run_dir}"]
            resumes += step > 0
        else:
            if step > 0:
                trial.tags["restart after a kill before the commit (leftovers cleared)" if run_dir.exists()
                           else "restart after a kill before the directory existed"] += 1
            start_args = [*args, f"hydra.run.dir={run_dir}"]
        train = Train(start_args, ctx.cwd, ctx.logs)
        out = run_killing(train, kill.make(run_dir) if kill else None, kill.delay if kill else 0.0)
        if out.killed:
            assert kill is not None
            kills.append(f"{kill.label} at {out.seconds:.2f} s")
            for where in sorted({str(Path(t).parent) for t in temp_files(run_dir)} if run_dir.exists() else []):
                trial.tags[f"a kill left a temp file in {where}/"] += 1
            continue
        if kills and out.rc == 2 and start_args[0].startswith("resume=") and COMPLETE_REFUSAL in out.stderr:
            # The last kill landed after the run had completed (while its process exited): rlkit's
            # refusal to resume a complete run is the answer; the comparison below checks the run.
            trial.notes.append(f"the last kill came after the run completed: resume {step} refused it as complete")
            break
        if out.rc != 0:
            what = "resume" if start_args[0].startswith("resume=") else "start"
            trial.problems.append((OTHER, f"{what} {step} exited {out.rc}: {out.tail()}"))
            return trial
        if kill:
            trial.notes.append(f"{kill.label} kill came too late: start {step} had finished")
        break
    trial.problems += compare_runs(run_dir, ref.path)
    leftovers = temp_files(run_dir)
    if leftovers:
        trial.problems.append((TEMP, ", ".join(leftovers)))
    trial.notes.insert(0, f"killed {', '.join(kills) or 'never'}; {resumes} resume{'s' * (resumes != 1)}")
    return trial


@dataclass
class Kill:
    """When to kill one start: once ``make(run_dir)`` holds, plus ``delay`` seconds."""

    label: str
    make: Killer
    delay: float = 0.0


def _kill_plan(mode: str, rng: random.Random, ref: Reference) -> list[Kill]:
    """The kills of one trial, one per start (the start after the last one runs to its end)."""
    training = max(0.2, ref.t_total - ref.t_dir)  # seconds a start spends with its directory

    def at_random() -> Kill:
        seconds = rng.uniform(0.3, 0.9 * ref.t_total)
        return Kill("at-random", lambda d: after(seconds))

    def at_write(n: int) -> Kill:
        return Kill(f"checkpoint-write#{n}", lambda d: nth_temp_checkpoint(d, n), rng.choice([0.0, rng.uniform(0, 0.03)]))

    if mode == "random":
        seconds = rng.uniform(0.0, training)
        if rng.random() < 0.2:  # while the start writes its commit (config.yaml, written last)
            first = Kill("commit-write", lambda d: commit_writing(d))
        else:
            first = at_random() if rng.random() < 0.3 else Kill("dir+random", lambda d: after_path(d, seconds))
        return [first] + [at_random() for _ in range(rng.choice([0, 0, 1, 2]))]
    if mode == "checkpoint":
        plan = [at_write(1 if rng.random() < 0.25 else rng.randint(2, 6))]
        return plan + ([at_write(rng.randint(1, 3))] if rng.random() < 0.4 else [])
    seconds = rng.uniform(0.0, 0.7 * training)
    plan = [Kill("commit+random", lambda d: after_path(d / "config.yaml", seconds))]
    for _ in range(rng.randint(1, 3)):
        pick = rng.random()
        if pick < 0.25:
            plan.append(Kill("resume-writes", resume_writing))
        elif pick < 0.45:
            plan.append(Kill("resume-provenance", new_resume_dir))
        elif pick < 0.7:
            plan.append(Kill("resume-locked", lock_taken, rng.uniform(0.0, 0.3)))
        else:
            plan.append(at_random())
    return plan


def concurrency_trial(ctx: Context, rng: random.Random, index: int) -> Trial:
    """Two ``train.py`` at once: into one directory, resuming one run, or into default directories."""
    case = "abc"[index % 3]
    algo = rng.choice(["dqn", "dqn", "c51", "a2c"])
    args = command(algo, rng.choice([0, 1]))
    ctx.cwd.mkdir(parents=True)
    run_dir = ctx.cwd / "run"
    if case == "a":
        trial = Trial("concurrency", f"concurrent-starts-one-dir-{algo}")
        ref = ctx.refs.get(args)
        outs = _together([[*args, f"hydra.run.dir={run_dir}"]] * 2, ctx)
        trial.problems += _one_wins(outs, ("is in use by pid", "already holds a run"))
        if run_dir.is_dir():
            trial.problems += compare_runs(run_dir, ref.path, whole=True)
        else:
            trial.problems.append((OTHER, "the run directory does not exist"))
    elif case == "b":
        trial = Trial("concurrency", f"concurrent-resumes-{algo}")
        ref = ctx.refs.get(args, [MORE_FRAMES])
        shutil.copytree(ctx.refs.get(args).path, run_dir)
        outs = _together([[f"resume={run_dir}", f"total_frames={MORE_FRAMES}"]] * 2, ctx)
        trial.problems += _one_wins(outs, ("is in use by pid",))
        trial.problems += compare_runs(run_dir, ref.path)
    else:
        trial = Trial("concurrency", f"concurrent-default-dirs-{algo}")
        ref = ctx.refs.get(args)
        outs = _together([args, args], ctx)
        for i, out in enumerate(outs):
            if out.rc != 0:
                trial.problems.append((OTHER, f"start {i} exited {out.rc}: {out.tail()}"))
        runs = sorted(p for p in ctx.cwd.glob("outputs/*/*") if p.is_dir())
        names = [p.name for p in runs]
        if sorted(p.name for p in ctx.cwd.iterdir()) != ["outputs"]:
            trial.problems.append((OTHER, f"cwd holds {sorted(p.name for p in ctx.cwd.iterdir())}"))
        if len(runs) != 2 or len(set(names)) != 2 or not all(RUN_NAME.match(n) for n in names):
            trial.problems.append((OTHER, f"expected two distinct run directories, got {names}"))
        for path in runs:
            trial.problems += compare_runs(path, ref.path, whole=True)
        trial.notes.append(" and ".join(names))
    for path in [run_dir, *ctx.cwd.glob("outputs/*/*")]:
        if path.is_dir() and temp_files(path):
            trial.problems.append((TEMP, f"{path.name}: {temp_files(path)}"))
    trial.notes.insert(0, "exit statuses " + ", ".join(str(o.rc) for o in outs))
    return trial


def _together(commands: list[list[str]], ctx: Context) -> list[Outcome]:
    trains = [Train(args, ctx.cwd, ctx.logs) for args in commands]
    return [train.wait() for train in trains]


def _one_wins(outs: list[Outcome], reasons: Sequence[str]) -> list[tuple[str, str]]:
    """Exactly one of two outcomes succeeded; the other is a one-line refusal giving one of ``reasons``."""
    if sorted(o.rc for o in outs if o.rc is not None) != [0, 2]:
        return [(REFUSAL, "exit statuses " + ", ".join(str(o.rc) for o in outs) + " (expected 0 and 2): "
                 + " || ".join(o.tail() for o in outs))]
    loser = next(o for o in outs if o.rc == 2)
    return refusal_problems(loser, contains=reasons)


def corruption_trial(ctx: Context, rng: random.Random, index: int) -> Trial:
    """Damages ``last.pt`` of a finished run and resumes it to a larger budget: refused, nothing changed."""
    algo = ["dqn", "c51", "a2c"][index % 3]
    mode = "truncate" if rng.random() < 0.3 else "flip"
    args = command(algo, rng.choice([0, 1]))
    run_dir = ctx.cwd / "run"
    ctx.cwd.mkdir(parents=True)
    shutil.copytree(ctx.refs.get(args).path, run_dir)
    checkpoint = run_dir / "checkpoints" / "last.pt"
    data = bytearray(checkpoint.read_bytes())
    if mode == "truncate":
        data = data[:rng.randrange(len(data))]
        damage = f"truncated to {len(data)} bytes"
    else:
        spots = sorted(rng.sample(range(len(data)), rng.choice([1, 1, 2, 4, 16, 64])))
        for spot in spots:
            data[spot] ^= rng.randint(1, 255)
        damage = f"{len(spots)} byte(s) flipped at {spots[:4]}{'...' if len(spots) > 4 else ''}"
    checkpoint.write_bytes(bytes(data))
    trial = Trial("corruption", f"corrupt-checkpoint-{mode}-{algo}", notes=[damage])
    before = snapshot(run_dir)
    out = Train([f"resume={run_dir}", f"total_frames={MORE_FRAMES}"], ctx.cwd, ctx.logs).wait()
    if out.rc == 0:  # every changed byte lies where nothing is read (zip padding): a normal resume
        trial.tags["damage in unread bytes: resume accepted"] += 1
        trial.notes.append("resume accepted")
        trial.problems += compare_runs(run_dir, ctx.refs.get(args, [MORE_FRAMES]).path)
        if temp_files(run_dir):
            trial.problems.append((TEMP, ", ".join(temp_files(run_dir))))
        return trial
    trial.problems += refusal_problems(out, contains=("is corrupt",))
    changed = snapshot_diff(before, snapshot(run_dir))
    if changed:
        trial.problems.append((CHANGED, changed))
    if not (run_dir / LOCK_FILE).is_file():
        trial.problems.append((CHANGED, f"{LOCK_FILE} removed"))
    return trial


@dataclass
class BadCase:
    """A command line ``train.py`` must refuse: ``args`` from the trial's paths (new run dir, protected runs)."""

    name: str
    build: Callable[[Context, Path], tuple[list[str], list[Path]]]


def _fresh(algo: str, *extra: str) -> Callable[[Context, Path], tuple[list[str], list[Path]]]:
    return lambda ctx, new: ([*command(algo, extra=extra), f"hydra.run.dir={new}"], [])


def _copy_run(ctx: Context, args: Sequence[str], name: str) -> Path:
    target = ctx.folder / "runs" / name
    shutil.copytree(ctx.refs.get(args).path, target)
    return target


def _resume_finished(ctx: Context, new: Path) -> tuple[list[str], list[Path]]:
    run_a = _copy_run(ctx, command("dqn"), "A")
    return [f"resume={run_a}", "total_frames=10"], [run_a]


def _resume_elsewhere(ctx: Context, new: Path) -> tuple[list[str], list[Path]]:
    run_a = _copy_run(ctx, command("dqn"), "A")
    return [f"resume={run_a}", f"hydra.run.dir={new}"], [run_a]


def _foreign_checkpoint(ctx: Context, new: Path) -> tuple[list[str], list[Path]]:
    run_a = _copy_run(ctx, command("dqn"), "A")
    shutil.copyfile(ctx.refs.get(command("c51")).path / "checkpoints" / "last.pt", run_a / "checkpoints" / "last.pt")
    return [f"resume={run_a}", f"total_frames={MORE_FRAMES}"], [run_a]


def _changed_network(ctx: Context, new: Path) -> tuple[list[str], list[Path]]:
    run_a = _copy_run(ctx, command("dqn", extra=["algo.hidden_sizes=[64,64]"]), "A")
    return [f"resume={run_a}", "algo.hidden_sizes=[120,84]", f"total_frames={MORE_FRAMES}"], [run_a]


BAD_CASES = [
    BadCase("lr-inf", _fresh("dqn", "algo.optim.lr=inf")),
    BadCase("seed-2^32", _fresh("dqn", "seed=4294967296")),
    BadCase("device-cpu:999", _fresh("dqn", "device=cpu:999")),
    BadCase("num-threads-100000", _fresh("dqn", "num_threads=100000")),
    BadCase("buffer-10^12", _fresh("dqn", "algo.buffer_size=1000000000000")),
    BadCase("make-kwargs-foo", _fresh("dqn", "+env.make_kwargs.foo=1")),
    BadCase("env-id-v9", _fresh("dqn", "env.id=CartPole-v9")),
    BadCase("c51-with-gae", _fresh("c51", "value_estimator=gae")),
    BadCase("total-frames-10^23", _fresh("a2c", "total_frames=99999999999999999999999")),
    BadCase("empty-run-dir", lambda ctx, new: ([*command("dqn"), "hydra.run.dir="], [])),
    BadCase("resume-below-done", _resume_finished),
    BadCase("resume-with-run-dir", _resume_elsewhere),
    BadCase("resume-c51-checkpoint-in-dqn-run", _foreign_checkpoint),
    BadCase("resume-other-hidden-sizes", _changed_network),
]


def bad_command_trial(ctx: Context, rng: random.Random, index: int) -> Trial:
    """A refused command line: one ``rlkit: `` line, exit 2, nothing created, nothing changed."""
    case = BAD_CASES[index % len(BAD_CASES)]
    trial = Trial("bad command line", f"bad-{case.name}")
    ctx.cwd.mkdir(parents=True)
    new = ctx.cwd / "new"
    args, protected = case.build(ctx, new)
    before = {path: snapshot(path) for path in protected}
    out = Train(args, ctx.cwd, ctx.logs).wait()
    trial.problems += refusal_problems(out)
    if out.stderr.strip():
        trial.notes.append(out.stderr.strip().splitlines()[-1][:110])
    if new.exists():
        trial.problems.append((CHANGED, f"{new} was created"))
    if any(ctx.cwd.iterdir()):
        trial.problems.append((CHANGED, f"the cwd gained {sorted(p.name for p in ctx.cwd.iterdir())}"))
    for path, files in before.items():
        changed = snapshot_diff(files, snapshot(path))
        if changed:
            trial.problems.append((CHANGED, f"{path.name}: {changed}"))
    return trial


TRIALS: dict[str, Callable[[Context, random.Random, int], Trial]] = {
    "kill/resume": kill_trial,
    "concurrency": concurrency_trial,
    "corruption": corruption_trial,
    "bad command line": bad_command_trial,
}


# -- the whole -------------------------------------------------------------------------------------
def allocate(trials: int) -> dict[str, int]:
    """Trials per kind in the proportions of :data:`KINDS` (largest remainders), each kind at least
    once when there are at least as many trials as kinds."""
    exact = {kind: trials * share for kind, share in KINDS.items()}
    counts = {kind: int(x) for kind, x in exact.items()}
    for kind in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[:trials - sum(counts.values())]:
        counts[kind] += 1
    for kind in KINDS:
        if trials >= len(KINDS) and counts[kind] == 0:
            counts[max(counts, key=counts.__getitem__)] -= 1
            counts[kind] = 1
    return counts


def summary(results: list[Trial]) -> str:
    """The table: one column per kind of trial (and the total), one row per count."""
    columns = [*KINDS, "total"]
    rows: list[tuple[str, list[int]]] = []

    def count(pick: Callable[[Trial], int]) -> list[int]:
        per_kind = [sum(pick(t) for t in results if t.kind == kind) for kind in KINDS]
        return per_kind + [sum(per_kind)]

    rows.append(("trials", count(lambda t: 1)))
    rows.append(("passed", count(lambda t: int(t.passed))))
    for category in CATEGORIES:
        rows.append((category, count(lambda t, c=category: sum(1 for p in t.problems if p[0] == c))))
    width = max(len(label) for label, _ in rows)
    lines = [" " * width + "".join(f"{c:>18}" for c in columns)]
    lines += [f"{label:<{width}}" + "".join(f"{v:>18}" for v in values) for label, values in rows]
    tags: Counter[tuple[str, str]] = Counter()
    for t in results:
        tags.update({(t.kind, tag): n for tag, n in t.tags.items()})
    if tags:
        lines.append("counted separately (not failures):")
        lines += [f"  {kind}: {tag}: {n}" for (kind, tag), n in sorted(tags.items())]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _trials(argv)
    except KeyboardInterrupt:
        for train in list(Train.live):  # (their sessions: the terminal's Ctrl-C did not reach them)
            train.kill()
        kept = "its train.py processes were stopped"
        if _TEMPORARY is not None:  # (the default folder: nothing in it is asked for)
            shutil.rmtree(_TEMPORARY, ignore_errors=True)
        elif _OUT is not None:
            kept += f"; the trials so far are in {_OUT / 'trials'}"
        print(f"\nfault_trials.py: interrupted; {kept}", file=sys.stderr)
        return 130


_TEMPORARY: Path | None = None  # the default --out folder of this invocation (a temporary one)
_OUT: Path | None = None  # a --out folder given


def _trials(argv: Sequence[str] | None) -> int:
    global _TEMPORARY, _OUT
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=positive_int, default=100, help="number of trials (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the trials' random choices")
    parser.add_argument("--out", type=Path, default=None, help="folder for references and trials (default: temporary)")
    parser.add_argument("--keep", action="store_true", help="keep every trial's directory (default: failed ones only)")
    opts = parser.parse_args(argv)

    out = opts.out.resolve() if opts.out else Path(tempfile.mkdtemp(prefix="rlkit-fault-trials-"))
    _TEMPORARY, _OUT = (None, out) if opts.out else (out, None)
    refs = References(out / "refs")
    counts = allocate(opts.trials)
    plan = [(kind, j) for kind, n in counts.items() for j in range(n)]
    random.Random(opts.seed).shuffle(plan)
    print(f"{opts.trials} trials ({', '.join(f'{n} {k}' for k, n in counts.items())}) in {out}", flush=True)
    began = time.monotonic()
    results: list[Trial] = []
    for i, (kind, j) in enumerate(plan):
        folder = out / "trials" / f"{i:03d}"
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.monotonic()
        trial = TRIALS[kind](Context(refs, folder), random.Random(f"{opts.seed}:{i}"), j)
        results.append(trial)
        status = "ok" if trial.passed else "FAIL " + "; ".join(f"{c}: {d}" for c, d in trial.problems)
        notes = f" ({'; '.join(trial.notes)})" if trial.notes else ""
        print(f"trial {i} {trial.name}: {status}{notes} [{time.monotonic() - t0:.1f} s]", flush=True)
        if trial.passed and not opts.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"\n{summary(results)}\nwall time {time.monotonic() - began:.0f} s", flush=True)
    passed = all(t.passed for t in results)
    if opts.out is None and passed and not opts.keep:
        shutil.rmtree(out, ignore_errors=True)
    elif not passed:
        print(f"failed trials' files are in {out / 'trials'}", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
