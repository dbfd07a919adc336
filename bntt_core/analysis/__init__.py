"""Analysis of trained runs: every table the paper's figures are drawn from, written into RUN/analysis/.

    analyze.py           analyze_run / read_analysis: one recording pass, the tables, their meta
    recording.py         the recording forward pass (spikes, BN inputs, per-step outputs)
    tables.py            the table names, their columns and readers
    early_exit.py        the paper's exit rule (γ below τ), validation-chosen τ, truncation
    energy.py            synaptic operations and energy
    robustness.py        Gaussian noise and FGSM
    standard_metrics.py  NeuroBench-style metrics
    gamma_history.py     γ through training (RUN/gamma_history.csv)
    summaries.py         per-run and per-comparison summaries the dashboard and notebooks show
    verdicts.py          mean ± std comparisons that say "tie" within noise, and the paper's verdicts

`from bntt_core.analysis import analyze_run` keeps working: the names of analyze.py are re-exported.
"""

from bntt_core.analysis.analyze import (  # noqa: F401
    DEFAULT_NOISE_MODES,
    FULL_EPSILONS,
    FULL_SIGMAS,
    NOTES,
    QUICK_EPSILONS,
    QUICK_IMAGES,
    QUICK_SIGMAS,
    RECORDED,
    WEIGHTS_ONLY,
    AnalysisData,
    AnalysisResult,
    AnalysisStatus,
    ExitInputs,
    StaleAnalysisError,
    analysis_status,
    analyze_model,
    analyze_run,
    check_noise_modes,
    early_exit_summary_table,
    exit_inputs_for_run,
    exit_sources,
    model_hash,
    read_analysis,
    standard_metrics_derivable,
    validation_accuracy_by_step,
    write_early_exit_summary,
    write_standard_metrics,
)
