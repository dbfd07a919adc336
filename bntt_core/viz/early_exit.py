"""Temporal early exit: Fig 7 (accuracy and exit step against the γ threshold, with the paper's τ and the τ
chosen on the validation slice marked), the exit rules against plain truncation, and the per-sample dynamic
exit (ours, not in the paper).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bntt_core.viz.checks import _check_runs, _check_table, _percent_factor
from bntt_core.viz.theme import METHOD_COLORS, OTHER_RUN_COLORS, _style, run_colors
from bntt_core.viz.training import _add_accuracy_lines


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


def early_exit_comparison_figure(accuracy_by_step: Mapping[str, pd.DataFrame], summary: pd.DataFrame, *,
                                 methods: Mapping[str, str] | None = None) -> go.Figure:
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
    colors = run_colors(list(runs), methods)
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
