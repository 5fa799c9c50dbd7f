"""The networks of an agent, chosen in config: rlkit's MLP (``algo.hidden_sizes``,
``algo.activation``) or a user's ``nn.Module`` (``algo.network: {_target_: pkg.module.Class, ...}``).

A user's network is called as ``Class(in_features=<flat observation size>, out_features=<outputs>,
**other keys)``, once per network the algorithm needs (DQN: the Q-network, ``out_features`` = the
number of actions; C51: actions x atoms; A2C: the actor, with the outputs its distribution needs,
and the critic, 1), and must map ``[B, in_features]`` to ``[B, out_features]``. Every network is
run once on a zero observation when the run is built, so a mismatch is refused before the run
directory exists.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Mapping

import torch
from torch import nn

from rlkit.config_schema import ConfigError, check, choice
from rlkit.errors import EnvError
from rlkit.modules import MLP

__all__ = ["ACTIVATIONS", "check_network_config", "make_network"]

#: ``algo.activation`` choices.
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU, "silu": nn.SiLU}


def _import(target: str) -> Any:
    module_name, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"algo.network._target_={target!r} cannot be imported ({err})") from None


def check_network_config(hidden_sizes: list[int], activation: str, network: Mapping[str, Any] | None) -> None:
    """Refuses network settings that cannot build: empty or non-positive widths, an unknown
    activation, a ``network._target_`` that cannot be imported or called with
    ``in_features``/``out_features`` and its other keys.

    Examples:
        >>> from rlkit.agents.networks import check_network_config
        >>> check_network_config([64, 64], "tanh", None)
        >>> check_network_config([64], "gelu", None)
        Traceback (most recent call last):
        ...
        rlkit.errors.ConfigError: algo.activation='gelu' is invalid: expected one of ['tanh', 'relu', 'elu', 'silu']
    """
    check(len(hidden_sizes) > 0 and all(h > 0 for h in hidden_sizes),
          "algo.hidden_sizes", hidden_sizes, "a non-empty list of positive widths")
    choice("algo.activation", activation, tuple(ACTIVATIONS))
    if network is None:
        return
    target = network.get("_target_") if isinstance(network, Mapping) else None
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(f"algo.network._target_={target!r} must name a module class or factory, e.g. "
                          "mypackage.nets.MyNet (or set algo.network=null for rlkit's MLP)")
    factory = _import(target)
    if not callable(factory):
        raise ConfigError(f"algo.network._target_={target!r} is not callable")
    kwargs = {k: v for k, v in network.items() if k != "_target_"}
    try:
        inspect.signature(factory).bind(in_features=1, out_features=1, **kwargs)
    except TypeError as err:
        raise ConfigError(f"algo.network._target_={target!r} cannot be called with in_features, out_features "
                          f"and {sorted(kwargs)} ({err})") from None
    except ValueError:  # no signature to read (a builtin): the call itself will tell
        pass


def make_network(algo: Any, in_features: int, out_features: int, *, what: str) -> nn.Module:
    """``algo.network``'s module for ``in_features -> out_features``, or rlkit's MLP
    (``algo.hidden_sizes``, ``algo.activation``); ``what`` names it in errors ("the Q-network").

    Raises:
        EnvError: the user's network fails on a zero observation or returns another shape.
    """
    network = getattr(algo, "network", None)
    if network is None:
        return MLP(in_features, out_features, algo.hidden_sizes, activation_class=ACTIVATIONS[algo.activation])
    target = network["_target_"]
    kwargs = {k: v for k, v in network.items() if k != "_target_"}
    try:
        module = _import(target)(in_features=in_features, out_features=out_features, **kwargs)
    except ConfigError:
        raise
    except Exception as err:  # a user's constructor raises anything; say which network and why
        raise EnvError(f"algo.network {target} could not be built as {what} ({in_features} -> {out_features}): "
                       f"{type(err).__name__}: {err}") from err
    if not isinstance(module, nn.Module):
        raise EnvError(f"algo.network {target} returned a {type(module).__name__}, not a torch nn.Module")
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, in_features))
    except Exception as err:
        raise EnvError(f"algo.network {target} as {what} fails on observations of shape (2, {in_features}): "
                       f"{type(err).__name__}: {err}") from err
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, out_features):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise EnvError(f"algo.network {target} as {what} maps observations of shape (2, {in_features}) to {got}; "
                       f"expected (2, {out_features})")
    return module
