"""Greedy Q-value policies: turn a network's action values into actions.

:class:`QValueModule` is a ``tensordict.nn`` module; :class:`QValueHook` wraps it as a forward hook
for a plain ``nn.Module``. Both support the ``"categorical"``, ``"one-hot"``, ``"mult-one-hot"`` and
``"binary"`` action spaces, bool action masks (True = allowed) and projection onto a spec.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase, dispatch
from tensordict.utils import NestedKey, unravel_key
from torch import nn

from rlkit.data.specs import TensorSpec
from rlkit.modules._action_space import (
    ActionSpace,
    ActionSpaceName,
    action_leaf_spec,
    chosen_value,
    greedy_action,
    resolve_action_space,
    resolve_var_nums,
    spec_width,
)


def read_entry(module: nn.Module, tensordict: TensorDictBase, key: NestedKey, what: str) -> torch.Tensor:
    """``tensordict[key]``, or a ``KeyError`` that names the key and the keys present."""
    value = tensordict.get(key, None)
    if value is None:
        present = sorted(str(k) for k in tensordict.keys(include_nested=True, leaves_only=True))
        raise KeyError(
            f"{type(module).__name__} reads the {what} from {key!r}, which is missing; keys present: {present}"
        )
    return value


def read_dict_entry(module: nn.Module, entries: dict, key: NestedKey, what: str) -> torch.Tensor:
    """:func:`read_entry` for a plain dict of tensors."""
    value = entries.get(key, None)
    if value is None:
        present = sorted(str(k) for k in entries)
        raise KeyError(
            f"{type(module).__name__} reads the {what} from {key!r}, which is missing; keys present: {present}"
        )
    return value


class QValueModule(TensorDictModuleBase):
    """Greedy action from action values ``[*B, A]``.

    Called with a TensorDict it writes ``out_keys`` (action, action values, chosen action value) and
    returns it; called with tensors (positionally, or by key name such as ``action_value=``) it returns
    the triple. Ties go to the first maximum. The value written under the action-value key is the
    network output, unmasked.

    Args:
        action_space: ``"categorical"``, ``"one-hot"`` (``"one_hot"``), ``"mult-one-hot"``
            (``"mult_one_hot"``, ``"multi_one_hot"``) or ``"binary"``. May be omitted when ``spec`` is
            given: its class decides (OneHot, Categorical, MultiOneHot, Binary).
        action_value_key: input key of the action values (default ``"action_value"``).
        action_mask_key: input key of a bool mask (True = allowed) broadcastable to the values.
        out_keys: default ``["action", action_value_key, "chosen_action_value"]``.
        var_nums: group size(s) for ``"mult-one-hot"``: an int (equal groups) or a list; inferred from
            a MultiOneHot spec's ``nvec`` when omitted.
        spec: the action spec (a Composite is read at ``"action"``).
        safe: project the action onto ``spec`` (``spec.project``).

    The greedy policy of DQN (Mnih et al. 2015, https://www.nature.com/articles/nature14236).

    Examples:
        >>> import torch
        >>> module = QValueModule("categorical")
        >>> module(torch.tensor([0.0, 2.0, 2.0]))
        (tensor(1), tensor([0., 2., 2.]), tensor([2.]))
    """

    _NUM_OUT = 3

    def __init__(
        self,
        action_space: ActionSpaceName | None = None,
        action_value_key: NestedKey | None = None,
        action_mask_key: NestedKey | None = None,
        out_keys: Sequence[NestedKey] | None = None,
        var_nums: int | Sequence[int] | None = None,
        spec: TensorSpec | None = None,
        safe: bool = False,
    ) -> None:
        super().__init__()
        spec = action_leaf_spec(spec)
        self.action_space: ActionSpace = resolve_action_space(action_space, spec)
        self.var_nums = resolve_var_nums(self.action_space, var_nums, spec)
        if safe and spec is None:
            raise ValueError("safe=True projects the action onto a spec, but no spec was given")
        self.spec = spec
        self.safe = safe
        self.action_value_key = "action_value" if action_value_key is None else action_value_key
        self.action_mask_key = action_mask_key
        if out_keys is None:
            out_keys = self._default_out_keys()
        out_keys = list(out_keys)
        if len(out_keys) != self._NUM_OUT:
            raise ValueError(
                f"{type(self).__name__} writes {self._NUM_OUT} outputs ({self._default_out_keys()}); "
                f"got out_keys={out_keys}"
            )
        in_keys = [self.action_value_key]
        if action_mask_key is not None:
            in_keys.append(action_mask_key)
        self.in_keys = in_keys
        self.out_keys = out_keys

    def _default_out_keys(self) -> list[NestedKey]:
        return ["action", self.action_value_key, "chosen_action_value"]

    def _scores(self, values: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The per-action scores that the greedy choice maximises, and the mask in their layout."""
        return values, mask

    def _outputs(self, action: torch.Tensor, values: torch.Tensor, scores: torch.Tensor) -> list[torch.Tensor]:
        return [action, values, chosen_value(values, action, self.action_space)]

    def _check_width(self, num_actions: int) -> None:
        width = spec_width(self.spec) if self.spec is not None else None
        if width is not None and width != num_actions:
            raise ValueError(
                f"the action values have {num_actions} entries on their action dim but the "
                f"{type(self.spec).__name__} spec has {width}"
            )

    def _greedy(self, values: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The greedy action and the scores it maximises."""
        scores, mask = self._scores(values, mask)
        self._check_width(scores.shape[-1])
        action = greedy_action(scores, self.action_space, mask, self.var_nums)
        if self.safe:
            action = self.spec.project(action)
        return action, scores

    def _act(self, values: torch.Tensor, mask: torch.Tensor | None) -> list[torch.Tensor]:
        action, scores = self._greedy(values, mask)
        return self._outputs(action, values, scores)

    @dispatch(auto_batch_size=False)
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        values = read_entry(self, tensordict, self.action_value_key, "action values")
        mask = None
        if self.action_mask_key is not None:
            mask = read_entry(self, tensordict, self.action_mask_key, "action mask")
        for key, out in zip(self.out_keys, self._act(values, mask)):
            if key != "_":
                tensordict.set(key, out)
        return tensordict

    def entry_function(self, outputs: list | None = None) -> Callable[[dict], None]:
        """:meth:`forward` on a plain dict of tensors (see :func:`rlkit.modules.entry_function`).
        When ``outputs`` names only the action key, only the action is computed and written."""
        value_key, mask_key = unravel_key(self.action_value_key), self.action_mask_key
        mask_key = None if mask_key is None else unravel_key(mask_key)
        out_keys = [None if key == "_" else unravel_key(key) for key in self.out_keys]
        action_key = out_keys[0]
        action_only = (outputs is not None and action_key is not None
                       and all(unravel_key(k) == action_key for k in outputs))

        def run(entries: dict) -> None:
            values = read_dict_entry(self, entries, value_key, "action values")
            mask = None if mask_key is None else read_dict_entry(self, entries, mask_key, "action mask")
            if action_only:
                entries[action_key] = self._greedy(values, mask)[0]
                return
            for key, out in zip(out_keys, self._act(values, mask)):
                if key is not None:
                    entries[key] = out

        return run


class _QValueHookBase:
    """Runs ``qvalue_model`` on a hooked module's output (and, with a mask key, its last input)."""

    qvalue_model: QValueModule

    @property
    def action_space(self) -> ActionSpace:
        return self.qvalue_model.action_space

    def __call__(self, net: nn.Module, inputs: tuple[Any, ...], values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model = self.qvalue_model
        if model.action_mask_key is None:
            return model(values)
        if len(inputs) < 2:
            raise ValueError(
                f"with action_mask_key={model.action_mask_key!r} the hook reads the mask from the hooked "
                f"module's last positional input, but the module got {len(inputs)} input(s)"
            )
        return model(values, inputs[-1])


class QValueHook(_QValueHookBase):
    """Forward hook that makes an ``nn.Module`` returning action values return the greedy triple.

    After ``net.register_forward_hook(QValueHook(...))``, ``net(x)`` returns ``(action, action_value,
    chosen_action_value)``; wrap it in an :class:`~rlkit.modules.Actor` with three out_keys. With an
    ``action_mask_key``, the mask is read from the hooked module's last positional input (so the
    module takes it as an argument, e.g. ``Actor(net, in_keys=["observation", "action_mask"])``).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> net = nn.Linear(4, 3)
        >>> _ = net.register_forward_hook(QValueHook("one_hot"))
        >>> action, value, chosen = net(torch.randn(5, 4))
        >>> action.shape, value.shape, chosen.shape
        (torch.Size([5, 3]), torch.Size([5, 3]), torch.Size([5, 1]))
    """

    def __init__(
        self,
        action_space: ActionSpaceName,
        var_nums: int | Sequence[int] | None = None,
        action_value_key: NestedKey | None = None,
        action_mask_key: NestedKey | None = None,
        out_keys: Sequence[NestedKey] | None = None,
    ) -> None:
        self.qvalue_model = QValueModule(
            action_space=action_space,
            action_value_key=action_value_key,
            action_mask_key=action_mask_key,
            out_keys=out_keys,
            var_nums=var_nums,
        )
