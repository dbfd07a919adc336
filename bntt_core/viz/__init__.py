"""Figure builders: the analysis tables of a run (or several runs) drawn as Plotly figures.

Every builder is a pure function — data in, `plotly.graph_objects.Figure` out — with no Streamlit,
notebook or file code, so the dashboard and the notebooks draw exactly the same figures. Inputs are
the tidy tables of `bntt_core.analysis.tables` (one DataFrame, or `dict[run label, DataFrame]` for the figures
that compare runs), `metrics.csv` for training curves, and plain numpy arrays for the teaching figures.

    from bntt_core import viz
    from bntt_core.runs import read_table

    fig = viz.gamma_mean_figure(read_table(run, "gamma_mean"), threshold=0.1)       # Fig 4
    fig = viz.spike_rate_figure({"conversion": a, "surrogate BN": b, "BNTT": c})      # Fig 5
    html = viz.figure_to_html(fig)          # self-contained (plotly.js inline), works offline
    png = viz.figure_to_png(fig, name="fig5")  # bytes; FigureExportError if it cannot be made (retried once)
    csv = viz.figure_data({"BNTT": c})      # the data behind it, with a run column

`exit_step_from_gamma_mean` (the paper's exit rule, from `bntt_core.analysis.early_exit`) is importable from here
too, so a view that draws Fig 4 reports the same exit step the figure annotates.

Builders check their input first: a table without a required column (bntt_core.analysis.tables.TABLES) or
without rows is a ValueError naming the table, the run and what is missing.

One look for every figure: `TEMPLATE` (fonts, background, hover), a colour per method
(`METHOD_COLORS`, picked from a run label by `method_of`) and a shallow→deep colour ramp per layer.
Accuracy columns may hold fractions (0..1) or percentages; figures always show percent.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly
import plotly.colors as plotly_colors
import plotly.graph_objects as go
import plotly.io as pio
import torch
from plotly.subplots import make_subplots

from bntt_core.analysis.early_exit import exit_step_from_gamma_mean  # the paper's rule; re-exported here
from bntt_core.analysis.gamma_history import BIN_COLUMNS, PERCENTILES, exit_step_by_epoch
from bntt_core.analysis.gamma_history import COLUMNS as HISTORY_COLUMNS
from bntt_core.analysis.tables import NOISE_MODE_COLUMN, TABLES, noise_modes, noise_table
from bntt_core.nn.surrogate import SURROGATES, get_surrogate

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------ theme

# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies and in greyscale print.
METHOD_COLORS: dict[str, str] = {
    "bntt": "#0072B2",  # blue: the paper's method, the one every figure is about
    "bn": "#D55E00",  # vermillion: the paper's standard BN (one BN called at every step; surrogate gradient)
    "bn-joint": "#CC6677",  # rose (Tol): one BN with statistics over all T·B jointly (bntt-run/1's "bn")
    "tdbn": "#44AA99",  # teal (Tol): threshold-dependent BN (Zheng et al. 2021)
    "tebn": "#DDAA33",  # ochre (Tol): temporal effective BN (Duan et al. 2022)
    "ln": "#009E73",  # bluish green
    "none": "#7F7F7F",  # grey: no normalisation
    "ann": "#222222",  # near black: the non-spiking reference
    "converted": "#E69F00",  # orange: ANN→SNN conversion
}
METHOD_NAMES: dict[str, str] = {
    "bntt": "BNTT",
    "bn": "BN (paper: per-step batch statistics)",
    "bn-joint": "BN joint (statistics over T·B)",
    "tdbn": "tdBN",
    "tebn": "TEBN",
    "ln": "LN",
    "none": "no normalisation",
    "ann": "ANN",
    "converted": "ANN→SNN conversion",
}
# Colours for runs whose label names no known method; none of them repeats a method colour.
OTHER_RUN_COLORS = ("#CC79A7", "#56B4E9", "#882255", "#117733", "#AA4499", "#332288", "#999933")

FONT_FAMILY = "Inter, 'Segoe UI', 'Helvetica Neue', Arial, sans-serif"


def _build_template() -> go.layout.Template:
    template = go.layout.Template(pio.templates["plotly_white"])
    template.layout.font = dict(family=FONT_FAMILY, size=14, color="#222222")
    template.layout.title = dict(font=dict(size=17), x=0.0, xanchor="left", xref="paper")
    template.layout.colorway = list(METHOD_COLORS.values()) + list(OTHER_RUN_COLORS)
    template.layout.hoverlabel = dict(font=dict(family=FONT_FAMILY, size=13))
    template.layout.legend = dict(font=dict(size=13))
    template.layout.margin = dict(l=70, r=30, t=90, b=60)
    return template


TEMPLATE = _build_template()

ENERGY_CONVENTION = "E_SNN = synops × 0.9 pJ, E_ANN = MACs × 4.6 pJ (45 nm, Horowitz 2014)"
METRICS_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_acc", "seconds", "images_per_s")
BN_VS_BNTT_COLUMNS = ("t", "input_mean", "input_std", "bn_running_mean", "bntt_running_mean",
                      "bn_output_mean", "bn_output_std", "bntt_output_mean", "bntt_output_std")

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

_TOKEN = re.compile(r"[a-z0-9]+")
_NEGATIONS = {"no", "without", "wo", "o", "non"}  # "w/o" splits into "w", "o"
_METHOD_TOKENS = (  # checked in this order: "converted" before "ann", "bntt" before "bn"
    ("converted", {"converted", "conversion", "convert", "ann2snn"}),
    ("ann", {"ann"}),
    ("bntt", {"bntt"}),
    ("tdbn", {"tdbn"}),
    ("tebn", {"tebn"}),
    ("bn-joint", {"joint", "sharedbn", "shared"}),  # before "bn": "BN joint", "BN (shared over time)"
    ("bn", {"bn", "batchnorm", "stepbn"}),
    ("ln", {"ln", "layernorm", "timeln"}),
    ("none", {"none", "nonorm"}),
)


def method_of(label: str) -> str | None:
    """The method a run label names (a key of METHOD_COLORS), or None.

    Matches whole words, case-insensitively: "BNTT", "vgg9-bntt", "C: BNTT" → bntt; "conversion (500
    steps)" → converted; "bn" → bn; "no norm" → none. A word right after "no"/"without"/"w/o" does not
    count, so "surrogate without BNTT" is not taken for BNTT.
    """
    words = _TOKEN.findall(str(label).lower())
    if str(label).strip().lower() in METHOD_COLORS:
        return str(label).strip().lower()
    counted = {w for i, w in enumerate(words) if i == 0 or words[i - 1] not in _NEGATIONS}
    pairs = zip(words[:-1], words[1:], strict=True)
    if any(a in _NEGATIONS and b in ("norm", "normalisation", "normalization") for a, b in pairs):
        counted.add("none")  # "no norm", "without normalisation"
    for method, spellings in _METHOD_TOKENS:
        if counted & spellings:
            return method
    return None


def run_colors(labels: Sequence[str]) -> dict[str, str]:
    """A colour per run label: the method's colour when the label names one (and no earlier label of
    the same method took it), else the next unused colour of OTHER_RUN_COLORS."""
    colors: dict[str, str] = {}
    taken: set[str] = set()
    spare = iter(OTHER_RUN_COLORS * (len(labels) // len(OTHER_RUN_COLORS) + 1))
    for label in labels:
        method = method_of(label)
        if method is not None and METHOD_COLORS[method] not in taken:
            colors[label] = METHOD_COLORS[method]
        else:
            colors[label] = next(spare)
        taken.add(colors[label])
    return colors


def layer_colors(layers: Sequence[str]) -> dict[str, str]:
    """Shallow → deep as dark purple → green along Viridis (stopping short of its pale yellow end)."""
    if len(layers) == 1:
        return {layers[0]: plotly_colors.sample_colorscale("Viridis", [0.0])[0]}
    points = [0.85 * i / (len(layers) - 1) for i in range(len(layers))]
    return dict(zip(layers, plotly_colors.sample_colorscale("Viridis", points), strict=True))


def _style(fig: go.Figure, title: str, *, height: int | None = None) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title_text=title)
    if height is not None:
        fig.update_layout(height=height)
    return fig


# ------------------------------------------------------------------------------------- validation


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


# ---------------------------------------------------------------------- Fig 1: spike activity


def spike_activity_figure(tables: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Fig 1: mean spikes per neuron of every layer at every step, one panel per run.

    `tables`: {run label: spike_activity table (layer, t, spikes_per_neuron)}, e.g. {"A: conversion":
    …, "B: surrogate, no BNTT": …, "C: BNTT": …}. Panels share the y axis so activity compares
    across runs; each run keeps its own number of steps on x.
    """
    runs = _check_runs(tables, "spike_activity", numeric=("t", "spikes_per_neuron"))
    labels = list(runs)
    layers = _layer_order(*runs.values())
    colors = layer_colors(layers)
    cols = min(len(labels), 3)
    rows = math.ceil(len(labels) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=labels, horizontal_spacing=0.06,
                        vertical_spacing=0.16 if rows > 1 else 0.1)
    shown: set[str] = set()
    for i, label in enumerate(labels):
        row, col = i // cols + 1, i % cols + 1
        df = runs[label]
        for layer, part in df.groupby("layer", sort=False):
            part = part.sort_values("t")
            fig.add_trace(go.Scatter(
                x=part["t"], y=part["spikes_per_neuron"], name=layer, mode="lines",
                line=dict(color=colors[layer], width=2), legendgroup=layer, showlegend=layer not in shown,
                hovertemplate=f"{label}<br>{layer}<br>t = %{{x}}<br>%{{y:.4f}} spikes / neuron<extra></extra>",
            ), row=row, col=col)
            shown.add(layer)
        fig.update_xaxes(title_text="time step t", row=row, col=col)
        if col == 1:
            fig.update_yaxes(title_text="mean spikes per neuron", row=row, col=col)
    fig.update_yaxes(matches="y", rangemode="tozero")
    fig.update_layout(legend_title_text="layer (shallow → deep)")
    return _style(fig, "Spike activity per layer over time (Fig 1)", height=380 * rows + 60)


def spike_heatmap_figure(spike_activity: pd.DataFrame) -> go.Figure:
    """Fig 1 as a heatmap: mean spikes per neuron, layer (shallow on top) × time step, for one run."""
    df = _check_table(spike_activity, "spike_activity", numeric=("t", "spikes_per_neuron"))
    layers, steps, grid = _pivot(df, "spikes_per_neuron")
    fig = go.Figure(go.Heatmap(
        x=steps, y=layers, z=grid, colorscale="Viridis", zmin=0,
        colorbar=dict(title=dict(text="spikes /<br>neuron")),
        hovertemplate="%{y}<br>t = %{x}<br>%{z:.4f} spikes / neuron<extra></extra>",
    ))
    fig.update_xaxes(title_text="time step t")
    fig.update_yaxes(title_text="layer", autorange="reversed", type="category")
    return _style(fig, "Spike activity: mean spikes per neuron, layer × time step")


# ------------------------------------------------------------------------------ Fig 3: BN input


def bn_input_figure(bn_input: pd.DataFrame, bn_input_hist: pd.DataFrame, layer: str,
                    steps: Sequence[int] | None = (1, 10, 20)) -> go.Figure:
    """Fig 3 for one layer: (A) distribution of the norm's input at a few steps; (B) its mean (± std)
    over t, against the single stored running mean where the run has one (norm=bn).

    `bn_input`: layer, t, mean, std, running_mean (blank for norms without one); `bn_input_hist`:
    layer, t, bin_left, bin_right, count. `steps=None` picks the first, middle and last recorded step;
    a step that was not recorded is a ValueError listing the recorded ones. Histograms are shown as
    the fraction of values per bin so steps compare even if their counts differ.
    """
    stats = _check_table(bn_input, "bn_input", numeric=("t", "mean", "std", "running_mean"))
    hist = _check_table(bn_input_hist, "bn_input_hist", numeric=("t", "bin_left", "bin_right", "count"))
    layer = str(layer)
    for name, df in (("bn_input", stats), ("bn_input_hist", hist)):
        if layer not in set(df["layer"]):
            raise ValueError(f"layer {layer!r} is not in table {name!r}; it has {_layer_order(df)}")
    stats = stats[stats["layer"] == layer].sort_values("t")
    hist = hist[hist["layer"] == layer]
    recorded = sorted(int(t) for t in hist["t"].unique())
    if steps is None:
        steps = sorted({recorded[0], recorded[len(recorded) // 2], recorded[-1]})
    steps = [int(s) for s in steps]
    absent = [s for s in steps if s not in recorded]
    if absent:
        raise ValueError(f"steps {absent} were not recorded in 'bn_input_hist' for layer {layer!r}; "
                         f"recorded steps: {recorded[0]}..{recorded[-1]} (steps=None picks some)")

    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "(A) distribution at chosen steps", "(B) mean over time"))
    ramp = plotly_colors.sample_colorscale("Plasma", [0.8 * i / max(1, len(steps) - 1) for i in range(len(steps))])
    for color, step in zip(ramp, steps, strict=True):
        bins = hist[hist["t"] == step].sort_values("bin_left")
        total = bins["count"].sum()
        fraction = bins["count"] / total if total > 0 else bins["count"]
        fig.add_trace(go.Bar(
            x=(bins["bin_left"] + bins["bin_right"]) / 2, y=fraction, width=bins["bin_right"] - bins["bin_left"],
            name=f"t = {step}", marker_color=color, opacity=0.55, legendgroup="hist",
            hovertemplate=f"t = {step}<br>input %{{x:.3g}}<br>%{{y:.3f}} of values<extra></extra>",
        ), row=1, col=1)
    fig.update_layout(barmode="overlay", bargap=0)

    t, mean, std = stats["t"], stats["mean"], stats["std"]
    band_color = METHOD_COLORS["bn"]
    fig.add_trace(go.Scatter(
        x=pd.concat([t, t[::-1]]), y=pd.concat([mean + std, (mean - std)[::-1]]), fill="toself",
        fillcolor="rgba(213, 94, 0, 0.15)", line=dict(width=0), hoverinfo="skip", name="± 1 std",
    ), row=1, col=2)
    fig.add_trace(go.Scatter(
        x=t, y=mean, name="mean of the input at step t", mode="lines+markers",
        line=dict(color=band_color, width=2),
        hovertemplate="t = %{x}<br>mean %{y:.4g}<extra></extra>",
    ), row=1, col=2)
    running = stats["running_mean"].dropna()
    if len(running):
        # the stored statistic is one number per layer; draw it across every step it is used at
        fig.add_trace(go.Scatter(
            x=[t.min(), t.max()], y=[running.mean()] * 2, mode="lines", name="stored running mean (inference)",
            line=dict(color="#222222", dash="dash", width=2),
            hovertemplate="stored running mean %{y:.4g}<extra></extra>",
        ), row=1, col=2)
    fig.update_xaxes(title_text="norm input value (synaptic current)", row=1, col=1)
    fig.update_yaxes(title_text="fraction of values", row=1, col=1)
    fig.update_xaxes(title_text="time step t", row=1, col=2)
    fig.update_yaxes(title_text="norm input (synaptic current)", row=1, col=2)
    return _style(fig, f"Input of the normalisation layer {layer} over time (Fig 3)", height=450)


# --------------------------------------------------------------------------------- Fig 4: mean γ


def gamma_mean_figure(gamma_mean: pd.DataFrame, threshold: float = 0.1) -> go.Figure:
    """Fig 4: mean γ of each BNTT layer over t (upper panel) and its maximum over layers per t with the
    early-exit threshold (lower panel). The steps after the exit step are shaded (the paper's blue
    area) and the exit step is annotated; it follows `bntt_core.analysis.early_exit.exit_step_from_gamma_mean`
    (which wants every layer at every step 1..T and says so otherwise)."""
    df = _check_table(gamma_mean, "gamma_mean", numeric=("t", "mean_gamma"))
    threshold = float(threshold)
    layers = _layer_order(df)
    colors = layer_colors(layers)
    exit_step = exit_step_from_gamma_mean(df, threshold)
    peak = df.groupby("t")["mean_gamma"].max().sort_index()
    first, last = int(peak.index.min()), int(peak.index.max())

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, row_heights=[0.55, 0.45],
                        subplot_titles=("mean γ of each layer", "largest mean γ over layers, and the threshold"))
    for layer, part in df.groupby("layer", sort=False):
        part = part.sort_values("t")
        fig.add_trace(go.Scatter(
            x=part["t"], y=part["mean_gamma"], name=layer, mode="lines+markers", marker=dict(size=5),
            line=dict(color=colors[layer], width=2), legendgroup="layers",
            legendgrouptitle_text="layer (shallow → deep)",
            hovertemplate=f"{layer}<br>t = %{{x}}<br>mean γ %{{y:.4f}}<extra></extra>",
        ), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=peak.index, y=peak.to_numpy(), name="max over layers", mode="lines+markers",
        line=dict(color=METHOD_COLORS["bntt"], width=2.5), legendgroup="exit", legendgrouptitle_text="early exit",
        hovertemplate="t = %{x}<br>max mean γ %{y:.4f}<extra></extra>",
    ), row=2, col=1)
    fig.add_trace(go.Scatter(
        x=[first, last], y=[threshold, threshold], name=f"threshold {threshold:g}", mode="lines",
        line=dict(color="#222222", dash="dash", width=2), legendgroup="exit",
        hovertemplate=f"threshold {threshold:g}<extra></extra>",
    ), row=2, col=1)
    if exit_step < last:
        fig.add_vrect(x0=exit_step, x1=last, row="all", col=1, fillcolor=METHOD_COLORS["bntt"], opacity=0.12,
                      line_width=0, layer="below")
        text = f"early exit at t = {exit_step} (skips {last - exit_step} of {last} steps)"
    else:
        text = f"no early exit: t = {exit_step} (γ not below {threshold:g} at the end)"
    fig.add_annotation(x=exit_step, y=float(peak.loc[exit_step]), text=text, showarrow=True, arrowhead=2,
                       ax=0, ay=-45, row=2, col=1, bgcolor="rgba(255,255,255,0.85)", font=dict(size=13))
    fig.update_xaxes(title_text="time step t", row=2, col=1)
    fig.update_yaxes(title_text="mean γ", row=1, col=1)
    fig.update_yaxes(title_text="max mean γ", row=2, col=1)
    fig.update_layout(meta={"exit_step": exit_step, "threshold": threshold})
    return _style(fig, f"BNTT γ over time and the early-exit step at threshold {threshold:g} (Fig 4)",
                  height=620)


GAMMA_SCALES = ("fixed", "run")  # how a mean-γ heatmap maps γ to colour (gamma_heatmap_figure's `scale`)


def _nice_step(span: float) -> float:
    """A round tick step (1, 2, 2.5 or 5 × 10^k) giving about five ticks over `span`."""
    raw = max(span, 1e-12) / 5
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _gamma_colors(values: np.ndarray, scale: str, *, whose: str = "this run") -> dict:
    """The colour range of a mean-γ heatmap (zmin, zmax, colorbar, and a title note).

    "fixed": from 0 (or the run's minimum if γ went negative) up to max(1, the run's maximum) — γ starts at 1,
    so a run whose mean γ spans 0.81–0.83 looks nearly uniform, as it is; the run's maximum is marked on the
    colour bar. "run": the run's own min..max, said so in the colour bar's title (small differences then
    fill the whole colour range)."""
    if scale not in GAMMA_SCALES:
        raise ValueError(f"scale must be one of {list(GAMMA_SCALES)}; got {scale!r}")
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        raise ValueError("the mean-γ table holds no finite value: nothing to colour")
    low, high = float(finite.min()), float(finite.max())
    if scale == "run":
        pad = 0.0 if high > low else 5e-4 * max(1.0, abs(high))
        return dict(zmin=low - pad, zmax=high + pad, note=f"colour: {whose}'s range {low:.3g}–{high:.3g}",
                    colorbar=dict(title=dict(text=f"mean γ<br>{whose}'s<br>range<br>{low:.3g}–{high:.3g}")))
    zmin, zmax = min(0.0, low), max(1.0, high)
    step = _nice_step(zmax - zmin)
    ticks = [v for v in np.arange(math.ceil(zmin / step) * step, zmax + step / 2, step)
             if abs(v - high) > 0.06 * (zmax - zmin)]  # room for the run's maximum
    tickvals = [*ticks, high]
    ticktext = [f"{v:.3g}" for v in ticks] + [f"◀ max {high:.3g}"]
    return dict(zmin=zmin, zmax=zmax, note=f"colour fixed {zmin:g}–{zmax:g}; {whose} {low:.3g}–{high:.3g}",
                colorbar=dict(title=dict(text=f"mean γ<br>fixed {zmin:g}–{zmax:g}"), tickvals=tickvals,
                              ticktext=ticktext))


def gamma_heatmap_figure(gamma_mean: pd.DataFrame, *, scale: str = "fixed", selectable: bool = False) -> go.Figure:
    """Mean γ as a heatmap: layer (shallow on top) × time step, for one BNTT run.

    `scale`: "fixed" (default) colours 0 → max(1, the run's largest mean γ) with the run's maximum marked on
    the colour bar, so runs and epochs compare and a narrow range (0.81–0.83) does not pose as structure;
    "run" stretches the colours over the run's own min..max and says so in the colour bar.
    `selectable=True` lays an invisible marker on every cell (customdata: layer, t, mean γ) so that a click
    selects that cell (Streamlit's selection events skip heatmap traces); `gamma_heatmap_cell` reads it back.
    """
    df = _check_table(gamma_mean, "gamma_mean", numeric=("t", "mean_gamma"))
    layers, steps, grid = _pivot(df, "mean_gamma")
    colors = _gamma_colors(grid, scale)
    # a selectable heatmap leaves the hover to the cell markers on top of it
    hover = dict(hoverinfo="skip") if selectable else dict(hovertemplate="%{y}<br>t = %{x}<br>mean γ %{z:.4f}<extra></extra>")
    fig = go.Figure(go.Heatmap(x=steps, y=layers, z=grid, colorscale="Viridis", zmin=colors["zmin"],
                               zmax=colors["zmax"], colorbar=colors["colorbar"], **hover))
    if selectable:
        fig.add_trace(_cell_picker(layers, steps, grid))
        fig.update_layout(hoverdistance=-1, clickmode="event+select")  # a click anywhere picks the nearest cell
    fig.update_xaxes(title_text="time step t")
    fig.update_yaxes(title_text="layer", autorange="reversed", type="category")
    fig.update_layout(meta={"scale": scale, "zmin": colors["zmin"], "zmax": colors["zmax"]})
    return _style(fig, f"Mean BNTT γ per layer and time step ({colors['note']})")


def _cell_picker(layers: list[str], steps: list[float], grid: np.ndarray) -> go.Scatter:
    """One invisible, clickable marker per heatmap cell; the clicked one is outlined."""
    rows, cols = np.nonzero(np.isfinite(grid))
    return go.Scatter(
        x=[steps[c] for c in cols], y=[layers[r] for r in rows],
        customdata=[[layers[r], int(steps[c]), float(grid[r, c])] for r, c in zip(rows, cols, strict=True)],
        mode="markers", name="cells", showlegend=False,
        marker=dict(symbol="square-open", size=18, color="#ffffff", opacity=0, line=dict(width=3)),
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=0)),
        hovertemplate="%{customdata[0]}<br>t = %{customdata[1]}<br>mean γ %{customdata[2]:.4f}"
                      "<br><i>click: its γ histogram</i><extra></extra>",
    )


def gamma_heatmap_cell(selection: object) -> tuple[str, int] | None:
    """(layer, t) of the cell clicked in a `gamma_heatmap_figure(..., selectable=True)`, read from the
    selection Streamlit reports ({"selection": {"points": [{"customdata": [layer, t, γ], "x": t, "y": layer,
    …}]}}), or None when nothing is selected or the selection is not a cell."""
    try:
        points = selection["selection"]["points"]  # type: ignore[index]
    except (KeyError, TypeError, IndexError):
        return None
    for point in points or ():
        if not isinstance(point, Mapping):
            continue
        custom = point.get("customdata")
        try:
            if isinstance(custom, Sequence) and not isinstance(custom, str) and len(custom) >= 2:
                return str(custom[0]), int(custom[1])
            if point.get("x") is not None and point.get("y") is not None:
                return str(point["y"]), int(round(float(point["x"])))
        except (TypeError, ValueError):
            continue
    return None


# ---------------------------------------------------------------------------- Fig 5: spike rate


def spike_rate_figure(tables: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Fig 5: spike rate per layer (total spikes over T ÷ neurons), one bar per run, log y axis.

    `tables`: {run label: spike_rate table (layer, rate)}. A rate of 0 has no place on a log axis and
    shows as a missing bar.
    """
    runs = _check_runs(tables, "spike_rate", numeric=("rate",))
    layers = _layer_order(*runs.values())
    colors = run_colors(list(runs))
    fig = go.Figure()
    for label, df in runs.items():
        fig.add_trace(go.Bar(
            x=df["layer"], y=df["rate"], name=label, marker_color=colors[label],
            hovertemplate=f"{label}<br>%{{x}}<br>%{{y:.4g}} spikes / neuron<extra></extra>",
        ))
    fig.update_layout(barmode="group", legend_title_text="run")
    fig.update_xaxes(title_text="layer", type="category", categoryorder="array", categoryarray=layers)
    fig.update_yaxes(title_text="spike rate (spikes per neuron over all T steps)", type="log")
    return _style(fig, "Layer-wise spike rate (Fig 5, log scale)")


# ------------------------------------------------------------------------ Fig 6: γ histograms


def _gamma_histograms(values: pd.DataFrame, steps: list[int], bins: int) -> dict[int, tuple[np.ndarray, ...]]:
    """Per step: bin centres, widths and counts ÷ the step's largest count (frequency in [0, 1]).
    The bin edges span the layer's γ over all steps so the axis does not jump between steps."""
    low, high = float(values["gamma"].min()), float(values["gamma"].max())
    if not high > low:  # one value everywhere (e.g. an untrained layer): give it a visible bin
        low, high = low - 0.05, high + 0.05
    edges = np.linspace(low, high, bins + 1)
    centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    out = {}
    for step in steps:
        counts, _ = np.histogram(values.loc[values["t"] == step, "gamma"].dropna(), bins=edges)
        peak = counts.max() if counts.size and counts.max() > 0 else 1
        out[step] = (centres, widths, counts / peak)
    return out


def gamma_histogram_figure(gamma: pd.DataFrame, layers: Sequence[str] | None = ("conv1", "conv4", "conv7"),
                           step: int | None = None, *, bins: int = 30) -> go.Figure:
    """Fig 6: histograms of the BNTT γ of each channel, one row per layer, frequency normalised to
    [0, 1] (the tallest bin of each histogram is 1).

    `gamma`: layer, t, channel, gamma. `layers=None` draws every layer. With `step=None` the figure
    carries one animation frame per step, a step slider and play/pause buttons; with a step it is a
    static figure of that step.
    """
    df = _check_table(gamma, "gamma", numeric=("t", "gamma"))
    layers, steps = _chosen_layers_and_steps(df, "table 'gamma'", layers, step)
    shown_steps = steps if step is None else [int(step)]
    histograms = {layer: _gamma_histograms(df[df["layer"] == layer], shown_steps, bins) for layer in layers}
    colors = layer_colors(layers)

    fig = make_subplots(rows=len(layers), cols=1, subplot_titles=layers, vertical_spacing=0.22 / len(layers))

    def bars(at_step: int) -> list[go.Bar]:
        return [go.Bar(x=histograms[layer][at_step][0], y=histograms[layer][at_step][2],
                       width=histograms[layer][at_step][1], name=layer, marker_color=colors[layer],
                       showlegend=False,
                       hovertemplate=f"{layer}, t = {at_step}<br>γ ≈ %{{x:.3f}}<br>frequency %{{y:.2f}}<extra></extra>")
                for layer in layers]

    for row, trace in enumerate(bars(shown_steps[0]), start=1):
        fig.add_trace(trace, row=row, col=1)
    for row, layer in enumerate(layers, start=1):
        centres, widths, _ = histograms[layer][shown_steps[0]]
        fig.update_xaxes(range=[centres[0] - widths[0] / 2, centres[-1] + widths[-1] / 2], row=row, col=1)
        fig.update_yaxes(title_text="frequency", range=[0, 1.05], row=row, col=1)
    fig.update_xaxes(title_text="γ (BNTT scale, one value per channel)", row=len(layers), col=1)
    fig.update_layout(bargap=0.05)
    title = "BNTT γ distribution per layer (Fig 6; frequency normalised to [0, 1])"
    height = 230 * len(layers) + 170

    if step is not None:
        return _style(fig, f"{title} at step t = {step}", height=height)

    axes = [(trace.xaxis, trace.yaxis) for trace in fig.data]
    frames = []
    for at_step in shown_steps:
        data = bars(at_step)
        for trace, (xaxis, yaxis) in zip(data, axes, strict=True):
            trace.update(xaxis=xaxis, yaxis=yaxis)
        frames.append(go.Frame(name=str(at_step), data=data, traces=list(range(len(layers)))))
    fig.frames = frames
    jump = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    fig.update_layout(
        sliders=[dict(
            active=0, y=0, yanchor="top", x=0.22, len=0.78, pad=dict(t=55),
            currentvalue=dict(prefix="time step t = ", font=dict(size=14)),
            steps=[dict(label=str(s), method="animate", args=[[str(s)], jump]) for s in shown_steps],
        )],
        updatemenus=[dict(
            type="buttons", direction="left", x=0.0, y=0, xanchor="left", yanchor="top", pad=dict(t=60),
            showactive=False,
            buttons=[
                dict(label="▶ play", method="animate",
                     args=[None, {"frame": {"duration": 350, "redraw": True}, "fromcurrent": True,
                                  "transition": {"duration": 0}}]),
                dict(label="❚❚ pause", method="animate", args=[[None], jump]),
            ],
        )],
        margin=dict(b=150),
    )
    return _style(fig, title, height=height + 80)


# ------------------------------------------------- distributions over time, and γ through training
# One printable figure for a whole distribution over time (TensorBoard's two histogram views): a ridge plot
# (one histogram per step, offset vertically, the first step at the top) and percentile bands (min–max,
# 7–93, 16–84, 31–69 and the median: TensorBoard's distribution percentiles, gamma_history.PERCENTILES).
# And γ through training, from RUN/gamma_history.csv (bntt_core/analysis/gamma_history.py): the mean-γ heatmap, the
# histograms and the percentile bands animated or drawn over epochs, and the paper's exit step per epoch.

BAND_PAIRS = (("min", "max", "min – max"), ("q07", "q93", "7th – 93rd percentile"),
              ("q16", "q84", "16th – 84th percentile"), ("q31", "q69", "31st – 69th percentile"))
BAND_OPACITY = (0.10, 0.17, 0.26, 0.38)  # outer → inner: the middle of the distribution is the darkest
MAX_RIDGE_SLICES = 40  # more steps than this: evenly spaced ones (first and last included), said in the title


def _rgba(color: str, alpha: float) -> str:
    red, green, blue = (plotly_colors.hex_to_rgb(color) if color.startswith("#")
                        else plotly_colors.unlabel_rgb(color))
    return f"rgba({red:.0f}, {green:.0f}, {blue:.0f}, {alpha})"


def _blend_white(color: str, share: float) -> str:
    """`color` mixed with white (`share` of white): an opaque lighter fill."""
    red, green, blue = (plotly_colors.hex_to_rgb(color) if color.startswith("#")
                        else plotly_colors.unlabel_rgb(color))
    mix = [c + (255 - c) * share for c in (red, green, blue)]
    return f"rgb({mix[0]:.0f}, {mix[1]:.0f}, {mix[2]:.0f})"


def _add_bands(fig: go.Figure, x: np.ndarray, quantiles: Mapping[str, np.ndarray], color: str, *,
               x_label: str, value_label: str, row: int | None = None, col: int | None = None) -> None:
    """Shaded bands between symmetric percentiles (outer lightest) and the median as a line whose hover
    lists all nine values. `quantiles`: the keys of gamma_history.PERCENTILES → one value per x."""
    where = {} if row is None else dict(row=row, col=col)
    x = np.asarray(x, dtype=float)
    for (low, high, label), alpha in zip(BAND_PAIRS, BAND_OPACITY, strict=True):
        fig.add_trace(go.Scatter(
            x=np.concatenate([x, x[::-1]]), y=np.concatenate([quantiles[high], quantiles[low][::-1]]),
            fill="toself", fillcolor=_rgba(color, alpha), line=dict(width=0), mode="lines", name=label,
            hoverinfo="skip",
        ), **where)
    names = list(PERCENTILES)
    custom = np.column_stack([quantiles[name] for name in names])
    hover = "<br>".join(f"{name.replace('q', '', 1) + ' %' if name.startswith('q') else name} "
                        f"%{{customdata[{i}]:.4g}}" for i, name in reversed(list(enumerate(names))))
    fig.add_trace(go.Scatter(
        x=x, y=quantiles["q50"], customdata=custom, mode="lines+markers", name="median",
        line=dict(color=color, width=2.5), marker=dict(size=5),
        hovertemplate=f"{x_label} %{{x}}<br>{value_label}<br>{hover}<extra></extra>",
    ), **where)


def _ridge_figure(slices: Sequence[tuple[int, np.ndarray, np.ndarray]], *, x_title: str, value: str,
                  title: str, overlap: float = 1.8) -> go.Figure:
    """One histogram outline per step, the first step at the top and each next one in front of it.

    `slices`: (step, bin edges [n+1], counts [n]). Each slice is scaled to its own tallest bin (=
    `overlap` slice spacings), as in a joy plot: shapes compare, heights do not (the counts are in the
    hover). Each trace's customdata holds the count of its points.
    """
    ramp = plotly_colors.sample_colorscale("Viridis", [0.85 * i / max(1, len(slices) - 1)
                                                      for i in range(len(slices))])
    fig = go.Figure()
    bases = []
    for i, ((step, edges, counts), color) in enumerate(zip(slices, ramp, strict=True)):
        base = float(len(slices) - 1 - i)
        bases.append(base)
        counts = np.asarray(counts, dtype=float)
        edges = np.asarray(edges, dtype=float)
        peak = float(counts.max()) if counts.size and counts.max() > 0 else 1.0
        xs = np.concatenate([[edges[0]], np.column_stack([edges[:-1], edges[1:]]).ravel(), [edges[-1]]])
        heights = np.repeat(counts, 2)
        fig.add_trace(go.Scatter(
            x=xs, y=base + np.concatenate([[0.0], heights / peak * overlap, [0.0]]),
            customdata=np.concatenate([[0.0], heights, [0.0]]), mode="lines", fill="toself",
            fillcolor=_blend_white(color, 0.35), line=dict(color="#222222", width=0.8), name=f"t = {step}",
            showlegend=False, hoveron="points",
            hovertemplate=f"t = {step}<br>{value} %{{x:.4g}}<br>%{{customdata:.0f}} in this bin<extra></extra>",
        ))
    every = max(1, math.ceil(len(slices) / 25))  # at most ~25 tick labels
    shown = [i for i in range(len(slices)) if i % every == 0 or i == len(slices) - 1]
    fig.update_yaxes(title_text="time step t (first at the top)", tickvals=[bases[i] for i in shown],
                     ticktext=[str(slices[i][0]) for i in shown], showgrid=False, zeroline=False,
                     range=[-0.3, len(slices) - 1 + overlap + 0.3])
    fig.update_xaxes(title_text=x_title, showgrid=True)
    return _style(fig, title, height=int(np.clip(200 + 34 * len(slices), 440, 1400)))


def _ridge_steps(recorded: list[int], steps: Sequence[int] | None, table: str, layer: str) -> tuple[list[int], str]:
    """The steps a ridge draws, and a title note when they are a spread of the recorded ones."""
    if steps is not None:
        steps = sorted({int(s) for s in steps})
        absent = [s for s in steps if s not in recorded]
        if absent or not steps:
            raise ValueError(f"steps {absent or '[]'} are not in table {table!r} for layer {layer!r}; recorded "
                             f"steps: {recorded[0]}..{recorded[-1]}")
        return steps, ""
    if len(recorded) <= MAX_RIDGE_SLICES:
        return recorded, ""
    picks = sorted({recorded[round(i * (len(recorded) - 1) / (MAX_RIDGE_SLICES - 1))]
                    for i in range(MAX_RIDGE_SLICES)})
    return picks, f"; {len(picks)} of {len(recorded)} steps, evenly spaced"


def _one_layer(df: pd.DataFrame, table: str, layer: str) -> pd.DataFrame:
    layer = str(layer)
    if layer not in set(df["layer"]):
        raise ValueError(f"layer {layer!r} is not in table {table!r}; it has {_layer_order(df)}")
    return df[df["layer"] == layer]


def gamma_ridge_figure(gamma: pd.DataFrame, layer: str, *, bins: int = 30,
                       steps: Sequence[int] | None = None) -> go.Figure:
    """The γ of one layer's channels at every step as a ridge plot: one histogram per step (channel counts,
    bins spanning the layer's γ over all steps), offset vertically, the first step at the top.
    `steps=None`: every step (at most MAX_RIDGE_SLICES, evenly spaced, beyond that)."""
    df = _one_layer(_check_table(gamma, "gamma", numeric=("t", "gamma")), "gamma", layer)
    if int(bins) < 1:
        raise ValueError(f"bins must be at least 1; got {bins}")
    recorded = sorted(int(t) for t in df["t"].unique())
    shown, note = _ridge_steps(recorded, steps, "gamma", layer)
    values = df["gamma"].dropna()
    if values.empty:
        raise ValueError(f"table 'gamma' holds no γ values for layer {layer!r}")
    low, high = float(values.min()), float(values.max())
    if not high > low:
        low, high = low - 0.05, high + 0.05
    edges = np.linspace(low, high, int(bins) + 1)
    slices = [(t, edges, np.histogram(df.loc[df["t"] == t, "gamma"].dropna(), bins=edges)[0]) for t in shown]
    return _ridge_figure(slices, x_title="γ (BNTT scale, one value per channel)", value="γ",
                         title=f"γ of {layer} at every step (ridge: channels per bin, each step scaled to its "
                               f"peak{note})")


def gamma_bands_figure(gamma: pd.DataFrame, layer: str) -> go.Figure:
    """Percentile bands of one layer's γ over its channels, per step: min–max, 7–93, 16–84, 31–69 and the
    median (np.percentile over the channels, linear interpolation)."""
    df = _one_layer(_check_table(gamma, "gamma", numeric=("t", "gamma")), "gamma", layer)
    steps = sorted(int(t) for t in df["t"].unique())
    by_step = [df.loc[df["t"] == t, "gamma"].dropna().to_numpy() for t in steps]
    if any(v.size == 0 for v in by_step):
        raise ValueError(f"table 'gamma' has a step without γ values for layer {layer!r}")
    table = np.array([np.percentile(v, list(PERCENTILES.values())) for v in by_step])  # [steps, 9]
    quantiles = {name: table[:, i] for i, name in enumerate(PERCENTILES)}
    fig = go.Figure()
    _add_bands(fig, np.array(steps), quantiles, METHOD_COLORS["bntt"], x_label="t =", value_label=f"γ of {layer}")
    fig.update_xaxes(title_text="time step t")
    fig.update_yaxes(title_text="γ (over the layer's channels)")
    fig.update_layout(legend=dict(orientation="h", y=-0.2, x=0.0))
    return _style(fig, f"γ of {layer} over time: percentiles over its {len(by_step[0])} channels", height=480)


def percentiles_from_histogram(left: Sequence[float], right: Sequence[float], counts: Sequence[float],
                               percentiles: Sequence[float] = tuple(PERCENTILES.values()), *,
                               below: float = 0, above: float = 0) -> np.ndarray:
    """Percentiles (0..100) of values known only as a histogram.

    The values of a bin are taken as spread evenly across it, so the percentile is read off the piecewise
    linear cumulative count: the value where it reaches q % of the total. 0 → the left edge of the first
    non-empty bin, 100 → the right edge of the last (the true extremes lie within that bin). `below` /
    `above`: values outside the histogram's range (bn_input.hist_below/hist_above), counted at its edges —
    a percentile that falls among them is that edge (a bound, not the value). All NaN without any count.
    """
    left, right = np.asarray(left, dtype=float), np.asarray(right, dtype=float)
    counts = np.asarray(counts, dtype=float)
    if not (left.shape == right.shape == counts.shape) or left.ndim != 1:
        raise ValueError(f"left, right and counts must be 1-D of one length; got {left.shape}, {right.shape}, "
                         f"{counts.shape}")
    if (counts < 0).any() or below < 0 or above < 0:
        raise ValueError("histogram counts cannot be negative")
    order = np.argsort(left, kind="stable")
    left, right, counts = left[order], right[order], counts[order]
    if left.size:  # the out-of-range values as zero-width bins at the range's edges
        low_edge, high_edge = left[0], right[-1]
        left = np.concatenate([[low_edge], left, [high_edge]])
        right = np.concatenate([[low_edge], right, [high_edge]])
        counts = np.concatenate([[float(below)], counts, [float(above)]])
    cumulative = np.cumsum(counts)
    total = cumulative[-1] if cumulative.size else 0.0
    if total <= 0:
        return np.full(len(percentiles), np.nan)
    filled = np.flatnonzero(counts > 0)
    out = []
    for q in percentiles:
        q = float(q)
        if not 0 <= q <= 100:
            raise ValueError(f"percentiles lie in 0..100; got {q}")
        if q == 0:
            out.append(left[filled[0]])
        elif q == 100:
            out.append(right[filled[-1]])
        else:
            target = q / 100 * total
            k = int(np.searchsorted(cumulative, target, side="left"))
            before = cumulative[k - 1] if k else 0.0
            out.append(left[k] + (target - before) / counts[k] * (right[k] - left[k]))
    return np.asarray(out, dtype=float)


def _bn_hist(bn_input_hist: pd.DataFrame, layer: str) -> pd.DataFrame:
    hist = _check_table(bn_input_hist, "bn_input_hist", numeric=("t", "bin_left", "bin_right", "count"))
    return _one_layer(hist, "bn_input_hist", layer)


def bn_input_ridge_figure(bn_input_hist: pd.DataFrame, layer: str, *, steps: Sequence[int] | None = None) -> go.Figure:
    """Fig 3 as one figure for every step: the norm layer's input histogram (the stored `bn_input_hist`
    bins and counts) of each recorded step, offset vertically, the first step at the top.
    `steps=None`: every recorded step (at most MAX_RIDGE_SLICES, evenly spaced, beyond that)."""
    hist = _bn_hist(bn_input_hist, layer)
    recorded = sorted(int(t) for t in hist["t"].unique())
    shown, note = _ridge_steps(recorded, steps, "bn_input_hist", layer)
    slices = []
    for t in shown:
        bins = hist[hist["t"] == t].sort_values("bin_left")
        edges = np.append(bins["bin_left"].to_numpy(), bins["bin_right"].to_numpy()[-1])
        slices.append((t, edges, bins["count"].to_numpy()))
    return _ridge_figure(slices, x_title="norm input value (synaptic current)", value="input",
                         title=f"Input of the normalisation layer {layer} at every step (Fig 3 as a ridge, each "
                               f"step scaled to its peak{note})")


def bn_input_percentiles(bn_input_hist: pd.DataFrame, layer: str, bn_input: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per recorded step: the percentiles of gamma_history.PERCENTILES of the norm input of `layer`,
    computed from the stored histogram (`percentiles_from_histogram`; the raw values are not stored). With
    `bn_input` holding hist_below/hist_above, the values outside the histogram's range count at its edges.
    Columns: t, min, q07, …, max, outside (values beyond the range at that step)."""
    hist = _bn_hist(bn_input_hist, layer)
    outside: dict[int, tuple[float, float]] = {}
    if bn_input is not None and {"hist_below", "hist_above"} <= set(bn_input.columns):
        stats = bn_input[bn_input["layer"].astype(str) == str(layer)]
        for row in stats.itertuples(index=False):
            below, above = pd.to_numeric(pd.Series([row.hist_below, row.hist_above]), errors="coerce").fillna(0)
            outside[int(row.t)] = (float(below), float(above))
    rows = []
    for t, bins in hist.groupby("t", sort=True):
        below, above = outside.get(int(t), (0.0, 0.0))
        values = percentiles_from_histogram(bins["bin_left"], bins["bin_right"], bins["count"],
                                            below=below, above=above)
        rows.append({"t": int(t), **dict(zip(PERCENTILES, values, strict=True)), "outside": below + above})
    return pd.DataFrame(rows, columns=["t", *PERCENTILES, "outside"])


def bn_input_bands_figure(bn_input_hist: pd.DataFrame, layer: str, bn_input: pd.DataFrame | None = None) -> go.Figure:
    """Percentile bands of the norm layer's input over t (min–max, 7–93, 16–84, 31–69, median), read from
    the stored histogram (`bn_input_percentiles`: values spread evenly within a bin, so a percentile is exact
    to within one bin width). With `bn_input` its mean per step is drawn too (dotted)."""
    table = bn_input_percentiles(bn_input_hist, layer, bn_input)
    if table[list(PERCENTILES)].isna().all(axis=None):
        raise ValueError(f"table 'bn_input_hist' holds no counts for layer {layer!r}: nothing to draw")
    fig = go.Figure()
    _add_bands(fig, table["t"].to_numpy(), {name: table[name].to_numpy() for name in PERCENTILES},
               METHOD_COLORS["bn"], x_label="t =", value_label=f"input of {layer}")
    if bn_input is not None:
        stats = _one_layer(_check_table(bn_input, "bn_input", numeric=("t", "mean")), "bn_input", layer).sort_values("t")
        fig.add_trace(go.Scatter(x=stats["t"], y=stats["mean"], mode="lines", name="mean (all values)",
                                 line=dict(color="#222222", dash="dot", width=2),
                                 hovertemplate="t = %{x}<br>mean %{y:.4g}<extra></extra>"))
    outside = int(table["outside"].sum())
    note = f"; {outside:,} values beyond the histogram's range counted at its edges" if outside else ""
    fig.update_xaxes(title_text="time step t")
    fig.update_yaxes(title_text="norm input (synaptic current)")
    fig.update_layout(legend=dict(orientation="h", y=-0.2, x=0.0))
    return _style(fig, f"Input of the normalisation layer {layer} over time: percentiles from its histogram{note}",
                  height=480)


# ---- γ through training (RUN/gamma_history.csv)


def _check_history(history: object) -> pd.DataFrame:
    """A γ-history table (bntt_core.analysis.gamma_history.COLUMNS) checked: summary columns as floats, `epoch`/`t`
    as ints, histogram counts numeric; one row per (epoch, layer, t)."""
    numeric = [c for c in HISTORY_COLUMNS if c not in ("layer", *BIN_COLUMNS)]
    df = _check_table(history, "gamma_history", required=HISTORY_COLUMNS, numeric=numeric)
    not_counts = [c for c in BIN_COLUMNS if not pd.api.types.is_numeric_dtype(df[c])]
    if not_counts:
        raise ValueError(f"table 'gamma_history': histogram columns {not_counts[:4]} must hold counts (numbers)")
    if df[["epoch", "t"]].isna().any(axis=None):
        raise ValueError("table 'gamma_history' has rows without an epoch or step")
    df["epoch"], df["t"] = df["epoch"].astype(int), df["t"].astype(int)
    if df.duplicated(["epoch", "layer", "t"]).any():
        raise ValueError("table 'gamma_history' has several rows for the same epoch, layer, t; expected one")
    return df


def _history_cube(df: pd.DataFrame, value: str) -> tuple[list[int], list[str], list[int], np.ndarray]:
    """(epochs, layers, steps, [epochs, layers, steps] array of `value`; NaN where a row is missing)."""
    epochs = sorted(df["epoch"].unique().tolist())
    layers = _layer_order(df)
    steps = sorted(df["t"].unique().tolist())
    cube = np.full((len(epochs), len(layers), len(steps)), np.nan)
    index = (np.searchsorted(epochs, df["epoch"].to_numpy()),
             pd.Categorical(df["layer"], categories=layers).codes, np.searchsorted(steps, df["t"].to_numpy()))
    cube[index] = df[value].to_numpy(dtype=float)
    return epochs, layers, steps, cube


def _epoch_label(epoch: int) -> str:
    return "initialisation" if epoch == 0 else f"epoch {epoch}"


def _epoch_animation(fig: go.Figure, epochs: list[int], active: int, *, duration: int = 600) -> None:
    """An epoch slider (jumps to a frame named str(epoch)) and play (from the first epoch) / pause buttons."""
    jump = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    names = [str(e) for e in epochs]
    fig.update_layout(
        sliders=[dict(
            active=epochs.index(active), y=0, yanchor="top", x=0.24, len=0.76, pad=dict(t=55),
            currentvalue=dict(prefix="after epoch ", font=dict(size=14)),
            steps=[dict(label=name, method="animate", args=[[name], jump]) for name in names],
        )],
        updatemenus=[dict(
            type="buttons", direction="left", x=0.0, y=0, xanchor="left", yanchor="top", pad=dict(t=60),
            showactive=False,
            buttons=[
                dict(label="▶ play", method="animate",
                     args=[names, {"frame": {"duration": duration, "redraw": True}, "mode": "immediate",
                                   "transition": {"duration": 0}}]),
                dict(label="❚❚ pause", method="animate", args=[[None], jump]),
            ],
        )],
    )
    fig.update_layout(margin=dict(b=150))


def _shown_epoch(epochs: list[int], epoch: int | None) -> int:
    if epoch is None:
        return epochs[-1]
    if int(epoch) not in epochs:
        raise ValueError(f"the γ history has no epoch {epoch}; it holds epochs {epochs}")
    return int(epoch)


def gamma_history_heatmap_figure(history: pd.DataFrame, *, scale: str = "fixed", epoch: int | None = None) -> go.Figure:
    """The mean-γ heatmap (layer × step) through training: one animation frame per epoch of the γ history
    (epoch 0 = at initialisation, all 1), an epoch slider and play/pause, ONE colour range for every frame
    (`scale` as in gamma_heatmap_figure, over all epochs). `epoch`: the frame shown first (default the last)."""
    epochs, layers, steps, cube = _history_cube(_check_history(history), "mean")
    shown = _shown_epoch(epochs, epoch)
    grids = dict(zip(epochs, cube, strict=True))
    colors = _gamma_colors(cube, scale, whose="training")
    hover = "%{y}<br>t = %{x}<br>mean γ %{z:.4f}<extra></extra>"
    fig = go.Figure(go.Heatmap(x=steps, y=layers, z=grids[shown], colorscale="Viridis", zmin=colors["zmin"],
                               zmax=colors["zmax"], colorbar=colors["colorbar"], hovertemplate=hover))
    fig.frames = [dict(name=str(e), data=[dict(type="heatmap", z=grids[e], zmin=colors["zmin"], zmax=colors["zmax"])],
                       traces=[0]) for e in epochs]
    _epoch_animation(fig, epochs, shown)
    fig.update_xaxes(title_text="time step t")
    fig.update_yaxes(title_text="layer", autorange="reversed", type="category")
    fig.update_layout(meta={"scale": scale, "zmin": colors["zmin"], "zmax": colors["zmax"], "epoch": shown})
    return _style(fig, f"Mean BNTT γ through training, {_epoch_label(shown)} first ({colors['note']})", height=520)


def gamma_history_histogram_figure(history: pd.DataFrame, layers: Sequence[str] | None, t: int, *,
                                   epoch: int | None = None) -> go.Figure:
    """γ histograms of chosen layers at step `t` through training: bars from the stored channel counts on
    the history's fixed bin grid (values beyond it sit in the end bins), one row per layer, one animation
    frame per epoch, the same x range (the bins ever filled) and y range in every frame. `layers=None`:
    every layer; `epoch`: the frame shown first (default the last)."""
    df = _check_history(history)
    layers, _ = _chosen_layers_and_steps(df, "the γ history", layers, t)
    t = int(t)
    epochs = sorted(df["epoch"].unique().tolist())
    shown = _shown_epoch(epochs, epoch)
    rows = df[(df["t"] == t) & df["layer"].isin(layers)]
    counts = {(int(r.epoch), str(r.layer)): np.asarray([getattr(r, c) for c in BIN_COLUMNS], dtype=float)
              for r in rows.itertuples(index=False)}
    first = rows.iloc[0]
    width = float(first["bin_width"])
    left = float(first["bin_low"]) + width * np.arange(len(BIN_COLUMNS))
    filled = np.flatnonzero(np.sum(list(counts.values()), axis=0) > 0)
    low_bin, high_bin = (int(filled[0]), int(filled[-1])) if filled.size else (0, len(BIN_COLUMNS) - 1)
    x_range = [left[low_bin] - width, left[high_bin] + 2 * width]
    peak = {layer: max(float(counts[(e, layer)].max()) for e in epochs if (e, layer) in counts) or 1.0
            for layer in layers}
    colors = layer_colors(layers)

    def counts_at(at: int, layer: str) -> np.ndarray:
        return counts.get((at, layer), np.zeros(len(left)))

    fig = make_subplots(rows=len(layers), cols=1, subplot_titles=layers, vertical_spacing=0.22 / len(layers))
    for row, layer in enumerate(layers, start=1):
        fig.add_trace(go.Bar(x=left + width / 2, y=counts_at(shown, layer), width=width, marker_color=colors[layer],
                             name=layer, showlegend=False,
                             hovertemplate=f"{layer}, t = {t}<br>γ %{{x:.3f}} ± {width / 2:g}<br>%{{y:.0f}} channels"
                                           "<extra></extra>"), row=row, col=1)
    # a frame changes only the counts (small frames: plotly validates every property it is given)
    fig.frames = [dict(name=str(at), traces=list(range(len(layers))),
                       data=[dict(type="bar", y=counts_at(at, layer)) for layer in layers]) for at in epochs]
    for row, layer in enumerate(layers, start=1):
        fig.update_xaxes(range=x_range, row=row, col=1)
        fig.update_yaxes(title_text="channels", range=[0, peak[layer] * 1.08], row=row, col=1)
    fig.update_xaxes(title_text=f"γ at step t = {t} (bins of {width:g} on one grid for every epoch)",
                     row=len(layers), col=1)
    fig.update_layout(bargap=0.05, meta={"t": t, "epoch": shown, "x_range": x_range})
    _epoch_animation(fig, epochs, shown)
    return _style(fig, f"γ histograms at step t = {t} through training, {_epoch_label(shown)} first",
                  height=230 * len(layers) + 250)


def exit_step_by_epoch_figure(history: pd.DataFrame, threshold: float = 0.1) -> go.Figure:
    """The paper's early-exit step at τ = `threshold` after every epoch (bntt_core.analysis.gamma_history
    .exit_step_by_epoch, the rule of early_exit.exit_step_from_gamma_mean), with T drawn: an exit step at T
    is no early exit."""
    threshold = float(threshold)
    table = exit_step_by_epoch(_check_history(history), threshold)
    last = int(table["num_steps"].max())
    epochs = table["epoch"].to_numpy()
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[epochs.min(), epochs.max()], y=[last, last], mode="lines", name=f"T = {last} (no early exit)",
        line=dict(color="#222222", dash="dash", width=2), hovertemplate=f"T = {last}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=epochs, y=table["exit_step"], mode="lines+markers", name=f"exit step at τ = {threshold:g}",
        line=dict(color=METHOD_COLORS["bntt"], width=2.5), marker=dict(size=8),
        customdata=last - table["exit_step"].to_numpy(),
        hovertemplate="epoch %{x}<br>exit at t = %{y}<br>skips %{customdata} steps<extra></extra>",
    ))
    fig.update_xaxes(title_text="epoch (0 = at initialisation)", dtick=1 if len(epochs) <= 20 else None)
    fig.update_yaxes(title_text="exit step (paper's rule)", range=[0, last + max(1, last * 0.08)])
    fig.update_layout(legend=dict(orientation="h", y=-0.22, x=0.0),
                      meta={"threshold": threshold, "epochs": [int(e) for e in epochs], "num_steps": last,
                            "exit_steps": [int(s) for s in table["exit_step"]]})
    return _style(fig, f"Early-exit step at τ = {threshold:g} through training (mean γ after each epoch)",
                  height=450)


def gamma_history_bands_figure(history: pd.DataFrame, layer: str, t: int) -> go.Figure:
    """Percentile bands of one layer's γ at step `t` over epochs (the history's stored min, 7, 16, 31, 50,
    69, 84, 93 and max percentiles over the channels), the median as a line."""
    df = _one_layer(_check_history(history), "gamma_history", layer)
    steps = sorted(df["t"].unique().tolist())
    if int(t) not in steps:
        raise ValueError(f"step {t} is not in the γ history; steps recorded: {steps[0]}..{steps[-1]}")
    rows = df[df["t"] == int(t)].sort_values("epoch")
    fig = go.Figure()
    _add_bands(fig, rows["epoch"].to_numpy(), {name: rows[name].to_numpy() for name in PERCENTILES},
               METHOD_COLORS["bntt"], x_label="epoch", value_label=f"γ of {layer} at t = {t}")
    fig.update_xaxes(title_text="epoch (0 = at initialisation)")
    fig.update_yaxes(title_text="γ (over the layer's channels)")
    fig.update_layout(legend=dict(orientation="h", y=-0.2, x=0.0))
    return _style(fig, f"γ of {layer} at step t = {t} through training: percentiles over its channels",
                  height=480)


# -------------------------------------------------------------------------- Fig 7: early exit


def early_exit_figure(early_exit: pd.DataFrame, threshold: float | None = None,
                      summary: pd.DataFrame | None = None) -> go.Figure:
    """Fig 7: accuracy (left axis) and exit step (right axis) against the γ threshold.

    `early_exit`: threshold, exit_step, accuracy, steps_saved. With `threshold` the grid point nearest
    to it is marked and annotated (exit step, accuracy, steps saved): the dashboard's slider. With
    `summary` (the run's early_exit_summary) the paper's τ = 0.1 and the τ chosen on the validation
    slice are marked too (or the reason there is none); `layout.meta["marks"]` lists what was marked.
    """
    df = _check_table(early_exit, "early_exit", numeric=("threshold", "exit_step", "accuracy", "steps_saved"))
    fig = _fig7(df, threshold)
    if summary is not None:
        _mark_exit_rules(fig, _check_summary(summary), _percent_factor(df["accuracy"]))
    return fig


_RULE_STYLE = {  # rule → (label, line dash, marker symbol)
    "paper": ("paper τ = 0.1", "dash", "diamond"),
    "validation": ("τ chosen on the validation slice", "dot", "star"),
    "truncation": ("truncation (no γ)", "solid", "x"),
}


def _check_summary(summary: pd.DataFrame) -> pd.DataFrame:
    from bntt_core.analysis.early_exit import summary_table

    checked = _check_table(summary, "early_exit_summary",
                           numeric=("threshold", "exit_step", "num_steps", "steps_saved", "accuracy", "accuracy_change"))
    return summary_table(checked)


def _unavailable_note(summary: pd.DataFrame, rule: str) -> str | None:
    rows = summary[(summary["rule"] == rule) & ~summary["available"]]
    return None if rows.empty else str(rows["reason"].iloc[0])


def _mark_exit_rules(fig: go.Figure, summary: pd.DataFrame, factor: float) -> None:
    """Mark the paper and validation rows of a BNTT summary on Fig 7 (x: τ, left axis: accuracy)."""
    marks = []
    for rule in ("paper", "validation"):
        rows = summary[(summary["rule"] == rule) & summary["available"]]
        if rows.empty:
            continue
        row = rows.iloc[0]
        label, dash, symbol = _RULE_STYLE[rule]
        fig.add_vline(x=float(row["threshold"]), line=dict(color=METHOD_COLORS["bntt"], dash=dash, width=1.5))
        fig.add_trace(go.Scatter(
            x=[float(row["threshold"])], y=[float(row["accuracy"]) * factor], mode="markers",
            name=f"{label}: exit at t = {int(row['exit_step'])}",
            marker=dict(symbol=symbol, size=14, color=METHOD_COLORS["bntt"], line=dict(color="#222222", width=1.5)),
            hovertemplate=f"{label}<br>τ %{{x:.3g}}<br>test accuracy %{{y:.2f}}%<extra></extra>",
        ), secondary_y=False)
        marks.append(rule)
    reason = _unavailable_note(summary, "validation")
    if reason:
        fig.add_annotation(x=0, y=-0.31, xref="paper", yref="paper", showarrow=False, xanchor="left", align="left",
                           yanchor="top", text=f"τ on the validation slice: unavailable ({_short(reason)})",
                           font=dict(size=12, color="#555555"))
        fig.update_layout(margin=dict(b=140), height=(fig.layout.height or 480) + 60)
    fig.update_layout(meta={**(fig.layout.meta or {}), "marks": marks})


def _short(text: str, limit: int = 110) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _fig7(df: pd.DataFrame, threshold: float | None) -> go.Figure:
    df = df.sort_values("threshold")
    factor = _percent_factor(df["accuracy"])
    accuracy = df["accuracy"] * factor
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(
        x=df["threshold"], y=accuracy, name="accuracy", mode="lines+markers", marker=dict(size=5),
        line=dict(color=METHOD_COLORS["bntt"], width=2.5), customdata=df[["steps_saved"]],
        hovertemplate="threshold %{x:.3g}<br>accuracy %{y:.2f}%<br>steps saved %{customdata[0]:g}<extra></extra>",
    ), secondary_y=False)
    fig.add_trace(go.Scatter(
        x=df["threshold"], y=df["exit_step"], name="exit step", mode="lines", line_shape="hv",
        line=dict(color=METHOD_COLORS["converted"], width=2.5),
        hovertemplate="threshold %{x:.3g}<br>exit at t = %{y:g}<extra></extra>",
    ), secondary_y=True)
    if threshold is not None:
        nearest = df.loc[(df["threshold"] - float(threshold)).abs().idxmin()]
        grid_threshold = float(nearest["threshold"])
        fig.add_vline(x=grid_threshold, line=dict(color="#222222", dash="dash", width=1.5))
        fig.add_trace(go.Scatter(
            x=[grid_threshold], y=[nearest["accuracy"] * factor], mode="markers", name="chosen threshold",
            marker=dict(color=METHOD_COLORS["bntt"], size=12, line=dict(color="#222222", width=1.5)),
            hovertemplate="chosen threshold %{x:.3g}<br>accuracy %{y:.2f}%<extra></extra>",
        ), secondary_y=False)
        fig.add_trace(go.Scatter(
            x=[grid_threshold], y=[nearest["exit_step"]], mode="markers", showlegend=False,
            marker=dict(color=METHOD_COLORS["converted"], size=12, line=dict(color="#222222", width=1.5)),
            hovertemplate="exit at t = %{y:g}<extra></extra>",
        ), secondary_y=True)
        note = "" if math.isclose(grid_threshold, float(threshold)) else f" (nearest grid value to {threshold:g})"
        fig.add_annotation(
            x=grid_threshold, y=1.0, yref="paper", yanchor="bottom", showarrow=False, align="left",
            xanchor="left", bgcolor="rgba(255,255,255,0.85)",
            text=(f"threshold {grid_threshold:g}{note}: exit at t = {nearest['exit_step']:g}, "
                  f"accuracy {nearest['accuracy'] * factor:.2f}%, {nearest['steps_saved']:g} steps saved"),
        )
    fig.update_xaxes(title_text="γ threshold (on the per-layer mean γ)")
    fig.update_yaxes(title_text="accuracy (%)", secondary_y=False)
    # plotly.js 3 syncs an overlaying axis' ticks to the primary grid (fractional steps); steps are integers
    fig.update_yaxes(title_text="exit step t_exit", secondary_y=True, rangemode="tozero", showgrid=False,
                     tickmode="auto", tickformat="d")
    fig.update_layout(legend=dict(orientation="h", y=-0.2, x=0))
    return _style(fig, "Temporal early exit: accuracy and exit step vs γ threshold (Fig 7)", height=480)


def early_exit_comparison_figure(accuracy_by_step: Mapping[str, pd.DataFrame], summary: pd.DataFrame) -> go.Figure:
    """Early exit without the test set, against plain truncation: accuracy after t steps for every run
    (its accuracy_by_step: for a run without BNTT γ, the network truncated at t), the exit steps of the
    paper's τ = 0.1 and of the τ chosen on the validation slice as vertical lines, and a marker where each
    run stands at them (the truncation baseline the γ rule must beat).

    `accuracy_by_step`: {run label: t, accuracy}; `summary`: `bntt_core.analysis.early_exit.exit_comparison` (with a
    `run` column) or one run's early_exit_summary. Unavailable rows are named under the plot with their
    reason. `layout.meta`: {"steps": {rule: exit step}, "truncation": [run, ...]}.
    """
    runs = _check_runs(accuracy_by_step, "accuracy_by_step", numeric=("t", "accuracy"))
    table = _check_summary(summary)
    if "run" not in table.columns:
        table["run"] = next(iter(runs)) if len(runs) == 1 else ""
    factor = _percent_factor(*(df["accuracy"] for df in runs.values()), table["accuracy"])
    colors = run_colors(list(runs))
    fig = go.Figure()
    _add_accuracy_lines(fig, runs, factor, colors, grouped=True)
    steps: dict[str, int] = {}
    truncated: list[str] = []
    own = table[table["rule"].isin(("paper", "validation")) & table["available"]]
    for position, row in enumerate(own.itertuples(index=False)):
        label, dash, _ = _RULE_STYLE[row.rule]
        step = int(row.exit_step)
        steps[row.rule] = step
        fig.add_vline(x=step, line=dict(color=METHOD_COLORS["bntt"], dash=dash, width=1.5))
        last = int(row.num_steps)
        text = f"{label} → t = {step}" if row.rule == "paper" else f"{label} (τ = {row.threshold:.3g}) → t = {step}"
        fig.add_annotation(x=step, y=0.04 + 0.09 * position, yref="paper", yanchor="bottom",
                           xanchor="right" if step > last / 2 else "left", showarrow=False,
                           bgcolor="rgba(255,255,255,0.85)", text=text)
    for row in table[table["available"]].itertuples(index=False):
        label, _, symbol = _RULE_STYLE[row.step_rule if row.rule == "truncation" else row.rule]
        name = str(row.run)
        if row.rule == "truncation":
            truncated.append(name)
            text = f"{name} truncated at the {label} step"
            symbol = "x"
        else:
            text = f"{name}: {label}"
        fig.add_trace(go.Scatter(
            x=[int(row.exit_step)], y=[float(row.accuracy) * factor], mode="markers", name=text,
            marker=dict(symbol=symbol, size=13, color=colors.get(name, "#222222"), line=dict(color="#222222", width=1)),
            legendgroup=name, customdata=[[float(row.accuracy_change) * factor]],
            hovertemplate=(f"{text}<br>t = %{{x:g}}<br>accuracy %{{y:.2f}}%<br>vs all steps "
                           f"%{{customdata[0]:+.2f}} pts<extra></extra>"),
        ))
    notes = [f"{row.run or 'run'} ({row.rule}): unavailable — {_short(str(row.reason), 90)}"
             for row in table[~table["available"]].itertuples(index=False)]
    if notes:
        fig.add_annotation(x=0, y=1.01, xref="paper", yref="paper", showarrow=False, xanchor="left", align="left",
                           yanchor="bottom", text="<br>".join(notes[:4]), font=dict(size=12, color="#555555"))
        fig.update_layout(margin=dict(t=90 + 18 * min(len(notes), 4)))
    fig.update_xaxes(title_text="time steps used t")
    fig.update_yaxes(title_text="test accuracy (%)")
    longest = max(int(df["t"].max()) for df in runs.values())
    fig.update_xaxes(range=[0.5, longest + 0.5])
    fig.update_layout(legend=dict(orientation="h", y=-0.2, x=0), meta={"steps": steps, "truncation": truncated})
    return _style(fig, "Early exit chosen without the test set, vs plain truncation", height=520 + 20 * len(notes))


def dynamic_exit_figure(dynamic_exit: pd.DataFrame, early_exit: pd.DataFrame | None = None) -> go.Figure:
    """Accuracy against mean steps used for the per-sample dynamic exit — ours, not in the paper — with
    the paper's γ-threshold exit curve beside it when `early_exit` is given.

    `dynamic_exit`: confidence, mean_exit_step, accuracy, steps_saved (one row per confidence level);
    `early_exit`: threshold, exit_step, accuracy, steps_saved.
    """
    ours = _check_table(dynamic_exit, "dynamic_exit",
                        numeric=("confidence", "mean_exit_step", "accuracy", "steps_saved"))
    paper = None
    if early_exit is not None:
        paper = _check_table(early_exit, "early_exit", numeric=("threshold", "exit_step", "accuracy", "steps_saved"))
    factor = _percent_factor(ours["accuracy"], *([paper["accuracy"]] if paper is not None else []))
    ours = ours.sort_values("mean_exit_step")
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=ours["mean_exit_step"], y=ours["accuracy"] * factor, customdata=ours[["confidence"]],
        name="ours: per-sample exit (not in the paper)", mode="lines+markers",
        line=dict(color=OTHER_RUN_COLORS[0], width=2.5),
        hovertemplate=("confidence %{customdata[0]:.3g}<br>mean steps %{x:.2f}<br>accuracy %{y:.2f}%"
                       "<extra>per-sample exit (ours)</extra>"),
    ))
    if paper is not None:
        paper = paper.sort_values("exit_step")
        fig.add_trace(go.Scatter(
            x=paper["exit_step"], y=paper["accuracy"] * factor, customdata=paper[["threshold"]],
            name="paper: γ-threshold exit (same step for every sample)", mode="lines+markers", line_shape="hv",
            line=dict(color=METHOD_COLORS["bntt"], width=2.5),
            hovertemplate="γ threshold %{customdata[0]:.3g}<br>steps %{x:g}<br>accuracy %{y:.2f}%<extra></extra>",
        ))
    fig.update_xaxes(title_text="time steps used (mean over test images)")
    fig.update_yaxes(title_text="accuracy (%)")
    fig.update_layout(legend=dict(orientation="h", y=-0.2, x=0))
    return _style(fig, "Accuracy vs steps used: per-sample dynamic exit (ours, not in the paper)", height=460)


# -------------------------------------------------------------------------- Fig 8: robustness

_ROBUSTNESS = {
    "noise": ("sigma", "Gaussian noise σ (pixel units, {mode})", "Accuracy under Gaussian input noise (Fig 8A)"),
    "fgsm": ("epsilon", "FGSM strength ε (on [0, 1] pixels)",
             "Accuracy under FGSM attack (Fig 8B; SNN-crafted attack for SNNs)"),
}


NOISE_MODE_TEXT = {  # how the axis names each noise mode (bntt_core.analysis.robustness.NOISE_MODES)
    "unclipped": "unclipped",
    "clipped": "clipped to [0, 1]",
    "shift": "shift: x + σ, no noise",
}
NOISE_MODE_DASH = {"unclipped": "solid", "clipped": "dash", "shift": "dot"}


def robustness_figure(tables: Mapping[str, pd.DataFrame], kind: str = "noise", *,
                      modes: Sequence[str] | None = None) -> go.Figure:
    """Fig 8: accuracy against noise σ (`kind="noise"`, noise tables) or FGSM ε (`kind="fgsm"`, fgsm
    tables), one line per run. `tables`: {run label: table}.

    Noise tables may hold several modes (`mode` column; a table without it is clipped,
    `bntt_core.analysis.tables.noise_table`): one line per run and mode, the colour the run's and the line style
    the mode's (unclipped solid, clipped dashed, shift dotted). `modes` keeps only those modes.
    """
    if kind not in _ROBUSTNESS:
        raise ValueError(f"unknown robustness kind {kind!r}; choose one of {list(_ROBUSTNESS)}")
    x_column, x_title, title = _ROBUSTNESS[kind]
    if kind == "noise" and isinstance(tables, Mapping):
        tables = {label: noise_table(df) if isinstance(df, pd.DataFrame) else df for label, df in tables.items()}
        if modes is not None:
            wanted = [str(m) for m in modes]
            tables = {label: df[df[NOISE_MODE_COLUMN].isin(wanted)] if isinstance(df, pd.DataFrame) else df
                      for label, df in tables.items()}
            tables = {label: df for label, df in tables.items() if not isinstance(df, pd.DataFrame) or len(df)}
            if not tables:
                raise ValueError(f"no run's noise table holds the mode(s) {wanted}")
    runs = _check_runs(tables, kind, numeric=(x_column, "accuracy"))
    factor = _percent_factor(*(df["accuracy"] for df in runs.values()))
    colors = run_colors(list(runs))
    symbol = "σ" if kind == "noise" else "ε"
    all_modes = ([] if kind != "noise" else
                 list(dict.fromkeys(m for df in runs.values() for m in noise_modes(df))))
    several = len(all_modes) > 1
    fig = go.Figure()
    for label, df in runs.items():
        parts = [(None, df)] if kind != "noise" else [(m, df[df[NOISE_MODE_COLUMN] == m]) for m in noise_modes(df)]
        for mode, part in parts:
            part = part.sort_values(x_column)
            name = f"{label} · {mode}" if several else label
            fig.add_trace(go.Scatter(
                x=part[x_column], y=part["accuracy"] * factor, name=name, mode="lines+markers",
                legendgroup=label, line=dict(color=colors[label], width=2.5, dash=NOISE_MODE_DASH.get(mode, "solid")),
                marker=dict(size=7),
                hovertemplate=(f"{name}<br>{symbol} = %{{x:.3g}}<br>accuracy %{{y:.2f}}%<extra></extra>"),
            ))
    if kind == "noise":
        if several:
            styles = ", ".join(f"{m} {dict(solid='solid', dash='dashed', dot='dotted')[NOISE_MODE_DASH[m]]}"
                               for m in all_modes if m in NOISE_MODE_DASH)
            x_title = f"noise σ (pixel units); line style = mode: {styles}"
        else:
            mode = all_modes[0]
            x_title = ("brightness shift σ (pixel units, x + σ, no noise)" if mode == "shift"
                       else x_title.format(mode=NOISE_MODE_TEXT.get(mode, mode)))
            if mode == "shift":
                title = "Accuracy under a brightness shift x + σ (Fig 8A's σ grid, no noise)"
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="accuracy (%)", rangemode="tozero")
    fig.update_layout(legend_title_text="run")
    return _style(fig, title)


# -------------------------------------------------------------------------------------- energy


def energy_figure(tables: Mapping[str, pd.DataFrame], convention: str = ENERGY_CONVENTION, *,
                  ann_pj_per_mac: float | None = 4.6) -> go.Figure:
    """Energy per inference: per layer (grouped bars, one per run) and in total, both on log axes.

    `tables`: {run label: energy table (layer, synops, macs, energy_pj)}. `energy_pj` is drawn as
    stored; `convention` (from the analysis meta.json, by default the SPEC's) names how it was counted.
    With `ann_pj_per_mac`, the totals panel also shows each spiking run's network counted as an ANN
    (its MACs × that energy): the comparison of the paper's supplement E. Runs labelled as an ANN
    (`method_of`) get no such bar, their energy already is that count.
    """
    runs = _check_runs(tables, "energy", numeric=("synops", "macs", "energy_pj"))
    layers = _layer_order(*runs.values())
    colors = run_colors(list(runs))
    fig = make_subplots(rows=1, cols=2, column_widths=[0.66, 0.34], horizontal_spacing=0.15,
                        subplot_titles=("per layer", "total per image"))
    for label, df in runs.items():
        fig.add_trace(go.Bar(
            x=df["layer"], y=df["energy_pj"], name=label, marker_color=colors[label], legendgroup=label,
            customdata=df[["synops", "macs"]],
            hovertemplate=(f"{label}<br>%{{x}}<br>%{{y:.4g}} pJ<br>synops %{{customdata[0]:.3g}}"
                           "<br>MACs %{customdata[1]:.3g}<extra></extra>"),
        ), row=1, col=1)
        # offset groups: one slot for the run's own total and one for its ANN count, at every run
        fig.add_trace(go.Bar(
            x=[label], y=[df["energy_pj"].sum()], name=label, marker_color=colors[label], legendgroup=label,
            showlegend=False, offsetgroup="run", hovertemplate=f"{label}<br>total %{{y:.4g}} pJ<extra></extra>",
        ), row=1, col=2)
    if ann_pj_per_mac is not None:
        spiking = [label for label in runs if method_of(label) != "ann"]
        if spiking:
            fig.add_trace(go.Bar(
                x=spiking, y=[runs[label]["macs"].sum() * float(ann_pj_per_mac) for label in spiking],
                name=f"same network as an ANN (MACs × {ann_pj_per_mac:g} pJ)", offsetgroup="ann",
                marker=dict(color="rgba(0,0,0,0)", line=dict(color=METHOD_COLORS["ann"], width=1.5),
                            pattern=dict(shape="/", fgcolor=METHOD_COLORS["ann"])),
                hovertemplate="%{x} as an ANN<br>%{y:.4g} pJ<extra></extra>",
            ), row=1, col=2)
    fig.update_layout(barmode="group", legend=dict(title_text="run", orientation="h", y=-0.22, x=0))
    fig.update_xaxes(title_text="layer", type="category", categoryorder="array", categoryarray=layers, row=1, col=1)
    fig.update_xaxes(title_text="run", type="category", categoryorder="array", categoryarray=list(runs), row=1, col=2)
    fig.update_yaxes(title_text="energy (pJ)", type="log", row=1, col=1)
    fig.update_yaxes(title_text="total energy (pJ)", type="log", row=1, col=2)
    return _style(fig, f"Energy per image — {convention}", height=520)


# ---------------------------------------------------------------- accuracy by step, training


def _add_accuracy_lines(fig: go.Figure, runs: Mapping[str, pd.DataFrame], factor: float, colors: Mapping[str, str],
                        *, grouped: bool = False) -> None:
    """One line per run: accuracy (× factor, in %) after t steps; grouped: each in its run's legend group,
    so the markers a figure adds for that run toggle with it."""
    for label, df in runs.items():
        df = df.sort_values("t")
        fig.add_trace(go.Scatter(
            x=df["t"], y=df["accuracy"] * factor, name=label, mode="lines+markers", marker=dict(size=5),
            line=dict(color=colors[label], width=2.5), legendgroup=label if grouped else None,
            hovertemplate=f"{label}<br>after t = %{{x:g}} steps<br>accuracy %{{y:.2f}}%<extra></extra>",
        ))


def accuracy_by_step_figure(tables: Mapping[str, pd.DataFrame], *, log_x: bool = False) -> go.Figure:
    """Test accuracy of the output accumulated up to step t, against t, one line per run.

    `tables`: {run label: accuracy_by_step table (t, accuracy)}. `log_x` helps when a conversion run
    with hundreds of steps is drawn next to runs with tens.
    """
    runs = _check_runs(tables, "accuracy_by_step", numeric=("t", "accuracy"))
    factor = _percent_factor(*(df["accuracy"] for df in runs.values()))
    fig = go.Figure()
    _add_accuracy_lines(fig, runs, factor, run_colors(list(runs)))
    fig.update_xaxes(title_text="time steps used t", type="log" if log_x else "linear")
    fig.update_yaxes(title_text="accuracy (%)", rangemode="tozero")
    fig.update_layout(legend_title_text="run")
    return _style(fig, "Accuracy from the output accumulated up to step t")


def training_curves_figure(metrics: pd.DataFrame) -> go.Figure:
    """Training curves from a run's metrics.csv (epoch, lr, train_loss, train_acc, test_acc, seconds,
    images_per_s): loss, train/test accuracy, learning rate (log) and throughput per epoch."""
    df = _check_table(metrics, "metrics.csv", required=METRICS_COLUMNS, numeric=METRICS_COLUMNS)
    df = df.sort_values("epoch", kind="stable")
    factor = _percent_factor(df["train_acc"], df["test_acc"])
    fig = make_subplots(rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.14, horizontal_spacing=0.12,
                        subplot_titles=("training loss", "accuracy", "learning rate", "training throughput"))
    epoch = df["epoch"]
    fig.add_trace(go.Scatter(x=epoch, y=df["train_loss"], name="train loss", mode="lines+markers",
                             line=dict(color=METHOD_COLORS["bn"])), row=1, col=1)
    fig.add_trace(go.Scatter(x=epoch, y=df["train_acc"] * factor, name="train accuracy", mode="lines+markers",
                             line=dict(color=METHOD_COLORS["converted"])), row=1, col=2)
    tested = df.dropna(subset=["test_acc"])  # epochs without an evaluation leave test_acc blank
    fig.add_trace(go.Scatter(x=tested["epoch"], y=tested["test_acc"] * factor, name="test accuracy",
                             mode="lines+markers", line=dict(color=METHOD_COLORS["bntt"])), row=1, col=2)
    fig.add_trace(go.Scatter(x=epoch, y=df["lr"], name="learning rate", mode="lines+markers", line_shape="hv",
                             line=dict(color=METHOD_COLORS["ln"])), row=2, col=1)
    fig.add_trace(go.Scatter(x=epoch, y=df["images_per_s"], name="images / s", mode="lines+markers",
                             line=dict(color=METHOD_COLORS["none"])), row=2, col=2)
    fig.update_yaxes(title_text="cross-entropy loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy (%)", row=1, col=2)
    fig.update_yaxes(title_text="learning rate", type="log" if (df["lr"] > 0).all() else "linear", row=2, col=1)
    fig.update_yaxes(title_text="images / s", rangemode="tozero", row=2, col=2)
    fig.update_xaxes(title_text="epoch", row=2, col=1)
    fig.update_xaxes(title_text="epoch", row=2, col=2)
    total_minutes = df["seconds"].sum() / 60.0
    return _style(fig, f"Training curves ({len(df)} epochs, {total_minutes:.1f} min)", height=600)


# ---------------------------------------------------------------------------------- compare


# Known summary columns (bntt_core.teaching.comparison_summary writes them): panel title with unit, log
# axis, whether it is an accuracy (shown in %), which way is better.
COMPARE_METRICS: dict[str, tuple[str, bool, bool, str]] = {
    "accuracy": ("test accuracy (%)", False, True, "higher"),
    "steps": ("time steps used", False, False, "lower"),
    "spikes_per_neuron": ("spikes per neuron per image", True, False, "lower"),
    "spike_rate": ("spike rate, mean over layers (spikes / neuron over T)", True, False, "lower"),
    "total_spike_rate": ("total spike rate (spikes / neuron over T)", True, False, "lower"),
    "energy_pj": ("energy per image (pJ)", True, False, "lower"),
    "noise_auc": ("mean accuracy over the noise σ grid (%)", False, True, "higher"),
    "fgsm_accuracy": ("accuracy under FGSM (%)", False, True, "higher"),
    "early_exit_steps": ("steps used with the γ early exit", False, False, "lower"),
    "early_exit_accuracy": ("accuracy with the γ early exit (%)", False, True, "higher"),
}


def compare_figure(summary: pd.DataFrame, metrics: Sequence[str] | None = None) -> go.Figure:
    """The Compare page: small multiples, one bar panel per metric, one bar per run coloured by method.

    `summary`: one row per run with columns run, method (bntt, bn, ln, none, ann, converted or other)
    and numeric metric columns. `metrics=None` draws the known ones present (COMPARE_METRICS, in that
    order) and then any other numeric column; a blank cell (e.g. spikes of the ANN) is a missing bar.
    """
    df = _check_table(summary, "summary", required=("run", "method"))
    if df["run"].duplicated().any():
        raise ValueError(f"table 'summary' names a run more than once: {df.loc[df['run'].duplicated(), 'run'].tolist()}")
    if metrics is None:
        extra = [c for c in df.columns if c not in COMPARE_METRICS and c not in ("run", "method")
                 and pd.api.types.is_numeric_dtype(df[c])]
        metrics = [c for c in COMPARE_METRICS if c in df.columns] + extra
    metrics = list(metrics)
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"table 'summary' is missing metric columns {missing}; it has {list(df.columns)}")
    if not metrics:
        raise ValueError(f"table 'summary' has no metric column to draw; it has {list(df.columns)}")
    df = _check_table(df, "summary", required=("run", "method"), numeric=metrics)
    df["run"] = df["run"].astype(str)
    df["method"] = df["method"].astype(str)
    runs = df["run"].tolist()

    def info(metric: str) -> tuple[str, bool, bool, str]:
        known = COMPARE_METRICS.get(metric)
        if known:
            return known
        is_accuracy = metric.startswith("fgsm_") or metric.endswith("accuracy")
        return (metric.replace("_", " ") + (" (%)" if is_accuracy else ""), False, is_accuracy, "")

    cols = min(len(metrics), 3)
    rows = math.ceil(len(metrics) / cols)
    titles = []
    for metric in metrics:
        name, _, _, better = info(metric)
        titles.append(f"{name}<br><sup>{better} is better</sup>" if better else name)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.08,
                        vertical_spacing=0.4 / rows if rows > 1 else 0.1)
    methods = list(dict.fromkeys(df["method"]))
    method_color = {m: METHOD_COLORS.get(m.lower(), OTHER_RUN_COLORS[i % len(OTHER_RUN_COLORS)])
                    for i, m in enumerate(methods)}
    for i, metric in enumerate(metrics):
        row, col = i // cols + 1, i % cols + 1
        _, log_axis, is_accuracy, _ = info(metric)
        factor = _percent_factor(df[metric]) if is_accuracy else 1.0
        for method in methods:
            part = df[df["method"] == method]
            fig.add_trace(go.Bar(
                x=part["run"], y=part[metric] * factor, name=METHOD_NAMES.get(method.lower(), method),
                marker_color=method_color[method], legendgroup=method, showlegend=i == 0,
                hovertemplate=f"%{{x}} ({method})<br>{metric} %{{y:.4g}}<extra></extra>",
            ), row=row, col=col)
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=runs, row=row, col=col)
        fig.update_yaxes(type="log" if log_axis else "linear", row=row, col=col)
    fig.update_layout(barmode="overlay", legend_title_text="method", margin=dict(t=130))
    return _style(fig, "Compare runs: accuracy, latency, spikes, energy and robustness", height=340 * rows + 120)


# ---------------------------------------------------------------------------------- teaching


def lif_trace_figure(current: np.ndarray, membrane: np.ndarray, spikes: np.ndarray, threshold: float,
                     membrane_after_reset: np.ndarray | None = None) -> go.Figure:
    """One LIF neuron over time: input current, membrane potential against the threshold, spikes.

    All arrays are [T] for steps t = 1..T. `membrane` is U after charging and before the reset (what
    is compared with θ, as `LIF(..., return_membrane=True)` returns it); with `membrane_after_reset`
    the trace drops at each spike as the reset does, instead of only showing the peaks.
    """
    current = _as_1d("current", current)
    membrane = _as_1d("membrane", membrane)
    spikes = _as_1d("spikes", spikes)
    arrays = {"current": current, "membrane": membrane, "spikes": spikes}
    if membrane_after_reset is not None:
        arrays["membrane_after_reset"] = _as_1d("membrane_after_reset", membrane_after_reset)
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"current, membrane and spikes must have the same length T; got {lengths}")
    steps = np.arange(1, len(current) + 1)
    fired = spikes > 0
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=[0.25, 0.5, 0.25],
                        subplot_titles=("input current", "membrane potential U", "output spikes"))
    fig.add_trace(go.Bar(x=steps, y=current, name="input current", marker_color=METHOD_COLORS["none"],
                         hovertemplate="t = %{x}<br>current %{y:.3g}<extra></extra>"), row=1, col=1)
    if membrane_after_reset is not None:
        # charge to U_t, then at a spike drop straight down to the reset value: a sawtooth
        x, y = [], []
        for step, before, after, spike in zip(steps, membrane, arrays["membrane_after_reset"], fired, strict=True):
            x.append(step)
            y.append(before)
            if spike:
                x.append(step)
                y.append(after)
        fig.add_trace(go.Scatter(x=x, y=y, name="membrane U (with reset)", mode="lines",
                                 line=dict(color=METHOD_COLORS["bntt"], width=2), hoverinfo="skip"), row=2, col=1)
    fig.add_trace(go.Scatter(x=steps, y=membrane, name="membrane U before reset", mode="markers",
                             marker=dict(color=METHOD_COLORS["bntt"], size=6),
                             hovertemplate="t = %{x}<br>U %{y:.3g}<extra></extra>"), row=2, col=1)
    fig.add_trace(go.Scatter(x=[steps[0], steps[-1] + 0.5], y=[threshold, threshold], mode="lines",
                             name=f"threshold θ = {threshold:g}", line=dict(color="#222222", dash="dash")),
                  row=2, col=1)
    fig.add_trace(go.Scatter(x=steps[fired], y=membrane[fired], mode="markers", name="fires (U > θ)",
                             marker=dict(color=METHOD_COLORS["bn"], size=10, symbol="star"),
                             hovertemplate="spike at t = %{x}<extra></extra>"), row=2, col=1)
    fig.add_trace(go.Bar(x=steps[fired], y=np.ones(int(fired.sum())), width=0.25, name="spike",
                         marker_color=METHOD_COLORS["bn"], showlegend=False,
                         hovertemplate="spike at t = %{x}<extra></extra>"), row=3, col=1)
    fig.update_yaxes(title_text="current", row=1, col=1)
    fig.update_yaxes(title_text="U", row=2, col=1)
    fig.update_yaxes(title_text="spike", range=[0, 1.1], tickvals=[0, 1], row=3, col=1)
    fig.update_xaxes(title_text="time step t", row=3, col=1)
    fig.update_layout(legend=dict(orientation="h", y=-0.15, x=0))
    count = int(fired.sum())
    return _style(fig, f"LIF neuron: {count} spike{'s' if count != 1 else ''} in {len(steps)} steps", height=560)


def surrogate_figure(names: Sequence[str] | None = None, threshold: float = 1.0, *,
                     points: int = 801) -> go.Figure:
    """The spike function s = H(U − θ) (forward) and the surrogates of ∂s/∂U used in its place in the
    backward pass (`bntt_core.nn.surrogate`), over U from −θ to 3θ. `names=None` draws all of them."""
    if not float(threshold) > 0:
        raise ValueError(f"threshold must be > 0; got {threshold}")
    names = list(SURROGATES) if names is None else list(names)
    if not names:
        raise ValueError(f"no surrogate chosen; known: {list(SURROGATES)}")
    threshold = float(threshold)
    membrane = torch.linspace(-threshold, 3.0 * threshold, int(points), dtype=torch.float64)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1, row_heights=[0.35, 0.65],
                        subplot_titles=("forward: spike s = H(U − θ)", "backward: surrogate ∂s/∂U"))
    fig.add_trace(go.Scatter(x=membrane.numpy(), y=(membrane > threshold).double().numpy(), mode="lines",
                             line_shape="hv", name="Heaviside step", line=dict(color="#222222", width=2)),
                  row=1, col=1)
    palette = [METHOD_COLORS["bntt"], METHOD_COLORS["bn"], METHOD_COLORS["ln"], *OTHER_RUN_COLORS]
    for i, name in enumerate(names):
        gradient = get_surrogate(name)(membrane, threshold)  # unknown names raise a ValueError listing all
        fig.add_trace(go.Scatter(x=membrane.numpy(), y=gradient.numpy(), mode="lines", name=name,
                                 line=dict(color=palette[i % len(palette)], width=2.5),
                                 hovertemplate=f"{name}<br>U = %{{x:.3f}}<br>∂s/∂U ≈ %{{y:.4f}}<extra></extra>"),
                      row=2, col=1)
    for row in (1, 2):
        fig.add_vline(x=threshold, line=dict(color="#7F7F7F", dash="dot"), row=row, col=1)
    fig.update_yaxes(title_text="s", tickvals=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text="∂s/∂U", row=2, col=1)
    fig.update_xaxes(title_text=f"membrane potential U (threshold θ = {threshold:g})", row=2, col=1)
    return _style(fig, "Surrogate gradients: a smooth stand-in for the spike's derivative", height=520)


def encoding_figure(frames: np.ndarray, title: str, *, max_steps: int = 6) -> go.Figure:
    """A few time steps of an encoded image, plus the mean over all steps (what a rate code adds up to).

    `frames`: [T, H, W], or [T, C, H, W] (channels are averaged for display), e.g. Poisson spikes or the
    direct (analog) input. Signed inputs get a diverging scale centred on 0, non-negative ones grey.
    """
    array = np.asarray(frames, dtype=float)
    if array.ndim == 4:
        array = array.mean(axis=1)
    if array.ndim != 3:
        raise ValueError(f"frames must be [T, H, W] or [T, C, H, W]; got shape {np.shape(frames)}")
    if array.size == 0:
        raise ValueError("frames are empty: nothing to draw")
    num_steps = array.shape[0]
    shown = sorted({int(round(i)) for i in np.linspace(0, num_steps - 1, min(int(max_steps), num_steps))})
    panels = [(f"t = {i + 1}", array[i]) for i in shown] + [(f"mean over {num_steps} steps", array.mean(axis=0))]
    signed = bool((array < 0).any())
    limit = float(np.abs(array).max()) or 1.0
    coloraxis = (dict(colorscale="RdBu_r", cmin=-limit, cmax=limit) if signed
                 else dict(colorscale=[[0, "black"], [1, "white"]], cmin=0.0, cmax=limit))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for name, _ in panels],
                        horizontal_spacing=0.02)
    for col, (name, image) in enumerate(panels, start=1):
        fig.add_trace(go.Heatmap(z=image, coloraxis="coloraxis", name=name,
                                 hovertemplate=f"{name}<br>row %{{y}}, col %{{x}}<br>value %{{z:.3g}}<extra></extra>"),
                      row=1, col=col)
        anchor = "x" if col == 1 else f"x{col}"
        fig.update_yaxes(autorange="reversed", scaleanchor=anchor, showticklabels=False, showgrid=False,
                         zeroline=False, row=1, col=col)
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=col)
    fig.update_layout(coloraxis=dict(**coloraxis, colorbar=dict(title=dict(text="input"))))
    return _style(fig, title, height=max(260, int(1200 / len(panels)) + 120))


def raster_figure(spikes: np.ndarray | pd.DataFrame, neuron_ids: Sequence[int] | None = None) -> go.Figure:
    """Spike raster of a few neurons over time, with the number of spikes per step above it.

    `spikes`: [T, N] of 0/1, column j being neuron `neuron_ids[j]` (default 0..N−1); or the long table
    of `bntt_core.teaching.record_spike_raster` (neuron, t, spike), whose neuron ids are used.
    """
    if isinstance(spikes, pd.DataFrame):
        table = _check_table(spikes, "spike raster", required=("neuron", "t", "spike"),
                             numeric=("neuron", "t", "spike"))
        grid = table.pivot_table(index="t", columns="neuron", values="spike", aggfunc="max").sort_index()
        neuron_ids = [int(n) for n in grid.columns]
        array = grid.fillna(0).to_numpy(dtype=float)
    else:
        array = np.asarray(spikes, dtype=float)
        if array.ndim != 2:
            raise ValueError(f"spikes must be [T, N]; got shape {array.shape}")
        if array.size == 0:
            raise ValueError("spikes are empty: nothing to draw")
    num_steps, num_neurons = array.shape
    ids = list(range(num_neurons)) if neuron_ids is None else [int(n) for n in neuron_ids]
    if len(ids) != num_neurons:
        raise ValueError(f"neuron_ids has {len(ids)} ids for {num_neurons} neurons")
    step_index, neuron_index = np.nonzero(array > 0)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.05, row_heights=[0.22, 0.78])
    fig.add_trace(go.Bar(x=np.arange(1, num_steps + 1), y=(array > 0).sum(axis=1), name="spikes per step",
                         marker_color=METHOD_COLORS["none"], showlegend=False,
                         hovertemplate="t = %{x}<br>%{y} spikes<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=step_index + 1, y=neuron_index, mode="markers", name="spike", showlegend=False,
        marker=dict(symbol="line-ns-open", size=max(6, min(16, 400 // max(num_neurons, 1))),
                    color=METHOD_COLORS["bntt"], line=dict(width=2, color=METHOD_COLORS["bntt"])),
        customdata=np.asarray(ids)[neuron_index] if len(neuron_index) else None,
        hovertemplate="neuron %{customdata}<br>t = %{x}<extra></extra>",
    ), row=2, col=1)
    every = max(1, math.ceil(num_neurons / 32))  # keep the tick labels readable
    fig.update_yaxes(title_text="spikes", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="neuron", range=[num_neurons - 0.5, -0.5], tickvals=list(range(0, num_neurons, every)),
                     ticktext=[str(ids[i]) for i in range(0, num_neurons, every)], showgrid=False, row=2, col=1)
    fig.update_xaxes(title_text="time step t", range=[0.5, num_steps + 0.5], row=2, col=1)
    total = int((array > 0).sum())
    return _style(fig, f"Spike raster: {num_neurons} neurons over {num_steps} steps ({total} spikes)",
                  height=max(380, 14 * num_neurons + 200))


def bn_vs_bntt_figure(demo: pd.DataFrame) -> go.Figure:
    """Why per-step statistics matter, from `bntt_core.teaching.bn_vs_bntt_demo`'s table (a row per step:
    t, input_mean, input_std, bn_running_mean, bntt_running_mean, bn_output_mean, bn_output_std,
    bntt_output_mean, bntt_output_std).

    Left: the input's mean (± std) at each step against BN's one stored mean and BNTT's per-step ones.
    Right: the normalised output at inference — BNTT stays near mean 0 at every step, standard BN (one
    stored mean for all steps) is off wherever the step's mean differs from that stored one.
    """
    df = _check_table(demo, "bn_vs_bntt_demo", required=BN_VS_BNTT_COLUMNS, numeric=BN_VS_BNTT_COLUMNS)
    df = df.sort_values("t")
    t = df["t"]
    bn_color, bntt_color = METHOD_COLORS["bn"], METHOD_COLORS["bntt"]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        "input to the norm layer and the stored means", "normalised output at inference (mean ± std)"))

    def band(mean: pd.Series, std: pd.Series, rgba: str, name: str, col: int) -> None:
        fig.add_trace(go.Scatter(x=pd.concat([t, t[::-1]]), y=pd.concat([mean + std, (mean - std)[::-1]]),
                                 fill="toself", fillcolor=rgba, line=dict(width=0), hoverinfo="skip",
                                 name=name, showlegend=False), row=1, col=col)

    band(df["input_mean"], df["input_std"], "rgba(127, 127, 127, 0.18)", "input ± std", 1)
    fig.add_trace(go.Scatter(x=t, y=df["input_mean"], name="input mean at step t", mode="lines+markers",
                             line=dict(color="#444444", width=2)), row=1, col=1)
    fig.add_trace(go.Scatter(x=t, y=df["bn_running_mean"], name="BN: one stored mean", mode="lines",
                             line=dict(color=bn_color, dash="dash", width=2.5)), row=1, col=1)
    fig.add_trace(go.Scatter(x=t, y=df["bntt_running_mean"], name="BNTT: a stored mean per step",
                             mode="markers", marker=dict(color=bntt_color, size=10, symbol="diamond")), row=1, col=1)

    band(df["bn_output_mean"], df["bn_output_std"], "rgba(213, 94, 0, 0.15)", "BN output ± std", 2)
    band(df["bntt_output_mean"], df["bntt_output_std"], "rgba(0, 114, 178, 0.15)", "BNTT output ± std", 2)
    fig.add_trace(go.Scatter(x=t, y=df["bn_output_mean"], name="BN output mean", mode="lines+markers",
                             line=dict(color=bn_color, width=2.5)), row=1, col=2)
    fig.add_trace(go.Scatter(x=t, y=df["bntt_output_mean"], name="BNTT output mean", mode="lines+markers",
                             line=dict(color=bntt_color, width=2.5)), row=1, col=2)
    fig.add_hline(y=0, line=dict(color="#7F7F7F", dash="dot"), row=1, col=2)
    fig.update_xaxes(title_text="time step t")
    fig.update_yaxes(title_text="input value (synaptic current)", row=1, col=1)
    fig.update_yaxes(title_text="normalised value", row=1, col=2)
    fig.update_layout(legend=dict(orientation="h", y=-0.2, x=0))
    return _style(fig, "One stored statistic for all steps (BN) vs one per time step (BNTT)", height=480)


# ------------------------------------------------------------------------------------- export


def figure_to_html(fig: go.Figure) -> str:
    """The figure as one self-contained HTML page: plotly.js is inlined, so it opens offline."""
    # auto_play off: an exported animation (Fig 6) opens at its first step, like the dashboard
    return fig.to_html(include_plotlyjs=True, full_html=True, auto_play=False, config={"displaylogo": False})


_PNG_SCOPE = None
_PNG_SCOPE_LOCK = threading.Lock()


def _png_scope():
    """One kaleido 0.2.1 scope (a headless Chromium kept running) pointed at plotly's bundled
    plotly.min.js: plotly ≥ 6's own `to_image` wants kaleido ≥ 1, and the scope's default plotly.js
    is a CDN URL, which is unreachable offline."""
    global _PNG_SCOPE
    with _PNG_SCOPE_LOCK:
        if _PNG_SCOPE is None:
            from kaleido.scopes.plotly import PlotlyScope

            bundled = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")
            _PNG_SCOPE = PlotlyScope(plotlyjs=bundled, mathjax=False)
        return _PNG_SCOPE


def _restart_png_scope() -> None:
    """Drop the current kaleido scope and kill its browser process (without its lock, which a wedged
    transform holds): a blocked transform then returns with an error, and the next export starts afresh."""
    global _PNG_SCOPE
    with _PNG_SCOPE_LOCK:
        old, _PNG_SCOPE = _PNG_SCOPE, None
    process = getattr(old, "_proc", None)
    if process is not None and process.poll() is None:
        try:
            process.kill()
            process.wait(timeout=10)
        except Exception:  # already gone, or not killable: the next export starts a new one either way
            pass


class FigureExportError(RuntimeError):
    """A PNG that was asked for (batch export: notebooks, make figures, bntt commands) could not be made."""


BATCH_PNG_TIMEOUT_S = 600.0  # batch export waits this long per attempt (a loaded machine is slow, not broken)
INTERACTIVE_PNG_TIMEOUT_S = 60.0  # the dashboard's button: it offers the HTML download instead


def _render_png(fig: go.Figure, width: int | None, height: int | None, scale: float,
                timeout_s: float) -> tuple[bytes | None, str]:
    """One attempt: (PNG bytes, "") or (None, why)."""
    result: dict[str, object] = {}

    def render() -> None:
        try:
            # 1000 px wide unless told: kaleido's 700 px default crowds the multi-panel figures
            result["png"] = _png_scope().transform(fig, format="png", width=width or fig.layout.width or 1000,
                                                   height=height or fig.layout.height, scale=scale)
        except Exception as error:  # any failure of the external renderer is reported by the caller
            result["error"] = error

    # a thread, because a wedged browser would otherwise block the caller forever
    worker = threading.Thread(target=render, daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        _restart_png_scope()  # the next export starts a fresh browser instead of queueing behind this one
        return None, f"no answer within {timeout_s:.0f} s"
    if "error" in result:
        error = result["error"]
        return None, f"{type(error).__name__}: {str(error).strip()[:300]}"
    return result["png"], ""  # type: ignore[return-value]


def figure_to_png(fig: go.Figure, *, width: int | None = None, height: int | None = None,
                  scale: float = 2.0, name: str | None = None, interactive: bool = False,
                  timeout_s: float | None = None) -> bytes | None:
    """The figure as PNG bytes via kaleido.

    Batch export (the default: notebooks, `make figures`, bntt commands) waits for the renderer
    (BATCH_PNG_TIMEOUT_S per attempt), and if it fails or gives no answer retries once with a fresh
    browser; a PNG that still cannot be made raises FigureExportError naming the figure (`name`).
    interactive=True (the dashboard's PNG button) tries once within INTERACTIVE_PNG_TIMEOUT_S and
    returns None with a logged warning instead, so that the page can offer the HTML download.
    """
    if interactive:
        png, why = _render_png(fig, width, height, scale, timeout_s or INTERACTIVE_PNG_TIMEOUT_S)
        if png is None:
            logger.warning("PNG export failed (%s); offering HTML only", why)
        return png
    reasons = []
    for attempt in range(2):
        png, why = _render_png(fig, width, height, scale, timeout_s or BATCH_PNG_TIMEOUT_S)
        if png is not None:
            return png
        reasons.append(why)
        if attempt == 0:
            logger.warning("PNG export of %s failed (%s); retrying once with a fresh renderer",
                           name or "a figure", why)
            _restart_png_scope()
    raise FigureExportError(f"the PNG of figure {name or '(unnamed)'} could not be made: first try {reasons[0]}; "
                            f"retry with a fresh renderer {reasons[1]}")


def figure_data(data: pd.DataFrame | Mapping[str, pd.DataFrame], *, label_column: str = "run") -> bytes:
    """The data behind a figure as UTF-8 CSV bytes. A dict of tables (several runs, or the tables of
    one figure) becomes one table with the dict key in a first column named `label_column`."""
    if isinstance(data, pd.DataFrame):
        table = data
    elif isinstance(data, Mapping):
        if not data:
            raise ValueError("no tables given to export")
        parts = []
        for label, df in data.items():
            if not isinstance(df, pd.DataFrame):
                raise TypeError(f"entry {label!r} must be a DataFrame; got {type(df).__name__}")
            part = df.drop(columns=[label_column], errors="ignore")
            part.insert(0, label_column, str(label))
            parts.append(part)
        table = pd.concat(parts, ignore_index=True)
    else:
        raise TypeError(f"expected a DataFrame or a dict of DataFrames; got {type(data).__name__}")
    return table.to_csv(index=False).encode("utf-8")


# ---- standard metrics (NeuroBench)
STANDARD_METRIC_PANELS = (
    ("footprint_bytes", "footprint (KiB)", 1 / 1024),
    ("connection_sparsity", "connection sparsity (%)", 100.0),
    ("activation_sparsity", "activation sparsity (%)", 100.0),
)
SYNOPS_TRACES = (
    ("synops_dense", "dense", "#999999"),
    ("synops_effective_macs", "effective MACs", METHOD_COLORS["ann"]),
    ("synops_effective_acs", "effective ACs", METHOD_COLORS["bntt"]),
)


def standard_metrics_figure(tables: Mapping[str, pd.DataFrame]) -> go.Figure:
    """NeuroBench's standard metrics of several runs (`bntt_core.analysis.standard_metrics`, docs/METRICS.md): footprint,
    connection sparsity and activation sparsity (one bar per run), and the synaptic operations per image over
    one inference (dense, effective MACs, effective ACs; grouped per run, log axis).

    `tables`: {run label: standard_metrics table (one row)}."""
    numeric = [column for column, *_ in STANDARD_METRIC_PANELS] + [column for column, *_ in SYNOPS_TRACES]
    runs = _check_runs(tables, "standard_metrics", numeric=numeric)
    for label, df in runs.items():
        if len(df) != 1:
            raise ValueError(f"table 'standard_metrics' of run {label!r} has {len(df)} rows; expected one")
    labels = list(runs)
    colors = run_colors(labels)
    titles = [title for _, title, _ in STANDARD_METRIC_PANELS] + ["synaptic operations per image"]
    fig = make_subplots(rows=1, cols=4, subplot_titles=titles, column_widths=[0.2, 0.2, 0.2, 0.4],
                        horizontal_spacing=0.07)
    for col, (column, title, scale) in enumerate(STANDARD_METRIC_PANELS, start=1):
        values = [float(runs[label][column].iloc[0]) * scale for label in labels]
        fig.add_trace(go.Bar(x=labels, y=values, marker_color=[colors[label] for label in labels], showlegend=False,
                             hovertemplate=f"%{{x}}<br>{title}: %{{y:.4g}}<extra></extra>"), row=1, col=col)
    for column, name, color in SYNOPS_TRACES:
        fig.add_trace(go.Bar(x=labels, y=[float(runs[label][column].iloc[0]) for label in labels], name=name,
                             marker_color=color, offsetgroup=name,
                             hovertemplate=f"%{{x}}<br>{name}: %{{y:.4g}} per image<extra></extra>"), row=1, col=4)
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=labels)
    fig.update_yaxes(type="log", title_text="operations per image", row=1, col=4)
    fig.update_layout(barmode="group", legend=dict(orientation="h", y=-0.25, x=0.6))
    return _style(fig, "Standard metrics (NeuroBench) — per image, one inference of T steps", height=460)
