"""Policies, value networks and exploration, as ``tensordict.nn`` modules.

Every rlkit module's computation is a public method on tensors, ``act`` (see
:mod:`rlkit.modules.tensor_call`); its TensorDict call is a thin wrapper over it.

Examples:
    >>> import torch
    >>> from tensordict import TensorDict
    >>> from rlkit.data import OneHot
    >>> from rlkit.modules import MLP, QValueActor
    >>> actor = QValueActor(MLP(4, 2, num_cells=[16]), spec=OneHot(2))
    >>> actor(TensorDict(observation=torch.randn(3, 4), batch_size=[3]))["action"].shape
    torch.Size([3, 2])
"""
from __future__ import annotations

from rlkit.modules._action_space import (
    ActionSpace,
    action_space_from_spec,
    canonical_action_space,
    check_action_layout,
    chosen_value,
    greedy_action,
)
from rlkit.modules.actor_value import ActorValueOperator
from rlkit.modules.actors import Actor, ProbabilisticActor, SafeModule, SafeSequential, Sampler, ValueOperator
from rlkit.modules.distributional import (
    DistributionalQValueHook,
    DistributionalQValueModule,
    expected_action_values,
)
from rlkit.modules.distributions import (
    Categorical,
    IndependentNormal,
    NormalParamExtractor,
    OneHotCategorical,
    SDENormal,
    TanhNormal,
    sample,
    sample_and_log_prob,
)
from rlkit.modules.exploration import (
    EGreedyModule,
    ExplorationType,
    exploration_type,
    set_exploration_type,
)
from rlkit.modules.conv import ConvNet, MinAtarNet, NatureCNN
from rlkit.modules.egreedy_policy import EGreedyPolicy
from rlkit.modules.gaussian import GaussianHead, GSDEExploration, GSDEHead
from rlkit.modules.mlp import MLP
from rlkit.modules.qvalue import QValueHook, QValueModule
from rlkit.modules.qvalue_actors import DistributionalQValueActor, QValueActor
from rlkit.modules.tensor_call import TensorModule, action_call, recording_graph, tensor_call

__all__ = [
    "ActionSpace",
    "Actor",
    "ActorValueOperator",
    "Categorical",
    "ConvNet",
    "DistributionalQValueActor",
    "DistributionalQValueHook",
    "DistributionalQValueModule",
    "EGreedyModule",
    "EGreedyPolicy",
    "ExplorationType",
    "GSDEExploration",
    "GSDEHead",
    "GaussianHead",
    "IndependentNormal",
    "MLP",
    "MinAtarNet",
    "NatureCNN",
    "NormalParamExtractor",
    "OneHotCategorical",
    "ProbabilisticActor",
    "QValueActor",
    "QValueHook",
    "QValueModule",
    "SafeModule",
    "SafeSequential",
    "SDENormal",
    "Sampler",
    "TanhNormal",
    "TensorModule",
    "ValueOperator",
    "action_call",
    "action_space_from_spec",
    "canonical_action_space",
    "check_action_layout",
    "chosen_value",
    "exploration_type",
    "expected_action_values",
    "greedy_action",
    "recording_graph",
    "sample",
    "sample_and_log_prob",
    "set_exploration_type",
    "tensor_call",
]
