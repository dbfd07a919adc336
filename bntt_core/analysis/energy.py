"""Energy estimate per synaptic layer (SPEC "Energy", paper supplement E).

Convention (45 nm CMOS, Horowitz 2014): E_ANN = MACs · 4.6 pJ, E_SNN = synaptic operations · 0.9 pJ,
where one synaptic operation (synop) is one spike arriving at one synapse (an accumulate). Counted per
image (mean over the analysed images), for inference; the norm, the membrane updates, the pooling and
the Poisson sampling are not counted (the usual convention).

Rows are the SYNAPTIC layers, each named after the layer that owns the weights: conv1 … fcN and
`classifier`; `source` names what feeds it ("input" = the encoded input, else the previous hidden
layer's spikes). So conv1's synops are the input layer's: encoded input events × fan-out.

Fan-out, exact (borders included): a spike at input position p of a k×k conv (stride 1, pad 1) reaches
out_channels × (number of output positions whose window covers p) synapses: 9·C_out inside, 6·C_out on
an edge, 4·C_out in a corner (computed with conv_transpose2d of ones, so any stride/padding is exact).
A spike that goes through AvgPool2d(2) reaches the fan-out of its pooled position (the ¼ folds into the
weight); through the adaptive pool to 1×1 and into a linear layer, out_features. Input events are
|s| (a −1 input spike is one event).

MACs (the ANN twin's, one forward, exact: multiplications with the zero padding are NOT counted) =
Σ over input values of their fan-out, i.e. what the synops would be if every input fired once. For a
direct-coded SNN the first layer receives the analog image at every step: it does T·MACs
multiply-accumulates, charged at 4.6 pJ and reported in `energy_pj`, with synops 0 (the same for
normalised event frames, which are analog values at every step).

Columns: layer, synops, macs, energy_pj (this model's energy for the layer), source, events (input
events per image), ann_energy_pj (macs · 4.6: the ANN twin's energy for the same layer).

    table = snn_energy_table(model, recording)       # after bntt_core.analysis.recording.record
    table = ann_energy_table(ann_model)
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from bntt_core.nn.models import ANNNet, SpikingNet

E_MAC_PJ = 4.6
E_AC_PJ = 0.9
CONVENTION = {
    "model": "45 nm CMOS, Horowitz 2014: E_ANN = MACs · 4.6 pJ, E_SNN = synops · 0.9 pJ",
    "e_mac_pj": E_MAC_PJ,
    "e_ac_pj": E_AC_PJ,
    "unit": "per image (mean over the analysed images), one inference over all T steps",
    "synops": "spikes × fan-out, borders exact (no synapse onto zero padding); a spike through AvgPool2d(2) "
              "reaches its pooled position's fan-out; input events |s| of the encoded input",
    "macs": "the ANN twin's multiply-accumulates, exact (multiplications with zero padding not counted)",
    "direct_coding": "the first layer of a direct-coded SNN does T·MACs on the analog image, at 4.6 pJ",
    "not_counted": "normalisation, membrane updates, pooling, Poisson sampling, memory access",
}


@dataclass(frozen=True)
class Synapse:
    """One weight layer: its name, module and the shape of one sample's input to it ([C, H, W] or [F])."""

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]

    def fanout_map(self) -> torch.Tensor:
        """Synapses each input position reaches: [H, W] for a conv (per input channel), [] for linear."""
        module = self.module
        if isinstance(module, nn.Linear):
            return torch.tensor(float(module.out_features), dtype=torch.float64)
        if isinstance(module, nn.Conv2d):
            if module.groups != 1:
                raise ValueError(f"{self.name}: grouped convolutions are not supported")
            height, width = self.input_shape[-2:]
            kernel = torch.ones(1, 1, *module.kernel_size, dtype=torch.float64)
            out = F.conv2d(torch.zeros(1, 1, height, width, dtype=torch.float64), kernel, stride=module.stride,
                           padding=module.padding, dilation=module.dilation)
            # how many output windows cover each input position (padding rows dropped)
            padded = F.conv_transpose2d(torch.ones_like(out), kernel, stride=module.stride, dilation=module.dilation)
            pad_h, pad_w = module.padding
            cover = padded[0, 0, pad_h:pad_h + height, pad_w:pad_w + width]
            if cover.shape != (height, width):  # stride leftovers on the far border reach nothing
                full = torch.zeros(height, width, dtype=torch.float64)
                full[:cover.shape[0], :cover.shape[1]] = cover
                cover = full
            return cover * module.out_channels
        raise ValueError(f"{self.name}: unsupported synapse {type(module).__name__}")

    def macs(self) -> float:
        """Multiply-accumulates of one forward for one sample, without the zero padding."""
        fanout = self.fanout_map()
        if isinstance(self.module, nn.Linear):
            return float(self.module.in_features) * float(fanout)
        return float(self.module.in_channels) * float(fanout.sum())


def synapses(model: nn.Module) -> list[Synapse]:
    """The weight layers in forward order with their per-sample input shapes (from one dummy forward)."""
    if isinstance(model, SpikingNet):
        named = [(layer.name, layer.synapse) for layer in model.layers] + [("classifier", model.classifier)]
    elif isinstance(model, ANNNet):
        named = []
        for name, block in zip(model.layer_names, model.blocks, strict=True):
            named.append((name, next(m for m in block if isinstance(m, (nn.Conv2d, nn.Linear)))))
        named.append(("classifier", model.classifier[-1]))
    else:
        raise ValueError(f"energy needs a SpikingNet or ANNNet; got {type(model).__name__}")
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [module.register_forward_pre_hook(
        lambda _m, args, name=name: shapes.__setitem__(name, tuple(args[0].shape[1:])))
        for name, module in named]
    spec = model.spec
    parameter = next(model.parameters())
    dummy = torch.zeros(1, spec.in_channels, spec.image_size, spec.image_size, dtype=parameter.dtype,
                        device=parameter.device)
    was_training = model.training
    model.eval()  # a forward in train mode would move the BN running statistics
    try:
        with torch.inference_mode():
            if isinstance(model, SpikingNet):
                model(dummy, num_steps=1)
            else:
                model(dummy)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return [Synapse(name, module, shapes[name]) for name, module in named]


def _routed_fanout(pool: nn.Module | None, spike_shape: torch.Size, target: Synapse) -> torch.Tensor:
    """Fan-out per position of a layer's spike map ([H, W] or []) after its pool, into `target`."""
    fanout = target.fanout_map()
    if len(spike_shape) == 0 or fanout.dim() == 0:
        return fanout  # linear target, or a linear source: the same fan-out everywhere
    height, width = spike_shape
    if pool is None:
        return fanout
    if isinstance(pool, nn.AvgPool2d):
        size = pool.kernel_size if isinstance(pool.kernel_size, int) else pool.kernel_size[0]
        rows = torch.arange(height) // size
        cols = torch.arange(width) // size
        keep_r, keep_c = rows < fanout.shape[0], cols < fanout.shape[1]  # floor pooling drops leftovers
        out = torch.zeros(height, width, dtype=torch.float64)
        out[keep_r.nonzero()[:, 0][:, None], keep_c.nonzero()[:, 0][None, :]] = \
            fanout[rows[keep_r]][:, cols[keep_c]]
        return out
    raise ValueError(f"cannot route spikes through {type(pool).__name__} into conv {target.name}")


def snn_energy_table(model: SpikingNet, recording, *, analog_input: bool = False) -> pd.DataFrame:
    """Per synaptic layer: synops from the recorded spikes (per image), the twin's MACs, energy in pJ.

    analog_input: the first layer reads analog values at every step (direct coding sets it by itself;
    pass True for normalised event frames, which are not binary events either)."""
    if not isinstance(model, SpikingNet):
        raise ValueError(f"snn_energy_table needs a SpikingNet; got {type(model).__name__}")
    wiring = synapses(model)
    images = max(1, recording.num_samples)
    steps = recording.num_steps
    sources = ["input"] + model.layer_names
    pools = [None] + [layer.pool for layer in model.layers]
    maps = [recording.input_map] + [recording.layers[name].spike_map for name in model.layer_names]
    rows = []
    for target, source, pool, events in zip(wiring, sources, pools, maps, strict=True):
        macs = target.macs()
        events = events.detach().double().cpu()
        if source == "input" and (analog_input or model.spec.encoding == "direct"):
            synops, energy = 0.0, steps * macs * E_MAC_PJ  # analog input: T dense passes of MACs
        else:
            fanout = _routed_fanout(pool, events.shape, target)
            synops = float((events * fanout).sum()) / images
            energy = synops * E_AC_PJ
        rows.append((target.name, synops, macs, energy, source, float(events.sum()) / images, macs * E_MAC_PJ))
    return pd.DataFrame(rows, columns=["layer", "synops", "macs", "energy_pj", "source", "events", "ann_energy_pj"])


def ann_energy_table(model: ANNNet) -> pd.DataFrame:
    """Per synaptic layer of an ANN: MACs of one forward and their energy (no spikes, no synops)."""
    if not isinstance(model, ANNNet):
        raise ValueError(f"ann_energy_table needs an ANNNet; got {type(model).__name__}")
    rows = []
    sources = ["input"] + model.layer_names
    for target, source in zip(synapses(model), sources, strict=True):
        macs = target.macs()
        rows.append((target.name, 0.0, macs, macs * E_MAC_PJ, source, float("nan"), macs * E_MAC_PJ))
    return pd.DataFrame(rows, columns=["layer", "synops", "macs", "energy_pj", "source", "events", "ann_energy_pj"])
