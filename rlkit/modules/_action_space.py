"""Action-space names, spec inspection and the greedy-selection kernels shared by the Q-value modules.

The kernels are tensor-in / tensor-out: action values ``[*B, A]`` (and an optional bool mask that
broadcasts to them, True = allowed) in, greedy action out. Ties go to the first maximum, so a
one-hot action always has exactly one 1 per group.
"""
from __future__ import annotations

from typing import Literal, Sequence, cast, overload

import torch
from tensordict.utils import NestedKey

from rlkit import keys
from rlkit.modules.tensor_call import recording_graph
from rlkit.data import (
    Binary,
    Categorical,
    Composite,
    MultiOneHot,
    OneHot,
    TensorSpec,
)
from rlkit.utils.devices import reading_waits

ActionSpace = Literal["categorical", "one-hot", "mult-one-hot", "binary"]
#: Every accepted spelling (canonical names and aliases).
ActionSpaceName = Literal[
    "categorical", "one-hot", "one_hot", "mult-one-hot", "mult_one_hot", "multi_one_hot", "binary"
]

_ALIASES: dict[str, ActionSpace] = {
    "categorical": "categorical",
    "one-hot": "one-hot",
    "one_hot": "one-hot",
    "mult-one-hot": "mult-one-hot",
    "mult_one_hot": "mult-one-hot",
    "multi_one_hot": "mult-one-hot",
    "binary": "binary",
}
VALID_ACTION_SPACES = (
    "'categorical', 'one-hot' (or 'one_hot'), 'mult-one-hot' (or 'mult_one_hot', 'multi_one_hot'), 'binary'"
)
# The spec's class decides the action space when only a spec is given.
_SPEC_CLASSES: tuple[tuple[type, ActionSpace], ...] = (
    (OneHot, "one-hot"),
    (Categorical, "categorical"),
    (MultiOneHot, "mult-one-hot"),
    (Binary, "binary"),
)


def canonical_action_space(name: ActionSpaceName | str) -> ActionSpace:
    """Maps an action-space name or alias to its canonical form (``"one_hot"`` -> ``"one-hot"``)."""
    key = name.lower() if isinstance(name, str) else name
    if key not in _ALIASES:
        raise ValueError(f"unknown action_space {name!r}; valid action spaces: {VALID_ACTION_SPACES}")
    return _ALIASES[key]


@overload
def action_leaf_spec(spec: TensorSpec, action_key: NestedKey = ...) -> TensorSpec: ...
@overload
def action_leaf_spec(spec: None, action_key: NestedKey = ...) -> None: ...
def action_leaf_spec(spec: TensorSpec | None, action_key: NestedKey = keys.ACTION) -> TensorSpec | None:
    """The spec of the action itself: ``spec[action_key]`` for a :class:`Composite`, else ``spec``."""
    if isinstance(spec, Composite):
        if action_key not in spec:
            raise KeyError(f"the Composite spec has no entry {action_key!r}; keys: {sorted(spec.keys())}")
        return spec[action_key]
    return spec


def action_space_from_spec(spec: TensorSpec) -> ActionSpace:
    """The action space that a discrete spec's class implies."""
    for cls, name in _SPEC_CLASSES:
        if isinstance(spec, cls):
            return name
    raise ValueError(
        f"cannot tell the action space from a {type(spec).__name__} spec; pass a OneHot, Categorical, "
        f"MultiOneHot or Binary spec, or action_space= (one of {VALID_ACTION_SPACES})"
    )


def resolve_action_space(action_space: ActionSpaceName | None, spec: TensorSpec | None) -> ActionSpace:
    """Canonical action space from ``action_space`` and/or ``spec``; both given must agree."""
    if action_space is None and spec is None:
        raise ValueError(
            f"neither action_space nor spec was given: pass one of them (action spaces: {VALID_ACTION_SPACES})"
        )
    if spec is None:
        assert action_space is not None  # (not both None: checked above)
        return canonical_action_space(action_space)
    from_spec = action_space_from_spec(spec)
    if action_space is None:
        return from_spec
    canonical = canonical_action_space(action_space)
    if canonical != from_spec:
        raise ValueError(
            f"action_space {action_space!r} disagrees with the {type(spec).__name__} spec, "
            f"which means {from_spec!r}; drop one of them or make them match"
        )
    return canonical


def resolve_var_nums(
    action_space: ActionSpace, var_nums: int | Sequence[int] | None, spec: TensorSpec | None
) -> int | list[int] | None:
    """Group sizes for ``"mult-one-hot"``: ``var_nums`` if given, else the ``nvec`` of a MultiOneHot spec."""
    if action_space != "mult-one-hot":
        return var_nums if var_nums is None or isinstance(var_nums, int) else list(var_nums)
    if var_nums is None:
        if isinstance(spec, MultiOneHot):
            return list(spec.nvec)
        raise ValueError("'mult-one-hot' needs var_nums (the size of each action group) or a MultiOneHot spec")
    if isinstance(var_nums, int):
        if var_nums < 1:
            raise ValueError(f"var_nums must be positive, got {var_nums}")
        return var_nums
    sizes = [int(n) for n in var_nums]
    if not sizes or min(sizes) < 1:
        raise ValueError(f"var_nums must be a non-empty list of positive group sizes, got {sizes}")
    if isinstance(spec, MultiOneHot) and sizes != list(spec.nvec):
        raise ValueError(f"var_nums {sizes} disagrees with the MultiOneHot spec's nvec {list(spec.nvec)}")
    return sizes


def group_sizes(var_nums: int | Sequence[int], num_actions: int) -> list[int]:
    """Splits ``num_actions`` into the groups of a ``"mult-one-hot"`` action."""
    if isinstance(var_nums, int):
        if num_actions % var_nums:
            raise ValueError(
                f"var_nums={var_nums} does not divide the {num_actions} action values into equal groups"
            )
        return [var_nums] * (num_actions // var_nums)
    sizes = list(var_nums)
    if sum(sizes) != num_actions:
        raise ValueError(f"var_nums {sizes} sums to {sum(sizes)} but there are {num_actions} action values")
    return sizes


def spec_width(spec: TensorSpec) -> int | None:
    """Number of action values a discrete spec expects (``None`` if the spec does not say)."""
    if isinstance(spec, MultiOneHot):
        return sum(spec.nvec)
    return getattr(spec, "n", None)


def check_mask(mask: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Validates a bool action mask and broadcasts it to the values' ``shape``."""
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        dtype = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(f"the action mask must be a bool tensor (True = allowed), got {dtype}")
    try:
        return mask.expand(shape)
    except RuntimeError:
        raise ValueError(
            f"the action mask of shape {tuple(mask.shape)} does not broadcast to the action values' "
            f"shape {tuple(shape)}"
        ) from None


def _check_some_allowed(mask: torch.Tensor, what: str) -> None:
    # Not while a graph is captured (torch.export / ONNX / TorchScript tracing), where it would be a
    # data-dependent branch: an exported greedy policy given a row that allows nothing picks action 0.
    if recording_graph():
        return
    if not bool(mask.any(-1).all()):
        raise ValueError(f"the action mask forbids every action in at least one row{what}")


def _one_hot_argmax(scores: torch.Tensor) -> torch.Tensor:
    # argmax returns the first maximum, so ties still give exactly one 1.
    return torch.nn.functional.one_hot(scores.argmax(-1), scores.shape[-1])


def greedy_action(
    values: torch.Tensor,
    action_space: ActionSpace,
    mask: torch.Tensor | None = None,
    var_nums: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """The greedy action (int64) for action values ``[*B, A]``; masked entries never win.

    Examples:
        >>> import torch
        >>> from rlkit.modules import greedy_action
        >>> greedy_action(torch.tensor([1.0, 3.0, 3.0]), "one-hot")
        tensor([0, 1, 0])
        >>> greedy_action(torch.tensor([1.0, 3.0]), "categorical", mask=torch.tensor([True, False]))
        tensor(0)
    """
    scores = values
    if mask is not None:
        mask = check_mask(mask, values.shape)
        # Checked on the CPU only: on an accelerator the check would wait for the device at every
        # acting step; a row that allows nothing there picks its first action (as an exported policy).
        if not reading_waits(mask.device):
            if action_space == "mult-one-hot":
                sizes = group_sizes(cast("int | Sequence[int]", var_nums), values.shape[-1])  # (see below)
                for i, group in enumerate(mask.split(sizes, -1)):
                    _check_some_allowed(group, f" (of action group {i})")
            else:
                _check_some_allowed(mask, "")
        scores = values.masked_fill(~mask, float("-inf"))
    if action_space == "categorical":
        return scores.argmax(-1)
    if action_space == "one-hot":
        return _one_hot_argmax(scores)
    if action_space == "mult-one-hot":
        # A "mult-one-hot" caller passes var_nums (resolve_var_nums gives it); None is not checked
        # here and fails inside group_sizes.
        sizes = group_sizes(cast("int | Sequence[int]", var_nums), values.shape[-1])
        return torch.cat([_one_hot_argmax(g) for g in scores.split(sizes, -1)], -1)
    if action_space == "binary":
        return (scores > 0).to(torch.int64)
    raise ValueError(f"unknown action_space {action_space!r}; valid action spaces: {VALID_ACTION_SPACES}")


def check_action_layout(action: torch.Tensor | None, value_shape: torch.Size, action_space: ActionSpace,
                        key: NestedKey = keys.ACTION) -> torch.Tensor:
    """``action`` (the batch's ``key`` entry) checked against the layout ``action_space`` gives action
    values of shape ``value_shape`` (``[*B, A]``): integer indices ``[*B]`` or ``[*B, 1]`` for
    ``"categorical"`` (returned as int64), else a ``[*B, A]`` tensor. A loss calls it before it picks
    values, where an action of another layout would broadcast into a wrong number.

    Raises:
        KeyError: ``action`` is missing (``None``).
        ValueError: the shape or dtype does not fit, naming both and what fits.

    Examples:
        >>> import torch
        >>> from rlkit.modules import check_action_layout
        >>> check_action_layout(torch.tensor([[1], [0]]), torch.Size([2, 3]), "categorical").shape
        torch.Size([2, 1])
        >>> check_action_layout(torch.tensor([[0, 1, 0], [1, 0, 0]]), torch.Size([2, 3]), "categorical")
        Traceback (most recent call last):
        ...
        ValueError: the 'action' entry has shape (2, 3) and dtype torch.int64; a 'categorical' action space takes integer indices of shape (2,) or (2, 1) for action values of shape (2, 3)
    """
    if action is None:
        raise KeyError(f"the batch has no {key!r} entry (the actions taken), which the loss needs")
    batch, shape = tuple(value_shape[:-1]), tuple(action.shape)
    if action_space == "categorical":
        integer = not action.is_floating_point() and not action.is_complex() and action.dtype != torch.bool
        if integer and shape in (batch, (*batch, 1)):
            return action if action.dtype == torch.int64 else action.long()
        wanted = f"integer indices of shape {batch} or {(*batch, 1)}"
    else:
        if shape == tuple(value_shape):
            _check_action_entries(action, action_space, key)
            return action
        wanted = f"a tensor of shape {tuple(value_shape)} (one entry per action)"
    raise ValueError(f"the {key!r} entry has shape {shape} and dtype {action.dtype}; a {action_space!r} action space "
                     f"takes {wanted} for action values of shape {tuple(value_shape)}")


def _check_action_entries(action: torch.Tensor, action_space: ActionSpace, key: NestedKey) -> None:
    """Refuses ``"one-hot"`` actions that are not exactly one 1 per row, and ``"binary"`` ones that
    are not 0/1 (a row of ones would add up the values of every action)."""
    if action_space not in ("one-hot", "binary") or reading_waits(action.device):
        return  # (a "mult-one-hot" action's groups are checked by its spec; on an accelerator the
        # check would wait for the device at every update)
    binary = (action == 0) | (action == 1)
    ok = binary.all() if action_space == "binary" else binary.all() & (action.sum(-1) == 1).all()
    if not bool(ok):
        what = "exactly one 1 per row, 0 elsewhere" if action_space == "one-hot" else "only 0 and 1"
        raise ValueError(f"the {key!r} entry is not a {action_space!r} action: it must hold {what}")


def chosen_value(values: torch.Tensor, action: torch.Tensor, action_space: ActionSpace) -> torch.Tensor:
    """The value of ``action`` under ``values``, shape ``[*B, 1]`` (a sum over groups / switched-on bits).

    A ``"categorical"`` action may be an index ``[*B]`` or ``[*B, 1]``.
    """
    if action_space == "categorical":
        if action.dim() == values.dim() - 1:
            action = action.unsqueeze(-1)
        return values.gather(-1, action)
    # where() rather than a product: an entry that is off must not turn -inf into nan.
    picked = torch.where(action.bool(), values, torch.zeros((), dtype=values.dtype, device=values.device))
    return picked.sum(-1, keepdim=True)
