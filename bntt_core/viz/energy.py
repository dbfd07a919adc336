"""Cost per inference: energy per layer and in total (each spiking run also counted as an ANN, the paper's
supplement E), and NeuroBench's standard metrics (footprint, sparsity, synaptic operations).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bntt_core.viz.checks import _check_runs, _layer_order
from bntt_core.viz.theme import METHOD_COLORS, _method, _style, run_colors

ENERGY_CONVENTION = "E_SNN = synops × 0.9 pJ, E_ANN = MACs × 4.6 pJ (45 nm, Horowitz 2014)"


def energy_figure(tables: Mapping[str, pd.DataFrame], convention: str = ENERGY_CONVENTION, *,
                  ann_pj_per_mac: float | None = 4.6, methods: Mapping[str, str] | None = None) -> go.Figure:
    """Energy per inference: per layer (grouped bars, one per run) and in total, both on log axes.

    `tables`: {run label: energy table (layer, synops, macs, energy_pj)}. `energy_pj` is drawn as
    stored; `convention` (from the analysis meta.json, by default the SPEC's) names how it was counted.
    With `ann_pj_per_mac`, the totals panel also shows each spiking run's network counted as an ANN
    (its MACs × that energy): the comparison of the paper's supplement E. ANN runs get no such bar,
    their energy already is that count. `methods`: {run label: method} where the runs' methods are known
    (their configs); a run it does not hold is an ANN when its label says so (`method_of`). It colours
    the runs too (`run_colors`).
    """
    runs = _check_runs(tables, "energy", numeric=("synops", "macs", "energy_pj"))
    layers = _layer_order(*runs.values())
    colors = run_colors(list(runs), methods)
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
        spiking = [label for label in runs if _method(label, methods) != "ann"]
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


def standard_metrics_figure(tables: Mapping[str, pd.DataFrame], *, methods: Mapping[str, str] | None = None) -> go.Figure:
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
    colors = run_colors(labels, methods)
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
