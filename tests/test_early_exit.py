"""Early exit: the paper's γ rule recomputed by hand, the curve from stored outputs, our dynamic exit.

Run: .venv/bin/python -m pytest tests/test_early_exit.py -q
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bntt_core import build_model
from bntt_core.analysis.early_exit import (
    dynamic_exit_curve,
    dynamic_exit_steps,
    early_exit_curve,
    exit_step_from_gamma_mean,
    exit_steps,
    gamma_mean_table,
    gamma_table,
    threshold_grid,
)
from bntt_core.analysis.recording import record
from bntt_core.nn.step import eval_logits

# two layers, T = 6; max over layers per step: 1.0, 0.8, 0.6, 0.4, 0.15, 0.02
GAMMA_A = [1.0, 0.8, 0.5, 0.2, 0.05, 0.01]
GAMMA_B = [0.1, 0.3, 0.6, 0.4, 0.15, 0.02]


def _gamma_mean(rows: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([(layer, t + 1, value) for layer, values in rows.items() for t, value in enumerate(values)],
                        columns=["layer", "t", "mean_gamma"])


def _spec_rule(gamma_mean: pd.DataFrame, threshold: float) -> int:
    """The SPEC sentence, literally: the smallest t such that g(l, t') < τ for every l and every t' > t."""
    steps = int(gamma_mean["t"].max())
    for t in range(1, steps + 1):
        later = gamma_mean[gamma_mean["t"] > t]
        if (later["mean_gamma"] < threshold).all():
            return t
    raise AssertionError("t = T always qualifies")


def test_exit_steps_by_hand():
    table = _gamma_mean({"conv1": GAMMA_A, "conv2": GAMMA_B})
    by_hand = {0.1: 5, 0.5: 3, 0.7: 2, 0.03: 5, 0.02: 6, 0.0: 6, 0.16: 4, 1.0: 1, 2.0: 1}
    for threshold, expected in by_hand.items():
        assert exit_step_from_gamma_mean(table, threshold) == expected, threshold
        assert _spec_rule(table, threshold) == expected


def test_exit_steps_match_the_spec_sentence_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(5):
        steps = int(rng.integers(2, 12))
        table = _gamma_mean({f"l{i}": rng.random(steps).round(2).tolist() for i in range(3)})
        grid = threshold_grid(table)
        got = exit_steps(table, grid)
        assert got.tolist() == [_spec_rule(table, float(tau)) for tau in grid]
        assert (np.diff(got) <= 0).all()  # a higher threshold never exits later


def test_threshold_grid_reaches_every_exit_step():
    table = _gamma_mean({"conv1": GAMMA_A, "conv2": GAMMA_B})
    grid = threshold_grid(table)
    assert len(grid) >= 201 and grid[0] == 0.0
    reachable = {_spec_rule(table, tau) for tau in np.linspace(0, 2, 4001)}
    assert set(exit_steps(table, grid).tolist()) == reachable == {1, 2, 3, 4, 5, 6}


def test_gamma_tables_from_a_bntt_model():
    model = build_model("vgg5", num_classes=3, in_channels=1, image_size=8, num_steps=5, width=0.0625)
    with torch.no_grad():
        for layer in model.layers:
            layer.norm.weight.copy_(torch.rand_like(layer.norm.weight))
    gamma = gamma_table(model)
    assert list(gamma.columns) == ["layer", "t", "channel", "gamma"]
    conv2 = model.layers[1].norm.weight.detach()  # [T, C]
    rows = gamma[gamma.layer == "conv2"].sort_values(["t", "channel"])
    assert np.allclose(rows["gamma"].to_numpy(), conv2.reshape(-1).double().numpy())
    mean = gamma_mean_table(gamma)
    assert list(mean.columns) == ["layer", "t", "mean_gamma"]
    got = mean[mean.layer == "conv2"].sort_values("t")["mean_gamma"].to_numpy()
    assert np.allclose(got, conv2.double().mean(1).numpy())
    assert set(mean.layer) == {"conv1", "conv2", "conv3", "fc1"} and len(mean) == 4 * 5


def test_no_bntt_no_gamma_and_a_clear_error():
    model = build_model("mlp", num_classes=3, in_channels=1, image_size=8, num_steps=4, norm="bn", width=0.05)
    gamma = gamma_table(model)
    assert gamma.empty and list(gamma.columns) == ["layer", "t", "channel", "gamma"]
    with pytest.raises(ValueError, match="BNTT"):
        exit_step_from_gamma_mean(gamma_mean_table(gamma), 0.1)
    with pytest.raises(ValueError, match="BNTT"):
        early_exit_curve(np.ones((4, 3), bool), gamma_mean_table(gamma), [0.1])


def test_curve_from_stored_correctness_and_bad_grids():
    table = _gamma_mean({"conv1": GAMMA_A, "conv2": GAMMA_B})
    rng = np.random.default_rng(1)
    correct = rng.random((6, 50)) < np.linspace(0.3, 0.9, 6)[:, None]  # [T, N]
    curve = early_exit_curve(correct, table, [0.0, 0.1, 0.5, 2.0])
    assert list(curve.columns[:4]) == ["threshold", "exit_step", "accuracy", "steps_saved"]
    assert curve["exit_step"].tolist() == [6, 5, 3, 1]
    assert curve["steps_saved"].tolist() == [0, 1, 3, 5]
    assert np.allclose(curve["accuracy"], [correct[t - 1].mean() for t in (6, 5, 3, 1)])
    with pytest.raises(ValueError, match="empty"):
        early_exit_curve(correct, table, [])
    with pytest.raises(ValueError, match="T = 6"):
        early_exit_curve(correct[:4], table, [0.1])
    with pytest.raises(ValueError, match="steps 1..T"):
        exit_steps(table[table.t != 3], [0.1])


def test_curve_equals_running_the_model_only_to_the_exit_step():
    torch.manual_seed(0)
    model = build_model("vgg5", num_classes=4, in_channels=1, image_size=8, num_steps=6, width=0.125).eval()
    with torch.no_grad():  # γ falling through time, as after BNTT training
        for layer in model.layers:
            layer.norm.weight.mul_(torch.linspace(2.0, 0.05, 6).unsqueeze(1))
    images, labels = torch.randn(48, 1, 8, 8), torch.randint(0, 4, (48,))
    # one batch: the same Poisson draws as below; fp32: bf16 convolutions of T·B vs k·B images may round apart
    rec = record(model, images, labels, seed=3, batch_size=48, precision="fp32")
    gamma_mean = gamma_mean_table(gamma_table(model))
    curve = early_exit_curve(rec.correct_by_step, gamma_mean)
    assert curve["exit_step"].nunique() > 2
    for exit_step, accuracy in curve.groupby("exit_step")["accuracy"].first().items():
        logits = eval_logits(model, images, num_steps=int(exit_step), generator=torch.Generator().manual_seed(3),
                             precision="fp32")
        assert accuracy == pytest.approx(float((logits.argmax(1) == labels).double().mean()))


def test_dynamic_exit_by_hand():
    # 3 samples, T = 4
    predictions = torch.tensor([[0, 1, 2], [0, 2, 2], [1, 2, 2], [1, 2, 0]])
    confidence = torch.tensor([[0.5, 0.2, 0.9], [0.7, 0.6, 0.95], [0.8, 0.7, 0.99], [0.9, 0.9, 0.4]])
    labels = torch.tensor([1, 2, 2])
    assert dynamic_exit_steps(predictions, confidence, 0.7).tolist() == [2, 3, 1]
    assert dynamic_exit_steps(predictions, confidence, 0.0).tolist() == [1, 1, 1]
    assert dynamic_exit_steps(predictions, confidence, 1.01).tolist() == [4, 4, 4]
    # stable for 1 step: the prediction at t must also equal that at t − 1
    assert dynamic_exit_steps(predictions, confidence, 0.75).tolist() == [3, 4, 1]
    assert dynamic_exit_steps(predictions, confidence, 0.75, stable_steps=1).tolist() == [4, 4, 2]
    curve = dynamic_exit_curve(predictions, confidence, labels, confidences=[0.0, 0.7, 1.01])
    assert list(curve.columns[:4]) == ["confidence", "mean_exit_step", "accuracy", "steps_saved"]
    assert curve["mean_exit_step"].tolist() == pytest.approx([1.0, 2.0, 4.0])
    # c = 0: all at t = 1 (preds 0, 1, 2: one right); c = 0.7: sample 0 exits at 2 (pred 0, wrong), 1 at 3
    # (2, right), 2 at 1 (2, right); c > 1: all at T (preds 1, 2, 0: two right)
    assert curve["accuracy"].tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert curve["steps_saved"].tolist() == pytest.approx([3.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="empty"):
        dynamic_exit_curve(predictions, confidence, labels, confidences=[])
