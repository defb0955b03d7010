"""Deterministic, resumable data order: which sample each rank sees at each step is a function of the step."""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class StepSampler(Sampler):
    """Endless stream of (index, sample_seed) pairs for one rank.

    Epoch e is a permutation of the data set seeded by (seed, e); the global stream is those permutations
    one after another. Step s uses global positions [s*B*W, (s+1)*B*W), and rank r takes its B of them. A
    resumed run starts at ``start_step`` and sees exactly what an uninterrupted run would have seen.
    """

    def __init__(self, size: int, batch_size: int, *, seed: int, rank: int = 0, world_size: int = 1,
                 start_step: int = 0, shuffle: bool = True):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.start_step, self.shuffle = rank, world_size, start_step, shuffle

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self) -> Iterator[tuple[int, int]]:
        global_batch = self.batch_size * self.world_size
        position = self.start_step * global_batch + self.rank * self.batch_size
        epoch, order = -1, []
        while True:
            for offset in range(self.batch_size):
                p = position + offset
                if p // self.size != epoch:
                    epoch = p // self.size
                    order = self._order(epoch)
                yield order[p % self.size], (self.seed * 7919 + p) % (2**31 - 1)
            position += global_batch
