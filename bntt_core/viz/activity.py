"""Spiking activity: Fig 1 (mean spikes per neuron of every layer over t, a panel per run) and its heatmap,
Fig 5 (spike rate per layer, a bar per run, log axis), and the spike raster of a few neurons.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bntt_core.viz.checks import _check_runs, _check_table, _layer_order, _pivot
from bntt_core.viz.theme import METHOD_COLORS, _style, layer_colors, run_colors


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


def spike_rate_figure(tables: Mapping[str, pd.DataFrame], *, methods: Mapping[str, str] | None = None) -> go.Figure:
    """Fig 5: spike rate per layer (total spikes over T ÷ neurons), one bar per run, log y axis.

    `tables`: {run label: spike_rate table (layer, rate)}. A rate of 0 has no place on a log axis and
    shows as a missing bar.
    """
    runs = _check_runs(tables, "spike_rate", numeric=("rate",))
    layers = _layer_order(*runs.values())
    colors = run_colors(list(runs), methods)
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
