"""Compare view: BNTT against standard BN, no normalisation, LayerNorm, the ANN and ANN→SNN conversion on
accuracy, latency (time steps, and BNTT's early exit), spikes, energy and robustness — the paper's
argument on one page.

The summary row per run comes from `bntt_core.analysis.summaries.comparison_summary` over the analysis tables;
figures from `bntt_core.viz`. A page of `dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from bntt_core import viz
from bntt_core.analysis import summaries
from bntt_core.analysis.tables import common_noise_mode
from bntt_core.runs.listing import run_method
from dashboard import state

METHOD_ORDER = ("bntt", "bn", "bn-joint", "tdbn", "tebn", "ln", "none", "ann", "converted")

st.title("Compare")
st.caption("BNTT vs standard BN vs no normalisation vs LayerNorm vs the ANN vs ANN→SNN conversion: "
           "accuracy, latency, spikes, energy and robustness.")

cards = [c for c in state.list_runs() if c.ok]
if not cards:
    st.info("No readable run found. Train some (see the Runs view) or explore the Learn view.")
    st.stop()


def method_rank(card: state.RunCard) -> tuple[int, str]:
    method = run_method(card.summary)
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), card.name)


ordered = sorted(cards, key=method_rank)
by_name = {c.name: c for c in ordered}
state.keep_choice("compare_runs", list(by_name), state.comparable_names(ordered), multi=True)
chosen = st.multiselect("Runs", list(by_name), key="compare_runs",
                        format_func=lambda n: f"{n} ({run_method(by_name[n].summary)})")
if not chosen:
    st.info("Choose at least one run.")
    st.stop()
runs = [by_name[name] for name in chosen]


def tables_of(name: str) -> dict[str, pd.DataFrame]:
    return state.tables(runs, name)


def show_standard_metrics(chosen_runs: list[state.RunCard]) -> None:
    """NeuroBench's standard metrics of the chosen runs side by side (figure and table); the runs whose
    analysis lacks the standard_metrics table are named, with how to compute it."""
    from bntt_core.analysis import standard_metrics

    st.subheader("Standard metrics (NeuroBench)")
    found = state.tables(chosen_runs, "standard_metrics")
    without = [c.name for c in chosen_runs if c.name not in found]
    if found:
        state.show_figure(state.figure(viz.standard_metrics_figure, found, methods=state.run_methods(cards, found)), found, key="compare_standard_metrics",
                          file_stem="compare_standard_metrics")
        st.dataframe(standard_metrics.compare(found), hide_index=True, key="compare_standard_metrics_table")
        st.caption("Per image, one inference of all T steps. Effective ops count only non-zero inputs and weights: "
                   "ACs where the input is spikes, MACs where it is analog (the ANN, a direct-coded first layer). "
                   "Spikes through an average pool are ACs here (synops_acs_through_pooling) and MACs of pooled "
                   "values in NeuroBench; docs/METRICS.md.")
    if without:
        st.info(f"No standard metrics for {', '.join(without)}: their analysis lacks the table (made before it "
                "existed, or for other weights). Compute it in the Runs view or with `bntt analyze RUN --tables "
                "standard_metrics`.", icon=":material/info:")


gamma_means = tables_of("gamma_mean")
fgsm_tables = tables_of("fgsm")
controls = st.columns(2)
with controls[0]:
    threshold = None
    if gamma_means:
        all_gamma = pd.concat(list(gamma_means.values()))["mean_gamma"]
        threshold = state.threshold_slider(all_gamma, key="compare_threshold",
                                           label="Early-exit threshold τ for the BNTT runs")
with controls[1]:
    epsilon = None
    if fgsm_tables:
        grid = sorted({float(e) for df in fgsm_tables.values() for e in df["epsilon"]})
        state.keep_choice("compare_epsilon", grid, grid[-1])
        epsilon = st.select_slider("FGSM strength ε for the summary", options=grid, key="compare_epsilon",
                                   format_func=lambda e: f"{e:.3g} ({e * 255:.3g}/255)")

SUMMARY_TABLES = ("accuracy_by_step", "spike_rate", "energy", "noise", "fgsm", "gamma_mean")
run_data = {c.name: {"summary": c.summary,
                     "tables": {name: state.table(c, name) for name in SUMMARY_TABLES if name in c.tables}}
            for c in runs}
noise_mode = common_noise_mode(data["tables"]["noise"] for data in run_data.values() if "noise" in data["tables"])
summary = summaries.comparison_summary(run_data, fgsm_epsilon=epsilon, threshold=threshold, noise_mode=noise_mode)
groups = summaries.seed_groups({c.name: c.summary for c in runs})
verdicts = summaries.method_verdicts(summary, groups)

summary_tab, steps_tab, spikes_tab, robust_tab = state.tabs(
    ["Summary", "Accuracy by step", "Spikes and energy", "Robustness"], key="compare_section", on_change="rerun")

if summary_tab.open:
    with summary_tab:
        drawable = [c for c in summary.columns if c not in ("run", "method") and summary[c].notna().any()]
        if drawable:
            state.show_figure(state.figure(viz.compare_figure, summary, drawable), summary, key="compare_summary",
                              file_stem="compare_summary")
        st.dataframe(summary, hide_index=True, key="compare_summary_table")
        if noise_mode is not None:
            st.caption(f"noise_auc: the `{noise_mode}` noise curve (the mode every chosen run has; "
                       "a table computed before the noise modes is clipped).")
        st.subheader("Verdicts")
        st.caption("Runs of one method on one dataset, architecture and T are its seeds. Methods are ranked by "
                   "their mean over seeds (± sample std); **tie** when the gap to the next is within the larger "
                   "std, **one seed** when a method has a single run (the difference is raw, not a verdict). "
                   "'>' ahead, '≈' tie, '?' one seed.")
        if len(verdicts):
            st.dataframe(verdicts, hide_index=True, key="compare_verdicts_table")
        else:
            st.info("Choose runs of at least two methods to compare them.")

if steps_tab.open:
    with steps_tab:
        by_step = tables_of("accuracy_by_step")
        if by_step:
            longest = max(int(df["t"].max()) for df in by_step.values())
            log_x = st.toggle("Log time axis", value=longest >= 100, key="compare_log_steps")
            state.show_figure(state.figure(viz.accuracy_by_step_figure, by_step, log_x=log_x,
                                           methods=state.run_methods(cards, by_step)), by_step,
                              key="compare_accuracy_by_step", file_stem="compare_accuracy_by_step")
        else:
            st.info("None of these runs has the accuracy_by_step table; compute the analysis in the Runs view.")

if spikes_tab.open:
    with spikes_tab:
        rates = tables_of("spike_rate")
        energy = tables_of("energy")
        if rates:
            state.show_figure(state.figure(viz.spike_rate_figure, rates, methods=state.run_methods(cards, rates)), rates,
                              key="compare_spike_rate", file_stem="compare_spike_rate")
        if energy:
            state.show_figure(state.figure(viz.energy_figure, energy, methods=state.run_methods(cards, energy)), energy, key="compare_energy", file_stem="compare_energy")
        if not rates and not energy:
            st.info("None of these runs has spike_rate or energy tables; compute the analysis in the Runs view.")
        show_standard_metrics(runs)

if robust_tab.open:
    with robust_tab:
        noise = tables_of("noise")
        left, right = st.columns(2)
        with left:
            if noise:
                state.show_figure(state.figure(viz.robustness_figure, noise, "noise", methods=state.run_methods(cards, noise)),
                                  noise, key="compare_noise", file_stem="compare_noise")
            else:
                st.info("None of these runs has the noise table.")
        with right:
            if fgsm_tables:
                state.show_figure(state.figure(viz.robustness_figure, fgsm_tables, "fgsm",
                                               methods=state.run_methods(cards, fgsm_tables)), fgsm_tables, key="compare_fgsm",
                                  file_stem="compare_fgsm")
            else:
                st.info("None of these runs has the fgsm table.")
