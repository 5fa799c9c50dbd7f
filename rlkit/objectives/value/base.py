"""The value-estimator base: keys, hyperparameter buffers, value-network calls, data reading."""
from __future__ import annotations

import abc
import contextlib
import dataclasses
import numbers
from enum import Enum
from typing import Any, ClassVar, cast

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey, unravel_key
from torch import nn

from rlkit import keys
from rlkit.utils.tensordicts import call_with_params


class ValueEstimators(str, Enum):
    """Names of the value estimators, as used by losses and configs.

    Examples:
        >>> from rlkit.objectives.value import ValueEstimators
        >>> ValueEstimators("td_lambda") is ValueEstimators.TDLambda
        True
    """

    TD0 = "td0"
    TD1 = "td1"
    TDLambda = "td_lambda"
    GAE = "gae"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def resolve(cls, name: ValueEstimators | str | None) -> ValueEstimators:
        """The member for a member, its value or its name (any case): the one place where estimator
        names are resolved.

        Examples:
            >>> from rlkit.objectives.value import ValueEstimators
            >>> ValueEstimators.resolve("TDLambda") is ValueEstimators.resolve("td_lambda")
            True

        Raises:
            ValueError: any other name (or ``None``), listing the valid ones.
        """
        if isinstance(name, cls):
            return name
        if isinstance(name, str):
            wanted = name.lower()
            for member in cls:
                if wanted in (member.value, member.name.lower()):
                    return member
        raise ValueError(f"Unknown value estimator {name!r}; valid choices: {[m.value for m in cls]} (or the "
                         f"member names, any case).")


def check_factor(value: float | torch.Tensor, name: str) -> torch.Tensor:
    """Validate a hyperparameter in ``[0, 1]`` given as a number or a one-element tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or not value.is_floating_point():
            raise ValueError(
                f"{name} must be a float in [0, 1] or a one-element floating tensor, got a tensor of "
                f"shape {tuple(value.shape)} and dtype {value.dtype}"
            )
        number = float(value.detach().reshape(()).item())
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"{name} must be a float in [0, 1], got {value!r}")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {number}")
    return torch.tensor(number, dtype=torch.get_default_dtype())


class ValueEstimatorBase(TensorDictModuleBase, abc.ABC):
    """Base of the value estimators: reads a ``[*B, T]`` TensorDict, writes advantage and value target.

    Subclasses provide :meth:`_estimate` (the kernel call). The base owns the key names
    (:meth:`set_keys`), the ``gamma`` buffer, the value-network calls and the reading of rewards and
    flags, which live under ``"next"``. Where ``("next", terminated)`` is absent it is derived as
    ``done & ~truncated`` when truncated is present, else taken equal to done (no bootstrapping at any
    done step); where ``("next", done)`` is absent it is ``terminated | truncated``.

    Values: ``state_value`` is read from the TensorDict when present, else computed by
    ``value_network`` (with ``params`` when given). The next value is computed by ``value_network`` on
    ``td["next"]`` with ``target_params`` (falling back on ``params``, then the network's own
    parameters) whenever a network is given; without a network it is read from
    ``("next", state_value)``. Unless ``differentiable``, all of it runs without gradient.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.objectives.value import TD0Estimator, ValueEstimatorBase
        >>> est = TD0Estimator(gamma=0.5)
        >>> est.set_keys(reward="r")
        >>> isinstance(est, ValueEstimatorBase), est.in_keys
        (True, [('next', 'r'), ('next', 'done'), ('next', 'terminated'), ('next', 'truncated')])
        >>> td = TensorDict({"next": {"r": torch.ones(2, 1), "done": torch.zeros(2, 1, dtype=torch.bool)}},
        ...                 batch_size=[2])
        >>> est.value_estimate(td, next_value=torch.full((2, 1), 4.0)).flatten().tolist()
        [3.0, 3.0]
    """

    @dataclasses.dataclass
    class _AcceptedKeys:
        """Default TensorDict keys; change them with :meth:`set_keys`."""

        advantage: NestedKey = keys.ADVANTAGE
        value_target: NestedKey = keys.VALUE_TARGET
        value: NestedKey = keys.STATE_VALUE
        reward: NestedKey = keys.REWARD
        done: NestedKey = keys.DONE
        terminated: NestedKey = keys.TERMINATED
        truncated: NestedKey = keys.TRUNCATED

    #: Which :class:`ValueEstimators` member the class implements.
    value_type: ClassVar[ValueEstimators]
    #: Whether the estimator chains steps over time and so needs a ``[*B, T]`` batch.
    needs_time_dim: ClassVar[bool] = True
    #: Whether :meth:`value_estimate` needs ``V(s[t])`` (GAE) besides the next value.
    target_needs_state_value: ClassVar[bool] = False
    #: Leading batch dims indexing independent models (the seeds of a multi-seed run): statistics
    #: over the batch (GAE's ``average_gae``) are taken per model. Its loss keeps it equal to the
    #: loss's own :attr:`~rlkit.objectives.LossModule.stacked_dims`.
    stacked_dims: int = 0

    gamma: torch.Tensor
    # Nested keys of any depth. tensordict annotates the in_keys/out_keys setter of
    # TensorDictModuleBase as List[Union[str, Tuple[str]]] (one-element tuples only), too narrow.
    in_keys: list[NestedKey]  # type: ignore[override]
    out_keys: list[NestedKey]  # type: ignore[override]

    def __init__(
        self,
        *,
        gamma: float | torch.Tensor,
        value_network: nn.Module | None = None,
        differentiable: bool = False,
    ) -> None:
        super().__init__()
        self.register_buffer("gamma", check_factor(gamma, "gamma"))
        self.value_network = value_network
        self.differentiable = bool(differentiable)
        self.tensor_keys = self._AcceptedKeys()
        self._refresh_keys()

    # -- keys ------------------------------------------------------------------------------------
    def set_keys(self, **kwargs: NestedKey | None) -> None:
        """Rename TensorDict keys; ``None`` restores a key's default.

        Raises:
            ValueError: for a name that is not an accepted key.
        """
        accepted = [f.name for f in dataclasses.fields(self._AcceptedKeys)]
        defaults = self._AcceptedKeys()
        unknown = [name for name in kwargs if name not in accepted]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not an accepted key; accepted keys: {accepted}")
        for name, key in kwargs.items():
            setattr(self.tensor_keys, name, getattr(defaults, name) if key is None else key)
        self._refresh_keys()

    def _next(self, key: NestedKey) -> NestedKey:
        return unravel_key((keys.NEXT, key))

    def _refresh_keys(self) -> None:
        keys = self.tensor_keys
        net_in = list(getattr(self.value_network, "in_keys", []))
        self.in_keys = [
            *net_in,
            *[self._next(k) for k in net_in],
            *[self._next(k) for k in (keys.reward, keys.done, keys.terminated, keys.truncated)],
        ]
        self.out_keys = [keys.advantage, keys.value_target, keys.value, self._next(keys.value)]
        # ("next", ...) keys of the reward and flags, read on every call
        self._next_reward, self._next_done, self._next_terminated, self._next_truncated = (
            self._next(k) for k in (keys.reward, keys.done, keys.terminated, keys.truncated))

    # -- reading the data ------------------------------------------------------------------------
    def _check_batch(self, td: TensorDictBase) -> None:
        if self.needs_time_dim and td.batch_dims < 2:
            raise ValueError(
                f"{type(self).__name__} needs a TensorDict with batch dims [*B, T] (time last), for "
                f"instance from slice sampling or an on-policy rollout; got batch size "
                f"{tuple(td.batch_size)}. On a flat batch it would chain unrelated samples as time; "
                "use TD0Estimator for flat batches."
            )

    def _read(self, td: TensorDictBase, key: NestedKey, what: str) -> torch.Tensor:
        value = td.get(key, None)
        if value is None:
            raise ValueError(
                f"{type(self).__name__} needs {what} under key {key!r}, which is missing; keys "
                f"present: {sorted(map(str, td.keys(include_nested=True, leaves_only=True)))}"
            )
        return value

    def flags(self, td: TensorDictBase) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``done`` and ``terminated`` flags of a batch as this estimator reads them: a missing
        ``terminated`` is ``done & ~truncated`` (``done`` without ``truncated``), a missing ``done`` is
        ``terminated | truncated``."""
        done = td.get(self._next_done, None)
        terminated = td.get(self._next_terminated, None)
        if done is not None and terminated is not None:
            return done, terminated  # truncated only fills in a missing flag
        truncated = td.get(self._next_truncated, None)
        if done is None and terminated is None:
            self._read(td, self._next_done, "the done flag (or the terminated flag)")
        for key, flag in ((self._next_done, done), (self._next_terminated, terminated), (self._next_truncated, truncated)):
            if flag is not None and flag.dtype != torch.bool:  # (combined below, where only bools mix)
                raise ValueError(f"{type(self).__name__} needs bool flags; {key!r} has dtype {flag.dtype}")
        if done is None:
            done = terminated if truncated is None else terminated | truncated
        if terminated is None:
            terminated = done if truncated is None else done & ~truncated
        return done, terminated

    def _maybe_detach(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.differentiable else x.detach()

    def _grad_context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self.differentiable else torch.no_grad()

    def _run_network(
        self, td: TensorDictBase, params: TensorDictBase | None, where: str
    ) -> torch.Tensor:
        key = self.tensor_keys.value
        # Only called with a network: _state_value and _next_value read the value instead without one.
        assert self.value_network is not None
        with self._grad_context():
            if params is None:
                self.value_network(td)
            else:
                network = self.value_network
                call_with_params(params, network, lambda: network(td))
        value = td.get(key, None)
        if value is None:
            raise ValueError(
                f"the value network did not write the value key {key!r} on {where}; its out_keys "
                f"are {getattr(self.value_network, 'out_keys', None)}. Use set_keys(value=...) to "
                "name the key it writes."
            )
        return value

    def _check_value_shape(self, value: torch.Tensor, td: TensorDictBase, name: str) -> torch.Tensor:
        expected = td.batch_size + (1,)
        if value.shape != expected:
            raise ValueError(
                f"{name} has shape {tuple(value.shape)}, expected {tuple(expected)} (the TensorDict's "
                "batch size plus a trailing singleton dim)"
            )
        return self._maybe_detach(value)

    def _state_value(self, td: TensorDictBase, params: TensorDictBase | None) -> torch.Tensor:
        key = self.tensor_keys.value
        value = td.get(key, None)
        if value is None:
            if self.value_network is None:
                self._read(td, key, "the state value (no value_network was given to compute it)")
            return self._computed_value(td, td, key, params, "the current step", f"state value {key!r}")
        return self._check_value_shape(value, td, f"state value {key!r}")

    def _computed_value(self, td: TensorDictBase, written: TensorDictBase, key: NestedKey,
                        params: TensorDictBase | None, where: str, name: str) -> torch.Tensor:
        """The value network's output on ``written`` (``td`` or its ``"next"``), shape-checked; a value
        that fails the check is not left in ``written``, where the next call would read it."""
        value = self._run_network(written, params, where)
        try:
            return self._check_value_shape(value, td, name)
        except ValueError:
            written.del_(key)
            raise

    def _next_value(
        self,
        td: TensorDictBase,
        params: TensorDictBase | None,
        target_params: TensorDictBase | None,
    ) -> torch.Tensor:
        key = self._next(self.tensor_keys.value)
        if self.value_network is None:
            value = self._read(td, key, "the next state value (no value_network was given)")
        else:
            next_td = cast(TensorDictBase, self._read(td, keys.NEXT, "the next-step entries"))  # a sub-TensorDict
            chosen = target_params if target_params is not None else params
            return self._computed_value(td, next_td, self.tensor_keys.value, chosen, "td['next']",
                                        f"next state value {key!r}")
        return self._check_value_shape(value, td, f"next state value {key!r}")

    # -- public API ------------------------------------------------------------------------------
    def forward(
        self,
        td: TensorDictBase,
        *,
        params: TensorDictBase | None = None,
        target_params: TensorDictBase | None = None,
        next_value: torch.Tensor | None = None,
    ) -> TensorDictBase:
        """Write advantage and value target (and the values the network computed) into ``td``.

        Args:
            td: the batch, ``[*B, T]`` with time last (any shape for TD0).
            params: parameters for ``V(s[t])`` (swapped into the network for the call).
            target_params: parameters for ``V(s[t+1])``; ``params`` when not given.
            next_value: ``V(s[t+1])``, ``td.batch_size + (1,)``; when given no network computes it
                (a caller that evaluated ``V(s)`` and ``V(s')`` in one network call passes it).

        Returns:
            ``td``, with ``advantage`` and ``value_target`` of shape ``td.batch_size + (1,)``.
        """
        self._check_batch(td)
        keys = self.tensor_keys
        value = self._state_value(td, params)
        if next_value is None:
            next_value = self._next_value(td, params, target_params)
        else:
            next_value = self._check_value_shape(next_value, td, "next_value")
        advantage, target = self._estimate_flat(td, value, next_value)
        # The values are already in td (read from it, or written there by the network); they are not
        # written back, so a detached copy never replaces an entry that carries gradients.
        assert advantage is not None  # computed from the state value
        td.set(keys.advantage, self._post_advantage(advantage))
        td.set(keys.value_target, target)
        return td

    def value_estimate(
        self,
        td: TensorDictBase,
        *,
        params: TensorDictBase | None = None,
        target_params: TensorDictBase | None = None,
        next_value: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the value target ``[*B, T, 1]`` without writing into ``td``.

        Args:
            td: the batch, ``[*B, T]`` (any shape for TD0).
            params: parameters for ``V(s[t])``; only GAE reads ``V(s[t])``.
            target_params: parameters for the next value.
            next_value: the next value, ``td.batch_size + (1,)``; when given no network computes
                it (the DQN losses pass their max-Q next value this way).
        """
        self._check_batch(td)
        if next_value is None:
            next_value = self._next_value(td, params, target_params)
        else:
            next_value = self._check_value_shape(next_value, td, "next_value")
        value = self._state_value(td, params) if self.target_needs_state_value else None
        return self._estimate_flat(td, value, next_value)[1]

    def _estimate_flat(
        self, td: TensorDictBase, value: torch.Tensor | None, next_value: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        reward = self._read(td, self._next_reward, "the reward")
        done, terminated = self.flags(td)
        if td.batch_dims > 0:
            return self._estimate(value, next_value, reward, done, terminated)
        # A batch-less TensorDict (TD0 only) gets a unit time dim for the kernel.
        args: list[Any] = [None if x is None else x.unsqueeze(0) for x in (value, next_value, reward, done, terminated)]
        advantage, target = self._estimate(*args)
        return (None if advantage is None else advantage.squeeze(0)), target.squeeze(0)

    def _post_advantage(self, advantage: torch.Tensor) -> torch.Tensor:
        return advantage

    @abc.abstractmethod
    def _estimate(
        self,
        value: torch.Tensor | None,
        next_value: torch.Tensor,
        reward: torch.Tensor,
        done: torch.Tensor,
        terminated: torch.Tensor,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Return ``(advantage or None when value is None, value_target)``, all ``[*B, T, 1]``."""
