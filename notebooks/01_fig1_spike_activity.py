# ---
# jupyter:
#   bntt_figures:
#   - fig1_spike_activity
#   - fig1_bntt_spike_heatmap
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
# # Fig 1 — spike activity over time: conversion vs surrogate gradient vs BNTT
#
# **What the paper claims.** Kim & Panda count the mean number of spikes per neuron in every layer of a
# CIFAR-10 VGG9 at every time step. For an ANN→SNN converted network (A) and a surrogate-gradient SNN
# without BNTT (B), every layer keeps spiking at a roughly steady level for the whole time window. With
# BNTT (C, T = 25 steps) each layer's activity instead rises to a peak and then falls again, like a
# Gaussian bump, and the peaks move later the deeper the layer: early layers are busy at the first
# steps, late layers later. The paper reads this as BNTT passing information from shallow to deep layers
# over time, and it is what makes early exit (Fig 4/7) and low spike counts (Fig 5) possible.
#
# **How this notebook tests it.** It reads the `spike_activity` table (mean spikes per neuron, per layer
# and step) of three runs — converted, trained without normalisation, trained with BNTT — draws them
# side by side, and computes for each run where every layer peaks and how much activity is left at the
# last step.

# %%
from bntt_core import paper, viz

# %% tags=["parameters"]
RUN_DIRS = {
    "converted": paper.SHIPPED["converted"],  # (A) ANN→SNN conversion
    "none": paper.SHIPPED["none"],            # (B) surrogate gradient, no normalisation
    "bntt": paper.SHIPPED["bntt"],            # (C) BNTT
}
QUICK = False                          # True: tiny stand-in runs trained in seconds (what CI executes)
OUTPUT_DIR = paper.DEFAULT_OUTPUT_DIR    # figures (HTML, PNG) and their data (CSV) are saved here

# %% [markdown]
# `QUICK = True` replaces every run by a tiny stand-in trained here in seconds (a 1/8-width VGG5 on 512
# MNIST digits for one epoch): it checks that the notebook runs, not what BNTT does. Its numbers mean
# nothing; read the verdicts only with the shipped runs (`QUICK = False`).

# %%
runs = paper.ensure_runs(RUN_DIRS, quick=QUICK, tables=["spike_activity"])
activity = paper.tables(runs, "spike_activity")

# %% [markdown]
# ## Spikes per neuron, per layer and step
#
# One panel per run, the same y axis for all. Layers are coloured shallow (dark) → deep (green).

# %%
fig = viz.spike_activity_figure(activity)
paper.save_figure(fig, "fig1_spike_activity", activity, OUTPUT_DIR)
fig

# %% [markdown]
# The same BNTT data as a heat map (layer × step) makes the order of the peaks easy to see:

# %%
bntt_activity = activity[paper.label("bntt")]
heatmap = viz.spike_heatmap_figure(bntt_activity)
paper.save_figure(heatmap, "fig1_bntt_spike_heatmap", bntt_activity, OUTPUT_DIR)
heatmap

# %% [markdown]
# ## Where each layer peaks

# %%
verdict = paper.verdict_spike_activity(activity, bntt_label=paper.label("bntt"), groups=paper.run_groups(runs))
verdict

# %% [markdown]
# ## What this run shows
#
# The printed lines above are the result; they are computed from the runs named under "runs used".
#
# - The paper's pattern holds for BNTT if its line says **deeper layers peak later: yes** and most
#   layers **rise then fall** (activity at the last step well below the peak).
# - The contrast with (A) and (B) holds if BNTT's share of peak activity left at the last step is
#   lower than theirs (the "→ … falls off more" line).
# - Where a line says *no*, the shipped run does not reproduce that part of Fig 1. The shipped runs are
#   small CPU models (see their T and dataset above), not the paper's VGG9 on CIFAR-10 with T = 25, and
#   a network with only a handful of steps has little room to show a bump.
