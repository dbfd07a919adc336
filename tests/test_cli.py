"""The `bntt` command (bntt_core/cli.py): flags and their aliases, presets, evaluate, analyze/convert
dispatch, and bad input — each must end with one `error: ...` line on stderr and exit code 2, with
nothing already written lost.

    .venv/bin/python -m pytest tests/test_cli.py -q
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from conftest import interrupted_run, run_cli

from bntt_core import cli
from bntt_core.runs import CHECKPOINT_FILE, CONFIG_FILE, WEIGHTS_FILE, training

PROJECT = Path(__file__).resolve().parent.parent
TINY_FLAGS = ["--arch", "mlp", "--width", "0.05", "--epochs", "2", "--batch-size", "64", "--lr", "0.1",
              "--dataset", "mnist10k", "--max-train-images", "256", "--max-test-images", "100",
              "--eval-batch-size", "64", "--device", "cpu", "--T", "2", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models, one thread


def assert_one_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: "), err
    assert not any("Traceback" in line for line in lines), err
    for fragment in fragments:
        assert fragment in err, err


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    assert cli.main(["train", *TINY_FLAGS, "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------------------------ train
def test_train_with_the_seed_repos_spellings(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--arch", "mlp", "--width", "0.05", "--num_steps", "3",
                             "--leak_mem", "0.9", "--encode", "d", "--num_epochs", "1", "--batch_size", "32",
                             "--lr", "0.05", "--weight-decay", "1e-4", "--dataset", "mnist10k",
                             "--max-train-images", "64", "--max-test-images", "32", "--device", "cpu",
                             "--quiet", "--out", tmp_path / "run")
    assert code == 0, err
    assert "test accuracy:" in out and "epoch 1/1" in out  # --quiet: one line per epoch
    config = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    assert config["model"]["num_steps"] == 3 and config["model"]["leak"] == 0.9
    assert config["model"]["encoding"] == "direct"
    assert config["train"]["epochs"] == 1 and config["train"]["batch_size"] == 32
    assert config["train"]["weight_decay"] == 1e-4


def test_flags_override_the_preset(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--preset", "quickstart", "--arch", "mlp", "--width", "0.05",
                           "--epochs", "1", "--T", "2", "--max-train-images", "64", "--max-test-images", "32",
                           "--ann", "--device", "cpu", "--quiet", "--out", tmp_path / "run")
    assert code == 0, err
    config = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    assert config["train"]["preset"] == "quickstart"
    assert config["train"]["arch"] == "mlp" and config["train"]["epochs"] == 1
    assert config["train"]["lr"] == training.TrainConfig.from_preset("quickstart").lr  # from the preset
    assert config["model"]["spiking"] is False


def test_python_dash_m_and_help_work():
    completed = subprocess.run([sys.executable, "-m", "bntt_core", "train", "--help"], cwd=PROJECT,
                               env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0
    for flag in ("--num_steps", "--T", "--leak_mem", "--encode", "--num_epochs", "--batch_size", "--resume",
                 "--preset", "--ann", "--precision", "--quiet"):
        assert flag in completed.stdout


# ------------------------------------------------------------------------------- evaluate
def test_evaluate_prints_accuracy_at_T_and_at_fewer_steps(trained_run, capsys):
    code, out, err = run_cli(capsys, "evaluate", trained_run, "--steps", "1", "--quiet")
    assert code == 0, err
    config = json.loads((trained_run / CONFIG_FILE).read_text())
    assert f"test accuracy: {100 * config['result']['test_accuracy']:.2f}% (100 images, T = 2)" in out
    assert "after 1 of 2 steps:" in out


def test_evaluate_refuses_steps_beyond_T(trained_run, capsys):
    code, _, err = run_cli(capsys, "evaluate", trained_run, "--steps", "5")
    assert_one_error(code, err, "--steps must be in [1, 2]")


# ------------------------------------------------------------------------ analyze / convert
def test_analyze_and_convert_say_clearly_when_their_module_is_missing(trained_run, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "bntt_core.analysis", None)
    monkeypatch.setitem(sys.modules, "bntt_core.conversion", None)
    code, _, err = run_cli(capsys, "analyze", trained_run, "--quick")
    assert_one_error(code, err, "bntt_core.analysis")
    code, _, err = run_cli(capsys, "convert", trained_run, "--out", trained_run.parent / "converted", "--steps", "50")
    assert_one_error(code, err, "bntt_core.conversion")


def test_analyze_and_convert_call_the_library(trained_run, capsys, monkeypatch):
    calls = {}

    def analyze_run(path, *, quick=False, tables=None, progress=None):
        progress(1.0, "done")
        calls["analyze"] = (path, quick, tables)
        return {"noise": None}

    def convert_run(ann_run, out, *, steps=None):
        calls["convert"] = (ann_run, out, steps)
        return types.SimpleNamespace(path=Path(out))

    monkeypatch.setitem(sys.modules, "bntt_core.analysis", types.SimpleNamespace(analyze_run=analyze_run))
    monkeypatch.setitem(sys.modules, "bntt_core.conversion", types.SimpleNamespace(convert_run=convert_run))
    code, out, err = run_cli(capsys, "analyze", trained_run, "--quick", "--tables", "noise,fgsm", "--quiet")
    assert code == 0, err
    assert calls["analyze"] == (str(trained_run), True, ["noise", "fgsm"]) and "noise" in out
    code, out, err = run_cli(capsys, "convert", trained_run, "--out", "elsewhere", "--steps", "300")
    assert code == 0, err
    assert calls["convert"] == (str(trained_run), "elsewhere", 300) and "elsewhere" in out


def test_analyze_passes_the_noise_modes(tmp_path, capsys, monkeypatch):
    calls = []

    def analyze_run(path, *, quick=False, tables=None, progress=None, noise_modes=None):
        calls.append(noise_modes)
        return {"noise": None}

    monkeypatch.setitem(sys.modules, "bntt_core.analysis", types.SimpleNamespace(analyze_run=analyze_run))
    assert run_cli(capsys, "analyze", tmp_path, "--tables", "noise")[0] == 0
    assert run_cli(capsys, "analyze", tmp_path, "--noise-mode", "shift, unclipped,shift")[0] == 0
    assert calls == [("unclipped", "clipped"), ("shift", "unclipped")]  # the default; repeats dropped


@pytest.mark.parametrize("value", ["gaussian", "unclipped,blur", ","])
def test_analyze_refuses_an_unknown_noise_mode(tmp_path, capsys, value):
    code, out, err = run_cli(capsys, "analyze", tmp_path, "--noise-mode", value)
    assert_one_error(code, err, "--noise-mode", "unclipped,clipped,shift")
    assert len([line for line in err.splitlines() if line.strip()]) == 1 and not out


def test_runs_and_presets_commands_list_things(trained_run, capsys):
    code, out, _ = run_cli(capsys, "runs", trained_run.parent)
    assert code == 0 and "mlp mnist10k T=2" in out
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0 and "paper-cifar10" in out and "quickstart" in out


# --------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("flags, fragments", [
    (["--arch", "resnet"], ["unknown arch 'resnet'", "vgg9"]),
    (["--dataset", "imagenet"], ["unknown dataset 'imagenet'", "mnist10k"]),
    (["--preset", "paper-imagenet"], ["unknown preset 'paper-imagenet'", "quickstart"]),
    (["--T", "0"], ["num_steps (T) must be an integer ≥ 1"]),
    (["--leak_mem", "0"], ["leak must be in (0, 1]"]),
    (["--leak", "1.01"], ["leak must be in (0, 1]"]),
    (["--batch_size", "0"], ["batch size must be an integer ≥ 1"]),
    (["--encode", "x"], ["unknown encoding 'x'"]),
    (["--T", "two"], ["invalid int value"]),
    (["--threads", "0"], ["--threads must be ≥ 1"]),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent/bntt-data"], ["not found", "Looked in"]),
])
def test_bad_training_input_is_one_error_and_exit_2(tmp_path, capsys, flags, fragments):
    code, _, err = run_cli(capsys, "train", *TINY_FLAGS, *flags, "--out", tmp_path / "run")
    assert_one_error(code, err, *fragments)
    assert not (tmp_path / "run").exists()


def test_corrupt_data_is_one_error(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist10k.npz").write_bytes(b"garbage, not an npz")
    code, _, err = run_cli(capsys, "train", *TINY_FLAGS, "--data-dir", tmp_path / "data", "--out", tmp_path / "run")
    assert_one_error(code, err, "cannot read", "mnist10k.npz")
    assert not (tmp_path / "run").exists()


def test_existing_run_directory_is_refused_and_kept(trained_run, capsys):
    before = snapshot(trained_run)
    code, _, err = run_cli(capsys, "train", *TINY_FLAGS, "--seed", "3", "--out", trained_run)
    assert_one_error(code, err, "already exists", "--resume")
    assert snapshot(trained_run) == before


@pytest.mark.parametrize("damage", ["truncate", "foreign"])
def test_damaged_weights_are_one_error_on_evaluate(trained_run, tmp_path, capsys, damage):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained_run, copy)
    weights = copy / WEIGHTS_FILE
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:-64])
    else:
        torch.save({"something": torch.zeros(3)}, weights)  # a pickle, not safetensors
    code, _, err = run_cli(capsys, "evaluate", copy)
    assert_one_error(code, err, str(weights))


def test_resume_with_a_config_that_does_not_match_the_weights_is_one_error(tmp_path, capsys, monkeypatch):
    run_dir = interrupted_run(tmp_path, monkeypatch)
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    config["train"]["width"] = config["model"]["width"] = 0.1
    (run_dir / CONFIG_FILE).write_text(json.dumps(config))
    before = snapshot(run_dir)
    code, _, err = run_cli(capsys, "train", "--resume", run_dir, "--quiet")
    assert_one_error(code, err, "does not match")
    assert snapshot(run_dir) == before


def test_resume_refuses_changed_flags_and_then_finishes(tmp_path, capsys, monkeypatch):
    run_dir = interrupted_run(tmp_path, monkeypatch)
    code, _, err = run_cli(capsys, "train", "--resume", run_dir, "--lr", "0.3")
    assert_one_error(code, err, "lr = 0.3", "stored")
    code, out, err = run_cli(capsys, "train", "--resume", run_dir, "--lr", "0.1", "--quiet", "--device", "cpu",
                             "--threads", "1")  # where it runs may change; what it computes may not
    assert code == 0, err
    assert "epoch 2/2" in out and (run_dir / WEIGHTS_FILE).exists() and not (run_dir / CHECKPOINT_FILE).exists()


def test_nan_loss_is_one_error_and_keeps_the_checkpoint(tmp_path, capsys, monkeypatch):
    real_step = training.train_step
    calls = {"n": 0}

    def step_that_diverges(*args, **kwargs):
        calls["n"] += 1
        loss = real_step(*args, **kwargs)
        return float("nan") if calls["n"] >= 5 else loss

    monkeypatch.setattr(training, "train_step", step_that_diverges)
    code, _, err = run_cli(capsys, "train", *TINY_FLAGS, "--out", tmp_path / "run")
    assert_one_error(code, err, "loss became nan", "last good checkpoint", CHECKPOINT_FILE)
    assert torch.load(tmp_path / "run" / CHECKPOINT_FILE, weights_only=True)["epoch"] == 1
    assert not (tmp_path / "run" / WEIGHTS_FILE).exists()


def test_missing_run_is_one_error(tmp_path, capsys):
    code, _, err = run_cli(capsys, "evaluate", tmp_path / "nothing-here")
    assert_one_error(code, err, "not a directory")
    code, _, err = run_cli(capsys, "train", "--resume", tmp_path / "nothing-here")
    assert_one_error(code, err, "not a directory")
