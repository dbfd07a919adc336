# ---
# jupyter:
#   bntt_figures:
#   - energy_per_layer
#   - standard_metrics
#   jupytext:
#     notebook_metadata_filter: bntt_figures,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Energy — what fewer spikes are worth
#
# **What the paper claims.** BNTT trains SNNs that are low-latency **and low-energy**: fewer steps and
# fewer spikes per layer (Fig 5) mean fewer synaptic operations. Its supplement (E) compares energy on
# neuromorphic hardware; the usual estimate, used here (45 nm CMOS, Horowitz 2014), charges an ANN
# **4.6 pJ per multiply-accumulate** and an SNN **0.9 pJ per synaptic operation** (one spike reaching
# one synapse). Early exit (Fig 4/7) saves the energy of the skipped steps on top.
#
# **How this notebook tests it.** It reads the `energy` table (per layer: synaptic operations, MACs and
# energy in pJ per image) of the BNTT, BN, no-norm, ANN and converted runs, compares totals, and
# estimates what BNTT's early exit saves.

# %%
from bntt_core import paper, viz

# %% tags=["parameters"]
RUN_DIRS = {
    "bntt": paper.SHIPPED["bntt"],
    "bn": paper.SHIPPED["bn"],
    "none": paper.SHIPPED["none"],
    "ann": paper.SHIPPED["ann"],
    "converted": paper.SHIPPED["converted"],
}
QUICK = False
OUTPUT_DIR = paper.DEFAULT_OUTPUT_DIR
THRESHOLD = 0.1   # γ threshold of the BNTT early exit

# %% [markdown]
# `QUICK = True` replaces every run by a tiny stand-in trained here in seconds (a 1/8-width VGG5 on 512
# MNIST digits for one epoch): it checks that the notebook runs, not what BNTT does. Its numbers mean
# nothing; read the verdicts only with the shipped runs (`QUICK = False`).

# %%
runs = paper.ensure_runs(RUN_DIRS, quick=QUICK, tables=["energy", "spike_activity", "gamma_mean", "accuracy_by_step"])
energy = paper.tables(runs, "energy")
convention = paper.energy_convention(runs["bntt"])
print("convention:", convention)

# %% [markdown]
# ## Energy per image, per layer and in total (log scales)

# %%
fig = viz.energy_figure(energy, convention=convention)
paper.save_figure(fig, "energy_per_layer", energy, OUTPUT_DIR)
fig

# %%
totals = paper.verdict_energy(energy, bntt_label=paper.label("bntt"), groups=paper.run_groups(runs))
totals

# %% [markdown]
# ## What BNTT's early exit adds

# %%
saving = paper.verdict_early_exit_energy(runs["bntt"], THRESHOLD)

# %% [markdown]
# ## The standard metrics (NeuroBench)
#
# Footprint, connection and activation sparsity, and synaptic operations per image over one inference (dense,
# effective MACs, effective ACs), as NeuroBench defines them for SNNs (`standard_metrics` table; how we count and
# where we differ: docs/METRICS.md). The energy above prices these operations; NeuroBench itself gives counts.

# %%
standard = paper.tables(paper.ensure_runs(RUN_DIRS, quick=QUICK, tables=["standard_metrics"]), "standard_metrics")
fig = viz.standard_metrics_figure(standard)
paper.save_figure(fig, "standard_metrics", standard, OUTPUT_DIR)
fig

# %% [markdown]
# ## What this run shows
#
# The totals table and the "→ lowest energy here" line say which run is cheapest per image under this
# convention; the `times_BNTT` column gives every run's energy as a multiple of BNTT's. The claim that
# BNTT is low-energy holds here if BNTT's total is below the no-norm and converted SNNs' and below the
# ANN's. The last line gives the extra saving of early exit at the chosen threshold (zero when γ never
# falls below it). This is an operation count, not a measurement on hardware: memory traffic, membrane
# updates and normalisation are not counted (see the convention printed above).
