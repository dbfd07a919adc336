"""Robustness, Fig 8: accuracy against Gaussian input noise σ (per noise mode: unclipped, clipped, shift) or
against the FGSM strength ε, one line per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from bntt_core.analysis.tables import NOISE_MODE_COLUMN, noise_modes, noise_table
from bntt_core.viz.checks import _check_runs, _percent_factor
from bntt_core.viz.theme import _style, run_colors

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
                      modes: Sequence[str] | None = None, methods: Mapping[str, str] | None = None) -> go.Figure:
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
    colors = run_colors(list(runs), methods)
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
