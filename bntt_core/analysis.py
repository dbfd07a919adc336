"""The analysis of a run: every table of bntt_core/tables.py, written to RUN/analysis/ (`bntt analyze RUN`).

    tables = analyze_run("runs/first")                 # full: the run's whole test set (its subset, if any)
    tables = analyze_run("runs/first", quick=True)     # 256 fixed test images, fewer σ / ε (tests, CI)
    tables = read_analysis("runs/first")               # {name: DataFrame}; StaleAnalysisError if stale

What one analysis does (SPEC "Figures", "Early exit"; issue 5):
  * ONE clean recording pass (bntt_core.recording) gives accuracy_by_step, spike_activity,
    spike_rate, bn_input, bn_input_hist, energy, and — from the stored per-step outputs, without
    more inference — the whole early_exit curve and our dynamic_exit curve.
  * gamma / gamma_mean are read from the weights (BNTT runs; other norms: tables with no rows).
  * early_exit only for BNTT runs; otherwise an empty table whose meta says why ("skipped").
  * noise: one pass per σ; fgsm: one gradient pass + one pass per ε (bntt_core.robustness). Not for
    event data (no clean pixels); fgsm is left out of converted runs unless asked for by name (Fig 8B
    compares ANN, surrogate BP and BNTT; BPTT through hundreds of steps buys nothing there).
  * ANN runs: accuracy_by_step (one row, t = 1: a single forward), noise, fgsm, energy (MACs).

The test images are the run's own test set as training evaluated it (bntt_core.training.load_datasets,
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

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from bntt_core import early_exit as exits
from bntt_core import energy, recording, robustness
from bntt_core.models import ANNNet, SpikingNet
from bntt_core.tables import TABLES

QUICK_IMAGES = 256
FULL_SIGMAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
QUICK_SIGMAS = (0.0, 0.2, 0.5)
FULL_EPSILONS = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255, 32 / 255, 64 / 255)
QUICK_EPSILONS = (0.0, 8 / 255, 32 / 255)
WEIGHTS_ONLY = ("gamma", "gamma_mean")  # read off the weights: no test images needed
RECORDED = ("accuracy_by_step", "spike_activity", "spike_rate", "bn_input", "bn_input_hist", "energy",
            "early_exit", "dynamic_exit")

NOTES = {
    "accuracy_by_step": "prediction = argmax of the output accumulated up to step t (÷ t); ANN: one row, t = 1",
    "spike_activity": "mean spikes per neuron of the layer at step t (over the analysed images)",
    "spike_rate": "total spikes of the layer over all T steps ÷ its neurons, per image",
    "bn_input": "mean/std of the norm layer's input (the synaptic current) per step over all analysed values; "
                "running_mean: norm=bn only, the mean over channels of the single stored running mean",
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
    "dynamic_exit": "OURS, not the paper's: each image stops at the first t whose accumulated output has max "
                    "softmax probability ≥ confidence (else at T); mean_exit_step over the images",
    "noise": "Gaussian noise N(0, σ²) added to the clean [0, 1] pixels, clipped to [0, 1], then normalised; the "
             "same noise draw (scaled) and the same Poisson draws for every σ",
    "fgsm": "x_adv = clip(x + ε·sign(∇_x L), 0, 1) in pixel space, gradient once per image (model in eval mode); "
            "SNN: BPTT through the surrogate, straight through the Poisson encoder (∂s_t/∂x = 1/rescale); "
            "ANN: plain FGSM",
    "energy": "see convention",
}


class StaleAnalysisError(ValueError):
    """Analysis tables made for another model (config.json model section or weights changed)."""


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
        if self.event:
            mean = torch.tensor(self.mean).view(-1, 1, 1)
            std = torch.tensor(self.std).view(-1, 1, 1)
            return (self.pixels.float() - mean.to(self.pixels.device)) / std.to(self.pixels.device)
        return robustness.Normalizer(self.mean, self.std)(robustness.to_unit(self.pixels))


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
                  precision: str | None = None,
                  progress: Callable[[float, str], None] | None = None) -> AnalysisResult:
    """Compute the requested tables for a model on `data` (no files involved).

    `skip` names tables not to compute, with the reason (recorded as such). Tables that do not apply
    to the model come back empty, with the reason in `skipped`. `data` may be None when every table
    asked for is in WEIGHTS_ONLY.
    """
    names = _check_tables(tables)
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
                     "early_exit", "dynamic_exit"):
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
        rec = recording.record(model, images, labels, seed=seed, batch_size=batch_size, precision=precision,
                               progress=stage)
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
    elif not spiking and any(name in ("accuracy_by_step", "energy") for name in todo):
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
        done[0] += 1
    if spiking:
        for name in ("gamma", "gamma_mean"):
            if name in todo:
                gamma = exits.gamma_table(model)
                result.tables[name] = gamma if name == "gamma" else exits.gamma_mean_table(gamma)
    if "noise" in todo:
        start = time.perf_counter()
        result.tables["noise"] = robustness.noise_accuracy(model, data.pixels, labels, sigmas, mean=data.mean,
                                                           std=data.std, seed=seed, batch_size=batch_size,
                                                           precision=precision, progress=stage)
        result.seconds["noise"] = time.perf_counter() - start
        result.notes["noise"] = {"sigmas": [float(s) for s in sigmas], "seconds": round(result.seconds["noise"], 3)}
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


# -------------------------------------------------------------------------------- run directories
def model_hash(run_path: str | os.PathLike) -> str:
    """sha256 of config.json's model section and the weights file: what the analysis was made from."""
    from bntt_core import runs

    config = runs.read_config(run_path)
    digest = hashlib.sha256(json.dumps(config["model"], sort_keys=True).encode())
    weights = Path(run_path) / config["weights"].get("file", runs.WEIGHTS_FILE)
    if not weights.is_file():
        raise runs.WeightsError(f"weights file {weights} is missing")
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run_train_config(run, data_dir: str | None):
    """The TrainConfig the run was trained with, pointed at `data_dir` when given."""
    from bntt_core import training

    train_values = dict(run.config.get("train") or {})
    data_values = run.config["data"]
    config = training.TrainConfig.from_dict(
        {k: v for k, v in train_values.items() if k in training.TrainConfig.__dataclass_fields__})
    return config.replace(dataset=data_values.get("dataset", config.dataset),
                          data_dir=data_dir if data_dir is not None else data_values.get("data_dir"),
                          split_seed=int(data_values.get("split_seed", config.split_seed)))


def _run_settings(config) -> dict:
    return {"train_seed": config.seed, "eval_batch_size": config.eval_batch_size, "precision": config.precision}


def _run_test_data(run, *, data_dir: str | None, quick: bool, subset: int | None) -> tuple[AnalysisData, dict]:
    """The run's test set as training evaluated it, then the quick / subset selection."""
    from bntt_core import training

    config = _run_train_config(run, data_dir)
    _, test_set, info = training.load_datasets(config)
    full = len(test_set)
    limit = subset if subset is not None else QUICK_IMAGES if quick else None
    if limit is not None:
        if int(limit) < 1:
            raise ValueError(f"subset must be ≥ 1 image; got {limit}")
        if int(limit) < full:
            test_set = test_set.subset(int(limit), seed=0)
    description = (f"{len(test_set)} of the run's {full} test images" +
                   (" (class-balanced fixed subset, ImageSet.subset(n, seed=0))" if len(test_set) < full else ""))
    analysis_data = AnalysisData(pixels=test_set.images, labels=test_set.labels, mean=tuple(info.mean),
                                 std=tuple(info.std), event=bool(getattr(info, "event", False)),
                                 description=description)
    return analysis_data, _run_settings(config)


def analyze_run(path: str | os.PathLike, *, quick: bool = False, tables: Iterable[str] | None = None,
                progress: Callable[[float, str], None] | None = None, subset: int | None = None,
                seed: int | None = None, batch_size: int | None = None, device: str | None = None,
                data_dir: str | None = None) -> dict[str, pd.DataFrame]:
    """Compute and write the analysis tables of the run at `path`; returns {name: DataFrame} written.

    quick: QUICK_IMAGES fixed test images and fewer σ/ε. subset: that many test images instead.
    seed: Poisson/noise seed (default: the seed training evaluated with). batch_size: default the run's
    eval_batch_size (the Poisson draws depend on it). A run without weights, or whose weights do not
    fit its config.json, is a ValueError (bntt_core.runs.RunError).
    """
    from bntt_core import runs, training

    names = _check_tables(tables)
    report = progress or (lambda fraction, message: None)
    torch_device = torch.device(device) if device else torch.device("cpu")
    report(0.0, "loading the run")
    run = runs.load_run(path, device=torch_device)
    if all(name in WEIGHTS_ONLY for name in names):  # γ alone: no dataset to find, nothing to evaluate
        data, settings = None, _run_settings(_run_train_config(run, data_dir))
    else:
        data, settings = _run_test_data(run, data_dir=data_dir, quick=quick, subset=subset)
    seed = training.derive_seed(settings["train_seed"], "test") if seed is None else int(seed)
    batch_size = int(batch_size or settings["eval_batch_size"])
    skip = {}
    if run.kind == "converted" and "fgsm" in names and tables is None:
        skip["fgsm"] = ("converted run: Fig 8B compares ANN, surrogate BP and BNTT; ask for it by name "
                        "(tables=['fgsm']) to compute it anyway")
    created = runs.now_iso()
    result = analyze_model(run.model, data, tables=names, seed=seed, batch_size=batch_size,
                           sigmas=QUICK_SIGMAS if quick else FULL_SIGMAS,
                           epsilons=QUICK_EPSILONS if quick else FULL_EPSILONS, skip=skip,
                           precision=settings["precision"], progress=lambda f, m: report(0.05 + 0.9 * f, m))
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


@dataclass
class AnalysisStatus:
    """What RUN/analysis holds: tables present, missing, stale (made for another model), skipped."""

    present: list[str]
    missing: list[str]
    stale: list[str]
    skipped: dict[str, str]
    meta: dict

    @property
    def ok(self) -> bool:
        return not self.stale


def analysis_status(path: str | os.PathLike) -> AnalysisStatus:
    """Compare every table's model_hash with the run's current config/weights (never loads the model)."""
    from bntt_core import runs

    meta = runs.read_meta(path)
    present = [name for name in TABLES if (runs.analysis_dir(path) / f"{name}.csv").is_file()]
    current = model_hash(path)
    stale = [name for name in present if (meta.get(name) or {}).get("model_hash") != current]
    skipped = {name: meta[name]["skipped"] for name in present if (meta.get(name) or {}).get("skipped")}
    return AnalysisStatus(present=present, missing=[name for name in TABLES if name not in present], stale=stale,
                          skipped=skipped, meta=meta)


def read_analysis(path: str | os.PathLike, *, check: bool = True) -> dict[str, pd.DataFrame]:
    """{name: DataFrame} of every analysis table present ({} if none). With check (default), tables made
    for another model config or other weights raise StaleAnalysisError (re-run `bntt analyze RUN`)."""
    from bntt_core import runs

    status = analysis_status(path)
    if check and status.stale:
        made_for = {(status.meta.get(name) or {}).get("model_hash") for name in status.stale}
        raise StaleAnalysisError(
            f"the analysis of {path} is stale: {', '.join(status.stale)} were made for another model "
            f"(model hash {', '.join(sorted(str(h)[:12] for h in made_for))}; the run is now "
            f"{model_hash(path)[:12]}: its config.json model section or weights changed). "
            f"Re-run: bntt analyze {path}")
    return {name: runs.read_table(path, name) for name in status.present}
