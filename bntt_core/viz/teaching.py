"""Teaching figures from plain arrays: one LIF neuron over time, its f–I curve, the surrogate gradients,
what an encoding feeds the network at each step, and why per-step statistics matter (BN vs BNTT).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from bntt_core.nn.surrogate import SURROGATES, get_surrogate
from bntt_core.viz.checks import _as_1d, _check_table
from bntt_core.viz.theme import METHOD_COLORS, OTHER_RUN_COLORS, TEMPLATE, _style, layer_colors

BN_VS_BNTT_COLUMNS = ("t", "input_mean", "input_std", "bn_running_mean", "bntt_running_mean",
                      "bn_output_mean", "bn_output_std", "bntt_output_mean", "bntt_output_std")


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


def firing_rate_figure(rates: pd.DataFrame) -> go.Figure:
    """The f–I curves of `bntt_core.paper.firing_rate_table`: spikes per step against the constant input
    current, a colour per leak and a dash per reset, in the package's figure style."""
    fig = go.Figure()
    leaks = sorted(rates["leak"].unique())
    colors = layer_colors([f"λ = {leak:g}" for leak in leaks])
    for reset, dash in zip(sorted(rates["reset"].unique(), reverse=True), ("solid", "dash", "dot"), strict=False):
        for leak in leaks:
            part = rates[(rates["reset"] == reset) & (rates["leak"] == leak)].sort_values("current")
            name = f"λ = {leak:g}"
            fig.add_trace(go.Scatter(x=part["current"], y=part["rate"], mode="lines", name=f"{name}, {reset} reset",
                                     line=dict(color=colors[name], dash=dash, width=2.5),
                                     hovertemplate=f"{name}, {reset} reset<br>I = %{{x:.3g}}<br>"
                                                   "%{y:.2f} spikes per step<extra></extra>"))
    fig.update_xaxes(title_text="constant input current I")
    fig.update_yaxes(title_text="firing rate (spikes per step)", rangemode="tozero")
    fig.update_layout(template=TEMPLATE, title_text="LIF firing rate vs input current (f–I curve)",
                      legend_title_text="leak, reset")
    return fig
