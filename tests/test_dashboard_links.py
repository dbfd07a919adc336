"""Links that can be shared: the run, layer, step, threshold and open tab of a view live in the URL
(`st.query_params`), so a copied link reopens what was on screen. With `streamlit.testing.v1.AppTest`:
a link opens its run / layer / step / threshold / tab; moving a widget rewrites the URL; an unknown run,
an out-of-range step or threshold, or garbage falls back to the defaults without an exception; a path
outside the run roots in a link is refused; another view's keys do not follow a switch of view. Plus
unit tests of the URL value helpers in dashboard/state.py.

The runs are the tiny real ones of tests/conftest.py (`dashboard_run_root`).

    .venv/bin/python -m pytest tests/test_dashboard_links.py -q
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import APP, APPTEST_TIMEOUT_S, assert_clean, metric_value
from streamlit.testing.v1 import AppTest

from bntt_core.analysis import early_exit
from dashboard import state  # noqa: E402


def open_link(view: str, **params) -> AppTest:
    """A new session opening `view` (a file in dashboard/views/) with the query parameters `params`,
    as a link pasted into a fresh tab does. AppTest names a st.navigation page only after a first run,
    so the session runs the default page first; its keys are dropped when the view opens."""
    app = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT_S)
    app.query_params.update(params)
    app.run()
    if view != "runs":
        app.switch_page(f"views/{view}.py")
        app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def table(run: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(run / "analysis" / f"{name}.csv")


# ------------------------------------------------------------------------------------ γ explorer
def test_a_gamma_link_opens_its_tab_layers_step_and_bins_and_the_url_follows(dashboard_env: Path) -> None:
    gamma = table(dashboard_env / "bntt-vgg5", "gamma")
    layers = list(dict.fromkeys(gamma["layer"]))
    steps = sorted(int(t) for t in gamma["t"].unique())
    app = open_link("gamma", gamma_run="bntt-vgg5", gamma_section="gamma-histograms-fig-6",
                    gamma_hist_layers=[layers[1], layers[0]], gamma_hist_step=str(steps[2]), gamma_hist_bins="12")
    assert_clean(app)
    assert Path(app.selectbox(key="gamma_run").value).name == "bntt-vgg5"
    assert app.session_state["gamma_section"] == "γ histograms (Fig 6)"
    assert app.multiselect(key="gamma_hist_layers").value == [layers[1], layers[0]]
    assert app.select_slider(key="gamma_hist_step").value == steps[2]
    assert app.slider(key="gamma_hist_bins").value == 12
    assert not app.toggle(key="gamma_hist_animate").value
    assert app.query_params["gamma_run"] == "bntt-vgg5"  # the run by name, not by server path
    assert app.query_params["gamma_hist_layers"] == [layers[1], layers[0]]
    assert not any(key.startswith("runs_") for key in app.query_params)  # the first page's keys are gone

    app.select_slider(key="gamma_hist_step").set_value(steps[-1])
    app.slider(key="gamma_hist_bins").set_value(40)
    app.run()
    app.toggle(key="gamma_hist_animate").set_value(True)
    app.multiselect(key="gamma_hist_layers").set_value([layers[-1]])
    app.run()
    assert_clean(app)
    assert app.query_params["gamma_hist_step"] == str(steps[-1])
    assert app.query_params["gamma_hist_bins"] == "40"
    assert app.query_params["gamma_hist_animate"] == "true"
    assert app.query_params["gamma_hist_layers"] == layers[-1]

    app.session_state["gamma_section"] = "Mean γ and exit threshold (Fig 4)"
    app.run()
    assert_clean(app)
    assert app.query_params["gamma_section"] == "mean-gamma-and-exit-threshold-fig-4"
    slider = app.slider(key="gamma_threshold")
    slider.set_value(slider.max)
    app.run()
    assert float(app.query_params["gamma_threshold"]) == pytest.approx(app.slider(key="gamma_threshold").value,
                                                                       rel=1e-5)

    reopened = open_link("gamma", **app.query_params)  # the URL as it stands reopens the same view
    assert_clean(reopened)
    assert reopened.session_state["gamma_section"] == "Mean γ and exit threshold (Fig 4)"
    assert reopened.slider(key="gamma_threshold").value == pytest.approx(app.slider(key="gamma_threshold").value,
                                                                         rel=1e-5)
    assert metric_value(reopened, "Exit step") == metric_value(app, "Exit step")


def test_a_gamma_link_with_garbage_falls_back_to_the_defaults(dashboard_env: Path) -> None:
    app = open_link("gamma", gamma_run="no-such-run", gamma_section="γ histograms (Fig 6)",  # the label works too
                    gamma_hist_layers="zz,yy", gamma_hist_step="99", gamma_hist_bins="500",
                    gamma_hist_animate="maybe", unrelated="kept")
    assert_clean(app)
    assert Path(app.selectbox(key="gamma_run").value).name == "bntt-vgg5"
    assert any("no-such-run" in t.value for t in app.toast)
    assert app.session_state["gamma_section"] == "γ histograms (Fig 6)"
    assert app.select_slider(key="gamma_hist_step").value == 1  # the first step (T = 4)
    assert len(app.multiselect(key="gamma_hist_layers").value) >= 1  # the default layers
    assert app.slider(key="gamma_hist_bins").value == 30
    assert not app.toggle(key="gamma_hist_animate").value
    assert app.query_params["gamma_run"] == "bntt-vgg5" and app.query_params["gamma_hist_step"] == "1"
    assert app.query_params.get("gamma_hist_bins") in (None, "30")
    assert app.query_params["unrelated"] == "kept"  # not ours: left alone

    default = min(0.1, float(table(dashboard_env / "bntt-vgg5", "gamma_mean")["mean_gamma"].max()) * 1.05)
    for section, threshold in (("nothing-like-this", "0.05"), ("mean-gamma-and-exit-threshold-fig-4", "nan"),
                               ("mean-gamma-and-exit-threshold-fig-4", "1e9"), ("", "-1")):
        app = open_link("gamma", gamma_section=section, gamma_threshold=threshold)
        assert_clean(app)
        if section == "nothing-like-this":
            assert app.session_state["gamma_section"] == "Mean γ heatmap"
            assert app.query_params["gamma_section"] == "mean-gamma-heatmap"
        elif section:
            assert app.slider(key="gamma_threshold").value == pytest.approx(default)


def test_a_path_outside_the_run_roots_in_a_view_link_is_refused(dashboard_env: Path) -> None:
    for view, key in (("gamma", "gamma_run"), ("spikes", "spikes_run")):
        for outside in ("/etc", str(dashboard_env / ".." / "..")):
            app = open_link(view, **{key: outside})
            assert any("outside the configured run roots" in e.value for e in app.error), (view, outside)
            assert Path(app.selectbox(key=key).value).name == "bntt-vgg5"  # the default run instead
            assert app.query_params[key] == "bntt-vgg5"
    inside = open_link("spikes", spikes_run=str(dashboard_env / "bn-mlp"))  # a path inside the roots opens
    assert_clean(inside)
    assert Path(inside.selectbox(key="spikes_run").value).name == "bn-mlp"
    assert inside.query_params["spikes_run"] == "bn-mlp"


# ---------------------------------------------------------------------------------- spike activity
def test_a_spikes_link_opens_its_run_tab_and_runs(dashboard_env: Path) -> None:
    app = open_link("spikes", spikes_run="bn-mlp", spikes_section="spike-rate-fig-5",
                    spikes_rate_runs="bntt-vgg5,bn-mlp")  # comma-joined works as well as repeated
    assert_clean(app)
    assert Path(app.selectbox(key="spikes_run").value).name == "bn-mlp"
    assert app.session_state["spikes_section"] == "Spike rate (Fig 5)"
    assert app.multiselect(key="spikes_rate_runs").value == ["bntt-vgg5", "bn-mlp"]
    assert app.query_params["spikes_rate_runs"] == ["bntt-vgg5", "bn-mlp"]  # written back as repeated keys
    app.multiselect(key="spikes_rate_runs").set_value([])
    app.run()
    assert app.query_params["spikes_rate_runs"] == ""  # an emptied choice stays empty in the link
    reopened = open_link("spikes", **app.query_params)
    assert reopened.multiselect(key="spikes_rate_runs").value == []


def test_a_spikes_link_opens_the_raster_of_its_layer_and_image(dashboard_env: Path) -> None:
    from bntt_core.runs import load_run

    layers = load_run(dashboard_env / "bntt-vgg5").model.layer_names
    app = open_link("spikes", spikes_run="bntt-vgg5", spikes_section="raster", spikes_raster_layer=layers[-1],
                    spikes_raster_image="3", spikes_raster_mode="most active", spikes_raster_count="8",
                    spikes_raster_seed="7")
    assert_clean(app)
    assert app.session_state["spikes_section"] == "Raster"
    assert app.selectbox(key="spikes_raster_layer").value == layers[-1]
    assert app.number_input(key="spikes_raster_image").value == 3
    assert app.radio(key="spikes_raster_mode").value == "most active"
    assert app.slider(key="spikes_raster_count").value == 8
    assert app.number_input(key="spikes_raster_seed").value == 7
    app.selectbox(key="spikes_raster_layer").set_value(layers[0])
    app.number_input(key="spikes_raster_image").set_value(5)
    app.run()
    assert_clean(app)
    assert app.query_params["spikes_raster_layer"] == layers[0]
    assert app.query_params["spikes_raster_image"] == "5"
    assert app.query_params["spikes_section"] == "raster"

    bad = open_link("spikes", spikes_section="raster", spikes_raster_layer="no-layer", spikes_raster_image="-5",
                    spikes_raster_mode="zzz", spikes_raster_count="9999", spikes_raster_seed="abc")
    assert_clean(bad)
    assert bad.selectbox(key="spikes_raster_layer").value == layers[0]
    assert bad.number_input(key="spikes_raster_image").value == 0
    assert bad.radio(key="spikes_raster_mode").value == "a spread of rates"
    assert bad.slider(key="spikes_raster_count").value == 32
    assert bad.query_params["spikes_raster_layer"] == layers[0]
    assert "spikes_raster_image" not in bad.query_params or bad.query_params["spikes_raster_image"] == "0"


# -------------------------------------------------------------------------------------- early exit
def test_an_early_exit_link_opens_its_threshold_and_baselines(dashboard_env: Path) -> None:
    thresholds = table(dashboard_env / "bntt-vgg5", "early_exit")["threshold"]
    high, low = float(thresholds.max()), float(thresholds.min())
    app = open_link("early_exit", early_exit_run="bntt-vgg5", early_exit_threshold=f"{high:.6g}",
                    early_exit_baselines="")
    assert_clean(app)
    assert metric_value(app, "Exit step") == "t = 1"  # above every mean γ: exit after the first step
    assert app.multiselect(key="early_exit_baselines").value == []
    slider = app.slider(key="early_exit_threshold")
    slider.set_value(slider.min)
    app.run()
    assert_clean(app)
    assert metric_value(app, "Exit step") == "t = 4"
    assert float(app.query_params["early_exit_threshold"]) == pytest.approx(low, rel=1e-5)
    assert app.query_params["early_exit_baselines"] == ""

    reopened = open_link("early_exit", **app.query_params)
    assert metric_value(reopened, "Exit step") == "t = 4"
    # out of range or not a number: the view's opening τ, the one chosen on the run's validation slice
    summary = early_exit.summary_table(table(dashboard_env / "bntt-vgg5", "early_exit_summary"))
    chosen = summary[(summary["rule"] == "validation") & summary["available"]]
    opening = float(chosen["threshold"].iloc[0]) if len(chosen) else 0.1
    for garbage in ("abc", "inf", "1e9", "-3"):
        bad = open_link("early_exit", early_exit_run="nope", early_exit_threshold=garbage)
        assert_clean(bad)
        expected = min(max(opening, low), high)
        assert bad.slider(key="early_exit_threshold").value == pytest.approx(expected)


# --------------------------------------------------------------------------------- switching views
def test_switching_view_leaves_the_other_views_keys_behind(dashboard_env: Path) -> None:
    app = open_link("gamma", gamma_section="gamma-histograms-fig-6", gamma_hist_step="2")
    app.switch_page("views/spikes.py")
    app.run()
    assert_clean(app)
    assert not any(key.startswith("gamma_") for key in app.query_params), dict(app.query_params)
    assert app.query_params["spikes_run"] == "bntt-vgg5"  # the run picked on γ is kept in session, and linked
    assert app.query_params["spikes_section"] == "activity-over-time-fig-1"
    for view in ("early_exit", "robustness", "compare", "learn", "runs"):
        app.switch_page(f"views/{view}.py")
        app.run()
        assert_clean(app)
        assert not any(key.startswith("spikes_") for key in app.query_params), (view, dict(app.query_params))
    app.switch_page("views/gamma.py")
    app.run()
    assert_clean(app)
    assert app.session_state["gamma_section"] == "Mean γ heatmap"  # a return to a view is not a link


# ------------------------------------------------------------------------------------- the helpers
def test_url_values_are_short_and_read_back() -> None:
    assert state._slug("γ histograms (Fig 6)") == "gamma-histograms-fig-6"
    assert state._slug("Mean γ and exit threshold (Fig 4)") == "mean-gamma-and-exit-threshold-fig-4"
    assert state._url_text(0.1 + 0.2) == "0.3" and state._url_text(True) == "true" and state._url_text(3) == "3"
    parse = state._parse_url_value
    assert parse("12", int, None, 5, 60) == 12 and parse("12.0", int, None, 5, 60) == 12
    for bad in ("4", "61", "1.5", "x", ""):
        assert parse(bad, int, None, 5, 60) is state._INVALID
    assert parse("0.25", float, None, 0.0, 1.0) == 0.25
    for bad in ("nan", "inf", "-0.1", "1e400", "zero"):
        assert parse(bad, float, None, 0.0, 1.0) is state._INVALID
    assert parse("TRUE", bool, None, None, None) is True and parse("maybe", bool, None, None, None) is state._INVALID
    assert parse("most active", str, ["spread", "most active"], None, None) == "most active"
    assert parse("most-active", str, ["spread", "most active"], None, None) == "most active"
    assert state._find_option("0.0313725", [0.0, 8 / 255]) == 8 / 255  # a float option by its 6-digit text
    assert state._find_option("2", [1, 2, 3]) == 2 and state._find_option("9", [1, 2, 3]) is state._INVALID
