"""Accuracy and training: accuracy after t steps (a line per run), a run's training curves (metrics.csv), the
loss per batch of a short training, and the Compare page's small multiples (a bar panel per metric).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bntt_core.analysis.summaries import COMPARE_METRICS
from bntt_core.runs.run_dir import METRICS_COLUMNS
from bntt_core.viz.checks import _check_runs, _check_table, _percent_factor
from bntt_core.viz.theme import METHOD_COLORS, METHOD_NAMES, OTHER_RUN_COLORS, TEMPLATE, _style, run_colors


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


def accuracy_by_step_figure(tables: Mapping[str, pd.DataFrame], *, log_x: bool = False,
                            methods: Mapping[str, str] | None = None) -> go.Figure:
    """Test accuracy of the output accumulated up to step t, against t, one line per run.

    `tables`: {run label: accuracy_by_step table (t, accuracy)}. `log_x` helps when a conversion run
    with hundreds of steps is drawn next to runs with tens.
    """
    runs = _check_runs(tables, "accuracy_by_step", numeric=("t", "accuracy"))
    factor = _percent_factor(*(df["accuracy"] for df in runs.values()))
    fig = go.Figure()
    _add_accuracy_lines(fig, runs, factor, run_colors(list(runs), methods))
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


def training_loss_figure(loss_curve: pd.DataFrame) -> go.Figure:
    """The training loss after every batch of a short training (a notebook's loop): one line, loss over
    batch. `loss_curve`: columns batch, loss."""
    import plotly.express as px  # here, not at the top: only this builder needs it, and it is slow to import

    _check_table(loss_curve, "loss_curve", required=("batch", "loss"), numeric=("batch", "loss"))
    return px.line(loss_curve, x="batch", y="loss", title="Training loss per batch", template=TEMPLATE)


# ---- compare (the known columns, their units and which way is better: analysis.summaries.COMPARE_METRICS)
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
