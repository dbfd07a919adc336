"""load_data: the named datasets (their fixed facts and where each may be, in search order), the
downloads, and the step that turns what a reader found into (train, test, info).
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bntt_core.data.arrays import _cifar_python_source, _mnist_raw_source, _npz_split_source
from bntt_core.data.core import (
    CIFAR10_CLASSES,
    FASHION_CLASSES,
    KNOWN_DATASETS,
    MNIST_CLASSES,
    DataError,
    DataInfo,
    ImageSet,
    _Kind,
    _Raw,
    _Source,
)
from bntt_core.data.dvs import DVS_FRAMES, DVS_SIZE, _dvs_source
from bntt_core.data.images import (
    _class_folder_source,
    _folder_sources,
    _image_folder_source,
    _tar_image_source,
)
from bntt_core.data.locations import _download_root, search_roots
from bntt_core.data.tiny_imagenet import TINY_IMAGENET_MD5, TINY_IMAGENET_URL, _tiny_imagenet_source

log = logging.getLogger(__name__)

_ALIASES = {
    "mnist-10k": "mnist10k", "mnist_10k": "mnist10k",
    "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist",
    "cifar-10": "cifar10", "cifar-100": "cifar100",
    "tinyimagenet": "tiny-imagenet", "tiny_imagenet": "tiny-imagenet", "tiny-imagenet-200": "tiny-imagenet",
    "seq_mnist": "seq-mnist", "sequential-mnist": "seq-mnist", "smnist": "seq-mnist",
    "dvs_cifar10": "dvs-cifar10", "cifar10-dvs": "dvs-cifar10", "cifar10dvs": "dvs-cifar10",
    "image_folder": "image-folder", "folder": "image-folder",
}
DEFAULT_TEST_FRACTION = 0.2  # image-folder without train/ + test/: share of each class held out for testing

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
