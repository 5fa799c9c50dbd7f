"""Which trials of a study count towards ``n_trials`` (see :mod:`rlkit.tune.study`), its progress
line, and the names rlkit gives its trial attributes."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

__all__ = ["ERROR_ATTR", "FREE_KEYS", "IDENTITY_ATTR", "INTERRUPTED_ATTR", "NUM_SEEDS_ATTR", "PRUNED_AT_ATTR", "REPLACES_ATTR", "SEEDS_ATTR", "SURPLUS_ATTR", "StudyProgress", "counted", "counts",
           "replaced_trial"]

#: User attributes rlkit writes on trials (REPLACES_ATTR: the number of the trial without a result
#: whose configuration this trial runs again).
ERROR_ATTR, INTERRUPTED_ATTR, SURPLUS_ATTR, REPLACES_ATTR = "error", "interrupted", "rlkit_surplus", "rlkit_replaces"
#: The trial's seeds, written just after its first heartbeat (a running trial without it never beat).
SEEDS_ATTR = "seeds"
#: Where the pruner stopped a pruned trial ("seed 1's evaluation at 40,000 frames").
PRUNED_AT_ATTR = "pruned_at"
#: The study attribute recording what the study measures (checked on every rerun).
IDENTITY_ATTR = "rlkit"
# Keys that do not change what a trial computes: a rerun may change them (the log's cadence included:
# trainer.log_interval writes metrics rows, it changes neither the training nor the evaluations).
FREE_KEYS = ("seed", "resume", "imports", "device", "num_threads", "trainer.progress", "trainer.checkpoint_interval",
             "trainer.keep_checkpoints", "trainer.log_interval", "logger")
#: The user attribute saying how a trial's seeds trained: ``num_seeds`` = the count trained together in
#: one process (consecutive, from the first), 1: one after another (README "Seeds and pruning").
NUM_SEEDS_ATTR = "num_seeds"


def replaced_trial(trial: FrozenTrial) -> int | None:
    """The number of the trial that ``trial`` runs again, while it stands as its replacement: queued,
    running, or finished after drawing its configuration (one that ended before that, interrupted or
    lost, replaces nothing: the configuration is queued again). None for other trials."""
    replaces = trial.user_attrs.get(REPLACES_ATTR)
    if replaces is None or trial.user_attrs.get(SURPLUS_ATTR) or (trial.state.is_finished() and not trial.params):
        return None
    return int(replaces)


def counted(trial: FrozenTrial) -> bool:
    """Whether ``trial`` counts towards ``n_trials`` (:mod:`rlkit.tune.study` says which do)."""
    if trial.user_attrs.get(SURPLUS_ATTR):
        return False
    if trial.state == TrialState.FAIL:
        return ERROR_ATTR in trial.user_attrs
    return True


@dataclass
class StudyProgress:
    """Counts of a study's counting trials, and its best so far."""

    complete: int
    pruned: int
    failed: int
    running: int
    best: FrozenTrial | None

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed

    def line(self, n_trials: int, study: str, elapsed: float) -> str:
        """One console line: ``trial 7/50 | 4 complete, 2 pruned, 1 failed, 2 running | best 487.3 (trial 5) | 0:12:31``."""
        best = f"best {self.best.value:.4g} (trial {self.best.number})" if self.best is not None else "best -"
        clock = time.strftime("%H:%M:%S", time.gmtime(elapsed))
        return (f"tune {study}: trial {self.finished}/{n_trials} | {self.complete} complete, {self.pruned} pruned, "
                f"{self.failed} failed, {self.running} running | {best} | {clock}")


def counts(trials: list[FrozenTrial]) -> StudyProgress:
    """The :class:`StudyProgress` of a study's trials."""
    mine = [t for t in trials if counted(t)]
    done = [t for t in mine if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)]
    return StudyProgress(
        complete=sum(t.state == TrialState.COMPLETE for t in mine), pruned=sum(t.state == TrialState.PRUNED for t in mine),
        failed=sum(t.state == TrialState.FAIL for t in mine),
        running=sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in mine),
        best=max(done, key=lambda t: (t.value, -t.number)) if done else None,
    )
