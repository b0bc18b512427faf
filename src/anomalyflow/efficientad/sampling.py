"""Seeded, position-addressable sampling for the EfficientAD training loops, and mixed precision.

Both loops (teacher distillation, student/AE training) draw from an endless stream of shuffled
indices, as N's ``InfiniteDataloader`` does (every image once per pass, a fresh permutation per pass),
rather than P's ``next(iter(loader))`` per step (rebuilds the loader each step: sampling with
replacement and slow). The stream is a pure function of ``(seed, position)``: pass ``p`` uses the
permutation drawn from a generator seeded with ``(seed, p)``, so a resumed run continues the same
sequence by starting at ``step × batch_size`` without replaying anything. Each item can carry a
Bernoulli flag (random grayscale) drawn alongside, so the randomness lives in the main process and a
DataLoader with workers gives the same batches as one without.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


def mixed_seed(*values: int) -> int:
    """A well-mixed 63-bit seed from several integers (nearby inputs give unrelated streams)."""
    return int(np.random.SeedSequence([int(v) & 0xFFFFFFFFFFFFFFFF for v in values]).generate_state(2, np.uint64)[0]
               & 0x7FFFFFFFFFFFFFFF)


def step_generator(seed: int, stream: int, step: int) -> torch.Generator:
    """A CPU generator for the random draws of one step (stateless across resumes)."""
    return torch.Generator().manual_seed(mixed_seed(seed, stream, step))


class IndexStream:
    """Endless indices into ``n`` items: concatenated seeded permutations, optionally with flags.

    ``take(k)`` returns the next ``k`` indices (``LongTensor``) and flags (``BoolTensor``, each true
    with probability ``flag_p``); ``start`` skips to a position in O(1).
    """

    def __init__(self, n: int, seed: int, *, flag_p: float = 0.0, start: int = 0):
        if n < 1:
            raise ValueError("IndexStream needs at least one item")
        self.n = n
        self.seed = seed
        self.flag_p = flag_p
        self.position = start
        self._pass = -1
        self._perm = torch.empty(0, dtype=torch.long)
        self._flags = torch.empty(0, dtype=torch.bool)

    def _load_pass(self, index: int) -> None:
        generator = torch.Generator().manual_seed(mixed_seed(self.seed, index))
        self._perm = torch.randperm(self.n, generator=generator)
        self._flags = torch.rand(self.n, generator=generator) < self.flag_p
        self._pass = index

    def take(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        indices, flags = [], []
        while k > 0:
            pass_index, offset = divmod(self.position, self.n)
            if pass_index != self._pass:
                self._load_pass(pass_index)
            m = min(k, self.n - offset)
            indices.append(self._perm[offset:offset + m])
            flags.append(self._flags[offset:offset + m])
            self.position += m
            k -= m
        return torch.cat(indices), torch.cat(flags)


class StreamSampler(Sampler):
    """A DataLoader sampler over an :class:`IndexStream`: yields ``(index, flag)`` pairs forever."""

    def __init__(self, n: int, seed: int, *, flag_p: float = 0.0, start: int = 0):
        self.n, self.seed, self.flag_p, self.start = n, seed, flag_p, start

    def __iter__(self) -> Iterator[tuple[int, bool]]:
        stream = IndexStream(self.n, self.seed, flag_p=self.flag_p, start=self.start)
        chunk = max(1, min(self.n, 1024))
        while True:
            indices, flags = stream.take(chunk)
            yield from zip(indices.tolist(), flags.tolist(), strict=True)


__all__ = ["IndexStream", "StreamSampler", "mixed_seed", "step_generator"]
