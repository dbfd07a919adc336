"""The analysis of a run: every table of bntt_core/analysis/tables.py, written to RUN/analysis/ (`bntt analyze RUN`).

    tables = analyze_run("runs/first")                 # full: the run's whole test set (its subset, if any)
    tables = analyze_run("runs/first", quick=True)     # 256 fixed test images, fewer σ / ε (tests, CI)
    tables = read_analysis("runs/first")               # {name: DataFrame}; StaleAnalysisError if stale

What one analysis does (SPEC "Figures", "Early exit"; issue 5):
  * ONE clean recording pass (bntt_core.analysis.recording) gives accuracy_by_step, spike_activity,
    spike_rate, bn_input, bn_input_hist, energy, and — from the stored per-step outputs, without
    more inference — the whole early_exit curve and our dynamic_exit curve.
  * gamma / gamma_mean are read from the weights (BNTT runs; other norms: tables with no rows).
  * early_exit only for BNTT runs; otherwise an empty table whose meta says why ("skipped").
  * early_exit_summary (issue 15): the paper's τ = 0.1, and the τ chosen on the run's held-out validation
    slice (one more pass, over those images: `validation_accuracy_by_step`) applied to the test set; runs
    without BNTT γ get plain truncation at the exit steps of the analysed BNTT runs beside them
    (`exit_sources`). Asked for alone on a run with a current accuracy_by_step, it is derived without a
    test pass (`write_early_exit_summary`: how the shipped runs got theirs).
  * noise: one pass per σ and noise mode (default DEFAULT_NOISE_MODES: the paper's unclipped noise and
    the clipped noise the shipped tables were computed with, one `mode` column); fgsm: one gradient pass + one pass per ε (bntt_core.analysis.robustness). Not for
    event data (no clean pixels); fgsm is left out of converted runs unless asked for by name (Fig 8B
    compares ANN, surrogate BP and BNTT; BPTT through hundreds of steps buys nothing there).
  * ANN runs: accuracy_by_step (one row, t = 1: a single forward), noise, fgsm, energy (MACs),
    standard_metrics (one more forward, with hooks on the connection layers and the ReLUs).
  * standard_metrics (NeuroBench's footprint, connection and activation sparsity, synaptic operations;
    bntt_core.analysis.standard_metrics, docs/METRICS.md): from the same recording pass. Asked for alone on a
    Poisson-coded spiking run with current energy and spike_rate tables and no zero weight, it is derived
    from them without a test pass (`write_standard_metrics`: how the shipped runs can get theirs).

The test images are the run's own test set as training evaluated it (bntt_core.runs.training.load_datasets,
its subset if it used one), the Poisson seed is the one training evaluated with (derive_seed(seed,
"test")) and the batch size its eval_batch_size, so accuracy_by_step at t = T on the full analysis is
the run's reported test accuracy. quick / subset = n take a fixed, class-balanced subset
(ImageSet.subset(n, seed=0)).

Every table's entry in analysis/meta.json records: run, run_path, model_hash (sha256 of config.json's
model section + the weights file; a different hash means the table is STALE), images, subset, seed,
batch_size, quick, created, bntt_core version, and per table notes (energy convention, histogram
subsample, exit rules). A table that does not apply is written with no rows and meta "skipped": why,
so that it is not reported as missing again.

Run the tests: .venv/bin/python -m pytest tests/test_analysis.py -q
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from bntt_core.analysis import early_exit as exits
from bntt_core.analysis import energy, recording, robustness, standard_metrics
from bntt_core.analysis.exit_inputs import ExitInputs, early_exit_summary_table, exit_inputs_for_run
from bntt_core.analysis.settings import (
    DEFAULT_NOISE_MODES,
    FULL_EPSILONS,
    FULL_SIGMAS,
    QUICK_EPSILONS,
    QUICK_SIGMAS,
    RECORDED,
    WEIGHTS_ONLY,
    check_noise_modes,
    choose_images,
    run_settings,
)
from bntt_core.analysis.stored import current_table, model_hash
from bntt_core.analysis.tables import TABLES
from bntt_core.nn.models import ANNNet, SpikingNet
from bntt_core.nn.step import autocast, run_precision
from bntt_core.runs.locks import holds_run_lock
from bntt_core.runs.splits import run_train_config

NOTES = {
    "accuracy_by_step": "prediction = argmax of the output accumulated up to step t (÷ t); ANN: one row, t = 1",
    "spike_activity": "mean spikes per neuron of the layer at step t (over the analysed images)",
    "spike_rate": "total spikes of the layer over all T steps ÷ its neurons, per image",
    "bn_input": "mean/std of the norm layer's input (the synaptic current) per step over all analysed values; "
                "running_mean: norm=bn, bn-joint, tdbn or tebn only, the mean over channels of the single stored running mean",
    "bn_input_hist": f"histogram of the norm input per step (every step up to T = {recording.HIST_MAX_STEPS}, else "
                     f"{recording.HIST_MAX_STEPS} evenly spaced steps) of the first ceil(B/{recording.HIST_SUBSAMPLE}) "
                     f"images of every batch, range fixed per layer from the first batch's subsample (min..max widened "
                     f"by {int(recording.HIST_MARGIN * 100)}%); values outside: bn_input.hist_below/hist_above",
    "gamma": "BNTT γ per layer, step and channel (from the weights)",
    "gamma_mean": "mean of BNTT γ over channels per layer and step",
    "early_exit": "the paper's rule (SPEC): exit_step = smallest t ≥ 1 with mean γ(l, t') < threshold for every "
                  "layer l and every t' > t; accuracy from the output accumulated up to exit_step, taken from "
                  "the stored per-step outputs of one pass; grid: 201 evenly spaced thresholds in "
                  "[0, 1.05·max γ mean] plus one just above every distinct max-over-layers value",
    "early_exit_summary": "SPEC 'Early exit' without the test set: rule paper = τ 0.1; rule validation = the τ of "
                          "the earliest exit step losing ≤ 1 point of accuracy (vs all T steps) on the run's "
                          "held-out validation slice (bntt_core.runs.training.run_validation_set), then applied to the "
                          "test set (unavailable, with the reason, for runs without a slice: never chosen on the "
                          "test set); rule truncation (runs without BNTT γ) = this run's test accuracy at the exit "
                          "steps of the analysed BNTT runs on the same dataset and T in the same folder",
    "dynamic_exit": "OURS, not the paper's: each image stops at the first t whose accumulated output has max "
                    "softmax probability ≥ confidence (else at T); mean_exit_step over the images",
    "noise": "Gaussian noise N(0, σ²) (σ in pixel units) added to the clean [0, 1] pixels, then normalised; "
             "column mode: unclipped (the paper's: not clipped), clipped (to [0, 1]) or shift (x + σ, no noise); "
             "the same noise draw (scaled) and the same Poisson draws for every σ and mode",
    "fgsm": "x_adv = clip(x + ε·sign(∇_x L), 0, 1) in pixel space, gradient once per image (model in eval mode); "
            "SNN: BPTT through the surrogate, straight through the Poisson encoder (∂s_t/∂x = 1/rescale); "
            "ANN: plain FGSM",
    "energy": "see convention",
    "standard_metrics": "NeuroBench's footprint, connection sparsity, activation sparsity and synaptic operations "
                        "(Dense, Effective_MACs, Effective_ACs) per sample over one inference of T steps; spikes "
                        "through an average pool counted as ACs (NeuroBench: MACs of the pooled values); see "
                        "convention, synops_by_layer and docs/METRICS.md",
}


@dataclass
class AnalysisData:
    """What the analysis runs on: clean pixels and labels, with the dataset's normalisation."""

    pixels: torch.Tensor  # uint8 [N, C, H, W] (or float in [0, 1]); event data: float frames [N, T, C, H, W]
    labels: torch.Tensor  # int64 [N]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    event: bool = False
    description: str = ""

    def normalised(self) -> torch.Tensor:
        """What the model reads: (pixels − mean)/std (event frames: of the counts), same layout."""
        from bntt_core.data.pixels import normalize_channels

        pixels = self.pixels.float() if self.event else robustness.to_unit(self.pixels)  # float32
        return normalize_channels(pixels, self.mean, self.std)


@dataclass
class AnalysisResult:
    """Tables computed by analyze_model (including empty ones) and, for those skipped, why."""

    tables: dict[str, pd.DataFrame]
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, dict] = field(default_factory=dict)  # extra per-table meta
    seconds: dict[str, float] = field(default_factory=dict)


def _check_tables(tables: Iterable[str] | None) -> list[str]:
    if tables is None:
        return list(TABLES)
    names = [str(name) for name in tables]
    unknown = sorted(set(names) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown analysis tables {unknown}; known: {sorted(TABLES)}")
    if not names:
        raise ValueError("no analysis tables requested")
    return [name for name in TABLES if name in names]  # canonical order


def _empty(name: str) -> pd.DataFrame:
    return pd.DataFrame(columns=list(TABLES[name]))


def analyze_model(model: nn.Module, data: AnalysisData | None, *, tables: Iterable[str] | None = None, seed: int = 0,
                  batch_size: int | None = None, sigmas: Sequence[float] = FULL_SIGMAS,
                  epsilons: Sequence[float] = FULL_EPSILONS, skip: dict[str, str] | None = None,
                  precision: str | None = None, noise_modes: Sequence[str] = DEFAULT_NOISE_MODES,
                  progress: Callable[[float, str], None] | None = None,
                  exit_inputs: ExitInputs | None = None) -> AnalysisResult:
    """Compute the requested tables for a model on `data` (no files involved).

    `skip` names tables not to compute, with the reason (recorded as such). Tables that do not apply
    to the model come back empty, with the reason in `skipped`. `data` may be None when every table
    asked for is in WEIGHTS_ONLY.
    """
    names = _check_tables(tables)
    noise_modes = check_noise_modes(noise_modes)
    skipped = dict(skip or {})
    result = AnalysisResult(tables={}, skipped={})
    report = progress or (lambda fraction, message: None)
    spiking = isinstance(model, SpikingNet)
    if not spiking and not isinstance(model, ANNNet):
        raise ValueError(f"analysis needs a SpikingNet or ANNNet; got {type(model).__name__}")
    if any(name not in WEIGHTS_ONLY for name in names) and (data is None or data.labels.shape[0] == 0):
        raise ValueError("no images to analyse")
    if not spiking:
        for name in ("spike_activity", "spike_rate", "bn_input", "bn_input_hist", "gamma", "gamma_mean",
                     "early_exit", "dynamic_exit", "early_exit_summary"):
            skipped.setdefault(name, "ANN: no time steps, spikes or BNTT γ")
    has_bntt = spiking and model.spec.norm == "bntt"
    if spiking and not has_bntt:
        for name in ("gamma", "gamma_mean"):
            skipped.setdefault(name, f"norm={model.spec.norm}: no BNTT γ (no rows)")
        skipped.setdefault("early_exit", f"norm={model.spec.norm}: the paper's exit rule needs BNTT γ")
    if data is not None and data.event:
        for name in ("noise", "fgsm"):
            skipped.setdefault(name, "event data: no clean pixels to perturb")
    todo = [name for name in names if name not in skipped]
    for name in names:
        if name in skipped:
            result.tables[name], result.skipped[name] = _empty(name), skipped[name]
    device = next(model.parameters()).device
    labels = data.labels.to(device) if data is not None else None
    images = data.normalised().to(device) if any(name in RECORDED for name in todo) or not spiking else None
    stages = (1 if any(name in RECORDED for name in todo) else 0) + ("noise" in todo) + ("fgsm" in todo)
    done = [0]

    def stage(fraction: float, message: str) -> None:
        report(min(1.0, (done[0] + fraction) / max(1, stages)), message)

    if spiking and any(name in RECORDED for name in todo):
        start = time.perf_counter()
        # per-channel spike totals only where a layer has zero weights (none in a trained dense network)
        channel_maps = standard_metrics.channel_maps_needed(model) if "standard_metrics" in todo else ()
        rec = recording.record(model, images, labels, seed=seed, batch_size=batch_size, precision=precision,
                               channel_maps=channel_maps, progress=stage)
        result.seconds["recording"] = time.perf_counter() - start
        done[0] += 1
        gamma = exits.gamma_table(model)
        gamma_mean = exits.gamma_mean_table(gamma)
        built = {
            "accuracy_by_step": rec.accuracy_by_step,
            "spike_activity": rec.spike_activity,
            "spike_rate": rec.spike_rate,
            "bn_input": lambda: rec.bn_input(model),
            "bn_input_hist": rec.bn_input_hist,
            "energy": lambda: energy.snn_energy_table(model, rec, analog_input=data.event),
            "early_exit": lambda: exits.early_exit_curve(rec.correct_by_step, gamma_mean),
            "dynamic_exit": lambda: exits.dynamic_exit_curve(rec.predictions, rec.confidence, rec.labels),
            "early_exit_summary": lambda: early_exit_summary_table(model, rec.accuracy_by_step(), exit_inputs),
            "standard_metrics": lambda: _standard_metrics(result, standard_metrics.snn_synops(model, rec),
                                                          lambda by_layer: standard_metrics.snn_metrics_table(
                                                              model, rec, by_layer=by_layer)),
        }
        for name in todo:
            if name in built:
                result.tables[name] = built[name]()
        if "early_exit" in todo:
            curve = result.tables["early_exit"]
            result.notes["early_exit"] = {
                "exit_step_at_0.1": exits.exit_step_from_gamma_mean(gamma_mean, 0.1),
                "thresholds": int(len(curve)),
            }
        result.notes["accuracy_by_step"] = {"recording_seconds": round(result.seconds["recording"], 3)}
        result.notes["bn_input_hist"] = {"hist_values_per_step": {name: layer.hist_values
                                                                  for name, layer in rec.layers.items()}}
    elif not spiking and any(name in ("accuracy_by_step", "energy", "standard_metrics") for name in todo):
        if "accuracy_by_step" in todo:
            start = time.perf_counter()
            accuracy = robustness.evaluate_accuracy(model, images, labels, seed=seed, batch_size=batch_size,
                                                    precision=precision)
            result.seconds["recording"] = time.perf_counter() - start
            correct = round(accuracy * labels.shape[0])
            result.tables["accuracy_by_step"] = pd.DataFrame({"t": [1], "accuracy": [accuracy], "correct": [correct],
                                                              "n": [labels.shape[0]]})
        if "energy" in todo:
            result.tables["energy"] = energy.ann_energy_table(model)
        if "standard_metrics" in todo:  # one more forward (1/T of a spiking pass): ReLU outputs, non-zero inputs
            by_layer, nonzero, outputs, units = standard_metrics.ann_counts(
                model, images, batch_size=batch_size or recording.MAX_BATCH, context=lambda: autocast(device, precision))
            result.tables["standard_metrics"] = _standard_metrics(
                result, by_layer, lambda rows: standard_metrics.metrics_row(
                    model, rows, nonzero_outputs=nonzero, outputs=outputs, neurons=units, num_steps=1,
                    images=labels.shape[0]))
        done[0] += 1
    if spiking:
        for name in ("gamma", "gamma_mean"):
            if name in todo:
                gamma = exits.gamma_table(model)
                result.tables[name] = gamma if name == "gamma" else exits.gamma_mean_table(gamma)
    if "noise" in todo:
        start = time.perf_counter()
        curves = []
        for index, mode in enumerate(noise_modes):
            def mode_stage(fraction: float, message: str, index=index) -> None:
                stage((index + fraction) / len(noise_modes), message)

            curves.append(robustness.noise_accuracy(model, data.pixels, labels, sigmas, mean=data.mean,
                                                    std=data.std, seed=seed, batch_size=batch_size,
                                                    precision=precision, mode=mode, progress=mode_stage))
        result.tables["noise"] = pd.concat(curves, ignore_index=True)
        result.seconds["noise"] = time.perf_counter() - start
        result.notes["noise"] = {"sigmas": [float(s) for s in sigmas], "modes": list(noise_modes),
                                 "seconds": round(result.seconds["noise"], 3)}
        done[0] += 1
    if "fgsm" in todo:
        start = time.perf_counter()
        result.tables["fgsm"] = robustness.fgsm_accuracy(model, data.pixels, labels, epsilons, mean=data.mean,
                                                         std=data.std, seed=seed, batch_size=batch_size,
                                                         precision=precision, progress=stage)
        result.seconds["fgsm"] = time.perf_counter() - start
        result.notes["fgsm"] = {"epsilons": [float(e) for e in epsilons], "seconds": round(result.seconds["fgsm"], 3),
                                "attack": "SNN-crafted (BPTT + straight-through Poisson)" if spiking else "plain FGSM"}
        done[0] += 1
    if "energy" in names and "energy" not in result.skipped:
        result.notes["energy"] = {"convention": energy.CONVENTION,
                                  "total_energy_pj": float(result.tables["energy"]["energy_pj"].sum()),
                                  "total_ann_energy_pj": float(result.tables["energy"]["ann_energy_pj"].sum())}
    result.skipped = {name: reason for name, reason in result.skipped.items() if name in names}
    report(1.0, "analysis computed")
    return result


def _standard_metrics(result: AnalysisResult, by_layer: pd.DataFrame,
                      row: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """The standard_metrics row, `row(by_layer)`; the convention and the per-layer counts go into its meta."""
    result.notes["standard_metrics"] = {"convention": standard_metrics.CONVENTION,
                                        "synops_by_layer": by_layer.to_dict("records")}
    return row(by_layer)


def standard_metrics_derivable(path: str | os.PathLike, model: nn.Module) -> str | None:
    """None when the run's standard_metrics can be derived from its current energy and spike_rate tables
    (no test pass: `write_standard_metrics`), else why not."""
    if not isinstance(model, SpikingNet):
        return "an ANN has no spike_rate table: its ReLU outputs are counted in a forward pass"
    missing = [name for name in ("energy", "spike_rate") if current_table(Path(path), name) is None]
    if missing:
        return f"no current {' and '.join(missing)} table"
    try:
        standard_metrics.synops_from_energy(model, current_table(Path(path), "energy"))
    except ValueError as reason:
        return str(reason)
    return None


def write_standard_metrics(path: str | os.PathLike, *, device: str | None = None) -> pd.DataFrame:
    """standard_metrics from the run's CURRENT energy and spike_rate tables and its weights, without a test
    pass (a Poisson-coded spiking run without zero weights: `standard_metrics.metrics_from_tables`); what
    `bntt analyze RUN --tables standard_metrics` does for a run analysed before the table existed. The meta's
    images / subset / seed are those of the energy table it was derived from."""
    from bntt_core import runs

    run = runs.load_run(path, device=torch.device(device) if device else torch.device("cpu"))
    reason = standard_metrics_derivable(path, run.model)
    if reason is not None:
        raise ValueError(f"standard_metrics of {path} cannot be derived without a test pass: {reason}; "
                         f"run bntt analyze {path} --tables standard_metrics,energy,spike_rate")
    energy_table = current_table(Path(path), "energy")
    spike_rate = current_table(Path(path), "spike_rate")
    meta_energy = runs.read_meta(path).get("energy") or {}
    images = int(meta_energy.get("images") or 0)
    by_layer = standard_metrics.synops_from_energy(run.model, energy_table)
    table = standard_metrics.metrics_from_tables(run.model, energy_table, spike_rate, images=images)
    meta = {key: meta_energy.get(key) for key in ("images", "subset", "seed", "batch_size", "quick", "device")}
    meta.update({"run": Path(path).name, "run_path": str(Path(path).resolve()), "kind": run.kind,
                 "model_hash": model_hash(path), "created": runs.now_iso(), "note": NOTES["standard_metrics"],
                 "derived_from": "energy and spike_rate (no test pass)", "convention": standard_metrics.CONVENTION,
                 "synops_by_layer": by_layer.to_dict("records")})
    runs.write_table(path, "standard_metrics", table, meta)
    return table


def write_early_exit_summary(path: str | os.PathLike, *, data_dir: str | None = None, quick: bool = False,
                             device: str | None = None) -> pd.DataFrame:
    """early_exit_summary from the run's CURRENT accuracy_by_step (and the weights' γ), without a test pass:
    what `bntt analyze RUN --tables early_exit_summary` does when that table is there (the shipped runs).
    The meta's images / subset / seed are those of the accuracy_by_step it was derived from."""
    from bntt_core import runs

    by_step = current_table(Path(path), "accuracy_by_step")
    if by_step is None:
        raise ValueError(f"{path} has no current accuracy_by_step table to derive early_exit_summary from; "
                         f"run bntt analyze {path} --tables accuracy_by_step,early_exit_summary")
    run = runs.load_run(path, device=torch.device(device) if device else torch.device("cpu"))
    meta_by_step = runs.read_meta(path).get("accuracy_by_step") or {}
    if not isinstance(run.model, SpikingNet):
        table, skipped = _empty("early_exit_summary"), "ANN: no time steps, spikes or BNTT γ"
        inputs = ExitInputs()
    else:
        settings = run_settings(run_train_config(run, data_dir=data_dir))
        inputs = exit_inputs_for_run(path, run.model, data_dir=data_dir, quick=quick,
                                     batch_size=meta_by_step.get("batch_size") or settings["eval_batch_size"],
                                     precision=run_precision({"precision": settings["precision"]}, device or "cpu"))
        table, skipped = early_exit_summary_table(run.model, by_step, inputs), None
    meta = {key: meta_by_step.get(key) for key in ("images", "subset", "seed", "batch_size", "quick", "device")}
    meta.update({"run": Path(path).name, "run_path": str(Path(path).resolve()), "kind": run.kind,
                 "model_hash": model_hash(path), "created": runs.now_iso(), "note": NOTES["early_exit_summary"],
                 "derived_from": "accuracy_by_step (no test pass)", **inputs.notes()})
    if skipped:
        meta["skipped"] = skipped
    runs.write_table(path, "early_exit_summary", table, meta)
    return table


def _run_test_data(run, *, data_dir: str | None, quick: bool, subset: int | None) -> tuple[AnalysisData, dict]:
    """The run's test set as training evaluated it, then the quick / subset selection."""
    from bntt_core.runs.splits import run_test_set

    config = run_train_config(run, data_dir=data_dir)
    test_set, info = run_test_set(run, data_dir=data_dir)
    full = len(test_set)
    test_set = choose_images(test_set, quick=quick, subset=subset)
    description = (f"{len(test_set)} of the run's {full} test images" +
                   (" (class-balanced fixed subset, ImageSet.subset(n, seed=0))" if len(test_set) < full else ""))
    analysis_data = AnalysisData(pixels=test_set.images, labels=test_set.labels, mean=tuple(info.mean),
                                 std=tuple(info.std), event=bool(getattr(info, "event", False)),
                                 description=description)
    return analysis_data, run_settings(config)


@holds_run_lock("analysis")  # one writer per run directory: a second `bntt analyze` (or a training) is refused
def analyze_run(path: str | os.PathLike, *, quick: bool = False, tables: Iterable[str] | None = None,
                progress: Callable[[float, str], None] | None = None, subset: int | None = None,
                seed: int | None = None, batch_size: int | None = None, device: str | None = None,
                data_dir: str | None = None, precision: str | None = None,
                noise_modes: Sequence[str] | str = DEFAULT_NOISE_MODES) -> dict[str, pd.DataFrame]:
    """Compute and write the analysis tables of the run at `path`; returns {name: DataFrame} written.

    quick: QUICK_IMAGES fixed test images and fewer σ/ε. subset: that many test images instead.
    seed: Poisson/noise seed (default: the seed training evaluated with). batch_size: default the run's
    eval_batch_size (the Poisson draws depend on it). precision: default the run's own where this device
    computes it natively, else fp32 (`bntt_core.nn.step.run_precision`). noise_modes: the noise table's modes
    (DEFAULT_NOISE_MODES; bntt_core.analysis.robustness.NOISE_MODES). A run without weights, or whose weights do not
    fit its config.json, is a ValueError (bntt_core.runs.RunError).
    """
    from bntt_core import runs
    from bntt_core.runs import training

    names = _check_tables(tables)
    noise_modes = check_noise_modes(noise_modes)
    report = progress or (lambda fraction, message: None)
    torch_device = torch.device(device) if device else torch.device("cpu")
    report(0.0, "loading the run")
    if names == ["early_exit_summary"] and subset is None and seed is None and batch_size is None \
            and current_table(Path(path), "accuracy_by_step") is not None:  # derived: no test pass
        table = write_early_exit_summary(path, data_dir=data_dir, quick=quick, device=device)
        report(1.0, "analysis written (1 table)")
        return {"early_exit_summary": table}
    run = runs.load_run(path, device=torch_device)
    if names == ["standard_metrics"] and subset is None and seed is None and batch_size is None \
            and standard_metrics_derivable(path, run.model) is None:  # derived from energy + spike_rate: no pass
        table = write_standard_metrics(path, device=device)
        report(1.0, "analysis written (1 table)")
        return {"standard_metrics": table}
    if all(name in WEIGHTS_ONLY for name in names):  # γ alone: no dataset to find, nothing to evaluate
        data, settings = None, run_settings(run_train_config(run, data_dir=data_dir))
    else:
        data, settings = _run_test_data(run, data_dir=data_dir, quick=quick, subset=subset)
    seed = training.derive_seed(settings["train_seed"], "test") if seed is None else int(seed)
    batch_size = int(batch_size or settings["eval_batch_size"])
    settings["precision"] = run_precision({"precision": settings["precision"]}, torch_device, precision)
    skip = {}
    if run.kind == "converted" and "fgsm" in names and tables is None:
        skip["fgsm"] = ("converted run: Fig 8B compares ANN, surrogate BP and BNTT; ask for it by name "
                        "(tables=['fgsm']) to compute it anyway")
    created = runs.now_iso()
    exit_inputs = None
    if "early_exit_summary" in names and isinstance(run.model, SpikingNet):  # the validation pass, if any
        report(0.02, "early exit: the held-out validation slice")
        exit_inputs = exit_inputs_for_run(path, run.model, data_dir=data_dir, quick=quick, batch_size=batch_size,
                                          precision=settings["precision"], subset=subset)
    result = analyze_model(run.model, data, tables=names, seed=seed, batch_size=batch_size,
                           sigmas=QUICK_SIGMAS if quick else FULL_SIGMAS,
                           epsilons=QUICK_EPSILONS if quick else FULL_EPSILONS, skip=skip,
                           precision=settings["precision"], noise_modes=noise_modes, progress=lambda f, m: report(0.05 + 0.9 * f, m),
                           exit_inputs=exit_inputs)
    if exit_inputs is not None and "early_exit_summary" not in result.skipped:
        result.notes["early_exit_summary"] = exit_inputs.notes()
    common = {
        "run": Path(path).name,
        "run_path": str(Path(path).resolve()),
        "kind": run.kind,
        "model_hash": model_hash(path),
        "images": 0 if data is None else int(data.labels.shape[0]),
        "subset": "none: read from the weights" if data is None else data.description,
        "seed": seed,
        "batch_size": batch_size,
        "quick": bool(quick),
        "created": created,
        "device": str(torch_device),
    }
    written = {}
    for name in names:
        meta = {**common, "note": NOTES[name], **result.notes.get(name, {})}
        if name in result.skipped:
            meta["skipped"] = result.skipped[name]
        runs.write_table(path, name, result.tables[name], meta)
        written[name] = result.tables[name]
    report(1.0, f"analysis written ({len(written)} tables)")
    return written


