"""One optimisation step and one evaluation forward, with the project's default speed settings.

`train_step` is exactly what `bntt train` runs for every batch; the benchmarks and tests call it too.

    loss = train_step(model, optimizer, images, labels)            # images: normalised [B, C, H, W]
    logits = eval_logits(model, images, generator=g)               # [B, classes], no autograd
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

PRECISIONS = ("fp32", "bf16")
DEFAULT_PRECISION = "fp32"


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
    model.eval()
    with autocast(images.device, precision):
        return model(images, num_steps=num_steps, per_step=per_step, generator=generator, monitor=monitor).float()
