"""TorchRL's import path of the actors (``torchrl.modules.tensordict_module.actors``), so that code
written against it runs with ``rlkit`` in place of ``torchrl``. The classes are those of
:mod:`rlkit.modules`; import them from there in new code.

Examples:
    >>> import torch
    >>> from tensordict import TensorDict
    >>> from torch import nn
    >>> from rlkit.data import OneHotDiscreteTensorSpec
    >>> from rlkit.modules.tensordict_module.actors import QValueHook, Actor
    >>> module = nn.Linear(4, 4)
    >>> _ = module.register_forward_hook(QValueHook("one_hot"))
    >>> actor = Actor(module=module, spec=OneHotDiscreteTensorSpec(4), out_keys=["action", "action_value"])
    >>> sorted(actor(TensorDict({"observation": torch.randn(5, 4)}, [5])).keys())
    ['action', 'action_value', 'observation']
"""
from __future__ import annotations

from rlkit.modules.actor_value import ActorValueOperator
from rlkit.modules.actors import Actor, ProbabilisticActor, ValueOperator
from rlkit.modules.distributional import DistributionalQValueHook, DistributionalQValueModule
from rlkit.modules.qvalue import QValueHook, QValueModule
from rlkit.modules.qvalue_actors import DistributionalQValueActor, QValueActor

__all__ = [
    "Actor",
    "ActorValueOperator",
    "DistributionalQValueActor",
    "DistributionalQValueHook",
    "DistributionalQValueModule",
    "ProbabilisticActor",
    "QValueActor",
    "QValueHook",
    "QValueModule",
    "ValueOperator",
]
