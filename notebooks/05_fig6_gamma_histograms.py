# ---
# jupyter:
#   bntt_figures:
#   - fig6_gamma_histograms
#   - fig6_gamma_mean_heatmap
#   - fig6_gamma_ridge
#   - fig6_gamma_bands
#   - fig6_gamma_through_training
#   - fig6_exit_step_through_training
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
# # Fig 6 — histograms of BNTT's γ at every time step
#
# **What the paper claims.** Looking at the distribution of γ over the channels of conv1, conv4 and conv7
# of a CIFAR-10 VGG9 (T = 25) step by step: conv1 has large γ at the first steps that shrink over time,
# while conv4 and conv7 start small, **peak at t = 9 and t = 13** respectively, and then shrink towards
# zero. The peak comes later the deeper the layer — the same shallow-to-deep hand-over as the spike
# activity of Fig 1C — and the rise and fall of γ explains BNTT's low spike counts.
#
# **How this notebook tests it.** It draws the `gamma` table (one γ per layer, step and channel) as
# histograms with a step slider (frequency normalised to [0, 1], as in the paper), for conv1/conv4/conv7
# when the network has them, else its first, middle and last BNTT layers, and finds each layer's peak
# step.

# %%
from bntt_core import paper, viz
from bntt_core.analysis import gamma_history

# %% tags=["parameters"]
RUN_DIRS = {"bntt": paper.SHIPPED["bntt"]}
QUICK = False
OUTPUT_DIR = paper.DEFAULT_OUTPUT_DIR
LAYERS = None   # None: conv1, conv4, conv7 if present, else the first, middle and last BNTT layers
BINS = 30       # histogram bins per layer

# %% [markdown]
# `QUICK = True` replaces every run by a tiny stand-in trained here in seconds (a 1/8-width VGG5 on 512
# MNIST digits for one epoch): it checks that the notebook runs, not what BNTT does. Its numbers mean
# nothing; read the verdicts only with the shipped runs (`QUICK = False`).

# %%
runs = paper.ensure_runs(RUN_DIRS, quick=QUICK, tables=["gamma", "gamma_mean"])
gamma = paper.table(runs, "bntt", "gamma")
gamma_mean = paper.table(runs, "bntt", "gamma_mean")
layers = LAYERS or paper.gamma_histogram_layers(gamma)
print("layers:", layers)

# %% [markdown]
# ## γ histograms, one row per layer — press ▶ or drag the slider to move through the steps

# %%
fig = viz.gamma_histogram_figure(gamma, layers=layers, bins=BINS)
paper.save_figure(fig, "fig6_gamma_histograms", gamma[gamma["layer"].isin(layers)], OUTPUT_DIR)
fig

# %% [markdown]
# The mean of each layer's γ over its channels, as a layer × step heat map, summarises the histograms:

# %%
heatmap = viz.gamma_heatmap_figure(gamma_mean)
paper.save_figure(heatmap, "fig6_gamma_mean_heatmap", gamma_mean, OUTPUT_DIR)
heatmap

# %%
gamma_peaks = paper.verdict_gamma(gamma_mean[gamma_mean["layer"].isin(layers)])
gamma_peaks

# %% [markdown]
# ## Every step of one layer in one printable figure
#
# A ridge plot (one histogram of γ over the channels per step, offset, the first step at the top) and
# percentile bands over t (min–max, 7–93, 16–84, 31–69 and the median over the channels), for the deepest
# chosen layer.

# %%
ridge = viz.gamma_ridge_figure(gamma, layers[-1], bins=BINS)
paper.save_figure(ridge, "fig6_gamma_ridge", gamma[gamma["layer"] == layers[-1]], OUTPUT_DIR)
ridge

# %%
bands = viz.gamma_bands_figure(gamma, layers[-1])
paper.save_figure(bands, "fig6_gamma_bands", gamma[gamma["layer"] == layers[-1]], OUTPUT_DIR)
bands

# %% [markdown]
# ## How γ took shape: γ through training
#
# `bntt train` keeps γ's summary after every epoch (`RUN/gamma_history.csv`, epoch 0 = initialisation, where
# every γ is 1). The heat map below plays the mean γ over the epochs (▶ or the slider), and the line gives the
# paper's exit step at τ = 0.1 after each epoch. Runs trained before the history existed have none.

# %%
history = gamma_history.read_gamma_history(runs["bntt"])
animated = exits = None
if history is None:
    print(f"{runs['bntt']} has no γ history: it was trained before `bntt train` kept one")
else:
    animated = viz.gamma_history_heatmap_figure(history)
    paper.save_figure(animated, "fig6_gamma_through_training", history, OUTPUT_DIR)
    exits = viz.exit_step_by_epoch_figure(history, 0.1)
    paper.save_figure(exits, "fig6_exit_step_through_training", gamma_history.exit_step_by_epoch(history, 0.1),
                    OUTPUT_DIR)
animated

# %%
exits

# %% [markdown]
# ## What this run shows
#
# The printed "mean γ peaks at …" line gives the step at which each chosen layer's mean γ is largest,
# and its value at the last step. The paper's description holds here if the first layer peaks at the
# first steps, the deeper layers peak later ("deeper layers peak later: yes"), and γ ends near zero
# (the layers ending at ≤ half their peak). Histograms carry more than the mean: use the slider to see
# whether the whole distribution moves, or only a few channels.
