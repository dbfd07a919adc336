"""The checkpoint: everything `resume` needs to continue a run, written atomically after every epoch to
RUN/checkpoint.pt and read with the safe loader only (torch.load(weights_only=True)).

    write_checkpoint(run_dir, config, model, optimizer, epoch, metrics)
    state = load_checkpoint_file(run_dir / CHECKPOINT_FILE)   # ResumeError for foreign or damaged files
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bntt_core.runs.config import ResumeError, TrainConfig
from bntt_core.runs.files import atomic_torch_save
from bntt_core.runs.run_dir import CHECKPOINT_FILE, RUN_FORMAT

CHECKPOINT_FORMAT = "bntt-checkpoint/1"


REFUSED_CHECKPOINT = "not a bntt checkpoint, or made by something else: it was not loaded"


def load_checkpoint_file(path: str | os.PathLike) -> Any:
    """torch.load with the safe loader (weights_only=True) and nothing else: the one place the project
    reads a pickle-based file. A file the safe loader refuses is a ResumeError of our own words
    (REFUSED_CHECKPOINT), never torch's advice to turn the safe loader off; a damaged one names the file."""
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # what the safe loader raises for objects outside its allow-list
        raise ResumeError(f"{path}: {REFUSED_CHECKPOINT}") from None  # from None: no torch text in a traceback
    except Exception as exc:  # truncated or foreign files raise a zoo of types; name the file
        detail = str(exc).splitlines()[0] if str(exc) else ""
        if "weights_only" in str(exc) or "weights only" in str(exc).lower():
            raise ResumeError(f"{path}: {REFUSED_CHECKPOINT}") from None
        raise ResumeError(f"{path} is damaged or not a bntt checkpoint ({type(exc).__name__}: {detail})") from None


def write_checkpoint(run_dir: Path, config: TrainConfig, model: nn.Module, optimizer: torch.optim.Optimizer,
                     epoch: int, metrics: list[dict]) -> None:
    """Everything resume needs, loadable with weights_only=True (tensors, numbers, strings, containers).
    The learning rate is a pure function of the epoch (lr_at_epoch), so the schedule's state is `epoch`;
    the shuffle/augment/Poisson generators are re-derived from (seed, epoch, rank) each epoch. (Checkpoints
    written before this note also hold a "scheduler" entry that nothing read; resume ignores it.)"""
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    atomic_torch_save(run_dir / CHECKPOINT_FILE, {
        "format": CHECKPOINT_FORMAT,
        "run_format": RUN_FORMAT,  # the meaning of the norm names in "config" (upgrade_settings)
        "epoch": epoch,
        "config": config.to_dict(),
        "model": {name: tensor.detach().to("cpu") for name, tensor in model.state_dict().items()},
        "optimizer": _state_to_cpu(optimizer.state_dict()),
        "rng": rng,
        "metrics": [dict(row) for row in metrics],
    })


def _state_to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    if isinstance(value, dict):
        return {key: _state_to_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_state_to_cpu(item) for item in value]
    return value


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Put a loaded optimizer state on the model's device (the step counts stay where torch keeps them)."""
    for per_param in optimizer.state.values():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor) and key != "step":
                per_param[key] = value.to(device)
