"""One short check of rlkit's accelerator paths (``device=cuda``), for a session lent a GPU machine.

Such a session has about 15 minutes of device time in all, so this is the one prepared call it makes
(README, "Checking a GPU"); every step is timed and printed as it ends:

1. ``pytest -m cuda``: the tests that need a CUDA device (skipped everywhere else), in the test files
   that hold them (:func:`cuda_test_files`: the others may import extras the GPU machine lacks);
2. short training runs on the device, one per algorithm and env family (:data:`CASES`: DQN, C51, A2C
   with discrete and continuous actions, prioritised replay, MinAtar, Atari with frame replay, A2C on
   Atari, several seeds in one process), each ending with finite losses; frames/s printed;
3. resume on the device: each run again, stopped part way by a SIGINT (as Ctrl-C stops it, after
   the evaluation at ``split`` frames) and resumed (``resume=<run>``); its ``metrics.csv`` (less
   ``fps``) and ``episodes.csv`` must equal the uninterrupted run's. Where they differ, both are
   run again under ``torch.use_deterministic_algorithms`` (and cuDNN's deterministic mode): equal
   there, the case passes as ``nondeterministic`` (the default kernels sum in another order each
   run: cuDNN's convolution gradients, scatters with atomic adds), and the operations without a
   deterministic kernel are listed; differing there too, a third deterministic straight run tells a
   failed resume (``FAIL``) from a device that is not deterministic even so. On CUDA the operations
   that wait for the GPU are counted by the innermost line of rlkit that led to them, over the
   interrupted run's first part, its checkpoints and evaluation included (the most frequent are
   printed; explicit waits raise no warning, so this is a lower bound);
4. each device-trained run loaded on the CPU (``rlkit.load_agent(run, device="cpu")``) and acting,
   one evaluated on the device (``rlkit.evaluate``) and one exported (TorchScript) and run on the CPU;
5. ``scripts/bench_frames.py --device <device> --host-copy --measure-update``: frame replay on the
   device against a host buffer whose batches are copied to it, and the Nature CNN update rate the
   sampling has to feed.

Usage: python scripts/device_check.py [--device cuda] [--out DIR] [--summary FILE] [--only CASE ...]
                                      [--skip-tests] [--skip-frames] [--frames-transitions 100000]

``--device cpu`` runs the same checks on the CPU (the test suite runs one case that way, so the
script keeps working where there is no GPU). Exit status 0 when every check passed (a case found
non-deterministic on the device passes, where its resume was exact with deterministic algorithms or
cannot be compared); the summary is written to ``--summary`` (default ``<out>/device_check.json``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # (run as a script from anywhere)
    sys.path.insert(0, str(ROOT))

#: Overrides that keep an Atari run short: few frames before learning, a small replay, one
#: evaluation game cut at 1,000 frames.
_ATARI_SHORT = ["algo.buffer_size=5000", "trainer.eval_episodes=1", "env.options.max_episode_frames=1000"]


@dataclass(frozen=True)
class Case:
    """A short training run: ``overrides`` for ``total_frames`` frames, evaluated every ``split``
    frames; the interrupted copy is stopped at its first evaluation and resumed."""

    name: str
    overrides: list[str]
    total_frames: int
    split: int
    needs: list[str] = field(default_factory=list)  # modules the case needs (optional extras)


CASES = [
    Case("dqn-cartpole", ["algo=dqn", "env=CartPole", "algo.learning_starts=300"], 1500, 700),
    Case("c51-cartpole", ["algo=c51", "env=CartPole", "algo.learning_starts=300"], 1500, 700),
    Case("dqn-prioritized", ["algo=dqn", "env=CartPole", "algo.learning_starts=300", "algo.prioritized=true"],
         1500, 700),
    Case("a2c-cartpole-td_lambda", ["algo=a2c", "env=CartPole", "value_estimator=td_lambda"], 2000, 960),
    Case("a2c-pendulum", ["experiment=a2c_pendulum"], 2048, 1024),
    Case("dqn-minatar", ["experiment=dqn_minatar_breakout", "algo.learning_starts=300", "trainer.eval_episodes=2"],
         1500, 700, needs=["minatar"]),
    Case("dqn-atari", ["experiment=dqn_atari", "algo.learning_starts=200", *_ATARI_SHORT], 1000, 500,
         needs=["ale_py", "cv2"]),
    Case("c51-atari", ["experiment=c51_atari", "algo.learning_starts=200", *_ATARI_SHORT], 1000, 500,
         needs=["ale_py", "cv2"]),
    Case("a2c-atari", ["experiment=a2c_atari", *_ATARI_SHORT[1:]], 1600, 800, needs=["ale_py", "cv2"]),
    Case("dqn-3-seeds", ["algo=dqn", "env=CartPole", "algo.learning_starts=300", "num_seeds=3"], 1500, 700),
]

#: Every run's: no progress bar, CSV files only, the usual evaluation at the end.
_COMMON = ["trainer.progress=false", "logger=csv"]


def _train(run_dir: Path, overrides: list[str], stop_at: int | None = None,
           syncs: Counter[str] | None = None) -> tuple[float, int | None]:
    """Trains (or resumes) in this process as ``train.py`` would; returns the seconds taken and, with
    ``stop_at``, the frames it was stopped at: a SIGINT of its own stops the run at its first
    evaluation at or after that many frames (it must end interrupted, with a checkpoint). An
    interruption that is not its own (the user's Ctrl-C) is raised as ``KeyboardInterrupt``: the
    check stops, it is not taken for the planned stop. With ``syncs`` on a CUDA machine, every
    operation that waits for the GPU is counted there by its Python line
    (``torch.cuda.set_sync_debug_mode``)."""
    import torch
    from hydra import compose, initialize_config_dir

    from rlkit.run import run
    from rlkit.trainers import TrainerCallback, TrainingInterrupted

    class StopAt(TrainerCallback):
        sent: int | None = None  # the frames at which it sent its SIGINT

        def on_evaluation(self, frames: Any, metrics: Any) -> None:
            if stop_at is not None and frames >= stop_at and self.sent is None:
                self.sent = int(frames)
                os.kill(os.getpid(), signal.SIGINT)

        def on_seed_evaluations(self, frames: Any, by_seed: Any) -> None:
            self.on_evaluation(min(frames.values()) if isinstance(frames, dict) else frames, by_seed)

    stopper = StopAt()
    start = time.perf_counter()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    counting = syncs is not None and torch.cuda.is_available()
    try:
        with warnings.catch_warnings():
            if counting:
                assert syncs is not None
                warnings.simplefilter("always")
                warnings.showwarning = _sync_counter(syncs, warnings.showwarning)
                torch.cuda.set_sync_debug_mode("warn")
            try:
                run(cfg, run_dir, overrides=overrides, callbacks=[stopper] if stop_at is not None else [])
            finally:
                if counting:
                    torch.cuda.set_sync_debug_mode("default")
    except TrainingInterrupted:
        if stopper.sent is None:  # (not its own SIGINT: the user's)
            raise KeyboardInterrupt from None
    else:
        if stop_at is not None:
            raise RuntimeError(f"the run was not interrupted at {stop_at} frames")
    return time.perf_counter() - start, stopper.sent


def _sync_counter(syncs: Counter[str], show: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` that counts torch's "synchronizing CUDA operation" warnings in
    ``syncs`` by the innermost line of rlkit that led to them (with the line that waited, where that
    is in torch or tensordict), and shows every other warning with ``show``. Explicit waits
    (``torch.cuda.synchronize``, events) raise no such warning: the count is a lower bound."""

    def count(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if "synchroniz" not in str(message):
            show(message, category, filename, lineno, file, line)
            return
        site = f"{Path(filename).name}:{lineno}"
        ours = next((f for f in reversed(traceback.extract_stack()[:-1]) if f"{os.sep}rlkit{os.sep}" in f.filename), None)
        if ours is None:
            syncs[site] += 1
            return
        path = Path(ours.filename)
        where = f"{path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path}:{ours.lineno}"
        syncs[where if where.endswith(site) else f"{where} ({site})"] += 1

    return count


@contextlib.contextmanager
def _deterministic(seen: set[str]) -> Iterator[None]:
    """torch's deterministic algorithms (cuDNN's too) inside the block, warning where an operation has
    none (its message goes to ``seen``); the previous settings after it."""
    import torch

    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    show = warnings.showwarning

    def record(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        text = str(message)
        if "deterministic" in text:
            seen.add(text.splitlines()[0][:160])
        else:
            show(message, category, filename, lineno, file, line)

    try:
        with warnings.catch_warnings():
            warnings.showwarning = record
            yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]


def _seed_dirs(run_dir: Path) -> list[Path]:
    """The directories holding CSV files: the run's, or each seed's of a multi-seed run."""
    seeds = sorted(p.parent for p in run_dir.glob("seed_*/metrics.csv"))
    return seeds or [run_dir]


def _outputs(run_dir: Path) -> dict[str, Any]:
    """What must match between two runs: every metrics row less ``fps``, every episodes row."""
    import csv

    out: dict[str, Any] = {}
    for folder in _seed_dirs(run_dir):
        label = folder.name if folder != run_dir else "run"
        with open(folder / "metrics.csv", newline="") as f:
            out[f"{label}/metrics"] = [{k: v for k, v in row.items() if k != "fps"} for row in csv.DictReader(f)]
        with open(folder / "episodes.csv", newline="") as f:
            out[f"{label}/episodes"] = list(csv.DictReader(f))
    return out


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for key in a.keys() | b.keys():
        rows_a, rows_b = a.get(key, []), b.get(key, [])
        for i, (x, y) in enumerate(zip(rows_a, rows_b)):
            if x != y:
                column = next((k for k in x.keys() | y.keys() if x.get(k) != y.get(k)), "?")
                return f"{key} row {i + 1}, {column}: {x.get(column)} against {y.get(column)}"
        if len(rows_a) != len(rows_b):
            return f"{key}: {len(rows_a)} rows against {len(rows_b)}"
    return None


def _losses_finite(outputs: dict[str, Any]) -> bool:
    values = [float(v) for key, rows in outputs.items() if key.endswith("metrics") for row in rows
              for k, v in row.items() if k.startswith("loss_") and v not in ("", None)]
    return bool(values) and all(math.isfinite(v) for v in values)


def check_case(case: Case, device: str, out: Path) -> dict[str, Any]:
    """Trains ``case`` straight and split (resumed); the result line's fields."""
    base = [*case.overrides, *_COMMON, f"device={device}", f"trainer.eval_interval={case.split}"]
    straight, split = out / f"{case.name}-straight", out / f"{case.name}-split"
    for name in ("straight", "split", "deterministic-straight", "deterministic-split", "deterministic-again"):
        shutil.rmtree(out / f"{case.name}-{name}", ignore_errors=True)  # (an earlier check's runs into this --out)
    seconds, _ = _train(straight, [*base, f"total_frames={case.total_frames}"])
    reference = _outputs(straight)
    result: dict[str, Any] = {"case": case.name, "seconds": round(seconds, 1),
                              "frames_per_s": round(case.total_frames / seconds), "run_dir": str(straight)}
    if not _losses_finite(reference):
        return result | {"status": "FAIL", "detail": "no finite loss_* in metrics.csv"}
    syncs: Counter[str] = Counter()
    _, stopped = _train(split, [*base, f"total_frames={case.total_frames}"], stop_at=case.split, syncs=syncs)
    if syncs:  # (the first split frames and their evaluation; CUDA only)
        result["syncs_per_frame"] = round(sum(syncs.values()) / case.split, 2)
        result["sync_sites"] = dict(syncs.most_common(8))
    _train(split, [f"resume={split}"])
    difference = _first_difference(reference, _outputs(split))
    if difference is None:
        return result | {"status": "ok", "detail": f"stopped at {stopped}, resumed: = straight, bit for bit"}
    # Under the default kernels the resumed run differs: again under deterministic algorithms, which
    # tells a resume that loses something from kernels that sum in another order each run.
    seen: set[str] = set()
    runs = {name: out / f"{case.name}-deterministic-{name}" for name in ("straight", "split", "again")}
    with _deterministic(seen):
        _train(runs["straight"], [*base, f"total_frames={case.total_frames}"])
        _train(runs["split"], [*base, f"total_frames={case.total_frames}"], stop_at=case.split)
        _train(runs["split"], [f"resume={runs['split']}"])
        exact = _outputs(runs["straight"])
        strict = _first_difference(exact, _outputs(runs["split"]))
        repeat = None
        if strict is not None:
            _train(runs["again"], [*base, f"total_frames={case.total_frames}"])
            repeat = _first_difference(exact, _outputs(runs["again"]))
    if seen:
        result["nondeterministic_ops"] = sorted(seen)
    if strict is None:
        return result | {"status": "nondeterministic",
                         "detail": f"the default kernels differ from run to run here ({difference}); with "
                                   "torch.use_deterministic_algorithms: stopped, resumed = straight, bit for bit"}
    if repeat is not None:
        return result | {"status": "nondeterministic",
                         "detail": f"two straight runs differ even with deterministic algorithms ({repeat}); "
                                   "resume not comparable bit for bit"}
    return result | {"status": "FAIL", "detail": f"resumed run differs from the straight run, also with "
                                                 f"deterministic algorithms: {strict}"}


def check_loading(results: list[dict[str, Any]], device: str, out: Path) -> list[dict[str, Any]]:
    """Device-trained runs loaded on the CPU and acting; one evaluated on the device, one exported."""
    import torch

    import rlkit

    checks = []
    trained = [r for r in results if "frames_per_s" in r]  # (every run that trained, its resume's verdict aside)
    for r in trained:
        run_dir = _seed_dirs(Path(r["run_dir"]))[0]
        name = f"load-cpu:{r['case']}"
        try:
            agent = rlkit.load_agent(run_dir, device="cpu")
            spec = agent.observation_spec
            obs = torch.zeros(spec.shape, dtype=spec.dtype)
            action = agent.act(obs)
            checks.append({"case": name, "status": "ok", "detail": f"action {torch.as_tensor(action).tolist()}"})
        except Exception as err:  # (reported, not raised: the other checks still run)
            checks.append({"case": name, "status": "FAIL", "detail": f"{type(err).__name__}: {err}"})
    if trained:
        run_dir = _seed_dirs(Path(trained[0]["run_dir"]))[0]
        shutil.rmtree(out / "evaluate", ignore_errors=True)  # (an earlier check's, into this --out)
        try:
            evaluated = rlkit.evaluate(run_dir, episodes=2, device=device, output_dir=out / "evaluate")
            checks.append({"case": f"evaluate-{device}", "status": "ok",
                           "detail": f"return_mean {evaluated['return_mean']:.3g}"})
        except Exception as err:
            checks.append({"case": f"evaluate-{device}", "status": "FAIL", "detail": f"{type(err).__name__}: {err}"})
        try:
            path = rlkit.export(run_dir, "torchscript", out / "policy.pt")
            agent = rlkit.load_agent(run_dir, device="cpu")
            obs = torch.zeros((3, *agent.observation_spec.shape), dtype=agent.observation_spec.dtype)
            same = torch.equal(torch.jit.load(str(path))(obs), torch.as_tensor(agent.act(obs)))
            checks.append({"case": "export-torchscript", "status": "ok" if same else "FAIL",
                           "detail": "exported policy acts as the loaded agent" if same else "actions differ"})
        except Exception as err:
            checks.append({"case": "export-torchscript", "status": "FAIL", "detail": f"{type(err).__name__}: {err}"})
    return checks


def cuda_test_files() -> list[str]:
    """The test files with tests marked ``cuda`` (those importing ``tests/cuda_marks.py``)."""
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")
                  if "from cuda_marks import" in p.read_text())


def _run(command: list[str], timeout: float) -> tuple[int, str, float]:
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
        return done.returncode, done.stdout + done.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired as err:
        partial = b"".join(x for x in (err.stdout, err.stderr) if isinstance(x, bytes)).decode(errors="replace")
        return 124, f"timed out after {timeout:.0f} s: {partial[-2000:]}", time.perf_counter() - start


def _print(entry: dict[str, Any]) -> None:
    timing = f" ({entry['seconds']} s, {entry['frames_per_s']} frames/s)" if "frames_per_s" in entry else ""
    print(f"[{entry['status']}] {entry['case']}{timing}: {entry.get('detail', '')}", flush=True)
    if "syncs_per_frame" in entry:
        sites = ", ".join(f"{site} x{n}" for site, n in entry["sync_sites"].items())
        print(f"    GPU syncs: {entry['syncs_per_frame']} per frame; where: {sites}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=None, help="where the runs go (default: a temporary directory)")
    parser.add_argument("--only", nargs="+", choices=[c.name for c in CASES], default=None)
    parser.add_argument("--summary", type=Path, default=None,
                        help="where the JSON summary goes (default: <out>/device_check.json)")
    parser.add_argument("--skip-tests", action="store_true", help="no `pytest -m cuda`")
    parser.add_argument("--skip-frames", action="store_true", help="no frame replay benchmark")
    parser.add_argument("--frames-transitions", type=int, default=100_000,
                        help="frame replay benchmark size (1,000,000 is 7 GB: on an 80 GB GPU it fits)")
    args = parser.parse_args(argv)
    import importlib.util

    import torch

    from rlkit.utils.devices import device_problem

    problem = device_problem(args.device)
    if problem is not None:
        parser.error(f"--device {args.device}: {problem}")
    torch.set_num_threads(1)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # (cuBLAS's deterministic mode needs it)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"device_check: --device {args.device} but torch {torch.__version__} sees no CUDA device", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="rlkit-device-check-"))
    summary_path = args.summary or out / "device_check.json"
    try:  # (checked before the checks: a summary that cannot be written threw their minutes away)
        out.mkdir(parents=True, exist_ok=True)
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        if summary_path.is_dir():
            raise IsADirectoryError(f"{summary_path} is a directory")
    except OSError as err:
        print(f"device_check: cannot write --out {out} or --summary {summary_path}: {err}", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device_check: {args.device} ({name}), torch {torch.__version__}, python {sys.version.split()[0]}; "
          f"runs in {out}", flush=True)
    entries: list[dict[str, Any]] = []
    if not args.skip_tests:
        command = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", *cuda_test_files()]
        code, output, seconds = _run(command, 300)
        lines = output.strip().splitlines()
        entries.append({"case": "pytest -m cuda", "status": "ok" if code == 0 else "FAIL",
                        "detail": f"{lines[-1] if lines else ''} ({seconds:.0f} s)"})
        if code != 0:
            (out / "pytest.log").write_text(output)
        _print(entries[-1])
    results = []
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        missing = [m for m in case.needs if importlib.util.find_spec(m) is None]
        if missing:
            entry = {"case": case.name, "status": "skipped", "detail": f"not installed: {missing}"}
        else:
            try:
                entry = check_case(case, args.device, out)
            except Exception as err:  # (reported, not raised: the other cases still run)
                entry = {"case": case.name, "status": "FAIL", "detail": f"{type(err).__name__}: {err}"}
        results.append(entry)
        _print(entry)
    for entry in check_loading(results, args.device, out):
        entries.append(entry)
        _print(entry)
    if not args.skip_frames:
        command = [sys.executable, "scripts/bench_frames.py", "--device", args.device, "--seconds", "5",
                   "--transitions", str(args.frames_transitions), "--measure-update"]
        if device.type != "cpu":
            command.append("--host-copy")
        code, output, seconds = _run(command, 240)
        entries.append({"case": "bench_frames", "status": "ok" if code == 0 else "FAIL",
                        "detail": " | ".join(output.strip().splitlines()[-6:]) + f" ({seconds:.0f} s)"})
        _print(entries[-1])
    summary = {"device": args.device, "name": name, "torch": torch.__version__, "cases": results, "checks": entries}
    summary_path.write_text(json.dumps(summary, indent=1))
    failed = [e["case"] for e in [*results, *entries] if e["status"] == "FAIL"]
    print(f"device_check: {'FAILED: ' + ', '.join(failed) if failed else 'every check passed'} "
          f"(summary: {summary_path})")
    return 1 if failed else 0


if __name__ == "__main__":
    from rlkit.script_args import interruptible

    sys.exit(interruptible(main, "device_check.py", "no summary was written"))
