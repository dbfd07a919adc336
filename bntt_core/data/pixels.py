"""The pixel pipeline on batches: uint8 → [0, 1] pixels (to_pixels), the per-channel normalisation
(x − mean)/std that models read (normalize, normalize_channels: the one place it is computed), and the
training augmentation (augment_batch: random crop with zero padding, horizontal flip).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from bntt_core.data.core import AUGMENTS, DataInfo

CROP_PADDING = 4  # random crop with zero padding 4 (SPEC "Training recipe")


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (0..255) → float32 pixels in [0, 1], same shape. Floating input is returned as is
    (already pixels, or event frames)."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    if not images.is_floating_point():
        raise ValueError(f"to_pixels expects uint8 or floating images, got {images.dtype}")
    return images


def normalize(pixels: torch.Tensor, info: DataInfo) -> torch.Tensor:
    """(pixels − mean) / std per channel → what a model reads.

    pixels: uint8 (0..255, divided by 255 first) or floating [0, 1] pixels — or, for event data, the
    float frame counts. The channel axis must be dim −3, so [B, C, H, W], [B, T, C, H, W] and
    [T, B, C, H, W] all work. uint8 gives float32; floating input keeps its dtype (float64 stays).
    """
    x = to_pixels(pixels)
    if x.dtype not in (torch.float32, torch.float64):
        x = x.to(torch.float32)
    channels = len(info.mean)
    if x.dim() < 3 or x.shape[-3] != channels:
        raise ValueError(f"normalize: expected {channels} channel(s) at dim -3 for {info.name}, "
                         f"got shape {tuple(x.shape)}")
    return normalize_channels(x, info.mean, info.std)


def normalize_channels(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(x − mean) / std per channel, channels at dim −3 ([C, H, W], [B, C, H, W], [B, T, C, H, W] or
    [T, B, C, H, W]), computed in x's dtype on x's device. The one place the package normalises:
    `normalize`, the robustness attacks, the analysis data and the teaching helpers all call it."""
    channels = len(mean)
    if x.dim() < 3 or x.shape[-3] != channels or len(std) != channels:
        raise ValueError(f"normalize_channels: {len(mean)} mean(s) and {len(std)} std(s) for images of shape "
                         f"{tuple(x.shape)} (channels at dim -3)")
    mean = torch.tensor(tuple(mean), dtype=x.dtype, device=x.device).view(channels, 1, 1)  # [C, 1, 1]
    std = torch.tensor(tuple(std), dtype=x.dtype, device=x.device).view(channels, 1, 1)
    return (x - mean) / std


def augment_batch(pixels: torch.Tensor, info: DataInfo, generator: torch.Generator | None, *,
                  padding: int | None = None) -> torch.Tensor:
    """Training augmentation on a whole batch at once, per `info.augment`.

    "crop": random crop back to H×W from the image zero-padded by 4 on every side (pixel value 0, as
    torchvision's RandomCrop(padding=4) does before normalisation); "crop-flip": that, then a
    horizontal flip with probability 1/2; "none": unchanged. One offset and one flip per sample; for
    event frames [B, T, C, H, W] the same offset and flip apply to all T frames of a sample.
    Randomness comes only from `generator` (draw order: row offsets, column offsets, flips), so a
    seeded generator gives the same batch every time. Shape and dtype are kept.
    """
    if info.augment == "none":
        return pixels
    if info.augment not in AUGMENTS:
        raise ValueError(f"unknown augment {info.augment!r}; choose one of {AUGMENTS}")
    if pixels.dim() not in (4, 5):
        raise ValueError(f"augment_batch expects [B, C, H, W] or [B, T, C, H, W], got {tuple(pixels.shape)}")
    batch, height, width = pixels.shape[0], pixels.shape[-2], pixels.shape[-1]
    device = pixels.device
    draw_device = generator.device if generator is not None else torch.device("cpu")
    flat = pixels.reshape(batch, -1, height, width)  # [B, K, H, W], K = C (or T·C for event frames)

    pad = CROP_PADDING if padding is None else int(padding)  # padding: scaled to small images (auto recipe)
    if pad < 0:
        raise ValueError(f"crop padding must be ≥ 0; got {pad}")
    padded = F.pad(flat, (pad, pad, pad, pad))  # [B, K, H + 2·pad, W + 2·pad], zeros around
    row_offsets = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=draw_device).to(device)
    col_offsets = torch.randint(0, 2 * pad + 1, (batch,), generator=generator, device=draw_device).to(device)
    rows = row_offsets[:, None] + torch.arange(height, device=device)  # [B, H]
    cols = col_offsets[:, None] + torch.arange(width, device=device)  # [B, W]
    batch_index = torch.arange(batch, device=device)[:, None, None]  # [B, 1, 1]
    cropped = padded.permute(0, 2, 3, 1)[batch_index, rows[:, :, None], cols[:, None, :]]  # [B, H, W, K]
    flat = cropped.permute(0, 3, 1, 2)  # [B, K, H, W]

    if info.augment == "crop-flip":
        flips = torch.rand(batch, generator=generator, device=draw_device).to(device) < 0.5  # [B]
        flat = torch.where(flips[:, None, None, None], flat.flip(-1), flat)
    return flat.reshape(pixels.shape).contiguous()
