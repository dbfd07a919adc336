"""γ through training: how BNTT's per-step scale γ_t took shape, epoch by epoch.

`bntt train` writes `RUN/gamma_history.csv` for every network with BNTT layers: after initialisation
(epoch 0) and after every epoch, one row per (layer, step t) summarising γ over the layer's channels —
mean, std, the percentiles TensorBoard's distribution view draws (min, 7, 16, 31, 50, 69, 84, 93, max) and
a histogram on a fixed grid, so that every epoch's histogram shares its bins and an animation over epochs
does not jump. A few hundred rows for the CPU presets (epochs+1 · layers · T); old runs have no file and
load as before (`read_gamma_history` → None).

    rows = gamma_summary(model, epoch=3)             # one epoch's rows (empty for a net without BNTT)
    history = read_gamma_history("runs/my-run")      # the whole table, or None
    gamma_mean_at(history, epoch=3)                  # layer, t, mean_gamma: what the heatmap and exit rule read
    exit_step_by_epoch(history, 0.1)                 # epoch, exit_step: the paper's exit step as training went
    histogram_at(history, epoch=3, layer="conv1", t=5)   # (bin left edges, counts)

Run the tests: .venv/bin/python -m pytest tests/test_gamma_history.py -q
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from bntt_core.analysis import early_exit
from bntt_core.nn.norms import BNTT

GAMMA_HISTORY_FILE = "gamma_history.csv"
# The percentiles of TensorBoard's distribution view (its "basis points" 0, 668, 1587, 3085, 5000, …, 10000)
PERCENTILES = {"min": 0.0, "q07": 6.68, "q16": 15.87, "q31": 30.85, "q50": 50.0, "q69": 69.15, "q84": 84.13,
               "q93": 93.32, "max": 100.0}
# One bin grid for every epoch, layer and step: γ starts at 1 and, in the runs we have trained, stays within
# [−0.15, 1.05]; a value outside [BIN_LOW, BIN_LOW + BINS·BIN_WIDTH) is counted in the end bin (min and max
# still give the true extremes).
BIN_LOW, BIN_WIDTH, BINS = -0.5, 0.05, 40
BIN_COLUMNS = tuple(f"h{i:02d}" for i in range(BINS))
SUMMARY_COLUMNS = ("epoch", "layer", "t", "channels", "mean", "std", *PERCENTILES, "bin_low", "bin_width")
COLUMNS = (*SUMMARY_COLUMNS, *BIN_COLUMNS)


def gamma_summary(model: nn.Module, epoch: int) -> pd.DataFrame:
    """The rows of one epoch: γ of every BNTT layer summarised over channels per step (columns COLUMNS;
    no rows for a network without BNTT layers)."""
    frames = []
    norm_layers = model.norm_layers() if hasattr(model, "norm_layers") else {}
    for name, norm in norm_layers.items():
        if not isinstance(norm, BNTT):
            continue
        gamma = norm.weight.detach().to("cpu", torch.float64).numpy()  # [T, C]
        steps, channels = gamma.shape
        table = {"epoch": np.full(steps, int(epoch)), "layer": name, "t": np.arange(1, steps + 1),
                 "channels": np.full(steps, channels), "mean": gamma.mean(1),
                 "std": gamma.std(1, ddof=0)}
        quantiles = np.percentile(gamma, list(PERCENTILES.values()), axis=1)  # [9, T]
        table.update(dict(zip(PERCENTILES, quantiles, strict=True)))
        table["bin_low"], table["bin_width"] = BIN_LOW, BIN_WIDTH
        bins = np.clip(np.floor((gamma - BIN_LOW) / BIN_WIDTH), 0, BINS - 1).astype(np.int64)  # [T, C]
        counts = np.zeros((steps, BINS), dtype=np.int64)  # [T, BINS]
        np.add.at(counts, (np.repeat(np.arange(steps), channels), bins.reshape(-1)), 1)
        table.update({column: counts[:, i] for i, column in enumerate(BIN_COLUMNS)})
        frames.append(pd.DataFrame(table))
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(COLUMNS)]


def has_bntt(model: nn.Module) -> bool:
    """Whether the network has at least one BNTT layer (only then is there a γ history to keep)."""
    norm_layers = model.norm_layers() if hasattr(model, "norm_layers") else {}
    return any(isinstance(norm, BNTT) for norm in norm_layers.values())


def read_gamma_history(run_path: str | os.PathLike) -> pd.DataFrame | None:
    """The run's γ history, or None when it has none (a run from before the table, or not BNTT).
    A damaged file raises ValueError naming it."""
    path = Path(run_path) / GAMMA_HISTORY_FILE
    if not path.is_file():
        return None
    try:
        history = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} cannot be read as a table ({exc}); delete it — training and analysis do "
                         f"not need it") from exc
    check_history(history, path)
    return history


def check_history(history: pd.DataFrame, where: str | os.PathLike = "the γ history") -> None:
    """ValueError naming what is missing when `history` is not a γ-history table."""
    missing = [column for column in COLUMNS if column not in history.columns]
    if missing:
        raise ValueError(f"{where} is not a γ-history table: it lacks columns {missing[:6]}"
                         f"{' …' if len(missing) > 6 else ''}")


def merge_epoch(history: pd.DataFrame | None, rows: pd.DataFrame) -> pd.DataFrame:
    """`history` with the epoch of `rows` replaced by `rows` (a resumed run re-writes its last epoch)."""
    if history is None or history.empty:
        return rows.reset_index(drop=True)
    if rows.empty:
        return history.reset_index(drop=True)
    epoch = int(rows["epoch"].iloc[0])
    kept = history[history["epoch"] != epoch]
    return pd.concat([kept, rows], ignore_index=True).sort_values("epoch", kind="stable").reset_index(drop=True)


def epochs(history: pd.DataFrame) -> list[int]:
    """The epochs the table holds, ascending (0 = at initialisation)."""
    return sorted(int(e) for e in history["epoch"].unique())


def _at_epoch(history: pd.DataFrame, epoch: int) -> pd.DataFrame:
    rows = history[history["epoch"] == int(epoch)]
    if rows.empty:
        raise ValueError(f"the γ history has no epoch {epoch}; it holds epochs {epochs(history)}")
    return rows


def gamma_mean_at(history: pd.DataFrame, epoch: int) -> pd.DataFrame:
    """The gamma_mean table (layer, t, mean_gamma) of one epoch: what the heatmap and the exit rule read."""
    rows = _at_epoch(history, epoch)
    return rows[["layer", "t", "mean"]].rename(columns={"mean": "mean_gamma"}).reset_index(drop=True)


def exit_step_by_epoch(history: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The paper's exit step at τ = `threshold` after every epoch: columns epoch, exit_step, num_steps.
    All epochs at once (a slider in the explorer redraws it): early_exit's rule on the peak over layers."""
    threshold = float(threshold)
    if not np.isfinite(threshold):
        raise ValueError(f"the threshold must be finite; got {threshold}")
    cube = history.pivot_table(index="epoch", columns=["t", "layer"], values="mean", aggfunc="first")
    steps = sorted(int(t) for t in cube.columns.get_level_values("t").unique())
    layers = cube.columns.get_level_values("layer").unique()
    if steps != list(range(1, len(steps) + 1)) or cube.isna().to_numpy().any() or cube.shape[1] != len(steps) * len(layers):
        raise ValueError(f"the γ history must hold every layer at steps 1..T after every epoch; it has steps "
                         f"{steps[:3]}…{steps[-3:]} and gaps at epochs "
                         f"{cube.index[cube.isna().any(axis=1)].tolist()}")
    values = cube.reindex(columns=pd.MultiIndex.from_product([steps, layers])).to_numpy(np.float64)
    peaks = values.reshape(len(cube), len(steps), len(layers)).max(-1)  # [E, T]: max_l g(l, t) after each epoch
    exit_at = early_exit.exit_steps_from_peaks(peaks, np.array([threshold]))[0]  # [E]
    return pd.DataFrame({"epoch": cube.index.astype(int), "exit_step": exit_at, "num_steps": len(steps)})


def histogram_at(history: pd.DataFrame, *, epoch: int, layer: str, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(left bin edges [BINS], channel counts [BINS]) of one layer and step after one epoch."""
    rows = _at_epoch(history, epoch)
    row = rows[(rows["layer"] == layer) & (rows["t"] == int(t))]
    if row.empty:
        raise ValueError(f"the γ history has no layer {layer!r} at step {t} (layers "
                         f"{list(dict.fromkeys(rows['layer']))}, steps 1..{int(rows['t'].max())})")
    row = row.iloc[0]
    left = float(row["bin_low"]) + float(row["bin_width"]) * np.arange(BINS)
    return left, row[list(BIN_COLUMNS)].to_numpy(dtype=np.int64)
