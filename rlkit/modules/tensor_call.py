"""The tensor-level call of rlkit's modules: one implementation behind their TensorDict call.

Every rlkit module is a ``tensordict.nn`` module whose computation is a public method on tensors,
:meth:`TensorModule.act`: it takes the tensors of ``in_keys`` (in that order) and returns one
tensor per ``out_keys`` entry. Its TensorDict call (``module(td)``) reads ``in_keys``, calls
:meth:`~TensorModule.act` and writes ``out_keys``: a thin wrapper, so both calls give the same
numbers and the same random draws. Collectors and evaluators call :meth:`~TensorModule.act` (or
:meth:`~TensorModule.action`, only the first output, which a module may compute more cheaply),
skipping the TensorDict layer on every env step.

:func:`tensor_call` and :func:`action_call` give that call for any module: a foreign
``TensorDictModuleBase`` (not an rlkit module) goes through its own TensorDict call.

``act`` is the module's computation without ``nn.Module`` hooks: hooks registered on an rlkit
module run only on its TensorDict call.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import TensorDictModuleBase
from tensordict.utils import NestedKey

from rlkit import keys
from rlkit.utils.tensordicts import call_with_params

__all__ = ["TensorModule", "action_call", "read_entry", "recording_graph", "tensor_call"]

TensorCall = Callable[..., tuple[torch.Tensor, ...]]


def recording_graph() -> bool:
    """Whether torch is recording a graph (``torch.export``, ``torch.compile``, ``torch.jit.trace``):
    checks of tensor values (a Python ``bool`` of a tensor) are skipped then, as the graph cannot
    branch on data (:mod:`rlkit.exporter` exports the acting code).

    Examples:
        >>> from rlkit.modules import recording_graph
        >>> recording_graph()
        False
    """
    return torch.compiler.is_compiling() or torch.compiler.is_exporting() or torch.jit.is_tracing()


def read_entry(module: object, tensordict: TensorDictBase, key: NestedKey, what: str = "input") -> torch.Tensor:
    """``tensordict[key]``, or a ``KeyError`` that names the module, the key and the keys present."""
    value = tensordict.get(key, None)
    if value is None:
        present = sorted(str(k) for k in tensordict.keys(include_nested=True, leaves_only=True))
        raise KeyError(
            f"{type(module).__name__} reads the {what} from {key!r}, which is missing; keys present: {present}"
        )
    return value


class TensorModule:
    """Mixin of rlkit's ``tensordict.nn`` modules: :meth:`act` computes, ``forward`` wraps.

    Subclasses define :meth:`act` (and may define a cheaper :meth:`action`); they must come before
    the ``tensordict.nn`` base in the class bases so that this ``forward`` is the one used.

    Called with a TensorDict, the module reads ``in_keys`` (a missing one is named in a
    ``KeyError``), writes the outputs under ``out_keys`` (an ``"_"`` key drops that output) and
    returns the TensorDict. Called with tensors (positionally in ``in_keys`` order, or by the last
    name of each key), it returns :meth:`act`'s outputs (one tensor alone, several as a tuple).

    Examples:
        >>> import torch
        >>> from tensordict import TensorDict
        >>> from rlkit.modules import ValueOperator
        >>> value = ValueOperator(torch.nn.Linear(3, 1))
        >>> x = torch.randn(4, 3)
        >>> torch.equal(value.act(x)[0], value(TensorDict(observation=x, batch_size=[4]))["state_value"])
        True
    """

    in_keys: list[NestedKey]
    out_keys: list[NestedKey]

    # ``*inputs: Any, **kwargs: Any`` is the gradual signature: each subclass names its inputs in
    # its own override (``act(values, mask=None)``, ``act(*inputs)``), which a type checker accepts.
    def act(self, *inputs: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        """The module's outputs (one per ``out_keys`` entry) for the tensors of ``in_keys``."""
        raise NotImplementedError(f"{type(self).__name__} does not define act()")

    def action(self, *inputs: Any, **kwargs: Any) -> torch.Tensor:
        """The first output alone (a policy's action); as ``act(*inputs)[0]``, possibly cheaper."""
        return self.act(*inputs, **kwargs)[0]

    def _describe_input(self, key: NestedKey) -> str:
        """How a missing input is named in the ``KeyError`` of the TensorDict call."""
        return "input"

    def _inputs_from(self, tensordict: TensorDictBase) -> list[torch.Tensor]:
        return [read_entry(self, tensordict, key, self._describe_input(key)) for key in self.in_keys]

    def _inputs_from_kwargs(self, kwargs: dict[str, Any]) -> list[torch.Tensor]:
        # By the last name of each key (a str: nested keys are unravelled tuples of str).
        names: dict[Any, NestedKey] = {key if isinstance(key, str) else key[-1]: key for key in self.in_keys}
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise TypeError(f"{type(self).__name__} reads {list(names)}; got unexpected inputs {unknown}")
        missing = [name for name in names if name not in kwargs]
        if missing:
            raise TypeError(f"{type(self).__name__} reads {list(names)}; missing {missing}")
        return [kwargs[name] for name in names]

    def forward(self, *args: Any, tensordict_out: TensorDictBase | None = None,
                params: TensorDictBase | None = None, **kwargs: Any) -> Any:
        """The TensorDict call (``module(td)``, the outputs written into ``tensordict_out`` when given,
        as ``tensordict.nn`` modules do) or the tensor call (``module(obs)``, ``module(observation=obs)``).

        ``params``: a TensorDict of this module's parameters (as ``TensorDict.from_module(module)``
        gives) used for this call in place of its own, which are back afterwards. Any other keyword
        of a TensorDict call, or a mix of positional and named tensors, is a ``TypeError`` (never
        dropped unseen).
        """
        if params is not None:
            return call_with_params(params, self,  # type: ignore[arg-type]  # (mixed into an nn.Module)
                                    lambda: self.forward(*args, tensordict_out=tensordict_out, **kwargs))
        if args and isinstance(args[0], TensorDictBase):
            if len(args) > 1 or kwargs:
                extra = [type(a).__name__ for a in args[1:]] + sorted(kwargs)
                raise TypeError(f"{type(self).__name__} called with a TensorDict takes no other argument than "
                                f"tensordict_out= and params=; got {extra}")
            tensordict = args[0]
            outputs = self.act(*self._inputs_from(tensordict))
            out = tensordict if tensordict_out is None else tensordict_out
            for key, value in zip(self.out_keys, outputs):
                if key != "_":
                    out.set(key, value)
            return out
        if tensordict_out is not None:
            raise TypeError(f"{type(self).__name__}: tensordict_out= goes with a TensorDict call (module(td, "
                            "tensordict_out=out)), not with tensors")
        if args and kwargs:
            raise TypeError(f"{type(self).__name__} takes its input tensors either positionally or by name, not "
                            f"both; got {len(args)} positional and {sorted(kwargs)}")
        inputs = list(args) if args else self._inputs_from_kwargs(kwargs)
        outputs = self.act(*inputs)
        return outputs[0] if len(outputs) == 1 else outputs


def tensor_call(module: Any) -> TensorCall:
    """The tensor-level call of ``module``: ``(*tensors of in_keys) -> tuple (one per out_keys)``.

    An rlkit module gives its :meth:`TensorModule.act`; any other ``TensorDictModuleBase`` is called
    on a TensorDict built from the inputs (its public TensorDict call), and a plain callable is
    called as is (its outputs made a tuple). The result holds ``module`` as an attribute (a bound
    method or a small callable object), so a deep copy of an object keeping it calls the copy.

    Examples:
        >>> import torch
        >>> from tensordict.nn import TensorDictModule
        >>> from rlkit.modules import tensor_call
        >>> foreign = TensorDictModule(torch.nn.Linear(3, 2), ["observation"], ["logits"])
        >>> tensor_call(foreign)(torch.randn(5, 3))[0].shape
        torch.Size([5, 2])
    """
    if isinstance(module, TensorModule):
        return module.act
    if isinstance(module, TensorDictModuleBase):
        return _TensorDictCall(module)
    return _PlainCall(module)


class _TensorDictCall:
    """A foreign TensorDict module called on tensors through its TensorDict call."""

    def __init__(self, module: TensorDictModuleBase) -> None:
        self.module = module

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        module = self.module
        batch = inputs[0].shape[:1] if inputs and inputs[0].dim() else torch.Size([])
        out = module(TensorDict(dict(zip(module.in_keys, inputs)), batch_size=batch))
        return tuple(out.get(key) for key in module.out_keys)


class _PlainCall:
    """A plain callable, its outputs made a tuple."""

    def __init__(self, module: Callable[..., Any]) -> None:
        self.module = module

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.module(*inputs)
        return out if isinstance(out, tuple) else (out,)


def action_call(module: Any, action_key: NestedKey = keys.ACTION) -> Callable[..., torch.Tensor]:
    """``module``'s action for the tensors of its ``in_keys``: :meth:`TensorModule.action` for an
    rlkit module, else the ``action_key`` output of :func:`tensor_call`.

    Raises:
        ValueError: ``module`` does not write ``action_key``.
    """
    if isinstance(module, TensorModule) and module.out_keys[:1] == [action_key]:
        return module.action
    out_keys = list(getattr(module, "out_keys", [action_key]))
    if action_key not in out_keys:
        raise ValueError(f"{type(module).__name__} writes {out_keys}, not the action key {action_key!r}")
    return _Output(tensor_call(module), out_keys.index(action_key))


class _Output:
    """One output of a tensor call."""

    def __init__(self, call: TensorCall, at: int) -> None:
        self.call, self.at = call, at

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.call(*inputs)[self.at]
