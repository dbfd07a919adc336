"""The settings of a training run (`TrainConfig`), their checks, and the pure functions of them that
training, resume and evaluation share: the learning-rate schedule, the random-stream seeds, the device.

    config = TrainConfig.from_preset("quickstart", epochs=2)   # ConfigError names the first bad setting
    config.validate()
    stored = stored_train_values(config_json["train"])       # a stored section, old runs' settings filled in
    lr_at_epoch(config, epoch), derive_seed(config.seed, "shuffle", epoch), spec_for(config, info)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import torch

from bntt_core.data.core import KNOWN_DATASETS
from bntt_core.nn.encoding import ENCODINGS
from bntt_core.nn.models import ARCHS, ModelSpec
from bntt_core.nn.neurons import RESETS
from bntt_core.nn.norms import NORMS
from bntt_core.nn.step import DEFAULT_PRECISION, PRECISIONS
from bntt_core.nn.surrogate import get_surrogate
from bntt_core.runs.presets import preset_settings
from bntt_core.runs.run_dir import WEIGHT_DTYPES

OPTIMIZERS = ("sgd", "adam")
DEVICES_HELP = "auto | cpu | cuda | cuda:N | mps"
ENCODING_ALIASES = {"p": "poisson", "d": "direct", "poisson": "poisson", "direct": "direct"}


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
        check_validation_fraction(self.validation_fraction)
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
        if self.weights_dtype not in WEIGHT_DTYPES:
            raise ConfigError(f"unknown weights dtype {self.weights_dtype!r}; "
                              f"choose one of {', '.join(WEIGHT_DTYPES)}")
        if self.threads is not None:
            _check_int("threads", self.threads, 1)
        parse_device(self.device)


def check_validation_fraction(value: Any) -> None:
    """ConfigError unless `value` is a share of the training images in [0, 1) (validation_fraction)."""
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
    if name not in KNOWN_DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(KNOWN_DATASETS)}")


def parse_device(name: str) -> torch.device:
    """The torch.device a setting names (DEVICES_HELP; "auto": cuda when present, else cpu), or ConfigError."""
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
