"""The images of a run: what it trains on, its held-out validation slice and THE test set it was
evaluated on, each rebuilt exactly as training built it.

A seeded slice of the training images (validation_fraction, default 0.1) is held out and never trained
on: the analysis chooses the early-exit τ on it (`run_validation_set` rebuilds it from config.json),
and nothing else uses it. The slice comes first from the FULL train set; max_train_images then picks
from the rest, and max_test_images a seeded subset of the test set.

    splits = load_splits(config)                       # Splits(train, validation, test, info, record)
    test_set, info = run_test_set("runs/first")        # the test images the run was evaluated on
    config = run_train_config(run)                     # the TrainConfig it was trained with, on its data
    validation, info = run_validation_set("runs/first")
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bntt_core.runs.config import (
    ConfigError,
    TrainConfig,
    check_validation_fraction,
    derive_seed,
    stored_train_values,
)
from bntt_core.runs.run_dir import read_config


# ------------------------------------------------------------------------- a config's images
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
    check_validation_fraction(fraction)
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


def _seeded_subset(dataset, limit: int | None, seed: int):
    """`limit` images, classes as balanced as they allow, fixed by `seed` (ImageSet.subset)."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.subset(int(limit), seed=seed)


# ------------------------------------------------------------------------- a run's images
def run_train_config(run: Any, *, data_dir: str | None = None, max_test_images: int | None = None,
                     ignore_missing_data_dir: bool = False) -> TrainConfig:
    """THE TrainConfig a run was trained with, from its config.json: the stored train section (with
    LEGACY_TRAIN_DEFAULTS for settings it predates) on the dataset, data_dir and split_seed of its data
    section. `run`: a loaded Run, a run directory, or a config.json value.

    data_dir: read the data from there instead of the recorded folder. max_test_images: a tighter cap on
    the test images than the run's own (the seeded subset training would take at that size; never more
    images than the run was evaluated on). ignore_missing_data_dir: a recorded data_dir that does not
    exist here (the run was trained on another machine) is dropped, so the data is searched where
    load_data looks by default."""
    config_json = run if isinstance(run, dict) else getattr(run, "config", None)
    if config_json is None:
        config_json = read_config(run)
    train_values = stored_train_values(config_json.get("train"))  # old runs: no validation slice
    data_values = config_json["data"]
    config = TrainConfig.from_dict(
        {k: v for k, v in train_values.items() if k in TrainConfig.__dataclass_fields__})
    recorded = data_values.get("data_dir")
    if ignore_missing_data_dir and recorded and not Path(recorded).exists():
        recorded = None
    config = config.replace(dataset=data_values.get("dataset", config.dataset),
                            data_dir=data_dir if data_dir is not None else recorded,
                            split_seed=int(data_values.get("split_seed", config.split_seed)))
    if max_test_images is not None:
        limit = config.max_test_images
        config = config.replace(max_test_images=int(max_test_images) if limit is None
                                else min(limit, int(max_test_images)))
    return config


def run_test_set(run: Any, *, data_dir: str | None = None, max_test_images: int | None = None,
                 ignore_missing_data_dir: bool = False) -> tuple:
    """THE test set a run was evaluated on: (test ImageSet, DataInfo), rebuilt as training built it
    (`load_splits` of `run_train_config`: its dataset, split_seed, data_dir, test_fraction, strict_images
    and max_test_images subset). `run` and the keywords as in `run_train_config`."""
    splits = load_splits(run_train_config(run, data_dir=data_dir, max_test_images=max_test_images,
                                          ignore_missing_data_dir=ignore_missing_data_dir))
    return splits.test, splits.info


_TEST_SET_DATA = ("dataset", "data_dir", "split_seed")
_TEST_SET_TRAIN = ("dataset", "split_seed", "test_fraction", "strict_images", "max_test_images")


def run_test_set_sections(config_json: dict) -> dict:
    """The parts of a config.json that its run's test set depends on, as a config.json value of their own
    (`run_test_set` reads it like the whole): runs evaluated on the same images give equal values, so a
    cache of test sets keyed on it (the dashboard's) loads a dataset once for all of its runs."""
    data_values = config_json.get("data") or {}
    train_values = stored_train_values(config_json.get("train"))
    return {"data": {key: data_values[key] for key in _TEST_SET_DATA if key in data_values},
            "train": {key: train_values[key] for key in _TEST_SET_TRAIN if key in train_values}}


class NoValidationSlice(ValueError):
    """A run without a held-out validation slice (trained before it existed, or with fraction 0)."""


def run_validation_set(run_path: str | os.PathLike, *, data_dir: str | None = None):
    """THE held-out validation slice of a run, rebuilt exactly from its config.json: (ImageSet, DataInfo).

    Rebuilt from the recorded data.validation (fraction, seed) on the run's dataset and split seed, and
    checked against its recorded size. NoValidationSlice (a ValueError) says why a run has none; a
    dataset that changed since training is a ValueError too.
    """
    from bntt_core import data

    config_json = read_config(run_path)
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
