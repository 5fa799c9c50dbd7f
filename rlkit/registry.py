"""The algorithms rlkit can train, each declaring what the generic builders need to know.

An :class:`Algorithm` entry declares its config schema (the ``algo`` section, validated by
:func:`rlkit.builders.validate_config`), its loss class (which declares the value estimators it
supports), the function that builds its agent from the validated settings and the env, and how it
learns: off-policy (a replay buffer, the keys it stores, how to read the slice length of
multi-step estimators) or on-policy. The builders and the trainer read these declarations; no code
outside this registry tests an algorithm's name.

Examples:
    >>> import rlkit.agents  # registers the built-in algorithms
    >>> from rlkit.registry import ALGORITHMS, get_algorithm
    >>> sorted(ALGORITHMS)
    ['a2c', 'c51', 'dqn']
    >>> get_algorithm("dqn").off_policy, get_algorithm("a2c").off_policy
    (True, False)
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tensordict.utils import NestedKey

if TYPE_CHECKING:
    from rlkit.objectives import LossModule

__all__ = ["ALGORITHMS", "Algorithm", "get_algorithm", "register_algorithm"]


@dataclass(frozen=True)
class Algorithm:
    """What the builders need to know about one algorithm.

    Attributes:
        name: the registry key, the ``name`` of its ``conf/algo/<name>.yaml``.
        schema: the dataclass of its ``algo`` config section (required fields: the YAML owns the
            values; ``__post_init__`` checks ranges).
        loss: its :class:`~rlkit.objectives.LossModule` class (``supported_value_estimators``).
        build_agent: ``(settings, env) -> Agent``: the loss, the acting and greedy policies, the
            exploration module.
        replay_keys: for an off-policy algorithm, ``agent -> keys`` of a transition its loss reads
            (the replay buffer stores only those); ``None`` for an on-policy algorithm (each
            collected ``[num_envs, T]`` rollout is optimised once).
        slice_len: for an off-policy algorithm whose loss supports multi-step estimators,
            ``algo settings -> T``, the length of the ``[B, T]`` slices they are trained on.
        action_spaces: the gymnasium action space kinds it supports (``"discrete"``, ``"box"``).
        action_masks: whether its policies honour an env's action masks (acting only on allowed
            actions); an env with masks is refused for an algorithm that does not.
        restored_on_resume: keys of its ``algo`` section whose values a checkpoint restores (the
            optimiser's arguments, exploration bounds, replay settings, the support): a resume
            refuses to change them (the new value would be recorded and never used).
    """

    name: str
    schema: type
    loss: type[LossModule]
    build_agent: Callable[[Any, Any], Any]
    replay_keys: Callable[[Any], list[NestedKey]] | None = None
    slice_len: Callable[[Any], int] | None = None
    action_spaces: tuple[str, ...] = ("discrete",)
    action_masks: bool = True
    restored_on_resume: tuple[str, ...] = ("optim",)

    @property
    def off_policy(self) -> bool:
        """Whether it learns from a replay buffer."""
        return self.replay_keys is not None

    @property
    def supported_value_estimators(self) -> list[str]:
        """Names of the value estimators its loss supports (default first)."""
        return [str(v) for v in self.loss.supported_value_estimators]


#: Name -> entry of every registered algorithm.
ALGORITHMS: dict[str, Algorithm] = {}


def register_algorithm(algorithm: Algorithm, *, replace: bool = False) -> Algorithm:
    """Adds ``algorithm`` to :data:`ALGORITHMS` (returned, so a module can keep it).

    Raises:
        ValueError: the name is taken (unless ``replace``), or the loss declares no value estimator.
    """
    if algorithm.name in ALGORITHMS and not replace:
        raise ValueError(f"an algorithm named {algorithm.name!r} is registered already; pass replace=True")
    if not getattr(algorithm.loss, "supported_value_estimators", None):
        raise ValueError(f"{algorithm.loss.__name__} declares no supported_value_estimators")
    ALGORITHMS[algorithm.name] = algorithm
    return algorithm


def get_algorithm(name: str) -> Algorithm:
    """The entry registered under ``name``.

    Raises:
        KeyError: unknown name (the message lists the registered ones).
    """
    if name not in ALGORITHMS:
        raise KeyError(f"algo={name!r} is not registered; valid choices: {sorted(ALGORITHMS)}")
    return ALGORITHMS[name]
