"""What every dataset reader produces and every caller receives: DataError, DataInfo, the in-memory
ImageSet / ImageBatch, the dataset names and class names, and the records the readers fill in
(_Raw: the arrays as read; _Source: one place a dataset may be; _Kind: a named dataset's fixed facts),
plus the seeded stratified split used wherever a dataset has no official one.
"""

from __future__ import annotations

import collections.abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

KNOWN_DATASETS = ("mnist10k", "mnist", "fashion-mnist", "cifar10", "cifar100", "tiny-imagenet", "seq-mnist",
                  "dvs-cifar10", "image-folder")
AUGMENTS = ("crop-flip", "crop", "none")

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class DataError(ValueError):
    """Data that cannot be found or read; the message says where it looked / which file is bad."""


@dataclass(frozen=True)
class DataInfo:
    """What a model and the pipeline need to know about a loaded dataset (stored in run configs)."""

    name: str  # canonical dataset name, one of KNOWN_DATASETS
    in_channels: int
    image_size: int  # images are image_size × image_size
    num_classes: int
    mean: tuple[float, ...]  # per channel, of pixels in [0, 1] (event data: of the frame counts)
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    augment: str  # "crop-flip" | "crop" | "none" (digits are never flipped)
    num_steps_hint: int | None  # SPEC's T for this dataset (784 for seq-mnist), None where SPEC names none
    source: str  # what was read, from where, and how it was split
    event: bool = False  # images are float event frames [T, C, H, W] rather than uint8 pixels [C, H, W]
    num_frames: int | None = None  # T of the event frames (event data only)
    split: str = ""  # "official" or how the train/test split was made (seeded stratified, with its seed)

    def __post_init__(self) -> None:
        for name in ("mean", "std", "class_names"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.augment not in AUGMENTS:
            raise ValueError(f"DataInfo.augment must be one of {AUGMENTS}, got {self.augment!r}")
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"DataInfo needs one mean and one std per channel ({self.in_channels}), "
                             f"got {len(self.mean)} and {len(self.std)}")
        if any(not s > 0 for s in self.std):
            raise ValueError(f"DataInfo.std must be positive, got {self.std}")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"DataInfo has {self.num_classes} classes but {len(self.class_names)} class names")


class ImageBatch(collections.abc.Sequence):
    """One batch from `ImageSet.__getitems__`: the stacked tensors, readable as a list of samples.

    `make_loader`'s collate takes `.images` / `.labels` as they are (no per-sample work); a plain
    DataLoader with the default collate sees an ordinary sequence of (image, label) pairs.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images = images  # [B, C, H, W] uint8 or [B, T, C, H, W] float32
        self.labels = labels  # [B] int64

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.images[index], self.labels[index]


class ImageSet(Dataset):
    """A dataset held in memory: `.images` uint8 [N, C, H, W] (event data: float32 [N, T, C, H, W]),
    `.labels` int64 [N]. `ds[i]` → (image, label); `ds.__getitems__(indices)` → one `ImageBatch`."""

    def __init__(self, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray):
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels).to(torch.int64)
        if images.dim() not in (4, 5):
            raise ValueError(f"ImageSet images must be [N, C, H, W] or [N, T, C, H, W], got {tuple(images.shape)}")
        if images.dim() == 4 and images.dtype != torch.uint8:
            raise ValueError(f"ImageSet pixel images must be uint8, got {images.dtype}")
        if images.dim() == 5 and not images.is_floating_point():
            images = images.to(torch.float32)
        if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
            raise ValueError(f"ImageSet needs one label per image: {tuple(images.shape)} vs {tuple(labels.shape)}")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> ImageBatch:
        index = torch.as_tensor(indices, dtype=torch.int64)  # [B]
        return ImageBatch(self.images[index], self.labels[index])

    def __repr__(self) -> str:
        return f"ImageSet({len(self)} × {tuple(self.images.shape[1:])} {self.images.dtype})"

    def subset(self, n_or_indices: int | Sequence[int] | torch.Tensor, seed: int = 0) -> ImageSet:
        """A fixed smaller set. An int n: n images, classes as balanced as they allow (round-robin over
        the classes, each class in a seeded random order), deterministic for (n, seed). A sequence or
        tensor of indices: exactly those images. The result keeps the original order."""
        if isinstance(n_or_indices, int | np.integer):
            n = int(n_or_indices)
            if n < 1:
                raise ValueError(f"subset size must be at least 1, got {n}")
            if n >= len(self):
                return ImageSet(self.images, self.labels)
            generator = torch.Generator().manual_seed(int(seed))
            order = torch.randperm(len(self), generator=generator)  # [N] shuffled positions
            shuffled_labels = self.labels[order]
            rank_in_class = torch.zeros(len(self), dtype=torch.int64)  # k-th appearance of its class
            for label in torch.unique(shuffled_labels):
                where = (shuffled_labels == label).nonzero().squeeze(1)
                rank_in_class[where] = torch.arange(where.numel())
            # sort by (rank within class, shuffled position): one of every class, then the next, ...
            key = rank_in_class * len(self) + torch.arange(len(self))
            keep = order[torch.argsort(key)[:n]]
        else:
            keep = torch.as_tensor(n_or_indices, dtype=torch.int64).reshape(-1)
            if keep.numel() == 0:
                raise ValueError("subset needs at least one index")
        keep = keep.sort().values
        return ImageSet(self.images[keep], self.labels[keep])


@dataclass
class _Raw:
    """A dataset as read, before tensors: numpy arrays and how they were obtained."""

    train_images: np.ndarray  # uint8 [N, C, H, W]; event counts uint8 [N, T, C, H, W]
    train_labels: np.ndarray  # int64 [N]
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    source: str
    split: str = "official"


@dataclass
class _Source:
    """One place a dataset may be: shown in the not-found message, tested, and read."""

    where: str
    present: Callable[[], bool]
    read: Callable[[], _Raw]


@dataclass(frozen=True)
class _Kind:
    """Fixed facts of a named dataset."""

    channels: int | None  # None: from the data (image-folder)
    size: int | None
    num_classes: int | None
    class_names: tuple[str, ...] | None
    augment: str
    num_steps_hint: int | None
    how_to_get: str
    event: bool = False
    extra: dict = field(default_factory=dict)


def _stratified_split(labels: np.ndarray, test_count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), both sorted: test_count images, every class contributing in
    proportion to its size (largest remainders settle the rounding), chosen at random with `seed`."""
    labels = np.asarray(labels)
    classes, sizes = np.unique(labels, return_counts=True)
    quotas = sizes * test_count / len(labels)
    counts = np.floor(quotas).astype(np.int64)
    leftover = test_count - int(counts.sum())
    order = np.argsort(-(quotas - counts), kind="stable")
    counts[order[:leftover]] += 1
    rng = np.random.Generator(np.random.PCG64(seed))
    test_parts = []
    for label, count in zip(classes, counts, strict=True):
        members = np.flatnonzero(labels == label)
        test_parts.append(rng.permutation(members)[:count])
    test_index = np.sort(np.concatenate(test_parts))
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[test_index] = True
    return np.flatnonzero(~is_test), test_index


def _split_description(total: int, test_count: int, seed: int) -> str:
    return f"seeded stratified split {total - test_count:,} train / {test_count:,} test (seed {seed})"
