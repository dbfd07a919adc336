"""Listing runs: every run directory under some roots, checked without loading a model, and the
one-line descriptions the dashboard and the notebooks show for them.

    for entry in find_runs(["runs"]):             # RunEntry; broken runs come back with .error set
        print(entry.name, entry.error or entry.test_accuracy)
    cards = describe_runs([Path("runs")])         # plain dicts with the state of each run's analysis
    run_label(card["summary"]), run_method(card["summary"])   # 'vgg9 · bntt · T 25 · cifar10', 'bntt'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bntt_core.analysis.tables import ANALYSIS_DIR, table_file
from bntt_core.runs.run_dir import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    RunError,
    WeightsError,
    read_config,
    safetensors_header,
    spec_from_config,
)


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
        header = safetensors_header(weights_path)
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


# ------------------------------------------------------------------------------ run descriptions
def describe_runs(roots: list[Path]) -> list[dict]:
    """One plain dict per run directory under `roots` (via `bntt_core.runs.find_runs`): path, name,
    root, error (None when healthy), summary (arch, dataset, norm, T, kind, test accuracy, ...), and
    the state of its analysis (`bntt_core.analysis.analysis_status`): tables (present and with rows),
    missing (never computed), stale (made for other weights or another config) and skipped (written
    empty because they do not apply, with the reason). Broken or foreign runs keep their error.
    """
    # not at the top: the analysis imports the runs package
    from bntt_core.analysis.stored import analysis_status

    cards = []
    for entry in find_runs(list(roots)):
        path = Path(entry.path)
        root = next((str(r) for r in roots if is_inside(path, Path(r))), str(path.parent))
        card = {"path": str(path), "name": _display_name(path, Path(root)), "root": root, "error": entry.error,
                "summary": {}, "tables": (), "missing": (), "stale": (), "skipped": {}}
        if entry.error is None:
            card["summary"] = {"kind": entry.kind, "arch": entry.arch, "dataset": entry.dataset, "norm": entry.norm,
                               "spiking": entry.spiking, "num_steps": entry.num_steps,
                               "test_accuracy": entry.test_accuracy, "epochs_done": entry.epochs_done,
                               "created": entry.created, "preset": entry.preset,
                               "seed": ((entry.config or {}).get("train") or {}).get("seed")}
            try:
                status = analysis_status(path)
            except Exception as problem:  # an unreadable meta.json must not hide the run
                card["error"] = f"its analysis cannot be read: {problem}"
            else:
                card["tables"] = tuple(name for name in status.present
                                       if name not in status.stale and _has_rows(path / ANALYSIS_DIR / table_file(name)))
                card["missing"], card["stale"] = tuple(status.missing), tuple(status.stale)
                card["skipped"] = {name: str(why) for name, why in status.skipped.items()}
        cards.append(card)
    return cards


def _has_rows(csv_path: Path) -> bool:
    """True when a CSV table holds at least one data row (analysis writes tables that do not apply empty)."""
    try:
        with open(csv_path, encoding="utf-8") as handle:
            handle.readline()
            return bool(handle.readline().strip())
    except UnicodeDecodeError:
        return True  # damaged: the view that reads it says so
    except OSError:
        return False


def is_inside(path: Path, root: Path) -> bool:
    """True when the resolved `path` is `root` or lies below it."""
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _display_name(path: Path, root: Path) -> str:
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return path.name
    return str(relative) if str(relative) != "." else path.name


def run_label(summary: dict) -> str:
    """A short description of a run from its summary: 'vgg9 · bntt · T 25 · cifar10'."""
    if not summary:
        return ""
    if summary.get("spiking") is False:
        model = f"{summary.get('arch')} ANN"
    else:
        model = f"{summary.get('arch')} · {summary.get('norm')} · T {summary.get('num_steps')}"
    if summary.get("kind") == "converted":
        model += " · converted"
    return f"{model} · {summary.get('dataset')}"


def run_method(summary: dict) -> str:
    """The method a run stands for on the Compare page: bntt, bn, ln, none, ann or converted."""
    if summary.get("spiking") is False:
        return "ann"
    if summary.get("kind") == "converted":
        return "converted"
    return str(summary.get("norm") or "none")
