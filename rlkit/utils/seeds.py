"""Per-seed random streams for training several seeds in one process.

An ordinary run draws its exploration coins, random actions and policy samples from torch's global
generator, seeded with the run's seed. To give every seed of a multi-seed run exactly those draws,
each seed keeps its own copy of the global generator's state, and code that draws for seed ``k``
runs with that state installed (:meth:`SeedStreams.use`): the ordinary drawing code runs unchanged,
one seed at a time, and no seed's draws depend on another's.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

__all__ = ["SeedStreams"]


class SeedStreams:
    """The global torch generator's state, one per seed (CPU, and the CUDA device when given).

    Args:
        states: each seed's CPU generator state (``torch.get_rng_state()``).
        cuda_states: each seed's state of ``device``'s CUDA generator, for CUDA runs.
        device: the CUDA device whose generator is swapped too (``None``: CPU only).

    Examples:
        >>> import torch
        >>> from rlkit.utils.seeds import SeedStreams
        >>> streams = SeedStreams.seeded([3, 4])
        >>> with streams.use(1):
        ...     a = torch.rand(2)
        >>> torch.manual_seed(4); torch.equal(a, torch.rand(2))  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        True
    """

    def __init__(self, states: Sequence[torch.Tensor], cuda_states: Sequence[torch.Tensor] | None = None,
                 device: torch.device | None = None) -> None:
        self.states = [s.clone() for s in states]
        self.device = device if device is not None and device.type == "cuda" else None
        self.cuda_states = [s.clone() for s in cuda_states] if cuda_states is not None and self.device else None

    @classmethod
    def seeded(cls, seeds: Sequence[int]) -> SeedStreams:
        """Streams as ``torch.manual_seed(seed)`` leaves the CPU generator, for each seed."""
        generator = torch.Generator()
        return cls([generator.manual_seed(int(s)).get_state() for s in seeds])

    def __len__(self) -> int:
        return len(self.states)

    @contextlib.contextmanager
    def use(self, k: int) -> Iterator[None]:
        """Runs the block with seed ``k``'s state in the global generator(s), keeps what the block
        drew, and restores the global state of before."""
        device, cuda_states = self.device, self.cuda_states
        saved = torch.get_rng_state()
        saved_cuda = torch.cuda.get_rng_state(device) if cuda_states is not None and device is not None else None
        torch.set_rng_state(self.states[k])
        if cuda_states is not None and device is not None:
            torch.cuda.set_rng_state(cuda_states[k], device)
        try:
            yield
        finally:
            self.states[k] = torch.get_rng_state()
            torch.set_rng_state(saved)
            if cuda_states is not None and device is not None and saved_cuda is not None:
                cuda_states[k] = torch.cuda.get_rng_state(device)
                torch.cuda.set_rng_state(saved_cuda, device)

    def state_dict(self) -> dict[str, Any]:
        return {"cpu": [s.clone() for s in self.states],
                "cuda": None if self.cuda_states is None else [s.clone() for s in self.cuda_states]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["cpu"]) != len(self.states):
            raise ValueError(f"the saved streams are for {len(state['cpu'])} seeds, this run has {len(self.states)}")
        self.states = [s.clone() for s in state["cpu"]]
        if self.cuda_states is not None and state.get("cuda") is not None:
            self.cuda_states = [s.clone() for s in state["cuda"]]
