"""Datasets stored as image files: folders train/<class>/ + test/<class>/, a .tar/.tar.gz of them, or
plain class folders with a seeded stratified test split; each image decoded to the dataset's channels
and square size (chosen from the images when the dataset fixes none).
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bntt_core.data.cache import _cached_decode, _progress, _raw_from_arrays
from bntt_core.data.core import DataError, _Kind, _Raw, _Source, _split_description, _stratified_split

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


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
