"""Analysis of trained runs: every table the paper's figures are drawn from, written into RUN/analysis/.

    analyze.py           analyze_run: one recording pass, the tables, their meta
    settings.py          the σ / ε grids, QUICK sizes, noise modes, which images, a run's evaluation settings
    stored.py            what RUN/analysis holds: model hash, stale tables, read_analysis
    recording.py         the recording forward pass (spikes, BN inputs, per-step outputs)
    tables.py            the table names, their columns and readers
    early_exit.py        the paper's exit rule (γ below τ), validation-chosen τ, truncation, one run at one τ
    exit_inputs.py       early exit without the test set for a stored run: the validation pass, truncation sources
    energy.py            synaptic operations and energy
    robustness.py        Gaussian noise and FGSM
    standard_metrics.py  NeuroBench-style metrics
    gamma_history.py     γ through training (RUN/gamma_history.csv)
    summaries.py         per-run and per-comparison summaries the dashboard and notebooks show
    verdicts.py          mean ± std comparisons that say "tie" within noise
    claims.py            the paper's claims checked on tables (the notebooks' verdicts)

`from bntt_core.analysis import analyze_run` keeps working: the names of analyze, settings, stored
and exit_inputs are re-exported.
"""

from bntt_core.analysis.analyze import (  # noqa: F401
    NOTES,
    AnalysisData,
    AnalysisResult,
    analyze_model,
    analyze_run,
    standard_metrics_derivable,
    write_early_exit_summary,
    write_standard_metrics,
)
from bntt_core.analysis.exit_inputs import (  # noqa: F401
    ExitInputs,
    early_exit_summary_table,
    exit_inputs_for_run,
    exit_sources,
    validation_accuracy_by_step,
)
from bntt_core.analysis.settings import (  # noqa: F401
    DEFAULT_NOISE_MODES,
    FULL_EPSILONS,
    FULL_SIGMAS,
    QUICK_EPSILONS,
    QUICK_IMAGES,
    QUICK_SIGMAS,
    RECORDED,
    WEIGHTS_ONLY,
    check_noise_modes,
    choose_images,
    run_settings,
)
from bntt_core.analysis.stored import (  # noqa: F401
    AnalysisStatus,
    StaleAnalysisError,
    analysis_status,
    current_table,
    model_hash,
    read_analysis,
)
