"""Fused CPU loops for the LIF scan and the BNTT statistics: one pass over memory instead of ~15.

Why: on a CPU the convolutions of a BNTT network in bf16 are fast (oneDNN, AVX-512 BF16), and what is
left is elementwise work — per step of the LIF scan PyTorch runs charge, compare, copy, five surrogate
ops and the reset as separate passes over the layer, and BNTT copies its input into a side-by-side
layout and back. Measured on the 2-core dev machine, VGG9 at T=10, B=16 in bf16: 0.43 s per training
step against 0.27 s for the convolutions alone (benchmarks/README.md). These loops read each
element once per pass and keep the membrane of a tile of neurons in L1 across all T steps.

Arithmetic: the LIF loops do exactly the operations of the eager scan in `bntt_core.nn.neurons`, in the
same order, in fp32, compiled without contraction into fused multiply-adds (-ffp-contract=off), so
the fp32 spikes equal the eager ones bit for bit. bf16 tensors are read and written as bf16 (round to
nearest even) with all arithmetic in fp32; statistics are accumulated in fp64.

Built on first use with the system C compiler (`cc -O3 -march=native`, about a second; $BNTT_KERNEL_CFLAGS
replaces -march=native, e.g. "-march=x86-64-v3" for AVX2 code on any x86 CPU) into
~/.cache/bntt_core (or $BNTT_KERNEL_CACHE) keyed by a hash of the source and the machine; if there is
no compiler or the build fails, `available()` is False and the engine uses its eager PyTorch code,
which computes the same thing. BNTT_NO_KERNELS=1 forces the eager code (for comparisons).

Layouts: a time-major tensor [T, B, C, *S] whose every step t is one dense block, either
  "planes"   (contiguous NCHW or [T, B, C]): element i of a step has channel (i // inner) % C, or
  "rows"     (channels_last images, or inner == 1): element i of a step has channel i % C.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
import os
import platform
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from bntt_core.nn import surrogate as surrogate_module

# The C source lives beside this file; _kernel_source() writes its switch cases in.
_KERNEL_TEMPLATE = (Path(__file__).resolve().parent / "lif.c").read_text()


def _kernel_source() -> str:
    """The C source with its switch cases written out: one specialised loop per flag combination."""
    defines = []
    for suffix in ("f32", "bf16"):
        cases = []
        for has_st in (0, 1):
            for kind in range(3):
                for rows in (0, 1):
                    for has_m in (0, 1):
                        for hard in (0, 1):
                            code = has_st * 32 + kind * 8 + rows * 4 + has_m * 2 + hard
                            cases.append(f"case {code}: fwd_range_{suffix}({kind}, {rows}, {has_m}, {hard}, {has_st}, "
                                         f"x, spikes, slope, membrane, T, N, L, seg0, seg1, C, scale, shift, leak, "
                                         f"th, p, p2, u, P, stats); break;")
        defines.append(f"#define FORWARD_CASES_{suffix} " + " ".join(cases))
    for name in ("lif_backward_f32", "lif_backward_bf16", "lif_backward_bf16_gf32", "lif_backward_bf16_fp32out"):
        cases = []
        for rows in (0, 1):
            for hard in (0, 1):
                for has_sums in (0, 1):
                    cases.append(f"case {rows * 4 + hard * 2 + has_sums}: bwd_range_{name}({rows}, {hard}, {has_sums}, "
                                 f"grad_spikes, slope, spikes, grad_out, T, N, L, seg0, seg1, C, leak, x, sums, carry); break;")
        defines.append(f"#define BACKWARD_CASES_{name} " + " ".join(cases))
    head, body = _KERNEL_TEMPLATE.split("#define INLINE", 1)
    return head + "\n".join(defines) + "\n#define INLINE" + body


_SOURCE = _kernel_source()

_SURROGATE_KINDS = {"triangle": 0, "fast_sigmoid": 1, "atan": 2}
_TYPES = {torch.float32: "f32", torch.bfloat16: "bf16"}
_lock = threading.Lock()
_library: ctypes.CDLL | None | bool = None  # None: not tried yet; False: unavailable
_I64, _INT, _FLOAT, _PTR = ctypes.c_int64, ctypes.c_int, ctypes.c_float, ctypes.c_void_p


def target_flags() -> list[str]:
    """The code-generation flags: $BNTT_KERNEL_CFLAGS (e.g. "-march=x86-64-v3", the AVX2 + FMA level of most
    laptops, to measure that code on a newer CPU), else -march=native. The other flags are fixed: they
    are what makes the loops bit-exact to the eager scan. Part of the cache key, so each builds once."""
    return os.environ.get("BNTT_KERNEL_CFLAGS", "-march=native").split()


def _build() -> ctypes.CDLL | bool:
    if os.environ.get("BNTT_NO_KERNELS"):
        return False
    base = ["-O3", *target_flags(), "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC", "-std=c11"]
    for flags in ([*base, "-fopenmp"], base):  # without OpenMP the loops run on one thread
        key = hashlib.sha256((_SOURCE + " ".join(flags) + platform.machine() + platform.node()).encode()).hexdigest()[:16]
        cache = Path(os.environ.get("BNTT_KERNEL_CACHE", Path.home() / ".cache" / "bntt_core"))
        target = cache / f"bntt_kernels_{key}.so"
        try:
            if not target.exists():
                cache.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=cache) as work:
                    source = Path(work) / "kernels.c"
                    source.write_text(_SOURCE)
                    built = Path(work) / "kernels.so"
                    subprocess.run([os.environ.get("CC", "cc"), *flags, str(source), "-o", str(built)],
                                   check=True, capture_output=True, timeout=120)
                    os.replace(built, target)  # atomic: concurrent processes never load a half-written file
            return ctypes.CDLL(str(target))
        except (OSError, subprocess.SubprocessError):
            continue
    return False


def _lib() -> ctypes.CDLL | None:
    global _library
    if _library is None:
        with _lock:
            if _library is None:
                _library = _build()
    return _library or None


def available() -> bool:
    """True when the compiled loops can be used (a C compiler was found and the build worked)."""
    return _lib() is not None


def layout(x: torch.Tensor) -> tuple[int, int, bool] | None:
    """(N per step, segment length L, rows mode) for a time-major tensor the loops can read, else None."""
    if x.dtype not in _TYPES or x.device.type != "cpu" or x.dim() < 2:
        return None
    steps, channels = x.shape[0], x.shape[2] if x.dim() >= 3 else 1
    per_step = x[0].numel() if steps else 0
    if x.is_contiguous():
        inner = 1
        for size in x.shape[3:]:
            inner *= size
        if x.dim() == 2:
            return per_step, per_step, False  # [T, N]: one segment per step, no channels
        return per_step, (channels if inner == 1 else inner), inner == 1
    if x.dim() == 5 and x.flatten(0, 1).is_contiguous(memory_format=torch.channels_last):
        return per_step, channels, True  # [T·B, H, W, C] in memory: channel = element % C
    return None


def _run(function, num_segments: int, make_args, sums_shape: tuple[int, ...] | None = None):
    """function(*make_args(0, num_segments, sums), threads): the C side splits the range over torch's
    thread count (OpenMP). With sums_shape, every thread gets its own fp64 accumulator; their sum is returned."""
    threads = max(1, min(torch.get_num_threads(), num_segments))
    partial = torch.zeros((threads, *sums_shape), dtype=torch.float64) if sums_shape else None
    function(*make_args(0, num_segments, partial.data_ptr() if partial is not None else None), threads)
    if partial is None:
        return None
    return partial[0] if threads == 1 else partial.sum(0)


def _surrogate_parameters(name: str) -> tuple[float, float]:
    """The constants of bntt_core.nn.surrogate, as its eager code rounds them (Python double → fp32 scalar)."""
    if name == "triangle":
        return surrogate_module.TRIANGLE_ALPHA, 0.0
    if name == "fast_sigmoid":
        return surrogate_module.FAST_SIGMOID_SLOPE, 0.0
    return (math.pi / 2.0) * surrogate_module.ATAN_ALPHA, surrogate_module.ATAN_ALPHA / 2.0


def supports_surrogate(name: str) -> bool:
    return name in _SURROGATE_KINDS


def _fn(name: str, argtypes: list) -> ctypes._CFuncPtr:
    function = getattr(_lib(), name)
    if function.argtypes is None:
        function.argtypes = [*argtypes, _INT]  # every entry point ends with the thread count
        function.restype = None
    return function


def _ptr(t: torch.Tensor | None):
    return t.data_ptr() if t is not None else None


def lif_forward(current: torch.Tensor, leak: float, threshold: float, hard: bool, surrogate: str,
                keep_membrane: bool, scale: torch.Tensor | None = None, shift: torch.Tensor | None = None,
                stats: dict | None = None, spikes_out: torch.Tensor | None = None):
    """(spikes, σ'(U), pre-reset membrane or None), all in current's dtype and strides.

    spikes_out: write the spikes there (a tensor like `current`, e.g. a buffer to reuse) instead of a new one.

    scale/shift [T, C] fp32: the input is normalised on the fly as y = x·scale + shift (BNTT).
    stats (a dict, filled in; needs scale, and current [T, B, C] or [T, B, C, H, W]): what recording needs,
    read in the same pass — "input_sums" fp64 [2, T] (Σx, Σx² of the un-normalised input per step) and
    "spike_counts" fp64 [T] ([T, B, C]) or [T, H, W] (spikes per step and position, over batch and channels)."""
    per_step, segment, rows = layout(current)
    steps, channels = current.shape[0], current.shape[2] if current.dim() >= 3 else 1
    spikes = torch.empty_like(current) if spikes_out is None else _checked_out(spikes_out, current)
    slope = torch.empty_like(current)
    membrane = torch.empty_like(current) if keep_membrane else None
    positions = 1
    if stats is not None:
        if scale is None or current.dim() not in (3, 5):
            raise ValueError("recording stats need the BNTT scale and a [T, B, C] or [T, B, C, H, W] input")
        positions = current.shape[3] * current.shape[4] if current.dim() == 5 else 1
    function = _fn(f"lif_forward_{_TYPES[current.dtype]}",
                   [_PTR, _PTR, _PTR, _PTR, _I64, _I64, _I64, _I64, _I64, _INT, _I64, _PTR, _PTR, _FLOAT, _FLOAT,
                    _INT, _INT, _FLOAT, _FLOAT, _I64, _PTR])
    parameter, parameter2 = _surrogate_parameters(surrogate)
    totals = _run(function, per_step // segment if segment else 0,
                  lambda a, b, s: (current.data_ptr(), spikes.data_ptr(), slope.data_ptr(), _ptr(membrane), steps,
                                   per_step, segment, a, b, int(rows), channels, _ptr(scale), _ptr(shift), leak,
                                   threshold, int(hard), _SURROGATE_KINDS[surrogate], parameter, parameter2,
                                   positions, s),
                  sums_shape=(2 * steps + steps * positions,) if stats is not None else None)
    if stats is not None:
        stats["input_sums"] = totals[:2 * steps].view(steps, 2).t()  # [2, T]
        counts = totals[2 * steps:].view(steps, positions)  # [T, P]
        stats["spike_counts"] = counts.view(steps, *current.shape[3:]) if current.dim() == 5 else counts[:, 0]
    return spikes, slope, membrane


def lif_backward(grad_spikes: torch.Tensor, slope: torch.Tensor, spikes: torch.Tensor | None, leak: float,
                 hard: bool, *, out_dtype: torch.dtype, x: torch.Tensor | None = None,
                 out: torch.Tensor | None = None):
    """∂L/∂current (out_dtype, slope's strides); with x, also the fp64 sums [2, T, C] of g and g·x.
    out: a buffer like slope (dtype out_dtype) to write ∂L/∂current into, distinct from every input."""
    per_step, segment, rows = layout(slope)
    steps, channels = slope.shape[0], slope.shape[2] if slope.dim() >= 3 else 1
    if slope.dtype == torch.float32:
        grad_spikes = grad_spikes.float()
        name = "lif_backward_f32"
    elif out_dtype == torch.bfloat16:
        grad_spikes = grad_spikes.to(torch.bfloat16)
        name = "lif_backward_bf16"
    elif grad_spikes.dtype == torch.float32:
        name = "lif_backward_bf16_gf32"
    else:
        grad_spikes = grad_spikes.to(torch.bfloat16)
        name = "lif_backward_bf16_fp32out"
    if grad_spikes.stride() != slope.stride():
        grad_spikes = _like(grad_spikes, slope)
    grad = torch.empty_like(slope, dtype=out_dtype) if out is None else _checked_out(out, slope, out_dtype)
    function = _fn(name, [_PTR, _PTR, _PTR, _PTR, _I64, _I64, _I64, _I64, _I64, _INT, _I64, _FLOAT, _INT, _PTR, _PTR])
    sums = _run(function, per_step // segment if segment else 0,
                lambda a, b, s: (grad_spikes.data_ptr(), slope.data_ptr(), _ptr(spikes), grad.data_ptr(), steps,
                                 per_step, segment, a, b, int(rows), channels, leak, int(hard), _ptr(x), s),
                sums_shape=(2, steps, channels) if x is not None else None)
    return grad, sums


def channel_sums(x: torch.Tensor) -> torch.Tensor:
    """fp64 [2, T, C]: Σx and Σx² over every dimension but time and channel."""
    per_step, segment, rows = layout(x)
    steps, channels = x.shape[0], x.shape[2]
    function = _fn(f"channel_sums_{_TYPES[x.dtype]}", [_PTR, _I64, _I64, _I64, _I64, _I64, _INT, _I64, _PTR])
    return _run(function, per_step // segment,
                lambda a, b, s: (x.data_ptr(), steps, per_step, segment, a, b, int(rows), channels, s),
                sums_shape=(2, steps, channels))


def bn_grad_input(grad_y: torch.Tensor, x: torch.Tensor, scale: torch.Tensor, a: torch.Tensor,
                  b: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """g_x = g_y·scale + x·a + b per (t, c) in x's dtype and strides; g_y (fp32, or bf16 with bf16 x) has x's strides.
    out: a buffer like x to write g_x into, distinct from g_y and x."""
    per_step, segment, rows = layout(x)
    steps, channels = x.shape[0], x.shape[2]
    grad = torch.empty_like(x) if out is None else _checked_out(out, x)
    name = f"bn_grad_input_{_TYPES[x.dtype]}" + ("_gybf16" if grad_y.dtype == torch.bfloat16 else "")
    function = _fn(name, [_PTR, _PTR, _PTR, _I64, _I64, _I64, _I64, _I64, _INT, _I64,
                                                          _PTR, _PTR, _PTR])
    scale, a, b = (v.float().contiguous() for v in (scale, a, b))
    _run(function, per_step // segment,
         lambda s0, s1, _s: (grad_y.data_ptr(), x.data_ptr(), grad.data_ptr(), steps, per_step, segment, s0, s1,
                             int(rows), channels, scale.data_ptr(), a.data_ptr(), b.data_ptr()))
    return grad


def _checked_out(out: torch.Tensor, template: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """`out` if it can stand for torch.empty_like(template, dtype=dtype): same shape, strides, dtype, device."""
    if (out.shape != template.shape or out.stride() != template.stride() or out.device != template.device
            or out.dtype != (dtype or template.dtype)):
        raise ValueError(f"output buffer {tuple(out.shape)}/{out.stride()}/{out.dtype} does not match "
                         f"{tuple(template.shape)}/{template.stride()}/{dtype or template.dtype}")
    return out


def _like(values: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """values copied into a tensor with template's strides (the loops index both the same way)."""
    out = torch.empty_like(template, dtype=values.dtype)
    out.copy_(values)
    return out
