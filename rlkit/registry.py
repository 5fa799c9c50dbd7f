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
        stacked_seeds: whether it trains several seeds in one process (``num_seeds > 1``,
            :mod:`rlkit.trainers.multiseed`): its loss honours
            :attr:`~rlkit.objectives.LossModule.stacked_dims` (each ``loss_*`` entry keeps the
            leading seed dim, and no seed's loss reads another's samples) and its agent is built of
            rlkit's stackable networks. Without it, ``num_seeds > 1`` is refused before the run
            starts.
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
    stacked_seeds: bool = False

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

#: The ``algo`` fields the generic builders and the trainer read from every algorithm's section
#: (the collection's size, the optimiser and its schedule, the gradient clipping), and those an
#: on-policy one adds (the rollout length); an off-policy schema derives from
#: :class:`rlkit.agents.common.OffPolicyConfig`, which holds the replay, exploration and
#: target-update fields.
COMMON_FIELDS: tuple[str, ...] = ("name", "num_envs", "optim", "lr_schedule", "max_grad_norm")
ON_POLICY_FIELDS: tuple[str, ...] = ("n_steps",)


def missing_fields(algorithm: Algorithm) -> list[str]:
    """The fields the builders read that ``algorithm``'s schema lacks (empty: none).

    Examples:
        >>> import rlkit.agents  # registers the built-in algorithms
        >>> from rlkit.registry import ALGORITHMS, missing_fields
        >>> [missing_fields(entry) for _, entry in sorted(ALGORITHMS.items())]
        [[], [], []]
    """
    import dataclasses

    from rlkit.agents.common import OffPolicyConfig

    schema = algorithm.schema
    fields = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else set()
    needed = list(COMMON_FIELDS)
    if algorithm.off_policy:
        needed += [f.name for f in dataclasses.fields(OffPolicyConfig)]
    else:
        needed += list(ON_POLICY_FIELDS)
    return [name for name in dict.fromkeys(needed) if name not in fields]


def register_algorithm(algorithm: Algorithm, *, replace: bool = False) -> Algorithm:
    """Adds ``algorithm`` to :data:`ALGORITHMS` (returned, so a module can keep it).

    Raises:
        ValueError: the name is taken (unless ``replace``), the loss declares no value estimator, or
            the schema is not a dataclass or lacks fields the builders read (:func:`missing_fields`:
            :data:`COMMON_FIELDS`, and for an on-policy algorithm :data:`ON_POLICY_FIELDS`; an
            off-policy one derives from :class:`rlkit.agents.common.OffPolicyConfig`).
    """
    import dataclasses

    if algorithm.name in ALGORITHMS and not replace:
        raise ValueError(f"an algorithm named {algorithm.name!r} is registered already; pass replace=True")
    if not getattr(algorithm.loss, "supported_value_estimators", None):
        raise ValueError(f"{algorithm.loss.__name__} declares no supported_value_estimators")
    if not dataclasses.is_dataclass(algorithm.schema):
        raise ValueError(f"algorithm {algorithm.name!r}: its schema {algorithm.schema!r} is not a dataclass (the "
                         "fields of its algo section)")
    missing = missing_fields(algorithm)
    if missing:
        shown = missing if len(missing) <= 6 else [*missing[:6], f"... {len(missing) - 6} more"]
        kind = ("an off-policy one (it declares replay_keys): derive the schema from "
                "rlkit.agents.common.OffPolicyConfig, which has them" if algorithm.off_policy
                else f"an on-policy one: {list(COMMON_FIELDS + ON_POLICY_FIELDS)}")
        raise ValueError(f"algorithm {algorithm.name!r}: its schema {algorithm.schema.__name__} lacks {shown}, which "
                         f"the builders read from every algorithm's section ({kind})")
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
