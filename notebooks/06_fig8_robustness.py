# ---
# jupyter:
#   bntt_figures:
#   - fig8a_noise
#   - fig8b_fgsm
#   - fig8c_steps_noise
#   - fig8c_steps_fgsm
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
# # Fig 8 — robustness to Gaussian noise and to FGSM
#
# **What the paper claims.** (A) Adding Gaussian noise N(0, σ²) to the clean input of CIFAR-10 models:
# the converted SNN collapses once **σ > 0.4**; the surrogate-gradient SNN holds up better than the ANN at
# high noise but still loses much; **BNTT is the most accurate at every noise level**, which the paper
# ties to its few time steps. (B) Under FGSM (the SNN attack is SNN-crafted: the gradient comes from
# BPTT through the SNN with the surrogate), both SNNs are more robust than the ANN, and **BNTT is the
# most robust**.
#
# **How this notebook tests it.** It reads the `noise` table (accuracy against σ, in pixel units; noise
# added to the [0, 1] pixels, then normalised) of the ANN, converted, no-norm and BNTT runs, and the
# `fgsm` table (accuracy against ε, in pixel units) of the ANN, no-norm and BNTT runs, and ranks the runs
# by their mean accuracy over each grid. The noise table holds one curve per **noise mode**: `unclipped`
# (the paper's: x + σz, not clipped), `clipped` (to [0, 1]; how the shipped runs were analysed, and what
# a table without a mode column means) and, on request, `shift` (x + σ, no noise: the mean shift that
# clipping causes, to which BNTT's per-step running means are sensitive). See docs/DEPARTURES.md.

# %%
from bntt_core import paper, viz

# %% tags=["parameters"]
RUN_DIRS = {
    "ann": paper.SHIPPED["ann"],
    "converted": paper.SHIPPED["converted"],
    "none": paper.SHIPPED["none"],
    "bntt": paper.SHIPPED["bntt"],
    "none_t60": paper.SHIPPED["none_t60"],
}
QUICK = False
OUTPUT_DIR = paper.DEFAULT_OUTPUT_DIR
NOISE_ROLES = ["ann", "converted", "none", "bntt"]  # the runs Fig 8A of the paper compares
FGSM_ROLES = ["ann", "none", "bntt"]   # the runs Fig 8B of the paper compares (no conversion)
STEPS_ROLES = ["bntt", "none", "none_t60"]  # section C, BNTT and none at T = 20 against none at T = 60
NOISE_MODE = ""                        # the noise curve ranked; empty: the mode every run has, unclipped first

# %% [markdown]
# `QUICK = True` replaces every run by a tiny stand-in trained here in seconds (a 1/8-width VGG5 on 512
# MNIST digits for one epoch): it checks that the notebook runs, not what BNTT does. Its numbers mean
# nothing; read the verdicts only with the shipped runs (`QUICK = False`).

# %%
runs = paper.ensure_runs(RUN_DIRS, quick=QUICK, tables=["noise", "fgsm"])
noise = paper.tables(runs, "noise", roles=NOISE_ROLES)
fgsm = paper.tables(runs, "fgsm", roles=FGSM_ROLES)

# %% [markdown]
# ## (A) Gaussian noise

# %%
fig_noise = viz.robustness_figure(noise, kind="noise")
paper.save_figure(fig_noise, "fig8a_noise", noise, OUTPUT_DIR)
fig_noise

# %%
noise_ranking = paper.verdict_robustness(noise, "sigma", bntt_label=paper.label("bntt"), groups=paper.run_groups(runs),
                                       mode=NOISE_MODE)

# %% [markdown]
# ## (B) FGSM

# %%
fig_fgsm = viz.robustness_figure(fgsm, kind="fgsm")
paper.save_figure(fig_fgsm, "fig8b_fgsm", fgsm, OUTPUT_DIR)
fig_fgsm

# %%
fgsm_ranking = paper.verdict_robustness(fgsm, "epsilon", bntt_label=paper.label("bntt"), groups=paper.run_groups(runs))

# %% [markdown]
# ## (C) The paper's explanation: fewer time steps
#
# The paper credits BNTT's robustness to its few time steps: its baselines ran at T = 100–1000. Here the
# same network without normalisation is trained at **T = 60** (lr 0.03: with the preset's 0.1 it did not
# learn at T = 60, judged on its training loss) beside BNTT and none at T = 20, all on the same 20,000
# training images, analysed on the same 10,000 test images with the same noise draws. If more steps cost
# robustness, none at T = 60 should fall below none at T = 20; if BNTT's edge came from its steps alone,
# BNTT and none at T = 20 should tie.

# %%
steps_noise = paper.tables(runs, "noise", roles=STEPS_ROLES)
steps_fgsm = paper.tables(runs, "fgsm", roles=STEPS_ROLES)
print(paper.steps_differ({role: runs[role] for role in STEPS_ROLES}))
fig_steps_noise = viz.robustness_figure(steps_noise, kind="noise")
paper.save_figure(fig_steps_noise, "fig8c_steps_noise", steps_noise, OUTPUT_DIR)
fig_steps_noise

# %%
steps_noise_ranking = paper.verdict_robustness(steps_noise, "sigma", bntt_label=paper.label("bntt"),
                                               groups=paper.run_groups({r: runs[r] for r in STEPS_ROLES}),
                                               mode=NOISE_MODE)
fig_steps_fgsm = viz.robustness_figure(steps_fgsm, kind="fgsm")
paper.save_figure(fig_steps_fgsm, "fig8c_steps_fgsm", steps_fgsm, OUTPUT_DIR)
fig_steps_fgsm

# %%
steps_fgsm_ranking = paper.verdict_robustness(steps_fgsm, "epsilon", bntt_label=paper.label("bntt"),
                                              groups=paper.run_groups({r: runs[r] for r in STEPS_ROLES}))

# %% [markdown]
# ## What this run shows
#
# Each ranking above orders the runs by their mean accuracy over the σ (or ε) grid — a single number
# for the area under each curve — and prints the clean accuracy and the accuracy at the strongest
# setting. The methods are then compared with one rule (mean ± std over the seeds present; "tie" when
# the gap is within the spread; "one seed" when a method has a single run — the shipped runs are one
# seed each, so their gaps are raw differences, not verdicts). The paper's claim holds here for noise or
# FGSM when the "→ most robust here" line names BNTT ahead of the next method. Compare clean accuracies too: a run that starts lower has less to lose, so a flat curve from a
# low start is not the same as robustness. The noise and attack settings (grid, test subset, seed) are
# in each run's `analysis/meta.json`. Section (C) reads the same way: the paper's mechanism holds here when
# none at T = 60 ranks below none at T = 20 (more steps, less robust); BNTT's edge over none at equal T is
# then what normalisation through time adds on top.
