"""Figure builders: the analysis tables of a run (or several runs) drawn as Plotly figures.

Every builder is a pure function — data in, `plotly.graph_objects.Figure` out — with no Streamlit,
notebook or file code, so the dashboard and the notebooks draw exactly the same figures. Inputs are
the tidy tables of `bntt_core.analysis.tables` (one DataFrame, or `dict[run label, DataFrame]` for the figures
that compare runs), `metrics.csv` for training curves, and plain numpy arrays for the teaching figures.
The builders that compare runs colour each by its method: pass `methods={label: method}` (the dashboard reads
it from each run's config, `bntt_core.runs.listing.run_method`); without it the method is read from the
label's words (`method_of`), as the notebooks' role labels are written for.

    from bntt_core import viz
    from bntt_core.runs import read_table

    fig = viz.gamma_mean_figure(read_table(run, "gamma_mean"), threshold=0.1)       # Fig 4
    fig = viz.spike_rate_figure({"conversion": a, "surrogate BN": b, "BNTT": c})      # Fig 5
    html = viz.figure_to_html(fig)          # self-contained (plotly.js inline), works offline
    png = viz.figure_to_png(fig, name="fig5")  # bytes; FigureExportError if it cannot be made (retried once)
    csv = viz.figure_data({"BNTT": c})      # the data behind it, with a run column

    theme.py          the look: METHOD_COLORS / METHOD_NAMES, TEMPLATE, run_colors, layer_colors, method_of
    checks.py         input checks shared by the builders (required columns, numbers, one row per key)
    activity.py       spikes: Fig 1 and its heatmap, Fig 5 (spike rate), the spike raster
    distributions.py  Fig 3 (norm input), ridge plots and percentile bands of γ and of the norm input
    gamma.py          γ: Fig 4 (mean γ, exit step), the mean-γ heatmap, Fig 6 (histograms), γ through training
    early_exit.py     Fig 7 (accuracy vs γ threshold), exit rules vs truncation, the per-sample dynamic exit
    robustness.py     Fig 8: accuracy under input noise and under FGSM
    energy.py         energy per inference, NeuroBench's standard metrics
    training.py       accuracy after t steps, training curves, loss per batch, the Compare page
    teaching.py       LIF trace, f–I curve, surrogate gradients, encodings, BN vs BNTT
    export.py         HTML, PNG (kaleido, retried) and CSV export

Every public name of these modules is importable from `bntt_core.viz`, and so are
`exit_step_from_gamma_mean` (the paper's exit rule, from `bntt_core.analysis.early_exit`: a view that draws
Fig 4 reports the same exit step the figure annotates), `METRICS_COLUMNS` (`bntt_core.runs.run_dir`) and
`SURROGATES` (`bntt_core.nn.surrogate`, what `surrogate_figure(None)` draws).

Builders check their input first: a table without a required column (bntt_core.analysis.tables.TABLES) or
without rows is a ValueError naming the table, the run and what is missing.

One look for every figure: `TEMPLATE` (fonts, background, hover), a colour per method
(`METHOD_COLORS`, picked from a run label by `method_of`) and a shallow→deep colour ramp per layer.
Accuracy columns may hold fractions (0..1) or percentages; figures always show percent.
"""

from bntt_core.analysis.early_exit import exit_step_from_gamma_mean  # noqa: F401
from bntt_core.nn.surrogate import SURROGATES  # noqa: F401
from bntt_core.runs.run_dir import METRICS_COLUMNS  # noqa: F401
from bntt_core.viz.activity import (  # noqa: F401
    raster_figure,
    spike_activity_figure,
    spike_heatmap_figure,
    spike_rate_figure,
)
from bntt_core.viz.checks import (  # noqa: F401
    TABLE_KEYS,
)
from bntt_core.viz.distributions import (  # noqa: F401
    BAND_OPACITY,
    BAND_PAIRS,
    MAX_RIDGE_SLICES,
    bn_input_bands_figure,
    bn_input_figure,
    bn_input_percentiles,
    bn_input_ridge_figure,
    gamma_bands_figure,
    gamma_ridge_figure,
    percentiles_from_histogram,
)
from bntt_core.viz.early_exit import (  # noqa: F401
    dynamic_exit_figure,
    early_exit_comparison_figure,
    early_exit_figure,
)
from bntt_core.viz.energy import (  # noqa: F401
    ENERGY_CONVENTION,
    STANDARD_METRIC_PANELS,
    SYNOPS_TRACES,
    energy_figure,
    standard_metrics_figure,
)
from bntt_core.viz.export import (  # noqa: F401
    BATCH_PNG_TIMEOUT_S,
    INTERACTIVE_PNG_TIMEOUT_S,
    FigureExportError,
    figure_data,
    figure_to_html,
    figure_to_png,
)
from bntt_core.viz.gamma import (  # noqa: F401
    GAMMA_SCALES,
    exit_step_by_epoch_figure,
    gamma_heatmap_cell,
    gamma_heatmap_figure,
    gamma_histogram_figure,
    gamma_history_bands_figure,
    gamma_history_heatmap_figure,
    gamma_history_histogram_figure,
    gamma_mean_figure,
)
from bntt_core.viz.robustness import (  # noqa: F401
    NOISE_MODE_DASH,
    NOISE_MODE_TEXT,
    robustness_figure,
)
from bntt_core.viz.teaching import (  # noqa: F401
    BN_VS_BNTT_COLUMNS,
    bn_vs_bntt_figure,
    encoding_figure,
    firing_rate_figure,
    lif_trace_figure,
    surrogate_figure,
)
from bntt_core.viz.theme import (  # noqa: F401
    FONT_FAMILY,
    METHOD_COLORS,
    METHOD_NAMES,
    OTHER_RUN_COLORS,
    TEMPLATE,
    layer_colors,
    method_of,
    run_colors,
)
from bntt_core.viz.training import (  # noqa: F401
    COMPARE_METRICS,
    accuracy_by_step_figure,
    compare_figure,
    training_curves_figure,
    training_loss_figure,
)
