"""Hard to break on a user's own data and on a shared server (issue 19; docs/ROBUSTNESS.md):
the recipe adapted to an image folder, the first-epoch warning, one writer per run directory (an OS
lock, tested with real processes and kill -9), image folders without train/ + test/, unreadable
images, refused checkpoints, and figure export that waits, retries once and then names the figure.

    .venv/bin/python -m pytest tests/test_own_data.py -q -m "not slow"
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from conftest import TINY_TRAINING as TINY
from conftest import interrupted_run, run_cli
from PIL import Image

from bntt_core import data, runs, viz
from bntt_core.data import DataError
from bntt_core.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    RUN_LOCK_FILE,
    WEIGHTS_FILE,
    RunLockedError,
    locks,
    training,
)
from bntt_core.runs.training import ResumeError, TrainConfig
from bntt_core.viz import export

PROJECT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models, one thread


def assert_one_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in err, err


def mnist_image_folder(root: Path, per_class=(150, 30), size=8, layout="split", seed=0) -> Path:
    """Real digits from data/mnist10k.npz as PNG class folders: the 20×20 box MNIST centres each digit
    in, downsampled (area average) to size×size greyscale; layout "split" (train/ + test/) or "classes"."""
    with np.load(PROJECT / "data" / "mnist10k.npz") as archive:
        images, labels = archive["images"], archive["labels"]
    rng = np.random.default_rng(seed)
    for digit in range(10):
        chosen = rng.permutation(np.flatnonzero(labels == digit))[:sum(per_class)]
        for i, k in enumerate(chosen):
            split = "train" if i < per_class[0] else "test"
            folder = root / split / str(digit) if layout == "split" else root / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            image = Image.fromarray(images[k][4:24, 4:24]).resize((size, size), Image.Resampling.BOX)
            image.save(folder / f"{k:05d}.png")
    return root


def solid_class_folders(root: Path, classes, per_class: int, size=8) -> Path:
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new("L", (size, size), 20 * label + i).save(folder / f"{i:03d}.png")
    return root


# ------------------------------------------------------------------------------ the auto recipe
def folder_info(size: int, classes: int = 10, name: str = "image-folder"):
    return data.DataInfo(name=name, in_channels=1, image_size=size, num_classes=classes, mean=(0.5,), std=(0.3,),
                         class_names=tuple(str(i) for i in range(classes)), augment="crop", num_steps_hint=None,
                         source="test")


def test_auto_recipe_fits_small_data_and_says_why():
    config = TrainConfig(dataset="image-folder")
    adapted = training.adapt_recipe(config, folder_info(8), 1350, training.AUTO_RECIPE_SETTINGS)
    assert adapted.batch_size == training.AUTO_BATCH_RANGE[0]  # 1350 // 50 = 27 → 16 (the smallest allowed)
    assert math.ceil(1350 / adapted.batch_size) >= training.MIN_UPDATES_PER_EPOCH
    assert adapted.augment is False and adapted.lr == training.auto_lr(adapted.batch_size)
    assert set(adapted.auto_recipe) == {"batch_size", "lr", "augment"}
    assert "below 16 px" in adapted.auto_recipe["augment"] and "updates per epoch" in adapted.auto_recipe["batch_size"]
    large = training.adapt_recipe(config, folder_info(64), 100_000, training.AUTO_RECIPE_SETTINGS)
    assert large.batch_size == 256 and large.lr == 0.3 and large.augment is True and large.crop_padding == 8
    mid = training.adapt_recipe(config, folder_info(32), 6_400, training.AUTO_RECIPE_SETTINGS)
    assert mid.batch_size == 128 and mid.crop_padding == 4  # 6,400 / 50 = 128; the paper's 4 px at 32 px


def test_auto_recipe_leaves_given_settings_and_built_in_datasets_alone():
    config = TrainConfig(dataset="image-folder", lr=0.2)
    adapted = training.adapt_recipe(config, folder_info(8), 1350, ("batch_size", "augment", "crop_padding"))
    assert adapted.lr == 0.2 and "lr" not in adapted.auto_recipe
    paper = TrainConfig(dataset="mnist10k")
    assert training.adapt_recipe(paper, folder_info(28, name="mnist10k"), 8000, training.AUTO_RECIPE_SETTINGS) == paper
    with pytest.raises(training.ConfigError, match="auto recipe sets only"):
        training.adapt_recipe(config, folder_info(8), 10, ("epochs",))


def test_cli_passes_only_the_flags_not_given_and_no_preset(monkeypatch, capsys):
    seen = {}

    def fake_train(config, out, *, progress, auto):
        seen["auto"], seen["config"] = tuple(auto), config
        return training.TrainResult(Path("x"), 0.5, 1, 1.0)

    monkeypatch.setattr(training, "train", fake_train)
    run_cli(capsys, "train", "--dataset", "image-folder", "--data-dir", "d", "--lr", "0.2", "--no-augment")
    assert seen["auto"] == ("batch_size", "crop_padding") and seen["config"].lr == 0.2
    run_cli(capsys, "train", "--preset", "quickstart")
    assert seen["auto"] == ()


def test_first_epoch_warning_names_what_to_try():
    config = TrainConfig(dataset="image-folder", batch_size=256, lr=0.3)
    message = training.first_epoch_warning(config, folder_info(8), 2.5, 1350)
    assert "above ln(10) = 2.303" in message and "--lr (now 0.3)" in message
    assert "--batch-size (now 256: 6 updates per epoch)" in message and "--no-augment" in message
    assert "not finite" in training.first_epoch_warning(config, folder_info(8), float("inf"), 1350)
    assert training.first_epoch_warning(config, folder_info(8), 1.2, 1350) is None


def test_a_first_epoch_above_chance_is_warned_in_the_log(tmp_path, monkeypatch):
    real_step = training.train_step
    monkeypatch.setattr(training, "train_step", lambda *a, **k: real_step(*a, **k) * 0 + 5.0)
    training.train(TrainConfig.from_dict({**TINY, "epochs": 1}), tmp_path / "run", progress="none")
    log = (tmp_path / "run" / "train.log").read_text()
    assert "warning: the first epoch's training loss 5.000 is above ln(10)" in log


def test_nan_loss_stops_with_an_error_that_keeps_the_checkpoint_and_says_what_to_try(tmp_path, monkeypatch):
    real_step = training.train_step
    calls = {"n": 0}

    def diverging(*args, **kwargs):
        calls["n"] += 1
        return float("nan") if calls["n"] >= 5 else real_step(*args, **kwargs)

    monkeypatch.setattr(training, "train_step", diverging)
    with pytest.raises(training.TrainingDiverged, match=r"last good checkpoint .*lower --lr \(this one: 0.1\)"):
        training.train(TrainConfig.from_dict(TINY), tmp_path / "run", progress="none")
    assert (tmp_path / "run" / CHECKPOINT_FILE).is_file() and not (tmp_path / "run" / WEIGHTS_FILE).exists()


@pytest.mark.slow
def test_an_easy_real_image_folder_reaches_90_percent_with_no_recipe_flags(tmp_path):
    """1,800 real MNIST digits at 8×8 (150 + 30 per class); only the flags a user naturally gives."""
    folder = mnist_image_folder(tmp_path / "digits")
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bntt_core", "train", "--dataset", "image-folder",
                             "--data-dir", str(folder), "--arch", "vgg5", "--num_steps", "8", "--num_epochs", "6",
                             "--out", str(tmp_path / "run"), "--quiet"],
                            cwd=PROJECT, env=ENV, capture_output=True, text=True, timeout=1200)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    accuracy = config["result"]["test_accuracy"]
    print(f"image folder: {100 * accuracy:.2f}% in {seconds:.0f} s; recipe {config['train']['auto_recipe']}")
    assert set(config["train"]["auto_recipe"]) == {"batch_size", "lr", "augment"}
    assert result.stdout.count("recipe adapted to this data") == 1  # printed once, at the start
    assert accuracy >= 0.90, f"{100 * accuracy:.2f}% (recipe {config['train']['auto_recipe']})"


# ------------------------------------------------------------------------------ image folders
def test_an_image_folder_with_one_class_is_an_error(tmp_path):
    solid_class_folders(tmp_path / "flat", ["only"], 5)
    with pytest.raises(DataError, match="at least two"):
        data.load_data("image-folder", data_dir=tmp_path / "flat")
    for split in ("train", "test"):
        solid_class_folders(tmp_path / "split" / split, ["only"], 3)
    with pytest.raises(DataError, match="at least two"):
        data.load_data("image-folder", data_dir=tmp_path / "split")


def test_class_folders_without_train_and_test_get_a_seeded_stratified_split(tmp_path):
    folder = solid_class_folders(tmp_path / "flat", ["a", "b", "c"], 10)
    train, test, info = data.load_data("image-folder", data_dir=folder, seed=0)
    assert (len(train), len(test)) == (24, 6) and torch.bincount(test.labels).tolist() == [2, 2, 2]
    assert "test fraction 0.2" in info.split and "seed 0" in info.split
    again = data.load_data("image-folder", data_dir=folder, seed=0)[1]
    assert torch.equal(again.images, test.images)
    other = data.load_data("image-folder", data_dir=folder, seed=1)[1]
    assert not torch.equal(other.images, test.images)
    _, test_half, info_half = data.load_data("image-folder", data_dir=folder, test_fraction=0.5)
    assert len(test_half) == 15 and "test fraction 0.5" in info_half.split
    with pytest.raises(DataError, match="test fraction must be"):
        data.load_data("image-folder", data_dir=folder, test_fraction=1.0)


def test_the_test_fraction_is_recorded_in_the_run(tmp_path, capsys):
    folder = solid_class_folders(tmp_path / "flat", ["a", "b"], 20)
    code, _, err = run_cli(capsys, "train", "--dataset", "image-folder", "--data-dir", folder, "--arch", "mlp",
                           "--width", "0.05", "--T", "2", "--epochs", "1", "--device", "cpu", "--test-fraction",
                           "0.25", "--out", tmp_path / "run", "--quiet")
    assert code == 0, err
    config = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    assert "test fraction 0.25" in config["data"]["split"] and config["train"]["test_fraction"] == 0.25
    assert config["data"]["num_test_images"] == 10
    code, _, err = run_cli(capsys, "train", "--dataset", "image-folder", "--data-dir", folder, "--test-fraction", "0",
                           "--out", tmp_path / "other")
    assert_one_error(code, err, "test fraction must be a number in (0, 1)")


def test_unreadable_images_are_skipped_with_one_warning_or_refused_when_strict(tmp_path, caplog, capsys):
    folder = solid_class_folders(tmp_path / "flat", ["a", "b"], 6)
    for i in range(4):
        (folder / "a" / f"broken{i}.png").write_bytes(b"\x89PNG not really")
    with caplog.at_level(logging.WARNING, logger="bntt_core.data"):
        train, test, _ = data.load_data("image-folder", data_dir=folder)
    warnings = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 4 unreadable image(s)" in warnings[0]
    assert "broken0.png" in warnings[0] and "and 1 more" in warnings[0]
    assert len(train) + len(test) == 12
    with pytest.raises(DataError, match="broken0.png"):  # strict, also when the lenient decode is cached
        data.load_data("image-folder", data_dir=folder, strict_images=True)
    code, _, err = run_cli(capsys, "train", "--dataset", "image-folder", "--data-dir", folder, "--strict-images",
                           "--out", tmp_path / "run")
    assert_one_error(code, err, "broken0.png")
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------ one writer per run
def test_a_second_writer_in_the_same_process_is_refused_and_the_lock_goes_away(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with runs.run_lock(run_dir, "training"):
        holder = json.loads((run_dir / RUN_LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(RunLockedError, match=rf"being written by process {os.getpid()} \(training"):
            with runs.run_lock(run_dir, "analysis"):
                pass
    assert not (run_dir / RUN_LOCK_FILE).exists()
    with runs.run_lock(run_dir, "analysis"):  # free again
        pass


def test_without_fcntl_the_lock_degrades_with_a_note(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(locks, "_fcntl", lambda: None)
    monkeypatch.setattr(locks, "_NO_LOCK_NOTED", [])
    with caplog.at_level(logging.WARNING, logger="bntt_core.runs"):
        with runs.run_lock(tmp_path, "training"), runs.run_lock(tmp_path, "analysis"):
            pass
    assert "no fcntl file locks" in caplog.text


def test_a_stale_lock_file_does_not_make_a_run_directory_non_empty(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / RUN_LOCK_FILE).write_text('{"pid": 999999, "command": "killed long ago"}')
    training.train(TrainConfig.from_dict({**TINY, "epochs": 1}), tmp_path / "run", progress="none")
    assert (tmp_path / "run" / WEIGHTS_FILE).is_file() and not (tmp_path / "run" / RUN_LOCK_FILE).exists()


def _wait_for(predicate, process: subprocess.Popen, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if process.poll() is not None:
            raise AssertionError(f"the process exited before {what}: {process.stderr.read()}")
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


# `bntt train --resume RUN` in its own process, each batch slowed down so that it is still training while
# the second writer tries (the training itself is the real one)
SLOW_TRAINER = """
import sys, time
from bntt_core import cli
from bntt_core.runs import training
real_step = training.train_step
def slow_step(*args, **kwargs):
    time.sleep(15)  # killed long before it ends
    return real_step(*args, **kwargs)
training.train_step = slow_step
sys.argv = ["bntt", "train", "--resume", sys.argv[1], "--quiet"]
raise SystemExit(cli.main(sys.argv[1:]))
"""


def test_two_real_processes_one_writer_and_kill_9_releases_the_lock(tmp_path, monkeypatch):
    run_dir = interrupted_run(tmp_path, monkeypatch)
    trainer = subprocess.Popen([sys.executable, "-c", SLOW_TRAINER, str(run_dir)],
                               cwd=PROJECT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: "pid" in ((run_dir / RUN_LOCK_FILE).read_text() if (run_dir / RUN_LOCK_FILE).exists()
                                    else ""), trainer, "the lock was taken")
        for argv in (["train", "--resume", str(run_dir), "--quiet"], ["analyze", str(run_dir), "--quick"]):
            second = subprocess.run([sys.executable, "-m", "bntt_core", *argv], cwd=PROJECT, env=ENV,
                                    capture_output=True, text=True, timeout=120)
            lines = [line for line in second.stderr.splitlines() if line.strip()]
            assert second.returncode == 2 and len(lines) == 1, second.stderr
            assert lines[0].startswith("error: ") and f"process {trainer.pid}" in lines[0], lines[0]
            assert "train --resume" in lines[0]  # the holder's command
        os.kill(trainer.pid, signal.SIGKILL)
        trainer.wait(timeout=30)
    finally:
        if trainer.poll() is None:
            trainer.kill()
    assert (run_dir / RUN_LOCK_FILE).exists()  # left behind by the killed process, and harmless:
    finished = subprocess.run([sys.executable, "-m", "bntt_core", "train", "--resume", str(run_dir), "--quiet"],
                              cwd=PROJECT, env=ENV, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert (run_dir / WEIGHTS_FILE).is_file() and not (run_dir / RUN_LOCK_FILE).exists()


# ------------------------------------------------------------------------------ refused checkpoints
class _Payload:
    """Unpickling this would create a file: the safe loader must refuse it before that happens."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_refused_checkpoint_is_our_one_line_never_torchs_advice(tmp_path, monkeypatch, capsys):
    run_dir = interrupted_run(tmp_path, monkeypatch)
    marker = tmp_path / "executed"
    torch.save({"format": training.CHECKPOINT_FORMAT, "payload": _Payload(marker)}, run_dir / CHECKPOINT_FILE)
    with pytest.raises(ResumeError) as caught:
        training.resume(run_dir, progress="none")
    text = "".join(traceback.format_exception(caught.value))
    assert training.REFUSED_CHECKPOINT in str(caught.value) and str(run_dir / CHECKPOINT_FILE) in str(caught.value)
    assert "weights_only" not in text and "weights only" not in text.lower() and not marker.exists()
    code, out, err = run_cli(capsys, "train", "--resume", run_dir, "--quiet")
    assert_one_error(code, err, "not a bntt checkpoint, or made by something else: it was not loaded",
                     str(run_dir / CHECKPOINT_FILE))
    assert "weights_only" not in err + out and not marker.exists()


# ------------------------------------------------------------------------------ figure export
class _FakeScope:
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self._proc = None

    def transform(self, fig, **kwargs):
        return self.behaviour()


def test_batch_png_export_retries_once_with_a_fresh_renderer(monkeypatch):
    scopes = []
    answers = iter([RuntimeError("browser crashed"), b"\x89PNG fine"])

    def next_answer():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def fake_scope():
        if export._PNG_SCOPE is None:
            export._PNG_SCOPE = _FakeScope(next_answer)
            scopes.append(export._PNG_SCOPE)
        return export._PNG_SCOPE

    monkeypatch.setattr(export, "_PNG_SCOPE", None)
    monkeypatch.setattr(export, "_png_scope", fake_scope)
    assert viz.figure_to_png(go.Figure(), name="fig4") == b"\x89PNG fine"
    assert len(scopes) == 2  # the retry used a fresh renderer


def test_batch_png_export_that_still_fails_names_the_figure(monkeypatch, tmp_path):
    def slow():
        time.sleep(5)
        return b"too late"

    monkeypatch.setattr(export, "_PNG_SCOPE", None)
    monkeypatch.setattr(export, "_png_scope", lambda: _FakeScope(slow))
    with pytest.raises(viz.FigureExportError, match=r"fig8b_noise could not be made: first try no answer within 0 s"):
        viz.figure_to_png(go.Figure(), name="fig8b_noise", timeout_s=0.2)
    assert viz.figure_to_png(go.Figure(), interactive=True, timeout_s=0.2) is None  # the dashboard's way

    def broken():
        raise RuntimeError("no browser")

    monkeypatch.setattr(export, "_png_scope", lambda: _FakeScope(broken))
    from bntt_core import paper

    with pytest.raises(viz.FigureExportError, match="fig5_spikes could not be made.*no browser"):
        paper.save_figure(go.Figure(), "fig5_spikes", pd_frame(), tmp_path)


def pd_frame():
    import pandas as pd

    return pd.DataFrame({"x": [1, 2]})
