"""γ explorer view: the BNTT scale γ of a run — heatmap of mean γ (layer × step), histograms of γ for
any layer at any step (a step slider, or the figure's own slider and play button: Fig 6), the Fig 4
curves with the early-exit threshold drawn, and two runs side by side.

Reads the gamma / gamma_mean analysis tables (and offers to write a missing gamma table: it comes from
the weights in seconds); figures from `bntt_core.plots`. A page of
`dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

import streamlit as st

from bntt_core import early_exit
from dashboard import state

st.title("γ explorer")
st.caption("BNTT learns a scale γ for every layer, channel and time step. Where γ falls towards zero a "
           "layer stops passing input on: the network has finished, and inference can stop early.")

cards = state.list_runs()
# BNTT runs whose per-channel γ table was never written (shipped runs leave it out for size): it is read off
# the weights in seconds, no data needed, so offer it here rather than hide the run
without_gamma = [c for c in cards if c.ok and "gamma_mean" in c.tables and "gamma" in c.missing]
if without_gamma:
    names = ", ".join(c.name for c in without_gamma)
    with st.container(border=True):
        st.caption(f"Without their per-channel γ table yet: {names}. It comes from the weights in seconds.")
        if st.button("Compute the γ tables", key="gamma_compute_missing"):
            try:
                from bntt_core.analysis import analyze_run  # imported on demand: the heavy part of the app

                with st.spinner(f"Reading γ from the weights of {names}…"):
                    for waiting in without_gamma:
                        analyze_run(waiting.path, tables=["gamma"])
            except Exception as failure:  # shown on the page; the rest of the app keeps working
                st.error(f"Computing the γ table failed: {failure}")
            else:
                state.clear_run_caches()
                st.rerun()

card = state.pick_run(cards, key="gamma_run", label="BNTT run", require=("gamma_mean", "gamma"))
if card is None:
    st.info("No run with γ tables yet. γ exists only in BNTT runs (norm = bntt): open the Runs view and "
            "compute the analysis of a BNTT run.")
    st.stop()

gamma_mean = state.table(card, "gamma_mean")
gamma = state.table(card, "gamma")
stem = card.name.replace("/", "_")
layers = list(dict.fromkeys(gamma["layer"]))
steps = sorted(int(t) for t in gamma["t"].unique())


def heatmap_section() -> None:
    """The mean-γ heatmap, layer × step."""
    state.show_figure(state.figure("gamma_heatmap_figure", gamma_mean), gamma_mean, key="gamma_heatmap",
                      file_stem=f"{stem}-gamma_mean_heatmap")


@st.fragment
def histogram_section() -> None:
    """γ histograms of chosen layers at a chosen step, or animated over all steps."""
    controls, plot = st.columns([1, 3])
    with controls:
        default_layers = [layers[i] for i in sorted({0, len(layers) // 2, len(layers) - 1})]
        state.keep_choice("gamma_hist_layers", layers, default_layers, multi=True)
        chosen = st.multiselect("Layers", layers, key="gamma_hist_layers")
        animate = st.toggle("Animate over all steps (slider and play in the figure)", value=False,
                            key="gamma_hist_animate")
        state.keep_choice("gamma_hist_step", steps, steps[0])
        step = st.select_slider("Time step t", options=steps, key="gamma_hist_step", disabled=animate)
        bins = st.slider("Bins", 5, 60, 30, key="gamma_hist_bins")
    with plot:
        if not chosen:
            st.info("Choose at least one layer.")
        else:
            figure = state.figure("gamma_histogram_figure", gamma, chosen, None if animate else step, bins=bins)
            shown = gamma[gamma["layer"].isin(chosen)]
            if not animate:
                shown = shown[shown["t"] == step]
            state.show_figure(figure, shown, key="gamma_hist", file_stem=f"{stem}-gamma_histograms")


@st.fragment
def exit_section() -> None:
    """Fig 4 with the early-exit threshold, and the exit step it gives."""
    threshold = state.threshold_slider(gamma_mean["mean_gamma"], key="gamma_threshold")
    exit_step = early_exit.exit_step_from_gamma_mean(gamma_mean, threshold)
    last = max(steps)
    first, second = st.columns(2)
    first.metric("Exit step", f"t = {exit_step}")
    second.metric("Steps skipped", f"{last - exit_step} of {last}")
    state.show_figure(state.figure("gamma_mean_figure", gamma_mean, threshold=threshold), gamma_mean,
                      key="gamma_fig4", file_stem=f"{stem}-gamma_mean")


@st.fragment
def compare_section() -> None:
    """Two BNTT runs side by side at one threshold."""
    others = [c for c in cards if c.ok and "gamma_mean" in c.tables and c.path != card.path]
    if not others:
        st.info("Only one run has γ tables; analyse another BNTT run to compare.")
    else:
        by_path = {c.path: c for c in others}
        state.keep_choice("gamma_compare_run", list(by_path), list(by_path)[0])
        other_path = st.selectbox("Compare with", list(by_path), key="gamma_compare_run",
                                  format_func=lambda p: by_path[p].name)
        other = by_path[other_path]
        other_mean = state.table(other, "gamma_mean")
        threshold = state.threshold_slider(gamma_mean["mean_gamma"], key="gamma_compare_threshold")
        left, right = st.columns(2)
        for side, column, run, table in (("left", left, card, gamma_mean), ("right", right, other, other_mean)):
            with column:
                st.markdown(f"**{run.name}**")
                run_stem = run.name.replace("/", "_")
                key = f"gamma_compare_{side}"
                state.show_figure(state.figure("gamma_heatmap_figure", table), table, key=f"{key}_heatmap",
                                  file_stem=f"{run_stem}-gamma_mean_heatmap")
                state.show_figure(state.figure("gamma_mean_figure", table, threshold=threshold), table,
                                  key=f"{key}_fig4", file_stem=f"{run_stem}-gamma_mean")


# lazy tabs: only the open tab's content runs; sliders rerun only their own fragment
heat_tab, hist_tab, exit_tab, compare_tab = st.tabs(
    ["Mean γ heatmap", "γ histograms (Fig 6)", "Mean γ and exit threshold (Fig 4)", "Compare two runs"],
    key="gamma_section", on_change="rerun")

if heat_tab.open:
    with heat_tab:
        heatmap_section()
if hist_tab.open:
    with hist_tab:
        histogram_section()
if exit_tab.open:
    with exit_tab:
        exit_section()
if compare_tab.open:
    with compare_tab:
        compare_section()
