"""Distribution figures of bntt_core/viz/: the numbers in the traces are the table's.

Ridge plots (γ, BN input), percentile bands (γ over t, BN input over t from its histogram, γ over epochs),
the mean-γ heatmap's explicit colour range and its clickable cells, and γ through training (the animated
heatmap and histograms over epochs, the exit step per epoch) from a γ history made by
`bntt_core.analysis.gamma_history.gamma_summary` itself.

    .venv/bin/python -m pytest tests/test_plots_distributions.py -q
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from bntt_core import viz
from bntt_core.analysis import gamma_history
from bntt_core.nn.norms import BNTT

PERCENTILE_VALUES = list(gamma_history.PERCENTILES.values())


# ---------------------------------------------------------------------------------- small tables
def gamma_table(steps: int = 5, channels: int = 40, layers=("conv1", "conv2")) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame([(layer, t, c, float(rng.normal(1.0 / t, 0.1))) for layer in layers
                         for t in range(1, steps + 1) for c in range(channels)],
                        columns=["layer", "t", "channel", "gamma"])


def gamma_mean_table(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([(layer, t, v) for layer, row in values.items() for t, v in enumerate(row, start=1)],
                        columns=["layer", "t", "mean_gamma"])


def bn_hist_table(steps: int = 3, bins: int = 8) -> pd.DataFrame:
    edges = np.linspace(-1.0, 1.0, bins + 1)
    return pd.DataFrame([("conv1", t, edges[b], edges[b + 1], (b + 1) * t) for t in range(1, steps + 1)
                         for b in range(bins)], columns=["layer", "t", "bin_left", "bin_right", "count"])


def bn_input_table(steps: int = 3, below: int = 0, above: int = 0) -> pd.DataFrame:
    return pd.DataFrame([("conv1", t, 0.1 * t, 0.5, np.nan, below, above) for t in range(1, steps + 1)],
                        columns=["layer", "t", "mean", "std", "running_mean", "hist_below", "hist_above"])


class _Net(nn.Module):
    """Just enough of a SpikingNet for gamma_summary: named BNTT layers."""

    def __init__(self, steps: int, channels: dict[str, int]):
        super().__init__()
        self.norms = nn.ModuleDict({name: BNTT(c, steps) for name, c in channels.items()})

    def norm_layers(self) -> dict[str, nn.Module]:
        return dict(self.norms)


def history_table(epochs: int = 3, steps: int = 4) -> pd.DataFrame:
    """γ starts at 1 and decays over training, faster at late steps (as BNTT's does)."""
    net = _Net(steps, {"conv1": 16, "fc1": 24})
    generator = torch.Generator().manual_seed(0)
    rows = []
    for epoch in range(epochs + 1):
        with torch.no_grad():
            for norm in net.norm_layers().values():
                decay = torch.linspace(0.1, 0.9, steps)[:, None] * epoch / epochs  # [T, 1]
                noise = 0.05 * torch.randn(norm.weight.shape, generator=generator) * (epoch > 0)
                norm.weight.copy_(1.0 - decay + noise)
        rows.append(gamma_history.gamma_summary(net, epoch))
    return pd.concat(rows, ignore_index=True)


# -------------------------------------------------------------------------------------- ridge plots
def slice_counts(trace) -> np.ndarray:
    """The counts of a ridge slice: its customdata holds each bin's count twice (the step's two corners)."""
    return np.asarray(trace.customdata, dtype=float)[1:-1:2]


def test_gamma_ridge_slices_are_the_histograms_of_each_step() -> None:
    gamma = gamma_table()
    fig = viz.gamma_ridge_figure(gamma, "conv2", bins=12)
    layer = gamma[gamma["layer"] == "conv2"]
    edges = np.linspace(layer["gamma"].min(), layer["gamma"].max(), 13)
    assert [trace.name for trace in fig.data] == [f"t = {t}" for t in range(1, 6)]
    for t, trace in zip(range(1, 6), fig.data, strict=True):
        expected, _ = np.histogram(layer.loc[layer["t"] == t, "gamma"], bins=edges)
        np.testing.assert_array_equal(slice_counts(trace), expected)
        assert slice_counts(trace).sum() == 40  # every channel once
        np.testing.assert_allclose(np.unique(trace.x), edges)
    bases = [min(trace.y) for trace in fig.data]
    assert bases == sorted(bases, reverse=True)  # the first step at the top
    assert list(fig.layout.yaxis.ticktext) == ["1", "2", "3", "4", "5"]
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


def test_bn_input_ridge_slices_are_the_stored_counts_and_many_steps_are_spread() -> None:
    hist = bn_hist_table()
    fig = viz.bn_input_ridge_figure(hist, "conv1")
    for t, trace in zip((1, 2, 3), fig.data, strict=True):
        np.testing.assert_array_equal(slice_counts(trace), hist.loc[hist["t"] == t, "count"])
    many = bn_hist_table(steps=viz.MAX_RIDGE_SLICES + 20, bins=4)
    fig = viz.bn_input_ridge_figure(many, "conv1")
    assert len(fig.data) == viz.MAX_RIDGE_SLICES
    assert fig.data[0].name == "t = 1" and fig.data[-1].name == f"t = {viz.MAX_RIDGE_SLICES + 20}"
    assert "evenly spaced" in fig.layout.title.text
    assert len(viz.bn_input_ridge_figure(many, "conv1", steps=[2, 5]).data) == 2


# --------------------------------------------------------------------------------- percentile bands
def band_edges(fig, label: str) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) of the band trace named `label` (drawn as x then x reversed)."""
    trace = next(t for t in fig.data if t.name == label)
    y = np.asarray(trace.y, dtype=float)
    half = len(y) // 2
    return y[:half], y[half:][::-1]


def test_gamma_bands_are_np_percentile_of_the_channels() -> None:
    gamma = gamma_table()
    fig = viz.gamma_bands_figure(gamma, "conv1")
    layer = gamma[gamma["layer"] == "conv1"]
    expected = np.array([np.percentile(layer.loc[layer["t"] == t, "gamma"], PERCENTILE_VALUES)
                         for t in range(1, 6)])  # [T, 9]: min, 7, 16, 31, 50, 69, 84, 93, max
    for label, (low, high) in {"min – max": (0, 8), "7th – 93rd percentile": (1, 7),
                               "16th – 84th percentile": (2, 6), "31st – 69th percentile": (3, 5)}.items():
        upper, lower = band_edges(fig, label)
        np.testing.assert_allclose(upper, expected[:, high])
        np.testing.assert_allclose(lower, expected[:, low])
    median = next(t for t in fig.data if t.name == "median")
    np.testing.assert_allclose(median.y, expected[:, 4])
    np.testing.assert_allclose(np.asarray(median.customdata, dtype=float), expected)
    assert fig.layout.xaxis.title.text == "time step t"


def test_percentiles_from_a_histogram_interpolate_within_bins() -> None:
    # 10 values spread over [1, 2) and 10 over [2, 3): the median is 2, the quartiles 1.5 and 2.5
    left, right, counts = [0, 1, 2, 3], [1, 2, 3, 4], [0, 10, 10, 0]
    got = viz.percentiles_from_histogram(left, right, counts, [0, 25, 50, 75, 100])
    np.testing.assert_allclose(got, [1.0, 1.5, 2.0, 2.5, 3.0])
    # values beyond the range count at its edges: a percentile among them is the edge
    edged = viz.percentiles_from_histogram(left, right, counts, [0, 10, 50, 100], below=10, above=0)
    np.testing.assert_allclose(edged, [0.0, 0.0, 1.5, 3.0])
    # against np.percentile of many values: exact to within a bin
    values = np.random.default_rng(0).normal(size=200_000)
    many, edges = np.histogram(values, bins=200)
    approx = viz.percentiles_from_histogram(edges[:-1], edges[1:], many, PERCENTILE_VALUES[1:-1])
    assert np.abs(approx - np.percentile(values, PERCENTILE_VALUES[1:-1])).max() < np.diff(edges)[0]
    assert np.isnan(viz.percentiles_from_histogram([0], [1], [0], [50])).all()
    with pytest.raises(ValueError, match="0..100"):
        viz.percentiles_from_histogram(left, right, [0, 10, 10, 0], [101])


def test_bn_input_bands_come_from_the_stored_histogram() -> None:
    hist, stats = bn_hist_table(), bn_input_table(below=5, above=0)
    table = viz.bn_input_percentiles(hist, "conv1", stats)
    fig = viz.bn_input_bands_figure(hist, "conv1", stats)
    for t in (1, 2, 3):
        bins = hist[hist["t"] == t]
        expected = viz.percentiles_from_histogram(bins["bin_left"], bins["bin_right"], bins["count"], below=5)
        np.testing.assert_allclose(table.loc[table["t"] == t, list(gamma_history.PERCENTILES)].to_numpy()[0],
                                   expected)
    assert (table["min"] == -1.0).all()  # the out-of-range values sit at the left edge
    upper, lower = band_edges(fig, "16th – 84th percentile")
    np.testing.assert_allclose(upper, table["q84"])
    np.testing.assert_allclose(lower, table["q16"])
    assert "mean (all values)" in [t.name for t in fig.data]
    assert "beyond the histogram's range" in fig.layout.title.text
    assert viz.bn_input_bands_figure(hist, "conv1").data  # without bn_input: no mean, no edges


# -------------------------------------------------------------------------- heatmap colour range
QUIET = {"conv1": [0.81, 0.82, 0.83], "conv2": [0.815, 0.82, 0.825]}  # the narrow range that looked like structure


def test_fixed_scale_starts_at_zero_and_marks_the_run_max() -> None:
    fig = viz.gamma_heatmap_figure(gamma_mean_table(QUIET))
    heat = fig.data[0]
    assert (heat.zmin, heat.zmax) == (0.0, 1.0)
    assert any("max 0.83" in text for text in heat.colorbar.ticktext)
    assert "fixed 0–1" in heat.colorbar.title.text and "0.81–0.83" in fig.layout.title.text
    big = viz.gamma_heatmap_figure(gamma_mean_table({"conv1": [0.5, 1.4]}))
    assert (big.data[0].zmin, big.data[0].zmax) == (0.0, 1.4)  # up to max(1, the run's max)


def test_run_scale_spans_the_run_and_says_so() -> None:
    fig = viz.gamma_heatmap_figure(gamma_mean_table(QUIET), scale="run")
    heat = fig.data[0]
    assert heat.zmin == pytest.approx(0.81) and heat.zmax == pytest.approx(0.83)
    assert "this run's" in heat.colorbar.title.text and "0.81–0.83" in heat.colorbar.title.text
    with pytest.raises(ValueError, match="scale must be one of"):
        viz.gamma_heatmap_figure(gamma_mean_table(QUIET), scale="auto")


def test_selectable_heatmap_cells_read_back_as_layer_and_step() -> None:
    fig = viz.gamma_heatmap_figure(gamma_mean_table(QUIET), selectable=True)
    cells = fig.data[1]
    assert len(cells.x) == 6 and fig.data[0].hoverinfo == "skip"
    point = {"curve_number": 1, "point_index": 4, "x": cells.x[4], "y": cells.y[4],
             "customdata": list(cells.customdata[4])}
    assert viz.gamma_heatmap_cell({"selection": {"points": [point]}}) == ("conv2", 2)
    # a point of the heatmap itself (no customdata) reads from x and y
    assert viz.gamma_heatmap_cell({"selection": {"points": [{"x": 3, "y": "conv1"}]}}) == ("conv1", 3)
    for nothing in (None, {}, {"selection": {"points": []}}, {"selection": {"points": ["junk"]}}):
        assert viz.gamma_heatmap_cell(nothing) is None
    assert len(viz.gamma_heatmap_figure(gamma_mean_table(QUIET)).data) == 1  # not selectable: the heatmap only


# ---------------------------------------------------------------------------- γ through training
def test_history_heatmap_has_a_frame_per_epoch_and_one_colour_range() -> None:
    history = history_table(epochs=3)
    fig = viz.gamma_history_heatmap_figure(history)
    assert [frame.name for frame in fig.frames] == ["0", "1", "2", "3"]
    ranges = {(frame.data[0].zmin, frame.data[0].zmax) for frame in fig.frames}
    assert ranges == {(fig.data[0].zmin, fig.data[0].zmax)} == {(0.0, 1.0)}
    for frame in fig.frames:
        expected = gamma_history.gamma_mean_at(history, int(frame.name))
        grid = expected.pivot(index="layer", columns="t", values="mean_gamma").reindex(["conv1", "fc1"])
        np.testing.assert_allclose(np.asarray(frame.data[0].z, dtype=float), grid.to_numpy())
    np.testing.assert_allclose(np.asarray(fig.data[0].z, dtype=float), np.asarray(fig.frames[-1].data[0].z))
    assert [s.label for s in fig.layout.sliders[0].steps] == ["0", "1", "2", "3"]
    assert fig.layout.sliders[0].active == 3  # the last epoch shown first
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ play", "❚❚ pause"]
    run_scale = viz.gamma_history_heatmap_figure(history, scale="run", epoch=0)
    lowest = history["mean"].min()
    assert run_scale.data[0].zmin == pytest.approx(lowest) and run_scale.data[0].zmax == pytest.approx(1.0)
    assert run_scale.layout.sliders[0].active == 0


def test_history_histograms_are_the_stored_counts_in_one_x_range() -> None:
    history = history_table(epochs=2)
    fig = viz.gamma_history_histogram_figure(history, ["conv1", "fc1"], 3)
    assert [frame.name for frame in fig.frames] == ["0", "1", "2"]
    for frame in fig.frames:
        for trace, layer in zip(frame.data, ("conv1", "fc1"), strict=True):
            _left, counts = gamma_history.histogram_at(history, epoch=int(frame.name), layer=layer, t=3)
            np.testing.assert_array_equal(np.asarray(trace.y, dtype=float), counts)
    x_ranges = {tuple(fig.layout[axis].range) for axis in ("xaxis", "xaxis2")}
    assert len(x_ranges) == 1  # one x range for every row (and, set on the layout, every frame)
    low, high = x_ranges.pop()
    assert low <= 1.0 <= high  # epoch 0: every γ is 1
    y_top = fig.layout.yaxis2.range[1]
    assert y_top >= max(max(frame.data[1].y) for frame in fig.frames)
    with pytest.raises(ValueError, match="step 9"):
        viz.gamma_history_histogram_figure(history, ["conv1"], 9)
    with pytest.raises(ValueError, match=r"layers \['conv9'\]"):
        viz.gamma_history_histogram_figure(history, ["conv9"], 1)


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.35, 0.5, 0.8, 0.95, 1.0, 2.0])
def test_exit_step_by_epoch_figure_follows_the_paper_rule(threshold: float) -> None:
    history = history_table(epochs=4, steps=6)
    fig = viz.exit_step_by_epoch_figure(history, threshold)
    reference = gamma_history.exit_step_by_epoch(history, threshold)
    line = next(t for t in fig.data if t.name.startswith("exit step"))
    np.testing.assert_array_equal(np.asarray(line.y), reference["exit_step"])
    np.testing.assert_array_equal(np.asarray(line.x), reference["epoch"])
    assert fig.layout.meta["exit_steps"] == reference["exit_step"].tolist()
    total = next(t for t in fig.data if t.name.startswith("T = 6"))
    assert set(total.y) == {6}


def test_history_bands_are_the_stored_percentiles() -> None:
    history = history_table(epochs=3)
    fig = viz.gamma_history_bands_figure(history, "fc1", 2)
    rows = history[(history["layer"] == "fc1") & (history["t"] == 2)].sort_values("epoch")
    upper, lower = band_edges(fig, "7th – 93rd percentile")
    np.testing.assert_allclose(upper, rows["q93"])
    np.testing.assert_allclose(lower, rows["q07"])
    np.testing.assert_allclose(next(t for t in fig.data if t.name == "median").y, rows["q50"])


# ------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("build", [
    lambda df: viz.gamma_history_heatmap_figure(df),
    lambda df: viz.gamma_history_histogram_figure(df, None, 1),
    lambda df: viz.exit_step_by_epoch_figure(df, 0.1),
    lambda df: viz.gamma_history_bands_figure(df, "conv1", 1),
])
def test_history_figures_refuse_empty_or_foreign_tables_with_one_clear_error(build) -> None:
    history = history_table(epochs=1)
    with pytest.raises(ValueError, match="gamma_history.*empty"):
        build(history.iloc[0:0])
    with pytest.raises(ValueError, match="missing required columns.*h00"):
        build(history.drop(columns=["h00"]))
    with pytest.raises(ValueError, match="several rows"):
        build(pd.concat([history, history.iloc[:1]]))


@pytest.mark.parametrize("build", [
    lambda: viz.gamma_ridge_figure(gamma_table().iloc[0:0], "conv1"),
    lambda: viz.gamma_ridge_figure(gamma_table(), "conv9"),
    lambda: viz.gamma_ridge_figure(gamma_table(), "conv1", steps=[7]),
    lambda: viz.gamma_bands_figure(gamma_table().drop(columns=["gamma"]), "conv1"),
    lambda: viz.bn_input_ridge_figure(bn_hist_table().iloc[0:0], "conv1"),
    lambda: viz.bn_input_bands_figure(bn_hist_table(), "conv9"),
    lambda: viz.bn_input_bands_figure(bn_hist_table().assign(count=0), "conv1"),
    lambda: viz.gamma_heatmap_figure(gamma_mean_table({"conv1": [float("nan")] * 2})),
])
def test_distribution_figures_refuse_empty_or_invalid_tables(build) -> None:
    with pytest.raises(ValueError):
        build()
