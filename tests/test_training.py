"""Training (bntt_core/runs/training.py): configs and presets, the run it writes, reproducibility, resume
after kill -9, divergence, and data-parallel training with torchrun (gloo, 2 processes).

Every run here is tiny: an MLP of 40 units (or a VGG5 at 1/8 width) with T = 2-3 on a few hundred
images of the embedded mnist10k.

    .venv/bin/python -m pytest tests/test_training.py -q            # add -m "not slow" to skip torchrun
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from bntt_core import load_run
from bntt_core.data import KNOWN_DATASETS
from bntt_core.runs import CHECKPOINT_FILE, CONFIG_FILE, METRICS_COLUMNS, WEIGHTS_FILE, training
from bntt_core.runs.presets import PRESETS, UnknownPresetError, preset_settings
from bntt_core.runs.training import (
    ConfigError,
    ResumeError,
    RunExistsError,
    TrainConfig,
    TrainingDiverged,
    evaluate_run,
    lr_at_epoch,
    resume,
    train,
)

PROJECT = Path(__file__).resolve().parent.parent
TINY = dict(arch="mlp", dataset="mnist10k", width=0.05, num_steps=2, epochs=2, batch_size=64, lr=0.1,
            max_train_images=256, max_test_images=100, eval_batch_size=64, device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models, one thread


def tiny(**changes) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **changes})


def weights_of(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / WEIGHTS_FILE)


def assert_same_weights(run_a: Path, run_b: Path) -> None:
    a, b = weights_of(run_a), weights_of(run_b)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs"


# ----------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("changes, message", [
    (dict(arch="resnet50"), "unknown arch"),
    (dict(dataset="imagenet-22k"), "unknown dataset"),
    (dict(num_steps=0), "num_steps"),
    (dict(leak=0.0), r"leak must be in \(0, 1\]"),
    (dict(leak=1.5), r"leak must be in \(0, 1\]"),
    (dict(batch_size=0), "batch size"),
    (dict(epochs=0), "epochs"),
    (dict(norm="group"), "unknown norm"),
    (dict(encoding="latency"), "unknown encoding"),
    (dict(optimizer="lion"), "unknown optimizer"),
    (dict(lr=-1.0), "lr must be"),
    (dict(precision="fp8"), "unknown precision"),
    (dict(weights_dtype="int8"), "unknown weights dtype"),
    (dict(device="tpu"), "device"),
])
def test_bad_settings_raise_one_config_error(changes, message):
    with pytest.raises(ConfigError, match=message):
        tiny(**changes).validate()


def test_unknown_setting_and_unknown_preset_are_refused():
    with pytest.raises(ConfigError, match="unknown training settings"):
        TrainConfig.from_dict({"num_stepz": 3})
    with pytest.raises(UnknownPresetError, match="quickstart"):
        preset_settings("paper-imagenet")


def test_encoding_aliases_and_milestones_normalise():
    config = TrainConfig.from_dict({"encoding": "d", "lr_milestones": [0.5, 0.75]})
    assert config.encoding == "direct" and config.lr_milestones == (0.5, 0.75)
    assert TrainConfig.from_dict(config.to_dict()) == config  # JSON round trip


def test_every_preset_is_a_valid_config_on_a_known_dataset():
    assert {"paper-cifar10", "paper-cifar100", "paper-tinyimagenet", "paper-dvs-cifar10", "paper-seq-mnist",
            "quickstart", "cifar10-cpu", "fashion-cpu"} <= set(PRESETS)
    for name in PRESETS:
        config = TrainConfig.from_preset(name, device="cpu")
        config.validate()
        assert config.dataset in KNOWN_DATASETS and config.preset == name
    paper = TrainConfig.from_preset("paper-cifar10")
    assert (paper.arch, paper.num_steps, paper.leak, paper.epochs, paper.lr, paper.momentum, paper.weight_decay) == \
        ("vgg9", 25, 0.95, 120, 0.3, 0.9, 5e-4)
    c100 = TrainConfig.from_preset("paper-cifar100")
    assert (c100.arch, c100.num_steps, c100.leak, c100.epochs) == ("vgg11", 30, 0.99, 240)
    assert TrainConfig.from_preset("paper-seq-mnist").num_steps == 784
    assert TrainConfig.from_preset("quickstart", epochs=9).epochs == 9  # overrides win


def test_fashion_cpu_preset_trains_exactly_as_the_shipped_ablation_was_launched():
    # the shipped fmnist-vgg5-* runs were started with explicit flags, --lr-milestones 0.67: 0.67 · 3 epochs
    # falls after the last epoch's start, so their lr was 0.1 throughout, as the preset's 1.0 says plainly
    preset = TrainConfig.from_preset("fashion-cpu")
    launched = preset.replace(lr_milestones=(0.67,))
    assert [lr_at_epoch(preset, e) for e in range(3)] == [lr_at_epoch(launched, e) for e in range(3)] == [0.1] * 3
    assert (preset.arch, preset.width, preset.num_steps, preset.epochs, preset.augment) == ("vgg5", 0.25, 6, 3, False)


def test_lr_drops_tenfold_at_50_70_90_percent():
    config = TrainConfig(epochs=100, lr=0.3)
    assert [lr_at_epoch(config, e) for e in (0, 49, 50, 69, 70, 89, 90, 99)] == pytest.approx(
        [0.3, 0.3, 0.03, 0.03, 0.003, 0.003, 0.0003, 0.0003])
    paper = TrainConfig(epochs=120, lr=0.3)
    assert [lr_at_epoch(paper, e) for e in (59, 60, 83, 84, 107, 108)] == pytest.approx(
        [0.3, 0.03, 0.03, 0.003, 0.003, 0.0003])
    assert lr_at_epoch(TrainConfig(epochs=1, lr=0.3), 0) == 0.3  # short runs are not cut to lr/1000
    assert [lr_at_epoch(TrainConfig(epochs=4, lr=0.3), e) for e in range(4)] == pytest.approx([0.3, 0.3, 0.03, 0.003])


# ---------------------------------------------------------------------------------- a run
def test_train_writes_a_complete_run_and_evaluates_the_full_test_set(tmp_path):
    result = train(tiny(max_test_images=101), tmp_path / "run", progress="none")
    run_dir = tmp_path / "run"
    assert {p.name for p in run_dir.iterdir()} == {CONFIG_FILE, WEIGHTS_FILE, "metrics.csv", "train.log",
                                                   "gamma_history.csv"}  # a BNTT run: γ after every epoch
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    assert config["format"] == "bntt-run/2" and config["kind"] == "trained"
    assert config["model"]["arch"] == "mlp" and config["model"]["num_steps"] == 2
    assert config["data"]["dataset"] == "mnist10k" and len(config["data"]["class_names"]) == 10
    assert config["data"]["mean"] and config["data"]["std"] and "split_seed" in config["data"]
    assert config["train"]["lr"] == 0.1 and config["train"]["seed"] == 0
    assert {"torch", "python", "numpy", "bntt_core"} <= set(config["versions"])
    assert "git_commit" in config and config["created"]
    assert config["result"]["epochs_done"] == 2 and config["result"]["num_test_images"] == 101
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert list(metrics.columns) == list(METRICS_COLUMNS) and list(metrics.epoch) == [1, 2]
    # the reported accuracy is the final epoch's, over all 101 images (a batch of 64 plus 37)
    assert result.test_accuracy == metrics.test_acc.iloc[-1] == config["result"]["test_accuracy"]
    assert round(result.test_accuracy * 101, 6).is_integer()
    evaluated = evaluate_run(run_dir, steps=1)
    assert evaluated["test_accuracy"] == result.test_accuracy and evaluated["num_images"] == 101
    assert len(evaluated["by_step"]) == 2 and evaluated["accuracy_at_steps"] == evaluated["by_step"][0]
    run = load_run(run_dir)
    assert not run.model.training and run.info.name == "mnist10k"


def test_training_is_reproducible_and_the_seed_matters(tmp_path):
    train(tiny(), tmp_path / "a", progress="none")
    train(tiny(), tmp_path / "b", progress="none")
    train(tiny(seed=1), tmp_path / "c", progress="none")
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    assert not torch.equal(weights_of(tmp_path / "a")["layers.0.synapse.weight"],
                           weights_of(tmp_path / "c")["layers.0.synapse.weight"])


def test_vgg_with_augmentation_direct_coding_adam_and_ann_twin_train(tmp_path):
    snn = train(tiny(arch="vgg5", width=0.125, encoding="direct", optimizer="adam", lr=1e-3, epochs=1,
                     max_train_images=128), tmp_path / "snn", progress="none")
    assert 0.0 <= snn.test_accuracy <= 1.0
    ann = train(tiny(spiking=False, epochs=1), tmp_path / "ann", progress="none")
    assert load_run(ann.path).spec.spiking is False


def test_threads_setting_is_recorded_and_the_callers_threads_restored(tmp_path):
    torch.set_num_threads(2)
    train(tiny(epochs=1, threads=1), tmp_path / "run", progress="none")
    assert torch.get_num_threads() == 2
    assert json.loads((tmp_path / "run" / CONFIG_FILE).read_text())["train"]["threads"] == 1


def test_half_precision_weights_store_the_evaluated_accuracy(tmp_path):
    result = train(tiny(weights_dtype="float16"), tmp_path / "run", progress="none")
    assert weights_of(tmp_path / "run")["layers.0.synapse.weight"].dtype == torch.float16
    assert evaluate_run(tmp_path / "run")["test_accuracy"] == result.test_accuracy


def test_existing_run_directory_is_never_overwritten(tmp_path):
    train(tiny(epochs=1), tmp_path / "run", progress="none")
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(RunExistsError, match="already exists"):
        train(tiny(epochs=1, seed=5), tmp_path / "run", progress="none")
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def test_missing_data_raises_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        train(tiny(dataset="cifar10", data_dir=str(tmp_path / "no-data")), tmp_path / "run", progress="none")
    assert not (tmp_path / "run").exists()


def test_corrupt_data_raises_a_data_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist10k.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    with pytest.raises(ValueError, match="cannot read"):
        train(tiny(data_dir=str(tmp_path / "data")), tmp_path / "run", progress="none")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- divergence
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_step = training.train_step
    calls = {"n": 0}

    def step_that_diverges(*args, **kwargs):
        calls["n"] += 1
        loss = real_step(*args, **kwargs)
        return float("nan") if calls["n"] == 6 else loss  # batch 2 of epoch 2 (4 batches per epoch)

    monkeypatch.setattr(training, "train_step", step_that_diverges)
    with pytest.raises(TrainingDiverged, match="last good checkpoint .after epoch 1"):
        train(tiny(epochs=3), tmp_path / "run", progress="none")
    run_dir = tmp_path / "run"
    assert not (run_dir / WEIGHTS_FILE).exists()
    checkpoint = torch.load(run_dir / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["epoch"] == 1 and len(checkpoint["metrics"]) == 1
    assert "loss became nan" in (run_dir / "train.log").read_text()


def test_a_real_divergence_is_caught(tmp_path):
    with pytest.raises(TrainingDiverged):
        train(tiny(lr=1e38, epochs=2, norm="none"), tmp_path / "run", progress="none")
    assert (tmp_path / "run" / CHECKPOINT_FILE).exists()


# ------------------------------------------------------------------------------------ resume
def test_resume_after_an_interrupted_epoch_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    train(tiny(epochs=3), tmp_path / "straight", progress="none")
    real_step = training.train_step
    calls = {"n": 0}

    def step_then_crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # in the middle of epoch 2
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(training, "train_step", step_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(epochs=3), tmp_path / "resumed", progress="none")
    monkeypatch.setattr(training, "train_step", real_step)
    assert not (tmp_path / "resumed" / WEIGHTS_FILE).exists()
    result = resume(tmp_path / "resumed", progress="none")
    assert result.epochs_done == 3
    assert not (tmp_path / "resumed" / CHECKPOINT_FILE).exists()
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")
    straight = pd.read_csv(tmp_path / "straight" / "metrics.csv")
    resumed = pd.read_csv(tmp_path / "resumed" / "metrics.csv")
    pd.testing.assert_frame_equal(straight.drop(columns=["seconds", "images_per_s"]),
                                  resumed.drop(columns=["seconds", "images_per_s"]))
    # a finished run resumes to "nothing to do"
    assert resume(tmp_path / "resumed", progress="none").test_accuracy == result.test_accuracy


def _wait_for_first_epoch(run_dir: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    metrics = run_dir / "metrics.csv"
    while time.monotonic() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            return
        if process.poll() is not None:
            raise AssertionError(f"training exited early: {process.stderr.read()}")
        time.sleep(0.005)
    raise AssertionError("no epoch finished in time")


def test_kill_minus_9_then_resume_gives_bit_identical_weights(tmp_path):
    config = tiny(arch="vgg5", width=0.125, num_steps=2, epochs=8, max_train_images=256, max_test_images=64)
    train(config, tmp_path / "straight", progress="none")
    flags = ["--arch", "vgg5", "--width", "0.125", "--T", "2", "--epochs", "8", "--batch-size", "64",
             "--lr", "0.1", "--dataset", "mnist10k", "--max-train-images", "256", "--max-test-images", "64",
             "--eval-batch-size", "64", "--device", "cpu", "--quiet"]
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the thread count of the reference run (fixture one_thread)
    process = subprocess.Popen([sys.executable, "-m", "bntt_core", "train", *flags, "--out", str(killed)],
                               cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_first_epoch(killed, process)
        time.sleep(0.05)  # somewhere inside a later epoch
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert (killed / CHECKPOINT_FILE).exists() and not (killed / WEIGHTS_FILE).exists(), \
        "the run finished before it was killed; make the tiny config slower"
    resumed = subprocess.run([sys.executable, "-m", "bntt_core", "train", "--resume", str(killed), "--quiet"],
                             cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in (killed / "train.log").read_text()
    assert_same_weights(tmp_path / "straight", killed)


def test_resume_refuses_a_config_that_no_longer_matches_the_checkpoint(tmp_path, monkeypatch):
    real_step = training.train_step
    calls = {"n": 0}

    def step_then_crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(training, "train_step", step_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(epochs=2), tmp_path / "run", progress="none")
    monkeypatch.setattr(training, "train_step", real_step)
    config_path = tmp_path / "run" / CONFIG_FILE
    original = config_path.read_text()

    edited = json.loads(original)
    edited["train"]["num_steps"] = 3
    edited["model"]["num_steps"] = 3  # consistent with each other, not with the checkpoint's weights
    config_path.write_text(json.dumps(edited))
    with pytest.raises(ResumeError, match="does not match"):
        resume(tmp_path / "run", progress="none")

    edited = json.loads(original)
    edited["model"]["width"] = 0.5  # the model section disagrees with the train section
    config_path.write_text(json.dumps(edited))
    with pytest.raises(ResumeError, match="model section"):
        resume(tmp_path / "run", progress="none")

    config_path.write_text(original)
    with pytest.raises(ResumeError, match="lr = 0.5"):
        resume(tmp_path / "run", progress="none", expect={"lr": 0.5})
    checkpoint = (tmp_path / "run" / CHECKPOINT_FILE).read_bytes()
    (tmp_path / "run" / CHECKPOINT_FILE).write_bytes(checkpoint[: len(checkpoint) // 2])
    with pytest.raises(ResumeError, match="damaged"):
        resume(tmp_path / "run", progress="none")
    assert config_path.read_text() == original  # nothing was rewritten by the refused resumes


# ------------------------------------------------------------------------------ torchrun / DDP
@pytest.mark.slow
def test_torchrun_two_gloo_processes_train_one_run(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not installed")
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "bntt_core", "train", "--arch", "mlp",
         "--width", "0.05", "--T", "2", "--epochs", "2", "--batch-size", "64", "--lr", "0.1", "--dataset",
         "mnist10k", "--max-train-images", "256", "--max-test-images", "100", "--device", "cpu", "--quiet",
         "--out", str(out)],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.count("test accuracy:") == 1  # rank 0 alone reports
    log = (out / "train.log").read_text()
    assert "2 process(es)" in log and log.count("epoch 1/2") == 1
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["distributed"]["world_size"] == 2 and config["distributed"]["backend"] == "gloo"
    # every rank held out the same default 10% validation slice (rank 0 recorded it), rebuilt identically
    assert config["data"]["validation"]["num_images"] == 800 and config["data"]["num_train_images"] == 256
    assert len(training.run_validation_set(out)[0]) == 800
    run = load_run(out)
    assert run.metrics is not None and len(run.metrics) == 2
    assert evaluate_run(out)["test_accuracy"] == config["result"]["test_accuracy"]
