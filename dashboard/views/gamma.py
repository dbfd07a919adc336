"""γ explorer view: the BNTT scale γ of a run — heatmap of mean γ (layer × step; an explicit colour
range, fixed 0..max(1, max) or the run's own; a click on a cell opens that layer and step's histogram),
histograms of γ for any layer at any step (a step slider, or the figure's own slider and play button:
Fig 6), every step's distribution in one printable figure (a ridge plot or percentile bands), the Fig 4
curves with the early-exit threshold drawn, γ through training (RUN/gamma_history.csv: the heatmap and
histograms animated over epochs, the exit step per epoch, percentile bands over epochs) and two runs
side by side.

Reads the gamma / gamma_mean analysis tables (and offers to write a missing gamma table: it comes from
the weights in seconds) and the run's γ history; figures from `bntt_core.viz`. A page of
`dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from bntt_core import viz
from bntt_core.analysis import early_exit, gamma_history
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


HEATMAP_CHART = "gamma_heatmap-chart"  # the selectable heatmap's widget key (its selection lives there)
HISTOGRAM_TAB = "γ histograms (Fig 6)"
SCALES = {"fixed": "Fixed: 0 to max(1, the largest γ)", "run": "This run's own min–max"}


def open_clicked_cell(selection: object = None) -> bool:
    """The heatmap's on_select: the clicked cell's layer and step become the histogram's (one layer, that
    step, not animated) and its tab opens. `selection`: the chart's selection (default: read from session
    state). True when a cell was opened."""
    cell = viz.gamma_heatmap_cell(st.session_state.get(HEATMAP_CHART) if selection is None else selection)
    if cell is None or cell[0] not in layers or cell[1] not in steps:
        return False
    st.session_state["gamma_hist_layers"] = [cell[0]]
    st.session_state["gamma_hist_step"] = cell[1]
    st.session_state["gamma_hist_animate"] = False
    st.session_state["gamma_section"] = HISTOGRAM_TAB
    return True


def heatmap_section() -> None:
    """The mean-γ heatmap, layer × step, with an explicit colour range; a click opens a cell's histogram.
    Not a fragment: the click switches the tab, which needs the whole page to rerun."""
    state.bind_url("gamma_heat_scale", options=list(SCALES))
    scale = st.radio("Colour range", list(SCALES), format_func=SCALES.get, key="gamma_heat_scale",
                     horizontal=True)
    figure = state.figure(viz.gamma_heatmap_figure, gamma_mean, scale=scale, selectable=True)
    st.caption("Click a cell to open that layer and step in the γ histograms.")
    state.show_figure(figure, gamma_mean, key="gamma_heatmap", file_stem=f"{stem}-gamma_mean_heatmap",
                      on_select=open_clicked_cell)


DISTRIBUTIONS = {"ridge": "Ridge: a histogram per step", "bands": "Percentile bands over t"}


@st.fragment
def distributions_section() -> None:
    """Every step's γ distribution of one layer in one printable figure: a ridge plot or percentile bands."""
    controls, plot = st.columns([1, 3])
    with controls:
        state.keep_choice("gamma_dist_layer", layers, layers[0])
        layer = st.selectbox("Layer", layers, key="gamma_dist_layer")
        state.bind_url("gamma_dist_kind", options=list(DISTRIBUTIONS))
        kind = st.radio("Show", list(DISTRIBUTIONS), format_func=DISTRIBUTIONS.get, key="gamma_dist_kind")
        state.bind_url("gamma_dist_bins", kind=int, low=5, high=60)
        bins = st.slider("Bins", 5, 60, 30, key="gamma_dist_bins", disabled=kind != "ridge")
        st.caption("Bands: min–max, 7–93, 16–84 and 31–69 percentiles over the layer's channels, and the "
                   "median (TensorBoard's distribution view).")
    with plot:
        if kind == "ridge":
            figure = state.figure(viz.gamma_ridge_figure, gamma, layer, bins=bins)
        else:
            figure = state.figure(viz.gamma_bands_figure, gamma, layer)
        state.show_figure(figure, gamma[gamma["layer"] == layer], key=f"gamma_dist_{kind}",
                          file_stem=f"{stem}-gamma_{kind}-{layer}")


@st.cache_data(show_spinner=False, max_entries=32)
def _history(run_path: str, stamp: float) -> pd.DataFrame | None:
    return gamma_history.read_gamma_history(run_path)


def load_history(run_path: str) -> pd.DataFrame | None:
    """The run's γ history (None without one), cached on the file's modification time; a damaged file is
    a ValueError naming it."""
    path = state.check_inside_roots(run_path, state.configured_run_roots())
    try:
        stamp = (Path(path) / gamma_history.GAMMA_HISTORY_FILE).stat().st_mtime
    except OSError:
        return None
    return _history(str(path), stamp)


THROUGH_TRAINING = {"heatmap": "Mean γ heatmap", "histograms": "Histograms", "exit": "Exit step",
                    "bands": "Percentile bands"}


@st.fragment
def training_section() -> None:
    """γ through training, from the history `bntt train` keeps: the heatmap and histograms animated over
    epochs, the paper's exit step per epoch, percentile bands over epochs."""
    try:
        history = load_history(card.path)
    except ValueError as problem:
        st.warning(f"The γ history of {card.name} cannot be read: {problem}")
        return
    if history is None or history.empty:
        st.info(f"{card.name} has no γ history ({gamma_history.GAMMA_HISTORY_FILE}): it was trained before "
                "`bntt train` kept one. Train a BNTT run to watch γ take shape epoch by epoch.")
        return
    with state.stop_on_failure(f"The γ history of {card.name} cannot be drawn"):  # a damaged table: one message
        training_views(history)


def training_views(history: pd.DataFrame) -> None:
    """The four views of a γ history, one at a time (a radio)."""
    history_layers = list(dict.fromkeys(history["layer"]))
    history_steps = sorted(int(t) for t in history["t"].unique())
    last_epoch = gamma_history.epochs(history)[-1]
    st.caption(f"γ at initialisation (epoch 0) and after each of {last_epoch} epochs, summarised over each "
               "layer's channels. The figures' own slider and ▶ play step through the epochs.")
    state.bind_url("gamma_train_view", options=list(THROUGH_TRAINING))
    view = st.radio("Show", list(THROUGH_TRAINING), format_func=THROUGH_TRAINING.get, key="gamma_train_view",
                    horizontal=True)
    file_stem = f"{stem}-gamma_history"
    if view == "heatmap":
        state.bind_url("gamma_train_scale", options=list(SCALES))
        scale = st.radio("Colour range (one for every epoch)", list(SCALES), format_func=SCALES.get,
                         key="gamma_train_scale", horizontal=True)
        state.show_figure(state.figure(viz.gamma_history_heatmap_figure, history, scale=scale),
                          history[["epoch", "layer", "t", "mean"]], key="gamma_train_heatmap",
                          file_stem=f"{file_stem}-heatmap")
        return
    if view == "exit":
        threshold = state.threshold_slider(history["mean"], key="gamma_train_threshold")
        figure = state.figure(viz.exit_step_by_epoch_figure, history, threshold=threshold)
        meta = figure.layout.meta  # the exit steps it drew (gamma_history.exit_step_by_epoch's numbers)
        by_epoch = pd.DataFrame({"epoch": meta["epochs"], "exit_step": meta["exit_steps"],
                                 "num_steps": meta["num_steps"], "threshold": threshold})
        first, second = st.columns(2)
        first.metric("Exit step after the last epoch", f"t = {meta['exit_steps'][-1]}")
        second.metric("Steps skipped", f"{meta['num_steps'] - meta['exit_steps'][-1]} of {meta['num_steps']}")
        state.show_figure(figure, by_epoch, key="gamma_train_exit", file_stem=f"{file_stem}-exit_step")
        return
    controls, plot = st.columns([1, 3])
    if view == "histograms":
        with controls:
            default_layers = [history_layers[i] for i in sorted({0, len(history_layers) // 2,
                                                                 len(history_layers) - 1})]
            state.keep_choice("gamma_train_layers", history_layers, default_layers, multi=True)
            chosen = st.multiselect("Layers", history_layers, key="gamma_train_layers")
            state.keep_choice("gamma_train_step", history_steps, history_steps[0])
            step = st.select_slider("Time step t", options=history_steps, key="gamma_train_step")
            st.caption(f"Channel counts on one bin grid for every epoch (width {gamma_history.BIN_WIDTH:g} from "
                       f"{gamma_history.BIN_LOW:g}; values beyond it sit in the end bins).")
        with plot:
            if not chosen:
                st.info("Choose at least one layer.")
            else:
                shown = history[history["layer"].isin(chosen) & (history["t"] == step)]
                state.show_figure(state.figure(viz.gamma_history_histogram_figure, history, chosen, step), shown,
                                  key="gamma_train_hist", file_stem=f"{file_stem}-histograms-t{step}")
        return
    with controls:  # percentile bands over epochs
        state.keep_choice("gamma_train_band_layer", history_layers, history_layers[0])
        layer = st.selectbox("Layer", history_layers, key="gamma_train_band_layer")
        state.keep_choice("gamma_train_band_step", history_steps, history_steps[0])
        step = st.select_slider("Time step t", options=history_steps, key="gamma_train_band_step")
    with plot:
        shown = history[(history["layer"] == layer) & (history["t"] == step)]
        state.show_figure(state.figure(viz.gamma_history_bands_figure, history, layer, step),
                          shown[[c for c in history.columns if c not in gamma_history.BIN_COLUMNS]],
                          key="gamma_train_bands", file_stem=f"{file_stem}-bands-{layer}-t{step}")


@st.fragment
def histogram_section() -> None:
    """γ histograms of chosen layers at a chosen step, or animated over all steps."""
    controls, plot = st.columns([1, 3])
    with controls:
        default_layers = [layers[i] for i in sorted({0, len(layers) // 2, len(layers) - 1})]
        state.keep_choice("gamma_hist_layers", layers, default_layers, multi=True)
        chosen = st.multiselect("Layers", layers, key="gamma_hist_layers")
        state.bind_url("gamma_hist_animate", kind=bool)
        animate = st.toggle("Animate over all steps (slider and play in the figure)", value=False,
                            key="gamma_hist_animate")
        state.keep_choice("gamma_hist_step", steps, steps[0])
        step = st.select_slider("Time step t", options=steps, key="gamma_hist_step", disabled=animate)
        state.bind_url("gamma_hist_bins", kind=int, low=5, high=60)
        bins = st.slider("Bins", 5, 60, 30, key="gamma_hist_bins")
    with plot:
        if not chosen:
            st.info("Choose at least one layer.")
        else:
            figure = state.figure(viz.gamma_histogram_figure, gamma, chosen, None if animate else step, bins=bins)
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
    state.show_figure(state.figure(viz.gamma_mean_figure, gamma_mean, threshold=threshold), gamma_mean,
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
                state.show_figure(state.figure(viz.gamma_heatmap_figure, table), table, key=f"{key}_heatmap",
                                  file_stem=f"{run_stem}-gamma_mean_heatmap")
                state.show_figure(state.figure(viz.gamma_mean_figure, table, threshold=threshold), table,
                                  key=f"{key}_fig4", file_stem=f"{run_stem}-gamma_mean")


# lazy tabs: only the open tab's content runs; sliders rerun only their own fragment
heat_tab, hist_tab, dist_tab, exit_tab, training_tab, compare_tab = state.tabs(
    ["Mean γ heatmap", HISTOGRAM_TAB, "Distributions over time", "Mean γ and exit threshold (Fig 4)",
     "Through training", "Compare two runs"],
    key="gamma_section", on_change="rerun")

if heat_tab.open:
    with heat_tab:
        heatmap_section()
if hist_tab.open:
    with hist_tab:
        histogram_section()
if dist_tab.open:
    with dist_tab:
        distributions_section()
if exit_tab.open:
    with exit_tab:
        exit_section()
if training_tab.open:
    with training_tab:
        training_section()
if compare_tab.open:
    with compare_tab:
        compare_section()
