"""The task bodies of the scripts: :func:`train_task` (``train.py``: :func:`rlkit.run.run`, refusals as
one line, a sweep job's failure noted for :func:`~rlkit.cli.callbacks.sweep_exit_status`),
:func:`evaluate_task` (``evaluate.py``) and :func:`export_task` (``export.py``)."""
from __future__ import annotations

import contextlib
import difflib
import shlex
import signal
import sys
import traceback
from pathlib import Path
from collections.abc import Iterator
from typing import Any, NoReturn

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rlkit import startup
from rlkit.cli.base import CONF_DIR, describe, refuse
from rlkit.cli.callbacks import (
    note_failed_job,
    note_stopped_job,
    record_stops_between_jobs,
    sweep_stopped,
    sweep_takes_stops,
)
from rlkit.cli.naming import job_label, swept_overrides
from rlkit.cli.preflight import checked_settings
from rlkit.cli.resume import run_group_choices
from rlkit.errors import ConfigError, RlkitError, failure_line
from rlkit.rundir import resume_hint
from rlkit.run import CONFIG_FILE, run
from rlkit.trainers.checkpoint import NoSpaceError
from rlkit.trainers.trainer import nothing_to_stop, stop_signals
from rlkit.trainers.evaluator import return_label


#: Hydra's own launcher runs sweep jobs one after another in this process; the others run them in
#: parallel processes sharing one terminal, where redrawn bars would overwrite each other.
_SEQUENTIAL_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def _own_overrides(cfg: DictConfig, hc: Any) -> list[str]:
    """The command line's overrides, less (on resume) the group choices that are the run's own:
    :func:`~rlkit.cli.command_line.prepare_argv` adds those, and a user may repeat them."""
    overrides = list(hc.overrides.task)
    if not cfg.get("resume"):
        return overrides
    conf_dirs = [Path(source.path.removeprefix("file://")) for source in hc.runtime.config_sources
                 if source.provider == "main" and source.schema == "file"]
    choices = run_group_choices(str(cfg.resume), conf_dirs[0] if conf_dirs else None)
    own = {f"{group}={choice}" for group, choice in choices.items()}
    return [o for o in overrides if o not in own]


def train_task(cfg: DictConfig) -> float | None:
    """The body of ``train.py``'s task: trains the run Hydra composed into its run directory.

    Returns the last greedy evaluation return (the objective a Hydra sweeper reads).
    """
    from rlkit.trainers import TrainingInterrupted

    hc = HydraConfig.get()
    run_dir = hc.runtime.output_dir
    multirun = hc.mode == RunMode.MULTIRUN
    label = job_label(int(hc.job.num), swept_overrides(list(hc.overrides.task))) if multirun else ""
    parallel = multirun and str(hc.launcher.get("_target_", "")) != _SEQUENTIAL_LAUNCHER
    prefix = f"{label} " if label else ""
    provenance = {
        "config.yaml": OmegaConf.to_yaml(cfg),
        "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": OmegaConf.to_container(hc)})),
        "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(list(hc.overrides.task))),
    }
    # A job of a joblib sweep takes Ctrl-C while it runs (its worker holds it back between jobs), and
    # after a stop the jobs that start do not train (see rlkit.cli.callbacks._stops_in_workers).
    stops = multirun and sweep_takes_stops()
    startup.mark("running")
    try:
        # (a SIGTERM or SIGHUP while the run is built or checked ends it as a Ctrl-C does, its start
        # undone; the trainer's own handlers take over while it trains)
        with _stops_interrupt() as received:
            try:
                if stops:  # (a Ctrl-C that came while this worker started is taken here)
                    signal.signal(signal.SIGINT, signal.default_int_handler)
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
                    if sweep_stopped():
                        with contextlib.suppress(OSError):  # the folder Hydra made for the job
                            Path(run_dir).rmdir()
                        print(f"rlkit: {label}: not started: the sweep was interrupted", file=sys.stderr)
                        note_stopped_job(None, f"not started; train it with: python train.py {_job_command(hc)}")
                        return None
                settings = None if cfg.get("resume") else checked_settings(cfg)
                result = run(cfg, run_dir, overrides=_own_overrides(cfg, hc), provenance=provenance,
                             validated=settings, label=label, plain_progress=True if parallel else None)
            except RlkitError as err:
                if note_failed_job(err, str(run_dir)):  # a sweep: its other jobs go on; its exit status says one failed
                    return None
                if isinstance(err, NoSpaceError):
                    refuse(_no_space_advice(err, Path(run_dir)))
                refuse(err)
            except TrainingInterrupted as stop:
                resume = f"resume with: python train.py {resume_hint(run_dir)}"
                with contextlib.suppress(OSError):  # (SIGHUP: the terminal may be gone; the status still tells)
                    print(f"{prefix}{stop}\n{prefix if stops else ''}{resume}", file=sys.stderr)
                if stops:  # (the sweep's main process ends with the signal's status, listing its jobs)
                    note_stopped_job(stop.signum, f"interrupted, checkpoint written ({run_dir}); {resume}")
                    return None
                raise SystemExit(128 + stop.signum) from None
            except KeyboardInterrupt:  # not a checkpointed stop: while the run is built or checked, or a second Ctrl-C
                signum = received[0] if received else int(signal.SIGINT)
                if cfg.get("resume") or (Path(run_dir) / CONFIG_FILE).is_file():  # (a started run can be resumed)
                    what = f"resume with: python train.py {resume_hint(run_dir)}"
                else:
                    with contextlib.suppress(OSError):  # the folder Hydra made for the run (a failed start removes its own)
                        Path(run_dir).rmdir()
                    what = "the run had not started; nothing was kept"
                if stops:
                    print(f"rlkit: {label} interrupted; {what}", file=sys.stderr)
                    note_stopped_job(signum, f"interrupted; {what}" if "resume" in what else
                                     f"interrupted as it started; train it with: python train.py {_job_command(hc)}")
                    return None
                _interrupted("train.py", what, received)
            except Exception as err:  # a bug's error (the env's, rlkit's): a sweep's other jobs still go on
                if not multirun:
                    raise
                traceback.print_exc()
                note_failed_job(failure_line(err), str(run_dir))
                return None
    finally:
        if stops:  # (between jobs the worker only records a Ctrl-C for the sweep)
            record_stops_between_jobs()
    startup.mark("done")
    if not multirun:  # a stop signal from here to the exit has nothing to stop: the run is complete
        for stop_signal in stop_signals():
            signal.signal(stop_signal, nothing_to_stop)
    label = _return_label(Path(run_dir), cfg)
    if result and all(isinstance(k, int) for k in result):  # a multi-seed run: by seed
        returns = ", ".join(f"seed {k}: {_seed_shown(Path(run_dir), k, m)}" for k, m in result.items())
        print(f"done: {prefix}{label} {returns} | run dir {run_dir}", file=sys.stderr)
        values = [m["eval_return"] for m in result.values() if "eval_return" in m]
        return sum(values) / len(values) if values else None  # a sweep's objective: the seeds' mean
    print(f"done: {prefix}{label} {_shown(result.get('eval_return'))} | run dir {run_dir}", file=sys.stderr)
    return result.get("eval_return")


def _job_command(hc: Any) -> str:
    """The overrides of a sweep job, as ``train.py`` takes them to train it on its own."""
    return " ".join(shlex.quote(str(o)) for o in hc.overrides.task)


def _no_space_advice(err: NoSpaceError, run_dir: Path) -> str:
    """The refusal of a run whose checkpoint found no space on its device: the file, the space free,
    the last good checkpoint, and how to go on (resume the run, or, when its first checkpoint failed
    and its start was undone, start it again)."""
    if (run_dir / CONFIG_FILE).is_file():  # (a started run: resumable from its last good checkpoint)
        return f"{err}; free some space and resume with: python train.py {resume_hint(run_dir)}"
    return f"{err}; the run had not started, and nothing of it was kept; free some space and start it again"


def _return_label(run_dir: Path, cfg: DictConfig) -> str:
    """The ``done:`` line's name of the closing evaluation's return, from the run's saved config (a
    resume's command line may not repeat ``trainer.eval_epsilon``)."""
    saved = run_dir / CONFIG_FILE
    source = OmegaConf.load(saved) if saved.is_file() else cfg
    return return_label(float(OmegaConf.select(source, "trainer.eval_epsilon", default=0.0) or 0.0))


def _seed_shown(run_dir: Path, seed: int, metrics: dict) -> str:
    """A multi-seed run's seed on the ``done:`` line: its last greedy evaluation return (``no
    evaluation`` where it has none), marked where the seed was dropped for non-finite values."""
    from rlkit.trainers.multiseed import seed_dropped

    value = metrics.get("eval_return")
    shown = "no evaluation" if value is None else _shown(value)
    return f"{shown} (dropped: non-finite)" if seed_dropped(run_dir / f"seed_{seed}") else shown


def _shown(value: Any) -> str:
    """A metric as the ``done:`` line shows it: 6 significant digits.

    Examples:
        >>> from rlkit.cli.tasks import _shown
        >>> _shown(9.333333333333334), _shown(-1410.16819805149), _shown(None)
        ('9.33333', '-1410.17', 'None')
    """
    return f"{value:.6g}" if isinstance(value, (int, float)) else str(value)


# -- evaluate.py and export.py ----------------------------------------------------------------------
def _task_args(cfg: DictConfig, script: str) -> dict[str, Any]:
    """The arguments of an ``evaluate.py`` / ``export.py`` config as a plain dict (``run`` required).

    Raises:
        ConfigError: an unknown key (the closest known one suggested).
        RlkitError: no ``run=``.
    """
    args = {str(k): OmegaConf.select(cfg, str(k), throw_on_missing=False) for k in cfg.keys() if k != "hydra"}
    known = sorted(str(k) for k in OmegaConf.load(CONF_DIR / f"{Path(script).stem}.yaml").keys()
                   if k not in ("defaults", "hydra"))
    for key in args:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown key {key}{hint}; valid keys of {script}: {known}")
    if not args.get("run"):
        raise RlkitError(f"run= is missing: give a run directory or a checkpoint file (python {script} "
                         "run=outputs/<date>/<run>)")
    return args


def _checkpoint_name(args: dict[str, Any]) -> str | None:
    """The ``checkpoint=`` argument as a file name (Hydra reads ``checkpoint=50000`` as an int,
    which the check then refuses by name), or None."""
    name = args.get("checkpoint")
    return None if name is None else str(name)


def evaluate_task(cfg: DictConfig) -> dict[str, Any]:
    """The body of ``evaluate.py``: :func:`rlkit.evaluation.evaluate` with the command line's
    arguments, its results as one line on stdout, refusals as one line on stderr (status 2). In a
    sweep (``-m``), a job that fails says so in one line and returns ``{}``; the others go on."""
    from rlkit.evaluation import evaluate, format_results

    startup.mark("running")
    with _stops_interrupt() as received:
        try:
            args = _task_args(cfg, "evaluate.py")
            results = evaluate(str(args["run"]), episodes=args["episodes"], video=args["video"], seed=args["seed"],
                               device=str(args["device"]), deterministic=args["deterministic"], epsilon=args["epsilon"],
                               output_dir=args["out"], checkpoint=_checkpoint_name(args))
        except RlkitError as err:
            if note_failed_job(err, f"run={cfg.get('run')}"):  # a sweep: its other jobs go on
                return {}
            refuse(err)
        except KeyboardInterrupt:
            _interrupted("evaluate.py", "nothing was written: the results are written at the end", received)
    startup.mark("done")
    print(format_results(results))
    return results


def _interrupted(script: str, what: str, received: list[int] | None = None) -> NoReturn:
    """Ends a script interrupted by Ctrl-C (or by the stop signal ``received`` holds: see
    :func:`_stops_interrupt`) with one line instead of a traceback, exit status 128 + the signal's
    number (130 for Ctrl-C)."""
    signum = received[0] if received else signal.SIGINT
    by = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
    print(f"\n{script} interrupted{by}; {what}", file=sys.stderr)
    raise SystemExit(128 + signum) from None


@contextlib.contextmanager
def _stops_interrupt() -> Iterator[list[int]]:
    """Within it, a stop signal other than Ctrl-C (SIGTERM, SIGHUP where not ignored: see
    :func:`~rlkit.trainers.trainer.stop_signals`) interrupts as Ctrl-C does, so that the task undoes
    what it had begun (an evaluation's folder, its unfinished videos) and ends in one line; yields the
    list the signal is recorded in. (By default SIGTERM killed ``evaluate.py`` leaving its folder; with
    ``video=true`` it was not even seen: pygame, which renders the frames, has SDL take a signal
    whose handler is the default one.)"""
    received: list[int] = []

    def interrupt(signum: int, frame: object) -> None:  # noqa: ARG001 (signal API)
        received.append(signum)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, interrupt) for s in stop_signals() if s != signal.SIGINT}
    try:
        yield received
    finally:
        for stop_signal, handler in previous.items():
            signal.signal(stop_signal, handler)


def export_task(cfg: DictConfig) -> Path | None:
    """The body of ``export.py``: :func:`rlkit.exporter.export_policy` with the command line's
    arguments; prints the file written, refusals as one line on stderr (status 2). In a sweep
    (``-m``), a job that fails says so in one line and returns None; the others go on."""
    from rlkit.agent import load_agent
    from rlkit.exporter import check_export_request, checkpoint_label, export_policy

    startup.mark("running")
    with _stops_interrupt() as received:
        try:
            args = _task_args(cfg, "export.py")
            run, fmt = str(args["run"]), str(args["format"])
            check_export_request(fmt, args["out"])  # (refused before the run is read)
            agent = load_agent(run, device=str(args["device"]), checkpoint=_checkpoint_name(args))
            label, latest = checkpoint_label(agent.checkpoint, agent.run_dir)
            path = export_policy(run, fmt, args["out"], agent=agent)
        except RlkitError as err:
            if note_failed_job(err, f"run={cfg.get('run')}"):  # a sweep: its other jobs go on
                return None
            refuse(err)
        except KeyboardInterrupt:
            _interrupted("export.py", "nothing was written (the file is written to a temporary name and renamed)",
                         received)
    startup.mark("done")
    print(f"exported: {path} ({fmt}; checkpoint {label}{', the latest' if latest else ''}, {agent.frames:,} frames)")
    return path
