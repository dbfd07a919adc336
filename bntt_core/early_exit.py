"""Temporal early exit: the paper's γ rule (§3.4, Fig 7) and, as OUR extension, per-sample dynamic exit.

The paper's rule (SPEC "Early exit"): g(l, t) = mean over channels of BNTT γ_t at layer l. For a
threshold τ the exit step is the smallest t ≥ 1 such that g(l, t') < τ for every layer l and every
t' > t, i.e. t_exit = max(1, max{t : max_l g(l, t) ≥ τ}) (and T when τ ≤ the last step's maximum).
It is known before any input is seen; the network then predicts from the output accumulated up to
t_exit. `early_exit_curve` evaluates it for a whole threshold grid from the per-step outputs of ONE
recorded pass (`bntt_core.recording.Recording.correct_by_step`): no inference per threshold.

Dynamic exit (ours, not the paper's): every sample stops at the first step t at which the softmax of
its output accumulated up to t has max probability ≥ c (optionally also: its prediction has not
changed for the last k steps); samples that never qualify run all T steps. One row per c, giving an
accuracy–latency curve (mean exit step over the samples). Also computed from the stored outputs.

    g = gamma_table(model); gm = gamma_mean_table(g)
    exit_step_from_gamma_mean(gm, 0.1)                              # → int
    early_exit_curve(rec.correct_by_step, gm, threshold_grid(gm))   # threshold, exit_step, accuracy, ...
    dynamic_exit_curve(rec.predictions, rec.confidence, rec.labels)

Run the tests: .venv/bin/python -m pytest tests/test_early_exit.py -q
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from bntt_core.norms import BNTT

GRID_POINTS = 201  # evenly spaced thresholds in the default grid (plus every breakpoint of the rule)
DYNAMIC_CONFIDENCES = tuple(np.round(np.linspace(0.0, 0.99, 100), 4)) + (0.995, 0.999, 1.0)


def gamma_table(model: nn.Module) -> pd.DataFrame:
    """γ of every BNTT layer, step and channel: columns layer, t, channel, gamma (empty if no BNTT)."""
    frames = []
    norm_layers = model.norm_layers() if hasattr(model, "norm_layers") else {}
    for name, norm in norm_layers.items():
        if not isinstance(norm, BNTT):
            continue
        gamma = norm.weight.detach().double().cpu()  # [T, C]
        steps, channels = gamma.shape
        frames.append(pd.DataFrame({
            "layer": name,
            "t": np.repeat(np.arange(1, steps + 1), channels),
            "channel": np.tile(np.arange(channels), steps),
            "gamma": gamma.reshape(-1).numpy(),
        }))
    if not frames:
        return pd.DataFrame(columns=["layer", "t", "channel", "gamma"])
    return pd.concat(frames, ignore_index=True)


def gamma_mean_table(gamma: pd.DataFrame) -> pd.DataFrame:
    """Mean of γ over channels per layer and step: columns layer, t, mean_gamma (layer order kept)."""
    missing = {"layer", "t", "gamma"} - set(gamma.columns)
    if missing:
        raise ValueError(f"a gamma table needs columns layer, t, gamma; missing {sorted(missing)}")
    if gamma.empty:
        return pd.DataFrame(columns=["layer", "t", "mean_gamma"])
    out = gamma.groupby(["layer", "t"], sort=False)["gamma"].mean().reset_index()
    return out.rename(columns={"gamma": "mean_gamma"})


def _gamma_matrix(gamma_mean: pd.DataFrame) -> np.ndarray:
    """[L, T] matrix g(l, t) from a gamma_mean table; checks that every layer has steps 1..T."""
    missing = {"layer", "t", "mean_gamma"} - set(gamma_mean.columns)
    if missing:
        raise ValueError(f"a gamma_mean table needs columns layer, t, mean_gamma; missing {sorted(missing)}")
    if gamma_mean.empty:
        raise ValueError("early exit needs the BNTT γ of at least one layer; this model has no BNTT layer "
                         "(norm bn/ln/none or an ANN): the paper's exit rule does not apply")
    table = gamma_mean.pivot(index="layer", columns="t", values="mean_gamma")
    steps = sorted(int(t) for t in table.columns)
    if steps != list(range(1, len(steps) + 1)):
        raise ValueError(f"gamma_mean must cover steps 1..T for every layer; got steps {steps}")
    matrix = table.reindex(columns=steps).to_numpy(dtype=np.float64)  # [L, T]
    if np.isnan(matrix).any():
        holes = table.columns[np.isnan(matrix).any(0)].tolist()
        raise ValueError(f"gamma_mean has layers without a value at steps {holes}")
    return matrix


def exit_steps(gamma_mean: pd.DataFrame, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """The paper's exit step for every threshold: smallest t ≥ 1 with g(l, t') < τ for all l, t' > t."""
    matrix = _gamma_matrix(gamma_mean)
    thresholds = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    if thresholds.size == 0:
        raise ValueError("the threshold grid is empty: give at least one threshold")
    if not np.isfinite(thresholds).all():
        raise ValueError(f"thresholds must be finite; got {thresholds[~np.isfinite(thresholds)][:5].tolist()}")
    peak = matrix.max(0)  # [T]: max_l g(l, t)
    # reaches[k, t] = some layer has g ≥ τ_k at step t+1; the exit is the last such step (at least 1)
    reaches = peak[None, :] >= thresholds[:, None]  # [K, T]
    steps = peak.shape[0]
    last = np.where(reaches.any(1), steps - np.argmax(reaches[:, ::-1], axis=1), 1)
    return np.maximum(last, 1).astype(np.int64)


def exit_step_from_gamma_mean(gamma_mean_df: pd.DataFrame, threshold: float) -> int:
    """The paper's exit step for one threshold τ (SPEC "Early exit"); ValueError if there is no BNTT γ."""
    return int(exit_steps(gamma_mean_df, [float(threshold)])[0])


def threshold_grid(gamma_mean: pd.DataFrame, points: int = GRID_POINTS) -> np.ndarray:
    """A fine grid: `points` evenly spaced τ in [0, 1.05·max g], plus, for every distinct value of
    max_l g(l, t), the next float above it, so every exit step the rule can give appears in the curve."""
    matrix = _gamma_matrix(gamma_mean)
    if points < 2:
        raise ValueError(f"a threshold grid needs at least 2 points; got {points}")
    peak = matrix.max(0)
    top = max(float(peak.max()) * 1.05, 1e-6)
    breakpoints = np.nextafter(np.unique(peak), np.inf)
    grid = np.unique(np.concatenate([np.linspace(0.0, top, points), breakpoints[breakpoints > 0]]))
    return grid


def _as_bool_matrix(correct_by_step) -> np.ndarray:
    array = correct_by_step.detach().cpu().numpy() if isinstance(correct_by_step, torch.Tensor) \
        else np.asarray(correct_by_step)
    if array.ndim != 2:
        raise ValueError(f"correct_by_step must be [T, N]; got shape {array.shape}")
    if array.shape[1] == 0:
        raise ValueError("correct_by_step has no samples")
    return array.astype(bool)


def early_exit_curve(correct_by_step, gamma_mean: pd.DataFrame,
                     thresholds: Sequence[float] | np.ndarray | None = None) -> pd.DataFrame:
    """Accuracy and exit step for every threshold, from per-step correctness [T, N] of ONE pass.

    Columns: threshold, exit_step, accuracy, steps_saved (= T − exit_step), num_steps.
    `thresholds=None` uses `threshold_grid(gamma_mean)`; an empty grid is a ValueError.
    """
    correct = _as_bool_matrix(correct_by_step)  # [T, N]
    matrix = _gamma_matrix(gamma_mean)
    if matrix.shape[1] != correct.shape[0]:
        raise ValueError(f"γ covers T = {matrix.shape[1]} steps but the recorded outputs cover "
                         f"{correct.shape[0]}: they must come from the same model")
    grid = threshold_grid(gamma_mean) if thresholds is None else np.asarray(thresholds, dtype=np.float64).reshape(-1)
    steps = exit_steps(gamma_mean, grid)
    accuracy_by_step = correct.mean(1)  # [T]
    total = correct.shape[0]
    return pd.DataFrame({
        "threshold": grid,
        "exit_step": steps,
        "accuracy": accuracy_by_step[steps - 1],
        "steps_saved": total - steps,
        "num_steps": total,
    })


def dynamic_exit_steps(predictions, confidence, confidence_level: float, stable_steps: int = 0) -> torch.Tensor:
    """OURS: per-sample exit step (1-based, [N]): the first t with confidence ≥ c and, if stable_steps = k > 0,
    the same prediction at steps t−k..t; T if none."""
    predictions = torch.as_tensor(predictions)
    confidence = torch.as_tensor(confidence)
    if predictions.shape != confidence.shape or predictions.dim() != 2:
        raise ValueError(f"predictions and confidence must both be [T, N]; got {tuple(predictions.shape)} "
                         f"and {tuple(confidence.shape)}")
    if stable_steps < 0:
        raise ValueError(f"stable_steps must be ≥ 0; got {stable_steps}")
    ok = confidence >= confidence_level  # [T, N]
    if stable_steps:
        same = torch.zeros_like(ok)
        same[1:] = predictions[1:] == predictions[:-1]  # same[t]: unchanged from t−1 to t
        stable = torch.ones_like(ok)
        for k in range(stable_steps):  # unchanged over the last k transitions
            shifted = torch.zeros_like(ok)
            shifted[k:] = same[: same.shape[0] - k]
            stable &= shifted
        ok &= stable
    ok[-1] = True  # every sample stops at T at the latest
    return ok.int().argmax(0) + 1  # first True per column


def dynamic_exit_curve(predictions, confidence, labels,
                       confidences: Sequence[float] | np.ndarray | None = None,
                       stable_steps: int = 0) -> pd.DataFrame:
    """OURS, not the paper's: accuracy vs mean exit step of per-sample confidence-based exit.

    predictions, confidence: [T, N] (argmax and max softmax of the output accumulated up to t);
    labels [N]. Columns: confidence, mean_exit_step, accuracy, steps_saved, stable_steps, num_steps.
    """
    predictions = torch.as_tensor(predictions)
    confidence = torch.as_tensor(confidence)
    labels = torch.as_tensor(labels).to(predictions.device)
    if labels.dim() != 1 or labels.shape[0] != predictions.shape[-1]:
        raise ValueError(f"labels must be [N] with N = {predictions.shape[-1]}; got {tuple(labels.shape)}")
    grid = np.asarray(DYNAMIC_CONFIDENCES if confidences is None else confidences, dtype=np.float64).reshape(-1)
    if grid.size == 0:
        raise ValueError("the confidence grid is empty: give at least one confidence level")
    steps = predictions.shape[0]
    samples = torch.arange(predictions.shape[1], device=predictions.device)
    rows = []
    for level in grid:
        exits = dynamic_exit_steps(predictions, confidence, float(level), stable_steps)  # [N]
        correct = predictions[exits - 1, samples] == labels
        mean_exit = float(exits.double().mean())
        rows.append((float(level), mean_exit, float(correct.double().mean()), steps - mean_exit, stable_steps, steps))
    return pd.DataFrame(rows, columns=["confidence", "mean_exit_step", "accuracy", "steps_saved",
                                       "stable_steps", "num_steps"])
