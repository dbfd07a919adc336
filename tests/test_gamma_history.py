"""γ through training (bntt_core/analysis/gamma_history.py and the table `bntt train` writes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_TRAINING

from bntt_core.analysis import early_exit, gamma_history
from bntt_core.nn.models import ModelSpec, model_from_spec
from bntt_core.runs import load_run
from bntt_core.runs.training import TrainConfig, resume, train

BNTT_TINY = {**TINY_TRAINING, "norm": "bntt", "num_steps": 3, "epochs": 2}


def _model_with_gamma(make_values):
    """An mlp BNTT net whose first layer's γ [T, C] is make_values(T, C) (other layers keep γ = 1)."""
    model = model_from_spec(ModelSpec(arch="mlp", in_channels=1, image_size=28, num_classes=10, num_steps=3,
                                      width=0.05, norm="bntt"))
    first, norm = next(iter(model.norm_layers().items()))
    values = make_values(*norm.weight.shape)
    with torch.no_grad():
        norm.weight.copy_(values)
    return model, first, values


def test_summary_holds_the_exact_statistics_and_histogram_of_every_step() -> None:
    generator = torch.Generator().manual_seed(0)

    def make(steps, channels):
        values = torch.rand(steps, channels, generator=generator) * 1.2 - 0.1  # [T, C] within the bin grid
        values[2, 0] = 5.0  # beyond the grid: counted in the last bin, max still exact
        return values

    model, first, values = _model_with_gamma(make)
    channels = values.shape[1]
    rows = gamma_history.gamma_summary(model, epoch=4)
    assert list(rows.columns) == list(gamma_history.COLUMNS)
    mine = rows[rows["layer"] == first].sort_values("t")
    expected = values.double().numpy()
    np.testing.assert_allclose(mine["mean"], expected.mean(1))
    np.testing.assert_allclose(mine["std"], expected.std(1))
    np.testing.assert_allclose(mine["min"], expected.min(1))
    np.testing.assert_allclose(mine["max"], expected.max(1))
    np.testing.assert_allclose(mine["q50"], np.median(expected, 1))
    assert (rows["epoch"] == 4).all() and (mine["channels"] == channels).all()
    for t in (1, 2, 3):
        left, counts = gamma_history.histogram_at(rows, epoch=4, layer=first, t=t)
        assert counts.sum() == channels
        inside = expected[t - 1][expected[t - 1] < left[-1] + gamma_history.BIN_WIDTH]
        manual, _ = np.histogram(inside, bins=np.append(left, left[-1] + gamma_history.BIN_WIDTH))
        if t < 3:
            np.testing.assert_array_equal(counts, manual)
    assert counts[-1] >= 1  # the 5.0


def test_a_network_without_bntt_has_no_rows() -> None:
    model = model_from_spec(ModelSpec(arch="mlp", in_channels=1, image_size=28, num_classes=10, num_steps=2,
                                      width=0.05, norm="bn"))
    assert not gamma_history.has_bntt(model)
    assert gamma_history.gamma_summary(model, 0).empty


def test_training_writes_every_epoch_and_the_last_matches_the_stored_weights(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(TrainConfig.from_dict(BNTT_TINY), out, progress="none")
    history = gamma_history.read_gamma_history(out)
    assert gamma_history.epochs(history) == [0, 1, 2]
    assert (history[history["epoch"] == 0]["mean"] == 1.0).all()  # γ starts at 1
    run = load_run(out)
    stored = early_exit.gamma_mean_table(early_exit.gamma_table(run.model))
    last = gamma_history.gamma_mean_at(history, 2)
    pd.testing.assert_frame_equal(last.reset_index(drop=True), stored.reset_index(drop=True), check_dtype=False)
    exits = gamma_history.exit_step_by_epoch(history, 0.1)
    assert exits["epoch"].tolist() == [0, 1, 2] and (exits["num_steps"] == 3).all()
    assert exits["exit_step"].iloc[0] == 3  # γ = 1 everywhere: τ = 0.1 never lets go


def test_a_run_without_bntt_writes_no_history(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(TrainConfig.from_dict({**BNTT_TINY, "norm": "none", "epochs": 1}), out, progress="none")
    assert gamma_history.read_gamma_history(out) is None


def test_a_resumed_run_keeps_one_row_per_epoch(tmp_path: Path, monkeypatch) -> None:
    from bntt_core.runs import training

    real_step = training.train_step
    calls = {"n": 0}

    def crash_in_epoch_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # 256 images / 64 = 4 steps an epoch
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(training, "train_step", crash_in_epoch_two)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig.from_dict(BNTT_TINY), out, progress="none")
    monkeypatch.setattr(training, "train_step", real_step)
    assert gamma_history.epochs(gamma_history.read_gamma_history(out)) == [0, 1]
    # as if killed after writing a row for an epoch the checkpoint does not have
    history = gamma_history.read_gamma_history(out)
    ahead = history[history["epoch"] == 1].assign(epoch=2, mean=-9.0)
    pd.concat([history, ahead]).to_csv(out / gamma_history.GAMMA_HISTORY_FILE, index=False)
    resume(out, progress="none")
    history = gamma_history.read_gamma_history(out)
    assert gamma_history.epochs(history) == [0, 1, 2]
    assert len(history) == 3 * len(history[history["epoch"] == 0])
    assert (history["mean"] > -9.0).all()


def test_a_damaged_history_is_one_clear_error_and_training_starts_it_anew(tmp_path: Path) -> None:
    (tmp_path / gamma_history.GAMMA_HISTORY_FILE).write_text("epoch,layer\n1,conv1\n")
    with pytest.raises(ValueError, match="not a γ-history table"):
        gamma_history.read_gamma_history(tmp_path)
    assert gamma_history.read_gamma_history(tmp_path / "elsewhere") is None


def test_asking_for_what_the_history_lacks_names_what_it_has() -> None:
    model, first, _ = _model_with_gamma(lambda steps, channels: torch.full((steps, channels), 0.5))
    rows = gamma_history.gamma_summary(model, epoch=0)
    with pytest.raises(ValueError, match=r"no epoch 7; it holds epochs \[0\]"):
        gamma_history.gamma_mean_at(rows, 7)
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        gamma_history.histogram_at(rows, epoch=0, layer="conv9", t=1)
    merged = gamma_history.merge_epoch(rows, rows.assign(mean=0.25))
    assert len(merged) == len(rows) and (merged["mean"] == 0.25).all()
