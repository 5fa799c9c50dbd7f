"""The names of the entries rlkit reads and writes, in one place.

Transitions follow TorchRL's layout: what the agent saw and did at the top level, what the env
returned under ``"next"``. Rewards and flags carry a trailing singleton dim (``[*B, 1]``);
``done = terminated | truncated``.

Examples:
    >>> from rlkit import keys
    >>> keys.next_(keys.REWARD)
    ('next', 'reward')
"""
from __future__ import annotations

from typing import Final

# -- what the policy sees and does -----------------------------------------------------------------
OBSERVATION: Final = "observation"
ACTION_MASK: Final = "action_mask"  # bool, True = allowed
ACTION: Final = "action"
ACTION_VALUE: Final = "action_value"  # Q(s, .) [*B, A]; distributional: log-probabilities [*B, K, A]
CHOSEN_ACTION_VALUE: Final = "chosen_action_value"  # Q(s, a) [*B, 1]
LOGITS: Final = "logits"
ACTION_LOG_PROB: Final = "action_log_prob"
STATE_VALUE: Final = "state_value"  # V(s) [*B, 1]
HIDDEN: Final = "hidden"  # a shared trunk's embedding (actor-value operators)
LOC: Final = "loc"  # a Gaussian policy's mean (before squashing for TanhNormal)
SCALE: Final = "scale"  # its standard deviation
NOISE: Final = "noise"  # gSDE's exploration noise of the current step
ACTOR_FEATURES: Final = "actor_features"  # an actor's last hidden features (gSDE reads them)

# -- what the env returns, under NEXT ----------------------------------------------------------------
NEXT: Final = "next"
REWARD: Final = "reward"
DONE: Final = "done"
TERMINATED: Final = "terminated"
TRUNCATED: Final = "truncated"

# -- what the collector adds -------------------------------------------------------------------------
TRAJ_ID: Final = "traj_id"  # int64, unique per episode within a run
STEP_COUNT: Final = "step_count"  # int64, index of the step within its episode

# -- what value estimators and losses write --------------------------------------------------------
ADVANTAGE: Final = "advantage"
VALUE_TARGET: Final = "value_target"
TD_ERROR: Final = "td_error"  # |td error| [*B, 1], the priorities of prioritised replay

# -- what replay buffers add to samples ------------------------------------------------------------
INDEX: Final = "index"
PRIORITY_WEIGHT: Final = "priority_weight"


def next_(key: str | tuple[str, ...]) -> tuple[str, ...]:
    """The nested key of ``key`` under :data:`NEXT`."""
    return (NEXT, *((key,) if isinstance(key, str) else key))
