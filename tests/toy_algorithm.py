"""A toy algorithm defined outside rlkit: a contextual bandit's Q-regression (its loss, config schema and
agent builder), registered by the tests that use it (``test_registry``) or by importing
``toy_algorithm_plugin`` (a run's ``imports``)."""
from __future__ import annotations

from dataclasses import dataclass

from tensordict import TensorDict, TensorDictBase

from rlkit import keys
from rlkit.agents.common import Agent, OffPolicyConfig, egreedy, num_actions, obs_dim
from rlkit.modules import MLP, EGreedyPolicy, QValueActor
from rlkit.objectives import LossModule, ValueEstimators
from rlkit.registry import Algorithm


class BanditLoss(LossModule):
    """Regresses Q(s, a) on the immediate reward (a contextual bandit's value): a loss of its own."""

    @dataclass
    class _AcceptedKeys:
        action: str = keys.ACTION

    default_value_estimator = ValueEstimators.TD0
    supported_value_estimators = (ValueEstimators.TD0,)

    def __init__(self, actor: QValueActor) -> None:
        super().__init__()
        self.convert_to_functional(actor, "value_network", create_target_params=True)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        actor = self.value_network
        values = actor.action_values(tensordict.get(keys.OBSERVATION))
        chosen = values.gather(-1, tensordict.get(keys.ACTION).unsqueeze(-1))
        loss = (chosen - tensordict.get(keys.next_(keys.REWARD))).pow(2).mean()
        return TensorDict({"loss_value": loss}, batch_size=[])


@dataclass
class BanditConfig(OffPolicyConfig):
    """The toy's ``algo`` section: the off-policy fields, nothing more."""


def build_bandit(settings, env) -> Agent:
    algo = settings.algo
    actor = QValueActor(MLP(obs_dim(env), num_actions(env, algo.name), algo.hidden_sizes), spec=env.action_spec)
    explore = egreedy(algo, env)
    return Agent(loss=BanditLoss(actor), policy=EGreedyPolicy(actor, explore), greedy_policy=actor,
                 exploration=explore)


def bandit_entry(name: str) -> Algorithm:
    """The toy's registry entry under ``name``."""
    return Algorithm(name=name, schema=BanditConfig, loss=BanditLoss, build_agent=build_bandit,
                     replay_keys=lambda agent: [keys.OBSERVATION, keys.ACTION, keys.next_(keys.REWARD)])
