"""Tests of bntt_core.data: every dataset path on small data written here (plus the shared real
files), the pixel pipeline (to_pixels / normalize / augment_batch), loaders, and every error path.

All run on CPU in a few seconds, except the one marked slow that decodes the real 60,000-image
CIFAR-10 tar (well under a minute).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bntt_core import data
from bntt_core.data import DataError, DataInfo, ImageSet
from bntt_core.data import dvs as data_dvs
from bntt_core.data import images as data_images
from bntt_core.data import load as data_load

SHARED = data.project_root().parent / "shared" / "data"
MNIST10K_SHA256 = "0217e13bd0668deb198aa7d305edbf0331eb89f8a6e7dd226e03d1aa3a9bd4ef"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared data folder {SHARED} is absent "
                                  "(CI lays it beside the repository as ../shared)")


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Each test: its own decoded cache, no user data dir, no downloads, a HOME with nothing in it."""
    monkeypatch.setenv("BNTT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("BNTT_DATA_DIR", raising=False)
    monkeypatch.delenv("BNTT_DOWNLOAD", raising=False)


# ------------------------------------------------------------------------------------ writers
def solid_image(color, size=(8, 8), mode="RGB") -> Image.Image:
    return Image.new(mode, size, color)


def class_color(label: int) -> tuple[int, int, int]:
    return (20 * label + 10, 200 - 15 * label, (37 * label) % 256)


def write_image_folders(root: Path, classes, per_class=(2, 1), size=(8, 8), mode="RGB", suffix=".png"):
    for split, count in zip(("train", "test"), per_class, strict=True):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                color = class_color(label)[0] if mode == "L" else class_color(label)
                solid_image(color, size, mode).save(folder / f"{i:04d}{suffix}")


def write_cifar_style_tar(path: Path, classes, per_class=(2, 1)) -> None:
    """The layout of ../shared/data/cifar10-jpg.tar.gz: README.md, train/<class>/NNNN.jpg, test/<class>/NNNN.jpg."""
    with tarfile.open(path, "w:gz") as archive:
        readme = b"CIFAR-10 images\n"
        info = tarfile.TarInfo("README.md")
        info.size = len(readme)
        archive.addfile(info, io.BytesIO(readme))
        for split, count in zip(("test", "train"), reversed(per_class), strict=True):
            for label, name in enumerate(classes):
                for i in range(count):
                    buffer = io.BytesIO()
                    solid_image(class_color(label), (32, 32)).save(buffer, format="JPEG", quality=95)
                    member = tarfile.TarInfo(f"{split}/{name}/{i:04d}.jpg")
                    member.size = buffer.tell()
                    buffer.seek(0)
                    archive.addfile(member, buffer)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def write_mnist_raw(root: Path, folder="MNIST", train=30, test=10, gz=True) -> tuple[np.ndarray, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (train + test, 28, 28), dtype=np.uint8)
    labels = (np.arange(train + test) % 10).astype(np.uint8)
    suffix = ".gz" if gz else ""
    write_idx(raw / f"train-images-idx3-ubyte{suffix}", images[:train])
    write_idx(raw / f"train-labels-idx1-ubyte{suffix}", labels[:train])
    write_idx(raw / "t10k-images-idx3-ubyte", images[train:])
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[train:])
    return images, labels


def write_aedat4(path: Path, t, x, y, p, *, width=128, height=128, events_per_packet=400) -> None:
    """An AEDAT 4.0 file as DV writes it (uncompressed): magic, u32 length + IOHeader flatbuffer with
    the XML stream description, then packets (u32 stream id, u32 size, size-prefixed 'EVTS'
    flatbuffer holding a vector of 16-byte Event structs t:int64 x:int16 y:int16 on:bool)."""
    description = (
        '<dv version="2.2"><node name="outInfo" path="/mainloop/output_file/outInfo/">'
        '<node name="0" path="/mainloop/output_file/outInfo/0/">'
        '<attr key="compression" type="string">NONE</attr>'
        '<attr key="typeDescription" type="string">Array of events (polarity ON/OFF).</attr>'
        '<attr key="typeIdentifier" type="string">EVTS</attr>'
        '<node name="info" path="/mainloop/output_file/outInfo/0/info/">'
        f'<attr key="sizeX" type="int">{width}</attr><attr key="sizeY" type="int">{height}</attr>'
        '<attr key="source" type="string">DVS128</attr></node></node></node></dv>').encode()
    header = bytearray(struct.pack("<I4s", 20, b"IOHE"))  # root table at 20, file identifier
    header += struct.pack("<5H", 10, 12, 4, 0, 8) + b"\0\0"  # vtable: compression +4, no data table, text +8
    header += struct.pack("<iiI", 12, 0, 4)  # table: vtable 12 back, compression NONE, text 4 ahead
    header += struct.pack("<I", len(description)) + description + b"\0"
    header += b"\0" * (-len(header) % 4)
    out = bytearray(b"#!AER-DAT4.0\r\n") + struct.pack("<I", len(header)) + header
    event = np.dtype({"names": ["t", "x", "y", "on"], "formats": ["<i8", "<i2", "<i2", "u1"],
                      "offsets": [0, 8, 10, 12], "itemsize": 16})
    for start in range(0, len(t), events_per_packet):
        chunk = np.zeros(min(events_per_packet, len(t) - start), dtype=event)
        part = slice(start, start + len(chunk))
        chunk["t"], chunk["x"], chunk["y"], chunk["on"] = t[part], x[part], y[part], p[part]
        packet = bytearray(struct.pack("<I", 0))  # size prefix, filled below
        packet += struct.pack("<I4s", 16, b"EVTS")  # root table at 4 + 16 = 20
        packet += struct.pack("<3H", 6, 8, 4) + b"\0\0"  # vtable: elements at +4
        packet += struct.pack("<iII", 8, 4, len(chunk)) + chunk.tobytes()  # table, vector (8-aligned structs)
        struct.pack_into("<I", packet, 0, len(packet) - 4)
        out += struct.pack("<II", 0, len(packet)) + packet
    path.write_bytes(bytes(out))


def random_events(seed: int, count: int = 600):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 1_000_000, count))
    return t, rng.integers(0, 128, count), rng.integers(0, 128, count), rng.integers(0, 2, count)


def tiny_info(augment="crop-flip", channels=3) -> DataInfo:
    return DataInfo(name="image-folder", in_channels=channels, image_size=8, num_classes=2, mean=(0.5,) * channels,
                    std=(0.25,) * channels, class_names=("a", "b"), augment=augment, num_steps_hint=None, source="test")


# ------------------------------------------------------------------------------------ mnist10k
def test_mnist10k_ships_with_the_repository_and_splits_8000_2000_stratified():
    shipped = data.project_root() / "data" / "mnist10k.npz"
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == MNIST10K_SHA256
    train, test, info = data.load_data("mnist10k")
    assert info.source.startswith(str(shipped))
    assert (len(train), len(test)) == (8000, 2000)
    assert train.images.shape == (8000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64
    assert (info.name, info.in_channels, info.image_size, info.num_classes) == ("mnist10k", 1, 28, 10)
    assert info.augment == "crop" and info.class_names == tuple("0123456789")
    assert 0.12 < info.mean[0] < 0.14 and 0.30 < info.std[0] < 0.32  # MNIST's own statistics
    assert "seed 0" in info.split and "8,000" in info.split
    with np.load(shipped) as archive:
        per_class = np.bincount(archive["labels"], minlength=10)
    test_per_class = torch.bincount(test.labels, minlength=10).numpy()
    assert np.all(np.abs(test_per_class - per_class * 0.2) <= 1)  # every class in proportion
    assert np.array_equal(test_per_class + torch.bincount(train.labels, minlength=10).numpy(), per_class)


def test_mnist10k_split_is_deterministic_and_seeded():
    train_a, test_a, _ = data.load_data("mnist10k", seed=0)
    train_b, test_b, _ = data.load_data("mnist10k", seed=0)
    train_c, test_c, info_c = data.load_data("mnist10k", seed=1)
    assert torch.equal(test_a.images, test_b.images) and torch.equal(train_a.labels, train_b.labels)
    assert not torch.equal(test_a.images, test_c.images)
    assert "seed 1" in info_c.split
    # the two splits are disjoint: no test image appears in train (compare image bytes)
    train_keys = {bytes(img.numpy().tobytes()) for img in train_a.images[:, 0]}
    overlap = sum(bytes(img.numpy().tobytes()) in train_keys for img in test_a.images[:, 0])
    assert overlap <= 5  # MNIST has a handful of duplicate digits, nothing more


def test_mnist10k_from_a_given_data_dir(tmp_path):
    with np.load(data.project_root() / "data" / "mnist10k.npz") as archive:
        np.savez(tmp_path / "mnist10k.npz", images=archive["images"][::10], labels=archive["labels"][::10])
    train, test, info = data.load_data("mnist10k", data_dir=tmp_path)
    assert len(train) + len(test) == 1000 and str(tmp_path) in info.source


# ------------------------------------------------------------------------------------ fashion / mnist / seq
@needs_shared
def test_fashion_mnist_from_the_shared_npz_is_a_seeded_stratified_60k_10k_split():
    train, test, info = data.load_data("fashion-mnist")
    assert (len(train), len(test)) == (60000, 10000)
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert "fashion-mnist-70k.npz" in info.source and "not recoverable" in info.source
    assert "seeded stratified" in info.source and info.class_names[0] == "T-shirt/top"
    assert 0.27 < info.mean[0] < 0.30 and 0.34 < info.std[0] < 0.37  # Fashion-MNIST's, not MNIST's


def test_mnist_from_torchvision_idx_files_and_seq_mnist_reads_the_same(tmp_path):
    images, labels = write_mnist_raw(tmp_path)
    train, test, info = data.load_data("mnist", data_dir=tmp_path)
    assert torch.equal(train.images[:, 0], torch.from_numpy(images[:30]))
    assert torch.equal(test.labels, torch.from_numpy(labels[30:]).long())
    assert info.split == "official" and "MNIST/raw" in info.source
    seq_train, seq_test, seq_info = data.load_data("seq-mnist", data_dir=tmp_path)
    assert torch.equal(seq_train.images, train.images)
    assert seq_info.num_steps_hint == 784 == seq_info.image_size ** 2 and seq_info.augment == "none"


def test_seq_mnist_falls_back_to_mnist10k_when_no_full_mnist_exists():
    train, test, info = data.load_data("seq-mnist")
    assert (len(train), len(test)) == (8000, 2000) and "mnist10k" in info.source
    assert info.name == "seq-mnist" and info.num_steps_hint == 784


def test_fashion_mnist_torchvision_layout_wins_in_a_given_data_dir(tmp_path):
    write_mnist_raw(tmp_path, folder="FashionMNIST", gz=False)
    train, test, info = data.load_data("fashion-mnist", data_dir=tmp_path)
    assert (len(train), len(test)) == (30, 10) and "FashionMNIST" in info.source


def test_download_is_only_attempted_when_asked(tmp_path, monkeypatch):
    calls = []

    def fake_torchvision_download(root: Path) -> None:
        calls.append(root)
        write_mnist_raw(root)

    monkeypatch.setitem(data_load._DOWNLOADERS, "mnist", fake_torchvision_download)
    with pytest.raises(DataError):
        data.load_data("mnist", data_dir=tmp_path / "d")
    assert calls == []
    train, _, _ = data.load_data("mnist", data_dir=tmp_path / "d", download=True)
    assert calls == [tmp_path / "d"] and len(train) == 30


# ------------------------------------------------------------------------------------ cifar
def test_cifar10_from_a_tar_in_the_shared_layout_decodes_once_then_reads_the_cache(tmp_path, monkeypatch):
    write_cifar_style_tar(tmp_path / "cifar10-jpg.tar.gz", data.CIFAR10_CLASSES)
    train, test, info = data.load_data("cifar10", data_dir=tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (10, 3, 32, 32)
    assert info.class_names == data.CIFAR10_CLASSES and info.augment == "crop-flip" and info.num_steps_hint == 25
    assert torch.equal(test.labels, torch.arange(10))
    assert "cifar10-jpg.tar.gz" in info.source and info.split == "official"
    for label in (0, 9):  # solid colours survive JPEG to within a few levels
        pixel = test.images[label, :, 16, 16].int()
        assert torch.all((pixel - torch.tensor(class_color(label))).abs() <= 4)

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded the tar again instead of reading the cache")

    monkeypatch.setattr(data_images, "_decode_tar", must_not_decode)
    again, _, _ = data.load_data("cifar10", data_dir=tmp_path / "cifar10-jpg.tar.gz")  # the tar itself as data_dir
    assert torch.equal(again.images, train.images)


@needs_shared
@pytest.mark.slow
def test_the_real_shared_cifar10_tar_loads():
    train, test, info = data.load_data("cifar10", data_dir=SHARED)
    assert train.images.shape == (50000, 3, 32, 32) and test.images.shape == (10000, 3, 32, 32)
    assert torch.bincount(train.labels).tolist() == [5000] * 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    for got, published in zip(info.mean, (0.4914, 0.4822, 0.4465), strict=True):
        assert abs(got - published) < 0.005
    for got, published in zip(info.std, (0.2470, 0.2435, 0.2616), strict=True):
        assert abs(got - published) < 0.01  # JPEG smooths a little


def write_cifar_python(root: Path, hundred: bool) -> None:
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    classes = 100 if hundred else 10
    label_key = b"fine_labels" if hundred else b"labels"
    rng = np.random.default_rng(1)
    names = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    for name in [*names, "test" if hundred else "test_batch"]:
        count = classes if hundred else 4
        batch = {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
                 label_key: [i % classes for i in range(count)]}
        with open(folder / name, "wb") as handle:
            pickle.dump(batch, handle, protocol=2)
    meta_name, names_key = ("meta", b"fine_label_names") if hundred else ("batches.meta", b"label_names")
    with open(folder / meta_name, "wb") as handle:
        pickle.dump({names_key: [f"class{i:03d}".encode() for i in range(classes)]}, handle, protocol=2)


def test_cifar10_and_cifar100_from_torchvision_python_batches(tmp_path):
    write_cifar_python(tmp_path, hundred=False)
    write_cifar_python(tmp_path, hundred=True)
    train, test, info = data.load_data("cifar10", data_dir=tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and len(test) == 4 and info.num_classes == 10
    train100, test100, info100 = data.load_data("cifar100", data_dir=tmp_path)
    assert info100.num_classes == 100 and info100.class_names[7] == "class007" and info100.num_steps_hint == 30
    assert len(train100) == 100 and info100.mean != info.mean  # each dataset gets its own statistics


def test_cifar_pickles_with_foreign_objects_are_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_python(tmp_path, hundred=False)
    with open(folder / "data_batch_1", "wb") as handle:
        pickle.dump({b"data": Path("/etc/passwd")}, handle)
    with pytest.raises(DataError, match="data_batch_1"):
        data.load_data("cifar10", data_dir=tmp_path)


# ------------------------------------------------------------------------------------ image folders
def test_image_folder_of_pngs(tmp_path):
    write_image_folders(tmp_path, ["cat", "dog", "emu"], per_class=(3, 2), size=(12, 12))
    train, test, info = data.load_data("image-folder", data_dir=tmp_path)
    assert train.images.shape == (9, 3, 12, 12) and test.images.shape == (6, 3, 12, 12)
    assert info.class_names == ("cat", "dog", "emu") and info.image_size == 12 and info.in_channels == 3
    assert info.augment == "crop"
    assert torch.equal(train.labels, torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2]))
    assert train.images[4, :, 0, 0].tolist() == list(class_color(1))
    expected_mean = np.mean([class_color(label) for label in range(3)], axis=0) / 255
    assert np.allclose(info.mean, expected_mean, atol=1e-4)


def test_image_folder_greyscale_gives_one_channel_and_odd_sizes_are_cropped_and_resized(tmp_path):
    write_image_folders(tmp_path / "grey", ["0", "1"], size=(10, 10), mode="L")
    _, _, info = data.load_data("image-folder", data_dir=tmp_path / "grey")
    assert info.in_channels == 1 and len(info.mean) == 1
    mixed = tmp_path / "mixed"
    write_image_folders(mixed, ["a", "b"], size=(20, 16))
    solid_image((1, 2, 3), (30, 40)).save(mixed / "train" / "a" / "big.png")
    train, test, info = data.load_data("image-folder", data_dir=mixed)
    assert info.image_size == 16 and train.images.shape[-2:] == (16, 16) and test.images.shape[-2:] == (16, 16)


def test_named_dataset_from_an_image_folder_gets_its_standard_shape(tmp_path):
    write_image_folders(tmp_path, [str(d) for d in range(10)], per_class=(1, 1), size=(20, 20), mode="L")
    train, _, info = data.load_data("mnist", data_dir=tmp_path)
    assert train.images.shape == (10, 1, 28, 28) and info.image_size == 28


def test_tiny_imagenet_standard_layout(tmp_path):
    root = tmp_path / "tiny-imagenet-200"
    wnids = [f"n{index:08d}" for index in range(200)]
    (root / "val" / "images").mkdir(parents=True)
    (root / "wnids.txt").write_text("\n".join(reversed(wnids)) + "\n")  # the file is not sorted
    (root / "words.txt").write_text("".join(f"{w}\tthing {i}, other name\n" for i, w in enumerate(wnids)))
    for index, wnid in enumerate(wnids):
        images = root / "train" / wnid / "images"
        images.mkdir(parents=True)
        solid_image((index, 0, 0), (64, 64)).save(images / f"{wnid}_0.JPEG", format="JPEG")
        (root / "train" / wnid / f"{wnid}_boxes.txt").write_text(f"{wnid}_0.JPEG\t0\t0\t63\t63\n")
    annotations = []
    for i in range(5):
        solid_image((0, 9, 0), (64, 64), "RGB").convert("L").save(root / "val" / "images" / f"val_{i}.JPEG",
                                                                  format="JPEG")  # some are greyscale
        annotations.append(f"val_{i}.JPEG\t{wnids[i * 40]}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(annotations) + "\n")
    (root / "test" / "images").mkdir(parents=True)  # unlabelled, ignored

    train, test, info = data.load_data("tiny-imagenet", data_dir=tmp_path)
    assert train.images.shape == (200, 3, 64, 64) and test.images.shape == (5, 3, 64, 64)
    assert info.num_classes == 200 and info.class_names[3] == "thing 3" and info.num_steps_hint == 30
    assert test.labels.tolist() == [0, 40, 80, 120, 160] and info.augment == "crop-flip"
    assert abs(int(train.images[150, 0, 30, 30]) - 150) <= 3


# ------------------------------------------------------------------------------------ dvs-cifar10
def write_dvs_layout(root: Path, per_class: int = 2) -> dict[Path, tuple]:
    """tonic's extracted CIFAR10DVS layout: root/CIFAR10DVS/<class>/cifar10_<class>_<i>.aedat4."""
    written = {}
    for label, name in enumerate(data.CIFAR10_CLASSES):
        folder = root / "CIFAR10DVS" / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            events = random_events(100 * label + i)
            path = folder / f"cifar10_{name}_{i}.aedat4"
            write_aedat4(path, *events)
            written[path] = events
    return written


def test_aedat4_files_written_here_read_back_exactly(tmp_path):
    t, x, y, p = random_events(0, 1000)
    path = tmp_path / "recording.aedat4"
    write_aedat4(path, t, x, y, p)
    events = data_dvs._read_aedat4(path)
    assert events.dtype.names == ("t", "x", "y", "p") and len(events) == 1000
    assert np.array_equal(events["t"], t) and np.array_equal(events["x"], x)
    assert np.array_equal(events["y"], y) and np.array_equal(events["p"], p.astype(bool))


def test_aedat4_written_here_is_what_tonics_own_reader_reads(tmp_path):
    pytest.importorskip("aedat", reason="tonic.io.read_aedat4 needs the `aedat` package, not installed here")
    from tonic.io import read_aedat4

    t, x, y, p = random_events(1, 1000)
    write_aedat4(tmp_path / "r.aedat4", t, x, y, p)
    theirs = read_aedat4(str(tmp_path / "r.aedat4"))
    ours = data_dvs._read_aedat4(tmp_path / "r.aedat4")
    for key in "txyp":
        assert np.array_equal(theirs[key], ours[key])


def test_dvs_cifar10_from_tonic_layout_gives_20_frames(tmp_path):
    from tonic.transforms import Downsample, ToFrame

    written = write_dvs_layout(tmp_path)
    train, test, info = data.load_data("dvs-cifar10", data_dir=tmp_path)
    assert (len(train), len(test)) == (18, 2)
    assert train.images.shape == (18, 20, 2, 48, 48) and train.images.dtype == torch.float32
    assert info.event and info.num_frames == 20 == info.num_steps_hint and info.in_channels == 2
    assert info.image_size == 48 and info.class_names == data.CIFAR10_CLASSES and "seed 0" in info.split
    # a recording's frames are exactly tonic's Downsample + ToFrame of its events
    path = tmp_path / "CIFAR10DVS" / "airplane" / "cifar10_airplane_0.aedat4"
    t, x, y, p = written[path]
    events = np.zeros(len(t), dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    events["t"], events["x"], events["y"], events["p"] = t, x, y, p
    expected = ToFrame(sensor_size=(48, 48, 2), n_time_bins=20)(Downsample(spatial_factor=48 / 128)(events))
    every = torch.cat([train.images, test.images])
    assert any(torch.equal(frames, torch.from_numpy(expected).float()) for frames in every)
    assert 0.9 * len(t) <= expected.sum() <= len(t)
    # normalise and augment event frames [B, T, C, H, W] and time-major [T, B, C, H, W]
    x_norm = data.normalize(train.images[:4], info)
    assert x_norm.shape == (4, 20, 2, 48, 48)
    assert data.normalize(train.images[:4].transpose(0, 1), info).shape == (20, 4, 2, 48, 48)
    assert data.augment_batch(train.images[:4], info, torch.Generator().manual_seed(0)).shape == (4, 20, 2, 48, 48)


def test_dvs_cifar10_truncated_recording_names_the_file(tmp_path):
    written = write_dvs_layout(tmp_path, per_class=1)
    broken = next(iter(written))
    broken.write_bytes(broken.read_bytes()[:-7])
    with pytest.raises(DataError, match=broken.name):
        data.load_data("dvs-cifar10", data_dir=tmp_path)


# ------------------------------------------------------------------------------------ pixels
def test_to_pixels_and_normalize_shapes_and_values():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    pixels = data.to_pixels(images)
    assert pixels.dtype == torch.float32 and pixels.max() <= 1 and torch.allclose(pixels * 255, images.float())
    info = tiny_info()
    from_uint8 = data.normalize(images, info)
    assert torch.allclose(from_uint8, data.normalize(pixels, info))
    assert torch.allclose(from_uint8, (pixels - 0.5) / 0.25)
    assert data.normalize(pixels.double(), info).dtype == torch.float64
    assert data.normalize(pixels[None].expand(5, -1, -1, -1, -1), info).shape == (5, 4, 3, 8, 8)
    with pytest.raises(ValueError, match="channel"):
        data.normalize(torch.zeros(4, 1, 8, 8), info)


def reference_augment(pixels: torch.Tensor, seed: int, flip: bool) -> torch.Tensor:
    """The same augmentation one sample at a time, with the same draws."""
    generator = torch.Generator().manual_seed(seed)
    batch = pixels.shape[0]
    rows = torch.randint(0, 9, (batch,), generator=generator)
    cols = torch.randint(0, 9, (batch,), generator=generator)
    flips = torch.rand(batch, generator=generator) < 0.5
    out = torch.empty_like(pixels)
    height, width = pixels.shape[-2:]
    for b in range(batch):
        padded = torch.nn.functional.pad(pixels[b], (4, 4, 4, 4))
        crop = padded[..., rows[b]:rows[b] + height, cols[b]:cols[b] + width]
        out[b] = crop.flip(-1) if flip and flips[b] else crop
    return out


@pytest.mark.parametrize("augment", ["crop-flip", "crop"])
def test_augment_batch_matches_per_sample_crop_and_flip_and_is_seeded(augment):
    pixels = torch.rand(16, 3, 8, 8)
    info = tiny_info(augment)
    first = data.augment_batch(pixels, info, torch.Generator().manual_seed(3))
    second = data.augment_batch(pixels, info, torch.Generator().manual_seed(3))
    other = data.augment_batch(pixels, info, torch.Generator().manual_seed(4))
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert first.shape == pixels.shape and first.dtype == pixels.dtype
    assert torch.equal(first, reference_augment(pixels, 3, flip=augment == "crop-flip"))


def test_augment_none_is_identity_and_event_frames_share_one_crop_per_sample():
    pixels = torch.rand(2, 1, 8, 8)
    assert data.augment_batch(pixels, tiny_info("none", 1), torch.Generator()) is pixels
    frames = torch.rand(6, 5, 2, 8, 8)  # [B, T, C, H, W]
    out = data.augment_batch(frames, tiny_info("crop-flip", 2), torch.Generator().manual_seed(0))
    flat = reference_augment(frames.reshape(6, 10, 8, 8), 0, flip=True).reshape(frames.shape)
    assert torch.equal(out, flat)


def test_augment_uint8_keeps_dtype():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    out = data.augment_batch(images, tiny_info(), torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == images.shape


# ------------------------------------------------------------------------------------ sets and loaders
def small_set(count=23, classes=3) -> ImageSet:
    images = torch.arange(count, dtype=torch.uint8).view(count, 1, 1, 1).expand(count, 1, 2, 2).contiguous()
    return ImageSet(images, torch.arange(count) % classes)


def test_make_loader_batches_seeded_shuffle_and_no_dropping():
    dataset = small_set()
    batches = list(data.make_loader(dataset, 5, shuffle=False, seed=0))
    assert [len(labels) for _, labels in batches] == [5, 5, 5, 5, 3]
    images, labels = batches[0]
    assert images.shape == (5, 1, 2, 2) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert torch.cat([b[0][:, 0, 0, 0] for b in batches]).tolist() == list(range(23))

    def order(loader) -> list[int]:
        return torch.cat([imgs[:, 0, 0, 0] for imgs, _ in loader]).tolist()

    loader_a = data.make_loader(dataset, 4, shuffle=True, seed=7)
    loader_b = data.make_loader(dataset, 4, shuffle=True, seed=7)
    first = order(loader_a)
    assert sorted(first) == list(range(23)) and first == order(loader_b) and first != list(range(23))
    assert order(loader_a) != first  # the next epoch is shuffled differently
    data.set_epoch(loader_a, 0)
    assert order(loader_a) == first  # set_epoch replays an epoch exactly (resume)
    assert order(data.make_loader(dataset, 4, shuffle=True, seed=8)) != first


def test_make_loader_distributed_shards():
    dataset = small_set()
    seen = []
    for rank in range(2):
        loader = data.make_loader(dataset, 4, shuffle=False, seed=0, distributed=True, num_replicas=2, rank=rank)
        seen += torch.cat([imgs[:, 0, 0, 0] for imgs, _ in loader]).tolist()
    assert sorted(seen) == list(range(23))  # evaluation: every image exactly once
    loader = data.make_loader(dataset, 4, shuffle=True, seed=0, distributed=True, num_replicas=2, rank=1)
    assert isinstance(loader.sampler, torch.utils.data.DistributedSampler)
    data.set_epoch(loader, 3)
    assert loader.sampler.epoch == 3


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_make_loader_rejects_bad_batch_sizes(bad):
    with pytest.raises(ValueError, match="batch size"):
        data.make_loader(small_set(), bad, shuffle=False, seed=0)


def test_plain_dataloader_with_default_collate_also_works():
    loader = torch.utils.data.DataLoader(small_set(), batch_size=6)
    images, labels = next(iter(loader))
    assert images.shape == (6, 1, 2, 2) and labels.tolist() == [0, 1, 2, 0, 1, 2]


def test_subset_is_balanced_deterministic_and_takes_indices():
    dataset = small_set(30, 3)
    part = dataset.subset(9, seed=1)
    assert torch.bincount(part.labels).tolist() == [3, 3, 3]
    assert torch.equal(part.images, dataset.subset(9, seed=1).images)
    assert not torch.equal(part.images, dataset.subset(9, seed=2).images)
    assert dataset.subset(torch.tensor([5, 1])).images[:, 0, 0, 0].tolist() == [1, 5]
    assert len(dataset.subset(100)) == 30
    with pytest.raises(ValueError):
        dataset.subset(0)


def test_datainfo_is_frozen_json_friendly_and_checked():
    _, _, info = data.load_data("mnist10k")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "x"  # type: ignore[misc]
    values = json.loads(json.dumps(dataclasses.asdict(info)))
    rebuilt = DataInfo(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
    assert rebuilt == info
    with pytest.raises(ValueError):
        dataclasses.replace(info, augment="flip")
    with pytest.raises(ValueError):
        dataclasses.replace(info, mean=(0.1, 0.2))


# ------------------------------------------------------------------------------------ errors
def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'imagenet'") as caught:
        data.load_data("imagenet")
    for name in data.KNOWN_DATASETS:
        assert name in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_missing_data_is_one_message_listing_every_place_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BNTT_DATA_DIR", str(tmp_path / "mine"))
    with pytest.raises(DataError) as caught:
        data.load_data("cifar100")
    message = str(caught.value)
    for root in data.search_roots():
        assert str(root / "cifar-100-python") in message
    assert str(tmp_path / "mine") in message and str(data.project_root() / "data") in message
    assert str(tmp_path / "home" / ".cache" / "bntt" / "torchvision") in message
    assert "download=True" in message and "BNTT_DOWNLOAD=1" in message


@pytest.mark.parametrize("name", ["tiny-imagenet", "dvs-cifar10", "image-folder", "mnist"])
def test_missing_data_in_an_empty_data_dir(tmp_path, name):
    with pytest.raises(DataError, match="not found") as caught:
        data.load_data(name, data_dir=tmp_path)
    assert str(tmp_path) in str(caught.value) and "To get it" in str(caught.value)


def test_corrupt_npz_names_the_file(tmp_path):
    (tmp_path / "mnist10k.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(DataError, match="mnist10k.npz"):
        data.load_data("mnist10k", data_dir=tmp_path)
    np.savez(tmp_path / "mnist10k.npz", pictures=np.zeros(3))
    with pytest.raises(DataError, match="mnist10k.npz"):
        data.load_data("mnist10k", data_dir=tmp_path)


def test_truncated_tar_names_the_file(tmp_path):
    write_cifar_style_tar(tmp_path / "whole.tar.gz", data.CIFAR10_CLASSES)
    (tmp_path / "cifar10-jpg.tar.gz").write_bytes((tmp_path / "whole.tar.gz").read_bytes()[:900])
    with pytest.raises(DataError, match="cifar10-jpg.tar.gz"):
        data.load_data("cifar10", data_dir=tmp_path)


def test_unreadable_image_names_the_file(tmp_path):
    write_image_folders(tmp_path, ["a", "b"])
    (tmp_path / "train" / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png"):  # strict: an error (the default skips it: test_own_data)
        data.load_data("image-folder", data_dir=tmp_path, strict_images=True)


def test_empty_image_folders(tmp_path):
    for split in ("train", "test"):
        (tmp_path / split / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="contains no images"):
        data.load_data("image-folder", data_dir=tmp_path)
    (tmp_path / "nothing" / "train").mkdir(parents=True)
    (tmp_path / "nothing" / "test").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        data.load_data("image-folder", data_dir=tmp_path / "nothing")


def test_corrupt_idx_and_wrong_class_count(tmp_path):
    write_mnist_raw(tmp_path / "idx")
    raw = tmp_path / "idx" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:100])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        data.load_data("mnist", data_dir=tmp_path / "idx")
    write_image_folders(tmp_path / "three", ["a", "b", "c"], size=(32, 32))
    with pytest.raises(DataError, match="3 classes, but cifar10 has 10"):
        data.load_data("cifar10", data_dir=tmp_path / "three")
