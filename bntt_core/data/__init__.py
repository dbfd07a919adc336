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

Modules (every public name is importable from `bntt_core.data`):

    core.py           DataError, DataInfo, ImageSet / ImageBatch, dataset and class names, the stratified split
    pixels.py         to_pixels, normalize / normalize_channels (the one (x − mean)/std), augment_batch
    loaders.py        make_loader, set_epoch and the seeded samplers
    locations.py      project_root, search_roots, cache_dir, the download root
    load.py           load_data: the named datasets, where each may be (in search order), downloads
    arrays.py         digit .npz files, torchvision's MNIST idx files, CIFAR python batches
    images.py         image folders, tars of them, plain class folders
    tiny_imagenet.py  Tiny-ImageNet
    dvs.py            DVS-CIFAR10 AEDAT4 recordings → event frames
    cache.py          the decoded cache
"""

from bntt_core.data.core import (  # noqa: F401
    AUGMENTS,
    CIFAR10_CLASSES,
    FASHION_CLASSES,
    KNOWN_DATASETS,
    MNIST_CLASSES,
    DataError,
    DataInfo,
    ImageBatch,
    ImageSet,
)
from bntt_core.data.dvs import DVS_FRAMES, DVS_SENSOR, DVS_SIZE, DVS_TEST_FRACTION  # noqa: F401
from bntt_core.data.load import (  # noqa: F401
    _DOWNLOADERS,
    _SOURCE_BUILDERS,
    DEFAULT_TEST_FRACTION,
    load_data,
)
from bntt_core.data.loaders import EpochShuffleSampler, make_loader, set_epoch  # noqa: F401
from bntt_core.data.locations import cache_dir, project_root, search_roots  # noqa: F401
from bntt_core.data.pixels import CROP_PADDING, augment_batch, normalize, normalize_channels, to_pixels  # noqa: F401
from bntt_core.data.tiny_imagenet import TINY_IMAGENET_MD5, TINY_IMAGENET_URL  # noqa: F401

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
