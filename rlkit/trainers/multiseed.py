"""Several independent seeds trained in one process, their networks evaluated in one batched call.

The seed dimension is the leading dim of every parameter, target parameter and optimiser moment
(the loss's :attr:`~rlkit.objectives.LossModule.stacked_dims` is 1, so each ``loss_*`` entry holds
one loss per seed), of every replayed minibatch and collected rollout (``[N, B]`` / ``[N, E, T]``).
Everything else is per seed, as in ``N`` ordinary runs: each seed's env(s), replay buffer (with its
own sampling generator and priorities), random stream (:class:`~rlkit.utils.seeds.SeedStreams`),
evaluation env, metrics, episodes and early stop. Adam and RMSprop update each parameter entry by
its own gradient and moments, so one optimiser over the stacked parameters is ``N`` optimisers;
the gradient norm (logged, and clipped with ``max_grad_norm``) is each seed's own.

One optimiser updates every seed. Torch's single- and multi-tensor (``foreach``) kernels of Adam
and RMSprop apply one elementwise operation after another, and each operation gives an entry the
same number wherever it sits in a tensor (tested: ``tests/trainers/test_multiseed.py``), so an
optimiser over the ``P`` stacked parameters updates seed ``k`` bit for bit as its run alone would.
The fused kernels do not: they round the last, partial vector of a tensor differently from the
rest, and which entries fall there in a stacked tensor depends on ``N`` (measured: one bias entry
of CartPole's DQN differed by 7e-9 after 165 updates). With ``fused: true`` the optimiser holds
per-seed views of the stacked parameters instead (:func:`seed_views`: ``N x P`` tensors,
seed-major), each the tensor of its ordinary run, and so does an optimiser whose update reduces over
a tensor or keeps per-tensor state (Adafactor factors its second moment over a tensor's last two
dims: stacked, across seeds); which optimisers take which layout is declared in
:func:`rlkit.factories.multiseed_optimizer_layout`. The target
updater copies every seed's targets at once (the seeds update in lockstep, so their counters
agree). Seeds that stop early (``trainer.early_stop``) keep their parameters as they were when they
stopped (a resume whose settings would not stop them trains them on); a non-finite loss or gradient
stops the run naming the seed, or with ``drop_non_finite`` drops that seed (its files end there) and
continues with the others, and ends the run when none is left. An ended seed's directory holds
:data:`SEED_END_FILE`, how it ended (:func:`read_seed_end`).
"""
from __future__ import annotations

import copy
import json
import logging
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Sequence, cast

import numpy as np
import torch
from tensordict import TensorDictBase

from rlkit import keys
from rlkit.collectors.multiseed import MultiSeedCollector
from rlkit.data.seed_replay import SeedReplay
from rlkit.modules import ExplorationType, action_call, set_exploration_type
from rlkit.trainers.callbacks import TrainerCallback, check_callbacks
from rlkit.trainers.checkpoint import checkpoint_dir, no_space_error, rng_state, save_run_checkpoint, set_rng_state
from rlkit.trainers.evaluator import Evaluator, evaluation_metrics, return_label, warn_unfinished
from rlkit.trainers.loggers import EndReason, Logger, NoneLogger
from rlkit.trainers.trainer import (
    LR_SCHEDULES,
    NonFiniteError,
    TrainerSettings,
    stop_signals,
    TrainingInterrupted,
    _class_name,
    announce_stop_after_evaluation,
    checkpoint_at,
    completed_despite,
    components_mismatch,
    _optimizer_mismatch,
    _Window,
    due,
    evaluating,
    logged_outputs,
    overflow_words,
    repeat_of,
    sample_slices,
    scale_learning_rates,
)
from rlkit.errors import CheckpointMismatchError, RunDirError, failure_line
from rlkit.utils.io import atomic_write
from rlkit.utils.state import first_mismatch

__all__ = ["SEED_END_FILE", "MultiSeedEvaluator", "MultiSeedTrainer", "SeedOutputs", "read_seed_end", "seed_views"]

log = logging.getLogger("rlkit")
#: How a seed that ended before its run did ended, in train.log's ``end:`` line (a seed still
#: training when the run ends is given the run's end: see MultiSeedTrainer._end_line).
_STATUS_WORDS = {"stopped": "target reached", "dropped": "dropped: non-finite"}
#: The file in a seed's directory that says how the seed ended before the run did (stopped at the
#: target, or dropped for non-finite values), as the run's ``checkpoints/last.pt`` holds it; absent
#: while the seed trains (see :meth:`MultiSeedTrainer.save`, :func:`read_seed_end`).
SEED_END_FILE = "end.json"
#: Why a seed ended, by its status (the reasons of :meth:`~rlkit.trainers.loggers.Logger.log_end`).
_END_REASONS: dict[str, EndReason] = {"stopped": "target", "dropped": "non_finite"}


def read_seed_end(seed_dir: str | Path) -> dict[str, Any] | None:
    """How the seed of a multi-seed run whose directory is ``seed_dir`` ended before its run did:
    ``{"seed", "status", "reason", "frames", "message"}`` (``status`` ``"stopped"``: it reached the
    early-stop return, ``reason`` ``"target"``; ``"dropped"``: a non-finite loss or gradient with
    ``trainer.drop_non_finite_seeds``, ``reason`` ``"non_finite"``), as of the run's last checkpoint
    (or, when the last seeds were dropped together and the run ended, as of that update); None for a seed that trained to the run's end (or still trains), and for an ordinary run.

    Raises:
        ValueError: the file is there but is not such a record (one line naming it).

    Examples:
        >>> import tempfile
        >>> from rlkit.trainers.multiseed import read_seed_end
        >>> read_seed_end(tempfile.mkdtemp()) is None
        True
    """
    path = Path(seed_dir) / SEED_END_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} cannot be read: {err}") from None
    try:
        record = json.loads(text)
        ok = (isinstance(record, dict) and record.get("status") in _END_REASONS
              and isinstance(record.get("frames"), int) and isinstance(record.get("message"), str))
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{path} is not a seed's end record (expected JSON with status {list(_END_REASONS)}, "
                         "frames and message)")
    return cast(dict, record)


def seed_dropped(seed_dir: str | Path) -> bool:
    """Whether the seed whose directory is ``seed_dir`` was dropped for non-finite values (its
    :func:`read_seed_end` record); False for a damaged record, which the reports name instead.

    Examples:
        >>> import tempfile
        >>> from rlkit.trainers.multiseed import seed_dropped
        >>> seed_dropped(tempfile.mkdtemp())
        False
    """
    try:
        return (read_seed_end(seed_dir) or {}).get("status") == "dropped"
    except ValueError:
        return False


def seed_views(params: Sequence[torch.Tensor], n: int) -> list[list[torch.Tensor]]:
    """Per seed, a leaf view of its slice of every stacked parameter (what the optimiser updates:
    in place, so the stacked parameters follow). The trainer sets their gradients from the stacked
    ones after each backward pass.

    Examples:
        >>> import torch
        >>> from rlkit.trainers.multiseed import seed_views
        >>> w = torch.nn.Parameter(torch.zeros(3, 2))
        >>> views = seed_views([w], 3)
        >>> with torch.no_grad():
        ...     _ = views[1][0].add_(1.0)
        >>> w[:, 0].tolist()
        [0.0, 1.0, 0.0]
    """
    return [[p.detach()[k].requires_grad_() for p in params] for k in range(n)]


class MultiSeedEvaluator:
    """Greedy evaluations of several seeds, one batched policy call per step.

    Each seed's evaluation is that of its own :class:`~rlkit.trainers.Evaluator` (its env, reset
    seed and ε draws); the actions of all seeds come from one call of the seed-stacked greedy
    ``policy`` on the stacked observations. A seed's envs stop stepping once all its episodes ended.

    Args:
        evaluators: one per seed.
        policy: the seed-stacked greedy policy.
        seeds: the seeds, as messages name them (default: their indices).
    """

    def __init__(self, evaluators: Sequence[Evaluator], policy: Any, seeds: Sequence[int] | None = None) -> None:
        self.evaluators = list(evaluators)
        self.seeds = list(seeds) if seeds is not None else list(range(len(self.evaluators)))
        self._action = action_call(policy)
        self._in_keys = list(getattr(policy, "in_keys", [keys.OBSERVATION]))
        #: The seeds' evaluation epsilon (one config: the same for every seed).
        self.epsilon = self.evaluators[0].epsilon if self.evaluators else 0.0

    @torch.no_grad()
    def __call__(self, which: Sequence[int]) -> dict[int, dict[str, float]]:
        """Evaluates seeds ``which`` (indices); returns their metrics by index."""
        evs = self.evaluators
        for k in which:
            evs[k].env.reset(seed=evs[k].seed)
        n = evs[0].env.num_envs
        returns = {k: np.zeros(n, dtype=np.float64) for k in which}
        lengths = {k: np.zeros(n, dtype=np.int64) for k in which}
        finished = {k: np.zeros(n, dtype=bool) for k in which}
        state = [ev.env.next_state_tensors() for ev in evs]
        generators = {k: torch.Generator().manual_seed(evs[k].seed) for k in which}
        running = list(which)
        max_steps = min(evs[k].max_steps for k in which) if which else 0
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            for _ in range(max_steps):
                if not running:
                    break
                inputs = [torch.stack([s[0] if key == keys.OBSERVATION else s[1] for s in state])
                          for key in self._in_keys]
                actions = self._action(*inputs)
                for k in running:
                    action, mask = actions[k], state[k][1]
                    if evs[k].epsilon > 0:
                        action = evs[k].explore(action, mask, generators[k])
                    res = evs[k].env.advance(action)
                    active = ~finished[k]
                    returns[k] += res.raw_reward.astype(np.float64) * active
                    lengths[k] += active
                    finished[k] |= res.done
                    state[k] = (res.observation, res.action_mask)
                running = [k for k in running if not finished[k].all()]
        for k in running:
            warn_unfinished(finished[k], max_steps, f"seed {self.seeds[k]}'s evaluation")
        return {k: evaluation_metrics(returns[k], lengths[k]) for k in which}

    def close(self) -> None:
        for ev in self.evaluators:
            ev.close()


@dataclass
class SeedOutputs:
    """What one seed of a multi-seed run writes and accumulates between log rows."""

    seed: int
    run_dir: Path
    logger: Logger = field(default_factory=NoneLogger)
    episodes: Any = None
    window: _Window = field(default_factory=_Window)
    last_eval: dict[str, float] = field(default_factory=dict)
    log_rows: int = 0
    #: ``"running"``, ``"stopped"`` (reached the early-stop return) or ``"dropped"`` (non-finite).
    status: str = "running"
    #: The env transforms' states when the seed stopped or was dropped (its env keeps stepping in
    #: lockstep, so its live statistics move on): what its agent is loaded with. ``None`` while running.
    frozen_transforms: list[dict] | None = None
    #: The frame at which the seed stopped or was dropped, and the line saying why.
    ended: tuple[int, str] | None = None

    def state_dict(self) -> dict:
        return {"seed": self.seed, "window": self.window.state_dict(), "last_eval": dict(self.last_eval),
                "log_rows": self.log_rows, "status": self.status, "frozen_transforms": self.frozen_transforms,
                "ended": None if self.ended is None else list(self.ended)}

    def load_state_dict(self, state: dict) -> None:
        if int(state["seed"]) != self.seed:
            raise CheckpointMismatchError(f"the checkpoint's seed {state['seed']} is this run's seed {self.seed}'s slot")
        self.window.load_state_dict(state["window"])
        self.last_eval = dict(state["last_eval"])
        self.log_rows = int(state["log_rows"])
        self.status = str(state["status"])
        self.frozen_transforms = state.get("frozen_transforms")  # (absent from checkpoints before it existed)
        ended = state.get("ended")
        self.ended = None if ended is None else (int(ended[0]), str(ended[1]))


class MultiSeedTrainer:
    """The training loop of :class:`~rlkit.trainers.Trainer` for ``N`` seeds at once.

    Args:
        seeds: the seeds, in the order of the leading dim.
        collector: the :class:`~rlkit.collectors.multiseed.MultiSeedCollector`.
        loss_module: the seed-stacked loss (``stacked_dims == 1``).
        optimizer: over ``loss_module.parameters()`` (the stacked tensors), or over their
            :func:`seed_views` (seed-major) for a fused kernel or a per-tensor optimiser.
        run_dir: the run's directory (its checkpoint holds every seed).
        seed_dirs: one output directory per seed (``config.yaml``, ``metrics.csv``, ``episodes.csv``).
        settings: loop settings (frame counts per seed).
        replay: the seeds' replay (off-policy), :func:`rlkit.data.seed_replay.seed_replay`.
        target_updater: over the stacked loss.
        exploration: the ε schedule (one for all seeds: they see the same frames).
        evaluator: a :class:`MultiSeedEvaluator`.
        drop_non_finite: drop a seed whose loss or gradient is non-finite instead of stopping.
    """

    _evaluating = False  # an evaluation is running (a stop signal is announced: see _on_signal)
    _saved: tuple[int, Path] | None = None  # (frames, path) of the last checkpoint, while it is current

    def __init__(self, *, seeds: Sequence[int], collector: MultiSeedCollector, loss_module, optimizer,
                 run_dir, seed_dirs: Sequence[Path], settings: TrainerSettings, replay: SeedReplay | None = None,
                 target_updater=None, exploration=None, evaluator: MultiSeedEvaluator | None = None,
                 drop_non_finite: bool = False, callbacks: Sequence[TrainerCallback] = ()) -> None:
        self.seeds = [int(s) for s in seeds]
        self.collector = collector
        self.loss_module = loss_module
        self.optimizer = optimizer
        self.run_dir = Path(run_dir)
        self.settings = settings
        self.replay = replay
        self.target_updater = target_updater
        self.exploration = exploration
        self.evaluator = evaluator
        self.drop_non_finite = drop_non_finite
        self.callbacks = check_callbacks(callbacks, num_seeds=len(self.seeds))
        self.restored_config: dict[str, Any] = {}  # (as Trainer.restored_config)
        self._halted = False  # a callback asked to stop
        self.outputs = [SeedOutputs(s, Path(d)) for s, d in zip(self.seeds, seed_dirs, strict=True)]
        self.params = [p for p in loss_module.parameters() if p.requires_grad]
        held = [p for group in optimizer.param_groups for p in group["params"]]
        n, per_seed = len(self.seeds), len(self.params)
        self.views: list[list[torch.Tensor]] | None = None  # None: the optimiser steps the stacked tensors
        stacked = len(held) == per_seed and all(a is b for a, b in zip(held, self.params))
        if not stacked and len(held) == n * per_seed:
            self.views = [held[k * per_seed:(k + 1) * per_seed] for k in range(n)]
        elif not stacked:
            raise ValueError(f"the optimiser holds {len(held)} tensors; expected the loss's {per_seed} parameters "
                             f"or their seed_views for {n} seeds ({n * per_seed})")
        if settings.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {settings.lr_schedule!r}; valid choices: {list(LR_SCHEDULES)}")
        self._base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self.frames = 0  # per seed
        self.updates = 0
        self._last = {"log": 0, "eval": 0, "checkpoint": 0}
        self._frozen: dict[int, list[torch.Tensor]] = {}  # seeds that stopped: their parameters then
        #: For each seed a resume reopened (stopped at the target, which this run's settings no longer
        #: stop it at), the line :meth:`fit` logs.
        self._reopened: list[str] = []
        self._signal: int | None = None
        self._signal_at = 0.0
        self.progress: Logger = NoneLogger()

    @property
    def num_seeds(self) -> int:
        return len(self.seeds)

    def attach_outputs(self, loggers: Sequence[Logger], episodes: Sequence[Any], progress: Logger | None = None) -> None:
        """Each seed's logger and episode recorder, and the run's console ``progress`` (fed the frames
        and the returns averaged over the seeds still training; ``None`` for none)."""
        for out, logger, recorder in zip(self.outputs, loggers, episodes, strict=True):
            out.logger.close()
            out.logger, out.episodes = logger, recorder
        self.progress.close()
        self.progress = progress if progress is not None else NoneLogger()

    @property
    def checkpoint_path(self) -> Path:
        return checkpoint_dir(self.run_dir) / "last.pt"

    def _running(self) -> list[int]:
        return [k for k, out in enumerate(self.outputs) if out.status == "running"]

    # -- checkpoints ----------------------------------------------------------------------------
    def _components(self) -> dict[str, object]:
        parts = {"loss_module": self.loss_module, "optimizer": self.optimizer, "target_updater": self.target_updater,
                 "exploration": self.exploration}
        if self.replay is not None:
            parts["replay_buffer"] = self.replay.buffers[0]
        return {name: part for name, part in parts.items() if part is not None}

    def state_dict(self) -> dict:
        state: dict[str, Any] = {
            "frames": self.frames,
            "updates": self.updates,
            "seeds": list(self.seeds),
            "last": dict(self._last),
            "outputs": [out.state_dict() for out in self.outputs],
            "frozen": {str(k): [t.clone() for t in v] for k, v in self._frozen.items()},
            "loss_module": self.loss_module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "collector": self.collector.state_dict(),
            "rng": rng_state(),
            "components": {name: _class_name(part) for name, part in self._components().items()},
        }
        if self.restored_config:
            state["restored_config"] = dict(self.restored_config)
        if self.replay is not None:
            state["replay_buffers"] = self.replay.state_dict()
        if self.target_updater is not None:
            state["target_updater"] = self.target_updater.state_dict()
        if self.exploration is not None:
            state["exploration"] = self.exploration.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restores :meth:`state_dict` after checking that it belongs to this run.

        Raises:
            CheckpointMismatchError: other seeds, components, network shapes, optimiser or replay.
        """
        self._saved = None  # (the last checkpoint written is not this state)
        if [int(s) for s in state.get("seeds", [])] != self.seeds:
            held = (f"seeds {list(state['seeds'])}" if state.get("seeds") is not None
                    else "one seed (an ordinary run's checkpoint, num_seeds 1)")
            raise CheckpointMismatchError(f"it holds {held}, this run trains seeds {self.seeds} (seed and num_seeds "
                                          "cannot change on resume)")
        mismatch = (components_mismatch({k: _class_name(v) for k, v in self._components().items()},
                                        state.get("components", {}))
                    or first_mismatch(dict(self.loss_module.state_dict()), dict(state["loss_module"]), "loss_module")
                    or _optimizer_mismatch(self.optimizer, state["optimizer"]))
        if not mismatch and self.replay is not None:
            mismatch = self.replay.state_mismatch(state["replay_buffers"])
        if mismatch:
            raise CheckpointMismatchError(mismatch)
        try:
            reopen = self._to_reopen(state["outputs"])  # (refuses a run with nothing left to train)
            self.frames, self.updates = int(state["frames"]), int(state["updates"])
            self._last = dict(state["last"])
            for out, part in zip(self.outputs, state["outputs"], strict=True):
                out.load_state_dict(part)
            # On the parameters' device (a checkpoint loads on the CPU): every update copies them back
            # into the parameters, which would otherwise be a host-to-device copy per tensor there.
            self._frozen = {int(k): [t.to(p.device, copy=True) for t, p in zip(v, self.params, strict=True)]
                            for k, v in state["frozen"].items()}
            self._reopened = []
            for k, why in reopen.items():  # (its parameters are those it stopped with: frozen until now)
                out = self.outputs[k]
                self._reopened.append(f"seed {out.seed} trains on from frame {self.frames:,}: it stopped at the "
                                      f"target at frame {out.ended[0] if out.ended else self.frames:,}, {why}")
                out.status, out.ended, out.frozen_transforms = "running", None, None
                self._frozen.pop(k, None)
            self.loss_module.load_state_dict(state["loss_module"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.collector.load_state_dict(state["collector"])
            if self.replay is not None:
                self.replay.load_state_dict(state["replay_buffers"])
            if self.target_updater is not None:
                self.target_updater.load_state_dict(state["target_updater"])
            if self.exploration is not None:
                self.exploration.load_state_dict(state["exploration"])
            set_rng_state(state["rng"])
            self._freeze_ended_seeds_of_older_checkpoints()
        except (KeyError, ValueError, RuntimeError, TypeError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointMismatchError(f"it does not fit this run: {first}") from err

    def _to_reopen(self, outputs: Sequence[dict]) -> dict[int, str]:
        """The seeds of a checkpoint's ``outputs`` that stopped at the target but that this run's
        settings would not have stopped (``trainer.early_stop`` now off, or ``env.target_return`` now
        above the evaluation they stopped at), each with why: they train on, as each seed's ordinary
        run trains on when resumed. A seed that would stop again stays stopped (so that an interrupted
        run resumes bit for bit), and a dropped seed stays dropped.

        Raises:
            RunDirError: every seed has ended and none reopens: nothing would train.
        """
        target = self.settings.early_stop_return
        reopen: dict[int, str] = {}
        for k, out in enumerate(outputs):
            if out["status"] != "stopped":
                continue
            last = float(dict(out["last_eval"]).get("eval_return", math.nan))
            if target is None:
                reopen[k] = "trainer.early_stop is off now"
            elif last < target:
                reopen[k] = f"its {self._return_label} {last:.4g} is below the target {target:.4g} now"
        if reopen or any(out["status"] == "running" for out in outputs):
            return reopen
        how = []
        for out in outputs:
            ended = out.get("ended")
            at = f" at frame {int(ended[0]):,}" if ended else ""
            if out["status"] == "stopped":
                last = float(dict(out["last_eval"]).get("eval_return", math.nan))
                how.append(f"seed {out['seed']} stopped{at}, {self._return_label} {last:.4g} >= target {target:.4g}")
            else:
                how.append(f"seed {out['seed']} {out['status']}{at}"
                           + (" (non-finite)" if out["status"] == "dropped" else ""))
        hint = []
        if any(out["status"] == "stopped" for out in outputs):
            hint.append("a stopped seed trains on with trainer.early_stop=false or an env.target_return above "
                        "its last return")
        if any(out["status"] == "dropped" for out in outputs):
            hint.append("a dropped seed stays dropped: start a new run to train it again")
        raise RunDirError(f"run {self.run_dir}: every seed has ended ({'; '.join(how)}); nothing to resume"
                          + (f" ({'; '.join(hint)})" if hint else ""))

    def _freeze_ended_seeds_of_older_checkpoints(self) -> None:
        """A checkpoint written before dropped seeds were frozen (or before a stopped seed's
        transform statistics were kept) has ended seeds without that record: they are frozen as
        the checkpoint holds them, so nothing moves them from here on."""
        for k, out in enumerate(self.outputs):
            if out.status == "running":
                continue
            if k not in self._frozen:
                self._frozen[k] = [p[k].detach().clone() for p in self.params]
            if out.frozen_transforms is None:
                env = self.collector.collectors[k].env
                out.frozen_transforms = [copy.deepcopy(t.state_dict()) for t in env.transforms]

    def save(self, snapshot: bool = False) -> Path:
        """Writes ``checkpoints/last.pt`` atomically (and a ``step_<frames>.pt`` snapshot when asked:
        the periodic checkpoints of ``trainer.keep_checkpoints``)."""
        keep = self.settings.checkpoint_interval or None if snapshot else None
        path = save_run_checkpoint(self.run_dir, self.state_dict(), frames=self.frames, keep_every=keep)
        log.info("checkpoint: frame %d -> %s (all %d seeds)", self.frames, path, self.num_seeds)
        self._saved = (self.frames, path)
        self._write_seed_ends()
        return path

    def _write_seed_ends(self) -> None:
        """Each seed directory's :data:`SEED_END_FILE` as the checkpoint just written holds the seed:
        how an ended seed ended (written atomically, once), none for a seed that trains (one a resume
        reopened loses its file here)."""
        for out in self.outputs:
            path = out.run_dir / SEED_END_FILE
            if out.status not in _END_REASONS:
                path.unlink(missing_ok=True)
                continue
            frames, message = (out.ended if out.ended is not None
                               else (self.frames, f"{out.status} (when: not recorded)"))
            record = {"seed": out.seed, "status": out.status, "reason": _END_REASONS[out.status], "frames": frames,
                      "message": message}
            text = json.dumps(record, indent=2) + "\n"
            try:
                if path.read_text(encoding="utf-8") == text:
                    continue
            except (OSError, UnicodeDecodeError):
                pass
            out.run_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as f:
                f.write(text)

    # -- the loop -------------------------------------------------------------------------------
    def fit(self) -> dict[int, dict[str, float]]:
        """Trains every seed to ``total_frames`` (or its early stop); returns each seed's last
        evaluation metrics by seed."""
        previous = {s: signal.signal(s, self._on_signal) for s in stop_signals()}
        self._signal, self._saved = None, None
        try:
            self._session = time.perf_counter()
            self._wall, self._wall_frames = self._session, self.frames
            for line in self._reopened:
                log.info("%s", line)
            self._reopened = []
            while self.frames < self.settings.total_frames and self._running() and not self._halted:
                batch = self.collector.next_batch()  # [N, *per-seed batch]
                per_seed = batch.batch_size[1:].numel()
                self.frames += per_seed
                if self.replay is not None:
                    self._off_policy_step(batch)
                else:
                    self._optimise(batch)
                if self.exploration is not None:
                    self.exploration.step(per_seed)
                for k, collector in enumerate(self.collector.collectors):
                    out = self.outputs[k]
                    if out.status != "running":
                        continue
                    returns, lengths = collector.episode_returns, collector.episode_lengths
                    out.window.add_episodes(returns, lengths)
                    if out.episodes is not None and len(returns):
                        out.episodes.record(self.frames, returns, lengths)
                self._periodic()
                if self._signal is not None and not self._only_the_end_left():
                    self._interrupt(self._signal)
            if all(out.status == "dropped" for out in self.outputs):  # (nothing trained: nothing is saved)
                raise self._all_dropped("every seed was dropped for non-finite values")
            self._finish()
            if self._signal is not None:
                completed_despite(self._signal, self.frames)
            self._end_line(self._end_word())
            for k in self._running():
                if self._halted:
                    self._log_end(k, "callback", f"stopped at frame {self.frames:,} by a callback")
                else:
                    self._log_end(k, "budget", f"done: {self.frames:,} frames")
            self._progress_end(failing=False)
            return {out.seed: dict(out.last_eval) for out in self.outputs}
        except NonFiniteError as err:
            self._end_all("non_finite", f"stopped: {str(err).split(';')[0]}")
            raise
        except TrainingInterrupted as stop:
            self._end_all("interrupted", f"interrupted by {signal.Signals(stop.signum).name} at frame "
                                         f"{self.frames:,}; checkpoint written")
            raise
        except KeyboardInterrupt:
            self._end_line("interrupted", f"interrupted at frame {self.frames:,} by a second signal; no checkpoint "
                                          f"written since {self._good_checkpoint()}")
            self._end_all("interrupted", f"interrupted at frame {self.frames:,} by a second signal")
            raise
        except Exception as err:  # (as Trainer.fit)
            good = self.checkpoint_path if self.checkpoint_path.exists() else None
            full = no_space_error(err, self.checkpoint_path.parent.parent, good)
            reason = str(full) if full is not None else failure_line(err)
            self._end_line("failed", reason)
            self._end_all("error", f"failed at frame {self.frames:,}: {reason}")
            if full is not None and full is not err:
                raise full from err
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002 (signal API)
        if self._signal is not None:
            if repeat_of(self._signal, self._signal_at, signum):
                return
            raise KeyboardInterrupt
        self._signal, self._signal_at = signum, time.monotonic()
        if self._evaluating:
            announce_stop_after_evaluation(signum, self.frames, last=self._only_the_end_left())

    def _only_the_end_left(self) -> bool:
        """As :meth:`Trainer._only_the_end_left`: nothing left to train (the budget done, every seed
        stopped or dropped, or a callback's stop) and the last evaluation written."""
        running = self._running()
        done = self.frames >= self.settings.total_frames or not running or self._halted
        return done and not self._closing_eval_due(running)

    def _interrupt(self, signum: int) -> NoReturn:
        """Stops training for the stop signal ``signum``: the checkpoint of these frames (reused when
        written already), its ``end:`` line, then :class:`TrainingInterrupted`."""
        saved = checkpoint_at(self._saved, self.frames) or self.save()  # (its line, then the end line)
        self._end_line("interrupted", f"interrupted by {signal.Signals(signum).name} at frame {self.frames:,}; "
                                      "checkpoint written")
        raise TrainingInterrupted(signum, saved)

    def _off_policy_step(self, batch: TensorDictBase) -> None:
        s = self.settings
        replay = self.replay
        assert replay is not None
        replay.extend(batch)
        if self.frames < s.learning_starts:
            return
        for _ in range(s.updates_per_batch):
            if s.slice_len:
                sample = sample_slices(replay, s, self.frames)
            else:
                sample = replay.sample(s.batch_size)
            self._optimise(sample)
            # (a seed dropped by this update has non-finite TD errors)
            replay.update_priorities(sample, self._running())

    def _optimise(self, sample: TensorDictBase) -> None:
        n = self.num_seeds
        losses = self.loss_module(sample)
        loss_keys, extras = logged_outputs(losses, (n,))
        total = losses[loss_keys[0]] if len(loss_keys) == 1 else sum(losses[k] for k in loss_keys)
        if total.shape != (n,):
            raise RuntimeError(f"the stacked loss gave {loss_keys} of shape {tuple(total.shape)}, expected ({n},)")
        for p in self.params:
            p.grad = None
        total.sum().backward()  # each seed's parameters get the gradient of its own loss
        if self.views is not None:
            for k, views in enumerate(self.views):
                for view, p in zip(views, self.params):
                    view.grad = None if p.grad is None else p.grad[k]
        norms = self._grad_norms()
        # One transfer for the checks and the log, before the step (on a device, a read after it would
        # wait for it): the total, the norms, each loss_* of a loss with several, the other scalars.
        each = loss_keys if len(loss_keys) > 1 else []  # (a single loss is the total itself)
        logged = (*each, *extras)
        values = torch.stack([total.detach(), norms, *(losses[key].detach().to(total.dtype) for key in logged)]).tolist()
        inactive = [k for k, out in enumerate(self.outputs) if out.status != "running"]
        bad = [k for k in self._running() if not (math.isfinite(values[0][k]) and math.isfinite(values[1][k]))]
        if bad:
            self._non_finite(bad, losses, loss_keys, values[1])
            inactive = [k for k, out in enumerate(self.outputs) if out.status != "running"]
        if inactive:  # finished seeds: no update reaches them (their numbers are no one's business)
            index = torch.tensor(inactive, device=self.params[0].device)
            for p in self.params:
                if p.grad is not None:
                    p.grad.index_fill_(0, index, 0.0)
        scale_learning_rates(self.optimizer, self._base_lrs, self.settings, self.frames)
        self.optimizer.step()
        self.updates += 1
        if self.target_updater is not None:
            self.target_updater.step()
        if self._frozen:
            with torch.no_grad():
                for k, saved in self._frozen.items():
                    for p, value in zip(self.params, saved):
                        p[k].copy_(value)
        per_key = [values[0]] if len(loss_keys) == 1 else values[2:2 + len(each)]
        names = [*loss_keys, *extras]
        per_key += values[2 + len(each):]  # (the loss's other scalars, per seed)
        for k in self._running():
            self.outputs[k].window.add_losses({key: v[k] for key, v in zip(names, per_key)}, values[1][k])

    def _grad_norms(self) -> torch.Tensor:
        """Each seed's total gradient norm ``[N]`` (as ``torch.nn.utils.clip_grad_norm_`` computes
        one run's: the norm of the per-parameter norms), clipped to ``max_grad_norm`` per seed."""
        n = self.num_seeds
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:  # (on the parameters' device, as the losses it is stacked with)
            return torch.zeros(n, device=self.params[0].device)
        # Seed-major views of the gradients: each seed's norms are those of its ordinary run's tensors.
        per_tensor = torch._foreach_norm([g for seed in zip(*(g.unbind(0) for g in grads)) for g in seed])
        norms = torch.linalg.vector_norm(torch.stack(per_tensor).reshape(n, len(grads)), dim=1)
        limit = self.settings.max_grad_norm
        if limit:
            coef = torch.clamp(limit / (norms + 1e-6), max=1.0)
            for g in grads:
                g.mul_(coef.reshape(n, *(1,) * (g.dim() - 1)))
        return norms

    def _non_finite(self, bad: list[int], losses: TensorDictBase, loss_keys: list[str], norms: list[float]) -> None:
        """Seeds ``bad`` (indices) had a non-finite loss or gradient norm (``norms``: every seed's) at
        this update: stops the run naming them, or drops them (``drop_non_finite``); when no seed is
        left the run stops as well, before anything of this update is applied or saved.

        Raises:
            NonFiniteError: naming each seed's non-finite losses, or its non-finite gradient, or
                (every gradient finite) its gradient norm that overflowed; and the last good checkpoint.
        """
        where = f"at update {self.updates + 1} (frame {self.frames})"
        detail = []
        for k in bad:
            values = {key: float(losses[key][k].detach()) for key in loss_keys}
            if not all(math.isfinite(v) for v in values.values()):
                what = "non-finite loss " + ", ".join(f"{key}={v}" for key, v in values.items())
            elif all(bool(torch.isfinite(p.grad[k]).all()) for p in self.params if p.grad is not None):
                what = overflow_words(norms[k])
            else:
                what = "non-finite gradient"
            detail.append(f"seed {self.seeds[k]}: {what}")
        message = f"non-finite values {where}: " + "; ".join(detail)
        if not self.drop_non_finite:
            self._end_line("non-finite", message)
            raise NonFiniteError(f"{message}; the last good checkpoint is {self._good_checkpoint()}")
        left = [k for k in self._running() if k not in bad]
        dropped = ", ".join(str(self.seeds[k]) for k in bad)
        log.warning("%s; %s %s dropped, %s", message, "seed" if len(bad) == 1 else "seeds", dropped,
                    "the other seeds continue" if left else "no seed is left")
        for k in bad:
            self._end_seed(k, "dropped", f"dropped at frame {self.frames:,}: {message}")
        if not left:  # (the run ends here, as one that does not drop seeds: its last good checkpoint kept)
            # Every seed's end.json says it was dropped (those of this update too, which the kept
            # checkpoint still holds as training: a resume with a fix trains them, and its first
            # checkpoint takes their files away), so reports and reproduce.py do not take them for
            # unfinished seeds to resume into the same failure.
            self._write_seed_ends()
            raise self._all_dropped(f"every seed was dropped for non-finite values, the last {where}: "
                                    f"{', '.join(detail)}")

    def _all_dropped(self, what: str) -> NonFiniteError:
        """The error that ends a run whose every seed was dropped (nothing is saved after it: the
        last checkpoint, written while a seed still trained, is the one to resume with a fix)."""
        self._end_line("non-finite", what)
        return NonFiniteError(f"{what}; the last good checkpoint is {self._good_checkpoint()}")

    def _good_checkpoint(self) -> str:
        return str(self.checkpoint_path) if self.checkpoint_path.exists() else "none (no checkpoint written yet)"

    def _due(self, name: str, interval: int) -> bool:
        if due(self.frames, self._last[name], interval):
            self._last[name] = self.frames
            return True
        return False

    def _periodic(self) -> None:
        s = self.settings
        evals: dict[int, dict[str, float]] = {}
        if self.evaluator is not None and self._due("eval", s.eval_interval):
            evals = self._evaluate(self._running())
        stopped = [k for k, m in evals.items()
                   if s.early_stop_return is not None and m["eval_return"] >= s.early_stop_return]
        if self._due("log", s.log_interval) or evals:
            self._log(self._running(), evals)
        for k in stopped:
            self._stop(k)
        if evals and self._notify(evals):
            self._halted = True
            log.info("a callback stopped the run at %d frames", self.frames)
        if self._due("checkpoint", s.checkpoint_interval):
            self.save(snapshot=s.keep_checkpoints)

    def _notify(self, evals: dict[int, dict[str, float]]) -> bool:
        """Every callback's ``on_seed_evaluations`` (each with its own copy); True if one asks to stop."""
        halt = False
        for callback in self.callbacks:
            by_seed = {self.seeds[k]: dict(m) for k, m in evals.items()}
            halt = bool(callback.on_seed_evaluations(self.frames, by_seed)) or halt
        return halt

    def _stop(self, k: int) -> None:
        log.info("seed %d reached the early-stop return at %d frames", self.seeds[k], self.frames)
        self._end_seed(k, "stopped", f"stopped early at frame {self.frames:,}: {self._return_label} "
                                     f"{self.outputs[k].last_eval['eval_return']:.4g} reached the target "
                                     f"{self.settings.early_stop_return:.4g}")

    def _end_all(self, reason: EndReason, message: str) -> None:
        """A failure ends the run: every seed still training, and the console, hear why."""
        for k in self._running():
            self._log_end(k, reason, message, failing=True)
        self._report(self.progress, reason, message, failing=True)

    @property
    def _return_label(self) -> str:
        return return_label(getattr(self.evaluator, "epsilon", 0.0))

    def _end_line(self, word: str, detail: str = "") -> None:
        """train.log's ``end:`` line, as an ordinary run's (:data:`~rlkit.trainers.trainer.END_WORDS`
        ``word``, frames, updates, this segment's wall time, ``detail`` in parentheses), then each
        seed's last greedy evaluation return with how the seed ended: a seed that ended before the run
        by its status, one still training by the run's end (``stopped`` where the run ended on
        another seed's non-finite values, which ``detail`` names)."""
        running = "stopped" if word == "non-finite" else word

        def how(out: SeedOutputs) -> str:
            return _STATUS_WORDS.get(out.status, running)

        def last(out: SeedOutputs) -> str:
            value = out.last_eval.get("eval_return")
            return "no evaluation" if value is None else f"{value:.4g}"

        finals = ", ".join(f"seed {out.seed} ({how(out)}) {last(out)}" for out in self.outputs)
        log.info("end: %s at %d frames, %d updates, wall %.1f s%s; %s by seed: %s", word, self.frames, self.updates,
                 time.perf_counter() - self._session, f" ({detail})" if detail else "", self._return_label, finals)

    def _end_word(self) -> str:
        """How the run ended, in the words of an ordinary run's ``end:`` line: every seed dropped
        (``non-finite``), every seed stopped at the target or dropped (``target reached``), a callback
        (``stopped by a callback``), or the budget (``budget done``)."""
        if all(out.status == "dropped" for out in self.outputs):
            return "non-finite"
        if not self._running():
            return "target reached"
        return "stopped by a callback" if self._halted else "budget done"

    def _progress_end(self, *, failing: bool) -> None:
        """The console's last line: how the seeds ended."""
        words = {"running": "stopped by a callback" if self._halted else "done", "stopped": "reached the target",
                 "dropped": "dropped (non-finite)"}
        counts: dict[str, int] = {}
        for out in self.outputs:
            word = words.get(out.status, out.status)
            counts[word] = counts.get(word, 0) + 1
        # (counts of seeds, each with its noun: "2 reached the target" read as seed 2)
        summary = ", ".join(f"{n} seed{'' if n == 1 else 's'} {word}" for word, n in counts.items())
        reason: EndReason = "callback" if self._halted else "budget"
        if not self._running():  # every seed ended before the budget
            reason = "target" if any(out.status == "stopped" for out in self.outputs) else "non_finite"
        self._report(self.progress, reason, f"seeds {self.seeds[0]}..{self.seeds[-1]}, training ended at frame "
                                            f"{self.frames:,}: {summary}", failing=failing)

    def _report(self, logger: Logger, reason: EndReason, message: str, *, failing: bool) -> None:
        """``logger.log_end``; while an error propagates (``failing``), a logger that fails in turn is
        logged, not raised: it must not hide the error."""
        try:
            logger.log_end(reason, message, step=self.frames)
        except Exception:
            if not failing:
                raise
            log.exception("a logger failed while reporting the end of training")

    def _log_end(self, k: int, reason: EndReason, message: str, *, failing: bool = False) -> None:
        """Tells seed ``k``'s logger why its training ended (once)."""
        self._report(self.outputs[k].logger, reason, message, failing=failing)

    def _end_seed(self, k: int, status: str, why: str) -> None:
        """Seed ``k`` trains no more: its parameters are kept as they are now (no update, and no
        optimiser momentum, moves them after this), and so are its env transforms' statistics."""
        out = self.outputs[k]
        out.status, out.ended = status, (self.frames, why)
        self._frozen[k] = [p[k].detach().clone() for p in self.params]
        env = self.collector.collectors[k].env
        out.frozen_transforms = [copy.deepcopy(t.state_dict()) for t in env.transforms]
        self._log_end(k, "target" if status == "stopped" else "non_finite", why)

    def _evaluate(self, which: list[int]) -> dict[int, dict[str, float]]:
        assert self.evaluator is not None
        with evaluating(self):
            results = self.evaluator(which)
        for k, metrics in results.items():
            self.outputs[k].last_eval = metrics
            log.info("eval: seed %d, frame %d: return %.4g ± %.4g, length %.4g", self.seeds[k], self.frames,
                     metrics["eval_return"], metrics["eval_return_std"], metrics["eval_length"])
        return results

    def _log(self, which: list[int], evals: dict[int, dict[str, float]]) -> None:
        now = time.perf_counter()
        fps = None
        if self.frames > self._wall_frames:
            fps = (self.frames - self._wall_frames) / max(now - self._wall, 1e-9)
            self._wall, self._wall_frames = now, self.frames
        rows: list[dict[str, float]] = []
        for k in which:
            out = self.outputs[k]
            metrics = out.window.flush()
            if fps is not None:
                metrics["fps"] = fps  # each seed's frames per second (all seeds advance together)
            metrics["updates"] = self.updates
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]
            if self.exploration is not None and hasattr(self.exploration, "eps"):
                metrics["eps"] = float(self.exploration.eps)
            metrics.update(evals.get(k, {}))
            out.logger.log_metrics(metrics, step=self.frames)
            out.log_rows += 1
            rows.append(metrics)
        shown = {key: sum(r[key] for r in rows if key in r) / n
                 for key in ("episode_return", "eval_return") if (n := sum(key in r for r in rows))}
        self.progress.log_metrics(shown, step=self.frames)

    def end_pending(self) -> bool:
        """Whether the end of training still has an evaluation or a row to write at these frames
        (see :meth:`Trainer.end_pending`), for the seeds still running."""
        running = self._running()
        return self._closing_eval_due(running) or any(self.outputs[k].window.pending for k in running)

    def _closing_eval_due(self, running: list[int]) -> bool:
        return self.evaluator is not None and self._last["eval"] != self.frames and bool(running) and not self._halted

    def _finish(self) -> None:
        if self._frozen:  # stopped seeds end with the parameters they stopped with
            with torch.no_grad():
                for k, saved in self._frozen.items():
                    for p, value in zip(self.params, saved):
                        p[k].copy_(value)
        if self._last["checkpoint"] != self.frames or self.frames == 0:  # (a periodic one at K is this one)
            self.save()
        running = self._running()
        if self._signal is not None and self._closing_eval_due(running):  # (it arrived after the last batch)
            self._interrupt(self._signal)
        if self._closing_eval_due(running):
            self._last["eval"] = self.frames
            evals = self._evaluate(running)
            self._log(running, evals)
            self._notify(evals)  # the closing evaluation (a request to stop changes nothing now)
        else:
            pending = [k for k in running if self.outputs[k].window.pending]
            if pending:
                self._log(pending, {})

    def close(self) -> None:
        self.progress.close()
        for out in self.outputs:
            out.logger.close()
            if out.episodes is not None:
                out.episodes.close()
        self.collector.close()
        if self.evaluator is not None:
            self.evaluator.close()
