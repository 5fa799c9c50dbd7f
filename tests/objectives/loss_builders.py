"""Batch and loss builders shared by the loss tests (imported by name: pytest puts this dir on sys.path)."""
from __future__ import annotations

from typing import Callable

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlkit.modules import (
    MLP,
    ActorValueOperator,
    Categorical,
    DistributionalQValueActor,
    ProbabilisticActor,
    QValueActor,
    ValueOperator,
)
from rlkit.objectives import A2CLoss, DistributionalDQNLoss, DQNLoss, LossModule


def transition_batch(
    batch_shape: tuple[int, ...] = (6,),
    *,
    obs_dim: int = 4,
    n_actions: int = 2,
    action_space: str = "categorical",
    terminated: torch.Tensor | bool = False,
    truncated: torch.Tensor | bool = False,
) -> TensorDict:
    """A random batch of transitions with rewards / flags under "next" (``[*B, 1]``)."""
    shape = torch.Size(batch_shape)
    index = torch.randint(n_actions, shape)
    action = index if action_space == "categorical" else torch.nn.functional.one_hot(index, n_actions)

    def flag(value: torch.Tensor | bool) -> torch.Tensor:
        return (torch.full((*shape, 1), value) if isinstance(value, bool) else value.reshape(*shape, 1)).bool()

    term, trunc = flag(terminated), flag(truncated)
    return TensorDict(
        {
            "observation": torch.randn(*shape, obs_dim),
            "action": action,
            "next": {
                "observation": torch.randn(*shape, obs_dim),
                "reward": torch.randn(*shape, 1),
                "terminated": term,
                "truncated": trunc,
                "done": term | trunc,
            },
        },
        batch_size=shape,
    )


ATOMS = 11


def build_dqn(**kwargs) -> LossModule:
    return DQNLoss(QValueActor(MLP(4, 2, [16]), action_space="categorical"), **kwargs)


def build_double_dqn(**kwargs) -> LossModule:
    return DQNLoss(QValueActor(MLP(4, 2, [16]), action_space="categorical"), double_dqn=True, **kwargs)


def build_c51(**kwargs) -> LossModule:
    net = nn.Sequential(MLP(4, ATOMS * 2, [16]), nn.Unflatten(-1, (ATOMS, 2)))
    actor = DistributionalQValueActor(net, torch.linspace(-3, 3, ATOMS), action_space="categorical")
    return DistributionalDQNLoss(actor, gamma=0.9, **kwargs)


def build_a2c(**kwargs) -> LossModule:
    logits = TensorDictModule(MLP(4, 2, [16]), ["observation"], ["logits"])
    actor = ProbabilisticActor(logits, ["logits"], distribution_class=Categorical)
    return A2CLoss(actor, ValueOperator(MLP(4, 1, [16])), **kwargs)


def build_a2c_shared(**kwargs) -> LossModule:
    common = TensorDictModule(MLP(4, 16, [16]), ["observation"], ["hidden"])
    policy = ProbabilisticActor(
        TensorDictModule(nn.Linear(16, 2), ["hidden"], ["logits"]), ["logits"], distribution_class=Categorical
    )
    op = ActorValueOperator(common, policy, ValueOperator(nn.Linear(16, 1), in_keys=["hidden"]))
    return A2CLoss(op.get_policy_operator(), op.get_value_operator(), **kwargs)


# (builder, batch shape): A2C's default estimator (GAE) needs a time dimension.
CASES: dict[str, tuple[Callable[..., LossModule], tuple[int, ...]]] = {
    "dqn": (build_dqn, (6,)),
    "double_dqn": (build_double_dqn, (6,)),
    "c51": (build_c51, (6,)),
    "a2c": (build_a2c, (3, 4)),
    "a2c_shared": (build_a2c_shared, (3, 4)),
}
