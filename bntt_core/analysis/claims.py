"""The paper's claims checked on analysis tables: each `verdict_*` prints plain sentences about what the runs
show (computed, never assumed) and returns the table behind them, so a notebook's closing markdown can point at
printed numbers; plus the paper's own numbers (PAPER_NUMBERS) and the defaults its figures use (Fig 3's layer
and steps, Fig 6's layers).

Rankings of methods go through ONE rule, `bntt_core.analysis.verdicts.compare_methods`: mean ± std over the
seeds present, "tie" within the spread, "one seed" when a method has a single run. Runs of one method over
several seeds are grouped by `bntt_core.paper.run_groups` (pass `groups=` to the verdicts); without it every
run is its own group, i.e. one seed. Pure functions of DataFrames: tests/test_verdicts.py.

    peaks = peak_steps(gamma_mean, "mean_gamma")      # per layer: the step where γ peaks, flat or not
    verdict_accuracy(summary)                          # prints the ranking and whether BNTT > BN > none holds
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bntt_core.analysis.tables import common_noise_mode, noise_table
from bntt_core.analysis.verdicts import compare_methods


def _by_group(values: Mapping[str, float], groups: Mapping[str, str] | None) -> dict[str, list[float]]:
    """{group: [value of each of its runs]} from {run label: value}; no groups: each run its own group."""
    grouped: dict[str, list[float]] = {}
    for run, value in values.items():
        grouped.setdefault((groups or {}).get(run, run), []).append(float(value))
    return grouped


def _print_comparison(values: Mapping[str, float], groups: Mapping[str, str] | None, *, what: str,
                      higher_is_better: bool, focus: str | None = None, digits: int = 2, unit: str = ""):
    """Print the methods ranked by `what` (mean ± std over seeds, '>' ahead, '≈' tie, '?' one seed) and
    the verdict of `focus` (its group) against every other; returns the MethodComparison."""
    grouped = _by_group({run: v for run, v in values.items() if np.isfinite(v)}, groups)
    if not grouped:
        return None
    comparison = compare_methods(grouped, higher_is_better=higher_is_better)
    print(f"{what} ({'higher' if higher_is_better else 'lower'} is better): {comparison.summary(digits, unit)}.")
    focus_group = (groups or {}).get(focus, focus) if focus is not None else None
    if focus_group in comparison.stats and len(comparison.order) > 1:
        verdicts = [comparison.pair(focus_group, other).text(digits, unit)
                    for other in comparison.order if other != focus_group]
        print(f"→ {focus_group} against the others: " + "; ".join(verdicts) + ".")
    return comparison
def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _percent(value: float) -> float:
    """Accuracy as percent whether the table holds fractions or percent."""
    return 100.0 * value if value <= 1.0 else value


FLAT_TOLERANCE = 0.05  # a layer whose values vary by less than 5% of their peak over time is "flat"


def peak_steps(data: pd.DataFrame, value: str) -> pd.DataFrame:
    """Per layer (shallow → deep, as the table lists them): the step where `value` peaks, the peak,
    the value at the last step, last ÷ peak, and whether the layer is flat (its values vary by less
    than FLAT_TOLERANCE of the peak over time, so its peak step means nothing). Works on
    spike_activity (spikes_per_neuron) and gamma_mean (mean_gamma)."""
    rows = []
    for layer, part in data.groupby("layer", sort=False):
        part = part.sort_values("t")
        values = part[value].to_numpy(dtype=float)
        top = int(np.nanargmax(values)) if np.isfinite(values).any() else 0
        peak, last, low = float(values[top]), float(values[-1]), float(np.nanmin(values))
        rows.append({"layer": str(layer), "peak_t": int(part["t"].iloc[top]), "peak": peak, "last": last,
                     "last_over_peak": last / peak if peak > 0 else float("nan"),
                     "flat": not (peak > 0 and (peak - low) / peak >= FLAT_TOLERANCE),
                     "num_steps": int(part["t"].max())})
    return pd.DataFrame(rows)


def peaks_later_with_depth(peaks: pd.DataFrame) -> str:
    """"yes" when, over the layers that are not flat, each peaks no earlier than the one before it and
    the deepest later than the first (the paper's Fig 1C / Fig 6 pattern); "no"; or "not measurable"
    when fewer than two layers vary over time."""
    steps = peaks.loc[~peaks["flat"], "peak_t"].tolist()
    if len(steps) < 2:
        return f"not measurable (fewer than two layers vary by ≥ {FLAT_TOLERANCE:.0%} over time)"
    later = all(b >= a for a, b in zip(steps, steps[1:], strict=False)) and steps[-1] > steps[0]
    return "yes" if later else "no"


def rise_and_fall(peaks: pd.DataFrame, *, drop: float = 0.5) -> pd.Series:
    """Per layer: does the value peak before the last step and end at most `drop` × its peak?"""
    return (peaks["peak_t"] < peaks["num_steps"]) & (peaks["last_over_peak"] <= drop)


def _peak_text(peaks: pd.DataFrame) -> str:
    return ", ".join(f"{r.layer}: {'flat' if r.flat else f't = {r.peak_t}'}" for r in peaks.itertuples())


def verdict_spike_activity(spike_activity: Mapping[str, pd.DataFrame], bntt_label: str = "BNTT", *,
                           groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Fig 1: per run, the step at which each layer's activity peaks, whether deeper layers peak
    later, how many layers rise and then fall to ≤ half their peak, and what share of the peak
    activity is left at the last step (mean over layers); methods compared on that share (lower: falls
    off more) with `bntt_core.analysis.verdicts.compare_methods` over the seeds in `groups` (run_groups)."""
    rows = []
    for run, data in spike_activity.items():
        peaks = peak_steps(data, "spikes_per_neuron")
        rows.append({"run": run, "num_steps": int(peaks["num_steps"].max()),
                     "peak_by_layer": _peak_text(peaks),
                     "deeper_layers_peak_later": peaks_later_with_depth(peaks),
                     "layers_rising_and_falling": f"{int(rise_and_fall(peaks).sum())} of {len(peaks)}",
                     "last_step_over_peak": float(peaks["last_over_peak"].mean())})
    frame = pd.DataFrame(rows)
    for row in frame.itertuples():
        print(f"{row.run} (T = {row.num_steps}): layers peak at {row.peak_by_layer}; deeper layers peak "
              f"later: {row.deeper_layers_peak_later}; layers that rise then fall to ≤ half their peak: "
              f"{row.layers_rising_and_falling}; activity at the last step = {row.last_step_over_peak:.0%} of "
              f"the peak (mean over layers).")
    if bntt_label in set(frame["run"]) and len(frame) > 1:
        _print_comparison({r.run: 100.0 * r.last_step_over_peak for r in frame.itertuples()}, groups,
                          what="activity left at the last step, % of the peak", higher_is_better=False,
                          focus=bntt_label, digits=0, unit="%")
    return frame


def default_bn_layer(bn_input: pd.DataFrame, preferred: str = "conv5") -> str:
    """The paper's Fig 3 shows layer 5 (conv5 of VGG9); smaller networks use their deepest conv
    layer (else the deepest layer)."""
    layers = list(dict.fromkeys(bn_input["layer"].astype(str)))
    if preferred in layers:
        return preferred
    convs = [layer for layer in layers if layer.startswith("conv")]
    return (convs or layers)[-1]


def paper_steps(num_steps: int, paper: Sequence[int] = (1, 10, 20), paper_total: int = 25) -> list[int]:
    """The paper's steps (t = 1, 10, 20 of 25) scaled to a run with `num_steps` steps."""
    scaled = {min(num_steps, max(1, int(round(step * num_steps / paper_total)))) for step in paper}
    return sorted(scaled)


def verdict_bn_input(bn_input: pd.DataFrame, layer: str) -> dict:
    """Fig 3 in numbers for one layer: how far the input's mean moves over time, and how far each
    step's mean is from the ONE stored running mean, in units of the input's std (mean over steps).
    A gap of ≳ 0.5 std means inference normalises that step with a statistic that does not fit it."""
    part = bn_input[bn_input["layer"].astype(str) == str(layer)].sort_values("t")
    running = pd.to_numeric(part["running_mean"], errors="coerce").dropna()
    means = part["mean"].to_numpy(dtype=float)
    spread = float(np.nanmean(part["std"].to_numpy(dtype=float)))
    result = {"layer": str(layer), "num_steps": int(part["t"].max()),
              "mean_at_first_step": float(means[0]), "mean_at_last_step": float(means[-1]),
              "drift_over_std": float((np.nanmax(means) - np.nanmin(means)) / spread) if spread > 0 else float("nan"),
              "running_mean": float(running.mean()) if len(running) else float("nan")}
    print(f"{layer}: the mean of the norm's input goes from {means[0]:.3g} (t = 1) to {means[-1]:.3g} "
          f"(t = {result['num_steps']}); its range over time is {result['drift_over_std']:.2f} × the input's std.")
    if len(running):
        gaps = np.abs(means - result["running_mean"]) / spread if spread > 0 else np.full_like(means, np.nan)
        result["largest_gap_over_std"] = float(np.nanmax(gaps))
        result["steps_off_by_over_half_std"] = int(np.sum(gaps > 0.5))
        print(f"The one stored running mean is {result['running_mean']:.3g}; {result['steps_off_by_over_half_std']} "
              f"of {len(means)} steps have a mean more than 0.5 std away from it (largest gap "
              f"{result['largest_gap_over_std']:.2f} std).")
        print(f"→ a single statistic misfits some steps here: {_yes(result['steps_off_by_over_half_std'] > 0)}.")
    else:
        print("This run stores no single running mean (its norm keeps statistics per step, or none), so there is "
              "no mismatch to measure.")
    return result


def verdict_gamma(gamma_mean: pd.DataFrame) -> pd.DataFrame:
    """Figs 4 and 6: per BNTT layer, the step where mean γ peaks (or "flat" when it hardly changes
    over time) and what is left of it at the last step; whether deeper layers peak later."""
    peaks = peak_steps(gamma_mean, "mean_gamma")
    print("mean γ peaks at " + ", ".join(
        f"{r.layer}: {'flat' if r.flat else f't = {r.peak_t}'} (γ {r.peak:.3f}, last step {r.last:.3f})"
        for r in peaks.itertuples()) + ".")
    print(f"→ deeper layers peak later: {peaks_later_with_depth(peaks)}; layers whose mean γ ends at "
          f"≤ half its peak: {int(rise_and_fall(peaks).sum())} of {len(peaks)}.")
    return peaks


def verdict_early_exit(gamma_mean: pd.DataFrame, accuracy_by_step: pd.DataFrame, early_exit: pd.DataFrame | None,
                       threshold: float, *, max_drop_points: float = 1.0) -> dict:
    """Fig 4/7: the paper's exit at `threshold` (exit step, steps saved, accuracy and its drop) and,
    over the stored threshold grid, the largest saving that costs less than `max_drop_points`."""
    from bntt_core.analysis.early_exit import early_exit_summary

    summary = early_exit_summary(gamma_mean, accuracy_by_step, threshold)
    full, at_exit = _percent(summary["full_accuracy"]), _percent(summary["accuracy"])
    summary["accuracy_drop_points"] = full - at_exit
    print(f"threshold {threshold:g}: exit at t = {summary['exit_step']} of {summary['num_steps']} "
          f"({summary['steps_saved_fraction']:.0%} of the steps saved); accuracy {at_exit:.2f}% vs "
          f"{full:.2f}% with all steps (drop {summary['accuracy_drop_points']:.2f} points).")
    if early_exit is not None and len(early_exit):
        grid = early_exit.copy()
        grid["drop"] = full - grid["accuracy"].map(_percent)
        cheap = grid[grid["drop"] < max_drop_points]
        best = cheap.loc[cheap["steps_saved"].idxmax()] if len(cheap) else None
        if best is not None and best["steps_saved"] > 0:
            saved = float(best["steps_saved"]) / summary["num_steps"]
            summary.update(best_threshold=float(best["threshold"]), best_exit_step=int(best["exit_step"]),
                           best_saved_fraction=saved, best_drop_points=float(best["drop"]))
            print(f"largest saving under {max_drop_points:g} point of accuracy on the grid: threshold "
                  f"{best['threshold']:.3g} exits at t = {int(best['exit_step'])} ({saved:.0%} saved, drop "
                  f"{best['drop']:.2f} points).")
            print(f"→ early exit saves ≥ 20% of the steps for < {max_drop_points:g} point here: {_yes(saved >= 0.2)}.")
        else:
            summary.update(best_saved_fraction=0.0)
            print(f"→ no threshold on the grid saves a step for < {max_drop_points:g} point of accuracy here.")
    return summary


def gamma_histogram_layers(gamma: pd.DataFrame, paper: Sequence[str] = ("conv1", "conv4", "conv7")) -> list[str]:
    """The paper's Fig 6 layers when the run has them, else its first, middle and last BNTT layers."""
    layers = list(dict.fromkeys(gamma["layer"].astype(str)))
    if all(layer in layers for layer in paper):
        return list(paper)
    return list(dict.fromkeys([layers[0], layers[len(layers) // 2], layers[-1]]))


def verdict_spike_rate(rates: Mapping[str, pd.DataFrame], bntt_label: str = "BNTT", *,
                       groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Fig 5: the spike rate of every run per layer (wide), which run is sparsest in each layer, how
    many layers BNTT is the sparsest in, and the methods compared on the mean rate over layers
    (`bntt_core.analysis.verdicts.compare_methods` over the seeds in `groups`)."""
    wide = None
    for run, data in rates.items():
        column = data[["layer", "rate"]].astype({"layer": str}).rename(columns={"rate": run})
        wide = column if wide is None else wide.merge(column, on="layer", how="outer", sort=False)
    runs = list(rates)
    wide["sparsest"] = wide[runs].idxmin(axis=1)
    means = wide[runs].mean()
    print("spike rate (spikes per neuron over all steps), mean over layers: "
          + ", ".join(f"{run} {means[run]:.3g}" for run in runs) + ".")
    if bntt_label in runs:
        count = int((wide["sparsest"] == bntt_label).sum())
        print(f"{bntt_label} is the sparsest run in {count} of {len(wide)} layers.")
    _print_comparison({run: float(means[run]) for run in runs}, groups, what="mean spike rate over layers",
                      higher_is_better=False, focus=bntt_label if bntt_label in runs else None, digits=3)
    return wide


def verdict_robustness(curves: Mapping[str, pd.DataFrame], column: str, bntt_label: str = "BNTT", *,
                       groups: Mapping[str, str] | None = None, mode: str | None = None) -> pd.DataFrame:
    """Fig 8: per run, clean accuracy, accuracy at the strongest noise/attack, the mean accuracy
    over the grid (area under the curve ÷ its width) and the rank by that mean (1 = most robust); the
    methods compared on that mean with `bntt_core.analysis.verdicts.compare_methods` (mean ± std over the seeds
    in `groups`, "tie" within the spread, "one seed"). Noise tables (column "sigma"): the curve of noise
    `mode` (default None or "": the one every run has, unclipped first; a table without modes is clipped)."""
    if column == "sigma":
        mode = mode or common_noise_mode(curves.values())
        if mode is None:
            raise ValueError("the noise tables share no noise mode; pass mode= explicitly")
        curves = {run: noise_table(data, mode) for run, data in curves.items()}
        curves = {run: data for run, data in curves.items() if len(data)}
        print(f"noise mode: {mode}")
    rows = []
    for run, data in curves.items():
        data = data.sort_values(column)
        x, y = data[column].to_numpy(dtype=float), data["accuracy"].map(_percent).to_numpy(dtype=float)
        if len(x) > 1 and x[-1] > x[0]:
            area = float(np.sum((y[1:] + y[:-1]) / 2.0 * np.diff(x)) / (x[-1] - x[0]))
        else:
            area = float(y.mean())
        rows.append({"run": run, "clean_accuracy": float(y[0]), f"largest_{column}": float(x[-1]),
                     "accuracy_at_largest": float(y[-1]), "mean_accuracy_over_grid": area})
    frame = pd.DataFrame(rows)
    frame["rank"] = frame["mean_accuracy_over_grid"].rank(ascending=False, method="min").astype(int)
    frame = frame.sort_values("rank").reset_index(drop=True)
    symbol = "σ" if column == "sigma" else "ε"
    for row in frame.itertuples():
        print(f"#{row.rank} {row.run}: mean accuracy over the {symbol} grid {row.mean_accuracy_over_grid:.1f}% "
              f"(clean {row.clean_accuracy:.1f}%, at {symbol} = {row[3]:g}: {row.accuracy_at_largest:.1f}%).")
    comparison = _print_comparison(dict(zip(frame["run"], frame["mean_accuracy_over_grid"], strict=True)), groups,
                                   what=f"mean accuracy over the {symbol} grid", higher_is_better=True,
                                   focus=bntt_label if bntt_label in set(frame["run"]) else None, digits=1, unit="%")
    if comparison is not None:
        best = comparison.order[0]
        second = comparison.order[1] if len(comparison.order) > 1 else None
        verdict = "only method" if second is None else comparison.pair(best, second).verdict
        print(f"→ most robust here: {best} ({'ahead' if verdict == 'ahead' else verdict} against the next, "
              f"{second})." if second else f"→ most robust here: {best} (the only method).")
    return frame


def verdict_accuracy(summary: pd.DataFrame, order: Sequence[str] = ("bntt", "bn", "none")) -> None:
    """Tables 1/5/3: the runs ranked by test accuracy, and whether the methods in `order` (by
    default BNTT > BN > none, the paper's claim at low T) come out in that order: the runs of one method
    (its seeds, the `method` column) compared with `bntt_core.analysis.verdicts.compare_methods` — mean ± std,
    "tie" within the spread, "one seed" when a method has a single run."""
    ranked = summary.dropna(subset=["test_accuracy_percent"]).sort_values("test_accuracy_percent", ascending=False)
    print("ranked by test accuracy: " + ", ".join(f"{r.run} {r.test_accuracy_percent:.2f}%"
                                                  for r in ranked.itertuples()) + ".")
    present = [method for method in order if method in set(ranked["method"])]
    if len(present) > 1:
        chosen = ranked[ranked["method"].isin(present)]
        comparison = compare_methods({m: chosen.loc[chosen["method"] == m, "test_accuracy_percent"].tolist()
                                      for m in present})
        pairs = [comparison.pair(a, b).text(2, "%") for a, b in zip(present, present[1:], strict=False)]
        print(f"{comparison.summary(2, '%')}.")
        print(f"→ {' > '.join(present)} holds here: {comparison.holds(present)} ({'; '.join(pairs)}).")


def verdict_energy(energy: Mapping[str, pd.DataFrame], bntt_label: str = "BNTT", *,
                   groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Energy: each run's total per image (pJ), its synaptic operations and MACs, its ratio to
    BNTT's energy, and the methods compared on it (`bntt_core.analysis.verdicts.compare_methods` over the seeds
    in `groups`)."""
    totals = pd.DataFrame([{"run": run, "energy_pj": float(data["energy_pj"].sum()),
                            "synops": float(data["synops"].sum()), "macs": float(data["macs"].sum())}
                           for run, data in energy.items()])
    if bntt_label in set(totals["run"]):
        reference = float(totals.loc[totals["run"] == bntt_label, "energy_pj"].iloc[0])
        totals[f"times_{bntt_label}"] = totals["energy_pj"] / reference if reference > 0 else float("nan")
    totals = totals.sort_values("energy_pj").reset_index(drop=True)
    print("energy per image: " + ", ".join(f"{r.run} {r.energy_pj:.4g} pJ" for r in totals.itertuples()) + ".")
    comparison = _print_comparison(dict(zip(totals["run"], totals["energy_pj"] / 1e6, strict=True)), groups,
                                   what="energy per image", higher_is_better=False,
                                   focus=bntt_label if bntt_label in set(totals["run"]) else None, digits=3,
                                   unit=" µJ")
    if comparison is not None and len(comparison.order) > 1:
        verdict = comparison.pair(comparison.order[0], comparison.order[1]).verdict
        print(f"→ lowest energy here: {comparison.order[0]} ({verdict} against the next, {comparison.order[1]}).")
    return totals


# The paper's numbers (SPEC "Paper numbers"; the ones SPEC stars could not be checked against a copy
# of the tables). Method keys as in `bntt_core.runs.listing.run_method`.
PAPER_NUMBERS = pd.DataFrame([
    {"dataset": "CIFAR-10", "arch": "VGG9", "method": "bntt", "steps": 25, "accuracy_percent": 90.5,
     "source": "Table 1"},
    {"dataset": "CIFAR-10", "arch": "VGG9", "method": "bntt + early exit", "steps": 20, "accuracy_percent": 90.3,
     "source": "Table 1"},
    {"dataset": "CIFAR-10", "arch": "VGG9", "method": "converted", "steps": 1000, "accuracy_percent": 91.2,
     "source": "Table 1"},
    {"dataset": "CIFAR-10", "arch": "VGG9", "method": "none", "steps": 100, "accuracy_percent": 88.7,
     "source": "Table 1 (surrogate BP baseline)"},
    {"dataset": "CIFAR-100", "arch": "VGG11", "method": "bntt", "steps": 30, "accuracy_percent": 66.6,
     "source": "Table 1 (number not checked against a copy of the table)"},
    {"dataset": "Tiny-ImageNet", "arch": "VGG11", "method": "bntt", "steps": 30, "accuracy_percent": 57.8,
     "source": "Table 1 (number not checked against a copy of the table)"},
    {"dataset": "Sequential MNIST", "arch": "FC(1,256)-FC(256,256)-FC(256,10)", "method": "bntt", "steps": 784,
     "accuracy_percent": 96.6, "source": "Table 3"},
])


def paper_number(dataset: str, method: str) -> float:
    """The paper's accuracy (%) for `dataset` and `method` from PAPER_NUMBERS."""
    rows = PAPER_NUMBERS[(PAPER_NUMBERS["dataset"] == dataset) & (PAPER_NUMBERS["method"] == method)]
    if rows.empty:
        raise ValueError(f"no paper number for {dataset!r} / {method!r}; known:\n{PAPER_NUMBERS.to_string()}")
    return float(rows["accuracy_percent"].iloc[0])
