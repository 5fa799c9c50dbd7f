"""Whether a torch device exists here (a one-line answer, before anything is built on it), and
whether reading a tensor's values there waits for it."""
from __future__ import annotations

import torch

__all__ = ["device_problem", "reading_waits"]


def device_problem(device: str | torch.device) -> str | None:
    """What is wrong with ``device`` on this machine (not a device, absent, its backend not
    available), in one line naming it and what exists; ``None`` where it can be used.

    Examples:
        >>> from rlkit.utils.devices import device_problem
        >>> device_problem("cpu") is None
        True
        >>> device_problem("gpu")
        "device='gpu' is not a torch device; e.g. 'cpu', 'cuda', 'cuda:0'"
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        return f"device={str(device)!r} is not a torch device; e.g. 'cpu', 'cuda', 'cuda:0'"
    name = str(device)
    if dev.type == "cpu":
        if dev.index not in (None, 0):
            return f"device={name!r} does not exist: the CPU device is 'cpu' (or 'cpu:0')"
        return None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return f"device={name!r} but CUDA is not available here; use device=cpu"
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            return f"device={name!r} does not exist: this machine has CUDA devices {[f'cuda:{i}' for i in range(count)]}"
        return None
    module = getattr(torch, dev.type, None)
    available = getattr(module, "is_available", None)
    if not (callable(available) and available()):
        return f"device={name!r} is not available here; valid choices: 'cpu'" + (", 'cuda'" if torch.cuda.is_available() else "")
    return None


def reading_waits(device: torch.device) -> bool:
    """Whether reading the values of a tensor on ``device`` on the host waits for the device: anywhere
    but on the CPU (a CUDA read waits for every queued kernel). rlkit's checks of tensor contents
    (index ranges, priorities, action masks, log-probabilities) run where it does not.

    Examples:
        >>> import torch
        >>> from rlkit.utils.devices import reading_waits
        >>> reading_waits(torch.device("cpu")), reading_waits(torch.device("meta"))
        (False, True)
    """
    return device.type != "cpu"
