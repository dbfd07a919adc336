"""Training a BNTT network into a run directory (`bntt train`), and resuming one (`bntt train --resume`).

Every batch goes through `bntt_core.nn.step.train_step` (the one optimisation step the benchmarks and
tests measure). The test accuracy is measured on the FULL test set (no drop_last) with a seeded
Poisson generator, after every epoch; the run's weights are the final epoch's (no model selection on
test data). A checkpoint is written atomically after every epoch, so a run killed at any moment
(kill -9 included) resumes with `resume(run)` and reaches bit-identical weights on CPU: every random
stream (shuffling, augmentation, Poisson spikes) is derived from (seed, epoch, rank), not carried over.

    from bntt_core.runs.training import TrainConfig, train, resume, evaluate_run
    result = train(TrainConfig.from_preset("quickstart"), "runs/first")   # TrainResult
    result = resume("runs/first")                                        # after a crash
    print(evaluate_run("runs/first", steps=3))                           # accuracy at T and at 3 steps

The pieces live beside it: config.py (TrainConfig, its checks, the schedule and seeds), splits.py (the
train / validation / test images of a run), recipe.py (the auto recipe), evaluation.py (accuracy by
step, evaluate_run), distributed.py (torchrun's processes: the batch size stays the global one, split
evenly over the processes, and rank 0 alone writes the run and evaluates). Their public names are
importable from here too, as before the split.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from bntt_core.analysis import gamma_history
from bntt_core.nn.models import ModelSpec, model_from_spec
from bntt_core.nn.step import resolve_precision, train_step
from bntt_core.runs.checkpoint import (  # noqa: F401
    CHECKPOINT_FORMAT,
    REFUSED_CHECKPOINT,
    load_checkpoint_file,
    move_optimizer_state,
    write_checkpoint,
)
from bntt_core.runs.config import (  # noqa: F401  (re-exported: `training.X` as before the split)
    DEVICES_HELP,
    ENCODING_ALIASES,
    LEGACY_TRAIN_DEFAULTS,
    OPTIMIZERS,
    ConfigError,
    ResumeError,
    RunExistsError,
    TrainConfig,
    TrainingDiverged,
    derive_seed,
    lr_at_epoch,
    spec_for,
    stored_train_values,
    torch_threads,
)
from bntt_core.runs.distributed import Cluster, join_cluster
from bntt_core.runs.evaluation import accuracy_by_step, evaluate_run, to_model_input  # noqa: F401
from bntt_core.runs.files import atomic_write_text
from bntt_core.runs.locks import run_lock
from bntt_core.runs.recipe import (  # noqa: F401
    AUTO_BATCH_RANGE,
    AUTO_RECIPE_SETTINGS,
    MIN_AUGMENT_SIZE,
    MIN_UPDATES_PER_EPOCH,
    adapt_recipe,
    auto_lr,
    first_epoch_warning,
)
from bntt_core.runs.run_dir import (
    CHECKPOINT_FILE,
    LOG_FILE,
    METRICS_COLUMNS,
    METRICS_FILE,
    WEIGHTS_FILE,
    data_section,
    info_to_dict,
    make_config,
    read_config,
    round_to_dtype,
    save_weights,
    upgrade_settings,
    write_config,
)
from bntt_core.runs.splits import (  # noqa: F401
    NoValidationSlice,
    Splits,
    load_datasets,
    load_splits,
    run_validation_set,
    split_validation,
    validation_seed,
)

PROGRESS_MODES = ("bar", "quiet", "none")
EXECUTION_SETTINGS = ("device", "threads")  # where a run executes; a resume may change them


# ------------------------------------------------------------------------------------ training
@dataclass
class TrainResult:
    path: Path
    test_accuracy: float
    epochs_done: int
    wall_seconds: float


class _Reporter:
    """Progress (tqdm bar / one line per epoch / silent) and the append-only RUN/train.log."""

    def __init__(self, run_dir: Path | None, mode: str):
        self.log_path = run_dir / LOG_FILE if run_dir is not None else None
        self.mode = mode

    def log(self, message: str, *, echo: bool = True) -> None:
        if self.log_path is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            with open(self.log_path, "a", encoding="utf-8") as handle:
                handle.write(f"{stamp} {message}\n")
        if echo and self.mode != "none":
            self.write(message)

    def write(self, message: str) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            tqdm.write(message, file=sys.stderr)
        else:
            print(message, flush=True)

    def bar(self, total: int, description: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=description, unit="batch", leave=False, dynamic_ncols=True,
                    disable=self.mode != "bar", file=sys.stderr)


def _check_new_run_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RunExistsError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(not child.name.startswith(".") for child in out.iterdir()):
        raise RunExistsError(f"{out} already exists and is not empty; nothing was changed. Resume it with "
                             f"`bntt train --resume {out}` or choose another --out")


def default_run_dir(config: TrainConfig, root: str | os.PathLike = "runs") -> Path:
    name = config.preset or f"{config.arch}-{config.dataset}"
    return Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(config: TrainConfig, out: str | os.PathLike | None = None, *, progress: str = "bar",
          auto: Collection[str] = ()) -> TrainResult:
    """Train a new run into `out` (refused if it exists and is not empty; None: runs/<name>-<time>).

    auto: settings the caller did not choose (`bntt train` without --preset passes every one of
    AUTO_RECIPE_SETTINGS whose flag was not given): on an image-folder dataset `adapt_recipe` sets them
    to fit the data and records why in config.auto_recipe; the built-in datasets keep their recipes.
    The run directory is locked (run_lock) for the whole training: one writer per run."""
    if progress not in PROGRESS_MODES:
        raise ValueError(f"progress must be one of {PROGRESS_MODES}")
    config = TrainConfig.from_dict(config.to_dict())  # a copy: normalises aliases and tuples
    config.validate()
    with torch_threads(config.threads), contextlib.ExitStack() as held:
        cluster = join_cluster(config.device)
        try:
            out_dir = cluster.share(lambda: _resolve_new_out(config, out))
            splits = load_splits(config)
            train_set, test_set, info = splits.train, splits.test, splits.info
            config = adapt_recipe(config, info, len(train_set), auto)
            config = config.replace(precision_used=resolve_precision(config.precision, cluster.device))
            spec = spec_for(config, info)
            stored_config = config.replace(data_dir=_absolute(config.data_dir))
            if cluster.is_main:
                _claim_run_dir(out_dir)
                held.enter_context(run_lock(out_dir, "training"))
                data = data_section(info, dataset=config.dataset, data_dir=stored_config.data_dir,
                                         split_seed=config.split_seed, num_train_images=len(train_set),
                                         num_test_images=len(test_set), validation=splits.validation_record)
                write_config(out_dir, make_config(kind="trained", spec=spec, data=data,
                                                            train=stored_config.to_dict(),
                                                            weights_dtype=config.weights_dtype,
                                                            distributed=cluster.describe()))
            cluster.barrier()
            return _fit(out_dir, stored_config, spec, info, train_set, test_set, cluster, progress, state=None)
        finally:
            cluster.close()


def _claim_run_dir(out_dir: Path) -> None:
    """Create the run directory; if it appeared meanwhile with content, refuse (never write into it)."""
    try:
        out_dir.mkdir(parents=True)
    except FileExistsError:
        _check_new_run_dir(out_dir)


def _resolve_new_out(config: TrainConfig, out: str | os.PathLike | None) -> Path:
    out_dir = Path(out) if out is not None else default_run_dir(config)
    _check_new_run_dir(out_dir)
    return out_dir


def _absolute(path: str | None) -> str | None:
    return str(Path(path).expanduser().resolve()) if path else None


def resume(run_path: str | os.PathLike, *, device: str | None = None, threads: int | None = None,
           progress: str = "bar", expect: dict | None = None) -> TrainResult:
    """Continue a run from its checkpoint with its stored config (optionally on another `device` or
    with other `threads`; either can change the last bits of the result).

    `expect`: settings the caller asked for (e.g. flags given with --resume); a ResumeError if any
    differs from the stored config, since a resumed run must be the run that was started.
    The run directory is locked for the whole resume (run_lock): a second writer is refused.
    """
    with run_lock(run_path, "training (resumed)"):
        return _resume_locked(run_path, device=device, threads=threads, progress=progress, expect=expect)


def _resume_locked(run_path: str | os.PathLike, *, device: str | None, threads: int | None, progress: str,
                   expect: dict | None) -> TrainResult:
    run_dir = Path(run_path)
    config_json = read_config(run_dir)
    if config_json["kind"] != "trained":
        raise ResumeError(f"{run_dir} is a {config_json['kind']} run; only trained runs can be resumed")
    try:
        config = TrainConfig.from_dict(stored_train_values(config_json.get("train")))
    except (TypeError, ValueError) as exc:
        raise ResumeError(f"{run_dir}/config.json has an unreadable train section: {exc}") from exc
    for key, wanted in (expect or {}).items():
        stored = getattr(config, key, None)
        if key == "lr_milestones" and wanted is not None:
            wanted = tuple(wanted)
        if key == "data_dir":
            wanted = _absolute(wanted)
        if key == "encoding":
            wanted = ENCODING_ALIASES.get(wanted, wanted)
        if wanted != stored:
            raise ResumeError(f"--resume continues {run_dir} with its stored settings, but {key} = {wanted!r} "
                              f"was given and the run has {stored!r}; start a new run (--out) to change it")
    if device is not None:
        config = config.replace(device=device)
    if threads is not None:
        config = config.replace(threads=threads)
    config.validate()
    checkpoint_path = run_dir / CHECKPOINT_FILE
    result = config_json.get("result")
    if not checkpoint_path.is_file() and result and (run_dir / WEIGHTS_FILE).is_file():
        return TrainResult(run_dir, float(result["test_accuracy"]), int(result["epochs_done"]),
                           float(result["wall_seconds"]))
    with torch_threads(config.threads):
        cluster = join_cluster(config.device)
        try:
            splits = load_splits(config)
            train_set, test_set, info = splits.train, splits.test, splits.info
            stored_validation = (config_json.get("data") or {}).get("validation")
            if stored_validation and stored_validation.get("num_images") != splits.validation_record["num_images"]:
                raise ResumeError(f"the validation slice of {run_dir} rebuilt with {splits.validation_record['num_images']} "
                                  f"images, not the {stored_validation.get('num_images')} recorded; the dataset "
                                  f"changed and the run cannot be resumed")
            spec = spec_for(config, info)
            if spec.to_dict() != config_json["model"]:
                raise ResumeError(f"{run_dir}/config.json: the model section does not match its train section "
                                  f"on this dataset; the run cannot be resumed as it stands")
            stored_info = config_json["data"]
            for key, value in info_to_dict(info).items():
                if key in stored_info and stored_info[key] != value and key not in ("source",):
                    raise ResumeError(f"the dataset changed since {run_dir} started ({key}: now {value!r}, "
                                      f"stored {stored_info[key]!r}); the run cannot be resumed")
            state = _read_checkpoint(checkpoint_path, config) if checkpoint_path.is_file() else None
            return _fit(run_dir, config, spec, info, train_set, test_set, cluster, progress, state=state)
        finally:
            cluster.close()


# ------------------------------------------------------------------------------------ checkpoints




def _read_checkpoint(path: Path, config: TrainConfig) -> dict:
    state = load_checkpoint_file(path)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ResumeError(f"{path} is not a bntt checkpoint")
    # a checkpoint without "run_format" predates bntt-run/2: its norm names are /1's
    stored = stored_train_values(upgrade_settings(state.get("config"), state.get("run_format", "bntt-run/1")))
    current = config.to_dict()
    differing = sorted(key for key in set(stored) | set(current)
                       if key not in EXECUTION_SETTINGS and stored.get(key) != current.get(key))
    if differing:
        details = ", ".join(f"{key}: checkpoint {stored.get(key)!r} vs config.json {current.get(key)!r}"
                            for key in differing[:4])
        raise ResumeError(f"config.json does not match {path.name} ({details}); the run cannot be resumed")
    return state


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


# ------------------------------------------------------------------------------------ the epoch loop
def _fit(run_dir: Path, config: TrainConfig, spec: ModelSpec, info, train_set, test_set, cluster: Cluster,
         progress: str, state: dict | None) -> TrainResult:
    """The epoch loop shared by train() and resume(); `state` is a checkpoint (None: from scratch)."""
    from bntt_core import data

    device = cluster.device
    reporter = _Reporter(run_dir if cluster.is_main else None, progress if cluster.is_main else "none")
    torch.manual_seed(derive_seed(config.seed, "init"))
    model = model_from_spec(spec)
    optimizer = _make_optimizer(config, model)
    metrics: list[dict] = []
    start_epoch = 0
    if state is not None:
        try:
            model.load_state_dict(state["model"], strict=True)
            optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ResumeError(f"{run_dir / CHECKPOINT_FILE} does not match the model in config.json: "
                              f"{str(exc).splitlines()[0]}") from exc
        start_epoch = int(state["epoch"])
        metrics = [dict(row) for row in state["metrics"]]
        torch.set_rng_state(state["rng"]["torch"])
        cuda_states = state["rng"].get("cuda")
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        reporter.log(f"resumed {run_dir} after epoch {start_epoch} of {config.epochs}")
    else:
        reporter.log(f"training {run_dir}: {spec.arch} ×{spec.width} {'SNN' if spec.spiking else 'ANN'} "
                     f"norm={spec.norm} T={spec.num_steps} on {config.dataset} ({len(train_set)} train / "
                     f"{len(test_set)} test images; {config.validation_fraction:g} of the training images "
                     f"held out for the early-exit τ), {config.epochs} epochs, device {device}, "
                     f"{cluster.world_size} process(es)")
        if config.auto_recipe:  # once, at the start: what was chosen for the user and why
            reporter.log("recipe adapted to this data (settings you did not give; give a flag to override): "
                         + "; ".join(f"{name} {reason}" for name, reason in config.auto_recipe.items()))
    model.to(device)
    move_optimizer_state(optimizer, device)
    trained_model: nn.Module = model
    if cluster.distributed:
        trained_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    rank_batch = max(1, config.batch_size // cluster.world_size)
    if config.batch_size % cluster.world_size:
        reporter.log(f"batch size {config.batch_size} is not a multiple of {cluster.world_size} processes; "
                     f"each takes {rank_batch}")
    test_seed = derive_seed(config.seed, "test")
    augment = config.augment and info.augment != "none"  # info.augment: "crop-flip" | "crop" | "none"
    shuffle_seed = derive_seed(config.seed, "shuffle")

    if state is None and cluster.is_main:  # epoch-0 checkpoint: a "last good" state always exists
        write_checkpoint(run_dir, config, model, optimizer, 0, metrics)
    if cluster.is_main:  # γ at initialisation, or at the checkpoint resumed from (if the file missed it)
        _record_gamma(run_dir, model, start_epoch, keep_through=start_epoch)
    cluster.barrier()

    for epoch in range(start_epoch, config.epochs):
        lr = lr_at_epoch(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loader = data.make_loader(train_set, rank_batch, shuffle=True, seed=shuffle_seed,
                                  distributed=cluster.distributed)
        data.set_epoch(loader, epoch)  # the order of epoch e depends on (seed, e) only: resumable
        augment_generator = (torch.Generator(device=device).manual_seed(
            derive_seed(config.seed, "augment", epoch, cluster.rank)) if augment else None)
        poisson_generator = torch.Generator(device=device).manual_seed(
            derive_seed(config.seed, "poisson", epoch, cluster.rank))
        started = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        with reporter.bar(len(loader), f"epoch {epoch + 1}/{config.epochs}") as bar:
            for batch_index, (images, labels) in enumerate(loader):
                x = to_model_input(images, info, device, augment_generator,  # [B, C, H, W] or [T, B, C, H, W]
                                   crop_padding=config.crop_padding)
                labels = labels.to(device, non_blocking=True)  # [B]
                stats: dict = {}
                loss = train_step(trained_model, optimizer, x, labels, generator=poisson_generator,
                                  precision=config.precision_used or config.precision, stats=stats)
                if not cluster.all_true(math.isfinite(loss)):
                    message = (f"loss became {loss} at epoch {epoch + 1}, batch {batch_index + 1}; training "
                               f"stopped. The last good checkpoint (after epoch {epoch}) is kept in "
                               f"{run_dir / CHECKPOINT_FILE}; no weights were written. Resuming would "
                               f"diverge again: start a new run with a lower --lr (this one: {config.lr:g})")
                    reporter.log(f"error: {message}", echo=False)
                    raise TrainingDiverged(message)
                batch = labels.shape[0]
                loss_sum += loss * batch
                correct += stats["correct"]
                seen += batch
                elapsed = time.perf_counter() - started
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{100 * correct / seen:.1f}%",
                                img_s=f"{seen * cluster.world_size / max(elapsed, 1e-9):.0f}")
        train_seconds = time.perf_counter() - started
        loss_sum, correct, seen = cluster.sum([loss_sum, float(correct), float(seen)])
        test_acc = cluster.share(lambda: accuracy_by_step(model, test_set, info, seed=test_seed,
                                                          batch_size=config.eval_batch_size,
                                                          precision=config.precision_used or config.precision,
                                                          device=device)[-1])
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / seen, "train_acc": correct / seen,
               "test_acc": test_acc, "seconds": time.perf_counter() - started,
               "images_per_s": seen / max(train_seconds, 1e-9)}
        metrics.append(row)
        if cluster.is_main:
            write_checkpoint(run_dir, config, model, optimizer, epoch + 1, metrics)
            _write_metrics(run_dir, metrics)
            _record_gamma(run_dir, model, epoch + 1)
            reporter.log(f"epoch {epoch + 1}/{config.epochs} lr {lr:.3g} loss {row['train_loss']:.4f} "
                         f"train {100 * row['train_acc']:.2f}% test {100 * test_acc:.2f}% "
                         f"{row['seconds']:.1f}s {row['images_per_s']:.0f} img/s")
            if epoch == 0:
                warning = first_epoch_warning(config, info, row["train_loss"], len(train_set))
                if warning:
                    reporter.log(warning)
        cluster.barrier()

    return cluster.share(lambda: _finish(run_dir, config, model, info, test_set, metrics, reporter))


def _finish(run_dir: Path, config: TrainConfig, model: nn.Module, info, test_set, metrics: list[dict],
            reporter: _Reporter) -> TrainResult:
    """Final weights (rounded to weights_dtype and measured as stored), result in config.json, and the
    checkpoint removed. Safe to repeat: a kill in here leaves the final checkpoint to finish from."""
    if config.weights_dtype != "float32" or not metrics:
        round_to_dtype(model, config.weights_dtype)
        test_acc = accuracy_by_step(model, test_set, info, seed=derive_seed(config.seed, "test"),
                                    batch_size=config.eval_batch_size,
                                    precision=config.precision_used or config.precision)[-1]
    else:
        test_acc = metrics[-1]["test_acc"]
    save_weights(model, run_dir / WEIGHTS_FILE, config.weights_dtype)
    _write_metrics(run_dir, metrics)
    _record_gamma(run_dir, model, len(metrics))  # the last epoch as stored (rounded to weights_dtype)
    wall = float(sum(row["seconds"] for row in metrics))
    config_json = read_config(run_dir)
    config_json["result"] = {"test_accuracy": float(test_acc), "epochs_done": len(metrics), "wall_seconds": wall,
                             "num_test_images": len(test_set)}
    config_json["weights"] = {"file": WEIGHTS_FILE, "dtype": config.weights_dtype}
    write_config(run_dir, config_json)
    (run_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    reporter.log(f"done: test accuracy {100 * test_acc:.2f}% on {len(test_set)} images after {len(metrics)} "
                 f"epochs ({wall:.0f} s); weights in {run_dir / WEIGHTS_FILE}")
    return TrainResult(run_dir, float(test_acc), len(metrics), wall)








def _record_gamma(run_dir: Path, model: nn.Module, epoch: int, *, keep_through: int | None = None) -> None:
    """Put γ after `epoch` into RUN/gamma_history.csv (BNTT networks only). `keep_through`: on (re)start,
    drop rows of later epochs (a run killed after writing them re-trains those epochs) and keep an existing
    row of `epoch` (it was written from the same weights). A damaged file is started anew: training does
    not depend on it."""
    if not gamma_history.has_bntt(model):
        return
    path = run_dir / gamma_history.GAMMA_HISTORY_FILE
    try:
        history = gamma_history.read_gamma_history(run_dir)
    except ValueError:
        history = None
    if history is not None and keep_through is not None:
        history = history[history["epoch"] <= keep_through]
        if (history["epoch"] == epoch).any():
            atomic_write_text(path, history.to_csv(index=False))
            return
    history = gamma_history.merge_epoch(history, gamma_history.gamma_summary(model, epoch))
    atomic_write_text(path, history.to_csv(index=False))


def _write_metrics(run_dir: Path, metrics: list[dict]) -> None:
    frame = pd.DataFrame(metrics, columns=list(METRICS_COLUMNS))
    atomic_write_text(run_dir / METRICS_FILE, frame.to_csv(index=False))
