"""Surrogate gradients for the spike nonlinearity s = H(U - θ).

The forward pass is the exact Heaviside step; the backward pass replaces its derivative (a Dirac
delta) with a smooth bump centred on the threshold. Each surrogate here maps the membrane potential U
and the threshold θ to ∂s/∂U. They are plain functions so that the fused LIF backward
(`bntt_core.neurons`) can call them on a whole tensor at once.

    triangle      α · max(0, 1 − |U/θ − 1|)            α = 0.3   (the paper, Eq. 8; SPEC)
    fast_sigmoid  1 / (1 + k·|U − θ|)²                   k = 25    (snnTorch's default slope)
    atan          (a/2) / (1 + (π/2 · a · (U − θ))²)     a = 2     (SpikingJelly's default)
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
    """α · max(0, 1 − |U/θ − 1|): a triangle of height α peaking at U = θ, zero outside (0, 2θ)."""
    return TRIANGLE_ALPHA * torch.clamp(1.0 - torch.abs(membrane / threshold - 1.0), min=0.0)


def fast_sigmoid(membrane: torch.Tensor, threshold: float) -> torch.Tensor:
    """Derivative of the fast sigmoid x / (1 + k|x|) at x = U − θ."""
    return 1.0 / (1.0 + FAST_SIGMOID_SLOPE * torch.abs(membrane - threshold)) ** 2


def atan(membrane: torch.Tensor, threshold: float) -> torch.Tensor:
    """Derivative of (1/π)·arctan(π/2 · a · x) + 1/2 at x = U − θ."""
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
