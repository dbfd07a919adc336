"""The paper's networks as spiking (BNTT / BN / LN / no norm, bntt_core.nn.norms.NORMS) models and their ANN twins.

Every hidden layer is  synapse (conv 3×3 pad 1 or linear, no bias) → norm → LIF → [AvgPool2d(2)].
The output layer has no threshold, no norm and no leak: out = (1/T)·Σ_t W_out·s_t (SPEC).

Because the layers are feed-forward, a whole layer runs for all T steps at once: the synapse sees
T·B images in one call (the dense floor), the norm is one batched op, and only the LIF membrane is
a scan over time. This computes exactly what the per-step loop of the official code computes.

    model = build_model("vgg9", num_classes=10, in_channels=3, image_size=32, num_steps=25)
    logits = model(images)                      # [B, 3, 32, 32] → [B, 10]
    running = model(images, per_step=True)      # [T, B, 10]: output accumulated up to step t, ÷ t
    early = model(images, num_steps=20)         # early exit: only the first 20 steps run

Architectures (channels; P = AvgPool2d(2) after that layer's spikes; SPEC "Architectures"):
    vgg5   64P 128 128P | FC 1024           vgg9  64 64P 128 128P 256 256 256P | FC 1024
    vgg11  64P 128P 256 256P 512 512P 512 512 → adaptive avg-pool 1×1 | FC 4096
    mlp    FC 800 on the flattened image    seqfc FC 256, FC 256; one pixel per step (T = H·W)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bntt_core.nn.encoding import ENCODINGS, encode
from bntt_core.nn.neurons import LIF, RESETS, check_leak_threshold
from bntt_core.nn.norms import NORMS, bntt_into_lif, bntt_into_lif_applies, make_norm
from bntt_core.nn.surrogate import get_surrogate

# (kind, channels or units, pooling after the layer: None | "avg" | "adaptive")
_C, _F = "conv", "fc"
ARCHS: dict[str, tuple[tuple[str, int, str | None], ...]] = {
    "vgg5": ((_C, 64, "avg"), (_C, 128, None), (_C, 128, "avg"), (_F, 1024, None)),
    "vgg9": ((_C, 64, None), (_C, 64, "avg"), (_C, 128, None), (_C, 128, "avg"), (_C, 256, None),
             (_C, 256, None), (_C, 256, "avg"), (_F, 1024, None)),
    "vgg11": ((_C, 64, "avg"), (_C, 128, "avg"), (_C, 256, None), (_C, 256, "avg"), (_C, 512, None),
              (_C, 512, "avg"), (_C, 512, None), (_C, 512, "adaptive"), (_F, 4096, None)),
    "mlp": ((_F, 800, None),),
    "seqfc": ((_F, 256, None), (_F, 256, None)),
}

Monitor = Callable[[str, dict], None]
"""Called once per hidden layer with {"input": pre-norm current [T, B, ...], "spikes": [T, B, ...],
"membrane": [T, B, ...] or None}. A monitor with attribute `wants_membrane = True` gets the membrane; one
with `wants_fused_stats = True` also gets, where the fused BNTT→LIF loop ran, "input_sums" fp64 [2, T]
(Σx, Σx² of the current per step) and "spike_counts" fp64 [T] or [T, H, W], read in that same pass."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model; stored in every run's config.json."""

    arch: str
    num_classes: int
    in_channels: int
    image_size: int
    num_steps: int
    leak: float = 0.95  # 0.95 for CIFAR-10, 0.99 for CIFAR-100 / Tiny-ImageNet (SPEC)
    threshold: float = 1.0
    norm: str = "bntt"
    encoding: str = "poisson"
    spiking: bool = True  # False: the ANN twin (ReLU + standard BN) for baselines and conversion
    reset: str = "soft"  # the paper's soft reset keeps the residue (§3.1)
    surrogate: str = "triangle"
    width: float = 1.0  # channel multiplier: 1.0 is the paper's network; <1 for CPU presets
    bias: bool = False  # the paper's layers have none; ANN→SNN conversion folds BN into a bias
    poisson_rescale: float = 2.0  # P(spike) = min(|x| / rescale, 1)

    def validate(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {sorted(ARCHS)}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; choose one of {list(NORMS)}")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; choose one of {list(ENCODINGS)}")
        if self.reset not in RESETS:
            raise ValueError(f"unknown reset {self.reset!r}; choose one of {list(RESETS)}")
        get_surrogate(self.surrogate)
        check_leak_threshold(self.leak, self.threshold)
        for name in ("num_classes", "in_channels", "image_size", "num_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1; got {getattr(self, name)}")
        if self.width <= 0:
            raise ValueError(f"width must be > 0; got {self.width}")
        pools = sum(1 for kind, _, pool in ARCHS[self.arch] if pool == "avg")
        if self.image_size % (2 ** pools):
            raise ValueError(f"{self.arch} halves the image {pools} times; image_size {self.image_size} "
                             f"must be a multiple of {2 ** pools}")
        if self.arch == "seqfc" and self.num_steps != self.image_size ** 2:
            raise ValueError(f"seqfc shows one pixel per step: num_steps must be image_size² = "
                             f"{self.image_size ** 2}; got {self.num_steps}")
        if self.arch == "seqfc" and not self.spiking:
            raise ValueError("seqfc has no ANN twin: a feed-forward ANN cannot read one pixel per step")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown model settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


def _layer_plan(spec: ModelSpec) -> tuple[list[tuple[str, str, int, int, str | None]], int]:
    """(name, kind, in_features, out_features, pool) per hidden layer, and the classifier's input."""
    plan, size = [], spec.image_size
    channels = spec.in_channels if spec.arch != "mlp" else spec.in_channels * spec.image_size ** 2
    conv_index = fc_index = 0
    previous_kind = "conv" if spec.arch not in ("mlp", "seqfc") else "fc"
    for kind, units, pool in ARCHS[spec.arch]:
        out = max(1, round(units * spec.width))
        if kind == _F and previous_kind == _C:
            channels = channels * size * size  # flatten [C, H, W] → C·H·W
        if kind == _C:
            conv_index += 1
            name = f"conv{conv_index}"
        else:
            fc_index += 1
            name = f"fc{fc_index}"
        plan.append((name, kind, channels, out, pool))
        channels, previous_kind = out, kind
        size = size // 2 if pool == "avg" else 1 if pool == "adaptive" else size
    return plan, channels


def neurons_per_image(spec: ModelSpec) -> int:
    """Hidden neurons of one image at one step (the size of every layer's spike map, summed): what an
    evaluation holds per (step, image), used to size batches."""
    plan, _ = _layer_plan(spec)
    total, size = 0, spec.image_size
    for _, kind, _, out, pool in plan:
        total += out * (size * size if kind == _C else 1)
        size = size // 2 if pool == "avg" else 1 if pool == "adaptive" else size
    return total


def _make_pool(pool: str | None) -> nn.Module | None:
    if pool == "avg":
        return nn.AvgPool2d(2)
    if pool == "adaptive":
        return nn.AdaptiveAvgPool2d(1)
    return None


def _init_weights(module: nn.Module) -> None:
    """xavier_uniform with gain 2 on every conv and linear weight (official code); biases to 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, gain=2.0)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _synapse(kind: str, n_in: int, n_out: int, bias: bool) -> nn.Module:
    if kind == _C:
        return nn.Conv2d(n_in, n_out, kernel_size=3, stride=1, padding=1, bias=bias)
    return nn.Linear(n_in, n_out, bias=bias)


class SpikingLayer(nn.Module):
    """synapse → norm → LIF → optional pool, on a whole time-major sequence at once."""

    def __init__(self, name: str, kind: str, synapse: nn.Module, norm: nn.Module, neuron: LIF,
                 pool: nn.Module | None):
        super().__init__()
        self.name, self.kind = name, kind
        self.synapse, self.norm, self.neuron, self.pool = synapse, norm, neuron, pool

    def forward(self, x: torch.Tensor, monitor: Monitor | None = None) -> torch.Tensor:
        steps, batch = x.shape[0], x.shape[1]
        current = self.synapse(x.flatten(0, 1)).unflatten(0, (steps, batch))  # [T·B, ...] → [T, B, C', ...]
        wants_membrane = monitor is not None and getattr(monitor, "wants_membrane", False)
        stats = None
        if not wants_membrane and bntt_into_lif_applies(self.norm, self.neuron, current):
            # a recording monitor gets its per-step sums and spike counts from the same pass
            stats = {} if monitor is not None and getattr(monitor, "wants_fused_stats", False) else None
            spikes = bntt_into_lif(self.norm, self.neuron, current, stats)  # the same values in two passes (norms.py)
            membrane = None
        else:
            normed = self.norm(current)
            if wants_membrane:
                spikes, membrane = self.neuron(normed, return_membrane=True)
            else:
                spikes, membrane = self.neuron(normed), None
        if monitor is not None:  # recording rides on the fast path unless it needs the membrane trace
            monitor(self.name, {"input": current, "spikes": spikes, "membrane": membrane, **(stats or {})})
        if self.pool is not None:
            spikes = _pool_keeping_nothing(self.pool, spikes.flatten(0, 1)).unflatten(0, (steps, batch))  # [T, B, C', H/2, W/2]
        return spikes


class _AvgPool2dSavingNothing(torch.autograd.Function):
    """F.avg_pool2d whose backward needs only the input's shape: autograd's own avg_pool2d keeps the whole
    input (here the layer's spike map, the largest tensor of the layer) alive until the backward."""

    @staticmethod
    def forward(ctx, x, kernel_size):
        ctx.kernel_size = kernel_size
        ctx.shape, ctx.dtype = x.shape, x.dtype
        ctx.channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
        return F.avg_pool2d(x, kernel_size)

    @staticmethod
    def backward(ctx, grad):
        layout = torch.channels_last if ctx.channels_last else torch.contiguous_format
        shape_only = torch.empty(ctx.shape, dtype=ctx.dtype, device=grad.device, memory_format=layout)  # never read
        return torch.ops.aten.avg_pool2d_backward(grad, shape_only, [ctx.kernel_size] * 2, [ctx.kernel_size] * 2,
                                                  [0, 0], False, True, None), None


def _pool_keeping_nothing(pool: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    if type(pool) is nn.AvgPool2d and pool.kernel_size == 2 and pool.stride == 2 and pool.padding == 0 \
            and not pool.ceil_mode and pool.count_include_pad and pool.divisor_override is None and x.dim() == 4:
        return _AvgPool2dSavingNothing.apply(x, 2)
    return pool(x)


class SpikingNet(nn.Module):
    """A BNTT-style SNN: encoder → spiking layers → non-spiking accumulating output layer."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        spec.validate()
        self.spec = spec
        plan, classifier_in = _layer_plan(spec)
        self.layers = nn.ModuleList(
            SpikingLayer(name, kind, _synapse(kind, n_in, n_out, spec.bias),
                         make_norm(spec.norm, n_out, spec.num_steps, spec.threshold),
                         LIF(spec.leak, spec.threshold, spec.reset, spec.surrogate), _make_pool(pool))
            for name, kind, n_in, n_out, pool in plan
        )
        self.classifier = nn.Linear(classifier_in, spec.num_classes, bias=spec.bias)
        _init_weights(self)

    @property
    def num_steps(self) -> int:
        return self.spec.num_steps

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def norm_layers(self) -> dict[str, nn.Module]:
        return {layer.name: layer.norm for layer in self.layers}

    def encode(self, x: torch.Tensor, num_steps: int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Images [B, C, H, W] → time-major input [T, B, ...]; already-encoded input passes through."""
        spec = self.spec
        steps = spec.num_steps if num_steps is None else int(num_steps)
        if not 1 <= steps <= spec.num_steps:
            raise ValueError(f"num_steps must be in [1, {spec.num_steps}] (the model was trained for "
                             f"{spec.num_steps} steps); got {num_steps}")
        if x.dim() == 4:
            _check_image(x, spec)
            if spec.arch == "seqfc":
                pixels = x.flatten(2).permute(2, 0, 1)[:steps]  # [B, C, H, W] → [H·W, B, C], raster order
                if spec.encoding == "poisson":
                    return encode(pixels, 1, "poisson", generator, spec.poisson_rescale)[0]
                return pixels
            return encode(x, steps, spec.encoding, generator, spec.poisson_rescale)
        image = (spec.in_channels, spec.image_size, spec.image_size)
        encoded_shapes = {"seqfc": [(spec.in_channels,)], "mlp": [image, (image[0] * image[1] * image[2],)]}
        allowed = encoded_shapes.get(spec.arch, [image])
        encoded_ranks = tuple(len(shape) + 2 for shape in allowed)
        if x.dim() in encoded_ranks and tuple(x.shape[2:]) in allowed:
            if x.shape[0] > spec.num_steps:
                raise ValueError(f"encoded input has T = {x.shape[0]} steps; the model has {spec.num_steps}")
            if num_steps is not None and steps > x.shape[0]:
                raise ValueError(f"num_steps {steps} exceeds the {x.shape[0]} encoded steps given")
            return x[:steps] if num_steps is not None else x
        encoded = " or ".join(f"[T, B, {', '.join(map(str, shape))}]" for shape in allowed)
        raise ValueError(f"{spec.arch} expects images [B, {spec.in_channels}, {spec.image_size}, "
                         f"{spec.image_size}] or encoded input {encoded}; got shape {tuple(x.shape)}")

    def forward(self, x: torch.Tensor, num_steps: int | None = None, *, per_step: bool = False,
                generator: torch.Generator | None = None, monitor: Monitor | None = None) -> torch.Tensor:
        h = self.encode(x, num_steps, generator)  # [T, B, ...]
        if h.dim() == 5 and _channels_last_pays(h):
            # oneDNN's convolutions are fastest on channels_last (fp32 and bf16); every layer keeps the format given
            h = h.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, h.shape[:2])
        for layer in self.layers:
            if layer.kind == _F and h.dim() > 3:
                h = h.flatten(2)  # [T, B, C, H, W] → [T, B, C·H·W]
            h = layer(h, monitor)
        if h.dim() > 3:
            h = h.flatten(2)
        steps, batch = h.shape[0], h.shape[1]
        out = _at_least_fp32(self.classifier(h.flatten(0, 1)).unflatten(0, (steps, batch)))  # [T, B, classes]
        count = torch.arange(1, steps + 1, device=out.device, dtype=out.dtype).view(-1, 1, 1)
        running = out.cumsum(0) / count  # [T, B, classes]: the output accumulated up to step t
        return running if per_step else running[-1]


class ANNNet(nn.Module):
    """The ANN twin: the same layers with standard BN (γ and β) and ReLU instead of norm + LIF."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        spec.validate()
        self.spec = spec
        plan, classifier_in = _layer_plan(spec)
        self.names = [name for name, *_ in plan]
        blocks = []
        for _name, kind, n_in, n_out, pool in plan:
            norm = nn.BatchNorm2d(n_out) if kind == _C else nn.BatchNorm1d(n_out)
            parts = [_synapse(kind, n_in, n_out, spec.bias), norm, nn.ReLU()]
            if pool is not None:
                parts.append(_make_pool(pool))
            if kind == _F:
                parts.insert(0, nn.Flatten())
            blocks.append(nn.Sequential(*parts))
        self.blocks = nn.ModuleList(blocks)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(classifier_in, spec.num_classes, bias=spec.bias))
        _init_weights(self)

    @property
    def num_steps(self) -> int:
        return 1

    @property
    def layer_names(self) -> list[str]:
        return list(self.names)

    def norm_layers(self) -> dict[str, nn.Module]:
        return {name: block[2 if isinstance(block[0], nn.Flatten) else 1] for name, block in zip(self.names, self.blocks, strict=True)}

    def forward(self, x: torch.Tensor, num_steps: int | None = None, *, per_step: bool = False,
                generator: torch.Generator | None = None, monitor: Monitor | None = None) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"the ANN twin expects images [B, C, H, W]; got shape {tuple(x.shape)}")
        _check_image(x, self.spec)
        h = x
        for block in self.blocks:
            h = block(h)
        logits = _at_least_fp32(self.classifier(h))  # [B, classes]
        return logits.unsqueeze(0) if per_step else logits  # per_step: one "step" [1, B, classes]


def _channels_last_pays(h: torch.Tensor) -> bool:
    """channels_last for the convolutions on a CPU, in bf16 autocast and in fp32: oneDNN's convolutions are
    faster on it in both, most of all on AVX2-only CPUs in fp32 (a VGG9 dense step 1.5x faster there;
    measured: benchmarks/README.md). fp64 (the exactness tests) stays NCHW."""
    if h.device.type != "cpu":
        return False
    if torch.is_autocast_enabled("cpu"):
        return torch.get_autocast_dtype("cpu") == torch.bfloat16
    return h.dtype == torch.float32


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Accumulate outputs in fp32 under bf16 autocast; leave fp32/fp64 models as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def _check_image(x: torch.Tensor, spec: ModelSpec) -> None:
    if x.shape[1] != spec.in_channels or x.shape[2] != spec.image_size or x.shape[3] != spec.image_size:
        raise ValueError(f"{spec.arch} was built for images [B, {spec.in_channels}, {spec.image_size}, "
                         f"{spec.image_size}]; got shape {tuple(x.shape)}")


def build_model(arch: str, *, num_classes: int, in_channels: int, image_size: int, num_steps: int,
                leak: float = 0.95, threshold: float = 1.0, norm: str = "bntt", encoding: str = "poisson",
                spiking: bool = True, **options) -> SpikingNet | ANNNet:
    """Build one of ARCHS as an SNN (spiking=True) or its ANN twin; `options` are other ModelSpec fields."""
    spec = ModelSpec.from_dict(dict(arch=arch, num_classes=num_classes, in_channels=in_channels,
                                    image_size=image_size, num_steps=num_steps, leak=leak, threshold=threshold,
                                    norm=norm, encoding=encoding, spiking=spiking, **options))
    return model_from_spec(spec)


def model_from_spec(spec: ModelSpec) -> SpikingNet | ANNNet:
    return SpikingNet(spec) if spec.spiking else ANNNet(spec)
