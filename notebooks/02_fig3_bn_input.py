# ---
# jupyter:
#   bntt_figures:
#   - fig3_bn_input
#   - fig3_bn_input_ridge
#   - fig3_bn_input_bands
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
# # Fig 3 — why one BN for all time steps does not fit: the BN input over time
#
# **What the paper claims.** In a VGG9 SNN trained with a standard BatchNorm (one BatchNorm called at
# every step: one γ and one stored running mean/variance for all steps), the input of the BN layer at
# layer 5 is distributed differently at
# t = 1, 10 and 20, and its mean drifts over the steps. A single running mean/variance, stored once and
# used at every step at inference, therefore matches none of the steps well. This is the paper's
# motivation (§3.2) for giving every time step its own statistics and its own γ — BNTT.
#
# **How this notebook tests it.** It reads the `bn_input` table (mean and std of the norm's input per
# layer and step, plus the one stored running mean of a run with a single BN for all steps) and
# `bn_input_hist` (histograms per step) of the run trained with standard BN, and measures how far each
# step's mean lies from the stored running mean. The shipped run (`fashion-t20-bn-s0`, T = 20) is the paper's
# BN: one BatchNorm called at every step, with per-step batch statistics in training and ONE running mean and
# variance, updated at every step, for inference.

# %%
from bntt_core import paper, viz

# %% tags=["parameters"]
RUN_DIRS = {"bn": paper.SHIPPED["bn"]}   # a run with ONE stored running mean: norm bn (the paper's) or bn-joint (shipped)
QUICK = False
OUTPUT_DIR = paper.DEFAULT_OUTPUT_DIR
LAYER = None    # None picks conv5 (layer 5 in the paper) if present, else the deepest conv layer
STEPS = None    # None picks t 1, 10, 20 of 25 (the paper) scaled to the number of steps of the run

# %% [markdown]
# `QUICK = True` replaces every run by a tiny stand-in trained here in seconds (a 1/8-width VGG5 on 512
# MNIST digits for one epoch): it checks that the notebook runs, not what BNTT does. Its numbers mean
# nothing; read the verdicts only with the shipped runs (`QUICK = False`).

# %%
runs = paper.ensure_runs(RUN_DIRS, quick=QUICK, tables=["bn_input", "bn_input_hist"])
bn_input = paper.table(runs, "bn", "bn_input")
bn_input_hist = paper.table(runs, "bn", "bn_input_hist")
layer = LAYER or paper.default_bn_layer(bn_input)
steps = STEPS or paper.paper_steps(int(bn_input["t"].max()))
print(f"layer {layer}, steps {steps}")

# %% [markdown]
# ## The distribution of the BN input at a few steps, and its mean over time
#
# Left: histograms of the norm's input at the chosen steps. Right: the input's mean (± std) at every step
# against the one running mean that standard BN stores and uses at every step (dashed).

# %%
fig = viz.bn_input_figure(bn_input, bn_input_hist, layer, steps=steps)
paper.save_figure(fig, "fig3_bn_input", {"bn_input": bn_input[bn_input["layer"] == layer],
                                       "bn_input_hist": bn_input_hist[bn_input_hist["layer"] == layer]},
                OUTPUT_DIR)
fig

# %% [markdown]
# ## Every step in one printable figure
#
# A ridge plot (one histogram of the norm's input per step, offset, the first step at the top — TensorBoard's
# "offset" histogram view) and percentile bands over t (min–max, 7–93, 16–84, 31–69 and the median, read from
# the stored histograms: exact to within one bin).

# %%
ridge = viz.bn_input_ridge_figure(bn_input_hist, layer)
paper.save_figure(ridge, "fig3_bn_input_ridge", bn_input_hist[bn_input_hist["layer"] == layer], OUTPUT_DIR)
ridge

# %%
bands = viz.bn_input_bands_figure(bn_input_hist, layer, bn_input)
paper.save_figure(bands, "fig3_bn_input_bands", bn_input_hist[bn_input_hist["layer"] == layer], OUTPUT_DIR)
bands

# %% [markdown]
# ## How far the steps are from the stored statistic

# %%
mismatch = paper.verdict_bn_input(bn_input, layer)

# %% [markdown]
# ## What this run shows
#
# Read the printed lines above. The paper's point holds here when the input's mean moves over time by
# a sizeable part of its std (the "range over time" number) and several steps sit more than 0.5 std
# away from the single stored running mean (the "→ a single statistic misfits some steps" line says
# yes). If the drift is small for this run — which can happen with few time steps or a shallow
# network — the mismatch BNTT removes is small too, and the line says no.
