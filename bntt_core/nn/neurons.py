"""Leaky integrate-and-fire neurons over a whole time-major sequence: charge → fire → reset.

For every step t of a current I of shape [T, B, ...] (SPEC, paper Eq. 4):

    U ← λ·U + I_t            charge (U starts at 0 for every sample: no state survives a call)
    s_t = H(U − θ)           fire (strictly above threshold)
    U ← U − θ·s_t            soft reset (the paper), or U ← 0 where s_t = 1 (hard reset)

The reset term carries no gradient; ∂s/∂U is a surrogate (`bntt_core.nn.surrogate`). The scan over
T is a custom autograd function: the forward keeps only the surrogate slope per element (and the
spikes as bool for a hard reset) and the backward is the matching reverse scan

    g_U[t] = g_s[t]·σ'(U_t) + λ·(1 − s_t if hard else 1)·g_U[t+1],      g_I[t] = g_U[t]

so autograd never stores the T intermediate membrane tensors. The membrane is integrated in fp32 even
when the currents arrive in bf16 (autocast), since a bf16 membrane would drift over long sequences.
The scan runs as compiled C loops on a CPU (`_cpu_kernels`), as one Triton kernel per direction on a
CUDA GPU (`_gpu_kernels`), and as the eager loop below otherwise; all three give the same spikes.

Usage:
    lif = LIF(leak=0.95, threshold=1.0)
    spikes = lif(current)                                   # [T, B, ...] → [T, B, ...]
    spikes, membrane = lif(current, return_membrane=True)   # membrane: U after charge, before reset
"""

from __future__ import annotations

import torch
from torch import nn

from bntt_core.nn.kernels import cpu as _cpu_kernels
from bntt_core.nn.kernels import gpu as _gpu_kernels
from bntt_core.nn.surrogate import get_surrogate

RESETS = ("soft", "hard")


def check_leak_threshold(leak: float, threshold: float) -> None:
    """One clear error for a leak or threshold outside the model's domain."""
    if not 0.0 < float(leak) <= 1.0:
        raise ValueError(f"leak must be in (0, 1] (1.0 is a non-leaky IF neuron); got {leak}")
    if not float(threshold) > 0.0:
        raise ValueError(f"threshold must be > 0; got {threshold}")


def _state_dtype(dtype: torch.dtype) -> torch.dtype:
    """Membrane precision: fp32 at least (bf16/fp16 currents), fp64 when the currents are fp64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def compiled_scan_applies(current: torch.Tensor, surrogate_name: str, keep_membrane: bool = False) -> bool:
    """Whether the compiled CPU loops can run this scan (fp32/bf16 on a CPU, a layout they index).

    A bf16 scan asked for its membrane stays on the eager path, which returns the fp32 membrane."""
    if keep_membrane and current.dtype != torch.float32:
        return False
    return (_cpu_kernels.layout(current) is not None and _cpu_kernels.supports_surrogate(surrogate_name)
            and _cpu_kernels.available())


class _LIFScan(torch.autograd.Function):
    """Fused LIF forward/backward over all T steps (see the module docstring for the equations)."""

    @staticmethod
    def forward(ctx, current, leak, threshold, hard_reset, surrogate_name, keep_membrane):
        ctx.leak = leak
        ctx.hard_reset = hard_reset
        ctx.compiled = compiled_scan_applies(current, surrogate_name, keep_membrane)
        fused = None
        if not ctx.compiled and _gpu_kernels.applies(current, surrogate_name):
            # one Triton kernel over all T steps (bntt_core/nn/kernels/gpu.py); None if they cannot run here
            fused = _gpu_kernels.lif_forward(current, leak, threshold, hard_reset, surrogate_name, keep_membrane)
        ctx.on_gpu = fused is not None
        if ctx.on_gpu:
            spikes, slope, membrane_trace, ctx.current_strides = fused  # saved: what the eager scan saves
            ctx.save_for_backward(slope, spikes if hard_reset else None)
            if keep_membrane:
                ctx.mark_non_differentiable(membrane_trace)
                return spikes, membrane_trace
            return spikes, None
        if ctx.compiled:
            # one pass over memory (bntt_core/nn/kernels/cpu.py) saving what the eager scan saves: σ'(U) in the
            # currents' dtype, and the spikes (not a separate bool copy) for a hard reset
            spikes, slope, membrane_trace = _cpu_kernels.lif_forward(current, leak, threshold, hard_reset,
                                                                     surrogate_name, keep_membrane)
            ctx.save_for_backward(slope, spikes if hard_reset else None)
            if keep_membrane:
                ctx.mark_non_differentiable(membrane_trace)
                return spikes, membrane_trace
            return spikes, None
        surrogate = get_surrogate(surrogate_name)
        num_steps = current.shape[0]
        # contiguous outputs whatever the strides of `current` (BNTT hands over a transposed view)
        spikes = current.new_empty(current.shape)  # same dtype as the currents: exact 0/1 in bf16 too
        slope = current.new_empty(current.shape)  # σ'(U_t), all the backward needs
        fired = torch.empty(current.shape, dtype=torch.bool, device=current.device) if hard_reset else None
        state_dtype = _state_dtype(current.dtype)
        membrane_trace = torch.empty(current.shape, dtype=state_dtype, device=current.device) if keep_membrane else None
        membrane = torch.zeros(current.shape[1:], dtype=state_dtype, device=current.device)
        for t in range(num_steps):
            membrane = membrane.mul_(leak).add_(current[t])  # charge
            spike = membrane > threshold  # fire
            spikes[t] = spike
            slope[t] = surrogate(membrane, threshold)
            if keep_membrane:
                membrane_trace[t] = membrane
            if hard_reset:
                fired[t] = spike
                membrane = membrane.masked_fill_(spike, 0.0)
            else:
                membrane = membrane.sub_(spike.to(membrane.dtype) * threshold)  # soft reset
        if hard_reset:
            ctx.save_for_backward(slope, fired)
        else:
            ctx.save_for_backward(slope)
        if keep_membrane:
            ctx.mark_non_differentiable(membrane_trace)
            return spikes, membrane_trace
        return spikes, None

    @staticmethod
    def backward(ctx, grad_spikes, _grad_membrane):
        if ctx.on_gpu:
            slope, spikes = ctx.saved_tensors
            grad_current = _gpu_kernels.lif_backward(grad_spikes, slope, spikes, ctx.leak, ctx.hard_reset,
                                                     ctx.current_strides)
            return grad_current, None, None, None, None, None
        if ctx.compiled:
            slope, spikes = ctx.saved_tensors
            grad_current, _ = _cpu_kernels.lif_backward(grad_spikes, slope, spikes, ctx.leak, ctx.hard_reset,
                                                        out_dtype=slope.dtype)
            return grad_current, None, None, None, None, None
        if ctx.hard_reset:
            slope, fired = ctx.saved_tensors
        else:
            (slope,) = ctx.saved_tensors
            fired = None
        grad_current = grad_spikes.new_empty(grad_spikes.shape)
        carry = torch.zeros(grad_spikes.shape[1:], dtype=_state_dtype(grad_spikes.dtype), device=grad_spikes.device)
        for t in range(grad_spikes.shape[0] - 1, -1, -1):
            # carry = ∂L/∂U_{t+1} · ∂U_{t+1}/∂U_t, without the reset path (it has no gradient)
            grad_membrane = carry.add_(grad_spikes[t] * slope[t])
            grad_current[t] = grad_membrane
            carry = grad_membrane * ctx.leak
            if fired is not None and t > 0:
                carry = carry.masked_fill_(fired[t - 1], 0.0)  # a hard reset after step t−1 cuts U_{t−1} → U_t
        return grad_current, None, None, None, None, None


class LIF(nn.Module):
    """Leaky integrate-and-fire layer on time-major currents [T, B, ...] → spikes [T, B, ...].

    Stateless between calls: every call starts from U = 0, so there is nothing to reset by hand.
    """

    def __init__(self, leak: float = 0.95, threshold: float = 1.0, reset: str = "soft",
                 surrogate: str = "triangle"):
        super().__init__()
        check_leak_threshold(leak, threshold)
        if reset not in RESETS:
            raise ValueError(f"unknown reset {reset!r}; choose one of {list(RESETS)}")
        get_surrogate(surrogate)  # fail at construction, not at the first forward
        self.leak = float(leak)
        self.threshold = float(threshold)
        self.reset = reset
        self.surrogate = surrogate

    def forward(self, current: torch.Tensor, return_membrane: bool = False):
        if current.dim() < 2:
            raise ValueError(f"LIF expects time-major currents [T, B, ...]; got shape {tuple(current.shape)}")
        spikes, membrane = _LIFScan.apply(current, self.leak, self.threshold, self.reset == "hard",
                                          self.surrogate, return_membrane)
        return (spikes, membrane) if return_membrane else spikes

    def extra_repr(self) -> str:
        return f"leak={self.leak}, threshold={self.threshold}, reset={self.reset}, surrogate={self.surrogate}"
