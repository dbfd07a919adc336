"""Datasets for bntt_core: find, read, split and batch every dataset the package trains on.

    from bntt_core import data
    train, test, info = data.load_data("cifar10")            # or data_dir="/my/data", seed=0
    loader = data.make_loader(train, 256, shuffle=True, seed=0)
    for images, labels in loader:                            # uint8 [B, C, H, W], int64 [B]
        pixels = data.to_pixels(images)                      # float [B, C, H, W] in [0, 1]
        pixels = data.augment_batch(pixels, info, generator) # random crop (pad 4) [+ flip], per info
        x = data.normalize(pixels, info)                     # (pixels - mean) / std, what models read

Datasets (`KNOWN_DATASETS`) and what each reads, tried in this order inside every search root:

    mnist10k       mnist10k.npz (shipped in data/) or ../shared/data/mnist-10k.npz: 10,000 real MNIST
                   digits, seeded stratified split 8,000 train / 2,000 test.  The offline default.
    mnist          torchvision MNIST/raw/ (idx files, .gz or not) | image folders mnist/{train,test}/<class>/
    fashion-mnist  torchvision FashionMNIST/raw/ | fashion-mnist-70k.npz (all 70,000 images; the official
                   split is not recoverable from it, so a seeded stratified 60,000 / 10,000 split) | folders
    cifar10        torchvision cifar-10-batches-py/ | cifar10-jpg.tar.gz (image folders in a tar, JPEG
                   copy of CIFAR-10, official 50k/10k split) | image folders cifar10/{train,test}/<class>/
    cifar100       torchvision cifar-100-python/ | image folders cifar100/{train,test}/<class>/
    tiny-imagenet  tiny-imagenet-200/ (train/<wnid>/images/*.JPEG, val/images + val/val_annotations.txt;
                   the labelled val split is the test set), 64×64, 200 classes
    seq-mnist      the images of `mnist` (or, when no full MNIST is found, of `mnist10k`); the model reads
                   one pixel per step, so info.num_steps_hint = 784
    dvs-cifar10    tonic's CIFAR10DVS layout: CIFAR10DVS/<class>/*.aedat4 (AEDAT 4.0 event files).
                   Each recording → tonic Downsample(128 → 48) → tonic ToFrame(n_time_bins=20): event
                   counts float32 [T=20, C=2 polarities, 48, 48]; seeded stratified split 9:1
    image-folder   any train/<class>/* + test/<class>/* (bring your own data; also a .tar/.tar.gz of it)

Search roots when `data_dir` is None: $BNTT_DATA_DIR, the project's data/, ../shared/data beside the
project, then the torchvision root ~/.cache/bntt/torchvision. With `data_dir`, only that folder (which
may itself be torchvision's root, an image-folder root with train/ + test/, or a .tar.gz of one).
Nothing is downloaded unless asked: `load_data(..., download=True)` or BNTT_DOWNLOAD=1 (torchvision for
MNIST / Fashion-MNIST / CIFAR, tonic for DVS-CIFAR10, the cs231n zip for Tiny-ImageNet).

Decoded image archives and folders (CIFAR-10 JPEGs, Tiny-ImageNet, image folders, DVS recordings) are
decoded once and cached as .npz in $BNTT_CACHE_DIR (default ~/.cache/bntt)/decoded/, keyed on the
source files' names, sizes and modification times.

Image-folder images: every image becomes RGB (one channel when every image is greyscale). If all
images share one square size it is kept; otherwise each image is centre-cropped to a square and
resized (bilinear) to S×S, S = the median of min(width, height) over the training images. Named
datasets read from folders are brought to their standard channels and size (MNIST 1×28×28, CIFAR
3×32×32, Tiny-ImageNet 3×64×64).

mean/std are computed per channel from the training split actually loaded (exactly, from pixel
histograms), so every dataset gets its own; for event data they are the statistics of the counts.

Every failure to find or read data raises `DataError` (a ValueError): missing data with one message
listing every place looked at and how to get the data; corrupt data naming the file.
"""

from __future__ import annotations

import collections.abc
import functools
import gzip
import hashlib
import io
import json
import logging
import math
import os
import pickle
import struct
import tarfile
import xml.etree.ElementTree as ElementTree
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from torch.utils.data._utils.collate import default_collate

__all__ = [
    "AUGMENTS",
    "KNOWN_DATASETS",
    "DataError",
    "DataInfo",
    "ImageBatch",
    "ImageSet",
    "augment_batch",
    "cache_dir",
    "load_data",
    "make_loader",
    "normalize",
    "search_roots",
    "set_epoch",
    "to_pixels",
]

log = logging.getLogger(__name__)

KNOWN_DATASETS = ("mnist10k", "mnist", "fashion-mnist", "cifar10", "cifar100", "tiny-imagenet", "seq-mnist",
                  "dvs-cifar10", "image-folder")
_ALIASES = {
    "mnist-10k": "mnist10k", "mnist_10k": "mnist10k",
    "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10", "cifar-100": "cifar100",
    "tinyimagenet": "tiny-imagenet", "tiny_imagenet": "tiny-imagenet", "tiny-imagenet-200": "tiny-imagenet",
    "seq_mnist": "seq-mnist", "sequential-mnist": "seq-mnist", "smnist": "seq-mnist",
    "dvs_cifar10": "dvs-cifar10", "cifar10-dvs": "dvs-cifar10", "cifar10dvs": "dvs-cifar10",
    "image_folder": "image-folder", "folder": "image-folder",
}
AUGMENTS = ("crop-flip", "crop", "none")
CROP_PADDING = 4  # random crop with zero padding 4 (SPEC "Training recipe")
DVS_FRAMES = 20  # T = 20 for DVS-CIFAR10 (SPEC)
DVS_SIZE = 48  # 128×128 sensor downsampled to 48×48 (divisible by 8 for VGG9's three poolings)
DVS_SENSOR = (128, 128, 2)  # tonic.datasets.CIFAR10DVS.sensor_size: (x, y, polarity)
DVS_TEST_FRACTION = 0.1  # 9,000 train / 1,000 test of the 10,000 recordings
DEFAULT_TEST_FRACTION = 0.2  # image-folder without train/ + test/: share of each class held out for testing
_CACHE_FORMAT = 1  # bump when the decoded-cache layout changes
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"


class DataError(ValueError):
    """Data that cannot be found or read; the message says where it looked / which file is bad."""


# ====================================================================================== DataInfo
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


# ====================================================================================== ImageSet
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


# ====================================================================================== pixels
def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (0..255) → float32 pixels in [0, 1], same shape. Floating input is returned as is
    (already pixels, or event frames)."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    if not images.is_floating_point():
        raise ValueError(f"to_pixels expects uint8 or floating images, got {images.dtype}")
    return images


def normalize(pixels: torch.Tensor, info: DataInfo) -> torch.Tensor:
    """(pixels − mean) / std per channel → what a model reads.

    pixels: uint8 (0..255, divided by 255 first) or floating [0, 1] pixels — or, for event data, the
    float frame counts. The channel axis must be dim −3, so [B, C, H, W], [B, T, C, H, W] and
    [T, B, C, H, W] all work. uint8 gives float32; floating input keeps its dtype (float64 stays).
    """
    x = to_pixels(pixels)
    if x.dtype not in (torch.float32, torch.float64):
        x = x.to(torch.float32)
    channels = len(info.mean)
    if x.dim() < 3 or x.shape[-3] != channels:
        raise ValueError(f"normalize: expected {channels} channel(s) at dim -3 for {info.name}, "
                         f"got shape {tuple(x.shape)}")
    mean = torch.tensor(info.mean, dtype=x.dtype, device=x.device).view(channels, 1, 1)  # [C, 1, 1]
    std = torch.tensor(info.std, dtype=x.dtype, device=x.device).view(channels, 1, 1)
    return (x - mean) / std


def augment_batch(pixels: torch.Tensor, info: DataInfo, generator: torch.Generator | None, *,
                  padding: int | None = None) -> torch.Tensor:
    """Training augmentation on a whole batch at once, per `info.augment`.

    "crop": random crop back to H×W from the image zero-padded by 4 on every side (pixel value 0, as
    torchvision's RandomCrop(padding=4) does before normalisation); "crop-flip": that, then a
    horizontal flip with probability 1/2; "none": unchanged. One offset and one flip per sample; for
    event frames [B, T, C, H, W] the same offset and flip apply to all T frames of a sample.
    Randomness comes only from `generator` (draw order: row offsets, column offsets, flips), so a
    seeded generator gives the same batch every time. Shape and dtype are kept.
    """
    if info.augment == "none":
        return pixels
    if info.augment not in AUGMENTS:
        raise ValueError(f"unknown augment {info.augment!r}; choose one of {AUGMENTS}")
    if pixels.dim() not in (4, 5):
        raise ValueError(f"augment_batch expects [B, C, H, W] or [B, T, C, H, W], got {tuple(pixels.shape)}")
    batch, height, width = pixels.shape[0], pixels.shape[-2], pixels.shape[-1]
    device = pixels.device
    draw_device = generator.device if generator is not None else torch.device("cpu")
    flat = pixels.reshape(batch, -1, height, width)  # [B, K, H, W], K = C (or T·C for event frames)

    pad = CROP_PADDING if padding is None else int(padding)  # padding: scaled to small images (auto recipe)
    if pad < 0:
        raise ValueError(f"crop padding must be ≥ 0; got {pad}")
    padded = F.pad(flat, (pad, pad, pad, pad))  # [B, K, H + 2·pad, W + 2·pad], zeros around
    row_offsets = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=draw_device).to(device)
    col_offsets = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=draw_device).to(device)
    rows = row_offsets[:, None] + torch.arange(height, device=device)  # [B, H]
    cols = col_offsets[:, None] + torch.arange(width, device=device)  # [B, W]
    batch_index = torch.arange(batch, device=device)[:, None, None]  # [B, 1, 1]
    cropped = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]  # [B, H, W, K]
    flat = cropped.permute(0, 3, 1, 2)  # [B, K, H, W]

    if info.augment == "crop-flip":
        flips = torch.rand(batch, generator=generator, device=draw_device).to(device) < 0.5  # [B]
        flat = torch.where(flips[:, None, None, None], flat.flip(-1), flat)
    return flat.reshape(pixels.shape).contiguous()


# ====================================================================================== loaders
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


# ====================================================================================== locations
def project_root() -> Path:
    """The repository root: the folder above the bntt_core package."""
    return Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """Where decoded datasets are cached: $BNTT_CACHE_DIR, default ~/.cache/bntt."""
    return Path(os.environ.get("BNTT_CACHE_DIR") or Path.home() / ".cache" / "bntt").expanduser()


def _torchvision_root() -> Path:
    return Path.home() / ".cache" / "bntt" / "torchvision"


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for data, in order (see the module docstring)."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    roots: list[Path] = []
    if os.environ.get("BNTT_DATA_DIR"):
        roots.append(Path(os.environ["BNTT_DATA_DIR"]).expanduser())
    roots += [project_root() / "data", project_root().parent / "shared" / "data", _torchvision_root()]
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def _download_root(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("BNTT_DATA_DIR"):
        return Path(os.environ["BNTT_DATA_DIR"]).expanduser()
    return _torchvision_root()


# ====================================================================================== load_data
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


_TORCHVISION_HINT = ("let torchvision download it with load_data({name!r}, download=True) (or environment "
                     "BNTT_DOWNLOAD=1) into {download_root}, or pass data_dir= a folder holding {layout}")
_KINDS: dict[str, _Kind] = {
    "mnist10k": _Kind(1, 28, 10, MNIST_CLASSES, "crop", None,
                      "it ships with the repository as data/mnist10k.npz (restore it with `git checkout -- "
                      "data/mnist10k.npz`), or pass data_dir= a folder holding mnist10k.npz"),
    "mnist": _Kind(1, 28, 10, MNIST_CLASSES, "crop", None, _TORCHVISION_HINT.format(
        name="mnist", download_root="{download_root}",
        layout="torchvision's MNIST/raw/ or image folders train/<class>/ + test/<class>/")),
    "fashion-mnist": _Kind(1, 28, 10, FASHION_CLASSES, "crop-flip", None, _TORCHVISION_HINT.format(
        name="fashion-mnist", download_root="{download_root}",
        layout="torchvision's FashionMNIST/raw/, fashion-mnist-70k.npz, or image folders train/<class>/ + "
               "test/<class>/")),
    "cifar10": _Kind(3, 32, 10, CIFAR10_CLASSES, "crop-flip", 25, _TORCHVISION_HINT.format(
        name="cifar10", download_root="{download_root}",
        layout="torchvision's cifar-10-batches-py/, cifar10-jpg.tar.gz, or image folders train/<class>/ + "
               "test/<class>/")),
    "cifar100": _Kind(3, 32, 100, None, "crop-flip", 30, _TORCHVISION_HINT.format(
        name="cifar100", download_root="{download_root}",
        layout="torchvision's cifar-100-python/ or image folders train/<class>/ + test/<class>/")),
    "tiny-imagenet": _Kind(3, 64, 200, None, "crop-flip", 30,
                           f"download {TINY_IMAGENET_URL} and unzip it so that <folder>/tiny-imagenet-200/"
                           "train/ and val/val_annotations.txt exist in one of these places (or pass "
                           "data_dir= that folder), or load_data('tiny-imagenet', download=True) (environment "
                           "BNTT_DOWNLOAD=1) downloads it into {download_root}"),
    "seq-mnist": _Kind(1, 28, 10, MNIST_CLASSES, "none", 784,
                       "any MNIST source works: the shipped data/mnist10k.npz (restore it with `git checkout "
                       "-- data/mnist10k.npz`), or load_data('seq-mnist', download=True) (environment "
                       "BNTT_DOWNLOAD=1) to download full MNIST with torchvision into {download_root}"),
    "dvs-cifar10": _Kind(2, DVS_SIZE, 10, CIFAR10_CLASSES, "crop-flip", DVS_FRAMES,
                         "load_data('dvs-cifar10', download=True) (environment BNTT_DOWNLOAD=1) lets tonic "
                         "download it into {download_root}/CIFAR10DVS; or put tonic's extracted layout "
                         "CIFAR10DVS/<class>/*.aedat4 in one of these places, or pass data_dir= that folder",
                         event=True),
    "image-folder": _Kind(None, None, None, None, "crop", None,
                          "pass data_dir= a folder (or .tar.gz) holding train/<class>/<images> and "
                          "test/<class>/<images>, one sub-folder per class (or set BNTT_DATA_DIR to it), or "
                          "data_dir= a folder of class folders <class>/<images> (a seeded stratified test split "
                          "of test_fraction is held out)"),
}


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key)
    if key not in KNOWN_DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(KNOWN_DATASETS)}")
    return key


def _download_requested(download: bool) -> bool:
    return bool(download) or os.environ.get("BNTT_DOWNLOAD", "").strip().lower() in ("1", "true", "yes", "on")


def load_data(name: str, *, data_dir: str | os.PathLike | None = None, seed: int = 0,
              download: bool = False, test_fraction: float = DEFAULT_TEST_FRACTION,
              strict_images: bool = False) -> tuple[ImageSet, ImageSet, DataInfo]:
    """(train, test, info) for dataset `name` (one of KNOWN_DATASETS; see the module docstring).

    seed: the seed of the stratified split for datasets that have no official one (mnist10k,
    fashion-mnist from the 70k npz, dvs-cifar10, an image-folder of class folders); datasets with an
    official split ignore it.
    download: fetch the dataset when it is found nowhere (also enabled by BNTT_DOWNLOAD=1).
    test_fraction (image-folder of class folders without train/ + test/ only): share of each class
    held out as the test set. strict_images (image-folder only): an unreadable image is an error
    instead of being skipped with one warning (named datasets are always strict).
    Raises DataError when the data are missing (listing where it looked) or unreadable, and for an
    image folder with fewer than two classes.
    """
    canonical = _canonical_name(name)
    kind = _KINDS[canonical]
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) \
            or not 0.0 < float(test_fraction) < 1.0:
        raise DataError(f"test fraction must be a number in (0, 1); got {test_fraction!r}")
    explicit = data_dir is not None
    roots = search_roots(data_dir)
    builder = _SOURCE_BUILDERS[canonical]
    if canonical == "image-folder":
        builder = functools.partial(_image_folder_sources, test_fraction=float(test_fraction),
                                    strict=bool(strict_images))
    sources = builder(roots, explicit, int(seed))
    raw = None
    for source in sources:
        if source.present():
            raw = source.read()
            break
    if raw is None:
        download_root = _download_root(data_dir)
        if _download_requested(download) and canonical in _DOWNLOADERS:
            _DOWNLOADERS[canonical](download_root)
            for source in builder([download_root], True, int(seed)):
                if source.present():
                    raw = source.read()
                    break
        if raw is None:
            looked = "\n".join(f"  - {source.where}" for source in sources)
            raise DataError(f"dataset {canonical!r} not found. Looked in:\n{looked}\nTo get it: "
                            + kind.how_to_get.format(download_root=download_root) + ".")
    return _finish(canonical, kind, raw)


def _finish(canonical: str, kind: _Kind, raw: _Raw) -> tuple[ImageSet, ImageSet, DataInfo]:
    """Check the arrays against the dataset's kind, compute mean/std, build tensors and DataInfo."""
    class_names = tuple(raw.class_names)
    if kind.num_classes is not None and len(class_names) != kind.num_classes:
        raise DataError(f"{raw.source}: found {len(class_names)} classes, but {canonical} has {kind.num_classes}")
    if len(class_names) < 2:
        raise DataError(f"{raw.source}: found {len(class_names)} class ({', '.join(class_names) or 'none'}); a "
                        f"classifier needs at least two, one sub-folder of images per class")
    if len(raw.train_labels) == 0 or len(raw.test_labels) == 0:
        raise DataError(f"{raw.source}: the {'train' if len(raw.train_labels) == 0 else 'test'} split is empty")
    for labels in (raw.train_labels, raw.test_labels):
        if labels.min() < 0 or labels.max() >= len(class_names):
            raise DataError(f"{raw.source}: labels outside 0..{len(class_names) - 1}")
    channel_axis = 2 if kind.event else 1
    mean, std = _channel_stats(raw.train_images, channel_axis)
    channels = raw.train_images.shape[channel_axis]
    size = raw.train_images.shape[-1]
    if kind.event:
        # uint8 event counts [N, T, C, H, W] → float32 frames
        train = ImageSet(torch.from_numpy(raw.train_images).to(torch.float32), torch.from_numpy(raw.train_labels))
        test = ImageSet(torch.from_numpy(raw.test_images).to(torch.float32), torch.from_numpy(raw.test_labels))
    else:
        train = ImageSet(torch.from_numpy(_owned(raw.train_images)), torch.from_numpy(_owned(raw.train_labels)))
        test = ImageSet(torch.from_numpy(_owned(raw.test_images)), torch.from_numpy(_owned(raw.test_labels)))
    info = DataInfo(name=canonical, in_channels=int(channels), image_size=int(size), num_classes=len(class_names),
                    mean=mean, std=std, class_names=class_names, augment=kind.augment,
                    num_steps_hint=kind.num_steps_hint, source=raw.source, event=kind.event,
                    num_frames=int(raw.train_images.shape[1]) if kind.event else None, split=raw.split)
    log.info("loaded %s: %d train / %d test images from %s", canonical, len(train), len(test), raw.source)
    return train, test, info


def _owned(array: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable array (copied only when needed) that torch.from_numpy can share."""
    return np.require(array, requirements=["C_CONTIGUOUS", "WRITEABLE"])


def _channel_stats(images: np.ndarray, channel_axis: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std from uint8 histograms. Pixel images (channel_axis 1) are in
    [0, 1] (value / 255); event counts (channel_axis 2) are taken as they are."""
    scale = 255.0 if channel_axis == 1 else 1.0
    values = np.arange(256, dtype=np.float64) / scale
    means, stds = [], []
    for channel in range(images.shape[channel_axis]):
        plane = np.take(images, channel, axis=channel_axis)
        counts = np.bincount(plane.reshape(-1), minlength=256).astype(np.float64)
        total = counts.sum()
        mean = float((counts * values).sum() / total)
        var = float((counts * (values - mean) ** 2).sum() / total)
        means.append(round(mean, 4))
        stds.append(round(max(math.sqrt(var), 1e-3), 4))
    return tuple(means), tuple(stds)


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


# ====================================================================================== npz files
def _read_digits_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """images uint8 [N, 1, 28, 28] and labels int64 [N] from an npz with `images` [N, 28, 28]."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            images = archive["images"]
            labels = archive["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc} (expected an .npz with arrays 'images' uint8 [N, 28, 28] and "
                        "'labels' [N]); restore or re-download the file") from exc
    if images.dtype != np.uint8 or images.ndim != 3 or labels.shape != (images.shape[0],):
        raise DataError(f"{path}: expected 'images' uint8 [N, H, W] and 'labels' [N], got {images.dtype} "
                        f"{images.shape} and {labels.shape}")
    return images[:, None], labels.astype(np.int64)  # [N, H, W] → [N, 1, H, W]


def _npz_split_source(path: Path, seed: int, test_count: int, what: str, class_names: tuple[str, ...]) -> _Source:
    def read() -> _Raw:
        images, labels = _read_digits_npz(path)
        count = test_count if test_count < len(labels) else max(1, len(labels) // 5)
        train_index, test_index = _stratified_split(labels, count, seed)
        split = _split_description(len(labels), count, seed)
        return _Raw(images[train_index], labels[train_index], images[test_index], labels[test_index],
                    class_names, f"{path} ({what}); {split}", split)

    return _Source(f"{path} ({what})", path.is_file, read)


# ====================================================================================== torchvision
def _read_idx(path: Path) -> np.ndarray:
    """An idx file (MNIST's format), gzipped or not → uint8 array of its shape."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise DataError(f"{path} is not an idx file of uint8 (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated (incomplete header)")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    count = int(np.prod(shape))
    if len(raw) != 4 + 4 * ndim + count:
        raise DataError(f"{path} is truncated or has trailing bytes: {len(raw)} bytes for shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _idx_file(folder: Path, stem: str) -> Path:
    plain = folder / stem
    return plain if plain.is_file() else folder / f"{stem}.gz"


def _mnist_raw_source(root: Path, folder_name: str, what: str, class_names: tuple[str, ...]) -> _Source:
    raw_dir = root / folder_name / "raw"
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

    def present() -> bool:
        return _idx_file(raw_dir, stems[0]).is_file()

    def read() -> _Raw:
        arrays = []
        for stem in stems:
            path = _idx_file(raw_dir, stem)
            if not path.is_file():
                raise DataError(f"{raw_dir} is incomplete: {stem}[.gz] is missing (re-download with download=True)")
            arrays.append(_read_idx(path))
        train_images, train_labels, test_images, test_labels = arrays
        for images, labels, stem in ((train_images, train_labels, stems[0]), (test_images, test_labels, stems[2])):
            if images.ndim != 3 or labels.shape != (images.shape[0],):
                raise DataError(f"{raw_dir / stem}: {images.shape} images do not match {labels.shape} labels")
        return _Raw(train_images[:, None], train_labels.astype(np.int64), test_images[:, None],
                    test_labels.astype(np.int64), class_names, f"{raw_dir} ({what}, torchvision layout)")

    return _Source(f"{raw_dir}/ (torchvision {what})", present, read)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR's python batches (dicts of bytes, lists and numpy arrays) and nothing else."""

    _allowed = {
        "_reconstruct": np.ndarray.__reduce__(np.zeros(1))[0],  # how pickled arrays are rebuilt
        "_frombuffer": np.zeros(1).__reduce_ex__(5)[0],  # the same, pickle protocol 5
        "ndarray": np.ndarray,
        "dtype": np.dtype,
    }

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "numpy" and name in self._allowed:
            return self._allowed[name]
        if (module, name) == ("_codecs", "encode"):  # bytes pickled by Python 3 at protocol 2
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _read_cifar_batch(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError as exc:
        raise DataError(f"{path} is missing (re-download with download=True)") from exc
    except Exception as exc:  # any unpickling failure means a corrupt or foreign file
        raise DataError(f"cannot read CIFAR batch {path}: {exc}") from exc
    if not isinstance(batch, dict) or b"data" not in batch:
        raise DataError(f"{path} is not a CIFAR python batch (no 'data' entry)")
    return batch


def _cifar_python_source(root: Path, hundred: bool) -> _Source:
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    train_files = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    test_files = ["test"] if hundred else ["test_batch"]
    label_key = b"fine_labels" if hundred else b"labels"
    what = "CIFAR-100" if hundred else "CIFAR-10"

    def read_split(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        for name in names:
            batch = _read_cifar_batch(folder / name)
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or label_key not in batch:
                raise DataError(f"{folder / name}: expected data [N, 3072] and {label_key.decode()}")
            images.append(data.reshape(-1, 3, 32, 32))  # rows are R, G, B planes of 32×32
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
        return np.concatenate(images), np.concatenate(labels)

    def read() -> _Raw:
        train_images, train_labels = read_split(train_files)
        test_images, test_labels = read_split(test_files)
        meta_path = folder / ("meta" if hundred else "batches.meta")
        names_key = b"fine_label_names" if hundred else b"label_names"
        if meta_path.is_file():
            names = tuple(n.decode() if isinstance(n, bytes) else str(n)
                          for n in _read_cifar_batch_meta(meta_path).get(names_key, []))
        else:
            names = ()
        if not names:
            if hundred:
                raise DataError(f"{meta_path} is missing: it holds the CIFAR-100 class names")
            names = CIFAR10_CLASSES
        return _Raw(train_images, train_labels, test_images, test_labels, names,
                    f"{folder} ({what}, torchvision layout)")

    return _Source(f"{folder}/ (torchvision {what})", folder.is_dir, read)


def _read_cifar_batch_meta(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return _ArrayUnpickler(handle, encoding="bytes").load()
    except Exception as exc:
        raise DataError(f"cannot read CIFAR metadata {path}: {exc}") from exc


# ====================================================================================== decoded cache
def _cache_file(kind: str, fingerprint: object) -> Path:
    digest = hashlib.sha256(json.dumps([_CACHE_FORMAT, kind, fingerprint], sort_keys=True).encode()).hexdigest()
    return cache_dir() / "decoded" / f"{kind}-{digest[:20]}.npz"


def _load_cache(path: Path) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as exc:  # our own cache: a broken one is rebuilt
        log.warning("decoded cache %s is unreadable (%s); decoding again", path, exc)
        return None


def _save_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("could not write the decoded cache %s (%s); the data will be decoded again next time", path, exc)


def _cached_decode(kind: str, fingerprint: object, decode: Callable[[], dict[str, np.ndarray]]) -> tuple[dict, Path]:
    """decode() once per fingerprint; later calls read the cached .npz."""
    path = _cache_file(kind, fingerprint)
    arrays = _load_cache(path)
    if arrays is None:
        arrays = decode()
        _save_cache(path, arrays)
    return arrays, path


def _raw_from_arrays(arrays: dict[str, np.ndarray], source: str, split: str = "official") -> _Raw:
    return _Raw(arrays["train_images"], arrays["train_labels"].astype(np.int64), arrays["test_images"],
                arrays["test_labels"].astype(np.int64), tuple(str(n) for n in arrays["class_names"]), source, split)


def _progress(iterable, total: int, description: str):
    """tqdm progress on a terminal (stderr), silent otherwise."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=description, disable=None, leave=False)


# ====================================================================================== images
@dataclass
class _ImageEntry:
    name: str  # for messages: a file path or "archive.tar.gz:member"
    label: int
    open: Callable[[], object]  # → what PIL.Image.open takes (a path or a file object)


def _choose_geometry(entries: list[_ImageEntry], channels: int | None, size: int | None,
                     train_count: int, skipped: list[str] | None = None) -> tuple[int, int]:
    """(channels, size): the fixed ones, or from the images' headers (see the module docstring).
    skipped: None raises on an unreadable image; a list collects its name instead (and it is left out)."""
    if channels is not None and size is not None:
        return channels, size
    from PIL import Image

    sizes, modes = [], set()
    for index, entry in enumerate(entries):
        try:
            with Image.open(entry.open()) as image:
                if index < train_count:
                    sizes.append(image.size)
                modes.add(image.mode)
        except Exception as exc:
            if skipped is None:
                raise DataError(f"cannot read image {entry.name}: {exc}") from exc
            skipped.append(entry.name)
    if not sizes:
        raise DataError(f"none of the {train_count} training images could be read (the first: {entries[0].name})"
                        if entries else "no images to read")
    if channels is None:
        channels = 1 if modes <= _GREY_MODES else 3
    if size is None:
        if len(set(sizes)) == 1 and sizes[0][0] == sizes[0][1]:
            size = sizes[0][0]
        else:
            size = int(np.median([min(w, h) for w, h in sizes]))
    return channels, size


def _decode_images(entries: list[_ImageEntry], channels: int, size: int, description: str,
                   skipped: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, channels, size, size], read bool [N]): each image converted (L or RGB), centre-cropped
    to a square and resized (bilinear) when it is not already size×size. An unreadable image raises a
    DataError, or with a `skipped` list is named there and marked unread (its row left zero)."""
    from PIL import Image, ImageOps

    mode = "L" if channels == 1 else "RGB"
    out = np.zeros((len(entries), size, size, channels), dtype=np.uint8)  # [N, H, W, C], transposed at the end
    read = np.ones(len(entries), dtype=bool)
    for index, entry in enumerate(_progress(entries, len(entries), description)):
        try:
            with Image.open(entry.open()) as image:
                image = image.convert(mode)
                if image.size != (size, size):
                    image = ImageOps.fit(image, (size, size), method=Image.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
        except Exception as exc:
            if skipped is None:
                raise DataError(f"cannot read image {entry.name}: {exc}") from exc
            skipped.append(entry.name)
            read[index] = False
            continue
        out[index] = array.reshape(size, size, channels)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)), read  # [N, H, W, C] → [N, C, H, W]


def _decode_split_entries(train: list[_ImageEntry], test: list[_ImageEntry], class_names: tuple[str, ...],
                          channels: int | None, size: int | None, description: str,
                          strict: bool = True) -> dict[str, np.ndarray]:
    """The decoded arrays of a train/test list of images. strict=False skips unreadable images (their
    names go to the "skipped" array, reported by `_report_skipped`) instead of raising."""
    skipped: list[str] | None = None if strict else []
    channels, size = _choose_geometry(train + test, channels, size, len(train), skipped)
    if skipped:
        unreadable = set(skipped)
        train = [entry for entry in train if entry.name not in unreadable]
        test = [entry for entry in test if entry.name not in unreadable]
    images, read = _decode_images(train + test, channels, size, description, skipped)
    labels = np.array([e.label for e in train + test], dtype=np.int64)
    is_train = np.arange(len(labels)) < len(train)
    return {"train_images": images[read & is_train], "train_labels": labels[read & is_train],
            "test_images": images[read & ~is_train], "test_labels": labels[read & ~is_train],
            "class_names": np.array(class_names, dtype=str), "skipped": np.array(skipped or [], dtype=str)}


def _report_skipped(arrays: dict[str, np.ndarray], strict: bool, where: object) -> None:
    """One warning naming how many images were unreadable and the first few (an error when strict)."""
    skipped = [str(name) for name in arrays.get("skipped", ())]
    if not skipped:
        return
    first = ", ".join(skipped[:3]) + (f" and {len(skipped) - 3} more" if len(skipped) > 3 else "")
    if strict:
        raise DataError(f"cannot read {len(skipped)} image(s) in {where}: {first} (without --strict-images "
                        f"unreadable images are skipped with a warning)")
    log.warning("warning: skipped %d unreadable image(s) in %s: %s (--strict-images makes this an error)",
                len(skipped), where, first)


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in _IMAGE_SUFFIXES


def _class_folders(split_dir: Path) -> list[Path]:
    return sorted((p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _folder_files(class_dir: Path) -> list[Path]:
    return sorted(p for p in class_dir.rglob("*") if p.is_file() and _is_image(p.name) and not p.name.startswith("."))


def _image_folder_source(root: Path, label: str, channels: int | None, size: int | None,
                         what: str, strict: bool = True) -> _Source:
    """train/<class>/* + test/<class>/* under `root` (test/ may be called val/). strict=False skips
    unreadable images with one warning (image-folder); named datasets keep strict."""
    train_dir = root / "train"

    def test_dir() -> Path:
        return root / "test" if (root / "test").is_dir() or not (root / "val").is_dir() else root / "val"

    def present() -> bool:
        return train_dir.is_dir() and test_dir().is_dir()

    def read() -> _Raw:
        classes = _class_folders(train_dir)
        if not classes:
            raise DataError(f"{train_dir} has no class folders: expected train/<class>/<images>")
        class_names = tuple(p.name for p in classes)
        index_of = {name: i for i, name in enumerate(class_names)}
        entries: dict[str, list[_ImageEntry]] = {"train": [], "test": []}
        fingerprint = []
        for split, split_dir in (("train", train_dir), ("test", test_dir())):
            for class_dir in _class_folders(split_dir):
                if class_dir.name not in index_of:
                    raise DataError(f"{class_dir}: class {class_dir.name!r} has no folder in {train_dir}")
                for path in _folder_files(class_dir):
                    stat = path.stat()
                    entries[split].append(_ImageEntry(str(path), index_of[class_dir.name], lambda p=path: p))
                    fingerprint.append([str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns])
            if not entries[split]:
                raise DataError(f"{split_dir} contains no images (looked for {', '.join(sorted(_IMAGE_SUFFIXES))} "
                                "files in its class folders)")
        arrays, cache = _cached_decode(f"folder-{label}", [str(root.resolve()), channels, size, fingerprint],
                                       lambda: _decode_split_entries(entries["train"], entries["test"], class_names,
                                                                     channels, size, f"decoding {root}", strict))
        _report_skipped(arrays, strict, root)
        return _raw_from_arrays(arrays, f"{root} ({what}, image folders; decoded cache {cache})")

    return _Source(f"{train_dir}/ + {test_dir()}/ (image folders <split>/<class>/<images>)", present, read)


def _class_folder_source(root: Path, test_fraction: float, seed: int, strict: bool) -> _Source:
    """<root>/<class>/<images> without train/ and test/: every image decoded, then a seeded stratified
    split holding out `test_fraction` of each class (at least one test and one training image)."""

    def classes() -> list[Path]:
        return [p for p in _class_folders(root) if p.name not in ("train", "test", "val")]

    def present() -> bool:
        if not root.is_dir() or (root / "train").is_dir():
            return False
        return any(_is_image(p.name) for folder in classes() for p in folder.rglob("*") if p.is_file())

    def read() -> _Raw:
        class_dirs = classes()
        class_names = tuple(p.name for p in class_dirs)
        entries, fingerprint = [], []
        for label, class_dir in enumerate(class_dirs):
            for path in _folder_files(class_dir):
                stat = path.stat()
                entries.append(_ImageEntry(str(path), label, lambda p=path: p))
                fingerprint.append([str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns])
        arrays, cache = _cached_decode("classes-image-folder", [str(root.resolve()), fingerprint],
                                       lambda: _decode_split_entries(entries, [], class_names, None, None,
                                                                     f"decoding {root}", strict))
        _report_skipped(arrays, strict, root)
        images, labels = arrays["train_images"], arrays["train_labels"].astype(np.int64)
        if len(labels) < 2:
            raise DataError(f"{root}: {len(labels)} readable image(s); a train/test split needs at least two")
        test_count = min(max(1, round(len(labels) * test_fraction)), len(labels) - 1)
        train_index, test_index = _stratified_split(labels, test_count, seed)
        split = (f"{_split_description(len(labels), test_count, seed)}, test fraction {test_fraction:g} "
                 f"(class folders without train/ and test/)")
        return _Raw(images[train_index], labels[train_index], images[test_index], labels[test_index],
                    class_names, f"{root} (class folders; decoded cache {cache}); {split}", split)

    return _Source(f"{root}/<class>/<images> (class folders; a seeded stratified test split is held out)",
                   present, read)


def _tar_image_source(path: Path, label: str, channels: int | None, size: int | None, what: str,
                      strict: bool = True) -> _Source:
    """A .tar / .tar.gz holding [prefix/]train/<class>/<image> and [prefix/]test/<class>/<image>."""

    def read() -> _Raw:
        stat = path.stat()
        fingerprint = [str(path.resolve()), stat.st_size, stat.st_mtime_ns, channels, size]
        arrays, cache = _cached_decode(f"tar-{label}", fingerprint, lambda: _decode_tar(path, channels, size, strict))
        _report_skipped(arrays, strict, path)
        return _raw_from_arrays(arrays, f"{path} ({what}, image folders in a tar; decoded cache {cache})")

    return _Source(f"{path} (tar of train/<class>/ + test/<class>/ image folders)", path.is_file, read)


def _decode_tar(path: Path, channels: int | None, size: int | None, strict: bool = True) -> dict[str, np.ndarray]:
    """Read every image of the tar into memory (one pass over the stream), then decode them."""
    members: dict[str, list[tuple[str, str, bytes]]] = {"train": [], "test": []}  # split → (class, member, bytes)
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                parts = member.name.strip("/").split("/")
                if not member.isfile() or not _is_image(parts[-1]) or len(parts) < 3:
                    continue
                split = parts[-3]
                if split not in members:
                    continue
                handle = archive.extractfile(member)
                members[split].append((parts[-2], member.name, handle.read() if handle else b""))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc} (truncated or not a tar archive; restore the file)") from exc
    class_names = tuple(sorted({cls for cls, _, _ in members["train"]}))
    if not class_names or not members["test"]:
        raise DataError(f"{path} holds no train/<class>/<image> and test/<class>/<image> files")
    index_of = {name: i for i, name in enumerate(class_names)}
    entries: dict[str, list[_ImageEntry]] = {}
    for split, items in members.items():
        items.sort(key=lambda item: (item[0], item[1]))
        for cls, name, _ in items:
            if cls not in index_of:
                raise DataError(f"{path}:{name}: class {cls!r} has no train/ folder")
        entries[split] = [_ImageEntry(f"{path}:{name}", index_of[cls], lambda data=data: io.BytesIO(data))
                          for cls, name, data in items]
    return _decode_split_entries(entries["train"], entries["test"], class_names, channels, size,
                                 f"decoding {path.name}", strict)


def _folder_sources(root: Path, explicit: bool, folder_names: Sequence[str], label: str, kind: _Kind,
                    what: str) -> list[_Source]:
    """Image-folder sources for a named dataset: <root>/<name>/{train,test} (and <root> itself and a
    tar file given as data_dir, when the user named the folder)."""
    sources = []
    if explicit:
        if root.is_file() or root.name.endswith((".tar", ".tar.gz", ".tgz")):
            sources.append(_tar_image_source(root, label, kind.channels, kind.size, what))
        else:
            sources.append(_image_folder_source(root, label, kind.channels, kind.size, what))
    for folder in folder_names:
        sources.append(_image_folder_source(root / folder, label, kind.channels, kind.size, what))
    return sources


# ====================================================================================== tiny-imagenet
def _tiny_imagenet_source(folder: Path) -> _Source:
    def present() -> bool:
        return (folder / "train").is_dir() and (folder / "val").is_dir()

    def read() -> _Raw:
        train_dir, val_dir = folder / "train", folder / "val"
        wnids_file = folder / "wnids.txt"
        if wnids_file.is_file():
            wnids = sorted({line.strip() for line in wnids_file.read_text().splitlines() if line.strip()})
        else:
            wnids = [p.name for p in _class_folders(train_dir)]
        if not wnids:
            raise DataError(f"{train_dir} has no class folders (train/<wnid>/images/*.JPEG)")
        index_of = {wnid: i for i, wnid in enumerate(wnids)}
        words = _tiny_imagenet_words(folder / "words.txt")
        class_names = tuple(words.get(wnid, wnid) for wnid in wnids)
        train_entries, fingerprint = [], []
        for wnid in wnids:
            class_dir = train_dir / wnid / "images"
            if not class_dir.is_dir():
                class_dir = train_dir / wnid
            files = _folder_files(class_dir) if class_dir.is_dir() else []
            if not files:
                raise DataError(f"{train_dir / wnid} contains no images (expected {wnid}/images/*.JPEG)")
            for path in files:
                train_entries.append(_ImageEntry(str(path), index_of[wnid], lambda p=path: p))
                stat = path.stat()
                fingerprint.append([str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns])
        annotations = val_dir / "val_annotations.txt"
        if not annotations.is_file():
            raise DataError(f"{annotations} is missing: Tiny-ImageNet's val labels are in it")
        test_entries = []
        for line_number, line in enumerate(annotations.read_text().splitlines(), 1):
            fields = line.split("\t")
            if not line.strip():
                continue
            if len(fields) < 2 or fields[1] not in index_of:
                raise DataError(f"{annotations}:{line_number}: expected '<file>\\t<wnid>\\t...' with a known wnid, "
                                f"got {line!r}")
            path = val_dir / "images" / fields[0]
            if not path.is_file():
                raise DataError(f"{annotations}:{line_number}: {path} does not exist")
            test_entries.append(_ImageEntry(str(path), index_of[fields[1]], lambda p=path: p))
            stat = path.stat()
            fingerprint.append([str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns])
        if not test_entries:
            raise DataError(f"{annotations} lists no images")
        arrays, cache = _cached_decode(
            "tiny-imagenet", [str(folder.resolve()), fingerprint],
            lambda: _decode_split_entries(train_entries, test_entries, class_names, 3, 64, f"decoding {folder}"))
        return _raw_from_arrays(arrays, f"{folder} (Tiny-ImageNet; train = train/, test = val/; decoded cache {cache})")

    return _Source(f"{folder}/ (Tiny-ImageNet: train/<wnid>/images/, val/val_annotations.txt)", present, read)


def _tiny_imagenet_words(path: Path) -> dict[str, str]:
    """wnid → its first name in words.txt ("n01443537\tgoldfish, Carassius auratus" → "goldfish")."""
    if not path.is_file():
        return {}
    words = {}
    for line in path.read_text(errors="replace").splitlines():
        wnid, _, names = line.partition("\t")
        if names:
            words[wnid.strip()] = names.split(",")[0].strip()
    return words


# ====================================================================================== dvs-cifar10
_AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
_AEDAT4_EVENT = np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                          "offsets": [0, 8, 10, 12], "itemsize": 16})  # flatbuffers struct Event, 16 bytes
_TONIC_EVENT = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])  # what tonic.io.read_aedat4 gives


def _read_aedat4(path: Path) -> np.ndarray:
    """Events of an AEDAT 4.0 file as a structured array (t, x, y, p), as tonic.io.read_aedat4 gives.

    Uses tonic's reader when its `aedat` decoder is installed; otherwise a reader of the same format
    written here (uncompressed files; LZ4 / Zstd ones need `lz4` / `zstandard`, or `pip install aedat`).
    """
    try:
        import aedat  # noqa: F401  # the decoder tonic.io.read_aedat4 uses
    except ImportError:
        return _read_aedat4_numpy(path)
    from tonic.io import read_aedat4

    try:
        events = read_aedat4(str(path))
    except Exception as exc:
        raise DataError(f"cannot read AEDAT4 file {path}: {exc}") from exc
    # aedat ≥ 2 names the polarity field "on" (title "p"); tonic's ToFrame needs a field named "p"
    fields = events.dtype.fields or {}
    polarity = "p" if "p" in fields else "on"
    if not {"t", "x", "y", polarity} <= set(fields):
        raise DataError(f"{path}: unexpected event fields {events.dtype}")
    out = np.empty(len(events), dtype=_TONIC_EVENT)
    out["t"], out["x"], out["y"], out["p"] = events["t"], events["x"], events["y"], events[polarity]
    return out


def _flatbuffer_field(buffer: bytes, table: int, slot: int) -> int | None:
    """Absolute position of field `slot` of the flatbuffers table at `table`, None if absent."""
    vtable = table - struct.unpack_from("<i", buffer, table)[0]
    vtable_size = struct.unpack_from("<H", buffer, vtable)[0]
    entry = 4 + 2 * slot
    if entry + 2 > vtable_size:
        return None
    offset = struct.unpack_from("<H", buffer, vtable + entry)[0]
    return table + offset if offset else None


def _read_aedat4_numpy(path: Path) -> np.ndarray:
    """AEDAT 4.0: magic, u32 length + IOHeader flatbuffer (compression, data-table position, XML
    description of the streams), then packets: u32 stream id, u32 size, a size-prefixed flatbuffer
    ('EVTS' for events: a vector of 16-byte Event structs t:int64, x:int16, y:int16, on:bool)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if not data.startswith(_AEDAT4_MAGIC):
        raise DataError(f"{path} is not an AEDAT 4.0 file (wrong magic number)")
    try:
        position = len(_AEDAT4_MAGIC)
        (header_size,) = struct.unpack_from("<I", data, position)
        header = data[position + 4:position + 4 + header_size]
        if len(header) < header_size:
            raise DataError(f"{path} is truncated (incomplete header)")
        position += 4 + header_size
        root = struct.unpack_from("<I", header, 0)[0]
        slot = _flatbuffer_field(header, root, 0)
        compression = struct.unpack_from("<i", header, slot)[0] if slot else 0
        slot = _flatbuffer_field(header, root, 1)
        data_end = struct.unpack_from("<q", header, slot)[0] if slot else -1
        slot = _flatbuffer_field(header, root, 2)
        if slot is None:
            raise DataError(f"{path}: the AEDAT4 header has no stream description")
        text_at = slot + struct.unpack_from("<I", header, slot)[0]
        text_size = struct.unpack_from("<I", header, text_at)[0]
        description = header[text_at + 4:text_at + 4 + text_size].decode("utf-8")
        event_streams = _aedat4_event_streams(description, path)
        packets = []
        while position < len(data) and (data_end < 0 or position < data_end):
            if position + 8 > len(data):
                raise DataError(f"{path} is truncated (incomplete packet header at byte {position})")
            stream_id, size = struct.unpack_from("<II", data, position)
            payload = data[position + 8:position + 8 + size]
            if len(payload) < size:
                raise DataError(f"{path} is truncated (packet at byte {position} needs {size} bytes)")
            position += 8 + size
            if stream_id in event_streams:
                packets.append(_aedat4_event_packet(_aedat4_decompress(payload, compression, path), path))
    except (struct.error, UnicodeDecodeError, IndexError) as exc:
        raise DataError(f"{path} is not a valid AEDAT 4.0 file: {exc}") from exc
    elements = np.concatenate(packets) if packets else np.empty(0, dtype=_AEDAT4_EVENT)
    events = np.empty(len(elements), dtype=_TONIC_EVENT)
    events["t"], events["x"], events["y"] = elements["t"], elements["x"], elements["y"]
    events["p"] = elements["on"] != 0
    return events


def _aedat4_event_streams(description: str, path: Path) -> set[int]:
    try:
        root = ElementTree.fromstring(description)
    except ElementTree.ParseError as exc:
        raise DataError(f"{path}: unreadable stream description: {exc}") from exc
    streams = set()
    for output in root.findall("node[@name='outInfo']"):
        for stream in output.findall("node"):
            kind = stream.find("attr[@key='typeIdentifier']")
            if kind is not None and (kind.text or "").strip() == "EVTS":
                streams.add(int(stream.get("name", "-1")))
    if not streams:
        raise DataError(f"{path} has no event stream (no outInfo node with typeIdentifier EVTS)")
    return streams


def _aedat4_decompress(payload: bytes, compression: int, path: Path) -> bytes:
    if compression == 0:
        return payload
    try:
        if compression in (1, 2):
            import lz4.frame

            return lz4.frame.decompress(payload)
        if compression in (3, 4):
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(payload)
    except ImportError as exc:
        raise DataError(f"{path} is {'LZ4' if compression < 3 else 'Zstd'}-compressed: install the `aedat` package "
                        "(pip install aedat), the decoder tonic uses for AEDAT4 files") from exc
    except Exception as exc:
        raise DataError(f"{path}: cannot decompress a packet: {exc}") from exc
    raise DataError(f"{path}: unknown AEDAT4 compression code {compression}")


def _aedat4_event_packet(buffer: bytes, path: Path) -> np.ndarray:
    if buffer[8:12] != b"EVTS":
        raise DataError(f"{path}: an event-stream packet is not an EVTS flatbuffer")
    table = 4 + struct.unpack_from("<I", buffer, 4)[0]  # size-prefixed: root offset after the size
    slot = _flatbuffer_field(buffer, table, 0)
    if slot is None:
        return np.empty(0, dtype=_AEDAT4_EVENT)
    vector = slot + struct.unpack_from("<I", buffer, slot)[0]
    count = struct.unpack_from("<I", buffer, vector)[0]
    if vector + 4 + 16 * count > len(buffer):
        raise DataError(f"{path}: an event packet is shorter than its {count} events")
    return np.frombuffer(buffer, dtype=_AEDAT4_EVENT, count=count, offset=vector + 4)


def _events_to_frames(events: np.ndarray) -> np.ndarray:
    """Events (t, x, y, p) on the 128×128 sensor → uint8 counts [T=20, 2, 48, 48] (clipped at 255):
    tonic Downsample(spatial_factor=48/128) then tonic ToFrame(n_time_bins=20)."""
    from tonic.transforms import Downsample, ToFrame

    if len(events) and np.any(np.diff(events["t"].astype(np.int64)) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    if len(events):
        inside = (events["x"] < DVS_SENSOR[0]) & (events["y"] < DVS_SENSOR[1])
        events = events[inside]
    events = Downsample(spatial_factor=DVS_SIZE / DVS_SENSOR[0])(events)
    frames = ToFrame(sensor_size=(DVS_SIZE, DVS_SIZE, 2), n_time_bins=DVS_FRAMES)(events)  # [T, P, H, W]
    return np.minimum(frames, 255).astype(np.uint8)


def _dvs_source(folder: Path, seed: int) -> _Source:
    """tonic's CIFAR10DVS layout: <folder>/<class>/*.aedat4 at any depth, the label being the name of
    the file's folder (as tonic.datasets.CIFAR10DVS labels them)."""
    label_of = {name: i for i, name in enumerate(CIFAR10_CLASSES)}

    def files() -> list[Path]:
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.rglob("*.aedat4") if p.parent.name in label_of)

    def present() -> bool:
        return folder.is_dir() and any(p.parent.name in label_of for p in folder.rglob("*.aedat4"))

    def read() -> _Raw:
        paths = files()
        fingerprint = [[str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns] for p in paths]

        def decode() -> dict[str, np.ndarray]:
            frames = np.empty((len(paths), DVS_FRAMES, 2, DVS_SIZE, DVS_SIZE), dtype=np.uint8)  # [N, T, C, H, W]
            for index, path in enumerate(_progress(paths, len(paths), f"decoding {folder}")):
                frames[index] = _events_to_frames(_read_aedat4(path))
            return {"frames": frames, "labels": np.array([label_of[p.parent.name] for p in paths], dtype=np.int64)}

        arrays, cache = _cached_decode("dvs-cifar10", [str(folder.resolve()), DVS_SIZE, DVS_FRAMES, fingerprint],
                                       decode)
        frames, labels = arrays["frames"], arrays["labels"].astype(np.int64)
        test_count = max(1, round(len(labels) * DVS_TEST_FRACTION))
        train_index, test_index = _stratified_split(labels, test_count, seed)
        split = _split_description(len(labels), test_count, seed)
        return _Raw(frames[train_index], labels[train_index], frames[test_index], labels[test_index],
                    CIFAR10_CLASSES, f"{folder} (CIFAR10-DVS AEDAT4 recordings → {DVS_FRAMES} frames of "
                    f"{DVS_SIZE}×{DVS_SIZE} event counts; decoded cache {cache}); {split}", split)

    return _Source(f"{folder}/ (tonic CIFAR10DVS layout <class>/*.aedat4)", present, read)


# ====================================================================================== sources
def _mnist10k_sources(roots: list[Path], explicit: bool, seed: int) -> list[_Source]:
    return [_npz_split_source(root / filename, seed, 2000, "10,000 MNIST digits", MNIST_CLASSES)
            for root in roots for filename in ("mnist10k.npz", "mnist-10k.npz")]


def _mnist_sources(roots: list[Path], explicit: bool, seed: int) -> list[_Source]:
    kind = _KINDS["mnist"]
    sources = []
    for root in roots:
        sources.append(_mnist_raw_source(root, "MNIST", "MNIST", MNIST_CLASSES))
        sources += _folder_sources(root, explicit, ["mnist"], "mnist", kind, "MNIST")
    return sources


def _fashion_sources(roots: list[Path], explicit: bool, seed: int) -> list[_Source]:
    kind = _KINDS["fashion-mnist"]
    sources = []
    for root in roots:
        sources.append(_mnist_raw_source(root, "FashionMNIST", "Fashion-MNIST", FASHION_CLASSES))
        sources.append(_npz_split_source(root / "fashion-mnist-70k.npz", seed, 10000,
                                         "all 70,000 Fashion-MNIST images; the official split is not recoverable "
                                         "from this file", FASHION_CLASSES))
        sources += _folder_sources(root, explicit, ["fashion-mnist"], "fashion-mnist", kind, "Fashion-MNIST")
    return sources


def _cifar10_sources(roots: list[Path], explicit: bool, seed: int) -> list[_Source]:
    kind = _KINDS["cifar10"]
    sources = []
    for root in roots:
        sources.append(_cifar_python_source(root, hundred=False))
        sources.append(_tar_image_source(root / "cifar10-jpg.tar.gz", "cifar10", 3, 32,
                                         "JPEG copy of CIFAR-10, official 50,000/10,000 split"))
        sources += _folder_sources(root, explicit, ["cifar10", "cifar10-jpg"], "cifar10", kind, "CIFAR-10")
    return sources


def _cifar100_sources(roots: list[Path], explicit: bool, seed: int) -> list[_Source]:
    kind = _KINDS["cifar100"]
    sources = []
    for root in roots:
        sources.append(_cifar_python_source(root, hundred=True))
        sources += _folder_sources(root, explicit, ["cifar100"], "cifar100", kind, "CIFAR-100")
    return sources


def _tiny_imagenet_sources(roots: list[Path], explicit: bool, seed: int) -> list[_Source]:
    sources = []
    for root in roots:
        if explicit:
            sources.append(_tiny_imagenet_source(root))
        sources.append(_tiny_imagenet_source(root / "tiny-imagenet-200"))
    return sources


def _seq_mnist_sources(roots: list[Path], explicit: bool, seed: int) -> list[_Source]:
    return _mnist_sources(roots, explicit, seed) + _mnist10k_sources(roots, explicit, seed)


def _dvs_sources(roots: list[Path], explicit: bool, seed: int) -> list[_Source]:
    sources = []
    for root in roots:
        sources.append(_dvs_source(root / "CIFAR10DVS", seed))
        sources.append(_dvs_source(root / "dvs-cifar10", seed))
        if explicit:
            sources.append(_dvs_source(root, seed))
    return sources


def _image_folder_sources(roots: list[Path], explicit: bool, seed: int, *,
                          test_fraction: float = DEFAULT_TEST_FRACTION, strict: bool = False) -> list[_Source]:
    kind = _KINDS["image-folder"]
    sources = []
    for root in roots:
        if root.is_file() or root.name.endswith((".tar", ".tar.gz", ".tgz")):
            sources.append(_tar_image_source(root, "image-folder", kind.channels, kind.size, "image folders",
                                             strict))
        else:
            sources.append(_image_folder_source(root, "image-folder", kind.channels, kind.size, "image folders",
                                                strict))
            if explicit:  # only a folder the user named: a search root's sub-folders are not classes
                sources.append(_class_folder_source(root, test_fraction, seed, strict))
    return sources


_SOURCE_BUILDERS: dict[str, Callable[[list[Path], bool, int], list[_Source]]] = {
    "mnist10k": _mnist10k_sources,
    "mnist": _mnist_sources,
    "fashion-mnist": _fashion_sources,
    "cifar10": _cifar10_sources,
    "cifar100": _cifar100_sources,
    "tiny-imagenet": _tiny_imagenet_sources,
    "seq-mnist": _seq_mnist_sources,
    "dvs-cifar10": _dvs_sources,
    "image-folder": _image_folder_sources,
}


# ====================================================================================== downloads
def _torchvision_download(dataset_class: str) -> Callable[[Path], None]:
    def download(root: Path) -> None:
        import torchvision.datasets

        root.mkdir(parents=True, exist_ok=True)
        constructor = getattr(torchvision.datasets, dataset_class)
        try:
            for train in (True, False):
                constructor(str(root), train=train, download=True)
        except Exception as exc:
            raise DataError(f"downloading {dataset_class} into {root} failed: {exc}") from exc

    return download


def _download_tiny_imagenet(root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(TINY_IMAGENET_URL, download_root=str(root), md5=TINY_IMAGENET_MD5)
    except Exception as exc:
        raise DataError(f"downloading Tiny-ImageNet from {TINY_IMAGENET_URL} into {root} failed: {exc}") from exc


def _download_dvs_cifar10(root: Path) -> None:
    from tonic.datasets import CIFAR10DVS

    root.mkdir(parents=True, exist_ok=True)
    try:
        CIFAR10DVS(save_to=str(root))  # downloads CIFAR10DVS.zip and extracts root/CIFAR10DVS/<class>/*.aedat4
    except Exception as exc:
        raise DataError(f"downloading CIFAR10-DVS with tonic into {root} failed: {exc}") from exc


_DOWNLOADERS: dict[str, Callable[[Path], None]] = {
    "mnist": _torchvision_download("MNIST"),
    "seq-mnist": _torchvision_download("MNIST"),
    "fashion-mnist": _torchvision_download("FashionMNIST"),
    "cifar10": _torchvision_download("CIFAR10"),
    "cifar100": _torchvision_download("CIFAR100"),
    "tiny-imagenet": _download_tiny_imagenet,
    "dvs-cifar10": _download_dvs_cifar10,
}
