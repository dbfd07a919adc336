"""The analysis tables: names, columns and where they live. The one schema the analysis writes, the
figure builders draw, and the dashboard and notebooks read.

Each table is a long/tidy CSV at RUN/analysis/<name>.csv. RUN/analysis/meta.json records, per table,
the run it came from, the test subset size, the seed, the package version and any conventions
(e.g. the energy model). Columns listed here are required; a table may carry extra columns.
"""

from __future__ import annotations

TABLES: dict[str, tuple[str, ...]] = {
    # prediction from the output accumulated up to step t (t = 1..T); Figs 4/7 and bntt evaluate
    "accuracy_by_step": ("t", "accuracy"),
    # Fig 1: mean spike count per neuron of each hidden layer at each step
    "spike_activity": ("layer", "t", "spikes_per_neuron"),
    # Fig 5: total spikes of the layer over T ÷ number of its neurons
    "spike_rate": ("layer", "rate"),
    # Fig 3: the input of the norm layer (the synaptic current) per layer and step; for norm=bn the
    # single stored running mean is in `running_mean` (the same value at every t), else empty
    "bn_input": ("layer", "t", "mean", "std", "running_mean"),
    # Fig 3 histogram: counts of the norm input per layer, step and bin
    "bn_input_hist": ("layer", "t", "bin_left", "bin_right", "count"),
    # Fig 6: γ of every BNTT layer, step and channel
    "gamma": ("layer", "t", "channel", "gamma"),
    # Fig 4: mean of γ over channels per layer and step
    "gamma_mean": ("layer", "t", "mean_gamma"),
    # Fig 7: the paper's exit rule over a threshold grid (exit_step = smallest t such that
    # mean γ < threshold for every layer at every later step), from stored per-step outputs
    "early_exit": ("threshold", "exit_step", "accuracy", "steps_saved"),
    # ours, not the paper's: per-sample dynamic exit (stop a sample once its running prediction is
    # confident); one row per confidence level
    "dynamic_exit": ("confidence", "mean_exit_step", "accuracy", "steps_saved"),
    # Fig 8A: Gaussian noise of std sigma on the clean [0, 1] pixels, clipped, then normalised
    "noise": ("sigma", "accuracy"),
    # Fig 8B: FGSM in pixel space, SNN-crafted for SNNs (BPTT through the surrogate and the encoder)
    "fgsm": ("epsilon", "accuracy"),
    # energy per layer: synaptic operations (spikes × fan-out) and MACs, with the energy in pJ
    "energy": ("layer", "synops", "macs", "energy_pj"),
}

ANALYSIS_DIR = "analysis"
META_FILE = "meta.json"


def table_file(name: str) -> str:
    """File name of a table inside RUN/analysis/."""
    if name not in TABLES:
        raise ValueError(f"unknown analysis table {name!r}; known: {sorted(TABLES)}")
    return f"{name}.csv"
