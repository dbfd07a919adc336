"""Early exit without the test set, for a stored run: the validation pass that chooses τ (BNTT runs with a
held-out slice) and the truncation sources (runs without BNTT γ: the analysed BNTT runs beside them), and the
early_exit_summary table made from them (the rules themselves: bntt_core.analysis.early_exit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from torch import nn

from bntt_core.analysis import early_exit as exits
from bntt_core.analysis.settings import choose_images
from bntt_core.analysis.stored import current_table
from bntt_core.nn.step import run_precision
from bntt_core.runs import run_dir as runs
from bntt_core.runs.config import derive_seed, stored_train_values
from bntt_core.runs.evaluation import accuracy_by_step
from bntt_core.runs.splits import NoValidationSlice, run_validation_set


@dataclass
class ExitInputs:
    """What early_exit_summary needs besides the test pass: per-step accuracy on the run's held-out
    validation slice (None: unavailable, `validation_reason` says why) and, for runs without BNTT γ, the
    early_exit_summary tables of the BNTT runs whose exit steps the truncation baseline uses."""

    validation_by_step: list[float] | None = None
    validation_reason: str | None = None
    validation_images: int = 0
    sources: dict[str, pd.DataFrame] = field(default_factory=dict)
    no_source_reason: str | None = None
    run: str = ""  # the run's name, written as source_run of its own rows

    def notes(self) -> dict:
        return {"validation_images": int(self.validation_images),
                "validation": "available" if self.validation_by_step is not None else self.validation_reason,
                "paper_threshold": exits.PAPER_THRESHOLD, "max_validation_loss": exits.MAX_VALIDATION_LOSS,
                "truncation_sources": sorted(self.sources)}


def early_exit_summary_table(model: nn.Module, test_by_step: pd.DataFrame,
                             inputs: ExitInputs | None = None) -> pd.DataFrame:
    """early_exit_summary of a spiking model from its per-step test accuracy: paper and validation rows
    for BNTT (`bntt_core.analysis.early_exit.exit_summary`), truncation rows otherwise (`truncation_summary`)."""
    inputs = inputs or ExitInputs(validation_reason="analyze_model was given no validation slice")
    if getattr(model, "spec", None) is not None and model.spec.norm == "bntt":
        return exits.exit_summary(exits.gamma_mean_table(exits.gamma_table(model)), test_by_step,
                                  inputs.validation_by_step, validation_unavailable=inputs.validation_reason,
                                  validation_images=inputs.validation_images, run=inputs.run)
    return exits.truncation_summary(test_by_step, inputs.sources, no_source_reason=inputs.no_source_reason)


def validation_accuracy_by_step(run_path: str | os.PathLike, model: nn.Module, *, data_dir: str | None = None,
                                quick: bool = False, batch_size: int | None = None,
                                precision: str | None = None, seed: int | None = None,
                                subset: int | None = None) -> tuple[list[float], int]:
    """Per-step accuracy [T] of `model` on the run's held-out validation slice (`bntt_core.runs.splits.run_validation_set`;
    quick: its fixed class-balanced QUICK_IMAGES subset) and the number of images. NoValidationSlice when
    the run has none. Poisson seed: derive_seed(train seed, "validation") unless given."""
    validation, info = run_validation_set(run_path, data_dir=data_dir)
    validation = choose_images(validation, quick=quick, subset=subset)  # as for the test images
    config = runs.read_config(run_path)
    train = stored_train_values(config.get("train"))
    seed = derive_seed(int(train.get("seed", 0)), "validation") if seed is None else int(seed)
    by_step = accuracy_by_step(model, validation, info, seed=seed,
                                        batch_size=int(batch_size or train.get("eval_batch_size") or 256),
                                        precision=precision if precision is not None else run_precision(train))
    return by_step, len(validation)


def exit_sources(run_path: str | os.PathLike) -> tuple[dict[str, pd.DataFrame], str]:
    """The early_exit_summary tables of the BNTT runs beside `run_path` (same parent folder) on the same
    dataset and T, current and with rows: {run name: table}, and the reason to give when there is none."""
    path = Path(run_path).resolve()
    config = runs.read_config(path)
    dataset, steps = (config.get("data") or {}).get("dataset"), (config.get("model") or {}).get("num_steps")
    sources = {}
    for sibling in sorted(p for p in path.parent.iterdir() if p.is_dir() and p != path):
        try:
            other = runs.read_config(sibling)
        except (ValueError, OSError):
            continue
        model = other.get("model") or {}
        if (model.get("norm") != "bntt" or not model.get("spiking", True)
                or (other.get("data") or {}).get("dataset") != dataset or model.get("num_steps") != steps):
            continue
        table = current_table(sibling, "early_exit_summary")
        if table is not None:
            sources[sibling.name] = exits.summary_table(table)
    reason = (f"no analysed BNTT run on {dataset} with T = {steps} beside this run (in {path.parent.name}/) to take "
              f"the exit step from: analyse one there first, then this run again (the dashboard's Early exit "
              f"view and notebook 03 compare any runs live)")
    return sources, reason


def exit_inputs_for_run(run_path: str | os.PathLike, model: nn.Module, *, data_dir: str | None = None,
                        quick: bool = False, batch_size: int | None = None, precision: str | None = None,
                        seed: int | None = None, subset: int | None = None) -> ExitInputs:
    """ExitInputs of a run: the validation pass for a BNTT run with a slice (the reason otherwise), the
    truncation sources for a run without BNTT γ."""
    if getattr(model, "spec", None) is not None and model.spec.norm == "bntt":
        try:
            by_step, images = validation_accuracy_by_step(run_path, model, data_dir=data_dir, quick=quick,
                                                          batch_size=batch_size, precision=precision, seed=seed,
                                                          subset=subset)
        except NoValidationSlice as reason:
            return ExitInputs(validation_reason=str(reason), run=Path(run_path).name)
        return ExitInputs(validation_by_step=by_step, validation_images=images, run=Path(run_path).name)
    sources, reason = exit_sources(run_path)
    return ExitInputs(validation_reason="no BNTT γ: the γ rule does not apply", sources=sources,
                      no_source_reason=reason, run=Path(run_path).name)
