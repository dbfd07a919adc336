"""Shared pytest fixtures.

Dashboard fixtures (tests/test_dashboard.py, tests/test_dashboard_e2e.py): `dashboard_run_root` is a
session-scoped folder of tiny real runs, trained with `bntt_core.runs.training.train` on a subset of the
embedded mnist10k (T = 4, one epoch) and analysed with `bntt_core.analysis.analyze_run(quick=True)`:
a BNTT VGG5, a standard-BN MLP and the ANN MLP, plus a broken run (unreadable config.json) and a
foreign folder (a config.json of another program), which the dashboard must report and survive.
`dashboard_env` points the app at that folder only (BNTT_RUN_ROOTS, no default roots). AppTest helpers
for every dashboard test module: `open_view`, `assert_clean`, `metric_value`, `APP`, `APPTEST_TIMEOUT_S`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `dashboard` is an app folder, not an installed package
    sys.path.insert(0, str(REPO_ROOT))
APP = REPO_ROOT / "dashboard" / "app.py"
APPTEST_TIMEOUT_S = 120  # generous: two shared cores, and the first run imports torch and loads models

DASHBOARD_TINY_TRAINING = dict(dataset="mnist10k", num_steps=4, epochs=1, batch_size=64, lr=0.1,
                               max_train_images=384, max_test_images=128, eval_batch_size=128, device="cpu",
                               augment=False)
DASHBOARD_RUNS = {
    "bntt-vgg5": dict(arch="vgg5", width=0.125, norm="bntt"),
    "bn-mlp": dict(arch="mlp", width=0.125, norm="bn"),
    "ann-mlp": dict(arch="mlp", width=0.125, norm="bntt", spiking=False),
}
DASHBOARD_BROKEN_RUN = "broken-run"
DASHBOARD_FOREIGN_RUN = "foreign-run"


def build_dashboard_runs(root: Path) -> dict[str, Path]:
    """Train and analyse the tiny runs under `root`; add a broken and a foreign run folder."""
    from bntt_core.analysis import analyze_run
    from bntt_core.runs.training import TrainConfig, train

    paths = {}
    for name, settings in DASHBOARD_RUNS.items():
        config = TrainConfig.from_dict({**DASHBOARD_TINY_TRAINING, **settings, "preset": None})
        train(config, root / name, progress="none")
        analyze_run(root / name, quick=True)
        paths[name] = root / name
    broken = root / DASHBOARD_BROKEN_RUN
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not json")
    foreign = root / DASHBOARD_FOREIGN_RUN
    foreign.mkdir()
    (foreign / "config.json").write_text(json.dumps({"format": "someone-elses-tool/3", "model": "resnet"}))
    paths[DASHBOARD_BROKEN_RUN], paths[DASHBOARD_FOREIGN_RUN] = broken, foreign
    return paths


@pytest.fixture(scope="session")
def dashboard_run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of tiny trained + analysed runs, one broken and one foreign run (built once per session)."""
    root = tmp_path_factory.mktemp("dashboard_runs")
    build_dashboard_runs(root)
    return root


@pytest.fixture
def dashboard_env(dashboard_run_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the dashboard at `dashboard_run_root` only (no data/runs/, no runs/)."""
    monkeypatch.setenv("BNTT_RUN_ROOTS", str(dashboard_run_root))
    monkeypatch.setenv("BNTT_NO_DEFAULT_RUN_ROOTS", "1")
    return dashboard_run_root


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread, and a shared CPU then is not oversubscribed (modules that train
    use it for every test: `pytestmark = pytest.mark.usefixtures("one_thread")`)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`bntt ARGV` in this process: (exit code, stdout, stderr); argparse's usage errors included."""
    from bntt_core import cli

    try:
        code = cli.main([str(arg) for arg in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


TINY_TRAINING = dict(arch="mlp", dataset="mnist10k", width=0.05, num_steps=2, epochs=2, batch_size=64, lr=0.1,
                     max_train_images=256, max_test_images=100, eval_batch_size=64, device="cpu")


def interrupted_run(tmp_path: Path, monkeypatch) -> Path:
    """A tiny run stopped (as if killed) inside its second epoch: checkpoint after epoch 1, no weights."""
    from bntt_core.runs import CHECKPOINT_FILE, training

    real_step = training.train_step
    calls = {"n": 0}

    def step_then_crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(training, "train_step", step_then_crash)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(training.TrainConfig.from_dict(TINY_TRAINING), out, progress="none")
    monkeypatch.setattr(training, "train_step", real_step)
    assert (out / CHECKPOINT_FILE).exists()
    return out


# ------------------------------------------------------------------------------------ AppTest helpers
def open_view(view: str, **session):
    """Run the app, switch to `view` (a file in dashboard/views/), seed session state, run again."""
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(APP), default_timeout=APPTEST_TIMEOUT_S)
    app.run()
    if view != "runs":
        app.switch_page(f"views/{view}.py")
    for key, value in session.items():
        app.session_state[key] = value
    app.run()
    assert_clean(app)
    return app


def assert_clean(app) -> None:
    """No exception and no error box on the page."""
    assert not app.exception, [e.message for e in app.exception]
    assert not app.error, [e.value for e in app.error]


def metric_value(app, label: str) -> str:
    found = [m.value for m in app.metric if m.label == label]
    assert found, f"no metric {label!r}; metrics: {[m.label for m in app.metric]}"
    return found[0]
