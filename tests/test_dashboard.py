"""Dashboard tests with `streamlit.testing.v1.AppTest`: every view runs without an exception and has its
widgets; the early-exit threshold slider moves the reported exit step; a broken or foreign run is
reported on its card without breaking the app; a path outside the run roots is refused; the Runs view
computes a run's missing analysis. Plus unit tests of the run-root and path-safety logic.

The runs are the tiny real ones of tests/conftest.py (`dashboard_run_root`).

    .venv/bin/python -m pytest tests/test_dashboard.py -q
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import APP, APPTEST_TIMEOUT_S, assert_clean, metric_value, open_view
from streamlit.testing.v1 import AppTest

from dashboard import state


def keys(elements) -> set[str]:
    return {e.key for e in elements}


# ------------------------------------------------------------------------ roots and path safety
def test_roots_from_env_adds_roots_and_can_drop_the_defaults(tmp_path: Path) -> None:
    extra = tmp_path / "more"
    roots = state.roots_from_env({state.RUN_ROOTS_ENV: f"{extra}{os.pathsep}{tmp_path}"})
    assert roots[: len(state.DEFAULT_RUN_ROOTS)] == list(state.DEFAULT_RUN_ROOTS)
    assert roots[-2:] == [extra, tmp_path]
    only = state.roots_from_env({state.RUN_ROOTS_ENV: str(extra), state.NO_DEFAULT_ROOTS_ENV: "1"})
    assert only == [extra]


def test_paths_inside_the_roots_are_accepted_and_escapes_refused(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    (root / "a" / "analysis").mkdir(parents=True)
    outside = tmp_path / "secret"
    outside.mkdir()
    (root / "link-out").symlink_to(outside)
    roots = (root,)
    assert state.check_inside_roots(root / "a", roots) == (root / "a").resolve()
    assert state.check_inside_roots(f"{root}/a/analysis/../analysis", roots) == (root / "a" / "analysis").resolve()
    for escape in (outside, f"{root}/../secret", root / "link-out", "/etc/passwd", "~", ""):
        with pytest.raises(state.PathRefused):
            state.check_inside_roots(escape, roots)
    with pytest.raises(state.PathRefused):
        state.check_inside_roots(root / "a", ())


# ------------------------------------------------------------ bntt_core.teaching (the views' numbers)
def test_lif_trace_follows_the_charge_fire_reset_equations() -> None:
    from bntt_core import teaching

    current = teaching.input_current("noisy", num_steps=50, amplitude=0.4, noise_std=0.3, seed=1)
    for reset in ("soft", "hard"):
        trace = teaching.lif_trace(current, leak=0.9, threshold=1.0, reset=reset)
        membrane = 0.0
        for row in trace.itertuples():
            membrane = 0.9 * membrane + row.current
            assert row.membrane == pytest.approx(membrane)
            assert row.spike == int(membrane > 1.0)
            membrane = (membrane - row.spike) if reset == "soft" else (0.0 if row.spike else membrane)
            assert row.membrane_after_reset == pytest.approx(membrane)


def test_early_exit_summary_matches_the_rule_and_the_tables() -> None:
    import pandas as pd

    from bntt_core.analysis import early_exit

    gamma_mean = pd.DataFrame({"layer": ["conv1"] * 4 + ["conv2"] * 4, "t": [1, 2, 3, 4] * 2,
                               "mean_gamma": [1.0, 0.5, 0.05, 0.01, 0.8, 0.3, 0.2, 0.02]})
    by_step = pd.DataFrame({"t": [1, 2, 3, 4], "accuracy": [0.2, 0.5, 0.7, 0.72]})
    spikes = pd.DataFrame({"layer": ["conv1"] * 4, "t": [1, 2, 3, 4], "spikes_per_neuron": [1.0, 1.0, 1.0, 1.0]})
    energy = pd.DataFrame({"layer": ["conv1", "classifier"], "synops": [1, 1], "macs": [0, 0],
                           "energy_pj": [100.0, 10.0]})
    summary = early_exit.early_exit_summary(gamma_mean, by_step, 0.25, spike_activity=spikes, energy=energy)
    assert summary["exit_step"] == 2  # after t = 2 every layer's mean γ is below 0.25
    assert summary["accuracy"] == 0.5 and summary["full_accuracy"] == 0.72 and summary["steps_saved"] == 2
    assert summary["energy_saved_pj"] == pytest.approx(100.0 * 0.5 + 10.0 * 0.5)
    assert early_exit.early_exit_summary(gamma_mean, by_step, 0.001)["exit_step"] == 4


def test_bn_vs_bntt_demo_standard_bn_drifts_at_inference_and_bntt_does_not() -> None:
    """The Learn page / workshop demo: the paper's standard BN (StepBN, norm="bn") keeps ONE running
    mean, so in eval mode its output mean follows the input's drift over t; BNTT's stays near 0."""
    import numpy as np

    from bntt_core import teaching

    demo = teaching.bn_vs_bntt_demo(num_steps=10, drift="rise_then_fall")
    assert demo["bn_running_mean"].nunique() == 1  # one stored mean for every step
    assert np.ptp(demo["bntt_running_mean"]) > 2.0  # BNTT stores one per step, following the drift
    bn_out, bntt_out = demo["bn_output_mean"], demo["bntt_output_mean"]
    assert np.ptp(bn_out) > 1.0 and bn_out.abs().max() > 0.5  # standard BN: biased, and the bias moves with t
    assert np.corrcoef(bn_out, demo["input_mean"])[0, 1] > 0.99  # ... exactly as the input's mean does
    assert bntt_out.abs().max() < 0.3 and np.ptp(bntt_out) < 0.5  # BNTT: near 0 at every step
    assert ((demo["bntt_output_std"] - 1.0).abs() < 0.2).all()

    # StepBN, not the joint-statistics SharedBN: its running mean is updated at every step in step
    # order, so later steps weigh more; on a rising input it lies above the plain average of the steps
    rising = teaching.bn_vs_bntt_demo(num_steps=10, drift="rising")
    assert float(rising["bn_running_mean"].iloc[0]) > float(rising["input_mean"].mean()) + 0.15


# --------------------------------------------------------------------------------------- views
def test_runs_view_lists_runs_and_reports_broken_ones_on_their_cards(dashboard_env: Path) -> None:
    app = open_view("runs")
    warnings = " ".join(w.value for w in app.warning)
    assert "broken-run" in warnings and "not valid JSON" in warnings
    assert "foreign-run" in warnings and "not a bntt run config" in warnings
    picker = app.selectbox(key="runs_selected")
    assert sorted(Path(p).name for p in picker.options) == ["ann-mlp", "bn-mlp", "bntt-vgg5"]
    for index, option in enumerate(picker.options):  # every healthy run's details render
        app.selectbox(key="runs_selected").select_index(index)  # options are the labels shown, not the values
        app.run()
        assert_clean(app)
        assert Path(str(app.selectbox(key="runs_selected").value)).name == Path(option).name
    assert "runs_open_path" in keys(app.text_input)


def test_a_path_outside_the_run_roots_is_refused(dashboard_env: Path, tmp_path: Path) -> None:
    app = open_view("runs")
    for outside in ("/etc", str(dashboard_env / ".." / ".."), str(tmp_path)):
        app.text_input(key="runs_open_path").set_value(outside)
        app.run()
        assert not app.exception
        assert any("outside the configured run roots" in e.value for e in app.error), outside
    app.text_input(key="runs_open_path").set_value(str(dashboard_env / "bn-mlp"))
    app.run()
    assert_clean(app)
    assert Path(app.selectbox(key="runs_selected").value).name == "bn-mlp"
    app.selectbox(key="runs_selected").set_value(str(dashboard_env / "ann-mlp"))  # the typed path does not pin it
    app.run()
    assert_clean(app)
    assert Path(app.selectbox(key="runs_selected").value).name == "ann-mlp"


def test_a_path_outside_the_run_roots_in_the_url_is_refused(dashboard_env: Path) -> None:
    app = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT_S)
    app.query_params["run"] = "/etc"
    app.run()
    assert not app.exception
    assert any("outside the configured run roots" in e.value for e in app.error)


def test_a_root_holding_only_broken_runs_is_reported_not_fatal(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "half-written").mkdir()
    (tmp_path / "half-written" / "config.json").write_text("{")
    monkeypatch.setenv(state.RUN_ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv(state.NO_DEFAULT_ROOTS_ENV, "1")
    app = open_view("runs")
    assert any("cannot be read" in w.value for w in app.warning)
    for view in ("gamma", "spikes", "early_exit", "robustness", "compare", "learn"):
        app.switch_page(f"views/{view}.py")
        app.run()
        assert_clean(app)


def test_a_run_root_added_in_the_sidebar_is_listed(dashboard_run_root: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(state.RUN_ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv(state.NO_DEFAULT_ROOTS_ENV, "1")
    app = open_view("runs")
    assert any("No runs found" in i.value for i in app.info)
    app.text_input(key="settings_new_run_root").set_value(str(dashboard_run_root))
    app.button(key="settings_add_run_root").click()
    app.run()
    assert_clean(app)
    assert sorted(Path(p).name for p in app.selectbox(key="runs_selected").options) == ["ann-mlp", "bn-mlp", "bntt-vgg5"]
    monkeypatch.setenv(state.LOCK_ROOTS_ENV, "1")
    locked = open_view("runs")
    assert "settings_new_run_root" not in keys(locked.text_input)


def test_a_damaged_table_is_one_clear_message(dashboard_run_root: Path, tmp_path: Path, monkeypatch) -> None:
    import shutil

    copy = tmp_path / "damaged"
    shutil.copytree(dashboard_run_root / "bntt-vgg5", copy)
    (copy / "analysis" / "gamma_mean.csv").write_bytes(b"layer,t,mean_gamma\n\xff\xfe\x00garbage\n")
    monkeypatch.setenv(state.RUN_ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv(state.NO_DEFAULT_ROOTS_ENV, "1")
    app = open_view("runs")
    app.switch_page("views/gamma.py")
    app.run()
    assert not app.exception
    assert any("gamma_mean table of damaged cannot be read" in e.value for e in app.error)
    app.switch_page("views/learn.py")  # the rest of the app keeps working
    app.run()
    assert_clean(app)


def test_every_view_explains_itself_without_any_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(state.RUN_ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv(state.NO_DEFAULT_ROOTS_ENV, "1")
    app = open_view("runs")
    assert any("No runs found" in i.value for i in app.info)
    for view in ("gamma", "spikes", "early_exit", "robustness", "compare"):
        app.switch_page(f"views/{view}.py")
        app.run()
        assert_clean(app)
        assert app.info, f"{view} shows nothing without runs"


def test_learn_view_every_tab(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(state.RUN_ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv(state.NO_DEFAULT_ROOTS_ENV, "1")
    app = open_view("learn")
    assert {"learn_lif_amplitude", "learn_lif_leak", "learn_lif_threshold", "learn_lif_steps"} <= keys(app.slider)
    assert {"learn_lif_shape", "learn_lif_reset"} <= keys(app.radio)
    spikes_before = metric_value(app, "Spikes")
    app.slider(key="learn_lif_amplitude").set_value(0.8)
    app.run()
    assert_clean(app)
    assert metric_value(app, "Spikes") != spikes_before
    app.radio(key="learn_lif_shape").set_value("noisy")
    app.radio(key="learn_lif_reset").set_value("hard")
    app.run()
    assert_clean(app)
    expected = {"Input coding": {"learn_coding_steps", "learn_coding_panels"},
                "Surrogate gradients": {"learn_surrogate_threshold"},
                "BN vs BNTT": {"learn_norm_steps", "learn_norm_peak", "learn_norm_growth"}}
    for tab, sliders in expected.items():
        app.session_state["learn_section"] = tab
        app.run()
        assert_clean(app)
        assert sliders <= keys(app.slider), tab
    bn_bias = float(metric_value(app, "Mean |output mean|, standard BN"))
    bntt_bias = float(metric_value(app, "Mean |output mean|, BNTT"))
    assert bntt_bias < bn_bias  # the demo's point: per-step statistics normalise every step


def test_gamma_view_computes_a_missing_gamma_table(dashboard_run_root: Path, tmp_path: Path, monkeypatch) -> None:
    """A BNTT run shipped without gamma.csv is offered a one-click computation, then becomes selectable."""
    import shutil

    copy = tmp_path / "no-gamma"
    shutil.copytree(dashboard_run_root / "bntt-vgg5", copy)
    (copy / "analysis" / "gamma.csv").unlink()
    monkeypatch.setenv(state.RUN_ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv(state.NO_DEFAULT_ROOTS_ENV, "1")
    app = open_view("gamma")
    assert any("No run with γ tables yet" in i.value for i in app.info)
    app.button(key="gamma_compute_missing").click()
    app.run()
    assert_clean(app)
    assert (copy / "analysis" / "gamma.csv").is_file()
    assert Path(app.selectbox(key="gamma_run").value).name == "no-gamma"
    assert "gamma_compute_missing" not in keys(app.button)


def test_gamma_view_every_tab(dashboard_env: Path) -> None:
    app = open_view("gamma")
    assert Path(app.selectbox(key="gamma_run").value).name == "bntt-vgg5"  # the only BNTT run
    app.session_state["gamma_section"] = "γ histograms (Fig 6)"
    app.run()
    assert_clean(app)
    assert "gamma_hist_layers" in keys(app.multiselect) and "gamma_hist_animate" in keys(app.toggle)
    step = app.select_slider(key="gamma_hist_step")
    step.set_value(step.options[-1])
    app.run()
    assert_clean(app)
    app.toggle(key="gamma_hist_animate").set_value(True)
    app.run()
    assert_clean(app)
    app.session_state["gamma_section"] = "Mean γ and exit threshold (Fig 4)"
    app.run()
    assert_clean(app)
    assert "gamma_threshold" in keys(app.slider)
    app.session_state["gamma_section"] = "Compare two runs"
    app.run()
    assert_clean(app)  # one BNTT run only: says so


def test_spikes_view_every_tab_and_a_live_raster(dashboard_env: Path) -> None:
    bntt_path = str(dashboard_env / "bntt-vgg5")
    app = open_view("spikes", spikes_run=bntt_path)
    assert "spikes_activity_runs" in keys(app.multiselect)
    app.session_state["spikes_section"] = "Spike rate (Fig 5)"
    app.run()
    assert_clean(app)
    assert "spikes_rate_runs" in keys(app.multiselect)
    app.session_state["spikes_section"] = "Raster"
    app.run()
    assert_clean(app)
    assert {"spikes_raster_image", "spikes_raster_seed"} <= keys(app.number_input)
    layer = app.selectbox(key="spikes_raster_layer")
    layer.set_value(layer.options[-1])
    app.number_input(key="spikes_raster_image").set_value(3)
    app.run()
    assert_clean(app)
    app.radio(key="spikes_raster_mode").set_value("by index")
    app.run()
    app.text_input(key="spikes_raster_indices").set_value("0, 2, 5")
    app.run()
    assert_clean(app)
    app.session_state["spikes_section"] = "BN input (Fig 3)"
    app.run()
    assert_clean(app)
    assert "spikes_bn_layer" in keys(app.selectbox)


def test_early_exit_threshold_slider_changes_the_reported_exit_step(dashboard_env: Path) -> None:
    app = open_view("early_exit")
    slider = app.slider(key="early_exit_threshold")
    slider.set_value(slider.min)
    app.run()
    assert_clean(app)
    at_lowest = metric_value(app, "Exit step")
    slider = app.slider(key="early_exit_threshold")
    slider.set_value(slider.max)
    app.run()
    assert_clean(app)
    at_highest = metric_value(app, "Exit step")
    assert at_lowest == "t = 4"  # below every mean γ: no early exit, all T = 4 steps
    assert at_highest == "t = 1"  # above every mean γ: exit after the first step
    assert {"Accuracy at the exit", "Steps saved", "Energy saved"} <= {m.label for m in app.metric}


def test_robustness_view_curves_and_one_image(dashboard_env: Path) -> None:
    app = open_view("robustness")
    assert {"robustness_noise_runs", "robustness_fgsm_runs"} <= keys(app.multiselect)
    app.session_state["robustness_section"] = "One test image"
    app.run()
    assert_clean(app)
    predictions = app.dataframe[0].value
    assert sorted(predictions["model"]) == ["ann-mlp", "bn-mlp", "bntt-vgg5"]
    app.slider(key="robustness_epsilon").set_value(0.2)
    app.run()
    assert_clean(app)


def chart_trace_names(app: AppTest) -> list[list[str]]:
    """The trace names of every Plotly chart on the page, one list per chart."""
    import json

    return [[trace.get("name") for trace in json.loads(chart.proto.spec)["data"]] for chart in app.get("plotly_chart")]


def test_robustness_view_noise_modes(dashboard_env: Path, tmp_path: Path, monkeypatch) -> None:
    """The mode selector: new analyses have unclipped and clipped curves; a table written before the noise
    modes (no mode column) is offered as clipped only and named when a mode it lacks is chosen."""
    import shutil

    import pandas as pd

    old = tmp_path / "old" / "old-bn-mlp"
    shutil.copytree(dashboard_env / "bn-mlp", old)
    table = pd.read_csv(old / "analysis" / "noise.csv")
    table[table["mode"] == "clipped"].drop(columns="mode").to_csv(old / "analysis" / "noise.csv", index=False)
    monkeypatch.setenv(state.RUN_ROOTS_ENV, f"{dashboard_env}{os.pathsep}{old.parent}")
    app = open_view("robustness", robustness_noise_runs=["bntt-vgg5", "old-bn-mlp"])
    assert app.multiselect(key="robustness_noise_modes").value == ["unclipped", "clipped"]
    noise_chart = chart_trace_names(app)[0]
    assert noise_chart == ["bntt-vgg5 · unclipped", "bntt-vgg5 · clipped", "old-bn-mlp · clipped"]
    assert any("old-bn-mlp (unclipped)" in c.value for c in app.caption)  # the old table has no unclipped curve
    app.multiselect(key="robustness_noise_modes").set_value(["clipped"])
    app.run()
    assert_clean(app)
    assert chart_trace_names(app)[0] == ["bntt-vgg5", "old-bn-mlp"]
    app.multiselect(key="robustness_noise_modes").set_value(["unclipped"])
    app.run()
    assert_clean(app)
    assert chart_trace_names(app)[0] == ["bntt-vgg5"]
    app.session_state["robustness_section"] = "One test image"
    app.run()
    assert_clean(app)
    assert app.selectbox(key="robustness_image_noise_mode").value == "unclipped"
    app.selectbox(key="robustness_image_noise_mode").set_value("shift")
    app.run()
    assert_clean(app)
    assert len(app.dataframe[0].value) == 4  # the three fixture runs and the copy


def test_compare_view_every_tab(dashboard_env: Path) -> None:
    app = open_view("compare")
    summary = app.dataframe[0].value
    assert set(summary["method"]) == {"bntt", "bn", "ann"}
    verdicts = app.dataframe[1].value  # the verdicts: one run per method, so one seed each
    assert "accuracy" in set(verdicts["metric"]) and set(verdicts["verdict"]) == {"one seed"}
    for tab in ("Accuracy by step", "Spikes and energy", "Robustness"):
        app.session_state["compare_section"] = tab
        app.run()
        assert_clean(app)


def test_runs_view_computes_missing_analysis(tmp_path: Path, monkeypatch) -> None:
    from conftest import DASHBOARD_TINY_TRAINING

    from bntt_core.analysis.tables import TABLES
    from bntt_core.runs.training import TrainConfig, train

    config = TrainConfig.from_dict({**DASHBOARD_TINY_TRAINING, "arch": "mlp", "width": 0.125, "norm": "bntt"})
    train(config, tmp_path / "fresh", progress="none")
    monkeypatch.setenv(state.RUN_ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv(state.NO_DEFAULT_ROOTS_ENV, "1")
    app = open_view("runs")
    assert "runs_analyze" in keys(app.button)
    app.button(key="runs_analyze").click()
    app.run()
    assert_clean(app)
    written = {p.stem for p in (tmp_path / "fresh" / "analysis").glob("*.csv")}
    assert {"accuracy_by_step", "gamma_mean", "early_exit"} <= written <= set(TABLES)


def test_comparable_names_default_to_the_dataset_with_the_most_methods() -> None:
    def card(name: str, dataset: str, **summary) -> state.RunCard:
        return state.RunCard(path=f"/r/{name}", name=name, root="/r", error=None,
                             summary={"dataset": dataset, **summary}, tables=())

    cards = [card("q", "mnist10k", norm="bntt"),
             card("c-bntt", "cifar10", norm="bntt"), card("c-bn", "cifar10", norm="bn"),
             card("c-bntt-seed1", "cifar10", norm="bntt"),
             card("f-bntt", "fashion-mnist", norm="bntt"), card("f-bn", "fashion-mnist", norm="bn"),
             card("f-ann", "fashion-mnist", norm="bn", spiking=False)]
    assert state.comparable_names(cards) == ["f-bntt", "f-bn", "f-ann"]  # 3 methods beat 2 methods on 3 runs
    assert state.comparable_names(cards[:4]) == ["c-bntt", "c-bn", "c-bntt-seed1"]
    assert state.comparable_names([]) == []
