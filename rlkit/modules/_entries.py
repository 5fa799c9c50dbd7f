"""Acting without TensorDicts: a policy compiled into a function on a plain dict of tensors.

A collector calls its policy once per env step on a handful of small tensors; there, building a
TensorDict and going through ``tensordict.nn``'s generic dispatch costs several times the network
itself. :func:`entry_function` turns the common policy structures (sequences of
``TensorDictModule``-wrapped networks, rlkit's Q-value, exploration and probabilistic modules) into
one function that reads and writes the same entries of a ``dict`` (keys as in the TensorDict,
nested keys as tuples) with the same numbers and the same random draws. Anything it does not
recognise exactly (hooks, ``inplace=False``, keyword in_keys, selected out keys, custom module
classes) gives ``None``, and the caller keeps calling the module on TensorDicts.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

from tensordict.nn import (
    ProbabilisticTensorDictModule,
    ProbabilisticTensorDictSequential,
    TensorDictModule,
    TensorDictModuleBase,
    TensorDictSequential,
    interaction_type,
)
from tensordict.nn.probabilistic import _get_joint_sample_and_log_prob
from tensordict.utils import unravel_key
from torch import distributions as D
from torch import nn

from rlkit.modules.actors import Actor, SafeModule, ValueOperator
from rlkit.modules.exploration import ExplorationType

EntryFunction = Callable[[dict], None]


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks)


def _td_module(module: TensorDictModule) -> EntryFunction | None:
    if (
        module._kwargs is not None
        or module.inplace is not True
        or module.method is not None
        or module.method_kwargs
        or module._get_kwargs
        or getattr(module, "safe", False)
        or list(module.out_keys) != list(module.out_keys_source)
        or "_" in module.out_keys
    ):
        return None
    net = module.module
    in_keys = [unravel_key(k) for k in module.in_keys]
    out_keys = [unravel_key(k) for k in module.out_keys]
    single = len(out_keys) == 1

    def run(entries: dict) -> None:
        try:
            inputs = [entries[k] for k in in_keys]
        except KeyError:
            missing = [k for k in in_keys if k not in entries]
            raise KeyError(f"{type(module).__name__} reads {missing}, which are missing; keys present: "
                           f"{sorted(map(str, entries))}") from None
        out = net(*inputs)
        if single and not isinstance(out, tuple):
            entries[out_keys[0]] = out
            return
        if not isinstance(out, tuple) or len(out) != len(out_keys):
            got = f"{len(out)} outputs" if isinstance(out, tuple) else type(out).__name__
            raise ValueError(f"{type(module).__name__} writes {out_keys} but its module returned {got}")
        for key, value in zip(out_keys, out):
            entries[key] = value

    return run


def _sampler(sampler: ProbabilisticTensorDictModule) -> EntryFunction | None:
    out_keys = [k for k in sampler.out_keys if k not in sampler.log_prob_keys]
    if (
        len(out_keys) != 1
        or sampler.num_samples is not None
        or sampler._generator is not None
        or sampler._generator_key is not None
        or not isinstance(sampler.distribution_class, type)
        or not issubclass(sampler.distribution_class, D.Distribution)
    ):
        return None
    dist_cls, dist_kwargs = sampler.distribution_class, dict(sampler.distribution_kwargs or {})
    params = [(k[-1] if isinstance(k, tuple) else k, unravel_key(v)) for k, v in zip(sampler.dist_keys, sampler.in_keys)]
    out_key = unravel_key(out_keys[0])
    log_prob_key = unravel_key(sampler.log_prob_key) if sampler.return_log_prob else None
    default = sampler.default_interaction_type

    def run(entries: dict) -> None:
        dist = dist_cls(**{name: entries.get(key, None) for name, key in params}, **dist_kwargs)
        kind = interaction_type() or default
        log_prob = None
        joint = _get_joint_sample_and_log_prob(dist) if log_prob_key is not None and kind is ExplorationType.RANDOM else None
        if joint is not None:
            sample, log_prob = joint(())
        elif kind is ExplorationType.RANDOM:
            sample = dist.rsample() if dist.has_rsample else dist.sample()
        else:
            sample = sampler._dist_sample(dist, interaction_type=kind)
        entries[out_key] = sample
        if log_prob_key is not None:
            entries[log_prob_key] = dist.log_prob(sample) if log_prob is None else log_prob

    return run


def _sequence(seq: TensorDictSequential, outputs: list | None) -> EntryFunction | None:
    if seq.partial_tolerant or seq.inplace not in (None, True) or seq._select_before_return:
        return None
    modules = list(seq._module_iter())
    if isinstance(seq, ProbabilisticTensorDictSequential):
        # networks, then the sampler; a network writing the sample itself would skip the sampling
        *nets, sampler = modules
        written = {k for m in nets for k in m.out_keys}
        if (seq.return_composite or not isinstance(sampler, ProbabilisticTensorDictModule) or _has_hooks(sampler)
                or any(k in written for k in sampler.out_keys)):
            return None
        steps = [*(entry_function(m) for m in nets), _sampler(sampler)]
    else:
        # Earlier modules write the inputs of later ones; only the last one may skip outputs.
        steps = [*(entry_function(m) for m in modules[:-1]), entry_function(modules[-1], outputs)]
    if any(step is None for step in steps):
        return None
    if len(steps) == 1:
        return steps[0]

    def run(entries: dict) -> None:
        for step in steps:
            step(entries)

    return run


def entry_function(module: object, outputs: list | None = None) -> EntryFunction | None:
    """``module``'s TensorDict call as a function on a plain dict of tensors, or ``None``.

    The function reads the module's in_keys from the dict and writes its out_keys into it, with
    the numbers and random draws of ``module(TensorDict(entries))``. Modules of rlkit provide their
    own through an ``entry_function()`` method; ``TensorDictModule``, ``TensorDictSequential`` (and
    rlkit's subclasses) and ``ProbabilisticActor`` are compiled from their parts.

    ``outputs`` names the entries the caller reads (``None``: all of them). Modules whose own
    ``entry_function`` takes an ``outputs`` argument may then leave the others out: a Q-value head
    asked only for ``"action"`` skips the action values' copies and the chosen value. The entries
    named are the same either way.

    Examples:
        >>> import torch
        >>> from rlkit.data import Categorical
        >>> from rlkit.modules import QValueActor
        >>> actor = QValueActor(torch.nn.Linear(4, 2), spec=Categorical(2))
        >>> run = entry_function(actor)
        >>> entries = {"observation": torch.randn(3, 4)}
        >>> run(entries)
        >>> sorted(entries)
        ['action', 'action_value', 'chosen_action_value', 'observation']
        >>> entries = {"observation": torch.randn(3, 4)}
        >>> entry_function(actor, outputs=["action"])(entries)
        >>> sorted(entries)
        ['action', 'action_value', 'observation']
    """
    if not isinstance(module, TensorDictModuleBase) or _has_hooks(module):
        return None
    cls = type(module)
    if hasattr(cls, "entry_function"):
        # valid only while forward is the one the entry function mirrors (not a subclass's override)
        if _owner(cls, "forward") is not _owner(cls, "entry_function"):
            return None
        own = module.entry_function
        return own(outputs=outputs) if "outputs" in inspect.signature(own).parameters else own()
    if isinstance(module, TensorDictSequential) and cls.forward in _SEQUENCE_FORWARDS:
        return _sequence(module, outputs)
    if cls in _TD_MODULES:
        return _td_module(module)
    return None


def _owner(cls: type, name: str) -> type:
    return next(c for c in cls.__mro__ if name in c.__dict__)


_SEQUENCE_FORWARDS = (TensorDictSequential.forward, ProbabilisticTensorDictSequential.forward)
# Classes whose forward is TensorDictModule's (SafeModule's adds the projection, refused when
# safe=True); a subclass may override forward and keeps its TensorDict call.
_TD_MODULES = (TensorDictModule, SafeModule, Actor, ValueOperator)
