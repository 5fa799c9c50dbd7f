"""Per-seed random streams for training several seeds in one process.

An ordinary run draws its exploration coins, random actions and policy samples from torch's global
generator, seeded with the run's seed. To give every seed of a multi-seed run exactly those draws,
each seed keeps a generator with what the global one would hold in its run: code that can draws
from it directly, other code runs with its state installed in the global generator
(:meth:`SeedStreams.use`); no seed's draws depend on another's.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

__all__ = ["SeedStreams"]


class SeedStreams:
    """Each seed's random stream: a generator holding what the global torch generator would hold in
    that seed's ordinary run (CPU, and the CUDA device when given).

    Code that takes a ``generator`` draws from :meth:`generator` directly (a multi-seed
    collector's ε-greedy coins and random actions); other code runs inside :meth:`use`, which
    installs seed ``k``'s state in the global generator(s) for the block.

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
        >>> b = torch.rand(2, generator=streams.generator(1))
        >>> torch.manual_seed(4); torch.equal(torch.cat([a, b]), torch.rand(4))  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        True
    """

    def __init__(self, states: Sequence[torch.Tensor], cuda_states: Sequence[torch.Tensor] | None = None,
                 device: torch.device | None = None) -> None:
        self.device = device if device is not None and device.type == "cuda" else None
        self._cpu = [_generator(state, torch.device("cpu")) for state in states]
        self._cuda = ([_generator(state, self.device) for state in cuda_states]
                      if cuda_states is not None and self.device is not None else None)

    @classmethod
    def seeded(cls, seeds: Sequence[int]) -> SeedStreams:
        """Streams as ``torch.manual_seed(seed)`` leaves the CPU generator, for each seed."""
        generator = torch.Generator()
        return cls([generator.manual_seed(int(s)).get_state() for s in seeds])

    def __len__(self) -> int:
        return len(self._cpu)

    def generator(self, k: int, device: torch.device | str = "cpu") -> torch.Generator:
        """Seed ``k``'s generator for draws on ``device`` (CPU, or the run's CUDA device)."""
        if torch.device(device).type == "cuda":
            if self._cuda is None:
                raise ValueError(f"these streams hold no CUDA generators (device {self.device}); asked for {device}")
            return self._cuda[k]
        return self._cpu[k]

    @contextlib.contextmanager
    def use(self, k: int) -> Iterator[None]:
        """Runs the block with seed ``k``'s state in the global generator(s), keeps what the block
        drew, and restores the global state of before."""
        device, cuda = self.device, self._cuda
        saved = torch.get_rng_state()
        saved_cuda = torch.cuda.get_rng_state(device) if cuda is not None and device is not None else None
        torch.set_rng_state(self._cpu[k].get_state())
        if cuda is not None and device is not None:
            torch.cuda.set_rng_state(cuda[k].get_state(), device)
        try:
            yield
        finally:
            self._cpu[k].set_state(torch.get_rng_state())
            torch.set_rng_state(saved)
            if cuda is not None and device is not None and saved_cuda is not None:
                cuda[k].set_state(torch.cuda.get_rng_state(device))
                torch.cuda.set_rng_state(saved_cuda, device)

    def state_dict(self) -> dict[str, Any]:
        return {"cpu": [g.get_state() for g in self._cpu],
                "cuda": None if self._cuda is None else [g.get_state() for g in self._cuda]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["cpu"]) != len(self._cpu):
            raise ValueError(f"the saved streams are for {len(state['cpu'])} seeds, this run has {len(self._cpu)}")
        for g, saved in zip(self._cpu, state["cpu"]):
            g.set_state(saved)
        if self._cuda is not None and state.get("cuda") is not None:
            for g, saved in zip(self._cuda, state["cuda"]):
                g.set_state(saved)


def _generator(state: torch.Tensor, device: torch.device) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.set_state(state)
    return generator
