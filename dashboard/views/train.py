"""Train view (workshops): start a small training from the browser, watch its loss, accuracy and γ as the
epochs finish, stop it, resume it, then open the finished run (with its analysis) in the Runs view.

The job runs in the background, outside Streamlit (`bntt_core.runs.live`): a refresh, a second tab or
another visitor sees the same job from its record on disk, and one training at a time runs per run root
(the Start button is disabled while one runs, and the job manager refuses a second start under an OS lock).
Runs are written to `bntt_core.runs.live.train_root()` ($BNTT_TRAIN_ROOT, else runs/). A page of
`dashboard/app.py` (run `make run`).
"""

from __future__ import annotations

import time

import streamlit as st

from bntt_core import viz
from bntt_core.analysis import gamma_history
from bntt_core.nn.norms import NORMS
from bntt_core.runs import listing
from bntt_core.runs import live as lt
from dashboard import state

REFRESH_S = 2.0  # the live panel re-reads the job's files this often while it runs

st.title("Train a network")
root = lt.train_root()
status = lt.job_status(root)
presets = lt.workshop_presets()

st.caption(f"Small runs that finish in minutes on a laptop CPU, trained in the background into `{root}`: "
           "close the tab whenever you like, the training goes on, and this page shows it again. One training "
           "at a time on this server.")
if not any(listing.is_inside(root, configured) for configured in state.configured_run_roots()):
    st.warning(f"Runs trained here go to {root}, which is not one of the dashboard's run roots: add it in the "
               "sidebar (Run roots) to see them in the Runs view.", icon=":material/warning:")


def _visitor() -> str:
    """Who pressed the button, as other visitors see it (their address where Streamlit knows it)."""
    ip = getattr(st.context, "ip_address", None)
    return f"a dashboard visitor ({ip})" if ip else "a dashboard visitor"


def _suggested_name(preset: str) -> str:
    return f"{preset}-{time.strftime('%m%d-%H%M%S')}"


def _apply_preset() -> None:
    """The preset's dataset, norm, T and epochs into the form, and a fresh run name."""
    chosen = st.session_state["train_preset"]
    defaults = lt.preset_defaults(chosen)
    st.session_state["train_dataset"] = defaults["dataset"]
    st.session_state["train_norm"] = defaults["norm"]
    st.session_state["train_steps"] = min(max(defaults["num_steps"], lt.STEPS_RANGE[0]), lt.STEPS_RANGE[1])
    st.session_state["train_epochs"] = min(max(defaults["epochs"], lt.EPOCH_RANGE[0]), lt.EPOCH_RANGE[1])
    st.session_state["train_name"] = _suggested_name(chosen)


if st.session_state.get("train_preset") not in presets:
    st.session_state["train_preset"] = next(iter(presets))
    _apply_preset()
if st.session_state.pop("train_new_name", False):  # after a start: the next run needs another name
    st.session_state["train_name"] = _suggested_name(st.session_state["train_preset"])

datasets = lt.available_datasets()
with st.container(border=True):
    st.markdown("**New training**")
    left, right = st.columns(2)
    with left:
        preset = st.selectbox("Preset", list(presets), key="train_preset", on_change=_apply_preset)
        st.caption(f"{presets[preset].description}  \nMeasured: {presets[preset].measured}")
        name = st.text_input("Run name (a folder in the run root)", key="train_name")
        analysis = st.radio("Analysis when it finishes", lt.ANALYSIS_MODES, key="train_analysis", horizontal=True,
                            help="quick: the analysis tables on 256 test images (seconds); full: on the whole test "
                                 "set (minutes); none: only the training")
    with right:
        state.keep_choice("train_dataset", datasets, datasets[0] if datasets else None)
        dataset = st.selectbox("Dataset", datasets, key="train_dataset",
                               help="the 28×28 datasets found on this machine (nothing is downloaded)")
        norm = st.selectbox("Normalisation", list(NORMS), key="train_norm",
                            help="bntt: the paper's per-step γ_t (the γ heatmap below); the others are its ablations")
        num_steps = st.number_input("Time steps T", min_value=lt.STEPS_RANGE[0], max_value=lt.STEPS_RANGE[1],
                                    step=1, key="train_steps")
        epochs = st.number_input("Epochs", min_value=lt.EPOCH_RANGE[0], max_value=lt.EPOCH_RANGE[1], step=1,
                                 key="train_epochs")
        seed = st.number_input("Seed", min_value=0, max_value=10_000, step=1, value=0, key="train_seed")
    if status.running:
        st.info("Start is disabled while a training runs: " + lt.running_message(status.record),
                icon=":material/hourglass_top:")
    if st.button("Start training", key="train_start", type="primary", disabled=status.running,
                 icon=":material/play_arrow:"):
        request = lt.JobRequest(name=name, preset=preset, dataset=dataset, norm=norm, num_steps=int(num_steps),
                                epochs=int(epochs), seed=int(seed), analysis=analysis, started_by=_visitor())
        try:
            lt.start_job(request, root)
        except (lt.JobInputError, lt.JobRunningError) as problem:
            st.error(str(problem), icon=":material/block:")
        else:
            st.session_state["train_new_name"] = True
            st.rerun()


def _show_progress(current: lt.JobStatus) -> None:
    metrics = current.metrics
    total = current.epochs
    done = int(metrics["epoch"].max()) if len(metrics) and "epoch" in metrics else 0
    columns = st.columns(4)
    columns[0].metric("Epochs done", f"{done} / {total}" if total else str(done))
    if done:
        last = metrics.sort_values("epoch").iloc[-1]
        columns[1].metric("Training loss", f"{last['train_loss']:.4f}")
        columns[2].metric("Train accuracy", f"{100 * last['train_acc']:.2f}%")
        columns[3].metric("Test accuracy", f"{100 * last['test_acc']:.2f}%")
    charts = st.columns(2)
    with charts[0]:
        if done:
            st.plotly_chart(viz.training_curves_figure(metrics), key="train_progress_chart",
                            config={"displaylogo": False})
        else:
            st.caption("Loss and accuracy appear here when the first epoch finishes.")
    with charts[1]:
        history = current.gamma
        if history is not None and len(history):
            last = gamma_history.epochs(history)[-1]
            gamma_mean = gamma_history.gamma_mean_at(history, last)
            st.plotly_chart(viz.gamma_heatmap_figure(gamma_mean), key="train_gamma_chart",
                            config={"displaylogo": False})
            st.caption(f"Mean γ {'at initialisation' if last == 0 else f'after epoch {last}'}: from "
                       f"{gamma_mean['mean_gamma'].min():.3f} to {gamma_mean['mean_gamma'].max():.3f}. Explore "
                       "every epoch's γ in the γ explorer (Through training) once it finishes.")
        elif ((current.record or {}).get("settings") or {}).get("norm") != "bntt":
            st.caption("γ per time step exists only with norm bntt (BNTT); this run has none.")
        else:
            st.caption("Mean γ per layer and time step appears here after each epoch (when the training "
                       f"writes {lt.GAMMA_HISTORY_FILE}).")


def live_panel() -> None:
    """The current (or last) job: state, live curves and γ, Stop / Resume / Open in Runs."""
    current = lt.job_status(root)
    if current.record is None:
        st.caption("No training started from this page yet.")
        return
    if current.state != status.state:  # it changed since the page was drawn: redraw all (Start button)
        st.rerun()
    record = current.record
    st.subheader(record.get("name", "?"))
    st.caption(f"{lt.describe_settings(record.get('settings') or {})}; analysis {record.get('analysis')}; started "
               f"{record.get('started')}" + (f" by {record['started_by']}" if record.get("started_by") else "")
               + f"  \n`{record.get('run')}`")
    if current.running:
        phase = {"starting": "starting…", "training": "training…", "analysing": "analysing the finished run…"}
        st.info(f"Running: {phase.get(current.phase or '', current.phase)}", icon=":material/model_training:")
        if st.button("Stop", key="train_stop", icon=":material/stop:",
                     help="stops the training; the last finished epoch's checkpoint stays, so it can be resumed"):
            with st.spinner("Stopping…"):
                lt.stop_job(root)
            st.rerun()
    elif current.state == lt.FINISHED:
        accuracy = f" test accuracy {current.test_accuracy:.2%}" if current.test_accuracy is not None else ""
        tables = current.analysis_tables
        st.success(f"Finished:{accuracy}" + (f"; {len(tables)} analysis tables" if tables else ""),
                   icon=":material/check_circle:")
        if st.session_state.get("train_cleared_job") != record.get("job"):
            state.clear_run_caches()  # the Runs view lists the new run at once
            st.session_state["train_cleared_job"] = record.get("job")
        st.page_link("views/runs.py", label=f"Open {record.get('name')} in Runs", icon=":material/folder_open:",
                     query_params={"run": str(record.get("run"))})
    elif current.state == lt.STOPPED:
        st.warning(f"Stopped: {current.error or 'on request'}", icon=":material/pause_circle:")
    else:
        st.error(f"Failed: {current.error or 'see the log below'}", icon=":material/error:")
    if not current.running and current.resumable:
        if st.button("Resume", key="train_resume", icon=":material/resume:",
                     help="continues from the last finished epoch (bntt train --resume), then analyses"):
            try:
                lt.resume_job(root, started_by=_visitor())
            except (lt.JobInputError, lt.JobRunningError) as problem:
                st.error(str(problem), icon=":material/block:")
            else:
                st.rerun()
    _show_progress(current)
    with st.expander("Log (last lines)", expanded=current.state == lt.FAILED):
        st.code("\n".join(current.log_tail) or "(empty)", language=None)


st.fragment(run_every=REFRESH_S if status.running else None)(live_panel)()
