"""Greedy policies for distributional (C51) Q-networks.

The network outputs log-probabilities ``[*B, K, A]`` over ``K`` atoms (dim -2) of a fixed ``support``;
the expected value ``Q = sum_k exp(logp_k) * support_k`` decides the action. See Bellemare et al.,
"A Distributional Perspective on Reinforcement Learning" (https://arxiv.org/abs/1707.06887).
"""
from __future__ import annotations

from typing import Sequence

import torch
from tensordict.utils import NestedKey

from rlkit import keys
from rlkit.data.specs import TensorSpec
from rlkit.modules._action_space import ActionSpaceName
from rlkit.modules.qvalue import QValueModule, _QValueHookBase
from rlkit.modules.tensor_call import recording_graph
from rlkit.utils.devices import reading_waits


def expected_action_values(log_probs: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """``Q[*B, A] = sum_k exp(log_probs[*B, k, A]) * support[k]``, checking shapes and, on the CPU,
    that the input is in log-space (no value > 0)."""
    if log_probs.dim() < 2:
        raise ValueError(f"expected log-probabilities of shape [*B, K, A], got shape {tuple(log_probs.shape)}")
    num_atoms = support.shape[-1]
    if log_probs.shape[-2] != num_atoms:
        raise ValueError(
            f"the support has K={num_atoms} atoms but the input has {log_probs.shape[-2]} on its atom "
            f"dim (-2), shape {tuple(log_probs.shape)}"
        )
    # (a check of the values: skipped while torch.export / torch.jit.trace record the graph, which
    # cannot branch on data, see rlkit.exporter; and off the CPU, where reading its answer would wait
    # for the device at every acting step and update, as rlkit's other checks of tensor contents)
    if not reading_waits(log_probs.device) and not recording_graph() and bool((log_probs > 0).any()):
        raise ValueError(
            "the input is not log-probabilities (it has values > 0): apply log_softmax over the atom "
            "dim (-2) first, e.g. make_log_softmax=True in DistributionalQValueActor"
        )
    return (log_probs.exp() * support.to(log_probs).unsqueeze(-1)).sum(-2)


class DistributionalQValueModule(QValueModule):
    """Greedy action from per-action return distributions ``[*B, K, A]`` (log-probabilities).

    The action maximises the expected value over ``support``; masked actions get Q = -inf and are
    never chosen. Writes ``out_keys`` (default ``["action", action_value_key]``); the value written is
    the input log-probabilities. Accepts the same action spaces, aliases, masks and ``spec``/``safe``
    as :class:`QValueModule`; the mask has the environment's layout ``[*B, A]`` (``[*B, 1, A]`` too).

    Args:
        action_space: see :class:`QValueModule` (may be ``None`` when ``spec`` is given).
        support: the ``K`` atom values, registered as the buffer ``support``.
        action_value_key: input key (default ``"action_value"``).
        action_mask_key: input key of a bool mask, True = allowed.
        out_keys: default ``["action", action_value_key]``.
        var_nums: group size(s) for ``"mult-one-hot"``; inferred from a MultiOneHot spec.
        spec: the action spec.
        safe: project the action onto ``spec``.

    Examples:
        >>> import torch
        >>> from rlkit.modules import DistributionalQValueModule
        >>> logp = torch.tensor([[0.9, 0.1], [0.1, 0.9]]).log()  # K=2 atoms, A=2 actions
        >>> module = DistributionalQValueModule("categorical", support=torch.tensor([0.0, 1.0]))
        >>> module(logp)[0]
        tensor(1)
    """

    _NUM_OUT = 2

    def __init__(
        self,
        action_space: ActionSpaceName | None,
        support: torch.Tensor,
        action_value_key: NestedKey | None = None,
        action_mask_key: NestedKey | None = None,
        out_keys: Sequence[NestedKey] | None = None,
        var_nums: int | Sequence[int] | None = None,
        spec: TensorSpec | None = None,
        safe: bool = False,
    ) -> None:
        super().__init__(
            action_space=action_space,
            action_value_key=action_value_key,
            action_mask_key=action_mask_key,
            out_keys=out_keys,
            var_nums=var_nums,
            spec=spec,
            safe=safe,
        )
        support = torch.as_tensor(support)
        if support.dim() != 1 or support.numel() < 1:
            raise ValueError(f"support must be a 1-D tensor of atom values, got shape {tuple(support.shape)}")
        if not support.is_floating_point():
            support = support.to(torch.get_default_dtype())
        self.register_buffer("support", support)

    support: torch.Tensor  # a buffer (registered in __init__)

    def _default_out_keys(self) -> list[NestedKey]:
        return [keys.ACTION, self.action_value_key]

    def expected_values(self, log_probs: torch.Tensor) -> torch.Tensor:
        """``Q[*B, A] = sum_k exp(log_probs[*B, k, A]) * support[k]`` (:func:`expected_action_values`)."""
        return expected_action_values(log_probs, self.support)

    def _scores(self, values: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        q = expected_action_values(values, self.support)
        if mask is not None and isinstance(mask, torch.Tensor) and mask.dim() == values.dim():
            if mask.shape[-2] != 1:
                raise ValueError(
                    f"the action mask must have shape [*B, A] or [*B, 1, A], got {tuple(mask.shape)} for "
                    f"log-probabilities of shape {tuple(values.shape)}"
                )
            mask = mask.squeeze(-2)
        if mask is not None and mask.dtype == torch.bool:
            # -inf rather than 0: a masked action must never have the best expected value.
            q = q.masked_fill(~mask.expand_as(q), float("-inf"))
        return q, mask

    def _outputs(self, action: torch.Tensor, values: torch.Tensor, scores: torch.Tensor) -> list[torch.Tensor]:
        return [action, values]


class DistributionalQValueHook(_QValueHookBase):
    """Forward hook making a distributional Q-network return ``(action, log_probs)``.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from rlkit.modules import DistributionalQValueHook
        >>> class Net(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.linear = nn.Linear(4, 3 * 2)
        ...     def forward(self, x):
        ...         return self.linear(x).view(-1, 3, 2).log_softmax(-2)
        >>> net = Net()
        >>> _ = net.register_forward_hook(DistributionalQValueHook("categorical", torch.arange(3.0)))
        >>> action, logp = net(torch.randn(5, 4))
        >>> action.shape, logp.shape
        (torch.Size([5]), torch.Size([5, 3, 2]))
    """

    qvalue_model: DistributionalQValueModule

    def __init__(
        self,
        action_space: ActionSpaceName,
        support: torch.Tensor,
        var_nums: int | Sequence[int] | None = None,
        action_value_key: NestedKey | None = None,
        action_mask_key: NestedKey | None = None,
        out_keys: Sequence[NestedKey] | None = None,
    ) -> None:
        self.qvalue_model = DistributionalQValueModule(
            action_space=action_space,
            support=support,
            var_nums=var_nums,
            action_value_key=action_value_key,
            action_mask_key=action_mask_key,
            out_keys=out_keys,
        )

    @property
    def support(self) -> torch.Tensor:
        return self.qvalue_model.support
