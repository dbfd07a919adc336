"""DVS-CIFAR10 (tonic's CIFAR10DVS layout <class>/*.aedat4): each recording's events read with
`aedat` (the decoder tonic uses), downsampled 128 → 48 and binned into 20 frames of event counts
[T=20, C=2 polarities, 48, 48] with tonic's own transforms; a seeded stratified 9:1 split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bntt_core.data.cache import _cached_decode, _progress
from bntt_core.data.core import (
    CIFAR10_CLASSES,
    DataError,
    _Raw,
    _Source,
    _split_description,
    _stratified_split,
)

DVS_FRAMES = 20  # T = 20 for DVS-CIFAR10 (SPEC)
DVS_SIZE = 48  # 128×128 sensor downsampled to 48×48 (divisible by 8 for VGG9's three poolings)
DVS_SENSOR = (128, 128, 2)  # tonic.datasets.CIFAR10DVS.sensor_size: (x, y, polarity)
DVS_TEST_FRACTION = 0.1  # 9,000 train / 1,000 test of the 10,000 recordings
_TONIC_EVENT = np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])  # what tonic.io.read_aedat4 gives


def _read_aedat4(path: Path) -> np.ndarray:
    """Events of an AEDAT 4.0 file as a structured array (t, x, y, p): tonic.io.read_aedat4, which decodes
    the file's first event stream with `aedat` (LZ4 / Zstd packets included)."""
    from tonic.io import read_aedat4

    try:
        events = read_aedat4(str(path))
    except Exception as exc:  # aedat raises plain RuntimeError / OSError for a foreign, corrupt or truncated file
        raise DataError(f"cannot read AEDAT4 file {path}: {exc}") from exc
    # aedat ≥ 2 names the polarity field "on" (title "p"); tonic's ToFrame needs a field named "p"
    fields = events.dtype.fields or {}
    polarity = "p" if "p" in fields else "on"
    if not {"t", "x", "y", polarity} <= set(fields):
        raise DataError(f"{path}: unexpected event fields {events.dtype}")
    out = np.empty(len(events), dtype=_TONIC_EVENT)
    out["t"], out["x"], out["y"], out["p"] = events["t"], events["x"], events["y"], events[polarity]
    return out


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
