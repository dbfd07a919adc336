"""The Streamlit dashboard of bntt_core (`make run`); `dashboard.state` holds its shared plumbing."""
