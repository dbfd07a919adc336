"""The BNTT dashboard: explore every trained run and every paper figure, and teach with it.

Run from the repository root (serves on http://localhost:8501 only; settings in .streamlit/config.toml):

    make run
    # or: .venv/bin/streamlit run dashboard/app.py

Views (one file each in dashboard/views/): Runs, γ explorer, Spike activity, Early exit, Robustness,
Compare, and for workshops Learn (needs no trained run) and Train (a small run in the background). What is
on screen (run, layer, step, threshold, tab) is in the URL: a copied link reopens it (dashboard/state.py). Runs are read from the run roots (see dashboard/state.py):
data/runs/, runs/ and $BNTT_RUN_ROOTS.
"""

from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent
if str(_REPO_ROOT) not in sys.path:  # `streamlit run` puts only dashboard/ on the path
    sys.path.insert(0, str(_REPO_ROOT))

import streamlit as st  # noqa: E402

from dashboard import state  # noqa: E402

st.set_page_config(page_title="BNTT explorer", page_icon=":material/bolt:", layout="wide")

PAGES = {
    "Trained runs": [
        st.Page("views/runs.py", title="Runs", icon=":material/folder_open:", url_path="runs", default=True),
        st.Page("views/gamma.py", title="γ explorer", icon=":material/tune:", url_path="gamma"),
        st.Page("views/spikes.py", title="Spike activity", icon=":material/bar_chart:", url_path="spikes"),
        st.Page("views/early_exit.py", title="Early exit", icon=":material/timer:", url_path="early_exit"),
        st.Page("views/robustness.py", title="Robustness", icon=":material/shield:", url_path="robustness"),
        st.Page("views/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    ],
    "Workshop": [
        st.Page("views/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
        st.Page("views/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    ],
}

navigation = st.navigation(PAGES)
state.sidebar_settings()
with state.url_batch():  # the view's place in the URL (a link to share) is sent once, when the page ends
    navigation.run()
