"""NeuroBench's standard metrics of a network, per run: footprint, connection sparsity, activation sparsity
and synaptic operations (Dense, Effective_MACs, Effective_ACs), from the analysis' ONE recording pass.

NeuroBench (Yik et al., neurobench.ai; code: neurobench.metrics) defines them on a model and its inference;
we follow its definitions and count from what `bntt_core.analysis.recording.record` already keeps (spike totals per
layer and position, the encoded input's non-zero values), so the table costs no second pass. docs/METRICS.md says
the same in prose, with where we differ and what `bntt_core.analysis.energy` adds.

Definitions (N = analysed images, T = time steps of one inference, l = layer):

    footprint_bytes        = Σ_parameters numel·element_size + Σ_buffers numel·element_size, the model as
                             evaluated (float32 weights; BNTT's per-step running statistics are buffers)
    connection_sparsity    = (zero weights) / (weights), over the weights of the connection layers
                             (every Conv and Linear; biases, norms and neurons are not connections)
    activation_sparsity    = 1 − Σ_l spikes_l / (N · T · Σ_l neurons_l): the share of zero outputs of the
                             spiking neurons (every hidden LIF layer, all T steps); every sample has the same
                             N_l·T outputs, so the mean over samples of the per-sample share is the same number.
                             ANN: the share of zero ReLU outputs (T = 1)
    synops_dense           = T · Σ_l Σ_i fanout_l(i): every multiply-accumulate of every connection layer as if
                             input and weights were dense, i.e. the ANN twin's MACs × T (the zero padding of a
                             conv reaches no synapse and is not counted)
    synops_effective_*     = Σ_l Σ_{t, i: x_l,t(i) ≠ 0} fanout⁺_l(i): one operation per non-zero input
                             element and NON-ZERO weight it reaches (fanout⁺ = Wᵀ_b·1 with W_b = [W ≠ 0]);
                             _acs where the layer's input is binary (every value in {−1, 0, 1}: spikes),
                             _macs where it is not (the analog image of direct coding, event frames, the ANN)
    synops_acs_through_pooling = the part of synops_effective_acs driven by spikes that reach their layer
                             through an average pool (see "where we differ")

All synaptic operations are PER SAMPLE (mean over the N analysed images) and per INFERENCE: summed over all
T steps of one forward (a direct-coded first layer does its T analog passes; `num_steps` is T). Biases are
not synaptic operations (NeuroBench: "bias is not considered"), nor are norms, membrane updates or pooling.

Where we differ from NeuroBench's literal counting (`neurobench_synops` applies its rule to full tensors):
  * An average pool between two layers: NeuroBench sees the pooled values (0, ¼, ½, …: not binary) and
    counts each NON-ZERO POOLED value × fan-out as a MAC. We count each SPIKE × the fan-out of its pooled
    position as an AC (the pool is linear: W·avg(s) = Σ (W/k²)·s, the 1/k² folds into the weights), as
    `bntt_core.analysis.energy` does. Dense is the same in both; the ops in `synops_acs_through_pooling` are the ones
    NeuroBench would call MACs (fewer of them: one per non-zero window instead of one per spike).
  * Binary is decided per layer over the whole pass (NeuroBench: per call, i.e. per batch); for the hidden
    layers by construction (LIF spikes are 0/1), for the input by the data (`Recording.input_binary`).
  * The output layer has no neuron (it accumulates W·s_t), so activation sparsity covers the hidden layers.

    from bntt_core.analysis import standard_metrics as sm
    rec = record(model, images, labels)                        # bntt_core.analysis.recording
    table = sm.snn_metrics_table(model, rec)                   # one row: the `standard_metrics` table
    table = sm.ann_metrics_table(ann, images)                  # ANN: one forward pass with hooks
    by_layer = sm.snn_synops(model, rec)                       # per connection layer
    literal = sm.neurobench_synops(model, encoded)             # NeuroBench's rule on full tensors [T, B, ...]

Run the tests: .venv/bin/python -m pytest tests/test_standard_metrics.py -q
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from bntt_core.analysis.energy import E_AC_PJ, E_MAC_PJ, Synapse, synapses
from bntt_core.analysis.recording import Recording
from bntt_core.nn.models import ANNNet, SpikingNet

CONNECTION_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)  # NeuroBench's stateless connection layers
COLUMNS = ("footprint_bytes", "parameters", "parameter_bytes", "buffers_bytes", "weights", "zero_weights",
           "connection_sparsity", "neurons", "activation_sparsity", "synops_dense", "synops_effective_macs",
           "synops_effective_acs", "synops_acs_through_pooling", "num_steps", "images")
LAYER_COLUMNS = ("layer", "source", "input", "op", "neurobench_op", "dense", "effective")
CONVENTION = {
    "reference": "NeuroBench (neurobench.metrics): Footprint, ConnectionSparsity, ActivationSparsity, "
                 "SynapticOperations (Dense, Effective_MACs, Effective_ACs)",
    "unit": "synaptic operations per sample (mean over the analysed images), one inference over all T steps",
    "footprint": "bytes of all parameters and buffers of the model as evaluated",
    "connection_sparsity": "zero weights / weights of every Conv and Linear layer",
    "activation_sparsity": "zero outputs / outputs of the hidden spiking neurons over all T steps (ANN: ReLU)",
    "effective": "one operation per non-zero input element and non-zero weight it reaches; AC where the "
                 "layer's input is binary ({-1, 0, 1}), MAC otherwise; biases not counted",
    "differs": "spikes through an average pool: one AC per spike x its pooled position's fan-out (the pool "
               "folds into the weights, as in energy.py); NeuroBench counts one MAC per non-zero pooled value "
               "(synops_acs_through_pooling are those ops)",
    "energy": f"bntt_core.analysis.energy prices ACs at {E_AC_PJ} pJ and MACs at {E_MAC_PJ} pJ (45 nm, Horowitz 2014)",
}


# ------------------------------------------------------------------------------------ static metrics
@dataclass(frozen=True)
class Footprint:
    """Parameters and buffers of a model: counts and bytes."""

    parameters: int
    parameter_bytes: int
    buffers: int
    buffers_bytes: int

    @property
    def bytes(self) -> int:
        return self.parameter_bytes + self.buffers_bytes


def footprint(model: nn.Module) -> Footprint:
    """NeuroBench's footprint: Σ numel·element_size over the parameters and the buffers (running statistics,
    num_batches_tracked), as the model holds them."""
    params = list(model.parameters())
    buffers = list(model.buffers())
    return Footprint(parameters=sum(p.numel() for p in params),
                     parameter_bytes=sum(p.numel() * p.element_size() for p in params),
                     buffers=sum(b.numel() for b in buffers),
                     buffers_bytes=sum(b.numel() * b.element_size() for b in buffers))


def connection_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Conv and Linear module (NeuroBench's connection layers), in module order."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, CONNECTION_TYPES)]


def connection_sparsity(model: nn.Module) -> tuple[int, int]:
    """(zero weights, weights) over the connection layers' weights (not their biases); the sparsity is
    their ratio. A model without a connection layer is a ValueError."""
    layers = connection_layers(model)
    if not layers:
        raise ValueError(f"{type(model).__name__} has no Conv or Linear layer: connection sparsity is undefined")
    zeros = sum(int((module.weight == 0).sum()) for _, module in layers)
    return zeros, sum(module.weight.numel() for _, module in layers)


def activation_sparsity(nonzero: float, total: float) -> float:
    """1 − non-zero outputs / outputs (NaN when there are none)."""
    return 1.0 - float(nonzero) / float(total) if total else float("nan")


def is_binary(x: torch.Tensor) -> bool:
    """NeuroBench's test for spikes: every value is −1, 0 or 1."""
    return bool(((x == 0) | (x.abs() == 1)).all())


# ------------------------------------------------------------------------------------- fan-out
def fanout(synapse: Synapse, *, effective: bool) -> torch.Tensor:
    """Synapses each input element of ONE sample reaches, in the synapse's input shape ([C, H, W] for a conv,
    [F] for a linear layer), float64: Wᵀ·1 with W's entries replaced by 1 (dense) or by [W ≠ 0] (effective).
    Conv borders are exact: an element near the border is covered by fewer output windows."""
    module = synapse.module
    weight = module.weight.detach().double().cpu()
    weight = torch.ones_like(weight) if not effective else (weight != 0).double()
    if isinstance(module, nn.Linear):
        return weight.sum(0)  # [out, in] → [in]
    if isinstance(module, nn.Conv2d):
        shape = (1, *synapse.input_shape)  # [1, C, H, W]
        out = F.conv2d(torch.zeros(shape, dtype=torch.float64), weight, stride=module.stride,
                       padding=module.padding, dilation=module.dilation, groups=module.groups)
        return torch.nn.grad.conv2d_input(shape, weight, torch.ones_like(out), stride=module.stride,
                                          padding=module.padding, dilation=module.dilation,
                                          groups=module.groups)[0]
    raise ValueError(f"{synapse.name}: unsupported connection layer {type(module).__name__}")


def route(fan: torch.Tensor, pool: nn.Module | None, source_shape: Sequence[int]) -> torch.Tensor:
    """The fan-out of each element of a source's map (source_shape: [C, H, W] or [F]) into a layer whose input
    elements have fan-out `fan`, through `pool`: none, AvgPool2d(k) (a spike reaches its pooled position's
    fan-out; the rows and columns floor pooling drops reach nothing) or AdaptiveAvgPool2d(1)."""
    source_shape = tuple(int(s) for s in source_shape)
    if len(source_shape) == 1:
        if pool is not None or fan.numel() != source_shape[0]:
            raise ValueError(f"cannot route a map of shape {source_shape} into an input of shape {tuple(fan.shape)}")
        return fan.reshape(source_shape)
    channels, height, width = source_shape
    if pool is None:
        return fan.reshape(source_shape)
    if isinstance(pool, nn.AdaptiveAvgPool2d):
        size = pool.output_size
        if (size if isinstance(size, tuple) else (size, size)) != (1, 1):
            raise ValueError(f"only AdaptiveAvgPool2d(1) is supported; got output size {pool.output_size}")
        return fan.reshape(channels, 1, 1).expand(source_shape).clone()
    if isinstance(pool, nn.AvgPool2d):
        size = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
        stride = pool.stride if isinstance(pool.stride, int) else pool.stride[0]
        if stride != size or pool.padding not in (0, (0, 0)):
            raise ValueError(f"cannot route spikes through {pool}: only non-overlapping pools without padding")
        pooled = fan.reshape(channels, height // size, width // size)
        out = torch.zeros(source_shape, dtype=fan.dtype)
        kept_h, kept_w = (height // size) * size, (width // size) * size
        out[:, :kept_h, :kept_w] = pooled.repeat_interleave(size, 1).repeat_interleave(size, 2)
        return out
    raise ValueError(f"cannot route spikes through {type(pool).__name__}")


def _events_times_fanout(events: torch.Tensor, routed: torch.Tensor, where: str) -> float:
    """Σ events · fan-out. `events` has the routed map's shape (per channel), or that shape without its
    channels (summed over them: [H, W] for [C, H, W], [] for [F]) when every channel has the same fan-out."""
    events = events.detach().double().cpu()
    if events.shape == routed.shape:
        return float((events * routed).sum())
    first = routed[0]
    if events.shape != first.shape:
        raise ValueError(f"{where}: recorded map of shape {tuple(events.shape)} does not fit the fan-out "
                         f"map {tuple(routed.shape)}")
    if not torch.equal(routed, first.unsqueeze(0).expand_as(routed)):
        raise ValueError(f"{where}: the fan-out differs between channels (zero weights), so the effective "
                         f"operations need the per-channel counts: record(..., channel_maps="
                         f"channel_maps_needed(model))")
    return float((events * first).sum())


# ------------------------------------------------------------------------------------ SNN synops
def _snn_wiring(model: SpikingNet) -> list[tuple[Synapse, str, nn.Module | None]]:
    """(connection layer, source, pool between them) in forward order; source "input" or a hidden layer."""
    wiring = synapses(model)
    sources = ["input"] + model.layer_names
    pools = [None] + [layer.pool for layer in model.layers]
    return list(zip(wiring, sources, pools, strict=True))


def channel_maps_needed(model: SpikingNet) -> tuple[str, ...]:
    """The sources ("input" or hidden layer names) whose per-channel spike totals the recording must keep:
    those feeding a layer with zero weights (elsewhere every channel has the same fan-out). Usually none."""
    return tuple(source for target, source, _ in _snn_wiring(model) if bool((target.module.weight == 0).any()))


def _source_shape(model: SpikingNet, recording: Recording, source: str, target: Synapse) -> tuple[int, ...]:
    """The per-sample shape of what `source` emits before its pool: the encoded image [C, H, W] (or [F]), a
    conv layer's spike map [C, H, W], an fc layer's [F]."""
    if source == "input":
        spec = model.spec
        return (spec.in_channels, spec.image_size, spec.image_size) if recording.input_map.dim() == 2 \
            else tuple(target.input_shape)
    layer = next(layer for layer in model.layers if layer.name == source)
    if layer.kind == "conv":
        return (layer.synapse.out_channels, *recording.layers[source].spike_map.shape)
    return (layer.synapse.out_features,)


def snn_synops(model: SpikingNet, recording: Recording) -> pd.DataFrame:
    """Per connection layer of a spiking model, from a Recording: layer, source, input (binary input, analog
    input, spikes, pooled spikes), op (AC | MAC: how we count it), neurobench_op (how NeuroBench's literal
    rule would), dense and effective operations per sample over all T steps.

    The counts it reads were summed over the pass' [T, B, ...] tensors: the input's non-zero values per
    position [H, W] (or [] for [T, B, F] input), a layer's spikes per position [H, W] (conv) or in total
    [] (fc), or per channel ([C, H, W] / [F]) where the recording kept them (channel_maps)."""
    if not isinstance(model, SpikingNet):
        raise ValueError(f"snn_synops needs a SpikingNet; got {type(model).__name__}")
    if getattr(recording, "input_nonzero_map", None) is None:
        raise ValueError("this recording has no count of non-zero inputs (made before standard metrics existed); "
                         "record it again")
    samples = max(1, recording.num_samples)
    steps = recording.num_steps
    rows = []
    for target, source, pool in _snn_wiring(model):
        shape = _source_shape(model, recording, source, target)
        routed = route(fanout(target, effective=True), pool, shape)
        if source == "input":
            events = recording.input_channel_map if recording.input_channel_map is not None \
                else recording.input_nonzero_map
            kind = "binary input" if recording.input_binary else "analog input"
            op = neurobench_op = "AC" if recording.input_binary else "MAC"
        else:
            layer = recording.layers[source]
            events = layer.channel_map if layer.channel_map is not None else layer.spike_map
            kind, op = ("pooled spikes" if pool is not None else "spikes"), "AC"
            neurobench_op = "MAC" if pool is not None else "AC"
        effective = _events_times_fanout(events, routed, f"{target.name} (from {source})") / samples
        dense = steps * float(fanout(target, effective=False).sum())
        rows.append((target.name, source, kind, op, neurobench_op, dense, effective))
    return pd.DataFrame(rows, columns=list(LAYER_COLUMNS))


def synops_from_energy(model: SpikingNet, energy: pd.DataFrame) -> pd.DataFrame:
    """snn_synops from a stored energy table (its synops are the same spikes × fan-out, per sample) instead
    of a recording: exact for a model with no zero weight and a binary input (Poisson coding of images);
    a ValueError otherwise. How `bntt analyze RUN --tables standard_metrics` fills in an analysed run."""
    if not isinstance(model, SpikingNet):
        raise ValueError(f"synops_from_energy needs a SpikingNet; got {type(model).__name__}")
    if model.spec.encoding != "poisson":
        raise ValueError(f"encoding {model.spec.encoding!r}: the analog input's non-zero values are not in the "
                         f"energy table; a recording pass is needed")
    if channel_maps_needed(model):
        raise ValueError("the model has zero weights: the energy table counts every synapse; a recording pass "
                         "is needed")
    missing = {"layer", "synops", "source"} - set(energy.columns)
    if missing:
        raise ValueError(f"energy table lacks columns {sorted(missing)}")
    by_layer = energy.set_index("layer")
    steps = model.num_steps
    rows = []
    for target, source, pool in _snn_wiring(model):
        if target.name not in by_layer.index or str(by_layer.loc[target.name, "source"]) != source:
            raise ValueError(f"the energy table does not match the model: no row {target.name} fed by {source}")
        if source == "input":
            kind, op, neurobench_op = "binary input", "AC", "AC"
        else:
            kind, op = ("pooled spikes" if pool is not None else "spikes"), "AC"
            neurobench_op = "MAC" if pool is not None else "AC"
        rows.append((target.name, source, kind, op, neurobench_op, steps * float(fanout(target, effective=False).sum()),
                     float(by_layer.loc[target.name, "synops"])))
    return pd.DataFrame(rows, columns=list(LAYER_COLUMNS))


# ------------------------------------------------------------------------------------- the table
def metrics_row(model: nn.Module, by_layer: pd.DataFrame, *, nonzero_outputs: float, outputs: float,
                neurons: int, num_steps: int, images: int) -> pd.DataFrame:
    """The one-row `standard_metrics` table from the per-layer synops and the activation counts (per sample:
    non-zero outputs and outputs over all steps; neurons per step)."""
    size = footprint(model)
    zeros, weights = connection_sparsity(model)
    effective = by_layer["effective"].astype(float)
    row = {
        "footprint_bytes": size.bytes, "parameters": size.parameters, "parameter_bytes": size.parameter_bytes,
        "buffers_bytes": size.buffers_bytes, "weights": weights, "zero_weights": zeros,
        "connection_sparsity": zeros / weights, "neurons": int(neurons),
        "activation_sparsity": activation_sparsity(nonzero_outputs, outputs),
        "synops_dense": float(by_layer["dense"].astype(float).sum()),
        "synops_effective_macs": float(effective[by_layer["op"] == "MAC"].sum()),
        "synops_effective_acs": float(effective[by_layer["op"] == "AC"].sum()),
        "synops_acs_through_pooling": float(effective[(by_layer["op"] == "AC")
                                                      & (by_layer["input"] == "pooled spikes")].sum()),
        "num_steps": int(num_steps), "images": int(images),
    }
    return pd.DataFrame([row], columns=list(COLUMNS))


def snn_metrics_table(model: SpikingNet, recording: Recording, *, by_layer: pd.DataFrame | None = None,
                      spike_rate: pd.DataFrame | None = None) -> pd.DataFrame:
    """The `standard_metrics` row of a spiking model from its Recording (by_layer / spike_rate: the ones
    already computed from it, or from stored tables: `metrics_from_tables`)."""
    by_layer = snn_synops(model, recording) if by_layer is None else by_layer
    spike_rate = recording.spike_rate() if spike_rate is None else spike_rate
    return _snn_row(model, by_layer, spike_rate, num_steps=recording.num_steps, images=recording.num_samples)


def _snn_row(model: SpikingNet, by_layer: pd.DataFrame, spike_rate: pd.DataFrame, *, num_steps: int,
             images: int) -> pd.DataFrame:
    missing = {"spikes_per_sample", "neurons"} - set(spike_rate.columns)
    if missing:
        raise ValueError(f"spike_rate table lacks columns {sorted(missing)}")
    neurons = int(spike_rate["neurons"].sum())
    spikes = float(spike_rate["spikes_per_sample"].astype(float).sum())  # per sample, over all T steps
    return metrics_row(model, by_layer, nonzero_outputs=spikes, outputs=float(num_steps * neurons),
                       neurons=neurons, num_steps=num_steps, images=images)


def metrics_from_tables(model: SpikingNet, energy: pd.DataFrame, spike_rate: pd.DataFrame, *,
                        images: int) -> pd.DataFrame:
    """The `standard_metrics` row of a spiking model from its stored energy and spike_rate tables (no pass):
    what a recording of the same images gives, for a model `synops_from_energy` accepts."""
    return _snn_row(model, synops_from_energy(model, energy), spike_rate, num_steps=model.num_steps, images=images)


# ------------------------------------------------------------------------------------- ANN
@torch.inference_mode()
def ann_counts(model: ANNNet, images: torch.Tensor, *, batch_size: int = 256,
               context: Callable[[], AbstractContextManager] | None = None) -> tuple[pd.DataFrame, float, float, int]:
    """One forward pass of an ANN over `images` (normalised [N, C, H, W]) with hooks: per connection layer
    the dense and effective operations per sample (all MACs), and the ReLU outputs: (by_layer, non-zero
    outputs per sample, outputs per sample, ReLU units per sample)."""
    if not isinstance(model, ANNNet):
        raise ValueError(f"ann_counts needs an ANNNet; got {type(model).__name__}")
    if images.shape[0] == 0:
        raise ValueError("no images to count on")
    wiring = synapses(model)
    names = [s.name for s in wiring]
    effective_fan = {s.name: fanout(s, effective=True).to(images.device) for s in wiring}
    effective = dict.fromkeys(names, 0.0)
    relu = {"nonzero": 0.0, "total": 0.0}

    def synapse_hook(name: str):
        def hook(_module, args):
            x = args[0]  # this layer's input: [B, C, H, W] (conv) or [B, F] (linear); fan-out [C, H, W] / [F]
            effective[name] += float(((x != 0).double() * effective_fan[name]).sum())
        return hook

    def relu_hook(_module, _args, out):  # out: [B, C, H, W] or [B, F]
        relu["nonzero"] += float((out != 0).sum())
        relu["total"] += out.numel()

    hooks = [s.module.register_forward_pre_hook(synapse_hook(s.name)) for s in wiring]
    hooks += [m.register_forward_hook(relu_hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    was_training = model.training
    model.eval()
    try:
        for begin in range(0, images.shape[0], max(1, int(batch_size))):
            with context() if context is not None else nullcontext():
                model(images[begin:begin + batch_size])  # [B, C, H, W] → logits [B, classes]
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    samples = images.shape[0]
    rows = [(s.name, source, "analog input" if source == "input" else "activations", "MAC", "MAC",
             float(fanout(s, effective=False).sum()), effective[s.name] / samples)
            for s, source in zip(wiring, ["input"] + model.layer_names, strict=True)]
    units = round(relu["total"] / samples)
    return pd.DataFrame(rows, columns=list(LAYER_COLUMNS)), relu["nonzero"] / samples, relu["total"] / samples, units


def ann_metrics_table(model: ANNNet, images: torch.Tensor, *, batch_size: int = 256,
                      context: Callable[[], AbstractContextManager] | None = None) -> pd.DataFrame:
    """The `standard_metrics` row of an ANN: one forward pass over `images` (T = 1; every op a MAC).
    `context`: e.g. a precision's autocast, entered around each batch."""
    by_layer, nonzero, total, units = ann_counts(model, images, batch_size=batch_size, context=context)
    return metrics_row(model, by_layer, nonzero_outputs=nonzero, outputs=total, neurons=units, num_steps=1,
                       images=images.shape[0])


# ------------------------------------------------------------------------------------- display
DESCRIPTIONS: dict[str, tuple[str, str]] = {  # column: (label, what it is)
    "footprint_bytes": ("footprint", "bytes of all parameters and buffers (model as evaluated, float32)"),
    "parameters": ("parameters", "learned values: weights, BNTT γ per step, biases"),
    "buffers_bytes": ("buffers", "bytes of the stored running statistics (BNTT: one per step and channel)"),
    "connection_sparsity": ("connection sparsity", "share of zero weights in the Conv and Linear layers"),
    "activation_sparsity": ("activation sparsity", "share of zero neuron outputs over all steps (ANN: ReLU)"),
    "neurons": ("neurons", "spiking neurons (ANN: ReLU units) per image and step"),
    "synops_dense": ("dense synaptic operations", "every multiply-accumulate as if dense, per image over T steps"),
    "synops_effective_macs": ("effective MACs", "ops driven by non-zero non-binary inputs (analog input, ANN)"),
    "synops_effective_acs": ("effective ACs", "ops driven by spikes: each spike × the non-zero synapses it reaches"),
    "synops_acs_through_pooling": ("… of which through a pool", "ACs from spikes through an average pool "
                                   "(NeuroBench counts MACs of the pooled values instead)"),
    "num_steps": ("time steps", "T of one inference (ANN: 1)"),
    "images": ("images", "test images the counts are averaged over"),
}


def _format(column: str, value: float) -> str:
    if column.endswith("_bytes"):
        return f"{value / 2**20:.3g} MiB ({int(value):,} B)" if value >= 2**20 else f"{value / 1024:.3g} KiB ({int(value):,} B)"
    if column.endswith("sparsity"):
        return f"{100 * value:.2f} %"
    if column.startswith("synops"):
        return f"{value:,.4g}" if value < 1e4 else f"{value / 1e6:,.4g} M"
    return f"{int(value):,}"


def describe(table: pd.DataFrame) -> pd.DataFrame:
    """A one-row standard_metrics table as rows to read: metric, value (formatted), meaning."""
    if len(table) != 1:
        raise ValueError(f"a standard_metrics table has one row; got {len(table)}")
    row = table.iloc[0]
    return pd.DataFrame([(label, _format(column, float(row[column])), meaning)
                         for column, (label, meaning) in DESCRIPTIONS.items() if column in table.columns
                         and pd.notna(row[column])], columns=["metric", "value", "meaning"])


def compare(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """{run: standard_metrics table} → one row per run (run first, then the table's columns in COLUMNS order)."""
    rows = []
    for run, table in tables.items():
        if len(table) != 1:
            raise ValueError(f"the standard_metrics table of {run} has {len(table)} rows; expected one")
        rows.append({"run": run, **{c: table[c].iloc[0] for c in COLUMNS if c in table.columns}})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ NeuroBench's rule, literally
@torch.inference_mode()
def neurobench_synops(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """NeuroBench's SynapticOperations applied literally to one batch, for checks on small inputs: a pre-hook
    on every connection layer keeps its input; each input is binary when all its values are in {−1, 0, 1}
    (AC) else not (MAC); effective ops = the layer with its non-zero weights set to 1 and no bias, applied to
    the input with its non-zero values set to 1, summed; dense = the same with every weight and input 1.
    Per sample (x's batch size B). x: encoded [T, B, ...] for a SpikingNet, images [B, C, H, W] for an ANN.
    Also returns activation_sparsity over the hidden spiking neurons (monitor) or the ReLUs."""
    spiking = isinstance(model, SpikingNet)
    if spiking and x.dim() == 4:  # images; an encoded input is [T, B, C, H, W], [T, B, F] or [T, B, C]
        raise ValueError("give a SpikingNet its encoded input [T, B, ...] (model.encode(images, generator=g)), "
                         f"not images of shape {tuple(x.shape)}")
    layers = [module for _, module in connection_layers(model)]
    totals = {"Effective_MACs": 0.0, "Effective_ACs": 0.0, "Dense": 0.0}
    activations = {"nonzero": 0.0, "total": 0.0}

    def ops(module: nn.Module, inputs: torch.Tensor, weight: torch.Tensor) -> float:
        if isinstance(module, nn.Linear):
            return float(F.linear(inputs, weight).sum())
        return float(F.conv2d(inputs, weight, stride=module.stride, padding=module.padding,
                              dilation=module.dilation, groups=module.groups).sum())

    def hook(module, args):
        inputs = args[0].detach().double()
        weight = module.weight.detach().double()
        effective = ops(module, (inputs != 0).double(), (weight != 0).double())
        totals["Effective_ACs" if is_binary(inputs) else "Effective_MACs"] += effective
        totals["Dense"] += ops(module, torch.ones_like(inputs), torch.ones_like(weight))

    def count(out):
        activations["nonzero"] += float((out != 0).sum())
        activations["total"] += out.numel()

    handles = [module.register_forward_pre_hook(hook) for module in layers]
    try:
        if spiking:  # every connection layer sees its whole [T·B, ...] input in one call
            model(x, monitor=lambda _name, tensors: count(tensors["spikes"]))
            samples = x.shape[1]
        else:
            handles += [m.register_forward_hook(lambda _m, _a, out: count(out))
                        for m in model.modules() if isinstance(m, nn.ReLU)]
            model(x)
            samples = x.shape[0]
    finally:
        for handle in handles:
            handle.remove()
    result = {name: value / samples for name, value in totals.items()}
    result["activation_sparsity"] = activation_sparsity(activations["nonzero"], activations["total"])
    return result
