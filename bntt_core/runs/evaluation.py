"""Evaluation: a loader batch as the model reads it, the accuracy by time step on a whole image set, and
`bntt evaluate` (a run's test accuracy, re-measured exactly as training measured it).

The test accuracy is measured on the FULL test set (no drop_last) with a Poisson generator seeded from
the run's seed, so a re-evaluation with the run's device, precision and eval batch size reproduces it.

    by_step = accuracy_by_step(model, test_set, info, seed=derive_seed(seed, "test"))  # [acc at t = 1..T]
    print(evaluate_run("runs/first", steps=3))          # accuracy at T and at 3 steps
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch import nn

from bntt_core.nn.step import eval_logits, run_precision
from bntt_core.runs.config import ConfigError, derive_seed, parse_device, stored_train_values, torch_threads
from bntt_core.runs.run_dir import load_run
from bntt_core.runs.splits import run_test_set, run_train_config


def to_model_input(images: torch.Tensor, info, device: torch.device,
                   augment_generator: torch.Generator | None = None, *,
                   crop_padding: int | None = None) -> torch.Tensor:
    """A loader batch → what the model reads.

    images uint8 [B, C, H, W] (pixels 0..255) → float pixels in [0, 1] → augmentation (training only)
    → normalised [B, C, H, W]. Event frames [B, T, C, H, W] (float) → normalised → time-major
    [T, B, C, H, W], which the model takes as already-encoded input.
    """
    from bntt_core import data

    pixels = data.to_pixels(images.to(device, non_blocking=True))
    if augment_generator is not None:
        pixels = data.augment_batch(pixels, info, augment_generator, padding=crop_padding)
    x = data.normalize(pixels, info)
    if x.dim() == 5:
        x = x.transpose(0, 1)  # [B, T, C, H, W] → [T, B, C, H, W]
    return x


def accuracy_by_step(model: nn.Module, dataset, info, *, seed: int, batch_size: int = 256,
                     precision: str | None = None, device: torch.device | str | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list[float]:
    """Accuracy of the prediction from the output accumulated up to step t, t = 1..T, on every image of
    `dataset` (no drop_last); Poisson spikes from a generator seeded with `seed`. Last entry = full T."""
    from bntt_core import data

    device = torch.device(device) if device is not None else next(model.parameters()).device
    loader = data.make_loader(dataset, batch_size, shuffle=False, seed=0)
    generator = torch.Generator(device=device).manual_seed(int(seed))
    correct: torch.Tensor | None = None  # [T]
    seen = 0
    for index, (images, labels) in enumerate(loader):
        x = to_model_input(images, info, device)
        running = eval_logits(model, x, per_step=True, generator=generator, precision=precision)  # [T, B, classes]
        hits = (running.argmax(-1) == labels.to(device).unsqueeze(0)).sum(1)  # [T]
        correct = hits if correct is None else correct + hits
        seen += labels.shape[0]
        if progress is not None:
            progress(index + 1, len(loader))
    if correct is None or seen == 0:
        raise ValueError("the test set is empty")
    return (correct.double() / seen).tolist()


def evaluate_run(path: str | os.PathLike, *, steps: int | None = None, device: str = "cpu",
                 data_dir: str | None = None, batch_size: int | None = None, threads: int | None = None,
                 precision: str | None = None, progress: Callable[[int, int], None] | None = None) -> dict:
    """Test accuracy of a run on its full test set (as in training: same seed, batch size and subset),
    and at `steps` < T if given. `precision` None: the run's own where this device computes it natively
    (`step.run_precision`). Returns {"test_accuracy", "num_steps", "steps", "accuracy_at_steps",
    "num_images", "by_step", "precision"}."""
    run = load_run(path, device=parse_device(device))
    train_values = stored_train_values(run.config.get("train"))
    config = run_train_config(run, data_dir=data_dir)
    num_steps = run.model.num_steps
    if steps is not None and not 1 <= steps <= num_steps:
        raise ConfigError(f"--steps must be in [1, {num_steps}] (the run's T); got {steps}")
    test_set, _ = run_test_set(run, data_dir=data_dir)
    precision = run_precision(train_values, device, precision)
    with torch_threads(threads if threads is not None else config.threads):
        by_step = accuracy_by_step(run.model, test_set, run.info, seed=derive_seed(config.seed, "test"),
                                   batch_size=batch_size or config.eval_batch_size, precision=precision,
                                   progress=progress)
    return {"test_accuracy": by_step[-1], "num_steps": num_steps, "steps": steps, "precision": precision,
            "accuracy_at_steps": by_step[steps - 1] if steps is not None else None,
            "num_images": len(test_set), "by_step": by_step}
