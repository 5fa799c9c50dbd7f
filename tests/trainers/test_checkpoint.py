"""Checkpoints: atomic writes, weights_only safety, run-directory layout, RNG round trip."""
from __future__ import annotations

import collections
import enum
import errno
import os
import random
import re
import warnings

import numpy as np
import pytest
import torch
from cuda_marks import needs_cuda

from rlkit.errors import CheckpointError, CorruptCheckpointError, ResourceError, UnsafeCheckpointError
from rlkit.trainers import checkpoint as ckpt
from rlkit.trainers.checkpoint import (
    FORMAT_VERSION,
    checkpoint_dir,
    find_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    save_run_checkpoint,
    set_rng_state,
    verify_checkpoint,
)


class Custom:
    pass


class Color(enum.IntEnum):
    RED = 1


def _training_state() -> dict:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 3)).sum().backward()
    optim.step()
    return {"model": model.state_dict(), "optimizer": optim.state_dict(), "frames": 1234, "rng": rng_state()}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


def test_round_trip_of_model_optimizer_and_scalars(tmp_path):
    state = _training_state()
    path = save_checkpoint(tmp_path / "sub" / "last.pt", state)
    assert path == tmp_path / "sub" / "last.pt"
    loaded = load_checkpoint(path)
    assert loaded.pop("format_version") == FORMAT_VERSION
    assert _equal(loaded, state)
    assert list(loaded["optimizer"]["state"]) == [0, 1, 2, 3]  # int keys survive
    save_checkpoint(path, load_checkpoint(path))  # a loaded checkpoint can be saved again


# Values that torch.load(weights_only=True) accepts, and ones it refuses. The parity test below ties
# save_checkpoint's validation to torch's actual behaviour.
ACCEPTED = {
    "none": None, "bool": True, "int": 3, "float": 1.5, "complex": 1j, "str": "a", "bytes": b"x",
    "size": torch.Size([2, 3]), "dtype": torch.bfloat16, "device": torch.device("cpu"),
    "set": {1, 2}, "ordered": collections.OrderedDict(a=1), "param": torch.nn.Parameter(torch.ones(2)),
    "int_key": {0: "a"}, "tuple_key": {(1, "a"): 2}, "nested": {"a": [(1, {"b": torch.ones(1)})]},
}  # fmt: skip
REFUSED = {
    "custom": Custom(), "numpy_array": np.ones(2), "numpy_float": np.float64(1.0), "int_enum": Color.RED,
    "frozenset": frozenset([1]), "slice": slice(1, 2), "range": range(3),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_values_save_and_load(tmp_path, name):
    path = save_checkpoint(tmp_path / "c.pt", {"x": ACCEPTED[name]})
    assert _equal(load_checkpoint(path)["x"], ACCEPTED[name])


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_values_are_refused_by_torch_too(tmp_path, name):
    with pytest.raises(TypeError, match=r"checkpoint value at state\['x'\] has type .*weights_only=True\) refuses"):
        save_checkpoint(tmp_path / "c.pt", {"x": REFUSED[name]})
    assert not (tmp_path / "c.pt").exists()
    torch.save({"x": REFUSED[name]}, tmp_path / "plain.pt")
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(tmp_path / "plain.pt", weights_only=True)


def test_refusal_names_the_nested_key_path_and_hints(tmp_path):
    with pytest.raises(TypeError, match=r"at state\['a'\]\['b'\]\[1\] has type test_checkpoint.Custom"):
        save_checkpoint(tmp_path / "c.pt", {"a": {"b": [1, Custom()]}})
    with pytest.raises(TypeError, match=r"at state\['w'\] has type numpy.ndarray.*torch.as_tensor"):
        save_checkpoint(tmp_path / "c.pt", {"w": np.zeros(3)})
    with pytest.raises(TypeError, match=r"at state\['net'\] .*save its .state_dict\(\) instead"):
        save_checkpoint(tmp_path / "c.pt", {"net": torch.nn.Linear(1, 1)})


def test_other_invalid_states(tmp_path):
    path = tmp_path / "c.pt"
    with pytest.raises(TypeError, match="must be a mapping with str keys, got list"):
        save_checkpoint(path, [1, 2])
    with pytest.raises(TypeError, match="top-level keys must be str, got 0"):
        save_checkpoint(path, {0: 1})
    with pytest.raises(TypeError, match=r"dict at state\['a'\] has key <object .*> of type object"):
        save_checkpoint(path, {"a": {object(): 1}})
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(TypeError, match=r"at state\['a'\]\[1\] contains itself"):
        save_checkpoint(path, {"a": loop})
    with pytest.raises(ValueError, match=f"state\\['format_version'\\] is 0; this rlkit writes format {FORMAT_VERSION}"):
        save_checkpoint(path, {"format_version": 0})
    assert not path.exists()


def _assert_crash_keeps_previous(tmp_path, monkeypatch, target, name, exc):
    path = save_checkpoint(tmp_path / "last.pt", {"frames": 1})
    monkeypatch.setattr(target, name, exc)
    with pytest.raises((OSError, KeyboardInterrupt)):
        save_checkpoint(path, {"frames": 2, "w": torch.ones(1000)})
    monkeypatch.undo()
    assert load_checkpoint(path)["frames"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left


def test_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    def partial_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise OSError("disk full")

    _assert_crash_keeps_previous(tmp_path, monkeypatch, torch, "save", partial_save)


def test_crash_at_rename_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise OSError("power cut")

    _assert_crash_keeps_previous(tmp_path, monkeypatch, ckpt.os, "replace", failing_replace)


def test_interrupt_while_writing_cleans_up(tmp_path, monkeypatch):
    def interrupted(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    _assert_crash_keeps_previous(tmp_path, monkeypatch, torch, "save", interrupted)


def test_load_refuses_arbitrary_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": FORMAT_VERSION, "x": Custom()}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"refusing to load .*evil.pt.*Unsupported global.*Custom.*arbitrary code"):
        load_checkpoint(path)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint file at '.*missing.pt'$"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="it is a directory: use find_checkpoint"):
        load_checkpoint(tmp_path)
    (tmp_path / "text.pt").write_text("hello world")
    with pytest.raises(CheckpointError, match=r"text.pt' is not a torch checkpoint \(not a zip archive: it starts "
                                              r"with b'hell'\)"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="list.pt' is not an rlkit checkpoint: .*'format_version'.*got list"):
        load_checkpoint(tmp_path / "list.pt")
    torch.save({"model": {}}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match=r"not an rlkit checkpoint: .* with keys \['model'\]"):
        load_checkpoint(tmp_path / "plain.pt")
    torch.save({"format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(ValueError, match=f"has checkpoint format 99; this rlkit reads format {FORMAT_VERSION} only$"):
        load_checkpoint(tmp_path / "future.pt")
    torch.save({"format_version": 1}, tmp_path / "old.pt")  # format 1 stored DQN action values
    with pytest.raises(CheckpointError, match="has checkpoint format 1; this rlkit reads format 2 only; it was written by "
                                         "an older rlkit: resume it with that version or start a new run"):
        load_checkpoint(tmp_path / "old.pt")


def _state() -> dict:
    gen = torch.Generator().manual_seed(0)
    return {"frames": 1234, "replay": {"obs": torch.randn(500, 4, generator=gen)},
            "adam": {"exp_avg": torch.randn(84, 120, generator=gen)}, "rng": torch.get_rng_state()}


def _records(path) -> dict[str, tuple[int, int]]:
    """Byte ranges (start, end) of each record's data in a torch zip file."""
    import zipfile

    out = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as f:
        for info in archive.infolist():
            f.seek(info.header_offset + 26)
            name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
            start = info.header_offset + 30 + name_len + extra_len
            out[info.filename] = (start, start + info.compress_size)
    return out


def test_a_checkpoint_with_flipped_bytes_is_refused_as_corrupt(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", _state())
    intact = path.read_bytes()
    records = _records(path)
    rng = random.Random(0)
    # 20 flipped bytes anywhere in the tensor data, and in the pickled structure (which torch would
    # otherwise unpickle into other keys or numbers, or refuse as if it were unsafe).
    for name in ("archive/data/0", "archive/data/1", "archive/data.pkl"):
        start, end = records[name]
        data = bytearray(intact)
        for at in rng.sample(range(start, end), min(20, end - start)):
            data[at] ^= 0x5A
        path.write_bytes(bytes(data))
        with pytest.raises(CorruptCheckpointError, match=rf"last.pt' is corrupt: the checksum of its record "
                                                          rf"'{name}' does not match its bytes"):
            load_checkpoint(path)
    path.write_bytes(intact)
    assert load_checkpoint(path)["frames"] == 1234


def test_random_corruption_never_loads_a_changed_state(tmp_path):
    """Anywhere in the file (headers, padding and directory included): refused, or loads exactly the
    saved state (a flip in alignment padding changes nothing that is read)."""
    state = _state()
    path = save_checkpoint(tmp_path / "last.pt", state)
    intact = path.read_bytes()
    rng = random.Random(1)
    refused = 0
    for _ in range(200):
        data = bytearray(intact)
        for at in rng.sample(range(len(data)), 20):
            data[at] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        try:
            loaded = load_checkpoint(path)
        except CheckpointError:
            refused += 1
            continue
        assert loaded["frames"] == state["frames"]
        for key in ("replay", "adam"):
            for name, value in state[key].items():
                assert torch.equal(loaded[key][name], value)
    assert refused == 200  # 20 bytes: practically always one in what is read


@pytest.mark.parametrize("keep", [0, 100, 0.5, -22])
def test_a_truncated_checkpoint_is_refused_as_corrupt(tmp_path, keep):
    path = save_checkpoint(tmp_path / "last.pt", _state())
    data = path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    path.write_bytes(data[:cut])
    error = CheckpointError if cut < 4 else CorruptCheckpointError
    with pytest.raises(error, match="is corrupt|is not a torch checkpoint"):
        load_checkpoint(path)


def test_a_checkpoint_written_with_crc_computation_disabled_still_gets_checksums(tmp_path):
    from torch.utils.serialization import config

    before = config.save.compute_crc32
    config.save.compute_crc32 = False
    try:
        path = save_checkpoint(tmp_path / "last.pt", _state())
    finally:
        config.save.compute_crc32 = before
    verify_checkpoint(path)  # the CRCs were written although the user had turned them off


def test_load_map_location(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", {"w": torch.ones(2)})
    assert load_checkpoint(path, map_location="meta")["w"].device.type == "meta"


def test_run_checkpoints_keep_last_and_periodic_snapshots(tmp_path):
    for frames in (400, 800, 1200, 1900, 2100, 2900):
        last = save_run_checkpoint(tmp_path, {"frames": frames}, frames=frames, keep_every=1000)
    assert last == tmp_path / "checkpoints" / "last.pt" and checkpoint_dir(tmp_path) == last.parent
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt", "step_1200.pt", "step_2100.pt", "step_400.pt"]
    assert load_checkpoint(last)["frames"] == 2900
    assert load_checkpoint(last.parent / "step_1200.pt")["frames"] == 1200
    save_run_checkpoint(tmp_path / "plain", {"frames": 5}, frames=5)
    assert [p.name for p in checkpoint_dir(tmp_path / "plain").iterdir()] == ["last.pt"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"frames": 10, "keep_every": 0}, "keep_every must be a positive int .* got 0"),
    ({"frames": 10, "keep_every": 2.5}, "keep_every must be a positive int .* got 2.5"),
    ({"frames": -1}, "frames must be >= 0, got -1"),
])  # fmt: skip
def test_run_checkpoint_argument_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        save_run_checkpoint(tmp_path, {}, **kwargs)


def test_find_checkpoint(tmp_path):
    state = {"frames": 0}
    single = save_checkpoint(tmp_path / "single.pt", state)
    assert find_checkpoint(single) == single
    run = tmp_path / "run"
    save_checkpoint(run / "checkpoints" / "step_200.pt", state)
    save_checkpoint(run / "checkpoints" / "step_1000.pt", state)
    assert find_checkpoint(run) == run / "checkpoints" / "step_1000.pt"  # numeric, not lexicographic
    save_checkpoint(run / "checkpoints" / "last.pt", state)
    assert find_checkpoint(run) == run / "checkpoints" / "last.pt"
    assert find_checkpoint(run / "checkpoints") == run / "checkpoints" / "last.pt"


def test_find_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint file or run directory at '.*nope'"):
        find_checkpoint(tmp_path / "nope")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"looked for last.pt or step_<frames>.pt in '.*checkpoints' and '.*'"):
        find_checkpoint(tmp_path)


def _draw() -> list:
    return [
        random.random(), random.gauss(0, 1), random.getrandbits(64),
        np.random.rand(3).tolist(), np.random.randn(1).tolist(),  # randn(1) leaves a cached gaussian
        torch.rand(3).tolist(), torch.randint(0, 10**9, (2,)).tolist(),
    ]  # fmt: skip


def test_rng_round_trip_is_exact_through_a_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    _draw()  # move every generator to a non-trivial position (gauss caches included)
    path = save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    expected = _draw()
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    set_rng_state(load_checkpoint(path)["rng"])
    assert _draw() == expected


def test_set_rng_state_errors_and_cuda_mismatch_warning():
    with pytest.raises(KeyError, match=r"RNG state lacks \['numpy'\]"):
        set_rng_state({"python": {}, "torch": torch.get_rng_state()})
    state = rng_state()
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    state["cuda"] = list(state.get("cuda", [])) + [torch.get_rng_state()]  # one generator too many
    with pytest.warns(UserWarning, match=f"holds {available + 1} CUDA generator.*has {available} CUDA device"):
        set_rng_state(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        set_rng_state(rng_state())


def _untouchable(name: str):
    """A stand-in for a ``torch.cuda`` function that a test says must not be called."""
    def called(*args, **kwargs):
        raise AssertionError(f"torch.cuda.{name} was called")
    return called


def test_a_process_that_has_not_initialised_cuda_neither_saves_nor_restores_cuda_generators(monkeypatch):
    """On a GPU machine, a run on the CPU never initialises CUDA: reading CUDA's generators would
    (a CUDA context's GPU memory per process, an error on a GPU in exclusive-process mode), so its
    RNG state holds none, and restoring such a state leaves CUDA alone; a process that initialised
    CUDA (a run on a CUDA device) saves them."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    for name in ("get_rng_state_all", "get_rng_state", "set_rng_state", "device_count"):
        monkeypatch.setattr(torch.cuda, name, _untouchable(name))
    state = rng_state()
    assert "cuda" not in state
    expected = torch.rand(3)
    set_rng_state(state)
    assert torch.equal(torch.rand(3), expected)
    # Initialised: every device's generator is saved, and restored on as many devices as there are.
    generators = [torch.full((8,), 1, dtype=torch.uint8), torch.full((8,), 2, dtype=torch.uint8)]
    restored: list[tuple[int, list]] = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [g.clone() for g in generators])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda new, device: restored.append((device, new.tolist())))
    state = rng_state()
    assert [g.tolist() for g in state["cuda"]] == [g.tolist() for g in generators]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (as many devices as saved generators: no warning)
        set_rng_state(state)
    assert restored == [(0, generators[0].tolist()), (1, generators[1].tolist())]


@needs_cuda
def test_cuda_rng_round_trip():
    state = rng_state()
    expected = torch.rand(4, device="cuda")
    torch.cuda.manual_seed_all(123)
    set_rng_state(state)
    assert torch.equal(torch.rand(4, device="cuda"), expected)


def test_an_exported_torchscript_file_is_named_as_such_without_torchs_warning(tmp_path):
    """export.py's output given where a checkpoint goes: one message saying what it is (torch.load
    warned and then advised the unsafe weights_only=False, cut off mid-word)."""
    path = tmp_path / "policy.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 1)), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CheckpointError, match=r"policy\.pt' is a TorchScript program \(what export\.py writes\), "
                                                  r"not an rlkit checkpoint; give the run directory"):
            load_checkpoint(path)
    # An ordinary checkpoint is no TorchScript program.
    save_checkpoint(tmp_path / "ok.pt", {"x": torch.ones(2)})
    assert torch.equal(load_checkpoint(tmp_path / "ok.pt")["x"], torch.ones(2))


def test_an_empty_checkpoint_is_refused_as_empty_naming_what_else_there_is(tmp_path):
    """A zero-byte last.pt was "not a torch checkpoint ... written by torch.save", where the README
    promises a truncated file is refused as corrupt."""
    for frames in (100, 200):
        save_run_checkpoint(tmp_path, _state() | {"frames": frames}, frames=frames, keep_every=100)
    last = checkpoint_dir(tmp_path) / "last.pt"
    last.write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match=r"last.pt' is corrupt: it is empty \(0 bytes: an interrupted copy "
                                                     r"or a full disk\); use another of the checkpoints in "
                                                     r"'.*checkpoints' instead: \['step_100.pt', 'step_200.pt'\]$"):
        load_checkpoint(last)


@pytest.mark.parametrize("damage", ["truncated", "a changed byte"])
def test_the_corrupt_checkpoint_advice_names_the_checkpoints_there_are(tmp_path, damage):
    """It pointed to checkpoints/step_<frames>.pt whether or not the run had any."""
    last = save_run_checkpoint(tmp_path, _state(), frames=100)
    data = bytearray(last.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF
    last.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError, match=r"is corrupt.*; there is no other checkpoint in '.*checkpoints' "
                                                     r"\(no step_<frames>.pt snapshots: trainer.keep_checkpoints=true "
                                                     r"keeps them\); restore the file from a copy, or start a new run$"):
        load_checkpoint(last)
    (checkpoint_dir(tmp_path) / "abandoned_1").mkdir()
    save_checkpoint(checkpoint_dir(tmp_path) / "abandoned_1" / "step_50.pt", _state())
    with pytest.raises(CorruptCheckpointError, match=r"instead: \['abandoned_1/step_50.pt'\]$"):
        load_checkpoint(last)


class _FillsUp:
    """A file on a device with ``room`` bytes free."""

    def __init__(self, file, room: int) -> None:
        self._file, self._room = file, room

    def write(self, data) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name):
        return getattr(self._file, name)


@pytest.mark.parametrize("where", ["a write", "the fsync", "a snapshot"])
def test_a_full_disk_is_named_with_the_space_free_and_the_last_good_checkpoint(tmp_path, monkeypatch, where):
    """torch.save reports a write that found no space as `RuntimeError: [enforce fail at
    inline_container.cc:672] . unexpected pos 203520 vs 203408`, which never says the disk is full."""
    import contextlib

    save_run_checkpoint(tmp_path, _state() | {"frames": 100}, frames=100)
    atomic_write = ckpt.atomic_write
    io_module = __import__("rlkit.utils.io", fromlist=["os"])
    fsync = io_module.os.fsync

    @contextlib.contextmanager
    def full(path, mode="w", **kwargs):
        with atomic_write(path, mode, **kwargs) as f:
            yield _FillsUp(f, 1000) if where == "a write" or (where == "a snapshot" and "step_" in str(path)) else f

    def failing_fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ckpt, "atomic_write", full)
    if where == "the fsync":
        monkeypatch.setattr(io_module.os, "fsync", failing_fsync)
    last = checkpoint_dir(tmp_path) / "last.pt"
    target = checkpoint_dir(tmp_path) / "step_200.pt" if where == "a snapshot" else last
    with pytest.raises(ResourceError) as info:
        save_run_checkpoint(tmp_path, _state() | {"frames": 200}, frames=200,
                            keep_every=100 if where == "a snapshot" else None)
    monkeypatch.setattr(io_module.os, "fsync", fsync)
    message = str(info.value)
    assert re.fullmatch(rf"no space left on the device writing {re.escape(str(target))} "
                        rf"\(\d[\d.]* (bytes|KiB|MiB|GiB|TiB) free\); the last good checkpoint is "
                        rf"{re.escape(str(last))}", message), message
    assert sorted(p.name for p in checkpoint_dir(tmp_path).iterdir()) == ["last.pt"]  # (no temporary file)
    assert load_checkpoint(last)["frames"] == (200 if where == "a snapshot" else 100)


def test_a_failed_write_that_is_not_a_full_disk_keeps_its_own_error(tmp_path, monkeypatch):
    def broken(obj, f, *args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 10 vs 5")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="unexpected pos"):
        save_checkpoint(tmp_path / "last.pt", _state())
    assert list(tmp_path.iterdir()) == []
