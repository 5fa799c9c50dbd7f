"""A trained agent, loaded from its run directory: :func:`load_agent` and :class:`Agent`.

Loading a run is verified as a resume verifies it (:func:`open_run`): the checkpoint's integrity and
format (:func:`~rlkit.trainers.checkpoint.load_checkpoint`, which never runs code), the run's saved
config (validated), and that the checkpoint's networks fit the agent that config builds (the first
mismatch is named). Nothing is written.

The agent acts on observations as the env gives them: the run's observation transforms (the
normalisation statistics of ``env.transforms: [{name: normalize}]``, frozen at the checkpoint) are
part of its :class:`PolicyModule`, which is also what :mod:`rlkit.exporter` exports.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlkit import keys
from rlkit.builders import Settings, validate_config
from rlkit.data import Categorical, OneHot, TensorSpec
from rlkit.envs.transforms import EnvTransform
from rlkit.errors import CheckpointMismatchError, ConfigError, RunDirError
from rlkit.factories import build_agent, make_env, seed_dir_name
from rlkit.modules import ExplorationType, action_call, set_exploration_type
from rlkit.run import CONFIG_FILE, capped_threads, load_run_config, run_dir_of
from rlkit.trainers.checkpoint import LAST_NAME, find_checkpoint, load_checkpoint, named_checkpoint
from rlkit.trainers.evaluator import epsilon_explore
from rlkit.utils.state import first_mismatch

__all__ = ["Agent", "LoadedRun", "PolicyModule", "load_agent", "open_run"]


@dataclass
class LoadedRun:
    """A run's checkpoint and config, verified (:func:`open_run`)."""

    run_dir: Path
    checkpoint: Path
    settings: Settings
    state: dict[str, Any]
    #: A seed of a multi-seed run (``num_seeds > 1``): its index in the run's checkpoint, which
    #: holds every seed's networks stacked on a leading dim; None for an ordinary run.
    seed_index: int | None = None


def open_run(run: str | os.PathLike[str], *, device: str = "cpu", checkpoint: str | os.PathLike[str] | None = None) -> LoadedRun:
    """The checkpoint and validated config of the run that ``run`` names: a run directory (its
    ``checkpoints/last.pt``, else its newest ``step_<frames>.pt``; ``checkpoint``, a file name
    such as ``step_50000.pt``, picks another) or a checkpoint file in one. The directory of one
    seed of a multi-seed run (``<run dir>/seed_<k>``) reads that seed from the run's checkpoints.
    The checkpoint is verified (checksums, format, only plain values) and loaded with its tensors
    mapped from the file; the saved config is validated with ``device`` in place of the run's (and
    ``num_threads`` at most this machine's usable CPUs).

    Raises:
        MissingCheckpointError: no such path, or no (such) checkpoint in the directory.
        RunDirError: the checkpoint is not in a run directory (no ``config.yaml``).
        CheckpointError: a corrupt, unsafe or unreadable checkpoint (its kinds name which), or a
            ``checkpoint`` name beside a ``run`` that is a file already.
        ConfigError: the saved config does not validate (``device`` not available here, ...).
    """
    if not isinstance(run, (str, os.PathLike)):
        raise RunDirError(f"run={run!r}: give the path (a str or pathlib.Path) of a run directory or a checkpoint file")
    if not str(run).strip():
        raise RunDirError("run= is empty: give a run directory or a checkpoint file")
    # Resolved: a seed_<k> directory given as "." or "../seed_1" is recognised by its parent and name.
    seed_of = _multiseed_parent(Path(run).resolve())
    home = seed_of[0] if seed_of else Path(run)
    checkpoint_file = find_checkpoint(home) if checkpoint is None else named_checkpoint(home, checkpoint)
    run_dir = run_dir_of(checkpoint_file) if Path(run).is_file() else Path(run)
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunDirError(f"{run_dir} has no {CONFIG_FILE}: is it an rlkit run directory? (a checkpoint file must "
                          "lie in <run dir>/checkpoints/ or <run dir>/)")
    settings = validate_config(capped_threads(load_run_config(run_dir, [f"device={device}"], action="load the run")),
                               saved=True)
    if settings.root.num_seeds > 1:
        seeds = range(settings.root.seed, settings.root.seed + settings.root.num_seeds)
        chosen = Path(run).is_file() or checkpoint is not None
        named = f" checkpoint={checkpoint_file.name}" if chosen and checkpoint_file.name != LAST_NAME else ""
        raise RunDirError(f"{run_dir} trained {settings.root.num_seeds} seeds in one process: give one of them, "
                          f"run={run_dir / seed_dir_name(seeds[0])}{named} (seeds {seeds[0]}..{seeds[-1]})")
    state = load_checkpoint(checkpoint_file, map_location="cpu", mmap=True)
    index = None
    if seed_of is not None:
        saved_seeds = list(state.get("seeds", []))
        if settings.root.seed not in saved_seeds:
            raise CheckpointMismatchError(f"{checkpoint_file} holds seeds {saved_seeds}, not {run_dir}'s seed "
                                          f"{settings.root.seed}")
        index = saved_seeds.index(settings.root.seed)
    return LoadedRun(run_dir, checkpoint_file, settings, state, index)


def _multiseed_parent(run: Path) -> tuple[Path, int] | None:
    """``(multi-seed run dir, seed)`` when ``run`` is the ``seed_<s>`` directory of a multi-seed run
    (its checkpoint is the parent's), else None."""
    from omegaconf import DictConfig, OmegaConf

    parent_config = run.parent / CONFIG_FILE
    if not (run.is_dir() and (run / CONFIG_FILE).is_file() and parent_config.is_file()):
        return None
    parent, own = OmegaConf.load(parent_config), OmegaConf.load(run / CONFIG_FILE)
    if not (isinstance(parent, DictConfig) and isinstance(own, DictConfig)):
        return None
    seed = own.get("seed")
    if int(parent.get("num_seeds", 1)) > 1 and isinstance(seed, int) and run.name == seed_dir_name(seed):
        return run.parent, seed
    return None


def _seed_slice(expected: Mapping[str, torch.Tensor], saved: Mapping[str, Any], index: int,
                num_seeds: int) -> dict[str, Any]:
    """Seed ``index``'s entries of a multi-seed loss state: a tensor saved with a leading seed dim
    (``[num_seeds, *shape]`` where one seed's is ``shape``) is indexed, any other kept as saved."""
    out = dict(saved)
    for name, tensor in expected.items():
        value = saved.get(name)
        if (isinstance(value, torch.Tensor) and value.shape != tensor.shape
                and value.shape == (num_seeds, *tensor.shape)):
            out[name] = value[index]
    return out


class PolicyModule(nn.Module):
    """A trained policy as one torch module: observation (as the env gives it) -> action.

    The observation is cast to the env's observation dtype (uint8 frames stay uint8: the conv
    networks scale them inside), passed through ``observation_transform`` (the run's frozen
    normalisation, or the identity) and then through the algorithm's policy's tensor-level action
    call (:func:`rlkit.modules.action_call`) under ``ExplorationType.DETERMINISTIC``: the greedy
    action for DQN and C51, the mode (a categorical's argmax, a Gaussian's mean, a tanh-Gaussian's
    squashed mean) for A2C. :meth:`sample` acts stochastically instead.

    Args:
        policy: the algorithm's greedy policy (reads ``"observation"`` and, for envs with one, the
            ``"action_mask"``; writes ``"action"``).
        observation_transform: applied to the observations before the policy.
        observation_dtype: the env's observation dtype.
        num_actions: the number of discrete actions (the width of an all-allowed mask for a policy
            that reads a mask); 0 for other action spaces.

    Examples:
        >>> import torch
        >>> from rlkit.agent import PolicyModule
        >>> from rlkit.data import Categorical
        >>> from rlkit.modules import QValueActor
        >>> actor = QValueActor(torch.nn.Linear(4, 2), spec=Categorical(2))
        >>> policy = PolicyModule(actor, torch.nn.Identity(), torch.float32)
        >>> obs = torch.randn(3, 4)
        >>> torch.equal(policy(obs), actor.action(obs))
        True
    """

    def __init__(self, policy: nn.Module, observation_transform: nn.Module, observation_dtype: torch.dtype,
                 num_actions: int = 0) -> None:
        super().__init__()
        self.policy = policy
        self.observation_transform = observation_transform
        self.observation_dtype = observation_dtype
        in_keys = list(getattr(policy, "in_keys", [keys.OBSERVATION]))
        unknown = [k for k in in_keys if k not in (keys.OBSERVATION, keys.ACTION_MASK)]
        if unknown:
            raise ValueError(f"the policy reads {in_keys}; a PolicyModule feeds only {keys.OBSERVATION!r} and "
                             f"{keys.ACTION_MASK!r}")
        self.reads_mask = keys.ACTION_MASK in in_keys
        if self.reads_mask and num_actions < 1:
            raise ValueError("the policy reads an action mask: give num_actions")
        self.num_actions = int(num_actions)
        self._in_keys = in_keys
        self._action = action_call(policy)

    def _inputs(self, observation: torch.Tensor, action_mask: torch.Tensor | None) -> list[torch.Tensor]:
        obs = self.observation_transform(observation.to(self.observation_dtype))
        if self.reads_mask and action_mask is None:
            action_mask = torch.ones(obs.shape[0], self.num_actions, dtype=torch.bool, device=obs.device)
        return [obs if key == keys.OBSERVATION else action_mask for key in self._in_keys]  # type: ignore[misc]

    def forward(self, observation: torch.Tensor, action_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The deterministic actions ``[B, *action_shape]`` for observations ``[B, *obs_shape]``
        (``action_mask``: bool ``[B, A]``, True = allowed; all allowed when omitted)."""
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            return self._action(*self._inputs(observation, action_mask))

    def sample(self, observation: torch.Tensor, action_mask: torch.Tensor | None = None, *, epsilon: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Stochastic actions: a stochastic policy's draws (``ExplorationType.RANDOM``), and, with
        ``epsilon > 0`` (discrete actions), each action replaced by a uniformly random allowed one
        with that probability (drawn from ``generator``)."""
        inputs = self._inputs(observation, action_mask)
        with set_exploration_type(ExplorationType.RANDOM):
            action = self._action(*inputs)
        if epsilon > 0:
            if self.num_actions < 1:
                raise ValueError("an epsilon needs discrete actions")
            mask = action_mask if self.reads_mask else None
            action = epsilon_explore(action, mask, self.num_actions, epsilon,
                                     generator if generator is not None else torch.Generator().manual_seed(0))
        return action


class Agent:
    """A trained agent: :meth:`act` maps observations to actions (:func:`load_agent` makes one).

    Attributes:
        policy: the :class:`PolicyModule` (observation as the env gives it -> greedy action), what
            :mod:`rlkit.exporter` exports.
        actor: the algorithm's greedy policy module (a ``QValueActor``, ``DistributionalQValueActor``
            or A2C's ``ProbabilisticActor``), reading transformed observations.
        loss: the run's loss module (its networks, the target networks, the critic).
        observation_spec: the observations as the env gives them (before the run's transforms).
        action_spec: the env's action spec.
        transforms: the run's observation transforms, frozen at the checkpoint.
        settings: the run's validated config.
        run_dir: the run directory.
        checkpoint: the checkpoint file loaded.
        frames: the frames the run had trained for at that checkpoint.
        epsilon: the run's evaluation epsilon (``trainer.eval_epsilon``), used by ``act(...,
            deterministic=False)`` with discrete actions.
        discrete_observations: ``(n, start)`` of a ``Discrete`` observation space (whose
            observations the env layer one-hot encodes), else ``None``.
    """

    def __init__(self, *, policy: PolicyModule, actor: nn.Module, loss: nn.Module, observation_spec: TensorSpec,
                 action_spec: TensorSpec, transforms: Sequence[EnvTransform], settings: Settings, run_dir: Path,
                 checkpoint: Path, frames: int, discrete_observations: tuple[int, int] | None = None) -> None:
        self.policy = policy
        self.discrete_observations = discrete_observations
        self.actor = actor
        self.loss = loss
        self.observation_spec = observation_spec
        self.action_spec = action_spec
        self.transforms = list(transforms)
        self.settings = settings
        self.run_dir = run_dir
        self.checkpoint = checkpoint
        self.frames = frames
        self.epsilon = float(settings.root.trainer.eval_epsilon)
        self._generator = torch.Generator().manual_seed(settings.root.seed)

    @property
    def device(self) -> torch.device:
        """Where the networks are."""
        return torch.device(self.settings.root.device)

    @torch.no_grad()
    def act(self, observation: Any, *, action_mask: Any = None, deterministic: bool = True) -> Any:
        """The agent's action for one observation or a batch of them.

        Args:
            observation: a numpy array or a torch tensor (or anything ``numpy.asarray`` takes) of
                the env's observation shape (one observation) or with a leading batch dim, as the
                env gives it (the run's normalisation is applied inside); for a ``Discrete``
                observation space of ``n`` values its integer index, a batch of them (``[B]``, or
                ``[B, 1]``; ``n`` integers are refused: ``n`` indices or one encoding?), or the
                one-hot encoding the networks take (float or bool). For a ``Dict`` observation space the dict the
                env gives: its ``"observation"`` entry, and its ``"action_mask"`` entry where it
                has one and ``action_mask`` is not given.
            action_mask: bool, True = allowed (envs with an action mask); all allowed by default.
            deterministic: the greedy / mode action (default); ``False`` samples a stochastic
                policy and, for discrete actions, takes a random action with the run's evaluation
                epsilon (``trainer.eval_epsilon``).

        Returns:
            The action(s): a torch tensor (on the observation's device) for a tensor, else a numpy
            array; without the batch dim for a single observation. Discrete actions are indices.

        Raises:
            ValueError: an observation whose trailing shape is not the env's; an action mask for a
                policy that reads none, or not bool (0/1), or not one entry per action.
        """
        if isinstance(observation, Mapping):  # a Dict observation space's observation, as the env gives it
            if keys.OBSERVATION not in observation:
                raise ValueError(f"a dict observation needs an 'observation' entry (the env's Dict space has one); "
                                 f"got the entries {sorted(map(str, observation))}")
            if action_mask is None and self.policy.reads_mask and keys.ACTION_MASK in observation:
                action_mask = observation[keys.ACTION_MASK]
            observation = observation[keys.OBSERVATION]
        is_tensor = isinstance(observation, torch.Tensor)
        obs = observation if is_tensor else torch.as_tensor(np.asarray(observation))
        shape = tuple(self.observation_spec.shape)
        if self.discrete_observations is not None and not obs.is_floating_point() and obs.dtype != torch.bool:
            # A Discrete space's index (or a batch of them), as the env gives it; a vector as long as the
            # one-hot encoding is that encoding (a batch of exactly n indices goes in as [n, 1]).
            n = self.discrete_observations[0]
            if obs.dim() == 2 and obs.shape[1] == 1:
                obs = self._one_hot(obs[:, 0])
            elif obs.dim() == 0 or (obs.dim() == 1 and obs.shape[0] != n):
                obs = self._one_hot(obs)
            elif obs.dim() == 1:  # n integers: n indices, or one encoding? (n sub-envs give such a vector)
                raise ValueError(f"observation {obs.tolist()[:8]}{' ...' if n > 8 else ''}: {n} integers are {n} "
                                 f"indices of the env's Discrete({n}) space or one one-hot encoding; give a batch of "
                                 f"{n} indices as shape ({n}, 1), an encoding as float or bool")
        single = obs.dim() == len(shape)
        if tuple(obs.shape[obs.dim() - len(shape):]) != shape or obs.dim() > len(shape) + 1:
            raise ValueError(f"observation of shape {tuple(obs.shape)}; this agent takes {shape} or a batch "
                             f"(B, *{shape})")
        if single:
            obs = obs.unsqueeze(0)
        mask = None if action_mask is None else self._mask(action_mask, obs.shape[0] if not single else None)
        obs = obs.to(self.device)
        if deterministic:
            action = self.policy(obs, mask)
        else:
            epsilon = self.epsilon if isinstance(self.action_spec, Categorical) else 0.0
            action = self.policy.sample(obs, mask, epsilon=epsilon, generator=self._generator)
        if single:
            action = action.squeeze(0)
        if is_tensor:
            return action.to(observation.device)
        return action.cpu().numpy()

    def _one_hot(self, index: torch.Tensor) -> torch.Tensor:
        """Discrete observations (indices from the space's ``start``) one-hot encoded, as the env layer
        encodes them."""
        assert self.discrete_observations is not None  # (called for a Discrete observation space)
        n, start = self.discrete_observations
        offset = index.long() - start
        if bool(((offset < 0) | (offset >= n)).any()):
            raise ValueError(f"observation {index.tolist()} is outside the env's Discrete({n}, start={start}) space")
        return torch.nn.functional.one_hot(offset, n).to(self.observation_spec.dtype)

    def _mask(self, action_mask: Any, batch: int | None) -> torch.Tensor:
        """``action_mask`` as the policy's bool ``[B, num_actions]`` mask (``batch`` None: one observation's)."""
        if not self.policy.reads_mask:
            raise ValueError("this agent's policy reads no action mask (its env gives none), so it cannot honour one; "
                             "leave action_mask out")
        values = np.asarray(action_mask.cpu() if isinstance(action_mask, torch.Tensor) else action_mask)
        binary = values.dtype == np.bool_ or (values.dtype.kind in "iuf" and bool(np.isin(values, (0, 1)).all()))
        if not binary:
            raise ValueError(f"action_mask must be bool (True = allowed), or 0/1 numbers (as a Box mask space gives); "
                             f"got {values.dtype} values {np.unique(values)[:6].tolist()}")
        wanted = (self.policy.num_actions,) if batch is None else (batch, self.policy.num_actions)
        if values.shape != wanted:
            raise ValueError(f"action_mask has shape {values.shape}; the {'observation' if batch is None else 'batch'} "
                             f"needs {wanted} (one entry per action)")
        mask = torch.as_tensor(values.astype(bool), device=self.device)
        return mask.unsqueeze(0) if batch is None else mask

    def __repr__(self) -> str:
        return (f"Agent(algo={self.settings.algo.name!r}, env={self.env_name!r}, frames={self.frames}, "
                f"run_dir='{self.run_dir}')")

    @property
    def env_name(self) -> str:
        """The env's id or game."""
        env = self.settings.env
        return str(env.game if env.game else env.id)


def load_agent(run: str | os.PathLike[str], *, device: str = "cpu", checkpoint: str | os.PathLike[str] | None = None) -> Agent:
    """The trained agent of a run directory (or of one of its checkpoint files), on ``device``;
    ``checkpoint`` names another checkpoint of the directory than its last (``step_50000.pt``).

    The checkpoint is verified as a resume verifies it (:func:`open_run`), the agent rebuilt from
    the run's saved config, its networks loaded (refused, naming the first mismatch, when they do
    not fit) and the run's observation transforms restored and frozen. Nothing is written.

    Raises:
        RlkitError: a missing run or checkpoint, a corrupt or unsafe checkpoint, a checkpoint that
            does not fit the run's config, an env that cannot be built (each names the problem).

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> import rlkit
        >>> out = tempfile.mkdtemp()
        >>> result = rlkit.train(["total_frames=300", "trainer.progress=false", "logger=none"], output_dir=out)
        >>> agent = rlkit.load_agent(out)
        >>> agent.act(np.zeros(4, dtype=np.float32)) in (0, 1)
        True
    """
    loaded = open_run(run, device=device, checkpoint=checkpoint)
    return restore_agent(loaded)


def given_or_loaded(agent: Agent | None, run: str | os.PathLike[str], *, device: str,
                    checkpoint: str | os.PathLike[str] | None) -> Agent:
    """``agent``, which a caller loaded already, else :func:`load_agent` of ``run`` (what
    :func:`rlkit.evaluate` and :func:`rlkit.export` act with).

    Raises:
        ConfigError: both ``agent`` and ``checkpoint`` (the agent's checkpoint is chosen already), or
            an ``agent`` that ``run`` does not name (the agent's run directory, the multi-seed run
            that directory is a seed of, or the checkpoint file the agent was loaded from).
        RlkitError: what :func:`load_agent` raises.
    """
    if agent is None:
        return load_agent(run, device=device, checkpoint=checkpoint)
    if checkpoint is not None:
        raise ConfigError(f"checkpoint={os.fspath(checkpoint)!r} with agent=: the agent was loaded from "
                          f"{agent.checkpoint} already; give one or the other")
    named = Path(run).resolve()
    if named.is_file():
        if named != Path(agent.checkpoint).resolve():
            raise ConfigError(f"run={os.fspath(run)!r} with agent=: the agent was loaded from {agent.checkpoint}, "
                              "another checkpoint; give that file or its run directory, or leave agent= out")
    elif named not in {Path(agent.run_dir).resolve(), run_dir_of(agent.checkpoint).resolve()}:
        raise ConfigError(f"run={os.fspath(run)!r} with agent=: the agent was loaded from {agent.checkpoint} (run "
                          f"{agent.run_dir}), another run; give that run, or leave agent= out")
    return agent


def restore_agent(loaded: LoadedRun) -> Agent:
    """:func:`load_agent` of a run opened by :func:`open_run`."""
    settings, state = loaded.settings, loaded.state
    where = f"{loaded.checkpoint} does not belong to the run in {loaded.run_dir}"
    env = make_env(settings, num_envs=1, seed=settings.root.seed)
    try:
        parts = build_agent(settings, env)
        saved = state.get("components", {}).get("loss_module") if isinstance(state.get("components"), Mapping) else None
        if saved is not None and saved != type(parts.loss).__name__:
            raise CheckpointMismatchError(f"{where}: its loss is {saved}, the config builds "
                                          f"{type(parts.loss).__name__}")
        if "loss_module" not in state:
            raise CheckpointMismatchError(f"{loaded.checkpoint} holds no networks (no 'loss_module' entry)")
        loss_state = dict(state["loss_module"])
        collector_state = state.get("collector", {})
        if loaded.seed_index is not None:  # one seed of a multi-seed run's stacked networks
            loss_state = _seed_slice(parts.loss.state_dict(), loss_state, loaded.seed_index, len(state["seeds"]))
            collector_state = collector_state.get("collectors", [{}] * len(state["seeds"]))[loaded.seed_index]
        mismatch = first_mismatch(dict(parts.loss.state_dict()), loss_state, "loss_module")
        if mismatch:
            raise CheckpointMismatchError(f"{where}: {mismatch}")
        parts.loss.load_state_dict(loss_state)
        transforms = env.transforms
        saved_transforms = collector_state.get("env", {}).get("transforms", [])
        if loaded.seed_index is not None:  # a seed that stopped early: its statistics when it stopped
            outputs = state.get("outputs") or []
            at_stop = outputs[loaded.seed_index].get("frozen_transforms") if loaded.seed_index < len(outputs) else None
            saved_transforms = saved_transforms if at_stop is None else at_stop
        if len(saved_transforms) != len(transforms):
            raise CheckpointMismatchError(f"{where}: it holds {len(saved_transforms)} env transform state(s), the "
                                          f"config builds {len(transforms)}")
        for transform, transform_state in zip(transforms, saved_transforms):
            transform.load_state_dict(transform_state)
        frozen = [transform.frozen() for transform in transforms]
        observation_spec = env.source_observation_spec[keys.OBSERVATION]
        action_spec = env.action_spec
        raw = env.vector_env.single_observation_space
        if isinstance(raw, gym.spaces.Dict):
            raw = raw[keys.OBSERVATION]
        discrete = (int(raw.n), int(raw.start)) if isinstance(raw, gym.spaces.Discrete) else None
    finally:
        env.close()
    try:
        observation_transform = nn.Sequential(*[t.observation_module() for t in frozen])
    except ValueError as err:  # statistics that never saw an observation: not a trained run's
        raise CheckpointMismatchError(f"{loaded.checkpoint}: {err}") from None
    num_actions = action_spec.n if isinstance(action_spec, (Categorical, OneHot)) else 0
    actor = parts.greedy_policy
    policy = PolicyModule(actor, observation_transform, observation_spec.dtype, num_actions)
    policy.to(settings.root.device).eval()
    parts.loss.eval()
    return Agent(policy=policy, actor=actor, loss=parts.loss, observation_spec=observation_spec,
                 action_spec=action_spec, transforms=frozen, settings=settings, run_dir=loaded.run_dir,
                 discrete_observations=discrete,
                 checkpoint=loaded.checkpoint, frames=_frames_trained(state, loaded.seed_index))


def _frames_trained(state: Mapping[str, Any], seed_index: int | None) -> int:
    """The frames the loaded parameters were trained for: the checkpoint's, or for a seed of a
    multi-seed run that stopped early or was dropped, the frame at which it ended (its parameters
    are those of that frame; the other seeds trained on)."""
    frames = int(state.get("frames", 0))
    if seed_index is None:
        return frames
    outputs = state.get("outputs") or []
    ended = outputs[seed_index].get("ended") if seed_index < len(outputs) else None
    return int(ended[0]) if ended else frames


def check_positive(name: str, value: Any) -> int:
    """``value`` as a positive int, else a :class:`~rlkit.errors.ConfigError` naming ``name``.

    Examples:
        >>> from rlkit.agent import check_positive
        >>> check_positive("episodes", 3)
        3
        >>> check_positive("episodes", 0)
        Traceback (most recent call last):
        ...
        rlkit.errors.ConfigError: episodes=0 is invalid: expected a positive integer
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name}={value!r} is invalid: expected a positive integer")
    return int(value)

