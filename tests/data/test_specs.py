"""Tests for rlkit.data.specs: domains, sampling, membership, projection, masks, devices, Composite."""
from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch
from cuda_marks import needs_cuda
from tensordict import TensorDict

import rlkit.data.specs as specs_module
from rlkit.data import Binary, Bounded, Categorical, Composite, MultiOneHot, OneHot, OneHotDiscreteTensorSpec
from rlkit.data import TensorSpec, Unbounded

INF = float("inf")
NAN = float("nan")


# One spec of each kind (masked and shaped variants too), shared by the generic tests below.
CASES: dict[str, TensorSpec] = {
    "onehot": OneHot(4),
    "onehot_masked": OneHot(4, mask=torch.tensor([True, False, True, False])),
    "categorical": Categorical(5),
    "categorical_shaped": Categorical(3, shape=(2,)),
    "categorical_masked": Categorical(4, mask=torch.tensor([False, True, False, True])),
    "multionehot": MultiOneHot([2, 3]),
    "binary": Binary(3),
    "bounded": Bounded(-1.0, 2.0, (2,)),
    "bounded_int": Bounded(-2, 3, (2,), dtype=torch.int64),
    "unbounded": Unbounded((3,)),
}


def _independent_member_check(spec: TensorSpec, x: torch.Tensor) -> bool:
    """Membership written without the spec's own ``is_in``, so a broken ``is_in`` cannot hide."""
    if isinstance(spec, OneHot):
        ok = ((x == 0) | (x == 1)).all() and (x.sum(-1) == 1).all()
        return bool(ok) and (spec.mask is None or bool(spec.mask.expand_as(x)[x.bool()].all()))
    if isinstance(spec, Categorical):
        ok = bool(((x >= 0) & (x < spec.n)).all())
        return ok and (spec.mask is None or bool(spec.mask[x].all()))
    if isinstance(spec, MultiOneHot):
        return all(bool(((g == 0) | (g == 1)).all() and (g.sum(-1) == 1).all()) for g in x.split(spec.nvec, -1))
    if isinstance(spec, Binary):
        return bool(((x == 0) | (x == 1)).all())
    if isinstance(spec, Bounded):
        return bool(((x >= spec.low) & (x <= spec.high)).all())
    return bool(torch.isfinite(x).all())


# -- shape / dtype -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, shape, dtype",
    [
        (OneHot(4), (4,), torch.int64),
        (Categorical(5), (), torch.int64),
        (Categorical(5, shape=(2,)), (2,), torch.int64),
        (MultiOneHot([2, 3]), (5,), torch.int64),
        (Binary(3), (3,), torch.int64),
        (Binary(3, dtype=torch.bool), (3,), torch.bool),
        (Bounded(-1.0, 1.0, (2,)), (2,), torch.float32),
        (Bounded([0.0, 1.0], 2.0), (2,), torch.float32),
        (Unbounded((3,)), (3,), torch.float32),
        (Unbounded(), (), torch.float32),
        (Composite(a=Binary(2)), (), torch.float32),
    ],
)
def test_shape_and_dtype(spec: TensorSpec, shape: tuple, dtype: torch.dtype) -> None:
    assert spec.shape == torch.Size(shape)
    assert spec.dtype == dtype


def test_public_attributes() -> None:
    assert OneHotDiscreteTensorSpec is OneHot
    assert OneHot(4).n == 4 and OneHot(4).mask is None
    assert Categorical(5).n == 5
    assert MultiOneHot(torch.tensor([2, 3])).nvec == [2, 3]
    assert Binary(3).n == 3
    box = Bounded(torch.tensor([0.0, -1.0]), 1.0)
    assert torch.equal(box.low, torch.tensor([0.0, -1.0])) and torch.equal(box.high, torch.tensor([1.0, 1.0]))


# -- rand ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("batch", [(), (7,), (2, 3)])
def test_rand_members_shape_dtype(name: str, batch: tuple) -> None:
    spec = CASES[name]
    x = spec.rand(batch)
    assert x.shape == torch.Size(batch) + spec.shape
    assert x.dtype == spec.dtype
    assert _independent_member_check(spec, x.reshape(-1, *spec.shape))
    assert spec.is_in(x)


def _reached(spec: TensorSpec, draws: int = 2000) -> set:
    x = spec.rand((draws,))
    if isinstance(spec, OneHot):
        return set(spec.to_index(x).tolist())
    return set(x.flatten().tolist())


@pytest.mark.parametrize(
    "spec, expected",
    [
        (OneHot(4), {0, 1, 2, 3}),
        (OneHotDiscreteTensorSpec(3, mask=torch.tensor([True, False, True])), {0, 2}),
        (Categorical(5), {0, 1, 2, 3, 4}),
        (Categorical(5, shape=(2,)), {0, 1, 2, 3, 4}),
        (Categorical(4, mask=torch.tensor([False, True, False, True])), {1, 3}),
        (Bounded(-2, 3, dtype=torch.int64), {-2, -1, 0, 1, 2, 3}),
    ],
)
def test_rand_reaches_exactly_the_allowed_values(spec: TensorSpec, expected: set) -> None:
    assert _reached(spec) == expected


def test_rand_reaches_every_group_and_bit() -> None:
    x = MultiOneHot([2, 3]).rand((1000,))
    first, second = x.split([2, 3], -1)
    assert set(first.argmax(-1).tolist()) == {0, 1} and set(second.argmax(-1).tolist()) == {0, 1, 2}
    bits = Binary(3).rand((1000,))
    assert bool((bits.amax(0) == 1).all()) and bool((bits.amin(0) == 0).all())


def test_rand_bounded_float_spans_the_box() -> None:
    x = Bounded(torch.tensor([-1.0, 10.0]), torch.tensor([1.0, 11.0])).rand((2000,))
    assert x.amin(0).tolist() == pytest.approx([-1.0, 10.0], abs=0.02)
    assert x.amax(0).tolist() == pytest.approx([1.0, 11.0], abs=0.02)


@pytest.mark.parametrize("low, high", [(2e6, INF), (-INF, -5e6), (-INF, INF), (0.0, INF)])
def test_rand_bounded_with_infinite_sides_stays_inside(low: float, high: float) -> None:
    spec = Bounded(low, high, (3,))
    x = spec.rand((200,))
    assert bool(torch.isfinite(x).all()) and bool(((x >= low) & (x <= high)).all())


@pytest.mark.parametrize("cls", [OneHot, Categorical])
def test_rand_per_row_mask_with_batch_dims(cls: type) -> None:
    mask = torch.tensor([[True, False, False, True], [False, True, True, False], [False, False, True, False]])
    spec = cls(4, mask=mask)
    x = spec.rand((400, 3))  # leading dims broadcast over the mask's batch dim
    index = spec.to_index(x) if cls is OneHot else x
    for row in range(3):
        assert set(index[:, row].tolist()) == set(mask[row].nonzero().flatten().tolist())


@pytest.mark.parametrize("cls", [OneHot, Categorical])
def test_rand_mask_that_does_not_fit_the_batch_raises(cls: type) -> None:
    spec = cls(3, mask=torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask of shape \(4, 3\) does not broadcast to the batch shape \(5,\)"):
        spec.rand((5,))


# -- is_in ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, x, expected",
    [
        (OneHot(3), torch.tensor([[0, 1, 0], [1, 0, 0]]), True),
        (OneHot(3), torch.tensor([0.0, 0.0, 1.0]), True),
        (OneHot(3), torch.tensor([False, True, False]), True),
        (OneHot(3), torch.tensor([0, 1, 0, 0]), False),  # wrong shape
        (OneHot(3), torch.tensor([0, 1, 1]), False),  # two ones
        (OneHot(3), torch.tensor([0, 0, 0]), False),  # no one
        (OneHot(3), torch.tensor([0, 2, -1]), False),  # sums to one, not binary
        (OneHot(3), [0, 1, 0], False),  # not a tensor
        (OneHot(3, mask=torch.tensor([True, False, True])), torch.tensor([0, 1, 0]), False),
        (OneHot(3, mask=torch.tensor([True, False, True])), torch.tensor([0, 0, 1]), True),
        (OneHot(2, mask=torch.tensor([[True, False], [False, True]])), torch.tensor([[1, 0], [0, 1]]), True),
        (OneHot(2, mask=torch.tensor([[True, False], [False, True]])), torch.tensor([[1, 0], [1, 0]]), False),
        (OneHot(2, mask=torch.tensor([[True, False], [False, True]])), torch.tensor([[1, 0]] * 3), False),
        (Categorical(3), torch.tensor([0, 2, 1]), True),
        (Categorical(3), torch.tensor(3), False),
        (Categorical(3), torch.tensor(-1), False),
        (Categorical(3), torch.tensor([1.0, 2.0]), True),
        (Categorical(3), torch.tensor(1.5), False),
        (Categorical(3), torch.tensor(NAN), False),
        (Categorical(3, shape=(2,)), torch.tensor([0, 1, 2]), False),
        (Categorical(4, mask=torch.tensor([False, True, False, True])), torch.tensor([1, 3]), True),
        (Categorical(4, mask=torch.tensor([False, True, False, True])), torch.tensor([1, 2]), False),
        (MultiOneHot([2, 3]), torch.tensor([0, 1, 0, 0, 1]), True),
        (MultiOneHot([2, 3]), torch.tensor([1, 1, 0, 0, 1]), False),
        (MultiOneHot([2, 3]), torch.tensor([0, 1, 0, 0, 0]), False),
        (MultiOneHot([2, 3]), torch.tensor([0, 1, 0, 1]), False),
        (Binary(3), torch.tensor([1, 0, 1]), True),
        (Binary(3), torch.tensor([1, 2, 0]), False),
        (Binary(3), torch.tensor([1, 0]), False),
        (Bounded(-1.0, 1.0, (2,)), torch.tensor([-1.0, 1.0]), True),
        (Bounded(-1.0, 1.0, (2,)), torch.tensor([0.0, 1.01]), False),
        (Bounded(-1.0, 1.0, (2,)), torch.tensor([0.0, NAN]), False),
        (Bounded(-1.0, 1.0, (2,)), torch.tensor([0.0]), False),
        (Unbounded((2,)), torch.tensor([1e30, -3.0]), True),
        (Unbounded((2,)), torch.tensor([INF, 0.0]), False),
        (Unbounded((2,)), torch.tensor([0.0, NAN]), False),
        (Unbounded((2,)), torch.zeros(3), False),
    ],
)
def test_is_in(spec: TensorSpec, x, expected: bool) -> None:
    assert spec.is_in(x) is expected


# -- project -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, x, expected",
    [
        # OneHot: the largest entry, the first one on ties, NaN never wins.
        (OneHot(3), [0.2, 0.9, 0.9], [0, 1, 0]),
        (OneHot(3), [[-1.0, -3.0, -2.0], [NAN, 0.0, 1.0]], [[1, 0, 0], [0, 0, 1]]),
        (OneHot(3), [0, 5, 2], [0, 1, 0]),
        (OneHot(4, mask=torch.tensor([False, True, True, False])), [5.0, 1.0, 2.0, 9.0], [0, 0, 1, 0]),
        (OneHot(3, mask=torch.tensor([False, True, True])), [0.0, -INF, -INF], [0, 1, 0]),
        (OneHot(3, mask=torch.tensor([False, True, True])), [9.0, NAN, NAN], [0, 1, 0]),
        (OneHot(2, mask=torch.tensor([[True, False], [False, True]])), [[0.0, 1.0], [1.0, 0.0]], [[1, 0], [0, 1]]),
        # Categorical: round half to even, clamp, NaN -> 0; masked: nearest allowed, lower on ties.
        (Categorical(3), [-2, 1, 7], [0, 1, 2]),
        (Categorical(3), [0.4, 0.5, 1.5, 2.6, NAN, INF, -INF], [0, 0, 2, 2, 0, 2, 0]),
        (Categorical(4, mask=torch.tensor([False, True, False, True])), [0, 1, 2, 3, 9], [1, 1, 1, 3, 3]),
        # MultiOneHot: per group, first max on ties.
        (MultiOneHot([2, 3]), [0.1, 0.5, 3.0, 0.0, 1.0], [0, 1, 1, 0, 0]),
        (MultiOneHot([2, 3]), [[1.0, 1.0, 0.0, 2.0, 2.0]], [[1, 0, 0, 1, 0]]),
        # Binary: strictly above 0.5 is on.
        (Binary(5), [0.7, -1.0, 0.5, 0.51, NAN], [1, 0, 0, 1, 0]),
        # Bounded: clamp; NaN -> 0 then clamp; integer boxes round before the cast.
        (Bounded(-1.0, 1.0, (3,)), [3.0, -0.5, -7.0], [1.0, -0.5, -1.0]),
        (Bounded(torch.tensor([1.0, -5.0]), torch.tensor([2.0, 5.0])), [NAN, NAN], [1.0, 0.0]),
        (Bounded(0, 5, (4,), dtype=torch.int64), [1e20, 2.7, -3.2, 2.5], [5, 3, 0, 2]),
        # Unbounded: NaN -> 0, infinities -> the largest finite values.
        (Unbounded((3,)), [NAN, 1.5, -2.0], [0.0, 1.5, -2.0]),
        (Unbounded((3,), dtype=torch.int32), [2.6, NAN, 1e30], [3, 0, 2**31 - 1]),
    ],
)
def test_project_hand_computed(spec: TensorSpec, x: list, expected: list) -> None:
    out = spec.project(torch.tensor(x))
    assert out.dtype == spec.dtype
    assert torch.equal(out, torch.tensor(expected, dtype=spec.dtype))
    assert spec.is_in(out)


def test_project_unbounded_infinities_become_finite() -> None:
    out = Unbounded((2,)).project(torch.tensor([INF, -INF]))
    big = torch.finfo(torch.float32).max
    assert out.tolist() == [big, -big]
    huge = Unbounded((1,), dtype=torch.int64).project(torch.tensor([1e30], dtype=torch.float64))
    assert 2**62 < huge.item() <= 2**63 - 1


def test_project_categorical_masked_nearest_for_large_n() -> None:
    # More than 1000 actions: the nearest allowed index must win whatever the index's size.
    mask = torch.zeros(2200, dtype=torch.bool)
    mask[[1000, 2199]] = True
    spec = Categorical(2200, mask=mask)
    assert spec.project(torch.tensor([1600, 1599, 1600])).tolist() == [2199, 1000, 2199]


@pytest.mark.parametrize("name", list(CASES))
def test_project_keeps_members_and_is_deterministic(name: str) -> None:
    spec = CASES[name]
    members = spec.rand((50,))
    assert torch.equal(spec.project(members), members)
    noise = torch.randn((50,) + spec.shape) * 3
    first, second = spec.project(noise), spec.project(noise.clone())
    assert torch.equal(first, second) and spec.is_in(first)


@pytest.mark.parametrize("cls", [OneHot, Categorical])
def test_project_masked_maps_random_inputs_to_allowed_actions(cls: type) -> None:
    mask = torch.tensor([[False, True, False, True, False], [True, False, False, False, True]])
    spec = cls(5, mask=mask)
    x = torch.randn(100, 2, 5) * 4 if cls is OneHot else torch.randint(-3, 8, (100, 2)).float()
    out = spec.project(x)
    index = spec.to_index(out) if cls is OneHot else out
    assert bool(mask.expand(100, 2, 5).gather(-1, index.unsqueeze(-1)).all())
    assert spec.is_in(out)


# -- zero ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_zero(name: str) -> None:
    spec = CASES[name]
    z = spec.zero((2, 3))
    assert z.shape == torch.Size((2, 3)) + spec.shape and z.dtype == spec.dtype
    assert not z.any()
    assert spec.zero().shape == spec.shape


# -- masks ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [OneHot, Categorical])
def test_update_mask_and_remove_it(cls: type) -> None:
    spec = cls(3)
    spec.update_mask(torch.tensor([False, False, True]))
    drawn = spec.rand((200,))
    assert set((spec.to_index(drawn) if cls is OneHot else drawn).tolist()) == {2}
    spec.update_mask(None)
    assert spec.mask is None
    drawn = spec.rand((500,))
    assert set((spec.to_index(drawn) if cls is OneHot else drawn).tolist()) == {0, 1, 2}


@pytest.mark.parametrize("cls", [OneHot, Categorical])
def test_mask_errors(cls: type) -> None:
    with pytest.raises(TypeError, match=r"mask must be a bool tensor \(True = allowed\), got dtype torch.int64"):
        cls(3, mask=torch.tensor([1, 0, 1]))
    with pytest.raises(ValueError, match=r"mask must end with a dim of size n=3, got shape \(4,\)"):
        cls(3, mask=torch.ones(4, dtype=torch.bool))
    spec = cls(3, mask=torch.tensor([True, True, False]))
    with pytest.raises(ValueError, match=r"mask forbids every action in at least one row \(mask shape \(2, 3\)\)"):
        spec.update_mask(torch.tensor([[True, False, False], [False, False, False]]))
    assert spec.mask.tolist() == [True, True, False]  # a rejected update keeps the old mask
    with pytest.raises(TypeError, match="mask must be a bool tensor"):
        spec.update_mask(torch.tensor([0.0, 1.0, 1.0]))


# -- devices -------------------------------------------------------------------------------------
def test_to_cpu_copies_and_moves() -> None:
    spec = OneHot(3, mask=torch.tensor([True, False, True]))
    moved = spec.to("cpu")
    assert moved is not spec and moved.device == torch.device("cpu") and spec.device is None
    assert moved.mask.device.type == "cpu" and moved.rand((4,)).device.type == "cpu"
    box = Bounded(0.0, 1.0, (2,)).to(torch.device("cpu"))
    assert box.low.device.type == "cpu" and box.zero().device.type == "cpu"
    comp = Composite(a=Binary(2)).to("cpu")
    assert comp["a"].device == torch.device("cpu")


@needs_cuda
@pytest.mark.parametrize("cls", [OneHot, Categorical])
def test_masked_spec_on_cuda_accepts_cpu_inputs_and_back(cls: type) -> None:
    mask = torch.tensor([False, True, True, False])
    gpu = cls(4, mask=mask).to("cuda")
    assert gpu.mask.is_cuda and gpu.rand((5,)).is_cuda
    x_cpu = torch.tensor([[9.0, 1.0, 2.0, 0.0]]) if cls is OneHot else torch.tensor([0, 3])
    out = gpu.project(x_cpu)
    assert out.device.type == "cpu" and gpu.is_in(out)
    cpu_spec = cls(4)
    cpu_spec.update_mask(mask.cuda())  # a mask handed over by an environment on the GPU
    out = cpu_spec.project(x_cpu)
    assert out.device.type == "cpu" and cpu_spec.is_in(out)
    assert cpu_spec.project(x_cpu.cuda()).is_cuda and cpu_spec.is_in(out.cuda())
    assert cpu_spec.rand((3,)).is_cuda  # no device of its own: draws next to its mask


@needs_cuda
def test_bounded_on_cuda_accepts_cpu_inputs() -> None:
    spec = Bounded(-1.0, 1.0, (2,)).to("cuda")
    assert spec.rand().is_cuda and spec.is_in(torch.tensor([0.0, 1.0]))
    assert spec.project(torch.tensor([3.0, 0.0])).tolist() == [1.0, 0.0]


# -- equality ------------------------------------------------------------------------------------
def test_equality() -> None:
    mask = torch.tensor([True, False, True])
    assert OneHot(3) == OneHotDiscreteTensorSpec(3)
    assert OneHot(3) != OneHot(4) and OneHot(3) != Categorical(3)
    assert OneHot(3, mask=mask) == OneHot(3, mask=mask.clone()) and OneHot(3, mask=mask) != OneHot(3)
    assert OneHot(3, dtype=torch.float32) != OneHot(3)
    assert MultiOneHot([2, 3]) == MultiOneHot([2, 3]) != MultiOneHot([3, 2])
    assert Bounded(0.0, 1.0, (2,)) == Bounded(0.0, 1.0, (2,)) != Bounded(0.0, 2.0, (2,))
    assert Bounded(0.0, 1.0, (2,)) != Bounded(0.0, 1.0, (3,))
    assert Composite(a=Binary(2), b=Unbounded()) == Composite(b=Unbounded(), a=Binary(2))
    assert Composite(a=Binary(2)) != Composite(a=Binary(3))
    assert OneHot(3).to("cpu") == OneHot(3, device="cpu")


# -- Composite -----------------------------------------------------------------------------------
def _env_spec() -> Composite:
    return Composite(
        {("next", "observation"): Bounded(-1.0, 1.0, (2,)), ("next", "reward"): Unbounded((1,))},
        observation=Bounded(-1.0, 1.0, (2,)),
        action=OneHot(3, mask=torch.tensor([True, True, False])),
    )


def test_composite_nested_keys() -> None:
    spec = _env_spec()
    assert isinstance(spec["next"], Composite) and spec["next", "observation"] == Bounded(-1.0, 1.0, (2,))
    assert ("next", "reward") in spec and ("next", "done") not in spec and "action" in spec
    assert ("action", "x") not in spec
    assert set(spec.keys()) == {"next", "observation", "action"} and len(spec) == 3 and set(spec) == set(spec.keys())
    spec["next", "done"] = Binary(1, dtype=torch.bool)
    assert spec["next"]["done"] == Binary(1, dtype=torch.bool)


def test_composite_rand_zero_is_in_project() -> None:
    spec = _env_spec()
    td = spec.rand((4,))
    assert isinstance(td, TensorDict) and td.batch_size == torch.Size([4])
    assert td["next", "observation"].shape == (4, 2) and td["action"].shape == (4, 3)
    assert not td["action"][:, 2].any() and spec.is_in(td)
    zero = spec.zero((2,))
    assert zero["next", "reward"].shape == (2, 1) and not zero["next", "reward"].any()
    bad = td.clone()
    bad["next", "observation"] = torch.full((4, 2), 5.0)
    bad["action"] = torch.tensor([[0.0, 0.0, 9.0]] * 4)
    assert not spec.is_in(bad)
    fixed = spec.project(bad)
    assert spec.is_in(fixed) and torch.equal(fixed["next", "observation"], torch.ones(4, 2))
    assert fixed["action"].tolist() == [[1, 0, 0]] * 4
    assert bad["next", "observation"].eq(5.0).all()  # the input is left untouched
    assert torch.equal(fixed["observation"], td["observation"])
    del bad["observation"]
    assert not spec.is_in(bad) and not spec.is_in(torch.zeros(3))


def test_composite_errors() -> None:
    spec = _env_spec()
    with pytest.raises(KeyError, match=r"no spec under 'reward'; keys: \['action', 'next', 'observation'\]"):
        spec["reward"]
    with pytest.raises(KeyError, match=r"no spec under 'done'; keys: \['observation', 'reward'\]"):
        spec["next", "done"]
    with pytest.raises(KeyError, match=r"\('action',\) holds a OneHot, not a Composite"):
        spec["action", "x"]
    with pytest.raises(TypeError, match="Composite entries must be TensorSpec, got Tensor for 'reward'"):
        Composite(reward=torch.zeros(1))
    with pytest.raises(TypeError, match=r"cannot set \('action', 'x'\): 'action' holds a OneHot, not a Composite"):
        spec["action", "x"] = Binary(1)


# -- other errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: OneHot(0), "OneHot needs an integer n >= 1, got 0"),
        (lambda: Categorical(-1), "Categorical needs an integer n >= 1, got -1"),
        (lambda: Binary(0), "Binary needs n >= 1, got 0"),
        # (a float n was truncated, a bool or float dtype gave True/False or float "actions")
        (lambda: OneHot(2.5), "OneHot needs an integer n >= 1, got 2.5"),
        (lambda: Categorical(torch.tensor(2.0)), r"Categorical needs an integer n >= 1, got tensor\(2.\)"),
        (lambda: Categorical(True), "Categorical needs an integer n >= 1, got True"),
        (lambda: Categorical(3, dtype=torch.bool), r"Categorical: dtype torch.bool cannot hold the action indices 0..2"),
        (lambda: Categorical(3, dtype=torch.float32), r"dtype torch.float32 cannot hold"),
        (lambda: Categorical(300, dtype=torch.uint8), r"dtype torch.uint8 cannot hold the action indices 0..299"),
        (lambda: Bounded(float("nan"), 1.0), r"Bounded needs bounds that are numbers, got low=\[nan\]|low=nan"),
        (lambda: MultiOneHot([]), r"MultiOneHot needs a non-empty nvec of positive sizes, got \[\]"),
        (lambda: MultiOneHot([2, 0]), r"MultiOneHot needs a non-empty nvec of positive sizes, got \[2, 0\]"),
        (lambda: Bounded([0.0, 2.0], 1.0), r"Bounded needs low <= high, got low=\[0.0, 2.0\] high=\[1.0, 1.0\]"),
        (lambda: Bounded([0.0, 1.0], 2.0, (3,)), r"low of shape \(2,\) and high of shape \(\) .* to shape \(3,\)"),
        (lambda: Bounded(torch.zeros(2), torch.ones(3)), r"low of shape \(2,\) and high of shape \(3,\) do not"),
        (lambda: OneHot(3).project(torch.zeros(4)), r"OneHot.project needs a last dim of size n=3, got shape \(4,\)"),
        (lambda: MultiOneHot([2, 3]).project(torch.zeros(2, 4)), r"size sum\(nvec\)=5, got shape \(2, 4\)"),
    ],
)
def test_errors(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_docstring_examples() -> None:
    result = doctest.testmod(specs_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_n_of_any_integer_kind_is_taken():
    assert Categorical(np.int64(3)).n == Categorical(torch.tensor(3)).n == OneHot(np.int32(3)).n == 3
