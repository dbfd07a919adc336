"""What one analysis computes and on which images: the σ / ε grids, QUICK sizes, the noise modes, the image
selection (quick / subset) and the evaluation settings a run was measured with.
"""

from __future__ import annotations

from collections.abc import Iterable

from bntt_core.analysis import robustness

QUICK_IMAGES = 256
FULL_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
QUICK_SIGMAS = (0.0, 0.2, 0.5)
FULL_EPSILONS = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 32 / 255, 64 / 255)
QUICK_EPSILONS = (0.0, 8 / 255, 32 / 255)
# Noise modes one analysis computes by default (bntt_core.analysis.robustness.NOISE_MODES): the paper's unclipped
# noise, and clipped noise — comparable with the tables of the shipped runs (computed clipped) and the
# contrast that shows how clipping's mean shift hurts BNTT's per-step running means. "shift" on request.
DEFAULT_NOISE_MODES = ("unclipped", "clipped")
WEIGHTS_ONLY = ("gamma", "gamma_mean")  # read off the weights: no test images needed
RECORDED = ("accuracy_by_step", "spike_activity", "spike_rate", "bn_input", "bn_input_hist", "energy",
            "early_exit", "dynamic_exit", "early_exit_summary", "standard_metrics")


def check_noise_modes(modes: Iterable[str] | str) -> tuple[str, ...]:
    """Noise modes as a tuple without repeats; a comma-separated string is split. Unknown or no modes: ValueError."""
    if isinstance(modes, str):
        modes = modes.split(",")
    chosen = tuple(dict.fromkeys(str(mode).strip() for mode in modes if str(mode).strip()))
    unknown = [mode for mode in chosen if mode not in robustness.NOISE_MODES]
    if unknown:
        raise ValueError(f"unknown noise mode {', '.join(map(repr, unknown))}; choose among "
                         f"{', '.join(robustness.NOISE_MODES)} (comma-separated for several)")
    if not chosen:
        raise ValueError(f"no noise mode given; choose among {', '.join(robustness.NOISE_MODES)}")
    return chosen


def choose_images(images, *, quick: bool, subset: int | None):
    """The images an analysis uses: `subset` (≥ 1) of them, else QUICK_IMAGES with `quick`, else all; a
    fixed class-balanced selection (ImageSet.subset(n, seed=0)), the same for the test set and the
    validation slice."""
    limit = subset if subset is not None else QUICK_IMAGES if quick else None
    if limit is not None:
        if int(limit) < 1:
            raise ValueError(f"subset must be ≥ 1 image; got {limit}")
        if int(limit) < len(images):
            images = images.subset(int(limit), seed=0)
    return images


def run_settings(config) -> dict:
    # the precision the run measured its numbers in; analyze_run resolves it for the device (run_precision)
    return {"train_seed": config.seed, "eval_batch_size": config.eval_batch_size,
            "precision": config.precision_used or config.precision}
