"""The dashboard's Train page (dashboard/views/train.py) with `streamlit.testing.v1.AppTest`: it renders the
form with the preset's values, refuses bad input with one message and writes nothing, shows a running job
from its record on disk (Start disabled, live numbers and the γ heatmap, Stop that stops it and offers
Resume), and shows a finished job with a link to the Runs view, which lists the new run. The run root is
a tmp_path ($BNTT_TRAIN_ROOT, and the dashboard's only run root); no training is started from the page.

    .venv/bin/python -m pytest tests/test_dashboard_train.py -q
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import pytest
from conftest import APP, APPTEST_TIMEOUT_S
from streamlit.testing.v1 import AppTest

from bntt_core.runs import live as lt  # noqa: E402


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Train page's run root, and the dashboard's only run root."""
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv(lt.ROOT_ENV, str(folder))
    monkeypatch.setenv("BNTT_RUN_ROOTS", str(folder))
    monkeypatch.setenv("BNTT_NO_DEFAULT_RUN_ROOTS", "1")
    return folder


def open_train() -> AppTest:
    app = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT_S)
    app.run()
    app.switch_page("views/train.py")
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def by_key(elements, key: str):
    found = [e for e in elements if e.key == key]
    assert found, f"no widget {key!r}; have {[e.key for e in elements]}"
    return found[0]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def record_for(root: Path, name: str, *, state: str, pid: int | None = None, phase: str = "training") -> dict:
    record = {"format": lt.RECORD_FORMAT, "job": f"job-{name}", "mode": "train", "run": str(root / name),
              "name": name, "preset": "quickstart", "analysis": "quick", "started": "2026-01-01T10:00:00+00:00",
              "started_by": "a workshop guest", "phase": phase, "state": state, "stop_requested": False,
              "error": None, "pid": pid, "pid_start": lt.process_start_time(pid) if pid else None,
              "settings": {"preset": "quickstart", "dataset": "mnist10k", "norm": "bntt", "num_steps": 4, "epochs": 4}}
    (root / lt.RECORD_FILE).write_text(json.dumps(record))
    return record


def gamma_history(epochs: int) -> pd.DataFrame:
    rows = [{"epoch": epoch, "layer": layer, "t": t, "channels": 8, "mean": 1.0 / (t + epoch)}
            for epoch in range(epochs + 1) for layer in ("conv1", "conv2") for t in range(1, 5)]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- the form
def test_the_form_shows_the_presets_values_and_refuses_bad_input(root: Path) -> None:
    app = open_train()
    assert not app.error
    assert by_key(app.selectbox, "train_preset").value == "quickstart"
    assert by_key(app.number_input, "train_steps").value == 6 and by_key(app.number_input, "train_epochs").value == 4
    assert by_key(app.selectbox, "train_dataset").value == "mnist10k"
    assert by_key(app.selectbox, "train_norm").value == "bntt"
    assert not by_key(app.button, "train_start").disabled
    assert "No training started" in texts(app.caption)

    by_key(app.number_input, "train_steps").set_value(9).run()
    by_key(app.selectbox, "train_preset").set_value("workshop-fashion").run()  # the preset's values replace edits
    assert by_key(app.number_input, "train_steps").value == 6 and by_key(app.number_input, "train_epochs").value == 3
    assert by_key(app.text_input, "train_name").value.startswith("workshop-fashion-")

    (root / "taken").mkdir()
    for name, message in (("../outside", "escapes the run root"), ("taken", "exists already"),
                          ("my run", "only letters, digits")):
        by_key(app.text_input, "train_name").set_value(name)
        by_key(app.button, "train_start").click().run()
        assert not app.exception, [e.message for e in app.exception]
        assert len(app.error) == 1 and message in app.error[0].value, texts(app.error)
    assert sorted(p.name for p in root.iterdir()) == ["taken"]  # no record, no run folder, no lock
    assert lt.job_status(root).state == lt.IDLE


# ----------------------------------------------------------------------------------- a running job
def test_a_running_job_is_shown_from_its_record_and_can_be_stopped(root: Path) -> None:
    run = root / "live"
    run.mkdir()
    pd.DataFrame({"epoch": [1, 2], "lr": [0.1, 0.1], "train_loss": [0.9, 0.5], "train_acc": [0.7, 0.85],
                  "test_acc": [0.8, 0.9], "seconds": [3.0, 3.0], "images_per_s": [300.0, 310.0]}
                 ).to_csv(run / "metrics.csv", index=False)
    gamma_history(2).to_csv(run / lt.GAMMA_HISTORY_FILE, index=False)
    (run / "checkpoint.pt").write_bytes(b"stand-in")  # what a real training leaves after each epoch
    (run / lt.JOB_LOG).write_text("epoch 2/4 lr 0.1 loss 0.5000 train 85.00% test 90.00%\n")
    # a stand-in for the job's process, in its own process group like the real runner
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    try:
        record_for(root, "live", state=lt.ACTIVE, pid=sleeper.pid)
        app = open_train()
        assert not app.error, texts(app.error)
        assert by_key(app.button, "train_start").disabled  # a refresh or a second tab: no second start
        assert "running already: live" in texts(app.info) and "a workshop guest" in texts(app.info)
        metrics = {m.label: m.value for m in app.metric}
        assert metrics["Epochs done"] == "2 / 4" and metrics["Test accuracy"] == "90.00%"
        charts = app.get("plotly_chart")
        assert len(charts) == 2  # loss/accuracy and the mean-γ heatmap of the last epoch
        title = json.loads(charts[1].proto.spec)["layout"]["title"]["text"]
        assert "this run 0.167–0.333" in title and "colour fixed" in title  # the last epoch's mean γ
        assert "Mean γ after epoch 2" in texts(app.caption)
        assert "epoch 2/4" in app.code[0].value

        by_key(app.button, "train_stop").click().run()
        assert sleeper.wait(timeout=30) is not None  # SIGTERM reached the job's process group
        assert not app.exception, [e.message for e in app.exception]
        assert lt.job_status(root).state == lt.STOPPED
        assert "Stopped" in texts(app.warning)
        assert not by_key(app.button, "train_start").disabled
        by_key(app.button, "train_resume")  # the checkpoint is there: Resume is offered
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
            sleeper.wait()


# ---------------------------------------------------------------------------------- a finished job
def test_a_finished_job_links_to_the_runs_view_which_lists_it(root: Path) -> None:
    from conftest import TINY_TRAINING

    from bntt_core.runs.training import TrainConfig, train

    train(TrainConfig.from_dict({**TINY_TRAINING, "threads": 1}), root / "done", progress="none")
    gamma_history(2).to_csv(root / "done" / lt.GAMMA_HISTORY_FILE, index=False)
    record_for(root, "done", state=lt.FINISHED, phase="analysing")
    app = open_train()
    assert not app.error, texts(app.error)
    assert "Finished: test accuracy" in texts(app.success)
    links = app.get("page_link")
    assert links and links[0].proto.label == "Open done in Runs" and links[0].proto.page_script_hash
    assert links[0].proto.query_string == urlencode({"run": str(root / "done")})  # the Runs view opens ?run=PATH
    assert not by_key(app.button, "train_start").disabled
    assert not [b for b in app.button if b.key in ("train_stop", "train_resume")]

    app.switch_page("views/runs.py")
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    assert "**done**" in texts(app.markdown)
