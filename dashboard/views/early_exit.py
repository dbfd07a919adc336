"""Early exit view: a γ-threshold slider → the exit step (the paper's rule, SPEC "Early exit"), the
accuracy there, and the steps and energy saved, marked on the Fig 7 curve; beside it the per-sample
dynamic exit curve (ours, not the paper's). Below: τ chosen without the test set — the run's
early_exit_summary (paper τ = 0.1; τ chosen on its validation slice, or why there is none) against the
runs without BNTT γ on the same data and T truncated at those steps (`early_exit.exit_comparison`).

Numbers from `bntt_core.analysis.early_exit.early_exit_summary` over the analysis tables; figures from
`bntt_core.viz`. A page of `dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

import streamlit as st

from bntt_core import viz
from bntt_core.analysis import early_exit
from dashboard import state

st.title("Early exit")
st.caption("The exit step is fixed before any input is seen: the smallest t after which every layer's "
           "mean γ stays below the threshold τ. Inference stops there and predicts from the output "
           "accumulated so far.")

cards = state.list_runs()
card = state.pick_run(cards, key="early_exit_run", label="BNTT run",
                      require=("early_exit", "gamma_mean", "accuracy_by_step"))
if card is None:
    st.info("No run with early-exit tables yet. They need a BNTT run (norm = bntt) and its analysis: open "
            "the Runs view and compute the analysis of a BNTT run.")
    st.stop()

curve = state.table(card, "early_exit")
gamma_mean = state.table(card, "gamma_mean")
by_step = state.table(card, "accuracy_by_step")
spikes = state.table(card, "spike_activity")
energy = state.table(card, "energy")
dynamic = state.table(card, "dynamic_exit")
exit_summary = state.table(card, "early_exit_summary")  # None: analysed before the summary existed
exit_summary = early_exit.summary_table(exit_summary) if exit_summary is not None else None
stem = card.name.replace("/", "_")
# the slider opens at the τ chosen on the run's validation slice when it has one (never the test set), else
# at the paper's τ = 0.1
chosen = (exit_summary[(exit_summary["rule"] == "validation") & exit_summary["available"]]
          if exit_summary is not None else None)
opening_threshold = float(chosen["threshold"].iloc[0]) if chosen is not None and len(chosen) else 0.1


@st.fragment
def threshold_panel() -> None:
    """The slider and everything it moves; a fragment, so a slider move reruns only this part."""
    threshold = state.threshold_slider(curve["threshold"], key="early_exit_threshold", default=opening_threshold,
                                       low=float(curve["threshold"].min()), high=float(curve["threshold"].max()))
    st.caption(f"The slider opens at τ = {opening_threshold:.3g}: "
               + ("the τ chosen on this run's validation slice (earliest exit losing ≤ 1 point there); the "
                  "paper's τ = 0.1 is in the table below." if opening_threshold != 0.1 else
                  "the paper's τ (this run has no validation-chosen τ)."))
    summary = early_exit.early_exit_summary(gamma_mean, by_step, threshold, spike_activity=spikes, energy=energy)
    top, bottom = st.columns(2), st.columns(2)
    top[0].metric("Exit step", f"t = {summary['exit_step']}", help=f"of T = {summary['num_steps']}")
    top[1].metric("Accuracy at the exit", f"{summary['accuracy']:.2%}",
                  delta=f"{(summary['accuracy'] - summary['full_accuracy']) * 100:+.2f} pts vs all T steps",
                  delta_color="normal")
    bottom[0].metric("Steps saved", f"{summary['steps_saved']} of {summary['num_steps']}",
                     delta=f"{summary['steps_saved_fraction']:.0%} less latency", delta_color="off")
    if "energy_saved_fraction" in summary:
        bottom[1].metric("Energy saved", f"{summary['energy_saved_fraction']:.1%}",
                         delta=f"{summary['energy_saved_pj']:.3g} of {summary['energy_pj']:.3g} pJ / image",
                         delta_color="off")
    else:
        bottom[1].metric("Energy saved", "n/a", help="needs the spike_activity and energy tables")
    state.show_figure(state.figure(viz.early_exit_figure, curve, threshold=threshold, summary=exit_summary), curve,
                      key="early_exit_fig7", file_stem=f"{stem}-early_exit")


left, right = st.columns(2)
with left:
    threshold_panel()
with right:  # independent of the threshold: drawn once, not on every slider move
    if dynamic is not None and len(dynamic):
        st.markdown("**Per-sample dynamic exit (ours, not the paper's)**")
        st.caption("Each test image stops at the first step whose accumulated output is confident enough; "
                   "its accuracy–latency curve beside the paper's fixed exit step.")
        state.show_figure(state.figure(viz.dynamic_exit_figure, dynamic, curve),
                          {"dynamic_exit": dynamic, "early_exit": curve}, key="early_exit_dynamic",
                          file_stem=f"{stem}-dynamic_exit")
    else:
        st.info("The per-sample exit table (dynamic_exit) has not been computed for this run.")


def _points(change: float) -> str:
    return f"{change * 100:+.2f} pts test accuracy vs all T steps"


st.subheader("τ chosen without the test set, against plain truncation")
st.caption("SPEC: report the paper's τ = 0.1; any other τ is chosen on held-out training data (here: the run's "
           "validation slice, the earliest exit losing ≤ 1 point there), then applied to the test set; and the γ "
           "rule must beat simply truncating a network without BNTT at the same step.")
if exit_summary is None:
    st.info(f"This run's analysis predates the early-exit summary. Compute it in the Runs view, or with "
            f"`bntt analyze {card.path} --tables early_exit_summary` (no test pass when accuracy_by_step is there).")
else:
    rules = {row.rule: row for row in exit_summary.itertuples(index=False)}
    left_metric, right_metric = st.columns(2)
    paper = rules.get("paper")
    if paper is not None and paper.available:
        left_metric.metric("Paper τ = 0.1", f"t = {int(paper.exit_step)} of {int(paper.num_steps)}",
                           delta=_points(paper.accuracy_change), delta_color="normal",
                           help=f"test accuracy {paper.accuracy:.2%} at the exit, {paper.full_accuracy:.2%} at T")
    chosen = rules.get("validation")
    if chosen is not None and chosen.available:
        right_metric.metric("τ chosen on the validation slice", f"t = {int(chosen.exit_step)} of {int(chosen.num_steps)}",
                            delta=_points(chosen.accuracy_change), delta_color="normal",
                            help=f"τ = {chosen.threshold:.3g} on {int(chosen.validation_images)} held-out training "
                                 f"images: validation {chosen.validation_accuracy_change * 100:+.2f} pts")
    else:
        right_metric.metric("τ chosen on the validation slice", "unavailable")
        st.caption(f"No validation τ: {chosen.reason if chosen is not None else 'not in the summary'}")
    candidates = state.truncation_candidates(cards, card)
    names = [c.name for c in candidates]
    state.keep_choice("early_exit_baselines", names, names, multi=True)
    picked = st.multiselect("Truncation baseline: runs without BNTT γ on the same dataset and T", names,
                            key="early_exit_baselines")
    others = {c.name: state.table(c, "accuracy_by_step") for c in candidates if c.name in picked}
    comparison = early_exit.exit_comparison(card.name, exit_summary, others)
    if not candidates:
        st.caption("No run without BNTT on this dataset and T has been analysed yet: no truncation baseline.")
    shown = comparison[["run", "rule", "step_rule", "threshold", "exit_step", "num_steps", "accuracy",
                        "accuracy_change", "available", "reason"]]
    st.dataframe(shown, hide_index=True, key="early_exit_summary_table")
    state.show_figure(state.figure(viz.early_exit_comparison_figure, {card.name: by_step, **others}, comparison,
                                   methods=state.run_methods(cards, [card.name, *others])),
                      comparison, key="early_exit_compare", file_stem=f"{stem}-early_exit_comparison")
