"""Exploration types and EGreedyModule: schedule arithmetic, modes, frequencies, masks, specs."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import InteractionType, interaction_type

from rlkit.data import Binary, Bounded, Categorical, Composite, MultiOneHot, OneHot
from rlkit.modules import EGreedyModule, ExplorationType, exploration_type, set_exploration_type


def test_exploration_type_is_tensordicts_interaction_type():
    assert ExplorationType is InteractionType
    assert {"DETERMINISTIC", "RANDOM", "MODE", "MEAN"} <= set(ExplorationType.__members__)
    assert exploration_type() is ExplorationType.RANDOM  # unset means explore
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        assert exploration_type() is ExplorationType.DETERMINISTIC
        assert interaction_type() is InteractionType.DETERMINISTIC  # one setting for both libraries
        with set_exploration_type("Mode"):
            assert exploration_type() is ExplorationType.MODE
        assert exploration_type() is ExplorationType.DETERMINISTIC
    assert interaction_type() is None


def test_anneal_arithmetic_and_clamp():
    module = EGreedyModule(OneHot(3), eps_init=1.0, eps_end=0.1, annealing_num_steps=100)
    assert module.eps.item() == pytest.approx(1.0)
    module.step()
    assert module.eps.item() == pytest.approx(1.0 - 0.9 / 100)
    module.step(49)
    assert module.eps.item() == pytest.approx(0.55)
    module.step(1000)
    assert module.eps.item() == pytest.approx(0.1)


def test_eps_round_trips_state_dict():
    module = EGreedyModule(OneHot(3), annealing_num_steps=10)
    module.step(4)
    fresh = EGreedyModule(OneHot(3), annealing_num_steps=10)
    fresh.load_state_dict(module.state_dict())
    assert fresh.eps.item() == pytest.approx(1.0 - 0.9 * 0.4)
    fresh.step(1)
    assert fresh.eps.item() == pytest.approx(1.0 - 0.9 * 0.5)  # the frame count came along too


def _greedy_td(n: int = 4, batch: int = 20000) -> TensorDict:
    return TensorDict(action=torch.nn.functional.one_hot(torch.zeros(batch, dtype=torch.long), n), batch_size=[batch])


@pytest.mark.parametrize("mode", ["deterministic", "mode", "mean"])
def test_greedy_outside_random_mode(mode):
    module = EGreedyModule(OneHot(4), eps_init=1.0)
    td = _greedy_td(batch=100)
    expected = td["action"].clone()
    with set_exploration_type(mode):
        assert torch.equal(module(td)["action"], expected)


def test_random_fraction_matches_eps():
    # A random action differs from the greedy one with probability eps * (n - 1) / n.
    module = EGreedyModule(OneHot(4), eps_init=0.4, eps_end=0.4)
    with set_exploration_type("random"):
        action = module(_greedy_td())["action"]
    changed = (action.argmax(-1) != 0).float().mean().item()
    assert changed == pytest.approx(0.4 * 3 / 4, abs=0.015)
    assert (action.sum(-1) == 1).all()
    unset = module(_greedy_td())["action"]  # unset exploration type explores too
    assert (unset.argmax(-1) != 0).float().mean().item() == pytest.approx(0.3, abs=0.015)


def test_eps_zero_never_changes():
    module = EGreedyModule(OneHot(4), eps_init=0.0, eps_end=0.0)
    assert (module(_greedy_td(batch=500))["action"].argmax(-1) == 0).all()


@pytest.mark.parametrize(
    "spec, greedy, mask",
    [
        (OneHot(4), torch.tensor([0, 0, 1, 0]), torch.tensor([False, True, True, False])),
        (Categorical(4), torch.tensor(2), torch.tensor([False, True, True, False])),
        (MultiOneHot([2, 3]), torch.tensor([1, 0, 0, 1, 0]), torch.tensor([True, False, False, True, True])),
        (Binary(3), torch.tensor([0, 0, 0]), torch.tensor([True, False, True])),
    ],
)
def test_never_masked_every_spec(spec, greedy, mask):
    batch = 2000
    module = EGreedyModule(spec, eps_init=1.0, action_mask_key="action_mask")
    td = TensorDict(action=greedy.expand(batch, *greedy.shape).clone(),
                    action_mask=mask.expand(batch, *mask.shape), batch_size=[batch])
    action = module(td)["action"]
    assert action.shape == (batch, *spec.shape) and action.dtype == torch.int64
    assert spec.is_in(action)
    if isinstance(spec, Categorical):
        assert set(action.unique().tolist()) == {1, 2}
    else:
        assert not (action.bool() & ~mask).any()
        assert (action.bool() & mask).any(0)[mask].all()  # every allowed entry does occur


def test_spec_mask_and_batch_dims():
    spec = OneHot(3, mask=torch.tensor([False, False, True]))
    module = EGreedyModule(Composite(action=spec), eps_init=1.0)
    td = TensorDict(action=torch.tensor([1, 0, 0]).expand(4, 5, 3).clone(), batch_size=[4, 5])
    assert (module(td)["action"].argmax(-1) == 2).all()
    both = EGreedyModule(spec, eps_init=1.0, action_mask_key="m")
    td["m"] = torch.tensor([True, True, True]).expand(4, 5, 3)
    assert (both(td)["action"].argmax(-1) == 2).all()


def test_unmasked_any_spec():
    module = EGreedyModule(Bounded(-1.0, 1.0, (2,)), eps_init=1.0)
    action = module(TensorDict(action=torch.full((50, 2), 5.0), batch_size=[50]))["action"]
    assert ((action >= -1) & (action <= 1)).all()


def test_errors():
    with pytest.raises(ValueError, match="needs the action spec"):
        EGreedyModule(None)
    with pytest.raises(ValueError, match=r"eps_init must lie in \[0, 1\], got 1.5"):
        EGreedyModule(OneHot(2), eps_init=1.5)
    with pytest.raises(ValueError, match=r"eps_end must lie in \[0, 1\], got -0.1"):
        EGreedyModule(OneHot(2), eps_end=-0.1)
    with pytest.raises(ValueError, match="annealing_num_steps must be >= 1, got 0"):
        EGreedyModule(OneHot(2), annealing_num_steps=0)
    module = EGreedyModule(OneHot(2), action_mask_key="action_mask")
    with pytest.raises(KeyError, match="reads the action from 'action', which is missing"):
        module(TensorDict(observation=torch.zeros(2, 3), batch_size=[2]))
    with pytest.raises(KeyError, match="reads the action mask from 'action_mask'"):
        module(TensorDict(action=torch.zeros(2, 2, dtype=torch.long), batch_size=[2]))
    with pytest.raises(TypeError, match="action mask must be a bool tensor"):
        module(TensorDict(action=torch.zeros(2, 2, dtype=torch.long), action_mask=torch.ones(2, 2), batch_size=[2]))
    bounded = EGreedyModule(Bounded(-1.0, 1.0, (2,)), eps_init=1.0, action_mask_key="m")
    with pytest.raises(ValueError, match="an action mask is supported for OneHot, Categorical, MultiOneHot and Binary specs, got a Bounded spec"):
        bounded(TensorDict(action=torch.zeros(2, 2), m=torch.ones(2, 2, dtype=torch.bool), batch_size=[2]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("init,end,steps", [(1.0, 0.05, 5000), (0.9, 0.1, 1234), (0.3, 0.7, 99)])
def test_step_matches_the_tensor_expression_bit_for_bit(dtype, init, end, steps):
    # step() computes eps on host scalars of the buffers' precision; the result must be the tensor
    # expression's, every time (the coins compare against it, so a last-bit change alters a run).
    module = EGreedyModule(Categorical(2), eps_init=init, eps_end=end, annealing_num_steps=steps).to(dtype)
    low, high = module.eps_init.clone(), module.eps_end.clone()
    for _ in range(steps // 3 + 5):
        module.step(3)
        progress = min(module.frames.item() / steps, 1.0)
        assert module.eps.item() == (low + (high - low) * progress).item()
    assert module.eps.dtype == dtype


def test_annealing_start_holds_eps_init_then_decays_linearly():
    # MinAtar's DQN holds eps at 1 for its first 5,000 frames (learning starts) and then anneals. With
    # annealing_start=50 and annealing_num_steps=100, eps after f frames of step() is, by hand:
    #   f <= 50: 1;  50 < f < 150: 1 - 0.9 * (f - 50) / 100;  f >= 150: 0.1.
    # The decay begins with frame 51 (the first frame after the 50 held ones).
    def make():
        return EGreedyModule(OneHot(3), eps_init=1.0, eps_end=0.1, annealing_num_steps=100, annealing_start=50)

    module = make()
    module.step(49)
    assert module.eps.item() == 1.0
    module.step(1)  # frame 50: the last one held at eps_init
    assert module.eps.item() == 1.0 and module.frames.item() == 50
    module.step(1)  # frame 51: the first step of the decay
    assert module.eps.item() == pytest.approx(1.0 - 0.9 / 100)
    module.step(49)  # frame 100: midway, 50 frames after the decay began
    assert module.eps.item() == pytest.approx(0.55)
    module.step(49)
    assert module.eps.item() == pytest.approx(0.1 + 0.9 / 100)  # frame 149
    module.step(1)
    assert module.eps.item() == pytest.approx(0.1)  # frame 150: the end of the schedule
    module.step(1000)
    assert module.eps.item() == pytest.approx(0.1)

    # One call that crosses the start counts only the frames after it: 40 + 20 -> 10 frames of decay.
    crossing = make()
    crossing.step(40)
    crossing.step(20)
    assert crossing.eps.item() == pytest.approx(1.0 - 0.9 * 0.1)

    # A state_dict round trip mid-way (during the hold and during the decay) keeps the schedule.
    for held in (30, 75):
        source = make()
        source.step(held)
        fresh = make()
        fresh.load_state_dict(source.state_dict())
        assert fresh.eps.item() == source.eps.item() == pytest.approx(1.0 - 0.9 * max(held - 50, 0) / 100)
        fresh.step(100 - held)  # to frame 100: the midpoint
        assert fresh.eps.item() == pytest.approx(0.55)
        fresh.step(50)
        assert fresh.eps.item() == pytest.approx(0.1)


class _DeviceRead(AssertionError):
    """Raised by a buffer's patched ``.item``: the module read the buffer (on CUDA, a wait for the device)."""


def _forbid_reads(module: EGreedyModule, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Makes each buffer's ``.item`` raise :class:`_DeviceRead` and returns the log of the reads
    attempted (a CPU stand-in for a buffer on an accelerator, whose every read waits for it)."""
    reads: list[str] = []
    for name, buffer in module.named_buffers():
        def item(name: str = name) -> float:
            reads.append(name)
            raise _DeviceRead(f"the buffer {name!r} was read")

        monkeypatch.setattr(buffer, "item", item, raising=False)
    return reads


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_acting_and_step_read_no_buffer_once_their_values_are_known(dtype, monkeypatch):
    # current_eps() runs at every acting step and step() once per batch; on CUDA each buffer read
    # (.item()) waits for the device. After one read of each buffer, the module must keep its own
    # copies, bit-identical to the buffers (the coins compare against eps exactly).
    def make() -> EGreedyModule:
        return EGreedyModule(Categorical(2), eps_init=1.0, eps_end=0.05, annealing_num_steps=1234,
                             annealing_start=10).to(dtype)

    module, reference = make(), make()
    module.step(11)  # (reads frames, eps_init and eps_end once)
    reference.step(11)
    module.current_eps()
    reads = _forbid_reads(module, monkeypatch)
    for frames in [0, 1, 3, 7, 100, 500, 1000]:
        module.step(frames)
        reference.step(frames)
        for _ in range(3):
            assert module.current_eps() == reference.eps.item()
        assert torch.equal(module.eps, reference.eps) and torch.equal(module.frames, reference.frames)
    assert reads == []
    assert module.current_eps() == reference.eps.item() == pytest.approx(0.05)  # (annealed)


def test_eps_changed_outside_step_is_read_once_and_the_state_dict_keeps_its_format(monkeypatch):
    # A load_state_dict, an in-place write or a move gives the buffers other values: the next
    # current_eps reads the buffer once (told by the buffer's version counter or identity), then no more.
    module = EGreedyModule(Categorical(2), eps_init=1.0, eps_end=0.1, annealing_num_steps=10)
    assert set(module.state_dict()) == {"eps_init", "eps_end", "eps", "frames"}  # (checkpoints unchanged)
    assert module.current_eps() == 1.0
    source = EGreedyModule(Categorical(2), eps_init=1.0, eps_end=0.1, annealing_num_steps=10)
    source.step(4)
    module.load_state_dict(source.state_dict())
    assert module.current_eps() == source.eps.item() == torch.tensor(1.0 - 0.9 * 0.4).item()
    module.eps.fill_(0.3)
    assert module.current_eps() == torch.tensor(0.3).item()
    module.to(torch.float64)  # new tensors
    assert module.current_eps() == torch.tensor(0.3).item() and module.eps.dtype == torch.float64
    module.step(1)  # (reads frames, eps_init and eps_end of the new tensors)
    assert module.current_eps() == module.eps.item()
    reads = _forbid_reads(module, monkeypatch)
    module.load_state_dict(source.state_dict())  # (copied into the buffers: their version moves on)
    with pytest.raises(_DeviceRead):
        module.current_eps()
    assert reads == ["eps"]


@pytest.mark.parametrize("copy_by", ["deepcopy", "pickle"])
def test_a_copy_reads_its_own_buffers_after_a_load(copy_by):
    """A copy's buffers start new version counters, which could meet the version its carried host
    copy was taken at: the copy then answered the original's stale eps (0.82 where its buffer held 1.0)
    and stepped the schedule from the stale frame count."""
    import copy
    import pickle

    module = EGreedyModule(Categorical(2), eps_init=1.0, eps_end=0.1, annealing_num_steps=100)
    fresh = {key: value.clone() for key, value in module.state_dict().items()}
    module.step(10)
    module.step(10)
    assert module.current_eps() == pytest.approx(0.82)
    copied = copy.deepcopy(module) if copy_by == "deepcopy" else pickle.loads(pickle.dumps(module))
    copied.load_state_dict(fresh)
    assert copied.current_eps() == 1.0
    copied.step(10)
    assert copied.current_eps() == pytest.approx(0.91) and int(copied.frames) == 10
