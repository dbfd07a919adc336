"""What the notebooks in `notebooks/` call besides the analysis and the figure builders: which runs to
read, QUICK stand-in runs, saving figures, and the short computed verdicts the notebooks print.

The notebooks hold no analysis logic; every number they show comes from `bntt_core` (the run
directory, `bntt_core.analysis`, `bntt_core.viz`, `bntt_core.teaching`) through this module.

    from bntt_core import paper
    runs = paper.ensure_runs({"bntt": paper.SHIPPED["bntt"]}, quick=False)     # {role: analysed run dir}
    spikes = paper.tables(runs, "spike_activity")                            # {display label: DataFrame}
    paper.save_figure(fig, "fig1_spike_activity", spikes, "notebooks/outputs")  # HTML, PNG, CSV

Roles. A notebook's `RUN_DIRS` maps a role ("bntt", "bn", "ln", "none", "ann", "converted",
"seq_bntt", "seq_none", ...) to a run directory. The defaults are the shipped runs, named once in
`SHIPPED`. With `quick=True` (CI, or a first look) every known role is replaced by a tiny run trained
here in seconds (`QUICK_RECIPES`); the same happens, with a printed notice, when a shipped run is
absent. Tiny runs are cached under $BNTT_QUICK_CACHE (default `notebooks/outputs/quick_runs/`), so
each is trained and analysed once however many notebooks ask for it.

Run `python -m bntt_core.paper` to print which shipped runs are present.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pandas as pd

# The paper's claims as pure functions of tables live in bntt_core.analysis.claims; the notebooks reach them
# through this module, like everything else they call.
from bntt_core.analysis.claims import (  # noqa: F401
    FLAT_TOLERANCE,
    PAPER_NUMBERS,
    _percent,
    default_bn_layer,
    gamma_histogram_layers,
    paper_number,
    paper_steps,
    peak_steps,
    peaks_later_with_depth,
    rise_and_fall,
    verdict_accuracy,
    verdict_bn_input,
    verdict_early_exit,
    verdict_energy,
    verdict_gamma,
    verdict_robustness,
    verdict_spike_activity,
    verdict_spike_rate,
)
from bntt_core.analysis.tables import TABLES
from bntt_core.data.locations import project_root

# ------------------------------------------------------------------------------ the shipped runs
# The ONE place that names the shipped runs (data/runs/, see data/runs/README.md). Paths are relative
# to the project root. A notebook's RUN_DIRS defaults point here.
SHIPPED: dict[str, str] = {
    "quickstart": "data/runs/quickstart",
    # the ablation on Fashion-MNIST (Figs 1, 3-8, Tables 1/5, energy) at T = 20 (preset fashion-t20, seed 0;
    # experiments/fashion_t20.plan): BNTT, the paper's BN, LN, none, the ANN twin and its conversion (T = 100)
    "bntt": "data/runs/fashion-t20-bntt-s0",
    "bn": "data/runs/fashion-t20-bn-s0",
    "ln": "data/runs/fashion-t20-ln-s0",
    "none": "data/runs/fashion-t20-none-s0",
    # the paper's robustness explanation (fewer steps): the same network without normalisation at T = 60
    "none_t60": "data/runs/fashion-t60-none-s0",
    "ann": "data/runs/fashion-t20-ann-s0",
    "converted": "data/runs/fashion-t20-converted-t100",
    # real CIFAR-10 at the cifar10-cpu scale (Table 1)
    "cifar10_bntt": "data/runs/cifar10-cpu-bntt",
    "cifar10_bn": "data/runs/cifar10-cpu-bn",
    "cifar10_none": "data/runs/cifar10-cpu-none",
    # the paper's own recipe (VGG9, T = 25, full CIFAR-10) for as many epochs as one GPU lease allowed
    "cifar10_paper": "data/runs/cifar10-vgg9-paper",
    # sequential MNIST, one pixel per step (Table 3)
    "seq_bntt": "data/runs/seq-mnist-bntt",
    "seq_none": "data/runs/seq-mnist-none",
}

# How each role is called in figures and tables. The labels name the method in words that
# `bntt_core.viz.method_of` recognises, so every figure colours a method the same way. The BN roles
# (`BN_ROLES`) are labelled by the norm their run really has (`label(role, run_path)`); "BN" is only
# the fallback for a run that cannot be read.
ROLE_LABELS: dict[str, str] = {
    "quickstart": "BNTT (quickstart)",
    "bntt": "BNTT",
    "bn": "BN",
    "ln": "LN",
    "none": "none (surrogate BP)",
    "none_t60": "none (surrogate BP), T = 60",
    "ann": "ANN",
    "converted": "ANN→SNN conversion",
    "cifar10_bntt": "CIFAR-10 BNTT",
    "cifar10_bn": "CIFAR-10 BN",
    "cifar10_none": "CIFAR-10 none (surrogate BP)",
    "cifar10_paper": "CIFAR-10 BNTT, paper VGG9 (GPU)",
    "seq_bntt": "seq-MNIST BNTT",
    "seq_none": "seq-MNIST none (surrogate BP)",
}
# Roles that stand for "a BN run", {role: what comes before the method's name}. Their label is the name
# of the norm the run was really trained with, from THE one mapping `bntt_core.viz.METHOD_NAMES`: the
# shipped cifar10-cpu-bn (run format bntt-run/1, whose "bn" reads as today's
# "bn-joint", `bntt_core.runs.upgrade_settings`) are "BN joint (statistics over T·B)", a QUICK stand-in
# or any run trained today with norm="bn" is the paper's BN with per-step batch statistics.
BN_ROLES: dict[str, str] = {"bn": "", "cifar10_bn": "CIFAR-10 "}

DEFAULT_OUTPUT_DIR = "notebooks/outputs"
QUICK_CACHE_ENV = "BNTT_QUICK_CACHE"

# ------------------------------------------------------------------------------- QUICK recipes
# Tiny stand-ins: a 1/8-width VGG5 on 512 mnist10k images for one epoch, T = 5 (seconds on a CPU).
_QUICK_IMAGE_MODEL = dict(preset="quickstart", arch="vgg5", dataset="mnist10k", width=0.125, num_steps=5,
                          epochs=1, batch_size=64, lr=0.1, max_train_images=512, max_test_images=128,
                          device="cpu", progress_note="1/8-width VGG5, T 5, 512 mnist10k images, 1 epoch")
# Sequential MNIST needs T = 784 steps (one pixel each); the stand-in sees 128 images.
_QUICK_SEQUENCE_MODEL = dict(preset="paper-seq-mnist", epochs=1, batch_size=64, lr=0.1, max_train_images=128,
                             max_test_images=64, device="cpu",
                             progress_note="seqfc, T 784, 128 seq-mnist images, 1 epoch")

QUICK_RECIPES: dict[str, dict] = {
    "bntt": {**_QUICK_IMAGE_MODEL, "norm": "bntt"},
    "bn": {**_QUICK_IMAGE_MODEL, "norm": "bn"},
    "ln": {**_QUICK_IMAGE_MODEL, "norm": "ln"},
    "none": {**_QUICK_IMAGE_MODEL, "norm": "none"},
    "ann": {**_QUICK_IMAGE_MODEL, "spiking": False, "norm": "bn"},
    "seq_bntt": {**_QUICK_SEQUENCE_MODEL, "norm": "bntt"},
    "seq_none": {**_QUICK_SEQUENCE_MODEL, "norm": "none"},
}
# Roles whose QUICK stand-in is another role's (one tiny run serves both).
QUICK_STAND_INS: dict[str, str] = {
    "quickstart": "bntt",
    "cifar10_bntt": "bntt",
    "cifar10_bn": "bn",
    "cifar10_none": "none",
    "cifar10_paper": "bntt",
    "none_t60": "none",
}
# The converted run: the QUICK ANN converted to an SNN with this many steps.
QUICK_CONVERSION_STEPS = 32
QUICK_CONVERSION_CALIBRATION = 64  # training images the thresholds are balanced on
# Test images the QUICK stand-ins are analysed on (the analysis' own quick mode takes 256).
QUICK_ANALYSIS_IMAGES = 64


# ------------------------------------------------------------------------------------ locations
def resolve_path(path: str | os.PathLike) -> Path:
    """An absolute path: absolute paths as given, relative ones from the project root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path


def output_dir(path: str | os.PathLike = DEFAULT_OUTPUT_DIR) -> Path:
    """The notebook's output folder (created); relative paths are taken from the project root."""
    folder = resolve_path(path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def quick_cache_dir() -> Path:
    """Where QUICK stand-in runs live: $BNTT_QUICK_CACHE, else notebooks/outputs/quick_runs/."""
    configured = os.environ.get(QUICK_CACHE_ENV)
    folder = Path(configured).expanduser() if configured else resolve_path(DEFAULT_OUTPUT_DIR) / "quick_runs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def label(role: str, run_path: str | os.PathLike | None = None) -> str:
    """The display label of a role (the role itself when it is not a known one). Given the role's run,
    a BN role (`BN_ROLES`) is labelled by the norm that run really has (`bntt_core.viz.METHOD_NAMES`)."""
    if run_path is not None and role in BN_ROLES:
        from bntt_core.runs.files import RunError
        from bntt_core.runs.run_dir import read_config
        from bntt_core.viz.theme import METHOD_NAMES

        try:  # the config alone (upgraded from older run formats); a run without weights still has its norm
            norm = (read_config(run_path).get("model") or {}).get("norm")
        except (RunError, OSError):
            norm = None
        if norm in METHOD_NAMES:
            return BN_ROLES[role] + METHOD_NAMES[norm]
    return ROLE_LABELS.get(role, role)


# ------------------------------------------------------------------------------- which tables
def missing_tables(run_path: str | os.PathLike, wanted: Iterable[str] | None = None) -> list[str]:
    """Tables among `wanted` (default: all) that the run's analysis lacks or made for another model
    (stale). Tables that do not apply to a run are written empty by the analysis, so they are present."""
    from bntt_core.analysis.stored import analysis_status

    status = analysis_status(run_path)
    wanted = list(TABLES) if wanted is None else list(wanted)
    return [name for name in wanted if name in status.missing or name in status.stale]


# ------------------------------------------------------------------------------- QUICK runs
def _recipe_key(recipe: dict) -> str:
    return hashlib.sha1(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _quick_recipe_role(role: str) -> str | None:
    role = QUICK_STAND_INS.get(role, role)
    return role if role in QUICK_RECIPES or role == "converted" else None


def _analyze(run_path: Path, *, quick: bool, tables: Sequence[str] | None, subset: int | None = None) -> None:
    from bntt_core.analysis.analyze import analyze_run

    analyze_run(run_path, quick=quick, tables=list(tables) if tables is not None else None, subset=subset)


def _train_settings(recipe: dict) -> tuple[str, dict]:
    settings = {k: v for k, v in recipe.items() if k != "progress_note"}
    return settings.pop("preset"), settings


def _build_run(final: Path, *, recipe: dict | None = None, convert_from: Path | None = None,
               progress: str = "none", analysis_images: int | None = QUICK_ANALYSIS_IMAGES) -> None:
    """Train `recipe` (or convert the ANN run `convert_from`) into a temporary folder beside `final`,
    move it to `final` in one rename (an interrupted build never leaves a half-trained run there),
    then analyse it there (quick analysis on `analysis_images` test images, None: the analysis' quick
    default; an interrupted analysis is redone by `_cached`)."""
    from bntt_core.runs.training import TrainConfig, train

    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f".building-{final.name}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        if convert_from is not None:
            from bntt_core.conversion import convert_run

            convert_run(convert_from, temporary, steps=QUICK_CONVERSION_STEPS, device="cpu",
                        calibration_images=QUICK_CONVERSION_CALIBRATION)
        else:
            preset, settings = _train_settings(recipe)
            train(TrainConfig.from_preset(preset, **settings), temporary, progress=progress)
        try:
            os.replace(temporary, final)
        except OSError:  # another process finished the same run first: keep theirs
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    if missing_tables(final):
        _analyze(final, quick=True, tables=None, subset=analysis_images)


def _cached(final: Path, build, description: str) -> Path:
    """`final` if it holds a complete analysed run, else build it (timed, with one printed line)."""
    if final.is_dir() and _run_problem(final) is None and not missing_tables(final):
        return final
    shutil.rmtree(final, ignore_errors=True)  # incomplete (e.g. made by an older bntt_core): rebuild
    started = time.perf_counter()
    build()
    print(f"  {description} in {time.perf_counter() - started:.1f} s → {final}")
    return final


def quick_run(role: str) -> Path:
    """The analysed QUICK stand-in run for `role`, trained on first use and cached afterwards."""
    recipe_role = _quick_recipe_role(role)
    if recipe_role is None:
        raise ValueError(f"no QUICK recipe for role {role!r}; known roles: "
                         f"{sorted([*QUICK_RECIPES, 'converted', *QUICK_STAND_INS])}")
    if recipe_role == "converted":
        ann = quick_run("ann")
        key = _recipe_key({"converted_from": QUICK_RECIPES["ann"], "steps": QUICK_CONVERSION_STEPS,
                           "calibration": QUICK_CONVERSION_CALIBRATION})
        final = quick_cache_dir() / f"quick-converted-{key}"
        return _cached(final, lambda: _build_run(final, convert_from=ann),
                       f"QUICK converted: converted the tiny ANN to an SNN with {QUICK_CONVERSION_STEPS} steps")
    recipe = QUICK_RECIPES[recipe_role]
    final = quick_cache_dir() / f"quick-{recipe_role}-{_recipe_key(recipe)}"
    return _cached(final, lambda: _build_run(final, recipe=recipe),
                   f"QUICK {recipe_role}: trained and analysed a tiny stand-in ({recipe['progress_note']})")


def workshop_runs(norms: Sequence[str], *, quick: bool, num_steps: int, epochs: int, train_images: int | None,
                  width: float = 0.25, out_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR) -> dict[str, Path]:
    """{norm: analysed run} of small VGG5 networks on mnist10k that differ only in their norm, trained
    with the package's trainer (workshop 3). Cached under `out_dir`/workshop_runs/ by their settings,
    so re-running a notebook does not retrain; quick=True uses the QUICK stand-ins instead."""
    if quick:
        found = {norm: quick_run(norm) for norm in norms}
    else:
        folder = output_dir(out_dir) / "workshop_runs"
        found = {}
        for norm in norms:
            recipe = dict(preset="quickstart", arch="vgg5", dataset="mnist10k", width=width, num_steps=num_steps,
                          epochs=epochs, max_train_images=train_images, norm=norm, device="cpu")
            final = folder / f"{norm}-T{num_steps}-{_recipe_key(recipe)}"
            found[norm] = _cached(final, lambda final=final, recipe=recipe: _build_run(
                final, recipe=recipe, progress="quiet", analysis_images=None), f"{norm}: trained and analysed")
    print("runs used:")
    for norm, path in found.items():
        print(f"  {label(norm, path):32s} {describe(path)}")
    return found


# --------------------------------------------------------------------------------- ensure_runs
def _run_problem(path: Path) -> str | None:
    """Why `path` is not a usable run (None when it is)."""
    from bntt_core.runs.listing import inspect_run

    if not path.exists():
        return "it does not exist"
    entry = inspect_run(path)
    return entry.error


def ensure_runs(run_dirs: Mapping[str, str | os.PathLike], quick: bool, *,
                tables: Sequence[str] | None = None) -> dict[str, Path]:
    """{role: run directory} with the analysis `tables` written (default: all that apply).

    quick=True: every role with a QUICK recipe gets its tiny cached stand-in (the RUN_DIRS path is
    not read); other roles must point at an existing run. quick=False: the RUN_DIRS paths are used;
    a missing or broken run of a known role is replaced by its QUICK stand-in with a printed notice,
    and any missing analysis table is computed (full analysis) and stored in the run.
    """
    resolved: dict[str, Path] = {}
    for role, given in run_dirs.items():
        path = resolve_path(given)
        if quick and _quick_recipe_role(role) is not None:
            resolved[role] = quick_run(role)
            continue
        problem = _run_problem(path)
        if problem is None:
            missing = missing_tables(path, tables)
            if missing:
                # a run never analysed gets the whole analysis with its own defaults (e.g. no FGSM for a
                # converted run); otherwise only the tables it lacks
                fresh = len(missing_tables(path)) == len(TABLES)
                print(f"{role}: analysing {path} for {'every table' if fresh else ', '.join(missing)} "
                      f"(stored in {path / 'analysis'})")
                _analyze(path, quick=quick, tables=None if fresh else missing)
            resolved[role] = path
            continue
        if _quick_recipe_role(role) is None:
            raise FileNotFoundError(f"RUN_DIRS[{role!r}] = {str(given)!r} is not a usable run ({problem}); "
                                    f"point it at a run directory (train one with `bntt train`)")
        print(f"NOTICE {role}: no usable run at {path} ({problem}). Using a tiny QUICK stand-in instead: "
              f"the numbers below come from it, not from the shipped run.")
        resolved[role] = quick_run(role)
    print("runs used:")
    for role, path in resolved.items():
        print(f"  {label(role, path):32s} {describe(path)}")
    mixed = steps_differ(resolved)
    if mixed:
        print(f"NOTE: the surrogate-trained runs compared here differ in T ({mixed}): a difference between them "
              f"mixes the method with the number of time steps")
    return resolved


def steps_differ(runs: Mapping[str, str | os.PathLike]) -> str:
    """'' when the trained spiking runs among `runs` share one T (within each dataset), else who has which T.
    The ANN (no steps) and converted runs (many steps by design) are left out."""
    from bntt_core.runs.run_dir import read_config

    by_dataset: dict[str, dict[str, int]] = {}
    for role, path in runs.items():
        try:
            config = read_config(path)
        except (OSError, ValueError):
            continue
        model = config.get("model") or {}
        if config.get("kind") != "trained" or not model.get("spiking", True):
            continue
        dataset = (config.get("data") or {}).get("dataset", "?")
        by_dataset.setdefault(dataset, {})[label(role, path)] = int(model.get("num_steps", 0))
    def named(name: str, steps: int) -> str:  # a role label may say its T already ("…, T = 60")
        return name if name.endswith(f"T = {steps}") else f"{name} T = {steps}"

    return "; ".join(", ".join(named(name, steps) for name, steps in steps_of.items())
                     for steps_of in by_dataset.values() if len(set(steps_of.values())) > 1)


def describe(run_path: str | os.PathLike) -> str:
    """One line about a run: arch, norm, T, dataset, test accuracy and where it is."""
    from bntt_core.runs.listing import inspect_run, run_label

    entry = inspect_run(run_path)
    if entry.error:
        return f"{run_path}: {entry.error}"
    summary = {"kind": entry.kind, "arch": entry.arch, "dataset": entry.dataset, "norm": entry.norm,
               "spiking": entry.spiking, "num_steps": entry.num_steps}
    accuracy = "" if entry.test_accuracy is None else f" · test {100 * entry.test_accuracy:.2f}%"
    return f"{run_label(summary)}{accuracy}  ({run_path})"


# ------------------------------------------------------------------------------------ tables
def tables(runs: Mapping[str, Path], name: str, *, roles: Sequence[str] | None = None) -> dict[str, pd.DataFrame]:
    """{display label: analysis table `name`} for the runs that have it (in the order of `roles`)."""
    from bntt_core.runs.run_dir import read_table

    chosen = list(runs) if roles is None else [role for role in roles if role in runs]
    found = {}
    for role in chosen:
        table = read_table(runs[role], name)
        if table is not None and len(table):
            found[label(role, runs[role])] = table
    return found


def table(runs: Mapping[str, Path], role: str, name: str) -> pd.DataFrame:
    """One run's analysis table; a clear error if it was not written."""
    from bntt_core.runs.run_dir import read_table

    found = read_table(runs[role], name)
    if found is None or not len(found):
        raise ValueError(f"run {runs[role]} ({role}) has no {name!r} table; analyse it with "
                         f"`bntt analyze {runs[role]}`")
    return found


def analysis_meta(run_path: str | os.PathLike, name: str) -> dict:
    """The meta.json entry of one table (subset size, seed, conventions), {} when absent."""
    from bntt_core.runs.run_dir import read_meta

    return dict(read_meta(run_path).get(name, {}))


# ------------------------------------------------------------------------------------ figures
def save_figure(fig, name: str, data: pd.DataFrame | Mapping[str, pd.DataFrame],
                out_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR, *, png: bool = True) -> dict[str, Path]:
    """Write `name`.html (self-contained), `name`.png (png=True: waits for kaleido, retries once, else FigureExportError) and `name`.csv
    (the data behind the figure; several runs become one table with a `run` column) into `out_dir`."""
    from bntt_core import viz

    folder = output_dir(out_dir)
    written = {}
    html_path = folder / f"{name}.html"
    html_path.write_text(viz.figure_to_html(fig), encoding="utf-8")
    written["html"] = html_path
    csv_path = folder / f"{name}.csv"
    csv_path.write_bytes(viz.figure_data(data))
    written["csv"] = csv_path
    if png:
        # batch export: waits for the renderer, retries once with a fresh one, else FigureExportError naming it
        image = viz.figure_to_png(fig, name=name)
        png_path = folder / f"{name}.png"
        png_path.write_bytes(image)
        written["png"] = png_path
    print(f"saved {name}: " + ", ".join(path.name for path in written.values()) + f" in {folder}")
    return written


def save_table(data: pd.DataFrame, name: str, out_dir: str | os.PathLike = DEFAULT_OUTPUT_DIR) -> Path:
    """Write a result table as `name`.csv into `out_dir`."""
    path = output_dir(out_dir) / f"{name}.csv"
    data.to_csv(path, index=False)
    print(f"saved {name}: {path.name} in {path.parent}")
    return path


# ------------------------------------------------------------------------ verdicts: seed groups
# The verdicts themselves are bntt_core.analysis.claims; here what needs the run directories: which runs are
# seeds of one experiment (run_groups), the accuracy table of a set of runs, the energy convention.
_SEED_SUFFIX = re.compile(r"[\s,·(-]*\bseed\s*\d+\)?\s*$", re.IGNORECASE)


def _group_key(path: Path) -> str:
    """What makes two runs the same experiment up to the training seed: kind, the model, the dataset and
    the training recipe without its seed (and without settings that do not change the result)."""
    from bntt_core.runs.run_dir import read_config

    config = read_config(path)
    train = {k: v for k, v in (config.get("train") or {}).items()
             if k not in ("seed", "threads", "device", "data_dir", "eval_batch_size", "progress")}
    return json.dumps({"kind": config.get("kind"), "model": config.get("model"),
                       "dataset": (config.get("data") or {}).get("dataset"), "train": train},
                      sort_keys=True, default=str)


def run_groups(runs: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """{display label: group name} for `runs` ({role: run dir}): runs whose config.json differs only in
    the training seed (`train.seed`) form one group, named after its first run's label without a
    trailing "seed N". A run whose config cannot be read is its own group."""
    groups, names = {}, {}
    for role, path in runs.items():
        shown = label(role, path)
        try:
            key = _group_key(Path(path))
        except (OSError, ValueError):
            key = f"unreadable:{shown}"
        names.setdefault(key, _SEED_SUFFIX.sub("", shown) or shown)
        groups[shown] = names[key]
    return groups


def accuracy_summary(runs: Mapping[str, Path]) -> pd.DataFrame:
    """One row per run: method, arch, dataset, T, test accuracy at T (from accuracy_by_step, else the
    training result), the number of test images behind it, epochs and training time."""
    from bntt_core.runs.listing import inspect_run, run_method
    from bntt_core.runs.run_dir import read_table

    rows = []
    for role, path in runs.items():
        entry = inspect_run(path)
        config = entry.config or {}
        result = config.get("result") or {}
        by_step = read_table(path, "accuracy_by_step")
        accuracy, images = entry.test_accuracy, result.get("num_test_images")
        if accuracy is None and by_step is not None and len(by_step):
            accuracy = float(by_step.sort_values("t")["accuracy"].iloc[-1])
            images = analysis_meta(path, "accuracy_by_step").get("num_images", images)
        method = run_method({"kind": entry.kind, "spiking": entry.spiking, "norm": entry.norm})
        rows.append({"run": label(role, path), "method": method, "arch": entry.arch, "dataset": entry.dataset,
                     "seed": (config.get("train") or {}).get("seed"),
                     "steps": 1 if entry.spiking is False else entry.num_steps,
                     "test_accuracy_percent": None if accuracy is None else _percent(float(accuracy)),
                     "test_images": images, "epochs": entry.epochs_done,
                     "train_minutes": None if result.get("wall_seconds") is None else result["wall_seconds"] / 60.0})
    return pd.DataFrame(rows)


def energy_convention(run_path: str | os.PathLike) -> str:
    """How the run's energy table was counted (from its analysis meta), in one line."""
    from bntt_core import viz

    convention = analysis_meta(run_path, "energy").get("convention")
    if isinstance(convention, dict):
        return str(convention.get("model") or viz.ENERGY_CONVENTION)
    return str(convention or viz.ENERGY_CONVENTION)


def verdict_early_exit_energy(run_path: str | os.PathLike, threshold: float) -> dict:
    """The energy BNTT's early exit at `threshold` saves on one run (bntt_core.analysis.early_exit.early_exit_summary
    with the run's spike_activity and energy tables: each layer's energy is cut by the share of its
    spikes that fall after the exit step)."""
    from bntt_core.analysis.early_exit import early_exit_summary
    from bntt_core.runs.run_dir import read_table

    names = ("gamma_mean", "accuracy_by_step", "spike_activity", "energy")
    found = {name: read_table(run_path, name) for name in names}
    if any(table is None or not len(table) for table in found.values()):
        lacking = [name for name, table in found.items() if table is None or not len(table)]
        print(f"no early-exit energy estimate: the run lacks {', '.join(lacking)}")
        return {}
    summary = early_exit_summary(found["gamma_mean"], found["accuracy_by_step"], threshold,
                                 spike_activity=found["spike_activity"], energy=found["energy"])
    print(f"early exit at threshold {threshold:g}: t = {summary['exit_step']} of {summary['num_steps']}; energy "
          f"{summary['energy_pj']:.4g} pJ → {summary['energy_pj'] - summary['energy_saved_pj']:.4g} pJ per image "
          f"({summary['energy_saved_fraction']:.0%} saved), accuracy {_percent(summary['full_accuracy']):.2f}% → "
          f"{_percent(summary['accuracy']):.2f}%.")
    return summary


def shipped_status() -> pd.DataFrame:
    """Every SHIPPED role: its path, whether a usable run is there, and which tables it lacks."""
    rows = []
    for role, given in SHIPPED.items():
        path = resolve_path(given)
        problem = _run_problem(path)
        lacking = ""
        if problem is None:
            with contextlib.suppress(Exception):
                lacking = ", ".join(missing_tables(path))
        rows.append({"role": role, "path": given, "usable": problem is None, "problem": problem or "",
                     "missing_tables": lacking})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    with pd.option_context("display.width", 160, "display.max_colwidth", 60):
        print(shipped_status().to_string(index=False))
