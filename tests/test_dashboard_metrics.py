"""The standard metrics (NeuroBench; bntt_core.analysis.standard_metrics) in the dashboard, with Streamlit's AppTest:
the Runs view shows each run's, the Compare view compares the chosen runs on them, and a run analysed
before the table existed gets a clear note in both instead of a failure.

The runs are the tiny real ones of tests/conftest.py (`dashboard_run_root`), analysed with every table.

    .venv/bin/python -m pytest tests/test_dashboard_metrics.py -q
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from conftest import assert_clean, open_view
from streamlit.testing.v1 import AppTest

from dashboard import state  # noqa: E402

HEADLINES = {"Footprint", "Connection sparsity", "Activation sparsity", "Effective synops / image"}
FIXTURE_RUNS = {"bntt-vgg5", "bn-mlp", "ann-mlp"}


def tables_with(app: AppTest, column: str) -> list[pd.DataFrame]:
    return [d.value for d in app.dataframe if column in d.value.columns]


def shown_run(app: AppTest) -> str:
    """The run whose details the Runs view shows (its name is the first subheader)."""
    return app.subheader[0].value


def open_compare_metrics(app: AppTest) -> None:
    app.session_state["compare_section"] = "Spikes and energy"
    app.run()
    assert_clean(app)


def test_runs_view_shows_each_runs_standard_metrics(dashboard_env: Path) -> None:
    app = open_view("runs")
    picker = app.selectbox(key="runs_selected")
    assert {Path(p).name for p in picker.options} == FIXTURE_RUNS
    seen = set()
    for index in range(len(picker.options)):
        app.selectbox(key="runs_selected").select_index(index)
        app.run()
        assert_clean(app)
        name = shown_run(app)
        seen.add(name)
        metrics = {m.label: m.value for m in app.metric}
        assert HEADLINES <= set(metrics), (name, metrics)
        stored = pd.read_csv(dashboard_env / name / "analysis" / "standard_metrics.csv").iloc[0]
        assert metrics["Activation sparsity"] == f"{100 * stored['activation_sparsity']:.2f} %"
        shown = tables_with(app, "meaning")
        assert shown and "dense synaptic operations" in set(shown[0]["metric"]), name
        steps = shown[0].set_index("metric").loc["time steps", "value"]
        assert steps == ("1" if name == "ann-mlp" else "4")
    assert seen == FIXTURE_RUNS


def test_compare_view_compares_the_chosen_runs_on_them(dashboard_env: Path) -> None:
    app = open_view("compare")
    open_compare_metrics(app)
    found = tables_with(app, "synops_dense")
    assert len(found) == 1 and set(found[0]["run"]) == FIXTURE_RUNS
    table = found[0].set_index("run")
    assert table.loc["ann-mlp", "synops_effective_acs"] == 0 and table.loc["ann-mlp", "num_steps"] == 1
    assert table.loc["bntt-vgg5", "synops_acs_through_pooling"] > 0 == table.loc["bn-mlp", "synops_acs_through_pooling"]
    assert "Standard metrics (NeuroBench)" in [s.value for s in app.subheader]
    assert not [i for i in app.info if "No standard metrics" in i.value]


@pytest.fixture
def root_with_an_old_run(dashboard_run_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """bn-mlp as analysed, and a copy of bntt-vgg5 whose analysis predates the standard_metrics table."""
    shutil.copytree(dashboard_run_root / "bn-mlp", tmp_path / "bn-mlp")
    old = tmp_path / "old-run"
    shutil.copytree(dashboard_run_root / "bntt-vgg5", old)
    (old / "analysis" / "standard_metrics.csv").unlink()
    meta = json.loads((old / "analysis" / "meta.json").read_text())
    del meta["standard_metrics"]
    (old / "analysis" / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setenv(state.RUN_ROOTS_ENV, str(tmp_path))
    monkeypatch.setenv(state.NO_DEFAULT_ROOTS_ENV, "1")
    return tmp_path


def test_a_run_without_the_table_gets_a_note_not_a_failure(root_with_an_old_run: Path) -> None:
    app = open_view("runs")
    picker = app.selectbox(key="runs_selected")
    picker.select_index([Path(p).name for p in picker.options].index("old-run"))
    app.run()
    assert_clean(app)
    assert shown_run(app) == "old-run"
    assert not HEADLINES & {m.label for m in app.metric}
    notes = " ".join(i.value for i in app.info)
    assert "Standard metrics: not in this run's analysis" in notes and "--tables standard_metrics" in notes
    assert any("standard_metrics" in c.value for c in app.caption)  # listed with the missing tables

    app.switch_page("views/compare.py")
    app.run()
    assert_clean(app)
    open_compare_metrics(app)
    found = tables_with(app, "synops_dense")
    assert len(found) == 1 and found[0]["run"].tolist() == ["bn-mlp"]
    assert any("No standard metrics for old-run" in i.value for i in app.info)
