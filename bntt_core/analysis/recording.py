"""One clean evaluation pass of a spiking model that records everything the analysis tables need.

A `Monitor` (bntt_core.nn.models) sees every hidden layer's pre-norm current and spikes; the recorder
reduces them on the fly, per layer and step, so nothing of size [T, B, ...] outlives its batch:

    spikes          total spike count per step [T] and per spatial position [H, W] (energy)
    norm input      mean and std per step over all values (Σx, Σx² per batch, merged in float64 with
                    Chan's formula) and a histogram per step of the first ceil(B/64) images of every
                    batch (a subsample: torch.histc over all values would cost about as much as the
                    layer's own LIF scan), at every step up to T = 100 and at 100 evenly spaced steps beyond,
                    over a range fixed per layer from the first batch's subsample (its min..max
                    widened by 10% on each side); values outside it are counted in `hist_below` / `hist_above`
    outputs         the output accumulated up to step t for every t: its argmax and its softmax
                    confidence, per sample ([T, N]): per-step accuracy and every early-exit curve
                    come from these, with no further inference
    input events    |encoded input| summed per position (the input layer's synaptic events), the count of
                    its non-zero values per position and whether every value was in {−1, 0, 1}
                    (bntt_core.analysis.standard_metrics: NeuroBench's binary test)
    channel maps    only for the layers named in `channel_maps` (none by default): spikes summed over T and
                    samples per channel and position [C, H, W] (or [F]); effective synaptic operations
                    need them where the next layer has zero weights (standard_metrics.channel_maps_needed)

Where a layer runs the compiled BNTT→LIF loop (CPU, BNTT), the spike counts and Σx, Σx² come out of that
same loop (`wants_fused_stats`): counts exact, sums from float partials of ≤ 4,096 values merged in
float64. Elsewhere they are computed from the tensors the monitor receives (same values, same counts).

The Poisson input is drawn from ONE `torch.Generator` seeded with `seed` and consumed batch after
batch in order, so a pass with the same seed, batch size and images draws the same spikes as
`bntt_core.nn.step.eval_logits(model, batch, generator=g)` called batch after batch with that generator.

    rec = record(model, images, labels, seed=0, batch_size=128)   # images normalised [N, C, H, W]
    rec.accuracy_by_step()      # DataFrame t, accuracy, correct, n
    rec.spike_activity(); rec.spike_rate(); rec.bn_input(model); rec.bn_input_hist()

Event data ([N, T, C, H, W] float frames) is passed as is: each batch is fed time-major.
Run the tests: .venv/bin/python -m pytest tests/test_analysis.py -q
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from bntt_core.nn.kernels import cpu as _kernels  # compiled CPU loops: one pass for Σx, Σx² (else PyTorch)
from bntt_core.nn.models import SpikingNet, neurons_per_image
from bntt_core.nn.norms import ONE_STATISTIC_NORMS
from bntt_core.nn.step import autocast

EXACT_COUNT = 256  # bf16 holds every integer up to 256: spike counts are summed in blocks of this many
HIST_BINS = 60
HIST_MARGIN = 0.10  # the histogram range is the first batch's [min, max] widened by this share of the span
HIST_SUBSAMPLE = 64  # the histogram sees the first ceil(B / 64) images of every batch (mean/std see all)
HIST_MAX_STEPS = 100  # histograms at every step up to T = 100, else at 100 evenly spaced steps (first and last
                      # included): a 784-step sequence would write 47,000 rows per layer that no figure can show
MAX_BATCH = 256
STEP_BATCH_BUDGET = 4096  # default batch without a model: at most this many (step, image) pairs per forward
NEURON_STEP_BUDGET = 2 ** 28  # default batch with a model: (step, image, hidden neuron) triples per forward


def histogram_steps(num_steps: int) -> list[int]:
    """The 0-based steps that get a norm-input histogram (all when T ≤ HIST_MAX_STEPS)."""
    if num_steps <= HIST_MAX_STEPS:
        return list(range(num_steps))
    return sorted({round(i * (num_steps - 1) / (HIST_MAX_STEPS - 1)) for i in range(HIST_MAX_STEPS)})


def default_batch_size(num_steps: int, model: nn.Module | None = None) -> int:
    """A batch size that keeps the (step, image, hidden neuron) triples of one forward under
    NEURON_STEP_BUDGET when the model is given (vgg9 ¼ width at T = 25: 174 images; the 784-step seqfc:
    256), else the (step, image) pairs under STEP_BATCH_BUDGET (163 images at T = 25, 8 at T = 500)."""
    steps = max(1, int(num_steps))
    spec = getattr(model, "spec", None)
    if spec is not None:
        return max(1, min(MAX_BATCH, NEURON_STEP_BUDGET // (steps * neurons_per_image(spec))))
    return max(1, min(MAX_BATCH, STEP_BATCH_BUDGET // steps))


@dataclass
class LayerRecord:
    """What one hidden layer did over the whole pass (totals over all samples)."""

    name: str
    neurons: int  # neurons per sample: C·H·W of the layer's spike map (before pooling), or units
    spikes_by_step: torch.Tensor  # [T] float64: spikes summed over samples and neurons
    spike_map: torch.Tensor  # [H, W] (conv) or [] (fc) float64: spikes summed over T, samples, channels
    input_count: int  # values of the norm input per step (samples × neurons)
    input_mean: torch.Tensor  # [T] float64
    input_m2: torch.Tensor  # [T] float64: Σ (x − mean)² per step
    hist_edges: torch.Tensor  # [bins + 1] float64
    hist_steps: list[int]  # the 0-based steps that have a histogram (histogram_steps)
    hist_counts: torch.Tensor  # [len(hist_steps), bins] float64
    hist_below: torch.Tensor  # [len(hist_steps)] values under the histogram's range
    hist_above: torch.Tensor  # [len(hist_steps)] values over it
    hist_values: int = 0  # values per step that went into the histogram (a subsample, see HIST_SUBSAMPLE)
    channel_map: torch.Tensor | None = None  # [C, H, W] or [F] float64 spikes over T and samples; only if asked

    @property
    def input_std(self) -> torch.Tensor:
        """Population std of the norm input per step [T]."""
        return (self.input_m2 / max(1, self.input_count)).clamp_min(0).sqrt()


@dataclass
class Recording:
    """The result of `record`: per-sample per-step outputs and per-layer aggregates."""

    num_steps: int
    num_samples: int
    seed: int
    batch_size: int
    labels: torch.Tensor  # [N] int64
    predictions: torch.Tensor  # [T, N] int64: argmax of the output accumulated up to step t
    confidence: torch.Tensor  # [T, N] float32: max softmax probability of that output
    layers: dict[str, LayerRecord]
    input_map: torch.Tensor  # [H, W] or [] float64: |encoded input| summed over T, samples, channels
    input_by_step: torch.Tensor  # [T] float64
    encoding: str
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    input_nonzero_map: torch.Tensor | None = None  # like input_map: non-zero encoded values (= input_map for ±1 spikes)
    input_binary: bool = True  # every encoded input value was in {−1, 0, 1}
    input_channel_map: torch.Tensor | None = None  # [C, H, W] or [F]: non-zero encoded values; only if asked

    @property
    def correct_by_step(self) -> torch.Tensor:
        """[T, N] bool: is the prediction from the output accumulated up to step t right."""
        return self.predictions == self.labels.unsqueeze(0)

    def accuracy_by_step(self) -> pd.DataFrame:
        correct = self.correct_by_step.sum(1)  # [T]
        n = max(1, self.num_samples)
        return pd.DataFrame({
            "t": range(1, self.num_steps + 1),
            "accuracy": (correct.double() / n).tolist(),
            "correct": correct.tolist(),
            "n": self.num_samples,
        })

    def spike_activity(self) -> pd.DataFrame:
        """Mean spike count per neuron of each layer at each step (Fig 1)."""
        rows = []
        for name, layer in self.layers.items():
            per_neuron = layer.spikes_by_step / max(1, self.num_samples * layer.neurons)
            rows += [(name, t + 1, float(v)) for t, v in enumerate(per_neuron)]
        return pd.DataFrame(rows, columns=["layer", "t", "spikes_per_neuron"])

    def spike_rate(self) -> pd.DataFrame:
        """Total spikes of the layer over T ÷ its neurons, per sample (Fig 5)."""
        rows = []
        for name, layer in self.layers.items():
            total = float(layer.spikes_by_step.sum())
            rows.append((name, total / max(1, self.num_samples * layer.neurons), total / max(1, self.num_samples),
                         layer.neurons))
        return pd.DataFrame(rows, columns=["layer", "rate", "spikes_per_sample", "neurons"])

    def bn_input(self, model: SpikingNet | None = None) -> pd.DataFrame:
        """Per layer and step: mean and std of the norm input; for a one-statistic BN the stored running mean
        (mean over channels of the one running_mean of bn / bn-joint / tdbn / tebn, the same at every t),
        else empty (NaN)."""
        stored = {}
        if model is not None:
            for name, norm in model.norm_layers().items():
                if isinstance(norm, ONE_STATISTIC_NORMS):
                    stored[name] = float(norm.running_mean.double().mean())
        rows = []
        for name, layer in self.layers.items():
            std = layer.input_std
            outside = {t: (int(layer.hist_below[i]), int(layer.hist_above[i])) for i, t in enumerate(layer.hist_steps)}
            for t in range(self.num_steps):
                below, above = outside.get(t, (math.nan, math.nan))  # blank where no histogram was taken
                rows.append((name, t + 1, float(layer.input_mean[t]), float(std[t]), stored.get(name, math.nan),
                             below, above))
        return pd.DataFrame(rows, columns=["layer", "t", "mean", "std", "running_mean", "hist_below", "hist_above"])

    def bn_input_hist(self) -> pd.DataFrame:
        rows = []
        for name, layer in self.layers.items():
            edges = layer.hist_edges.tolist()
            for i, t in enumerate(layer.hist_steps):
                counts = layer.hist_counts[i].tolist()
                rows += [(name, t + 1, edges[b], edges[b + 1], int(c)) for b, c in enumerate(counts)]
        return pd.DataFrame(rows, columns=["layer", "t", "bin_left", "bin_right", "count"])


class _Recorder:
    """The monitor: reduces each layer's [T, B, ...] tensors to per-step aggregates."""

    wants_membrane = False
    wants_fused_stats = True  # sums and spike counts from the fused BNTT→LIF pass where it runs

    def __init__(self, num_steps: int, bins: int, hist_subsample: int, channel_maps: Collection[str] = ()):
        self.num_steps, self.bins, self.hist_subsample = num_steps, bins, max(1, int(hist_subsample))
        self.channel_maps = frozenset(channel_maps)
        self.layers: dict[str, LayerRecord] = {}

    def __call__(self, name: str, tensors: dict) -> None:
        # in memory order: a channels_last map [T, B, C, H, W] is viewed as [T, B, H, W, C] (no copy);
        # per-step statistics do not depend on the order of the values
        current, _ = _memory_order(tensors["input"])  # [T, B, ...]
        steps, batch = current.shape[0], current.shape[1]
        layer = self.layers.get(name)
        if layer is None:
            layer = self.layers[name] = self._new_layer(name, tensors["input"], tensors["spikes"])
        # spikes: [T, B, C, H, W] → counts [T, H, W] (conv), or [T, B, F] → [T] (fc)
        counts = tensors["spike_counts"] if "spike_counts" in tensors else _spike_counts(tensors["spikes"])
        if counts.dim() == 3:
            layer.spikes_by_step[:steps] += counts.sum(dim=(1, 2))
            layer.spike_map += counts.sum(0)
        else:
            layer.spikes_by_step[:steps] += counts
            layer.spike_map += counts.sum()
        if name in self.channel_maps:  # [T, B, C, H, W] → [C, H, W] (or [T, B, F] → [F]), exact in float64
            per_channel = tensors["spikes"].sum(dim=(0, 1), dtype=torch.float64)
            layer.channel_map = per_channel if layer.channel_map is None else layer.channel_map + per_channel
        # norm input, all values: exact mean / M2 per step from Σx and Σx², merged batch by batch (Chan)
        per_sample = current.reshape(steps, batch, -1)  # [T, B, neurons], a view
        n_new = per_sample.shape[1] * per_sample.shape[2]
        if "input_sums" in tensors:
            total_sum, total_sq = tensors["input_sums"]  # [T] float64 each
        else:
            total_sum, total_sq = _step_sums(tensors["input"], per_sample)  # [T] float64 each
        mean = total_sum / n_new
        m2 = (total_sq - total_sum * mean).clamp_min(0)
        n_old = layer.input_count
        delta = mean - layer.input_mean[:steps]
        total = n_old + n_new
        layer.input_mean[:steps] += delta * (n_new / total)
        layer.input_m2[:steps] += m2 + delta.square() * (n_old * n_new / total)
        layer.input_count = total
        # histogram: the first ceil(B / HIST_SUBSAMPLE) images of the batch (histc is ~10× slower per
        # value than a sum; over all values it would cost about as much as the layer's LIF scan)
        keep = -(-batch // self.hist_subsample)
        sample = per_sample[:, :keep].reshape(steps, -1)  # [T, keep·neurons], a view
        if sample.dtype not in (torch.float32, torch.float64):
            sample = sample.float()  # histc has no bf16 kernel on CPU
        lo, hi = float(layer.hist_edges[0]), float(layer.hist_edges[-1])
        taken = [t for t in layer.hist_steps if t < steps]
        counts = torch.stack([torch.histc(sample[t], bins=self.bins, min=lo, max=hi) for t in taken])
        layer.hist_counts[:len(taken)] += counts.double()  # [steps taken, bins]; values beyond [lo, hi] left out
        outside = (sample.shape[1] - counts.sum(1)).tolist()  # usually all 0 (no extra pass then)
        for i, t in enumerate(taken):
            if outside[i] > 0.5:
                below = int((sample[t] < lo).sum())
                layer.hist_below[i] += below
                layer.hist_above[i] += round(outside[i]) - below
        layer.hist_values += keep * per_sample.shape[2]

    def _new_layer(self, name: str, current: torch.Tensor, spikes: torch.Tensor) -> LayerRecord:
        steps = self.num_steps
        keep = -(-current.shape[1] // self.hist_subsample)  # the range from the histogram's own subsample
        lo, hi = (float(v) for v in torch.aminmax(current[:, :keep].float()))
        span = hi - lo if hi > lo else max(1.0, abs(hi))
        lo, hi = lo - HIST_MARGIN * span, hi + HIST_MARGIN * span
        neurons = math.prod(spikes.shape[2:])
        hist_steps = histogram_steps(steps)
        spike_map = torch.zeros(spikes.shape[3:], dtype=torch.float64, device=spikes.device) if spikes.dim() == 5 \
            else torch.zeros((), dtype=torch.float64, device=spikes.device)

        def zeros(*shape):
            return torch.zeros(*shape, dtype=torch.float64, device=spikes.device)

        return LayerRecord(name=name, neurons=neurons, spikes_by_step=zeros(steps), spike_map=spike_map,
                           input_count=0, input_mean=zeros(steps), input_m2=zeros(steps),
                           hist_edges=torch.linspace(lo, hi, self.bins + 1, dtype=torch.float64),
                           hist_steps=hist_steps, hist_counts=zeros(len(hist_steps), self.bins),
                           hist_below=zeros(len(hist_steps)), hist_above=zeros(len(hist_steps)))


def _memory_order(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """[T, B, C, H, W] stored channels_last (the engine's bf16 CPU path) → (the contiguous view
    [T, B, H, W, C], True); anything else → (itself, made contiguous if it is not; False)."""
    if x.dim() == 5 and not x.is_contiguous():
        permuted = x.permute(0, 1, 3, 4, 2)
        if permuted.is_contiguous():
            return permuted, True
    return x.contiguous(), False


def _accumulator(dtype: torch.dtype) -> torch.dtype:
    """Reductions run in float32 (bf16/fp16 inputs upcast), float64 for float64 inputs."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _ones_blocks(channels: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """[C, k] with ones[c, c // 256] = 1: k partial sums of at most 256 channels each."""
    blocks = -(-channels // EXACT_COUNT)
    ones = torch.zeros(channels, blocks, dtype=dtype, device=device)
    ones[torch.arange(channels), torch.arange(channels) // EXACT_COUNT] = 1
    return ones


def _spike_counts(spikes: torch.Tensor) -> torch.Tensor:
    """Spikes [T, B, C, H, W] (NCHW or channels_last) → counts per step and position [T, H, W]; [T, B, F] →
    counts per step [T]; float64, exact. One matrix product with blocks of ones: a GEMM runs at memory speed
    in bf16 too, where PyTorch's CPU reductions of bf16 are ~5-10× slower; each output is a sum of at most
    256 zeros and ones, which bf16 holds exactly."""
    if spikes.dim() == 5:
        steps, batch, channels, height, width = spikes.shape
        memory, channels_last = _memory_order(spikes)
        ones = _ones_blocks(channels, spikes.dtype, spikes.device)  # [C, k]
        if channels_last:  # [T, B, H, W, C]
            partial = memory.reshape(-1, channels) @ ones  # [T·B·H·W, k]
            return partial.view(steps, batch, height, width, -1).double().sum(dim=(1, 4))
        partial = torch.matmul(ones.t(), memory.reshape(steps * batch, channels, -1))  # [T·B, k, H·W]
        return partial.view(steps, batch, -1, height, width).double().sum(dim=(1, 2))
    steps, batch = spikes.shape[0], spikes.shape[1]
    flat = spikes.reshape(steps * batch, -1)  # [T·B, F]
    partial = flat @ _ones_blocks(flat.shape[1], spikes.dtype, spikes.device)  # [T·B, k]
    return partial.view(steps, batch, -1).double().sum(dim=(1, 2))


def _step_sums(current: torch.Tensor, per_sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σx, Σx²) per step [T], float64. The engine's compiled CPU loop when it can read the tensor (one pass,
    fp64 sums); else float32 partial sums per (step, sample) of `per_sample` [T, B, n], then float64."""
    if current.device.type == "cpu" and _kernels.layout(current) is not None \
            and _kernels.available():
        sums = _kernels.channel_sums(current)  # [2, T, C] fp64
        return sums[0].sum(1), sums[1].sum(1)
    acc = _accumulator(per_sample.dtype)
    total_sum = per_sample.sum(2, dtype=acc).double().sum(1)
    total_sq = torch.linalg.vector_norm(per_sample, 2, dim=2, dtype=acc).double().square().sum(1)
    return total_sum, total_sq


def time_major_batch(images: torch.Tensor) -> torch.Tensor:
    """Images [B, C, H, W] pass through; event frames [B, T, C, H, W] become [T, B, C, H, W]."""
    return images.transpose(0, 1) if images.dim() == 5 else images


@torch.inference_mode()
def record(model: SpikingNet, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0,
           batch_size: int | None = None, bins: int = HIST_BINS, hist_subsample: int = HIST_SUBSAMPLE,
           precision: str | None = None, channel_maps: Collection[str] = (),
           progress: Callable[[float, str], None] | None = None) -> Recording:
    """One evaluation pass over `images` (normalised [N, C, H, W], or event frames [N, T, C, H, W]).

    The model runs in eval mode on the images' device; `labels` is int64 [N]. Returns a Recording.
    channel_maps: "input" and/or hidden layer names whose per-channel totals to keep (LayerRecord.channel_map,
    Recording.input_channel_map); the default, none, costs nothing.
    """
    if not isinstance(model, SpikingNet):
        raise ValueError(f"record() needs a spiking model; got {type(model).__name__} (an ANN has no steps "
                         f"or spikes: use bntt_core.analysis.robustness.evaluate_accuracy)")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    if images.shape[0] == 0:
        raise ValueError("record() needs at least one image")
    device = images.device
    steps = model.num_steps
    batch_size = int(batch_size or default_batch_size(steps, model))
    generator = torch.Generator(device=device).manual_seed(int(seed))
    recorder = _Recorder(steps, bins, hist_subsample, channel_maps)
    predictions, confidence = [], []
    input_map, input_by_step = None, torch.zeros(steps, dtype=torch.float64, device=device)
    input_nonzero, input_channels, input_binary = None, None, True
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    n = images.shape[0]
    try:
        for begin in range(0, n, batch_size):
            batch = time_major_batch(images[begin:begin + batch_size])
            with autocast(device, precision):
                encoded = model.encode(batch, generator=generator)  # [T, B, ...]: same draws as model(batch)
                running = model(encoded, per_step=True, monitor=recorder).float()  # [T, B, classes]
            events = encoded.abs()
            acc = _accumulator(events.dtype)
            if events.dim() == 5:  # [T, B, C, H, W] → [T, H, W]
                per_position = events.sum(dim=(1, 2), dtype=acc).double()
                input_by_step[:per_position.shape[0]] += per_position.sum(dim=(1, 2))
                total = per_position.sum(0)
            else:  # [T, B, F]
                per_step = events.reshape(events.shape[0], -1).sum(1, dtype=acc).double()
                input_by_step[:per_step.shape[0]] += per_step
                total = per_step.sum()
            input_map = total if input_map is None else input_map + total
            # non-zero input values (NeuroBench's effective operations) and its binary test, |s| ∈ {0, 1}
            nonzero = events != 0  # [T, B, ...]
            input_binary = input_binary and torch.equal(nonzero, events == 1)
            count = nonzero.sum(dim=(0, 1, 2), dtype=torch.float64) if events.dim() == 5 \
                else nonzero.sum(dtype=torch.float64)  # [H, W] or []
            input_nonzero = count if input_nonzero is None else input_nonzero + count
            if "input" in recorder.channel_maps:
                per_channel = nonzero.sum(dim=(0, 1), dtype=torch.float64)  # [C, H, W] or [F]
                input_channels = per_channel if input_channels is None else input_channels + per_channel
            probs = torch.softmax(running, dim=-1)
            conf, pred = probs.max(dim=-1)  # [T, B] each
            predictions.append(pred)
            confidence.append(conf)
            if progress is not None:
                progress(min(n, begin + batch_size) / n, "recording pass")
    finally:
        model.train(was_training)
    return Recording(num_steps=steps, num_samples=n, seed=int(seed), batch_size=batch_size,
                     labels=labels.to(device).long(), predictions=torch.cat(predictions, 1),
                     confidence=torch.cat(confidence, 1), layers=recorder.layers, input_map=input_map,
                     input_by_step=input_by_step, encoding=model.spec.encoding,
                     seconds=time.perf_counter() - start, input_nonzero_map=input_nonzero,
                     input_binary=bool(input_binary), input_channel_map=input_channels)
