"""Reproduce a published result: train an experiment over N seeds, then compare with the paper's figure.

Usage::

    python scripts/reproduce.py experiment=dqn_cartpole seeds=3 [jobs=2] [out=DIR] [aggregate_only=true]
                                [batched=false] [key=value ...]   # extra Hydra overrides for every run
    python scripts/reproduce.py summary=DIR          # one table of every experiment under DIR
    python scripts/reproduce.py --help               # this text

Keys: ``experiment=`` (required; a file of ``conf/experiment/``); ``seeds=`` a count (``seeds=3``: seeds
0, 1, 2; the default) or a list of distinct seeds (``seeds=0,4,7``, ``seeds=[0,4,7]``; one seed:
``seeds=[5]``); ``jobs=`` how many processes train at once (default: one per seed, at most one per core;
batched, the new seeds train in one process unless ``jobs=`` is given: then in ``jobs`` processes of
consecutive seeds, e.g. ``seeds=10 jobs=2``: seeds 0-4 and 5-9, one per core);
``out=``; ``aggregate_only=`` (default false); ``batched=`` (default true); any other ``key=value`` is a
training override (as train.py's), except ``seed``, ``num_seeds`` and ``hydra...``, which this script
sets, and ``resume`` (a rerun resumes the unfinished runs itself). A bad command line, or an ``out=``
whose runs do not match it, is refused in one ``rlkit:`` line (exit status 2) before anything is written.

By default (``batched=true``) the seeds train in one process per run of consecutive seeds
(``train.py experiment=<name> seed=<first> num_seeds=<n>``, see README "Several seeds in one
process") into ``<out>/runs/seeds_<first>-<last>/seed_<k>`` (a process of one seed writes straight into
``<out>/runs/seeds_<k>-<k>/``), where the experiment allows it (its
networks are rlkit's MLPs: checked by building two seeds in memory first); otherwise, or with
``batched=false``, training is a Hydra sweep (``train.py -m experiment=<name> seed=0,1,..``, with the joblib launcher
running ``jobs`` runs at once when ``jobs`` > 1) into ``<out>/runs`` (default
``out=outputs/reproduce/<experiment>`` in the working directory, as train.py's ``outputs/``). Progress is read from the runs' ``metrics.csv`` while they
train; the sweep's own output goes to ``<out>/train.log``. Then ``<out>/results.md`` (rlkit mean ± std
beside the published figure, same protocol, plus greedy evaluation returns), ``<out>/summary.json``
and ``<out>/<experiment>.png`` (learning curves) are written.

Re-running is incremental: seeds whose run is complete are not retrained (``aggregate_only=true``
never trains; without ``seeds=`` it reports the seeds the last training asked for); an interrupted run that has a checkpoint is resumed; a run with the same seed but a
different config is refused (choose another ``out=``). Ctrl-C (or SIGTERM, or the terminal's hangup) passes
the signal on to the runs training and every process they started (a joblib sweep's workers), which write
a checkpoint and stop, and waits for them all to end; rerunning the same command resumes them (exit
status 128 + the signal number, as train.py's). The published figures and their protocols are
in ``scripts/published.py``.
"""
from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(Path(__file__).resolve().parent)]  # published.py / reproduce_report.py next to this file

import reproduce_report as report  # noqa: E402
from published import PUBLISHED  # noqa: E402
from rlkit.cli import command_line_problem, refuse  # noqa: E402
from rlkit.config_schema import MAX_NUM_SEEDS, MAX_SEED, MAX_SEED_COUNT  # noqa: E402
from rlkit.errors import ConfigError, RlkitError  # noqa: E402
from rlkit.rundir import (LOCK_NAME, check_creatable, check_outside_run_files, foreign_contents,  # noqa: E402
                          lock_holder, resume_override)
from rlkit.trainers.loggers.csv_logger import read_metrics_csv  # noqa: E402
from rlkit.utils.io import atomic_write  # noqa: E402

# The signals that stop the training (the runs are passed them on, see run_training): Ctrl-C, a kill or a
# scheduler's SIGTERM, and the terminal's hangup (SIGHUP, where there is one).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
OWN_KEYS = ("experiment", "seeds", "jobs", "out", "aggregate_only", "summary", "batched")
REQUEST_FILE = "request.json"  # the seeds and overrides the runs were trained with (reused by aggregate_only)
# What marks a directory as an earlier reproduction's out=: its request, its runs or its summary.
OUT_MARKS = (REQUEST_FILE, "runs", "summary.json")
# Keys of train.py that this script sets itself (per run).
SET_HERE = ("seed", "num_seeds", "hydra.sweep.dir")
HELP = ("-h", "--help")
# Keys that do not change what a run computes: existing runs may differ from the request in these.
IGNORED_KEYS = {"seed", "num_seeds", "resume", "imports", "trainer.progress", "trainer.checkpoint_interval",
                "trainer.keep_checkpoints", "trainer.drop_non_finite_seeds"}


class UsageError(ValueError):
    """A bad command line; the message says what is wrong and what is valid."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while runs trained; they were passed the signal and have ended."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def usage() -> str:
    """What ``--help`` prints: the module's docstring and the experiments there are."""
    return f"{(__doc__ or '').strip()}\n\nexperiments: {', '.join(available_experiments())}"


@dataclass
class Options:
    experiment: str
    seeds: list[int]
    jobs: int
    out: Path
    aggregate_only: bool = False
    overrides: list[str] = field(default_factory=list)
    batched: bool = True
    seeds_given: bool = True  # False: seeds= was not on the command line (the default 3 applies)
    jobs_given: bool = True  # False: jobs= was not on the command line (its default applies)


def available_experiments() -> list[str]:
    return sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


def _bool(key: str, value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise UsageError(f"{key}={value!r} is not a boolean; use true or false")


_INT = re.compile(r"[+-]?[0-9]+")


def _int(text: str) -> int:
    """An integer of ``_INT``'s form; one of more than 20 digits (out of any range here, and past
    what ``int`` converts beyond 4300) as +-10**20."""
    digits = text.lstrip("+-").lstrip("0")
    return int(text) if len(digits) <= 20 else (-1 if text.startswith("-") else 1) * 10**20


def _seeds(value: str) -> list[int]:
    """``seeds=``: a count (``3`` -> 0, 1, 2) or a list of distinct seeds (``0,4,7`` or ``[0,4,7]``)."""
    text = value.strip()
    bracketed = text.startswith("[") and text.endswith("]")
    items = [s.strip() for s in (text[1:-1] if bracketed else text).split(",")]
    forms = "a count (seeds=3 -> 0,1,2) or a list of distinct seeds (seeds=0,4,7 or seeds=[0,4,7]; one seed: seeds=[5])"
    if bracketed and items == [""]:
        raise UsageError(f"seeds={value!r} lists no seed; give {forms}")
    if not all(_INT.fullmatch(s) for s in items):
        raise UsageError(f"seeds={value!r} must be {forms}")
    numbers = [_int(s) for s in items]
    if not bracketed and len(numbers) == 1:  # a count
        count = numbers[0]
        if count < 1:
            raise UsageError(f"seeds={value!r} asks for no seeds; give a count >= 1 or a list (seeds=[0])")
        if count > MAX_SEED_COUNT:
            raise UsageError(f"seeds={value!r} asks for more than {MAX_SEED_COUNT} seeds")
        return list(range(count))
    if len(numbers) > MAX_SEED_COUNT:
        raise UsageError(f"seeds= lists {len(numbers)} seeds, more than {MAX_SEED_COUNT}")
    for item, seed in zip(items, numbers):
        if not 0 <= seed <= MAX_SEED:
            raise UsageError(f"seeds={value!r}: seed {item} is not in [0, {MAX_SEED}]")
    repeated = sorted({seed for seed in numbers if numbers.count(seed) > 1})
    if repeated:
        raise UsageError(f"seeds={value!r} repeats seed {', '.join(map(str, repeated))}; give distinct seeds")
    return numbers


def seeds_argument(seeds: list[int]) -> str:
    """The ``seeds=`` value that asks for ``seeds`` (:func:`_seeds` reads it back).

    >>> seeds_argument([0, 1, 2]), seeds_argument([0, 4, 7]), seeds_argument([5])
    ('3', '0,4,7', '[5]')
    """
    if seeds == list(range(len(seeds))):
        return str(len(seeds))
    return ",".join(map(str, seeds)) if len(seeds) > 1 else f"[{seeds[0]}]"


def parse_args(argv: list[str]) -> Options:
    """Splits ``key=value`` arguments into this script's options and Hydra overrides."""
    own: dict[str, str] = {}
    overrides: list[str] = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            raise UsageError(f"argument {arg!r} is not key=value; see python scripts/{Path(__file__).name} --help")
        if key in OWN_KEYS:
            if key in own:
                raise UsageError(f"{key}= is given twice ({key}={own[key]!r} and {key}={value!r}); give it once")
            own[key] = value
        elif key.lstrip("+~") in OWN_KEYS:
            raise UsageError(f"{key} is one of reproduce.py's own keys, not a training override; write "
                             f"{key.lstrip('+~')}=<value>")
        elif key.lstrip("+~") in SET_HERE or key.lstrip("+~").startswith(("hydra/", "hydra.")):
            raise UsageError(f"{key} is set by this script; use seeds=N (and jobs=, batched=, out=) instead")
        elif key.lstrip("+~") == "resume" and value not in ("", "null"):
            raise UsageError(f"resume={value}: reproduce.py resumes the unfinished runs of out= itself: rerun the "
                             f"same reproduce.py command (to continue one run on its own: python train.py "
                             f"resume={value})")
        elif key.lstrip("+~") == "logger" and value == "none":
            raise UsageError("logger=none writes no metrics.csv, which the report reads from every run (and a "
                             "finished run would be taken for an unfinished one); drop it (csv is the default)")
        else:
            overrides.append(arg)
    if "summary" in own:
        raise UsageError(f"summary= takes no other argument (python scripts/{Path(__file__).name} summary=DIR); "
                         f"drop summary= to train or aggregate")
    valid = available_experiments()
    name = own.get("experiment")
    if name is None:
        raise UsageError(f"experiment= is required (python scripts/reproduce.py experiment=<name> seeds=3); "
                         f"available: {valid}")
    if name not in valid:
        raise UsageError(f"experiment={name!r} is not in conf/experiment/; available: {valid}")
    seeds = _seeds(own.get("seeds", "3"))
    jobs = own.get("jobs", str(min(len(seeds), os.cpu_count() or 1)))
    if not re.fullmatch(r"[0-9]+", jobs) or int(jobs) < 1:
        raise UsageError(f"jobs={jobs!r} must be an integer >= 1")
    if "out" in own and not own["out"].strip():
        raise UsageError(f"out= is empty; give a directory, or drop out= for the default (outputs/reproduce/{name})")
    out = Path(own.get("out") or Path("outputs") / "reproduce" / name).resolve()  # (as train.py's outputs/: here)
    return Options(name, seeds, int(jobs), out, _bool("aggregate_only", own.get("aggregate_only", "false")), overrides,
                   _bool("batched", own.get("batched", "true")), seeds_given="seeds" in own, jobs_given="jobs" in own)


def check_out(out: Path) -> None:
    """Refuses an ``out=`` that holds files but is not an earlier reproduction's (none of
    :data:`OUT_MARKS`): a training run's directory, an evaluation's, the working directory. A new or
    empty one is fine, and so is an earlier ``out=`` (a rerun continues it)."""
    shown = foreign_contents(out, OUT_MARKS)
    if shown is not None:
        raise UsageError(f"out={str(out)!r} is not empty ({shown}) and is not an output of reproduce.py (no "
                         f"{', '.join(OUT_MARKS)}); give a new or empty directory, or the out= of an earlier "
                         "reproduction to continue it")
    try:  # a new one not among a training run's files
        check_outside_run_files(out, None, "a reproduction", shown=f"out={str(out)!r}")
    except ConfigError as err:
        raise UsageError(str(err)) from None


def trained_seeds(options: Options) -> list[int]:
    """The seeds ``aggregate_only=true`` reports without ``seeds=``: those the last training request
    of ``out`` asked for (``request.json``), else every seed with a run in ``<out>/runs``."""
    seeds = saved_request(options.out).get("seeds")
    if isinstance(seeds, list) and seeds and all(isinstance(seed, int) for seed in seeds):
        return [int(seed) for seed in seeds]
    return sorted(find_runs(options.out / "runs")) or options.seeds


def saved_request(out: Path) -> dict[str, Any]:
    """What the last training into ``out`` recorded in ``request.json`` (``{}`` when none did); one
    that cannot be read is a :class:`UsageError`."""
    request = out / REQUEST_FILE
    if not request.is_file():
        return {}
    try:
        saved = json.loads(request.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"{request} cannot be read ({str(err).splitlines()[0]}); remove it (it records the seeds "
                         f"and overrides of the last training) or give another out=") from None
    if not isinstance(saved, dict):
        raise UsageError(f"{request} is not a reproduce.py request (not a JSON object); remove it or give another "
                         f"out=")
    return saved


# -- configs -------------------------------------------------------------------------------------
def compose(options: Options) -> dict[str, Any]:
    """The resolved config every run of ``options`` should have (seed 0), validated like train.py."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    from rlkit.builders import resolved_container, validate_config
    from rlkit.config_schema import ConfigError

    problem = override_problem(options.experiment, options.overrides)
    if problem is not None:
        raise ConfigError(problem)
    try:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = hydra_compose("config", overrides=[f"experiment={options.experiment}", *options.overrides])
        validate_config(cfg)
    except (HydraException, ConfigError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"invalid overrides {options.overrides}: {first}") from None
    return resolved_container(cfg)


def override_problem(experiment: str, overrides: list[str]) -> str | None:
    """What train.py would refuse in ``overrides`` (:func:`rlkit.cli.command_line_problem`: a group
    choice that is not a file, with the valid choices; an unknown key, with a did-you-mean), as one
    line; an unknown top-level key also names this script's keys, and the one it resembles
    (``sedes=3``: did you mean seeds?). None when nothing is found."""
    problem = command_line_problem([f"experiment={experiment}", *overrides], ROOT / "conf")
    if problem is None:
        return None
    for arg in overrides:
        key = arg.partition("=")[0].lstrip("+~")
        head = f"unknown key {key}"
        if "." in key or not problem.startswith((f"{head} ", f"{head};")):
            continue
        close = difflib.get_close_matches(key, OWN_KEYS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else problem[len(head):].partition(";")[0]
        training = problem.partition("; valid keys: ")[2]
        return f"{head}{hint}; reproduce.py's keys: {list(OWN_KEYS)}" + (
            f", and the training config's: {training}" if training else "")
    return problem


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return {k.rstrip("."): v for k, v in flat.items()}


def config_differences(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Keys (dotted) whose values differ, ignoring those that do not change results."""
    a, b = _flatten(expected), _flatten(actual)
    return sorted(k for k in a.keys() | b.keys() if k not in IGNORED_KEYS and a.get(k) != b.get(k))


# -- run directories -----------------------------------------------------------------------------
def find_runs(runs_dir: Path) -> dict[int, Path]:
    """Seed -> run directory of every run under ``runs_dir`` (a run dir holds ``config.yaml``)."""
    import yaml

    found: dict[int, Path] = {}
    for config in sorted([*runs_dir.glob("*/config.yaml"), *runs_dir.glob("*/seed_*/config.yaml")]):
        try:
            saved = yaml.safe_load(config.read_text())
            num_seeds, seed = int(saved.get("num_seeds", 1)), int(saved["seed"])
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError) as err:
            raise UsageError(f"{config} is not a run's config ({type(err).__name__}: "
                             f"{(str(err).strip() or '-').splitlines()[0]}); remove that run or give another "
                             f"out=") from None
        if num_seeds > 1:  # a multi-seed run: its seeds are its seed_<k> directories
            continue
        if seed in found:
            raise UsageError(f"two runs with seed {seed} in {runs_dir}: {found[seed].name} and {config.parent.name}; "
                             f"remove one")
        found[seed] = config.parent
    return found


def plan(options: Options, expected: dict[str, Any]) -> tuple[list[int], list[Path], list[int]]:
    """Seeds to train, incomplete runs to resume, and the seeds whose run has ended (complete, or a
    seed of a multi-seed run dropped for non-finite values: a resume leaves it as it is, so its run is
    resumed only for another seed that is unfinished). Every existing run of ``options.seeds`` is
    checked first (no process may hold it, and its config must match ``expected``: else a
    :class:`UsageError`, with nothing moved); then runs that died before their first checkpoint are
    moved to ``<out>/stale``."""
    import yaml

    train, resume, done = [], [], []
    for lock in sorted((options.out / "runs").glob(f"*/{LOCK_NAME}")):  # (started runs, and runs still starting)
        holder = lock_holder(lock.parent)
        if holder is not None:
            raise UsageError(f"{lock.parent} is in use by {holder}: its training still runs (a train.py of an earlier "
                             "reproduce.py that was killed goes on); wait for it to end, or stop it, then rerun")
    runs = find_runs(options.out / "runs")
    loaded = {}
    for seed in options.seeds:
        path = runs.get(seed)
        if path is None:
            continue
        diff = config_differences(expected, yaml.safe_load((path / "config.yaml").read_text()))
        if diff:
            raise UsageError(f"{path} was trained with a different config (differs at {diff}); rerun with the "
                             f"overrides it was trained with, use another out=, or remove that run")
        loaded[seed] = load_run(path)
    for seed in options.seeds:
        path = runs.get(seed)
        if path is None:
            train.append(seed)
            continue
        run = loaded[seed]
        if run.ended:
            done.append(seed)
        elif (path / "checkpoints" / "last.pt").is_file():
            resume.append(path)
        elif (path.parent / "checkpoints" / "last.pt").is_file():  # a seed of a multi-seed run
            if path.parent not in resume:
                resume.append(path.parent)
        else:  # died before its first checkpoint: keep it aside, start again
            stale = options.out / "stale" / f"{path.name}-{int(time.time())}"
            stale.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), stale)
            print(f"moved the unfinished run {path.name} (no checkpoint) to {stale}", file=sys.stderr)
            train.append(seed)
    return train, resume, done


def dropped_seeds(options: Options, seeds: list[int]) -> list[int]:
    """Those of ``seeds`` whose run in ``options.out`` is a seed of a multi-seed run dropped for
    non-finite values (its ``end.json``, which :func:`plan` has read)."""
    runs = find_runs(options.out / "runs")
    return [seed for seed in seeds
            if seed in runs and (report.read_seed_end(runs[seed]) or {}).get("status") == "dropped"]


def train_commands(options: Options, seeds: list[int], resume: list[Path]) -> list[list[str]]:
    """The ``train.py`` command lines: one per resumed run, then one per run of consecutive new seeds
    (batched) or one sweep over them; :func:`run_training` runs ``jobs`` of them at a time."""
    python, entry = sys.executable, str(ROOT / "train.py")
    commands = [[python, entry, resume_override(p), "trainer.progress=false"] for p in resume]
    if seeds and options.batched and len(seeds) > 1 and batchable(options):
        for first, count in batch_groups(seeds, options.jobs if options.jobs_given else 1):
            last = first + count - 1
            commands.append([python, entry, f"experiment={options.experiment}", f"seed={first}", f"num_seeds={count}",
                             f"hydra.run.dir='{options.out / 'runs' / f'seeds_{first}-{last}'}'",
                             "trainer.progress=false", *options.overrides])
    elif seeds:
        sweep = [python, entry, "-m", f"experiment={options.experiment}", f"seed={','.join(map(str, seeds))}",
                 f"hydra.sweep.dir='{options.out / 'runs'}'", "trainer.progress=false", *options.overrides]
        if options.jobs > 1 and len(seeds) > 1:
            sweep += ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={min(options.jobs, len(seeds))}"]
        commands.append(sweep)
    return commands


def consecutive(seeds: list[int]) -> list[tuple[int, int]]:
    """``seeds`` as runs of consecutive seeds: (first, count) each.

    >>> consecutive([0, 1, 2, 5, 6, 9])
    [(0, 3), (5, 2), (9, 1)]
    """
    groups: list[tuple[int, int]] = []
    for seed in sorted(seeds):
        if groups and groups[-1][0] + groups[-1][1] == seed:
            groups[-1] = (groups[-1][0], groups[-1][1] + 1)
        else:
            groups.append((seed, 1))
    return groups


def batch_groups(seeds: list[int], parts: int, most: int = MAX_NUM_SEEDS) -> list[tuple[int, int]]:
    """``seeds`` as at most ``parts`` processes of sizes as even as possible (more where the seeds are
    not consecutive: a process trains a run of consecutive seeds, and where a process would hold
    more than ``most`` seeds, train.py's ``num_seeds`` limit), (first, count) each.

    >>> batch_groups([0, 1, 2], 1), batch_groups([0, 1, 2], 2), batch_groups(list(range(10)), 2)
    ([(0, 3)], [(0, 2), (2, 1)], [(0, 5), (5, 5)])
    >>> batch_groups([0, 1, 2, 5, 6, 9], 1), batch_groups([3, 4], 5)
    ([(0, 3), (5, 2), (9, 1)], [(3, 1), (4, 1)])
    >>> batch_groups(list(range(2000)), 1)
    [(0, 1000), (1000, 1000)]
    """
    ordered = sorted(seeds)
    parts = max(1, min(max(parts, -(-len(ordered) // most)), len(ordered)))
    size, larger = divmod(len(ordered), parts)
    groups: list[tuple[int, int]] = []
    start = 0
    for part in range(parts):
        end = start + size + (part < larger)
        groups += consecutive(ordered[start:end])
        start = end
    return groups


def batchable(options: Options) -> bool:
    """Whether the experiment trains with ``num_seeds`` > 1 (its networks can be stacked): two
    seeds built in memory (nothing written)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from rlkit.errors import RlkitError
    from rlkit.run import preflight

    def config(num_seeds: int) -> Any:
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return hydra_compose("config", overrides=[f"experiment={options.experiment}", f"num_seeds={num_seeds}",
                                                      *options.overrides])

    try:
        preflight(config(2))
    except RlkitError as err:
        preflight(config(1))  # (what fails for one seed too, an env whose step fails, is refused as it is)
        print(f"reproduce.py: {options.experiment} trains one process per seed ({err})", file=sys.stderr)
        return False
    return True


def git_commit() -> str | None:
    """The checked-out commit of the rlkit repository (``-dirty`` with uncommitted changes to tracked
    files), or ``None`` outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        return commit + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return None


# -- progress ------------------------------------------------------------------------------------
def _fmt_time(seconds: float) -> str:
    minutes, secs = divmod(int(max(seconds, 0)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes:02d}:{secs:02d}"


def _seed_progress(options: Options, total_frames: int) -> list[tuple[int, Path | None, int, float | None]]:
    """``(seed, run dir, frames, latest training return)`` of every seed, from the runs' metrics."""
    runs = find_runs(options.out / "runs") if (options.out / "runs").is_dir() else {}
    out = []
    for seed in options.seeds:
        path = runs.get(seed)
        rows = read_metrics_csv(path) if path is not None and (path / "metrics.csv").is_file() else []
        returns = [r["episode_return"] for r in rows if "episode_return" in r]
        out.append((seed, path, min(int(rows[-1]["step"]) if rows else 0, total_frames), returns[-1] if returns else None))
    return out


def frames_done(options: Options, total_frames: int) -> int:
    """Frames the seeds' runs have trained so far, by their metrics."""
    return sum(frames for _, _, frames, _ in _seed_progress(options, total_frames))


#: Above this many seeds the progress line counts them (done, training, queued) instead of listing each.
PROGRESS_SEEDS_SHOWN = 12


class Progress:
    """The progress line of one invocation: frames and latest return of every seed, overall %, elapsed
    time and ETA. The ETA extrapolates the frames trained since this invocation started, not the
    frames resumed runs had trained before. A resumed run first cuts its metrics back to its
    checkpoint and trains that stretch again, so the baseline follows the lowest total seen."""

    def __init__(self, options: Options, total_frames: int) -> None:
        self.options, self.total_frames = options, total_frames
        self.started = time.monotonic()
        self.baseline = frames_done(options, total_frames)

    def line(self) -> str:
        progress = _seed_progress(self.options, self.total_frames)
        done = sum(frames for _, _, frames, _ in progress)
        if len(progress) > PROGRESS_SEEDS_SHOWN:  # (a part per seed would fill the terminal): counts instead
            finished = sum(1 for _, path, frames, _ in progress if path is not None and frames >= self.total_frames)
            queued = sum(1 for _, path, _, _ in progress if path is None)
            parts = [f"{len(progress)} seeds: {finished} done, {len(progress) - finished - queued} training, "
                     f"{queued} queued"]
        else:
            parts = [f"s{seed} {100 * frames / self.total_frames:3.0f}%" + (f" ret {ret:.4g}" if ret is not None else "")
                     if path else f"s{seed} queued" for seed, path, frames, ret in progress]
        self.baseline = min(self.baseline, done)
        total = self.total_frames * len(self.options.seeds)
        elapsed = time.monotonic() - self.started
        new = done - self.baseline
        eta = _fmt_time(elapsed * (total - done) / new) if new > 0 else "--:--"
        return (f"[{self.options.experiment}] {100 * done / total:5.1f}% | " + " | ".join(parts)
                + f" | {_fmt_time(elapsed)}<{eta}")


def slots(command: list[str]) -> int:
    """The cores ``command`` takes: a joblib sweep's ``n_jobs``, else 1."""
    for arg in command:
        if arg.startswith("hydra.launcher.n_jobs="):
            return int(arg.split("=", 1)[1])
    return 1


def run_training(options: Options, commands: list[list[str]], total_frames: int, interval: float = 2.0) -> None:
    """Runs ``commands`` up to ``options.jobs`` at a time (a sweep takes its ``n_jobs``), printing
    progress; their output goes to ``<out>/train.log``. A failed command stops new ones from
    starting; those running end first (their checkpoints stay), then the failure is reported with
    the log's tail. Each command runs in a session (and process group) of its own, so that a signal
    reaches it, and the processes it starts (a joblib sweep's workers), from this function only:
    Ctrl-C (SIGINT), SIGTERM or a hangup (SIGHUP) passes the signal on to the commands running (a
    hangup as SIGTERM, on which train.py checkpoints), waits for all their processes to end
    (:func:`stop_commands`) and raises :class:`Interrupted`; any other error here stops them with
    SIGTERM before it propagates."""
    options.out.mkdir(parents=True, exist_ok=True)
    log_path = options.out / "train.log"
    tty = sys.stderr.isatty()
    progress = Progress(options, total_frames)
    last_plain = -1e9
    env = dict(os.environ, HYDRA_FULL_ERROR="1")
    pending: list[list[str]] = list(commands)
    running: list[tuple[list[str], subprocess.Popen]] = []
    failed: tuple[list[str], int] | None = None
    starting = False  # while a command starts, a signal waits until it is in ``running`` (so passed on)
    deferred: list[int] = []

    def on_stop(signum: int, frame: Any) -> None:  # noqa: ARG001 (signal API)
        if starting:
            deferred.append(signum)
        else:
            raise Interrupted(signum)

    previous: dict[int, Any] = {}
    try:
        if threading.current_thread() is threading.main_thread():  # (only there can handlers be set)
            for signum in STOP_SIGNALS:
                handler = signal.getsignal(signum)
                if handler is not signal.SIG_IGN:  # (nohup, a background job of a script: left ignored)
                    previous[signum] = handler
                    signal.signal(signum, on_stop)
        with log_path.open("a", encoding="utf-8") as log:
            while running or (pending and failed is None):
                while pending and failed is None and (
                        not running or sum(slots(c) for c, _ in running) + slots(pending[0]) <= options.jobs):
                    command = pending.pop(0)
                    log.write(f"$ {shlex.join(command)}\n")
                    log.flush()
                    starting = True
                    try:
                        running.append((command, subprocess.Popen(command, cwd=ROOT, stdout=log,
                                                                  stderr=subprocess.STDOUT, env=env,
                                                                  start_new_session=True)))
                    finally:
                        starting = False
                    if deferred:
                        raise Interrupted(deferred[0])
                time.sleep(interval)
                for command, proc in [r for r in running if r[1].poll() is not None]:
                    running.remove((command, proc))
                    if proc.returncode != 0 and failed is None:
                        failed = (command, proc.returncode)
                now = time.monotonic()
                if tty:
                    print("\r\033[K" + progress.line(), end="", file=sys.stderr)
                elif now - last_plain >= 15 * interval:  # plain lines every ~30 s in logs
                    print(progress.line(), file=sys.stderr, flush=True)
                    last_plain = now
    except (KeyboardInterrupt, Interrupted) as stop:
        signum = stop.signum if isinstance(stop, Interrupted) else int(signal.SIGINT)
        stop_commands(running, signum, options.out / "runs")
        raise Interrupted(signum) from None
    except Exception:  # (this script failed: nothing else would stop the runs, in their own sessions)
        stop_commands(running, signal.SIGTERM, options.out / "runs")
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if failed is not None:
        tail = "".join(log_path.read_text(encoding="utf-8").splitlines(keepends=True)[-25:])
        raise SystemExit(f"\ntraining failed (exit {failed[1]}): {shlex.join(failed[0])}\n"
                         f"last lines of {log_path}:\n{tail}")
    print(("\r\033[K" if tty else "") + progress.line(), file=sys.stderr)


def stop_commands(running: list[tuple[list[str], subprocess.Popen]], signum: int,
                  runs: Path | None = None) -> None:
    """Passes ``signum`` (SIGTERM for SIGHUP) on to the process groups of the commands still running
    (each one's session, see :func:`run_training`: the command and the processes it started, such as
    a joblib sweep's workers) and waits until all their processes have ended (:func:`_wait_groups`):
    train.py writes a checkpoint and exits. A second signal meanwhile kills the groups (their last
    periodic checkpoints stay)."""
    procs = [proc for _, proc in running]
    forwarded = signal.SIGTERM if signum == getattr(signal, "SIGHUP", None) else signum
    try:
        for proc in procs:
            _signal_group(proc.pid, forwarded, proc)
        _wait_groups(procs, runs)
    except (KeyboardInterrupt, Interrupted):
        for proc in procs:
            _signal_group(proc.pid, None, proc)
        _wait_groups(procs, None)


#: Seconds the processes left in a command's group, once no run is held, have to end on SIGTERM
#: before they are killed.
LEFT_GRACE_S = 10.0


def _wait_groups(procs: list[subprocess.Popen], runs: Path | None, poll: float = 0.1) -> None:
    """Waits for ``procs``, then for the rest of their process groups: the processes they started,
    orphans once their command has ended. Such an orphan outlives its run when it is a joblib worker
    (it waits 5 minutes for more work from the sweep's process, which ended on the signal): so, once
    no run under ``runs`` is held any more (:func:`_runs_held`: none trains or writes its checkpoint),
    what is left of the groups is sent SIGTERM, and SIGKILL :data:`LEFT_GRACE_S` seconds later."""
    for proc in procs:
        proc.wait()
    if not hasattr(os, "killpg"):
        return
    ending: float | None = None  # (when the rest was sent SIGTERM)
    while left := [proc.pid for proc in procs if _group_running(proc.pid)]:
        if runs is not None and ending is None and not _runs_held(runs):
            ending = time.monotonic()
            for pgid in left:
                _signal_group(pgid, signal.SIGTERM)
        elif ending is not None and time.monotonic() - ending > LEFT_GRACE_S:
            for pgid in left:
                _signal_group(pgid, None)
            ending = float("inf")  # (once)
        time.sleep(poll)


def _runs_held(runs: Path) -> bool:
    """Whether a run under ``runs`` is held (locked, :func:`rlkit.rundir.lock_holder`): a process
    still trains it or writes its checkpoint. One that cannot be checked counts as held."""
    try:
        return any(lock_holder(lock.parent) for lock in runs.rglob(LOCK_NAME))
    except OSError:
        return True


def _signal_group(pgid: int, signum: int | None, proc: subprocess.Popen | None = None) -> None:
    """Sends ``signum`` (``None``: SIGKILL) to the process group ``pgid`` (a command's pid: it leads
    the group of its session), if any of it is left; where there are no process groups (Windows),
    to the command ``proc``."""
    if hasattr(os, "killpg"):
        try:
            os.killpg(pgid, signal.SIGKILL if signum is None else signum)
        except (ProcessLookupError, PermissionError):  # (the group has ended; macOS: only zombies are left)
            pass
    elif proc is not None and proc.poll() is None:
        if signum is None:
            proc.kill()
        else:
            proc.send_signal(signum)


def _group_running(pgid: int) -> bool:
    """Whether a process of the group ``pgid`` is left; zombies do not count (an orphan's, until an
    init that reaps late, or never, reaps it)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:  # (no /proc: the group exists)
        return True
    for pid in entries:
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
                state, _ppid, pgrp = f.read().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):  # (ended meanwhile)
            continue
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


# -- aggregation ---------------------------------------------------------------------------------
def env_name(env: dict[str, Any]) -> str:
    """The env id a run plays: ``env.id``, or the id its suite makes of ``env.game`` (``ALE/Breakout-v5``)."""
    from rlkit.envs.suites import get_suite

    return get_suite(env.get("suite", "gym")).resolve(env.get("id"), env.get("game"), env.get("options") or {}).env_id


def load_run(path: Path) -> report.Run:
    """:func:`reproduce_report.load_run`, a run it cannot read a :class:`UsageError` (it exits with
    the line)."""
    try:
        return report.load_run(path)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            raise UsageError(stop.code.strip().splitlines()[0]) from None
        raise


def load_runs(options: Options) -> list[report.Run]:
    """The runs of ``options.seeds``, in that order; a seed without a run is a :class:`UsageError`."""
    runs_by_seed = find_runs(options.out / "runs")
    missing = [s for s in options.seeds if s not in runs_by_seed]
    if missing:
        raise UsageError(f"no run for seeds {missing} in {options.out / 'runs'}; run without aggregate_only=true")
    return [load_run(runs_by_seed[s]) for s in options.seeds]


def aggregate(options: Options, expected: dict[str, Any], runs: list[report.Run] | None = None) -> dict[str, Any]:
    """Writes results.md, summary.json and the learning-curve PNG from the runs of ``options.seeds``
    (``runs``: those already loaded, :func:`load_runs`)."""
    runs = load_runs(options) if runs is None else runs
    incomplete = [f"seed {r.seed} ({r.frames}/{r.total_frames} frames)" for r in runs if not r.ended]
    if incomplete:
        print(f"warning: incomplete runs aggregated as they are: {incomplete}", file=sys.stderr)
    dropped = [f"seed {r.seed} (at {r.frames_reached:,} frames)" for r in runs if r.dropped]
    if dropped:
        print(f"warning: seeds dropped for non-finite values, left out of the aggregates: {dropped}", file=sys.stderr)
    summary = report.summarize(options.experiment, runs, PUBLISHED.get(options.experiment), env_name(expected["env"]),
                               eval_epsilon=float((expected.get("trainer") or {}).get("eval_epsilon") or 0.0))
    request = saved_request(options.out)
    commits = request_commits(request, sorted(find_runs(options.out / "runs")))
    summary["commits"] = {str(s): commits.get(str(s), []) for s in options.seeds}
    others = sorted(set(find_runs(options.out / "runs")) - set(options.seeds))
    if others:
        summary["left_out_seeds"] = others
        print(f"warning: {options.out} also holds runs of seeds {others}, which this report "
              f"(seeds={seeds_argument(options.seeds)}) leaves out; leave seeds= out to report every seed trained",
              file=sys.stderr)
    figure = options.out / f"{options.experiment}.png"
    report.plot(summary, runs, figure)
    overrides, batched, jobs = options.overrides, options.batched, options.jobs if options.jobs_given else None
    saved = request.get("overrides")
    if options.aggregate_only and not overrides and isinstance(saved, list):
        overrides = [str(o) for o in saved]  # the overrides the runs were trained with
        batched = request.get("batched", batched) is not False
        jobs = request.get("jobs") if isinstance(request.get("jobs"), int) else None
    how = ([] if batched else ["batched=false"]) + ([f"jobs={jobs}"] if batched and jobs else [])
    command = shlex.join(["python", "scripts/reproduce.py", f"experiment={options.experiment}",
                          f"seeds={seeds_argument(options.seeds)}", *how, f"out={options.out}", *overrides])
    report.write_markdown(summary, options.out / "results.md", command=command, figure=figure.name)
    report.write_json(summary, options.out / "summary.json")
    return summary


def request_commits(request: dict[str, Any], trained: list[int] | None = None) -> dict[str, list[str]]:
    """The rlkit commits each seed of ``request.json`` was trained with, in order (a resumed seed may
    have several); a request written before they were kept per seed gives its one ``commit`` to the
    seeds it asked for, or, written before it named them, to the seeds ``trained`` (those with runs).

    >>> request_commits({"commits": {"0": ["abc"], "1": ["abc", "def"]}})
    {'0': ['abc'], '1': ['abc', 'def']}
    >>> request_commits({"seeds": [0, 1], "commit": "abc"}), request_commits({"commit": "abc"}, [2]), request_commits({})
    ({'0': ['abc'], '1': ['abc']}, {'2': ['abc']}, {})
    """
    commits = request.get("commits")
    if isinstance(commits, dict):
        return {str(seed): [str(c) for c in listed] for seed, listed in commits.items() if isinstance(listed, list)}
    commit, seeds = request.get("commit"), request.get("seeds")
    if not isinstance(seeds, list):
        seeds = trained or []
    return {str(seed): [str(commit)] for seed in seeds} if commit else {}


def training_request(options: Options, trained: list[int], previous: dict[str, Any]) -> dict[str, Any]:
    """``request.json`` for a training of ``trained`` seeds (new or resumed) under ``options``: the
    seeds and overrides asked for, how they train, and each seed's commits (``previous`` ones kept,
    this checkout's appended to the seeds it trains)."""
    commit = git_commit() or "unknown"
    commits = request_commits(previous, sorted(find_runs(options.out / "runs")))
    for seed in trained:
        listed = commits.setdefault(str(seed), [])
        if not listed or listed[-1] != commit:
            listed.append(commit)
    return {"experiment": options.experiment, "seeds": options.seeds, "overrides": options.overrides,
            "batched": options.batched, "jobs": options.jobs if options.jobs_given else None,
            "commit": commit, "commits": commits}


def interrupted(what: str, signum: int = signal.SIGINT) -> NoReturn:
    """Ends the script on Ctrl-C (or SIGTERM) with one line and status 128 + the signal number, as
    train.py's and export.py's (:func:`rlkit.cli.tasks._interrupted`) instead of a traceback."""
    lead = "\n" if sys.stderr.isatty() else ""  # (after the progress line and the terminal's ^C)
    print(f"{lead}reproduce.py interrupted; {what}", file=sys.stderr)
    raise SystemExit(128 + signum)


def summary_table(argv: list[str]) -> int:
    """``summary=DIR``: one table of every reproduction under ``DIR``."""
    root = argv[0].partition("=")[2]
    if not root.strip():
        refuse("summary= is empty; give the directory to look for reproductions (summary.json) under")
    collected = report.collect(root)
    if not collected.summaries:
        refuse(f"no summary.json under {root} (not a reproduce.py output); to compare the runs of a sweep or any "
               f"run directories: python scripts/compare.py {root}")
    print(collected.table())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(arg in HELP for arg in argv):
        print(usage())
        return 0
    if len(argv) == 1 and argv[0].startswith("summary="):
        return summary_table(argv)
    kept = "nothing was written"  # what an interrupt leaves, stage by stage
    try:
        try:  # (refused in one line, exit status 2, before anything is written: as train.py refuses)
            options = parse_args(argv)
            expected = compose(options)
            check_out(options.out)
            runs = None
            if options.aggregate_only:
                saved_request(options.out)  # (readable: the report takes the overrides it records)
                if not options.seeds_given:
                    options.seeds = trained_seeds(options)
                runs = load_runs(options)
            else:
                check_creatable(options.out, "out=")
                train, resume, done = plan(options, expected)  # (refusals first; then it moves stale runs)
                # (before request.json: an experiment whose env cannot step is refused here, see batchable)
                commands = train_commands(options, train, resume) if train or resume else []
        except (UsageError, RlkitError) as err:
            refuse(err)
        if not options.aggregate_only:
            if done:
                dropped = dropped_seeds(options, done)
                complete = [seed for seed in done if seed not in dropped]
                if complete:
                    print(f"seeds {complete}: complete runs found, not retrained", file=sys.stderr)
                if dropped:
                    print(f"seeds {dropped}: dropped for non-finite values (trainer.drop_non_finite_seeds), not "
                          "retrained", file=sys.stderr)
            if train or resume:
                options.out.mkdir(parents=True, exist_ok=True)
                trained = [seed for seed in options.seeds if seed not in done]
                request = training_request(options, trained, saved_request(options.out))
                with atomic_write(options.out / REQUEST_FILE) as f:
                    f.write(json.dumps(request, indent=2) + "\n")
                kept = (f"the runs in {options.out / 'runs'} were stopped; rerun the same command to resume them from "
                        f"their checkpoints (complete runs are not retrained)")
                run_training(options, commands, int(expected["total_frames"]))
        kept = "the runs are kept; rerun the same command to write the report (complete runs are not retrained)"
        summary = aggregate(options, expected, runs)
    except KeyboardInterrupt:
        interrupted(kept)
    except Interrupted as stop:
        interrupted(kept, stop.signum)
    except UsageError as err:  # (found only after the training: a run it wrote cannot be read back)
        refuse(err)
    print("\n".join(report.TABLE_HEADER + report.summary_rows(summary)))
    print(f"\nwrote {options.out / 'results.md'} and {options.out / (options.experiment + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
