"""Figure builder tests: each builder drawn from small hand-made tables, checked for its traces, axes,
titles and the paper-specific marks (Fig 4's exit step against a hand-worked γ table, Fig 5's log axis,
Fig 6's slider and frames), plus the error paths and the export helpers.

Run: .venv/bin/python -m pytest tests/test_plots.py -q
"""

from __future__ import annotations

import io
import logging
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from bntt_core import viz
from bntt_core.analysis.tables import TABLES
from bntt_core.viz import export

# ---------------------------------------------------------------------------------- small tables

LAYERS = ["conv1", "conv2", "fc1"]


def spike_activity(steps: int = 4, scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame([(layer, t, scale * (i + 1) * t / 100) for i, layer in enumerate(LAYERS)
                         for t in range(1, steps + 1)], columns=["layer", "t", "spikes_per_neuron"])


def spike_rate(scale: float) -> pd.DataFrame:
    return pd.DataFrame({"layer": LAYERS, "rate": [scale, 2 * scale, 3 * scale]})


# Hand-worked γ table (T = 6). Max over layers per t: 0.9, 0.6, 0.3, 0.2, 0.05, 0.01.
# conv1 dips below 0.1 at t = 3 and rises again, so the rule must look at every later step, not the
# first dip: with threshold 0.1 the steps after t = 4 (5 and 6) are all below → exit at t = 4.
GAMMA_CONV1 = [0.9, 0.5, 0.05, 0.2, 0.05, 0.01]
GAMMA_CONV2 = [0.1, 0.6, 0.3, 0.08, 0.02, 0.01]


def gamma_mean() -> pd.DataFrame:
    rows = [("conv1", t, g) for t, g in enumerate(GAMMA_CONV1, start=1)]
    rows += [("conv2", t, g) for t, g in enumerate(GAMMA_CONV2, start=1)]
    return pd.DataFrame(rows, columns=["layer", "t", "mean_gamma"])


def gamma(steps: int = 3, channels: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame([(layer, t, c, float(rng.uniform(0, 1))) for layer in ("conv1", "conv4", "conv7")
                         for t in range(1, steps + 1) for c in range(channels)],
                        columns=["layer", "t", "channel", "gamma"])


def bn_input(running_mean: float | None) -> pd.DataFrame:
    return pd.DataFrame([(layer, t, 0.1 * t, 0.5, np.nan if running_mean is None else running_mean)
                         for layer in LAYERS for t in range(1, 4)],
                        columns=["layer", "t", "mean", "std", "running_mean"])


def bn_input_hist() -> pd.DataFrame:
    return pd.DataFrame([(layer, t, b / 4, (b + 1) / 4, 10 + b * t) for layer in LAYERS for t in range(1, 4)
                         for b in range(4)], columns=["layer", "t", "bin_left", "bin_right", "count"])


def early_exit() -> pd.DataFrame:
    return pd.DataFrame({"threshold": [0.05, 0.1, 0.2, 0.3], "exit_step": [6, 4, 3, 1],
                         "accuracy": [0.9, 0.88, 0.8, 0.5], "steps_saved": [0, 2, 3, 5]})


def dynamic_exit() -> pd.DataFrame:
    return pd.DataFrame({"confidence": [0.5, 0.9], "mean_exit_step": [2.5, 4.0], "accuracy": [0.85, 0.9],
                         "steps_saved": [3.5, 2.0]})


def energy(scale: float) -> pd.DataFrame:
    return pd.DataFrame({"layer": LAYERS, "synops": [1e6 * scale] * 3, "macs": [1e7] * 3,
                         "energy_pj": [0.9e6 * scale, 1.8e6 * scale, 0.1e6 * scale]})


def metrics() -> pd.DataFrame:
    return pd.DataFrame({"epoch": [1, 2, 3], "lr": [0.3, 0.3, 0.03], "train_loss": [2.0, 1.5, 1.0],
                         "train_acc": [0.3, 0.5, 0.6], "test_acc": [0.35, np.nan, 0.62],
                         "seconds": [60.0, 60.0, 60.0], "images_per_s": [800.0, 820.0, 810.0]})


def names(fig: go.Figure) -> list[str]:
    return [trace.name for trace in fig.data]


def annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


# ---------------------------------------------------------------------------------------- theme


@pytest.mark.parametrize(("label", "method"), [
    ("BNTT", "bntt"), ("C: BNTT", "bntt"), ("vgg9-bntt-cifar10", "bntt"), ("bn", "bn"),
    ("surrogate BN", "bn"), ("A: conversion", "converted"), ("converted (500 steps)", "converted"),
    ("ANN", "ann"), ("ln", "ln"), ("none", "none"), ("no norm", "none"), ("B: surrogate without BNTT", None),
    ("surrogate w/o BNTT", None), ("my run", None),
])
def test_method_of_reads_the_method_from_a_run_label(label, method):
    assert viz.method_of(label) == method


def test_run_colors_follow_the_method_and_never_repeat():
    colors = viz.run_colors(["BNTT", "bn", "BNTT again", "mystery"])
    assert colors["BNTT"] == viz.METHOD_COLORS["bntt"]
    assert colors["bn"] == viz.METHOD_COLORS["bn"]
    assert len(set(colors.values())) == 4


def test_run_colors_take_the_methods_given_over_the_label_text():
    colors = viz.run_colors(["run 1", "run 2", "BNTT"], methods={"run 1": "bn", "run 2": "ln"})
    assert colors == {"run 1": viz.METHOD_COLORS["bn"], "run 2": viz.METHOD_COLORS["ln"],
                      "BNTT": viz.METHOD_COLORS["bntt"]}  # a label the mapping does not hold: read from the text
    misleading = viz.run_colors(["BNTT"], methods={"BNTT": "bn"})
    assert misleading["BNTT"] == viz.METHOD_COLORS["bn"]
    assert viz.run_colors(["x"], methods={"x": "mystery"})["x"] in viz.OTHER_RUN_COLORS


# -------------------------------------------------------------------------------- Fig 1: spikes


def test_spike_activity_has_a_panel_per_run_and_a_line_per_layer():
    runs = {"A: conversion": spike_activity(8), "B: surrogate, no BNTT": spike_activity(), "C: BNTT": spike_activity()}
    fig = viz.spike_activity_figure(runs)
    assert len(fig.data) == 3 * len(LAYERS)
    assert names(fig)[:3] == LAYERS
    assert [t.showlegend for t in fig.data].count(True) == len(LAYERS)  # each layer once in the legend
    assert annotation_texts(fig) == list(runs)  # the subplot titles are the run labels
    assert "Fig 1" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "time step t"
    assert "spikes per neuron" in fig.layout.yaxis.title.text
    assert list(fig.data[0].x) == [1, 2, 3, 4, 5, 6, 7, 8]  # the conversion panel keeps its own T


def test_spike_heatmap_is_layer_by_step_with_shallow_layers_on_top():
    fig = viz.spike_heatmap_figure(spike_activity(5))
    heatmap = fig.data[0]
    assert list(heatmap.y) == LAYERS and list(heatmap.x) == [1, 2, 3, 4, 5]
    assert np.asarray(heatmap.z).shape == (3, 5)
    assert fig.layout.yaxis.autorange == "reversed"
    assert heatmap.z[2][4] == pytest.approx(3 * 5 / 100)


def test_spike_heatmap_refuses_repeated_rows():
    table = pd.concat([spike_activity(), spike_activity()])
    with pytest.raises(ValueError, match="several rows"):
        viz.spike_heatmap_figure(table)


# ------------------------------------------------------------------------------ Fig 3: BN input


def test_bn_input_figure_shows_the_chosen_steps_and_the_stored_running_mean():
    fig = viz.bn_input_figure(bn_input(0.25), bn_input_hist(), "conv2", steps=(1, 3))
    assert names(fig)[:2] == ["t = 1", "t = 3"]
    histogram = fig.data[0]
    assert sum(histogram.y) == pytest.approx(1.0)  # shown as the fraction of values per bin
    running = [t for t in fig.data if t.name.startswith("stored running mean")]
    assert len(running) == 1 and set(running[0].y) == {0.25}
    assert "Fig 3" in fig.layout.title.text and "conv2" in fig.layout.title.text
    assert fig.layout.xaxis2.title.text == "time step t"


def test_bn_input_figure_without_a_running_mean_draws_no_line():
    fig = viz.bn_input_figure(bn_input(None), bn_input_hist(), "conv1", steps=None)
    assert names(fig)[:3] == ["t = 1", "t = 2", "t = 3"]  # steps=None: first, middle, last
    assert not any(t.name.startswith("stored running mean") for t in fig.data)


def test_bn_input_figure_names_missing_steps_and_layers():
    with pytest.raises(ValueError, match=r"steps \[20\] were not recorded.*1\.\.3"):
        viz.bn_input_figure(bn_input(None), bn_input_hist(), "conv1", steps=(1, 20))
    with pytest.raises(ValueError, match="layer 'conv9'"):
        viz.bn_input_figure(bn_input(None), bn_input_hist(), "conv9")


# ----------------------------------------------------------------------------- Fig 4: mean γ


@pytest.mark.parametrize(("threshold", "expected"), [
    (0.1, 4),  # worked in the comment above gamma_mean()
    (0.25, 3),  # below from t = 4 on (0.2, 0.05, 0.01)
    (0.01, 6),  # nothing is strictly below 0.01: no early exit, t = T
    (1.0, 1),  # every step is below: the rule only asks about the steps after t
])
def test_exit_step_from_gamma_mean_matches_the_hand_worked_table(threshold, expected):
    assert viz.exit_step_from_gamma_mean(gamma_mean(), threshold) == expected


def test_the_exit_rule_is_the_one_of_early_exit_and_refuses_holes():
    from bntt_core.analysis import early_exit

    assert viz.exit_step_from_gamma_mean is early_exit.exit_step_from_gamma_mean  # one rule, not two
    table = gamma_mean()
    table.loc[(table.layer == "conv2") & (table.t == 5), "mean_gamma"] = np.nan
    with pytest.raises(ValueError, match="without a value"):
        viz.gamma_mean_figure(table)


def test_gamma_mean_figure_draws_the_threshold_shades_the_exit_and_annotates_it():
    fig = viz.gamma_mean_figure(gamma_mean(), threshold=0.1)
    assert names(fig) == ["conv1", "conv2", "max over layers", "threshold 0.1"]
    peak, threshold = fig.data[2], fig.data[3]
    assert list(peak.y) == [0.9, 0.6, 0.3, 0.2, 0.05, 0.01]
    assert set(threshold.y) == {0.1} and threshold.line.dash == "dash"
    assert peak.yaxis == threshold.yaxis == "y2"  # the lower panel
    exit_notes = [text for text in annotation_texts(fig) if "exit" in text and "t = " in text]
    assert exit_notes == ["early exit at t = 4 (skips 2 of 6 steps)"]
    shaded = [(s.x0, s.x1) for s in fig.layout.shapes if s.type == "rect"]
    assert shaded and set(shaded) == {(4, 6)}
    assert fig.layout.meta["exit_step"] == 4
    assert "Fig 4" in fig.layout.title.text
    assert fig.layout.xaxis2.title.text == "time step t"


def test_gamma_mean_figure_without_an_early_exit_says_so():
    fig = viz.gamma_mean_figure(gamma_mean(), threshold=0.01)
    assert any(text.startswith("no early exit: t = 6") for text in annotation_texts(fig))
    assert not [s for s in fig.layout.shapes if s.type == "rect"]


def test_gamma_heatmap_is_layer_by_step():
    fig = viz.gamma_heatmap_figure(gamma_mean())
    assert list(fig.data[0].y) == ["conv1", "conv2"]
    assert fig.data[0].z[0][2] == pytest.approx(0.05)
    assert fig.layout.xaxis.title.text == "time step t"


# -------------------------------------------------------------------------- Fig 5: spike rate


def test_spike_rate_figure_has_a_bar_per_run_on_a_log_axis():
    runs = {"conversion": spike_rate(100), "surrogate BN": spike_rate(10), "BNTT": spike_rate(1)}
    fig = viz.spike_rate_figure(runs)
    assert names(fig) == list(runs)
    assert all(isinstance(t, go.Bar) for t in fig.data)
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.barmode == "group"
    assert list(fig.layout.xaxis.categoryarray) == LAYERS
    assert fig.data[2].marker.color == viz.METHOD_COLORS["bntt"]
    assert fig.data[0].marker.color == viz.METHOD_COLORS["converted"]
    assert "log" in fig.layout.title.text and "Fig 5" in fig.layout.title.text


# --------------------------------------------------------------------------- Fig 6: γ histograms


def test_gamma_histogram_animates_every_step_with_a_slider_and_play_pause():
    fig = viz.gamma_histogram_figure(gamma(steps=3), bins=5)
    assert len(fig.data) == 3  # one histogram row per layer
    assert [f.name for f in fig.frames] == ["1", "2", "3"]
    assert all(len(f.data) == 3 for f in fig.frames)
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == ["1", "2", "3"]
    assert list(slider.steps[1].args[0]) == ["2"]
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["▶ play", "❚❚ pause"]
    for frame in fig.frames:  # frequency normalised to [0, 1]: the tallest bin is 1
        for trace in frame.data:
            assert max(trace.y) == pytest.approx(1.0) and min(trace.y) >= 0
    assert [a.text for a in fig.layout.annotations] == ["conv1", "conv4", "conv7"]
    assert "Fig 6" in fig.layout.title.text


def test_gamma_histogram_at_one_step_is_static():
    fig = viz.gamma_histogram_figure(gamma(steps=3), layers=["conv4"], step=2, bins=4)
    assert len(fig.data) == 1 and not fig.frames and not fig.layout.sliders
    assert "t = 2" in fig.layout.title.text
    assert sum(np.asarray(fig.data[0].y) == 1.0) >= 1


def test_gamma_histogram_names_unknown_layers_and_steps():
    with pytest.raises(ValueError, match=r"layers \['conv9'\]"):
        viz.gamma_histogram_figure(gamma(), layers=["conv1", "conv9"])
    with pytest.raises(ValueError, match="step 7"):
        viz.gamma_histogram_figure(gamma(steps=3), step=7)


# -------------------------------------------------------------------------- Fig 7: early exit


def test_early_exit_figure_has_accuracy_left_and_exit_step_right():
    fig = viz.early_exit_figure(early_exit())
    assert names(fig) == ["accuracy", "exit step"]
    assert list(fig.data[0].y) == pytest.approx([90, 88, 80, 50])  # fractions shown in percent
    assert fig.data[0].yaxis == "y" and fig.data[1].yaxis == "y2"
    assert fig.layout.yaxis.title.text == "accuracy (%)"
    assert fig.layout.yaxis2.title.text == "exit step t_exit"
    assert "threshold" in fig.layout.xaxis.title.text
    assert "Fig 7" in fig.layout.title.text


def test_early_exit_figure_marks_the_chosen_threshold():
    fig = viz.early_exit_figure(early_exit(), threshold=0.11)
    assert "chosen threshold" in names(fig)
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].x0 == 0.1  # the nearest grid threshold
    note = next(text for text in annotation_texts(fig) if text.startswith("threshold"))
    assert "exit at t = 4" in note and "88.00%" in note and "nearest grid value to 0.11" in note


def test_dynamic_exit_is_labelled_as_ours_beside_the_paper_curve():
    fig = viz.dynamic_exit_figure(dynamic_exit(), early_exit())
    assert names(fig)[0] == "ours: per-sample exit (not in the paper)"
    assert names(fig)[1].startswith("paper: γ-threshold exit")
    assert "ours, not in the paper" in fig.layout.title.text
    assert fig.layout.yaxis.title.text == "accuracy (%)"
    assert len(viz.dynamic_exit_figure(dynamic_exit()).data) == 1


# ---------------------------------------------------------------------- Fig 8, energy, others


@pytest.mark.parametrize(("kind", "column", "symbol"), [("noise", "sigma", "σ"), ("fgsm", "epsilon", "ε")])
def test_robustness_figure_draws_a_line_per_run(kind, column, symbol):
    table = pd.DataFrame({column: [0.0, 0.1, 0.2], "accuracy": [90.0, 70.0, 40.0]})  # already percent
    fig = viz.robustness_figure({"ANN": table, "BNTT": table}, kind=kind)
    assert names(fig) == ["ANN", "BNTT"]
    assert list(fig.data[0].y) == [90.0, 70.0, 40.0]
    assert symbol in fig.layout.xaxis.title.text
    assert fig.layout.yaxis.title.text == "accuracy (%)"
    assert ("Fig 8A" if kind == "noise" else "Fig 8B") in fig.layout.title.text


def test_robustness_figure_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown robustness kind 'blur'"):
        viz.robustness_figure({"BNTT": pd.DataFrame({"sigma": [0], "accuracy": [1]})}, kind="blur")


def test_energy_figure_shows_layers_and_totals_and_names_the_convention():
    fig = viz.energy_figure({"BNTT": energy(1), "ANN": energy(50)})
    assert names(fig) == ["BNTT", "BNTT", "ANN", "ANN", "same network as an ANN (MACs × 4.6 pJ)"]
    totals = [t for t in fig.data if t.xaxis == "x2"]
    assert [t.y[0] for t in totals[:2]] == pytest.approx([2.8e6, 1.4e8])
    ann_count = totals[2]  # the BNTT run's MACs at 4.6 pJ; the ANN run already is that count
    assert list(ann_count.x) == ["BNTT"] and ann_count.y[0] == pytest.approx(3e7 * 4.6)
    assert len(viz.energy_figure({"BNTT": energy(1)}, ann_pj_per_mac=None).data) == 2
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis2.type == "log"
    assert fig.layout.yaxis.title.text == "energy (pJ)"
    for part in ("synops × 0.9 pJ", "MACs × 4.6 pJ", "45 nm", "Horowitz 2014"):
        assert part in fig.layout.title.text


def test_energy_figure_takes_the_ann_run_from_the_methods_given():
    fig = viz.energy_figure({"reference": energy(50), "mine": energy(1)}, methods={"reference": "ann", "mine": "bntt"})
    ann_count = [t for t in fig.data if t.xaxis == "x2"][2]
    assert list(ann_count.x) == ["mine"]  # "reference" is the ANN, though its label does not say so
    assert fig.data[0].marker.color == viz.METHOD_COLORS["ann"]


def test_accuracy_by_step_figure():
    table = pd.DataFrame({"t": [1, 2, 3], "accuracy": [0.5, 0.7, 0.8]})
    fig = viz.accuracy_by_step_figure({"BNTT": table, "bn": table}, log_x=True)
    assert names(fig) == ["BNTT", "bn"]
    assert list(fig.data[0].y) == pytest.approx([50, 70, 80])
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.title.text == "accuracy (%)"


def test_the_figures_that_compare_runs_colour_them_by_the_methods_given():
    table = pd.DataFrame({"t": [1, 2, 3], "accuracy": [0.5, 0.7, 0.8]})
    methods = {"run-a": "bntt", "run-b": "none"}  # folder names that say nothing about the method
    fig = viz.accuracy_by_step_figure({"run-a": table, "run-b": table}, methods=methods)
    assert [t.line.color for t in fig.data] == [viz.METHOD_COLORS["bntt"], viz.METHOD_COLORS["none"]]
    without = viz.accuracy_by_step_figure({"run-a": table, "run-b": table})
    assert {t.line.color for t in without.data} <= set(viz.OTHER_RUN_COLORS)
    noise = pd.DataFrame({"sigma": [0.0, 0.1], "accuracy": [0.9, 0.8]})
    fig = viz.robustness_figure({"run-a": noise, "run-b": noise}, "noise", methods=methods)
    assert [t.line.color for t in fig.data] == [viz.METHOD_COLORS["bntt"], viz.METHOD_COLORS["none"]]


def test_training_curves_figure_skips_epochs_without_a_test():
    fig = viz.training_curves_figure(metrics())
    assert names(fig) == ["train loss", "train accuracy", "test accuracy", "learning rate", "images / s"]
    assert list(fig.data[2].x) == [1, 3]
    assert fig.layout.yaxis3.type == "log"  # learning rate
    assert "3 epochs" in fig.layout.title.text


def test_training_loss_figure_is_one_line_of_loss_per_batch():
    loss_curve = pd.DataFrame({"batch": range(1, 5), "loss": [2.3, 1.9, 1.4, 1.2]})
    fig = viz.training_loss_figure(loss_curve)
    assert len(fig.data) == 1 and fig.data[0].mode == "lines"
    assert list(fig.data[0].x) == [1, 2, 3, 4] and list(fig.data[0].y) == [2.3, 1.9, 1.4, 1.2]
    assert fig.layout.title.text == "Training loss per batch"
    assert fig.layout.xaxis.title.text == "batch" and fig.layout.yaxis.title.text == "loss"
    assert fig.layout.template.layout.font.family == viz.FONT_FAMILY
    with pytest.raises(ValueError, match=r"missing required columns \['loss'\]"):
        viz.training_loss_figure(pd.DataFrame({"batch": [1]}))


def test_compare_figure_has_a_panel_per_metric_and_a_legend_per_method():
    summary = pd.DataFrame({"run": ["bntt-25", "bn-25", "ann"], "method": ["bntt", "bn", "ann"],
                            "accuracy": [0.9, 0.85, 0.92], "steps": [25, 25, 1],
                            "spike_rate": [1.0, 5.0, np.nan], "energy_pj": [1e6, 5e6, 5e7],
                            "noise_auc": [0.6, 0.5, 0.4], "fgsm_accuracy": [0.4, 0.3, 0.1]})
    fig = viz.compare_figure(summary)
    assert len(fig.layout.annotations) == 6  # one titled panel per metric
    assert [t.name for t in fig.data if t.showlegend] == ["BNTT", viz.METHOD_NAMES["bn"], "ANN"]
    assert len(fig.data) == 6 * 3
    assert fig.data[0].y[0] == pytest.approx(90.0)  # accuracy in percent
    assert fig.layout.yaxis3.type == "log" and fig.layout.yaxis4.type == "log"  # spikes, energy
    only = viz.compare_figure(summary, metrics=["energy_pj"])
    assert len(only.data) == 3


def test_compare_figure_errors():
    with pytest.raises(ValueError, match=r"missing required columns \['method'\]"):
        viz.compare_figure(pd.DataFrame({"run": ["a"], "accuracy": [1.0]}))
    with pytest.raises(ValueError, match="no metric column"):
        viz.compare_figure(pd.DataFrame({"run": ["a"], "method": ["bntt"]}))
    with pytest.raises(ValueError, match=r"missing metric columns \['fgsm_accuracy'\]"):
        viz.compare_figure(pd.DataFrame({"run": ["a"], "method": ["bntt"], "accuracy": [1.0]}),
                             metrics=["fgsm_accuracy"])


# ------------------------------------------------------------------------------------ teaching


def test_lif_trace_figure_marks_the_spikes_and_the_threshold():
    membrane = np.array([0.4, 0.8, 1.2, 0.5, 1.1])
    spikes = (membrane > 1.0).astype(float)
    fig = viz.lif_trace_figure(np.full(5, 0.4), membrane, spikes, 1.0, membrane_after_reset=membrane - spikes)
    assert "threshold θ = 1" in names(fig)
    fired = next(t for t in fig.data if t.name == "fires (U > θ)")
    assert list(fired.x) == [3, 5]
    sawtooth = next(t for t in fig.data if t.name == "membrane U (with reset)")
    assert list(sawtooth.y) == pytest.approx([0.4, 0.8, 1.2, 0.2, 0.5, 1.1, 0.1])
    assert fig.layout.title.text == "LIF neuron: 2 spikes in 5 steps"
    with pytest.raises(ValueError, match="same length"):
        viz.lif_trace_figure(np.ones(3), np.ones(4), np.ones(3), 1.0)


def test_surrogate_figure_draws_the_step_and_each_surrogate():
    fig = viz.surrogate_figure(["triangle", "atan"], threshold=1.0)
    assert names(fig) == ["Heaviside step", "triangle", "atan"]
    triangle = fig.data[1]
    assert max(triangle.y) == pytest.approx(0.3, abs=1e-3)  # α = 0.3 at U = θ
    assert len(viz.surrogate_figure(None).data) == 1 + len(viz.SURROGATES)
    with pytest.raises(ValueError, match="unknown surrogate"):
        viz.surrogate_figure(["sigmoidish"])


def test_encoding_figure_shows_a_few_steps_and_the_mean():
    frames = (np.random.default_rng(0).random((10, 1, 6, 6)) < 0.3).astype(float)
    fig = viz.encoding_figure(frames, "Poisson coding", max_steps=3)
    assert annotation_texts(fig) == ["t = 1", "t = 5", "t = 10", "mean over 10 steps"]
    assert fig.layout.title.text == "Poisson coding"
    assert np.asarray(fig.data[-1].z) == pytest.approx(frames[:, 0].mean(axis=0))
    with pytest.raises(ValueError, match=r"\[T, H, W\]"):
        viz.encoding_figure(np.ones((4, 4)), "bad")


def test_raster_figure_from_an_array_and_from_a_long_table():
    spikes = np.zeros((4, 3))
    spikes[0, 1] = spikes[2, 2] = spikes[3, 2] = 1
    fig = viz.raster_figure(spikes, neuron_ids=[10, 11, 12])
    raster = fig.data[1]
    assert list(raster.x) == [1, 3, 4] and list(raster.customdata) == [11, 12, 12]
    assert list(fig.data[0].y) == [1, 0, 1, 1]  # spikes per step
    assert fig.layout.title.text == "Spike raster: 3 neurons over 4 steps (3 spikes)"
    long = pd.DataFrame({"neuron": np.repeat([10, 11, 12], 4), "t": np.tile([1, 2, 3, 4], 3),
                         "spike": spikes.T.reshape(-1).astype(int)})
    from_table = viz.raster_figure(long)
    assert list(from_table.data[1].x) == [1, 3, 4] and list(from_table.data[1].customdata) == [11, 12, 12]


def test_bn_vs_bntt_figure_from_the_demo_table():
    steps = np.arange(1, 5)
    demo = pd.DataFrame({"t": steps, "input_mean": steps * 1.0, "input_std": 1.0, "bn_running_mean": 2.5,
                         "bntt_running_mean": steps * 1.0, "bn_output_mean": steps - 2.5, "bn_output_std": 1.0,
                         "bntt_output_mean": 0.0, "bntt_output_std": 1.0})
    fig = viz.bn_vs_bntt_figure(demo)
    shown = [n for n, t in zip(names(fig), fig.data, strict=True) if t.showlegend is not False]
    assert shown == ["input mean at step t", "BN: one stored mean", "BNTT: a stored mean per step",
                     "BN output mean", "BNTT output mean"]
    assert "BN" in fig.layout.title.text and "BNTT" in fig.layout.title.text
    with pytest.raises(ValueError, match="bntt_output_std"):
        viz.bn_vs_bntt_figure(demo.drop(columns=["bntt_output_std"]))


def test_bn_vs_bntt_figure_takes_the_explore_demo_as_is():
    from bntt_core.teaching import bn_vs_bntt_demo

    fig = viz.bn_vs_bntt_figure(bn_vs_bntt_demo(num_steps=3, channels=2, batch_size=8, train_batches=2))
    assert len(fig.data) == 8


# ---------------------------------------------------------------------------------- validation


def _table_builders():
    """(table name, a call that draws a given table with everything else valid)."""
    return {
        "spike_activity": lambda df: viz.spike_activity_figure({"run": df}),
        "spike_rate": lambda df: viz.spike_rate_figure({"run": df}),
        "bn_input": lambda df: viz.bn_input_figure(df, bn_input_hist(), "conv1", steps=None),
        "bn_input_hist": lambda df: viz.bn_input_figure(bn_input(None), df, "conv1", steps=None),
        "gamma": lambda df: viz.gamma_histogram_figure(df),
        "gamma_mean": lambda df: viz.gamma_mean_figure(df),
        "early_exit": lambda df: viz.early_exit_figure(df),
        "early_exit_summary": lambda df: viz.early_exit_comparison_figure(
            {"run": pd.DataFrame({"t": [1, 2], "accuracy": [0.5, 0.6]})}, df),
        "dynamic_exit": lambda df: viz.dynamic_exit_figure(df),
        "noise": lambda df: viz.robustness_figure({"run": df}, kind="noise"),
        "fgsm": lambda df: viz.robustness_figure({"run": df}, kind="fgsm"),
        "energy": lambda df: viz.energy_figure({"run": df}),
        "accuracy_by_step": lambda df: viz.accuracy_by_step_figure({"run": df}),
    }


@pytest.mark.parametrize("table", sorted(_table_builders()))
def test_a_missing_column_is_named(table):
    columns = TABLES[table]
    frame = pd.DataFrame({c: [1.0] for c in columns[1:]})  # drop the first required column
    with pytest.raises(ValueError, match=rf"table '{table}'.*missing required columns \['{columns[0]}'\]"):
        _table_builders()[table](frame)


@pytest.mark.parametrize("table", sorted(_table_builders()))
def test_an_empty_table_is_refused(table):
    with pytest.raises(ValueError, match=rf"table '{table}'.* is empty"):
        _table_builders()[table](pd.DataFrame(columns=list(TABLES[table])))


def test_missing_metrics_columns_are_named():
    with pytest.raises(ValueError, match=r"'metrics.csv' is missing required columns \['images_per_s'\]"):
        viz.training_curves_figure(metrics().drop(columns=["images_per_s"]))


def test_comparison_inputs_must_be_a_dict_of_runs():
    with pytest.raises(ValueError, match="no runs given"):
        viz.spike_rate_figure({})
    with pytest.raises(TypeError, match="wrap it"):
        viz.spike_rate_figure(spike_rate(1))
    with pytest.raises(ValueError, match="of run 'second'.*missing required columns"):
        viz.spike_rate_figure({"first": spike_rate(1), "second": pd.DataFrame({"layer": ["conv1"]})})


def test_non_numeric_values_are_refused():
    table = pd.DataFrame({"t": [1, 2], "accuracy": [0.5, "high"]})
    with pytest.raises(ValueError, match="'accuracy' must be numeric"):
        viz.accuracy_by_step_figure({"run": table})


# -------------------------------------------------------------------------------------- export


def test_figure_to_html_is_self_contained():
    html = viz.figure_to_html(viz.gamma_heatmap_figure(gamma_mean()))
    assert "<html>" in html[:100] and html.rstrip().endswith("</html>")
    assert not re.search(r"<script[^>]*\ssrc=", html)  # nothing fetched: plotly.js is inlined, works offline
    assert "plotly.js v" in html
    animated = viz.figure_to_html(viz.gamma_histogram_figure(gamma(steps=2), bins=3))
    assert "Plotly.animate" not in animated  # Fig 6 opens at its first step instead of playing on load
    assert len(html) > 1_000_000


@pytest.mark.filterwarnings("ignore:setDaemon:DeprecationWarning")  # inside kaleido 0.2.1
def test_figure_to_png_renders_offline_or_says_why(caplog):
    fig = viz.spike_rate_figure({"BNTT": spike_rate(1)})
    png = viz.figure_to_png(fig, width=400, height=300, scale=1, interactive=True)
    if png is None:
        pytest.skip(f"kaleido cannot render on this machine: {caplog.text.strip()}")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_figure_to_png_returns_none_with_a_warning_when_the_renderer_fails(monkeypatch, caplog):
    def broken_scope():
        raise RuntimeError("no browser")

    monkeypatch.setattr(export, "_png_scope", broken_scope)
    with caplog.at_level(logging.WARNING, logger="bntt_core.viz"):
        assert viz.figure_to_png(go.Figure(), interactive=True) is None
    assert "PNG export failed" in caplog.text and "no browser" in caplog.text


def test_figure_data_is_csv_and_labels_runs():
    single = viz.figure_data(spike_rate(1))
    assert pd.read_csv(io.BytesIO(single)).equals(spike_rate(1))
    both = pd.read_csv(io.BytesIO(viz.figure_data({"BNTT": spike_rate(1), "BN": spike_rate(2)})))
    assert list(both.columns) == ["run", "layer", "rate"]
    assert both["run"].tolist() == ["BNTT"] * 3 + ["BN"] * 3
