"""Noise modes (unclipped | clipped | shift) through the noise table: reading old tables (no `mode` column:
clipped), the analysis writing one curve per mode, the figure, the Compare summary and the shipped runs.
The noise itself (bntt_core.analysis.robustness) is tested in tests/test_robustness.py.

    .venv/bin/python -m pytest tests/test_noise_modes.py -q
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from bntt_core import build_model, runs, teaching, viz
from bntt_core.analysis import DEFAULT_NOISE_MODES, AnalysisData, analyze_model, check_noise_modes, summaries
from bntt_core.analysis.tables import LEGACY_NOISE_MODE, common_noise_mode, noise_modes, noise_table

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "runs"
OLD = pd.DataFrame({"sigma": [0.0, 0.1, 0.2], "accuracy": [0.9, 0.8, 0.6], "correct": [9, 8, 6], "n": [10] * 3})


def both_modes(old: pd.DataFrame = OLD) -> pd.DataFrame:
    return pd.concat([old.assign(mode="unclipped", accuracy=old["accuracy"] - 0.1), old.assign(mode="clipped")],
                     ignore_index=True)


def test_an_old_table_without_the_mode_column_reads_as_clipped():
    assert LEGACY_NOISE_MODE == "clipped"
    read = noise_table(OLD)
    assert read["mode"].tolist() == ["clipped"] * 3 and "mode" not in OLD.columns  # the input is not changed
    pd.testing.assert_frame_equal(read.drop(columns="mode"), OLD)
    assert noise_table(OLD, "unclipped").empty and len(noise_table(OLD, "clipped")) == 3
    assert noise_modes(OLD) == ["clipped"]


def test_modes_of_a_new_table_and_the_mode_runs_share():
    new = both_modes()
    assert noise_modes(new) == ["unclipped", "clipped"]
    assert noise_table(new, "unclipped")["accuracy"].round(6).tolist() == [0.8, 0.7, 0.5]
    assert common_noise_mode([new, new]) == "unclipped"  # the paper's first
    assert common_noise_mode([new, OLD]) == "clipped"  # the only one an old table has
    assert common_noise_mode([OLD.assign(mode="shift"), new]) is None and common_noise_mode([]) is None


def test_every_shipped_noise_table_reads_with_its_modes():
    """Shipped runs analysed before the modes (no `mode` column) load and are labelled clipped (they stay
    current: staleness is about the weights, not the table's columns; tests/test_shipped_runs.py); those
    analysed since hold the default pair, unclipped and clipped."""
    paths = sorted(SHIPPED.glob("*/analysis/noise.csv"))
    assert len(paths) >= 10
    older = {}
    for path in paths:
        name, table = path.parent.parent.name, runs.read_table(path.parent.parent, "noise")
        if not len(table):
            continue
        if "mode" in pd.read_csv(path, nrows=0).columns:
            assert set(noise_modes(table)) == {"unclipped", "clipped"}, name
        else:
            assert noise_modes(table) == ["clipped"], name
            older[name] = table
    assert older, "no shipped table from before the modes left to check"
    fig = viz.robustness_figure(older)
    assert "clipped to [0, 1]" in fig.layout.xaxis.title.text


def test_check_noise_modes():
    from bntt_core import cli
    from bntt_core.analysis import robustness, tables

    assert robustness.NOISE_MODES == tables.NOISE_MODE_ORDER == cli.NOISE_MODES  # copies kept free of torch imports
    assert DEFAULT_NOISE_MODES == ("unclipped", "clipped") == tuple(cli.DEFAULT_NOISE_MODES.split(","))
    assert check_noise_modes("shift, clipped,shift") == ("shift", "clipped")
    with pytest.raises(ValueError, match="unknown noise mode 'blur'"):
        check_noise_modes(["unclipped", "blur"])
    with pytest.raises(ValueError, match="no noise mode"):
        check_noise_modes("")


def test_the_analysis_writes_one_curve_per_mode():
    torch.manual_seed(0)
    model = build_model("mlp", num_classes=3, in_channels=1, image_size=6, num_steps=2, width=0.05).eval()
    pixels = torch.randint(0, 256, (12, 1, 6, 6), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    data = AnalysisData(pixels=pixels, labels=torch.arange(12) % 3, mean=(0.5,), std=(0.25,))
    result = analyze_model(model, data, tables=["noise"], sigmas=(0.0, 0.5), batch_size=6, precision="fp32",
                           noise_modes=("unclipped", "clipped", "shift"))
    table = result.tables["noise"]
    assert table["mode"].tolist() == ["unclipped"] * 2 + ["clipped"] * 2 + ["shift"] * 2
    assert table["sigma"].tolist() == [0.0, 0.5] * 3
    assert table.loc[table["sigma"] == 0, "accuracy"].nunique() == 1  # σ = 0 is the clean accuracy in every mode
    assert result.notes["noise"]["modes"] == ["unclipped", "clipped", "shift"]
    default = analyze_model(model, data, tables=["noise"], sigmas=(0.0,), batch_size=6, precision="fp32")
    assert default.tables["noise"]["mode"].tolist() == ["unclipped", "clipped"]
    with pytest.raises(ValueError, match="unknown noise mode"):
        analyze_model(model, data, tables=["noise"], noise_modes=("gaussian",))


def test_the_figure_draws_one_line_style_per_mode():
    fig = viz.robustness_figure({"BNTT": both_modes(), "BN": OLD})
    names = [trace.name for trace in fig.data]
    assert names == ["BNTT · unclipped", "BNTT · clipped", "BN · clipped"]
    assert [trace.line.dash for trace in fig.data] == ["solid", "dash", "dash"]
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color  # colour = run
    assert "line style = mode" in fig.layout.xaxis.title.text and "pixel units" in fig.layout.xaxis.title.text
    only = viz.robustness_figure({"BNTT": both_modes(), "BN": OLD}, modes=["unclipped"])
    assert [trace.name for trace in only.data] == ["BNTT"]  # BN has no unclipped curve
    assert only.layout.xaxis.title.text == "Gaussian noise σ (pixel units, unclipped)"
    shift = viz.robustness_figure({"BNTT": OLD.assign(mode="shift")})
    assert "brightness shift" in shift.layout.xaxis.title.text and "brightness shift" in shift.layout.title.text
    with pytest.raises(ValueError, match="holds the mode"):
        viz.robustness_figure({"BN": OLD}, modes=["shift"])
    with pytest.raises(ValueError, match="several rows for the same mode, sigma"):
        viz.robustness_figure({"BN": pd.concat([OLD, OLD])})  # an old table with a repeated σ


def test_the_compare_summary_reads_one_mode_for_every_run():
    runs_data = {"BNTT": {"summary": {"norm": "bntt"}, "tables": {"noise": both_modes()}},
                 "BN": {"summary": {"norm": "bn"}, "tables": {"noise": both_modes()}}}
    auc = summaries.comparison_summary(runs_data)["noise_auc"].round(6).tolist()
    assert auc == [0.675, 0.675]  # unclipped: 0.8, 0.7, 0.5 → trapezoid mean
    assert summaries.comparison_summary(runs_data, noise_mode="clipped")["noise_auc"].round(6).tolist() == [0.775] * 2
    runs_data["BN"]["tables"]["noise"] = OLD  # an old table: the shared mode is clipped
    assert summaries.comparison_summary(runs_data)["noise_auc"].round(6).tolist() == [0.775] * 2
    summary = summaries.comparison_summary(runs_data, noise_mode="unclipped")
    assert summary["noise_auc"].isna().tolist() == [False, True]  # BN has no unclipped curve


def test_one_image_noise_modes():
    models = {"mlp": (build_model("mlp", num_classes=3, in_channels=1, image_size=6, num_steps=2, width=0.05).eval(),
                      type("Info", (), {"mean": (0.5,), "std": (0.25,)})())}
    pixels = torch.full((1, 1, 6, 6), 0.9)
    shifted = teaching.perturbation_predictions(models, pixels, 0, sigma=0.3, epsilon=0.0, noise_mode="shift")
    unclipped = teaching.perturbation_predictions(models, pixels, 0, sigma=0.3, epsilon=0.0)
    assert set(shifted["predictions"].columns) >= {"noisy", "noisy_confidence"}
    assert not torch.equal(torch.as_tensor(shifted["noisy"]), torch.as_tensor(unclipped["noisy"]))
    with pytest.raises(ValueError, match="unknown noise mode"):
        teaching.perturbation_predictions(models, pixels, 0, sigma=0.3, epsilon=0.0, noise_mode="salt")
