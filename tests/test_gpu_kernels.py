"""The Triton LIF scan (bntt_core/nn/kernels/gpu.py) computes what the eager scan computes, bit for bit.

Without a GPU (CI) the same kernels run through Triton's CPU interpreter (TRITON_INTERPRET=1), which
executes the kernel's operations one by one in numpy: spikes, membrane, σ' and the gradient must equal
the eager scan's exactly, in fp32 and bf16, for every surrogate and both resets, reading the current in
place whether it is T-major or BNTT's transposed [B, T, ...] view, and returning the gradient in the
current's own strides. A whole network routed through the kernels gives the eager network's logits and
gradients. With CUDA present, the compiled kernels are checked against the eager scan on the GPU.

Run: .venv/bin/python -m pytest tests/test_gpu_kernels.py -q
"""

from __future__ import annotations

import itertools

import pytest
import torch

from bntt_core import build_model
from bntt_core.nn import neurons as neurons_module
from bntt_core.nn import norms as norms_module
from bntt_core.nn.kernels import gpu as _gpu_kernels
from bntt_core.nn.neurons import LIF
from bntt_core.nn.surrogate import get_surrogate

pytestmark = pytest.mark.skipif(not _gpu_kernels.available(), reason="Triton is not installed")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


@pytest.fixture
def interpreted(monkeypatch):
    """The Triton kernels run on CPU tensors through Triton's interpreter; the C loops stay out of the way."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(neurons_module, "compiled_scan_applies", lambda *args, **kwargs: False)
    monkeypatch.setattr(norms_module, "bntt_into_lif_applies", lambda *args, **kwargs: False)


def _eager(monkeypatch, fn):
    """fn() with both kernel families off: the eager loop of neurons._LIFScan."""
    with monkeypatch.context() as patch:
        patch.setattr(_gpu_kernels, "applies", lambda *args, **kwargs: False)
        patch.setattr(neurons_module, "compiled_scan_applies", lambda *args, **kwargs: False)
        patch.setattr(norms_module, "bntt_into_lif_applies", lambda *args, **kwargs: False)
        return fn()


def _current(layout: str, dtype: torch.dtype, device: str = "cpu", steps: int = 5, batch: int = 3) -> torch.Tensor:
    shape = (steps, batch, 4, 6, 6) if layout != "fc" else (steps, batch, 7)
    if layout == "batch-major":  # what BNTT returns: [B, T, ...] in memory, viewed as [T, B, ...]
        base = torch.randn(batch, steps, *shape[2:], device=device).transpose(0, 1)
    else:
        base = torch.randn(shape, device=device)
    return (base * 1.2 + 0.4).to(dtype)  # about a third of the neurons fire at some step


def _scan_both_ways(monkeypatch, current, leak, threshold, reset, surrogate):
    """((spikes, membrane, grad) through the kernels, the same through the eager scan)."""
    lif = LIF(leak, threshold, reset, surrogate)
    grad_out = torch.randn(current.shape, device=current.device).to(current.dtype)

    def run():
        x = current.detach().clone().requires_grad_(True)
        spikes, membrane = lif(x, return_membrane=True)
        spikes.backward(grad_out)
        return spikes, membrane, x.grad

    return run(), _eager(monkeypatch, run)


def _network_both_ways(monkeypatch, model, images, labels, *, logits_tol: float, grad_tol: float) -> None:
    """A training forward and backward of `model`, with its LIF layers on the kernels and then on the eager
    scan: the logits and every parameter's gradient agree within the tolerances."""
    def run():
        model.zero_grad(set_to_none=True)
        logits = model(images, generator=torch.Generator(device=images.device).manual_seed(0))
        torch.nn.functional.cross_entropy(logits, labels).backward()
        return logits.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}

    logits, grads = run()
    ref_logits, ref_grads = _eager(monkeypatch, run)
    torch.testing.assert_close(logits, ref_logits, atol=logits_tol, rtol=logits_tol)
    for name, grad in ref_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=grad_tol, rtol=grad_tol, msg=name)


@pytest.mark.parametrize("dtype, reset, surrogate, layout", list(itertools.product(
    [torch.float32, torch.bfloat16], ["soft", "hard"], ["triangle", "fast_sigmoid", "atan"],
    ["time-major", "batch-major", "fc"])))
def test_interpreted_kernels_equal_the_eager_scan(interpreted, monkeypatch, dtype, reset, surrogate, layout):
    torch.manual_seed(0)
    current = _current(layout, dtype)
    assert _gpu_kernels.applies(current, surrogate)
    (spikes, membrane, grad), (ref_spikes, ref_membrane, ref_grad) = _scan_both_ways(
        monkeypatch, current, 0.9, 0.7, reset, surrogate)
    assert torch.equal(spikes, ref_spikes)
    assert 0 < spikes.float().sum() < spikes.numel()
    assert torch.equal(membrane, ref_membrane)
    assert torch.equal(grad, ref_grad)
    assert grad.dtype == dtype and spikes.dtype == dtype and membrane.dtype == torch.float32


def test_interpreted_slope_and_strides(interpreted):
    torch.manual_seed(1)
    current = _current("batch-major", torch.bfloat16)
    spikes, slope, membrane, strides = _gpu_kernels.lif_forward(current, 0.95, 1.0, False, "triangle", True)
    assert spikes.is_contiguous() and slope.is_contiguous()  # T-major for the next layer's convolution
    assert strides == current.stride()  # read in place, no copy
    assert torch.equal(slope, get_surrogate("triangle")(membrane, 1.0).to(torch.bfloat16))
    grad = _gpu_kernels.lif_backward(torch.ones_like(spikes), slope, None, 0.95, False, strides)
    assert grad.stride() == current.stride()  # BNTT's backward gets its gradient without a copy


def test_interpreted_other_layouts_are_copied_not_misread(interpreted, monkeypatch):
    torch.manual_seed(2)
    current = _current("time-major", torch.float32)[:, :, :, ::2]  # a strided slice: blocks not contiguous
    (spikes, membrane, grad), (ref_spikes, ref_membrane, ref_grad) = _scan_both_ways(
        monkeypatch, current, 0.9, 1.0, "soft", "triangle")
    assert torch.equal(spikes, ref_spikes) and torch.equal(membrane, ref_membrane) and torch.equal(grad, ref_grad)
    expanded = torch.randn(4, 1, 3).expand(4, 5, 3)  # stride 0 over B: a gradient written in place would collide
    spikes, _, _, strides = _gpu_kernels.lif_forward(expanded, 0.9, 1.0, False, "triangle")
    assert strides == (15, 3, 1) and torch.equal(spikes[:, 0], spikes[:, 4])


def test_interpreted_empty_sequences(interpreted):
    for shape in [(0, 3, 4), (3, 0, 4)]:
        spikes, slope, _, strides = _gpu_kernels.lif_forward(torch.zeros(shape), 0.9, 1.0, False, "triangle")
        assert spikes.shape == shape
        assert _gpu_kernels.lif_backward(spikes, slope, None, 0.9, False, strides).shape == shape


def test_interpreted_network_equals_eager_network(interpreted, monkeypatch):
    """Logits and every gradient of a small BNTT VGG, with the LIF layers on the kernels or eager."""
    torch.manual_seed(3)
    model = build_model("vgg5", num_classes=10, in_channels=1, image_size=8, num_steps=4, width=0.125)
    _network_both_ways(monkeypatch, model, torch.randn(6, 1, 8, 8), torch.arange(6), logits_tol=1e-6, grad_tol=1e-6)


@pytest.mark.parametrize("norm", ["bn", "tdbn", "tebn"])
def test_interpreted_network_with_other_norms_and_threshold_equals_eager(interpreted, monkeypatch, norm):
    """The new norms (one statistic for all steps) and θ = 0.5 (the triangle's 1/θ) on the kernels."""
    torch.manual_seed(3)
    model = build_model("vgg5", num_classes=10, in_channels=1, image_size=8, num_steps=4, width=0.125,
                        norm=norm, threshold=0.5)
    _network_both_ways(monkeypatch, model, torch.randn(6, 1, 8, 8), torch.arange(6), logits_tol=1e-6, grad_tol=1e-6)


def test_kernels_that_cannot_be_built_fall_back_to_the_eager_scan_once(interpreted, monkeypatch, caplog):
    """Triton builds its launcher with a C compiler at the first launch: without one, one warning and the
    eager scan (same values); after a kernel has run once, a failure is raised like any other."""
    def broken(interpret):
        raise RuntimeError("Failed to find C compiler. Please specify via CC environment variable.")

    monkeypatch.setattr(_gpu_kernels, "_kernels", broken)
    monkeypatch.setattr(_gpu_kernels, "_unusable", None)
    monkeypatch.setattr(_gpu_kernels, "_proven", False)
    torch.manual_seed(4)
    current = _current("time-major", torch.float32)
    with caplog.at_level("WARNING", logger=_gpu_kernels.__name__):
        (spikes, membrane, grad), (ref_spikes, ref_membrane, ref_grad) = _scan_both_ways(
            monkeypatch, current, 0.9, 1.0, "soft", "triangle")
    assert torch.equal(spikes, ref_spikes) and torch.equal(grad, ref_grad)
    warnings = [r.getMessage() for r in caplog.records if "do not work here" in r.getMessage()]
    assert len(warnings) == 1 and "C compiler" in warnings[0]
    assert not _gpu_kernels.applies(current, "triangle")  # decided once: no retry at every layer
    monkeypatch.setattr(_gpu_kernels, "_unusable", None)
    monkeypatch.setattr(_gpu_kernels, "_proven", True)
    with pytest.raises(RuntimeError, match="C compiler"):
        _gpu_kernels.lif_forward(current, 0.9, 1.0, False, "triangle")


def test_cpu_tensors_do_not_use_the_kernels_without_the_interpreter(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    assert not _gpu_kernels.applies(torch.zeros(2, 2, 3), "triangle")


@needs_cuda
@pytest.mark.parametrize("dtype, reset, surrogate, layout", [  # each case compiles a kernel: a few, not all
    (torch.float32, "soft", "triangle", "time-major"), (torch.bfloat16, "soft", "triangle", "batch-major"),
    (torch.bfloat16, "hard", "triangle", "batch-major"), (torch.float32, "hard", "fast_sigmoid", "batch-major"),
    (torch.bfloat16, "soft", "atan", "time-major")])
def test_cuda_kernels_equal_the_eager_scan(monkeypatch, dtype, reset, surrogate, layout):
    """On the GPU the eager scan divides by θ as a multiplication by 1/θ (torch's scalar division), so σ'
    and the gradient may differ from the kernels' IEEE division by an ulp; the spikes may not differ."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    torch.manual_seed(0)
    current = _current(layout, dtype, device="cuda", steps=25, batch=16)
    assert _gpu_kernels.applies(current, surrogate)
    (spikes, membrane, grad), (ref_spikes, ref_membrane, ref_grad) = _scan_both_ways(
        monkeypatch, current, 0.95, 1.0, reset, surrogate)
    assert torch.equal(spikes, ref_spikes)
    assert torch.equal(membrane, ref_membrane)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(grad.float(), ref_grad.float(), atol=tolerance, rtol=tolerance)
    assert grad.stride() == current.stride()


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_triangle_at_half_threshold_equals_the_eager_scan(monkeypatch, dtype):
    """θ = 0.5: the triangle's σ' = α·max(0, 1 − |U/θ − 1|)/θ on the GPU (two divisions by θ)."""
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    torch.manual_seed(1)
    current = _current("batch-major", dtype, device="cuda", steps=25, batch=16) * 0.5
    (spikes, membrane, grad), (ref_spikes, ref_membrane, ref_grad) = _scan_both_ways(
        monkeypatch, current, 0.95, 0.5, "soft", "triangle")
    assert torch.equal(spikes, ref_spikes) and torch.equal(membrane, ref_membrane)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(grad.float(), ref_grad.float(), atol=tolerance, rtol=tolerance)


@needs_cuda
def test_cuda_network_equals_eager_network(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    torch.manual_seed(3)
    model = build_model("vgg9", num_classes=10, in_channels=3, image_size=32, num_steps=8, width=0.25).cuda()
    images, labels = torch.randn(16, 3, 32, 32, device="cuda"), torch.arange(16, device="cuda") % 10
    _network_both_ways(monkeypatch, model, images, labels, logits_tol=1e-4, grad_tol=1e-3)
