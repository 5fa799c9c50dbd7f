"""Value estimators (TD(0), TD(1), TD(lambda), GAE) and their pure kernels in :mod:`.functional`."""
from __future__ import annotations

from rlkit.objectives.value import functional
from rlkit.objectives.value.base import ValueEstimatorBase, ValueEstimators
from rlkit.objectives.value.estimators import (
    ESTIMATORS,
    GAE,
    TD0Estimator,
    TD1Estimator,
    TDLambdaEstimator,
    get_estimator_class,
)

__all__ = [
    "ESTIMATORS",
    "GAE",
    "TD0Estimator",
    "TD1Estimator",
    "TDLambdaEstimator",
    "ValueEstimatorBase",
    "ValueEstimators",
    "functional",
    "get_estimator_class",
]
