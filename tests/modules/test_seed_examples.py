"""The runnable examples of seeds 000-003, with rlkit imports, and the keys/shapes/dtypes they print."""
from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn

from rlkit.data import OneHotDiscreteTensorSpec
from rlkit.modules import (
    Actor,
    ActorValueOperator,
    DistributionalQValueHook,
    NormalParamExtractor,
    ProbabilisticActor,
    QValueHook,
    QValueModule,
    SafeModule,
    TanhNormal,
    ValueOperator,
)


def _fields(td: TensorDict) -> dict:
    return {key: (tuple(value.shape), value.dtype) for key, value in td.items()}


def test_seed000_qvalue_hook_runs_as_written():
    """Defect 9: the reference's example fails as written. Here it runs with ``rlkit`` in place of
    ``torchrl``, imports included, and gives the fields it prints: the hooked module returns the
    action, the action values and the chosen value, and the Actor keeps the two it names (as
    tensordict's TensorDictModule keeps the outputs its out_keys name)."""
    namespace: dict = {}
    exec(  # the seed's lines, torchrl -> rlkit
        "import torch\n"
        "from tensordict import TensorDict\n"
        "from torch import nn\n"
        "from rlkit.data import OneHotDiscreteTensorSpec\n"
        "from rlkit.modules.tensordict_module.actors import QValueHook, Actor\n"
        "td = TensorDict({'observation': torch.randn(5, 4)}, [5])\n"
        "module = nn.Linear(4, 4)\n"
        "hook = QValueHook(\"one_hot\")\n"
        "module.register_forward_hook(hook)\n"
        "action_spec = OneHotDiscreteTensorSpec(4)\n"
        "qvalue_actor = Actor(module=module, spec=action_spec, out_keys=[\"action\", \"action_value\"])\n"
        "td = qvalue_actor(td)\n", namespace)
    td = namespace["td"]
    assert _fields(td) == {
        "action": ((5, 4), torch.int64),
        "action_value": ((5, 4), torch.float32),
        "observation": ((5, 4), torch.float32),
    }
    assert (td["action"].sum(-1) == 1).all()
    assert torch.equal(td["action"].argmax(-1), td["action_value"].argmax(-1))
    # fewer outputs than out_keys is still refused
    with pytest.raises(RuntimeError, match=r"returned 1 tensors, fewer than its out_keys"):
        Actor(nn.Linear(4, 4), out_keys=["a", "b"])(TensorDict({"observation": torch.randn(5, 4)}, [5]))


def test_seed000_defect9_qvalue_hook_corrected():
    # Corrected form: three out_keys, one per output of the hook (the example also imports from
    # torchrl.modules.tensordict_module.actors and torchrl.data; here they are rlkit.modules / rlkit.data).
    td = TensorDict({"observation": torch.randn(5, 4)}, [5])
    module = nn.Linear(4, 4)
    hook = QValueHook("one_hot")
    module.register_forward_hook(hook)
    action_spec = OneHotDiscreteTensorSpec(4)
    qvalue_actor = Actor(module=module, spec=action_spec, out_keys=["action", "action_value", "chosen_action_value"])
    td = qvalue_actor(td)
    assert _fields(td) == {
        "action": ((5, 4), torch.int64),
        "action_value": ((5, 4), torch.float32),
        "chosen_action_value": ((5, 1), torch.float32),
        "observation": ((5, 4), torch.float32),
    }
    assert (td["action"].sum(-1) == 1).all()
    # To print exactly the seed's fields, "_" drops the chosen value.
    printed = Actor(module=module, spec=action_spec, out_keys=["action", "action_value", "_"])(
        TensorDict({"observation": torch.randn(5, 4)}, [5])
    )
    assert sorted(printed.keys()) == ["action", "action_value", "observation"]


def test_seed001_qvalue_module():
    action_space = "categorical"
    action_value_key = "my_action_value"
    actor = QValueModule(action_space, action_value_key=action_value_key)
    value = torch.zeros(4)
    value[-1] = 1
    for out in (actor(my_action_value=value), actor(value)):
        action, values, chosen = out
        assert action.tolist() == 3 and action.dtype == torch.int64
        assert values.tolist() == [0.0, 0.0, 0.0, 1.0]
        assert chosen.tolist() == [1.0]
    td = actor(TensorDict({action_value_key: value}, []))
    # API.md's out_keys default writes the values under the custom key only, so the seed's extra
    # "action_value" entry (a copy made by TorchRL's fixed default) is not there.
    assert _fields(td) == {
        "action": ((), torch.int64),
        "chosen_action_value": ((1,), torch.float32),
        "my_action_value": ((4,), torch.float32),
    }


def test_seed002_distributional_hook_corrected():
    # Corrected form: the seed's `from  import OneHotDiscreteTensorSpec` is missing its module, and
    # `make_functional` / `actor(td, params=params)` no longer exist in tensordict: parameters are
    # taken with TensorDict.from_module and swapped in with params.to_module(module).
    td = TensorDict({"observation": torch.randn(5, 4)}, [5])
    nbins = 3

    class CustomDistributionalQval(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, nbins * 4)

        def forward(self, x):
            return self.linear(x).view(-1, nbins, 4).log_softmax(-2)

    module = CustomDistributionalQval()
    params = TensorDict.from_module(module)
    action_spec = OneHotDiscreteTensorSpec(4)
    hook = DistributionalQValueHook("one_hot", support=torch.arange(nbins))
    module.register_forward_hook(hook)
    qvalue_actor = Actor(module=module, spec=action_spec, out_keys=["action", "action_value"])
    with params.to_module(module):
        qvalue_actor(td)
    assert _fields(td) == {
        "action": ((5, 4), torch.int64),
        "action_value": ((5, 3, 4), torch.float32),
        "observation": ((5, 4), torch.float32),
    }
    # Swapped-in parameters are the ones used: zero weights give uniform atoms, so all Q tie -> action 0.
    with params.apply(torch.zeros_like).to_module(module):
        qvalue_actor(td)
    assert (td["action"].argmax(-1) == 0).all()


def test_seed003_actor_value_operator_as_written():
    # As written, plus the imports the seed forgets (TensorDictModule, nn). The seed prints
    # `sample_log_prob`; rlkit (like current tensordict) names it `action_log_prob`.
    module_hidden = torch.nn.Linear(4, 4)
    td_module_hidden = SafeModule(
        module=module_hidden,
        in_keys=["observation"],
        out_keys=["hidden"],
    )
    module_action = TensorDictModule(
        nn.Sequential(torch.nn.Linear(4, 8), NormalParamExtractor()),
        in_keys=["hidden"],
        out_keys=["loc", "scale"],
    )
    td_module_action = ProbabilisticActor(
        module=module_action,
        in_keys=["loc", "scale"],
        out_keys=["action"],
        distribution_class=TanhNormal,
        return_log_prob=True,
    )
    module_value = torch.nn.Linear(4, 1)
    td_module_value = ValueOperator(
        module=module_value,
        in_keys=["hidden"],
    )
    td_module = ActorValueOperator(td_module_hidden, td_module_action, td_module_value)
    td = TensorDict({"observation": torch.randn(3, 4)}, [3,])
    policy_fields = {
        "action": ((3, 4), torch.float32),
        "hidden": ((3, 4), torch.float32),
        "loc": ((3, 4), torch.float32),
        "observation": ((3, 4), torch.float32),
        "action_log_prob": ((3,), torch.float32),
        "scale": ((3, 4), torch.float32),
    }
    td_clone = td_module(td.clone())
    assert _fields(td_clone) == {**policy_fields, "state_value": ((3, 1), torch.float32)}
    td_clone = td_module.get_policy_operator()(td.clone())
    assert _fields(td_clone) == policy_fields
    assert ((td_clone["action"] > -1) & (td_clone["action"] < 1)).all()
    td_clone = td_module.get_value_operator()(td.clone())
    assert _fields(td_clone) == {
        "hidden": ((3, 4), torch.float32),
        "observation": ((3, 4), torch.float32),
        "state_value": ((3, 1), torch.float32),
    }
