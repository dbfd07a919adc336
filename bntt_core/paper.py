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

import numpy as np
import pandas as pd

from bntt_core.analysis.tables import TABLES, common_noise_mode, noise_table
from bntt_core.analysis.verdicts import compare_methods

# ------------------------------------------------------------------------------ the shipped runs
# The ONE place that names the shipped runs (data/runs/, see data/runs/README.md). Paths are relative
# to the project root. A notebook's RUN_DIRS defaults point here.
SHIPPED: dict[str, str] = {
    "quickstart": "data/runs/quickstart",
    # the ablation on Fashion-MNIST (Figs 1, 3-8, Tables 1/5, energy): BNTT, the paper's BN and none at T = 20
    # (preset fashion-t20, seed 0); LN, the ANN and the conversion still from the T = 6 ablation (preset
    # fashion-cpu) until their T = 20 runs are in (experiments/fashion_t20.plan) — the notebooks say so
    "bntt": "data/runs/fashion-t20-bntt-s0",
    "bn": "data/runs/fashion-t20-bn-s0",
    "ln": "data/runs/fmnist-vgg5-ln",
    "none": "data/runs/fashion-t20-none-s0",
    "ann": "data/runs/fmnist-vgg5-ann",
    "converted": "data/runs/fmnist-vgg5-converted",
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
}
# The converted run: the QUICK ANN converted to an SNN with this many steps.
QUICK_CONVERSION_STEPS = 32
QUICK_CONVERSION_CALIBRATION = 64  # training images the thresholds are balanced on
# Test images the QUICK stand-ins are analysed on (the analysis' own quick mode takes 256).
QUICK_ANALYSIS_IMAGES = 64


# ------------------------------------------------------------------------------------ locations
def project_root() -> Path:
    """The checkout this package runs from (the folder holding pyproject.toml and data/), or the
    current directory when bntt_core is installed elsewhere."""
    candidates = [Path(__file__).resolve().parents[1], Path.cwd().resolve(), *Path.cwd().resolve().parents]
    for folder in candidates:
        if (folder / "pyproject.toml").is_file() and (folder / "bntt_core").is_dir():
            return folder
    return Path.cwd().resolve()


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
        from bntt_core.runs import RunError, read_config
        from bntt_core.viz import METHOD_NAMES

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
    from bntt_core.analysis import analysis_status

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
    from bntt_core.analysis import analyze_run

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
    from bntt_core.runs import inspect_run

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
    from bntt_core.runs import read_config

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
    return "; ".join(", ".join(f"{name} T = {steps}" for name, steps in steps_of.items())
                     for steps_of in by_dataset.values() if len(set(steps_of.values())) > 1)


def describe(run_path: str | os.PathLike) -> str:
    """One line about a run: arch, norm, T, dataset, test accuracy and where it is."""
    from bntt_core.runs import inspect_run
    from bntt_core.teaching import run_label

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
    from bntt_core.runs import read_table

    chosen = list(runs) if roles is None else [role for role in roles if role in runs]
    found = {}
    for role in chosen:
        table = read_table(runs[role], name)
        if table is not None and len(table):
            found[label(role, runs[role])] = table
    return found


def table(runs: Mapping[str, Path], role: str, name: str) -> pd.DataFrame:
    """One run's analysis table; a clear error if it was not written."""
    from bntt_core.runs import read_table

    found = read_table(runs[role], name)
    if found is None or not len(found):
        raise ValueError(f"run {runs[role]} ({role}) has no {name!r} table; analyse it with "
                         f"`bntt analyze {runs[role]}`")
    return found


def analysis_meta(run_path: str | os.PathLike, name: str) -> dict:
    """The meta.json entry of one table (subset size, seed, conventions), {} when absent."""
    from bntt_core.runs import read_meta

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


# ------------------------------------------------------------------------------------ verdicts
# Each `verdict_*` prints plain sentences about what the runs show (computed, never assumed) and
# returns the table behind them, so a notebook's closing markdown can point at printed numbers.
# Rankings of methods go through ONE rule, `bntt_core.analysis.verdicts.compare_methods`: mean ± std over the
# seeds present, "tie" within the spread, "one seed" when a method has a single run. Runs of one method
# over several seeds are grouped with `run_groups` (pass `groups=` to the verdicts); without it every
# run is its own group, i.e. one seed.
_SEED_SUFFIX = re.compile(r"[\s,·(-]*\bseed\s*\d+\)?\s*$", re.IGNORECASE)


def _group_key(path: Path) -> str:
    """What makes two runs the same experiment up to the training seed: kind, the model, the dataset and
    the training recipe without its seed (and without settings that do not change the result)."""
    from bntt_core.runs import read_config

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


def _by_group(values: Mapping[str, float], groups: Mapping[str, str] | None) -> dict[str, list[float]]:
    """{group: [value of each of its runs]} from {run label: value}; no groups: each run its own group."""
    grouped: dict[str, list[float]] = {}
    for run, value in values.items():
        grouped.setdefault((groups or {}).get(run, run), []).append(float(value))
    return grouped


def _print_comparison(values: Mapping[str, float], groups: Mapping[str, str] | None, *, what: str,
                      higher_is_better: bool, focus: str | None = None, digits: int = 2, unit: str = ""):
    """Print the methods ranked by `what` (mean ± std over seeds, '>' ahead, '≈' tie, '?' one seed) and
    the verdict of `focus` (its group) against every other; returns the MethodComparison."""
    grouped = _by_group({run: v for run, v in values.items() if np.isfinite(v)}, groups)
    if not grouped:
        return None
    comparison = compare_methods(grouped, higher_is_better=higher_is_better)
    print(f"{what} ({'higher' if higher_is_better else 'lower'} is better): {comparison.summary(digits, unit)}.")
    focus_group = (groups or {}).get(focus, focus) if focus is not None else None
    if focus_group in comparison.stats and len(comparison.order) > 1:
        verdicts = [comparison.pair(focus_group, other).text(digits, unit)
                    for other in comparison.order if other != focus_group]
        print(f"→ {focus_group} against the others: " + "; ".join(verdicts) + ".")
    return comparison
def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _percent(value: float) -> float:
    """Accuracy as percent whether the table holds fractions or percent."""
    return 100.0 * value if value <= 1.0 else value


FLAT_TOLERANCE = 0.05  # a layer whose values vary by less than 5% of their peak over time is "flat"


def peak_steps(data: pd.DataFrame, value: str) -> pd.DataFrame:
    """Per layer (shallow → deep, as the table lists them): the step where `value` peaks, the peak,
    the value at the last step, last ÷ peak, and whether the layer is flat (its values vary by less
    than FLAT_TOLERANCE of the peak over time, so its peak step means nothing). Works on
    spike_activity (spikes_per_neuron) and gamma_mean (mean_gamma)."""
    rows = []
    for layer, part in data.groupby("layer", sort=False):
        part = part.sort_values("t")
        values = part[value].to_numpy(dtype=float)
        top = int(np.nanargmax(values)) if np.isfinite(values).any() else 0
        peak, last, low = float(values[top]), float(values[-1]), float(np.nanmin(values))
        rows.append({"layer": str(layer), "peak_t": int(part["t"].iloc[top]), "peak": peak, "last": last,
                     "last_over_peak": last / peak if peak > 0 else float("nan"),
                     "flat": not (peak > 0 and (peak - low) / peak >= FLAT_TOLERANCE),
                     "num_steps": int(part["t"].max())})
    return pd.DataFrame(rows)


def peaks_later_with_depth(peaks: pd.DataFrame) -> str:
    """"yes" when, over the layers that are not flat, each peaks no earlier than the one before it and
    the deepest later than the first (the paper's Fig 1C / Fig 6 pattern); "no"; or "not measurable"
    when fewer than two layers vary over time."""
    steps = peaks.loc[~peaks["flat"], "peak_t"].tolist()
    if len(steps) < 2:
        return f"not measurable (fewer than two layers vary by ≥ {FLAT_TOLERANCE:.0%} over time)"
    later = all(b >= a for a, b in zip(steps, steps[1:], strict=False)) and steps[-1] > steps[0]
    return "yes" if later else "no"


def rise_and_fall(peaks: pd.DataFrame, *, drop: float = 0.5) -> pd.Series:
    """Per layer: does the value peak before the last step and end at most `drop` × its peak?"""
    return (peaks["peak_t"] < peaks["num_steps"]) & (peaks["last_over_peak"] <= drop)


def _peak_text(peaks: pd.DataFrame) -> str:
    return ", ".join(f"{r.layer}: {'flat' if r.flat else f't = {r.peak_t}'}" for r in peaks.itertuples())


def verdict_spike_activity(spike_activity: Mapping[str, pd.DataFrame], bntt_label: str = "BNTT", *,
                           groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Fig 1: per run, the step at which each layer's activity peaks, whether deeper layers peak
    later, how many layers rise and then fall to ≤ half their peak, and what share of the peak
    activity is left at the last step (mean over layers); methods compared on that share (lower: falls
    off more) with `bntt_core.analysis.verdicts.compare_methods` over the seeds in `groups` (run_groups)."""
    rows = []
    for run, data in spike_activity.items():
        peaks = peak_steps(data, "spikes_per_neuron")
        rows.append({"run": run, "num_steps": int(peaks["num_steps"].max()),
                     "peak_by_layer": _peak_text(peaks),
                     "deeper_layers_peak_later": peaks_later_with_depth(peaks),
                     "layers_rising_and_falling": f"{int(rise_and_fall(peaks).sum())} of {len(peaks)}",
                     "last_step_over_peak": float(peaks["last_over_peak"].mean())})
    frame = pd.DataFrame(rows)
    for row in frame.itertuples():
        print(f"{row.run} (T = {row.num_steps}): layers peak at {row.peak_by_layer}; deeper layers peak "
              f"later: {row.deeper_layers_peak_later}; layers that rise then fall to ≤ half their peak: "
              f"{row.layers_rising_and_falling}; activity at the last step = {row.last_step_over_peak:.0%} of "
              f"the peak (mean over layers).")
    if bntt_label in set(frame["run"]) and len(frame) > 1:
        _print_comparison({r.run: 100.0 * r.last_step_over_peak for r in frame.itertuples()}, groups,
                          what="activity left at the last step, % of the peak", higher_is_better=False,
                          focus=bntt_label, digits=0, unit="%")
    return frame


def default_bn_layer(bn_input: pd.DataFrame, preferred: str = "conv5") -> str:
    """The paper's Fig 3 shows layer 5 (conv5 of VGG9); smaller networks use their deepest conv
    layer (else the deepest layer)."""
    layers = list(dict.fromkeys(bn_input["layer"].astype(str)))
    if preferred in layers:
        return preferred
    convs = [layer for layer in layers if layer.startswith("conv")]
    return (convs or layers)[-1]


def paper_steps(num_steps: int, paper: Sequence[int] = (1, 10, 20), paper_total: int = 25) -> list[int]:
    """The paper's steps (t = 1, 10, 20 of 25) scaled to a run with `num_steps` steps."""
    scaled = {min(num_steps, max(1, int(round(step * num_steps / paper_total)))) for step in paper}
    return sorted(scaled)


def verdict_bn_input(bn_input: pd.DataFrame, layer: str) -> dict:
    """Fig 3 in numbers for one layer: how far the input's mean moves over time, and how far each
    step's mean is from the ONE stored running mean, in units of the input's std (mean over steps).
    A gap of ≳ 0.5 std means inference normalises that step with a statistic that does not fit it."""
    part = bn_input[bn_input["layer"].astype(str) == str(layer)].sort_values("t")
    running = pd.to_numeric(part["running_mean"], errors="coerce").dropna()
    means = part["mean"].to_numpy(dtype=float)
    spread = float(np.nanmean(part["std"].to_numpy(dtype=float)))
    result = {"layer": str(layer), "num_steps": int(part["t"].max()),
              "mean_at_first_step": float(means[0]), "mean_at_last_step": float(means[-1]),
              "drift_over_std": float((np.nanmax(means) - np.nanmin(means)) / spread) if spread > 0 else float("nan"),
              "running_mean": float(running.mean()) if len(running) else float("nan")}
    print(f"{layer}: the mean of the norm's input goes from {means[0]:.3g} (t = 1) to {means[-1]:.3g} "
          f"(t = {result['num_steps']}); its range over time is {result['drift_over_std']:.2f} × the input's std.")
    if len(running):
        gaps = np.abs(means - result["running_mean"]) / spread if spread > 0 else np.full_like(means, np.nan)
        result["largest_gap_over_std"] = float(np.nanmax(gaps))
        result["steps_off_by_over_half_std"] = int(np.sum(gaps > 0.5))
        print(f"The one stored running mean is {result['running_mean']:.3g}; {result['steps_off_by_over_half_std']} "
              f"of {len(means)} steps have a mean more than 0.5 std away from it (largest gap "
              f"{result['largest_gap_over_std']:.2f} std).")
        print(f"→ a single statistic misfits some steps here: {_yes(result['steps_off_by_over_half_std'] > 0)}.")
    else:
        print("This run stores no single running mean (its norm keeps statistics per step, or none), so there is "
              "no mismatch to measure.")
    return result


def verdict_gamma(gamma_mean: pd.DataFrame) -> pd.DataFrame:
    """Figs 4 and 6: per BNTT layer, the step where mean γ peaks (or "flat" when it hardly changes
    over time) and what is left of it at the last step; whether deeper layers peak later."""
    peaks = peak_steps(gamma_mean, "mean_gamma")
    print("mean γ peaks at " + ", ".join(
        f"{r.layer}: {'flat' if r.flat else f't = {r.peak_t}'} (γ {r.peak:.3f}, last step {r.last:.3f})"
        for r in peaks.itertuples()) + ".")
    print(f"→ deeper layers peak later: {peaks_later_with_depth(peaks)}; layers whose mean γ ends at "
          f"≤ half its peak: {int(rise_and_fall(peaks).sum())} of {len(peaks)}.")
    return peaks


def verdict_early_exit(gamma_mean: pd.DataFrame, accuracy_by_step: pd.DataFrame, early_exit: pd.DataFrame | None,
                       threshold: float, *, max_drop_points: float = 1.0) -> dict:
    """Fig 4/7: the paper's exit at `threshold` (exit step, steps saved, accuracy and its drop) and,
    over the stored threshold grid, the largest saving that costs less than `max_drop_points`."""
    from bntt_core.teaching import early_exit_summary

    summary = early_exit_summary(gamma_mean, accuracy_by_step, threshold)
    full, at_exit = _percent(summary["full_accuracy"]), _percent(summary["accuracy"])
    summary["accuracy_drop_points"] = full - at_exit
    print(f"threshold {threshold:g}: exit at t = {summary['exit_step']} of {summary['num_steps']} "
          f"({summary['steps_saved_fraction']:.0%} of the steps saved); accuracy {at_exit:.2f}% vs "
          f"{full:.2f}% with all steps (drop {summary['accuracy_drop_points']:.2f} points).")
    if early_exit is not None and len(early_exit):
        grid = early_exit.copy()
        grid["drop"] = full - grid["accuracy"].map(_percent)
        cheap = grid[grid["drop"] < max_drop_points]
        best = cheap.loc[cheap["steps_saved"].idxmax()] if len(cheap) else None
        if best is not None and best["steps_saved"] > 0:
            saved = float(best["steps_saved"]) / summary["num_steps"]
            summary.update(best_threshold=float(best["threshold"]), best_exit_step=int(best["exit_step"]),
                           best_saved_fraction=saved, best_drop_points=float(best["drop"]))
            print(f"largest saving under {max_drop_points:g} point of accuracy on the grid: threshold "
                  f"{best['threshold']:.3g} exits at t = {int(best['exit_step'])} ({saved:.0%} saved, drop "
                  f"{best['drop']:.2f} points).")
            print(f"→ early exit saves ≥ 20% of the steps for < {max_drop_points:g} point here: {_yes(saved >= 0.2)}.")
        else:
            summary.update(best_saved_fraction=0.0)
            print(f"→ no threshold on the grid saves a step for < {max_drop_points:g} point of accuracy here.")
    return summary


def gamma_histogram_layers(gamma: pd.DataFrame, paper: Sequence[str] = ("conv1", "conv4", "conv7")) -> list[str]:
    """The paper's Fig 6 layers when the run has them, else its first, middle and last BNTT layers."""
    layers = list(dict.fromkeys(gamma["layer"].astype(str)))
    if all(layer in layers for layer in paper):
        return list(paper)
    return list(dict.fromkeys([layers[0], layers[len(layers) // 2], layers[-1]]))


def verdict_spike_rate(rates: Mapping[str, pd.DataFrame], bntt_label: str = "BNTT", *,
                       groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Fig 5: the spike rate of every run per layer (wide), which run is sparsest in each layer, how
    many layers BNTT is the sparsest in, and the methods compared on the mean rate over layers
    (`bntt_core.analysis.verdicts.compare_methods` over the seeds in `groups`)."""
    wide = None
    for run, data in rates.items():
        column = data[["layer", "rate"]].astype({"layer": str}).rename(columns={"rate": run})
        wide = column if wide is None else wide.merge(column, on="layer", how="outer", sort=False)
    runs = list(rates)
    wide["sparsest"] = wide[runs].idxmin(axis=1)
    means = wide[runs].mean()
    print("spike rate (spikes per neuron over all steps), mean over layers: "
          + ", ".join(f"{run} {means[run]:.3g}" for run in runs) + ".")
    if bntt_label in runs:
        count = int((wide["sparsest"] == bntt_label).sum())
        print(f"{bntt_label} is the sparsest run in {count} of {len(wide)} layers.")
    _print_comparison({run: float(means[run]) for run in runs}, groups, what="mean spike rate over layers",
                      higher_is_better=False, focus=bntt_label if bntt_label in runs else None, digits=3)
    return wide


def verdict_robustness(curves: Mapping[str, pd.DataFrame], column: str, bntt_label: str = "BNTT", *,
                       groups: Mapping[str, str] | None = None, mode: str | None = None) -> pd.DataFrame:
    """Fig 8: per run, clean accuracy, accuracy at the strongest noise/attack, the mean accuracy
    over the grid (area under the curve ÷ its width) and the rank by that mean (1 = most robust); the
    methods compared on that mean with `bntt_core.analysis.verdicts.compare_methods` (mean ± std over the seeds
    in `groups`, "tie" within the spread, "one seed"). Noise tables (column "sigma"): the curve of noise
    `mode` (default None or "": the one every run has, unclipped first; a table without modes is clipped)."""
    if column == "sigma":
        mode = mode or common_noise_mode(curves.values())
        if mode is None:
            raise ValueError("the noise tables share no noise mode; pass mode= explicitly")
        curves = {run: noise_table(data, mode) for run, data in curves.items()}
        curves = {run: data for run, data in curves.items() if len(data)}
        print(f"noise mode: {mode}")
    rows = []
    for run, data in curves.items():
        data = data.sort_values(column)
        x, y = data[column].to_numpy(dtype=float), data["accuracy"].map(_percent).to_numpy(dtype=float)
        if len(x) > 1 and x[-1] > x[0]:
            area = float(np.sum((y[1:] + y[:-1]) / 2.0 * np.diff(x)) / (x[-1] - x[0]))
        else:
            area = float(y.mean())
        rows.append({"run": run, "clean_accuracy": float(y[0]), f"largest_{column}": float(x[-1]),
                     "accuracy_at_largest": float(y[-1]), "mean_accuracy_over_grid": area})
    frame = pd.DataFrame(rows)
    frame["rank"] = frame["mean_accuracy_over_grid"].rank(ascending=False, method="min").astype(int)
    frame = frame.sort_values("rank").reset_index(drop=True)
    symbol = "σ" if column == "sigma" else "ε"
    for row in frame.itertuples():
        print(f"#{row.rank} {row.run}: mean accuracy over the {symbol} grid {row.mean_accuracy_over_grid:.1f}% "
              f"(clean {row.clean_accuracy:.1f}%, at {symbol} = {row[3]:g}: {row.accuracy_at_largest:.1f}%).")
    comparison = _print_comparison(dict(zip(frame["run"], frame["mean_accuracy_over_grid"], strict=True)), groups,
                                   what=f"mean accuracy over the {symbol} grid", higher_is_better=True,
                                   focus=bntt_label if bntt_label in set(frame["run"]) else None, digits=1, unit="%")
    if comparison is not None:
        best = comparison.order[0]
        second = comparison.order[1] if len(comparison.order) > 1 else None
        verdict = "only method" if second is None else comparison.pair(best, second).verdict
        print(f"→ most robust here: {best} ({'ahead' if verdict == 'ahead' else verdict} against the next, "
              f"{second})." if second else f"→ most robust here: {best} (the only method).")
    return frame


def accuracy_summary(runs: Mapping[str, Path]) -> pd.DataFrame:
    """One row per run: method, arch, dataset, T, test accuracy at T (from accuracy_by_step, else the
    training result), the number of test images behind it, epochs and training time."""
    from bntt_core.runs import inspect_run, read_table
    from bntt_core.teaching import run_method

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


def verdict_accuracy(summary: pd.DataFrame, order: Sequence[str] = ("bntt", "bn", "none")) -> None:
    """Tables 1/5/3: the runs ranked by test accuracy, and whether the methods in `order` (by
    default BNTT > BN > none, the paper's claim at low T) come out in that order: the runs of one method
    (its seeds, the `method` column) compared with `bntt_core.analysis.verdicts.compare_methods` — mean ± std,
    "tie" within the spread, "one seed" when a method has a single run."""
    ranked = summary.dropna(subset=["test_accuracy_percent"]).sort_values("test_accuracy_percent", ascending=False)
    print("ranked by test accuracy: " + ", ".join(f"{r.run} {r.test_accuracy_percent:.2f}%"
                                                  for r in ranked.itertuples()) + ".")
    present = [method for method in order if method in set(ranked["method"])]
    if len(present) > 1:
        chosen = ranked[ranked["method"].isin(present)]
        comparison = compare_methods({m: chosen.loc[chosen["method"] == m, "test_accuracy_percent"].tolist()
                                      for m in present})
        pairs = [comparison.pair(a, b).text(2, "%") for a, b in zip(present, present[1:], strict=False)]
        print(f"{comparison.summary(2, '%')}.")
        print(f"→ {' > '.join(present)} holds here: {comparison.holds(present)} ({'; '.join(pairs)}).")


def energy_convention(run_path: str | os.PathLike) -> str:
    """How the run's energy table was counted (from its analysis meta), in one line."""
    from bntt_core import viz

    convention = analysis_meta(run_path, "energy").get("convention")
    if isinstance(convention, dict):
        return str(convention.get("model") or viz.ENERGY_CONVENTION)
    return str(convention or viz.ENERGY_CONVENTION)


def verdict_energy(energy: Mapping[str, pd.DataFrame], bntt_label: str = "BNTT", *,
                   groups: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Energy: each run's total per image (pJ), its synaptic operations and MACs, its ratio to
    BNTT's energy, and the methods compared on it (`bntt_core.analysis.verdicts.compare_methods` over the seeds
    in `groups`)."""
    totals = pd.DataFrame([{"run": run, "energy_pj": float(data["energy_pj"].sum()),
                            "synops": float(data["synops"].sum()), "macs": float(data["macs"].sum())}
                           for run, data in energy.items()])
    if bntt_label in set(totals["run"]):
        reference = float(totals.loc[totals["run"] == bntt_label, "energy_pj"].iloc[0])
        totals[f"times_{bntt_label}"] = totals["energy_pj"] / reference if reference > 0 else float("nan")
    totals = totals.sort_values("energy_pj").reset_index(drop=True)
    print("energy per image: " + ", ".join(f"{r.run} {r.energy_pj:.4g} pJ" for r in totals.itertuples()) + ".")
    comparison = _print_comparison(dict(zip(totals["run"], totals["energy_pj"] / 1e6, strict=True)), groups,
                                   what="energy per image", higher_is_better=False,
                                   focus=bntt_label if bntt_label in set(totals["run"]) else None, digits=3,
                                   unit=" µJ")
    if comparison is not None and len(comparison.order) > 1:
        verdict = comparison.pair(comparison.order[0], comparison.order[1]).verdict
        print(f"→ lowest energy here: {comparison.order[0]} ({verdict} against the next, {comparison.order[1]}).")
    return totals


# The paper's numbers (SPEC "Paper numbers"; the ones SPEC stars could not be checked against a copy
# of the tables). Method keys as in `bntt_core.teaching.run_method`.
PAPER_NUMBERS = pd.DataFrame([
    {"dataset": "CIFAR-10", "arch": "VGG9", "method": "bntt", "steps": 25, "accuracy_percent": 90.5,
     "source": "Table 1"},
    {"dataset": "CIFAR-10", "arch": "VGG9", "method": "bntt + early exit", "steps": 20, "accuracy_percent": 90.3,
     "source": "Table 1"},
    {"dataset": "CIFAR-10", "arch": "VGG9", "method": "converted", "steps": 1000, "accuracy_percent": 91.2,
     "source": "Table 1"},
    {"dataset": "CIFAR-10", "arch": "VGG9", "method": "none", "steps": 100, "accuracy_percent": 88.7,
     "source": "Table 1 (surrogate BP baseline)"},
    {"dataset": "CIFAR-100", "arch": "VGG11", "method": "bntt", "steps": 30, "accuracy_percent": 66.6,
     "source": "Table 1 (number not checked against a copy of the table)"},
    {"dataset": "Tiny-ImageNet", "arch": "VGG11", "method": "bntt", "steps": 30, "accuracy_percent": 57.8,
     "source": "Table 1 (number not checked against a copy of the table)"},
    {"dataset": "Sequential MNIST", "arch": "FC(1,256)-FC(256,256)-FC(256,10)", "method": "bntt", "steps": 784,
     "accuracy_percent": 96.6, "source": "Table 3"},
])


def verdict_early_exit_energy(run_path: str | os.PathLike, threshold: float) -> dict:
    """The energy BNTT's early exit at `threshold` saves on one run (bntt_core.teaching.early_exit_summary
    with the run's spike_activity and energy tables: each layer's energy is cut by the share of its
    spikes that fall after the exit step)."""
    from bntt_core.runs import read_table
    from bntt_core.teaching import early_exit_summary

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


def paper_number(dataset: str, method: str) -> float:
    """The paper's accuracy (%) for `dataset` and `method` from PAPER_NUMBERS."""
    rows = PAPER_NUMBERS[(PAPER_NUMBERS["dataset"] == dataset) & (PAPER_NUMBERS["method"] == method)]
    if rows.empty:
        raise ValueError(f"no paper number for {dataset!r} / {method!r}; known:\n{PAPER_NUMBERS.to_string()}")
    return float(rows["accuracy_percent"].iloc[0])


# ---------------------------------------------------------------------------------- workshops
def firing_rate_table(currents: Sequence[float], leaks: Sequence[float], threshold: float,
                      resets: Sequence[str] = ("soft",), num_steps: int = 100) -> pd.DataFrame:
    """Spikes per step of one LIF neuron (bntt_core.teaching.lif_trace) driven by each constant current,
    for every leak and reset: columns current, leak, reset, rate."""
    from bntt_core.teaching import lif_firing_rate, lif_trace

    rows = []
    for reset in resets:
        for leak in leaks:
            for current in currents:
                trace = lif_trace(np.full(int(num_steps), float(current)), leak=float(leak),
                                  threshold=float(threshold), reset=reset)
                rows.append({"current": float(current), "leak": float(leak), "reset": reset,
                             "rate": lif_firing_rate(trace)})
    return pd.DataFrame(rows)


def firing_rate_figure(rates: pd.DataFrame):
    """The f–I curves of `firing_rate_table`: spikes per step against the constant input current, a
    colour per leak and a dash per reset, in the package's figure style."""
    import plotly.graph_objects as go

    from bntt_core import viz

    fig = go.Figure()
    leaks = sorted(rates["leak"].unique())
    colors = viz.layer_colors([f"λ = {leak:g}" for leak in leaks])
    for reset, dash in zip(sorted(rates["reset"].unique(), reverse=True), ("solid", "dash", "dot"), strict=False):
        for leak in leaks:
            part = rates[(rates["reset"] == reset) & (rates["leak"] == leak)].sort_values("current")
            name = f"λ = {leak:g}"
            fig.add_trace(go.Scatter(x=part["current"], y=part["rate"], mode="lines", name=f"{name}, {reset} reset",
                                     line=dict(color=colors[name], dash=dash, width=2.5),
                                     hovertemplate=f"{name}, {reset} reset<br>I = %{{x:.3g}}<br>"
                                                   "%{y:.2f} spikes per step<extra></extra>"))
    fig.update_xaxes(title_text="constant input current I")
    fig.update_yaxes(title_text="firing rate (spikes per step)", rangemode="tozero")
    fig.update_layout(template=viz.TEMPLATE, title_text="LIF firing rate vs input current (f–I curve)",
                      legend_title_text="leak, reset")
    return fig


def example_digit(index: int = 0) -> dict:
    """Test digit `index` of the embedded mnist10k: {"pixels": [28, 28] in [0, 1], "label", "mean", "std"};
    a drawn 7 (bntt_core.teaching.synthetic_digit) with MNIST's usual statistics when the data is absent."""
    from bntt_core import data, teaching

    try:
        _, test_set, info = data.load_data("mnist10k")
    except data.DataError as error:
        print(f"mnist10k not found ({str(error).splitlines()[0]}); using a drawn digit instead")
        return {"pixels": teaching.synthetic_digit(), "label": 7, "mean": teaching.MNIST_MEAN, "std": teaching.MNIST_STD}
    pixels = data.to_pixels(test_set.images[index])[0].numpy()  # [1, 28, 28] uint8 → [28, 28] in [0, 1]
    return {"pixels": pixels, "label": int(test_set.labels[index]), "mean": float(info.mean[0]),
            "std": float(info.std[0])}


def run_test_set(run) -> tuple:
    """(test ImageSet, DataInfo) of a loaded run (bntt_core.runs.Run): the split and subset it was
    evaluated on. A data_dir recorded on another machine that does not exist here is ignored."""
    import dataclasses

    from bntt_core.runs import training

    values = dict(run.config.get("train") or {})
    known = {field.name for field in dataclasses.fields(training.TrainConfig)}
    config = training.TrainConfig.from_dict({k: v for k, v in values.items() if k in known})
    data_values = run.config["data"]
    data_dir = data_values.get("data_dir")
    if data_dir and not Path(data_dir).exists():
        data_dir = None
    config = config.replace(dataset=data_values.get("dataset", config.dataset), data_dir=data_dir,
                            split_seed=int(data_values.get("split_seed", config.split_seed)))
    _, test_set, info = training.load_datasets(config)
    return test_set, info


def example_input(run, index: int = 0):
    """Test image `index` of a loaded run, normalised as its model reads it: [1, C, H, W]."""
    from bntt_core.teaching import test_example

    test_set, info = run_test_set(run)
    return test_example(test_set, info, index)["model_input"]


def test_pixels(run, count: int, seed: int = 0):
    """(uint8 pixels [N, C, H, W], labels [N]) of `count` class-balanced test images of a loaded run."""
    test_set, _ = run_test_set(run)
    chosen = test_set.subset(int(count), seed=seed)
    return chosen.images, chosen.labels


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
