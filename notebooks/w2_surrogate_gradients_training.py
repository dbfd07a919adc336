# ---
# jupyter:
#   bntt_figures:
#   - w2_surrogates
#   - w2_training_loss
#   - w2_accuracy_by_step
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
# # Workshop 2 — surrogate gradients, and training a tiny SNN on a laptop CPU (≈ 30 min)
#
# A spike is a step function of the membrane potential: its derivative is zero everywhere except at the
# threshold, where it is infinite. Backpropagation through it would learn nothing. Surrogate-gradient
# training keeps the exact step in the forward pass and uses a smooth bump in its place in the backward
# pass; the paper uses a triangle peaking at the threshold, α = 0.3 (§3.1):
#
# ```
# ∂s/∂U ≈ α · max(0, 1 − |U/θ − 1|) / θ
# ```
#
# The official code applies the triangle α·max(0, 1 − |x|) to x = U/θ − 1, so by the chain rule ∂s/∂U
# carries 1/θ: the bump has height α/θ (0.3 at the paper's θ = 1) and is zero outside 0 < U < 2θ.
#
# Then you train a small BNTT network on 8,000 MNIST digits (`mnist10k`, shipped with the package) in a
# few minutes on a CPU.

# %%
import time

import pandas as pd
import torch

from bntt_core import build_model, data, eval_logits, paper, teaching, train_step, viz
from bntt_core.runs import training

# %% tags=["parameters"]
RUN_DIRS = {}           # this notebook trains its own network
QUICK = False
OUTPUT_DIR = paper.DEFAULT_OUTPUT_DIR
EPOCHS = 2              # about a minute per epoch on a 2-core laptop
NUM_STEPS = 6           # T
WIDTH = 0.25            # channel multiplier of VGG5 (1.0 is 64, 128, 128 channels)
TRAIN_IMAGES = None     # None: all 8,000 training digits
TEST_IMAGES = None      # None: all 2,000 test digits
LR = 0.1
SEED = 0

# %%
if QUICK:  # CI: a few hundred digits and one epoch, seconds instead of minutes
    EPOCHS, TRAIN_IMAGES, TEST_IMAGES = 1, 256, 128

# %% [markdown]
# ## 1. The spike function and its surrogates

# %%
fig = viz.surrogate_figure(threshold=1.0)
paper.save_figure(fig, "w2_surrogates", teaching.surrogate_shapes(threshold=1.0), OUTPUT_DIR)
fig

# %% [markdown]
# Autograd through a LIF layer really uses the surrogate: the gradient of the spike count with respect
# to the input current is non-zero wherever the membrane entered the surrogate's window around the
# threshold (0 < U < 2θ for the triangle) — even for neurons that never spiked, which is what lets them
# learn to.

# %%
from bntt_core import LIF

current = torch.linspace(0.0, 0.2, 9).repeat(20, 1).requires_grad_(True)   # [T=20, 9 neurons]
spikes = LIF(leak=0.95, threshold=1.0, surrogate="triangle")(current)
spikes.sum().backward()
pd.DataFrame({"current": current[0].detach().numpy(), "spikes in 20 steps": spikes.sum(0).detach().numpy(),
              "d spikes / d current (summed over t)": current.grad.sum(0).numpy()}).round(3)

# %% [markdown]
# ## 2. Data and model
#
# `load_data` returns uint8 images and a `DataInfo` (mean, std, classes). `training.to_model_input`
# turns a batch into the normalised float tensor the model reads.

# %%
train_set, test_set, info = data.load_data("mnist10k")
if TRAIN_IMAGES:
    train_set = train_set.subset(TRAIN_IMAGES, seed=SEED)
if TEST_IMAGES:
    test_set = test_set.subset(TEST_IMAGES, seed=SEED)
print(f"{len(train_set)} training and {len(test_set)} test digits; mean {info.mean}, std {info.std}")

torch.manual_seed(SEED)
model = build_model("vgg5", num_classes=info.num_classes, in_channels=info.in_channels,
                    image_size=info.image_size, num_steps=NUM_STEPS, norm="bntt", width=WIDTH)
print(model)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")


# %% [markdown]
# ## 3. The training loop
#
# One `train_step` = forward over all T steps (Poisson input), cross-entropy on the accumulated output,
# backpropagation through time with the surrogate, one SGD step.

# %%
def fit(model, epochs, *, lr=LR, seed=SEED):
    """Train `model` on train_set; return the loss of every batch and the test accuracy per epoch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    poisson = torch.Generator().manual_seed(seed)
    losses, accuracies = [], []
    for epoch in range(epochs):
        started = time.perf_counter()
        for images, labels in data.make_loader(train_set, 64, shuffle=True, seed=seed + epoch):
            x = training.to_model_input(images, info, torch.device("cpu"))
            losses.append(train_step(model, optimizer, x, labels, generator=poisson))
        by_step = training.accuracy_by_step(model, test_set, info, seed=seed)
        accuracies.append(by_step)
        print(f"epoch {epoch + 1}: loss {losses[-1]:.3f}, test accuracy {100 * by_step[-1]:.2f}% "
              f"({time.perf_counter() - started:.0f} s)")
    return losses, accuracies

losses, accuracies = fit(model, EPOCHS)

# %%
loss_curve = pd.DataFrame({"batch": range(1, len(losses) + 1), "loss": losses})
fig = viz.training_loss_figure(loss_curve)
paper.save_figure(fig, "w2_training_loss", loss_curve, OUTPUT_DIR)
fig

# %% [markdown]
# Accuracy of the prediction made from the output accumulated up to step t, after the last epoch —
# how many steps does the network need?

# %%
by_step = pd.DataFrame({"t": range(1, NUM_STEPS + 1), "accuracy": accuracies[-1]})
fig = viz.accuracy_by_step_figure({"BNTT (this notebook)": by_step})
paper.save_figure(fig, "w2_accuracy_by_step", by_step, OUTPUT_DIR)
fig

# %% [markdown]
# ### Exercise 1
# Train the same network with the `fast_sigmoid` and `atan` surrogates (`build_model(..., surrogate=...)`)
# for one epoch each and compare with the triangle's accuracy after its first epoch. Does the choice of
# surrogate matter much here?

# %% jupyter={"source_hidden": true} tags=["solution"]
results = {"triangle": 100 * accuracies[0][-1]}   # after the first epoch
for surrogate in ("fast_sigmoid", "atan"):
    torch.manual_seed(SEED)
    other = build_model("vgg5", num_classes=info.num_classes, in_channels=info.in_channels,
                        image_size=info.image_size, num_steps=NUM_STEPS, norm="bntt", width=WIDTH,
                        surrogate=surrogate)
    _, other_accuracies = fit(other, 1)
    results[surrogate] = 100 * other_accuracies[0][-1]
pd.Series(results, name="test accuracy after one epoch (%)").round(2)

# %% [markdown]
# ### Exercise 2
# Predict one test digit with the trained model: which class, and how sure is it at each step?
# *Hint:* `eval_logits(model, x, per_step=True)` gives the accumulated output at every step.

# %% jupyter={"source_hidden": true} tags=["solution"]
images, labels = test_set.images[:1], test_set.labels[:1]          # uint8 [1, 1, 28, 28], int64 [1]
x = training.to_model_input(images, info, torch.device("cpu"))     # normalised float [1, 1, 28, 28]
running = eval_logits(model, x, per_step=True, generator=torch.Generator().manual_seed(0))   # [T, 1, 10]
probabilities = running.softmax(-1)[:, 0]
pd.DataFrame({"t": range(1, NUM_STEPS + 1), "predicted": probabilities.argmax(-1).numpy(),
              "confidence": probabilities.max(-1).values.numpy().round(3), "true label": int(labels[0])})

# %% [markdown]
# ## The same with one command
#
# The package's trainer does all of the above, writes a self-describing run directory (config, weights,
# metrics, log) and can resume after a crash:
#
# ```bash
# bntt train --preset quickstart --out runs/my-first-snn
# bntt analyze runs/my-first-snn        # every table the figure notebooks read
# ```
