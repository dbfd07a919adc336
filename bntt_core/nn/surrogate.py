"""Surrogate gradients for the spike nonlinearity s = H(U - θ).

The forward pass is the exact Heaviside step; the backward pass replaces its derivative (a Dirac
delta) with a smooth bump centred on the threshold. Each surrogate here maps the membrane potential U
and the threshold θ to ∂s/∂U. They are plain functions so that the fused LIF backward
(`bntt_core.nn.neurons`) can call them on a whole tensor at once.

    triangle      α · max(0, 1 − |U/θ − 1|) / θ        α = 0.3   (the paper, Eq. 8; SPEC)
    fast_sigmoid  1 / (1 + k·|U − θ|)²                   k = 25    (snnTorch's default slope)
    atan          (a/2) / (1 + (π/2 · a · (U − θ))²)     a = 2     (SpikingJelly's default)

The triangle is the official BNTT code's: it feeds x = U/θ − 1 to a spike function whose backward is
α·max(0, 1 − |x|), so by the chain rule ∂s/∂U carries the factor ∂x/∂U = 1/θ (the same at θ = 1, twice
as steep at θ = 0.5). fast_sigmoid and atan are written on x = U − θ (∂x/∂U = 1), as snnTorch and
SpikingJelly apply them, so no 1/θ enters there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

SurrogateFn = Callable[[torch.Tensor, float], torch.Tensor]

TRIANGLE_ALPHA = 0.3  # paper §3.1: larger α destabilises training since gradients sum over steps
FAST_SIGMOID_SLOPE = 25.0
ATAN_ALPHA = 2.0


def triangle(membrane: torch.Tensor, threshold: float) -> torch.Tensor:
    """α · max(0, 1 − |U/θ − 1|) / θ: the derivative of the official code's triangle on U/θ − 1 with
    respect to U; a triangle of height α/θ peaking at U = θ, zero outside (0, 2θ).

    The operations and their order (u/θ, −1, |·|, 1−, max 0, ×α, /θ) are those of `slope_of` in
    _cpu_kernels.py and `surrogate_slope` in _lif_triton.py, so fp32 results agree bit for bit."""
    return TRIANGLE_ALPHA * torch.clamp(1.0 - torch.abs(membrane / threshold - 1.0), min=0.0) / threshold


def fast_sigmoid(membrane: torch.Tensor, threshold: float) -> torch.Tensor:
    """Derivative of the fast sigmoid x / (1 + k|x|) at x = U − θ (no 1/θ: x is U − θ, not U/θ − 1)."""
    return 1.0 / (1.0 + FAST_SIGMOID_SLOPE * torch.abs(membrane - threshold)) ** 2


def atan(membrane: torch.Tensor, threshold: float) -> torch.Tensor:
    """Derivative of (1/π)·arctan(π/2 · a · x) + 1/2 at x = U − θ (no 1/θ: x is U − θ, not U/θ − 1)."""
    x = (math.pi / 2.0) * ATAN_ALPHA * (membrane - threshold)
    return (ATAN_ALPHA / 2.0) / (1.0 + x * x)


SURROGATES: dict[str, SurrogateFn] = {
    "triangle": triangle,
    "fast_sigmoid": fast_sigmoid,
    "atan": atan,
}


def get_surrogate(name: str) -> SurrogateFn:
    """Look a surrogate up by name; an unknown name is a ValueError listing the known ones."""
    try:
        return SURROGATES[name]
    except KeyError:
        raise ValueError(
            f"unknown surrogate {name!r}; choose one of {sorted(SURROGATES)}"
        ) from None
