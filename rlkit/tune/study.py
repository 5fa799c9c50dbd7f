"""A study: its storage, the workers that run its trials, and the exact count of trials they run.

Counting. A study runs exactly ``n_trials`` trials over all its workers and reruns. A trial *counts*
when it completed, was pruned, failed with its own error (a config that diverges or crashes: that is
a result), or is running. A trial that ended without a result does not count and is replaced: one a
signal interrupted, or one whose worker died (its heartbeat stopped; :func:`optuna.storages.fail_stale_trials`
marks it failed). Each worker loops: when fewer than ``n_trials`` trials count, it asks for a new one;
trial numbers are assigned by the storage in creation order, so every worker sees the same order,
and a trial asked when two workers raced for the last place (more than ``n_trials`` counting trials
with lower numbers) is closed unrun as *surplus* (failed with the user attribute ``rlkit_surplus``,
left out of every count and output). A worker returns once ``n_trials`` counting trials have
finished, so every worker's outputs see the whole study.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import optuna
from omegaconf import DictConfig, OmegaConf
from sqlalchemy.exc import SQLAlchemyError
from optuna.trial import TrialState

from rlkit.errors import ConfigError, RlkitError
from rlkit.rundir import LOCK_NAME, lock_holder
from rlkit.trainers import TrainingInterrupted
from rlkit.trainers.trainer import REPEAT_S
from rlkit.tune.report import INTERRUPTED_DIR, trials_table, write_outputs
from rlkit.utils.io import atomic_write
from rlkit.tune.settings import TuneSettings, evaluations_per_seed, make_pruner, make_sampler, masked_text, shown_url
from rlkit.tune.studydir import check_study_dir, resume_refusal
from rlkit.tune.states import (
    ERROR_ATTR,
    FREE_KEYS,
    IDENTITY_ATTR,
    INTERRUPTED_ATTR,
    NUM_SEEDS_ATTR,
    PRUNED_AT_ATTR,
    REPLACES_ATTR,
    SEEDS_ATTR,
    SURPLUS_ATTR,
    counted,
    counts,
    replaced_trial,
)
from rlkit.tune.trial import NOT_THE_CONFIGS, TrialResult, describe_error, run_trial

__all__ = ["INTERRUPTED_DIR", "StudyInterrupted", "open_study", "set_aside", "tune", "work"]

log = logging.getLogger(__name__)

#: Seconds between a running trial's heartbeats, and after which a silent trial is taken as lost.
HEARTBEAT_S = 10
GRACE_S = 60
#: Seconds between looks at the storage while the last trials run in other workers.
POLL_S = 2.0
#: Seconds after which a running trial that never sent a heartbeat (its process died between asking
#: for it and its first beat) is taken as lost.
UNSTARTED_S = 5 * GRACE_S


class StudyInterrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) stopped a study's process outside a training run (which raises
    :class:`~rlkit.trainers.TrainingInterrupted` itself); ``signum`` names the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Gate:
    """When a signal may stop a study's process. Open (the default): at once, by raising
    :class:`StudyInterrupted`. Shut (:meth:`shut`, around the storage's bookkeeping: asking for a
    trial, recording its heartbeat, telling its result): the signal waits until the block ends or
    opens again (:meth:`opened`, around training and idle waits), so a trial is never left half
    recorded. The same signal again within :data:`~rlkit.trainers.trainer.REPEAT_S` seconds is one
    signal (a job scheduler signals every process of a job, and the parent passes it on too)."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: int | None = None
        self.last: tuple[int, float] | None = None

    def on_signal(self, signum: int, forward: Callable[[int], None] | None) -> None:
        now = time.monotonic()
        if self.last is not None and self.last[0] == signum and now - self.last[1] < REPEAT_S:
            return
        self.last = (signum, now)
        if forward is not None:
            forward(signum)
        if self.depth:
            self.pending = signum
            return
        raise StudyInterrupted(signum)

    def reset(self) -> None:
        """Forgets every signal seen (a new study in the same process starts afresh)."""
        self.depth, self.pending, self.last = 0, None, None

    def safe_point(self) -> None:
        """Raises the signal that waited, if one did: nothing is half recorded here."""
        self._raise_pending()

    def _raise_pending(self) -> None:
        if self.pending is not None:
            signum, self.pending = self.pending, None
            raise StudyInterrupted(signum)

    @contextlib.contextmanager
    def shut(self) -> Iterator[None]:
        self.depth += 1
        try:
            yield
        except BaseException:
            self.depth -= 1
            if not self.depth:
                self.pending = None  # (the process is stopping already)
            raise
        self.depth -= 1
        if not self.depth:
            self._raise_pending()

    @contextlib.contextmanager
    def opened(self) -> Iterator[None]:
        depth, self.depth = self.depth, 0
        try:
            self._raise_pending()
            yield
        finally:
            self.depth = depth


_GATE = _Gate()


@contextlib.contextmanager
def _stop_on_signals(forward: Callable[[int], None] | None = None) -> Iterator[None]:
    """While in the block, SIGTERM and SIGINT stop the process through :data:`_GATE` (SIGTERM would
    otherwise end it at once, leaving its trial running in the storage); ``forward`` is called with
    the signal first (the parent passes it on to its workers). A training run inside installs its
    own handlers and restores these. Elsewhere than the main thread: nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:  # noqa: ARG001 (signal API)
        _GATE.on_signal(signum, forward)

    if not _GATE.depth:
        _GATE.reset()
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drop_key(config: dict[Any, Any], key: str) -> None:
    """Removes the dotted ``key`` from the nested ``config`` (nothing when it is absent)."""
    *heads, last = key.split(".")
    node: Any = config
    for head in heads:
        node = node.get(head) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node.pop(last, None)


def _without_searched(identity: dict[str, Any], settings: TuneSettings) -> dict[str, Any]:
    """``identity`` less the base config's values of the keys the space searches: every trial replaces
    them, so they change nothing a trial computes (a study started with ``algo.learning_starts=500``
    beside a space searching it, before tune.py refused that, resumes once the override is dropped)."""
    if not isinstance(identity.get("config"), dict):
        return identity
    config = json.loads(json.dumps(identity["config"]))
    for param in settings.space.params:
        _drop_key(config, param.path)
    return {**identity, "config": config}


def _without_free(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` less the :data:`FREE_KEYS` of its config (a study started before a key was taken
    as free, ``trainer.log_interval``, kept its value)."""
    if not isinstance(identity.get("config"), dict):
        return identity
    config = json.loads(json.dumps(identity["config"]))
    for key in FREE_KEYS:
        _drop_key(config, key)
    return {**identity, "config": config}


def _identity(base: DictConfig, settings: TuneSettings) -> dict[str, Any]:
    config = OmegaConf.to_container(base, resolve=True)
    assert isinstance(config, dict)
    for key in FREE_KEYS:
        _drop_key(config, key)
    return _without_searched(json.loads(json.dumps(
        {"config": config, "space": settings.space.describe(), "seeds": list(settings.seeds),
         "objective": settings.objective, "batched_seeds": settings.batched_seeds}, default=str)), settings)


def _first_difference(saved: Any, mine: Any, path: str) -> str | None:
    if isinstance(saved, dict) and isinstance(mine, dict):
        for key in sorted(set(saved) | set(mine)):
            where = f"{path}.{key}" if path else str(key)
            if key not in saved or key not in mine:
                return f"{where} is {'new' if key not in saved else 'missing'}"
            found = _first_difference(saved[key], mine[key], where)
            if found:
                return found
        return None
    return None if saved == mine else f"{path}: the study has {saved!r}, this command {mine!r}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage at ``url`` with heartbeats (lost trials are detected); SQLite waits up to a
    minute for a lock held by another worker instead of failing. Two processes starting one new study
    together race to create its tables; the loser tries again (:data:`OPEN_TRIES` times in all)."""
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(1, OPEN_TRIES + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # (heartbeats: since Optuna 2.9)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_S,
                                                  grace_period=GRACE_S)
        except Exception as err:  # noqa: BLE001 (sqlalchemy and the drivers raise many kinds)
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if attempt < OPEN_TRIES and _schema_race(err):
                time.sleep(0.5 * attempt)
                continue
            raise ConfigError(f"tune.storage={shown_url(url)!r} cannot be opened: {masked_text(text, url)}") from None
    raise AssertionError("unreachable")  # (the last try returns or raises)


#: Tries to open a storage whose tables another process is creating at the same time.
OPEN_TRIES = 4


def _schema_race(err: Exception) -> bool:
    """Whether ``err`` is what a storage's schema creation raises when another process creates it at
    the same moment (SQLite: ``UNIQUE constraint failed: alembic_version...``, ``table ... already
    exists``, ``database is locked``)."""
    text = str(err)
    return type(err).__name__ in ("IntegrityError", "OperationalError", "ProgrammingError") and any(
        part in text for part in ("alembic_version", "already exists", "database is locked"))


def _check_trial_dirs(settings: TuneSettings) -> None:
    """Refuses a ``tune.dir`` whose ``trials/`` holds directories that are not this study's trials
    (another study's sharing the directory, or those of a study whose ``study.db`` was deleted):
    its trials would find them taken, and its outputs would replace the other study's.

    Raises:
        ConfigError: naming the directories and the fix.
    """
    trials_dir = settings.dir / "trials"
    on_disk = sorted(p.name for p in trials_dir.iterdir() if p.name.isdigit()) if trials_dir.is_dir() else []
    if not on_disk:
        return
    known: set[int] = set()
    if settings.storage is not None or (settings.dir / "study.db").is_file():  # (opening creates a missing file)
        storage = open_storage(settings.storage_url)
        try:
            study_id = storage.get_study_id_from_name(settings.study)
        except KeyError:
            pass
        else:
            known = {t.number for t in storage.get_all_trials(study_id, deepcopy=False)}
    stray = [name for name in on_disk if int(name) not in known]
    if stray:
        shown = ", ".join(stray[:3]) + (", ..." if len(stray) > 3 else "")
        raise ConfigError(f"tune.dir={str(settings.dir)!r} holds trial directories ({shown}) that are not trials of "
                          f"study {settings.study!r} in its storage (another study's, or a deleted study.db's); give "
                          "this study its own tune.dir")


def open_study(base: DictConfig, settings: TuneSettings, slots: int) -> optuna.Study:
    """Creates the study in its storage, or loads it when it exists (a rerun resumes it).

    Raises:
        ConfigError: the stored study measures something else (another training config, space, seeds
            or objective): named by the first difference.
    """
    if settings.storage is None:
        settings.dir.mkdir(parents=True, exist_ok=True)
    storage = open_storage(settings.storage_url)
    study = optuna.create_study(study_name=settings.study, storage=storage, direction="maximize",
                                sampler=make_sampler(settings), pruner=make_pruner(settings, slots),
                                load_if_exists=True)
    mine = _identity(base, settings)
    saved = study.user_attrs.get(IDENTITY_ATTR)
    if isinstance(saved, dict) and "batched_seeds" not in saved:  # (a study from before the key: either runs it)
        saved = {**saved, "batched_seeds": mine["batched_seeds"]}
    if isinstance(saved, dict):  # (a study from before the searched keys were left out kept their values)
        saved = _without_free(_without_searched(saved, settings))
    if saved is None:
        study.set_user_attr(IDENTITY_ATTR, mine)
    elif saved != mine:
        diff = (_first_difference(saved, mine, "") or "").removeprefix("config.")
        raise ConfigError(f"study {settings.study!r} in {settings.shown_storage} was started with other settings "
                          f"({diff}); rerun it with its own settings, or start another with tune.study=<name> "
                          "(and its own tune.dir where you set one: a study's trials are not shared)")
    return study


class _Heartbeat:
    """Records a running trial's heartbeat every :data:`HEARTBEAT_S` seconds in a daemon thread."""

    def __init__(self, storage: optuna.storages.RDBStorage, trial_id: int) -> None:
        self._storage, self._trial_id = storage, trial_id
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(storage, trial_id), daemon=True)

    def _beat(self, storage: optuna.storages.RDBStorage, trial_id: int) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                storage.record_heartbeat(trial_id)
            except Exception:  # noqa: BLE001 (a busy database: the next beat tries again)
                pass

    def start(self) -> None:
        """The first beat, then one every :data:`HEARTBEAT_S` seconds (a trial without any beat is
        never taken as lost by Optuna: see :func:`_fail_unstarted`)."""
        self._storage.record_heartbeat(self._trial_id)
        self._thread.start()

    def stop(self) -> None:
        """Stops the beats (again: nothing)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def _tell(study: optuna.Study, trial: optuna.Trial, result: TrialResult) -> None:
    for seed, value in result.seed_values.items():
        trial.set_user_attr(f"seed_{seed}", value)
    trial.set_user_attr(NUM_SEEDS_ATTR, result.num_seeds)
    if result.state == "complete":
        study.tell(trial, result.value)
    elif result.state == "pruned":
        if result.pruned_at is not None:
            trial.set_user_attr(PRUNED_AT_ATTR, result.pruned_at)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        trial.set_user_attr(ERROR_ATTR, result.error)
        if result.failed_seed is not None:
            trial.set_user_attr("failed_seed", result.failed_seed)
        study.tell(trial, state=TrialState.FAIL)


def work(study: optuna.Study, base: DictConfig, settings: TuneSettings, *, slots: int, n_trials: int,
         on_trial: Callable[[optuna.Study], None] | None = None, say: Callable[[str], None] | None = None) -> None:
    """Runs trials of ``study`` until ``n_trials`` counting trials have finished (this worker's and the
    others'); see the module's docstring. ``on_trial`` is called after each trial this worker ran;
    ``say`` gets one line when this worker starts waiting for trials that run elsewhere (or were
    lost with a worker that died, which takes up to :data:`GRACE_S` seconds to tell).

    An interrupt (Ctrl-C, SIGTERM) marks the running trial failed with ``interrupted`` (a rerun
    replaces it) and propagates.
    """
    _quiet_optuna()
    storage = open_storage(settings.storage_url)
    study_id = storage.get_study_id_from_name(settings.study)
    seen: dict[int, float] = {}  # running trials without a heartbeat: when this worker first saw each
    waited_for: list[int] = []  # the running trials this worker said it waits for
    with _GATE.shut():
        while True:
            _GATE.safe_point()
            optuna.storages.fail_stale_trials(study)
            _fail_unstarted(study, seen)
            _requeue_unfinished(study, settings)
            mine = [t for t in study.get_trials(deepcopy=False) if counted(t)]
            if sum(t.state.is_finished() for t in mine) >= n_trials:
                return
            if sum(t.state != TrialState.WAITING for t in mine) >= n_trials:
                # the last trials run elsewhere: wait for them (or for their loss); a queued one is asked next
                running = sorted(t.number for t in mine if t.state == TrialState.RUNNING)
                if say is not None and running and running != waited_for:
                    waited_for = running
                    say(_waiting_line(settings, running))
                with _GATE.opened():
                    time.sleep(POLL_S)
                continue
            result = _one_trial(study, storage, study_id, base, settings, slots=slots, n_trials=n_trials)
            if result is not None and on_trial is not None:
                on_trial(study)


def _waiting_line(settings: TuneSettings, running: list[int]) -> str:
    """The line a worker says when it waits for the study's last ``running`` trials."""
    which = f"trial{'s' if len(running) > 1 else ''} {', '.join(str(n) for n in running)}"
    return (f"tune {settings.study}: waiting for {which}, running in another worker or lost with a worker that died "
            f"(a lost trial is taken as such {GRACE_S} s after its last heartbeat, {UNSTARTED_S} s after it was asked "
            "if it never sent one, and then runs again)")


def set_aside(settings: TuneSettings, number: int) -> Path | None:
    """Moves the run directory of trial ``number``, which ended without a result (interrupted, or lost
    with its worker), from ``trials/<number>`` to ``<tune.dir>/interrupted/<number>``, whole: the
    replacement trial trains the configuration again from scratch, but nothing of the run is
    deleted (its checkpoints stay usable; the user frees their space). ``trials/``
    then holds each configuration's runs once (``scripts/compare.py <tune.dir>`` reads it, not
    ``interrupted/``). Returns the new place; None when there was nothing to move (no directory here:
    the trial ran on another machine, or never started), it is taken (left where it is), or a
    process still holds one of its runs (a worker taken for lost that still trains: left to it)."""
    name = f"{number:04d}"
    source, target = settings.dir / "trials" / name, settings.dir / INTERRUPTED_DIR / name
    if not source.is_dir() or target.exists():
        return None
    if any(lock_holder(lock.parent) for lock in source.rglob(LOCK_NAME)):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        source.rename(target)
    except OSError:  # (another worker of this machine moved it first)
        return None
    return target


def _one_trial(study: optuna.Study, storage: optuna.storages.RDBStorage, study_id: int, base: DictConfig,
               settings: TuneSettings, *, slots: int, n_trials: int) -> TrialResult | None:
    """Asks for a trial, runs it unless it is surplus, and records it; None for a surplus one. Runs
    with :data:`_GATE` shut but for the training: a signal interrupts the training, or waits for the
    record under way, then marks the trial interrupted."""
    trial: optuna.Trial | None = None
    trial_id = -1
    heartbeat: _Heartbeat | None = None
    try:
        trial = study.ask()
        # The first heartbeat at once: a worker that dies from here on leaves a trial taken as lost
        # (one that died before it is found by _fail_unstarted).
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        heartbeat = _Heartbeat(storage, trial_id)
        heartbeat.start()
        trial.set_user_attr(SEEDS_ATTR, list(settings.seeds))
        trials = study.get_trials(deepcopy=False)
        order = sorted(t.number for t in trials if counted(t))
        replaces = trial.user_attrs.get(REPLACES_ATTR)
        twice = replaces is not None and any(t.number < trial.number and replaced_trial(t) == replaces
                                             for t in trials)  # two workers queued the same replacement
        if twice or order.index(trial.number) >= n_trials:  # or another worker took the last place first
            trial.set_user_attr(SURPLUS_ATTR, True)
            heartbeat.stop()
            study.tell(trial, state=TrialState.FAIL)
            return None
        try:
            params = settings.space.suggest(trial)
            with _GATE.opened():
                result = run_trial(trial, base, params, seeds=settings.seeds, slots=slots,
                                   objective=settings.objective,
                                   run_root=settings.dir / "trials" / f"{trial.number:04d}",
                                   prune=settings.pruner != "none", batched=settings.batched_seeds)
        except NOT_THE_CONFIGS:
            raise
        except Exception as err:  # noqa: BLE001 (anything else the sampled config raised is its result)
            result = TrialResult("failed", None, {}, error=describe_error(err))
        try:
            _tell(study, trial, result)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):  # (another worker took it as lost meanwhile)
            if not storage.get_trial(trial_id).state.is_finished():
                raise
            log.warning("trial %d was finished by another worker (taken as lost) before its result was recorded",
                        trial.number)
        heartbeat.stop()
        return result
    except BaseException as stop:
        # Interrupted, or an error of the storage's or rlkit's bookkeeping: the trial ends without a
        # result, replaced on a rerun.
        if heartbeat is not None:
            heartbeat.stop()
        if trial is not None:
            with contextlib.suppress(Exception):  # (the storage may be what failed: the error stands)
                if trial_id < 0 or not storage.get_trial(trial_id).state.is_finished():
                    trial.set_user_attr(INTERRUPTED_ATTR, _interrupted_why(stop))
                    study.tell(trial, state=TrialState.FAIL)
                # its configuration runs again as a new trial: its run leaves trials/
                set_aside(settings, trial.number)
        raise


def _interrupted_why(stop: BaseException) -> str:
    """What ended a trial without a result, one line: the signal (its checkpoint is not named: the
    trial's replacement trains from scratch, and :func:`set_aside` drops it), or the error of the
    storage's or rlkit's bookkeeping."""
    if isinstance(stop, TrainingInterrupted):
        return f"training interrupted by {signal.Signals(stop.signum).name}"
    if isinstance(stop, KeyboardInterrupt):
        return str(stop) or type(stop).__name__
    return describe_error(stop)


def _fail_unstarted(study: optuna.Study, seen: dict[int, float]) -> None:
    """Fails every running trial that never sent a heartbeat (it has no ``seeds`` attribute, set just
    after the first beat) once this worker has seen it so for :data:`UNSTARTED_S` seconds: its
    process died in between. (Optuna takes a trial as lost only from a heartbeat that stopped.) The
    time is this worker's own clock (``seen``: trial number -> first seen), not the start time the
    asking machine wrote, whose clock and time zone may differ."""
    now = time.monotonic()
    unstarted = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                 if SEEDS_ATTR not in t.user_attrs}
    for number in list(seen):
        if number not in unstarted:
            del seen[number]
    for number in unstarted:
        if now - seen.setdefault(number, now) > UNSTARTED_S:
            with contextlib.suppress(RuntimeError, ValueError):  # (another worker failed it first)
                study.tell(number, state=TrialState.FAIL)
            seen.pop(number, None)


def _requeue_unfinished(study: optuna.Study, settings: TuneSettings) -> None:
    """Queues the configuration of every trial that ended without a result (interrupted, or lost
    with its worker) and is not replaced yet: the next trial asked runs it again. (A sampler would
    otherwise move on: the grid sampler counts such a trial's point as visited, so it would never
    be evaluated.) The run directory of each such trial still in ``trials/`` (a lost one's) is moved
    to ``interrupted/`` (:func:`set_aside`)."""
    trials = study.get_trials(deepcopy=False)
    replaced = {replaced_trial(t) for t in trials}
    for t in trials:
        if t.state == TrialState.FAIL and not counted(t) and not t.user_attrs.get(SURPLUS_ATTR):
            if t.params and t.number not in replaced:
                study.enqueue_trial(t.params, user_attrs={REPLACES_ATTR: t.number}, skip_if_exists=False)
            set_aside(settings, t.number)


def effective_trials(settings: TuneSettings) -> int:
    """``n_trials``, or the grid's size when a grid search has fewer points."""
    if settings.sampler != "grid":
        return settings.n_trials
    grid = settings.space.grid()
    assert grid is not None
    return min(settings.n_trials, math.prod(len(values) for values in grid.values()))


def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # rlkit prints its own line per trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # rlkit records heartbeats itself around its ask/tell loop (see _Heartbeat)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def _worker_main(container: dict, settings: TuneSettings, slots: int, n_trials: int, worker: int,
                 parent: int, ready: Any) -> None:
    """A spawned worker process (``tune.jobs`` > 1), the ``worker``-th, of process ``parent``. It runs
    in a process group of its own (POSIX), so a Ctrl-C at the terminal reaches it once, passed on by
    the parent (it starts with SIGINT ignored, until it is in its group and sets the event ``ready``);
    it stops, as on a signal, when the parent dies."""
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _quiet_optuna()
    base = OmegaConf.create(container)
    try:
        with _stop_on_signals():
            ready.set()
            _watch_parent(parent)
            storage = open_storage(settings.storage_url)
            study = optuna.load_study(study_name=settings.study, storage=storage, sampler=make_sampler(settings),
                                      pruner=make_pruner(settings, slots))
            # (the first worker says when it waits for trials lost with a dead worker: the others would repeat it)
            work(study, base, settings, slots=slots, n_trials=n_trials, say=_stderr_line if worker == 0 else None)
    except (KeyboardInterrupt, TrainingInterrupted):
        raise SystemExit(130) from None


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _watch_parent(parent: int) -> None:
    """Sends this process SIGTERM once its parent (process ``parent``) is gone, killed with SIGKILL
    say, also before this started: its running trial is then marked interrupted rather than trained
    on with no one to collect the study."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="rlkit-parent-watch").start()


def tune(base: DictConfig, settings: TuneSettings, *, groups: Mapping[str, str] | None = None,
         stream: TextIO | None = sys.stderr) -> optuna.Study:
    """Runs (or resumes) the study ``settings`` describes over the training config ``base``, then
    writes its outputs into ``settings.dir`` (:func:`rlkit.tune.report.write_outputs`).

    Args:
        base: the training config (``conf/config.yaml`` composed, without ``tune``), validated.
        settings: the study (:func:`~rlkit.tune.parse_tune_settings`).
        groups: the config-group choices of ``base`` (``{"env": "CartPole", ...}``) for the best
            trial's experiment file.
        stream: where the progress lines go (None: nowhere).

    Returns:
        The study, loaded from its storage.

    Raises:
        ConfigError: the storage cannot be opened, the stored study measures something else, or
            ``base`` asks to resume a training run (``resume``).
        RunDirError: ``settings.dir`` holds files but no earlier study.
    """
    if base.get("resume"):
        raise ConfigError(resume_refusal(str(base.resume)))
    check_study_dir(settings.dir)  # (a TuneSettings made without parse_tune_settings)
    _quiet_optuna()
    started = time.monotonic()
    slots = evaluations_per_seed(int(base.total_frames), int(base.trainer.eval_interval))
    n_trials = effective_trials(settings)
    _check_trial_dirs(settings)
    settings.dir.mkdir(parents=True, exist_ok=True)
    with study_log(settings.dir):
        study = open_study(base, settings, slots)

        def say(text: str) -> None:
            _say(text, stream)

        def show(study: optuna.Study) -> None:
            say(counts(study.get_trials(deepcopy=False)).line(n_trials, settings.study, time.monotonic() - started))

        if n_trials < settings.n_trials:
            say(f"tune {settings.study}: the grid has {n_trials} points; n_trials={settings.n_trials} runs each once")
        done = counts(study.get_trials(deepcopy=False)).finished
        if done >= n_trials:
            say(f"tune {settings.study}: nothing to run: the study already has {done} finished trials and tune.n_trials="
                f"{settings.n_trials}" + (f" (its grid has {n_trials} points)" if n_trials < settings.n_trials else
                                          f"; raise tune.n_trials (above {done}) to run more"))
        show(study)
        try:
            if settings.jobs == 1:
                with _stop_on_signals():
                    work(study, base, settings, slots=slots, n_trials=n_trials, on_trial=show, say=say)
            else:
                _run_workers(study, base, settings, slots, n_trials, show)
        except (KeyboardInterrupt, TrainingInterrupted):
            # The table of the trials so far (the rest of the outputs are the finished study's).
            with contextlib.suppress(Exception), atomic_write(settings.dir / "trials.csv") as f:
                f.write(trials_table(study.get_trials(deepcopy=False), settings))
            raise
        show(study)
        write_outputs(study, base, settings, groups=groups, stream=stream)
    return study


def _say(text: str, stream: TextIO | None) -> None:
    """One line of the study's own: on ``stream`` (the console) and, through logging, in ``tune.log``
    (at INFO: tune.py's console handler shows warnings only, so the line is not printed twice)."""
    if stream is not None:
        print(text, file=stream, flush=True)
    log.info("%s", text)


class _StudyLines(logging.Filter):
    """What ``tune.log`` keeps: the study's own lines (the ``rlkit.tune`` loggers) and other libraries'
    records, less a trial's lines (the ``rlkit`` logger's, which are in its own ``train.log``) and
    matplotlib's chatter below warnings (the plots: "Using categorical units ...")."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name == "rlkit.tune" or name.startswith("rlkit.tune."):
            return True
        if name == "rlkit" or name.startswith("rlkit."):
            return False
        return not ((name == "matplotlib" or name.startswith("matplotlib.")) and record.levelno < logging.WARNING)


@contextlib.contextmanager
def study_log(folder: Path) -> Iterator[None]:
    """While the block runs, the log files written into the study directory ``folder`` by handlers
    on this module's logger or above it (``tune.py``: Hydra's job logging, ``tune.log``) take only the
    study's own lines (:class:`_StudyLines`); the handlers are left as they were afterwards."""
    where = folder.resolve()
    handlers: list[logging.Handler] = []
    current: logging.Logger | None = log
    while current is not None:
        handlers += [h for h in current.handlers
                     if isinstance(h, logging.FileHandler) and Path(h.baseFilename).parent == where]
        current = current.parent if current.propagate else None
    only = _StudyLines()
    for handler in handlers:
        handler.addFilter(only)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(only)


def _run_workers(study: optuna.Study, base: DictConfig, settings: TuneSettings, slots: int, n_trials: int,
                 show: Callable[[optuna.Study], None]) -> None:
    """Runs ``settings.jobs`` worker processes (spawned: a fresh interpreter each) on the study's
    storage and prints a progress line whenever a trial finishes, until all have returned. SIGINT
    and SIGTERM are passed on to the workers, which mark their trials interrupted and end; this
    waits for them, then stops."""
    container = OmegaConf.to_container(base, resolve=True)
    context = multiprocessing.get_context("spawn")
    count = min(settings.jobs, n_trials)  # (a worker more than trials would only start up)
    ready = [context.Event() for _ in range(count)]
    workers = [context.Process(target=_worker_main, args=(container, settings, slots, n_trials, k, os.getpid(),
                                                          ready[k]), daemon=False) for k in range(count)]

    signalled: set[int] = set()  # the workers a stop reached

    def forward(signum: int) -> None:
        for k, (worker, started) in enumerate(zip(workers, ready)):
            if worker.pid is not None and worker.exitcode is None:
                with contextlib.suppress(ProcessLookupError):  # (one still starting has SIGINT ignored, no trial)
                    os.kill(worker.pid, signum if started.is_set() else signal.SIGTERM)
                signalled.add(k)

    with _stop_on_signals(forward):
        try:
            for worker in workers:
                # Started with SIGINT ignored (inherited through exec): until it is in its own process
                # group, a Ctrl-C at the terminal would reach it besides the one passed on.
                with _GATE.shut():
                    keep = signal.signal(signal.SIGINT, signal.SIG_IGN) if _in_main_thread() else None
                    try:
                        worker.start()
                    finally:
                        if keep is not None:
                            signal.signal(signal.SIGINT, keep)
            seen = counts(study.get_trials(deepcopy=False)).finished  # (its line is printed already)
            while any(worker.is_alive() for worker in workers):
                with contextlib.suppress(SQLAlchemyError, OSError):  # (a busy database: the next look shows it)
                    finished = counts(study.get_trials(deepcopy=False)).finished
                    if finished != seen:
                        seen = finished
                        show(study)
                time.sleep(POLL_S)
        except BaseException as stop:  # (a worker started during a signal had no pid yet: it gets it now;
            # on an error of this process's, every worker stops)
            signum = stop.signum if isinstance(stop, StudyInterrupted) else signal.SIGTERM
            for k, worker in enumerate(workers):
                if k not in signalled and worker.pid is not None and worker.exitcode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.pid, signum if ready[k].is_set() else signal.SIGTERM)
            raise
        finally:  # (after a signal: the workers mark their trials interrupted, then end)
            with _GATE.shut():
                _join(workers)
    failed = [w.exitcode for w in workers if w.exitcode not in (0, None)]
    if failed and counts(study.get_trials(deepcopy=False)).finished < n_trials:
        raise RlkitError(f"{len(failed)} of {len(workers)} workers ended with an error (exit status {failed[0]}) "
                         f"before the study's {n_trials} trials finished; rerun the same command to resume")


def _join(workers: list[Any]) -> None:
    """Waits for the started workers, saying so on stderr when it takes long (after a stop, each is
    recording its trial)."""
    said, since = False, time.monotonic()
    started = [worker for worker in workers if worker.pid is not None]
    while any(worker.is_alive() for worker in started):
        for worker in started:
            worker.join(timeout=POLL_S)
        alive = sum(worker.is_alive() for worker in started)
        if alive and not said and time.monotonic() - since > 5 * POLL_S:
            print(f"tune: waiting for {alive} worker(s) to end", file=sys.stderr, flush=True)
            said = True


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
