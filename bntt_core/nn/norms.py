"""Normalisation layers for time-major SNN currents [T, B, C] or [T, B, C, H, W].

    norm=       class      what it is
    "bntt"      BNTT       Batch Normalization Through Time (the paper, §3.2): for every step t its own
                           batch statistics, its own running mean/var and its own γ_t (per channel).
                           y_t = γ_t · (x_t − μ_t) / sqrt(σ²_t + ε)
    "bn"        StepBN     the paper's "Baseline + standard BN" (Fig 3, §3.2): ONE BatchNorm called at
                           every step, as a per-step time loop calls it. Training: step t normalised
                           with its own batch statistics; the one running mean/var updated at every
                           step in step order; one γ. Inference: the one stored mean/var for every t.
    "bn-joint"  SharedBN   one BatchNorm over all steps at once: statistics over T·B(·H·W) jointly in
                           training, one running mean/var and one γ (not in the paper; what "bn" meant
                           in run format bntt-run/1).
    "tdbn"      TdBN       threshold-dependent BN (Zheng et al. 2021): joint statistics as "bn-joint",
                           normalised to α·θ: y = α·θ·γ·(x − μ)/sqrt(σ² + ε).
    "tebn"      TEBN       temporal effective BN (Duan et al. 2022): joint statistics as "bn-joint",
                           then a learnable scale per step: y_t = p_t · γ·(x_t − μ)/sqrt(σ² + ε).
    "ln"        TimeLN     LayerNorm (Table 5): per sample and per step over (C, H, W), one γ per channel.
    "none"      NoNorm     the surrogate-gradient baseline: no normalisation.

β is left out everywhere because it would add a constant voltage to every membrane at every step
(paper §3.2); this keeps the norm ablation a comparison of statistics, not of biases.

BNTT is ONE batched `F.batch_norm` call: the T steps are laid side by side as T·C channels, so each
(t, c) pair gets exactly the statistics, the running-stat update and the γ gradient of a separate
`nn.BatchNorm` module, without a Python loop over steps. StepBN uses the same layout for its per-step
batch statistics (with one γ repeated over the steps) and then applies the T sequential running-stat
updates in closed form.

    norm = BNTT(num_features=64, num_steps=25)
    y = norm(x)   # x [T, B, 64, H, W], T ≤ 25  →  y [T, B, 64, H, W]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bntt_core.nn.kernels import cpu as _cpu_kernels

NORMS = ("bntt", "bn", "bn-joint", "tdbn", "tebn", "ln", "none")


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
    for the compiled CPU loops; the same values as `LIF()(BNTT()(x))` up to rounding. The paper's standard BN
    (StepBN) runs through it too, as BNTT with γ_t = γ (`bntt_into_lif`).

    Why: the batched `F.batch_norm` needs its input copied into a [B, T·C, S] layout and its output read
    back through a transposed view, and it writes a normalised copy that the scan reads once. Here the
    statistics are fp64 sums over the tensor as it lies (NCHW or channels_last), the normalisation
    y = x·(γ·invstd) + (−μ·γ·invstd) happens inside the scan, and the backward is one reverse scan that
    also accumulates Σg and Σg·x per (t, c), then one pass for ∂L/∂x. Saved for the backward: only x (the
    synapse output, which the synapse's own backward does not keep), in the currents' dtype; σ'(U) (and, for
    a hard reset, the spikes) are recomputed from it by the same forward loop, with the same scale and
    shift, so they are bit for bit what the forward had. Why: keeping σ'(U) was a third of the step's saved
    memory; one more forward scan costs a few per cent of a step (benchmarks/README.md).
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
        spikes, _, _ = _cpu_kernels.lif_forward(x, neuron.leak, neuron.threshold, hard, neuron.surrogate,
                                                keep_membrane=False, scale=scale, shift=shift, stats=stats)
        ctx.save_for_backward(x)
        ctx.mean, ctx.invstd, ctx.scale, ctx.shift, ctx.count = mean, invstd, scale, shift, count
        ctx.training, ctx.hard, ctx.weight_dtype = training, hard, weight.dtype
        ctx.neuron = (neuron.leak, neuron.threshold, neuron.surrogate)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        (x,) = ctx.saved_tensors
        leak, threshold, surrogate = ctx.neuron
        spikes, slope, _ = _cpu_kernels.lif_forward(x, leak, threshold, ctx.hard, surrogate, keep_membrane=False,
                                                    scale=ctx.scale, shift=ctx.shift)  # as in the forward
        # buffers reused, so the backward holds two layer-sized temporaries instead of four: a soft reset does
        # not need the spikes, whose buffer takes ∂L/∂y; σ'(U), read only by lif_backward, then takes ∂L/∂x
        grad_y_out = None if ctx.hard else spikes
        spikes = spikes if ctx.hard else None
        # ∂L/∂y in x's dtype: under bf16 autocast the pass between the two backward loops moves half the
        # bytes; Σg and Σg·x are still accumulated from the fp32 values, so only the final ∂L/∂x (itself
        # bf16) sees the rounding
        grad_y, sums = _cpu_kernels.lif_backward(grad_spikes, slope, spikes, leak, ctx.hard,
                                                 out_dtype=x.dtype, x=x, out=grad_y_out)
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
            grad_x = _cpu_kernels.bn_grad_input(grad_y, x, ctx.scale, a, b, out=slope)  # σ'(U) is read
        grad_weight = grad_dot_xhat.to(ctx.weight_dtype) if ctx.needs_input_grad[1] else None
        return grad_x, grad_weight, None, None, None, None, None, None, None


def bntt_into_lif_applies(norm: nn.Module, neuron: nn.Module, x: torch.Tensor) -> bool:
    """Whether `_BNTTIntoLIF` can run `neuron(norm(x))` here (see `bntt_into_lif`): BNTT, or the paper's
    standard BN (StepBN: per-step batch statistics too, one γ and one stored mean/var)."""
    from bntt_core.nn.neurons import LIF, compiled_scan_applies

    return (type(norm) in (BNTT, StepBN) and type(neuron) is LIF and x.dim() in (3, 5)
            and x.shape[2] == norm.num_features and x.shape[0] >= 1
            and (type(norm) is StepBN or x.shape[0] <= norm.num_steps)
            and (not norm.training or x.numel() // (x.shape[0] * x.shape[2]) > 1)  # else: F.batch_norm's error
            and norm.weight.dtype == torch.float32 and compiled_scan_applies(x, neuron.surrogate))


def bntt_into_lif(norm: BNTT | StepBN, neuron: nn.Module, x: torch.Tensor,
                  stats: dict | None = None) -> torch.Tensor:
    """Spikes of `neuron(norm(x))` through the compiled CPU loops (check `bntt_into_lif_applies` first).
    With a `stats` dict, the same pass also fills in what recording needs (`_cpu_kernels.lif_forward`)."""
    steps = x.shape[0]
    if type(norm) is StepBN:
        # StepBN is BNTT with γ_t = γ for every t (the expand sums γ's gradient over the steps); in
        # training the loops normalise by each step's batch statistics, which momentum-1 buffers receive
        # and StepBN folds into its one running mean/var; at inference the one stored mean/var serve every t
        weight = norm.weight.expand(steps, norm.num_features)
        if not norm.training:
            return _BNTTIntoLIF.apply(x, weight, norm.running_mean.expand_as(weight),
                                      norm.running_var.expand_as(weight), False, norm.momentum, norm.eps, neuron,
                                      stats)
        step_mean, step_var = norm._step_buffers(steps, x.device)
        spikes = _BNTTIntoLIF.apply(x, weight, step_mean, step_var, True, 1.0, norm.eps, neuron, stats)
        norm._absorb_step_statistics(step_mean, step_var)
        return spikes
    return _BNTTIntoLIF.apply(x, norm.weight[:steps], norm.running_mean[:steps], norm.running_var[:steps],
                              norm.training, norm.momentum, norm.eps, neuron, stats)


class _OneStatisticBN(nn.Module):
    """What the single-statistics BatchNorms share: one γ, one running mean/var per channel, no β."""

    def __init__(self, num_features: int, eps: float = 1e-4, momentum: float = 0.1):
        super().__init__()
        if num_features < 1:
            raise ValueError(f"{type(self).__name__} needs num_features ≥ 1; got {num_features}")
        self.num_features = num_features
        self.eps = eps  # 1e-4 as in the official code
        self.momentum = momentum  # PyTorch convention: new = (1 − m)·old + m·batch
        self.weight = nn.Parameter(torch.ones(num_features))  # γ, initialised to 1
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _joint(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """x̂·weight with statistics over T·B(·H·W) jointly (training) or the running ones (eval)."""
        y = F.batch_norm(x.flatten(0, 1), self.running_mean, self.running_var, weight, None,
                         self.training, self.momentum, self.eps)  # [T·B, C, *S]
        return y.view(x.shape)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class StepBN(_OneStatisticBN):
    """The paper's standard BN (Fig 3, §3.2): ONE BatchNorm applied at every step of the time loop.

    Exactly what calling one `nn.BatchNorm{1,2}d(C, eps=1e-4, momentum=0.1)` (γ only, no β) on the
    currents of step t = 0, 1, …, T−1 in turn computes:
      training   y_t = γ · (x_t − μ_t) / sqrt(σ²_t + ε), μ_t, σ²_t the batch statistics of step t alone
                 (over B, or B·H·W; biased σ² for the normalisation); the one running mean/var is updated
                 at every step in step order, r ← (1 − m)·r + m·v_t (unbiased v_t for the variance);
                 the γ gradient is the sum over the steps;
      inference  y_t = γ · (x_t − r_mean) / sqrt(r_var + ε) at every t: the one stored mean/var, although
                 the input's mean changes with t (the mismatch BNTT removes; paper Fig 3B).

    One `F.batch_norm` over the [B, T·C, S] layout (as BNTT, with γ repeated T times) gives every step
    its own statistics; the T sequential running-stat updates are applied afterwards in closed form,
    r_T = (1 − m)^T·r_0 + Σ_t m·(1 − m)^(T−1−t)·v_t (in float64), the same up to rounding.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_major(x, self.num_features, "StepBN")
        if not self.training:  # the stored statistics serve every step: one call over [T·B, C, *S]
            return self._joint(x, self.weight)
        steps, batch, channels = x.shape[0], x.shape[1], self.num_features
        side_by_side = x.transpose(0, 1).reshape(batch, steps * channels, -1)  # step t's channel c → t·C + c
        step_mean, step_var = self._step_buffers(steps, x.device)
        y = F.batch_norm(side_by_side, step_mean.view(-1), step_var.view(-1), self.weight.repeat(steps), None, True,
                         1.0, self.eps)
        self._absorb_step_statistics(step_mean, step_var)
        return y.view(batch, steps, *x.shape[2:]).transpose(0, 1)

    def _step_buffers(self, steps: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """[T, C] buffers that a batch norm with momentum 1 fills with exactly step t's batch mean and
        unbiased variance."""
        shape = (steps, self.num_features)
        return (torch.zeros(shape, dtype=self.running_mean.dtype, device=device),
                torch.ones(shape, dtype=self.running_var.dtype, device=device))

    @torch.no_grad()
    def _absorb_step_statistics(self, step_mean: torch.Tensor, step_var: torch.Tensor) -> None:
        """The T sequential running-stat updates of steps 0 … T−1, in closed form (float64)."""
        steps, momentum = step_mean.shape[0], float(self.momentum)
        powers = torch.arange(steps - 1, -1, -1, dtype=torch.float64, device=step_mean.device)  # T−1 … 0
        weights = momentum * (1.0 - momentum) ** powers  # [T]: how much step t's statistics count
        keep = (1.0 - momentum) ** steps  # what is left of the old running value
        for running, batch_stat in ((self.running_mean, step_mean), (self.running_var, step_var)):
            running.copy_(keep * running.double() + weights @ batch_stat.double())


class SharedBN(_OneStatisticBN):
    """norm="bn-joint": one BatchNorm for all steps at once, statistics over T·B(·H·W) jointly in
    training, one running mean/var and one γ; inference as StepBN. Not the paper's standard BN (that is
    StepBN, whose training statistics are per step); runs of format bntt-run/1 called this "bn"."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_major(x, self.num_features, "SharedBN")
        return self._joint(x, self.weight)


class TdBN(_OneStatisticBN):
    """Threshold-dependent BN (Zheng et al. 2021, "Going deeper with directly-trained larger SNNs"):
    statistics over T·B(·H·W) jointly as SharedBN, normalised to α·θ (θ the threshold of the LIF it
    feeds):  y = α·θ · γ · (x − μ) / sqrt(σ² + ε),  γ (the paper's λ) initialised to 1.

    The original has a β (y = λ·α·θ·x̂ + β); it is left out here like everywhere in this package (a β
    would add a constant voltage at every step). α = 1 is the paper's value except in some residual
    branches (1/√2); these networks have none. (SpikingJelly folds α·θ into γ's initial value instead;
    same forward at initialisation, but its γ gradient is α·θ times smaller than λ's here.)
    """

    def __init__(self, num_features: int, threshold: float = 1.0, alpha: float = 1.0, eps: float = 1e-4,
                 momentum: float = 0.1):
        super().__init__(num_features, eps, momentum)
        if not float(threshold) > 0.0 or not float(alpha) > 0.0:
            raise ValueError(f"TdBN needs threshold > 0 and alpha > 0; got {threshold}, {alpha}")
        self.threshold = float(threshold)
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_major(x, self.num_features, "TdBN")
        return self._joint(x, self.weight * (self.alpha * self.threshold))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, threshold={self.threshold}, alpha={self.alpha}"


class TEBN(_OneStatisticBN):
    """Temporal effective BN (Duan et al. 2022): statistics over T·B(·H·W) jointly as SharedBN (one
    running mean/var, one γ per channel), then a learnable scale per step, initialised to 1:
        y_t = p_t · γ · (x_t − μ) / sqrt(σ² + ε)
    p_t is one scalar per step, shared by all channels, as in the authors' code (`p` of shape
    [T, 1, 1, 1, 1]) and SpikingJelly's TemporalEffectiveBatchNorm (`scale` of shape [T]); their β is
    left out here (see the module docstring). The input may have fewer steps than `num_steps`.
    """

    def __init__(self, num_features: int, num_steps: int, eps: float = 1e-4, momentum: float = 0.1):
        super().__init__(num_features, eps, momentum)
        if num_steps < 1:
            raise ValueError(f"TEBN needs num_steps ≥ 1; got {num_steps}")
        self.num_steps = num_steps
        self.step_scale = nn.Parameter(torch.ones(num_steps))  # p_t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_time_major(x, self.num_features, "TEBN")
        steps = x.shape[0]
        if steps > self.num_steps:
            raise ValueError(f"TEBN has a scale for {self.num_steps} steps; input has T = {steps}")
        scale = self.step_scale[:steps].view(steps, *([1] * (x.dim() - 1)))
        return self._joint(x, self.weight) * scale

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_steps={self.num_steps}"


ONE_STATISTIC_NORMS = (StepBN, SharedBN, TdBN, TEBN)
"""The norms with ONE running mean/var per channel for all steps (what Fig 3B compares with the input)."""


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


def make_norm(kind: str, num_features: int, num_steps: int, threshold: float = 1.0) -> nn.Module:
    """The normalisation named by `kind` (one of NORMS) for a layer with `num_features` channels that
    feeds LIF neurons with threshold `threshold` (used by tdbn)."""
    if kind == "bntt":
        return BNTT(num_features, num_steps)
    if kind == "bn":
        return StepBN(num_features)
    if kind == "bn-joint":
        return SharedBN(num_features)
    if kind == "tdbn":
        return TdBN(num_features, threshold=threshold)
    if kind == "tebn":
        return TEBN(num_features, num_steps)
    if kind == "ln":
        return TimeLN(num_features)
    if kind == "none":
        return NoNorm()
    raise ValueError(f"unknown norm {kind!r}; choose one of {list(NORMS)}")
