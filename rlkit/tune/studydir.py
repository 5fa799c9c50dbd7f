"""Where a study is written, and ``tune.py``'s command line before Hydra reads it.

- :func:`check_study_dir`: ``tune.dir`` must be new, empty or an earlier study of ``tune.py`` (a rerun
  continues it there); anything else (``tune.dir=.``, a training run, an evaluation's folder) is
  refused before the study writes ``study.db``, ``trials/`` and its outputs among its files.
- :func:`study_command_line`: refuses ``resume=`` (a ``train.py`` key) and takes ``hydra.run.dir=DIR``
  as ``tune.dir=DIR``: ``tune.py``'s run directory is its study directory (``conf/tune.yaml``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from rlkit.errors import ConfigError, RlkitError, RunDirError
from rlkit.rundir import COMMIT_NAME, check_outside_run_files, foreign_contents, override_value
from rlkit.utils.io import atomic_write_target

__all__ = ["STUDY_FILES", "check_study_dir", "study_command_line"]

#: What ``tune.py`` writes into ``tune.dir``: the SQLite storage (and its journals), the trials' runs
#: (those of trials without a result in ``interrupted/``), the outputs (:mod:`rlkit.tune.report`) and the log.
STUDY_FILES = frozenset({"study.db", "study.db-journal", "study.db-wal", "study.db-shm", "trials", "trials.csv",
                         "interrupted", "experiment", "history.png", "importances.png", "slice.png", "tune.log"})
# An earlier study's marks: its storage, its trials' runs or its table (beside which a user's own files may lie).
_MARKS = ("study.db", "trials", "trials.csv")


def _own(name: str) -> bool:
    return name in STUDY_FILES or atomic_write_target(name) in STUDY_FILES  # (a killed write's temp file)


def check_study_dir(folder: str | os.PathLike[str]) -> None:
    """Refuses a ``tune.dir`` that holds files but no earlier study of ``tune.py``: a study is written
    into a new or empty directory, or continues in its own (one holding ``study.db``, ``trials/`` or
    ``trials.csv``, or only what a study writes: the start of one that stopped early, with a
    ``tune.storage`` elsewhere). Reads only.

    Raises:
        RunDirError: naming the directory, what is in it and what to give instead.
        ConfigError: the directory is inside a training run's (:func:`~rlkit.rundir.check_outside_run_files`).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.tune.studydir import check_study_dir
        >>> folder = Path(tempfile.mkdtemp())
        >>> check_study_dir(folder / "new"); check_study_dir(folder)  # new, empty: fine
        >>> _ = (folder / "notes.txt").write_text("mine")
        >>> check_study_dir(folder)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        rlkit.errors.RunDirError: tune.dir=... is not empty (notes.txt) and holds no study of tune.py (no study.db, trials/ or trials.csv); give the study a new or empty directory (tune.dir=outputs/tune/<name>), or the directory of the study to continue
        >>> _ = (folder / "study.db").write_bytes(b""); check_study_dir(folder)  # an earlier study: it continues
    """
    path = Path(folder)
    shown = foreign_contents(path, _MARKS, _own)  # (a file: rlkit.rundir.check_creatable says so)
    if shown is None:  # new, empty or a study's; a new one not among a training run's files
        check_outside_run_files(path, None, "the study", shown=f"tune.dir={str(folder)!r}")
        return
    what = "; it holds a training run" if (path / COMMIT_NAME).is_file() else ""
    raise RunDirError(f"tune.dir={str(folder)!r} is not empty ({shown}) and holds no study of tune.py (no study.db, "
                      f"trials/ or trials.csv){what}; give the study a new or empty directory "
                      "(tune.dir=outputs/tune/<name>), or the directory of the study to continue")


def study_command_line(args: Sequence[str]) -> list[str]:
    """``tune.py``'s overrides ``args``, checked and made coherent before Hydra composes them:

    - ``resume=<run>`` is refused: it continues a training run (a ``train.py`` key); a study continues
      by rerunning its ``tune.py`` command.
    - ``hydra.run.dir=DIR`` becomes ``tune.dir=DIR``: ``tune.py``'s run directory (where ``tune.log``
      goes) is its study directory, ``hydra.run.dir: ${tune.dir}`` in ``conf/tune.yaml``; given alone it
      would have split the log from the study. Both given, naming two directories, are refused.

    Raises:
        RlkitError: the offending override and what to give instead.

    Examples:
        >>> from rlkit.tune.studydir import study_command_line
        >>> study_command_line(["algo=dqn", "hydra.run.dir=studies/a", "resume=null"])
        ['algo=dqn', 'resume=null', 'tune.dir=studies/a']
        >>> study_command_line(["resume=outputs/run"])
        Traceback (most recent call last):
        rlkit.errors.RlkitError: resume='outputs/run' continues a training run (a train.py key), not a study: rerun the same tune.py command to continue a study (tune.dir), or resume the run with python train.py resume='outputs/run'
    """
    out: list[str] = []
    run_dir: str | None = None
    tune_dir: str | None = None
    for arg in args:
        key, sep, value = arg.partition("=")
        name = key.lstrip("+")
        if arg.startswith("-") or not sep:
            out.append(arg)
            continue
        if name == "resume" and override_value(value).strip() not in ("", "null"):
            raise RlkitError(resume_refusal(override_value(value)))
        if name == "hydra.run.dir":
            run_dir = value
            continue
        if name == "tune.dir":
            tune_dir = value
        out.append(arg)
    if run_dir is None:
        return out
    if not override_value(run_dir).strip():
        raise ConfigError("hydra.run.dir is empty; tune.py writes into its study directory: give tune.dir=<dir>, or "
                          "leave both unset (outputs/tune/<study>)")
    if tune_dir is not None and override_value(tune_dir) != override_value(run_dir):
        raise ConfigError(f"hydra.run.dir={override_value(run_dir)!r} and tune.dir={override_value(tune_dir)!r} name two "
                          "directories; tune.py writes its study and tune.log into one, tune.dir: give only tune.dir")
    return out if tune_dir is not None else [*out, f"tune.dir={run_dir}"]


def resume_refusal(resume: str) -> str:
    """Why a study refuses ``resume=<resume>`` (a ``train.py`` key), one line."""
    shown = repr(resume)
    return (f"resume={shown} continues a training run (a train.py key), not a study: rerun the same tune.py command "
            f"to continue a study (tune.dir), or resume the run with python train.py resume={shown}")
