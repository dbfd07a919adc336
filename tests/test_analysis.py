"""The analysis: the recording pass against a per-step reference loop of the SPEC equations, energy
against brute force, and analyze_run / read_analysis on tiny real runs (tables, meta, stale, bad input).

Run: .venv/bin/python -m pytest tests/test_analysis.py -q
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bntt_core import build_model, viz
from bntt_core.analysis.energy import E_AC_PJ, E_MAC_PJ, ann_energy_table, snn_energy_table
from bntt_core.analysis.recording import (
    HIST_MAX_STEPS,
    HIST_SUBSAMPLE,
    MAX_BATCH,
    NEURON_STEP_BUDGET,
    _Recorder,
    default_batch_size,
    histogram_steps,
    record,
)
from bntt_core.analysis.tables import TABLES
from bntt_core.nn.kernels import cpu as _cpu_kernels
from bntt_core.nn.models import neurons_per_image
from bntt_core.nn.norms import BNTT, SharedBN, StepBN
from bntt_core.nn.step import eval_logits


# ------------------------------------------------------------------ a per-step reference of the SPEC
class StepLIF(nn.Module):
    """One step of the SPEC's LIF: U ← λU + I_t; s = H(U − θ); U ← U − θ·s (U = 0 at the start)."""

    def __init__(self, leak: float, threshold: float):
        super().__init__()
        self.leak, self.threshold, self.u = leak, threshold, None

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        self.u = current.clone() if self.u is None else self.leak * self.u + current
        spikes = (self.u > self.threshold).to(current.dtype)
        self.u = self.u - self.threshold * spikes
        return spikes


def step_norm(norm: nn.Module, current: torch.Tensor, t: int) -> torch.Tensor:
    """Eval-mode norm at step t (0-based) written from the SPEC: γ_t (I − μ_t)/√(σ²_t + ε), no β."""
    shape = (1, -1) + (1,) * (current.dim() - 2)
    if isinstance(norm, BNTT):
        mean, var, gamma = norm.running_mean[t], norm.running_var[t], norm.weight[t]
    elif isinstance(norm, (SharedBN, StepBN)):  # one statistic for every step (bn, bn-joint)
        mean, var, gamma = norm.running_mean, norm.running_var, norm.weight
    else:
        return current
    return gamma.view(shape) * (current - mean.view(shape)) / torch.sqrt(var.view(shape) + norm.eps)


def reference_pass(model, images: torch.Tensor, *, seed: int, batch_size: int):
    """Per-step loop; spikes counted by forward hooks on the StepLIF modules. Same Poisson draws as record()."""
    spec = model.spec
    neurons = {layer.name: StepLIF(spec.leak, spec.threshold) for layer in model.layers}
    counts = {name: torch.zeros(spec.num_steps, dtype=torch.float64) for name in neurons}
    currents = {name: [[] for _ in range(spec.num_steps)] for name in neurons}  # [t] → list of [B, ...]
    step = [0]
    for name, module in neurons.items():
        module.register_forward_hook(lambda _m, _i, out, name=name: counts[name].__setitem__(
            step[0], counts[name][step[0]] + out.sum()))
    generator = torch.Generator().manual_seed(seed)
    predictions, spike_maps = [], {name: 0 for name in neurons}
    with torch.no_grad():
        for begin in range(0, images.shape[0], batch_size):
            encoded = model.encode(images[begin:begin + batch_size], generator=generator)  # [T, B, ...]
            for module in neurons.values():
                module.u = None
            outputs = []
            for t in range(spec.num_steps):
                step[0] = t
                h = encoded[t]
                for layer in model.layers:
                    if layer.kind == "fc" and h.dim() > 2:
                        h = h.flatten(1)
                    current = layer.synapse(h)
                    currents[layer.name][t].append(current)
                    spikes = neurons[layer.name](step_norm(layer.norm, current, t))
                    spike_maps[layer.name] = spike_maps[layer.name] + spikes.sum(0)
                    h = layer.pool(spikes) if layer.pool is not None else spikes
                outputs.append(model.classifier(h.flatten(1)))
            running = torch.stack(outputs).cumsum(0) / torch.arange(1, spec.num_steps + 1).view(-1, 1, 1)
            predictions.append(running.argmax(-1))
    return counts, currents, torch.cat(predictions, 1), spike_maps


def _tiny(norm: str, arch: str = "vgg5", steps: int = 5) -> nn.Module:
    torch.manual_seed(0)
    model = build_model(arch, num_classes=4, in_channels=1, image_size=8, num_steps=steps, width=0.125, norm=norm)
    with torch.no_grad():  # stored statistics and γ that are not the identity
        for layer in model.layers:
            if isinstance(layer.norm, (BNTT, SharedBN, StepBN)):
                layer.norm.running_mean.normal_(0, 0.3)
                layer.norm.running_var.uniform_(0.5, 2.0)
                layer.norm.weight.uniform_(0.2, 1.5)
    return model.double().eval()


@pytest.mark.parametrize("norm", ["bntt", "bn", "none"])
def test_recording_matches_the_per_step_reference(norm):
    model = _tiny(norm)
    images, labels = torch.randn(40, 1, 8, 8, dtype=torch.float64), torch.randint(0, 4, (40,))
    rec = record(model, images, labels, seed=11, batch_size=16)  # 3 batches: the merging is tested too
    counts, currents, predictions, spike_maps = reference_pass(model, images, seed=11, batch_size=16)
    assert torch.equal(rec.predictions, predictions)
    for name, layer in rec.layers.items():
        assert torch.equal(layer.spikes_by_step, counts[name]), name  # exact spike counts per step
        expected_map = spike_maps[name].sum(0) if spike_maps[name].dim() == 3 else spike_maps[name].sum()
        assert torch.equal(layer.spike_map, expected_map.double())
        all_values = torch.stack([torch.cat([c.flatten() for c in currents[name][t]]) for t in range(5)])  # [T, n]
        assert torch.allclose(layer.input_mean, all_values.mean(1), rtol=1e-9, atol=1e-12)
        assert torch.allclose(layer.input_std, all_values.std(1, correction=0), rtol=1e-9)
    activity = rec.spike_activity()
    assert list(activity.columns) == ["layer", "t", "spikes_per_neuron"]
    conv2 = activity[activity.layer == "conv2"]["spikes_per_neuron"].to_numpy()
    assert np.allclose(conv2, counts["conv2"].numpy() / (40 * rec.layers["conv2"].neurons))
    rate = rec.spike_rate().set_index("layer")["rate"]
    assert rate["fc1"] == pytest.approx(float(counts["fc1"].sum()) / (40 * rec.layers["fc1"].neurons))


def test_recording_in_bf16_channels_last_matches_the_raw_monitor_tensors():
    """The engine's bf16 CPU path hands over channels_last maps: counts and statistics must not care."""
    from bntt_core.nn.step import autocast

    torch.manual_seed(0)
    model = build_model("vgg5", num_classes=4, in_channels=3, image_size=8, num_steps=5, width=0.25).eval()
    images, labels = torch.randn(32, 3, 8, 8), torch.randint(0, 4, (32,))
    rec = record(model, images, labels, seed=5, batch_size=32, precision="bf16")
    seen = {}
    with torch.inference_mode(), autocast(images.device, "bf16"):
        encoded = model.encode(images, generator=torch.Generator().manual_seed(5))
        model(encoded, monitor=lambda name, tensors: seen.__setitem__(name, tensors))
    assert not seen["conv1"]["input"].is_contiguous()  # the currents really come channels_last
    for name, layer in rec.layers.items():
        spikes, current = seen[name]["spikes"].double(), seen[name]["input"].double()
        by_step = spikes.reshape(5, -1).sum(1)
        assert torch.equal(layer.spikes_by_step, by_step), name
        if spikes.dim() == 5:
            assert torch.equal(layer.spike_map, spikes.sum(dim=(0, 1, 2)))
        flat = current.reshape(5, -1)
        assert torch.allclose(layer.input_mean, flat.mean(1), rtol=1e-6, atol=1e-9)
        assert torch.allclose(layer.input_std, flat.std(1, correction=0), rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_spike_counts_in_every_layout_are_exact(dtype):
    from bntt_core.analysis.recording import _spike_counts

    spikes = (torch.rand(3, 4, 300, 5, 6, generator=torch.Generator().manual_seed(0)) < 0.9).to(dtype)  # C > 256
    expected = spikes.double().sum(dim=(1, 2))  # [T, H, W]
    channels_last = spikes.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, (3, 4))
    assert torch.equal(_spike_counts(spikes), expected)
    assert torch.equal(_spike_counts(channels_last), expected)
    dense = spikes.flatten(2)  # [T, B, F], F = 9000
    assert torch.equal(_spike_counts(dense), dense.double().sum(dim=(1, 2)))


def test_histogram_is_of_the_first_images_of_every_batch():
    model = _tiny("bntt")
    images, labels = torch.randn(40, 1, 8, 8, dtype=torch.float64), torch.randint(0, 4, (40,))
    rec = record(model, images, labels, seed=2, batch_size=16)
    _, currents, _, _ = reference_pass(model, images, seed=2, batch_size=16)
    hist = rec.bn_input_hist()
    assert list(hist.columns) == ["layer", "t", "bin_left", "bin_right", "count"]
    layer = rec.layers["conv3"]
    edges = layer.hist_edges.numpy()
    for t in (0, 4):
        sample = torch.cat([c[:math.ceil(c.shape[0] / HIST_SUBSAMPLE)].flatten() for c in currents["conv3"][t]])
        expected, _ = np.histogram(sample.numpy(), bins=edges)
        got = hist[(hist.layer == "conv3") & (hist.t == t + 1)]["count"].to_numpy()
        assert np.abs(got - expected).sum() <= 2  # histc and numpy may put an edge value in the next bin
        assert got.sum() + layer.hist_below[t] + layer.hist_above[t] == sample.numel() == layer.hist_values


def test_long_sequences_get_histograms_at_evenly_spaced_steps():
    assert histogram_steps(HIST_MAX_STEPS) == list(range(HIST_MAX_STEPS))
    steps = HIST_MAX_STEPS + 21
    chosen = histogram_steps(steps)
    assert len(chosen) == HIST_MAX_STEPS and chosen[0] == 0 and chosen[-1] == steps - 1
    assert all(1 <= b - a <= 2 for a, b in zip(chosen[:-1], chosen[1:], strict=True))  # evenly spaced, none twice
    model = _tiny("bntt", arch="mlp", steps=steps)
    images, labels = torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.zeros(6, dtype=torch.long)
    rec = record(model, images, labels, seed=1, batch_size=4)
    hist, stats = rec.bn_input_hist(), rec.bn_input(model)
    for name in rec.layers:
        assert sorted(hist.loc[hist.layer == name, "t"].unique()) == [t + 1 for t in chosen]
        rows = stats[stats.layer == name]
        assert len(rows) == steps and rows["mean"].notna().all()  # mean/std at every step, as before
        assert rows["hist_below"].notna().sum() == HIST_MAX_STEPS  # blank where no histogram was taken
    figure_steps = sorted(hist["t"].unique())[::40]
    assert viz.bn_input_figure(stats, hist, "fc1", steps=figure_steps).data  # the figure reads what is there


def test_bn_input_running_mean_only_for_standard_bn():
    for norm, has_mean in (("bn", True), ("bntt", False)):
        model = _tiny(norm, arch="mlp")
        rec = record(model, torch.randn(8, 1, 8, 8, dtype=torch.float64), torch.zeros(8, dtype=torch.long))
        table = rec.bn_input(model)
        assert list(table.columns[:5]) == ["layer", "t", "mean", "std", "running_mean"]
        stored = table["running_mean"]
        if has_mean:
            assert stored.nunique() == 1
            assert stored.iloc[0] == pytest.approx(float(model.layers[0].norm.running_mean.mean()))
        else:
            assert stored.isna().all()


def test_accuracy_at_T_equals_evaluation_with_the_same_seed():
    from bntt_core.data import DataInfo, ImageSet, normalize
    from bntt_core.runs.training import accuracy_by_step

    torch.manual_seed(0)
    model = build_model("vgg5", num_classes=4, in_channels=1, image_size=8, num_steps=4, width=0.125).eval()
    pixels = torch.randint(0, 256, (70, 1, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 4, (70,))
    info = DataInfo(name="mnist10k", in_channels=1, image_size=8, num_classes=4, mean=(0.4,), std=(0.3,),
                    class_names=("a", "b", "c", "d"), augment="none", num_steps_hint=None, source="synthetic")
    rec = record(model, normalize(pixels, info), labels, seed=9, batch_size=32)
    by_step = rec.accuracy_by_step()
    assert list(by_step.columns[:2]) == ["t", "accuracy"] and by_step["t"].tolist() == [1, 2, 3, 4]
    assert by_step["accuracy"].tolist() == accuracy_by_step(model, ImageSet(pixels, labels), info, seed=9,
                                                            batch_size=32)
    generator = torch.Generator().manual_seed(9)
    images = normalize(pixels, info)
    logits = torch.cat([eval_logits(model, images[b:b + 32], generator=generator) for b in range(0, 70, 32)])
    assert by_step["accuracy"].iloc[-1] == float((logits.argmax(1) == labels).double().mean())


# ------------------------------------------------------------------------------------------- energy
def test_energy_synops_equal_brute_force_counts():
    """synops of a conv = its input events × fan-out = Σ of a conv with all-ones kernels over those events
    (× pool area when the events went through AvgPool2d(2), which divided them by 4)."""
    model = _tiny("bntt").float()
    images, labels = torch.randn(24, 1, 8, 8), torch.randint(0, 4, (24,))
    rec = record(model, images, labels, seed=4, batch_size=24, precision="fp32")  # as the reference below
    table = snn_energy_table(model, rec).set_index("layer")
    assert list(table.reset_index().columns[:4]) == ["layer", "synops", "macs", "energy_pj"]
    seen = {}
    encoded = model.encode(images, generator=torch.Generator().manual_seed(4))  # [T, B, 1, 8, 8]
    with torch.no_grad():
        model(encoded, monitor=lambda name, tensors: seen.__setitem__(name, tensors["spikes"]))

    def ones_conv_total(events: torch.Tensor, conv: nn.Conv2d) -> float:
        ones = torch.ones(conv.out_channels, conv.in_channels, 3, 3)
        return float(F.conv2d(events.flatten(0, 1), ones, padding=1).sum()) / 24

    conv1, conv2, conv3 = (layer.synapse for layer in model.layers[:3])
    assert table.loc["conv1", "synops"] == pytest.approx(ones_conv_total(encoded.abs(), conv1))
    pooled = F.avg_pool2d(seen["conv1"].flatten(0, 1), 2).unflatten(0, seen["conv1"].shape[:2])
    assert table.loc["conv2", "synops"] == pytest.approx(4 * ones_conv_total(pooled, conv2))
    assert table.loc["conv3", "synops"] == pytest.approx(ones_conv_total(seen["conv2"], conv3))
    assert table.loc["fc1", "synops"] == pytest.approx(float(seen["conv3"].sum()) / 24 * 128)
    assert table.loc["classifier", "synops"] == pytest.approx(float(seen["fc1"].sum()) / 24 * 4)
    assert table.loc["conv2", "energy_pj"] == pytest.approx(E_AC_PJ * table.loc["conv2", "synops"])
    # MACs without padding: a 3×3 conv on H×W reaches (3H − 2)(3W − 2) input-output pairs per channel pair
    assert table.loc["conv1", "macs"] == 1 * 8 * (3 * 8 - 2) ** 2
    assert table.loc["conv2", "macs"] == 8 * 16 * (3 * 4 - 2) ** 2
    assert table.loc["fc1", "macs"] == 16 * 2 * 2 * 128


def test_energy_of_the_ann_twin_and_direct_coding():
    ann = build_model("vgg5", num_classes=4, in_channels=1, image_size=8, num_steps=4, width=0.125, spiking=False)
    table = ann_energy_table(ann).set_index("layer")
    assert (table["synops"] == 0).all()
    assert np.allclose(table["energy_pj"], table["macs"] * E_MAC_PJ)
    direct = build_model("vgg5", num_classes=4, in_channels=1, image_size=8, num_steps=4, width=0.125,
                         encoding="direct").eval()
    rec = record(direct, torch.randn(8, 1, 8, 8), torch.zeros(8, dtype=torch.long))
    snn = snn_energy_table(direct, rec).set_index("layer")
    assert snn.loc["conv1", "synops"] == 0  # analog input: T dense passes of MACs instead
    assert snn.loc["conv1", "energy_pj"] == pytest.approx(4 * snn.loc["conv1", "macs"] * E_MAC_PJ)
    assert np.allclose(snn["macs"], table["macs"])


# ------------------------------------------------------------------------------- run directories
TINY = dict(dataset="mnist10k", num_steps=4, epochs=1, batch_size=64, lr=0.1, max_train_images=256,
            max_test_images=96, eval_batch_size=96, device="cpu", augment=False, preset=None)
RUNS = {
    "bntt": dict(arch="vgg5", width=0.125, norm="bntt"),
    "bn": dict(arch="mlp", width=0.125, norm="bn", precision="fp32"),  # not the default: the run's own is used
    "ann": dict(arch="mlp", width=0.125, spiking=False),
}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """Three tiny trained runs, each analysed with quick=True (96 test images: the whole test subset)."""
    from bntt_core.analysis import analyze_run
    from bntt_core.runs.training import TrainConfig, train

    root = tmp_path_factory.mktemp("analysis_runs")
    results = {}
    for name, settings in RUNS.items():
        train(TrainConfig.from_dict({**TINY, **settings}), root / name, progress="none")
        messages = []
        tables = analyze_run(root / name, quick=True, progress=lambda f, m, seen=messages: seen.append((f, m)))
        results[name] = (root / name, tables, messages)
    return results


def test_every_table_is_written_with_its_columns_and_meta(analysed):
    from bntt_core.analysis import read_analysis
    from bntt_core.runs import read_meta

    for name, (path, tables, messages) in analysed.items():
        assert set(tables) == set(TABLES)
        read = read_analysis(path)
        meta = read_meta(path)
        for table, columns in TABLES.items():
            assert set(columns) <= set(read[table].columns), (name, table)
            entry = meta[table]
            for key in ("run", "model_hash", "images", "subset", "seed", "created", "bntt_core", "note"):
                assert key in entry, (name, table, key)
            assert entry["images"] == 96 and entry["quick"] is True
        assert "convention" in meta["energy"] and "Horowitz" in meta["energy"]["convention"]["model"]
        fractions = [f for f, _ in messages]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_accuracy_at_T_equals_the_runs_evaluation(analysed):
    from bntt_core.runs.training import evaluate_run

    for name, (path, tables, _) in analysed.items():
        config = json.loads((path / "config.json").read_text())
        last = tables["accuracy_by_step"]["accuracy"].iloc[-1]
        assert last == config["result"]["test_accuracy"] == evaluate_run(path)["test_accuracy"], name
        assert tables["noise"]["accuracy"].iloc[0] == last and tables["fgsm"]["accuracy"].iloc[0] == last


def test_what_applies_to_which_run(analysed):
    from bntt_core.runs import read_meta

    bntt_path, bntt, _ = analysed["bntt"]
    assert not bntt["gamma"].empty and not bntt["early_exit"].empty and not bntt["dynamic_exit"].empty
    assert bntt["bn_input"]["running_mean"].isna().all()
    curve = bntt["early_exit"]
    assert curve["exit_step"].max() == 4 and (curve["steps_saved"] == 4 - curve["exit_step"]).all()
    assert "OURS" in read_meta(bntt_path)["dynamic_exit"]["note"]
    bn_path, bn, _ = analysed["bn"]
    assert bn["gamma"].empty and bn["gamma_mean"].empty and bn["early_exit"].empty
    assert "BNTT" in read_meta(bn_path)["early_exit"]["skipped"]
    assert bn["bn_input"]["running_mean"].notna().all()
    ann_path, ann, _ = analysed["ann"]
    assert ann["accuracy_by_step"]["t"].tolist() == [1]
    assert ann["spike_rate"].empty and "ANN" in read_meta(ann_path)["spike_rate"]["skipped"]
    assert (ann["energy"]["synops"] == 0).all() and (ann["energy"]["macs"] > 0).all()


def test_stale_analysis_is_detected(analysed, tmp_path):
    from bntt_core.analysis import StaleAnalysisError, analysis_status, read_analysis
    from bntt_core.runs import load_run, save_weights

    path = tmp_path / "copy"
    shutil.copytree(analysed["bn"][0], path)
    assert analysis_status(path).ok
    run = load_run(path)
    with torch.no_grad():
        run.model.classifier.weight.add_(0.01)
    save_weights(run.model, path / "weights.safetensors")
    status = analysis_status(path)
    assert status.stale == status.present and len(status.present) == len(TABLES)
    with pytest.raises(StaleAnalysisError, match="stale"):
        read_analysis(path)
    assert set(read_analysis(path, check=False)) == set(TABLES)


def test_bad_runs_are_clear_errors(analysed, tmp_path):
    from bntt_core.analysis import analyze_run

    no_weights = tmp_path / "no_weights"
    shutil.copytree(analysed["bn"][0], no_weights)
    (no_weights / "weights.safetensors").unlink()
    with pytest.raises(ValueError, match="weights"):
        analyze_run(no_weights, quick=True)
    other_config = tmp_path / "other_config"
    shutil.copytree(analysed["bn"][0], other_config)
    config = json.loads((other_config / "config.json").read_text())
    config["model"]["width"] = 0.25  # weights of a 100-unit layer, config of a 200-unit one
    (other_config / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match"):
        analyze_run(other_config, quick=True)
    with pytest.raises(ValueError, match="unknown analysis tables"):
        analyze_run(analysed["bn"][0], tables=["gama"])


def test_a_subset_of_tables_and_the_cli(analysed, tmp_path):
    from bntt_core.analysis import analyze_run, read_analysis
    from bntt_core.cli import main

    path = tmp_path / "partial"
    shutil.copytree(analysed["bntt"][0], path)
    shutil.rmtree(path / "analysis")
    written = analyze_run(path, tables=["gamma_mean", "early_exit"], subset=32, seed=1)
    assert set(written) == {"gamma_mean", "early_exit"} == set(read_analysis(path))
    assert main(["analyze", str(path), "--quick", "--quiet", "--tables", "noise,energy"]) == 0
    assert set(read_analysis(path)) == {"gamma_mean", "early_exit", "noise", "energy"}
    table = pd.read_csv(path / "analysis" / "noise.csv")
    assert table["sigma"].tolist() == [0.0, 0.2, 0.5] * 2  # one curve per default noise mode
    assert table["mode"].tolist() == ["unclipped"] * 3 + ["clipped"] * 3
    assert main(["analyze", str(path), "--quick", "--quiet", "--tables", "noise", "--noise-mode", "shift"]) == 0
    assert read_analysis(path)["noise"]["mode"].tolist() == ["shift"] * 3


def test_gamma_tables_need_no_dataset(analysed, tmp_path):
    """γ comes from the weights: a run whose dataset is not on this machine still gets its γ tables
    (the γ explorer offers this for shipped runs that leave gamma.csv out), and nothing else."""
    from bntt_core import data
    from bntt_core.analysis import analyze_run

    path = tmp_path / "moved"
    shutil.copytree(analysed["bntt"][0], path)
    shutil.rmtree(path / "analysis")
    missing = str(tmp_path / "no-data-here")
    written = analyze_run(path, tables=["gamma", "gamma_mean"], data_dir=missing)
    assert set(written) == {"gamma", "gamma_mean"} and len(written["gamma"]) > 0
    meta = json.loads((path / "analysis" / "meta.json").read_text())
    assert meta["gamma"]["images"] == 0 and meta["gamma"]["subset"] == "none: read from the weights"
    with pytest.raises(data.DataError):
        analyze_run(path, tables=["gamma", "noise"], data_dir=missing)  # noise needs the test images


def test_default_batch_size_follows_the_models_size_not_only_its_steps():
    small = build_model("vgg9", num_classes=10, in_channels=3, image_size=32, num_steps=25, width=0.25)
    full = build_model("vgg9", num_classes=10, in_channels=3, image_size=32, num_steps=25)
    sequential = build_model("seqfc", num_classes=10, in_channels=1, image_size=28, num_steps=784)
    # vgg9 ¼ width: 16·32² + 16·32² + 32·16² + 32·16² + 64·8² ·3 + 1024/4 hidden neurons per image and step
    assert neurons_per_image(small.spec) == 2 * 16 * 32 * 32 + 2 * 32 * 16 * 16 + 3 * 64 * 8 * 8 + 256
    assert default_batch_size(25, small) == NEURON_STEP_BUDGET // (25 * neurons_per_image(small.spec))
    assert default_batch_size(25, full) < default_batch_size(25, small)  # 4× the neurons: a smaller batch
    # 784 steps of a 512-neuron net fit the largest batch; by steps alone it would have been 5 images
    assert default_batch_size(784, sequential) == MAX_BATCH
    assert default_batch_size(784) == 5


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_stats_from_the_fused_loop_equal_those_from_the_tensors(precision, monkeypatch):
    # the recorder takes spike counts and Σx, Σx² from the compiled BNTT→LIF loop where it runs; the same
    # numbers computed from the monitored tensors: counts identical, sums to float rounding
    torch.manual_seed(0)
    model = build_model("vgg5", num_classes=10, in_channels=1, image_size=28, num_steps=4, width=0.3).eval()
    images, labels = torch.rand(40, 1, 28, 28), torch.randint(0, 10, (40,))
    seen = []
    original = _Recorder.__call__

    def spy(self, name, tensors):
        seen.append("spike_counts" in tensors and "input_sums" in tensors)
        original(self, name, tensors)

    monkeypatch.setattr(_Recorder, "__call__", spy)
    fused = record(model, images, labels, batch_size=16, precision=precision)
    if not _cpu_kernels.available():
        pytest.skip("no C compiler: the compiled loops (and their recording stats) are not built here")
    assert seen and all(seen)  # every layer's stats came from the loop
    monkeypatch.setattr(_Recorder, "wants_fused_stats", False)
    plain = record(model, images, labels, batch_size=16, precision=precision)
    assert list(fused.layers) == list(plain.layers)
    for name, layer in fused.layers.items():
        assert torch.equal(layer.spikes_by_step, plain.layers[name].spikes_by_step), name
        assert torch.equal(layer.spike_map, plain.layers[name].spike_map), name
        assert torch.allclose(layer.input_mean, plain.layers[name].input_mean, rtol=1e-5, atol=1e-7), name
        assert torch.allclose(layer.input_m2, plain.layers[name].input_m2, rtol=1e-5), name
    assert all(layer.spikes_by_step.sum() > 0 for layer in list(fused.layers.values())[:-1])  # it saw spikes


def test_fused_stats_refuse_an_input_they_cannot_place():
    if not _cpu_kernels.available():
        pytest.skip("no C compiler: the compiled loops are not built here")
    current = torch.randn(3, 2, 4, 5, 5)
    with pytest.raises(ValueError, match="BNTT scale"):
        _cpu_kernels.lif_forward(current, 0.95, 1.0, False, "triangle", False, stats={})  # no scale
    with pytest.raises(ValueError, match="BNTT scale"):
        _cpu_kernels.lif_forward(torch.randn(3, 8), 0.95, 1.0, False, "triangle", False,
                                 scale=torch.ones(3, 1), shift=torch.zeros(3, 1), stats={})  # [T, N]
