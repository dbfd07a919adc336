"""Batches from an in-memory dataset: make_loader (seeded shuffling, distributed shards that see every
test image exactly once) and set_epoch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from torch.utils.data._utils.collate import default_collate

from bntt_core.data.core import ImageBatch


class EpochShuffleSampler(Sampler[int]):
    """A seeded shuffle: the order of epoch e is randperm(N) from a generator seeded with seed + e.

    `set_epoch(e)` picks the epoch (as DistributedSampler's does); without it, each pass over the
    loader moves to the next epoch by itself, so consecutive epochs never repeat an order.
    """

    def __init__(self, size: int, seed: int):
        self.size = int(size)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        self.epoch += 1
        return iter(order)


class _UnpaddedShardSampler(DistributedSampler):
    """DistributedSampler for evaluation: rank r takes indices r, r + world, ... — every image exactly
    once over all ranks (no padding with repeats, nothing dropped); shards may differ by one image."""

    def __iter__(self):
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))


def _collate(batch):
    """ImageBatch (from ImageSet.__getitems__) → (images, labels) without per-sample work."""
    if isinstance(batch, ImageBatch):
        return batch.images, batch.labels
    return default_collate(batch)


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool, seed: int, distributed: bool = False,
                drop_last: bool = False, num_replicas: int | None = None, rank: int | None = None) -> DataLoader:
    """A DataLoader over an in-memory dataset, yielding (images, labels) batches.

    shuffle=True: a seeded order (`EpochShuffleSampler`, or with distributed=True torch's
    DistributedSampler(shuffle=True, seed=seed) over this process's shard). Call
    `set_epoch(loader, epoch)` at the start of every epoch — required with distributed=True, or every
    epoch repeats the same order; harmless otherwise. shuffle=False: the dataset order; distributed
    evaluation splits it so every image is seen exactly once (no padding, no dropping). drop_last
    drops the last incomplete batch (training only; the default False never drops a test image).
    num_replicas / rank default to the initialised process group's.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size < 1:
        raise ValueError(f"batch size must be an integer >= 1, got {batch_size!r}")
    sampler: Sampler | None
    if distributed:
        if shuffle:
            sampler = DistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=True,
                                         seed=int(seed), drop_last=drop_last)
        else:
            sampler = _UnpaddedShardSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
    elif shuffle:
        sampler = EpochShuffleSampler(len(dataset), int(seed))
    else:
        sampler = None  # sequential
    return DataLoader(dataset, batch_size=int(batch_size), sampler=sampler, shuffle=False, drop_last=drop_last,
                      collate_fn=_collate, num_workers=0)


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the loader's sampler which epoch starts (DistributedSampler / EpochShuffleSampler)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(int(epoch))
