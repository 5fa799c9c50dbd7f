"""Plumbing of :meth:`LossModule.convert_to_functional`: parameter sets, bound copies, swaps."""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence, cast

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams
from torch import nn

#: Module classes whose forward is random; :attr:`LossModule.vmap_randomness` looks for them.
RANDOM_MODULE_TYPES: list[type[nn.Module]] = [nn.modules.dropout._DropoutNd]


def add_random_module(module_class: type[nn.Module]) -> None:
    """Declare a module class as random, so that losses holding one vmap with ``"different"``."""
    RANDOM_MODULE_TYPES.append(module_class)


@dataclass
class NetInfo:
    """What :meth:`LossModule.convert_to_functional` recorded about one network."""

    expand_dim: int | None
    has_target: bool
    # Entries of ``<name>_params`` that are detached views of another network's parameters.
    detached_keys: tuple = ()
    # Copy of the module bound to the target tensors (None without target, or when expanded).
    target_module: nn.Module | None = field(default=None, repr=False)

    @property
    def needs_swap(self) -> bool:
        """Whether the stateful module's own tensors differ from ``<name>_params``."""
        return self.expand_dim is not None or bool(self.detached_keys)


def _slot(module: nn.Module, key: tuple[str, ...]) -> tuple[nn.Module, str]:
    for name in key[:-1]:
        module = cast(nn.Module, module._modules[name])  # a submodule the key was read from
    return module, key[-1]


def _tensor_leaves(tensors: TensorDictBase) -> Iterable[tuple[str | tuple[str, ...], torch.Tensor]]:
    """``tensors.items(include_nested=True, leaves_only=True)``: parameter sets hold tensors only."""
    return cast(Iterable[tuple[Any, torch.Tensor]], tensors.items(include_nested=True, leaves_only=True))


def _as_tuple(key: str | tuple[str, ...]) -> tuple[str, ...]:
    return key if isinstance(key, tuple) else (key,)


def bind_tensors(module: nn.Module, tensors: TensorDictBase, clone: bool = False) -> None:
    """Make ``module`` hold ``tensors`` (or clones of them) in place of its own state.

    ``nn.Parameter`` entries stay parameters; plain tensors (targets, detached views) become buffers.
    """
    for key, value in _tensor_leaves(tensors):
        owner, name = _slot(module, _as_tuple(key))
        owner._parameters.pop(name, None)
        owner._buffers.pop(name, None)
        if isinstance(value, nn.Parameter):
            owner._parameters[name] = nn.Parameter(value.detach().clone()) if clone else value
        else:
            owner._buffers[name] = value.clone() if clone else value


@contextlib.contextmanager
def swap_tensors(module: nn.Module, tensors: TensorDictBase) -> Iterator[None]:
    """Temporarily read ``tensors`` in place of the matching parameters / buffers of ``module``."""
    saved: list[tuple[dict[str, Any], str, torch.Tensor | None]] = []
    for key, value in _tensor_leaves(tensors):
        owner, name = _slot(module, _as_tuple(key))
        # Any: a swap puts plain tensors into _parameters too (and puts the parameters back after).
        store: dict[str, Any] = owner._parameters if name in owner._parameters else owner._buffers
        saved.append((store, name, store[name]))
        store[name] = value
    try:
        yield
    finally:
        for store, name, old in reversed(saved):
            store[name] = old


def _resample(param: torch.Tensor, n: int) -> torch.Tensor:
    # Independent copies drawn uniformly within the original's range, as the seed describes.
    with torch.no_grad():
        low, high = param.min(), param.max()
        out = torch.rand((n, *param.shape), dtype=param.dtype, device=param.device)
        return out.mul_(high - low).add_(low)


def build_params(
    module: nn.Module, expand_dim: int | None, compare_against: Sequence[torch.Tensor] | None
) -> tuple[TensorDictParams, tuple]:
    """The ``<name>_params`` of ``module`` and the keys of its entries detached by ``compare_against``."""
    state = TensorDict.from_module(module, as_module=False)
    shared_ids = {id(p) for p in compare_against} if compare_against is not None else set()
    leaves = {}
    detached = []
    for key, value in state.items(include_nested=True, leaves_only=True):
        is_param = isinstance(value, nn.Parameter)
        shared = is_param and id(value) in shared_ids
        if shared:
            detached.append(key)
        if expand_dim is None:
            leaves[key] = value.detach() if shared else value
        elif shared or not is_param or not value.is_floating_point():
            leaves[key] = value.detach().expand(expand_dim, *value.shape).clone()
        else:
            leaves[key] = nn.Parameter(_resample(value, expand_dim))
    batch = [] if expand_dim is None else [expand_dim]
    params = TensorDict(batch_size=batch)
    for key, value in leaves.items():
        params.set(key, value)
    return TensorDictParams(params, no_convert=True), tuple(detached)


def make_target(params: TensorDictBase) -> TensorDictParams:
    """Detached copies of ``params``, held as buffers."""
    return TensorDictParams(params.detach().clone(), no_convert=True)


def target_copy(module: nn.Module, target: TensorDictBase) -> nn.Module:
    """A copy of ``module`` whose parameters / buffers are the tensors of ``target`` (shared, in place)."""
    clone = copy.deepcopy(module)
    bind_tensors(clone, target)
    return clone


def meta_copy(module: nn.Module) -> nn.Module:
    """A data-free copy of ``module`` (the structure to vmap over stacked parameters)."""
    return copy.deepcopy(module).to("meta")


def redetach(params: TensorDictParams, module: nn.Module, keys: tuple) -> None:
    """Point the detached entries ``keys`` of ``params`` at ``module``'s current tensors again."""
    for key in keys:
        owner, name = _slot(module, _as_tuple(key))
        params.set(key, getattr(owner, name).detach())


def module_state_prefixes(loss: nn.Module, prefix: str = "") -> list[str]:
    """Paths of a loss's registered stateful modules, whose state already lives in ``<name>_params``."""
    nets = cast("dict[str, NetInfo]", loss._functional_nets)  # loss: a LossModule (not imported: it imports this)
    held = {id(getattr(loss, n)) for n, info in nets.items() if info.expand_dim is None}
    paths = [path for path, m in loss.named_modules(remove_duplicate=False) if path and id(m) in held]
    return [f"{prefix.rstrip('.')}.{path}" if prefix else path for path in paths]


def drop_duplicate_state(loss: nn.Module, state: dict, prefix: str, local_metadata: Any) -> None:
    """``state_dict`` post-hook: each tensor appears once, under ``<name>_params`` / ``target_...``."""
    skip = tuple(f"{prefix}{p}." for p in module_state_prefixes(loss))
    for key in [k for k in state if k.startswith(skip)]:
        del state[key]


def ignore_duplicate_state(loss: nn.Module, incompatible: Any) -> None:
    """``load_state_dict`` post-hook: the entries dropped by :func:`drop_duplicate_state` are not missing."""
    # Keys may carry the prefix of a parent module, hence the match on a dotted path segment.
    paths = [f".{p}." for p in module_state_prefixes(loss)]
    for key in [k for k in incompatible.missing_keys if any(p in f".{k}" for p in paths)]:
        incompatible.missing_keys.remove(key)
