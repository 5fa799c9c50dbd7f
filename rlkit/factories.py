"""Validated settings -> env, agent, optimiser, replay buffer, collector, evaluator, trainer.

Everything here takes the validated dataclasses of :func:`rlkit.builders.validate_config` (no config
objects): observation and action sizes come from the environment's specs, never from YAML. What
differs between algorithms is read from their :mod:`rlkit.registry` entry (how to build the agent,
off- or on-policy, the replay keys and slices); nothing here knows an algorithm by name.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import logging
import math
import os
import random
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

import torch
from tensordict.utils import NestedKey
from torch import distributions as D

from rlkit import keys
from rlkit.agents import Agent
from rlkit.agents.common import action_kind
from rlkit.collectors import Collector
from rlkit.collectors.multiseed import MultiSeedCollector
from rlkit.config_schema import EVAL_SEED_OFFSET
from rlkit.data import PrioritizedReplayBuffer, ReplayBuffer
from rlkit.data.seed_replay import seed_replay
from rlkit.data.frames import FrameStorage
from rlkit.envs import GymEnv
from rlkit.envs.suites import get_suite
from rlkit.envs.transforms import EnvTransform, build_transforms
from rlkit.errors import ConfigError, EnvError, LoggerError, NotStackableError, ResourceError, RlkitError
from rlkit.modules import EGreedyModule
from rlkit.modules.mlp import stack_seed_parameters_
from rlkit.objectives import HardUpdate, SoftUpdate
from rlkit.objectives.value import get_estimator_class
from rlkit.optim import RMSpropTF
from rlkit.registry import ALGORITHMS, get_algorithm
from rlkit.trainers import (
    ConsoleLogger,
    CSVLogger,
    Evaluator,
    Logger,
    MultiLogger,
    TensorBoardLogger,
    Trainer,
    TrainerCallback,
    TrainerSettings,
    WandbLogger,
)
from rlkit.trainers.episodes import EpisodeRecorder
from rlkit.trainers.multiseed import MultiSeedEvaluator, MultiSeedTrainer, seed_views
from rlkit.trainers.video import VideoRecorder, VideoWrappers, check_video_support, video_wrappers
from rlkit.utils.seeds import SeedStreams

log = logging.getLogger(__name__)


def build_optimizer(optim: dict, params) -> torch.optim.Optimizer:
    """Instantiates ``optim`` (``_target_`` + keyword arguments, validated by the builder; a null
    argument is left at the class's default) over ``params``.

    An optimiser that takes ``foreach`` and is given neither ``foreach`` nor ``fused: true`` gets
    ``foreach=True``: torch's multi-tensor kernels, which on CPU apply the single-tensor kernel's
    operations tensor by tensor (the same numbers, bit for bit: ``tests/test_optim.py``) without
    its Python loop, and on CUDA are torch's own default.

    Examples:
        >>> import torch
        >>> from rlkit.factories import build_optimizer
        >>> build_optimizer({"_target_": "torch.optim.Adam", "lr": 1e-3, "fused": None},
        ...                 [torch.nn.Parameter(torch.zeros(2))]).defaults["foreach"]
        True
    """
    module_name, cls_name = optim["_target_"].rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), cls_name)
    kwargs = {k: v for k, v in optim.items() if k != "_target_" and v is not None}
    if "foreach" not in kwargs and not kwargs.get("fused") and "foreach" in inspect.signature(cls).parameters:
        kwargs["foreach"] = True
    return cls(params, **kwargs)


def make_env(settings: Any, *, num_envs: int, seed: int, evaluating: GymEnv | Sequence[EnvTransform] | None = None,
             render: bool = False, extra_wrappers: Sequence[Callable[[gym.Env], gym.Env]] = ()) -> GymEnv:
    """The training env of ``settings.env`` (its wrappers and transforms built from ``env.transforms``,
    reward normalisation discounting with the value estimator's ``gamma``), or, with ``evaluating``
    (the training env, or its transforms), the evaluation env: the same wrappers, and the training
    env's transforms frozen (its statistics, never updated; rewards as the env gives them).

    The evaluation env has the training env's ``env.vectorization``, but ``"single"`` becomes
    ``"auto"`` for several sub-envs (one per evaluation episode).

    ``render`` makes every sub-env with ``render_mode="rgb_array"``; ``extra_wrappers`` wrap every
    sub-env last (e.g. gymnasium's ``RecordVideo``; sub-envs are then stepped in a loop, never by a
    native vector env).

    Raises:
        EnvError: the env cannot be built (a missing extra, a keyword its constructor refuses, ...).
    """
    env = settings.env
    gamma = getattr(settings.value_estimator, "gamma", 0.99)
    resolved = get_suite(env.suite).resolve(env.id, env.game, env.options)
    wrappers, transforms = build_transforms(env.transforms, gamma)
    transforms = [*build_transforms(resolved.train_transforms, gamma)[1], *transforms]  # the suite's come first
    suite_wrappers = resolved.eval_wrappers if evaluating is not None else resolved.train_wrappers
    if evaluating is not None:
        trained = evaluating.transforms if isinstance(evaluating, GymEnv) else evaluating
        transforms = [transform.frozen() for transform in trained]
    make_kwargs = {**resolved.make_kwargs, **env.make_kwargs, **({"render_mode": "rgb_array"} if render else {})}
    vectorization = env.vectorization
    if evaluating is not None and vectorization == "single" and num_envs > 1:
        vectorization = "auto"  # one env per evaluation episode: 'single' drives one env only
    try:
        return GymEnv(resolved.env_id, num_envs=num_envs, seed=seed, vectorization=vectorization,
                      device=settings.root.device, make_kwargs=make_kwargs,
                      wrappers=[*suite_wrappers, *wrappers, *extra_wrappers], transforms=transforms)
    except Exception as err:  # gymnasium and env constructors raise anything; the first line says why
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, LookupError) and str(err).strip():
            detail = f"{type(err).__name__}: {detail}"  # its message is the bare key ('9x9')
        kwargs = f" with env.make_kwargs={dict(env.make_kwargs)}" if env.make_kwargs else ""
        raise EnvError(f"env {resolved.env_id!r} could not be built{kwargs}: {detail}") from err


def _estimator_kwargs(est: Any) -> dict:
    return {k: v for k, v in vars(est).items() if k != "name"}


def make_loggers(settings, run_dir: Path, config: dict, resume_state: dict | None = None, *, label: str = "",
                 plain_progress: bool | None = None, backend: list[Logger] | None = None) -> Logger:
    """Console progress plus the configured logger (``none`` = console only).

    On resume (``resume_state`` = the checkpoint), ``metrics.csv`` keeps the rows logged up to it.
    The logger's own backend (a wandb run, a TensorBoard writer) starts first, before any file of
    the run changes: what fails for reasons outside rlkit (wandb online without an API key) fails
    with the run's files as they were.
    ``label`` prefixes the console's lines (a sweep job's ``[job 3 seed=1]``); ``plain_progress``
    chooses plain lines (``True``) or a bar (``False``), by default a bar when stderr is a terminal.
    ``backend``: the backend started already (:func:`start_logger_backends`), as a resume does before
    it changes anything.

    Raises:
        LoggerError: the backend could not start (naming it and its error).
    """
    start = int(resume_state["frames"]) if resume_state else 0
    keep_rows = int(resume_state["log_rows"]) if resume_state else None
    log = settings.logger
    if backend is None:
        backend = _start_backend(settings, run_dir, config, resume=resume_state is not None, resumed_at=start if
                                 resume_state else None)
    loggers: list[Logger] = []
    if settings.root.trainer.progress:
        loggers.append(ConsoleLogger(settings.root.total_frames, start_frames=start, label=label,
                                     plain=plain_progress))
    if log.name != "none":
        loggers.append(CSVLogger(run_dir, keep_rows=keep_rows))
    return MultiLogger(loggers + backend)


def _start_backend(settings, run_dir: Path, config: dict, *, resume: bool,
                   seed_of: Path | None = None, resumed_at: int | None = None) -> list[Logger]:
    """The configured logger's backend, started (none for ``csv`` and ``none``). A W&B run is named
    after the run directory, and grouped by ``logger.group``; ``seed_of``: the multi-seed run whose
    seed ``run_dir`` holds (see :func:`seed_run_name`); ``resumed_at``: a resume's checkpoint frames
    (TensorBoard hides what earlier segments wrote after them)."""
    log = settings.logger
    try:
        if log.name == "wandb":
            name, group = (run_dir.name, log.group) if seed_of is None else \
                seed_run_name(seed_of, settings.root.seed, log.group)
            return [WandbLogger(run_dir, project=log.project, group=group, mode=log.mode, config=config,
                                tags=list(log.tags), name=name, resume=resume)]
        if log.name == "tensorboard":
            board = TensorBoardLogger(run_dir, resumed_at=resumed_at)
            if not resume:  # (wandb takes it at init; a resume keeps the first start's)
                board.log_config(config)
            return [board]
    except RlkitError:
        raise
    except Exception as err:  # noqa: BLE001 (the backends raise anything; one line names it)
        text = str(err).strip()
        first = text.splitlines()[0].rstrip(".") if text else ""
        advice = "; or log offline with logger.mode=offline" if log.name == "wandb" and log.mode == "online" else ""
        raise LoggerError(f"logger={log.name} could not start: {type(err).__name__}"
                          f"{': ' + first if first else ''}{advice}") from err
    return []


def seed_run_name(run_dir: Path, seed: int, group: str | None) -> tuple[str, str]:
    """The W&B run name and group of seed ``seed`` of the multi-seed run in ``run_dir``: the run's
    name with ``_s<seed>`` (as an ordinary run's name carries its seed), grouped by ``group``, or by
    default by the run's name (its seeds together, apart from other runs' seeds).

    Examples:
        >>> from pathlib import Path
        >>> from rlkit.factories import seed_run_name
        >>> seed_run_name(Path("outputs/2026-01-02/12-00-00_dqn_CartPole_s0_ab12cd"), 3, None)
        ('12-00-00_dqn_CartPole_s0_ab12cd_s3', '12-00-00_dqn_CartPole_s0_ab12cd')
        >>> seed_run_name(Path("outputs/x"), 3, "sweep-7")
        ('x_s3', 'sweep-7')
    """
    return f"{run_dir.name}_s{seed}", group if group is not None else run_dir.name


def start_logger_backends(trainer: Trainer | MultiSeedTrainer, settings, run_dir: Path,
                          configs: list[dict]) -> list[list[Logger]]:
    """The resumed run's logger backends, started (one list per seed's directory, one for an
    ordinary run; ``configs``: the config each directory saves), for :func:`open_outputs` /
    :func:`open_multiseed_outputs`: a resume starts them before any file of the run changes (the
    checkpoints a rewind sets aside included). One that cannot start closes those started before it.

    Raises:
        LoggerError: a backend could not start.
    """
    places = ([(seed_settings(settings, out.seed), out.run_dir) for out in trainer.outputs]
              if isinstance(trainer, MultiSeedTrainer) else [(settings, run_dir)])
    started: list[list[Logger]] = []
    try:
        for (place_settings, folder), config in zip(places, configs, strict=True):
            started.append(_start_backend(place_settings, folder, config, resume=True,
                                          seed_of=run_dir if isinstance(trainer, MultiSeedTrainer) else None,
                                          resumed_at=int(trainer.frames)))
    except BaseException:
        for backend in started:
            for logger in backend:
                logger.close()
        raise
    return started


def open_outputs(trainer: Trainer, settings, run_dir: Path, config: dict, resume_state: dict | None = None, *,
                 label: str = "", plain_progress: bool | None = None, backend: list[Logger] | None = None) -> None:
    """Attaches the parts of a run that write files: loggers and the episode recorder. On resume they
    drop the rows written after the checkpoint, so call this only once the checkpoint is known to fit.
    ``label`` and ``plain_progress``: see :func:`make_loggers`."""
    loggers = make_loggers(settings, run_dir, config, resume_state, label=label, plain_progress=plain_progress,
                           backend=backend)
    episodes = EpisodeRecorder(run_dir, keep_until_frame=int(resume_state["frames"]) if resume_state else None)
    trainer.attach_outputs(loggers, episodes)


def replay_layout(env: GymEnv, replay: list) -> dict:
    """Per-item shape and dtype of each replayed entry, from the env's specs (what the collector
    writes: observations as the spec says, the action as the policy writes it, rewards float32 and
    flags bool with a trailing singleton, trajectory ids and step counts int64)."""
    obs = env.observation_spec
    action = env.action_spec
    layout: dict[NestedKey, tuple[tuple[int, ...], torch.dtype]] = {}
    for key in replay:
        name = key[-1] if isinstance(key, tuple) else key
        if name in (keys.TRAJ_ID, keys.STEP_COUNT):
            layout[key] = ((), torch.int64)
        elif name == keys.REWARD:
            layout[key] = ((1,), torch.float32)
        elif name in (keys.TERMINATED, keys.TRUNCATED, keys.DONE):
            layout[key] = ((1,), torch.bool)
        elif key == keys.ACTION:
            layout[key] = (tuple(action.shape), action.dtype)
        else:
            spec = obs[name]
            layout[key] = (tuple(spec.shape), spec.dtype)
    return layout


def check_memory(what: str, nbytes: int, device: torch.device, setting: str, *, estimate: bool = False) -> None:
    """Refuses a run whose ``what`` needs more memory than ``device`` has free (``estimate``: ``nbytes``
    is an estimate, said so).

    Raises:
        ResourceError: naming the setting, both amounts and the total.
    """
    free, total = _free_memory(device)
    if free is not None and nbytes > free:
        raise ResourceError(
            f"{setting}: the {what} needs {'about ' if estimate else ''}{_gib(nbytes)} of {device.type} memory; this "
            f"machine has {_gib(free)} available ({_gib(total)} in all)"
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


def build_agent(settings: Any, env: GymEnv) -> Agent:
    """The agent of ``settings.algo`` for ``env`` (its registry entry's ``build_agent``), with the
    configured value estimator, on ``settings.root.device``: what a run trains and what
    :func:`rlkit.agent.load_agent` loads a checkpoint into.

    Raises:
        EnvError: the env's spaces do not fit the algorithm.
    """
    device = torch.device(settings.root.device)
    agent: Agent = get_algorithm(settings.algo.name).build_agent(settings, env)
    agent.loss.make_value_estimator(settings.value_estimator.name, **_estimator_kwargs(settings.value_estimator))
    agent.loss.to(device)
    agent.policy.to(device)
    return agent


def build_trainer(settings: Any, run_dir: Path, callbacks: Sequence[TrainerCallback] = ()) -> Trainer:
    """Builds every component of a run and the :class:`Trainer` that drives them, in memory: nothing
    is written until :func:`open_outputs` (so a resumed state can be checked first). ``callbacks``
    go to the trainer (:class:`~rlkit.trainers.TrainerCallback`).

    Raises:
        ConfigError: a batch of more frames than ``total_frames`` (the collector takes whole batches).
        EnvError: the env cannot be built or its spaces do not fit the algorithm.
        ResourceError: the replay buffer, or an on-policy batch, would not fit in memory.
    """
    root, algo = settings.root, settings.algo
    entry = get_algorithm(algo.name)
    device = torch.device(root.device)
    # Off-policy: flat [N * T] batches (env-major) go into the replay buffer; on-policy: [N, T] rollouts.
    per_env = algo.train_frequency if entry.off_policy else algo.n_steps
    _check_batch_size(entry.off_policy, per_env, algo.num_envs, root.total_frames)
    env = make_env(settings, num_envs=algo.num_envs, seed=root.seed)
    eval_env = None
    try:
        kind = action_kind(env)
        if kind not in entry.action_spaces:
            fits = sorted(name for name, other in ALGORITHMS.items() if kind in other.action_spaces)
            raise EnvError(f"env {env.env_id!r} has action space {env.vector_env.single_action_space}; "
                           f"algo={algo.name} supports {' and '.join(entry.action_spaces)} action spaces; "
                           f"algorithms for {kind} actions: {fits}")
        if keys.ACTION_MASK in env.observation_spec.keys() and not entry.action_masks:
            fits = sorted(name for name, other in ALGORITHMS.items() if other.action_masks and kind in other.action_spaces)
            raise EnvError(f"env {env.env_id!r} gives action masks, which algo={algo.name} does not honour (its policy "
                           f"would choose masked-out actions); algorithms that do: {fits}")
        agent = build_agent(settings, env)
        optimizer = build_optimizer(algo.optim, agent.loss.parameters())
        if not entry.off_policy:  # (an off-policy batch is a few steps; its replay buffer is checked below)
            check_memory("rollout batch", rollout_nbytes(env, per_env), device,
                         f"algo.n_steps={per_env} x algo.num_envs={algo.num_envs}", estimate=True)
        trainer_cfg = root.trainer
        ts = TrainerSettings(
            total_frames=root.total_frames, log_interval=trainer_cfg.log_interval,
            eval_interval=trainer_cfg.eval_interval, checkpoint_interval=trainer_cfg.checkpoint_interval,
            keep_checkpoints=trainer_cfg.keep_checkpoints,
            early_stop_return=settings.env.target_return if trainer_cfg.early_stop else None,
            max_grad_norm=algo.max_grad_norm, lr_schedule=algo.lr_schedule,
        )
        buffer = updater = None
        if entry.replay_keys is not None:
            buffer = _replay_buffer(settings, entry, agent, env, per_env, ts)
            updater = (SoftUpdate(agent.loss, tau=algo.tau) if algo.tau is not None
                       else HardUpdate(agent.loss, value_network_update_interval=algo.target_update_interval))
        collector = Collector(env, agent.policy, frames_per_batch=per_env * algo.num_envs,
                              total_frames=root.total_frames, layout="flat" if entry.off_policy else "time")
        eval_env = make_env(settings, num_envs=trainer_cfg.eval_episodes, seed=root.seed + EVAL_SEED_OFFSET,
                            evaluating=env)
        evaluator = Evaluator(eval_env, agent.greedy_policy, seed=root.seed + EVAL_SEED_OFFSET,
                              epsilon=trainer_cfg.eval_epsilon)
        video = None
        if trainer_cfg.video_interval is not None:
            check_video_support(env.env_id, f"trainer.video_interval={trainer_cfg.video_interval}")
            ts.video_interval = trainer_cfg.video_interval
            video = VideoRecorder(functools.partial(_video_evaluator, settings, env, agent, run_dir / "videos"))
    except BaseException:
        env.close()
        if eval_env is not None:
            eval_env.close()
        raise
    return Trainer(collector=collector, loss_module=agent.loss, optimizer=optimizer, run_dir=run_dir, settings=ts,
                   replay_buffer=buffer, target_updater=updater, exploration=agent.exploration,
                   evaluator=evaluator, video=video, callbacks=callbacks)


def _check_batch_size(off_policy: bool, per_env: int, num_envs: int, total_frames: int) -> None:
    """Refuses batches of more frames than the run's budget: the collector takes whole batches, so
    the run would train the batch's frames, not ``total_frames`` (``algo.n_steps=20000`` with 8 envs
    trained 160,000 frames of a 2,000-frame budget).

    Examples:
        >>> from rlkit.factories import _check_batch_size
        >>> _check_batch_size(False, 5, 8, 40)
        >>> _check_batch_size(False, 20000, 8, 2000)
        Traceback (most recent call last):
        ...
        rlkit.errors.ConfigError: algo.n_steps=20000 x algo.num_envs=8 = 160,000 frames per batch is more than total_frames=2000: the collector takes whole batches; lower algo.n_steps or raise total_frames
    """
    per_batch = per_env * num_envs
    if per_batch > total_frames:
        name = "algo.train_frequency" if off_policy else "algo.n_steps"
        raise ConfigError(f"{name}={per_env} x algo.num_envs={num_envs} = {per_batch:,} frames per batch is more than "
                          f"total_frames={total_frames}: the collector takes whole batches; lower {name} or raise "
                          "total_frames")


#: Bytes an on-policy rollout holds per env step besides its tensors: each step's Python objects
#: (step results, per-step tensors, their stacking), measured about 27 KB per step of 8 Pendulum
#: envs with 3-float observations (850 MB at 20,000 steps, the process's own ~300 MB included).
_ROLLOUT_STEP_BYTES = 32 * 1024


def rollout_nbytes(env: GymEnv, steps: int) -> int:
    """An estimate, on the generous side, of the memory one on-policy batch of ``steps`` steps of
    every sub-env of ``env`` takes while it is collected and assembled: each frame's observation
    twice (it and the next) and each step's Python objects (:data:`_ROLLOUT_STEP_BYTES`)."""
    spec = env.observation_spec[keys.OBSERVATION]
    per_obs = math.prod(spec.shape) * spec.dtype.itemsize  # (one sub-env's observation)
    return steps * (_ROLLOUT_STEP_BYTES + 2 * env.num_envs * per_obs)


def _video_evaluator(settings: Any, env: GymEnv, agent: Agent, folder: Path) -> tuple[Evaluator, VideoWrappers]:
    """The evaluator of ``trainer.video_interval``'s recordings: one sub-env, rendering, recorded
    into ``folder``, seeded as the run's evaluations (built at the first recording: its folder is
    created then)."""
    wrappers = video_wrappers(folder, lambda i: "episode")
    seed = settings.root.seed + EVAL_SEED_OFFSET
    video_env = make_env(settings, num_envs=1, seed=seed, evaluating=env, render=True, extra_wrappers=[wrappers])
    return Evaluator(video_env, agent.greedy_policy, seed=seed, epsilon=settings.root.trainer.eval_epsilon), wrappers


def _frame_storage(settings: Any, env: GymEnv, replay: list, per_batch: int) -> FrameStorage | None:
    """A :class:`~rlkit.data.frames.FrameStorage` when the env suite stacks frames (Atari) and the
    replay keeps observations: each frame stored once, stacks rebuilt at sampling. Its slack is sized
    for the run's batches of ``per_batch`` transitions, so that a resume whose batches outgrow the
    saved ring is refused as it loads the checkpoint (not at its first batch)."""
    resolved = get_suite(settings.env.suite).resolve(settings.env.id, settings.env.game, settings.env.options)
    obs_keys = (keys.OBSERVATION, keys.next_(keys.OBSERVATION))
    if resolved.frame_stack <= 1 or not all(k in replay for k in obs_keys):
        return None
    rewriting = [type(t).__name__ for t in env.transforms if t.rewrites_observations]
    if rewriting:  # each stack slot is rewritten with the statistics of its own step: store stacks whole
        log.warning("replay stores whole observation stacks (no frame replay): env.transforms %s rewrite the "
                    "stacked frames", rewriting)
        return None
    spec = env.observation_spec[keys.OBSERVATION]
    others = [k for k in replay if k not in obs_keys]
    others += [k for k in (keys.TRAJ_ID, keys.next_(keys.DONE)) if k not in others]  # the episode links
    return FrameStorage(settings.algo.buffer_size, stack=resolved.frame_stack, frame_shape=tuple(spec.shape[1:]),
                        frame_dtype=spec.dtype, slack=resolved.frame_stack * per_batch,
                        device=torch.device(settings.root.device), keys=others, layout=replay_layout(env, others))


def _replay_buffer(settings: Any, entry: Any, agent: Agent, env: GymEnv, per_env: int,
                   ts: TrainerSettings) -> ReplayBuffer:
    """The replay buffer of an off-policy run (its keys from the registry entry; trajectory ids and step
    counts too when the estimator trains on ``[B, T]`` slices), and the trainer's sampling settings."""
    root, algo = settings.root, settings.algo
    device = torch.device(root.device)
    generator = torch.Generator(device=device).manual_seed(root.seed)
    slices = get_estimator_class(settings.value_estimator.name).needs_time_dim
    replay = list(entry.replay_keys(agent)) + ([keys.TRAJ_ID, keys.STEP_COUNT] if slices else [])
    storage = _frame_storage(settings, env, replay, per_env * algo.num_envs)
    layout = None if storage is not None else replay_layout(env, replay)
    if algo.prioritized:
        # beta reaches 1 with the run's last batch: the trainer samples after each batch whose frames
        # (counted after it) reach learning_starts, of the ceil(total_frames / batch) it collects.
        per_batch = per_env * algo.num_envs
        first = max(1, -(-algo.learning_starts // per_batch))  # the first batch that samples
        updates = max(0, -(-root.total_frames // per_batch) - first)  # (0: only the last batch samples, at beta 1)
        buffer: ReplayBuffer = PrioritizedReplayBuffer(
            algo.buffer_size, alpha=algo.alpha, beta=algo.beta, beta_annealing_steps=updates * algo.updates_per_batch,
            device=device, generator=generator, layout=layout, storage=storage)
        agent.loss.set_keys(priority=keys.TD_ERROR)
    else:
        buffer = ReplayBuffer(algo.buffer_size, device=device, generator=generator, layout=layout, storage=storage)
    nbytes = buffer.nbytes
    assert nbytes is not None  # known before allocation: the buffer was given its layout
    check_memory("replay buffer", nbytes, device, f"algo.buffer_size={algo.buffer_size}")
    ts.batch_size, ts.learning_starts = algo.batch_size, algo.learning_starts
    ts.updates_per_batch = algo.updates_per_batch
    if slices:
        if entry.slice_len is None:
            raise ValueError(f"algo={algo.name} declares no slice length for multi-step estimators")
        ts.slice_len = entry.slice_len(algo)
    return buffer


# -- several seeds in one process ---------------------------------------------------------------

#: Optimisers whose update of a parameter entry reads that entry's gradient and moments alone (and
#: the step count, which every seed shares): one of them over the stacked ``[N, ...]`` parameters
#: is ``N`` optimisers, bit for bit (``tests/trainers/test_multiseed.py``).
ELEMENTWISE_OPTIMIZERS: tuple[type[torch.optim.Optimizer], ...] = (
    torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop, torch.optim.SGD, torch.optim.Adagrad, RMSpropTF)
#: Torch's other optimisers that update each tensor from its own numbers alone, but not each entry
#: from its own (Adafactor factors its second moment over a tensor's last two dims: over a stacked
#: bias, across the seeds), or whose multi-tensor kernels are not checked against the stacked
#: layout: they update per-seed views of the stacked parameters (:func:`seed_views`), each the
#: tensor of the seed's ordinary run.
PER_TENSOR_OPTIMIZERS: tuple[type[torch.optim.Optimizer], ...] = (
    torch.optim.Adafactor, torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam, torch.optim.Adadelta,
    torch.optim.ASGD, torch.optim.Rprop)


def _class_path(cls: type) -> str:
    """``module.Name`` of ``cls``, as ``algo.optim._target_`` names it (torch's optimisers by ``torch.optim``)."""
    module = "torch.optim" if getattr(torch.optim, cls.__name__, None) is cls else cls.__module__
    return f"{module}.{cls.__name__}"


def multiseed_optimizer_layout(optim: dict, num_seeds: int) -> str:
    """How the batched multi-seed trainer's optimiser holds the seeds' parameters: ``"stacked"``
    (one optimiser over the stacked tensors: an elementwise optimiser's own kernels) or ``"views"``
    (over each seed's views, :func:`seed_views`: a fused kernel, or an optimiser that is not
    elementwise, see :data:`PER_TENSOR_OPTIMIZERS`).

    Examples:
        >>> from rlkit.factories import multiseed_optimizer_layout
        >>> multiseed_optimizer_layout({"_target_": "torch.optim.Adam", "fused": None}, 3)
        'stacked'
        >>> multiseed_optimizer_layout({"_target_": "torch.optim.Adafactor"}, 3)
        'views'

    Raises:
        NotStackableError: another optimiser (it may compute one seed's update from the others'
            numbers), naming it and the supported ones.
    """
    target = str(optim["_target_"])
    module_name, cls_name = target.rsplit(".", 1)
    cls = getattr(importlib.import_module(module_name), cls_name)
    if cls in PER_TENSOR_OPTIMIZERS:
        return "views"
    if cls not in ELEMENTWISE_OPTIMIZERS:
        supported = [_class_path(c) for c in (*ELEMENTWISE_OPTIMIZERS, *PER_TENSOR_OPTIMIZERS)]
        raise NotStackableError(
            f"num_seeds={num_seeds}: algo.optim._target_={target!r} is not an optimiser the batched multi-seed trainer "
            f"knows to update each seed from that seed's numbers alone; supported: {supported}; or use num_seeds=1 "
            "(one process per seed, e.g. a sweep seed=0,1,2)")
    return "views" if optim.get("fused") else "stacked"  # (fused kernels round by position in a tensor)


def seed_settings(settings: Any, seed: int) -> Any:
    """``settings`` of the ordinary run of ``seed``: that seed, ``num_seeds`` 1."""
    return dataclasses.replace(settings, root=dataclasses.replace(settings.root, seed=seed, num_seeds=1))


def _stack_agent(entry: Any, settings: Any, env: GymEnv, trainers: list[Trainer]) -> Agent:
    """An agent whose networks hold the parameters of every seed's agent (built in ``trainers``)
    stacked on a leading dim, and whose loss keeps that dim (``stacked_dims = 1``).

    Raises:
        NotStackableError: a network with parameters outside rlkit's seed-stackable networks (MLPs and
            conv nets: a user's network, a Gaussian policy's log-std, gSDE), which the stacked call
            does not cover.
    """
    with torch.random.fork_rng(devices=[]):
        agent: Agent = entry.build_agent(settings, env)  # the structure; its initial values are replaced
    losses = [t.loss_module for t in trainers]
    stack_seed_parameters_(agent.loss, losses)
    for name, target in agent.loss.target_modules().items():
        stack_seed_parameters_(target, [loss.target_modules()[name] for loss in losses])
    n = len(trainers)
    flat = [name for name, p in agent.loss.named_parameters() if p.dim() == 0 or p.shape[0] != n
            or not all(torch.equal(p[k], dict(loss.named_parameters())[name]) for k, loss in enumerate(losses))]
    actor = getattr(agent.loss, "actor_network", None)
    sampler = getattr(actor, "sampler", None)
    if (getattr(agent.loss, "entropy_bonus", False) and getattr(agent.loss, "entropy_coeff", 0.0)
            and sampler is not None and sampler.distribution_class.entropy is D.Distribution.entropy):
        # Its entropy is a one-sample estimate drawn in the loss, once for the stacked seeds.
        raise NotStackableError(
            f"num_seeds={n}: the {sampler.distribution_class.__name__} distribution has no closed-form entropy, and "
            f"the loss's sampled estimate (algo.entropy_coeff={agent.loss.entropy_coeff}) would draw every seed's noise "
            "from one stream; use algo.entropy_coeff=0, another algo.distribution, or num_seeds=1 (one process per seed)")
    if flat or agent.exploration is not None and not isinstance(agent.exploration, EGreedyModule):
        instead = _stackable_alternative(entry, settings, env)
        raise NotStackableError(
            f"num_seeds={n}: the batched multi-seed trainer stacks rlkit's MLP and conv networks, and algo={settings.algo.name} "
            f"here has parameters outside them ({flat or type(agent.exploration).__name__}); "
            f"{instead + ', or ' if instead else ''}use num_seeds=1 (one process per seed, e.g. a sweep seed=0,1,2)")
    agent.loss.stacked_dims = 1
    return agent


#: Settings of an algorithm (``algo.<field>``, value) that may make an agent stackable where the
#: configured one is not: A2C's ``tanh_normal`` policy has no learned log-std outside its networks.
#: Offered in the refusal only where the agent they build is stackable here.
STACKABLE_ALTERNATIVES: tuple[tuple[str, str], ...] = (("distribution", "tanh_normal"),)


def _stackable_alternative(entry: Any, settings: Any, env: GymEnv) -> str | None:
    """``algo.<field>=<value> trains with num_seeds`` for the first of :data:`STACKABLE_ALTERNATIVES`
    that ``settings.algo`` has, sets otherwise, and whose agent (built for ``env``, the global
    generators left as they were) has every parameter in a seed-stackable network, no exploration
    module but ε-greedy's and no sampled entropy estimate (or a hint to set ``algo.entropy_coeff=0``);
    None when none does."""
    algo = settings.algo
    for field, value in STACKABLE_ALTERNATIVES:
        if not hasattr(algo, field) or getattr(algo, field) == value:
            continue
        other = dataclasses.replace(settings, algo=dataclasses.replace(algo, **{field: value}))
        try:
            with torch.random.fork_rng(devices=[]):
                agent: Agent = entry.build_agent(other, env)
        except RlkitError:  # (e.g. tanh_normal in a Box with infinite bounds)
            continue
        stacked = {id(p) for net in agent.loss.modules() if getattr(type(net), "seed_stackable", False)
                   for p in net.parameters()}
        if any(id(p) not in stacked for p in agent.loss.parameters()):
            continue
        if agent.exploration is not None and not isinstance(agent.exploration, EGreedyModule):
            continue
        sampler = getattr(getattr(agent.loss, "actor_network", None), "sampler", None)
        sampled = (getattr(agent.loss, "entropy_bonus", False) and getattr(agent.loss, "entropy_coeff", 0.0)
                   and sampler is not None and sampler.distribution_class.entropy is D.Distribution.entropy)
        return f"algo.{field}={value}{' with algo.entropy_coeff=0' if sampled else ''} trains with num_seeds"
    return None


def build_multiseed_trainer(settings: Any, run_dir: Path, *, drop_non_finite: bool = False,
                            callbacks: Sequence[TrainerCallback] = ()) -> MultiSeedTrainer:
    """The :class:`~rlkit.trainers.multiseed.MultiSeedTrainer` of ``settings.root.num_seeds`` seeds
    ``seed .. seed + num_seeds - 1``, in memory (nothing written).

    Every seed's components are those of its ordinary run (:func:`build_trainer` with that seed,
    the global generators seeded as :func:`rlkit.run.seed_everything` would): its envs, replay
    buffer, evaluation env and initial network parameters; the torch generator's state after that
    build starts the seed's random stream. The networks of all seeds are then stacked into one
    agent, with one optimiser over the stacked parameters (an elementwise optimiser's own kernels)
    or over each seed's views of them (see :func:`multiseed_optimizer_layout`).

    Raises:
        NotStackableError: an optimiser that may mix the seeds' numbers (refused before any seed
            is built), or networks the stacked call does not cover.
    """
    root, algo = settings.root, settings.algo
    seeds = list(range(root.seed, root.seed + root.num_seeds))
    entry = get_algorithm(algo.name)
    layout = multiseed_optimizer_layout(algo.optim, len(seeds))  # (refused before any seed is built)
    trainers: list[Trainer] = []
    states: list[torch.Tensor] = []
    cuda = torch.device(root.device) if torch.device(root.device).type == "cuda" else None
    cuda_states: list[torch.Tensor] = []
    saved = (random.getstate(), np.random.get_state())
    try:
        # The global generators (torch's CPU and CUDA ones by fork_rng) come out as they went in:
        # each seed's stream lives on in `states`, not in them.
        with torch.random.fork_rng(devices=[cuda] if cuda is not None else []):
            for seed in seeds:
                random.seed(seed)
                np.random.seed(seed)
                torch.manual_seed(seed)
                # The seeds' builds differ by the seed alone: their warnings are the first seed's again.
                with _warnings_once(first_seed=seed == seeds[0]):
                    trainers.append(build_trainer(seed_settings(settings, seed), run_dir / seed_dir_name(seed)))
                states.append(torch.get_rng_state())
                if cuda is not None:
                    cuda_states.append(torch.cuda.get_rng_state(cuda))
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        first = trainers[0]
        agent = _stack_agent(entry, settings, first.collector.env, trainers)
        agent.loss.make_value_estimator(settings.value_estimator.name, **_estimator_kwargs(settings.value_estimator))
        device = torch.device(root.device)
        agent.loss.to(device)
        agent.policy.to(device)
        params = list(agent.loss.parameters())
        if layout == "views":  # each seed's own tensors (see multiseed_optimizer_layout)
            views = seed_views(params, len(seeds))
            optimizer = build_optimizer(algo.optim, [view for per_seed in views for view in per_seed])
        else:  # the stacked tensors (see rlkit.trainers.multiseed)
            optimizer = build_optimizer(algo.optim, params)
        updater = None
        if first.target_updater is not None:
            updater = (SoftUpdate(agent.loss, tau=algo.tau) if algo.tau is not None
                       else HardUpdate(agent.loss, value_network_update_interval=algo.target_update_interval))
        streams = SeedStreams(states, cuda_states or None, cuda)
        collector = MultiSeedCollector([t.collector for t in trainers], agent.policy, streams)
        evaluator = MultiSeedEvaluator([cast(Evaluator, t.evaluator) for t in trainers], agent.greedy_policy, seeds)
        replay = None
        if first.replay_buffer is not None:
            # Each seed's build checked its own buffer; the N of them must fit together.
            check_memory(f"replay buffers of {len(seeds)} seeds",
                         sum(cast(int, t.replay_buffer.nbytes) for t in trainers if t.replay_buffer is not None),
                         device, f"algo.buffer_size={algo.buffer_size} with num_seeds={len(seeds)}")
            replay = seed_replay([cast(ReplayBuffer, t.replay_buffer) for t in trainers],
                                 slices=bool(first.settings.slice_len))
    except BaseException:
        for t in trainers:
            t.close()
        raise
    return MultiSeedTrainer(seeds=seeds, collector=collector, loss_module=agent.loss, optimizer=optimizer,
                            run_dir=run_dir, seed_dirs=[run_dir / seed_dir_name(s) for s in seeds],
                            settings=first.settings, replay=replay, target_updater=updater,
                            exploration=agent.exploration, evaluator=evaluator, drop_non_finite=drop_non_finite,
                            callbacks=callbacks)


@contextlib.contextmanager
def _warnings_once(*, first_seed: bool) -> Iterator[None]:
    """Log records as they are, for the first seed's build; above warnings only for the others'
    (which repeat them). Every logger's, whatever level a logger of its own was given: the
    process-wide ``logging.disable`` threshold, put back after the build."""
    threshold = logging.root.manager.disable
    if not first_seed:
        logging.disable(max(threshold, logging.WARNING))
    try:
        yield
    finally:
        logging.disable(threshold)


def seed_dir_name(seed: int) -> str:
    """The sub-directory of a multi-seed run holding seed ``seed``'s outputs."""
    return f"seed_{seed}"


def open_multiseed_outputs(trainer: MultiSeedTrainer, settings: Any, configs: list[dict],
                           resume_state: dict | None = None, *, label: str = "",
                           plain_progress: bool | None = None, backends: list[list[Logger]] | None = None) -> None:
    """Each seed's loggers and episode recorder in its own directory (``configs``: each seed's
    config, its ``seed`` and ``num_seeds: 1``); on resume each keeps the rows up to the checkpoint.
    One console progress display for the run (``label`` and ``plain_progress``: see
    :func:`make_loggers`): the frames, and the returns averaged over the seeds still training.
    ``backends``: each seed's logger backend started already (:func:`start_logger_backends`); W&B
    runs are named and grouped by :func:`seed_run_name`."""
    loggers, recorders = [], []
    for k, (out, config) in enumerate(zip(trainer.outputs, configs)):
        out.run_dir.mkdir(parents=True, exist_ok=True)
        seed_state = None
        if resume_state is not None:
            seed_state = {"frames": resume_state["frames"], "log_rows": resume_state["outputs"][k]["log_rows"]}
        seed_settings_k = seed_settings(settings, out.seed)
        seed_settings_k = dataclasses.replace(seed_settings_k, root=dataclasses.replace(
            seed_settings_k.root, trainer=dataclasses.replace(seed_settings_k.root.trainer, progress=False)))
        backend = (backends[k] if backends is not None
                   else _start_backend(seed_settings_k, out.run_dir, config, resume=seed_state is not None,
                                      resumed_at=None if seed_state is None else int(seed_state["frames"]),
                                      seed_of=trainer.run_dir))
        loggers.append(make_loggers(seed_settings_k, out.run_dir, config, seed_state, label=label,
                                    plain_progress=plain_progress, backend=backend))
        recorders.append(EpisodeRecorder(out.run_dir, keep_until_frame=int(resume_state["frames"])
                                         if resume_state else None))
    progress = None
    if settings.root.trainer.progress:
        progress = ConsoleLogger(settings.root.total_frames, start_frames=int(resume_state["frames"])
                                 if resume_state else 0, label=label, plain=plain_progress)
    trainer.attach_outputs(loggers, recorders, progress=progress)
