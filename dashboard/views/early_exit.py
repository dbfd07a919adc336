"""Early exit view: a γ-threshold slider → the exit step (the paper's rule, SPEC "Early exit"), the
accuracy there, and the steps and energy saved, marked on the Fig 7 curve; beside it the per-sample
dynamic exit curve (ours, not the paper's).

Numbers from `bntt_core.explore.early_exit_summary` over the analysis tables; figures from
`bntt_core.plots`. A page of `dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

import streamlit as st

from bntt_core import explore
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
stem = card.name.replace("/", "_")


@st.fragment
def threshold_panel() -> None:
    """The slider and everything it moves; a fragment, so a slider move reruns only this part."""
    threshold = state.threshold_slider(curve["threshold"], key="early_exit_threshold",
                                       low=float(curve["threshold"].min()), high=float(curve["threshold"].max()))
    summary = explore.early_exit_summary(gamma_mean, by_step, threshold, spike_activity=spikes, energy=energy)
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
    state.show_figure(state.figure("early_exit_figure", curve, threshold=threshold), curve, key="early_exit_fig7",
                      file_stem=f"{stem}-early_exit")


left, right = st.columns(2)
with left:
    threshold_panel()
with right:  # independent of the threshold: drawn once, not on every slider move
    if dynamic is not None and len(dynamic):
        st.markdown("**Per-sample dynamic exit (ours, not the paper's)**")
        st.caption("Each test image stops at the first step whose accumulated output is confident enough; "
                   "its accuracy–latency curve beside the paper's fixed exit step.")
        state.show_figure(state.figure("dynamic_exit_figure", dynamic, curve),
                          {"dynamic_exit": dynamic, "early_exit": curve}, key="early_exit_dynamic",
                          file_stem=f"{stem}-dynamic_exit")
    else:
        st.info("The per-sample exit table (dynamic_exit) has not been computed for this run.")
