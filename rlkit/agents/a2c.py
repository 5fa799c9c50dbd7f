"""A2C's agent: an actor and a critic (MLPs, separate or with a shared trunk, or the user's
``algo.network``), :class:`~rlkit.objectives.A2CLoss`. Discrete actions: a categorical policy; Box
actions: a Gaussian (``algo.distribution``: ``normal`` with a state-independent log std as
stable-baselines3, ``tanh_normal`` squashed into the bounds, or ``gsde``, generalized state-dependent
exploration)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, cast

import gymnasium as gym
import numpy as np
from tensordict.nn import TensorDictModuleBase
from torch import nn

from rlkit import keys
from rlkit.agents.common import Agent, action_dim, is_box, num_actions, obs_dtype, obs_high, obs_shape, orthogonal_
from rlkit.agents.networks import ACTIVATIONS, check_network_config, is_builtin, make_network
from rlkit.config_schema import ConfigError, check, choice, positive
from rlkit.data import Bounded
from rlkit.envs import GymEnv
from rlkit.errors import EnvError
from rlkit.modules import (
    MLP,
    ActorValueOperator,
    Categorical,
    GaussianHead,
    GSDEExploration,
    GSDEHead,
    IndependentNormal,
    NormalParamExtractor,
    ProbabilisticActor,
    SafeModule,
    SafeSequential,
    SDENormal,
    TanhNormal,
    ValueOperator,
)
from rlkit.objectives import A2CLoss
from rlkit.registry import Algorithm, register_algorithm
from rlkit.trainers.trainer import LR_SCHEDULES

#: The largest ``|algo.log_std_init|``: the initial variance ``exp(2 log_std_init)`` stays a finite,
#: nonzero float32 (it overflows past 44 and is subnormal below -43).
LOG_STD_INIT_BOUND = 40

__all__ = ["A2C", "A2CConfig", "DISTRIBUTIONS", "build_a2c"]

#: ``algo.distribution`` choices: the action kind each one is for (``auto``: categorical for
#: discrete actions, normal for Box).
DISTRIBUTIONS: dict[str, str] = {"auto": "any", "categorical": "discrete", "normal": "box",
                                 "tanh_normal": "box", "gsde": "box"}


@dataclass
class A2CConfig:
    """``conf/algo/a2c.yaml``."""

    name: str
    num_envs: int
    n_steps: int
    hidden_sizes: List[int]
    activation: str
    network: Optional[Dict[str, Any]]
    shared_trunk: bool
    ortho_init: bool
    distribution: str
    log_std_init: float
    sde_sample_freq: int
    entropy_coeff: float
    critic_coeff: float
    loss_critic_type: str
    normalize_advantage: bool
    max_grad_norm: Optional[float]
    optim: Dict[str, Any]
    lr_schedule: str

    def __post_init__(self) -> None:
        positive("algo.num_envs", self.num_envs)
        positive("algo.n_steps", self.n_steps)
        check_network_config(self.hidden_sizes, self.activation, self.network)
        choice("algo.distribution", self.distribution, tuple(DISTRIBUTIONS))
        choice("algo.loss_critic_type", self.loss_critic_type, ("l2", "l1", "smooth_l1"))
        choice("algo.lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check(self.entropy_coeff >= 0, "algo.entropy_coeff", self.entropy_coeff, "a number >= 0")
        check(self.critic_coeff >= 0, "algo.critic_coeff", self.critic_coeff, "a number >= 0")
        # (its variance exp(2 log_std) must be a finite, nonzero float32: log_std_init=100 stopped the
        # run with a non-finite loss at its first update)
        check(-LOG_STD_INIT_BOUND <= self.log_std_init <= LOG_STD_INIT_BOUND, "algo.log_std_init", self.log_std_init,
              f"a number in [-{LOG_STD_INIT_BOUND}, {LOG_STD_INIT_BOUND}] (the log of the initial standard "
              "deviation, whose square must be a finite, nonzero float32)")
        check(self.sde_sample_freq == -1 or self.sde_sample_freq > 0, "algo.sde_sample_freq", self.sde_sample_freq,
              "-1 (new exploration weights once per rollout) or a positive number of steps")
        if self.max_grad_norm is not None:
            positive("algo.max_grad_norm", self.max_grad_norm)
        if self.network is not None and self.distribution == "gsde" and not self.shared_trunk:
            raise ConfigError("algo.distribution='gsde' reads the actor's last hidden features: with algo.network "
                              "set, use algo.shared_trunk=true (the network's features) or choose 'normal' or "
                              "'tanh_normal'")


def _distribution(algo: Any, env: GymEnv) -> str:
    """``algo.distribution`` resolved for the env's action space (``auto``), or refused when it
    cannot act there."""
    box = is_box(env)
    name = algo.distribution
    if name == "auto":
        return "normal" if box else "categorical"
    wants = DISTRIBUTIONS[name]
    if (wants == "box") != box:
        space = env.vector_env.single_action_space
        fits = [d for d, kind in DISTRIBUTIONS.items() if kind in ("any", "box" if box else "discrete")]
        raise EnvError(f"algo.distribution={name!r} acts in {'Box' if wants == 'box' else 'discrete'} action spaces; "
                       f"env {env.env_id!r} has {space}; valid choices here: {fits}")
    if name == "tanh_normal":
        space = cast(gym.spaces.Box, env.vector_env.single_action_space)  # (a Box: checked above)
        if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise EnvError(f"algo.distribution='tanh_normal' squashes actions into the action space's bounds; env "
                           f"{env.env_id!r} has {space}, with infinite bounds; valid choices here: ['normal', 'gsde']")
        if not (space.low < space.high).all():
            raise EnvError(f"algo.distribution='tanh_normal' squashes actions into the action space's bounds; env "
                           f"{env.env_id!r} has {space}, where some low is not below its high (no interval to "
                           f"squash into); valid choices here: ['normal', 'gsde']")
    return name


def build_a2c(settings: Any, env: GymEnv) -> Agent:
    """The A2C agent of the validated ``settings`` for ``env``.

    The actor and the critic are MLPs (``algo.hidden_sizes``, ``algo.activation``; sharing their
    trunk when ``algo.shared_trunk``) or the user's ``algo.network``, with stable-baselines3's
    orthogonal initialisation when ``algo.ortho_init`` (gains sqrt(2) in the trunk, 0.01 on the
    policy output, 1 on the value output; a user's network keeps its own). The policy is
    ``algo.distribution``'s (see :data:`DISTRIBUTIONS`); it samples when acting (no separate
    exploration, except gSDE's weights, redrawn before each rollout) and acts on its mode in
    evaluations. The loss is an :class:`~rlkit.objectives.A2CLoss`.
    """
    algo = settings.algo
    act = ACTIVATIONS[algo.activation]
    shape, hidden = obs_shape(env), list(algo.hidden_sizes)
    dist = _distribution(algo, env)
    ortho = algo.ortho_init and is_builtin(algo)
    exploration = None

    def init(module: nn.Module, gain: float) -> nn.Module:
        return orthogonal_(module, gain) if ortho else module

    def net(in_key: str, in_dim: int, out: int, cells: list[int], last_gain: float, what: str,
            warn: bool = True) -> nn.Module:
        """``algo.network`` on observations, else an MLP ``in_dim -> out`` (a linear layer on a trunk's
        features); ``warn``: its build warnings (the actor's network says them for the critic's too)."""
        if in_key == keys.OBSERVATION and algo.network is not None:
            module = make_network(algo, shape, out, what=what, obs_dtype=obs_dtype(env), obs_high=obs_high(env),
                                  env_id=env.env_id, warn=warn)
        else:
            if in_key == keys.OBSERVATION and len(shape) != 1:
                make_network(algo, shape, out, what=what, env_id=env.env_id)  # refuses image observations, naming the fix
            module = MLP(in_dim, out, cells, activation_class=act)
        init(module, 2 ** 0.5)
        init(list(module.modules())[-1], last_gain)
        return module

    def policy_head(in_key: str, in_dim: int, cells: list[int]) -> TensorDictModuleBase:
        nonlocal exploration
        if dist == "categorical":
            n = num_actions(env, "a2c", "a 1-D Box (algo.distribution=normal, tanh_normal or gsde)")
            logits = net(in_key, in_dim, n, cells, 0.01, "the actor")
            return ProbabilisticActor(SafeModule(logits, in_keys=[in_key], out_keys=[keys.LOGITS]),
                                      in_keys=[keys.LOGITS], spec=env.action_spec,
                                      distribution_class=Categorical)  # A2C recomputes log-probs
        n = action_dim(env)
        if dist == "normal":
            head: nn.Module = GaussianHead(net(in_key, in_dim, n, cells, 0.01, "the actor"), n, algo.log_std_init)
            return ProbabilisticActor(SafeModule(head, in_keys=[in_key], out_keys=[keys.LOC, keys.SCALE]),
                                      in_keys=[keys.LOC, keys.SCALE], spec=env.action_spec,
                                      distribution_class=IndependentNormal)
        if dist == "tanh_normal":
            head = nn.Sequential(net(in_key, in_dim, 2 * n, cells, 0.01, "the actor"), NormalParamExtractor())
            spec = env.action_spec
            assert isinstance(spec, Bounded)  # (a Box action space's spec)
            return ProbabilisticActor(SafeModule(head, in_keys=[in_key], out_keys=[keys.LOC, keys.SCALE]),
                                      in_keys=[keys.LOC, keys.SCALE], spec=spec, distribution_class=TanhNormal,
                                      distribution_kwargs={"low": spec.low, "high": spec.high})
        # gsde: the noise reads the last hidden features, so the trunk and the head are separate modules
        modules: list[TensorDictModuleBase] = []
        features_key, width = in_key, in_dim
        if cells:
            trunk = init(nn.Sequential(MLP(in_dim, cells[-1], cells[:-1], activation_class=act), act()), 2 ** 0.5)
            modules.append(SafeModule(trunk, in_keys=[in_key], out_keys=[keys.ACTOR_FEATURES]))
            features_key, width = keys.ACTOR_FEATURES, cells[-1]
        sde = GSDEHead(width, n, algo.log_std_init, num_envs=algo.num_envs, sample_freq=algo.sde_sample_freq)
        init(sde.mean, 0.01)
        exploration = GSDEExploration(sde)
        modules.append(SafeModule(sde, in_keys=[features_key], out_keys=[keys.LOC, keys.SCALE, keys.NOISE]))
        params = modules[0] if len(modules) == 1 else SafeSequential(*modules)
        return ProbabilisticActor(params, in_keys=[keys.LOC, keys.SCALE, keys.NOISE], spec=env.action_spec,
                                  distribution_class=SDENormal)

    def value_head(in_key: str, in_dim: int, cells: list[int]) -> ValueOperator:
        return ValueOperator(net(in_key, in_dim, 1, cells, 1.0, "the critic", warn=False), in_keys=[in_key])

    actor: TensorDictModuleBase
    critic: TensorDictModuleBase
    if algo.shared_trunk:
        if algo.network is not None:
            trunk = init(make_network(algo, shape, None, what="the shared trunk", obs_dtype=obs_dtype(env), obs_high=obs_high(env), env_id=env.env_id), 2 ** 0.5)
            width = int(getattr(trunk, "features_dim"))
        else:
            if len(shape) != 1:
                make_network(algo, shape, None, what="the shared trunk", env_id=env.env_id)  # refuses image observations
            trunk = init(nn.Sequential(MLP(shape[0], hidden[-1], hidden[:-1], activation_class=act), act()), 2 ** 0.5)
            width = hidden[-1]
        operator = ActorValueOperator(SafeModule(trunk, in_keys=[keys.OBSERVATION], out_keys=[keys.HIDDEN]),
                                      policy_head(keys.HIDDEN, width, []), value_head(keys.HIDDEN, width, []))
        actor, critic = operator.get_policy_operator(), operator.get_value_operator()
    else:
        in_dim = shape[0] if len(shape) == 1 else 0  # (image observations go to algo.network, by shape)
        actor, critic = policy_head(keys.OBSERVATION, in_dim, hidden), value_head(keys.OBSERVATION, in_dim, hidden)
    loss = A2CLoss(actor, critic, entropy_bonus=algo.entropy_coeff > 0, entropy_coeff=algo.entropy_coeff,
                   critic_coeff=algo.critic_coeff, loss_critic_type=algo.loss_critic_type,
                   normalize_advantage=algo.normalize_advantage)
    return Agent(loss=loss, policy=actor, greedy_policy=actor, exploration=exploration)


A2C = register_algorithm(Algorithm(name="a2c", schema=A2CConfig, loss=A2CLoss, build_agent=build_a2c,
                                   action_spaces=("discrete", "box"), action_masks=False,
                                   restored_on_resume=("optim", "log_std_init"), stacked_seeds=True))
