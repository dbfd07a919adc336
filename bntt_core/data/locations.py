"""Where data are looked for, downloaded to and cached: the repository root, the search roots
($BNTT_DATA_DIR, data/, ../shared/data, the torchvision root) and the decoded-cache folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout this package runs from (the folder holding pyproject.toml and bntt_core/: data/, notebooks/,
    the shipped runs), or, when bntt_core is installed elsewhere, the checkout the current directory is in, else
    the current directory."""
    candidates = [Path(__file__).resolve().parents[2], Path.cwd().resolve(), *Path.cwd().resolve().parents]
    for folder in candidates:
        if (folder / "pyproject.toml").is_file() and (folder / "bntt_core").is_dir():
            return folder
    return Path.cwd().resolve()


def cache_dir() -> Path:
    """Where decoded datasets are cached: $BNTT_CACHE_DIR, default ~/.cache/bntt."""
    return Path(os.environ.get("BNTT_CACHE_DIR") or Path.home() / ".cache" / "bntt").expanduser()


def _torchvision_root() -> Path:
    return Path.home() / ".cache" / "bntt" / "torchvision"


def search_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for data, in order (see the module docstring)."""
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    roots: list[Path] = []
    if os.environ.get("BNTT_DATA_DIR"):
        roots.append(Path(os.environ["BNTT_DATA_DIR"]).expanduser())
    roots += [project_root() / "data", project_root().parent / "shared" / "data", _torchvision_root()]
    unique: list[Path] = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def _download_root(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("BNTT_DATA_DIR"):
        return Path(os.environ["BNTT_DATA_DIR"]).expanduser()
    return _torchvision_root()
