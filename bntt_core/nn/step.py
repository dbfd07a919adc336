"""One optimisation step and one evaluation forward, with the project's default speed settings.

`train_step` is exactly what `bntt train` runs for every batch; the benchmarks and tests call it too.

    loss = train_step(model, optimizer, images, labels)            # images: normalised [B, C, H, W]
    logits = eval_logits(model, images, generator=g)               # [B, classes], no autograd
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16")
# "auto" = bf16 autocast where the device computes bf16 natively, else fp32 (`resolve_precision`).
# bf16 autocast (synapses in bf16; membrane, BNTT statistics and spike decision in fp32) makes a VGG9 step
# ~2.7x faster than fp32 on an AVX-512-BF16 CPU at no measured accuracy cost, but on a CPU without native
# bf16 (AVX2 only, like most laptops) oneDNN emulates it and the same step is 4-14x SLOWER than fp32
# (benchmarks/README.md). So the hardware decides; precision="fp32" is the exact mode the engine tests check.
DEFAULT_PRECISION = "auto"
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) that still include native bf16 instructions
_BF16_ISA_CAPS = ("AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX10", "ALL", "DEFAULT")


class SlowPrecisionWarning(UserWarning):
    """bf16 was asked for on a device that only emulates it (slower than fp32)."""


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo ("flags" on x86, "Features" on ARM); empty elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


_native_bf16_cache: dict[str, bool] = {}


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` computes bf16 natively: CUDA with bf16 support; a CPU with AVX512_BF16 or AMX-BF16
    (or ARM's bf16) that oneDNN is allowed to use (ONEDNN_MAX_CPU_ISA=AVX2 turns it off, as on a laptop)."""
    device = torch.device(device)
    key = str(device.type)
    if key not in _native_bf16_cache:
        if device.type == "cuda":
            _native_bf16_cache[key] = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        elif device.type == "cpu":
            flags = cpu_flags()
            cap = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL")).upper()
            try:
                onednn_bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
            except (AttributeError, RuntimeError):
                onednn_bf16 = False
            _native_bf16_cache[key] = (onednn_bf16 and bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
                                       and cap.startswith(_BF16_ISA_CAPS))
        else:  # mps and others: fp32, the safe choice
            _native_bf16_cache[key] = False
    return _native_bf16_cache[key]


_warned_slow: set[str] = set()


def resolve_precision(precision: str | None, device: torch.device | str = "cpu") -> str:
    """The precision a step actually runs in on `device`: "fp32" or "bf16".

    None or "auto" → "bf16" where `native_bf16(device)`, else "fp32". An explicit "bf16" on a device that
    only emulates it is honoured, with one warning per process that it will be slow. Unknown → ValueError.
    """
    precision = precision or DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
    device = torch.device(device)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision == "bf16" and not native_bf16(device) and device.type not in _warned_slow:
        _warned_slow.add(device.type)
        import warnings

        warnings.warn(f"precision bf16 on this {device.type} is emulated (no native bf16: AVX512_BF16/AMX on a "
                      "CPU, bf16 support on a GPU), which is several times SLOWER than fp32; leave the "
                      "precision at auto (or say fp32) unless you need bf16's numbers", SlowPrecisionWarning,
                      stacklevel=3)
    return precision

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters (malloc.h)
_allocator_tuned = False


def keep_freed_memory_for_reuse() -> bool:
    """Let glibc keep freed large blocks for the next step instead of returning them to the OS.

    Why: glibc maps every block over 32 MiB fresh from the OS and unmaps it on free, so each training
    step page-faults its whole working set back in — on the dev VM a 42 MB tensor costs ~40 ms to touch
    the first time and ~10 ms after (benchmarks/README.md). With a high mmap threshold the blocks stay in
    the heap and are reused; the peak resident memory stays what the step needs. Once per process, Linux
    with glibc only; BNTT_KEEP_MALLOC=1 leaves the allocator alone. Returns whether it is in effect.
    """
    global _allocator_tuned
    if _allocator_tuned or os.environ.get("BNTT_KEEP_MALLOC") or not sys.platform.startswith("linux"):
        return _allocator_tuned
    try:
        libc = ctypes.CDLL("libc.so.6")
        _allocator_tuned = bool(libc.mallopt(_M_MMAP_THRESHOLD, 2**30) and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):  # not glibc
        _allocator_tuned = False
    return _allocator_tuned


def run_precision(train_values: dict | None, device: torch.device | str = "cpu", requested: str | None = None) -> str:
    """The precision to evaluate a stored run in on `device` ("fp32" | "bf16").

    `requested` (a user's --precision) if given; else the one the run trained and measured its accuracy in
    (train section: "precision_used", else "precision"), so that its recorded numbers reproduce exactly —
    except bf16 on a device that only emulates it, where fp32 is used (several times faster; results may
    differ by bf16 rounding)."""
    if requested:
        return resolve_precision(requested, device)
    values = train_values or {}
    used = values.get("precision_used") or values.get("precision") or DEFAULT_PRECISION
    if used == "bf16" and not native_bf16(device):
        return "fp32"
    return resolve_precision(used, device)


def autocast(device: torch.device, precision: str | None):
    """Autocast context for `precision` (None → the default, "auto": see `resolve_precision`); fp32 is a
    no-op context."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor,
               *, generator: torch.Generator | None = None, precision: str | None = None,
               stats: dict | None = None) -> float:
    """Forward over all T steps, cross-entropy on the accumulated output, BPTT, one optimizer step.

    Returns the loss; if `stats` is a dict, adds the number of correct predictions under "correct".
    """
    if images.device.type == "cpu":
        keep_freed_memory_for_reuse()
    elif images.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes every step: let cuDNN pick its fastest convolutions
    model.train()
    optimizer.zero_grad(set_to_none=True)
    with autocast(images.device, precision):
        logits = model(images, generator=generator)  # [B, classes]
    loss = F.cross_entropy(logits.float(), labels)
    loss.backward()
    optimizer.step()
    if stats is not None:
        stats["correct"] = int((logits.detach().argmax(1) == labels).sum())
    return float(loss.detach())


@torch.inference_mode()
def eval_logits(model: nn.Module, images: torch.Tensor, *, num_steps: int | None = None, per_step: bool = False,
                generator: torch.Generator | None = None, precision: str | None = None,
                monitor=None) -> torch.Tensor:
    """Evaluation forward without autograd: logits [B, classes] (or [T, B, classes] with per_step)."""
    if images.device.type == "cpu":
        keep_freed_memory_for_reuse()
    model.eval()
    with autocast(images.device, precision):
        return model(images, num_steps=num_steps, per_step=per_step, generator=generator, monitor=monitor).float()
