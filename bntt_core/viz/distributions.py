"""Distributions over time: Fig 3 (the input of a normalisation layer at a few steps, and its mean over t),
and one printable figure for a whole distribution over time — TensorBoard's two histogram views: a ridge plot
(one histogram per step, offset vertically, the first step at the top) and percentile bands (min–max, 7–93,
16–84, 31–69 and the median: TensorBoard's distribution percentiles, gamma_history.PERCENTILES) — for a
layer's γ and for its norm input, whose percentiles are read off the stored histogram
(`percentiles_from_histogram`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.colors as plotly_colors
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bntt_core.analysis.gamma_history import PERCENTILES
from bntt_core.viz.checks import _check_table, _layer_order
from bntt_core.viz.theme import METHOD_COLORS, _style


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
