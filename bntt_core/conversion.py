"""ANN→SNN conversion by threshold balancing (Sengupta et al. 2019), the paper's conversion baseline.

Source: a trained ANN twin (`ANNNet`: synapse → BatchNorm(γ, β) → ReLU → [pool]). Result: a
`SpikingNet` with ModelSpec(norm="none", leak=1.0 (IF neurons), threshold=1.0, reset="soft",
bias=True, num_steps=steps), i.e. an ordinary run that load_run, evaluation and the analysis read.

1. Fold BN into the synapse: W_f = W·γ/√(σ²+ε) per output channel, b_f = (b − μ)·γ/√(σ²+ε) + β.
2. Rates as activations: layer l's spike rate r_l should equal a_l/Λ_l (a_l the ANN activation, Λ_l a
   per-layer scale). The input's rate is E[s_0] = x/r for Poisson input with P = |x|/r (exact while
   |x| ≤ r: the converted model's poisson_rescale r is set to the largest |normalised pixel|, so no
   pixel saturates), Λ_0 = r; direct input: Λ_0 = 1. Then an IF neuron with threshold θ_l fed with
   W_f·Λ_{l−1}·s_{l−1,t} + b_f fires at rate ≈ (W_f·a_{l−1} + b_f)/θ_l = a_l/θ_l, so Λ_l = θ_l.
   The BIAS is added at every step and is therefore NOT multiplied by Λ_{l−1} (it is already in
   activation units); only the spike-driven part is.
3. Threshold balancing (Sengupta's Spike-Norm), layer by layer: with layers 1..l−1 already converted,
   run the calibration images through them for all T steps and set θ_l = the maximum of layer l's
   input current W_f·Λ_{l−1}·s_{l−1,t} + b_f over all images, neurons and steps. Since a layer runs
   for all T steps at once in this engine, each layer's balancing is one pass over the calibration
   images (the earlier layers are re-run from the same seeded Poisson input for every layer, so
   memory stays at one chunk of images; cost L(L+1)/2 layer passes).
4. Thresholds folded into the weights: an IF neuron with threshold θ, soft reset and binary spikes is
   the same as one with threshold 1 fed W/θ and b/θ (U/θ evolves identically), so the stored model has
   W_l' = W_f·Λ_{l−1}/θ_l, b_l' = b_f/θ_l, threshold 1. Classifier: W' = W·Λ_L, b' = b (the output
   layer averages over T steps, so the average of W'·s_t + b is ≈ W·a_L + b: the ANN's logits).
   AvgPool between layers is linear and commutes with the rates.

    result = convert_model(ann, calibration_images, steps=500)          # ConversionResult
    convert_run("runs/ann", "runs/converted", steps=500)                  # a run directory, kind "converted"

Run the tests: .venv/bin/python -m pytest tests/test_conversion.py -q
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bntt_core.analysis.recording import default_batch_size
from bntt_core.nn.models import ANNNet, ModelSpec, SpikingNet
from bntt_core.nn.step import run_precision

METHOD = "threshold balancing (Sengupta et al. 2019): BN folded into the weights, IF neurons (leak 1.0), " \
         "soft reset, θ_l = max input current of layer l over the calibration images and all T steps, " \
         "thresholds folded into the weights (threshold 1.0)"
DEFAULT_STEPS = 500
DEFAULT_CALIBRATION_IMAGES = 256


@dataclass
class ConversionResult:
    """The converted SNN and how it was made."""

    model: SpikingNet
    thresholds: dict[str, float]  # θ_l in activation units, per hidden layer
    input_scale: float  # Λ_0: the Poisson rescale r (or 1 for direct input)
    calibration_images: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None  # the run directory, when written by convert_run


def _ann_parts(ann: ANNNet) -> list[tuple[str, nn.Module, nn.Module]]:
    """(name, synapse, batchnorm) per hidden layer of the ANN twin."""
    parts = []
    for name, block in zip(ann.layer_names, ann.blocks, strict=True):
        synapse = next(m for m in block if isinstance(m, (nn.Conv2d, nn.Linear)))
        norm = next(m for m in block if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)))
        parts.append((name, synapse, norm))
    return parts


def fold_batchnorm(synapse: nn.Module, norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(W_f, b_f) in float64 with BN (eval statistics, γ, β) folded into the synapse."""
    scale = norm.weight.detach().double() / torch.sqrt(norm.running_var.double() + norm.eps)  # [C_out]
    weight = synapse.weight.detach().double() * scale.view(-1, *([1] * (synapse.weight.dim() - 1)))
    bias = synapse.bias.detach().double() if synapse.bias is not None else torch.zeros_like(scale)
    bias = (bias - norm.running_mean.double()) * scale + norm.bias.detach().double()
    return weight, bias


def converted_spec(ann_spec: ModelSpec, steps: int, input_scale: float) -> ModelSpec:
    """The converted SNN's spec: the ANN's architecture with IF neurons, no norm, biases, T = steps."""
    values = ann_spec.to_dict()
    values.update(spiking=True, norm="none", leak=1.0, threshold=1.0, reset="soft", bias=True,
                  num_steps=int(steps))
    if ann_spec.encoding == "poisson":
        values["poisson_rescale"] = float(input_scale)
    spec = ModelSpec.from_dict(values)
    spec.validate()
    return spec


def input_bound(mean: Sequence[float], std: Sequence[float]) -> float:
    """The largest |normalised pixel| (x − mean)/std over pixels in [0, 1] and all channels."""
    return max(max(abs(0.0 - m), abs(1.0 - m)) / s for m, s in zip(mean, std, strict=True))


def _hidden_input(snn: SpikingNet, images: torch.Tensor, upto: int, generator: torch.Generator) -> torch.Tensor:
    """What layer `upto` receives: the encoded images through layers[:upto] ([T, B, ...])."""
    h = snn.encode(images, generator=generator)  # [T, B, ...]
    for layer in snn.layers[:upto]:
        if layer.kind == "fc" and h.dim() > 3:
            h = h.flatten(2)  # [T, B, C, H, W] → [T, B, C·H·W]
        h = layer(h)
    return h


@torch.inference_mode()
def convert_model(ann: ANNNet, calibration_images: torch.Tensor, *, steps: int = DEFAULT_STEPS,
                  input_scale: float | None = None, seed: int = 0, batch_size: int | None = None,
                  progress: Callable[[float, str], None] | None = None) -> ConversionResult:
    """Convert an ANN twin with threshold balancing on `calibration_images` (normalised [N, C, H, W]).

    input_scale: the Poisson rescale r of the converted model (default: max |calibration pixel|, so no
    input saturates; convert_run passes the exact bound from the dataset's mean/std).
    """
    if not isinstance(ann, ANNNet):
        raise ValueError(f"conversion needs an ANN twin (ANNNet, a run trained with spiking=False); "
                         f"got {type(ann).__name__}")
    if int(steps) < 1:
        raise ValueError(f"steps must be ≥ 1; got {steps}")
    if calibration_images.dim() != 4 or calibration_images.shape[0] == 0:
        raise ValueError(f"calibration images must be normalised [N, C, H, W] with N ≥ 1; got shape "
                         f"{tuple(calibration_images.shape)}")
    start = time.perf_counter()
    device = next(ann.parameters()).device
    images = calibration_images.to(device=device, dtype=torch.float32)
    poisson = ann.spec.encoding == "poisson"
    if input_scale is None:
        input_scale = float(images.abs().max()) if poisson else 1.0
    if poisson and not input_scale > 0:
        raise ValueError(f"input_scale must be > 0 (the calibration images are all zero?); got {input_scale}")
    scale = float(input_scale) if poisson else 1.0  # Λ_0
    snn = SpikingNet(converted_spec(ann.spec, steps, scale if poisson else ann.spec.poisson_rescale)).to(device)
    snn.eval()
    batch = int(batch_size or max(1, min(256, 4096 // int(steps))))
    chunks = [images[i:i + batch] for i in range(0, images.shape[0], batch)]
    parts = _ann_parts(ann)
    thresholds: dict[str, float] = {}
    warnings: list[str] = []
    for index, ((name, ann_synapse, norm), layer) in enumerate(zip(parts, snn.layers, strict=True)):
        weight, bias = fold_batchnorm(ann_synapse, norm)
        layer.synapse.weight.copy_((weight * scale).float())  # current in activation units
        layer.synapse.bias.copy_(bias.float())
        peak = -float("inf")
        for number, chunk in enumerate(chunks):
            generator = torch.Generator(device=device).manual_seed(int(seed) * 1_000_003 + number)
            h = _hidden_input(snn, chunk, index, generator)  # [T, B, ...]
            if layer.kind == "fc" and h.dim() > 3:
                h = h.flatten(2)
            current = layer.synapse(h.flatten(0, 1))  # [T·B, ...]
            peak = max(peak, float(current.max()))
        if not peak > 0:
            warnings.append(f"{name}: no positive input current on the calibration images (θ set to 1)")
            peak = 1.0
        thresholds[name] = peak
        layer.synapse.weight.copy_((weight * scale / peak).float())
        layer.synapse.bias.copy_((bias / peak).float())
        scale = peak  # Λ_l
        if progress is not None:
            progress((index + 1) / (len(parts) + 1), f"threshold balancing {name}: θ = {peak:.4g}")
    classifier = ann.classifier[-1]
    snn.classifier.weight.copy_((classifier.weight.detach().double() * scale).float())
    if classifier.bias is not None:
        snn.classifier.bias.copy_(classifier.bias.detach())
    else:
        snn.classifier.bias.zero_()
    if progress is not None:
        progress(1.0, "conversion done")
    return ConversionResult(model=snn, thresholds=thresholds, input_scale=float(input_scale) if poisson else 1.0,
                            calibration_images=int(images.shape[0]), seconds=time.perf_counter() - start,
                            warnings=warnings)


def convert_run(ann_run_path: str | os.PathLike, out_path: str | os.PathLike, *, steps: int | None = None,
                calibration_images: int | torch.Tensor = DEFAULT_CALIBRATION_IMAGES, seed: int = 0,
                device: str | None = None, eval_images: int | None = None, batch_size: int | None = None,
                data_dir: str | None = None, precision: str | None = None,
                progress: Callable[[float, str], None] | None = None) -> ConversionResult:
    """Convert the ANN run at `ann_run_path` into a new run directory `out_path` (kind "converted").

    precision: of the converted run's test pass (None: the ANN run's own where this device computes it
    natively, else fp32; `bntt_core.nn.step.run_precision`); recorded as the converted run's precision_used.

    calibration_images: how many training images (a seeded, class-balanced subset) or normalised images
    [N, C, H, W]. The converted run's test accuracy is measured on the ANN run's test set (its subset,
    if it used one; `eval_images` limits it further) with the same Poisson seed convention as training.
    Its config.json has a "conversion" section: source run, method, steps, thresholds, input scale.
    """
    from bntt_core import data
    from bntt_core.runs.config import derive_seed
    from bntt_core.runs.evaluation import accuracy_by_step
    from bntt_core.runs.run_dir import WEIGHTS_FILE, load_run, make_config, save_weights, write_config
    from bntt_core.runs.splits import load_splits, run_train_config

    steps = DEFAULT_STEPS if steps is None else int(steps)
    out = Path(out_path)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty: choose a new directory for the converted run")
    torch_device = torch.device(device) if device else torch.device("cpu")
    source = load_run(ann_run_path, device=torch_device)
    if source.spec.spiking or not isinstance(source.model, ANNNet):
        raise ValueError(f"{ann_run_path} is a spiking run; conversion starts from an ANN twin "
                         f"(train one with spiking=False, e.g. `bntt train --ann`)")
    if eval_images is not None and int(eval_images) < 1:
        raise ValueError(f"eval_images must be ≥ 1; got {eval_images}")
    data_values = source.config["data"]
    # the ANN run's split: calibrates on what it trained on, and evaluates on its test set (run_test_set's
    # images; eval_images caps it further), both from one load of the dataset
    config = run_train_config(source, data_dir=data_dir, max_test_images=eval_images)
    splits = load_splits(config)
    train_set, test_set, info = splits.train, splits.test, splits.info
    if isinstance(calibration_images, torch.Tensor):
        calibration = calibration_images
        calibration_count = int(calibration.shape[0])
    else:
        calibration_count = int(calibration_images)
        if calibration_count < 1:
            raise ValueError(f"calibration_images must be ≥ 1; got {calibration_images}")
        picked = train_set.subset(calibration_count, seed=derive_seed(seed, "calibration"))
        calibration = data.normalize(picked.images, info)
    bound = input_bound(info.mean, info.std)
    result = convert_model(source.model, calibration.to(torch_device), steps=steps, input_scale=bound, seed=seed,
                           batch_size=batch_size, progress=progress)
    eval_seed = derive_seed(config.seed, "test")
    eval_batch = int(batch_size or min(config.eval_batch_size, default_batch_size(steps, result.model)))
    precision = run_precision(config.to_dict(), torch_device, precision)
    by_step = accuracy_by_step(result.model, test_set, info, seed=eval_seed, batch_size=eval_batch,
                               precision=precision, device=torch_device)
    conversion = {
        "source_run": str(Path(ann_run_path).resolve()),
        "source_test_accuracy": source.test_accuracy,
        "method": METHOD,
        "steps": steps,
        "thresholds": result.thresholds,
        "input_scale": result.input_scale,
        "calibration_images": calibration_count,
        "seed": int(seed),
        "warnings": result.warnings,
        "seconds": round(result.seconds, 3),
    }
    # "train": the source ANN's settings with the converted model's, so that `bntt evaluate` finds the same
    # test set, Poisson seed and eval batch size (nothing was trained: see "conversion" for provenance)
    train_section = {**config.to_dict(), "num_steps": steps, "eval_batch_size": eval_batch, "spiking": True,
                     "norm": "none", "leak": 1.0, "threshold": 1.0, "reset": "soft", "preset": None,
                     "precision_used": precision}
    result_section = {"test_accuracy": float(by_step[-1]), "epochs_done": 0, "wall_seconds": round(result.seconds, 3),
                      "num_test_images": len(test_set)}
    run_config = make_config(kind="converted", spec=result.model.spec, data=data_values, train=train_section,
                             result=result_section, conversion=conversion)
    out.mkdir(parents=True, exist_ok=True)
    save_weights(result.model, out / WEIGHTS_FILE)
    write_config(out, run_config)
    result.path = out  # the CLI prints it
    return result
