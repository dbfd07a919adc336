"""Device code of the fused LIF scan (Triton); the host side, layouts and equations are in `_gpu_kernels`.

Imported only when a kernel first runs, since Triton decides at import time whether `@triton.jit`
compiles for the GPU or interprets on the CPU (TRITON_INTERPRET=1, used by the tests).
"""

import triton
import triton.language as tl

from bntt_core.nn.kernels.gpu import _interpreting

INTERPRETED = _interpreting()  # the mode Triton gave the kernels below when this module was imported


@triton.jit
def rounded(x, dtype: tl.constexpr):
    """fp32 x rounded to `dtype` to nearest-even, as torch rounds. bf16 by integer arithmetic: Triton's
    CPU interpreter truncates a plain fp32 → bf16 cast, and this way both modes agree bit for bit."""
    if dtype == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)
        return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    else:
        return x.to(dtype)


@triton.jit
def surrogate_slope(u, threshold, SURROGATE: tl.constexpr, ALPHA: tl.constexpr, SLOPE: tl.constexpr,
                    ATAN_SCALE: tl.constexpr, ATAN_HALF: tl.constexpr):
    if SURROGATE == 0:  # triangle: α · max(0, 1 − |U/θ − 1|) / θ (the chain rule through U/θ)
        g = tl.math.div_rn(ALPHA * tl.maximum(1.0 - tl.abs(tl.math.div_rn(u, threshold) - 1.0), 0.0), threshold)
    elif SURROGATE == 1:  # fast sigmoid: 1 / (1 + k|U − θ|)²
        d = 1.0 + SLOPE * tl.abs(u - threshold)
        g = tl.math.div_rn(tl.full(u.shape, 1.0, tl.float32), d * d)
    else:  # atan: (a/2) / (1 + (π/2 · a · (U − θ))²)
        x = ATAN_SCALE * (u - threshold)
        g = tl.math.div_rn(tl.full(u.shape, ATAN_HALF, tl.float32), 1.0 + x * x)
    return g


@triton.jit
def lif_forward_kernel(current, spikes, slope, membrane_trace, steps, per_step, block, stride_t, stride_b,
                       leak, threshold, HARD: tl.constexpr, KEEP: tl.constexpr, SURROGATE: tl.constexpr,
                       ALPHA: tl.constexpr, SLOPE: tl.constexpr, ATAN_SCALE: tl.constexpr,
                       ATAN_HALF: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    # offsets in int64 and advanced by pointer steps: T·B·C·H·W may pass 2³¹
    n = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)  # neuron index within a step
    mask = n < per_step
    source = current + (n // block) * stride_b + n % block  # the current may lie as [B, T, ...] in memory
    out = n  # spikes, σ' and the membrane trace: T-major contiguous
    u = tl.full([BLOCK_SIZE], 0.0, tl.float32)
    for _ in range(steps):
        i = tl.load(source, mask=mask, other=0.0).to(tl.float32)
        u = u * leak + i  # charge (fp32 membrane)
        fired = u > threshold  # fire
        spike = tl.where(fired, 1.0, 0.0)  # fp32 0/1 (exact in every dtype)
        tl.store(spikes + out, rounded(spike, spikes.dtype.element_ty), mask=mask)
        g = surrogate_slope(u, threshold, SURROGATE, ALPHA, SLOPE, ATAN_SCALE, ATAN_HALF)
        tl.store(slope + out, rounded(g, slope.dtype.element_ty), mask=mask)
        if KEEP:
            tl.store(membrane_trace + out, u, mask=mask)
        if HARD:
            u = tl.where(fired, 0.0, u)
        else:
            u = u - spike * threshold  # soft reset
        source += stride_t
        out += per_step


@triton.jit
def lif_backward_kernel(grad_spikes, slope, spikes, grad_current, steps, per_step, block, stride_t, stride_b,
                        leak, HARD: tl.constexpr, BLOCK_SIZE: tl.constexpr):
    n = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = n < per_step
    last = n * 0 + (steps - 1)  # int64, so that the offsets of step T−1 cannot overflow
    at = last * per_step + n  # into grad_spikes, σ' and spikes (T-major contiguous)
    target = grad_current + last * stride_t + (n // block) * stride_b + n % block  # in the current's strides
    carry = tl.full([BLOCK_SIZE], 0.0, tl.float32)
    for k in range(steps):
        g = tl.load(grad_spikes + at, mask=mask, other=0.0)
        s = tl.load(slope + at, mask=mask, other=0.0)
        # the product in the operands' type, as the eager `grad_spikes[t] * slope[t]` rounds it
        local = rounded(g.to(tl.float32) * s.to(tl.float32), g.dtype).to(tl.float32)
        grad_membrane = carry + local
        tl.store(target, rounded(grad_membrane, grad_current.dtype.element_ty), mask=mask)
        carry = grad_membrane * leak
        if HARD:
            if k < steps - 1:  # a hard reset after step t−1 cuts U_{t−1} → U_t
                fired = tl.load(spikes + at - per_step, mask=mask, other=0.0)
                carry = tl.where(fired != 0, 0.0, carry)
        at -= per_step
        target -= stride_t
