"""Robustness (paper §4.7, Fig 8): accuracy under Gaussian noise and under FGSM, on clean [0, 1] pixels.

Both attacks act on the pixels BEFORE normalisation (SPEC): x̃ = x + δ, then (x̃ − mean)/std.

Gaussian noise (Fig 8A): δ = σ·z, z ~ N(0, 1) per pixel, σ in [0, 1] pixel units. One pass per σ. The
SAME z (seeded with `seed + 1`) and the SAME Poisson draws (seeded with `seed`) are used for every σ
and every mode (common random numbers), so σ = 0 reproduces the clean accuracy exactly and the curve
is not jagged by resampling. Modes (NOISE_MODES; docs/DEPARTURES.md):
  * "unclipped" (default): x + σ·z, NOT clipped — the paper adds the noise "to the clean input image".
  * "clipped": clip(x + σ·z, 0, 1) — what this package did before (and how the shipped runs' noise
    tables were computed). Clipping is not zero-mean: dark pixels can only go up and bright ones only
    down, so it shifts the input's mean, which BNTT's per-step running means are sensitive to.
  * "shift": x + σ, no randomness and no clipping — a pure brightness shift that isolates that effect.

FGSM (Fig 8B): δ = ε·sign(∇_x L(x, y)), L the cross-entropy of the model's output. The gradient is
computed ONCE per sample (one forward + backward with the model in eval mode) and reused for every ε;
each ε then costs one evaluation pass. ε = 0 reproduces the clean accuracy exactly.
  * ANN twin: plain FGSM (autograd through ReLU and the BN running statistics).
  * SNN: SNN-crafted (Sharmin et al. 2020; SPEC): BPTT through all T steps with the surrogate
    gradient, and straight through the Poisson encoder. The encoder draws s_t = sign(x)·1[r·u_t ≤ |x|]
    (x the normalised pixel, r = poisson_rescale); its derivative is zero almost everywhere, so the
    backward pass replaces it:
        forward  s_t exactly (the draw, seeded with `seed + 2`)
        backward ∂s_t/∂x = 1/r for every t           (encoder_grad="linear": s_t treated as x/r, the
                                                       derivative of E[s_t | x] = x/r for |x| < r)
                 ∂s_t/∂x = 1/r · 1[|x| < r]           (encoder_grad="clipped": the exact derivative of
                                                       E[s_t | x] = clip(x/r, −1, 1))
    implemented as s_t + (x/r − stop_grad(x/r)) (or with the clipped expectation): the forward value is
    bit-identical to the draw. ∇_x then flows through the normalisation to the pixels. Direct-coded
    SNNs need no straight-through: the analog image enters the first layer.

    acc = noise_accuracy(model, pixels, labels, [0, 0.1, 0.2], mean=info.mean, std=info.std)   # unclipped
    acc = noise_accuracy(model, pixels, labels, [0, 0.1, 0.2], mean=info.mean, std=info.std, mode="clipped")
    acc = fgsm_accuracy(model, pixels, labels, [0, 2/255, 8/255], mean=info.mean, std=info.std)

`pixels`: uint8 [N, C, H, W] (÷255) or float in [0, 1]. Both return DataFrames (sigma|epsilon, accuracy,
correct, n; noise also `mode`). Run the tests: .venv/bin/python -m pytest tests/test_robustness.py -q
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from bntt_core.analysis.recording import default_batch_size
from bntt_core.data.pixels import normalize_channels, to_pixels
from bntt_core.nn.encoding import poisson_encode
from bntt_core.nn.models import SpikingNet
from bntt_core.nn.step import autocast

ENCODER_GRADS = ("linear", "clipped")
NOISE_MODES = ("unclipped", "clipped", "shift")  # see the module docstring
DEFAULT_NOISE_MODE = "unclipped"  # the paper's: Gaussian noise added to the clean image, no clipping
NOISE_SEED_OFFSET = 1  # z for Gaussian noise
ATTACK_SEED_OFFSET = 2  # the Poisson draw of the FGSM gradient pass


@dataclass(frozen=True)
class Normalizer:
    """(x − mean)/std per channel, x in [0, 1] [B, C, H, W]: bntt_core.data.normalize_channels with the
    statistics checked once."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self):
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"mean and std need one value per channel; got {self.mean} and {self.std}")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be > 0; got {self.std}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != len(self.mean):
            raise ValueError(f"images have {x.shape[1]} channels; mean/std have {len(self.mean)}")
        return normalize_channels(x, self.mean, self.std)


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → float in [0, 1]; float pixels pass through (they must already be in [0, 1])."""
    if pixels.dtype != torch.uint8 and not pixels.is_floating_point():
        raise ValueError(f"pixels must be uint8 or float in [0, 1]; got {pixels.dtype}")
    return to_pixels(pixels).float()


def _check(pixels: torch.Tensor, labels: torch.Tensor, values: Sequence[float], what: str) -> list[float]:
    if pixels.dim() != 4:
        raise ValueError(f"{what} acts on clean images [N, C, H, W]; got shape {tuple(pixels.shape)} "
                         f"(event frames have no pixel space to perturb)")
    if pixels.shape[0] != labels.shape[0] or pixels.shape[0] == 0:
        raise ValueError(f"need as many labels as images (and at least one); got {pixels.shape[0]} images "
                         f"and {labels.shape[0]} labels")
    values = [float(v) for v in values]
    if not values:
        raise ValueError(f"the list of {what} strengths is empty")
    if any(v < 0 for v in values):
        raise ValueError(f"{what} strengths must be ≥ 0; got {values}")
    return values


@torch.inference_mode()
def _count_correct(model: nn.Module, batches: Callable[[int, int], torch.Tensor], labels: torch.Tensor, *,
                   seed: int, batch_size: int, precision: str | None) -> int:
    """One evaluation pass; the Poisson generator is seeded with `seed` and consumed batch by batch."""
    device = labels.device
    generator = torch.Generator(device=device).manual_seed(int(seed))
    correct = 0
    for begin in range(0, labels.shape[0], batch_size):
        end = min(labels.shape[0], begin + batch_size)
        images = batches(begin, end)  # normalised [B, C, H, W]
        with autocast(device, precision):
            logits = model(images, generator=generator).float()  # [B, classes]
        correct += int((logits.argmax(1) == labels[begin:end]).sum())
    return correct


def check_noise_mode(mode: str) -> str:
    """`mode` if it is one of NOISE_MODES, else a ValueError that lists them."""
    if mode not in NOISE_MODES:
        raise ValueError(f"unknown noise mode {mode!r}; choose one of {', '.join(NOISE_MODES)}")
    return mode


def perturb_noise(clean: torch.Tensor, sigma: float, mode: str = DEFAULT_NOISE_MODE,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """The noisy pixels of clean pixels [B, C, H, W] in [0, 1] for noise strength `sigma` (pixel units):
    x + σ·z ("unclipped"), clip(x + σ·z, 0, 1) ("clipped") or x + σ ("shift": no z drawn, `generator`
    untouched). z ~ N(0, 1) is drawn from `generator` with the pixels' shape."""
    check_noise_mode(mode)
    if mode == "shift":
        return clean + float(sigma)
    z = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    noisy = clean + float(sigma) * z
    return noisy.clamp_(0.0, 1.0) if mode == "clipped" else noisy


def evaluate_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, seed: int = 0,
                      batch_size: int | None = None, precision: str | None = None) -> float:
    """Accuracy of an SNN or ANN on normalised images, one pass, Poisson seeded with `seed`."""
    model_steps = getattr(model, "num_steps", 1)
    batch_size = int(batch_size or default_batch_size(model_steps, model))
    was_training = model.training
    model.eval()
    try:
        correct = _count_correct(model, lambda b, e: images[b:e], labels, seed=seed, batch_size=batch_size,
                                 precision=precision)
    finally:
        model.train(was_training)
    return correct / labels.shape[0]


def noise_accuracy(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, sigmas: Sequence[float], *,
                   mean: Sequence[float], std: Sequence[float], seed: int = 0, batch_size: int | None = None,
                   precision: str | None = None, mode: str = DEFAULT_NOISE_MODE,
                   progress: Callable[[float, str], None] | None = None) -> pd.DataFrame:
    """Accuracy with Gaussian noise of std σ on the clean pixels, one pass per σ: `mode` "unclipped"
    (default, the paper's), "clipped" (to [0, 1]) or "shift" (x + σ, no noise). Columns sigma,
    accuracy, correct, n, mode."""
    check_noise_mode(mode)
    sigmas = _check(pixels, labels, sigmas, "noise")
    normalize = Normalizer(tuple(mean), tuple(std))
    batch_size = int(batch_size or default_batch_size(getattr(model, "num_steps", 1), model))
    device = labels.device
    rows = []
    was_training = model.training
    model.eval()
    try:
        for index, sigma in enumerate(sigmas):
            noise_gen = torch.Generator(device=device).manual_seed(int(seed) + NOISE_SEED_OFFSET)

            def noisy(begin: int, end: int, sigma=sigma, noise_gen=noise_gen) -> torch.Tensor:
                clean = to_unit(pixels[begin:end]).to(device)  # [B, C, H, W] in [0, 1]
                return normalize(perturb_noise(clean, sigma, mode, noise_gen))

            correct = _count_correct(model, noisy, labels, seed=seed, batch_size=batch_size, precision=precision)
            rows.append((sigma, correct / labels.shape[0], correct, labels.shape[0], mode))
            if progress is not None:
                progress((index + 1) / len(sigmas), f"noise ({mode}) σ = {sigma:g}")
    finally:
        model.train(was_training)
    return pd.DataFrame(rows, columns=["sigma", "accuracy", "correct", "n", "mode"])


def straight_through_poisson(x: torch.Tensor, num_steps: int, rescale: float, generator: torch.Generator | None,
                             encoder_grad: str = "linear") -> torch.Tensor:
    """Poisson spikes [T, B, ...] whose value is the draw and whose gradient w.r.t. x is that of x/r
    ("linear") or of clip(x/r, −1, 1) ("clipped") at every step (see the module docstring)."""
    if encoder_grad not in ENCODER_GRADS:
        raise ValueError(f"unknown encoder_grad {encoder_grad!r}; choose one of {list(ENCODER_GRADS)}")
    spikes = poisson_encode(x.detach(), num_steps, rescale=rescale, generator=generator)  # [T, B, ...]
    proxy = x / rescale if encoder_grad == "linear" else (x / rescale).clamp(-1.0, 1.0)  # [B, ...]
    return spikes + (proxy - proxy.detach()).unsqueeze(0)  # value: spikes + 0; gradient: ∂proxy/∂x


def _attack_input(model: nn.Module, x: torch.Tensor, generator: torch.Generator, encoder_grad: str) -> torch.Tensor:
    """What goes into the model for the gradient pass: x itself, or straight-through Poisson spikes."""
    if not isinstance(model, SpikingNet) or model.spec.encoding != "poisson":
        return x  # ANN twin, or a direct-coded SNN: the analog image enters the first layer
    spec = model.spec
    if spec.arch == "seqfc":  # one pixel per step: [B, C, H, W] → [H·W, B, C] (models.SpikingNet.encode)
        sequence = x.flatten(2).permute(2, 0, 1)
        return straight_through_poisson(sequence, 1, spec.poisson_rescale, generator, encoder_grad)[0]
    return straight_through_poisson(x, spec.num_steps, spec.poisson_rescale, generator, encoder_grad)


def fgsm_signs(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, *, mean: Sequence[float],
               std: Sequence[float], seed: int = 0, batch_size: int | None = None,
               encoder_grad: str = "linear", precision: str | None = None) -> torch.Tensor:
    """sign(∇_x L) w.r.t. the clean pixels, int8 [N, C, H, W]: one forward + backward per sample, under the
    same autocast as training (`precision`; the pixels, their normalisation and the loss stay fp32)."""
    normalize = Normalizer(tuple(mean), tuple(std))
    device = labels.device
    batch_size = int(batch_size or default_batch_size(getattr(model, "num_steps", 1), model))
    generator = torch.Generator(device=device).manual_seed(int(seed) + ATTACK_SEED_OFFSET)
    signs = torch.empty(pixels.shape, dtype=torch.int8, device=device)
    was_training = model.training
    model.eval()  # running statistics, as at test time; autograd still flows
    try:
        for begin in range(0, labels.shape[0], batch_size):
            end = min(labels.shape[0], begin + batch_size)
            clean = to_unit(pixels[begin:end]).to(device).requires_grad_(True)  # [B, C, H, W]
            with torch.enable_grad():
                inputs = _attack_input(model, normalize(clean), generator, encoder_grad)
                with autocast(device, precision):
                    logits = model(inputs).float()  # [B, classes]
                loss = F.cross_entropy(logits, labels[begin:end], reduction="sum")
                (grad,) = torch.autograd.grad(loss, clean)
            signs[begin:end] = grad.sign().to(torch.int8)
    finally:
        model.train(was_training)
    return signs


def fgsm_accuracy(model: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, epsilons: Sequence[float], *,
                  mean: Sequence[float], std: Sequence[float], seed: int = 0, batch_size: int | None = None,
                  encoder_grad: str = "linear", precision: str | None = None,
                  signs: torch.Tensor | None = None,
                  progress: Callable[[float, str], None] | None = None) -> pd.DataFrame:
    """Accuracy under FGSM x_adv = clip(x + ε·sign(∇_x L), 0, 1) for every ε (gradient computed once)."""
    epsilons = _check(pixels, labels, epsilons, "FGSM")
    normalize = Normalizer(tuple(mean), tuple(std))
    device = labels.device
    batch_size = int(batch_size or default_batch_size(getattr(model, "num_steps", 1), model))
    if signs is None:
        signs = fgsm_signs(model, pixels, labels, mean=mean, std=std, seed=seed, batch_size=batch_size,
                           encoder_grad=encoder_grad, precision=precision)
        if progress is not None:
            progress(1 / (len(epsilons) + 1), "FGSM gradient")
    elif signs.shape != pixels.shape:
        raise ValueError(f"signs must have the pixels' shape {tuple(pixels.shape)}; got {tuple(signs.shape)}")
    rows = []
    was_training = model.training
    model.eval()
    try:
        for index, epsilon in enumerate(epsilons):
            def adversarial(begin: int, end: int, epsilon=epsilon) -> torch.Tensor:
                clean = to_unit(pixels[begin:end]).to(device)
                return normalize((clean + epsilon * signs[begin:end].to(clean.dtype)).clamp_(0.0, 1.0))

            correct = _count_correct(model, adversarial, labels, seed=seed, batch_size=batch_size,
                                     precision=precision)
            rows.append((epsilon, correct / labels.shape[0], correct, labels.shape[0]))
            if progress is not None:
                progress((index + 2) / (len(epsilons) + 1), f"FGSM ε = {epsilon:g}")
    finally:
        model.train(was_training)
    return pd.DataFrame(rows, columns=["epsilon", "accuracy", "correct", "n"])
