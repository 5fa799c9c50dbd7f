"""``LossModule``: the base class of every rlkit loss."""
from __future__ import annotations

import contextlib
import dataclasses
import functools
from copy import deepcopy
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence

import torch
from tensordict import TensorDict, TensorDictBase
from tensordict.nn import InteractionType, set_interaction_type
from tensordict.utils import NestedKey, unravel_key
from torch import nn

from rlkit.modules.tensor_call import tensor_call
from rlkit.objectives._estimator import EstimatorRequest, build_estimator
from rlkit.objectives._functional import (
    RANDOM_MODULE_TYPES,
    NetInfo,
    bind_tensors,
    build_params,
    drop_duplicate_state,
    ignore_duplicate_state,
    make_target,
    meta_copy,
    module_state_prefixes,
    redetach,
    swap_tensors,
    target_copy,
)
from rlkit.objectives.utils import REDUCTIONS, Reduction
from rlkit.utils.tensordicts import call_with_params
from rlkit.objectives.value import ValueEstimatorBase, ValueEstimators
from rlkit.utils.state import first_mismatch

__all__ = ["LossModule"]

VmapRandomness = Literal["error", "same", "different"]
_VMAP_RANDOMNESS = ("error", "same", "different")


def _accepted_key_defaults(keys_cls: type) -> dict[str, NestedKey]:
    """Default of every configurable key: dataclass fields and plain class attributes alike."""
    defaults: dict[str, NestedKey] = {}
    for name, value in vars(keys_cls).items():
        if not name.startswith("_") and isinstance(value, (str, tuple)):
            defaults[name] = value
    if dataclasses.is_dataclass(keys_cls):
        for f in dataclasses.fields(keys_cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
    return defaults


def with_sampling_mode(forward: Callable) -> Callable:
    """Run a loss's ``forward`` under its ``deterministic_sampling_mode`` exploration type; an empty
    batch (whose mean loss would be NaN) is refused first."""

    @functools.wraps(forward)
    def wrapper(self: LossModule, tensordict: TensorDictBase) -> TensorDictBase:
        if 0 in tensordict.batch_size:  # (TensorDict.numel() is 1 for a batch of size 0)
            raise ValueError(f"{type(self).__name__} got an empty batch (batch_size {list(tensordict.batch_size)}); "
                             "a loss needs at least one sample")
        with set_interaction_type(self.deterministic_sampling_mode):
            return forward(self, tensordict)

    return wrapper


class LossModule(nn.Module):
    """Base class of the rlkit losses: reads a TensorDict, returns a TensorDict of ``loss_*`` scalars.

    Networks go through :meth:`convert_to_functional`: their parameters live in ``<name>_params``
    (the very ``nn.Parameter`` objects of the module, so a policy shared with a collector follows
    every optimiser step) and, when asked, detached target copies live as *buffers* in
    ``target_<name>_params``. :meth:`parameters` therefore yields online parameters only.
    The value estimator is built by :meth:`make_value_estimator` (lazily, with the class default).

    Subclasses define ``forward``, an ``_AcceptedKeys`` dataclass of configurable TensorDict keys,
    ``default_value_estimator``, ``supported_value_estimators`` and ``default_value_kwargs``.

    Args:
        reduction: how per-sample losses are reduced: ``"mean"``, ``"sum"`` or ``"none"``.

    Examples:
        >>> from dataclasses import dataclass
        >>> from rlkit.objectives import LossModule
        >>> class MyLoss(LossModule):
        ...     @dataclass
        ...     class _AcceptedKeys:
        ...         action = "action"
        ...
        ...     def _forward_value_estimator_keys(self, **kwargs) -> None:
        ...         pass
        >>> loss = MyLoss()
        >>> loss.set_keys(action="action2")
        >>> loss.tensor_keys.action
        'action2'
    """

    @dataclasses.dataclass
    class _AcceptedKeys:
        pass

    default_value_estimator: ValueEstimators | None = None
    supported_value_estimators: tuple[ValueEstimators, ...] = ()
    #: Exploration type the forward pass runs under (``rlkit.modules.ExplorationType`` is the same enum).
    deterministic_sampling_mode: InteractionType = InteractionType.DETERMINISTIC
    #: Leading batch dims that index independent models whose parameters are stacked on the same
    #: leading dims (the seeds of a multi-seed run, :mod:`rlkit.trainers.multiseed`): reductions keep
    #: them, so each ``loss_*`` entry has shape ``[*batch_size[:stacked_dims]]``, one loss per model,
    #: and nothing computed for one model reads another's samples. 0: one model, scalar losses.
    stacked_dims: int = 0

    def __init__(self, *, reduction: Reduction = "mean") -> None:
        super().__init__()
        self._functional_nets: dict[str, NetInfo] = {}
        self._tensor_keys = self._AcceptedKeys()
        self._value_estimator: ValueEstimatorBase | None = None
        self.value_type: ValueEstimators | None = None
        self._vmap_randomness: VmapRandomness | None = None
        self.reduction = reduction
        self.register_state_dict_post_hook(drop_duplicate_state)
        self.register_load_state_dict_post_hook(ignore_duplicate_state)

    # ------------------------------------------------------------------ reduction / keys
    @property
    def reduction(self) -> Reduction:
        """How per-sample losses are reduced (``"mean"``, ``"sum"`` or ``"none"``)."""
        return self._reduction

    @reduction.setter
    def reduction(self, value: Reduction) -> None:
        if value not in REDUCTIONS:
            raise ValueError(f"Unknown reduction {value!r}; valid choices: {list(REDUCTIONS)}.")
        self._reduction = value

    @property
    def tensor_keys(self) -> Any:
        """The ``_AcceptedKeys`` instance holding the TensorDict keys this loss reads and writes."""
        return self._tensor_keys

    def set_keys(self, **kwargs: NestedKey | None) -> None:
        """Rename TensorDict keys; ``None`` restores a key's default.

        A trailing ``_key`` is accepted (``priority_key=`` sets ``priority``). Unknown names raise
        ``ValueError`` listing the accepted ones; nothing is changed then.
        """
        defaults = _accepted_key_defaults(self._AcceptedKeys)
        resolved: dict[str, NestedKey] = {}
        for name, value in kwargs.items():
            field_name = name
            if field_name not in defaults and field_name.endswith("_key") and field_name[:-4] in defaults:
                field_name = field_name[:-4]
            if field_name not in defaults:
                raise ValueError(
                    f"{type(self).__name__}.set_keys got unknown key {name!r}; accepted keys: {sorted(defaults)}."
                )
            if value is None:
                value = defaults[field_name]
            nested = isinstance(value, tuple) and value and all(isinstance(v, str) for v in value)
            if not (isinstance(value, str) or nested):
                raise ValueError(f"Key {name!r} must be a string or a tuple of strings, got {value!r}.")
            resolved[field_name] = value
        for field_name, value in resolved.items():
            setattr(self._tensor_keys, field_name, value)
        if self._value_estimator is not None:
            self._forward_value_estimator_keys(**resolved)

    def _current_keys(self) -> dict[str, NestedKey]:
        return {name: getattr(self._tensor_keys, name) for name in _accepted_key_defaults(self._AcceptedKeys)}

    def _forward_value_estimator_keys(self, **kwargs: NestedKey) -> None:
        """Pass renamed keys on to the value estimator; losses without one keep this no-op."""

    # ------------------------------------------------------------------ functional networks
    def convert_to_functional(
        self,
        module: nn.Module,
        module_name: str,
        expand_dim: int | None = None,
        create_target_params: bool = False,
        compare_against: Sequence[torch.Tensor] | None = None,
    ) -> None:
        """Register ``module`` under ``module_name`` with its parameters in ``<module_name>_params``.

        Args:
            module: a stateful (TensorDict) module.
            module_name: attribute name of the module in the loss.
            expand_dim: if given, ``<module_name>_params`` stacks that many independent copies along
                a new leading dim (resampled uniformly within each parameter's range; entries found
                in ``compare_against`` are detached expansions instead). Such a network is called
                through :meth:`_call_expanded` (``torch.vmap``).
            create_target_params: keep a detached copy in ``target_<module_name>_params`` (buffers);
                otherwise that attribute is a detached view of the online parameters.
            compare_against: parameters owned by another network (e.g. a shared trunk). Entries of
                ``module`` found there become detached here, so this network's loss leaves them alone.
        """
        if expand_dim is not None and (not isinstance(expand_dim, int) or expand_dim < 1):
            raise ValueError(f"expand_dim must be a positive integer or None, got {expand_dim!r}.")
        params, detached = build_params(module, expand_dim, compare_against)
        info = NetInfo(expand_dim=expand_dim, has_target=create_target_params, detached_keys=detached)
        # Registration order matters: parameters are then named "<name>_params.*" once deduplicated.
        setattr(self, f"{module_name}_params", params)
        if expand_dim is None:
            setattr(self, module_name, module)
        else:
            # Kept out of the module tree: its meta tensors are a structure, not state.
            object.__setattr__(self, module_name, meta_copy(module))
        if create_target_params:
            target = make_target(params)
            setattr(self, f"target_{module_name}_params", target)
            if expand_dim is None:
                info.target_module = target_copy(module, target)
        self._functional_nets[module_name] = info

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("target_") and name.endswith("_params"):
                net = name[len("target_") : -len("_params")]
                nets = self.__dict__.get("_functional_nets", {})
                if net in nets and not nets[net].has_target:
                    return getattr(self, f"{net}_params").detach()
            raise

    @property
    def functional(self) -> bool:
        """Whether the loss keeps its parameters apart from the modules (always True in rlkit)."""
        return True

    def _check_net(self, network_name: str) -> NetInfo:
        if network_name not in self._functional_nets:
            raise ValueError(
                f"Unknown network {network_name!r}; this loss holds: {sorted(self._functional_nets)}."
            )
        return self._functional_nets[network_name]

    def get_stateful_net(self, network_name: str, copy: bool | None = None) -> nn.Module:
        """A stateful network holding the loss's parameters (a deep copy unless ``copy=False``).

        An expanded network comes back as a new module holding the stacked parameters (copies, or
        the loss's own with ``copy=False``); it must be called under vmap.
        """
        info = self._check_net(network_name)
        module = getattr(self, network_name)
        do_copy = copy is None or copy
        if info.expand_dim is not None:
            stateful = deepcopy(module)
            bind_tensors(stateful, getattr(self, f"{network_name}_params"), clone=do_copy)
            return stateful
        return deepcopy(module) if do_copy else module

    @torch.no_grad()
    def from_stateful_net(self, network_name: str, stateful_net: nn.Module) -> None:
        """Copy the parameters / buffers of ``stateful_net`` into ``<network_name>_params`` in place."""
        self._check_net(network_name)
        params = getattr(self, f"{network_name}_params")
        source = TensorDict.from_module(stateful_net, as_module=False)
        mine, theirs = set(params.keys(True, True)), set(source.keys(True, True))
        if mine != theirs:
            raise ValueError(
                f"from_stateful_net({network_name!r}): the network's entries differ; missing "
                f"{sorted(map(str, mine - theirs))}, unexpected {sorted(map(str, theirs - mine))}."
            )
        for key in mine:
            dst, src = params.get(key), source.get(key)
            if dst.shape != src.shape:
                raise ValueError(
                    f"from_stateful_net({network_name!r}): entry {key!r} has shape {tuple(src.shape)}, "
                    f"expected {tuple(dst.shape)}."
                )
            dst.data.copy_(src.data)

    def target_modules(self) -> dict[str, nn.Module]:
        """The modules bound to target parameters, by network name (non-expanded networks with a
        target copy only)."""
        return {name: info.target_module for name, info in self._functional_nets.items()
                if info.target_module is not None}

    def target_network(self, network_name: str) -> nn.Module:
        """The network with its target parameters: the copy bound to ``target_<name>_params``, or the
        online network itself when the loss keeps no target parameters. Call it under
        ``torch.no_grad()`` (as every target computation is)."""
        info = self._check_net(network_name)
        if info.expand_dim is not None:
            raise ValueError(f"network {network_name!r} is expanded; call it through _call_expanded")
        return info.target_module if info.target_module is not None else getattr(self, network_name)

    def _online(self, network_name: str) -> contextlib.AbstractContextManager:
        """The context in which a (non-expanded) network computes with its online parameters: as it
        is, or with its detached parameters swapped for the online ones (``compare_against``)."""
        if not self._functional_nets[network_name].detached_keys:
            return contextlib.nullcontext()
        return swap_tensors(getattr(self, network_name), getattr(self, f"{network_name}_params"))

    def _call_online(self, network_name: str, tensordict: TensorDictBase) -> TensorDictBase:
        """Run a (non-expanded) network with its online parameters."""
        with self._online(network_name):
            return getattr(self, network_name)(tensordict)

    def _online_output(self, network_name: str, inputs: Sequence[torch.Tensor], key: NestedKey) -> torch.Tensor:
        """Output ``key`` of a (non-expanded) network, with its online parameters, for the tensors
        of its ``in_keys``: its tensor-level call (:func:`~rlkit.modules.tensor_call`: an rlkit
        module's :meth:`~rlkit.modules.TensorModule.act`, the same numbers as its TensorDict call
        without building TensorDicts; any other module through its TensorDict call).

        Raises:
            KeyError: the network does not write ``key``.
        """
        module = getattr(self, network_name)
        key = unravel_key(key)  # (a tuple of one name is that name, as in a TensorDict)
        out_keys = [unravel_key(k) for k in module.out_keys]
        if key not in out_keys:
            raise KeyError(f"{network_name} ({type(module).__name__}) writes {out_keys}, not {key!r}")
        with self._online(network_name):
            return tensor_call(module)(*inputs)[out_keys.index(key)]

    def _call_target(self, network_name: str, tensordict: TensorDictBase) -> TensorDictBase:
        """Run a (non-expanded) network with its target parameters, without gradients."""
        info = self._functional_nets[network_name]
        with torch.no_grad():
            if info.target_module is not None:
                return info.target_module(tensordict)
            return self._call_online(network_name, tensordict)

    def _call_expanded(
        self, network_name: str, tensordict: TensorDictBase, params: TensorDictBase | None = None
    ) -> TensorDictBase:
        """Run an expanded network once per stacked parameter set (output batch ``[N, *B]``)."""
        info = self._check_net(network_name)
        if info.expand_dim is None:
            raise ValueError(f"Network {network_name!r} was not converted with expand_dim.")
        module = getattr(self, network_name)
        params = getattr(self, f"{network_name}_params") if params is None else params

        def run(p: TensorDictBase, td: TensorDictBase) -> TensorDictBase:
            return call_with_params(p, module, lambda: module(td))

        return torch.vmap(run, (0, None), randomness=self.vmap_randomness)(params, tensordict)

    @property
    def vmap_randomness(self) -> VmapRandomness:
        """What ``torch.vmap`` does with random calls: ``"different"`` if a random module (e.g. dropout)
        is held, else ``"error"``; settable to ``"error"``, ``"same"`` or ``"different"``."""
        if self._vmap_randomness is not None:
            return self._vmap_randomness
        modules = list(self.modules()) + [getattr(self, n) for n in self._functional_nets]
        for root in modules:
            for m in root.modules():
                if isinstance(m, tuple(RANDOM_MODULE_TYPES)):
                    return "different"
        return "error"

    @vmap_randomness.setter
    def vmap_randomness(self, value: VmapRandomness) -> None:
        if value not in _VMAP_RANDOMNESS:
            raise ValueError(f"Unknown vmap_randomness {value!r}; valid choices: {list(_VMAP_RANDOMNESS)}.")
        self._vmap_randomness = value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, nn.Parameter]]:
        """Online parameters only, named ``<network>_params.*`` (targets are buffers)."""
        skip = tuple(f"{p}." for p in module_state_prefixes(self, prefix))
        for name, param in super().named_parameters(prefix, recurse, remove_duplicate):
            if not name.startswith(skip):
                yield name, param

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """``nn.Module.load_state_dict``, strict about what the functional parameters hide.

        The online and target parameters live in ``TensorDictParams``, whose loading matches what it
        can and ignores the rest: a state of another network (another algorithm's loss, other layer
        widths) would load "successfully" and change nothing. With ``strict`` (the default) the keys,
        shapes and dtypes of ``state_dict`` must equal those of :meth:`state_dict` first.

        Raises:
            RuntimeError: with ``strict``, naming the first missing, unexpected or mis-shaped entry.
        """
        estimator_keys = [k for k in state_dict if k.startswith("_value_estimator.")]
        if estimator_keys and self._value_estimator is None:
            self.make_value_estimator()  # built lazily: a saved loss had built (at least) the default one
        if strict:
            mismatch = first_mismatch(dict(self.state_dict()), dict(state_dict), f"{type(self).__name__} state")
            if mismatch and "'_value_estimator." in mismatch:
                raise RuntimeError(f"{mismatch} (the value estimators differ: build the saved loss's one with "
                                   "make_value_estimator(...) before loading)")
            if mismatch:
                raise RuntimeError(f"{mismatch} (a state of another network cannot load into this one)")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _apply(self, fn: Callable, *args: Any, **kwargs: Any) -> LossModule:
        # Moving / casting may replace tensors: re-point target copies and detached views.
        out = super()._apply(fn, *args, **kwargs)
        for name, info in self._functional_nets.items():
            if info.expand_dim is not None:
                object.__setattr__(self, name, getattr(self, name)._apply(fn, *args, **kwargs))
                continue
            redetach(getattr(self, f"{name}_params"), getattr(self, name), info.detached_keys)
            if info.target_module is not None:
                bind_tensors(info.target_module, getattr(self, f"target_{name}_params"))
        return out

    def train(self, mode: bool = True) -> LossModule:
        super().train(mode)
        for name, info in self._functional_nets.items():
            if info.target_module is not None:
                info.target_module.train(mode)
            if info.expand_dim is not None:
                getattr(self, name).train(mode)
        return self

    # ------------------------------------------------------------------ value estimators
    def default_value_kwargs(self, value_type: ValueEstimators) -> dict[str, Any]:
        """Hyperparameters used by :meth:`make_value_estimator` unless overridden."""
        kwargs: dict[str, Any] = {"gamma": 0.99}
        if value_type in (ValueEstimators.TDLambda, ValueEstimators.GAE):
            kwargs["lmbda"] = 0.95
        return kwargs

    def _estimator_value_network(self) -> nn.Module | None:
        """The network the estimator calls (``None``: the loss supplies next values itself)."""
        return None

    def make_value_estimator(
        self, value_type: EstimatorRequest = None, **hyperparams: Any
    ) -> LossModule:
        """Build the value estimator: an enum member, its name (any case), a class or an instance.

        ``None`` uses :attr:`default_value_estimator`. Hyperparameters override
        :meth:`default_value_kwargs`. Unsupported estimators raise ``ValueError`` listing the valid ones.
        """
        enum, estimator = build_estimator(
            type(self).__name__,
            value_type,
            default=self.default_value_estimator,
            supported=self.supported_value_estimators,
            default_kwargs=self.default_value_kwargs,
            value_network=self._estimator_value_network(),
            hyperparams=hyperparams,
        )
        estimator.stacked_dims = self.stacked_dims
        self._value_estimator = estimator
        self.value_type = enum
        self._forward_value_estimator_keys(**self._current_keys())
        return self

    @property
    def value_estimator(self) -> ValueEstimatorBase:
        """The value estimator (built with the class default on first access)."""
        if self._value_estimator is None:
            self.make_value_estimator()
        assert self._value_estimator is not None  # make_value_estimator sets it (or raises)
        return self._value_estimator

    def __setattr__(self, name: str, value: Any) -> None:
        # nn.Module would register an assigned estimator as a stray submodule, bypassing any
        # property setter: route ``loss.value_estimator = est`` through make_value_estimator.
        if name == "value_estimator":
            self.make_value_estimator(value)
            return
        super().__setattr__(name, value)
        estimator = getattr(self, "_value_estimator", None) if name == "stacked_dims" else None
        if estimator is not None:
            estimator.stacked_dims = value  # the estimator's batch statistics follow the models


