"""Training and evaluation of BNTT networks into a run directory (`bntt_core.runs`).

Every batch goes through `bntt_core.nn.step.train_step` (the one optimisation step the benchmarks and
tests measure). The test accuracy is measured on the FULL test set (no drop_last) with a seeded
Poisson generator, after every epoch; the run's weights are the final epoch's (no model selection on
test data). A checkpoint is written atomically after every epoch, so a run killed at any moment
(kill -9 included) resumes with `resume(run)` and reaches bit-identical weights on CPU: every random
stream (shuffling, augmentation, Poisson spikes) is derived from (seed, epoch, rank), not carried over.

A seeded slice of the training images (validation_fraction, default 0.1) is held out and never trained
on: the analysis chooses the early-exit τ on it (`run_validation_set` rebuilds it from config.json),
and nothing else uses it. The slice comes first from the FULL train set; max_train_images then picks
from the rest.

    from bntt_core.runs.training import TrainConfig, train, resume, evaluate_run
    result = train(TrainConfig.from_preset("quickstart"), "runs/first")   # TrainResult
    result = resume("runs/first")                                        # after a crash
    print(evaluate_run("runs/first", steps=3))                           # accuracy at T and at 3 steps

Distributed data parallel: run under `torchrun --nproc_per_node N -m bntt_core train ...`; the process
group (gloo on CPU, nccl on CUDA) is set up from torchrun's environment, the batch size stays the
global one (split evenly over the processes), and rank 0 alone writes the run and evaluates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from bntt_core import runs
from bntt_core.analysis import gamma_history
from bntt_core.nn.encoding import ENCODINGS
from bntt_core.nn.models import ARCHS, ModelSpec, model_from_spec
from bntt_core.nn.neurons import RESETS
from bntt_core.nn.norms import NORMS
from bntt_core.nn.step import (
    DEFAULT_PRECISION,
    PRECISIONS,
    eval_logits,
    resolve_precision,
    run_precision,
    train_step,
)
from bntt_core.nn.surrogate import get_surrogate
from bntt_core.runs.presets import preset_settings

OPTIMIZERS = ("sgd", "adam")
DEVICES_HELP = "auto | cpu | cuda | cuda:N | mps"
ENCODING_ALIASES = {"p": "poisson", "d": "direct", "poisson": "poisson", "direct": "direct"}
PROGRESS_MODES = ("bar", "quiet", "none")
CHECKPOINT_FORMAT = "bntt-checkpoint/1"
EXECUTION_SETTINGS = ("device", "threads")  # where a run executes; a resume may change them


class ConfigError(ValueError):
    """A training setting outside its domain (unknown arch, T < 1, leak ∉ (0, 1], ...)."""


class RunExistsError(ValueError):
    """The output directory already holds something; a run is never overwritten."""


class ResumeError(ValueError):
    """A run that cannot be resumed as it stands (its config and checkpoint disagree, ...)."""


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


# ---------------------------------------------------------------------------------- the config
@dataclass
class TrainConfig:
    """Every setting of a training run; stored whole in config.json["train"].

    The defaults are the paper's CIFAR-10 recipe (SPEC "Training recipe"); presets override some.
    """

    # model (the ModelSpec is built from these plus the dataset's shape)
    arch: str = "vgg9"  # the paper's CIFAR-10 network
    dataset: str = "cifar10"  # the paper's headline dataset
    data_dir: str | None = None  # None: the data module's default places (embedded data, torchvision cache)
    num_steps: int = 25  # T for CIFAR-10 (SPEC); 30 for CIFAR-100 / Tiny-ImageNet
    leak: float = 0.95  # λ for CIFAR-10 (SPEC); 0.99 for CIFAR-100 / Tiny-ImageNet
    threshold: float = 1.0  # θ (SPEC)
    norm: str = "bntt"  # the paper's method; bn / ln / none are its ablations (norms.NORMS: also bn-joint, tdbn, tebn)
    encoding: str = "poisson"  # the paper's rate coding; "direct" is the Rate-vs-Direct option
    spiking: bool = True  # False trains the ANN twin (ReLU + BN), the conversion source
    width: float = 1.0  # channel multiplier; 1.0 is the paper's network
    reset: str = "soft"  # the paper's soft reset keeps the residue above θ
    surrogate: str = "triangle"  # the paper's triangle, α = 0.3
    # optimisation
    epochs: int = 120  # paper §4.1 for CIFAR-10 (the official README runs 100)
    batch_size: int = 256  # official README for CIFAR-10; global over all DDP processes
    optimizer: str = "sgd"  # paper §4.1; "adam" (lr 1e-3) is the Rate-vs-Direct recipe
    lr: float = 0.3  # paper §4.1 base learning rate
    momentum: float = 0.9  # paper §4.1 (SGD only)
    weight_decay: float = 5e-4  # paper §4.1 (the official code uses 1e-4)
    lr_milestones: tuple[float, ...] = (0.5, 0.7, 0.9)  # fractions of the epochs where lr ÷ 10 (paper)
    lr_decay: float = 0.1  # "decay factor 10" (paper §4.1)
    augment: bool = True  # random crop (pad 4) + flip where the dataset allows it (paper §4.1)
    crop_padding: int | None = None  # None: the paper's 4; the auto recipe scales it to small images (≈ size/8)
    # reproducibility and data subsets
    seed: int = 0  # weight init, shuffling, augmentation and Poisson streams all derive from it
    split_seed: int = 0  # fixed train/test split for datasets without one: runs with other seeds stay comparable
    max_train_images: int | None = None  # None: all; a seeded subset for smoke tests and CI only
    max_test_images: int | None = None  # None: the FULL test set (the reported number); subsets for tests only
    # Held out of the training images (a seeded slice of the FULL train set, taken before any max_train_images
    # subset, which then comes from the rest) to choose the early-exit τ on: SPEC "Early exit" says any τ but
    # the paper's 0.1 is chosen on held-out training data, never on the test set. Used for that ONLY, never
    # for model selection (the run is still its last epoch's weights). 0.1 keeps 90% of the images for
    # training and ≥ 800 for τ on every shipped dataset; 0 disables it (the runs from before it existed).
    validation_fraction: float = 0.1
    # execution
    device: str = "auto"  # cuda when present, else cpu (mps is never chosen automatically)
    threads: int | None = None  # CPU threads for torch; None: torch's default. Results depend on it (sum order)
    # "auto": bf16 autocast (membrane fp32) where the device computes bf16 natively (AVX512_BF16/AMX, CUDA),
    # 2.7x faster there and the quickstart within 0.3 pt of fp32; else fp32, since emulated bf16 is 4-14x
    # slower than fp32 on an AVX2-only CPU (benchmarks/README.md). "fp32" is exact; "bf16" forces autocast.
    precision: str = DEFAULT_PRECISION
    precision_used: str | None = None  # what `precision` resolved to where the run started; kept on resume
    weights_dtype: str = "float32"  # float16/bfloat16 halve the file; the test accuracy is measured on them
    eval_batch_size: int = 256  # the Poisson draws depend on it; stored so `bntt evaluate` reproduces the number
    preset: str | None = None  # the preset this config started from (provenance only)
    # image-folder only: the test share held out of class folders without train/ + test/, and whether an
    # unreadable image is an error (True) or skipped with one warning (False)
    test_fraction: float = 0.2
    strict_images: bool = False
    # {setting: why} for every setting the auto recipe chose (own data, no preset, flag not given); provenance
    auto_recipe: dict = field(default_factory=dict)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainConfig:
        return cls.from_dict({**preset_settings(name), **overrides})

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training settings {unknown}; known: {sorted(known)}")
        values = dict(values)
        if "lr_milestones" in values and values["lr_milestones"] is not None:
            values["lr_milestones"] = tuple(float(m) for m in values["lr_milestones"])
        if "encoding" in values and values["encoding"] in ENCODING_ALIASES:
            values["encoding"] = ENCODING_ALIASES[values["encoding"]]
        return cls(**values)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["lr_milestones"] = list(self.lr_milestones)
        return values

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    def validate(self) -> None:
        """One ConfigError naming the first bad setting."""
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        _check_dataset_name(self.dataset)
        _check_int("num_steps (T)", self.num_steps, 1)
        if not isinstance(self.leak, (int, float)) or not 0.0 < float(self.leak) <= 1.0:
            raise ConfigError(f"leak must be in (0, 1] (1.0 is a non-leaky IF neuron); got {self.leak}")
        if not float(self.threshold) > 0.0:
            raise ConfigError(f"threshold must be > 0; got {self.threshold}")
        if self.norm not in NORMS:
            raise ConfigError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"unknown encoding {self.encoding!r}; choose one of p, d, {', '.join(ENCODINGS)}")
        if self.reset not in RESETS:
            raise ConfigError(f"unknown reset {self.reset!r}; choose one of {', '.join(RESETS)}")
        try:
            get_surrogate(self.surrogate)
        except (KeyError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
        if not float(self.width) > 0:
            raise ConfigError(f"width must be > 0; got {self.width}")
        _check_int("epochs", self.epochs, 1)
        _check_int("batch size", self.batch_size, 1)
        _check_int("eval batch size", self.eval_batch_size, 1)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number; got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1); got {self.momentum}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight decay must be ≥ 0; got {self.weight_decay}")
        if any(not 0 < m <= 1 for m in self.lr_milestones):
            raise ConfigError(f"lr milestones are fractions of the epochs in (0, 1]; got {list(self.lr_milestones)}")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr decay must be in (0, 1]; got {self.lr_decay}")
        _check_validation_fraction(self.validation_fraction)
        if self.crop_padding is not None:
            _check_int("crop padding", self.crop_padding, 0)
        if isinstance(self.test_fraction, bool) or not isinstance(self.test_fraction, (int, float)) \
                or not 0.0 < float(self.test_fraction) < 1.0:
            raise ConfigError(f"test fraction must be a number in (0, 1); got {self.test_fraction!r}")
        for name in ("max_train_images", "max_test_images"):
            if getattr(self, name) is not None:
                _check_int(name.replace("_", " "), getattr(self, name), 1)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}")
        if self.weights_dtype not in runs.WEIGHT_DTYPES:
            raise ConfigError(f"unknown weights dtype {self.weights_dtype!r}; "
                              f"choose one of {', '.join(runs.WEIGHT_DTYPES)}")
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        _parse_device(self.device)


def _check_validation_fraction(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"validation fraction must be a number in [0, 1) (the share of the training images "
                          f"held out to choose the early-exit τ; 0 disables it); got {value!r}")


# Settings that a run's stored train section lacks when it predates them, with the value such a run in
# effect had. Read a stored train section through `stored_train_values`, never TrainConfig.from_dict alone.
LEGACY_TRAIN_DEFAULTS: dict[str, Any] = {
    "validation_fraction": 0.0,  # before the held-out slice existed every run trained on all its images
    "crop_padding": None,  # the paper's 4 pixels
    "test_fraction": 0.2,  # class folders without train/ + test/ could not be read before: any value fits
    "strict_images": True,  # an unreadable image was an error before
    "auto_recipe": {},  # nothing was chosen automatically
    "precision_used": None,  # before "auto" existed, `precision` was what ran
}


def stored_train_values(values: dict | None) -> dict:
    """A run's (or checkpoint's) stored train section, with LEGACY_TRAIN_DEFAULTS for settings it predates."""
    return {**LEGACY_TRAIN_DEFAULTS, **dict(values or {})}


def _check_int(what: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{what} must be an integer ≥ {minimum}; got {value!r}")


def _check_dataset_name(name: str) -> None:
    names = _dataset_names()
    if names is not None and name not in names:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(names)}")


def _dataset_names() -> list[str] | None:
    try:
        from bntt_core import data
    except ImportError:  # the data module is optional for reading runs; load_data reports it anyway
        return None
    return list(data.KNOWN_DATASETS)


def _parse_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {name!r}; use {DEVICES_HELP}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ConfigError(f"device {name!r} asked for, but torch sees no MPS device; use --device cpu")
    return device


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with `threads` CPU threads for torch (None: leave as is), then restore."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def lr_at_epoch(config: TrainConfig, epoch: int) -> float:
    """Step schedule: base lr × decay^(milestones passed). Epoch `epoch` (from 0) starts after `epoch`
    epochs are done, so milestone f has passed once epoch ≥ f·epochs: for 120 epochs lr drops at
    60, 84 and 108 (as the official code); a 1-epoch run keeps the base lr throughout."""
    passed = sum(1 for fraction in config.lr_milestones if epoch >= fraction * config.epochs - 1e-9)
    return config.lr * config.lr_decay ** passed


def derive_seed(seed: int, *parts: Any) -> int:
    """A 63-bit seed for one random stream, e.g. derive_seed(seed, "shuffle", epoch)."""
    digest = hashlib.blake2b(repr((int(seed), *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


# ------------------------------------------------------------------------------ data plumbing
def load_datasets(config: TrainConfig):
    """(train, test, info) for the config, subset as configured. DataError when data are missing.
    `train` is what the run trains on: without its held-out validation slice (`load_splits`)."""
    splits = load_splits(config)
    return splits.train, splits.test, splits.info


@dataclass
class Splits:
    """The images of a run: train (what it trains on), validation (the held-out slice, None when
    validation_fraction = 0), test, the DataInfo, and `validation_record` (config.json data.validation)."""

    train: Any
    validation: Any
    test: Any
    info: Any
    validation_record: dict


def validation_seed(config: TrainConfig) -> int:
    """The validation slice's seed: from split_seed (not seed), so runs that differ only in seed or norm
    hold out the same images and train on the same rest."""
    return derive_seed(config.split_seed, "validation")


def split_validation(train_set, fraction: float, seed: int):
    """(rest, validation): a seeded slice of round(fraction·N) images (at least 1) of `train_set`, and the
    others; both keep the dataset order. fraction 0: (train_set, None)."""
    _check_validation_fraction(fraction)
    if float(fraction) == 0.0:
        return train_set, None
    total = len(train_set)
    held = max(1, round(float(fraction) * total))
    if held >= total:
        raise ConfigError(f"validation fraction {fraction} of {total} training images leaves none to train on")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(int(seed)))
    return train_set.subset(order[held:].sort().values), train_set.subset(order[:held].sort().values)


def load_splits(config: TrainConfig) -> Splits:
    """Load the dataset and split it as the run does: first the validation slice (validation_fraction of
    the FULL train set, seed `validation_seed`), then max_train_images from the rest, max_test_images
    from the test set. Deterministic: train, resume, every DDP rank and the analysis get the same images."""
    from bntt_core import data

    train_full, test_set, info = data.load_data(config.dataset, data_dir=config.data_dir, seed=config.split_seed,
                                                test_fraction=config.test_fraction,
                                                strict_images=config.strict_images)
    seed = validation_seed(config)
    rest, validation = split_validation(train_full, config.validation_fraction, seed)
    train_set = _seeded_subset(rest, config.max_train_images, derive_seed(config.split_seed, "train-subset"))
    test_set = _seeded_subset(test_set, config.max_test_images, derive_seed(config.split_seed, "test-subset"))
    record = {"fraction": float(config.validation_fraction),
              "num_images": 0 if validation is None else len(validation), "seed": seed,
              "of_train_images": len(train_full), "use": "early-exit τ selection only (not model selection)"}
    return Splits(train_set, validation, test_set, info, record)


class NoValidationSlice(ValueError):
    """A run without a held-out validation slice (trained before it existed, or with fraction 0)."""


def run_validation_set(run_path: str | os.PathLike, *, data_dir: str | None = None):
    """THE held-out validation slice of a run, rebuilt exactly from its config.json: (ImageSet, DataInfo).

    Rebuilt from the recorded data.validation (fraction, seed) on the run's dataset and split seed, and
    checked against its recorded size. NoValidationSlice (a ValueError) says why a run has none; a
    dataset that changed since training is a ValueError too.
    """
    from bntt_core import data

    config_json = runs.read_config(run_path)
    data_values = config_json.get("data") or {}
    record = data_values.get("validation")
    if config_json.get("kind") != "trained":
        raise NoValidationSlice(f"a {config_json.get('kind')} run has no training images of its own to hold out")
    if not record:
        raise NoValidationSlice("the run was trained before the validation slice existed (no data.validation in "
                                "its config.json): it trained on every training image, so none is held out; "
                                "retrain it to choose τ without the test set")
    if not record.get("num_images"):
        raise NoValidationSlice("the run was trained with --validation-fraction 0: no images were held out")
    dataset = data_values.get("dataset") or (config_json.get("train") or {}).get("dataset")
    directory = data_dir if data_dir is not None else data_values.get("data_dir")
    stored_train = stored_train_values(config_json.get("train"))  # image folders: the same test split
    train_full, _, info = data.load_data(dataset, data_dir=directory, seed=int(data_values.get("split_seed") or 0),
                                         test_fraction=stored_train["test_fraction"],
                                         strict_images=stored_train["strict_images"])
    if record.get("of_train_images") not in (None, len(train_full)):
        raise ValueError(f"the {dataset} training set has {len(train_full)} images now but {record['of_train_images']} "
                         f"when {run_path} was trained: its validation slice cannot be rebuilt")
    _, validation = split_validation(train_full, float(record["fraction"]), int(record["seed"]))
    if validation is None or len(validation) != int(record["num_images"]):
        raise ValueError(f"the validation slice of {run_path} rebuilt with {0 if validation is None else len(validation)} "
                         f"images, but {record['num_images']} were recorded")
    return validation, info


def _seeded_subset(dataset, limit: int | None, seed: int):
    """`limit` images, classes as balanced as they allow, fixed by `seed` (ImageSet.subset)."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.subset(int(limit), seed=seed)


def to_model_input(images: torch.Tensor, info, device: torch.device,
                   augment_generator: torch.Generator | None = None, *,
                   crop_padding: int | None = None) -> torch.Tensor:
    """A loader batch → what the model reads.

    images uint8 [B, C, H, W] (pixels 0..255) → float pixels in [0, 1] → augmentation (training only)
    → normalised [B, C, H, W]. Event frames [B, T, C, H, W] (float) → normalised → time-major
    [T, B, C, H, W], which the model takes as already-encoded input.
    """
    from bntt_core import data

    pixels = data.to_pixels(images.to(device, non_blocking=True))
    if augment_generator is not None:
        pixels = data.augment_batch(pixels, info, augment_generator, padding=crop_padding)
    x = data.normalize(pixels, info)
    if x.dim() == 5:
        x = x.transpose(0, 1)  # [B, T, C, H, W] → [T, B, C, H, W]
    return x


def spec_for(config: TrainConfig, info) -> ModelSpec:
    """The ModelSpec of a config on a dataset (its shape from DataInfo)."""
    spec = ModelSpec(arch=config.arch, num_classes=int(info.num_classes), in_channels=int(info.in_channels),
                     image_size=int(info.image_size), num_steps=int(config.num_steps), leak=float(config.leak),
                     threshold=float(config.threshold), norm=config.norm, encoding=config.encoding,
                     spiking=bool(config.spiking), reset=config.reset, surrogate=config.surrogate,
                     width=float(config.width))
    try:
        spec.validate()
    except ValueError as exc:
        raise ConfigError(f"{exc} (dataset {config.dataset}: {info.in_channels}×{info.image_size}×"
                          f"{info.image_size}, {info.num_classes} classes)") from exc
    return spec


# ------------------------------------------------------------------------- the auto recipe
AUTO_RECIPE_SETTINGS = ("batch_size", "lr", "augment", "crop_padding")
MIN_UPDATES_PER_EPOCH = 50  # the paper's CIFAR-10 recipe makes 195 (50,000 / 256)
AUTO_BATCH_RANGE = (16, 256)  # powers of two; 256 is the paper's
MIN_AUGMENT_SIZE = 16  # below it a random crop moves too large a share of the image


def adapt_recipe(config: TrainConfig, info, num_train_images: int, auto: Collection[str]) -> TrainConfig:
    """The paper's CIFAR-10 recipe adapted to a user's image folder, for the settings in `auto` (those
    the user did not choose); the built-in datasets keep their recipes. Rules (README "Your own data"):

    batch_size: the largest power of two in [16, 256] giving ≥ 50 updates per epoch (the paper's
        recipe gives 195 on CIFAR-10; on 1,500 images its batch of 256 gives 6, far too few).
    lr: the paper's 0.3 scaled linearly with the batch (0.3 · batch / 256; Goyal et al. 2017): the
        step size per image stays the paper's. Measured on 1,800 8×8 digits, VGG5, T = 8, 6 epochs at
        batch 16: lr 0.019 (this rule) 90.7–93.3% over four data orders and seeds, 0.05 90.0–93.0%,
        0.1 92.3% (README "Your own data"): no tuned constant beats it.
    augment / crop_padding: random crops shift by up to image_size/8 pixels (the paper's 4 at 32 px);
        off below 16 px, where even one pixel is a large share of the image.
    Every chosen value is recorded with its reason in config.auto_recipe.
    """
    chosen = [name for name in AUTO_RECIPE_SETTINGS if name in set(auto)]
    unknown = sorted(set(auto) - set(AUTO_RECIPE_SETTINGS))
    if unknown:
        raise ConfigError(f"the auto recipe sets only {', '.join(AUTO_RECIPE_SETTINGS)}; got {unknown}")
    if getattr(info, "name", None) != "image-folder" or not chosen:
        return config
    changes: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    batch_size = config.batch_size
    if "batch_size" in chosen:
        low, high = AUTO_BATCH_RANGE
        fitting = max(1, num_train_images // MIN_UPDATES_PER_EPOCH)
        batch_size = min(high, max(low, 2 ** int(math.log2(fitting))))
        changes["batch_size"] = batch_size
        updates = math.ceil(num_train_images / batch_size)
        reasons["batch_size"] = (f"{batch_size}: the largest power of two in [{low}, {high}] giving ≥ "
                                 f"{MIN_UPDATES_PER_EPOCH} updates per epoch where it can ({updates} on "
                                 f"{num_train_images} training images)")
    if "lr" in chosen:
        lr = auto_lr(batch_size)
        changes["lr"] = lr
        reasons["lr"] = f"{lr:g}: the paper's 0.3 at batch 256 scaled linearly to batch {batch_size}"
    augment = config.augment
    if "augment" in chosen:
        augment = info.image_size >= MIN_AUGMENT_SIZE and info.augment != "none"
        changes["augment"] = augment
        reasons["augment"] = ("on: random crops" if augment else
                              f"off: {info.image_size}×{info.image_size} images are below {MIN_AUGMENT_SIZE} px, "
                              f"where a random crop moves too large a share of the image")
    if "crop_padding" in chosen and augment:
        padding = max(1, round(info.image_size / 8))
        changes["crop_padding"] = padding
        reasons["crop_padding"] = f"{padding}: image_size/8 for {info.image_size} px images (the paper's 4 at 32 px)"
    if not changes:
        return config
    return config.replace(**changes, auto_recipe=reasons)


def auto_lr(batch_size: int) -> float:
    """The auto recipe's learning rate: the paper's 0.3 at batch 256 scaled linearly with the batch."""
    return round(0.3 * int(batch_size) / 256, 6)


def first_epoch_warning(config: TrainConfig, info, train_loss: float, num_train_images: int) -> str | None:
    """A warning with what to try when the first epoch's mean loss is not finite or above ln(classes)
    (a network that guesses uniformly has loss ln(classes): above it, it learned nothing yet); else None."""
    chance = math.log(max(2, int(info.num_classes)))
    if math.isfinite(train_loss) and train_loss <= chance:
        return None
    updates = math.ceil(num_train_images / max(1, config.batch_size))
    tips = [f"a lower --lr (now {config.lr:g})"]
    if updates < MIN_UPDATES_PER_EPOCH:
        tips.append(f"a smaller --batch-size (now {config.batch_size}: {updates} updates per epoch)")
    if config.augment and info.augment != "none" and info.image_size < MIN_AUGMENT_SIZE:
        tips.append(f"--no-augment ({info.image_size} px images)")
    tips.append("more --epochs")
    return (f"warning: the first epoch's training loss {train_loss:.3f} is "
            f"{'not finite' if not math.isfinite(train_loss) else 'above'} ln({info.num_classes}) = {chance:.3f}, "
            f"the loss of guessing: the network has not started learning. Try " + ", ".join(tips)
            + (" (or leave out --preset, --lr, --batch-size, --augment: bntt then adapts them to an image folder)"
               if info.name == "image-folder" and not config.auto_recipe else ""))


# ---------------------------------------------------------------------------------- evaluation
def accuracy_by_step(model: nn.Module, dataset, info, *, seed: int, batch_size: int = 256,
                     precision: str | None = None, device: torch.device | str | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list[float]:
    """Accuracy of the prediction from the output accumulated up to step t, t = 1..T, on every image of
    `dataset` (no drop_last); Poisson spikes from a generator seeded with `seed`. Last entry = full T."""
    from bntt_core import data

    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = data.make_loader(dataset, batch_size, shuffle=False, seed=0)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    correct: torch.Tensor | None = None  # [T]
    seen = 0
    for index, (images, labels) in enumerate(loader):
        x = to_model_input(images, info, device)
        running = eval_logits(model, x, per_step=True, generator=generator, precision=precision)  # [T, B, classes]
        hits = (running.argmax(-1) == labels.to(device).unsqueeze(0)).sum(1)  # [T]
        correct = hits if correct is None else correct + hits
        seen += labels.shape[0]
        if progress is not None:
            progress(index + 1, len(loader))
    if correct is None or seen == 0:
        raise ValueError("the test set is empty")
    return (correct.double() / seen).tolist()


def evaluate_run(path: str | os.PathLike, *, steps: int | None = None, device: str = "cpu",
                 data_dir: str | None = None, batch_size: int | None = None, threads: int | None = None,
                 precision: str | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Test accuracy of a run on its full test set (as in training: same seed, batch size and subset),
    and at `steps` < T if given. `precision` None: the run's own where this device computes it natively
    (`step.run_precision`). Returns {"test_accuracy", "num_steps", "steps", "accuracy_at_steps",
    "num_images", "by_step", "precision"}."""
    run = runs.load_run(path, device=_parse_device(device))
    train_values = stored_train_values(run.config.get("train"))
    data_values = run.config["data"]
    config = TrainConfig.from_dict({k: v for k, v in train_values.items()
                                    if k in {f.name for f in dataclasses.fields(TrainConfig)}})
    config = config.replace(dataset=data_values.get("dataset", config.dataset),
                            data_dir=data_dir if data_dir is not None else data_values.get("data_dir"),
                            split_seed=int(data_values.get("split_seed", config.split_seed)))
    num_steps = run.model.num_steps
    if steps is not None and not 1 <= steps <= num_steps:
        raise ConfigError(f"--steps must be in [1, {num_steps}] (the run's T); got {steps}")
    _, test_set, _ = load_datasets(config)
    precision = run_precision(train_values, device, precision)
    with torch_threads(threads if threads is not None else config.threads):
        by_step = accuracy_by_step(run.model, test_set, run.info, seed=derive_seed(config.seed, "test"),
                                   batch_size=batch_size or config.eval_batch_size, precision=precision,
                                   progress=progress)
    return {"test_accuracy": by_step[-1], "num_steps": num_steps, "steps": steps, "precision": precision,
            "accuracy_at_steps": by_step[steps - 1] if steps is not None else None,
            "num_images": len(test_set), "by_step": by_step}


# --------------------------------------------------------------------------- distributed setup
@dataclass
class _Cluster:
    """This process's place in a (possibly one-process) data-parallel job."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # we initialised the process group, so we tear it down

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def share(self, produce: Callable[[], Any]) -> Any:
        """Run `produce` on rank 0 and give every rank its value, or raise its ValueError everywhere."""
        if not self.distributed:
            return produce()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", produce())
            except ValueError as exc:
                box[0] = ("error", exc)
        torch.distributed.broadcast_object_list(box, src=0)
        status, value = box[0]
        if status == "error":
            raise value
        return value

    def all_true(self, flag: bool) -> bool:
        if not self.distributed:
            return flag
        value = torch.tensor([0.0 if flag else 1.0], device=self._reduce_device)
        torch.distributed.all_reduce(value)
        return float(value) == 0.0

    def sum(self, values: list[float]) -> list[float]:
        if not self.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self._reduce_device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    @property
    def _reduce_device(self) -> torch.device:
        return self.device if torch.distributed.get_backend() == "nccl" else torch.device("cpu")

    def describe(self) -> dict:
        backend = torch.distributed.get_backend() if self.distributed else None
        return {"world_size": self.world_size, "backend": backend}

    def close(self) -> None:
        if self.owns_group and torch.distributed.is_initialized():
            # the DDP wrapper sits in a reference cycle: collected only after the group was destroyed, its
            # reducer aborted the process at exit ("terminate called without an active exception", ~1 run in 5)
            gc.collect()
            torch.distributed.destroy_process_group()


def _join_cluster(device_name: str) -> _Cluster:
    """One process, or one rank of a torchrun job (WORLD_SIZE > 1): device per LOCAL_RANK."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = _parse_device(device_name)
    if world_size <= 1:
        return _Cluster(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    owns = False
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        owns = True
    return _Cluster(rank=torch.distributed.get_rank(), world_size=torch.distributed.get_world_size(),
                    device=device, owns_group=owns)


# ------------------------------------------------------------------------------------ training
@dataclass
class TrainResult:
    path: Path
    test_accuracy: float
    epochs_done: int
    wall_seconds: float


class _Reporter:
    """Progress (tqdm bar / one line per epoch / silent) and the append-only RUN/train.log."""

    def __init__(self, run_dir: Path | None, mode: str):
        self.log_path = run_dir / runs.LOG_FILE if run_dir is not None else None
        self.mode = mode

    def log(self, message: str, *, echo: bool = True) -> None:
        if self.log_path is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(f"{stamp} {message}\n")
        if echo and self.mode != "none":
            self.write(message)

    def write(self, message: str) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)
        else:
            print(message, flush=True)

    def bar(self, total: int, description: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=description, unit="batch", leave=False, dynamic_ncols=True,
                    disable=self.mode != "bar", file=sys.stderr)


def _check_new_run_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RunExistsError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(not child.name.startswith(".") for child in out.iterdir()):
        raise RunExistsError(f"{out} already exists and is not empty; nothing was changed. Resume it with "
                             f"`bntt train --resume {out}` or choose another --out")


def default_run_dir(config: TrainConfig, root: str | os.PathLike = "runs") -> Path:
    name = config.preset or f"{config.arch}-{config.dataset}"
    return Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(config: TrainConfig, out: str | os.PathLike | None = None, *, progress: str = "bar",
          auto: Collection[str] = ()) -> TrainResult:
    """Train a new run into `out` (refused if it exists and is not empty; None: runs/<name>-<time>).

    auto: settings the caller did not choose (`bntt train` without --preset passes every one of
    AUTO_RECIPE_SETTINGS whose flag was not given): on an image-folder dataset `adapt_recipe` sets them
    to fit the data and records why in config.auto_recipe; the built-in datasets keep their recipes.
    The run directory is locked (runs.run_lock) for the whole training: one writer per run."""
    if progress not in PROGRESS_MODES:
        raise ValueError(f"progress must be one of {PROGRESS_MODES}")
    config = TrainConfig.from_dict(config.to_dict())  # a copy: normalises aliases and tuples
    config.validate()
    with torch_threads(config.threads), contextlib.ExitStack() as held:
        cluster = _join_cluster(config.device)
        try:
            out_dir = cluster.share(lambda: _resolve_new_out(config, out))
            splits = load_splits(config)
            train_set, test_set, info = splits.train, splits.test, splits.info
            config = adapt_recipe(config, info, len(train_set), auto)
            config = config.replace(precision_used=resolve_precision(config.precision, cluster.device))
            spec = spec_for(config, info)
            stored_config = config.replace(data_dir=_absolute(config.data_dir))
            if cluster.is_main:
                _claim_run_dir(out_dir)
                held.enter_context(runs.run_lock(out_dir, "training"))
                data = runs.data_section(info, dataset=config.dataset, data_dir=stored_config.data_dir,
                                         split_seed=config.split_seed, num_train_images=len(train_set),
                                         num_test_images=len(test_set), validation=splits.validation_record)
                runs.write_config(out_dir, runs.make_config(kind="trained", spec=spec, data=data,
                                                            train=stored_config.to_dict(),
                                                            weights_dtype=config.weights_dtype,
                                                            distributed=cluster.describe()))
            cluster.barrier()
            return _fit(out_dir, stored_config, spec, info, train_set, test_set, cluster, progress, state=None)
        finally:
            cluster.close()


def _claim_run_dir(out_dir: Path) -> None:
    """Create the run directory; if it appeared meanwhile with content, refuse (never write into it)."""
    try:
        out_dir.mkdir(parents=True)
    except FileExistsError:
        _check_new_run_dir(out_dir)


def _resolve_new_out(config: TrainConfig, out: str | os.PathLike | None) -> Path:
    out_dir = Path(out) if out is not None else default_run_dir(config)
    _check_new_run_dir(out_dir)
    return out_dir


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def resume(run_path: str | os.PathLike, *, device: str | None = None, threads: int | None = None,
           progress: str = "bar", expect: dict | None = None) -> TrainResult:
    """Continue a run from its checkpoint with its stored config (optionally on another `device` or
    with other `threads`; either can change the last bits of the result).

    `expect`: settings the caller asked for (e.g. flags given with --resume); a ResumeError if any
    differs from the stored config, since a resumed run must be the run that was started.
    The run directory is locked for the whole resume (runs.run_lock): a second writer is refused.
    """
    with runs.run_lock(run_path, "training (resumed)"):
        return _resume_locked(run_path, device=device, threads=threads, progress=progress, expect=expect)


def _resume_locked(run_path: str | os.PathLike, *, device: str | None, threads: int | None, progress: str,
                   expect: dict | None) -> TrainResult:
    run_dir = Path(run_path)
    config_json = runs.read_config(run_dir)
    if config_json["kind"] != "trained":
        raise ResumeError(f"{run_dir} is a {config_json['kind']} run; only trained runs can be resumed")
    try:
        config = TrainConfig.from_dict(stored_train_values(config_json.get("train")))
    except (TypeError, ValueError) as exc:
        raise ResumeError(f"{run_dir}/config.json has an unreadable train section: {exc}") from exc
    for key, wanted in (expect or {}).items():
        stored = getattr(config, key, None)
        if key == "lr_milestones" and wanted is not None:
            wanted = tuple(wanted)
        if key == "data_dir":
            wanted = _absolute(wanted)
        if key == "encoding":
            wanted = ENCODING_ALIASES.get(wanted, wanted)
        if wanted != stored:
            raise ResumeError(f"--resume continues {run_dir} with its stored settings, but {key} = {wanted!r} "
                              f"was given and the run has {stored!r}; start a new run (--out) to change it")
    if device is not None:
        config = config.replace(device=device)
    if threads is not None:
        config = config.replace(threads=threads)
    config.validate()
    checkpoint_path = run_dir / runs.CHECKPOINT_FILE
    result = config_json.get("result")
    if not checkpoint_path.is_file() and result and (run_dir / runs.WEIGHTS_FILE).is_file():
        return TrainResult(run_dir, float(result["test_accuracy"]), int(result["epochs_done"]),
                           float(result["wall_seconds"]))
    with torch_threads(config.threads):
        cluster = _join_cluster(config.device)
        try:
            splits = load_splits(config)
            train_set, test_set, info = splits.train, splits.test, splits.info
            stored_validation = (config_json.get("data") or {}).get("validation")
            if stored_validation and stored_validation.get("num_images") != splits.validation_record["num_images"]:
                raise ResumeError(f"the validation slice of {run_dir} rebuilt with {splits.validation_record['num_images']} "
                                  f"images, not the {stored_validation.get('num_images')} recorded; the dataset "
                                  f"changed and the run cannot be resumed")
            spec = spec_for(config, info)
            if spec.to_dict() != config_json["model"]:
                raise ResumeError(f"{run_dir}/config.json: the model section does not match its train section "
                                  f"on this dataset; the run cannot be resumed as it stands")
            stored_info = config_json["data"]
            for key, value in runs.info_to_dict(info).items():
                if key in stored_info and stored_info[key] != value and key not in ("source",):
                    raise ResumeError(f"the dataset changed since {run_dir} started ({key}: now {value!r}, "
                                      f"stored {stored_info[key]!r}); the run cannot be resumed")
            state = _read_checkpoint(checkpoint_path, config) if checkpoint_path.is_file() else None
            return _fit(run_dir, config, spec, info, train_set, test_set, cluster, progress, state=state)
        finally:
            cluster.close()


REFUSED_CHECKPOINT = "not a bntt checkpoint, or made by something else: it was not loaded"


def load_checkpoint_file(path: str | os.PathLike) -> Any:
    """torch.load with the safe loader (weights_only=True) and nothing else: the one place the project
    reads a pickle-based file. A file the safe loader refuses is a ResumeError of our own words
    (REFUSED_CHECKPOINT), never torch's advice to turn the safe loader off; a damaged one names the file."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # what the safe loader raises for objects outside its allow-list
        raise ResumeError(f"{path}: {REFUSED_CHECKPOINT}") from None  # from None: no torch text in a traceback
    except Exception as exc:  # truncated or foreign files raise a zoo of types; name the file
        detail = str(exc).splitlines()[0] if str(exc) else ""
        if "weights_only" in str(exc) or "weights only" in str(exc).lower():
            raise ResumeError(f"{path}: {REFUSED_CHECKPOINT}") from None
        raise ResumeError(f"{path} is damaged or not a bntt checkpoint ({type(exc).__name__}: {detail})") from None


def _read_checkpoint(path: Path, config: TrainConfig) -> dict:
    state = load_checkpoint_file(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ResumeError(f"{path} is not a bntt checkpoint")
    # a checkpoint without "run_format" predates bntt-run/2: its norm names are /1's
    stored = stored_train_values(runs.upgrade_settings(state.get("config"), state.get("run_format", "bntt-run/1")))
    current = config.to_dict()
    differing = sorted(key for key in set(stored) | set(current)
                       if key not in EXECUTION_SETTINGS and stored.get(key) != current.get(key))
    if differing:
        details = ", ".join(f"{key}: checkpoint {stored.get(key)!r} vs config.json {current.get(key)!r}"
                            for key in differing[:4])
        raise ResumeError(f"config.json does not match {path.name} ({details}); the run cannot be resumed")
    return state


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def _fit(run_dir: Path, config: TrainConfig, spec: ModelSpec, info, train_set, test_set, cluster: _Cluster,
         progress: str, state: dict | None) -> TrainResult:
    """The epoch loop shared by train() and resume(); `state` is a checkpoint (None: from scratch)."""
    from bntt_core import data

    device = cluster.device
    reporter = _Reporter(run_dir if cluster.is_main else None, progress if cluster.is_main else "none")
    torch.manual_seed(derive_seed(config.seed, "init"))
    model = model_from_spec(spec)
    optimizer = _make_optimizer(config, model)
    metrics: list[dict] = []
    start_epoch = 0
    if state is not None:
        try:
            model.load_state_dict(state["model"], strict=True)
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ResumeError(f"{run_dir / runs.CHECKPOINT_FILE} does not match the model in config.json: "
                              f"{str(exc).splitlines()[0]}") from exc
        start_epoch = int(state["epoch"])
        metrics = [dict(row) for row in state["metrics"]]
        torch.set_rng_state(state["rng"]["torch"])
        cuda_states = state["rng"].get("cuda")
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        reporter.log(f"resumed {run_dir} after epoch {start_epoch} of {config.epochs}")
    else:
        reporter.log(f"training {run_dir}: {spec.arch} ×{spec.width} {'SNN' if spec.spiking else 'ANN'} "
                     f"norm={spec.norm} T={spec.num_steps} on {config.dataset} ({len(train_set)} train / "
                     f"{len(test_set)} test images; {config.validation_fraction:g} of the training images "
                     f"held out for the early-exit τ), {config.epochs} epochs, device {device}, "
                     f"{cluster.world_size} process(es)")
        if config.auto_recipe:  # once, at the start: what was chosen for the user and why
            reporter.log("recipe adapted to this data (settings you did not give; give a flag to override): "
                         + "; ".join(f"{name} {reason}" for name, reason in config.auto_recipe.items()))
    model.to(device)
    _move_optimizer_state(optimizer, device)
    trained_model: nn.Module = model
    if cluster.distributed:
        trained_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    rank_batch = max(1, config.batch_size // cluster.world_size)
    if config.batch_size % cluster.world_size:
        reporter.log(f"batch size {config.batch_size} is not a multiple of {cluster.world_size} processes; "
                     f"each takes {rank_batch}")
    test_seed = derive_seed(config.seed, "test")
    augment = config.augment and info.augment != "none"  # info.augment: "crop-flip" | "crop" | "none"
    shuffle_seed = derive_seed(config.seed, "shuffle")

    if state is None and cluster.is_main:  # epoch-0 checkpoint: a "last good" state always exists
        _write_checkpoint(run_dir, config, model, optimizer, 0, metrics)
    if cluster.is_main:  # γ at initialisation, or at the checkpoint resumed from (if the file missed it)
        _record_gamma(run_dir, model, start_epoch, keep_through=start_epoch)
    cluster.barrier()

    for epoch in range(start_epoch, config.epochs):
        lr = lr_at_epoch(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loader = data.make_loader(train_set, rank_batch, shuffle=True, seed=shuffle_seed,
                                  distributed=cluster.distributed)
        data.set_epoch(loader, epoch)  # the order of epoch e depends on (seed, e) only: resumable
        augment_generator = (torch.Generator(device=device).manual_seed(
            derive_seed(config.seed, "augment", epoch, cluster.rank)) if augment else None)
        poisson_generator = torch.Generator(device=device).manual_seed(
            derive_seed(config.seed, "poisson", epoch, cluster.rank))
        started = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        with reporter.bar(len(loader), f"epoch {epoch + 1}/{config.epochs}") as bar:
            for batch_index, (images, labels) in enumerate(loader):
                x = to_model_input(images, info, device, augment_generator,  # [B, C, H, W] or [T, B, C, H, W]
                                   crop_padding=config.crop_padding)
                labels = labels.to(device, non_blocking=True)  # [B]
                stats: dict = {}
                loss = train_step(trained_model, optimizer, x, labels, generator=poisson_generator,
                                  precision=config.precision_used or config.precision, stats=stats)
                if not cluster.all_true(math.isfinite(loss)):
                    message = (f"loss became {loss} at epoch {epoch + 1}, batch {batch_index + 1}; training "
                               f"stopped. The last good checkpoint (after epoch {epoch}) is kept in "
                               f"{run_dir / runs.CHECKPOINT_FILE}; no weights were written. Resuming would "
                               f"diverge again: start a new run with a lower --lr (this one: {config.lr:g})")
                    reporter.log(f"error: {message}", echo=False)
                    raise TrainingDiverged(message)
                batch = labels.shape[0]
                loss_sum += loss * batch
                correct += stats["correct"]
                seen += batch
                elapsed = time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.1f}%",
                                img_s=f"{seen * cluster.world_size / max(elapsed, 1e-9):.0f}")
        train_seconds = time.perf_counter() - started
        loss_sum, correct, seen = cluster.sum([loss_sum, float(correct), float(seen)])
        test_acc = cluster.share(lambda: accuracy_by_step(model, test_set, info, seed=test_seed,
                                                          batch_size=config.eval_batch_size,
                                                          precision=config.precision_used or config.precision,
                                                          device=device)[-1])
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen, "train_acc": correct / seen,
               "test_acc": test_acc, "seconds": time.perf_counter() - started,
               "images_per_s": seen / max(train_seconds, 1e-9)}
        metrics.append(row)
        if cluster.is_main:
            _write_checkpoint(run_dir, config, model, optimizer, epoch + 1, metrics)
            _write_metrics(run_dir, metrics)
            _record_gamma(run_dir, model, epoch + 1)
            reporter.log(f"epoch {epoch + 1}/{config.epochs} lr {lr:.3g} loss {row['train_loss']:.4f} "
                         f"train {100 * row['train_acc']:.2f}% test {100 * test_acc:.2f}% "
                         f"{row['seconds']:.1f}s {row['images_per_s']:.0f} img/s")
            if epoch == 0:
                warning = first_epoch_warning(config, info, row["train_loss"], len(train_set))
                if warning:
                    reporter.log(warning)
        cluster.barrier()

    return cluster.share(lambda: _finish(run_dir, config, model, info, test_set, metrics, reporter))


def _finish(run_dir: Path, config: TrainConfig, model: nn.Module, info, test_set, metrics: list[dict],
            reporter: _Reporter) -> TrainResult:
    """Final weights (rounded to weights_dtype and measured as stored), result in config.json, and the
    checkpoint removed. Safe to repeat: a kill in here leaves the final checkpoint to finish from."""
    if config.weights_dtype != "float32" or not metrics:
        runs.round_to_dtype(model, config.weights_dtype)
        test_acc = accuracy_by_step(model, test_set, info, seed=derive_seed(config.seed, "test"),
                                    batch_size=config.eval_batch_size,
                                    precision=config.precision_used or config.precision)[-1]
    else:
        test_acc = metrics[-1]["test_acc"]
    runs.save_weights(model, run_dir / runs.WEIGHTS_FILE, config.weights_dtype)
    _write_metrics(run_dir, metrics)
    _record_gamma(run_dir, model, len(metrics))  # the last epoch as stored (rounded to weights_dtype)
    wall = float(sum(row["seconds"] for row in metrics))
    config_json = runs.read_config(run_dir)
    config_json["result"] = {"test_accuracy": float(test_acc), "epochs_done": len(metrics), "wall_seconds": wall,
                             "num_test_images": len(test_set)}
    config_json["weights"] = {"file": runs.WEIGHTS_FILE, "dtype": config.weights_dtype}
    runs.write_config(run_dir, config_json)
    (run_dir / runs.CHECKPOINT_FILE).unlink(missing_ok=True)
    reporter.log(f"done: test accuracy {100 * test_acc:.2f}% on {len(test_set)} images after {len(metrics)} "
                 f"epochs ({wall:.0f} s); weights in {run_dir / runs.WEIGHTS_FILE}")
    return TrainResult(run_dir, float(test_acc), len(metrics), wall)


def _write_checkpoint(run_dir: Path, config: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                      epoch: int, metrics: list[dict]) -> None:
    """Everything resume needs, loadable with weights_only=True (tensors, numbers, strings, containers).
    The learning rate is a pure function of the epoch (lr_at_epoch), so the schedule's state is `epoch`;
    the shuffle/augment/Poisson generators are re-derived from (seed, epoch, rank) each epoch."""
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    runs.atomic_torch_save(run_dir / runs.CHECKPOINT_FILE, {
        "format": CHECKPOINT_FORMAT,
        "run_format": runs.RUN_FORMAT,  # the meaning of the norm names in "config" (runs.upgrade_settings)
        "epoch": epoch,
        "config": config.to_dict(),
        "model": {name: tensor.detach().to("cpu") for name, tensor in model.state_dict().items()},
        "optimizer": _state_to_cpu(optimizer.state_dict()),
        "scheduler": {"kind": "step", "epoch": epoch, "lr": lr_at_epoch(config, min(epoch, config.epochs - 1))},
        "rng": rng,
        "metrics": [dict(row) for row in metrics],
    })


def _state_to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    if isinstance(value, dict):
        return {key: _state_to_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_state_to_cpu(item) for item in value]
    return value


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for per_param in optimizer.state.values():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor) and key != "step":
                per_param[key] = value.to(device)


def _record_gamma(run_dir: Path, model: nn.Module, epoch: int, *, keep_through: int | None = None) -> None:
    """Put γ after `epoch` into RUN/gamma_history.csv (BNTT networks only). `keep_through`: on (re)start,
    drop rows of later epochs (a run killed after writing them re-trains those epochs) and keep an existing
    row of `epoch` (it was written from the same weights). A damaged file is started anew: training does
    not depend on it."""
    if not gamma_history.has_bntt(model):
        return
    path = run_dir / gamma_history.GAMMA_HISTORY_FILE
    try:
        history = gamma_history.read_gamma_history(run_dir)
    except ValueError:
        history = None
    if history is not None and keep_through is not None:
        history = history[history["epoch"] <= keep_through]
        if (history["epoch"] == epoch).any():
            runs.atomic_write_text(path, history.to_csv(index=False))
            return
    history = gamma_history.merge_epoch(history, gamma_history.gamma_summary(model, epoch))
    runs.atomic_write_text(path, history.to_csv(index=False))


def _write_metrics(run_dir: Path, metrics: list[dict]) -> None:
    frame = pd.DataFrame(metrics, columns=list(runs.METRICS_COLUMNS))
    runs.atomic_write_text(run_dir / runs.METRICS_FILE, frame.to_csv(index=False))
