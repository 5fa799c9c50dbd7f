"""Everything Hydra-specific of rlkit's command line; nothing else in ``rlkit`` imports Hydra.

``train.py``, ``evaluate.py``, ``export.py`` and ``tune.py`` are thin entries over this package, one
module per concern:

- :mod:`rlkit.cli.base`: :data:`CONF_DIR` (the configs of a source checkout) and :func:`refuse`
  (a refusal in one line);
- :mod:`rlkit.cli.naming`: :func:`register_resolvers`, the ``rlkit_*`` resolvers ``conf/config.yaml``
  uses for run and sweep directory names (unique per start: a random token, see
  :func:`~rlkit.cli.naming.token_resolver`), and a sweep job's console label (:func:`job_label`);
- :mod:`rlkit.cli.preflight`: the config check of a start, run once and its settings reused by the run;
- :mod:`rlkit.cli.callbacks`: :class:`ConfigCheck`, the Hydra callback that refuses a bad start before
  its run directory exists (and, for ``hydra/launcher=ray``, gives ``ray.init`` the sweep's swept keys),
  :func:`sweep_exit_status`, :func:`in_sweep`, and :class:`NoSweepDir` (``evaluate.py -m``, ``export.py -m``);
- :mod:`rlkit.cli.command_line`: :func:`prepare_argv`: a command line Hydra would refuse in a screenful
  refused in one line (:func:`command_line_problem`); on resume, the run's own config groups
  (:mod:`rlkit.cli.resume`);
- :mod:`rlkit.cli.tasks`: :func:`train_task`, the task function's body (:func:`rlkit.run.run`,
  refusals as one line); :func:`evaluate_task`, :func:`export_task`: the bodies of ``evaluate.py``
  and ``export.py``;
- :mod:`rlkit.cli.api`: :func:`train`: ``rlkit.train``, a run started from Python (the config composed
  with Hydra's ``compose`` from the package's ``conf/``);
- :mod:`rlkit.cli.tuning`: :class:`TuneCheck` and :func:`tune_task`, the same two for ``tune.py``
  (:mod:`rlkit.tune`).

The names of the former module ``rlkit/cli.py`` are imported here, so ``rlkit.cli.<name>`` keeps working.

Refusals end the process with ``rlkit: <message>`` on stderr and exit status 2; an interrupt
(Ctrl-C, SIGTERM, SIGHUP) with a checkpoint and status 128 + the signal number.
"""
from __future__ import annotations

from rlkit.cli.api import TrainResult, train
from rlkit.cli.base import CONF_DIR, EXIT_REFUSED, refuse
from rlkit.cli.callbacks import FAILED_JOBS_DIR, RAY_LAUNCHER, ConfigCheck, NoSweepDir, in_sweep, sweep_exit_status
from rlkit.cli.command_line import (CHOSEN_GROUPS, GROUPED_CONFIGS, PATH_KEYS, check_command_line,
                                    command_line_problem, hydra_overrides, prepare_argv, quote_paths)
from rlkit.cli.naming import (LABEL_MAX, MAX_JOB_DIR, SWEPT_KEYS_ENV, env_label_resolver, job_dir_name, job_label,
                              job_subdir_resolver, register_resolvers, run_dir_resolver, swept_keys, token_resolver)
from rlkit.cli.resume import resume_group_overrides, run_group_choices
from rlkit.cli.tasks import evaluate_task, export_task, train_task
from rlkit.cli.tuning import (SearchedOverrideCheck, TuneCheck, searched_override_problem, study_result, tune_parts,
                              tune_task)

__all__ = [
    "CONF_DIR",
    "ConfigCheck",
    "check_command_line",
    "command_line_problem",
    "EXIT_REFUSED",
    "job_label",
    "TrainResult",
    "evaluate_task",
    "export_task",
    "TuneCheck",
    "NoSweepDir",
    "prepare_argv",
    "quote_paths",
    "refuse",
    "register_resolvers",
    "resume_group_overrides",
    "train",
    "train_task",
    "tune_parts",
    "tune_task",
]
