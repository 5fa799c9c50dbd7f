"""Greedy Q-value policies: turn a network's action values into actions.

:class:`QValueModule` is a ``tensordict.nn`` module; :class:`QValueHook` wraps it as a forward hook
for a plain ``nn.Module``. Both support the ``"categorical"``, ``"one-hot"``, ``"mult-one-hot"`` and
``"binary"`` action spaces, bool action masks (True = allowed) and projection onto a spec.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn

from rlkit import keys

from rlkit.data.specs import TensorSpec
from rlkit.modules.tensor_call import TensorModule
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


class QValueModule(TensorModule, TensorDictModuleBase):
    """Greedy action from action values ``[*B, A]``.

    Called with a TensorDict it writes ``out_keys`` (action, action values, chosen action value) and
    returns it; called with tensors (positionally, or by key name such as ``action_value=``) it returns
    the triple, which is its tensor-level call :meth:`act`; :meth:`action` computes the action alone.
    Ties go to the first maximum. The value written under the action-value key is the network
    output, unmasked.

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
        >>> from rlkit.modules import QValueModule
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
        self.action_value_key = keys.ACTION_VALUE if action_value_key is None else action_value_key
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
        # The greedy choice is a plain argmax of the values themselves (see action()).
        self._plain_argmax = (self.action_space == "categorical" and not safe
                              and type(self)._scores is QValueModule._scores)
        self._checked_width: int | None = None  # the action width _check_width accepted last
    def _default_out_keys(self) -> list[NestedKey]:
        return [keys.ACTION, self.action_value_key, keys.CHOSEN_ACTION_VALUE]

    def _describe_input(self, key: NestedKey) -> str:
        return "action mask" if key == self.action_mask_key else "action values"

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
        self.__dict__["_checked_width"] = num_actions

    def _greedy(self, values: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The greedy action and the scores it maximises."""
        scores, mask = self._scores(values, mask)
        self._check_width(scores.shape[-1])
        action = greedy_action(scores, self.action_space, mask, self.var_nums)
        if self.safe:
            assert self.spec is not None  # __init__ refuses safe=True without a spec
            action = self.spec.project(action)
        return action, scores

    def act(self, values: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        """The outputs for ``out_keys`` (action, action values, chosen value) of the action values
        (and the bool mask, True = allowed, when the module has an ``action_mask_key``)."""
        action, scores = self._greedy(values, mask)
        return tuple(self._outputs(action, values, scores))

    def action(self, values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The greedy action alone (what acting needs), without the other outputs."""
        if mask is None and self._plain_argmax and values.shape[-1] == self._checked_width:
            # categorical actions of plain values, unprojected, width already checked: an argmax
            return values.argmax(-1)
        return self._greedy(values, mask)[0]


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
        >>> from rlkit.modules import QValueHook
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
