"""Temporal early exit: the paper's γ rule (§3.4, Fig 7) and, as OUR extension, per-sample dynamic exit.

The paper's rule (SPEC "Early exit"): g(l, t) = mean over channels of BNTT γ_t at layer l. For a
threshold τ the exit step is the smallest t ≥ 1 such that g(l, t') < τ for every layer l and every
t' > t, i.e. t_exit = max(1, max{t : max_l g(l, t) ≥ τ}) (and T when τ ≤ the last step's maximum).
It is known before any input is seen; the network then predicts from the output accumulated up to
t_exit. `early_exit_curve` evaluates it for a whole threshold grid from the per-step outputs of ONE
recorded pass (`bntt_core.analysis.recording.Recording.correct_by_step`): no inference per threshold.

Dynamic exit (ours, not the paper's): every sample stops at the first step t at which the softmax of
its output accumulated up to t has max probability ≥ c (optionally also: its prediction has not
changed for the last k steps); samples that never qualify run all T steps. One row per c, giving an
accuracy–latency curve (mean exit step over the samples). Also computed from the stored outputs.

    g = gamma_table(model); gm = gamma_mean_table(g)
    exit_step_from_gamma_mean(gm, 0.1)                              # → int
    early_exit_curve(rec.correct_by_step, gm, threshold_grid(gm))   # threshold, exit_step, accuracy, ...
    dynamic_exit_curve(rec.predictions, rec.confidence, rec.labels)

Without the test set (SPEC: report τ = 0.1; choose any other τ on held-out training data; compare with
truncating a network without BNTT at the same step) — the early_exit_summary table:

    exit_summary(gm, test_by_step, validation_by_step)     # rows "paper" (τ 0.1), "validation" (chosen there)
    choose_threshold(validation_by_step, gm)                # earliest exit losing ≤ 1 point on validation
    truncation_summary(by_step_of_a_bn_run, {"bntt": summary})   # rows "truncation" at those steps
    exit_comparison("bntt", summary, {"bn": by_step})       # both, for a figure or a table

Run the tests: .venv/bin/python -m pytest tests/test_early_exit.py -q
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from bntt_core.nn.norms import BNTT

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
    return exit_steps_from_peaks(matrix.max(0)[None, :], thresholds)[:, 0]  # peak [1, T]: max_l g(l, t)


def exit_steps_from_peaks(peaks: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The rule's core: `peaks` [N, T] = max over layers of the mean γ at each step (N networks, or one
    network after N epochs) → exit steps [K, N] for thresholds [K]: the last step at which the peak is ≥ τ,
    at least 1."""
    # reaches[k, n, t] = some layer of network n has g ≥ τ_k at step t+1; the exit is the last such step
    reaches = peaks[None, :, :] >= np.asarray(thresholds, dtype=np.float64)[:, None, None]  # [K, N, T]
    steps = peaks.shape[-1]
    last = np.where(reaches.any(-1), steps - np.argmax(reaches[..., ::-1], axis=-1), 1)
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


# ------------------------------------------------------------- the exit summary (issue 15: no test set)
PAPER_THRESHOLD = 0.1  # the paper's τ (Fig 4: exit at t = 20 of 25 on CIFAR-10 VGG9)
MAX_VALIDATION_LOSS = 0.01  # τ on the validation slice: the earliest exit losing ≤ 1 point there
SUMMARY_RULES = ("paper", "validation", "truncation")
SUMMARY_COLUMNS = ("rule", "step_rule", "source_run", "threshold", "threshold_low", "threshold_high", "exit_step",
                   "num_steps", "steps_saved", "accuracy", "full_accuracy", "accuracy_change", "validation_accuracy",
                   "full_validation_accuracy", "validation_accuracy_change", "validation_images", "available",
                   "reason")


def accuracy_at_step(accuracy_by_step: pd.DataFrame, step: int) -> float:
    """A run's test accuracy after `step` steps, read from its accuracy_by_step table (t, accuracy): the
    prediction from the output accumulated up to `step`, i.e. the network plainly truncated there."""
    missing = {"t", "accuracy"} - set(accuracy_by_step.columns)
    if missing:
        raise ValueError(f"an accuracy_by_step table needs columns t, accuracy; missing {sorted(missing)}")
    by_t = accuracy_by_step.set_index(accuracy_by_step["t"].astype(int))["accuracy"]
    if int(step) not in by_t.index:
        raise ValueError(f"step {step} is outside the run's steps 1..{int(by_t.index.max()) if len(by_t) else 0}")
    return float(by_t.loc[int(step)])


def _by_step_array(values) -> np.ndarray:
    """Per-step accuracy [T] from a list/array or an accuracy_by_step table."""
    if isinstance(values, pd.DataFrame):
        return values.sort_values("t")["accuracy"].to_numpy(dtype=np.float64)
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0:
        raise ValueError("per-step accuracy is empty")
    return array


def choose_threshold(validation_by_step, gamma_mean: pd.DataFrame, max_loss: float = MAX_VALIDATION_LOSS,
                     thresholds: Sequence[float] | np.ndarray | None = None) -> dict:
    """The τ of the earliest exit step whose validation accuracy is at most `max_loss` (a fraction: 0.01 =
    1 point) below the full-T validation accuracy. The rule gives that step for an interval of τ; the
    middle of the grid points in it is returned as `threshold` (with threshold_low/high), so a rounding of
    γ does not flip it. Keys: threshold, threshold_low, threshold_high, exit_step, validation_accuracy,
    full_validation_accuracy."""
    accuracy = _by_step_array(validation_by_step)
    grid = threshold_grid(gamma_mean) if thresholds is None else np.asarray(thresholds, dtype=np.float64).reshape(-1)
    steps = exit_steps(gamma_mean, grid)
    if _gamma_matrix(gamma_mean).shape[1] != accuracy.size:
        raise ValueError(f"γ covers T = {_gamma_matrix(gamma_mean).shape[1]} steps but the validation accuracy "
                         f"covers {accuracy.size}")
    full = float(accuracy[-1])
    ok = accuracy[steps - 1] >= full - float(max_loss) - 1e-12
    if not ok.any():  # only when the grid cannot reach T (a custom grid): take its latest exit
        ok = steps == steps.max()
    chosen = int(steps[ok].min())
    interval = grid[steps == chosen]
    low, high = float(interval.min()), float(interval.max())
    return {"threshold": (low + high) / 2.0, "threshold_low": low, "threshold_high": high, "exit_step": chosen,
            "validation_accuracy": float(accuracy[chosen - 1]), "full_validation_accuracy": full}


def _row(**values) -> dict:
    row = dict.fromkeys(SUMMARY_COLUMNS, np.nan)
    row.update(values)
    return row


def exit_summary(gamma_mean: pd.DataFrame, test_by_step, validation_by_step=None, *,
                 validation_unavailable: str | None = None, validation_images: int = 0, run: str = "",
                 paper_threshold: float = PAPER_THRESHOLD, max_loss: float = MAX_VALIDATION_LOSS) -> pd.DataFrame:
    """The early_exit_summary rows of a BNTT run (columns SUMMARY_COLUMNS):

    * rule "paper": τ = 0.1, its exit step, the test accuracy there and its change vs all T steps;
    * rule "validation": τ chosen on the held-out validation slice (`choose_threshold`), then applied to
      the test set; without per-step validation accuracy the row is available = False with the reason
      (`validation_unavailable`): never a fallback to the test set.
    Accuracies are fractions; accuracy_change = accuracy at the exit − accuracy at T.
    """
    test = _by_step_array(test_by_step)
    total = int(test.size)
    full = float(test[-1])
    validation = None if validation_by_step is None else _by_step_array(validation_by_step)
    paper_step = exit_step_from_gamma_mean(gamma_mean, paper_threshold)
    paper = _row(rule="paper", step_rule="paper", source_run=run, threshold=float(paper_threshold),
                 threshold_low=float(paper_threshold), threshold_high=float(paper_threshold), exit_step=paper_step,
                 num_steps=total, steps_saved=total - paper_step, accuracy=float(test[paper_step - 1]),
                 full_accuracy=full, accuracy_change=float(test[paper_step - 1]) - full,
                 validation_images=int(validation_images), available=True, reason="")
    if validation is not None:
        paper.update(validation_accuracy=float(validation[paper_step - 1]), full_validation_accuracy=float(validation[-1]),
                     validation_accuracy_change=float(validation[paper_step - 1] - validation[-1]))
        chosen = choose_threshold(validation, gamma_mean, max_loss)
        step = chosen["exit_step"]
        chosen_row = _row(rule="validation", step_rule="validation", source_run=run, **chosen, num_steps=total,
                          steps_saved=total - step, accuracy=float(test[step - 1]), full_accuracy=full,
                          accuracy_change=float(test[step - 1]) - full,
                          validation_accuracy_change=chosen["validation_accuracy"] - chosen["full_validation_accuracy"],
                          validation_images=int(validation_images), available=True, reason="")
    else:
        chosen_row = _row(rule="validation", step_rule="validation", source_run=run, num_steps=total,
                          full_accuracy=full, validation_images=0, available=False,
                          reason=validation_unavailable or "no per-step accuracy on a validation slice was given")
    return pd.DataFrame([paper, chosen_row], columns=list(SUMMARY_COLUMNS))


def truncation_summary(test_by_step: pd.DataFrame, sources: dict[str, pd.DataFrame], *,
                       no_source_reason: str | None = None) -> pd.DataFrame:
    """The early_exit_summary rows of a run WITHOUT BNTT γ: plain truncation at the exit steps that BNTT
    runs chose (the baseline the γ rule must beat, SPEC "Early exit").

    `sources`: {BNTT run name: its early_exit_summary}; one row (rule "truncation") per available
    paper/validation row of each, with step_rule and source_run saying where the step came from, the
    threshold the BNTT run used, and this run's test accuracy at that step (`accuracy_at_step`). A source
    with another T gives an unavailable row (a step is another share of the budget there); no source at
    all gives one unavailable row with `no_source_reason`.
    """
    by_step = test_by_step.sort_values("t")
    total = int(by_step["t"].max())
    full = accuracy_at_step(by_step, total)
    rows = []
    for source, summary in sources.items():
        for item in summary.itertuples(index=False):
            if item.rule not in ("paper", "validation") or not _truthy(item.available):
                continue
            base = dict(rule="truncation", step_rule=item.rule, source_run=source, threshold=item.threshold,
                        threshold_low=item.threshold_low, threshold_high=item.threshold_high, num_steps=total,
                        full_accuracy=full)
            if int(item.num_steps) != total:
                rows.append(_row(**base, available=False,
                                 reason=f"{source} has T = {int(item.num_steps)}, this run T = {total}: "
                                        f"its exit step is another share of the steps here"))
                continue
            step = int(item.exit_step)
            accuracy = accuracy_at_step(by_step, step)
            rows.append(_row(**base, exit_step=step, steps_saved=total - step, accuracy=accuracy,
                             accuracy_change=accuracy - full, available=True, reason=""))
    if not rows:
        rows.append(_row(rule="truncation", step_rule="", source_run="", num_steps=total, full_accuracy=full,
                         available=False, reason=no_source_reason or "no BNTT run to take the exit step from"))
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _truthy(value) -> bool:
    """`available` as read back from a CSV (bool, or the strings True/False)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) and not (isinstance(value, float) and np.isnan(value))


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """An early_exit_summary as read from its CSV, with `available` as bool and `reason` as text (the one
    place that normalises it; views and notebooks go through it)."""
    out = df.copy()
    for column in SUMMARY_COLUMNS:
        if column not in out.columns:
            out[column] = np.nan
    out["available"] = [_truthy(v) for v in out["available"]]
    for column in ("reason", "step_rule", "source_run", "rule"):
        out[column] = [("" if pd.isna(value) else str(value)) for value in out[column]]
    return out


def exit_comparison(bntt_run: str, summary: pd.DataFrame, others: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One BNTT run's summary (paper and validation rows) followed by the truncation baseline of every run
    in `others` ({name: accuracy_by_step}) at its exit steps; a `run` column says whose row it is."""
    own = summary_table(summary)
    own = own[own["rule"].isin(("paper", "validation"))]
    frames = [own.assign(run=bntt_run)]
    for name, by_step in others.items():
        frames.append(truncation_summary(by_step, {bntt_run: own}).assign(run=name))
    out = pd.concat(frames, ignore_index=True)
    return out[["run", *SUMMARY_COLUMNS]]


def describe_exit_rules(comparison: pd.DataFrame) -> list[str]:
    """One line per row of an `exit_comparison` (or a summary): what each rule chose and what it cost on
    the test set, unavailable rows with their reason, and whether the γ rule beat plain truncation."""
    table = summary_table(comparison)
    if "run" not in table.columns:
        table["run"] = table["source_run"]
    names = {"paper": "paper τ = 0.1", "validation": "τ chosen on the validation slice"}
    lines, own = [], {}
    for row in table.itertuples(index=False):
        rule = names.get(row.rule, f"truncated at the {names.get(row.step_rule, row.step_rule)} step")
        if not row.available:
            lines.append(f"{row.run}: {rule}: unavailable — {row.reason}")
            continue
        text = (f"{row.run}: {rule}: exit at t = {int(row.exit_step)} of {int(row.num_steps)} "
                f"({int(row.steps_saved)} steps saved), test accuracy {100 * row.accuracy:.2f}% "
                f"({100 * row.accuracy_change:+.2f} pts vs all steps)")
        if row.rule == "validation":
            text += (f"; τ = {row.threshold:.3g}, validation {100 * row.validation_accuracy_change:+.2f} pts on "
                     f"{int(row.validation_images)} held-out images")
        if row.rule in names:
            own[row.rule] = row.accuracy
        elif row.step_rule in own:
            margin = 100 * (own[row.step_rule] - row.accuracy)
            text += f" → the γ rule is {'ahead' if margin > 0 else 'not ahead'} by {margin:+.2f} pts"
        lines.append(text)
    return lines


# -------------------------------------------------------------- one run at one τ (dashboard)
def early_exit_summary(gamma_mean: pd.DataFrame, accuracy_by_step: pd.DataFrame, threshold: float, *,
                       spike_activity: pd.DataFrame | None = None, energy: pd.DataFrame | None = None) -> dict:
    """What the paper's temporal early exit at γ threshold `threshold` buys on one run.

    Returns exit_step (SPEC rule, `exit_step_from_gamma_mean`), num_steps (T), accuracy at the exit
    step and at T (from the output accumulated up to t), steps_saved and their fraction, and — when
    the spike_activity and energy tables are given — energy_pj (all T steps), energy_saved_pj and
    energy_saved_fraction. The energy after the exit is each layer's energy times the share of that
    layer's spikes that fall after the exit step; a layer the spike table does not list (the input
    or the output layer) is counted in proportion to the steps saved.
    """
    by_step = accuracy_by_step.sort_values("t")
    num_steps = int(by_step["t"].max())
    exit_step = min(int(exit_step_from_gamma_mean(gamma_mean, float(threshold))), num_steps)
    accuracy = by_step.set_index("t")["accuracy"]
    summary = {
        "threshold": float(threshold),
        "exit_step": exit_step,
        "num_steps": num_steps,
        "accuracy": float(accuracy.get(exit_step, float("nan"))),
        "full_accuracy": float(accuracy.get(num_steps, float("nan"))),
        "steps_saved": num_steps - exit_step,
        "steps_saved_fraction": (num_steps - exit_step) / num_steps,
    }
    if spike_activity is not None and energy is not None and len(energy):
        later_share = {}
        for layer, part in spike_activity.groupby("layer"):
            total = float(part["spikes_per_neuron"].sum())
            later = float(part.loc[part["t"] > exit_step, "spikes_per_neuron"].sum())
            later_share[str(layer)] = later / total if total > 0 else 0.0
        step_share = summary["steps_saved_fraction"]
        total_energy = float(energy["energy_pj"].sum())
        saved = float(sum(float(row.energy_pj) * later_share.get(str(row.layer), step_share)
                          for row in energy.itertuples()))
        summary.update(energy_pj=total_energy, energy_saved_pj=saved,
                       energy_saved_fraction=saved / total_energy if total_energy > 0 else 0.0)
    return summary
