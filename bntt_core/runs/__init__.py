"""Runs: the run directory every part of the project shares, and what makes and reads one.

    run_dir.py      the run directory: config.json, weights, metrics, analysis tables (the contract)
    files.py        atomic writes, JSON, provenance (package versions, git commit, time), RunError
    locks.py        one writer per run directory (run_lock), the project's one OS file lock
    listing.py      find_runs / inspect_run, and the run descriptions the dashboard lists
    config.py       TrainConfig, its checks, the lr schedule, the random-stream seeds, the device
    splits.py       a run's train / validation / test images, rebuilt as training built them (run_test_set)
    recipe.py       the auto recipe for a user's image folder
    evaluation.py   accuracy by step, `bntt evaluate`
    checkpoint.py   the resume state, written after every epoch
    distributed.py  torchrun's processes
    training.py     `bntt train`: the training loop, resume
    presets.py      named recipes (quickstart, paper-cifar10, fashion-t20, ...)
    live.py         the dashboard's Train page: one background training job at a time (with live_job.py,
                    its torch-free runner); used as a namespace (`from bntt_core.runs import live`), not
                    re-exported here: its file names repeat run_dir's, which the torch-free runner cannot import

`from bntt_core.runs import load_run` keeps working: the public names of these modules (live's aside) are
re-exported here.
"""

from bntt_core.runs.checkpoint import (  # noqa: F401
    CHECKPOINT_FORMAT,
    REFUSED_CHECKPOINT,
    load_checkpoint_file,
    move_optimizer_state,
    write_checkpoint,
)
from bntt_core.runs.config import (  # noqa: F401
    DEVICES_HELP,
    ENCODING_ALIASES,
    LEGACY_TRAIN_DEFAULTS,
    OPTIMIZERS,
    ConfigError,
    ResumeError,
    RunExistsError,
    TrainConfig,
    TrainingDiverged,
    check_validation_fraction,
    derive_seed,
    lr_at_epoch,
    parse_device,
    spec_for,
    stored_train_values,
    torch_threads,
)
from bntt_core.runs.distributed import (  # noqa: F401
    Cluster,
    join_cluster,
)
from bntt_core.runs.evaluation import (  # noqa: F401
    accuracy_by_step,
    evaluate_run,
    to_model_input,
)
from bntt_core.runs.files import (  # noqa: F401
    RunError,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    git_commit,
    now_iso,
    package_versions,
)
from bntt_core.runs.listing import (  # noqa: F401
    RunEntry,
    describe_runs,
    find_runs,
    inspect_run,
    run_label,
    run_method,
)
from bntt_core.runs.locks import (  # noqa: F401
    RUN_LOCK_FILE,
    RunLockedError,
    file_lock,
    holds_run_lock,
    logger,
    run_lock,
)
from bntt_core.runs.presets import (  # noqa: F401
    PRESETS,
    Preset,
    UnknownPresetError,
    preset_settings,
)
from bntt_core.runs.recipe import (  # noqa: F401
    AUTO_BATCH_RANGE,
    AUTO_RECIPE_SETTINGS,
    MIN_AUGMENT_SIZE,
    MIN_UPDATES_PER_EPOCH,
    adapt_recipe,
    auto_lr,
    first_epoch_warning,
)
from bntt_core.runs.run_dir import (  # noqa: F401
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LOG_FILE,
    METRICS_COLUMNS,
    METRICS_FILE,
    OLD_RUN_FORMATS,
    RUN_FORMAT,
    RUN_KINDS,
    WEIGHT_DTYPES,
    WEIGHTS_FILE,
    WEIGHTS_FORMAT,
    Run,
    WeightsError,
    analysis_dir,
    data_section,
    info_from_dict,
    info_to_dict,
    load_run,
    load_weights_into,
    make_config,
    read_config,
    read_meta,
    read_metrics,
    read_table,
    read_weights,
    round_to_dtype,
    safetensors_header,
    save_weights,
    spec_from_config,
    upgrade_settings,
    write_config,
    write_table,
)
from bntt_core.runs.splits import (  # noqa: F401
    NoValidationSlice,
    Splits,
    load_datasets,
    load_splits,
    run_test_set,
    run_test_set_sections,
    run_train_config,
    run_validation_set,
    split_validation,
    validation_seed,
)
from bntt_core.runs.training import (  # noqa: F401
    EXECUTION_SETTINGS,
    PROGRESS_MODES,
    TrainResult,
    default_run_dir,
    resume,
    train,
)
