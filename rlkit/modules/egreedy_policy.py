"""Epsilon-greedy acting that calls the greedy policy only where its action is used."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import torch
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey

from rlkit.data.specs import Categorical, TensorSpec
from rlkit.modules._action_space import action_leaf_spec
from rlkit.modules.exploration import EGreedyModule, ExplorationType, exploration_type, random_action
from rlkit.modules.tensor_call import TensorModule, action_call


def _check_same_actions(policy: TensorDictModuleBase, explore: EGreedyModule) -> None:
    """Refuses an exploration module whose spec draws other actions than the policy's spec says it
    takes (a random action out of the policy's range, or of another layout)."""
    spec = getattr(policy, "spec", None)
    if not isinstance(spec, TensorSpec):
        return  # (a foreign policy without a spec: nothing to compare)
    try:
        own, theirs = action_leaf_spec(spec, explore.action_key), action_leaf_spec(explore.spec, explore.action_key)
    except KeyError:
        return  # (a spec without the action entry: nothing to compare)
    same = type(own) is type(theirs) and own.shape == theirs.shape and getattr(own, "n", None) == getattr(theirs, "n", None)
    if not same:
        raise ValueError(f"the exploration module's spec {theirs!r} draws other actions than the policy's spec {own!r}; "
                         "give EGreedyModule the policy's action spec")


class EGreedyPolicy(TensorModule, TensorDictModuleBase):
    """Epsilon-greedy acting with a greedy ``policy`` and the schedule of an :class:`EGreedyModule`.

    The actions follow the same distribution as ``TensorDictSequential(policy, explore)``: each
    batch entry takes a uniformly random allowed action with probability ``explore.eps`` and the
    policy's action otherwise. The difference is the order: the exploration coins are drawn first,
    and the policy runs only when at least one entry acts greedily. Early in training, when ``eps``
    is close to 1, most steps then cost no network call. For that reason only the action is
    written: the policy's other outputs (e.g. ``"action_value"``) would be missing on exploring
    steps. Under a non-``RANDOM`` exploration type the policy's action is written unchanged.
    Actions have the spec's dtype.

    The batch dims are those of the policy's first input minus its event dims, which the first
    call reads off the greedy action (as :class:`EGreedyModule` does: the action's shape less the
    spec's); so the first call always runs the policy, and the coins come first from the second
    call on.

    ``explore`` keeps the schedule (``step``, ``eps``, its ``state_dict``) and the keys: the action
    is read from and written to ``explore.action_key``, the mask from ``explore.action_mask_key``.

    The coins are drawn on the CPU, from the CPU generator, whatever the device of the inputs: they
    are read back as floats at every step, which on an accelerator would wait for the device, and
    a run on an accelerator explores with the coins of the CPU run of its seed. Only the mask of
    the exploring entries moves to the action's device (when some entries explore and others not).
    Random actions are drawn on the spec's device (the CPU for an env's spec) and moved, except
    under an action mask, whose random actions are drawn where the mask is.

    Its tensor-level call :meth:`act` takes the tensors of ``in_keys`` (the policy's inputs, then
    the mask when the policy does not read it) and returns ``(action,)``; it asks the policy for its
    action alone (:meth:`~rlkit.modules.QValueActor.action`).

    Args:
        policy: the greedy policy, a TensorDict module writing ``explore.action_key``.
        explore: the epsilon-greedy module whose schedule, spec and keys are used.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.data import Categorical
        >>> from rlkit.modules import EGreedyModule, EGreedyPolicy, QValueActor
        >>> actor = QValueActor(torch.nn.Linear(4, 2), spec=Categorical(2))
        >>> policy = EGreedyPolicy(actor, EGreedyModule(Categorical(2), eps_init=1.0, eps_end=0.05))
        >>> td = policy(TensorDict(observation=torch.randn(5, 4), batch_size=[5]))
        >>> sorted(td.keys()), td["action"].shape
        (['action', 'observation'], torch.Size([5]))
    """

    # Kept in the instance __dict__ (see __init__), outside nn.Module's attribute lookup.
    _spec: TensorSpec
    _current_eps: Callable[[], float]
    _coins: torch.Tensor | None

    def __init__(self, policy: TensorDictModuleBase, explore: EGreedyModule) -> None:
        super().__init__()
        if not isinstance(explore, EGreedyModule):
            raise TypeError(f"EGreedyPolicy needs an EGreedyModule as explore, got {type(explore).__name__}")
        if explore.action_key not in policy.out_keys:
            raise ValueError(
                f"the policy writes {list(policy.out_keys)}, not the action key {explore.action_key!r} "
                "that the exploration module replaces"
            )
        _check_same_actions(policy, explore)
        self.policy = policy
        self.explore = explore
        mask_key = explore.action_mask_key
        self.in_keys = list(policy.in_keys) + ([mask_key] if mask_key is not None and mask_key not in policy.in_keys
                                               else [])
        self.out_keys = [explore.action_key]
        self._num_policy_inputs = len(policy.in_keys)
        self._mask_position = None if mask_key is None else self.in_keys.index(mask_key)
        self._greedy_action = action_call(policy, explore.action_key)
        self._event_dims: int | None = None  # trailing dims of the first input that are not batch dims
        spec = explore.spec
        # Index actions of a spec without a fixed mask: random ones are a single randint.
        self._plain_index = type(spec) is Categorical and spec.mask is None
        self._index_fast = self._plain_index and spec.shape == ()
        # Whether the random actions are drawn on the CPU (as the coins), so from a CPU generator.
        self._random_on_cpu = spec.device is None or spec.device.type == "cpu"
        # Read on every step, so kept out of nn.Module's attribute lookup (the spec is fixed).
        self.__dict__["_spec"] = spec
        self.__dict__["_current_eps"] = explore.current_eps
        self.__dict__["_coins"] = None  # reused buffer of the exploration coins (see _draw)

    def _random(self, spec: TensorSpec, batch: torch.Size, mask: torch.Tensor | None,
                device: torch.device) -> torch.Tensor:
        """Uniformly random allowed actions of the spec's dtype on ``device``."""
        if self._plain_index and mask is None:
            # random_action's draw for an unmasked index spec (same generator, same numbers), without
            # its layers of dtype and device conversions.
            # (_plain_index: the spec is exactly a Categorical)
            action = torch.randint(cast(Categorical, spec).n, batch + spec.shape if spec.shape else batch,
                                   device=spec.device)
        else:
            action = random_action(spec, batch, mask, device)
        if action.dtype != spec.dtype:
            action = action.to(spec.dtype)
        return action if action.device == device else action.to(device)

    def _draw(self, batch: torch.Size) -> torch.Tensor:
        """The coins, ``torch.rand(batch, device="cpu")``: the same numbers from the same generator
        (``rand`` is ``uniform_`` on a new tensor), drawn into a CPU buffer kept between calls. On the
        CPU whatever the inputs' device (see the class doc). The result is valid until the next call."""
        coins = self._coins
        if coins is None or coins.shape != batch:
            coins = self.__dict__["_coins"] = torch.empty(batch, device="cpu")
        return coins.uniform_()

    def _act(self, first: torch.Tensor, greedy: Callable[[], torch.Tensor], mask: torch.Tensor | None) -> torch.Tensor:
        """Coins first; ``greedy()`` only when some entry acts greedily (and on the first call)."""
        spec = self._spec
        action = None
        if self._event_dims is None:
            action = greedy()
            self._event_dims = first.dim() - (action.dim() - len(spec.shape))
        batch = first.shape[: first.dim() - self._event_dims] if self._event_dims else first.shape
        device = first.device
        # The coins as Python floats: float32 draws and a float32 eps compare exactly as in torch,
        # and one read of the CPU coins answers both "all exploring?" and "none exploring?".
        eps = self._current_eps()
        draws = self._draw(batch)
        values = draws.tolist() if draws.dim() == 1 else draws.view(-1).tolist()
        explored = int(values[0] < eps) if len(values) == 1 else sum(u < eps for u in values)
        if action is None and explored == len(values):
            return self._random(spec, batch, mask, device)
        return self._mix(greedy() if action is None else action, first, batch, draws, eps, values, mask)

    def _mix(self, action: torch.Tensor, first: torch.Tensor, batch: torch.Size, draws: torch.Tensor, eps: float,
             values: list[float], mask: torch.Tensor | None = None) -> torch.Tensor:
        """The greedy ``action`` with the entries whose coin (``draws``, CPU, as floats ``values``)
        fell below ``eps`` replaced by random ones."""
        spec = self._spec
        if action.shape[: len(batch)] != batch:
            raise ValueError(
                f"the policy's action has shape {tuple(action.shape)}, which does not start with the batch "
                f"shape {tuple(batch)} of its input {tuple(first.shape)}"
            )
        if action.dtype != spec.dtype:
            action = action.to(spec.dtype)
        if not any(u < eps for u in values):
            return action
        random = self._random(spec, batch, mask, action.device)
        coin = (draws < eps).reshape(batch + (1,) * (action.dim() - len(batch)))
        return torch.where(coin.to(action.device), random, action)  # (the CPU coins' mask to the action)

    def act(self, *inputs: torch.Tensor) -> tuple[torch.Tensor]:
        policy_inputs = inputs[: self._num_policy_inputs]
        if exploration_type() != ExplorationType.RANDOM:
            return (self._greedy_action(*policy_inputs).to(self._spec.dtype),)
        mask = None if self._mask_position is None else inputs[self._mask_position]
        first = inputs[0]
        if mask is None and self._index_fast and self._event_dims == first.dim() - 1:
            return (self._index_step(first, policy_inputs),)
        return (self._act(first, lambda: self._greedy_action(*policy_inputs), mask),)

    def explore_around(self, first: torch.Tensor, greedy: Callable[[], torch.Tensor],
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Epsilon-greedy around a greedy action the caller computes (``greedy()``, called only when
        some entry acts greedily): the same draws from the same generator as :meth:`act` on inputs
        whose first tensor is ``first`` (a multi-seed collector evaluates all seeds' networks in one
        call and explores each seed with that seed's random stream)."""
        return self._act(first, greedy, mask)

    @property
    def mask_position(self) -> int | None:
        """Where the action mask is among :attr:`in_keys` (None: the policy reads none)."""
        return self._mask_position

    @property
    def explores_seeds(self) -> bool:
        """Whether :meth:`explore_seeds` applies: index actions of a spec without a mask, drawn on the
        CPU (the spec's device), and no action-mask input."""
        return self._index_fast and self._mask_position is None and self._random_on_cpu

    def explore_seeds(self, first: torch.Tensor, greedy: Callable[[], torch.Tensor],
                      generators: Sequence[torch.Generator]) -> list[torch.Tensor]:
        """Epsilon-greedy for ``N`` seeds at once (a multi-seed collector's step): ``first`` is
        ``[N, *B, *event]``, ``greedy()`` gives the ``[N, *B]`` greedy actions (called once, only when
        some entry of some seed acts greedily) and seed ``k`` draws from ``generators[k]``, a CPU
        generator whatever ``first``'s device (the coins and random actions are drawn on the CPU, as
        :meth:`act` draws them). Seed ``k``'s draws and action are those of :meth:`act` on
        ``first[k]`` with ``generators[k]``'s state in the global CPU generator: its coins, then one
        ``randint`` if any of them fell below ε. Needs :attr:`explores_seeds`.

        Examples:
            >>> import torch
            >>> from rlkit.data import Categorical
            >>> from rlkit.modules import EGreedyModule, EGreedyPolicy, QValueActor
            >>> actor = QValueActor(torch.nn.Linear(4, 3), in_keys=["observation"], spec=Categorical(3))
            >>> policy = EGreedyPolicy(actor, EGreedyModule(Categorical(3), eps_init=0.5))
            >>> obs = torch.randn(2, 5, 4)  # 2 seeds, 5 envs each
            >>> gens = [torch.Generator().manual_seed(s) for s in (7, 8)]
            >>> actions = policy.explore_seeds(obs, lambda: actor.action(obs), gens)
            >>> torch.manual_seed(8); torch.equal(actions[1], policy.act(obs[1])[0])  # doctest: +ELLIPSIS
            <torch._C.Generator object at ...>
            True
        """
        if not self.explores_seeds:
            raise ValueError("explore_seeds needs index actions without an action mask, drawn on the CPU; use "
                             "explore_around per seed")
        spec = cast(Categorical, self._spec)
        action = None
        if self._event_dims is None:  # (as act's first call: the greedy actions tell the event dims)
            action = greedy()
            self._event_dims = first.dim() - action.dim()
        batch = first.shape[1:first.dim() - self._event_dims]
        coins = torch.empty((len(generators), *batch), device="cpu")  # (on the CPU, as _draw's)
        for row, generator in zip(coins, generators):
            row.uniform_(generator=generator)
        eps = self._current_eps()
        explored = [[u < eps for u in row] for row in coins.view(len(generators), -1).tolist()]
        if action is None and not all(all(row) for row in explored):
            action = greedy()
        if action is not None and action.dtype != spec.dtype:
            action = action.to(spec.dtype)
        actions = []
        for k, (generator, row) in enumerate(zip(generators, explored)):
            if not any(row):
                assert action is not None  # (some entry acts greedily)
                actions.append(action[k])
                continue
            random = torch.randint(spec.n, batch, device=spec.device, generator=generator)
            if random.dtype != spec.dtype or random.device != first.device:
                random = random.to(device=first.device, dtype=spec.dtype)
            if all(row):
                actions.append(random)
            else:
                assert action is not None
                actions.append(torch.where((coins[k] < eps).to(first.device), random, action[k]))
        return actions

    def _index_step(self, first: torch.Tensor, policy_inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """:meth:`_act` for unmasked index actions of one batch dim once the batch dims are known (a
        collector's every env step), in as few operations as the draws allow: the same coins, then
        one ``randint`` when every entry explores, else the same mixing."""
        spec = self._spec
        batch = first.shape[:1]
        device = first.device
        eps = self._current_eps()
        draws = self._draw(batch)
        values = draws.tolist()  # (CPU coins: no wait for the device)
        if len(values) == 1 and values[0] < eps or all(u < eps for u in values):
            action = torch.randint(cast(Categorical, spec).n, batch, device=spec.device)  # (_index_fast)
            if action.dtype != spec.dtype or action.device != device:
                action = action.to(device=device, dtype=spec.dtype)
            return action
        return self._mix(self._greedy_action(*policy_inputs), first, batch, draws, eps, values)

    def _describe_input(self, key: NestedKey) -> str:
        return "action mask" if key == self.explore.action_mask_key else "input"
