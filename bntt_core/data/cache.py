"""The decoded cache: image archives, folders and event recordings are decoded once and kept as .npz
in cache_dir()/decoded/, keyed on a fingerprint of the source files (names, sizes, modification times).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bntt_core.data.core import _Raw
from bntt_core.data.locations import cache_dir

log = logging.getLogger(__name__)

_CACHE_FORMAT = 1  # bump when the decoded-cache layout changes


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
