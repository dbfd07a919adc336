"""Robustness: Gaussian noise and FGSM on clean pixels; the SNN attack's straight-through encoder.

Tiny models are trained for a second or two on synthetic class templates (8×8 pixels, 4 classes).
Run: .venv/bin/python -m pytest tests/test_robustness.py -q
"""

from __future__ import annotations

import pytest
import torch

from bntt_core import build_model, poisson_encode, train_step
from bntt_core.analysis.recording import record
from bntt_core.analysis.robustness import (
    Normalizer,
    evaluate_accuracy,
    fgsm_accuracy,
    fgsm_signs,
    noise_accuracy,
    perturb_noise,
    straight_through_poisson,
)

SIZE, CLASSES = 8, 4


def synthetic(n: int, seed: int, noise: float = 0.35) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 pixels [n, 1, 8, 8]: a fixed random template per class plus Gaussian pixel noise."""
    templates = torch.rand(CLASSES, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1234))
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, CLASSES, (n,), generator=g)
    pixels = (templates[labels] + noise * torch.randn(n, 1, SIZE, SIZE, generator=g)).clamp(0, 1)
    return (pixels * 255).round().to(torch.uint8), labels


MEAN, STD = (0.5,), (0.3,)
NORMALIZE = Normalizer(MEAN, STD)


def _train(model: torch.nn.Module, epochs: int = 4) -> torch.nn.Module:
    pixels, labels = synthetic(512, seed=0)
    images = NORMALIZE(pixels.float() / 255)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for begin in range(0, 512, 64):
            train_step(model, optimizer, images[begin:begin + 64], labels[begin:begin + 64], generator=generator)
    return model.eval()


@pytest.fixture(scope="module")
def snn():
    torch.manual_seed(0)
    return _train(build_model("mlp", num_classes=CLASSES, in_channels=1, image_size=SIZE, num_steps=4, width=0.125))


@pytest.fixture(scope="module")
def ann():
    torch.manual_seed(0)
    return _train(build_model("mlp", num_classes=CLASSES, in_channels=1, image_size=SIZE, num_steps=4, width=0.125,
                              spiking=False))


@pytest.fixture(scope="module")
def test_set():
    return synthetic(192, seed=1)


def test_trained_models_learnt_the_task(snn, ann, test_set):
    pixels, labels = test_set
    images = NORMALIZE(pixels.float() / 255)
    assert evaluate_accuracy(snn, images, labels, seed=0) > 0.8
    assert evaluate_accuracy(ann, images, labels, seed=0) > 0.8


@pytest.mark.parametrize("which", ["snn", "ann"])
def test_fgsm_epsilon_zero_is_clean_and_accuracy_falls(which, request, test_set):
    model = request.getfixturevalue(which)
    pixels, labels = test_set
    clean = evaluate_accuracy(model, NORMALIZE(pixels.float() / 255), labels, seed=5, batch_size=64)
    table = fgsm_accuracy(model, pixels, labels, [0.0, 0.05, 0.15, 0.4], mean=MEAN, std=STD, seed=5, batch_size=64)
    assert list(table.columns[:2]) == ["epsilon", "accuracy"]
    assert table["accuracy"].iloc[0] == clean
    accuracy = table["accuracy"].tolist()
    assert all(later <= earlier + 1e-9 for earlier, later in zip(accuracy, accuracy[1:], strict=False))
    assert accuracy[-1] < clean - 0.3


def test_epsilon_zero_matches_the_recording_pass(snn, test_set):
    pixels, labels = test_set
    rec = record(snn, NORMALIZE(pixels.float() / 255), labels, seed=7, batch_size=50)
    table = fgsm_accuracy(snn, pixels, labels, [0.0], mean=MEAN, std=STD, seed=7, batch_size=50)
    noise = noise_accuracy(snn, pixels, labels, [0.0], mean=MEAN, std=STD, seed=7, batch_size=50)
    at_t = float(rec.accuracy_by_step()["accuracy"].iloc[-1])
    assert table["accuracy"].iloc[0] == at_t == noise["accuracy"].iloc[0]


def test_snn_attack_beats_random_signs(snn, test_set):
    """The SNN-crafted gradient carries information: it hurts far more than a random sign pattern."""
    pixels, labels = test_set
    epsilon = 0.15
    crafted = fgsm_accuracy(snn, pixels, labels, [epsilon], mean=MEAN, std=STD, seed=2)["accuracy"].iloc[0]
    random_signs = (torch.randint(0, 2, pixels.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(torch.int8)
    blind = fgsm_accuracy(snn, pixels, labels, [epsilon], mean=MEAN, std=STD, seed=2, signs=random_signs)
    assert crafted < blind["accuracy"].iloc[0] - 0.2


def test_gradient_once_then_one_pass_per_epsilon(snn, test_set):
    pixels, labels = test_set
    forwards, backwards = [], []
    handle = snn.classifier.register_forward_hook(lambda *_: forwards.append(torch.is_grad_enabled()))
    backward_handle = snn.classifier.register_full_backward_hook(lambda *_: backwards.append(1))
    try:
        fgsm_accuracy(snn, pixels, labels, [0.0, 0.1, 0.2], mean=MEAN, std=STD, batch_size=64)
    finally:
        handle.remove()
        backward_handle.remove()
    batches = 3  # 192 images / 64
    assert forwards.count(True) == batches and len(backwards) == batches  # one gradient pass
    assert forwards.count(False) == 3 * batches  # one evaluation pass per ε


def test_noise_zero_is_clean_and_large_noise_hurts(snn, test_set):
    pixels, labels = test_set
    clean = evaluate_accuracy(snn, NORMALIZE(pixels.float() / 255), labels, seed=3, batch_size=64)
    table = noise_accuracy(snn, pixels, labels, [0.0, 3.0], mean=MEAN, std=STD, seed=3, batch_size=64)
    assert list(table.columns[:2]) == ["sigma", "accuracy"]
    assert table["accuracy"].iloc[0] == clean
    assert table["accuracy"].iloc[1] < clean - 0.3


def test_noise_is_on_clipped_pixels_then_normalised(ann, test_set):
    """mode="clipped": what reaches the model is (clip(x + σz, 0, 1) − mean)/std: inside the normalised pixel range."""
    pixels, labels = test_set
    seen = []
    handle = ann.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    try:
        noise_accuracy(ann, pixels, labels, [0.0, 2.0], mean=MEAN, std=STD, batch_size=192, mode="clipped")
    finally:
        handle.remove()
    clean, noisy = seen  # one batch per σ, [192, 1, 8, 8]
    low, high = (0 - MEAN[0]) / STD[0], (1 - MEAN[0]) / STD[0]
    assert torch.allclose(clean, NORMALIZE(pixels.float() / 255))
    assert noisy.min() == pytest.approx(low) and noisy.max() == pytest.approx(high)  # clipped, then normalised
    assert ((noisy == noisy.min()) | (noisy == noisy.max())).float().mean() > 0.5  # σ = 2 saturates most pixels


def _model_inputs(model, pixels, labels, sigmas, **options) -> list[torch.Tensor]:
    """What the first block receives, one tensor per σ (one batch of all the images each)."""
    seen = []
    handle = model.blocks[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    try:
        table = noise_accuracy(model, pixels, labels, sigmas, mean=MEAN, std=STD, batch_size=len(labels), **options)
    finally:
        handle.remove()
    return seen, table


def test_noise_is_unclipped_by_default(ann, test_set):
    """The paper's noise: (x + σz − mean)/std, not clipped; the same z as the clipped mode (seed + 1)."""
    pixels, labels = test_set
    (_, unclipped), table = _model_inputs(ann, pixels, labels, [0.0, 0.5], seed=4)
    assert table["mode"].tolist() == ["unclipped", "unclipped"]
    clean = pixels.float() / 255
    z = torch.randn(clean.shape, generator=torch.Generator().manual_seed(4 + 1))
    assert torch.allclose(unclipped, NORMALIZE(clean + 0.5 * z), atol=1e-6)
    low, high = (0 - MEAN[0]) / STD[0], (1 - MEAN[0]) / STD[0]
    assert unclipped.min() < low - 0.5 and unclipped.max() > high + 0.5  # beyond [0, 1] pixels
    (_, clipped), _ = _model_inputs(ann, pixels, labels, [0.0, 0.5], seed=4, mode="clipped")
    assert torch.allclose(clipped, NORMALIZE((clean + 0.5 * z).clamp(0, 1)), atol=1e-6)  # the old behaviour


def test_clipped_mode_equals_the_old_clipped_noise(snn, test_set):
    """mode="clipped" counts exactly what the pre-mode code did: clip(x + σ·z, 0, 1), z from seed + 1, the
    Poisson draws from seed (re-implemented here as it was, in fp32)."""
    pixels, labels = test_set
    sigmas = [0.0, 0.3]
    table = noise_accuracy(snn, pixels, labels, sigmas, mean=MEAN, std=STD, seed=2, batch_size=64, mode="clipped",
                           precision="fp32")
    for sigma, correct in zip(sigmas, table["correct"], strict=True):
        noise_gen = torch.Generator().manual_seed(3)
        poisson = torch.Generator().manual_seed(2)
        expected = 0
        with torch.inference_mode():
            for begin in range(0, len(labels), 64):
                clean = pixels[begin:begin + 64].float() / 255
                z = torch.randn(clean.shape, generator=noise_gen)
                logits = snn(NORMALIZE((clean + sigma * z).clamp(0, 1)), generator=poisson)
                expected += int((logits.argmax(1) == labels[begin:begin + 64]).sum())
        assert correct == expected


def test_shift_mode_is_a_deterministic_brightness_shift(ann, test_set):
    pixels, labels = test_set
    (clean, shifted), table = _model_inputs(ann, pixels, labels, [0.0, 0.25], seed=0, mode="shift")
    assert torch.allclose(shifted, NORMALIZE(pixels.float() / 255 + 0.25), atol=1e-6)  # x + σ, no clipping
    assert torch.allclose(shifted - clean, torch.full_like(clean, 0.25 / STD[0]), atol=1e-5)
    _, again = _model_inputs(ann, pixels, labels, [0.0, 0.25], seed=99, mode="shift")
    assert again["accuracy"].tolist() == table["accuracy"].tolist()  # no randomness (the ANN draws no Poisson)
    x = torch.rand(2, 1, 3, 3)
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert torch.equal(perturb_noise(x, 0.1, "shift", generator), x + 0.1)
    assert torch.equal(generator.get_state(), state)  # shift draws nothing


def test_unknown_noise_mode_is_refused(snn, test_set):
    pixels, labels = test_set
    with pytest.raises(ValueError, match="unknown noise mode 'blur'; choose one of unclipped, clipped, shift"):
        noise_accuracy(snn, pixels, labels, [0.1], mean=MEAN, std=STD, mode="blur")
    with pytest.raises(ValueError, match="unknown noise mode"):
        perturb_noise(torch.zeros(1, 1, 2, 2), 0.1, "gaussian")


def test_straight_through_value_and_gradient():
    x = torch.tensor([[-3.0, -1.0, 0.0, 0.5, 2.5]], requires_grad=True)
    rescale = 2.0
    spikes = straight_through_poisson(x, 6, rescale, torch.Generator().manual_seed(0))  # [T, 1, 5]
    reference = poisson_encode(x.detach(), 6, rescale=rescale, generator=torch.Generator().manual_seed(0))
    assert torch.equal(spikes.detach(), reference)  # the forward value is the draw itself
    (grad,) = torch.autograd.grad(spikes.sum(), x)
    assert torch.allclose(grad, torch.full_like(x, 6 / rescale))  # ∂s_t/∂x = 1/r at each of the 6 steps
    clipped = straight_through_poisson(x, 6, rescale, torch.Generator().manual_seed(0), encoder_grad="clipped")
    (grad,) = torch.autograd.grad(clipped.sum(), x)
    assert grad.tolist() == [[0.0, 3.0, 3.0, 3.0, 0.0]]  # E[s|x] = clip(x/r, −1, 1) is flat beyond |x| = r
    with pytest.raises(ValueError, match="encoder_grad"):
        straight_through_poisson(x, 2, rescale, None, encoder_grad="identity")


def test_fgsm_signs_are_pixel_space_and_int8(snn, test_set):
    pixels, labels = test_set
    signs = fgsm_signs(snn, pixels[:16], labels[:16], mean=MEAN, std=STD)
    assert signs.dtype == torch.int8 and signs.shape == pixels[:16].shape
    assert set(signs.unique().tolist()) <= {-1, 0, 1} and (signs != 0).float().mean() > 0.5


def test_bad_input(snn, test_set):
    pixels, labels = test_set
    with pytest.raises(ValueError, match="empty"):
        fgsm_accuracy(snn, pixels, labels, [], mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="≥ 0"):
        noise_accuracy(snn, pixels, labels, [-0.1], mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="event frames"):
        noise_accuracy(snn, pixels.unsqueeze(1).float(), labels, [0.1], mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="labels"):
        noise_accuracy(snn, pixels, labels[:5], [0.1], mean=MEAN, std=STD)
    with pytest.raises(ValueError, match="std"):
        Normalizer((0.5,), (0.0,))
