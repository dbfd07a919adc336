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

PRECISIONS = ("fp32", "bf16")
# bf16 autocast for the synapses with the membrane, the BNTT statistics and the spike decision in fp32:
# on the 2-core AVX-512-BF16 dev CPU it makes a VGG9 step several times faster than fp32 (oneDNN bf16
# convolutions) at no measured accuracy cost (benchmarks/README.md); on CUDA it is the usual
# mixed-precision mode. precision="fp32" is the exact mode the engine tests check.
DEFAULT_PRECISION = "bf16"

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


def autocast(device: torch.device, precision: str | None):
    """Autocast context for `precision` (None → the default); fp32 is a no-op context."""
    precision = precision or DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {list(PRECISIONS)}")
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
