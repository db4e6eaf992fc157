"""Data order that survives a restart: a seeded, sharded, resumable sampler."""

from __future__ import annotations

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Shuffles with ``seed + epoch``, gives each rank a disjoint shard, and can start mid-epoch.

    Each epoch is a fresh permutation; rank r takes positions r, r+W, r+2W... of it (the last
    incomplete round is dropped so every rank sees the same number of samples). ``skip`` drops
    the first samples of the shard, which is how a resumed run continues the same data order.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1):
        if size < world_size:
            raise ValueError(f"dataset of {size} items cannot be sharded over {world_size} ranks")
        self.size, self.seed, self.rank, self.world = size, seed, rank, world_size
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def shard(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.size, generator=g).tolist()
        usable = self.size - self.size % self.world
        return perm[self.rank : usable : self.world]

    def __iter__(self):
        return iter(self.shard()[self.skip :])

    def __len__(self) -> int:
        return self.size // self.world - self.skip
