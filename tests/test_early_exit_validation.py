"""Early exit without the test set (issue 15): the held-out validation slice of a run (seeded, disjoint
from the training images, recorded in config.json and rebuilt identically; resume and old runs), the
`--validation-fraction` flag, the early_exit_summary table (paper τ = 0.1, τ chosen on the validation
slice, truncation of runs without γ), its figures and the dashboard's Early exit view.

Every run here is tiny: an MLP at 1/20 width, T = 4, one or two epochs on 256 of mnist10k's images.

    .venv/bin/python -m pytest tests/test_early_exit_validation.py -q
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_cli

from bntt_core import viz
from bntt_core.analysis import (
    analysis_status,
    analyze_run,
    early_exit,
    read_analysis,
    validation_accuracy_by_step,
)
from bntt_core.data import ImageSet
from bntt_core.runs import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_run,
    read_meta,
    read_table,
    training,
)
from bntt_core.runs.training import ConfigError, TrainConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = dict(arch="mlp", dataset="mnist10k", width=0.05, num_steps=4, epochs=1, batch_size=64, lr=0.1,
            max_train_images=256, max_test_images=96, eval_batch_size=96, device="cpu", augment=False, preset=None)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models, one thread


def tiny(**changes) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **changes})


def image_keys(dataset) -> set[bytes]:
    return {bytes(image.numpy().tobytes()) + bytes([int(label)]) for image, label in zip(dataset.images, dataset.labels, strict=True)}


# ----------------------------------------------------------------------------------- the split
def numbered_set(n: int) -> ImageSet:
    """n distinct images: image i holds i in its first two pixels, so a slice's indices can be read back."""
    images = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n) % 256
    images[:, 0, 0, 1] = torch.arange(n) // 256
    return ImageSet(images, torch.arange(n) % 10)


def indices(dataset: ImageSet) -> list[int]:
    return (dataset.images[:, 0, 0, 0].long() + 256 * dataset.images[:, 0, 0, 1].long()).tolist()


def test_the_split_is_seeded_disjoint_and_sized():
    full = numbered_set(1000)
    rest, held = training.split_validation(full, 0.1, seed=7)
    assert len(held) == 100 and len(rest) == 900
    assert set(indices(held)).isdisjoint(indices(rest)) and set(indices(held)) | set(indices(rest)) == set(range(1000))
    assert indices(held) == sorted(indices(held))  # the dataset order is kept
    again_rest, again = training.split_validation(full, 0.1, seed=7)
    assert indices(again) == indices(held) and indices(again_rest) == indices(rest)
    assert indices(training.split_validation(full, 0.1, seed=8)[1]) != indices(held)
    assert training.split_validation(full, 0.0, seed=7) == (full, None)
    assert len(training.split_validation(numbered_set(3), 0.01, seed=0)[1]) == 1  # at least one image
    with pytest.raises(ConfigError, match="leaves none to train on"):
        training.split_validation(numbered_set(1), 0.5, seed=0)


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, float("nan"), float("inf"), "0.1", True])
def test_bad_validation_fractions_are_one_config_error(value):
    with pytest.raises(ConfigError, match=r"validation fraction must be a number in \[0, 1\)"):
        tiny(validation_fraction=value).validate()


def test_the_default_holds_out_a_tenth_and_old_runs_read_as_none():
    assert TrainConfig().validation_fraction == 0.1
    assert TrainConfig.from_preset("quickstart").validation_fraction == 0.1
    old = {k: v for k, v in tiny().to_dict().items() if k != "validation_fraction"}
    assert TrainConfig.from_dict(training.stored_train_values(old)).validation_fraction == 0.0
    assert training.stored_train_values({"validation_fraction": 0.2})["validation_fraction"] == 0.2


def test_the_slice_comes_from_the_full_train_set_and_the_subset_from_the_rest():
    splits = training.load_splits(tiny(max_train_images=256))
    assert splits.validation_record["of_train_images"] == 8000 and len(splits.validation) == 800
    assert len(splits.train) == 256  # max_train_images picks from the 7,200 others
    assert image_keys(splits.validation).isdisjoint(image_keys(splits.train))
    full = training.load_splits(tiny(max_train_images=None))
    assert len(full.train) == 7200 and image_keys(full.validation) == image_keys(splits.validation)
    assert image_keys(splits.train) <= image_keys(full.train)
    # another training seed or norm holds out the same images (the slice follows split_seed only)
    other = training.load_splits(tiny(seed=5, norm="none"))
    assert image_keys(other.validation) == image_keys(splits.validation)
    assert image_keys(training.load_splits(tiny(split_seed=1)).validation) != image_keys(splits.validation)
    none = training.load_splits(tiny(validation_fraction=0.0, max_train_images=None))
    assert none.validation is None and len(none.train) == 8000 and none.validation_record["num_images"] == 0


# ------------------------------------------------------------------------------------- the CLI
CLI_TINY = ["--arch", "mlp", "--width", "0.05", "--epochs", "1", "--batch-size", "64", "--lr", "0.1", "--dataset",
            "mnist10k", "--max-train-images", "256", "--max-test-images", "96", "--eval-batch-size", "96",
            "--device", "cpu", "--T", "2", "--quiet"]


@pytest.mark.parametrize("value, fragment", [
    ("-0.1", "validation fraction must be a number in [0, 1)"),
    ("1", "validation fraction must be a number in [0, 1)"),
    ("1.5", "validation fraction must be a number in [0, 1)"),
    ("nan", "validation fraction must be a number in [0, 1)"),
    ("a-tenth", "invalid float value"),
])
def test_bad_validation_fraction_flags_are_one_error_and_exit_2(tmp_path, capsys, value, fragment):
    code, out, err = run_cli(capsys, "train", *CLI_TINY, f"--validation-fraction={value}", "--out", tmp_path / "run")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and fragment in err, err
    assert not (tmp_path / "run").exists() and not out


def test_the_flag_is_recorded_and_zero_disables_the_slice(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", *CLI_TINY, "--validation_fraction", "0", "--out", tmp_path / "run")
    assert code == 0, err
    config = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    assert config["train"]["validation_fraction"] == 0.0 and config["data"]["validation"]["num_images"] == 0
    with pytest.raises(training.NoValidationSlice, match="--validation-fraction 0"):
        training.run_validation_set(tmp_path / "run")


# --------------------------------------------------------------------------- resume and old runs
def _crash_in_epoch_2(monkeypatch):
    real_step = training.train_step
    calls = {"n": 0}

    def step_then_crash(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:  # 256 images / 64 = 4 batches per epoch: the middle of epoch 2
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(training, "train_step", step_then_crash)
    return real_step


def test_resume_trains_on_the_same_images_and_reaches_the_same_weights(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    training.train(tiny(epochs=2), tmp_path / "straight", progress="none")
    real_step = _crash_in_epoch_2(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        training.train(tiny(epochs=2), tmp_path / "resumed", progress="none")
    monkeypatch.setattr(training, "train_step", real_step)
    training.resume(tmp_path / "resumed", progress="none")
    a, b = load_file(tmp_path / "straight" / WEIGHTS_FILE), load_file(tmp_path / "resumed" / WEIGHTS_FILE)
    assert all(torch.equal(a[name], b[name]) for name in a)
    stored = json.loads((tmp_path / "resumed" / CONFIG_FILE).read_text())["data"]["validation"]
    assert stored == json.loads((tmp_path / "straight" / CONFIG_FILE).read_text())["data"]["validation"]
    # --resume with another fraction is refused: the resumed run must be the run that was started
    with pytest.raises(training.ResumeError, match="validation_fraction"):
        training.resume(tmp_path / "resumed", progress="none", expect={"validation_fraction": 0.2})


def test_a_run_from_before_the_slice_resumes_on_all_its_images(tmp_path, monkeypatch):
    """config.json and checkpoint without validation_fraction / data.validation (older bntt_core)."""
    real_step = _crash_in_epoch_2(monkeypatch)
    run = tmp_path / "old"
    with pytest.raises(KeyboardInterrupt):
        training.train(tiny(epochs=2, validation_fraction=0.0), run, progress="none")
    monkeypatch.setattr(training, "train_step", real_step)
    config = json.loads((run / CONFIG_FILE).read_text())
    del config["train"]["validation_fraction"], config["data"]["validation"]
    (run / CONFIG_FILE).write_text(json.dumps(config))
    state = torch.load(run / CHECKPOINT_FILE, weights_only=True)
    del state["config"]["validation_fraction"]
    torch.save(state, run / CHECKPOINT_FILE)
    result = training.resume(run, progress="none")
    assert result.epochs_done == 2
    with pytest.raises(training.NoValidationSlice, match="before the validation slice existed"):
        training.run_validation_set(run)


# ------------------------------------------------------------------------------ the summary rules
GAMMA_MEAN = pd.DataFrame({"layer": ["a"] * 6 + ["b"] * 6, "t": list(range(1, 7)) * 2,
                           "mean_gamma": [0.9, 0.8, 0.5, 0.3, 0.05, 0.04, 0.7, 0.9, 0.6, 0.2, 0.08, 0.02]})
# max over layers: 0.9 0.9 0.6 0.3 0.08 0.04 → τ = 0.1 exits at t = 4; τ in (0.3, 0.6] at t = 3


def test_the_validation_tau_is_the_earliest_exit_within_one_point():
    validation = [0.40, 0.60, 0.875, 0.88, 0.884, 0.885]  # t = 3 loses exactly 1 point
    chosen = early_exit.choose_threshold(validation, GAMMA_MEAN)
    assert chosen["exit_step"] == 3 and chosen["validation_accuracy"] == 0.875
    assert 0.3 < chosen["threshold_low"] <= chosen["threshold"] <= chosen["threshold_high"] <= 0.6
    assert early_exit.exit_step_from_gamma_mean(GAMMA_MEAN, chosen["threshold"]) == 3
    assert early_exit.choose_threshold([0.4, 0.6, 0.874, 0.88, 0.884, 0.885], GAMMA_MEAN)["exit_step"] == 4
    flat = early_exit.choose_threshold([0.9] * 6, GAMMA_MEAN)  # nothing lost anywhere: exit after one step
    assert flat["exit_step"] == 1


def test_the_summary_rows_and_the_truncation_baseline():
    test = [0.5, 0.7, 0.85, 0.88, 0.885, 0.89]
    validation = [0.40, 0.60, 0.875, 0.88, 0.884, 0.885]
    summary = early_exit.exit_summary(GAMMA_MEAN, test, validation, validation_images=800, run="bntt")
    paper, chosen = summary.set_index("rule").loc["paper"], summary.set_index("rule").loc["validation"]
    assert (paper.exit_step, paper.threshold, paper.steps_saved) == (4, 0.1, 2)
    assert paper.accuracy == 0.88 and paper.accuracy_change == pytest.approx(-0.01)
    assert chosen.exit_step == 3 and chosen.accuracy == 0.85 and chosen.accuracy_change == pytest.approx(-0.04)
    assert chosen.validation_images == 800 and chosen.available and chosen.reason == ""
    baseline = pd.DataFrame({"t": range(1, 7), "accuracy": [0.3, 0.6, 0.8, 0.86, 0.87, 0.88]})
    assert early_exit.accuracy_at_step(baseline, 3) == 0.8
    with pytest.raises(ValueError, match="outside the run's steps 1..6"):
        early_exit.accuracy_at_step(baseline, 7)
    rows = early_exit.truncation_summary(baseline, {"bntt": summary}).set_index("step_rule")
    assert list(rows["rule"]) == ["truncation"] * 2 and set(rows["source_run"]) == {"bntt"}
    assert rows.loc["paper", "exit_step"] == 4 and rows.loc["paper", "accuracy"] == 0.86
    assert rows.loc["validation", "exit_step"] == 3 and rows.loc["validation", "accuracy_change"] == pytest.approx(-0.08)
    other_t = pd.DataFrame({"t": range(1, 5), "accuracy": [0.3, 0.6, 0.8, 0.86]})
    assert not early_exit.truncation_summary(other_t, {"bntt": summary})["available"].any()
    alone = early_exit.truncation_summary(baseline, {}, no_source_reason="nothing beside it")
    assert list(alone["reason"]) == ["nothing beside it"] and not alone["available"].any()
    comparison = early_exit.exit_comparison("bntt", summary, {"bn": baseline})
    assert list(comparison["run"]) == ["bntt", "bntt", "bn", "bn"]
    old = early_exit.exit_summary(GAMMA_MEAN, test, None, validation_unavailable="trained before the slice")
    row = old.set_index("rule").loc["validation"]
    assert not row.available and row.reason == "trained before the slice" and np.isnan(row.exit_step)


# --------------------------------------------------------------------- a real run, then analysis
@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A tiny BNTT run and a tiny run without normalisation beside it, trained with the default 10%
    validation slice and analysed with quick=True, the BNTT run first."""
    root = tmp_path_factory.mktemp("early_exit_runs")
    for name, norm in (("bntt", "bntt"), ("none", "none")):
        training.train(tiny(norm=norm), root / name, progress="none")
        analyze_run(root / name, quick=True)
    return root


def test_the_slice_is_recorded_and_rebuilt_identically(analysed):
    config = json.loads((analysed / "bntt" / CONFIG_FILE).read_text())
    record = config["data"]["validation"]
    assert record["fraction"] == 0.1 and record["num_images"] == 800 and record["of_train_images"] == 8000
    assert record["seed"] == training.validation_seed(tiny()) and config["data"]["num_train_images"] == 256
    rebuilt, info = training.run_validation_set(analysed / "bntt")
    splits = training.load_splits(TrainConfig.from_dict(training.stored_train_values(config["train"])))
    assert torch.equal(rebuilt.images, splits.validation.images) and torch.equal(rebuilt.labels, splits.validation.labels)
    assert image_keys(rebuilt).isdisjoint(image_keys(splits.train)) and info.name == "mnist10k"


def test_analysis_writes_the_summary_with_the_three_rules(analysed):
    tables = read_analysis(analysed / "bntt")
    summary = early_exit.summary_table(tables["early_exit_summary"]).set_index("rule")
    by_step = tables["accuracy_by_step"]
    gamma_mean = tables["gamma_mean"]
    # (a) the paper's τ = 0.1 on the test set
    paper = summary.loc["paper"]
    assert paper.available and paper.threshold == 0.1 and paper.source_run == "bntt"
    assert paper.exit_step == early_exit.exit_step_from_gamma_mean(gamma_mean, 0.1)
    assert paper.accuracy == pytest.approx(early_exit.accuracy_at_step(by_step, int(paper.exit_step)))
    # (b) τ chosen on the validation slice (quick: 256 of its 800 images), applied to the test set
    chosen = summary.loc["validation"]
    run = load_run(analysed / "bntt")
    validation, images = validation_accuracy_by_step(analysed / "bntt", run.model, quick=True)
    expected = early_exit.choose_threshold(validation, gamma_mean)
    assert chosen.available and images == chosen.validation_images == 256
    assert chosen.exit_step == expected["exit_step"] and chosen.threshold == pytest.approx(expected["threshold"])
    assert chosen.accuracy == pytest.approx(early_exit.accuracy_at_step(by_step, int(chosen.exit_step)))
    assert chosen.full_accuracy == pytest.approx(by_step.sort_values("t")["accuracy"].iloc[-1])
    assert chosen.full_validation_accuracy - chosen.validation_accuracy <= 0.01 + 1e-9
    meta = read_meta(analysed / "bntt")["early_exit_summary"]
    assert meta["validation_images"] == 256 and meta["paper_threshold"] == 0.1 and meta["images"] == 96
    # (c) the run without γ: truncated at the BNTT run's two exit steps
    none = read_analysis(analysed / "none")
    rows = early_exit.summary_table(none["early_exit_summary"]).set_index("step_rule")
    assert set(rows["rule"]) == {"truncation"} and set(rows["source_run"]) == {"bntt"}
    for rule in ("paper", "validation"):
        step = int(summary.loc[rule, "exit_step"])
        assert rows.loc[rule, "exit_step"] == step and rows.loc[rule, "available"]
        assert rows.loc[rule, "accuracy"] == pytest.approx(early_exit.accuracy_at_step(none["accuracy_by_step"], step))
    assert read_meta(analysed / "none")["early_exit_summary"]["truncation_sources"] == ["bntt"]


def _as_old_run(source: Path, target: Path, *, drop_summary: bool) -> Path:
    shutil.copytree(source, target)
    config = json.loads((target / CONFIG_FILE).read_text())
    del config["data"]["validation"], config["train"]["validation_fraction"]
    (target / CONFIG_FILE).write_text(json.dumps(config))
    if drop_summary:
        (target / "analysis" / "early_exit_summary.csv").unlink()
        meta = json.loads((target / "analysis" / "meta.json").read_text())
        del meta["early_exit_summary"]
        (target / "analysis" / "meta.json").write_text(json.dumps(meta))
    return target


def test_an_old_run_loads_without_the_summary_and_gets_b_as_unavailable(analysed, tmp_path):
    old = _as_old_run(analysed / "bntt", tmp_path / "old-bntt", drop_summary=True)
    status = analysis_status(old)
    assert "early_exit_summary" in status.missing and not status.stale
    assert "early_exit_summary" not in read_analysis(old) and load_run(old).model is not None
    assert read_table(old, "early_exit_summary") is None
    written = analyze_run(old, tables=["early_exit_summary"])  # derived from accuracy_by_step: no test pass
    summary = early_exit.summary_table(written["early_exit_summary"]).set_index("rule")
    assert summary.loc["paper", "available"] and not summary.loc["validation", "available"]
    assert "before the validation slice existed" in summary.loc["validation", "reason"]
    assert "test set" in summary.loc["validation", "reason"] or "retrain" in summary.loc["validation", "reason"]
    meta = read_meta(old)["early_exit_summary"]
    assert meta["derived_from"].startswith("accuracy_by_step") and meta["images"] == 96
    # a baseline run alone in its folder: (c) unavailable with the reason
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copytree(analysed / "none", alone / "none")
    rows = early_exit.summary_table(analyze_run(alone / "none", tables=["early_exit_summary"])["early_exit_summary"])
    assert not rows["available"].any() and "no analysed BNTT run on mnist10k with T = 4" in rows["reason"].iloc[0]


# ------------------------------------------------------------------------------------- figures
def test_the_comparison_figure_marks_both_rules_and_the_truncation_baseline(analysed):
    bntt, none = read_analysis(analysed / "bntt"), read_analysis(analysed / "none")
    comparison = early_exit.exit_comparison("bntt", bntt["early_exit_summary"], {"none": none["accuracy_by_step"]})
    fig = viz.early_exit_comparison_figure({"bntt": bntt["accuracy_by_step"], "none": none["accuracy_by_step"]},
                                             comparison)
    summary = early_exit.summary_table(bntt["early_exit_summary"]).set_index("rule")
    assert fig.layout.meta["steps"] == {rule: int(summary.loc[rule, "exit_step"]) for rule in ("paper", "validation")}
    assert fig.layout.meta["truncation"] == ["none", "none"]
    names = [trace.name for trace in fig.data]
    assert "bntt: paper τ = 0.1" in names and "bntt: τ chosen on the validation slice" in names
    assert any(name.startswith("none truncated at the paper τ = 0.1 step") for name in names)
    assert len(fig.layout.shapes) == 2  # one vertical line per rule


def test_the_figures_name_an_unavailable_validation_tau():
    test = [0.5, 0.7, 0.85, 0.88, 0.885, 0.89]
    old = early_exit.exit_summary(GAMMA_MEAN, test, None, validation_unavailable="trained before the slice")
    curve = early_exit.early_exit_curve(np.ones((6, 4), dtype=bool), GAMMA_MEAN)
    fig7 = viz.early_exit_figure(curve, threshold=0.2, summary=old)
    assert fig7.layout.meta["marks"] == ["paper"]
    assert any("unavailable (trained before the slice)" in a.text for a in fig7.layout.annotations)
    by_step = pd.DataFrame({"t": range(1, 7), "accuracy": test})
    fig = viz.early_exit_comparison_figure({"bntt": by_step}, old)
    assert fig.layout.meta["steps"] == {"paper": 4}
    assert any("unavailable" in a.text and "trained before the slice" in a.text for a in fig.layout.annotations)
    full = early_exit.exit_summary(GAMMA_MEAN, test, [0.40, 0.60, 0.875, 0.88, 0.884, 0.885])
    assert viz.early_exit_figure(curve, summary=full).layout.meta["marks"] == ["paper", "validation"]
    with pytest.raises(ValueError, match="missing required columns"):
        viz.early_exit_comparison_figure({"bntt": by_step}, old.drop(columns=["rule"]))


# ------------------------------------------------------------------------------------ dashboard
def test_the_early_exit_view_shows_the_three_rules(dashboard_env: Path) -> None:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.test_dashboard import assert_clean, metric_value, open_view

    app = open_view("early_exit")
    assert metric_value(app, "Paper τ = 0.1").startswith("t = ")
    assert metric_value(app, "τ chosen on the validation slice").startswith("t = ")  # the fixture runs have a slice
    baselines = app.multiselect(key="early_exit_baselines")
    assert baselines.value == ["bn-mlp"]  # same dataset and T, no BNTT γ; the ANN is not a candidate
    baselines.set_value([])
    app.run()
    assert_clean(app)


def test_the_early_exit_view_of_an_old_run_explains_the_missing_summary(dashboard_run_root: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from tests.test_dashboard import open_view

    root = tmp_path / "runs"
    root.mkdir()
    _as_old_run(dashboard_run_root / "bntt-vgg5", root / "old-bntt", drop_summary=True)
    monkeypatch.setenv("BNTT_RUN_ROOTS", str(root))
    monkeypatch.setenv("BNTT_NO_DEFAULT_RUN_ROOTS", "1")
    app = open_view("early_exit")
    assert any("predates the early-exit summary" in info.value for info in app.info)
    assert {"Exit step", "Accuracy at the exit"} <= {m.label for m in app.metric}  # the rest still works
    # the same run with a derived summary: (b) is shown as unavailable, with the reason
    analyze_run(root / "old-bntt", tables=["early_exit_summary"])
    app = open_view("early_exit")
    assert [m.value for m in app.metric if m.label == "τ chosen on the validation slice"] == ["unavailable"]
    assert any("before the validation slice existed" in caption.value for caption in app.caption)
