"""Tiny-ImageNet (cs231n's tiny-imagenet-200.zip): train/<wnid>/images/*.JPEG for training, the
labelled val/ split (val/images + val/val_annotations.txt) as the test set; 3×64×64, 200 classes.
"""

from __future__ import annotations

from pathlib import Path

from bntt_core.data.cache import _cached_decode, _raw_from_arrays
from bntt_core.data.core import DataError, _Raw, _Source
from bntt_core.data.images import _class_folders, _decode_split_entries, _folder_files, _ImageEntry

TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"


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
