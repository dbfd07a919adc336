"""Runs view: every run found under the run roots as a card (broken ones say why on their card), then
the chosen run's config, training curves and accuracy by step, and a button that computes its
missing analysis tables with a progress bar (`bntt_core.analysis.analyze_run`).

A run can also be opened by path (text box, or `?run=PATH` in the URL); a path outside the
configured run roots is refused. A page of `dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from bntt_core import viz
from bntt_core.analysis.tables import TABLES
from bntt_core.runs.listing import run_label
from dashboard import state

CARDS_PER_ROW = 3

st.title("Runs")
cards = state.list_runs()
roots = state.configured_run_roots()


def open_by_path(requested: str) -> None:
    """Select the run at `requested` if it is inside the run roots; say why not otherwise."""
    try:
        resolved = state.check_inside_roots(requested, roots)
    except state.PathRefused as refused:
        st.error(str(refused), icon=":material/block:")
        return
    match = next((c for c in cards if Path(c.path).resolve() == resolved), None)
    if match is None:
        st.warning(f"{requested} is inside the run roots but is not a run directory (no config.json).")
    elif not match.ok:
        st.warning(f"{match.name} cannot be opened: {match.error}")
    else:
        st.session_state[state.CURRENT_RUN_KEY] = match.path
        st.session_state["runs_selected"] = match.path


def request_typed_path() -> None:
    st.session_state["runs_open_request"] = st.session_state.get("runs_open_path", "")


with st.expander("Open a run by path", expanded=bool(st.query_params.get("run"))):
    st.text_input("Run directory", key="runs_open_path", placeholder="runs/my-run", on_change=request_typed_path)
    # a path is acted on once, when typed or when the page opens with ?run=PATH; later reruns keep the choice
    linked = st.query_params.get("run", "")
    if linked and st.session_state.get("runs_linked_path") != linked:
        st.session_state["runs_linked_path"] = linked
        st.session_state["runs_open_request"] = linked
    requested = st.session_state.pop("runs_open_request", "")
    if requested:
        open_by_path(requested)

if not cards:
    st.info("No runs found under the run roots. Train one with `bntt train --preset quickstart --out "
            "runs/quickstart` (about 5 minutes on a laptop CPU), or add a folder of runs in the sidebar. "
            "The Learn view needs no run.")
    st.stop()

broken = [c for c in cards if not c.ok]
st.caption(f"{len(cards)} run(s) under {len(roots)} root(s)" + (f"; {len(broken)} cannot be read" if broken else ""))
for start in range(0, len(cards), CARDS_PER_ROW):
    columns = st.columns(CARDS_PER_ROW)
    for column, listed in zip(columns, cards[start:start + CARDS_PER_ROW], strict=False):
        with column.container(border=True):
            st.markdown(f"**{listed.name}**")
            if not listed.ok:
                st.warning(f"This run cannot be read: {listed.error}", icon=":material/warning:")
                continue
            st.caption(run_label(listed.summary))
            accuracy = listed.summary.get("test_accuracy")
            st.markdown(f"test accuracy **{accuracy:.2%}**" if accuracy is not None else "no test accuracy recorded")
            note = f"analysis: {len(listed.tables)} tables"
            if listed.missing:
                note += f", {len(listed.missing)} missing"
            if listed.stale:
                note += f", {len(listed.stale)} stale (made for other weights)"
            st.caption(note)

card = state.pick_run(cards, key="runs_selected", label="Details of run")
if card is None:
    st.warning("None of the runs found can be read; see the messages on their cards.")
    st.stop()

st.subheader(card.name)
st.caption(f"`{card.path}`")
left, right = st.columns(2)
with left:
    history = state.metrics(card)
    if history is not None and len(history):
        st.markdown("**Training curves**")
        state.show_figure(state.figure(viz.training_curves_figure, history), history, key="runs_training",
                          file_stem=f"{card.name}-training_curves".replace("/", "_"))
    elif card.summary.get("kind") == "converted":
        st.info("A converted run has no training history: its weights come from the ANN it was converted from.")
    else:
        st.info("This run has no training history (metrics.csv is missing or empty).")
with right:
    if "accuracy_by_step" in card.tables:
        by_step = state.table(card, "accuracy_by_step")
        st.markdown("**Accuracy by time step**")
        state.show_figure(state.figure(viz.accuracy_by_step_figure, {card.name: by_step},
                                         methods=state.run_methods(cards, [card.name])), by_step,
                          key="runs_accuracy_by_step", file_stem=f"{card.name}-accuracy_by_step".replace("/", "_"))
    else:
        st.info("Accuracy by step is part of the analysis; compute it below.")


def show_standard_metrics(card: state.RunCard) -> None:
    """NeuroBench's standard metrics of the run (the standard_metrics table), or a note saying how to get them."""
    from bntt_core.analysis import standard_metrics

    st.markdown("**Standard metrics (NeuroBench)**")
    if "standard_metrics" not in card.tables:
        why = ("made for other weights" if "standard_metrics" in card.stale else
               "not in this run's analysis (analysed before the table existed)")
        st.info(f"Standard metrics: {why}. Compute them with the button below or "
                f"`bntt analyze {card.path} --tables standard_metrics`: seconds when they can be derived from "
                "the run's current energy and spike_rate tables (Poisson input, no zero weight), else one test "
                "pass.", icon=":material/info:")
        return
    metrics = state.table(card, "standard_metrics")
    if metrics is None or len(metrics) != 1:
        st.warning("The standard_metrics table of this run is not one row; recompute it with "
                   f"`bntt analyze {card.path} --tables standard_metrics`.")
        return
    row = metrics.iloc[0]
    columns = st.columns(4)
    columns[0].metric("Footprint", f"{row['footprint_bytes'] / 2**20:.3g} MiB")
    columns[1].metric("Connection sparsity", f"{100 * row['connection_sparsity']:.2f} %")
    columns[2].metric("Activation sparsity", f"{100 * row['activation_sparsity']:.2f} %")
    effective = row["synops_effective_macs"] + row["synops_effective_acs"]
    columns[3].metric("Effective synops / image", f"{effective / 1e6:.4g} M",
                      help=f"of {row['synops_dense'] / 1e6:.4g} M dense (every MAC as if dense)")
    st.dataframe(standard_metrics.describe(metrics), hide_index=True, key="runs_standard_metrics")
    st.caption(f"Per image (mean over {int(row['images']):,} test images), one inference of "
               f"{int(row['num_steps'])} step(s). Spikes through an average pool are counted as ACs (the pool folds "
               "into the next layer's weights); NeuroBench counts the pooled values as MACs. docs/METRICS.md says "
               "how each number is counted and what the energy estimate adds.")


with st.container(border=True):
    show_standard_metrics(card)

to_compute = [name for name in TABLES if name in card.missing or name in card.stale]
with st.container(border=True):
    st.markdown("**Analysis**")
    if card.skipped:
        st.caption("Not applicable to this run: " + "; ".join(f"{name} ({why})" for name, why in card.skipped.items()))
    if to_compute:
        if card.missing:
            st.caption("Missing tables: " + ", ".join(card.missing))
        if card.stale:
            st.caption("Stale tables (made for other weights or another config): " + ", ".join(card.stale))
        quick = st.toggle("Quick (a small fixed test subset, for a first look)", value=True, key="runs_analysis_quick")
        if st.button("Compute missing analysis", key="runs_analyze", type="primary"):
            bar = st.progress(0.0, text="Starting the analysis…")

            def report(fraction: float, message: str) -> None:
                bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

            try:
                from bntt_core.analysis import analyze_run  # imported on demand: the heavy part of the app

                analyze_run(card.path, quick=quick, tables=to_compute, progress=report)
            except Exception as failure:  # show it on the page; the rest of the app keeps working
                st.error(f"The analysis of {card.name} failed: {failure}")
            else:
                state.clear_run_caches()
                st.rerun()
    else:
        st.caption(f"Every table that applies to this run is present ({len(card.tables)} with data).")

with st.expander("config.json"):
    st.json(state.loaded_config(card), expanded=1)
