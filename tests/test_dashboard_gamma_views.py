"""The γ explorer's new parts and the Fig 3 tab's distributions, with `streamlit.testing.v1.AppTest`:
"Through training" on a run with a γ history and on one without (a note, no exception), the heatmap's
colour-range choice, a click on a heatmap cell opening that layer and step in the histograms (the click
sent as the chart's selection state, as the browser sends it), "Distributions over time", and the ridge
and percentile-band views of the BN input.

The runs are the tiny real ones of tests/conftest.py (`dashboard_run_root`; the BNTT one was trained with
the γ history).

    .venv/bin/python -m pytest tests/test_dashboard_gamma_views.py -q
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import APP, APPTEST_TIMEOUT_S, assert_clean, metric_value, open_view
from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.testing.v1 import AppTest

from bntt_core.analysis.gamma_history import GAMMA_HISTORY_FILE  # noqa: E402
from dashboard import state  # noqa: E402

HEATMAP_CHART = "gamma_heatmap-chart"


def open_gamma(**session) -> AppTest:
    return open_view("gamma", **session)


def chart(app: AppTest, key: str):
    """The plotly chart whose widget key is `key`: (its element, its figure as a dict)."""
    found = [c for c in app.get("plotly_chart") if c.proto.id.endswith(f"-{key}") or c.proto.id == key]
    assert found, f"no chart {key!r}; charts: {[c.proto.id for c in app.get('plotly_chart')]}"
    return found[0], json.loads(found[0].proto.spec)


def numbers(value) -> np.ndarray:
    """A figure array as sent to the browser: a list, or plotly's typed array {dtype, bdata, shape}."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
    return np.asarray(value, dtype=float)


def test_through_training_on_a_run_with_a_gamma_history(dashboard_env: Path) -> None:
    assert (dashboard_env / "bntt-vgg5" / GAMMA_HISTORY_FILE).is_file()
    app = open_gamma(gamma_section="Through training")
    assert Path(app.selectbox(key="gamma_run").value).name == "bntt-vgg5"
    view = app.radio(key="gamma_train_view")
    assert list(view.options) == ["Mean γ heatmap", "Histograms", "Exit step", "Percentile bands"]
    _, heatmap = chart(app, "gamma_train_heatmap-chart")
    assert [frame["name"] for frame in heatmap["frames"]] == ["0", "1"]  # initialisation and one epoch
    for choice in ("histograms", "bands", "exit"):
        app.radio(key="gamma_train_view").set_value(choice)
        app.run()
        assert_clean(app)
    slider = app.slider(key="gamma_train_threshold")
    assert slider.value == pytest.approx(0.1)
    slider.set_value(slider.max)  # above every mean γ: the rule exits at t = 1
    app.run()
    assert_clean(app)
    assert metric_value(app, "Exit step after the last epoch") == "t = 1"
    app.slider(key="gamma_train_threshold").set_value(0.0)  # every γ reaches 0: all T = 4 steps
    app.run()
    assert metric_value(app, "Exit step after the last epoch") == "t = 4"


def test_through_training_without_a_history_says_so(dashboard_run_root: Path, tmp_path: Path, monkeypatch) -> None:
    copy = tmp_path / "before-history"
    shutil.copytree(dashboard_run_root / "bntt-vgg5", copy)
    (copy / GAMMA_HISTORY_FILE).unlink()
    monkeypatch.setenv(state.RUN_ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv(state.NO_DEFAULT_ROOTS_ENV, "1")
    app = open_gamma(gamma_section="Through training")
    assert any("has no γ history" in i.value for i in app.info)
    assert not app.get("plotly_chart")
    (copy / GAMMA_HISTORY_FILE).write_text("epoch,layer\n1,conv1\n")  # a damaged one: a warning, no exception
    app.run()
    assert_clean(app)
    assert any("cannot be read" in w.value for w in app.warning)


def test_the_heatmap_scale_choice_sets_the_colour_range(dashboard_env: Path) -> None:
    app = open_gamma()
    scale = app.radio(key="gamma_heat_scale")
    assert scale.value == "fixed"
    _, fixed = chart(app, HEATMAP_CHART)
    assert fixed["data"][0]["zmin"] == 0.0 and fixed["data"][0]["zmax"] >= 1.0
    scale.set_value("run")
    app.run()
    assert_clean(app)
    _, own = chart(app, HEATMAP_CHART)
    values = numbers(own["data"][0]["z"])
    assert own["data"][0]["zmin"] == pytest.approx(np.nanmin(values), abs=1e-3)
    assert own["data"][0]["zmax"] == pytest.approx(np.nanmax(values), abs=1e-3)
    assert "this run's" in own["data"][0]["colorbar"]["title"]["text"]


def test_a_click_on_a_heatmap_cell_opens_its_histogram(dashboard_env: Path) -> None:
    app = open_gamma()
    element, figure = chart(app, HEATMAP_CHART)
    cells = figure["data"][1]
    index = len(cells["x"]) - 1  # the deepest layer's last step
    layer, step = cells["customdata"][index][0], cells["customdata"][index][1]
    point = {"curve_number": 1, "point_number": index, "point_index": index, "x": cells["x"][index],
             "y": cells["y"][index], "customdata": cells["customdata"][index]}
    # what the browser sends for a click: the chart's selection as its widget value
    widgets = app._tree.get_widget_states()
    clicked = widgets.widgets.add()
    clicked.id = element.proto.id
    clicked.string_value = json.dumps({"selection": {"points": [point], "point_indices": [index], "box": [],
                                                     "lasso": []}})
    app._run(WidgetStates(widgets=list(widgets.widgets)))
    assert_clean(app)
    assert app.session_state["gamma_section"] == "γ histograms (Fig 6)"
    assert app.multiselect(key="gamma_hist_layers").value == [layer]
    assert app.select_slider(key="gamma_hist_step").value == step
    assert app.toggle(key="gamma_hist_animate").value is False
    _, histogram = chart(app, "gamma_hist-chart")
    assert f"t = {step}" in histogram["layout"]["title"]["text"]


def test_distributions_over_time_ridge_and_bands(dashboard_env: Path) -> None:
    app = open_gamma(gamma_section="Distributions over time")
    assert "gamma_dist_layer" in {s.key for s in app.selectbox}
    _, ridge = chart(app, "gamma_dist_ridge-chart")
    assert [trace["name"] for trace in ridge["data"]] == [f"t = {t}" for t in range(1, 5)]
    app.radio(key="gamma_dist_kind").set_value("bands")
    app.run()
    assert_clean(app)
    _, bands = chart(app, "gamma_dist_bands-chart")
    assert "median" in [trace["name"] for trace in bands["data"]]


def test_bn_input_tab_offers_ridge_and_bands(dashboard_env: Path) -> None:
    app = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT_S)
    app.run()
    app.switch_page("views/spikes.py")
    app.session_state["spikes_run"] = str(dashboard_env / "bntt-vgg5")
    app.session_state["spikes_section"] = "BN input (Fig 3)"
    app.run()
    assert_clean(app)
    assert app.radio(key="spikes_bn_view").value == "fig3"
    for view, key in (("ridge", "spikes_bn_ridge-chart"), ("bands", "spikes_bn_bands-chart")):
        app.radio(key="spikes_bn_view").set_value(view)
        app.run()
        assert_clean(app)
        assert app.multiselect(key="spikes_bn_steps").disabled
        _, figure = chart(app, key)
        assert figure["layout"]["xaxis"]["title"]["text"]
