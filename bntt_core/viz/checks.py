"""The input checks of the figure builders, and the small table helpers they share.

A table without a required column (bntt_core.analysis.tables.TABLES), without rows, with text in a numeric
column or with two rows for one key (TABLE_KEYS) is a ValueError naming the table, the run and what is
wrong, raised before anything is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bntt_core.analysis.tables import TABLES

# The columns that identify one row of each table: a repeated key means a malformed table.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "accuracy_by_step": ("t",),
    "spike_activity": ("layer", "t"),
    "spike_rate": ("layer",),
    "bn_input": ("layer", "t"),
    "bn_input_hist": ("layer", "t", "bin_left"),
    "gamma": ("layer", "t", "channel"),
    "gamma_mean": ("layer", "t"),
    "early_exit": ("threshold",),
    "dynamic_exit": ("confidence",),
    "noise": ("mode", "sigma"),  # an old table without `mode` is read as clipped (tables.noise_table)
    "fgsm": ("epsilon",),
    "energy": ("layer",),
}


def _where(table: str, run: str | None) -> str:
    return f"table {table!r}" + (f" of run {run!r}" if run is not None else "")


def _check_table(df: object, table: str, *, run: str | None = None,
                 required: Sequence[str] | None = None, numeric: Sequence[str] = ()) -> pd.DataFrame:
    """Validate one table and return a copy with `numeric` columns as floats.

    Missing columns and empty tables are ValueErrors; non-numbers in a numeric column are too (a
    blank cell is NaN and allowed: e.g. running_mean of a BNTT run).
    """
    where = _where(table, run)
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{where} must be a pandas DataFrame; got {type(df).__name__}")
    required = TABLES[table] if required is None else tuple(required)
    if len(df) == 0:
        raise ValueError(f"{where} is empty (no rows): nothing to draw")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"{where} is missing required columns {missing}; it has {list(df.columns)}")
    out = df.copy()
    for column in numeric:
        if pd.api.types.is_numeric_dtype(out[column]):  # the usual case, and the fast one on big tables
            out[column] = out[column].astype(float)
            continue
        values = pd.to_numeric(out[column], errors="coerce")
        bad = values.isna() & out[column].notna() & (out[column].astype(str).str.strip() != "")
        if bad.any():
            raise ValueError(f"{where}: column {column!r} must be numeric; "
                             f"found {out.loc[bad, column].head(3).tolist()}")
        out[column] = values.astype(float)
    if "layer" in out.columns:
        out["layer"] = out["layer"].astype(str)
    keys = TABLE_KEYS.get(table)
    if keys and all(k in out.columns for k in keys) and out.duplicated(list(keys)).any():
        raise ValueError(f"{where} has several rows for the same {', '.join(keys)}; expected one")
    return out


def _check_runs(tables: object, table: str, numeric: Sequence[str]) -> dict[str, pd.DataFrame]:
    """Validate a {run label: table} mapping; the labels become the trace and panel names."""
    if isinstance(tables, pd.DataFrame):
        raise TypeError(f"expected a dict {{run label: {table} table}}; got one DataFrame "
                        f"(wrap it as {{'my run': df}})")
    if not isinstance(tables, Mapping):
        raise TypeError(f"expected a dict {{run label: {table} table}}; got {type(tables).__name__}")
    if not tables:
        raise ValueError(f"no runs given: need at least one {table!r} table")
    return {str(label): _check_table(df, table, run=str(label), numeric=numeric)
            for label, df in tables.items()}


def _layer_order(*tables: pd.DataFrame) -> list[str]:
    """Layers in order of first appearance: the analysis writes them shallow → deep, and sorting names
    would put conv10 before conv2."""
    order: dict[str, None] = {}
    for df in tables:
        order.update(dict.fromkeys(pd.unique(df["layer"])))
    return list(order)


def _chosen_layers_and_steps(df: pd.DataFrame, where: str, layers: Sequence[str] | None,
                             step: int | None) -> tuple[list[str], list[int]]:
    """(the chosen layers — every layer for None —, the table's steps), checked: one ValueError naming what
    `where` has when a layer or `step` is not in it, or no layer is chosen (for a γ histogram)."""
    available = _layer_order(df)
    layers = available if layers is None else [str(layer) for layer in layers]
    unknown = [layer for layer in layers if layer not in available]
    if unknown:
        raise ValueError(f"layers {unknown} are not in {where}; it has {available}")
    if not layers:
        raise ValueError("no layers chosen for the γ histogram")
    steps = sorted(int(t) for t in df["t"].unique())
    if step is not None and int(step) not in steps:
        raise ValueError(f"step {step} is not in {where}; steps recorded: {steps[0]}..{steps[-1]}")
    return layers, steps


def _percent_factor(*columns: pd.Series) -> float:
    """100 when every accuracy given is a fraction in [0, 1], else 1 (already percent)."""
    finite = [c.dropna() for c in columns]
    largest = max((float(c.max()) for c in finite if len(c)), default=0.0)
    return 100.0 if largest <= 1.0 else 1.0


def _as_1d(name: str, values: object) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array [T]; got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: nothing to draw")
    return array


def _pivot(df: pd.DataFrame, value: str) -> tuple[list[str], list[float], np.ndarray]:
    layers = _layer_order(df)
    grid = df.pivot(index="layer", columns="t", values=value).reindex(layers)
    grid = grid.reindex(sorted(grid.columns), axis=1)
    return layers, list(grid.columns), grid.to_numpy(dtype=float)
