"""Spike activity view: mean spikes per neuron per layer and step as curves and a heatmap (Fig 1), the
layer-wise spike rate on a log scale for several runs (Fig 5), a raster of chosen neurons for a chosen
test image (recorded live with a monitor on the run's model, cached), and the distribution of the
normalisation layer's input over time (Fig 3).

Tables from the run's analysis, the raster from `bntt_core.teaching.record_spike_raster`, figures from
`bntt_core.viz`. A page of `dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

import streamlit as st

from bntt_core import viz
from bntt_core.analysis import claims
from dashboard import state

st.title("Spike activity")

cards = state.list_runs()
card = state.pick_run(cards, key="spikes_run", label="Run")
if card is None:
    st.info("No readable run found. Train one (see the Runs view) or explore the Learn view.")
    st.stop()

stem = card.name.replace("/", "_")
healthy = [c for c in cards if c.ok]


def current_run_first(names: list[str]) -> list[str]:
    """The run open in this view, when it has the table, else the first that has it."""
    return [card.name] if card.name in names else names[:1]


def activity_section() -> None:
    """Fig 1 curves for the chosen runs and the heatmap of the first."""
    activity = state.runs_with_table(healthy, "spike_activity", key="spikes_activity_runs",
                                     label="Runs (one panel each)", default=current_run_first)
    if activity:
        state.show_figure(state.figure(viz.spike_activity_figure, activity), activity, key="spikes_activity",
                          file_stem="spike_activity")
        heat_name = list(activity)[0]
        st.markdown(f"**{heat_name}: layer × step**")
        state.show_figure(state.figure(viz.spike_heatmap_figure, activity[heat_name]), activity[heat_name],
                          key="spikes_heatmap", file_stem=f"{heat_name.replace('/', '_')}-spike_heatmap")


def rate_section() -> None:
    """Fig 5: spike rate per layer, log scale, for the chosen runs."""
    rates = state.runs_with_table(healthy, "spike_rate", key="spikes_rate_runs", label="Runs",
                                  default=current_run_first)
    if rates:
        state.show_figure(state.figure(viz.spike_rate_figure, rates, methods=state.run_methods(cards, rates)), rates, key="spikes_rate", file_stem="spike_rate")


@st.fragment
def raster_section() -> None:
    """A live raster of chosen neurons for one test image."""
    if card.summary.get("spiking") is False:
        st.info(f"{card.name} is an ANN: it has no spikes. Pick a spiking run above.")
    else:
        run = state.loaded_run(card)
        size = state.test_set_size(card)
        controls, plot = st.columns([1, 3])
        with controls:
            state.bind_url("spikes_raster_image", kind=int, low=0, high=size - 1)
            index = int(st.number_input("Test image", 0, size - 1, 0, 1, key="spikes_raster_image"))
            state.keep_choice("spikes_raster_layer", run.model.layer_names, run.model.layer_names[0])
            layer = st.selectbox("Layer", run.model.layer_names, key="spikes_raster_layer")
            modes = {"a spread of rates": "spread", "most active": "most_active", "by index": "by_index"}
            state.bind_url("spikes_raster_mode", options=list(modes))
            mode = modes[st.radio("Neurons", list(modes), key="spikes_raster_mode", horizontal=True)]
            state.bind_url("spikes_raster_count", kind=int, low=4, high=128)
            count = st.slider("How many", 4, 128, 32, key="spikes_raster_count", disabled=mode == "by_index")
            state.bind_url("spikes_raster_indices")
            typed = st.text_input("Neuron indices (e.g. 0, 5, 17)", "0, 1, 2, 3", key="spikes_raster_indices",
                                  disabled=mode != "by_index")
            state.bind_url("spikes_raster_seed", kind=int, low=0, high=10_000)
            seed = int(st.number_input("Poisson seed", 0, 10_000, 0, key="spikes_raster_seed"))
        neurons: tuple[int, ...] = ()
        if mode == "by_index":
            try:
                neurons = tuple(int(part) for part in typed.replace(",", " ").split())
            except ValueError:
                st.warning("Neuron indices must be whole numbers separated by commas.")
        try:
            recorded = state.spike_raster(card, index=index, layer=layer, neurons=neurons, max_neurons=count,
                                          selection="spread" if mode == "by_index" else mode, seed=seed)
        except ValueError as problem:
            st.warning(str(problem))
        else:
            with controls:
                if recorded["pixels"] is not None:
                    st.image(recorded["pixels"], clamp=True, caption=f"label: {recorded['class_name']}",
                             width=160)
            with plot:
                state.show_figure(state.figure(viz.raster_figure, recorded["raster"]), recorded["raster"],
                                  key="spikes_raster", file_stem=f"{stem}-raster-{layer}-image{index}")


BN_INPUT_VIEWS = {"fig3": "Chosen steps and the mean (Fig 3)", "ridge": "Ridge: a histogram per step",
                  "bands": "Percentile bands over t"}


@st.fragment
def bn_input_section() -> None:
    """Fig 3: the norm layer's input distribution over time — at chosen steps with the mean (the paper's
    figure), or every step in one printable figure: a ridge plot or percentile bands (read from the stored
    histogram: the raw values are not kept)."""
    if "bn_input" not in card.tables or "bn_input_hist" not in card.tables:
        st.info(f"{card.name} has no bn_input tables (they exist for spiking runs once analysed).")
    else:
        stats, hist = state.table(card, "bn_input"), state.table(card, "bn_input_hist")
        layers = list(dict.fromkeys(hist["layer"]))
        controls, plot = st.columns([1, 3])
        with controls:
            default_layer = claims.default_bn_layer(hist)  # as notebook 02: the paper's conv5, else the deepest conv
            state.keep_choice("spikes_bn_layer", layers, default_layer)
            layer = st.selectbox("Layer", layers, key="spikes_bn_layer")
            recorded_steps = sorted(int(t) for t in hist.loc[hist["layer"] == layer, "t"].unique())
            default_steps = sorted({min(recorded_steps, key=lambda r: abs(r - step))  # the paper's t = 1, 10, 20 of 25
                                    for step in claims.paper_steps(recorded_steps[-1])})
            state.bind_url("spikes_bn_view", options=list(BN_INPUT_VIEWS))
            view = st.radio("Show", list(BN_INPUT_VIEWS), format_func=BN_INPUT_VIEWS.get, key="spikes_bn_view")
            state.keep_choice("spikes_bn_steps", recorded_steps, default_steps, multi=True)
            steps = st.multiselect("Steps", recorded_steps, key="spikes_bn_steps", disabled=view != "fig3")
            if view == "bands":
                st.caption("Percentiles (min–max, 7–93, 16–84, 31–69, median) read from the stored histogram, "
                           "taking a bin's values as spread evenly across it: exact to within one bin.")
        data = {"bn_input": stats[stats["layer"] == layer], "bn_input_hist": hist[hist["layer"] == layer]}
        with plot:
            if view == "ridge":
                state.show_figure(state.figure(viz.bn_input_ridge_figure, hist, layer), data,
                                  key="spikes_bn_ridge", file_stem=f"{stem}-bn_input_ridge-{layer}")
            elif view == "bands":
                state.show_figure(state.figure(viz.bn_input_bands_figure, hist, layer, stats), data,
                                  key="spikes_bn_bands", file_stem=f"{stem}-bn_input_bands-{layer}")
            elif not steps:
                st.info("Choose at least one step.")
            else:
                figure = state.figure(viz.bn_input_figure, stats, hist, layer, steps=steps)
                state.show_figure(figure, data, key="spikes_bn_input", file_stem=f"{stem}-bn_input-{layer}")


# lazy tabs: only the open tab's content runs; widgets rerun only their own fragment
activity_tab, rate_tab, raster_tab, bn_tab = state.tabs(
    ["Activity over time (Fig 1)", "Spike rate (Fig 5)", "Raster", "BN input (Fig 3)"],
    key="spikes_section", on_change="rerun")

if activity_tab.open:
    with activity_tab:
        activity_section()
if rate_tab.open:
    with rate_tab:
        rate_section()
if raster_tab.open:
    with raster_tab:
        raster_section()
if bn_tab.open:
    with bn_tab:
        bn_input_section()
