"""Run directories (bntt_core/runs/run_dir.py): atomic files, safetensors weights, load_run, tables, find_runs.

Runs here are built by hand from tiny models (no training), so every test takes milliseconds.

    .venv/bin/python -m pytest tests/test_runs.py -q
"""

from __future__ import annotations

import json
import os
import pickle

import pandas as pd
import pytest
import torch

from bntt_core import load_run
from bntt_core.data import DataInfo
from bntt_core.nn.models import ModelSpec, model_from_spec
from bntt_core.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    RunError,
    WeightsError,
    atomic_write_text,
    data_section,
    find_runs,
    load_weights_into,
    make_config,
    read_meta,
    read_table,
    round_to_dtype,
    save_weights,
    write_config,
    write_table,
)

INFO = DataInfo(name="mnist10k", in_channels=1, image_size=8, num_classes=4, mean=(0.13,), std=(0.31,),
                class_names=("a", "b", "c", "d"), augment="crop", num_steps_hint=None, source="hand-made")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models, one thread


def tiny_spec(**changes) -> ModelSpec:
    values = dict(arch="mlp", num_classes=4, in_channels=1, image_size=8, num_steps=3, width=0.05)
    values.update(changes)
    return ModelSpec(**values)


def make_run(path, *, spec: ModelSpec | None = None, kind: str = "trained", weights_dtype: str = "float32",
             metrics: bool = True):
    """A complete run directory around a freshly initialised model; returns the model."""
    spec = spec or tiny_spec()
    torch.manual_seed(0)
    model = model_from_spec(spec)
    path.mkdir(parents=True)
    data = data_section(INFO, dataset="mnist10k", data_dir=None, split_seed=0)
    write_config(path, make_config(kind=kind, spec=spec, data=data, train=None, weights_dtype=weights_dtype,
                                   result={"test_accuracy": 0.5, "epochs_done": 1, "wall_seconds": 1.0}))
    save_weights(model, path / WEIGHTS_FILE, weights_dtype)
    if metrics:
        pd.DataFrame([{"epoch": 1, "lr": 0.1, "train_loss": 1.0, "train_acc": 0.4, "test_acc": 0.5,
                       "seconds": 1.0, "images_per_s": 100.0}]).to_csv(path / "metrics.csv", index=False)
    return model


def test_atomic_write_replaces_whole_file_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "file.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_load_run_rebuilds_model_info_and_metrics(tmp_path):
    original = make_run(tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.spec == tiny_spec()
    assert run.info == INFO
    assert not run.model.training
    assert list(run.metrics.columns) == ["epoch", "lr", "train_loss", "train_acc", "test_acc", "seconds",
                                         "images_per_s"]
    for name, tensor in original.state_dict().items():
        assert torch.equal(run.model.state_dict()[name], tensor), name
    images = torch.randn(5, 1, 8, 8)
    generator_a, generator_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    original.eval()
    assert torch.equal(run.model(images, generator=generator_a), original(images, generator=generator_b))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights_restore_exactly_what_was_evaluated(tmp_path, dtype):
    model = make_run(tmp_path / "run", weights_dtype=dtype)
    round_to_dtype(model, dtype)  # what training evaluates before it records the test accuracy
    run = load_run(tmp_path / "run")
    assert run.config["weights"]["dtype"] == dtype
    for name, tensor in model.state_dict().items():
        assert torch.equal(run.model.state_dict()[name], tensor), name
    from safetensors.torch import load_file

    stored = load_file(tmp_path / "run" / WEIGHTS_FILE)
    assert stored["classifier.weight"].dtype == getattr(torch, dtype)


def test_converted_run_is_loadable(tmp_path):
    spec = tiny_spec(bias=True, norm="none", leak=1.0, num_steps=20)
    make_run(tmp_path / "converted", spec=spec, kind="converted", metrics=False)
    run = load_run(tmp_path / "converted")
    assert run.kind == "converted" and run.metrics is None
    assert run.model.classifier.bias is not None and run.spec.leak == 1.0 and run.spec.norm == "none"


def test_truncated_weights_are_refused(tmp_path):
    make_run(tmp_path / "run")
    weights = tmp_path / "run" / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="truncated"):
        load_run(tmp_path / "run")


def test_foreign_safetensors_are_refused(tmp_path):
    make_run(tmp_path / "run")
    other = model_from_spec(tiny_spec(arch="vgg5", width=0.125))
    save_weights(other, tmp_path / "run" / WEIGHTS_FILE)
    with pytest.raises(WeightsError, match="does not match the model"):
        load_run(tmp_path / "run")


class _Boom:
    """Unpickling this would create a marker file: the loader must never get that far."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_disguised_as_weights_is_never_unpickled(tmp_path):
    make_run(tmp_path / "run")
    marker = tmp_path / "unpickled"
    (tmp_path / "run" / WEIGHTS_FILE).write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(WeightsError):
        load_run(tmp_path / "run")
    assert not marker.exists()


def test_weights_with_wrong_shapes_name_the_tensor(tmp_path):
    model = model_from_spec(tiny_spec())
    wider = model_from_spec(tiny_spec(width=0.1))
    save_weights(wider, tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="shape mismatch"):
        load_weights_into(model, tmp_path / "w.safetensors")


def test_missing_and_foreign_config_raise_run_error(tmp_path):
    with pytest.raises(RunError, match="not a directory"):
        load_run(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="no config.json"):
        load_run(tmp_path / "empty")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / CONFIG_FILE).write_text(json.dumps({"format": "other/2"}))
    with pytest.raises(RunError, match="not a bntt run config"):
        load_run(tmp_path / "foreign")


def test_tables_round_trip_and_meta_is_merged_per_table(tmp_path):
    make_run(tmp_path / "run")
    assert read_table(tmp_path / "run", "noise") is None
    noise = pd.DataFrame({"sigma": [0.0, 0.1], "accuracy": [0.9, 0.8]})
    write_table(tmp_path / "run", "noise", noise, {"subset": 100, "seed": 3})
    write_table(tmp_path / "run", "fgsm", pd.DataFrame({"epsilon": [0.0], "accuracy": [0.9]}), {"subset": 50})
    pd.testing.assert_frame_equal(read_table(tmp_path / "run", "noise"), noise)
    meta = read_meta(tmp_path / "run")
    assert meta["noise"]["subset"] == 100 and meta["noise"]["seed"] == 3 and meta["noise"]["rows"] == 2
    assert meta["fgsm"]["subset"] == 50
    write_table(tmp_path / "run", "noise", noise.iloc[:1], {"subset": 10})
    meta = read_meta(tmp_path / "run")
    assert meta["noise"]["subset"] == 10 and meta["noise"]["rows"] == 1 and "fgsm" in meta
    leftovers = [name for name in os.listdir(tmp_path / "run" / "analysis") if name.endswith(".tmp")]
    assert leftovers == []


def test_write_table_checks_name_and_columns(tmp_path):
    make_run(tmp_path / "run")
    with pytest.raises(ValueError, match="unknown analysis table"):
        write_table(tmp_path / "run", "nonsense", pd.DataFrame({"a": [1]}), {})
    with pytest.raises(ValueError, match="required columns"):
        write_table(tmp_path / "run", "noise", pd.DataFrame({"sigma": [0.1]}), {})


def test_find_runs_lists_good_and_broken_runs_without_raising(tmp_path):
    make_run(tmp_path / "good")
    make_run(tmp_path / "nested" / "deeper" / "also-good")
    write_table(tmp_path / "good", "noise", pd.DataFrame({"sigma": [0.0], "accuracy": [1.0]}), {})
    (tmp_path / "bad-json").mkdir()
    (tmp_path / "bad-json" / CONFIG_FILE).write_text("{ not json")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / CONFIG_FILE).write_text(json.dumps({"format": "someone-else/1"}))
    make_run(tmp_path / "no-weights")
    (tmp_path / "no-weights" / WEIGHTS_FILE).unlink()
    make_run(tmp_path / "unfinished")
    (tmp_path / "unfinished" / WEIGHTS_FILE).unlink()
    (tmp_path / "unfinished" / CHECKPOINT_FILE).write_bytes(b"resume state")
    make_run(tmp_path / "truncated")
    weights = tmp_path / "truncated" / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:50])
    (tmp_path / "not-a-run").mkdir()

    entries = {entry.name: entry for entry in find_runs([tmp_path, tmp_path / "missing-root"])}
    assert set(entries) == {"good", "also-good", "bad-json", "foreign", "no-weights", "unfinished", "truncated"}
    assert entries["good"].ok and entries["also-good"].ok
    assert entries["good"].test_accuracy == 0.5 and entries["good"].arch == "mlp"
    assert "not valid JSON" in entries["bad-json"].error
    assert "not a bntt run config" in entries["foreign"].error
    assert "missing" in entries["no-weights"].error
    assert "resume" in entries["unfinished"].error
    assert entries["truncated"].error
    assert find_runs(tmp_path / "good")[0].ok  # a root may itself be a run


def test_find_runs_survives_symlink_loops_and_meta_takes_numpy_values(tmp_path):
    import numpy as np

    make_run(tmp_path / "root" / "run")
    (tmp_path / "root" / "loop").symlink_to(tmp_path / "root")
    entries = find_runs(tmp_path / "root")
    assert [entry.name for entry in entries] == ["run"] and entries[0].ok
    write_table(tmp_path / "root" / "run", "noise", pd.DataFrame({"sigma": [0.0], "accuracy": [1.0]}),
                {"subset": np.int64(7), "sigmas": np.array([0.0, 0.1]), "run": tmp_path / "root" / "run"})
    meta = read_meta(tmp_path / "root" / "run")["noise"]
    assert meta["subset"] == 7 and meta["sigmas"] == [0.0, 0.1] and meta["run"].endswith("run")
