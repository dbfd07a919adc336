"""Runs: the run directory every part of the project shares, and what makes and reads one.

    run_dir.py    the run directory: config, weights, metrics, analysis tables, locks (the contract)
    training.py   `bntt train`: the config, the training loop, resume
    presets.py    named recipes (quickstart, paper-cifar10, fashion-t20, ...)
    live.py       the dashboard's Train page: one background training job at a time

`from bntt_core.runs import load_run` keeps working: the names of run_dir.py are re-exported.
"""

from bntt_core.runs.run_dir import (  # noqa: F401
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LOG_FILE,
    METRICS_COLUMNS,
    METRICS_FILE,
    OLD_RUN_FORMATS,
    RUN_FORMAT,
    RUN_KINDS,
    RUN_LOCK_FILE,
    WEIGHT_DTYPES,
    WEIGHTS_FILE,
    WEIGHTS_FORMAT,
    Run,
    RunEntry,
    RunError,
    RunLockedError,
    WeightsError,
    analysis_dir,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    data_section,
    file_lock,
    find_runs,
    git_commit,
    holds_run_lock,
    info_from_dict,
    info_to_dict,
    inspect_run,
    load_run,
    load_weights_into,
    logger,
    make_config,
    now_iso,
    package_versions,
    read_config,
    read_meta,
    read_metrics,
    read_table,
    read_weights,
    round_to_dtype,
    run_lock,
    save_weights,
    spec_from_config,
    upgrade_settings,
    write_config,
    write_table,
)
