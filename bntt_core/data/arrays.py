"""Datasets stored as arrays: digit .npz files (mnist10k, fashion-mnist-70k), torchvision's MNIST /
Fashion-MNIST idx files (raw/, gzipped or not) and CIFAR's python batches (read by a restricted
unpickler that accepts numpy arrays and nothing else).
"""

from __future__ import annotations

import gzip
import pickle
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from bntt_core.data.core import (
    CIFAR10_CLASSES,
    DataError,
    _Raw,
    _Source,
    _split_description,
    _stratified_split,
)


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
