"""Exporting a trained policy as a standalone file: :func:`export_policy`.

What ``python export.py run=<run dir> format=torchscript|onnx|pt2 [out=path]`` runs (the Hydra
entry is :func:`rlkit.cli.tasks.export_task`). The file holds the agent's
:class:`~rlkit.agent.PolicyModule`: observation tensor ``[B, *obs_shape]`` as the env gives it
(float32, or uint8 frames) -> greedy action tensor ``[B, *action_shape]``, with the run's observation
normalisation (its frozen mean, variance and clip) and the networks' uint8 scaling inside. It loads
without rlkit:

- ``torchscript`` (``policy.pt``): ``torch.jit.load(path)(obs)`` (traced with ``torch.jit.trace``);
- ``pt2`` (``policy.pt2``): ``torch.export.load(path).module()(obs)`` (``torch.export.export``);
- ``onnx`` (``policy.onnx``): ``onnxruntime.InferenceSession(path).run(None, {"observation": obs})``
  (``torch.onnx.export``; needs the extra ``pip install -e ".[onnx]"``).

A policy that reads an action mask takes it as a second input (bool ``[B, A]``).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from rlkit.agent import Agent, PolicyModule, given_or_loaded
from rlkit.errors import ConfigError, RlkitError
from rlkit.rundir import check_outside_run_files
from rlkit.trainers.checkpoint import checkpoint_dir, find_checkpoint
from rlkit.utils.io import missing_folders, new_file_mode, remove_empty_folders

__all__ = ["EXPORT_FORMATS", "ONNX_EXTRA", "ExportFormat", "check_export_request", "checkpoint_label",
           "default_export_path", "export_policy", "is_export"]

ExportFormat = Literal["torchscript", "onnx", "pt2"]
#: Format -> file suffix.
EXPORT_FORMATS: dict[str, str] = {"torchscript": ".pt", "onnx": ".onnx", "pt2": ".pt2"}
#: How to install what ``format=onnx`` needs.
ONNX_EXTRA = 'pip install -e ".[onnx]"'
_BATCH = 2  # the example batch the export traces (a batch of 1 would be specialised by torch.export)
#: The mark of an exported file, by which a later export knows the file is one it may replace: an
#: extra file of the TorchScript and pt2 archives (``<archive>/extra/rlkit_export.json``), a metadata
#: property of the ONNX model (``rlkit_export``); its value names the format.
_MARK = "rlkit_export"
#: The class every export traces (``_Exported``, ``_ExportedMasked``): the files written before the
#: mark name it (the TorchScript archive's code, the pt2 program's and the ONNX nodes' module stacks).
_TRACED = "rlkit.exporter._Exported"
_TRACED_CODE = "/code/__torch__/rlkit/exporter"


class _Exported(nn.Module):
    """The policy with the inputs an exported file takes (the mask only when the policy reads one)."""

    def __init__(self, policy: PolicyModule) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.policy(observation).detach()  # actions, not a graph to differentiate


class _ExportedMasked(_Exported):
    def forward(self, observation: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.policy(observation, action_mask).detach()


def _check_suffix(path: Path, format: str) -> None:
    """Refuses an ``out=`` file named for another format (``policy.onnx`` with ``format=pt2``), and for
    ``format=pt2`` any suffix but ``.pt2`` (what ``torch.export.load`` expects); a TorchScript or ONNX
    file may have any other name."""
    owner = next((name for name, suffix in EXPORT_FORMATS.items() if suffix == path.suffix), None)
    wanted = EXPORT_FORMATS[format]
    if (owner is not None and owner != format) or (format == "pt2" and path.suffix != wanted):
        named = f"the suffix of format={owner}" if owner is not None else "not .pt2"
        other = f" or format={owner}" if owner is not None else ""
        raise ConfigError(f"out={str(path)!r} ends in {path.suffix or '(no suffix)'!r}, {named}; format={format} writes "
                          f"{wanted} files: use out={str(path.with_suffix(wanted))!r}{other}")


def export_policy(run: str | os.PathLike[str], format: str = "torchscript", out: str | os.PathLike[str] | None = None,
                  *, device: str = "cpu", agent: Agent | None = None, checkpoint: str | os.PathLike[str] | None = None) -> Path:
    """Writes the greedy policy of ``run`` as a standalone file; returns its path.

    Args:
        run: a run directory or a checkpoint file in one.
        format: ``"torchscript"``, ``"onnx"`` or ``"pt2"`` (see the module docstring).
        out: the file to write; default ``<run dir>/export/policy.<pt|onnx|pt2>``, or
            ``policy_<checkpoint>.<suffix>`` for a checkpoint other than the run's latest
            (:func:`default_export_path`). Written atomically (a temporary file renamed), replacing
            an earlier export (:func:`is_export`); any other file there is refused.
        device: where the exported networks run.
        agent: the run's agent when the caller loaded it already (:func:`rlkit.load_agent`).
        checkpoint: the checkpoint of the run directory ``run`` to export, by file name
            (``step_50000.pt``); default its last.

    Raises:
        RlkitError: before anything is written: an unknown format (``ConfigError``), an ``out``
            among a run's own files or an existing file that is not an export (``ConfigError``), ONNX
            without its packages, a missing, corrupt or unsafe checkpoint, one that does not fit the run.

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> import torch
        >>> import rlkit
        >>> out = tempfile.mkdtemp()
        >>> _ = rlkit.train(["total_frames=300", "trainer.progress=false", "logger=none"], output_dir=out)
        >>> path = rlkit.export(out, "torchscript")
        >>> path.name
        'policy.pt'
        >>> obs = torch.zeros(3, 4)
        >>> torch.equal(torch.jit.load(str(path))(obs), rlkit.load_agent(out).act(obs))
        True
    """
    check_export_request(format, out)
    agent = given_or_loaded(agent, run, device=device, checkpoint=checkpoint)
    path = Path(out) if out is not None else default_export_path(agent, format)
    shown = f"out={str(path)!r}" if out is not None else f"the default export file {str(path)!r}"
    if path.is_dir():
        raise ConfigError(f"{shown} is a directory; give the file to write")
    check_outside_run_files(path, "export", "the export", shown if out is not None else None, run=agent.run_dir)
    if path.exists() and not is_export(path):
        if importlib.util.find_spec("onnx") is None and path.is_file() and _first_byte(path) == b"\x08":
            raise ConfigError(f"{shown} exists and may be an ONNX export, which cannot be told without the "
                              f"onnx package ({ONNX_EXTRA}); it is left as it is: give another out= or remove it first")
        raise ConfigError(f"{shown} exists and is not a policy file export.py wrote, which is all an export "
                          f"replaces; it is left as it is: give another out= or remove the file first")
    module = (_ExportedMasked if agent.policy.reads_mask else _Exported)(agent.policy).eval()
    spec = agent.observation_spec
    example: tuple[torch.Tensor, ...] = (torch.zeros(_BATCH, *spec.shape, dtype=spec.dtype, device=agent.device),)
    if agent.policy.reads_mask:
        example += (torch.ones(_BATCH, agent.policy.num_actions, dtype=torch.bool, device=agent.device),)
    # The folders this export creates (none left behind by a failed one).
    created = missing_folders(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # (torch.export.save wants a name ending in .pt2)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    except OSError as err:
        remove_empty_folders(created)
        raise RlkitError(f"{shown}: cannot write there: {err.strerror or err}") from err
    os.close(fd)
    tmp = Path(tmp_name)
    done = False
    try:
        try:
            with torch.no_grad():
                _WRITERS[format](module, example, tmp)
        except RlkitError:
            raise
        except Exception as err:  # torch's exporters raise anything; say which export failed and what else there is
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            others = sorted(f for f in EXPORT_FORMATS if f != format)
            raise RlkitError(f"format={format} could not export the policy of {agent.run_dir}: {type(err).__name__}: "
                             f"{first}; the other formats: {others}") from err
        try:
            os.chmod(tmp, new_file_mode())  # (mkstemp made it the owner's only; an export is for sharing)
            os.replace(tmp, path)
        except OSError as err:
            raise RlkitError(f"{shown}: the exported policy could not be put there: {err.strerror or err}") from err
        done = True
    finally:
        tmp.unlink(missing_ok=True)
        if not done:
            remove_empty_folders(created)
    return path


def check_export_request(format: str, out: str | os.PathLike[str] | None) -> None:
    """What :func:`export_policy` refuses before it reads the run: an unknown ``format``, an ``out``
    file named for another format, ``format=onnx`` without its packages.

    Raises:
        ConfigError: an unknown format, or a suffix that does not fit it.
        RlkitError: ``format=onnx`` without the ``onnx`` / ``onnxscript`` packages.
    """
    if format not in EXPORT_FORMATS:
        raise ConfigError(f"format={format!r} is not an export format; valid choices: {sorted(EXPORT_FORMATS)}")
    if out is not None:
        _check_suffix(Path(out), format)
    if format == "onnx":
        missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
        if missing:
            raise RlkitError(f"format=onnx needs {' and '.join(missing)} (not installed): {ONNX_EXTRA}")


def checkpoint_label(checkpoint: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> tuple[str, bool]:
    """The name of ``checkpoint`` within the run ``run_dir`` (``step_50000.pt``,
    ``abandoned_1/step_80000.pt``, as ``checkpoint=`` takes it) and whether it is the run's latest
    (what :func:`rlkit.load_agent` of the run directory loads). ``run_dir`` is the run's directory,
    or a ``seed_<k>`` directory of a multi-seed run, whose checkpoints are its parent's. Paths are
    compared as given, not through symbolic links (a ``checkpoints/`` folder linked to scratch
    storage, checkpoint files kept by git-annex).

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.exporter import checkpoint_label
        >>> run = Path(tempfile.mkdtemp())
        >>> (run / "checkpoints" / "abandoned_1").mkdir(parents=True)
        >>> for name in ("last.pt", "step_100.pt", "abandoned_1/step_80.pt"):
        ...     _ = (run / "checkpoints" / name).write_bytes(b"")
        >>> [checkpoint_label(run / "checkpoints" / name, run) for name in ("last.pt", "abandoned_1/step_80.pt")]
        [('last.pt', True), ('abandoned_1/step_80.pt', False)]
    """
    file = Path(os.path.abspath(checkpoint))
    run = Path(os.path.abspath(run_dir))
    homes = [run, run.parent, Path(os.path.abspath(Path(run_dir).resolve().parent))]  # (a seed_<k>'s checkpoints)
    for home in homes:
        for folder in (checkpoint_dir(home), home):
            if folder in file.parents:
                latest = Path(os.path.abspath(find_checkpoint(home)))
                return file.relative_to(folder).as_posix(), latest == file
    return file.name, False


def default_export_path(agent: Agent, format: str) -> Path:
    """Where :func:`export_policy` writes without ``out=``: ``<run dir>/export/policy.<suffix>`` for
    the run's latest checkpoint, ``policy_<checkpoint>.<suffix>`` for another one
    (``policy_step_50000.pt``, ``policy_abandoned_1_step_80000.pt``), so that exporting a snapshot
    does not replace the export of the trained policy."""
    label, latest = checkpoint_label(agent.checkpoint, agent.run_dir)
    tag = "" if latest else "_" + label.removesuffix(".pt").replace("/", "_")
    return agent.run_dir / "export" / f"policy{tag}{EXPORT_FORMATS[format]}"


def is_export(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a file :func:`export_policy` wrote (any format, any rlkit version): a
    TorchScript or pt2 archive or an ONNX model carrying the mark of an export, or (written before
    exports were marked) naming the module an export traces. Anything else (a file that cannot be
    read included) is not.

    Examples:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from rlkit.exporter import is_export
        >>> notes = Path(tempfile.mkdtemp()) / "notes.txt"
        >>> _ = notes.write_text("not a policy")
        >>> is_export(notes), is_export(notes.with_name("missing.pt"))
        (False, False)
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                entries = archive.infolist()
                if any(e.filename.endswith(f"/extra/{_MARK}.json") for e in entries):
                    return True
                # a TorchScript archive written before the mark: the code of the class it traced
                # (``exporter/___torch_mangle_<n>.py`` when a process traced it before)
                if any(_TRACED_CODE in e.filename for e in entries):
                    return True
                # a pt2 archive written before the mark: its program's module stacks name the class
                return any("/models/" in e.filename and e.filename.endswith(".json") and e.file_size < 1 << 28
                           and _TRACED.encode() in archive.read(e) for e in entries)
        return _is_onnx_export(Path(path))
    except (OSError, zipfile.BadZipFile, ValueError, RuntimeError):
        return False


def _first_byte(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(1)


def _is_onnx_export(path: Path) -> bool:
    """Whether ``path`` is an ONNX model :func:`export_policy` wrote (``False`` without the ``onnx``
    package). A serialised ``ModelProto`` starts with its ``ir_version`` (tag byte 0x08): a file
    that starts otherwise is not parsed."""
    if importlib.util.find_spec("onnx") is None or not path.is_file() or path.stat().st_size >= 1 << 31:
        return False
    if _first_byte(path) != b"\x08":
        return False
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # protobuf's DecodeError, onnx's own checks: not an ONNX model
        return False
    if any(prop.key == _MARK for prop in model.metadata_props):
        return True
    return any(_TRACED in prop.value for node in model.graph.node for prop in node.metadata_props)


def _torchscript(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    with warnings.catch_warnings():
        # The trace records shape checks of the acting code as constants (the warnings say so);
        # the batch size itself stays symbolic. TorchScript itself is deprecated in favour of pt2.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(module, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={f"{_MARK}.json": _mark("torchscript")})


def _dynamic_shapes(example: tuple[torch.Tensor, ...]) -> tuple[dict[int, torch.export.Dim], ...]:
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    return tuple({0: batch} for _ in example)


def _pt2(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    program = torch.export.export(module, example, dynamic_shapes=_dynamic_shapes(example))
    torch.export.save(program, str(path), extra_files={f"{_MARK}.json": _mark("pt2")})


def _onnx(module: nn.Module, example: tuple[torch.Tensor, ...], path: Path) -> None:
    names = ["observation", "action_mask"][: len(example)]
    onnx_log = logging.getLogger("torch.onnx")
    level = onnx_log.level
    onnx_log.setLevel(logging.ERROR)  # its notes on operators of packages rlkit does not use (torchvision)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporter's progress notes
            torch.onnx.export(module, example, str(path), input_names=names, output_names=["action"],
                              dynamic_shapes=_dynamic_shapes(example), external_data=False, verbose=False)
    finally:
        onnx_log.setLevel(level)
    import onnx

    model = onnx.load(str(path))
    model.metadata_props.add(key=_MARK, value=_mark("onnx"))
    onnx.save(model, str(path))


def _mark(format: str) -> str:
    """The mark an export carries (see :data:`_MARK`)."""
    return json.dumps({"format": format})


_WRITERS = {"torchscript": _torchscript, "pt2": _pt2, "onnx": _onnx}
