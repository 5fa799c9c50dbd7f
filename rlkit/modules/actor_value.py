"""An actor and a critic sharing one observation embedding."""
from __future__ import annotations

from typing import cast

import torch
from tensordict.nn import TensorDictModuleBase, TensorDictSequential

from rlkit.modules.actors import ProbabilisticActor, SafeSequential, _run_steps, _steps
from rlkit.modules.tensor_call import TensorModule


class ActorValueOperator(TensorModule, TensorDictSequential):
    """``common -> policy`` and ``common -> value`` run as one sequence.

    :meth:`get_policy_operator` and :meth:`get_value_operator` return standalone operators built
    from the *same* module objects (no copies), so an optimiser step on one is seen by all.
    When the policy is a :class:`~rlkit.modules.ProbabilisticActor`, the policy operator is one too
    (``get_dist`` and the tensor-level calls work on it) and keeps the policy's ``spec``.
    :meth:`act` is the tensor-level call of the whole sequence.

    Args:
        common_operator: reads observations, writes a hidden representation.
        policy_operator: reads the hidden representation, writes the action.
        value_operator: reads the hidden representation, writes the value.

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from tensordict.nn import TensorDictModule
        >>> from rlkit.modules import Actor, ActorValueOperator, ValueOperator
        >>> common = TensorDictModule(torch.nn.Linear(4, 8), ["observation"], ["hidden"])
        >>> policy = Actor(torch.nn.Linear(8, 2), in_keys=["hidden"])
        >>> value = ValueOperator(torch.nn.Linear(8, 1), in_keys=["hidden"])
        >>> op = ActorValueOperator(common, policy, value)
        >>> td = op.get_value_operator()(TensorDict(observation=torch.randn(3, 4), batch_size=[3]))
        >>> sorted(td.keys())
        ['hidden', 'observation', 'state_value']
    """

    def __init__(
        self,
        common_operator: TensorDictModuleBase,
        policy_operator: TensorDictModuleBase,
        value_operator: TensorDictModuleBase,
    ) -> None:
        for name, op in (("common", common_operator), ("policy", policy_operator), ("value", value_operator)):
            if not isinstance(op, TensorDictModuleBase):
                raise TypeError(f"the {name} operator must be a TensorDict module, got {type(op).__name__}")
        super().__init__(common_operator, policy_operator, value_operator)
        self._steps = _steps(self.module)

    def act(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return _run_steps(self._steps, self.in_keys, self.out_keys, inputs)

    def get_policy_head(self) -> TensorDictModuleBase:
        """The policy operator given at construction."""
        return cast(TensorDictModuleBase, self.module[1])  # (ModuleList types its members Module)

    def get_value_head(self) -> TensorDictModuleBase:
        """The value operator given at construction."""
        return cast(TensorDictModuleBase, self.module[2])

    def get_policy_operator(self) -> TensorDictSequential:
        """A standalone ``observation -> action`` operator (shares the modules)."""
        common, policy = cast(TensorDictModuleBase, self.module[0]), cast(TensorDictModuleBase, self.module[1])
        if isinstance(policy, ProbabilisticActor):
            return ProbabilisticActor.chain(common, *policy.module[:-1], sampler=policy.sampler, spec=policy.spec)
        operator = SafeSequential(common, policy)
        operator.spec = getattr(policy, "spec", None)
        return operator

    def get_value_operator(self) -> TensorDictSequential:
        """A standalone ``observation -> value`` operator (shares the modules)."""
        return SafeSequential(cast(TensorDictModuleBase, self.module[0]), cast(TensorDictModuleBase, self.module[2]))
