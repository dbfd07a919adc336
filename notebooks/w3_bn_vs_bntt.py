# ---
# jupyter:
#   bntt_figures:
#   - w3_bn_vs_bntt_demo
#   - w3_accuracy_by_step
#   - w3_gamma_mean
#   - w3_bn_input
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
# # Workshop 3 — why BatchNorm breaks across time, and what BNTT changes (≈ 30 min)
#
# A standard BatchNorm layer in an SNN is one BatchNorm called at every step: in training it normalises
# each step with that step's batch statistics, but it stores ONE running mean/variance (and has ONE γ)
# for all steps, and inference uses that one statistic at every step. But the input of a spiking layer changes
# over time: little arrives at the first steps, more later, and then the activity may die down. BNTT
# (Batch Normalization Through Time) keeps a separate mean, variance **and scale γ_t** for every step:
#
# ```
# BNTT_t(I) = γ_t · (I − μ_t) / sqrt(σ²_t + ε)
# ```
#
# You will see the mismatch on synthetic data, then train three small networks — no normalisation,
# standard BN (`norm="bn"`, the paper's), BNTT — and look at what BNTT's γ learnt.

# %%
from bntt_core import paper, teaching, viz

# %% tags=["parameters"]
RUN_DIRS = {}          # this notebook trains its own networks (see WORKSHOP_RUNS below)
QUICK = False
OUTPUT_DIR = paper.DEFAULT_OUTPUT_DIR
NUM_STEPS = 8          # T of the three small networks
EPOCHS = 1
TRAIN_IMAGES = 4000    # of the 8,000 mnist10k training digits (all 2,000 test digits are used)
THRESHOLD = 0.1        # γ threshold for the early-exit line in the γ figure

# %% [markdown]
# ## 1. One statistic for all steps vs one per step (synthetic)
#
# The input's mean rises and falls over 10 steps. Both layers are fitted on such batches in training
# mode, then normalise a fresh batch with their stored statistics, as at inference.

# %%
demo = teaching.bn_vs_bntt_demo(num_steps=10, drift="rise_then_fall")
fig = viz.bn_vs_bntt_figure(demo)
paper.save_figure(fig, "w3_bn_vs_bntt_demo", demo, OUTPUT_DIR)
fig

# %% [markdown]
# ### Exercise 1
# Try `drift="rising"` and a larger `spread_growth`. At which steps is standard BN's output furthest from
# mean 0 / std 1, and why exactly there?

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution: standard BN subtracts its ONE stored running mean at every step, an average over the
# steps (updated in step order, so the later steps weigh a little more), so its output is off by
# (mean_t − stored mean)/stored std: most at the first and last steps of a rising input, where the
# step's mean is furthest from it; its std is below 1 early and above 1 late, as the spread grows.
# BNTT subtracts each step's own mean and stays centred.
rising = teaching.bn_vs_bntt_demo(num_steps=10, drift="rising", spread_growth=2.0)
rising[["t", "input_mean", "bn_running_mean", "bn_output_mean", "bntt_output_mean", "bn_output_std", "bntt_output_std"]].round(3)

# %% [markdown]
# ## 2. Train none / BN / BNTT at the same size
#
# Three quarter-width VGG5 networks on MNIST digits with T = NUM_STEPS, identical except for the
# normalisation. Each is a full run directory (trained with the package's trainer and analysed), cached
# under the output folder so re-running the notebook does not retrain.

# %%
WORKSHOP_RUNS = paper.workshop_runs(["none", "bn", "bntt"], quick=QUICK, num_steps=NUM_STEPS, epochs=EPOCHS,
                                  train_images=TRAIN_IMAGES)
summary = paper.accuracy_summary(WORKSHOP_RUNS)
summary

# %%
by_step = paper.tables(WORKSHOP_RUNS, "accuracy_by_step")
fig = viz.accuracy_by_step_figure(by_step)
paper.save_figure(fig, "w3_accuracy_by_step", by_step, OUTPUT_DIR)
fig

# %% [markdown]
# ## 3. What BNTT's γ learnt
#
# Every BNTT layer has one γ per channel **and per step**. Their mean over channels, per layer and step:

# %%
gamma_mean = paper.table(WORKSHOP_RUNS, "bntt", "gamma_mean")
fig = viz.gamma_mean_figure(gamma_mean, threshold=THRESHOLD)
paper.save_figure(fig, "w3_gamma_mean", gamma_mean, OUTPUT_DIR)
fig

# %% [markdown]
# And the BN network's problem in its own data: the input of its norm layer over time against the one
# running mean it stores (the paper's Fig 3, in miniature):

# %%
bn_input = paper.table(WORKSHOP_RUNS, "bn", "bn_input")
bn_input_hist = paper.table(WORKSHOP_RUNS, "bn", "bn_input_hist")
layer = paper.default_bn_layer(bn_input)
fig = viz.bn_input_figure(bn_input, bn_input_hist, layer, steps=None)
paper.save_figure(fig, "w3_bn_input", bn_input[bn_input["layer"] == layer], OUTPUT_DIR)
fig

# %% [markdown]
# ### Exercise 2
# Which BNTT layer's mean γ peaks latest, and does any layer's γ fall at the last steps? Compare with the
# paper (Fig 4/6: deeper layers peak later, γ falls towards zero at the end).

# %% jupyter={"source_hidden": true} tags=["solution"]
peaks = paper.verdict_gamma(gamma_mean)
peaks

# %% [markdown]
# ### Exercise 3
# Rank the three networks by test accuracy. Does BNTT > BN > none hold at this size, T and training
# time? Re-run with `NUM_STEPS = 4` or `EPOCHS = 2` (parameters cell) and see whether the order changes.

# %% jupyter={"source_hidden": true} tags=["solution"]
paper.verdict_accuracy(summary, order=["bntt", "bn", "none"])
