"""Normalisation layers for time-major SNN currents [T, B, C] or [T, B, C, H, W].

    BNTT       Batch Normalization Through Time (the paper, §3.2): for every step t its own batch
               statistics, its own running mean/var and its own γ_t (per channel); no β.
               y_t = γ_t · (x_t − μ_t) / sqrt(σ²_t + ε)
    SharedBN   "Baseline + standard BN": ONE BatchNorm shared by all steps; statistics over T·B(·H·W)
               jointly, one running mean/var and one γ per channel; no β.
    TimeLN     LayerNorm (Table 5): per sample and per step over (C, H, W), one γ per channel; no β.

β is left out everywhere because it would add a constant voltage to every membrane at every step
(paper §3.2); this keeps the norm ablation a comparison of statistics, not of biases.

BNTT is ONE batched `F.batch_norm` call: the T steps are laid side by side as T·C channels, so each
(t, c) pair gets exactly the statistics, the running-stat update and the γ gradient of a separate
`nn.BatchNorm` module, without a Python loop over steps.

    norm = BNTT(num_features=64, num_steps=25)
    y = norm(x)   # x [T, B, 64, H, W], T ≤ 25  →  y [T, B, 64, H, W]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bntt_core import _cpu_kernels

NORMS = ("bntt", "bn", "ln", "none")


def _check_time_major(x: torch.Tensor, num_features: int, who: str) -> None:
    if x.dim() not in (3, 5):
        raise ValueError(
            f"{who} expects time-major input [T, B, C] or [T, B, C, H, W]; got shape {tuple(x.shape)}"
        )
    if x.shape[2] != num_features:
        raise ValueError(f"{who} was built for {num_features} channels; input has {x.shape[2]} (shape {tuple(x.shape)})")


class BNTT(nn.Module):
    """Batch Normalization Through Time: separate statistics, running stats and γ for every step."""

    def __init__(self, num_features: int, num_steps: int, eps: float = 1e-4, momentum: float = 0.1):
        super().__init__()
        if num_features < 1 or num_steps < 1:
            raise ValueError(f"BNTT needs num_features ≥ 1 and num_steps ≥ 1; got {num_features}, {num_steps}")
        self.num_features = num_features
        self.num_steps = num_steps
        self.eps = eps  # 1e-4 as in the official code
        self.momentum = momentum  # PyTorch convention: new = (1 − m)·old + m·batch
        self.weight = nn.Parameter(torch.ones(num_steps, num_features))  # γ_t, initialised to 1
        self.register_buffer("running_mean", torch.zeros(num_steps, num_features))
        self.register_buffer("running_var", torch.ones(num_steps, num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_major(x, self.num_features, "BNTT")
        steps, batch = x.shape[0], x.shape[1]
        if steps > self.num_steps:
            raise ValueError(f"BNTT has statistics for {self.num_steps} steps; input has T = {steps}")
        # [T, B, C, *S] → [B, T·C, prod(S)]: step t's channel c becomes channel t·C + c
        side_by_side = x.transpose(0, 1).reshape(batch, steps * self.num_features, -1)
        y = F.batch_norm(
            side_by_side,
            self.running_mean[:steps].view(-1),  # contiguous views: the in-place update reaches the buffer
            self.running_var[:steps].view(-1),
            self.weight[:steps].reshape(-1),
            None,
            self.training,
            self.momentum,
            self.eps,
        )
        # [B, T·C, prod(S)] → [T, B, C, *S]
        return y.view(batch, steps, *x.shape[2:]).transpose(0, 1)

    def extra_repr(self) -> str:
        return f"{self.num_features}, num_steps={self.num_steps}, eps={self.eps}, momentum={self.momentum}"


class _BNTTIntoLIF(torch.autograd.Function):
    """BNTT followed by the LIF scan in two passes over the currents (statistics, then normalise-charge-fire),
    for the compiled CPU loops; the same values as `LIF()(BNTT()(x))` up to rounding.

    Why: the batched `F.batch_norm` needs its input copied into a [B, T·C, S] layout and its output read
    back through a transposed view, and it writes a normalised copy that the scan reads once. Here the
    statistics are fp64 sums over the tensor as it lies (NCHW or channels_last), the normalisation
    y = x·(γ·invstd) + (−μ·γ·invstd) happens inside the scan, and the backward is one reverse scan that
    also accumulates Σg and Σg·x per (t, c), then one pass for ∂L/∂x. Saved for the backward: x (the
    synapse output, which the synapse's own backward does not keep), σ'(U) and, for a hard reset, the
    spikes — in the currents' dtype (bf16 under autocast).
    """

    @staticmethod
    def forward(ctx, x, weight, running_mean, running_var, training, momentum, eps, neuron, stats):
        steps, channels = x.shape[0], x.shape[2]
        count = x.numel() // (steps * channels)
        if training:
            sums = _cpu_kernels.channel_sums(x)  # fp64 [2, T, C]: Σx, Σx²
            mean = sums[0] / count
            var = (sums[1] / count - mean * mean).clamp_(min=0.0)  # biased: what normalises the batch
            with torch.no_grad():  # the running statistics of T separate nn.BatchNorm modules
                running_mean.mul_(1.0 - momentum).add_(mean.to(running_mean.dtype), alpha=momentum)
                running_var.mul_(1.0 - momentum).add_((var * (count / (count - 1))).to(running_var.dtype),
                                                      alpha=momentum)
        else:
            mean, var = running_mean.double(), running_var.double()
        invstd = torch.rsqrt(var + eps)
        scale = (weight.double() * invstd).float()
        shift = (-mean * scale.double()).float()
        hard = neuron.reset == "hard"
        spikes, slope, _ = _cpu_kernels.lif_forward(x, neuron.leak, neuron.threshold, hard, neuron.surrogate,
                                                    keep_membrane=False, scale=scale, shift=shift, stats=stats)
        ctx.save_for_backward(x, slope, spikes if hard else None)
        ctx.mean, ctx.invstd, ctx.scale, ctx.count = mean, invstd, scale, count
        ctx.training, ctx.leak, ctx.hard, ctx.weight_dtype = training, neuron.leak, hard, weight.dtype
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        x, slope, spikes = ctx.saved_tensors
        # ∂L/∂y in x's dtype: under bf16 autocast the pass between the two backward loops moves half the
        # bytes; Σg and Σg·x are still accumulated from the fp32 values, so only the final ∂L/∂x (itself
        # bf16) sees the rounding
        grad_y, sums = _cpu_kernels.lif_backward(grad_spikes, slope, spikes, ctx.leak, ctx.hard,
                                                 out_dtype=x.dtype, x=x)
        grad_sum, grad_dot_x = sums[0], sums[1]  # Σg, Σg·x per (t, c), fp64
        grad_dot_xhat = ctx.invstd * (grad_dot_x - ctx.mean * grad_sum)  # Σg·x̂ = ∂L/∂γ
        grad_x = None
        if ctx.needs_input_grad[0]:
            scale = ctx.scale.double()
            if ctx.training:  # ∂x̂/∂x includes the batch statistics: g_x = scale·g + a·x + b
                a = -scale * ctx.invstd * grad_dot_xhat / ctx.count
                b = -scale * grad_sum / ctx.count - ctx.mean * a
            else:
                a = b = torch.zeros_like(scale)
            grad_x = _cpu_kernels.bn_grad_input(grad_y, x, ctx.scale, a, b)
        grad_weight = grad_dot_xhat.to(ctx.weight_dtype) if ctx.needs_input_grad[1] else None
        return grad_x, grad_weight, None, None, None, None, None, None, None


def bntt_into_lif_applies(norm: nn.Module, neuron: nn.Module, x: torch.Tensor) -> bool:
    """Whether `_BNTTIntoLIF` can run `neuron(norm(x))` here (see `bntt_into_lif`)."""
    from bntt_core.neurons import LIF, compiled_scan_applies

    return (type(norm) is BNTT and type(neuron) is LIF and x.dim() in (3, 5) and x.shape[2] == norm.num_features
            and x.shape[0] <= norm.num_steps and x.shape[0] >= 1
            and (not norm.training or x.numel() // (x.shape[0] * x.shape[2]) > 1)  # else: F.batch_norm's error
            and norm.weight.dtype == torch.float32 and compiled_scan_applies(x, neuron.surrogate))


def bntt_into_lif(norm: BNTT, neuron: nn.Module, x: torch.Tensor, stats: dict | None = None) -> torch.Tensor:
    """Spikes of `neuron(norm(x))` through the compiled CPU loops (check `bntt_into_lif_applies` first).
    With a `stats` dict, the same pass also fills in what recording needs (`_cpu_kernels.lif_forward`)."""
    steps = x.shape[0]
    return _BNTTIntoLIF.apply(x, norm.weight[:steps], norm.running_mean[:steps], norm.running_var[:steps],
                              norm.training, norm.momentum, norm.eps, neuron, stats)


class SharedBN(nn.Module):
    """One BatchNorm for all steps (the paper's 'standard BN' baseline): stats over T·B jointly."""

    def __init__(self, num_features: int, eps: float = 1e-4, momentum: float = 0.1):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_major(x, self.num_features, "SharedBN")
        y = F.batch_norm(x.flatten(0, 1), self.running_mean, self.running_var, self.weight, None,
                         self.training, self.momentum, self.eps)  # [T·B, C, *S]
        return y.view(x.shape)


class TimeLN(nn.Module):
    """Layer normalisation of every sample at every step over (C, H, W); γ per channel, no β."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_major(x, self.num_features, "TimeLN")
        y = F.group_norm(x.flatten(0, 1), 1, self.weight, None, self.eps)  # one group = all of (C, H, W)
        return y.view(x.shape)


class NoNorm(nn.Identity):
    """The surrogate-gradient baseline: currents go straight into the membrane."""


def make_norm(kind: str, num_features: int, num_steps: int) -> nn.Module:
    """The normalisation named by `kind` (one of NORMS) for a layer with `num_features` channels."""
    if kind == "bntt":
        return BNTT(num_features, num_steps)
    if kind == "bn":
        return SharedBN(num_features)
    if kind == "ln":
        return TimeLN(num_features)
    if kind == "none":
        return NoNorm()
    raise ValueError(f"unknown norm {kind!r}; choose one of {list(NORMS)}")
