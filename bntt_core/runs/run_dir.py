"""The run directory: the one self-describing, portable record of a trained (or converted) model.

Everything a user trains ends up here; the dashboard, the notebooks and the analysis read only this.

    RUN/config.json        format "bntt-run/2": kind ("trained" | "converted"), model (ModelSpec dict),
                           data (dataset, data_dir, split_seed and every DataInfo field: mean, std,
                           class_names, ...), train (the full TrainConfig), weights {file, dtype},
                           versions, git_commit, created, result {test_accuracy, epochs_done, wall_seconds}
    RUN/weights.safetensors   the final weights (safetensors: loading never unpickles anything)
    RUN/metrics.csv        epoch, lr, train_loss, train_acc, test_acc, seconds, images_per_s
    RUN/train.log          human-readable log (append-only)
    RUN/checkpoint.pt      resume state (torch.load(weights_only=True)); removed when training completes
    RUN/analysis/<table>.csv + analysis/meta.json   (the tables of bntt_core/analysis/tables.py)

Every file except the append-only log is written atomically (files.py); one process writes a run at a
time (locks.py); listing.py finds and lists runs.

    run = load_run("runs/quickstart")             # Run(path, config, spec, info, model, metrics)
    logits = run.model(images)                    # the model is in eval mode, on `device`
    df = read_table(run.path, "accuracy_by_step")  # DataFrame or None
    write_table(run.path, "noise", df, {"subset": 1000})
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from bntt_core.analysis.tables import ANALYSIS_DIR, META_FILE, TABLES, table_file
from bntt_core.nn.models import ModelSpec, model_from_spec
from bntt_core.runs.files import (
    RunError,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    git_commit,
    now_iso,
    package_versions,
)
from bntt_core.runs.locks import file_lock

RUN_FORMAT = "bntt-run/2"  # /2: norm "bn" is the paper's per-step BN (StepBN); in /1 it was "bn-joint"
OLD_RUN_FORMATS = ("bntt-run/1",)  # still read: upgraded in memory by upgrade_settings
RUN_KINDS = ("trained", "converted")
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
METRICS_FILE = "metrics.csv"
LOG_FILE = "train.log"
CHECKPOINT_FILE = "checkpoint.pt"
METRICS_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_acc", "seconds", "images_per_s")
WEIGHTS_FORMAT = "bntt-weights/1"
WEIGHT_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


class WeightsError(RunError):
    """A weights file that is truncated, foreign, or does not match the run's model."""


# ---------------------------------------------------------------------------------- data info
def info_to_dict(info: Any) -> dict:
    """A DataInfo as plain JSON values (tuples become lists)."""
    values = dataclasses.asdict(info) if dataclasses.is_dataclass(info) else dict(vars(info))
    return json.loads(json.dumps(values))


def info_from_dict(values: dict) -> Any:
    """Rebuild a DataInfo from config["data"] without loading the dataset."""
    from bntt_core.data.core import DataInfo

    if not dataclasses.is_dataclass(DataInfo):
        raise RunError("bntt_core.data.DataInfo is not a dataclass; cannot rebuild it from a config")
    kwargs = {}
    for field in dataclasses.fields(DataInfo):
        if field.name not in values:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise RunError(f"config.json data section lacks {field.name!r}")
            continue
        value = values[field.name]
        kwargs[field.name] = tuple(value) if isinstance(value, list) else value
    return DataInfo(**kwargs)


def data_section(info: Any, *, dataset: str, data_dir: str | None, split_seed: int, **extra) -> dict:
    """config["data"]: what load_data was called with, plus every DataInfo field."""
    values = {"dataset": dataset, "data_dir": data_dir, "split_seed": split_seed}
    values.update(info_to_dict(info))
    values.update(extra)
    return values


def make_config(*, kind: str, spec: ModelSpec, data: dict, train: dict | None, weights_dtype: str = "float32",
                result: dict | None = None, **extra) -> dict:
    """A complete config.json value (format RUN_FORMAT). `extra` adds keys, e.g. conversion settings."""
    if kind not in RUN_KINDS:
        raise RunError(f"unknown run kind {kind!r}; choose one of {list(RUN_KINDS)}")
    if weights_dtype not in WEIGHT_DTYPES:
        raise RunError(f"unknown weights dtype {weights_dtype!r}; choose one of {list(WEIGHT_DTYPES)}")
    config = {
        "format": RUN_FORMAT,
        "kind": kind,
        "model": spec.to_dict(),
        "data": data,
        "train": train,
        "weights": {"file": WEIGHTS_FILE, "dtype": weights_dtype},
        "versions": package_versions(),
        "git_commit": git_commit(),
        "created": now_iso(),
        "result": result,
    }
    config.update(extra)
    return config


def write_config(run_path: str | os.PathLike, config: dict) -> None:
    atomic_write_json(Path(run_path) / CONFIG_FILE, config)


def upgrade_settings(values: dict | None, written_format: str) -> dict | None:
    """THE one place that maps the settings of an older run format to today's names: a config's model
    or train section (or a checkpoint's train settings) written under `written_format`.

    bntt-run/1 → /2: norm "bn" (then: one BatchNorm with statistics over all T·B jointly) is today's
    "bn-joint"; "bn" now names the paper's standard BN (statistics per step, `norms.StepBN`)."""
    if written_format in OLD_RUN_FORMATS and isinstance(values, dict) and values.get("norm") == "bn":
        return {**values, "norm": "bn-joint"}
    return values


def read_config(run_path: str | os.PathLike) -> dict:
    """config.json, checked for this project's format; RunError otherwise. A config of an older format
    (OLD_RUN_FORMATS) comes back upgraded to RUN_FORMAT (`upgrade_settings`), with the format it was
    written in as "format_upgraded_from"."""
    run_path = Path(run_path)
    if not run_path.is_dir():
        raise RunError(f"{run_path} is not a directory (expected a run directory with {CONFIG_FILE})")
    config_path = run_path / CONFIG_FILE
    if not config_path.is_file():
        raise RunError(f"{run_path} is not a run directory: it has no {CONFIG_FILE}")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{config_path} is not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") not in (RUN_FORMAT, *OLD_RUN_FORMATS):
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise RunError(f"{config_path} is not a bntt run config (format {found!r}, expected {RUN_FORMAT!r})")
    if config["format"] != RUN_FORMAT:
        written = config["format"]
        for section in ("model", "train"):
            if section in config:
                config[section] = upgrade_settings(config[section], written)
        config["format"], config["format_upgraded_from"] = RUN_FORMAT, written
    for key in ("kind", "model", "data", "weights"):
        if key not in config:
            raise RunError(f"{config_path} lacks the {key!r} section")
    if config["kind"] not in RUN_KINDS:
        raise RunError(f"{config_path}: unknown run kind {config['kind']!r}")
    return config


def spec_from_config(config: dict) -> ModelSpec:
    try:
        spec = ModelSpec.from_dict(config["model"])
        spec.validate()
    except (TypeError, ValueError) as exc:
        raise RunError(f"config.json model section is not a valid ModelSpec: {exc}") from exc
    return spec


# ------------------------------------------------------------------------------------ weights
def save_weights(model: nn.Module, path: str | os.PathLike, dtype: str = "float32") -> None:
    """The model's state dict as safetensors; floating tensors cast to `dtype` (integers kept)."""
    from safetensors.torch import save

    if dtype not in WEIGHT_DTYPES:
        raise WeightsError(f"unknown weights dtype {dtype!r}; choose one of {list(WEIGHT_DTYPES)}")
    target = WEIGHT_DTYPES[dtype]
    tensors = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if tensor.is_floating_point():
            tensor = tensor.to(target)
        tensors[name] = tensor.contiguous().clone()  # clone: safetensors refuses shared storage
    atomic_write_bytes(path, save(tensors, metadata={"format": WEIGHTS_FORMAT, "dtype": dtype}))


def round_to_dtype(model: nn.Module, dtype: str) -> None:
    """Round the model's floating tensors to `dtype` in place (kept in their own dtype): afterwards the
    model computes exactly what a model loaded from weights saved with that dtype computes."""
    target = WEIGHT_DTYPES[dtype]
    if target == torch.float32:
        return
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(target))


def safetensors_header(path: Path) -> dict:
    """Parse the safetensors header and check that the file holds every byte it announces."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise WeightsError(f"{path} is truncated or not a safetensors file ({size} bytes)")
        (header_length,) = struct.unpack("<Q", prefix)
        if header_length > min(size - 8, 100_000_000):
            raise WeightsError(f"{path} is not a safetensors file (or its header is damaged)")
        try:
            header = json.loads(handle.read(header_length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeightsError(f"{path} is not a safetensors file (unreadable header)") from exc
    if not isinstance(header, dict):
        raise WeightsError(f"{path} is not a safetensors file (unreadable header)")
    end = max((entry["data_offsets"][1] for key, entry in header.items()
               if key != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry), default=0)
    if size < 8 + header_length + end:
        raise WeightsError(f"{path} is truncated: {size} bytes, the header announces {8 + header_length + end}")
    return header


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file (never unpickles); WeightsError for truncated or foreign files."""
    from safetensors.torch import load

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file {path} is missing")
    safetensors_header(path)
    try:
        return load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own error types; name the file either way
        raise WeightsError(f"{path} is not a readable safetensors file ({exc})") from exc


def load_weights_into(model: nn.Module, path: str | os.PathLike) -> None:
    """Copy the file's tensors into `model` (cast to the model's dtypes); the names and shapes must match."""
    tensors = read_weights(path)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = [f"{name} {tuple(tensors[name].shape)} ≠ {tuple(expected[name].shape)}"
                   for name in sorted(set(expected) & set(tensors)) if tensors[name].shape != expected[name].shape]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        if wrong_shape:
            parts.append(f"shape mismatch {_few(wrong_shape)}")
        raise WeightsError(f"{path} does not match the model in config.json ({'; '.join(parts)})")
    model.load_state_dict(tensors, strict=True)


def _few(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


# ------------------------------------------------------------------------------------ load_run
@dataclass
class Run:
    """A loaded run: its config, the ModelSpec, the DataInfo (no dataset loaded), the model in eval
    mode, and the per-epoch metrics (None for runs without training, e.g. converted ones)."""

    path: Path
    config: dict
    spec: ModelSpec
    info: Any  # bntt_core.data.DataInfo
    model: nn.Module
    metrics: pd.DataFrame | None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kind(self) -> str:
        return self.config["kind"]

    @property
    def test_accuracy(self) -> float | None:
        result = self.config.get("result") or {}
        return result.get("test_accuracy")


def _read_csv(path: Path) -> pd.DataFrame | None:
    """The CSV at `path`, None when it is not there; a broken file is one RunError naming it."""
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} is not a readable CSV ({exc})") from exc


def read_metrics(run_path: str | os.PathLike) -> pd.DataFrame | None:
    return _read_csv(Path(run_path) / METRICS_FILE)


def load_run(path: str | os.PathLike, device: str | torch.device = "cpu") -> Run:
    """Rebuild a run's model from config.json and weights.safetensors; RunError if anything is off."""
    run_path = Path(path)
    config = read_config(run_path)
    spec = spec_from_config(config)
    info = info_from_dict(config["data"])
    weights_path = run_path / config["weights"].get("file", WEIGHTS_FILE)
    if not weights_path.is_file() and (run_path / CHECKPOINT_FILE).is_file():
        raise RunError(f"{run_path} has not finished training (only {CHECKPOINT_FILE}); "
                       f"resume it with: bntt train --resume {run_path}")
    model = model_from_spec(spec)
    load_weights_into(model, weights_path)
    model.to(torch.device(device)).eval()
    return Run(path=run_path, config=config, spec=spec, info=info, model=model, metrics=read_metrics(run_path))


# ------------------------------------------------------------------------------------ tables
def analysis_dir(run_path: str | os.PathLike) -> Path:
    return Path(run_path) / ANALYSIS_DIR


def read_table(run_path: str | os.PathLike, name: str) -> pd.DataFrame | None:
    """RUN/analysis/<name>.csv as a DataFrame, or None if the analysis has not written it."""
    return _read_csv(analysis_dir(run_path) / table_file(name))


def read_meta(run_path: str | os.PathLike) -> dict:
    """RUN/analysis/meta.json: {table name: meta dict}; {} when absent."""
    path = analysis_dir(run_path) / META_FILE
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunError(f"{path} is not valid JSON ({exc})") from exc
    return meta if isinstance(meta, dict) else {}


def write_table(run_path: str | os.PathLike, name: str, df: pd.DataFrame, meta: dict) -> Path:
    """Write RUN/analysis/<name>.csv atomically and merge `meta` into analysis/meta.json[name]."""
    file_name = table_file(name)
    missing = [column for column in TABLES[name] if column not in df.columns]
    if missing:
        raise ValueError(f"table {name!r} lacks the required columns {missing} (has {list(df.columns)})")
    run_path = Path(run_path)
    if not run_path.is_dir():
        raise RunError(f"{run_path} is not a run directory")
    folder = analysis_dir(run_path)
    folder.mkdir(exist_ok=True)
    table_path = folder / file_name
    atomic_write_text(table_path, df.to_csv(index=False))
    with file_lock(folder / ".meta.lock", wait=True, purpose="merging analysis/meta.json"):
        merged = read_meta(run_path)
        entry = {"written": now_iso(), "rows": int(len(df)), "bntt_core": package_versions()["bntt_core"]}
        entry.update(meta)
        merged[name] = entry
        atomic_write_json(folder / META_FILE, merged)
    return table_path
