"""Input coding: turn a normalised image batch [B, ...] into a time-major input [T, B, ...].

    poisson_encode   rate coding as in the official code (SPEC): on the *normalised* image x,
                     spike = sign(x) · 1[rescale·u ≤ |x|], u ~ U[0, 1) drawn fresh at every step,
                     so the input is ternary {−1, 0, +1} with P(spike) = min(|x|/rescale, 1).
    direct_encode    the analog image repeated at every step (Rate-vs-Direct, seed 002): the first
                     layer's LIF neurons turn it into spikes.

Pass a seeded `torch.Generator` (on the input's device) for reproducible spikes, e.g. at test time.
"""

from __future__ import annotations

import torch

ENCODINGS = ("poisson", "direct")


def _check_steps(num_steps: int) -> None:
    if int(num_steps) < 1:
        raise ValueError(f"num_steps must be ≥ 1; got {num_steps}")


def poisson_encode(x: torch.Tensor, num_steps: int, rescale: float = 2.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """[B, ...] normalised values → ternary spikes [T, B, ...] in x's dtype."""
    _check_steps(num_steps)
    if rescale <= 0:
        raise ValueError(f"rescale must be > 0; got {rescale}")
    uniform = torch.rand((num_steps, *x.shape), generator=generator, device=x.device, dtype=torch.float32)
    fire = (uniform * rescale) <= x.abs().unsqueeze(0)  # [T, B, ...]
    return torch.sign(x).unsqueeze(0) * fire.to(x.dtype)


def direct_encode(x: torch.Tensor, num_steps: int) -> torch.Tensor:
    """[B, ...] → [T, B, ...]: the same analog input at every step (a broadcast view, no copy)."""
    _check_steps(num_steps)
    return x.unsqueeze(0).expand(num_steps, *x.shape)


def encode(x: torch.Tensor, num_steps: int, encoding: str, generator: torch.Generator | None = None,
           rescale: float = 2.0) -> torch.Tensor:
    """Dispatch on the encoding name (one of ENCODINGS)."""
    if encoding == "poisson":
        return poisson_encode(x, num_steps, rescale=rescale, generator=generator)
    if encoding == "direct":
        return direct_encode(x, num_steps)
    raise ValueError(f"unknown encoding {encoding!r}; choose one of {list(ENCODINGS)}")
