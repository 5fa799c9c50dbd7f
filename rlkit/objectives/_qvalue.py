"""What the Q-value losses (DQN, C51) share: action-space inference and registering the actor.

The losses call the actor through its public tensor-level methods
(:meth:`~rlkit.modules.QValueActor.action_values`, :meth:`~rlkit.modules.QValueActor.greedy`,
:meth:`~rlkit.modules.DistributionalQValueActor.expected_values`), on the online network and on the
copy bound to the target parameters (:meth:`~rlkit.objectives.LossModule.target_network`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey
from torch import nn

from rlkit import keys
from rlkit.data import Composite
from rlkit.modules import ActionSpace, QValueActor, action_space_from_spec, canonical_action_space
from rlkit.modules.tensor_call import read_entry

if TYPE_CHECKING:
    from rlkit.objectives.common import LossModule


def _spec_action_space(spec: Any) -> ActionSpace | None:
    # A module whose spec implies no action space (continuous, no "action" entry) is skipped, not fatal.
    if isinstance(spec, Composite):
        spec = spec[keys.ACTION] if keys.ACTION in spec else None
    try:
        return action_space_from_spec(spec)
    except ValueError:
        return None


def infer_action_space(network: nn.Module, action_space: str | None) -> ActionSpace:
    """The canonical action space: the network's own (its greedy head's, else its spec's), which a
    given ``action_space`` must equal; ``action_space`` alone for a network that has none."""
    own = None
    for module in network.modules():
        found = getattr(module, "action_space", None)
        if isinstance(found, str):
            own = canonical_action_space(found)
            break
    if own is None:
        for module in network.modules():
            own = _spec_action_space(getattr(module, "spec", None))
            if own is not None:
                break
    if action_space is not None:
        given = canonical_action_space(action_space)
        if own is not None and given != own:
            raise ValueError(f"action_space={action_space!r} disagrees with the network's own action space {own!r} "
                             f"(its greedy head or spec); pass action_space={own!r} or leave it out")
        return given
    if own is not None:
        return own
    raise ValueError(
        f"Cannot infer the action space of {type(network).__name__}: it exposes neither action_space nor "
        "a spec. Pass action_space= ('categorical', 'one-hot', 'mult-one-hot' or 'binary')."
    )


def as_qvalue_actor(network: nn.Module, action_space: ActionSpace) -> QValueActor:
    """``network`` as a :class:`~rlkit.modules.QValueActor`: itself, or a greedy head added after a
    TensorDict module writing action values (called through its TensorDict call; anything it writes
    besides the action values, e.g. an epsilon-greedy action, is not read), or around a plain
    ``nn.Module``."""
    if isinstance(network, QValueActor):
        return network
    value_key = getattr(network, "action_value_key", keys.ACTION_VALUE)
    if isinstance(network, TensorDictModuleBase) and value_key not in network.out_keys:
        raise ValueError(f"the value network writes {list(network.out_keys)}, not the action values "
                         f"{value_key!r}")
    spec = next((_action_spec(m.spec) for m in network.modules() if _action_spec(getattr(m, "spec", None))), None)
    return QValueActor(network, action_space=action_space, action_value_key=value_key, spec=spec)


def _action_spec(spec: Any) -> Any:
    """The discrete action spec in ``spec`` (a Composite's ``"action"`` entry), or ``None``."""
    if isinstance(spec, Composite):
        spec = spec[keys.ACTION] if keys.ACTION in spec else None
    return spec if _spec_action_space(spec) is not None else None


def register_value_network(loss: LossModule, actor: QValueActor, *, delay_value: bool,
                           priority_key: NestedKey | None) -> None:
    """Makes ``actor`` the loss's ``"value_network"`` (with target parameters when ``delay_value``),
    read under its own action-value key, and writes priorities under ``priority_key`` (if given)."""
    loss.convert_to_functional(actor, "value_network", create_target_params=delay_value)
    loss.set_keys(action_value=actor.action_value_key)
    if priority_key is not None:
        loss.set_keys(priority=priority_key)


def network_inputs(actor: QValueActor, tensordict: TensorDictBase) -> list[torch.Tensor]:
    """The tensors of the actor's network inputs (:attr:`~rlkit.modules.QValueActor.network_in_keys`);
    a missing one is named (:func:`~rlkit.modules.tensor_call.read_entry`)."""
    return [read_entry(actor, tensordict, key) for key in actor.network_in_keys]


def action_mask(actor: QValueActor, tensordict: TensorDictBase) -> torch.Tensor | None:
    """The action mask the actor's greedy head reads (``None`` when it reads none)."""
    key = actor.qvalue_module.action_mask_key
    return None if key is None else tensordict.get(key)


def next_action_mask(actor: QValueActor, next_td: TensorDictBase, terminated: torch.Tensor) -> torch.Tensor | None:
    """The mask the greedy next action is picked under: the next observation's action mask (``None``
    when the actor reads none), with every action allowed in ``terminated`` rows. A terminated
    transition's next value is never used, and a game-over state may allow no action at all."""
    mask = action_mask(actor, next_td)
    if mask is None or terminated.dtype != torch.bool:  # (a flag of another dtype is named by the target's check)
        return mask
    return mask | terminated.reshape(*mask.shape[:-1], 1)
