"""The networks of an agent, chosen in config: rlkit's MLP (``algo.hidden_sizes``,
``algo.activation``) or a user's ``nn.Module`` (``algo.network: {_target_: pkg.module.Class, ...}``).

A network is called as ``Class(in_shape=<observation shape>, out_features=<outputs>, **other keys)``
when it takes ``in_shape`` (rlkit's conv nets, :mod:`rlkit.modules.conv`), else as
``Class(in_features=<flat observation size>, out_features=..., **other keys)``; once per network the
algorithm needs (DQN: the Q-network, ``out_features`` = the number of actions; C51: actions x atoms;
A2C: the actor, with the outputs its distribution needs, and the critic, 1), and must map
``[B, *observation shape]`` to ``[B, out_features]``. A2C's ``shared_trunk`` calls it once with
``out_features=None``: the network then returns its features and says how wide they are in
``features_dim``. Every network is run once on a zero observation when the run is built, so a
mismatch is refused before the run directory exists. Networks defined in rlkit count as rlkit's own
(A2C's ``ortho_init`` initialises them); a user's keeps its own initialisation.
"""
from __future__ import annotations

import importlib
import inspect
import logging
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from rlkit.config_schema import ConfigError, check, choice
from rlkit.errors import EnvError
from rlkit.modules import MLP

__all__ = ["ACTIVATIONS", "check_network_config", "is_builtin", "make_network"]

log = logging.getLogger(__name__)

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
    size = "in_shape" if _takes_shape(factory) else "in_features"
    try:
        inspect.signature(factory).bind(**{size: 1}, out_features=1, **kwargs)
    except TypeError as err:
        raise ConfigError(f"algo.network._target_={target!r} cannot be called with {size}, out_features "
                          f"and {sorted(kwargs)} ({err})") from None
    except ValueError:  # no signature to read (a builtin): the call itself will tell
        pass


def is_builtin(algo: Any) -> bool:
    """Whether the algorithm's networks are rlkit's own (its MLP, or an ``algo.network`` class
    defined in rlkit) rather than a user's."""
    network = getattr(algo, "network", None)
    return network is None or str(network["_target_"]).startswith("rlkit.")


def _takes_shape(factory: Any) -> bool:
    try:
        return "in_shape" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def _conv_hint(shape: tuple[int, ...]) -> str:
    """Which conv network fits observations of ``shape`` (what a user should try)."""
    if len(shape) == 2:  # (what env.transforms' frame_stack makes of flat observations)
        return ("rlkit's conv networks take channel-first images (C, H, W); if env.transforms has a frame_stack "
                "of flat observations, that makes (stack_size, n): frame_stack is for image observations")
    if len(shape) == 4:  # (frame_stack over images that have their channels already)
        return ("rlkit's conv networks take channel-first images (C, H, W); if env.transforms has a frame_stack of "
                "images with channels (Atari's and MinAtar's), that makes (stack_size, C, H, W): frame_stack stacks "
                "2-D (H, W) frames (Atari's own stack is env.options.frame_stack)")
    if len(shape) != 3:
        return "rlkit's conv networks take channel-first images (C, H, W)"
    if shape[-1] in (1, 3, 4) and shape[0] > 4:
        return (f"{shape} looks channel-last (H, W, C), and rlkit's conv networks take channel-first images "
                "(C, H, W): transpose them in a gymnasium wrapper of the env")
    if min(shape[1:]) >= 36:  # the Nature CNN's kernels and strides need 36 x 36 at least
        return "for channel-first images choose a conv network, e.g. algo.network={_target_: rlkit.modules.NatureCNN}"
    return ("for channel-first images choose a conv network, e.g. algo.network={_target_: rlkit.modules.MinAtarNet} "
            "(small images; the Nature CNN needs 36 x 36 at least)")


def make_network(algo: Any, obs_shape: Sequence[int], out_features: int | None, *, what: str,
                 obs_dtype: torch.dtype = torch.float32, obs_high: float | None = None, env_id: str = "",
                 warn: bool = True) -> nn.Module:
    """``algo.network``'s module for observations of ``obs_shape`` and ``out_features`` outputs
    (``None``: a trunk returning its ``features_dim`` features), or rlkit's MLP (``algo.hidden_sizes``,
    ``algo.activation``; flat observations only); ``what`` names it in errors ("the Q-network"), with
    ``env_id``. ``obs_high``: the observations' upper bound; integer observations above 1 that a
    network with a ``scale`` of 1 (``ConvNet``'s default) would take unscaled are warned about, unless
    ``algo.network`` gives its ``scale`` (``warn=False``: a second network of the same agent, not warned
    about again).

    Raises:
        EnvError: observations an MLP cannot take, a network that cannot be built, fails on a zero
            observation or returns another shape.
    """
    shape = tuple(int(d) for d in obs_shape)
    network = getattr(algo, "network", None)
    if network is None:
        if len(shape) != 1:
            raise EnvError(f"env {env_id!r} has observations of shape {shape}: rlkit's MLP networks take flat "
                           f"observations (shape (n,)); {_conv_hint(shape)}")
        if out_features is None:
            raise EnvError("a trunk of rlkit's MLP is built by the algorithm itself")
        return MLP(shape[0], out_features, algo.hidden_sizes, activation_class=ACTIVATIONS[algo.activation])
    target = network["_target_"]
    kwargs = {k: v for k, v in network.items() if k != "_target_"}
    factory = _import(target)
    if _takes_shape(factory):
        size: dict[str, Any] = {"in_shape": shape}
    elif len(shape) == 1:
        size = {"in_features": shape[0]}
    else:
        raise EnvError(f"algo.network {target} takes in_features (flat observations), the observations have shape "
                       f"{shape}; give it an in_shape argument to take them whole")
    try:
        module = factory(**size, out_features=out_features, **kwargs)
    except Exception as err:  # a user's constructor raises anything; say which network and why
        hint = f"; {_conv_hint(shape)}" if len(shape) == 4 else ""  # (a frame_stack of images with channels)
        raise EnvError(f"algo.network {target} could not be built as {what} ({shape} -> {out_features}): "
                       f"{type(err).__name__}: {err}{hint}") from err
    if not isinstance(module, nn.Module):
        raise EnvError(f"algo.network {target} returned a {type(module).__name__}, not a torch nn.Module")
    scale = getattr(module, "scale", None)
    if (warn and scale == 1.0 and "scale" not in kwargs and not obs_dtype.is_floating_point and obs_high is not None
            and obs_high > 1):
        log.warning("algo.network %s takes %s observations up to %g unscaled (its scale is 1): give it "
                    "scale: %.10g (1/%g; on the command line +algo.network.scale=%.10g) to scale them to [0, 1] as "
                    "NatureCNN does, or scale: 1 to keep them as they are", target, str(obs_dtype).removeprefix("torch."),
                    obs_high, 1 / obs_high, obs_high, 1 / obs_high)
    width = out_features if out_features is not None else getattr(module, "features_dim", None)
    if not isinstance(width, int):
        raise EnvError(f"algo.network {target} built with out_features=None (a shared trunk) must say how wide its "
                       "features are in an int attribute features_dim")
    probe = torch.zeros(2, *shape, dtype=obs_dtype)
    try:
        with torch.no_grad():
            out = module(probe)
    except Exception as err:
        raise EnvError(f"algo.network {target} as {what} fails on observations of shape {tuple(probe.shape)}: "
                       f"{type(err).__name__}: {err}") from err
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, width):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise EnvError(f"algo.network {target} as {what} maps observations of shape {tuple(probe.shape)} to {got}; "
                       f"expected (2, {width})")
    return module
