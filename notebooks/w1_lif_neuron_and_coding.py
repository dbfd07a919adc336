# ---
# jupyter:
#   bntt_figures:
#   - w1_lif_trace
#   - w1_firing_rates
#   - w1_poisson_coding
#   - w1_direct_coding
#   - w1_trained_raster
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
# # Workshop 1 — a spiking neuron, and how images become spikes (≈ 30 min)
#
# Everything a BNTT network computes happens in leaky integrate-and-fire (LIF) neurons. Per time step t:
#
# ```
# U ← λ·U + I_t          charge: the membrane potential U leaks by λ and adds the input current
# s_t = 1 if U > θ       fire when U crosses the threshold θ
# U ← U − θ·s_t          soft reset (the paper's): keep what was above θ    — or hard reset: U ← 0
# ```
#
# You will drive one neuron with a current, change its leak, threshold and reset, then turn an image
# into spikes with Poisson (rate) coding and direct coding, and finally look inside a trained network.

# %%
from bntt_core import paper, teaching, viz
from bntt_core.runs import load_run

# %% tags=["parameters"]
RUN_DIRS = {"quickstart": paper.SHIPPED["quickstart"]}   # a trained BNTT network for the last part
QUICK = False
OUTPUT_DIR = paper.DEFAULT_OUTPUT_DIR
LEAK = 0.95          # λ, the CIFAR-10 value of the paper
THRESHOLD = 1.0      # θ
CODING_STEPS = 25    # steps for the coding demo (T of the paper for CIFAR-10)

# %% [markdown]
# ## 1. One neuron, one step current
#
# The current switches on at step 10. Watch U climb, cross θ, and drop back by θ at each spike.

# %%
current = teaching.input_current("step", num_steps=60, amplitude=0.3, onset=10)
trace = teaching.lif_trace(current, leak=LEAK, threshold=THRESHOLD, reset="soft")
fig = viz.lif_trace_figure(trace["current"], trace["membrane"], trace["spike"], THRESHOLD,
                             membrane_after_reset=trace["membrane_after_reset"])
paper.save_figure(fig, "w1_lif_trace", trace, OUTPUT_DIR)
fig

# %% [markdown]
# ## 2. Leak, threshold and reset change the firing rate
#
# The firing rate (spikes per step) for a constant current, over a range of currents: the neuron's
# "f–I curve", for a few leaks and both resets.

# %%
rates = teaching.firing_rate_table(currents=[i / 100 for i in range(0, 151, 5)], leaks=[0.5, 0.9, LEAK, 1.0],
                              threshold=THRESHOLD, resets=["soft", "hard"], num_steps=100)
fig = viz.firing_rate_figure(rates)
paper.save_figure(fig, "w1_firing_rates", rates, OUTPUT_DIR)
fig

# %% [markdown]
# ### Exercise 1
# With λ = 0.95 and θ = 1, what is the **smallest constant current that ever makes the neuron fire**?
# Find it with `teaching.lif_trace` (or `teaching.firing_rate_table`) and explain it with the charge equation.
# *Hint:* without spikes, U approaches I / (1 − λ).

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution: U_t = I·(1 + λ + … + λ^(t−1)) → I / (1 − λ), so the neuron can fire only if I / (1 − λ) > θ,
# i.e. I > θ·(1 − λ) = 0.05. Just above it the neuron fires, but only after a long time.
import numpy as np

for amplitude in (0.049, 0.0505, 0.06):
    trace = teaching.lif_trace(np.full(400, amplitude), leak=0.95, threshold=1.0)
    first = trace.loc[trace.spike == 1, "t"].min()
    print(f"I = {amplitude}: {int(trace.spike.sum())} spikes in 400 steps, first at t = {first}")
print("theory: fires iff I > θ·(1 − λ) =", 1.0 * (1 - 0.95))

# %% [markdown]
# ### Exercise 2
# For constant currents between 0.5 and 0.9 (λ = 0.95) compare the firing rates with the **soft** and the
# **hard** reset. Which one tells the currents apart, and why does the paper prefer the soft reset (§3.1)?

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution: with the soft reset the rate tracks the current (≈ I/θ, slightly less because of the leak);
# the hard reset throws away what was above θ at every spike, so every current between 0.5 and 1 needs
# two steps per spike and gives the same rate, 0.5: the rate no longer tells them apart. Keeping the
# residue loses less information — the paper's argument for the soft reset.
rates = teaching.firing_rate_table(currents=[0.5, 0.6, 0.7, 0.8, 0.9], leaks=[0.95], threshold=1.0,
                              resets=["soft", "hard"], num_steps=100)
rates.pivot(index="current", columns="reset", values="rate")

# %% [markdown]
# ## 3. From an image to spikes: Poisson (rate) coding vs direct coding
#
# The network sees the **normalised** image x = (pixel − mean) / std. Poisson coding (the paper's) sends
# a spike of sign(x) with probability |x| / 2 at every step, fresh each step; direct coding sends the
# analog x itself at every step and lets the first layer's neurons make the spikes.

# %%
digit = teaching.example_digit()   # a test digit of mnist10k: pixels in [0, 1] and the dataset's mean/std
coded = teaching.encode_image(digit["pixels"], mean=digit["mean"], std=digit["std"], num_steps=CODING_STEPS)
poisson = viz.encoding_figure(coded["poisson"], "Poisson coding: ternary spikes, fresh at every step")
paper.save_figure(poisson, "w1_poisson_coding", teaching.encoding_summary(coded), OUTPUT_DIR)
poisson

# %%
direct = viz.encoding_figure(coded["direct"], "Direct coding: the same analog image at every step")
paper.save_figure(direct, "w1_direct_coding", teaching.encoding_summary(coded), OUTPUT_DIR)
direct

# %% [markdown]
# ### Exercise 3
# Averaged over many steps, Poisson spikes approach the image (up to the factor 1/2). **How many steps
# does it take** until the average is within 0.05 of its limit on average over the pixels? What does
# that say about the number of time steps an SNN with rate coding needs?

# %% jupyter={"source_hidden": true} tags=["solution"]
# Solution: the limit of the average is sign(x)·min(|x|/2, 1); the error of a mean of T Bernoulli
# draws shrinks like 1/√T, so halving the error costs four times the steps — one reason rate-coded
# SNNs need tens to hundreds of steps, and why direct coding or BNTT's low latency matter.
import numpy as np

long = teaching.encode_image(digit["pixels"], mean=digit["mean"], std=digit["std"], num_steps=400)
limit = np.sign(long["normalised"]) * np.minimum(np.abs(long["normalised"]) / 2, 1.0)
for steps in (5, 10, 25, 50, 100, 200, 400):
    error = np.abs(teaching.poisson_average(long, steps) - limit).mean()
    print(f"{steps:4d} steps: mean |average − limit| = {error:.3f}")

# %% [markdown]
# ## 4. Inside a trained BNTT network
#
# Which neurons of the first layer fire, and when, for one test digit? A raster: one row per neuron
# (the most active ones), a mark per spike.

# %%
runs = paper.ensure_runs(RUN_DIRS, quick=QUICK, tables=[])
run = load_run(runs["quickstart"])
image = teaching.example_input(run)
raster = teaching.record_spike_raster(run.model, image, layer=run.model.layer_names[0], max_neurons=40)
fig = viz.raster_figure(raster)
paper.save_figure(fig, "w1_trained_raster", raster, OUTPUT_DIR)
fig

# %% [markdown]
# ## Take-aways
# - A LIF neuron turns a current into a spike *rate*; leak and threshold set how much current it takes.
# - The soft reset keeps the residue above θ, so less information is lost at each spike.
# - Rate coding needs many steps to be precise; every step costs time and energy. Workshop 2 trains a
#   network through these non-differentiable spikes; workshop 3 shows how BNTT makes few steps enough.
