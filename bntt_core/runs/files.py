"""The run directory's file layer: atomic writes, JSON, the provenance every run records, and RunError.

Every file of a run except the append-only log is written atomically: to a temporary file in the same
folder, then `os.replace`, so a reader (or a run killed with kill -9) never sees half a file.

    atomic_write_json(path, value)       # also: atomic_write_bytes, atomic_write_text, atomic_torch_save
    package_versions(), git_commit(), now_iso()   # config.json's versions, git_commit and created
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: atomic files get the permissions a plain open() would give them


class RunError(ValueError):
    """A run directory that cannot be read: missing, foreign, damaged or inconsistent."""


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
