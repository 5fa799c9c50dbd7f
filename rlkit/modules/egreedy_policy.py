"""Epsilon-greedy acting that calls the greedy policy only where its action is used."""
from __future__ import annotations

from collections.abc import Callable

import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import unravel_key

from rlkit.modules.exploration import EGreedyModule, ExplorationType, exploration_type, random_action


class EGreedyPolicy(TensorDictModuleBase):
    """Epsilon-greedy acting with a greedy ``policy`` and the schedule of an :class:`EGreedyModule`.

    The actions follow the same distribution as ``TensorDictSequential(policy, explore)``: each
    batch entry takes a uniformly random allowed action with probability ``explore.eps`` and the
    policy's action otherwise. The difference is the order: the exploration coins are drawn first,
    and the policy runs only when at least one entry acts greedily. Early in training, when ``eps``
    is close to 1, most steps then cost no network call. For that reason only the action is
    written: the policy's other outputs (e.g. ``"action_value"``) would be missing on exploring
    steps. Under a non-``RANDOM`` exploration type the policy's action is written unchanged.

    ``explore`` keeps the schedule (``step``, ``eps``, its ``state_dict``) and the keys: the action
    is read from and written to ``explore.action_key``, the mask from ``explore.action_mask_key``.

    Args:
        policy: the greedy policy, a TensorDict module writing ``explore.action_key``.
        explore: the epsilon-greedy module whose schedule, spec and keys are used.
        input_event_dims: trailing dims of the policy's first input that are not batch dims
            (1 for vector observations, 3 for ``[C, H, W]`` images). Only the dict call
            (:meth:`entry_function`) needs it; a TensorDict has its batch size.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data import Categorical
        >>> from rlkit.modules import EGreedyModule, QValueActor
        >>> actor = QValueActor(torch.nn.Linear(4, 2), spec=Categorical(2))
        >>> policy = EGreedyPolicy(actor, EGreedyModule(Categorical(2), eps_init=1.0, eps_end=0.05))
        >>> td = policy(TensorDict(observation=torch.randn(5, 4), batch_size=[5]))
        >>> sorted(td.keys()), td["action"].shape
        (['action', 'observation'], torch.Size([5]))
    """

    def __init__(self, policy: TensorDictModuleBase, explore: EGreedyModule, *, input_event_dims: int = 1) -> None:
        super().__init__()
        if not isinstance(explore, EGreedyModule):
            raise TypeError(f"EGreedyPolicy needs an EGreedyModule as explore, got {type(explore).__name__}")
        if explore.action_key not in policy.out_keys:
            raise ValueError(
                f"the policy writes {list(policy.out_keys)}, not the action key {explore.action_key!r} "
                "that the exploration module replaces"
            )
        if isinstance(input_event_dims, bool) or not isinstance(input_event_dims, int) or input_event_dims < 0:
            raise ValueError(f"input_event_dims must be an int >= 0, got {input_event_dims!r}")
        self.policy = policy
        self.explore = explore
        self.input_event_dims = input_event_dims
        mask_key = explore.action_mask_key
        self.in_keys = list(policy.in_keys) + ([mask_key] if mask_key is not None and mask_key not in policy.in_keys
                                               else [])
        self.out_keys = [explore.action_key]

    def _act(self, batch: torch.Size, greedy: Callable[[], torch.Tensor], mask: torch.Tensor | None,
             device: torch.device) -> torch.Tensor:
        """Coins first; ``greedy()`` only when some entry acts greedily."""
        explore = self.explore
        coin = torch.rand(batch, device=device) < explore.eps.to(device)
        if bool(coin.all()):
            return random_action(explore.spec, batch, mask, device)
        action = greedy()
        if not bool(coin.any()):
            return action
        random = random_action(explore.spec, batch, mask, device).to(device=action.device, dtype=action.dtype)
        return torch.where(coin.reshape(batch + (1,) * (action.dim() - len(batch))), random, action)

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        key, mask_key = self.explore.action_key, self.explore.action_mask_key

        def greedy() -> torch.Tensor:
            out = self.policy(tensordict.select(*self.policy.in_keys))
            return out.get(key)

        if exploration_type() != ExplorationType.RANDOM:
            action = greedy()
        else:
            mask = None if mask_key is None else tensordict.get(mask_key)
            action = self._act(tensordict.batch_size, greedy, mask, tensordict.device or _device_of(tensordict))
        tensordict.set(key, action)
        return tensordict

    def entry_function(self) -> Callable[[dict], None] | None:
        """:meth:`forward` on a plain dict of tensors (see :func:`rlkit.modules.entry_function`);
        ``None`` when the policy has no dict form."""
        from rlkit.modules._entries import entry_function

        run_policy = entry_function(self.policy)
        if run_policy is None:
            return None
        key = unravel_key(self.explore.action_key)
        mask_key = None if self.explore.action_mask_key is None else unravel_key(self.explore.action_mask_key)
        in_keys = [unravel_key(k) for k in self.policy.in_keys]
        event_dims = self.input_event_dims

        def run(entries: dict) -> None:
            def greedy() -> torch.Tensor:
                sub = {k: entries[k] for k in in_keys if k in entries}  # the policy names what is missing
                run_policy(sub)
                return sub[key]

            if exploration_type() != ExplorationType.RANDOM:
                entries[key] = greedy()
                return
            missing = [k for k in (in_keys[0], mask_key) if k is not None and k not in entries]
            if missing:
                raise KeyError(f"EGreedyPolicy reads {missing}, which are missing; keys present: "
                               f"{sorted(map(str, entries))}")
            first = entries[in_keys[0]]
            mask = None if mask_key is None else entries[mask_key]
            entries[key] = self._act(first.shape[: first.dim() - event_dims], greedy, mask, first.device)

        return run


def _device_of(tensordict: TensorDictBase) -> torch.device:
    for value in tensordict.values(include_nested=True, leaves_only=True):
        return value.device
    return torch.device("cpu")
