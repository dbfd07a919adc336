"""ANN→SNN conversion (threshold balancing): BN folding, bias and input scaling, thresholds, the run.

Run: .venv/bin/python -m pytest tests/test_conversion.py -q
"""

from __future__ import annotations

import json

import pytest
import torch

from bntt_core import build_model, poisson_encode, train_step
from bntt_core.conversion import convert_model, convert_run, fold_batchnorm, input_bound
from bntt_core.nn.step import eval_logits

SIZE, CLASSES = 8, 6


def synthetic(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised images [n, 1, 8, 8] of 6 noisy class templates (a task an ANN gets ~80–90% on)."""
    templates = torch.rand(CLASSES, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(99))
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    pixels = (templates[labels] + 0.6 * torch.randn(n, 1, SIZE, SIZE, generator=g)).clamp(0, 1)
    return (pixels - 0.5) / 0.35, labels


def _trained_ann(arch: str, encoding: str = "poisson") -> torch.nn.Module:
    torch.manual_seed(0)
    ann = build_model(arch, num_classes=CLASSES, in_channels=1, image_size=SIZE, num_steps=1, spiking=False,
                      width=0.125, encoding=encoding)
    images, labels = synthetic(1024, seed=0)
    optimizer = torch.optim.SGD(ann.parameters(), lr=0.05, momentum=0.9)
    for _ in range(4):
        for begin in range(0, 1024, 64):
            train_step(ann, optimizer, images[begin:begin + 64], labels[begin:begin + 64])
    return ann.eval()


@pytest.fixture(scope="module")
def vgg5_ann():
    return _trained_ann("vgg5")


def test_fold_batchnorm_is_exact():
    torch.manual_seed(0)
    conv, norm = torch.nn.Conv2d(3, 5, 3, padding=1, bias=False), torch.nn.BatchNorm2d(5)
    with torch.no_grad():
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.normal_()
        norm.bias.normal_()
    norm.eval()
    x = torch.randn(4, 3, 6, 6, dtype=torch.float64)
    weight, bias = fold_batchnorm(conv, norm)
    folded = torch.nn.functional.conv2d(x, weight, bias, padding=1)
    reference = norm.double()(conv.double()(x))
    assert torch.allclose(folded, reference, atol=1e-10)


def test_direct_input_rates_reproduce_the_ann_logits():
    """With analog (direct) input there is no sampling noise: the average output over T steps must
    approach the ANN's logits, which checks the bias (added every step, not scaled by Λ_{l−1}),
    the threshold folding and the classifier scale."""
    ann = _trained_ann("mlp", encoding="direct")
    images, _ = synthetic(32, seed=1)
    calibration, _ = synthetic(64, seed=2)
    norms = [m for m in ann.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert any(float(norm.bias.detach().abs().max()) > 0.05 for norm in norms)  # real biases to get right
    logits = eval_logits(ann, images)
    errors = []
    for steps in (8, 128):
        snn = convert_model(ann, calibration, steps=steps).model
        out = eval_logits(snn, images)
        errors.append(float((out - logits).abs().mean() / logits.abs().mean()))
    print("relative logit error at T = 8, 128:", errors)
    assert errors[1] < 0.03 and errors[1] < errors[0] / 2


def test_poisson_conversion_approaches_the_ann_accuracy(vgg5_ann):
    images, labels = synthetic(256, seed=1)
    calibration, _ = synthetic(128, seed=2)
    ann_predictions = eval_logits(vgg5_ann, images).argmax(1)
    ann_accuracy = float((ann_predictions == labels).double().mean())
    assert ann_accuracy > 0.7
    agreement = {}
    for steps in (8, 192):
        result = convert_model(vgg5_ann, calibration, steps=steps)
        spec = result.model.spec
        assert (spec.norm, spec.leak, spec.threshold, spec.bias, spec.num_steps) == ("none", 1.0, 1.0, True, steps)
        predictions = eval_logits(result.model, images, generator=torch.Generator().manual_seed(0)).argmax(1)
        agreement[steps] = float((predictions == ann_predictions).double().mean())
        accuracy = float((predictions == labels).double().mean())
    assert abs(accuracy - ann_accuracy) < 0.05  # at T = 192
    assert agreement[192] > 0.9 and agreement[192] > agreement[8] + 0.2


def test_first_threshold_is_the_max_input_current(vgg5_ann):
    """θ_conv1 = max over images, neurons and steps of W_f·r·s_t + b_f for the seeded Poisson input."""
    calibration, _ = synthetic(32, seed=3)
    steps = 10
    result = convert_model(vgg5_ann, calibration, steps=steps, seed=0, batch_size=32)
    scale = result.input_scale
    assert scale == pytest.approx(float(calibration.abs().max()))
    weight, bias = fold_batchnorm(vgg5_ann.blocks[0][0], vgg5_ann.blocks[0][1])
    spikes = poisson_encode(calibration, steps, rescale=scale, generator=torch.Generator().manual_seed(0))
    current = torch.nn.functional.conv2d(spikes.flatten(0, 1).double(), weight * scale, bias, padding=1)
    assert result.thresholds["conv1"] == pytest.approx(float(current.max()), rel=1e-5)
    assert list(result.thresholds) == ["conv1", "conv2", "conv3", "fc1"]
    stored = result.model.layers[0].synapse
    assert torch.allclose(stored.weight.double(), weight * scale / result.thresholds["conv1"], atol=1e-6)
    assert torch.allclose(stored.bias.double(), bias / result.thresholds["conv1"], atol=1e-6)


def test_bad_input(vgg5_ann):
    snn = build_model("vgg5", num_classes=CLASSES, in_channels=1, image_size=SIZE, num_steps=4, width=0.125)
    calibration, _ = synthetic(8, seed=0)
    with pytest.raises(ValueError, match="ANN"):
        convert_model(snn, calibration)
    with pytest.raises(ValueError, match="steps"):
        convert_model(vgg5_ann, calibration, steps=0)
    with pytest.raises(ValueError, match="calibration"):
        convert_model(vgg5_ann, calibration[:0])
    assert input_bound((0.5,), (0.25,)) == pytest.approx(2.0)


@pytest.fixture(scope="module")
def ann_run(tmp_path_factory):
    from bntt_core.runs.training import TrainConfig, train

    root = tmp_path_factory.mktemp("conversion_runs")
    config = TrainConfig.from_dict(dict(dataset="mnist10k", arch="mlp", width=0.125, spiking=False, num_steps=4,
                                        epochs=1, batch_size=64, lr=0.1, max_train_images=512, max_test_images=96,
                                        eval_batch_size=96, device="cpu", augment=False, preset=None,
                                        precision="fp32"))  # not the default: the run's own must be used
    train(config, root / "ann", progress="none")
    return root


def test_convert_run_writes_a_run_that_loads_evaluates_and_analyses(ann_run):
    from bntt_core.analysis import analyze_run, read_analysis
    from bntt_core.runs import load_run
    from bntt_core.runs.training import evaluate_run

    out = ann_run / "converted"
    messages = []
    result = convert_run(ann_run / "ann", out, steps=24, calibration_images=64,
                         progress=lambda fraction, message: messages.append(message))
    assert result.path == out and messages
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "converted"
    section = config["conversion"]
    assert section["steps"] == 24 and set(section["thresholds"]) == {"fc1"}
    assert section["source_run"].endswith("ann") and "Sengupta" in section["method"]
    run = load_run(out)
    assert run.kind == "converted" and run.spec.norm == "none" and run.spec.num_steps == 24
    assert evaluate_run(out)["test_accuracy"] == config["result"]["test_accuracy"]
    tables = analyze_run(out, quick=True)
    assert tables["accuracy_by_step"]["accuracy"].iloc[-1] == config["result"]["test_accuracy"]
    assert tables["fgsm"].empty  # Fig 8B has no conversion curve; asked for by name it is computed
    assert not read_analysis(out)["noise"].empty


def test_convert_run_refuses_spiking_runs_and_used_folders(ann_run, tmp_path):
    from bntt_core.runs.training import TrainConfig, train

    snn_config = TrainConfig.from_dict(dict(dataset="mnist10k", arch="mlp", width=0.125, num_steps=2, epochs=1,
                                            batch_size=64, max_train_images=64, max_test_images=32,
                                            device="cpu", augment=False, preset=None))
    train(snn_config, tmp_path / "snn", progress="none")
    with pytest.raises(ValueError, match="ANN"):
        convert_run(tmp_path / "snn", tmp_path / "out", steps=8)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        convert_run(ann_run / "ann", tmp_path / "used", steps=8)
