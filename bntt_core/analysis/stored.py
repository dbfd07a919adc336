"""What RUN/analysis holds, and whether it still fits the run: the model hash every table records, the
status of each table (present, missing, stale, skipped) and read_analysis.

    read_analysis("runs/first")        # {name: DataFrame}; StaleAnalysisError when made for another model
    analysis_status("runs/first").stale
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bntt_core.analysis.tables import TABLES
from bntt_core.runs import run_dir as runs


class StaleAnalysisError(ValueError):
    """Analysis tables made for another model (config.json model section or weights changed)."""


def model_hash(run_path: str | os.PathLike) -> str:
    """sha256 of config.json's model section and the weights file: what the analysis was made from."""
    config = runs.read_config(run_path)
    model = config["model"]
    if config.get("format_upgraded_from"):  # the section as written, before runs.upgrade_settings renamed its norm
        model = json.loads((Path(run_path) / runs.CONFIG_FILE).read_text(encoding="utf-8"))["model"]
    digest = hashlib.sha256(json.dumps(model, sort_keys=True).encode())
    weights = Path(run_path) / config["weights"].get("file", runs.WEIGHTS_FILE)
    if not weights.is_file():
        raise runs.WeightsError(f"weights file {weights} is missing")
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class AnalysisStatus:
    """What RUN/analysis holds: tables present, missing, stale (made for another model), skipped."""

    present: list[str]
    missing: list[str]
    stale: list[str]
    skipped: dict[str, str]
    meta: dict

    @property
    def ok(self) -> bool:
        return not self.stale


def analysis_status(path: str | os.PathLike) -> AnalysisStatus:
    """Compare every table's model_hash with the run's current config/weights (never loads the model)."""
    meta = runs.read_meta(path)
    present = [name for name in TABLES if (runs.analysis_dir(path) / f"{name}.csv").is_file()]
    current = model_hash(path)
    stale = [name for name in present if (meta.get(name) or {}).get("model_hash") != current]
    skipped = {name: meta[name]["skipped"] for name in present if (meta.get(name) or {}).get("skipped")}
    return AnalysisStatus(present=present, missing=[name for name in TABLES if name not in present], stale=stale,
                          skipped=skipped, meta=meta)


def read_analysis(path: str | os.PathLike, *, check: bool = True) -> dict[str, pd.DataFrame]:
    """{name: DataFrame} of every analysis table present ({} if none). With check (default), tables made
    for another model config or other weights raise StaleAnalysisError (re-run `bntt analyze RUN`)."""
    status = analysis_status(path)
    if check and status.stale:
        made_for = {(status.meta.get(name) or {}).get("model_hash") for name in status.stale}
        raise StaleAnalysisError(
            f"the analysis of {path} is stale: {', '.join(status.stale)} were made for another model "
            f"(model hash {', '.join(sorted(str(h)[:12] for h in made_for))}; the run is now "
            f"{model_hash(path)[:12]}: its config.json model section or weights changed). "
            f"Re-run: bntt analyze {path}")
    return {name: runs.read_table(path, name) for name in status.present}


def current_table(path: Path, name: str) -> pd.DataFrame | None:
    """The run's table `name` if present, with rows and made for the run's current weights, else None."""
    try:
        status = analysis_status(path)
    except (ValueError, OSError):
        return None
    if name not in status.present or name in status.stale:
        return None
    df = runs.read_table(path, name)
    return df if df is not None and len(df) else None
