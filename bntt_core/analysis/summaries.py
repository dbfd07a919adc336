"""Summaries of runs for comparison: one row per run (accuracy, latency, spikes, energy, robustness, early
exit) and the methods ranked on every metric with the one rule of bntt_core.analysis.verdicts.

The dashboard's Compare page shows them (`dashboard/views/compare.py`); notebooks may call them directly.

    summary = comparison_summary({"BNTT": {"summary": card_summary, "tables": tables}, ...})
    method_verdicts(summary, groups=seed_groups(summaries))
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bntt_core.analysis.early_exit import early_exit_summary
from bntt_core.analysis.tables import common_noise_mode, noise_table
from bntt_core.analysis.verdicts import compare_methods
from bntt_core.runs.listing import run_method

# Known summary columns (bntt_core.analysis.summaries.comparison_summary writes them): panel title with unit, log
# axis, whether it is an accuracy (shown in %), which way is better.
COMPARE_METRICS: dict[str, tuple[str, bool, bool, str]] = {
    "accuracy": ("test accuracy (%)", False, True, "higher"),
    "steps": ("time steps used", False, False, "lower"),
    "spikes_per_neuron": ("spikes per neuron per image", True, False, "lower"),
    "spike_rate": ("spike rate, mean over layers (spikes / neuron over T)", True, False, "lower"),
    "total_spike_rate": ("total spike rate (spikes / neuron over T)", True, False, "lower"),
    "energy_pj": ("energy per image (pJ)", True, False, "lower"),
    "noise_auc": ("mean accuracy over the noise σ grid (%)", False, True, "higher"),
    "fgsm_accuracy": ("accuracy under FGSM (%)", False, True, "higher"),
    "early_exit_steps": ("steps used with the γ early exit", False, False, "lower"),
    "early_exit_accuracy": ("accuracy with the γ early exit (%)", False, True, "higher"),
}



def _mean_accuracy_over(table: pd.DataFrame, column: str) -> float:
    """Mean accuracy over the table's grid (the area under the curve ÷ the grid's span)."""
    df = table.sort_values(column)
    x, y = df[column].to_numpy(dtype=float), df["accuracy"].to_numpy(dtype=float)
    if len(x) < 2 or x[-1] == x[0]:
        return float(y.mean()) if len(y) else float("nan")
    area = float(np.sum((y[1:] + y[:-1]) / 2.0 * np.diff(x)))  # trapezoids (numpy 1.x and 2.x alike)
    return area / float(x[-1] - x[0])


def comparison_summary(runs: dict[str, dict], *, fgsm_epsilon: float | None = None,
                       threshold: float | None = None, noise_mode: str | None = None) -> pd.DataFrame:
    """One row per run for the Compare page (`bntt_core.viz.compare_figure`).

    `runs`: {run label: {"summary": run summary (as in `describe_runs`), "tables": {name: DataFrame}}}.
    Columns: run, method, accuracy (at T, from accuracy_by_step, else the recorded test accuracy),
    steps (T; 1 for the ANN), spike_rate (mean over layers of the Fig 5 rate), energy_pj (per image,
    summed over layers), noise_auc (mean accuracy over the σ grid of the noise curve of `noise_mode`;
    None: the mode all the runs' tables share, unclipped first, `bntt_core.analysis.tables.common_noise_mode`;
    a run without that mode gets NaN), fgsm_accuracy (at the grid ε nearest
    to `fgsm_epsilon`, default the largest), and with a `threshold`, early_exit_steps and
    early_exit_accuracy for runs that have γ (BNTT). Missing data are NaN (a missing bar).
    """
    if noise_mode is None:
        noise_mode = common_noise_mode(t for run in runs.values()
                                       if (t := (run.get("tables") or {}).get("noise")) is not None and len(t))
    rows = []
    for label, run in runs.items():
        summary, tables = run.get("summary", {}), run.get("tables", {})
        method = run_method(summary)
        row = {"run": label, "method": method, "accuracy": summary.get("test_accuracy"),
               "steps": 1 if method == "ann" else summary.get("num_steps"), "spike_rate": np.nan,
               "energy_pj": np.nan, "noise_auc": np.nan, "fgsm_accuracy": np.nan}
        by_step = tables.get("accuracy_by_step")
        if by_step is not None and len(by_step):
            row["accuracy"] = float(by_step.sort_values("t")["accuracy"].iloc[-1])
        rate = tables.get("spike_rate")
        if rate is not None and len(rate) and method != "ann":
            row["spike_rate"] = float(rate["rate"].mean())
        energy = tables.get("energy")
        if energy is not None and len(energy):
            row["energy_pj"] = float(energy["energy_pj"].sum())
        noise = tables.get("noise")
        if noise is not None and len(noise) and noise_mode is not None:
            curve = noise_table(noise, noise_mode)
            if len(curve):
                row["noise_auc"] = _mean_accuracy_over(curve, "sigma")
        fgsm = tables.get("fgsm")
        if fgsm is not None and len(fgsm):
            target = float(fgsm["epsilon"].max()) if fgsm_epsilon is None else float(fgsm_epsilon)
            nearest = fgsm.loc[(fgsm["epsilon"] - target).abs().idxmin()]
            row["fgsm_accuracy"] = float(nearest["accuracy"])
        if threshold is not None:
            gamma_mean = tables.get("gamma_mean")
            row["early_exit_steps"], row["early_exit_accuracy"] = np.nan, np.nan
            if gamma_mean is not None and len(gamma_mean) and by_step is not None and len(by_step):
                exit_info = early_exit_summary(gamma_mean, by_step, threshold)
                row["early_exit_steps"], row["early_exit_accuracy"] = exit_info["exit_step"], exit_info["accuracy"]
        rows.append(row)
    frame = pd.DataFrame(rows)
    for column in frame.columns:
        if column not in ("run", "method"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def seed_groups(summaries: dict[str, dict]) -> dict[str, str]:
    """{run label: group} where a group is one method on one dataset, architecture and T — the runs of
    one experiment over several training seeds (`summary["seed"]`, config train.seed). Named by the
    method alone when every run shares dataset, architecture and T, else 'method · dataset · arch · T n'."""
    keys = {label: (run_method(s), s.get("dataset"), s.get("arch"), 1 if s.get("spiking") is False else s.get("num_steps"))
            for label, s in summaries.items()}
    shared = len({key[1:] for key in keys.values()}) <= 1
    return {label: key[0] if shared else f"{key[0]} · {key[1]} · {key[2]} · T {key[3]}" for label, key in keys.items()}


def method_verdicts(summary: pd.DataFrame, groups: dict[str, str] | None = None) -> pd.DataFrame:
    """The Compare page's verdicts: for every metric of `summary` (comparison_summary) whose better
    direction is known (COMPARE_METRICS) and that at least two groups have, the groups
    (`seed_groups`; default: each run its own) ranked with `bntt_core.analysis.verdicts.compare_methods`: mean ±
    std over seeds, "tie" within the spread, "one seed" when a group has a single run.

    Columns: metric, better, ranking (best first, '>' ahead, '≈' tie, '?' one seed), best, next,
    verdict (best against next: ahead | tie | one seed), difference (best − next, raw, in the metric's
    unit; accuracies in percentage points), seeds (n per group)."""

    rows = []
    for metric, (_title, _log, is_accuracy, better) in COMPARE_METRICS.items():
        if metric not in summary.columns or better not in ("higher", "lower"):
            continue
        values: dict[str, list[float]] = {}
        for run, value in zip(summary["run"], summary[metric], strict=True):
            if pd.notna(value):
                scale = 100.0 if is_accuracy and float(value) <= 1.0 else 1.0
                values.setdefault((groups or {}).get(run, run), []).append(float(value) * scale)
        if len(values) < 2:
            continue
        comparison = compare_methods(values, higher_is_better=better == "higher")
        best, nxt = comparison.order[0], comparison.order[1]
        pair = comparison.pair(best, nxt)
        digits = 2 if is_accuracy else 3
        rows.append({"metric": metric, "better": better, "ranking": comparison.summary(digits),
                     "best": best, "next": nxt, "verdict": pair.verdict, "difference": pair.difference,
                     "seeds": ", ".join(f"{m} {comparison.stats[m].n}" for m in comparison.order)})
    return pd.DataFrame(rows, columns=["metric", "better", "ranking", "best", "next", "verdict", "difference", "seeds"])
