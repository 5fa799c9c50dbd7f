"""Typed settings -> env, policy, loss, optimiser, replay buffer, collector, trainer.

Everything here takes the validated dataclasses of :mod:`rlkit.config_schema` (no config objects):
observation and action sizes come from the environment's specs, never from YAML. Adding an algorithm
means: a schema in ``config_schema.py``, a ``conf/algo/<name>.yaml``, a loss in the registry, and a
``_build_<name>`` function registered in :data:`AGENT_BUILDERS` below.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tensordict.nn import TensorDictModule
from tensordict.utils import unravel_key
from torch import nn

from rlkit.collectors import Collector
from rlkit.config_schema import EVAL_SEED_OFFSET
from rlkit.errors import EnvError, ResourceError
from rlkit.data import Categorical, OneHot, PrioritizedReplayBuffer, ReplayBuffer
from rlkit.envs import GymEnv
from rlkit.modules import (
    MLP,
    ActorValueOperator,
    DistributionalQValueActor,
    EGreedyModule,
    EGreedyPolicy,
    ProbabilisticActor,
    QValueActor,
    SafeModule,
    ValueOperator,
)
from rlkit.modules import Categorical as CategoricalDist
from rlkit.objectives import HardUpdate, SoftUpdate
from rlkit.objectives.registry import LOSSES
from rlkit.trainers import (
    ConsoleLogger,
    CSVLogger,
    Evaluator,
    Logger,
    MultiLogger,
    TensorBoardLogger,
    Trainer,
    TrainerSettings,
    WandbLogger,
)
from rlkit.trainers.episodes import EpisodeRecorder



@dataclass
class Agent:
    """What an algorithm builder returns."""

    loss: Any
    policy: Any  # the acting policy used by the collector (with exploration)
    greedy_policy: Any  # used for evaluation
    exploration: Any = None


def build_optimizer(optim: dict, params) -> torch.optim.Optimizer:
    """Instantiates ``optim`` (``_target_`` + keyword arguments, validated by the builder) over ``params``."""
    module_name, cls_name = optim["_target_"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(params, **{k: v for k, v in optim.items() if k != "_target_"})


def make_env(settings, *, num_envs: int, seed: int) -> GymEnv:
    """The training or evaluation env of ``settings.env``.

    Raises:
        EnvError: the env cannot be built (a missing extra, a keyword its constructor refuses, ...).
    """
    env = settings.env
    try:
        return GymEnv(env.id, num_envs=num_envs, seed=seed, vectorization=env.vectorization,
                      device=settings.root.device, make_kwargs=dict(env.make_kwargs))
    except Exception as err:  # gymnasium and env constructors raise anything; the first line says why
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        kwargs = f" with env.make_kwargs={dict(env.make_kwargs)}" if env.make_kwargs else ""
        raise EnvError(f"env {env.id!r} could not be built{kwargs}: {detail}") from err


def _obs_dim(env: GymEnv) -> int:
    shape = env.observation_spec["observation"].shape
    if len(shape) != 1:
        raise EnvError(f"env {env.env_id!r} has observations of shape {tuple(shape)}; rlkit's MLP networks "
                       "take flat observations (shape (n,))")
    return int(shape[0])


def _num_actions(env: GymEnv, algo: str) -> int:
    spec = env.action_spec
    if not isinstance(spec, (Categorical, OneHot)):
        raise EnvError(f"env {env.env_id!r} has action space {env.vector_env.single_action_space}; algo={algo} "
                       "supports discrete (Discrete) action spaces only")
    return spec.n


def _mask_key(env: GymEnv) -> str | None:
    return "action_mask" if "action_mask" in env.observation_spec.keys() else None


def _egreedy(algo, env: GymEnv) -> EGreedyModule:
    return EGreedyModule(env.action_spec, eps_init=algo.eps_init, eps_end=algo.eps_end,
                         annealing_num_steps=algo.eps_annealing_frames, action_mask_key=_mask_key(env))


def _build_dqn(settings, env: GymEnv) -> Agent:
    algo = settings.algo
    net = MLP(_obs_dim(env), _num_actions(env, "dqn"), algo.hidden_sizes)
    actor = QValueActor(net, in_keys=["observation"], spec=env.action_spec, action_mask_key=_mask_key(env))
    loss = LOSSES["dqn"](actor, loss_function=algo.loss_function, delay_value=True, double_dqn=algo.double_dqn)
    explore = _egreedy(algo, env)
    return Agent(loss=loss, policy=EGreedyPolicy(actor, explore), greedy_policy=actor, exploration=explore)


def _build_c51(settings, env: GymEnv) -> Agent:
    algo = settings.algo
    n = _num_actions(env, "c51")
    net = nn.Sequential(MLP(_obs_dim(env), n * algo.n_atoms, algo.hidden_sizes), nn.Unflatten(-1, (algo.n_atoms, n)))
    support = torch.linspace(algo.v_min, algo.v_max, algo.n_atoms)
    actor = DistributionalQValueActor(net, support, in_keys=["observation"], spec=env.action_spec,
                                      action_mask_key=_mask_key(env))
    loss = LOSSES["c51"](actor, delay_value=True, double_dqn=algo.double_dqn)
    explore = _egreedy(algo, env)
    return Agent(loss=loss, policy=EGreedyPolicy(actor, explore), greedy_policy=actor, exploration=explore)


def _orthogonal_(module: nn.Module, gain: float) -> nn.Module:
    # stable-baselines3's initialisation, which its A2C settings were tuned with.
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return module


def _build_a2c(settings, env: GymEnv) -> Agent:
    algo = settings.algo
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[algo.activation]
    obs, n, hidden = _obs_dim(env), _num_actions(env, "a2c"), list(algo.hidden_sizes)

    def policy_head(in_key: str, in_dim: int, cells: list[int]) -> ProbabilisticActor:
        logits = _orthogonal_(MLP(in_dim, n, cells, activation_class=act), 2 ** 0.5)
        _orthogonal_(list(logits.modules())[-1], 0.01)
        return ProbabilisticActor(TensorDictModule(logits, in_keys=[in_key], out_keys=["logits"]),
                                  in_keys=["logits"], spec=env.action_spec,
                                  distribution_class=CategoricalDist)  # A2C recomputes log-probs

    def value_head(in_key: str, in_dim: int, cells: list[int]) -> ValueOperator:
        value = _orthogonal_(MLP(in_dim, 1, cells, activation_class=act), 2 ** 0.5)
        _orthogonal_(list(value.modules())[-1], 1.0)
        return ValueOperator(value, in_keys=[in_key])

    if algo.shared_trunk:
        trunk = _orthogonal_(nn.Sequential(MLP(obs, hidden[-1], hidden[:-1], activation_class=act), act()), 2 ** 0.5)
        operator = ActorValueOperator(SafeModule(trunk, in_keys=["observation"], out_keys=["hidden"]),
                                      policy_head("hidden", hidden[-1], []), value_head("hidden", hidden[-1], []))
        actor, critic = operator.get_policy_operator(), operator.get_value_operator()
    else:
        actor, critic = policy_head("observation", obs, hidden), value_head("observation", obs, hidden)
    loss = LOSSES["a2c"](actor, critic, entropy_bonus=algo.entropy_coeff > 0, entropy_coeff=algo.entropy_coeff,
                         critic_coeff=algo.critic_coeff, loss_critic_type=algo.loss_critic_type,
                         normalize_advantage=algo.normalize_advantage)
    return Agent(loss=loss, policy=actor, greedy_policy=actor)


AGENT_BUILDERS: dict[str, Callable[[Any, GymEnv], Agent]] = {
    "dqn": _build_dqn, "c51": _build_c51, "a2c": _build_a2c,
}


def _estimator_kwargs(est) -> dict:
    return {k: v for k, v in vars(est).items() if k != "name"}


def replay_keys(policy_in_keys: list, *, slices: bool) -> list:
    """What the DQN / C51 losses read from a replayed transition: the Q-network's inputs now and next,
    the action, the next reward and flags (``done`` and ``terminated``; ``truncated`` follows from
    them), plus the trajectory ids and step counts that slice sampling needs. The collector's other
    entries are not stored."""
    inputs = [unravel_key(k) for k in policy_in_keys]
    keys = [*inputs, "action", *(("next", *_as_tuple(k)) for k in inputs),
            ("next", "reward"), ("next", "terminated"), ("next", "done")]
    return keys + ["traj_id", "step_count"] if slices else keys


def _as_tuple(key) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def make_loggers(settings, run_dir: Path, config: dict, resume_state: dict | None = None) -> Logger:
    """Console progress plus the configured logger (``none`` = console only).

    On resume (``resume_state`` = the checkpoint), ``metrics.csv`` keeps the rows logged up to it.
    """
    start = int(resume_state["frames"]) if resume_state else 0
    keep_rows = int(resume_state["log_rows"]) if resume_state else None
    log = settings.logger
    loggers: list[Logger] = []
    if settings.root.trainer.progress:
        loggers.append(ConsoleLogger(settings.root.total_frames, start_frames=start))
    if log.name != "none":
        loggers.append(CSVLogger(run_dir, keep_rows=keep_rows))
    if log.name == "wandb":
        loggers.append(WandbLogger(run_dir, project=log.project, group=log.group, mode=log.mode,
                                   config=config, tags=list(log.tags), name=run_dir.name,
                                   resume=resume_state is not None))
    elif log.name == "tensorboard":
        loggers.append(TensorBoardLogger(run_dir))
    return MultiLogger(loggers)


def open_outputs(trainer: Trainer, settings, run_dir: Path, config: dict, resume_state: dict | None = None) -> None:
    """Attaches the parts of a run that write files: loggers and the episode recorder. On resume they
    drop the rows written after the checkpoint, so call this only once the checkpoint is known to fit."""
    episodes = EpisodeRecorder(run_dir, keep_until_frame=int(resume_state["frames"]) if resume_state else None)
    trainer.attach_outputs(make_loggers(settings, run_dir, config, resume_state), episodes)


def replay_layout(env: GymEnv, keys: list) -> dict:
    """Per-item shape and dtype of each replayed entry, from the env's specs (what the collector
    writes: observations as the spec says, the action as the policy writes it, rewards float32 and
    flags bool with a trailing singleton, trajectory ids and step counts int64)."""
    obs = env.observation_spec
    action = env.action_spec
    layout = {}
    for key in keys:
        name = key[-1] if isinstance(key, tuple) else key
        if name in ("traj_id", "step_count"):
            layout[key] = ((), torch.int64)
        elif name == "reward":
            layout[key] = ((1,), torch.float32)
        elif name in ("terminated", "truncated", "done"):
            layout[key] = ((1,), torch.bool)
        elif key == "action":
            layout[key] = (tuple(action.shape), action.dtype)
        else:
            spec = obs[name]
            layout[key] = (tuple(spec.shape), spec.dtype)
    return layout


def check_memory(what: str, nbytes: int, device: torch.device, setting: str) -> None:
    """Refuses a run whose ``what`` needs more memory than ``device`` has free.

    Raises:
        ResourceError: naming the setting, both amounts and the total.
    """
    free, total = _free_memory(device)
    if free is not None and nbytes > free:
        raise ResourceError(
            f"{setting}: the {what} needs {_gib(nbytes)} of {device.type} memory; this machine has "
            f"{_gib(free)} available ({_gib(total)} in all)"
        )


def _free_memory(device: torch.device) -> tuple[int | None, int | None]:
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return free, total
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
        return info.get("MemAvailable", info.get("MemFree")), info.get("MemTotal")
    except (OSError, ValueError, IndexError):
        import os

        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None, None
        return total, total


def _gib(nbytes: int | None) -> str:
    if nbytes is None:
        return "?"
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20)):
        if nbytes >= size:
            return f"{nbytes / size:.1f} {unit}"
    return f"{nbytes} bytes"


def build_trainer(settings, run_dir: Path) -> Trainer:
    """Builds every component of a run and the :class:`Trainer` that drives them, in memory: nothing
    is written until :func:`open_outputs` (so a resumed state can be checked first).

    Raises:
        EnvError: the env cannot be built or its spaces do not fit the algorithm.
        ResourceError: the replay buffer would not fit in memory.
    """
    root, algo = settings.root, settings.algo
    device = torch.device(root.device)
    env = make_env(settings, num_envs=algo.num_envs, seed=root.seed)
    eval_env = None
    try:
        agent = AGENT_BUILDERS[algo.name](settings, env)
        agent.loss.make_value_estimator(settings.value_estimator.name, **_estimator_kwargs(settings.value_estimator))
        agent.loss.to(device)
        agent.policy.to(device)
        optimizer = build_optimizer(algo.optim, agent.loss.parameters())

        off_policy = algo.name in ("dqn", "c51")
        per_env = algo.train_frequency if off_policy else algo.n_steps
        trainer_cfg = root.trainer
        ts = TrainerSettings(
            total_frames=root.total_frames, log_interval=trainer_cfg.log_interval,
            eval_interval=trainer_cfg.eval_interval, checkpoint_interval=trainer_cfg.checkpoint_interval,
            keep_checkpoints=trainer_cfg.keep_checkpoints,
            early_stop_return=settings.env.target_return if trainer_cfg.early_stop else None,
            max_grad_norm=algo.max_grad_norm,
        )
        buffer = updater = None
        if off_policy:
            generator = torch.Generator(device=device).manual_seed(root.seed)
            multi_step = settings.value_estimator.name in ("td1", "td_lambda")
            keys = replay_keys(agent.greedy_policy.in_keys, slices=multi_step)
            layout = replay_layout(env, keys)
            if algo.prioritized:
                updates = max(1, (root.total_frames - algo.learning_starts) // (per_env * algo.num_envs))
                buffer = PrioritizedReplayBuffer(algo.buffer_size, alpha=algo.alpha, beta=algo.beta,
                                                 beta_annealing_steps=updates * algo.updates_per_batch,
                                                 device=device, generator=generator, layout=layout)
                agent.loss.set_keys(priority="td_error")
            else:
                buffer = ReplayBuffer(algo.buffer_size, device=device, generator=generator, layout=layout)
            check_memory("replay buffer", buffer.nbytes, device, f"algo.buffer_size={algo.buffer_size}")
            ts.batch_size, ts.learning_starts = algo.batch_size, algo.learning_starts
            ts.updates_per_batch = algo.updates_per_batch
            ts.slice_len = getattr(algo, "slice_len", None) if multi_step else None
            updater = (SoftUpdate(agent.loss, tau=algo.tau) if algo.tau is not None
                       else HardUpdate(agent.loss, value_network_update_interval=algo.target_update_interval))
        # Off-policy batches go straight into the replay buffer: flat [N * T], env-major.
        collector = Collector(env, agent.policy, frames_per_batch=per_env * algo.num_envs,
                              total_frames=root.total_frames, layout="flat" if off_policy else "time")
        eval_env = make_env(settings, num_envs=trainer_cfg.eval_episodes, seed=root.seed + EVAL_SEED_OFFSET)
        evaluator = Evaluator(eval_env, agent.greedy_policy, seed=root.seed + EVAL_SEED_OFFSET)
    except BaseException:
        env.close()
        if eval_env is not None:
            eval_env.close()
        raise
    return Trainer(collector=collector, loss_module=agent.loss, optimizer=optimizer, run_dir=run_dir, settings=ts,
                   replay_buffer=buffer, target_updater=updater, exploration=agent.exploration,
                   evaluator=evaluator)
