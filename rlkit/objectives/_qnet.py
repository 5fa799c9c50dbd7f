"""What the Q-value losses (DQN, C51) share: action-space inference, network registration and
evaluating a Q-value actor without rebuilding TensorDicts on the hot path."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule
from tensordict.utils import NestedKey
from torch import nn

from rlkit.data import Composite
from rlkit.modules import (
    QValueActor,
    action_space_from_spec,
    canonical_action_space,
    greedy_action,
)

if TYPE_CHECKING:
    from rlkit.objectives.common import LossModule


def _spec_action_space(spec: Any) -> str | None:
    # A module whose spec implies no action space (continuous, no "action" entry) is skipped, not fatal.
    if isinstance(spec, Composite):
        spec = spec["action"] if "action" in spec else None
    try:
        return action_space_from_spec(spec)
    except ValueError:
        return None


def infer_action_space(network: nn.Module, action_space: str | None) -> str:
    """The canonical action space: ``action_space`` if given, else the network's own, else its spec's."""
    if action_space is not None:
        return canonical_action_space(action_space)
    for module in network.modules():
        found = getattr(module, "action_space", None)
        if isinstance(found, str):
            return canonical_action_space(found)
    for module in network.modules():
        found = _spec_action_space(getattr(module, "spec", None))
        if found is not None:
            return found
    raise ValueError(
        f"Cannot infer the action space of {type(network).__name__}: it exposes neither action_space nor "
        "a spec. Pass action_space= ('categorical', 'one-hot', 'mult-one-hot' or 'binary')."
    )


def register_value_network(
    loss: LossModule,
    value_network: nn.Module,
    *,
    delay_value: bool,
    priority_key: NestedKey | None,
    support: torch.Tensor | None = None,
) -> QNetEvaluator:
    """Makes ``value_network`` the loss's ``"value_network"`` and returns its evaluator.

    The loss gets target parameters when ``delay_value``, reads the action values under the network's
    own ``action_value_key`` (when it has one) and writes priorities under ``priority_key`` (if given).
    """
    loss.convert_to_functional(value_network, "value_network", create_target_params=delay_value)
    network_key = getattr(value_network, "action_value_key", None)
    if network_key is not None:
        loss.set_keys(action_value=network_key)
    if priority_key is not None:
        loss.set_keys(priority=priority_key)
    target = loss._functional_nets["value_network"].target_module
    return QNetEvaluator(value_network, target, loss.tensor_keys.action_value, support=support)


def _plain_chain(actor: nn.Module | None) -> list[TensorDictModule] | None:
    """The modules before the greedy head of a Q-value actor, if all are plain ``TensorDictModule``s.

    Those can be run on tensors directly, with exactly the same result; anything else (a module
    with hooks, a ``SafeModule`` that projects, a nested sequence) takes the TensorDict path.
    """
    if not isinstance(actor, QValueActor):
        return None
    chain = list(actor.module[:-1])
    for module in chain:
        if type(module) is not TensorDictModule or module._forward_hooks or module._forward_pre_hooks:
            return None
    return chain


def _run_chain(chain: list[tuple[list, nn.Module, list]], tensordict: TensorDictBase) -> dict:
    """Runs ``(in_keys, network, out_keys)`` steps (see :func:`_chain_steps`) on ``tensordict``'s entries."""
    produced: dict = {}
    for in_keys, net, out_keys in chain:
        args = [produced[k] if k in produced else tensordict.get(k) for k in in_keys]
        out = net(*args)
        if len(out_keys) == 1:
            produced[out_keys[0]] = out
        else:
            produced.update(zip(out_keys, out))
    return produced


def _chain_steps(chain: list[TensorDictModule] | None) -> list[tuple[list, nn.Module, list]] | None:
    """A plain chain's modules as ``(in_keys, network, out_keys)``, read once instead of through
    ``nn.Module`` attribute lookups on every loss call."""
    return None if chain is None else [(list(m.in_keys), m.module, list(m.out_keys)) for m in chain]


class QNetEvaluator:
    """Online / target action values and greedy actions of a (distributional) Q-value actor.

    Args:
        actor: the online actor (its parameters are the loss's online parameters).
        target: the copy bound to the target parameters, or ``None`` (then the online actor
            is used, without gradient).
        action_value_key: key of the action values (or atom log-probabilities).
        support: atoms of a distributional actor, ``None`` for plain Q-values.
    """

    def __init__(
        self, actor: nn.Module, target: nn.Module | None, action_value_key, support: torch.Tensor | None = None
    ) -> None:
        self.actor = actor
        self.target = target
        self.action_value_key = action_value_key
        self.distributional = support is not None
        self.greedy_module = actor.module[-1] if isinstance(actor, QValueActor) else None
        self.online_chain = _chain_steps(_plain_chain(actor))
        self.target_chain = _chain_steps(_plain_chain(target)) if target is not None else self.online_chain
        self.in_keys = list(actor.in_keys)

    def _network(self, target: bool) -> tuple[nn.Module, list[tuple[list, nn.Module, list]] | None]:
        if target and self.target is not None:
            return self.target, self.target_chain
        return self.actor, self.online_chain

    def values(self, tensordict: TensorDictBase, *, target: bool = False) -> torch.Tensor:
        """Action values ``[*B, A]`` (distributional: log-probabilities ``[*B, K, A]``)."""
        return self.evaluate(tensordict, target=target, need_action=False)[0]

    def evaluate(
        self, tensordict: TensorDictBase, *, target: bool = False, need_action: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Action values and (if asked) the greedy action, masked actions excluded."""
        network, chain = self._network(target)
        if chain is None or self.greedy_module is None:
            # The network writes "action": run it on a fresh selection, never on the batch.
            out = network(tensordict.select(*self.in_keys, strict=False))
            return out.get(self.action_value_key), (out.get("action") if need_action else None)
        values = _run_chain(chain, tensordict)[self.action_value_key]
        return values, (self.greedy(values, tensordict, network) if need_action else None)

    def greedy_value(self, tensordict: TensorDictBase, *, target: bool = False) -> torch.Tensor | None:
        """``max_a Q(s, a)`` ``[*B, 1]``, the value of the greedy action, when the head's choice is a
        plain argmax (categorical actions, no mask, no projection; not distributional): the same
        value as gathering at the greedy action, without computing the action. ``None`` otherwise."""
        head = self.greedy_module
        _, chain = self._network(target)
        if (chain is None or head is None or self.distributional or head.action_mask_key is not None
                or head.action_space != "categorical" or head.safe):
            return None
        return _run_chain(chain, tensordict)[self.action_value_key].max(-1, keepdim=True).values

    def greedy(self, values: torch.Tensor, tensordict: TensorDictBase, network: nn.Module) -> torch.Tensor:
        head = network.module[-1]
        mask = None if head.action_mask_key is None else tensordict.get(head.action_mask_key)
        scores = values
        if self.distributional:
            scores = (values.exp() * head.support.unsqueeze(-1)).sum(-2)
            if mask is not None and mask.dim() == values.dim():
                mask = mask.squeeze(-2)
        return greedy_action(scores, head.action_space, mask, head.var_nums)
