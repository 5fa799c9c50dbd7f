"""The training loop: collect -> (store -> sample) -> loss -> step -> target update -> log.

The trainer knows no algorithm by name. With a replay buffer it runs the off-policy loop (every
collected batch is stored, and ``updates_per_batch`` sampled minibatches are optimised once
``learning_starts`` frames have been seen); without one it runs the on-policy loop (each collected
``[num_envs, T]`` rollout is optimised once, the loss computing its own advantages).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from tensordict import TensorDictBase

from rlkit.data.slices import NoValidSliceError
from rlkit.errors import CheckpointMismatchError, ConfigError, RlkitError, failure_line
from rlkit.trainers.callbacks import TrainerCallback, check_callbacks
from rlkit.trainers.evaluator import return_label
from rlkit.trainers.checkpoint import (
    NoSpaceError,
    checkpoint_dir,
    no_space_error,
    load_resume_state,
    rng_state,
    save_run_checkpoint,
    set_rng_state,
)
from rlkit.trainers.loggers import EndReason, Logger, NoneLogger
from rlkit.utils.devices import reading_waits
from rlkit.utils.state import first_mismatch
from rlkit.utils.values import as_int, as_real

#: The run's log (``train.log``): evaluations, checkpoints and the end, one line each.
log = logging.getLogger("rlkit")

#: How :meth:`Trainer.fit` ended, in ``train.log``'s ``end:`` line.
END_WORDS: dict[str, str] = {"budget": "budget done", "target": "target reached", "callback": "stopped by a callback",
                             "non_finite": "non-finite",
                             "interrupted": "interrupted", "error": "failed"}


# Gradients of at most this many entries get their norm from one concatenated copy (see _grad_norm);
# larger ones from per-tensor norms, cheaper than the copy from about 1e5 entries on (measured on one
# thread: 29 against 40 us at 65k entries, 88 against 62 us at MinAtar's 133k).
_CONCAT_NORM_MAX = 100_000


class NonFiniteError(RlkitError, RuntimeError):
    """A loss or gradient became NaN/inf; the message names the update step and the key."""


class TrainingInterrupted(RuntimeError):
    """A stop signal (:data:`STOP_SIGNALS`) arrived; a checkpoint was written before this was raised."""

    def __init__(self, signum: int, checkpoint: Path) -> None:
        self.signum = signum
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        super().__init__(f"training interrupted by {name}; checkpoint written to {checkpoint}")


#: The signals that stop training with a checkpoint (status 128 + the signal's number): Ctrl-C
#: (SIGINT), SIGTERM (a job scheduler, ``kill``) and, where the platform has it, SIGHUP (the terminal
#: closed, an ssh session dropped).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                                                 if hasattr(signal, name))


def stop_signals() -> tuple[signal.Signals, ...]:
    """The :data:`STOP_SIGNALS` a trainer handles now: all of them in the main thread (Python lets no
    other thread install handlers), less those the process ignores: a run started with ``nohup`` goes
    on when its terminal closes, and one a shell started in the background (``cmd &``, where Ctrl-C
    is ignored for it, as Python itself then leaves it) goes on past a Ctrl-C at the terminal."""
    if threading.current_thread() is not threading.main_thread():
        return ()
    return tuple(s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN)


def nothing_to_stop(signum: int, frame: object) -> None:  # noqa: ARG001 (signal API)
    """The handler of a stop signal once a run has completed (it closes its envs and loggers, records
    that it closed, the process exits): nothing is left to stop, so the run's outcome stands, and
    the signal is noted; the next one of the same signal takes its default action at once."""
    signal.signal(signum, signal.SIG_DFL)
    stop_note(f"{signal.Signals(signum).name} received after the run completed: nothing to stop")


def stop_note(message: str) -> None:
    """Writes ``message`` on stderr at once and into ``train.log``: what a stop signal will do. Safe
    in a signal handler (``os.write`` takes no lock the interrupted code may hold), and a closed
    terminal (SIGHUP) or pipe does not fail the run."""
    try:
        os.write(2, f"\n{message}\n".encode())
    except OSError:
        pass
    log.info("%s", message)


#: Learning-rate schedules (:attr:`TrainerSettings.lr_schedule`).
LR_SCHEDULES = ("constant", "linear")


@dataclass
class TrainerSettings:
    """Loop settings; frame counts are env frames over all envs."""

    total_frames: int
    log_interval: int = 2000
    eval_interval: int = 10_000
    checkpoint_interval: int = 50_000
    keep_checkpoints: bool = False
    early_stop_return: float | None = None
    max_grad_norm: float | None = None
    #: ``"constant"``, or ``"linear"``: every param group's learning rate decays from its initial
    #: value to 0 at ``total_frames``, ``lr * (1 - frames / total_frames)`` with the frames
    #: collected so far (stable-baselines3's ``lin_<lr>`` schedules).
    lr_schedule: str = "constant"
    #: frames between recorded evaluation episodes (the trainer's ``video``); ``None``: none
    video_interval: int | None = None
    # off-policy only
    batch_size: int = 128
    slice_len: int | None = None  # sample [batch_size // slice_len, slice_len] slices when set
    learning_starts: int = 0
    updates_per_batch: int = 1

    def __post_init__(self) -> None:
        """Refuses what the config checks refuse, for settings built in Python (a negative interval
        silently disabled its feature; a negative ``max_grad_norm`` turned clipping into ascent)."""
        def whole(value: Any, low: int) -> bool:
            number = as_int(value)
            return number is not None and number >= low

        def positive(value: Any) -> bool:
            number = as_real(value)
            return number is not None and math.isfinite(number) and number > 0

        rules: list[tuple[str, Any, bool, str]] = [
            ("total_frames", self.total_frames, whole(self.total_frames, 1), "an integer >= 1"),
            ("batch_size", self.batch_size, whole(self.batch_size, 1), "an integer >= 1"),
            ("updates_per_batch", self.updates_per_batch, whole(self.updates_per_batch, 1), "an integer >= 1"),
            ("learning_starts", self.learning_starts, whole(self.learning_starts, 0), "an integer >= 0"),
            ("max_grad_norm", self.max_grad_norm, self.max_grad_norm is None or positive(self.max_grad_norm),
             "a finite number > 0, or None (no clipping)"),
            ("slice_len", self.slice_len, self.slice_len is None or whole(self.slice_len, 1), "an integer >= 1, or None"),
            ("video_interval", self.video_interval, self.video_interval is None or whole(self.video_interval, 1),
             "an integer >= 1, or None"),
            ("early_stop_return", self.early_stop_return,
             self.early_stop_return is None or (as_real(self.early_stop_return) is not None
                                                and not math.isnan(float(self.early_stop_return))), "a number, or None"),
        ]
        rules += [(name, getattr(self, name), whole(getattr(self, name), 0), "an integer >= 0 (0: never)")
                  for name in ("log_interval", "eval_interval", "checkpoint_interval")]
        for name, value, ok, expected in rules:
            if not ok:
                raise ValueError(f"TrainerSettings: {name}={value!r} is invalid; expected {expected}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; valid choices: {list(LR_SCHEDULES)}")


#: Seconds within which the same signal again is the first one delivered twice, not a second signal
#: (a job scheduler signals every process of a job, and a parent passes the signal on to its children).
REPEAT_S = 1.0


def announce_stop_after_evaluation(signum: int, frames: int, last: bool = False) -> None:
    """Says at once (stderr and ``train.log``) that a signal arrived during an evaluation, which runs
    to its end before the checkpoint: an Atari evaluation of 10 games takes minutes, and a stop that
    says nothing invites the second signal that stops without a checkpoint. During the run's ``last``
    evaluation (its budget done) there is nothing left to stop: the run completes when it ends.

    Examples:
        >>> import signal
        >>> from rlkit.trainers.trainer import announce_stop_after_evaluation
        >>> announce_stop_after_evaluation(signal.SIGTERM, 9000, last=True)  # (its line goes to stderr)
    """
    name = signal.Signals(signum).name
    again = "a second Ctrl-C" if signum == signal.SIGINT else "a second signal"
    if last:
        message = (f"{name} received during the run's last evaluation at frame {frames:,}: its budget is done, so "
                   f"the run completes when the evaluation ends (exit status 0, nothing to resume); {again} stops "
                   f"at once, without finishing it (a resume then does)")
    else:
        message = (f"{name} received during an evaluation at frame {frames:,}: the run stops when it ends, with a "
                   f"checkpoint; {again} stops at once, without one")
    stop_note(message)


def completed_despite(signum: int, frames: int) -> None:
    """Says (stderr and ``train.log``) that a stop signal arrived when only the run's end was left (its
    budget done, its last evaluation begun or written), and the run completed."""
    stop_note(f"{signal.Signals(signum).name} received at the end of the run (frame {frames:,}: its budget done, "
              "its last evaluation begun): the run completed; nothing to resume")


@contextlib.contextmanager
def evaluating(trainer: Any) -> Iterator[None]:
    """Marks ``trainer`` (its ``_evaluating``) as running an evaluation while the block runs: a stop
    signal then is announced at once (:func:`announce_stop_after_evaluation`)."""
    trainer._evaluating = True
    try:
        yield
    finally:
        trainer._evaluating = False


def checkpoint_at(saved: tuple[int, Path] | None, frames: int) -> Path | None:
    """The checkpoint ``saved`` (``(frames, path)`` of the last one written, None once the state
    moved on) when it holds the state at ``frames``: a stop right after a periodic checkpoint reuses
    it (writing the same state again cost 7 GB for a full Atari replay)."""
    return saved[1] if saved is not None and saved[0] == frames else None


def repeat_of(first: int | None, first_at: float, signum: int) -> bool:
    """Whether ``signum``, arriving now, is ``first`` (received at ``time.monotonic()`` ``first_at``)
    delivered again within :data:`REPEAT_S` seconds."""
    return first == signum and time.monotonic() - first_at < REPEAT_S


def due(frames: int, last: int, interval: int) -> bool:
    """Whether a task run every ``interval`` frames (an evaluation, a log row, a checkpoint) is due
    at ``frames`` when it last ran at ``last``: ``frames`` has reached a multiple of ``interval`` that
    ``last`` had not. The schedule stays on the grid ``interval, 2 * interval, ...`` whatever the
    frames per batch: with batches of 768 frames and an interval of 1,000 the task runs at 1,536,
    2,304, 3,072 and 4,608 frames, once per multiple passed (not every 1,536 frames, as measuring
    ``interval`` from ``last`` would drift to). ``interval <= 0``: never.

    Examples:
        >>> from rlkit.trainers.trainer import due
        >>> last, ran = 0, []
        >>> for frames in range(768, 5000, 768):
        ...     if due(frames, last, 1000):
        ...         last = frames
        ...         ran.append(frames)
        >>> ran
        [1536, 2304, 3072, 4608]
    """
    return interval > 0 and frames // interval > last // interval


def sample_slices(replay: Any, settings: TrainerSettings, frames: int) -> TensorDictBase:
    """``replay.sample_slices`` with the settings' batch of ``[batch_size // slice_len, slice_len]``
    slices; where the replay holds no episode piece that long, a one-line error naming the setting."""
    assert settings.slice_len is not None  # (called for slice sampling only)
    try:
        return replay.sample_slices(max(1, settings.batch_size // settings.slice_len), settings.slice_len)
    except NoValidSliceError:
        raise ConfigError(f"at frame {frames:,} the replay holds no {settings.slice_len} consecutive steps of one "
                          f"episode (slice_len={settings.slice_len}): the env's episodes, or the steps collected before "
                          "the first update (algo.learning_starts), are shorter; give a shorter algo.slice_len, a "
                          "later algo.learning_starts, or value_estimator=td0") from None


class Trainer:
    """Runs training to ``total_frames``, logging, evaluating and checkpointing along the way.

    Args:
        collector: yields batches; exposes ``frames``, ``episode_returns``, ``episode_lengths`` and
            ``state_dict``/``load_state_dict``.
        loss_module: a :class:`rlkit.objectives.LossModule`; the sum of its ``loss_*`` entries is optimised.
        optimizer: over ``loss_module.parameters()``.
        logger: a :class:`rlkit.trainers.loggers.Logger` (``log_metrics(metrics, step)``); none
            logs nothing. Outputs that write files can be attached later (:meth:`attach_outputs`),
            once a resumed state has been checked.
        run_dir: checkpoints go to ``run_dir / "checkpoints"``.
        settings: loop settings.
        replay_buffer: present for off-policy algorithms.
        target_updater: ``SoftUpdate``/``HardUpdate``, stepped after every update.
        exploration: a module with ``step(frames)`` and ``eps`` (epsilon-greedy), stepped per batch.
        evaluator: callable returning ``{"eval_return": ...}``.
        episodes: an :class:`~rlkit.trainers.episodes.EpisodeRecorder` for every finished episode.
        video: called with the frames every ``settings.video_interval`` frames to record an
            evaluation episode (a :class:`~rlkit.trainers.video.VideoRecorder`); closed with the trainer.
        callbacks: :class:`~rlkit.trainers.TrainerCallback` objects: each one's ``on_evaluation`` is
            called after every evaluation and may ask the trainer to stop (a tuner prunes through it).

    Examples:
        >>> import tempfile
        >>> import torch
        >>> from rlkit.collectors import Collector
        >>> from rlkit.envs import GymEnv
        >>> from rlkit.modules import Categorical, ProbabilisticActor, SafeModule, ValueOperator
        >>> from rlkit.objectives import A2CLoss
        >>> from rlkit.trainers import Trainer, TrainerSettings
        >>> env = GymEnv("CartPole-v1", num_envs=2, seed=0)
        >>> actor = ProbabilisticActor(SafeModule(torch.nn.Linear(4, 2), in_keys=["observation"], out_keys=["logits"]),
        ...                            in_keys=["logits"], spec=env.action_spec, distribution_class=Categorical)
        >>> loss = A2CLoss(actor, ValueOperator(torch.nn.Linear(4, 1)))
        >>> trainer = Trainer(collector=Collector(env, actor, frames_per_batch=32, total_frames=256),
        ...                   loss_module=loss, optimizer=torch.optim.Adam(loss.parameters(), lr=1e-3),
        ...                   run_dir=tempfile.mkdtemp(), settings=TrainerSettings(total_frames=256))
        >>> trainer.fit()  # the last evaluation's metrics: none without an evaluator
        {}
        >>> trainer.frames, trainer.updates, trainer.checkpoint_path.is_file()
        (256, 8, True)
    """

    _evaluating = False  # an evaluation is running (a stop signal is announced: see _on_signal)
    _saved: tuple[int, Path] | None = None  # (frames, path) of the last checkpoint, while it is current

    def __init__(self, *, collector, loss_module, optimizer: torch.optim.Optimizer, run_dir,
                 settings: TrainerSettings, logger: Logger | None = None, replay_buffer=None,
                 target_updater=None, exploration=None, evaluator: Callable[[], dict] | None = None,
                 episodes=None, video: Callable[[int], object] | None = None,
                 callbacks: Sequence[TrainerCallback] = ()) -> None:
        self.collector = collector
        self.loss_module = loss_module
        self.optimizer = optimizer
        self.logger: Logger = logger if logger is not None else NoneLogger()
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.replay_buffer = replay_buffer
        self.target_updater = target_updater
        self.exploration = exploration
        self.evaluator = evaluator
        self.episodes = episodes
        self.video = video
        self.callbacks = check_callbacks(callbacks)
        #: The run's values of the config keys its checkpoints restore, saved with each checkpoint
        #: (set by :func:`rlkit.run.run`; a resume compares them with the run's ``config.yaml``).
        self.restored_config: dict[str, Any] = {}
        self.params = [p for p in loss_module.parameters() if p.requires_grad]
        collected = getattr(collector, "total_frames", settings.total_frames)
        if collected != settings.total_frames:  # (the schedules and the progress read the settings')
            raise ValueError(f"the collector collects {collected} frames but settings.total_frames is "
                             f"{settings.total_frames}; give both the same budget")
        self._base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        # How the unclipped norm is taken (decided once: the parameters do not change). On one device
        # and dtype, small networks: one norm over the concatenated gradients; larger ones:
        # get_total_norm's numbers (the norm of the per-tensor norms) without its grouping by device
        # and dtype; otherwise get_total_norm itself.
        one_kind = len({(p.device, p.dtype) for p in self.params}) <= 1
        small = sum(p.numel() for p in self.params) <= _CONCAT_NORM_MAX
        self._norm_by = ("concat" if small else "foreach") if one_kind else "grouped"
        self.frames = 0
        self.updates = 0
        self.log_rows = 0  # rows logged so far; a resume drops the rows logged after its checkpoint
        self._window = _Window()
        self._last = {"log": 0, "eval": 0, "checkpoint": 0, "video": 0}
        self._signal: int | None = None
        self._signal_at = 0.0
        self.last_eval: dict[str, float] = {}

    def attach_outputs(self, logger: Logger, episodes=None) -> None:
        """Sets the logger and the episode recorder (the parts that write files), replacing (and
        closing) the current logger."""
        self.logger.close()
        self.logger = logger
        self.episodes = episodes

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return checkpoint_dir(self.run_dir) / "last.pt"

    def _components(self) -> dict[str, object]:
        parts = {"loss_module": self.loss_module, "optimizer": self.optimizer, "replay_buffer": self.replay_buffer,
                 "target_updater": self.target_updater, "exploration": self.exploration}
        return {name: part for name, part in parts.items() if part is not None}

    def state_dict(self) -> dict:
        state = {
            "frames": self.frames,
            "updates": self.updates,
            "log_rows": self.log_rows,
            "last": dict(self._last),
            "window": self._window.state_dict(),
            "last_eval": dict(self.last_eval),
            "loss_module": self.loss_module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "collector": self.collector.state_dict(),
            "rng": rng_state(),
            # What the state belongs to, so that a checkpoint of another run is named as such.
            "components": {name: _class_name(part) for name, part in self._components().items()},
        }
        if self.restored_config:
            state["restored_config"] = dict(self.restored_config)
        if self.replay_buffer is not None:
            state["replay_buffer"] = self.replay_buffer.state_dict()
        if self.target_updater is not None:
            state["target_updater"] = self.target_updater.state_dict()
        if self.exploration is not None:
            state["exploration"] = self.exploration.state_dict()
        return state

    def check_state(self, state: dict) -> None:
        """Refuses a state that does not belong to this trainer, before anything is loaded: another
        algorithm, other network shapes, another optimiser or replay layout.

        Raises:
            CheckpointMismatchError: naming the first mismatch (component, key path, both sides).
        """
        mine = self._components()
        saved = state.get("components")
        if saved is not None:
            mismatch = components_mismatch({k: _class_name(v) for k, v in mine.items()}, saved)
            if mismatch:
                raise CheckpointMismatchError(mismatch)
        for name in ("replay_buffer", "target_updater", "exploration"):
            if (name in state) != (name in mine):
                have = f"has a {name}" if name in state else f"has no {name}"
                raise CheckpointMismatchError(f"the checkpoint {have}, this run "
                                              f"{'has none' if name in state else 'has one'}")
        checks: dict[str, Callable[..., str | None]] = {
            "loss_module": lambda: first_mismatch(dict(self.loss_module.state_dict()), dict(state["loss_module"]),
                                                  "loss_module"),
            "optimizer": lambda: _optimizer_mismatch(self.optimizer, state["optimizer"]),
        }
        if self.replay_buffer is not None:
            checks["replay_buffer"] = lambda: self.replay_buffer.state_mismatch(state["replay_buffer"])
        for name in ("target_updater", "exploration"):
            part = mine.get(name)
            if part is not None:
                checks[name] = lambda part=part, name=name: first_mismatch(part.state_dict(), state[name], name)
        for check in checks.values():
            mismatch = check()
            if mismatch:
                raise CheckpointMismatchError(mismatch)

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict` after :meth:`check_state`.

        Raises:
            CheckpointMismatchError: the state belongs to another run (nothing has been loaded), or a
                component refused its part (named).
        """
        self.check_state(state)
        try:
            self._load(state)
        except (KeyError, ValueError, RuntimeError, TypeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointMismatchError(f"it does not fit this run: {first}") from err

    def _load(self, state: dict) -> None:
        self._saved = None  # (the last checkpoint written is not this state)
        self.frames = int(state["frames"])
        self.updates = int(state["updates"])
        self.log_rows = int(state.get("log_rows", 0))
        self._last = {"video": 0, **state["last"]}  # (checkpoints from before videos have no "video")
        self._window.load_state_dict(state["window"])
        self.last_eval = dict(state["last_eval"])
        self.loss_module.load_state_dict(state["loss_module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.collector.load_state_dict(state["collector"])
        if self.replay_buffer is not None:
            self.replay_buffer.load_state_dict(state["replay_buffer"])
        if self.target_updater is not None:
            self.target_updater.load_state_dict(state["target_updater"])
        if self.exploration is not None:
            self.exploration.load_state_dict(state["exploration"])
        set_rng_state(state["rng"])

    def save(self, snapshot: bool = False) -> Path:
        """Writes ``checkpoints/last.pt`` atomically (and a ``step_<frames>.pt`` snapshot when asked)."""
        keep = self.settings.checkpoint_interval or None if snapshot else None
        path = save_run_checkpoint(self.run_dir, self.state_dict(), frames=self.frames, keep_every=keep)
        log.info("checkpoint: frame %d -> %s", self.frames, path)
        self._saved = (self.frames, path)
        return path

    def resume(self, checkpoint) -> None:
        """Restores everything saved by :meth:`save`; the run then continues bit for bit."""
        self.load_state_dict(load_resume_state(checkpoint))  # (the replay mapped: copied in once)

    # -- the loop -------------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Trains until ``total_frames`` (or early stop); returns the last evaluation metrics.

        However it ends, the logger hears why first (:meth:`Logger.log_end`: ``budget``, ``target``,
        ``non_finite`` or ``interrupted``) and ``train.log`` gets an ``end:`` line.

        A stop signal (SIGINT, SIGTERM, SIGHUP: :data:`STOP_SIGNALS`) ends training after the batch it
        arrived in (after the evaluation it arrived in) with a checkpoint: :class:`TrainingInterrupted`,
        and a resume continues the run. A signal that arrives once the budget is done and its last
        evaluation has started leaves nothing to stop: the run completes, as without the signal (and
        says so), so that a run ends either complete or resumable, never interrupted with nothing to
        resume. A signal after the last batch but before the closing evaluation stops the run with
        the checkpoint of its last frame (written before that evaluation): the resume evaluates.

        Raises:
            NonFiniteError: a loss or gradient became NaN/inf (nothing of that update was applied).
            TrainingInterrupted: a stop signal arrived; a checkpoint was written first.
            KeyboardInterrupt: a second signal arrived before the first was handled (no checkpoint).
        """
        stops = stop_signals()
        previous = {s: signal.signal(s, self._on_signal) for s in stops}
        self._signal, self._saved = None, None
        self._session = time.perf_counter()
        try:
            self._wall = time.perf_counter()
            self._wall_frames = self.frames
            stop = False
            for batch in self._batches():
                self.frames += batch.numel()
                if self.replay_buffer is not None:
                    self._off_policy_step(batch)
                else:
                    self._optimise(batch)
                if self.exploration is not None:
                    self.exploration.step(batch.numel())
                returns, lengths = self.collector.episode_returns, self.collector.episode_lengths
                self._window.add_episodes(returns, lengths)
                if self.episodes is not None and len(returns):
                    self.episodes.record(self.frames, returns, lengths)
                stop = self._periodic()
                # (an early stop ends the run here anyway: it completes, as it would have without the signal)
                if self._signal is not None and not (stop or self._only_the_end_left()):
                    raise TrainingInterrupted(self._signal, checkpoint_at(self._saved, self.frames) or self.save())
                if stop:
                    break
            self._finish()
            if self._signal is not None:
                completed_despite(self._signal, self.frames)
            target = self.settings.early_stop_return
            if stop and target is not None and self.last_eval["eval_return"] >= target:
                self._end("target", f"stopped early at frame {self.frames:,}: {self._return_label} "
                                    f"{self.last_eval['eval_return']:.4g} reached the target {target:.4g}")
            elif stop:
                self._end("callback", f"stopped early at frame {self.frames:,} by a callback ({self._return_label} "
                                      f"{self.last_eval['eval_return']:.4g})")
            else:
                self._end("budget", f"done: {self.frames:,} frames")
            return dict(self.last_eval)
        except NonFiniteError as err:
            self._end("non_finite", f"stopped: {str(err).split(';')[0]}", failing=True)
            raise
        except TrainingInterrupted as stop_signal:
            self._end("interrupted", f"interrupted by {signal.Signals(stop_signal.signum).name} at frame "
                                     f"{self.frames:,}; checkpoint written", failing=True)
            raise
        except KeyboardInterrupt:
            self._end("interrupted", f"interrupted at frame {self.frames:,} by a second signal; no checkpoint "
                                     f"written since {self._good_checkpoint()}", failing=True)
            raise
        except NoSpaceError as err:  # (its message names the last good checkpoint)
            self._end("error", f"failed at frame {self.frames:,}: {err}", failing=True)
            raise
        except OSError as err:  # a full disk met by another write (a CSV row): said as a checkpoint's is
            full = no_space_error(err, self.checkpoint_path.parent.parent, self._last_good())
            reason = full if full is not None else f"{failure_line(err)}; the last checkpoint is {self._good_checkpoint()}"
            self._end("error", f"failed at frame {self.frames:,}: {reason}", failing=True)
            if full is not None:
                raise full from err
            raise
        except Exception as err:  # any other failure: train.log and the loggers still hear how it ended
            self._end("error", f"failed at frame {self.frames:,}: {failure_line(err)}; the last checkpoint is "
                               f"{self._good_checkpoint()}", failing=True)
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _end(self, reason: EndReason, message: str, *, failing: bool = False) -> None:
        """Writes ``train.log``'s ``end:`` line and tells the logger why training ended. While an error
        propagates (``failing``), a logger that fails in turn is logged, not raised: it must not hide
        the error."""
        wall = time.perf_counter() - self._session
        final = ", ".join(f"{key} {value:.6g}" for key, value in self.last_eval.items()) or "no evaluation"
        detail = "" if reason == "budget" else f" ({message})"
        log.info("end: %s at %d frames, %d updates, wall %.1f s%s; %s", END_WORDS[reason], self.frames,
                 self.updates, wall, detail, final)
        try:
            self.logger.log_end(reason, message, step=self.frames)
        except Exception:
            if not failing:
                raise
            log.exception("the logger failed while reporting the end of training")

    def close(self) -> None:
        """Closes the logger and the environments (idempotent)."""
        self.logger.close()
        for owner in (self.collector, self.evaluator, self.episodes, self.video):
            close = getattr(owner, "close", None)
            if close is not None:
                close()

    def _batches(self) -> Iterator[TensorDictBase]:
        return iter(self.collector)

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002 (signal API)
        if self._signal is not None:  # a second signal: stop now
            if repeat_of(self._signal, self._signal_at, signum):
                return
            raise KeyboardInterrupt
        self._signal, self._signal_at = signum, time.monotonic()
        if self._evaluating:
            announce_stop_after_evaluation(signum, self.frames, last=self._only_the_end_left())

    def _only_the_end_left(self) -> bool:
        """Whether the run has nothing left to do but its end: the budget is done and its last
        evaluation written (a stop signal that arrived during it, or after it, then completes the run:
        its checkpoint would hold a complete run, which a resume refuses)."""
        return self.frames >= self.settings.total_frames and not self._closing_eval_due()

    def _off_policy_step(self, batch: TensorDictBase) -> None:
        s = self.settings
        self.replay_buffer.extend(batch if batch.batch_dims == 1 else batch.reshape(-1))
        if self.frames < s.learning_starts:
            return
        for _ in range(s.updates_per_batch):
            if s.slice_len:
                sample = sample_slices(self.replay_buffer, s, self.frames)
            else:
                sample = self.replay_buffer.sample(s.batch_size)
            self._optimise(sample)
            if hasattr(self.replay_buffer, "update_tensordict_priority"):
                self.replay_buffer.update_tensordict_priority(sample)

    def _optimise(self, sample: TensorDictBase) -> None:
        losses = self.loss_module(sample)
        loss_keys, extras = logged_outputs(losses)
        total = losses[loss_keys[0]] if len(loss_keys) == 1 else sum(losses[k] for k in loss_keys)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grad_norm = self._grad_norm()
        # One check for both (a non-finite loss gives non-finite gradients); nothing is applied
        # before it passes. The log window then sums the same host floats (read_logged_scalars).
        total_value, norm_value, loss_values, extra_values = read_logged_scalars(
            total, grad_norm, losses, loss_keys, extras)
        if not (math.isfinite(total_value) and math.isfinite(norm_value)):
            self._raise_non_finite(losses, loss_keys, norm_value)
        scale_learning_rates(self.optimizer, self._base_lrs, self.settings, self.frames)
        self.optimizer.step()
        self.updates += 1
        if self.target_updater is not None:
            self.target_updater.step()
        # (None: a loss with several entries on the CPU, where reading them now costs the least)
        values = loss_values if loss_values is not None else [float(losses[k].detach()) for k in loss_keys]
        logged = dict(zip(loss_keys, values))
        logged.update(zip(extras, extra_values))  # (the loss's other scalars, averaged over the window as the losses)
        self._window.add_losses(logged, norm_value)

    def _raise_non_finite(self, losses: TensorDictBase, loss_keys: list[str], norm: float = math.inf) -> None:
        """Raises the :class:`NonFiniteError` of an update whose loss or gradient norm ``norm`` is not
        finite: naming the non-finite losses, else the parameters with non-finite gradients, else
        (every gradient finite) the gradient norm that overflowed."""
        where = f"at update {self.updates + 1} (frame {self.frames})"
        bad = [k for k in loss_keys if not bool(torch.isfinite(losses[k]).all())]
        if bad:
            raise NonFiniteError(
                f"non-finite loss {where}: " + ", ".join(f"{k}={float(losses[k].detach())}" for k in bad)
                + f"; the last good checkpoint is {self._good_checkpoint()}"
            )
        names = [n for n, p in self.loss_module.named_parameters()
                 if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        if not names:  # (finite gradients whose squares summed past the float range)
            raise NonFiniteError(f"non-finite gradient norm {where}: the {overflow_words(norm)}; the last good "
                                 f"checkpoint is {self._good_checkpoint()}")
        raise NonFiniteError(
            f"non-finite gradient {where} in {names}; the last good checkpoint is {self._good_checkpoint()}"
        )

    def _grad_norm(self) -> torch.Tensor:
        """The total gradient norm (logged, and the non-finite-gradient check), clipped to
        ``max_grad_norm`` when one is set. Without a limit only the norm is computed: clipping to
        infinity would multiply every gradient by 1."""
        if self.settings.max_grad_norm:
            return torch.nn.utils.clip_grad_norm_(self.params, self.settings.max_grad_norm)
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return torch.zeros((), device=self.params[0].device if self.params else None)
        if self._norm_by == "concat":
            return torch.linalg.vector_norm(torch.cat([g.reshape(-1) for g in grads]))
        if self._norm_by == "foreach":
            return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        return torch.nn.utils.get_total_norm(grads)

    @property
    def _return_label(self) -> str:
        return return_label(getattr(self.evaluator, "epsilon", 0.0))

    def _good_checkpoint(self) -> str:
        return str(self._last_good() or "none (no checkpoint written yet)")

    def _last_good(self) -> Path | None:
        return self.checkpoint_path if self.checkpoint_path.exists() else None

    def _due(self, name: str, interval: int) -> bool:
        if due(self.frames, self._last[name], interval):
            self._last[name] = self.frames
            return True
        return False

    def _periodic(self) -> bool:
        s = self.settings
        stop = False
        eval_metrics = {}
        if self.evaluator is not None and self._due("eval", s.eval_interval):
            eval_metrics = self._evaluate()
            target = s.early_stop_return
            stop = target is not None and eval_metrics["eval_return"] >= target
            stop = self._notify(eval_metrics) or stop
        if self._due("log", s.log_interval) or eval_metrics or stop:
            self._log(eval_metrics)
        if self._due("checkpoint", s.checkpoint_interval):
            self.save(snapshot=s.keep_checkpoints)
        if self.video is not None and s.video_interval and self._due("video", s.video_interval):
            with evaluating(self):  # (a recorded evaluation episode: a stop signal is announced too)
                self.video(self.frames)
            self._saved = None  # (the recording's draws moved the random state a checkpoint holds)
        return stop

    def _evaluate(self) -> dict[str, float]:
        assert self.evaluator is not None  # (called only with an evaluator)
        with evaluating(self):
            self.last_eval = self.evaluator()
        metrics = dict(self.last_eval)
        mean, std = metrics.pop("eval_return", None), metrics.pop("eval_return_std", None)
        spread = f" ± {std:.4g}" if std is not None else ""
        rest = "".join(f", {key.removeprefix('eval_')} {value:.4g}" for key, value in metrics.items())
        log.info("eval: frame %d: return %s%s%s", self.frames, "?" if mean is None else f"{mean:.4g}", spread, rest)
        return self.last_eval

    def _notify(self, metrics: dict[str, float]) -> bool:
        """Calls every callback's ``on_evaluation`` (all of them, each with its own copy of the
        metrics); True when one asks to stop."""
        answers = [bool(callback.on_evaluation(self.frames, dict(metrics))) for callback in self.callbacks]
        return any(answers)

    def _log(self, extra: dict) -> None:
        now = time.perf_counter()
        metrics = self._window.flush()
        if self.frames > self._wall_frames:  # a second row at the same frames has no rate (not 0)
            metrics["fps"] = (self.frames - self._wall_frames) / max(now - self._wall, 1e-9)
            self._wall, self._wall_frames = now, self.frames
        metrics["updates"] = self.updates
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        if self.exploration is not None and hasattr(self.exploration, "eps"):
            metrics["eps"] = float(self.exploration.eps)
        metrics.update(extra)
        self.logger.log_metrics(metrics, step=self.frames)
        self.log_rows += 1

    def end_pending(self) -> bool:
        """Whether the end of training still has an evaluation or a row to write at these frames
        (what a run stopped after its last checkpoint, saved first, may not have done)."""
        return self._closing_eval_due() or self._window.pending

    def _closing_eval_due(self) -> bool:
        return self.evaluator is not None and self._last["eval"] != self.frames

    def _finish(self) -> None:
        # Saved before the closing evaluation and row, so the checkpoint of a run stopped at K frames
        # equals a periodic one at K: resuming it to N > K then replays exactly an uninterrupted run.
        if self._last["checkpoint"] != self.frames or self.frames == 0:  # (a periodic one at K is this one)
            self.save()
        if self._signal is not None and self._closing_eval_due():  # (it arrived after the last batch)
            raise TrainingInterrupted(self._signal, checkpoint_at(self._saved, self.frames) or self.save())
        if self._closing_eval_due():
            self._last["eval"] = self.frames
            metrics = self._evaluate()
            self._log(metrics)
            self._notify(metrics)  # (the run ends here whatever the callbacks answer)
        elif self._window.pending:
            self._log({})


class _Window:
    """Accumulates losses and finished episodes between two log rows.

    The losses of an update and its gradient norm arrive as host floats (the trainer reads them for
    its finite check anyway) and are summed in float64. A key missing from an update adds nothing
    there; every mean is over the window's updates."""

    def __init__(self) -> None:
        self.loss_sums: dict[str, float] = {}  # in the order the keys first appeared
        self.grad_norm_sum = 0.0
        self.n_updates = 0
        self.returns: list[float] = []
        self.lengths: list[int] = []

    @property
    def pending(self) -> bool:
        return self.n_updates > 0 or bool(self.returns)

    def add_losses(self, losses: dict[str, float], grad_norm: float) -> None:
        sums = self.loss_sums
        for key, value in losses.items():
            sums[key] = sums.get(key, 0.0) + float(value)
        self.grad_norm_sum += float(grad_norm)
        self.n_updates += 1

    def add_episodes(self, returns: torch.Tensor, lengths: torch.Tensor) -> None:
        if returns is not None and len(returns):
            self.returns.extend(float(r) for r in returns.reshape(-1).tolist())
            self.lengths.extend(int(n) for n in lengths.reshape(-1).tolist())

    def flush(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self.n_updates:
            out.update({k: v / self.n_updates for k, v in self.loss_sums.items()})
            out["grad_norm"] = self.grad_norm_sum / self.n_updates
        if self.returns:
            out["episode_return"] = sum(self.returns) / len(self.returns)
            out["episode_length"] = sum(self.lengths) / len(self.lengths)
            out["episodes"] = len(self.returns)
        type(self).__init__(self)  # (self.__init__(), spelled so that a type checker accepts it)
        return out

    def state_dict(self) -> dict:
        return {
            "loss_sums": {k: torch.tensor(v, dtype=torch.float64) for k, v in self.loss_sums.items()},
            "grad_norm_sum": torch.tensor(self.grad_norm_sum, dtype=torch.float64) if self.n_updates else None,
            "n_updates": self.n_updates,
            "returns": list(self.returns),
            "lengths": list(self.lengths),
        }

    def load_state_dict(self, state: dict) -> None:
        self.loss_sums = {k: float(v) for k, v in state["loss_sums"].items()}
        self.grad_norm_sum = 0.0 if state["grad_norm_sum"] is None else float(state["grad_norm_sum"])
        self.n_updates = int(state["n_updates"])
        self.returns = list(state["returns"])
        self.lengths = list(state["lengths"])


def scale_learning_rates(optimizer: torch.optim.Optimizer, base_lrs: list[float], settings: TrainerSettings,
                         frames: int) -> None:
    """Applies ``settings.lr_schedule`` before an update: ``linear`` sets each group's learning rate
    to its base value times the fraction of ``total_frames`` still to come; ``constant`` leaves them."""
    if settings.lr_schedule == "linear":
        remaining = max(0.0, 1.0 - frames / settings.total_frames)
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * remaining


def overflow_words(norm: float) -> str:
    """What a non-finite gradient norm of finite gradients is, in the words of the non-finite errors.

    Examples:
        >>> from rlkit.trainers.trainer import overflow_words
        >>> overflow_words(float("inf"))
        'gradient norm overflowed (inf), every gradient is finite'
    """
    return f"gradient norm overflowed ({norm}), every gradient is finite"


#: Names the trainer and the CSV logger write themselves: a loss output of one of these names is not
#: logged over them.
TRAINER_METRICS = frozenset({"step", "eps", "grad_norm", "episode_return", "episode_length", "episodes", "lr",
                             "updates", "fps", "eval_return", "eval_length", "eval_return_std"})


def logged_outputs(losses: TensorDictBase, batch_shape: tuple[int, ...] = ()) -> tuple[list[str], list[str]]:
    """The ``loss_*`` entries of a loss's output (summed into the objective and logged) and its other
    real-valued tensor entries of shape ``batch_shape`` (``()``; ``(N,)`` for a seed-stacked loss:
    float, integer or bool), logged beside them as diagnostics (A2C's ``entropy``, a user's loss's
    own figures); not nested tensordicts, non-tensors, other shapes, complex values, nor the names
    the trainer logs itself (:data:`TRAINER_METRICS`).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.trainers.trainer import logged_outputs
        >>> out = TensorDict({"loss_a": torch.tensor(1.0), "entropy": torch.tensor(0.5), "td": torch.ones(3),
        ...                   "clipped": torch.tensor(3), "grad_norm": torch.tensor(2.0),
        ...                   "nested": TensorDict({"x": torch.tensor(1.0)}, [])}, [])
        >>> logged_outputs(out)
        (['loss_a'], ['entropy', 'clipped'])
    """
    loss_keys: list[str] = []
    extras: list[str] = []
    for key, value in losses.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            continue
        if key.startswith("loss_"):
            loss_keys.append(key)
        elif key not in TRAINER_METRICS and tuple(value.shape) == batch_shape and not value.is_complex():
            extras.append(key)
    return loss_keys, extras


def read_logged_scalars(total: torch.Tensor, grad_norm: torch.Tensor, losses: TensorDictBase,
                        loss_keys: list[str], extras: list[str], at_once: bool | None = None) -> tuple[
                            float, float, list[float] | None, list[float]]:
    """The host values of an update's logged scalars, read before its optimiser step: the total loss,
    the gradient norm, each ``loss_*`` entry (``loss_keys``, the total itself for a single one) and
    the loss's other scalars (``extras``); each the double ``float()`` gives (a float32, float16,
    integer or bool scalar converts to a double exactly as ``Tensor.double()`` does).

    ``at_once`` (by default: off the CPU): every value in one transfer (one ``tolist`` of a stacked
    double tensor). On a device each read waits for it, and a read after the optimiser step waits
    for the step too. On the CPU the cheapest reads: two ``float()`` calls (a stacked read costs
    more there), the total and the norm stacked with the extras where there are some, and the loss
    values ``None`` for a loss with several ``loss_*`` entries, which the caller reads after the
    step with ``float()``.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.trainers.trainer import read_logged_scalars
        >>> out = TensorDict({"loss_a": torch.tensor(1.5), "loss_b": torch.tensor(0.25),
        ...                   "entropy": torch.tensor(0.5)}, [])
        >>> total, norm = out["loss_a"] + out["loss_b"], torch.tensor(2.0)
        >>> read_logged_scalars(total, norm, out, ["loss_a", "loss_b"], ["entropy"], at_once=True)
        (1.75, 2.0, [1.5, 0.25], [0.5])
        >>> read_logged_scalars(total, norm, out, ["loss_a", "loss_b"], ["entropy"])
        (1.75, 2.0, None, [0.5])
    """
    if at_once is None:
        at_once = reading_waits(total.device)
    each = loss_keys if at_once and len(loss_keys) > 1 else []  # (a single loss is the total itself)
    if not (at_once or extras):
        total_value = float(total.detach())
        return total_value, float(grad_norm), [total_value] if len(loss_keys) == 1 else None, []
    read = torch.stack([total.detach().double(), grad_norm.detach().double(),
                        *(losses[key].detach().double() for key in (*each, *extras))]).tolist()
    if each:
        loss_values: list[float] | None = read[2:2 + len(each)]
    else:
        loss_values = [read[0]] if len(loss_keys) == 1 else None
    return read[0], read[1], loss_values, read[2 + len(each):]


def components_mismatch(mine: dict[str, str], saved: dict[str, str]) -> str | None:
    """How a checkpoint's components (class names by role) differ from a trainer's, the algorithm
    (its loss) first: another algorithm's checkpoint also lacks or adds a replay buffer, which is
    not the news."""
    if saved.get("loss_module") not in (None, mine.get("loss_module")):
        return f"it was written by another algorithm: its loss is {saved['loss_module']}, this run's is {mine.get('loss_module')}"
    mismatch = first_mismatch(mine, saved, "components", values=True)
    return f"it was written by other components: {mismatch}" if mismatch else None


def _class_name(obj: object) -> str:
    return type(obj).__name__


def _optimizer_mismatch(optimizer: torch.optim.Optimizer, saved: dict) -> str | None:
    """Where an optimiser state does not fit ``optimizer``: its groups and parameter counts, and the
    shape of every per-parameter state tensor (Adam moments of a (202, 84) layer do not fit a (2, 84)
    one). ``torch.optim.Optimizer.load_state_dict`` checks only the counts."""
    groups = optimizer.param_groups
    missing = [key for key in ("state", "param_groups") if key not in saved]
    if missing:
        return f"optimizer state lacks {missing}"
    saved_groups = saved["param_groups"]
    if len(saved_groups) != len(groups):
        return f"optimizer has {len(saved_groups)} parameter groups, this run's has {len(groups)}"
    params: list[tuple[object, torch.Tensor]] = []
    for i, (group, saved_group) in enumerate(zip(groups, saved_groups)):
        if len(saved_group["params"]) != len(group["params"]):
            return (f"optimizer group {i} has {len(saved_group['params'])} parameters, this run's has "
                    f"{len(group['params'])}")
        params.extend(zip(saved_group["params"], group["params"]))
    for index, param in params:
        for name, value in saved["state"].get(index, {}).items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                return (f"optimizer state[{index}][{name!r}] has shape {tuple(value.shape)}, its parameter "
                        f"has shape {tuple(param.shape)}")
    return None
