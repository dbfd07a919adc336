"""The LIF scan over T as one Triton kernel per direction: the GPU counterpart of `_cpu_kernels`.

The eager scan in `bntt_core.nn.neurons` launches ~6 element-wise kernels per time step, each reading
and writing the fp32 membrane through GPU memory; here each thread keeps its neurons' membrane in
registers for all T steps, so memory sees each current read once and the spikes and σ'(U) written
once (forward), and the gradient read and written once (backward). Same equations, same order of
operations and roundings as the eager scan (neurons.py docstring):

    forward, per step t:   U ← λ·U + I_t;  s_t = H(U − θ);  σ'(U_t);  U ← U − θ·s_t  (or 0 if hard)
    backward, t = T−1…0:   g_U = carry + g_s[t]·σ'(U_t);  g_I[t] = g_U;  carry = λ·g_U (· (1 − s_{t−1}) if hard)

compiled without fused multiply-adds (enable_fp_fusion=False) and with IEEE division, so that the
spikes equal the eager scan's bit for bit (tests/test_gpu_kernels.py checks this through Triton's CPU
interpreter, and on CUDA when a GPU is present).

Layouts: the current may be any [T, B, ...] whose per-(t, b) block is contiguous — in particular the
transposed view that BNTT hands over ([B, T, ...] in memory), read in place without a copy. Spikes
and σ' are written T-major contiguous (what the next layer's convolution reads); the backward writes
the current's gradient in the current's own strides, so BNTT's backward gets it without a copy.

Triton is imported only when a kernel first runs. With TRITON_INTERPRET=1 set before that, the same
kernels run on CPU tensors through Triton's interpreter (slow; for tests). BNTT_NO_KERNELS=1 turns
these kernels off as it does the CPU ones. If the very first launch fails (Triton needs a C compiler
for its launcher, and a working CUDA toolchain), the process logs one warning and runs the eager scan,
which computes the same values; once a kernel has run, a failure is an error like any other.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import math
import os

import torch

from bntt_core.nn.surrogate import ATAN_ALPHA, FAST_SIGMOID_SLOPE, TRIANGLE_ALPHA

SURROGATE_CODES = {"triangle": 0, "fast_sigmoid": 1, "atan": 2}
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
BLOCK = 1024  # neurons per program: 8 per thread at 4 warps, enough loads in flight to cover latency
log = logging.getLogger(__name__)
_unusable: str | None = None  # why the first launch failed here (then the eager scan runs instead)
_proven = False  # a kernel has run in this process: from then on a failure is raised, not worked around


def _interpreting() -> bool:
    """Whether Triton interprets kernels on the CPU (TRITON_INTERPRET set, as Triton reads it)."""
    return os.environ.get("TRITON_INTERPRET", "").strip() not in ("", "0")


@functools.cache
def available() -> bool:
    """Whether the Triton kernels can run: Triton importable, BNTT_NO_KERNELS unset."""
    if os.environ.get("BNTT_NO_KERNELS"):
        return False
    return importlib.util.find_spec("triton") is not None  # not imported here: see _kernels


def applies(current: torch.Tensor, surrogate_name: str) -> bool:
    """Whether the kernels run this scan: a CUDA tensor (a CPU one under TRITON_INTERPRET) of a float type."""
    on_device = current.is_cuda or (_interpreting() and current.device.type == "cpu")
    return (on_device and current.dtype in _DTYPES and current.dim() >= 2 and surrogate_name in SURROGATE_CODES
            and available() and _unusable is None)


def _dense_blocks(x: torch.Tensor) -> torch.Tensor:
    """x [T, B, ...] itself when it is T-major or B-major contiguous (BNTT's transposed view), else a
    contiguous copy: the kernels index blocks of contiguous (t, b) elements, and the gradient written
    with these strides must not overlap."""
    if x.is_contiguous() or x.transpose(0, 1).is_contiguous():
        return x
    return x.contiguous()


def _geometry(shape: torch.Size, strides: tuple[int, ...]) -> tuple[int, int, int, int, int]:
    """(steps, batch, elements per (t, b) block, stride of t, stride of b) of a dense-block tensor."""
    return shape[0], shape[1], math.prod(shape[2:]), strides[0], strides[1]


@functools.cache
def _kernels(interpret: bool):
    """The Triton kernels (bntt_core/nn/kernels/lif_triton.py), imported on first use; Triton decides at import
    whether a kernel is compiled or interpreted, so a change of TRITON_INTERPRET re-imports them."""
    from bntt_core.nn.kernels import lif_triton as _lif_triton

    if _lif_triton.INTERPRETED != interpret:
        _lif_triton = importlib.reload(_lif_triton)
    return _lif_triton.lif_forward_kernel, _lif_triton.lif_backward_kernel


def _launch(which: int, per_step: int, *args, **constants) -> bool:
    """Run kernel `which` (0 forward, 1 backward); False if the kernels turned out not to work here."""
    global _unusable, _proven
    grid = (max(1, -(-per_step // BLOCK)),)
    try:
        kernel = _kernels(_interpreting())[which]
        kernel[grid](*args, BLOCK_SIZE=BLOCK, num_warps=4, enable_fp_fusion=False, **constants)
    except Exception as failure:  # the first launch builds Triton's launcher and the kernel: a missing toolchain
        if _proven:
            raise
        _unusable = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
        log.warning("the Triton LIF kernels do not work here (%s: %s); using the eager PyTorch scan instead "
                    "(the same values, slower)", type(failure).__name__, _unusable)
        return False
    _proven = True
    return True


def lif_forward(current: torch.Tensor, leak: float, threshold: float, hard_reset: bool, surrogate_name: str,
                keep_membrane: bool = False):
    """(spikes, σ'(U), membrane or None, strides the gradient should take), the three tensors T-major
    contiguous [T, B, ...]: spikes and σ' in the current's dtype, the membrane in fp32 — or None when
    the kernels turned out not to work on this machine (the caller runs the eager scan).
    `applies(current, surrogate_name)` must hold."""
    current = _dense_blocks(current)
    steps, batch, block, stride_t, stride_b = _geometry(current.shape, current.stride())
    spikes = torch.empty(current.shape, dtype=current.dtype, device=current.device)
    slope = torch.empty_like(spikes)
    membrane = torch.empty(current.shape, dtype=torch.float32, device=current.device) if keep_membrane else None
    per_step = batch * block
    if steps and per_step:
        launched = _launch(0, per_step, current, spikes, slope, membrane if keep_membrane else spikes, steps,
                           per_step, block, stride_t, stride_b, float(leak), float(threshold),
                           HARD=bool(hard_reset), KEEP=bool(keep_membrane), SURROGATE=SURROGATE_CODES[surrogate_name],
                           ALPHA=TRIANGLE_ALPHA, SLOPE=FAST_SIGMOID_SLOPE, ATAN_SCALE=(math.pi / 2.0) * ATAN_ALPHA,
                           ATAN_HALF=ATAN_ALPHA / 2.0)
        if not launched:
            return None
    return spikes, slope, membrane, current.stride()


def lif_backward(grad_spikes: torch.Tensor, slope: torch.Tensor, spikes: torch.Tensor | None, leak: float,
                 hard_reset: bool, current_strides: tuple[int, ...]) -> torch.Tensor:
    """∂L/∂current in grad_spikes' dtype (as the eager scan gives it), laid out with `current_strides`
    (what lif_forward returned): BNTT's transposed view gets its gradient back without a copy."""
    grad_spikes = grad_spikes.contiguous()  # T-major, as the saved σ' and spikes are
    steps, batch, block, stride_t, stride_b = _geometry(slope.shape, current_strides)
    grad_current = torch.empty_strided(slope.shape, current_strides, dtype=grad_spikes.dtype, device=slope.device)
    per_step = batch * block
    if steps and per_step:
        _launch(1, per_step, grad_spikes, slope, spikes if hard_reset else slope, grad_current, steps,
                per_step, block, stride_t, stride_b, float(leak), HARD=bool(hard_reset))
    return grad_current
