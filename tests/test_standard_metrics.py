"""NeuroBench's standard metrics (bntt_core.analysis.standard_metrics): exact values on hand-built layers and counts,
the recording's new counts, our counts against NeuroBench's rule applied literally to full tensors (equal
without pooling; the documented difference with it), the ANN, and the `standard_metrics` table written by
analyze_run (from the pass, and derived from energy + spike_rate without one), old runs without it, errors.

    .venv/bin/python -m pytest tests/test_standard_metrics.py -q
"""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn

from bntt_core import build_model
from bntt_core.analysis import standard_metrics as sm
from bntt_core.analysis.energy import Synapse, snn_energy_table
from bntt_core.analysis.recording import record
from bntt_core.analysis.tables import TABLES

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models, one thread


# ------------------------------------------------------------------------------ static metrics
def test_footprint_counts_parameters_and_buffers_in_bytes():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    size = sm.footprint(model)
    # Linear: 6 weights + 2 biases; BN: γ, β (2 each) = 12 parameters · 4 B
    assert (size.parameters, size.parameter_bytes) == (12, 48)
    # BN buffers: running_mean, running_var (2 float32 each) + num_batches_tracked (one int64)
    assert (size.buffers, size.buffers_bytes) == (5, 2 * 2 * 4 + 8)
    assert size.bytes == 48 + 24
    assert sm.footprint(model.double()).parameter_bytes == 96  # the dtype the model holds


def test_connection_sparsity_counts_zero_weights_of_conv_and_linear_only():
    conv, linear, norm = nn.Conv2d(1, 2, 3, bias=True), nn.Linear(4, 3), nn.BatchNorm2d(2)
    with torch.no_grad():
        conv.weight.fill_(0.5)
        conv.weight[0, 0, 0, :] = 0  # 3 zeros of 18
        conv.bias.zero_()  # biases are not connections
        linear.weight.fill_(-1.0)
        linear.weight[:, 1] = 0  # 3 zeros
        linear.weight[0, 0] = 0  # 4 of 12
        norm.weight.zero_()  # nor are norms
    model = nn.Sequential(conv, norm, nn.Flatten(), linear)
    assert sm.connection_sparsity(model) == (7, 30)
    with pytest.raises(ValueError, match="no Conv or Linear"):
        sm.connection_sparsity(nn.Sequential(nn.ReLU()))


def test_binary_means_every_value_in_minus_one_zero_one():
    assert sm.is_binary(torch.tensor([0.0, 1.0, -1.0, 0.0]))
    assert sm.is_binary(torch.zeros(3, 4))  # no spike at all is binary too (NeuroBench's test)
    assert not sm.is_binary(torch.tensor([0.0, 0.5]))  # an average-pooled spike map
    assert not sm.is_binary(torch.tensor([2.0, 0.0]))  # two spikes summed
    assert not sm.is_binary(torch.tensor([-0.42, 1.3]))  # an analog image
    assert sm.activation_sparsity(1, 4) == 0.75 and sm.activation_sparsity(0, 0) != sm.activation_sparsity(0, 0)


# ------------------------------------------------------------------------------------- fan-out
def brute_fanout(conv: nn.Conv2d, height: int, width: int, *, effective: bool) -> torch.Tensor:
    """For every input element: the (output position, output channel) pairs whose window holds it with a
    (non-zero) weight, counted one by one (stride 1)."""
    out_c, in_c, kh, kw = conv.weight.shape
    pad_h, pad_w = conv.padding
    counts = torch.zeros(in_c, height, width, dtype=torch.float64)
    for o in range(out_c):
        for c in range(in_c):
            for y in range(height + 2 * pad_h - kh + 1):
                for x in range(width + 2 * pad_w - kw + 1):
                    for i in range(kh):
                        for j in range(kw):
                            h, w = y + i - pad_h, x + j - pad_w
                            if 0 <= h < height and 0 <= w < width and (not effective or conv.weight[o, c, i, j] != 0):
                                counts[c, h, w] += 1
    return counts


def test_conv_fanout_is_exact_at_the_borders_and_skips_zero_weights():
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        dense = sm.fanout(Synapse("c", conv, (2, 4, 5)), effective=False)
        assert dense.shape == (2, 4, 5)
        assert dense[0, 0, 0] == 4 * 3 and dense[0, 0, 2] == 6 * 3 and dense[1, 2, 2] == 9 * 3  # corner, edge, inside
        conv.weight[0, 0, 1, 1] = 0  # the centre tap of one filter
        conv.weight[2, 1] = 0  # a whole input channel of another
    assert torch.equal(sm.fanout(Synapse("c", conv, (2, 4, 5)), effective=False), dense)  # dense ignores zeros
    effective = sm.fanout(Synapse("c", conv, (2, 4, 5)), effective=True)
    assert torch.equal(effective, brute_fanout(conv, 4, 5, effective=True))
    assert effective[0, 2, 2] == 27 - 1 and effective[1, 2, 2] == 27 - 9


def test_linear_fanout_counts_the_non_zero_weights_of_each_column():
    linear = nn.Linear(3, 4, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0, 2], [0, 0, 3], [1, 0, 0], [5, 6, 7]]))
    assert sm.fanout(Synapse("l", linear, (3,)), effective=True).tolist() == [3, 1, 3]
    assert sm.fanout(Synapse("l", linear, (3,)), effective=False).tolist() == [4, 4, 4]


def test_route_through_pools():
    fan = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # [C=1, 2, 2] after the pool
    routed = sm.route(fan, nn.AvgPool2d(2), (1, 5, 5))  # floor pooling: row 4 and column 4 reach nothing
    assert routed[0, :4, :4].tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    assert routed[0, 4].abs().sum() == 0 and routed[0, :, 4].abs().sum() == 0
    flat = torch.tensor([7.0, 8.0])  # a linear layer after AdaptiveAvgPool2d(1) of 2 channels
    assert sm.route(flat, nn.AdaptiveAvgPool2d(1), (2, 3, 3))[:, 1, 2].tolist() == [7, 8]
    assert sm.route(flat, None, (2,)).tolist() == [7, 8]
    with pytest.raises(ValueError, match="cannot route"):
        sm.route(fan, nn.MaxPool2d(2), (1, 4, 4))


# --------------------------------------------------------------------- hand-built counts, by hand
def _hand_mlp() -> nn.Module:
    """mlp 2×2 image → fc1 (4 units) → classifier (2), T = 2, with zero weights."""
    model = build_model("mlp", num_classes=2, in_channels=1, image_size=2, num_steps=2, width=0.005, norm="none")
    with torch.no_grad():
        model.layers[0].synapse.weight.copy_(torch.tensor(
            [[1.0, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]]))  # non-zero per column: 4, 3, 2, 1
        model.classifier.weight.copy_(torch.tensor([[1.0, 1, 1, 0], [1, 0, 0, 0]]))  # per column: 2, 1, 1, 0
    return model.eval()


def test_synops_of_known_spike_trains_by_hand():
    model = _hand_mlp()
    assert model.layers[0].synapse.weight.shape == (4, 4)
    # one image, T = 2: input t1 [1, 0, −1, 0], t2 [0, 0, 1, 1] → non-zero per pixel [1, 0, 2, 1];
    # fc1 spikes t1 [1, 0, 0, 1], t2 [1, 1, 0, 0] → per unit [2, 1, 0, 1]
    layer = SimpleNamespace(spike_map=torch.tensor(4.0, dtype=torch.float64),
                            channel_map=torch.tensor([2.0, 1, 0, 1], dtype=torch.float64))
    counts = SimpleNamespace(num_samples=1, num_steps=2, input_map=torch.tensor([[1.0, 0], [2, 1]]),
                             input_nonzero_map=torch.tensor([[1.0, 0], [2, 1]]),
                             input_channel_map=torch.tensor([[[1.0, 0], [2, 1]]]), input_binary=True,
                             layers={"fc1": layer})
    by_layer = sm.snn_synops(model, counts).set_index("layer")
    assert by_layer.loc["fc1", "effective"] == 1 * 4 + 0 * 3 + 2 * 2 + 1 * 1  # 9 ACs
    assert by_layer.loc["classifier", "effective"] == 2 * 2 + 1 * 1 + 0 * 1 + 1 * 0  # 5 ACs
    assert by_layer.loc["fc1", "dense"] == 2 * 16 and by_layer.loc["classifier", "dense"] == 2 * 8
    assert set(by_layer["op"]) == {"AC"}
    spike_rate = pd.DataFrame({"layer": ["fc1"], "rate": [1.0], "spikes_per_sample": [4.0], "neurons": [4]})
    row = sm.snn_metrics_table(model, SimpleNamespace(**vars(counts), spike_rate=lambda: spike_rate)).iloc[0]
    assert (row["synops_dense"], row["synops_effective_acs"], row["synops_effective_macs"]) == (48, 14, 0)
    assert row["activation_sparsity"] == 1 - 4 / (2 * 4)  # 4 spikes in 2 steps × 4 neurons
    assert row["connection_sparsity"] == (0 + 1 + 2 + 3 + 1 + 3) / 24 and row["zero_weights"] == 10
    assert (row["num_steps"], row["images"], row["neurons"]) == (2, 1, 4)
    # one input channel: its map summed over channels is the per-channel one
    no_input_channels = SimpleNamespace(**{**vars(counts), "input_channel_map": None})
    assert sm.snn_synops(model, no_input_channels).set_index("layer").loc["fc1", "effective"] == 9
    # fc1's spikes summed over its units are not enough once the fan-out differs between units
    summed = SimpleNamespace(**{**vars(counts), "layers": {"fc1": SimpleNamespace(spike_map=layer.spike_map,
                                                                                     channel_map=None)}})
    with pytest.raises(ValueError, match="per-channel counts"):
        sm.snn_synops(model, summed)
    assert sm.channel_maps_needed(model) == ("input", "fc1")
    # analog input: the same ops become MACs
    analog = sm.snn_synops(model, SimpleNamespace(**{**vars(counts), "input_binary": False})).set_index("layer")
    assert (analog.loc["fc1", "op"], analog.loc["fc1", "effective"]) == ("MAC", 9)


# ------------------------------------------------------------- the recording against the literal rule
def _tiny(arch: str, *, encoding: str = "poisson", prune: float = 0.0, norm: str = "bntt") -> nn.Module:
    torch.manual_seed(0)
    model = build_model(arch, num_classes=4, in_channels=2, image_size=8, num_steps=3, width=0.125, norm=norm,
                        encoding=encoding)
    if prune:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    module.weight[torch.rand_like(module.weight) < prune] = 0
    return model.eval()


def _images(n: int = 6) -> torch.Tensor:
    torch.manual_seed(1)
    x = torch.randn(n, 2, 8, 8)
    x[x.abs() < 0.3] = 0  # some exact zeros: an analog input's zero values are not operations
    return x


def _record(model, x, **kwargs):
    # one batch and fp32, so that model.encode(x, generator=seed 3) draws the same input as the pass
    return record(model, x, torch.zeros(x.shape[0], dtype=torch.long), seed=3, batch_size=x.shape[0],
                  precision="fp32", **kwargs)


def _literal(model, x):
    return sm.neurobench_synops(model, model.encode(x, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize(("encoding", "prune"), [("poisson", 0.0), ("poisson", 0.3), ("direct", 0.3)])
def test_without_pooling_our_counts_are_neurobenchs(encoding, prune):
    model, x = _tiny("mlp", encoding=encoding, prune=prune), _images()
    rec = _record(model, x, channel_maps=sm.channel_maps_needed(model))
    assert rec.input_binary is (encoding == "poisson")
    row = sm.snn_metrics_table(model, rec).iloc[0]
    literal = _literal(model, x)
    assert row["synops_dense"] == literal["Dense"]
    assert row["synops_effective_acs"] == pytest.approx(literal["Effective_ACs"], rel=1e-12)
    assert row["synops_effective_macs"] == pytest.approx(literal["Effective_MACs"], rel=1e-12)
    assert row["activation_sparsity"] == pytest.approx(literal["activation_sparsity"], rel=1e-12)
    assert bool(row["synops_effective_macs"] > 0) == (encoding == "direct")


@pytest.mark.parametrize("prune", [0.0, 0.3])
def test_with_pooling_spikes_through_a_pool_are_our_acs_and_neurobenchs_macs(prune):
    model, x = _tiny("vgg5", prune=prune), _images()
    rec = _record(model, x, channel_maps=sm.channel_maps_needed(model))
    by_layer = sm.snn_synops(model, rec).set_index("layer")
    assert by_layer.loc["conv2", "input"] == "pooled spikes" and by_layer.loc["conv2", "neurobench_op"] == "MAC"
    row = sm.snn_metrics_table(model, rec).iloc[0]
    literal = _literal(model, x)
    assert row["synops_dense"] == literal["Dense"]
    assert row["synops_effective_macs"] == 0 < literal["Effective_MACs"]
    # the ops not through a pool are the same; through one, one op per spike ≥ one per non-zero window
    not_pooled = row["synops_effective_acs"] - row["synops_acs_through_pooling"]
    assert not_pooled == pytest.approx(literal["Effective_ACs"], rel=1e-12)
    assert row["synops_acs_through_pooling"] >= literal["Effective_MACs"]
    assert row["activation_sparsity"] == pytest.approx(literal["activation_sparsity"], rel=1e-12)


def test_the_new_counts_leave_the_recording_as_it_was():
    model, x = _tiny("vgg5", prune=0.3), _images()
    plain = _record(model, x)
    mapped = _record(model, x, channel_maps=sm.channel_maps_needed(model))
    assert torch.equal(plain.predictions, mapped.predictions) and torch.equal(plain.input_map, mapped.input_map)
    for name, layer in plain.layers.items():
        assert torch.equal(layer.spikes_by_step, mapped.layers[name].spikes_by_step)
        assert torch.equal(layer.input_mean, mapped.layers[name].input_mean)
        assert layer.channel_map is None
        per_channel = mapped.layers[name].channel_map
        assert torch.equal(per_channel.sum(0), layer.spike_map) if per_channel.dim() == 3 \
            else per_channel.sum() == layer.spike_map
    assert torch.equal(plain.input_nonzero_map, plain.input_map)  # ±1 spikes: |s| summed = non-zero count
    assert torch.equal(mapped.input_channel_map.sum(0), mapped.input_nonzero_map)
    direct = _record(_tiny("vgg5", encoding="direct"), x)
    assert not direct.input_binary and direct.input_nonzero_map.sum() == 3 * (x != 0).sum()


def test_derived_from_the_energy_table_equals_the_recording():
    model, x = _tiny("vgg5"), _images()
    rec = _record(model, x)
    derived = sm.synops_from_energy(model, snn_energy_table(model, rec))
    pd.testing.assert_frame_equal(derived, sm.snn_synops(model, rec))
    with pytest.raises(ValueError, match="zero weights"):
        sm.synops_from_energy(_tiny("vgg5", prune=0.3), snn_energy_table(model, rec))
    with pytest.raises(ValueError, match="encoding 'direct'"):
        sm.synops_from_energy(_tiny("vgg5", encoding="direct"), snn_energy_table(model, rec))


# --------------------------------------------------------------------------------------- ANN
def test_ann_counts_relu_outputs_and_every_op_as_a_mac():
    torch.manual_seed(0)
    ann = build_model("vgg5", num_classes=4, in_channels=2, image_size=8, num_steps=3, width=0.125,
                      spiking=False).eval()
    x = _images()
    row = sm.ann_metrics_table(ann, x, batch_size=4).iloc[0]
    literal = sm.neurobench_synops(ann, x)
    assert row["synops_effective_acs"] == literal["Effective_ACs"] == 0
    assert row["synops_effective_macs"] == pytest.approx(literal["Effective_MACs"], rel=1e-12)
    assert row["synops_dense"] == literal["Dense"] and row["num_steps"] == 1
    assert row["activation_sparsity"] == pytest.approx(literal["activation_sparsity"], rel=1e-12)
    by_layer = sm.ann_counts(ann, x)[0].set_index("layer")
    first = ann.blocks[0][0]  # conv1, dense weights: every non-zero pixel reaches its full fan-out
    fan = sm.fanout(Synapse("conv1", first, (2, 8, 8)), effective=False)
    assert by_layer.loc["conv1", "effective"] == pytest.approx(float(((x != 0) * fan).sum()) / 6, rel=1e-12)
    with pytest.raises(ValueError, match="needs an ANNNet"):
        sm.ann_counts(_tiny("mlp"), x)


def test_describe_and_compare_read_the_one_row():
    model, x = _tiny("mlp"), _images()
    table = sm.snn_metrics_table(model, _record(model, x))
    shown = sm.describe(table).set_index("metric")
    assert shown.loc["time steps", "value"] == "3" and shown.loc["images", "value"] == "6"
    assert shown.loc["activation sparsity", "value"].endswith("%")
    both = sm.compare({"a": table, "b": table})
    assert both["run"].tolist() == ["a", "b"] and both["images"].tolist() == [6, 6]
    with pytest.raises(ValueError, match="one row"):
        sm.describe(pd.concat([table, table]))


# ---------------------------------------------------------------------------- run directories
TINY = dict(dataset="mnist10k", num_steps=3, epochs=1, batch_size=64, lr=0.1, max_train_images=128,
            max_test_images=48, eval_batch_size=48, device="cpu", augment=False, preset=None,
            validation_fraction=0.0)
TINY_RUNS = {"bntt": dict(arch="vgg5", width=0.125, norm="bntt"), "ann": dict(arch="mlp", width=0.125, spiking=False)}
WITH = ["energy", "spike_rate", "standard_metrics"]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    from bntt_core.analysis import analyze_run
    from bntt_core.runs.training import TrainConfig, train

    root = tmp_path_factory.mktemp("standard_metrics_runs")
    for name, settings in TINY_RUNS.items():
        train(TrainConfig.from_dict({**TINY, **settings}), root / name, progress="none")
        analyze_run(root / name, quick=True, tables=WITH)
    return root


def _copy(tiny_runs, name, tmp_path):
    path = tmp_path / name
    shutil.copytree(tiny_runs / name, path)
    return path


def test_analyze_run_writes_the_table_for_snn_and_ann(tiny_runs):
    from bntt_core.runs import read_meta, read_table

    assert "standard_metrics" in TABLES
    snn, ann = read_table(tiny_runs / "bntt", "standard_metrics"), read_table(tiny_runs / "ann", "standard_metrics")
    for table in (snn, ann):
        assert len(table) == 1 and set(TABLES["standard_metrics"]) <= set(table.columns)
        assert set(sm.COLUMNS) == set(table.columns) and table["images"].iloc[0] == 48
        assert 0 < table["activation_sparsity"].iloc[0] < 1 and table["connection_sparsity"].iloc[0] == 0
    assert snn["num_steps"].iloc[0] == 3 and snn["synops_effective_macs"].iloc[0] == 0
    assert 0 < snn["synops_acs_through_pooling"].iloc[0] < snn["synops_effective_acs"].iloc[0]
    energy = read_table(tiny_runs / "bntt", "energy")
    assert snn["synops_effective_acs"].iloc[0] == pytest.approx(energy["synops"].sum(), rel=1e-12)
    assert snn["synops_dense"].iloc[0] == 3 * energy["macs"].sum()
    assert ann["num_steps"].iloc[0] == 1 and ann["synops_effective_acs"].iloc[0] == 0
    assert ann["synops_dense"].iloc[0] == read_table(tiny_runs / "ann", "energy")["macs"].sum()
    meta = read_meta(tiny_runs / "bntt")["standard_metrics"]
    assert "NeuroBench" in meta["convention"]["reference"] and meta["images"] == 48
    assert [r["layer"] for r in meta["synops_by_layer"]] == ["conv1", "conv2", "conv3", "fc1", "classifier"]


def test_asked_for_alone_it_is_derived_without_a_test_pass(tiny_runs, tmp_path, monkeypatch, capsys):
    from conftest import run_cli

    from bntt_core.analysis import recording
    from bntt_core.runs import read_meta, read_table

    path = _copy(tiny_runs, "bntt", tmp_path)
    before = read_table(path, "standard_metrics")
    (path / "analysis" / "standard_metrics.csv").unlink()
    monkeypatch.setattr(recording, "record", lambda *a, **k: pytest.fail("a test pass was made"))
    code, out, err = run_cli(capsys, "analyze", path, "--tables", "standard_metrics", "--quiet")
    assert code == 0, err
    pd.testing.assert_frame_equal(read_table(path, "standard_metrics"), before)
    meta = read_meta(path)["standard_metrics"]
    assert meta["derived_from"].startswith("energy and spike_rate") and meta["images"] == 48


def test_a_run_analysed_before_the_table_existed_loads_everywhere(tiny_runs, tmp_path):
    from bntt_core.analysis import analysis_status, read_analysis
    from bntt_core.runs import listing

    path = _copy(tiny_runs, "bntt", tmp_path)
    (path / "analysis" / "standard_metrics.csv").unlink()
    meta_file = path / "analysis" / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["standard_metrics"]
    meta_file.write_text(json.dumps(meta))
    status = analysis_status(path)
    assert "standard_metrics" in status.missing and status.ok
    assert "standard_metrics" not in read_analysis(path) and "energy" in read_analysis(path)
    card = next(c for c in listing.describe_runs([tmp_path]) if c["name"] == "bntt")
    assert card["error"] is None and "standard_metrics" in card["missing"]


def test_a_run_that_cannot_be_evaluated_is_one_clear_error(tiny_runs, tmp_path):
    from bntt_core import data
    from bntt_core.analysis import analyze_run, write_standard_metrics

    no_weights = _copy(tiny_runs, "bntt", tmp_path)
    (no_weights / "weights.safetensors").unlink()
    with pytest.raises(ValueError, match="weights"):
        analyze_run(no_weights, tables=["standard_metrics"])
    # no energy / spike_rate to derive it from, and the test images are not where the run says
    bare = _copy(tiny_runs, "ann", tmp_path)
    shutil.rmtree(bare / "analysis")
    with pytest.raises(data.DataError):
        analyze_run(bare, tables=["standard_metrics"], data_dir=str(tmp_path / "no-data-here"))
    with pytest.raises(ValueError, match="cannot be derived without a test pass: an ANN"):
        write_standard_metrics(bare)


def test_the_compare_figure_draws_every_run():
    from bntt_core import viz

    model, x = _tiny("vgg5"), _images()
    table = sm.snn_metrics_table(model, _record(model, x))
    fig = viz.standard_metrics_figure({"bntt": table, "other": table})
    assert [trace.name for trace in fig.data[3:]] == ["dense", "effective MACs", "effective ACs"]
    assert list(fig.data[0].x) == ["bntt", "other"]
    assert fig.data[2].y[0] == pytest.approx(100 * table["activation_sparsity"].iloc[0])
    with pytest.raises(ValueError, match="expected one"):
        viz.standard_metrics_figure({"two rows": pd.concat([table, table])})


def test_the_literal_rule_wants_a_spiking_models_encoded_input():
    model = _tiny("mlp")
    with pytest.raises(ValueError, match="encoded input"):
        sm.neurobench_synops(model, _images())
