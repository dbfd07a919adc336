"""BNTT's γ: Fig 4 (mean γ per layer over t, and the early-exit step it gives), the mean-γ heatmap (layer ×
step, clickable cells), Fig 6 (γ histograms per layer, animated over t), and γ through training from
RUN/gamma_history.csv (bntt_core/analysis/gamma_history.py): the heatmap, the histograms and the percentile
bands over epochs, and the paper's exit step per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bntt_core.analysis.early_exit import exit_step_from_gamma_mean
from bntt_core.analysis.gamma_history import BIN_COLUMNS, PERCENTILES, exit_step_by_epoch
from bntt_core.analysis.gamma_history import COLUMNS as HISTORY_COLUMNS
from bntt_core.viz.checks import _check_table, _chosen_layers_and_steps, _layer_order, _pivot
from bntt_core.viz.distributions import _add_bands, _one_layer
from bntt_core.viz.theme import METHOD_COLORS, _style, layer_colors


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
    _animation_controls(fig, [str(s) for s in shown_steps], active=0, prefix="time step t = ", x=0.22, length=0.78,
                        play=[None, {"frame": {"duration": 350, "redraw": True}, "fromcurrent": True,
                                     "transition": {"duration": 0}}])
    return _style(fig, title, height=height + 80)


def _animation_controls(fig: go.Figure, names: list[str], *, active: int, prefix: str, x: float, length: float,
                        play: list) -> None:
    """A slider under the plot whose steps jump to the frames `names` (`active` shown first; `prefix`
    before the current one), and play / pause buttons left of it; `play`: the play button's animate args."""
    jump = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    fig.update_layout(
        sliders=[dict(
            active=active, y=0, yanchor="top", x=x, len=length, pad=dict(t=55),
            currentvalue=dict(prefix=prefix, font=dict(size=14)),
            steps=[dict(label=name, method="animate", args=[[name], jump]) for name in names],
        )],
        updatemenus=[dict(
            type="buttons", direction="left", x=0.0, y=0, xanchor="left", yanchor="top", pad=dict(t=60),
            showactive=False,
            buttons=[
                dict(label="▶ play", method="animate", args=play),
                dict(label="❚❚ pause", method="animate", args=[[None], jump]),
            ],
        )],
        margin=dict(b=150),
    )


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
    names = [str(e) for e in epochs]
    _animation_controls(fig, names, active=epochs.index(active), prefix="after epoch ", x=0.24, length=0.76,
                        play=[names, {"frame": {"duration": duration, "redraw": True}, "mode": "immediate",
                                      "transition": {"duration": 0}}])


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
