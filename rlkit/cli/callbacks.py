"""The Hydra callbacks of ``train.py``, ``evaluate.py`` and ``export.py`` (``hydra.callbacks`` in their
configs). :class:`ConfigCheck` refuses a bad start before its run directory exists (every job of a grid
sweep before the first one trains; for ``hydra/launcher=ray``, it gives ``ray.init`` the sweep's swept
keys) and notes the sweep it starts, whose failed jobs :func:`sweep_exit_status` reports at its end;
:class:`NoSweepDir` removes the sweep directory of ``evaluate.py -m`` and ``export.py -m`` (having read
their failed jobs' notes). :func:`note_failed_job` lets a sweep's other jobs go on past a failed one."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from rlkit.builders import validate_config
from rlkit.cli.base import describe, refuse
from rlkit.cli.naming import SWEPT_KEYS_ENV, job_label, swept_keys, swept_overrides
from rlkit.cli.preflight import check
from rlkit.errors import RlkitError, RunDirBusyError, RunDirError
from rlkit.rundir import check_fresh_run_dir, check_outside_run_files, lock_holder
from rlkit.run import CONFIG_FILE, run_dir_of
from rlkit.trainers.checkpoint import find_checkpoint


class NoSweepDir(Callback):
    """Hydra callback of ``evaluate.py`` and ``export.py`` (``hydra.callbacks`` in their configs): a
    sweep (``-m run=a,b``) writes into the runs, so the sweep directory Hydra makes (its
    ``multirun.yaml`` and an empty folder per job) is removed when the sweep ends, with the folders
    above it that it leaves empty (``multirun/<date>/``), up to the working directory. Anything else
    found there stays.

    Examples:
        >>> import os, tempfile
        >>> from pathlib import Path
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli import NoSweepDir
        >>> here = Path(tempfile.mkdtemp()); sweep = here / "multirun" / "2026-12-07" / "10-00-00"
        >>> (sweep / "0").mkdir(parents=True); _ = (sweep / "multirun.yaml").write_text("{}")
        >>> old = os.getcwd(); os.chdir(here)
        >>> NoSweepDir().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": "multirun/2026-12-07/10-00-00"}}}))
        >>> os.chdir(old); sorted(p.name for p in here.iterdir())
        []
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global _SWEEP_DIR, _SWEEP_FAILED
        sweep_dir = OmegaConf.select(config, "hydra.sweep.dir")
        if sweep_dir:
            _SWEEP_DIR, _SWEEP_FAILED = Path(str(sweep_dir)).absolute(), None
            shutil.rmtree(_SWEEP_DIR / FAILED_JOBS_DIR, ignore_errors=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        global _SWEEP_FAILED
        sweep_dir = OmegaConf.select(config, "hydra.sweep.dir")
        if not sweep_dir:
            return
        sweep = Path(str(sweep_dir)).absolute()
        _SWEEP_FAILED = _failed_job_notes(sweep)  # (read for sweep_exit_status, then removed with the folder)
        shutil.rmtree(sweep / FAILED_JOBS_DIR, ignore_errors=True)
        (sweep / "multirun.yaml").unlink(missing_ok=True)
        if sweep.is_dir():
            for job in sweep.iterdir():
                if job.is_dir() and not any(job.iterdir()):
                    job.rmdir()
        here = Path.cwd().absolute()
        folder = sweep
        while folder != here and here in folder.parents and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


#: Where the jobs of a sweep (``-m``) that failed leave a note (one file per job number), in its sweep
#: directory: the jobs may run in other processes (parallel launchers).
FAILED_JOBS_DIR = ".rlkit_failed_jobs"
_SWEEP_DIR: Path | None = None  # this process's sweep (set when it starts one)
#: The failed jobs' notes of a sweep whose directory :class:`NoSweepDir` removed (read before).
_SWEEP_FAILED: list[tuple[str, str]] | None = None


def _failed_job_notes(sweep: Path) -> list[tuple[str, str]]:
    """(job number, note) of every job of the sweep in ``sweep`` that failed, in job order."""
    failed = sweep / FAILED_JOBS_DIR
    notes = sorted((p for p in failed.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)) \
        if failed.is_dir() else []
    return [(note.name, note.read_text().strip()) for note in notes]


class ConfigCheck(Callback):
    """Hydra callback (``hydra.callbacks`` in ``conf/config.yaml``): refuses a bad start before Hydra
    creates the run directory (``on_run_start`` runs before it, also when ``hydra.run.dir`` is given).

    A new run: the directory must be new or empty and not held by another process, and
    :func:`rlkit.run.preflight` must pass (config, env, networks, replay memory). A resume: no other
    output directory, a checkpoint to resume from, a run directory no other process holds; the
    checkpoint itself is verified by :func:`rlkit.run.run` before anything changes.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli import ConfigCheck
        >>> ConfigCheck().on_run_start(OmegaConf.create({"seed": -1}))
        Traceback (most recent call last):
        SystemExit: 2
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("resume") and str(config.resume).strip():  # (a blank resume= is refused by check)
            self._check_resume(config)
            return
        run_dir = OmegaConf.select(config, "hydra.run.dir")
        try:
            if run_dir is not None:
                if not str(run_dir).strip():
                    raise RunDirError("hydra.run.dir is empty; give a directory for the run, or leave it unset")
                _check_not_held(Path(run_dir))
                check_fresh_run_dir(run_dir)
                check_outside_run_files(run_dir, None, "a new run", shown=f"hydra.run.dir={run_dir}")
        except RlkitError as err:
            refuse(err)
        check(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("resume"):
            refuse(f"resume={config.resume} continues one run; it cannot be swept (-m): resume each run on "
                   "its own")
        global _SWEEP_DIR, _SWEEP_FAILED
        _SWEEP_DIR, _SWEEP_FAILED = Path(str(OmegaConf.select(config, "hydra.sweep.dir"))).absolute(), None
        shutil.rmtree(_SWEEP_DIR / FAILED_JOBS_DIR, ignore_errors=True)  # (an earlier sweep's, into the same dir)
        shutil.rmtree(_SWEEP_DIR / STOPPED_JOBS_DIR, ignore_errors=True)
        overrides = OmegaConf.select(config, "hydra.overrides.task", default=[]) or []
        _check_sweep_jobs(config, [str(o) for o in overrides])
        os.environ[SWEPT_KEYS_ENV] = ",".join(swept_keys(list(overrides)))
        _prepare_ray_launcher(config, os.environ[SWEPT_KEYS_ENV])
        if OmegaConf.select(config, "hydra.launcher._target_", default=None) == JOBLIB_LAUNCHER:
            _stops_in_workers(_SWEEP_DIR)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        _end_stops_in_workers()

    @staticmethod
    def _check_resume(config: DictConfig) -> None:
        given = [o for o in OmegaConf.select(config, "hydra.overrides.hydra", default=[]) or []
                 if str(o).split("=", 1)[0].lstrip("+") == "hydra.run.dir"]
        try:
            if given:
                raise RunDirError(
                    f"resume={config.resume} continues in its own directory ({run_dir_of(config.resume)}); "
                    f"{given[0]} cannot be given with resume="
                )
            find_checkpoint(config.resume)
            run_dir = run_dir_of(config.resume)
            if not (run_dir / CONFIG_FILE).is_file():
                raise RunDirError(f"cannot resume: {run_dir / CONFIG_FILE} does not exist (is {run_dir} an rlkit "
                                  "run directory?)")
            _check_not_held(run_dir)
        except RlkitError as err:
            refuse(err)


_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _check_sweep_jobs(config: DictConfig, overrides: list[str]) -> None:
    """Validates every job of a grid sweep (Hydra's basic sweeper: its jobs are known in advance)
    before the first one trains: a bad value in the third job must not stop the sweep after the first
    two trained. (Each job's full :func:`rlkit.run.preflight`, which builds its env and networks,
    still runs before its directory is made.)"""
    if str(OmegaConf.select(config, "hydra.sweeper._target_", default="")) != _BASIC_SWEEPER:
        return
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = OverridesParser.create().parse_overrides(overrides=overrides)
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    config_name = str(OmegaConf.select(config, "hydra.job.config_name", default="config"))
    for num, job in enumerate(jobs):
        try:
            validate_config(compose(config_name=config_name, overrides=list(job)))
        except RlkitError as err:
            refuse(f"sweep job {num} ({' '.join(_swept_of(job, overrides))}): {describe(err)}; no job has run")


def _swept_of(job: Sequence[str], overrides: list[str]) -> list[str]:
    """The overrides of ``job`` that set a key the sweep varies."""
    keys = set(swept_keys(overrides))
    return [o for o in job if o.partition("=")[0].lstrip("+~") in keys] or list(job)


#: ``hydra/launcher=ray`` (hydra-ray-launcher).
RAY_LAUNCHER = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"


def _prepare_ray_launcher(config: DictConfig, swept: str) -> None:
    """``hydra/launcher=ray``: what its ``ray.init`` needs before the launcher is built from the config.

    - Jobs run in Ray workers, whose environment is the Ray node's, not this process's: the swept
      keys ``swept`` (:data:`SWEPT_KEYS_ENV`, the job directory names) go to them through
      ``runtime_env.env_vars`` (a ``runtime_env`` given on the command line is kept, the variable
      added).
    - hydra-ray-launcher 1.2 passes ``object_store_memory`` to ``ray.init`` by default, which Ray
      refuses when it joins a running cluster (``hydra.launcher.ray.init.address=auto``); unless
      given, it is left to the cluster there.

    Examples:
        >>> from omegaconf import OmegaConf
        >>> from rlkit.cli.callbacks import RAY_LAUNCHER, _prepare_ray_launcher
        >>> cfg = OmegaConf.create({"hydra": {"launcher": {"_target_": RAY_LAUNCHER,
        ...                                                "ray": {"init": {"address": "auto"}}}}})
        >>> _prepare_ray_launcher(cfg, "seed")
        >>> print(OmegaConf.to_yaml(cfg.hydra.launcher.ray.init), end="")
        address: auto
        runtime_env:
          env_vars:
            RLKIT_SWEPT_KEYS: seed
        object_store_memory: null
    """
    if OmegaConf.select(config, "hydra.launcher._target_", default=None) != RAY_LAUNCHER:
        return
    with read_write(config.hydra), open_dict(config.hydra):
        init = config.hydra.launcher.ray.init
        OmegaConf.update(init, f"runtime_env.env_vars.{SWEPT_KEYS_ENV}", swept, force_add=True)
        if init.get("address") is not None and "object_store_memory" not in init:
            init.object_store_memory = None


def _check_not_held(run_dir: Path) -> None:
    holder = lock_holder(run_dir) if run_dir.is_dir() else None
    if holder:
        raise RunDirBusyError(f"{run_dir} is in use by {holder}; one process writes a run at a time: wait for it "
                              "to end, or stop it and resume")


#: ``hydra/launcher=joblib`` (hydra-joblib-launcher): the sweep's jobs run in local worker processes.
JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
#: Set (``1``) by the main process of a joblib sweep for its workers: they take Ctrl-C while they run
#: a job, as a single run does, and hold it back between jobs (see :func:`_stops_in_workers`).
SWEEP_STOPS_ENV = "RLKIT_SWEEP_STOPS"
#: Where the jobs of a joblib sweep that Ctrl-C stopped (or kept from starting) leave a note, in its
#: sweep directory (one file per job number), and the signal's number (``signal``).
STOPPED_JOBS_DIR = ".rlkit_stopped_jobs"


def _mark_stopped(stopped: Path, signum: int) -> None:
    """Records in ``stopped`` (:data:`STOPPED_JOBS_DIR`) that the sweep was stopped by ``signum`` (the
    first signal recorded stays)."""
    stopped.mkdir(parents=True, exist_ok=True)
    if not (stopped / "signal").is_file():
        (stopped / "signal").write_text(f"{int(signum)}\n")


class _SweepStops:
    """The main process's side of :func:`_stops_in_workers`: a thread that takes this process's
    Ctrl-C (blocked in every other thread) and records the stop for the jobs."""

    def __init__(self, sweep_dir: Path) -> None:
        import threading

        self.sweep_dir = sweep_dir
        self.received: int | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="rlkit-sweep-stops", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.done.is_set():
            got = signal.sigtimedwait({signal.SIGINT}, 0.2)
            if got is not None and self.received is None:
                self.received = got.si_signo
                _mark_stopped(self.sweep_dir / STOPPED_JOBS_DIR, got.si_signo)
                print("\nrlkit: Ctrl-C: stopping the sweep; its running jobs write their checkpoints, the others "
                      "do not start", file=sys.stderr, flush=True)

    def end(self) -> None:
        self.done.set()
        self.thread.join()
        while signal.SIGINT in signal.sigpending():  # (one that came as the thread ended: the sweep is over)
            signal.sigtimedwait({signal.SIGINT}, 0)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


_STOPS: _SweepStops | None = None  # this process's joblib sweep's, while it runs


def _stops_in_workers(sweep_dir: Path) -> None:
    """Ctrl-C in a joblib sweep (a terminal's, or ``reproduce.py`` passing one on) reaches every
    process of the sweep. Its main process took it as a ``KeyboardInterrupt``, on which joblib kills
    its workers, and a worker writing its run's interrupt checkpoint died with it (the frames since
    its last periodic checkpoint lost, its ``end:`` line missing); a worker waiting for its next job
    died of it too, and joblib gave up on the sweep. So from here to the sweep's end Ctrl-C is blocked
    in this process (a blocked signal stays pending, and stays blocked in the processes it starts):
    a thread of its own takes it (:class:`_SweepStops`) and records the stop in the sweep directory;
    a worker unblocks it when its first job starts (:func:`sweep_takes_stops`), taking one that came
    while it started, and between jobs only records it (:func:`record_stops_between_jobs`): the run
    writes its checkpoint and the job ends, noting it (:func:`note_stopped_job`),
    and a job that starts after the stop does not train. The sweep then ends with status 130 and the
    list (:func:`sweep_exit_status`). A sweep started ignoring Ctrl-C (a shell's background job)
    ignores it everywhere, as a single run does; SIGTERM and SIGHUP are not held back (the main
    process ends on them, and the workers' runs checkpoint)."""
    global _STOPS
    if _STOPS is not None or signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        return
    # The resource trackers first: starting one unblocks SIGINT in the thread that starts it
    # (CPython's multiprocessing.resource_tracker, which joblib's workers use), undoing the block.
    import multiprocessing.resource_tracker

    multiprocessing.resource_tracker.ensure_running()
    with contextlib.suppress(ImportError):
        from joblib.externals.loky.backend import resource_tracker  # type: ignore[import-untyped]

        resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    os.environ[SWEEP_STOPS_ENV] = "1"
    _STOPS = _SweepStops(sweep_dir)


def _end_stops_in_workers() -> None:
    """Takes Ctrl-C back from :func:`_stops_in_workers` once the sweep has ended."""
    global _STOPS
    if _STOPS is not None:
        _STOPS.end()
        _STOPS = None
        os.environ.pop(SWEEP_STOPS_ENV, None)


def sweep_takes_stops() -> bool:
    """Whether this process is a worker of a joblib sweep (:func:`_stops_in_workers`): it starts with
    Ctrl-C blocked, takes it as a run does while a job runs, and only records it between jobs
    (:func:`record_stops_between_jobs`)."""
    return os.environ.get(SWEEP_STOPS_ENV) == "1" and _STOPS is None


def record_stops_between_jobs() -> None:
    """After a job of a joblib sweep's worker: a Ctrl-C until its next job only records the sweep's
    stop (no ``KeyboardInterrupt`` in loky's wait for work, which breaks the pool). Python runs the
    handler in the main thread whichever thread the signal reaches (a job's threads, such as torch's
    intra-op pool, have it unblocked)."""
    stopped = _stopped_dir()

    def record(signum: int, frame: Any) -> None:  # noqa: ARG001 (signal API)
        if stopped is not None:
            _mark_stopped(stopped, signum)

    signal.signal(signal.SIGINT, record)


def _stopped_dir() -> Path | None:
    """:data:`STOPPED_JOBS_DIR` of the sweep of this job (None outside a sweep job)."""
    try:
        hc = HydraConfig.get()
    except ValueError:  # (not under Hydra)
        return None
    if hc.mode != RunMode.MULTIRUN:
        return None
    return Path(str(hc.runtime.cwd)) / str(hc.sweep.dir) / STOPPED_JOBS_DIR


def sweep_stopped() -> bool:
    """Whether a job of this job's sweep was stopped by a signal (the jobs after it do not train)."""
    stopped = _stopped_dir()
    return stopped is not None and (stopped / "signal").is_file()


def note_stopped_job(signum: int | None, note: str) -> None:
    """Records that this sweep job was stopped by ``signum`` (``note``: what it left, e.g. its resume
    command), and that the sweep was: the jobs that start after it do not train. ``None``: a job
    that did not start because the sweep had been stopped."""
    stopped = _stopped_dir()
    if stopped is None:
        return
    hc = HydraConfig.get()
    stopped.mkdir(parents=True, exist_ok=True)
    (stopped / f"{int(hc.job.num)}").write_text(note + "\n")
    if signum is not None:
        _mark_stopped(stopped, signum)


def _stopped_jobs(sweep: Path) -> tuple[int | None, list[tuple[str, str]]]:
    """The signal that stopped the sweep in ``sweep`` (None: none did) and its stopped jobs' notes."""
    stopped = sweep / STOPPED_JOBS_DIR
    try:
        signum = int((stopped / "signal").read_text().strip())
    except (OSError, ValueError):
        return None, []
    notes = sorted((p for p in stopped.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return signum, [(note.name, note.read_text().strip()) for note in notes]


def in_sweep() -> bool:
    """Whether this process runs a sweep (``train.py -m``)."""
    return _SWEEP_DIR is not None


def sweep_exit_status() -> int:
    """After a sweep (``train.py -m``, ``evaluate.py -m``, ``export.py -m``): 1 (with a line per failed
    job on stderr) when a job of the sweep this process ran failed, else 0; 0 outside a sweep. A
    joblib sweep stopped by Ctrl-C (:func:`_stops_in_workers`) ends with 130, listing its interrupted
    jobs (their resume commands) and those it did not start (their commands)."""
    if _SWEEP_FAILED is not None:
        notes = _SWEEP_FAILED
    else:
        notes = _failed_job_notes(_SWEEP_DIR) if _SWEEP_DIR is not None else []
    status = 0
    if notes:
        print(f"rlkit: {len(notes)} job(s) of the sweep failed:", file=sys.stderr)
        for job, note in notes:
            print(f"  job {job}: {note}", file=sys.stderr)
        status = 1
    signum, stopped = _stopped_jobs(_SWEEP_DIR) if _SWEEP_DIR is not None else (None, [])
    if signum is not None:
        name = signal.Signals(signum).name if signum in signal.valid_signals() else str(signum)
        print(f"rlkit: the sweep was interrupted by {name} (its jobs that had finished are complete):", file=sys.stderr)
        for job, note in stopped:
            print(f"  job {job}: {note}", file=sys.stderr)
        status = 128 + signum
    return status


def note_failed_job(err: BaseException | str, where: str) -> bool:
    """In a sweep job (``-m``): says on stderr that the job failed with ``err`` (one ``rlkit:`` line
    naming the job and ``where``: its run directory, its run) and leaves a note for
    :func:`sweep_exit_status`, so that the sweep's other jobs go on; True. Outside a sweep, False
    (the caller refuses as a single command does)."""
    try:
        hc = HydraConfig.get()
    except ValueError:  # (not under Hydra: a library call)
        return False
    if hc.mode != RunMode.MULTIRUN:
        return False
    label = job_label(int(hc.job.num), swept_overrides(list(hc.overrides.task)))
    print(f"rlkit: {label} ({where}) failed: {describe(err)}", file=sys.stderr)
    failed = Path(str(hc.runtime.cwd)) / str(hc.sweep.dir) / FAILED_JOBS_DIR  # (a job may run elsewhere)
    failed.mkdir(parents=True, exist_ok=True)
    (failed / f"{int(hc.job.num)}").write_text(f"{where}: {describe(err)}\n")
    return True
