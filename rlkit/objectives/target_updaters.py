"""Target-network updaters: copy (hard) or move (soft) a loss's target parameters towards its online ones."""
from __future__ import annotations

import abc
from typing import Any

import torch

from rlkit.objectives.common import LossModule

__all__ = ["HardUpdate", "SoftUpdate", "TargetNetUpdater"]


class TargetNetUpdater(abc.ABC):
    """Base class of the target-network updaters.

    The updater reads every network the loss created target parameters for (``<name>_params`` ->
    ``target_<name>_params``) and updates the targets in place, so any module bound to them follows.

    Args:
        loss: a :class:`~rlkit.objectives.LossModule` with at least one target network.
    """

    def __init__(self, loss: LossModule) -> None:
        names = [name for name, info in loss._functional_nets.items() if info.has_target]
        if not names:
            raise ValueError(
                f"{type(loss).__name__} has no target parameters to update; build it with a delayed "
                "target network (e.g. delay_value=True)."
            )
        self.loss = loss
        self.network_names = tuple(names)

    def _pairs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        pairs = []
        for name in self.network_names:
            online = getattr(self.loss, f"{name}_params")
            target = getattr(self.loss, f"target_{name}_params")
            for key, target_value in target.items(include_nested=True, leaves_only=True):
                pairs.append((target_value, online.get(key)))
        return pairs

    @torch.no_grad()
    def init_(self) -> None:
        """Copy the online parameters into the targets (a hard update, whatever the updater)."""
        for target, online in self._pairs():
            target.copy_(online)

    @abc.abstractmethod
    def step(self) -> None:
        """Advance the updater by one optimisation step, updating the targets when it is due."""

    def state_dict(self) -> dict[str, Any]:
        """The updater's own state (counters), to checkpoint next to the loss."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class SoftUpdate(TargetNetUpdater):
    """Polyak averaging of the target parameters, once per :meth:`step`.

    ``target <- eps * target + (1 - eps) * online`` with ``eps = 1 - tau``; give exactly one of them.
    Non floating-point entries (counters) are copied. See Lillicrap et al., 2015,
    https://arxiv.org/abs/1509.02971.

    Args:
        loss: the loss owning the target parameters.
        eps: weight kept on the old target, in ``[0, 1]``.
        tau: weight given to the online parameters, in ``[0, 1]``.

    Examples:
        >>> import torch
        >>> from rlkit.modules import QValueActor
        >>> from rlkit.objectives import DQNLoss, SoftUpdate
        >>> loss = DQNLoss(QValueActor(torch.nn.Linear(4, 2), action_space="categorical"))
        >>> updater = SoftUpdate(loss, tau=0.005)
        >>> updater.step()
    """

    def __init__(self, loss: LossModule, *, eps: float | None = None, tau: float | None = None) -> None:
        if (eps is None) == (tau is None):
            raise ValueError(f"SoftUpdate needs exactly one of eps and tau, got eps={eps!r} and tau={tau!r}.")
        if eps is None:
            assert tau is not None  # exactly one of them (checked above)
            if not 0.0 <= tau <= 1.0:
                raise ValueError(f"SoftUpdate needs tau (= 1 - eps) in [0, 1], got tau={tau!r}.")
            eps = 1.0 - tau
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"SoftUpdate needs eps (= 1 - tau) in [0, 1], got eps={eps!r}.")
        super().__init__(loss)
        self.eps = float(eps)

    @torch.no_grad()
    def step(self) -> None:
        for target, online in self._pairs():
            if target.is_floating_point():
                target.mul_(self.eps).add_(online, alpha=1.0 - self.eps)
            else:
                target.copy_(online)


class HardUpdate(TargetNetUpdater):
    """Copy the online parameters into the targets every ``value_network_update_interval`` steps.

    The copy happens on calls ``N, 2N, 3N, ...`` of :meth:`step` (``N`` = the interval), never on call 0.
    See Mnih et al., 2015, https://www.nature.com/articles/nature14236.

    Args:
        loss: the loss owning the target parameters.
        value_network_update_interval: number of :meth:`step` calls between two copies (>= 1).

    Examples:
        >>> import torch
        >>> from rlkit.modules import QValueActor
        >>> from rlkit.objectives import DQNLoss, HardUpdate
        >>> loss = DQNLoss(QValueActor(torch.nn.Linear(4, 2), action_space="categorical"))
        >>> updater = HardUpdate(loss, value_network_update_interval=2)
        >>> updater.step(); updater.step()  # the second call copies
        >>> updater.counter
        2
    """

    def __init__(self, loss: LossModule, *, value_network_update_interval: int = 1000) -> None:
        interval = value_network_update_interval
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"value_network_update_interval must be an integer >= 1, got {interval!r}.")
        super().__init__(loss)
        self.value_network_update_interval = interval
        self.counter = 0

    def step(self) -> None:
        self.counter += 1
        if self.counter % self.value_network_update_interval == 0:
            self.init_()

    def state_dict(self) -> dict[str, Any]:
        return {"counter": self.counter}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.counter = int(state_dict["counter"])
