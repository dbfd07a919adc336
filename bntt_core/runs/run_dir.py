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

Every file except the append-only log is written atomically: to a temporary file in the same folder,
then `os.replace`, so a reader (or a run killed with kill -9) never sees half a file.

    run = load_run("runs/quickstart")             # Run(path, config, spec, info, model, metrics)
    logits = run.model(images)                    # the model is in eval mode, on `device`
    df = read_table(run.path, "accuracy_by_step")  # DataFrame or None
    write_table(run.path, "noise", df, {"subset": 1000})
    for entry in find_runs(["runs"]):             # broken runs come back with .error set
        print(entry.name, entry.error or entry.test_accuracy)
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import io
import json
import logging
import os
import platform
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from bntt_core.analysis.tables import ANALYSIS_DIR, META_FILE, TABLES, table_file
from bntt_core.nn.models import ModelSpec, model_from_spec

logger = logging.getLogger(__name__)

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
_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: atomic files get the permissions a plain open() would give them
WEIGHT_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


class RunError(ValueError):
    """A run directory that cannot be read: missing, foreign, damaged or inconsistent."""


class WeightsError(RunError):
    """A weights file that is truncated, foreign, or does not match the run's model."""


# ----------------------------------------------------------------------------------- atomic files
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically: temp file in the same folder, fsync, os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temp_name, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(value: Any) -> Any:
    """numpy scalars/arrays, tensors, paths and tuples-in-disguise as plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (os.PathLike, torch.dtype, torch.device)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def atomic_write_json(path: str | os.PathLike, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=2, allow_nan=True, default=_json_default) + "\n")


def atomic_torch_save(path: str | os.PathLike, value: Any) -> None:
    """torch.save into memory, then an atomic write (checkpoints)."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    atomic_write_bytes(path, buffer.getvalue())


# ------------------------------------------------------------------------------------ provenance
def package_versions() -> dict[str, str]:
    """Versions of Python and the packages a run depends on (from metadata: importing torchvision
    just to ask would cost seconds)."""
    from importlib import metadata

    import numpy

    from bntt_core import __version__

    versions = {"bntt_core": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
                "python": platform.python_version()}
    for package in ("torchvision", "safetensors"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return versions


def git_commit() -> str | None:
    """The commit of the checkout bntt_core runs from, or None outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                                capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


# ---------------------------------------------------------------------------------- data info
def info_to_dict(info: Any) -> dict:
    """A DataInfo as plain JSON values (tuples become lists)."""
    values = dataclasses.asdict(info) if dataclasses.is_dataclass(info) else dict(vars(info))
    return json.loads(json.dumps(values))


def info_from_dict(values: dict) -> Any:
    """Rebuild a DataInfo from config["data"] without loading the dataset."""
    from bntt_core.data import DataInfo

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


def _safetensors_header(path: Path) -> dict:
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
    _safetensors_header(path)
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


def read_metrics(run_path: str | os.PathLike) -> pd.DataFrame | None:
    path = Path(run_path) / METRICS_FILE
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} is not a readable CSV ({exc})") from exc


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
    path = analysis_dir(run_path) / table_file(name)
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} is not a readable CSV ({exc})") from exc


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


# ------------------------------------------------------------------------------------ locks
RUN_LOCK_FILE = ".bntt-writer.lock"  # hidden: a run directory holding only it still counts as empty


class RunLockedError(RunError):
    """Another process is writing this run directory (training, resuming or analysing it)."""


_NO_LOCK_NOTED: list[bool] = []


def _fcntl():
    """The fcntl module, or None where the platform has none (Windows)."""
    try:
        import fcntl
    except ImportError:
        return None
    return fcntl


def _lock_holder(handle) -> str:
    """Who holds a lock, from what its holder wrote into the lock file (may be empty for an instant)."""
    try:
        handle.seek(0)
        holder = json.loads(handle.read() or "{}")
    except (OSError, ValueError):
        holder = {}
    if not isinstance(holder, dict) or "pid" not in holder:
        return "another process"
    where = f" on {holder['host']}" if holder.get("host") and holder.get("host") != platform.node() else ""
    what = f": {holder['command']}" if holder.get("command") else ""
    since = f", since {holder['since']}" if holder.get("since") else ""
    return f"process {holder['pid']}{where} ({holder.get('purpose', 'writing')}{what}{since})"


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, wait: bool, purpose: str = "writing",
              describe: str | None = None) -> Iterator[None]:
    """An OS lock (fcntl.flock) on the file `path` for the life of the block: THE one lock of the project.

    wait=True queues behind the holder (short critical sections: merging analysis/meta.json);
    wait=False raises RunLockedError naming the holder (its pid, command and since when: the holder
    writes them into the file). The kernel drops a flock when its process dies (kill -9 included), so a
    lock file left behind never blocks anyone. The file is removed on release; a waiter that got the
    lock on a removed file tries again (the inode check). Without fcntl (Windows) the block runs
    unlocked, with one logged note; a folder where the lock file cannot be created (read-only) likewise
    runs unlocked (its writes fail with their own error).
    """
    fcntl = _fcntl()
    path = Path(path)
    if fcntl is None:
        if not _NO_LOCK_NOTED:
            _NO_LOCK_NOTED.append(True)
            logger.warning("note: this platform has no fcntl file locks, so two processes writing one run "
                           "directory at once are not prevented here; run one writer per run")
        yield
        return
    while True:
        try:
            handle = open(path, "a+", encoding="utf-8")
        except OSError as exc:
            logger.debug("cannot create the lock file %s (%s); continuing unlocked", path, exc)
            yield
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = _lock_holder(handle)
            handle.close()
            raise RunLockedError(f"{describe or path.parent} is being written by {holder}; wait for it to "
                                 f"finish or stop that process (a lock of a killed process is released "
                                 f"by itself)") from None
        except BaseException:
            handle.close()
            raise
        try:
            same_file = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
        except FileNotFoundError:
            same_file = False
        if same_file:
            break
        handle.close()  # the previous holder removed this file after we opened it: lock the new one
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "purpose": purpose, "command": _command_line(),
                                 "host": platform.node(), "since": now_iso()}))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # still holding the lock: a waiter that opened it retries (the inode check)
        handle.close()  # releases the flock


def _command_line() -> str:
    import shlex
    import sys

    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "/bntt")):
        argv[0] = "bntt"
    text = " ".join(shlex.quote(str(part)) for part in argv)
    return text if len(text) <= 200 else text[:197] + "..."


def run_lock(run_path: str | os.PathLike, purpose: str):
    """One writer per run directory: held for a whole training (train and resume) or analysis. A second
    writer gets RunLockedError naming the holding process. A missing directory is not locked (the
    caller reports it); in a torchrun job only rank 0 locks (it alone writes the run)."""
    run_path = Path(run_path)
    if not run_path.is_dir() or os.environ.get("RANK", "0") != "0":
        return contextlib.nullcontext()
    return file_lock(run_path / RUN_LOCK_FILE, wait=False, purpose=purpose, describe=str(run_path))


def holds_run_lock(purpose: str):
    """Decorator: the function's first argument is a run directory, locked with run_lock for the call."""
    import functools

    def decorate(function):
        @functools.wraps(function)
        def locked(run_path, *args, **kwargs):
            with run_lock(run_path, purpose):
                return function(run_path, *args, **kwargs)
        return locked
    return decorate


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


# ------------------------------------------------------------------------------------ find_runs
@dataclass
class RunEntry:
    """One run directory as listed by find_runs; `error` says why it cannot be loaded (else None)."""

    path: Path
    name: str
    kind: str | None = None
    arch: str | None = None
    dataset: str | None = None
    num_steps: int | None = None
    norm: str | None = None
    spiking: bool | None = None
    test_accuracy: float | None = None
    epochs_done: int | None = None
    created: str | None = None
    preset: str | None = None
    config: dict | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_RUN_MARKERS = (CONFIG_FILE, WEIGHTS_FILE, CHECKPOINT_FILE)


def inspect_run(path: str | os.PathLike) -> RunEntry:
    """Read a run's config and check its weights file without loading the model; never raises."""
    path = Path(path)
    entry = RunEntry(path=path, name=path.name)
    try:
        config = read_config(path)
        entry.config = config
        model = config.get("model") or {}
        data = config.get("data") or {}
        result = config.get("result") or {}
        train = config.get("train") or {}
        entry.kind = config.get("kind")
        entry.arch, entry.num_steps = model.get("arch"), model.get("num_steps")
        entry.norm, entry.spiking = model.get("norm"), model.get("spiking")
        entry.dataset = data.get("dataset")
        entry.test_accuracy, entry.epochs_done = result.get("test_accuracy"), result.get("epochs_done")
        entry.created, entry.preset = config.get("created"), train.get("preset")
        spec_from_config(config)
        weights_path = path / config["weights"].get("file", WEIGHTS_FILE)
        if not weights_path.is_file():
            if (path / CHECKPOINT_FILE).is_file():
                raise RunError(f"training not finished; resume with: bntt train --resume {path}")
            raise RunError(f"weights file {weights_path.name} is missing")
        header = _safetensors_header(weights_path)
        if not any(key != "__metadata__" for key in header):
            raise WeightsError(f"{weights_path.name} holds no tensors")
    except Exception as exc:  # a listing must survive anything a broken folder can throw
        entry.error = str(exc) or type(exc).__name__
    return entry


def _candidate_dirs(root: Path, visited: set[Path]) -> Iterator[Path]:
    """Folders under `root` holding a run marker; symlink loops and unreadable folders are skipped."""
    try:
        key = root.resolve()
        if key in visited:
            return
        visited.add(key)
        if any((root / marker).exists() for marker in _RUN_MARKERS):
            yield root
            return  # a run's own subfolders (analysis/) are not runs
        children = sorted(child for child in root.iterdir() if child.is_dir() and not child.name.startswith("."))
    except (OSError, RuntimeError):
        return
    for child in children:
        yield from _candidate_dirs(child, visited)


def find_runs(roots: str | os.PathLike | Iterable[str | os.PathLike]) -> list[RunEntry]:
    """Every run directory under `roots` (searched recursively; a root may itself be a run), sorted by
    path. Broken or foreign runs are entries with `.error` set; missing roots are skipped."""
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    visited: set[Path] = set()
    entries = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for folder in _candidate_dirs(root, visited):
            entries.append(inspect_run(folder))
    return sorted(entries, key=lambda entry: str(entry.path))
