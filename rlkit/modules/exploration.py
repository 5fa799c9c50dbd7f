"""Exploration types and epsilon-greedy exploration.

``ExplorationType`` *is* tensordict's :class:`~tensordict.nn.InteractionType` and
:class:`set_exploration_type` sets tensordict's interaction type, so rlkit modules and every
``tensordict.nn`` probabilistic module read one setting.

What "unset" means: outside any ``set_exploration_type`` block (or inside ``set_exploration_type(None)``)
rlkit explores. :func:`exploration_type` then returns ``ExplorationType.RANDOM``,
:class:`EGreedyModule` acts, and :class:`~rlkit.modules.ProbabilisticActor` samples (its
``default_interaction_type`` is ``RANDOM``). Wrap evaluation in
``set_exploration_type(ExplorationType.DETERMINISTIC)``.
"""
from __future__ import annotations

from typing import cast

import numpy as np
import torch
from tensordict.nn import (
    InteractionType,
    TensorDictModuleBase,
    interaction_type,
    set_interaction_type,
)
from tensordict.utils import NestedKey

from rlkit.data.specs import Binary, Categorical, MultiOneHot, OneHot, TensorSpec
from rlkit import keys
from rlkit.modules._action_space import _check_some_allowed, action_leaf_spec, check_mask
from rlkit.modules.tensor_call import TensorModule
from rlkit.utils.devices import reading_waits
from rlkit.utils.values import as_int

#: The interaction types (``DETERMINISTIC``, ``RANDOM``, ``MODE``, ``MEAN``, ``MEDIAN``).
ExplorationType = InteractionType


class set_exploration_type(set_interaction_type):
    """Context manager (or decorator) setting the exploration type inside a block.

    Args:
        type: an :data:`ExplorationType` or its name (any case); ``None`` restores the unset state.

    Examples:
        >>> from rlkit.modules import ExplorationType, exploration_type, set_exploration_type
        >>> with set_exploration_type(ExplorationType.DETERMINISTIC):
        ...     print(exploration_type())
        deterministic
        >>> print(exploration_type())
        random
    """

    def __init__(self, type: InteractionType | str | None) -> None:
        super().__init__(type)

    def clone(self) -> "set_exploration_type":
        return type(self)(self.type)


# float32 / float64 host scalars whose arithmetic rounds like the tensors' (see EGreedyModule.step).
_HOST_SCALARS: dict[torch.dtype, type[np.floating]] = {torch.float32: np.float32, torch.float64: np.float64}


def exploration_type() -> InteractionType:
    """The active exploration type; ``ExplorationType.RANDOM`` when none is set (see module doc)."""
    current = interaction_type()
    return ExplorationType.RANDOM if current is None else current


def _random_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Uniform index among the True entries of each row of ``mask`` ``[*B, n]``."""
    n = mask.shape[-1]
    flat = mask.reshape(-1, n)
    if not reading_waits(flat.device):  # (on an accelerator the check would wait for the device at every step)
        _check_some_allowed(flat, "")
    return torch.multinomial(flat.to(torch.float32), 1).reshape(mask.shape[:-1])


def random_action(spec: TensorSpec, batch: torch.Size, mask: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """A uniformly random action of ``spec`` per batch index, never a masked one."""
    if mask is None:
        return spec.rand(batch).to(device)
    spec_mask = getattr(spec, "mask", None)
    if spec_mask is not None:
        # Both masks apply: the environment's (per step) and the spec's (fixed).
        mask = check_mask(mask, batch + spec.shape + (spec.n,) if isinstance(spec, Categorical) else batch + spec.shape)
        mask = mask & spec_mask.to(mask.device)
    if isinstance(spec, OneHot):
        index = _random_from_mask(check_mask(mask, batch + spec.shape))
        return torch.nn.functional.one_hot(index, spec.n).to(spec.dtype)
    if isinstance(spec, Categorical):
        return _random_from_mask(check_mask(mask, batch + spec.shape + (spec.n,))).to(spec.dtype)
    if isinstance(spec, MultiOneHot):
        mask = check_mask(mask, batch + spec.shape)
        parts = [torch.nn.functional.one_hot(_random_from_mask(g), g.shape[-1]) for g in mask.split(spec.nvec, -1)]
        return torch.cat(parts, -1).to(spec.dtype)
    if isinstance(spec, Binary):
        # A masked bit may not be switched on.
        bits = torch.randint(0, 2, batch + spec.shape, device=mask.device).to(spec.dtype)
        return bits * check_mask(mask, batch + spec.shape).to(spec.dtype)
    raise ValueError(
        f"an action mask is supported for OneHot, Categorical, MultiOneHot and Binary specs, "
        f"got a {type(spec).__name__} spec"
    )


class EGreedyModule(TensorModule, TensorDictModuleBase):
    """Epsilon-greedy exploration: replaces the action by a random one with probability ``eps``.

    Place it after a greedy policy. It acts only when the exploration type is ``RANDOM`` (or unset);
    under ``DETERMINISTIC``, ``MODE`` or ``MEAN`` it leaves the action alone. ``eps`` anneals linearly
    from ``eps_init`` to ``eps_end`` over ``annealing_num_steps`` frames of :meth:`step`, after
    ``annealing_start`` frames at ``eps_init``, and is a buffer (saved in ``state_dict``). Random actions respect the spec's mask and ``action_mask_key``.
    See Mnih et al. 2015 (https://www.nature.com/articles/nature14236) for the schedule.

    The module keeps host copies of its buffers' values, so that :meth:`current_eps` (read on every
    acting step) and :meth:`step` do not wait for the device the buffers live on: :meth:`step`
    records what it writes, and a buffer changed otherwise (``load_state_dict``, an in-place write
    such as ``eps.fill_``, a move to another device) is read once more on its next use. A write
    through ``eps.data`` is not seen (``.data`` has a version counter of its own): write the buffer
    itself.

    Args:
        spec: the action spec (a Composite is read at ``action_key``).
        eps_init: initial probability of a random action.
        eps_end: final probability.
        annealing_num_steps: frames over which eps goes from ``eps_init`` to ``eps_end``.
        annealing_start: frames at ``eps_init`` before the decay starts (MinAtar's DQN starts it when
            learning starts).
        action_key: key of the action to overwrite.
        action_mask_key: key of a bool mask (True = allowed).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data import OneHot
        >>> from rlkit.modules import EGreedyModule
        >>> explore = EGreedyModule(OneHot(3), eps_init=1.0, eps_end=0.1, annealing_num_steps=10)
        >>> explore.step(5)
        >>> round(explore.eps.item(), 4)
        0.55
        >>> td = explore(TensorDict(action=torch.tensor([[1, 0, 0]] * 4), batch_size=[4]))
        >>> td["action"].shape
        torch.Size([4, 3])
    """

    # Buffers (registered in __init__), typed for the type checker.
    eps_init: torch.Tensor
    eps_end: torch.Tensor
    eps: torch.Tensor
    frames: torch.Tensor

    def __init__(
        self,
        spec: TensorSpec,
        eps_init: float = 1.0,
        eps_end: float = 0.1,
        annealing_num_steps: int = 1000,
        *,
        annealing_start: int = 0,
        action_key: NestedKey = keys.ACTION,
        action_mask_key: NestedKey | None = None,
    ) -> None:
        super().__init__()
        if spec is None:
            raise ValueError("EGreedyModule needs the action spec to draw random actions, got None")
        for name, value in (("eps_init", eps_init), ("eps_end", eps_end)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        if int(annealing_num_steps) < 1:
            raise ValueError(f"annealing_num_steps must be >= 1, got {annealing_num_steps}")
        if int(annealing_start) < 0:
            raise ValueError(f"annealing_start must be >= 0, got {annealing_start}")
        self.annealing_start = int(annealing_start)
        self.spec = action_leaf_spec(spec, action_key)
        self.action_key = action_key
        self.action_mask_key = action_mask_key
        self.annealing_num_steps = int(annealing_num_steps)
        self.register_buffer("eps_init", torch.tensor(float(eps_init)))
        self.register_buffer("eps_end", torch.tensor(float(eps_end)))
        self.register_buffer("eps", torch.tensor(float(eps_init)))
        # Frames seen so far: eps is recomputed from it, so many small steps do not accumulate error.
        self.register_buffer("frames", torch.tensor(0, dtype=torch.int64))
        # The buffers' values as Python numbers, each with the buffer and its version counter when it
        # was taken (see _host): {name: (buffer, version, value)}.
        self._host_values: dict[str, tuple[torch.Tensor, int, float]] = {}
        self.in_keys = [action_key] if action_mask_key is None else [action_key, action_mask_key]
        self.out_keys = [action_key]

    def step(self, frames: int = 1) -> None:
        """Advances the linear schedule by ``frames`` frames (an integer >= 0)."""
        steps = as_int(frames)
        if steps is None or steps < 0:
            raise ValueError(f"EGreedyModule.step: frames={frames!r} is invalid; expected an integer >= 0")
        frames = steps
        # Every buffer of this module is a tensor (nn.Module types them Optional).
        buffers = cast("dict[str, torch.Tensor]", self._buffers)
        count = buffers["frames"]
        before = int(self._host("frames"))  # (host copies: no wait for the device, once per batch)
        count.add_(int(frames))
        self._record("frames", before + int(frames))
        if before >= self.annealing_start + self.annealing_num_steps:
            return  # annealed: eps was set to eps_end when the count reached the end of the schedule
        after = before + int(frames) - self.annealing_start
        if after <= 0:
            return  # still before the decay: eps stays eps_init
        progress = min(after / self.annealing_num_steps, 1.0)
        init, end, eps = buffers["eps_init"], buffers["eps_end"], buffers["eps"]
        scalar = _HOST_SCALARS.get(eps.dtype) if init.dtype == end.dtype == eps.dtype else None
        if scalar is None:
            # (buffers of other or mixed dtypes: the next current_eps reads the result off the buffer)
            eps.copy_(init + (end - init) * progress)
            return
        # The same expression on host scalars of the buffers' precision, each operation rounding as
        # the tensor ops do, without three tensor temporaries (called once per collected batch).
        low, high = scalar(self._host("eps_init")), scalar(self._host("eps_end"))
        # A scalar of the buffer's dtype as a Python float (exact): the buffer holds it exactly, and it
        # is the float that .item() gives. (fill_ takes a Python float faster than a numpy scalar.)
        value = float(low + (high - low) * scalar(progress))
        eps.fill_(value)
        self._record("eps", value)

    def __setstate__(self, state: dict) -> None:
        # A copy (copy.deepcopy, pickle) has new buffers whose version counters start again: the host
        # copies are taken afresh from them, never carried over (they could match a stale version).
        super().__setstate__(state)
        self._host_values = {}

    def current_eps(self) -> float:
        """``eps`` as a Python float: the value of the buffer, without reading the buffer's device
        (read on every acting step; see :meth:`_host`)."""
        return self._host("eps")

    def _host(self, name: str) -> float:
        """Buffer ``name``'s value as a Python number (``.item()``), read off the buffer only when it
        changed since this module last read or wrote it: another tensor (a move to another device,
        ``load_state_dict(assign=True)``) or an in-place write (``load_state_dict``, ``fill_``), which
        the buffer's version counter tells without waiting for its device."""
        buffer = cast(torch.Tensor, self._buffers[name])  # a tensor buffer (see step)
        try:
            version = buffer._version
        except RuntimeError:  # an inference tensor (made under torch.inference_mode) has no version counter
            return buffer.item()
        seen = self._host_values.get(name)
        if seen is not None and seen[0] is buffer and seen[1] == version:
            return seen[2]
        value = buffer.item()
        self._host_values[name] = (buffer, version, value)
        return value

    def _record(self, name: str, value: float) -> None:
        """Notes ``value``, which this module just wrote into buffer ``name``, as its host copy."""
        buffer = cast(torch.Tensor, self._buffers[name])
        try:
            self._host_values[name] = (buffer, buffer._version, value)
        except RuntimeError:  # (an inference tensor: _host reads it every time)
            pass

    def _describe_input(self, key: NestedKey) -> str:
        return "action mask" if key == self.action_mask_key else "action"

    def _explore(self, action: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        event_dims = len(self.spec.shape)
        batch = action.shape[: action.dim() - event_dims]
        explore = torch.rand(batch, device=action.device) < self.eps.to(action.device)
        random = random_action(self.spec, batch, mask, action.device).to(device=action.device, dtype=action.dtype)
        explore = explore.reshape(batch + (1,) * event_dims)
        return torch.where(explore, random, action)

    def act(self, action: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor]:
        """The action with each batch entry replaced, with probability ``eps``, by a random allowed one
        (``mask``: bool, True = allowed, when the module has an ``action_mask_key``); unchanged unless
        the exploration type is ``RANDOM`` (or unset)."""
        if exploration_type() != ExplorationType.RANDOM:
            return (action,)
        return (self._explore(action, mask),)


__all__ = ["ExplorationType", "set_exploration_type", "exploration_type", "EGreedyModule"]
