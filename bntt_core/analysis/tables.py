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
    # early exit without the test set (SPEC "Early exit"; bntt_core.analysis.early_exit.exit_summary), one row per
    # rule: "paper" (τ = 0.1) and "validation" (τ chosen on the run's held-out validation slice: the
    # earliest exit losing ≤ 1 point there, then applied to the test set) for BNTT runs; "truncation"
    # for runs without γ: the plain network cut at a BNTT run's exit step (step_rule: whose rule,
    # source_run: which run). accuracy / full_accuracy: test accuracy at exit_step / at T (fractions),
    # accuracy_change = their difference; validation_* the same on the validation slice. A row that
    # cannot be computed (a run without a validation slice) has available = False and the reason. Also
    # written: step_rule, source_run, threshold_low/high, full_accuracy, validation_accuracy,
    # full_validation_accuracy, validation_accuracy_change, validation_images. Runs analysed before it
    # existed lack the file: readers treat it as missing (bntt analyze RUN --tables early_exit_summary
    # derives it from accuracy_by_step and gamma_mean without inference when the run has no slice)
    "early_exit_summary": ("rule", "threshold", "exit_step", "num_steps", "steps_saved", "accuracy",
                           "accuracy_change", "available", "reason"),
    # Fig 8A: Gaussian noise of std sigma (pixel units) on the clean [0, 1] pixels, then normalised; one
    # curve per `mode` (unclipped | clipped | shift, bntt_core.analysis.robustness.NOISE_MODES). `mode` is written by
    # every new analysis but not required: a table without it predates the modes and was computed
    # clipped (noise_table() reads it so)
    "noise": ("sigma", "accuracy"),
    # Fig 8B: FGSM in pixel space, SNN-crafted for SNNs (BPTT through the surrogate and the encoder)
    "fgsm": ("epsilon", "accuracy"),
    # energy per layer: synaptic operations (spikes × fan-out) and MACs, with the energy in pJ
    "energy": ("layer", "synops", "macs", "energy_pj"),
    # NeuroBench's standard metrics (bntt_core.analysis.standard_metrics, docs/METRICS.md), ONE row per run: footprint
    # (bytes of parameters and buffers), connection sparsity (zero Conv/Linear weights), activation sparsity
    # (zero outputs of the hidden spiking neurons over all T steps; ANN: ReLU), synaptic operations per sample
    # over one inference of T steps (dense, effective MACs, effective ACs). Also written: parameters,
    # parameter_bytes, buffers_bytes, weights, zero_weights, neurons, synops_acs_through_pooling (ACs that
    # NeuroBench would count as MACs of pooled values). Runs analysed before it existed lack the file (listed as
    # missing); `bntt analyze RUN --tables standard_metrics` derives it from current energy and spike_rate
    # tables without a test pass where it can (Poisson input, no zero weight)
    "standard_metrics": ("footprint_bytes", "connection_sparsity", "activation_sparsity", "synops_dense",
                         "synops_effective_macs", "synops_effective_acs", "num_steps", "images"),
}

ANALYSIS_DIR = "analysis"
META_FILE = "meta.json"


def table_file(name: str) -> str:
    """File name of a table inside RUN/analysis/."""
    if name not in TABLES:
        raise ValueError(f"unknown analysis table {name!r}; known: {sorted(TABLES)}")
    return f"{name}.csv"


# ------------------------------------------------------------------------------ noise modes
NOISE_MODE_COLUMN = "mode"
LEGACY_NOISE_MODE = "clipped"  # noise tables written before the modes existed clipped the noisy pixels
NOISE_MODE_ORDER = ("unclipped", "clipped", "shift")  # = bntt_core.analysis.robustness.NOISE_MODES (no torch import here)


def noise_table(df, mode: str | None = None):
    """A noise table with its `mode` column (LEGACY_NOISE_MODE where the table has none), optionally only
    the rows of `mode`. The one place that reads old tables: every consumer goes through it."""
    out = df.copy()
    if NOISE_MODE_COLUMN not in out.columns:
        out[NOISE_MODE_COLUMN] = LEGACY_NOISE_MODE
    else:
        out[NOISE_MODE_COLUMN] = out[NOISE_MODE_COLUMN].fillna(LEGACY_NOISE_MODE).astype(str)
    if mode is not None:
        out = out[out[NOISE_MODE_COLUMN] == mode].reset_index(drop=True)
    return out


def noise_modes(df) -> list[str]:
    """The modes a noise table holds, in NOISE_MODE_ORDER (then any unknown ones as found)."""
    found = list(dict.fromkeys(noise_table(df)[NOISE_MODE_COLUMN]))
    return [m for m in NOISE_MODE_ORDER if m in found] + [m for m in found if m not in NOISE_MODE_ORDER]


def common_noise_mode(tables) -> str | None:
    """The mode every table in `tables` (an iterable of noise tables) holds, preferring the order of
    NOISE_MODE_ORDER (unclipped, the paper's, first); None when they share none."""
    shared = None
    for df in tables:
        modes = set(noise_modes(df))
        shared = modes if shared is None else shared & modes
    if not shared:
        return None
    return next((m for m in NOISE_MODE_ORDER if m in shared), sorted(shared)[0])
