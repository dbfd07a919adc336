"""Engine tests: BNTT, LIF, surrogates, encoders and the paper's networks against the SPEC equations.

Run: .venv/bin/python -m pytest tests/test_engine.py -q
"""

from __future__ import annotations

import math
import pathlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bntt_core import BNTT, LIF, build_model, direct_encode, poisson_encode
from bntt_core.nn.surrogate import atan, fast_sigmoid, triangle

# ---------------------------------------------------------------------------------------------
# BNTT against T separate nn.BatchNorm modules without bias
# ---------------------------------------------------------------------------------------------


def _separate_bns(num_steps: int, channels: int, spatial: bool, bntt: BNTT) -> nn.ModuleList:
    cls = nn.BatchNorm2d if spatial else nn.BatchNorm1d
    bns = nn.ModuleList(cls(channels, eps=1e-4, momentum=0.1, affine=True) for _ in range(num_steps))
    for t, bn in enumerate(bns):
        bn.bias = None  # "without bias": BNTT has no β
        bn.weight.data.copy_(bntt.weight.data[t])
        bn.running_mean.copy_(bntt.running_mean[t])
        bn.running_var.copy_(bntt.running_var[t])
    return bns


@pytest.mark.parametrize("num_steps", [1, 4, 25])
@pytest.mark.parametrize("spatial", [False, True], ids=["1d", "2d"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_bntt_equals_separate_batchnorms(num_steps, spatial, training):
    torch.manual_seed(num_steps)
    channels, batch = 5, 6
    shape = (num_steps, batch, channels, 4, 3) if spatial else (num_steps, batch, channels)
    bntt = BNTT(channels, num_steps)
    with torch.no_grad():  # non-trivial γ and running statistics, different per step
        bntt.weight.uniform_(0.2, 2.0)
        bntt.running_mean.normal_()
        bntt.running_var.uniform_(0.5, 2.0)
    bns = _separate_bns(num_steps, channels, spatial, bntt)
    bntt.train(training)
    bns.train(training)

    x = (torch.randn(shape) * 3 + torch.arange(num_steps).view(-1, *[1] * (len(shape) - 1))).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y = bntt(x)
    y_ref = torch.stack([bns[t](x_ref[t]) for t in range(num_steps)])
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)

    upstream = torch.randn(shape)
    (y * upstream).sum().backward()
    (y_ref * upstream).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-5, rtol=1e-5)
    gamma_grad_ref = torch.stack([bn.weight.grad for bn in bns])
    torch.testing.assert_close(bntt.weight.grad, gamma_grad_ref, atol=1e-5, rtol=1e-5)

    torch.testing.assert_close(bntt.running_mean, torch.stack([bn.running_mean for bn in bns]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bntt.running_var, torch.stack([bn.running_var for bn in bns]), atol=1e-5, rtol=1e-5)


def test_bntt_fewer_steps_updates_only_those_steps():
    bntt = BNTT(3, num_steps=6)
    bntt(torch.randn(2, 4, 3) + 5.0)  # T = 2 < 6
    assert torch.all(bntt.running_mean[:2] > 0.2)
    assert torch.all(bntt.running_mean[2:] == 0)


def test_bntt_has_no_beta_and_per_step_gamma():
    bntt = BNTT(7, 9)
    assert dict(bntt.named_parameters()).keys() == {"weight"}
    assert bntt.weight.shape == (9, 7)
    assert bntt.running_mean.shape == (9, 7) and bntt.running_var.shape == (9, 7)
    assert torch.all(bntt.weight == 1)


def test_bntt_is_one_batched_call_not_a_loop_of_modules():
    bntt = BNTT(4, 25)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in bntt.modules())


# ---------------------------------------------------------------------------------------------
# LIF: known answers worked out by hand
# ---------------------------------------------------------------------------------------------


def _hand_membrane(current: float, leak: float, threshold: float, steps: int, reset: str):
    """The SPEC update written out for a scalar: returns (pre-reset U per step, spikes per step)."""
    u, trace, spikes = 0.0, [], []
    for _ in range(steps):
        u = leak * u + current
        s = 1.0 if u > threshold else 0.0
        trace.append(u)
        spikes.append(s)
        u = u - threshold * s if reset == "soft" else (0.0 if s else u)
    return trace, spikes


def test_lif_constant_current_first_spike_step():
    # I = 0.3, λ = 0.95, θ = 1: U = 0.3, 0.585, 0.85575, 1.1129625 → the first spike is at step 4
    lif = LIF(leak=0.95, threshold=1.0)
    spikes, membrane = lif(torch.full((6, 1), 0.3), return_membrane=True)
    assert spikes[:, 0].tolist() == [0, 0, 0, 1, 0, 0]
    torch.testing.assert_close(membrane[:4, 0], torch.tensor([0.3, 0.585, 0.85575, 1.1129625]))


def test_lif_soft_reset_keeps_residue_hard_reset_zeroes_it():
    current = torch.full((8, 1), 0.3)
    _, soft_membrane = LIF(0.95, 1.0, reset="soft")(current, return_membrane=True)
    _, hard_membrane = LIF(0.95, 1.0, reset="hard")(current, return_membrane=True)
    # after the spike at step 4 the soft membrane keeps 0.1129625: U5 = 0.95·0.1129625 + 0.3
    assert soft_membrane[4, 0].item() == pytest.approx(0.95 * 0.1129625 + 0.3, abs=1e-6)
    # the hard reset starts from 0: U5 = 0.3, the same as step 1
    assert hard_membrane[4, 0].item() == pytest.approx(0.3, abs=1e-6)
    for reset, got in (("soft", soft_membrane), ("hard", hard_membrane)):
        trace, _ = _hand_membrane(0.3, 0.95, 1.0, 8, reset)
        torch.testing.assert_close(got[:, 0], torch.tensor(trace))


def test_lif_fires_only_strictly_above_threshold():
    spikes = LIF(leak=1.0, threshold=1.0)(torch.tensor([[1.0], [0.5]]))
    assert spikes[:, 0].tolist() == [0.0, 1.0]  # U = 1.0 is not > θ; U = 1.5 is


def test_lif_is_stateless_between_calls():
    lif = LIF(0.9, 1.0)
    current = torch.rand(10, 3, 4)
    assert torch.equal(lif(current), lif(current))


@pytest.mark.parametrize(
    "membrane, expected",
    [(1.0, 0.3), (0.5, 0.15), (1.5, 0.15), (0.0, 0.0), (2.0, 0.0), (2.5, 0.0), (-1.0, 0.0)],
)
def test_triangle_surrogate_values(membrane, expected):
    assert triangle(torch.tensor(membrane), 1.0).item() == pytest.approx(expected)


def test_triangle_surrogate_scales_with_threshold():
    # α·max(0, 1 − |U/θ − 1|)/θ: U/θ = 0.5 → 0.3·0.5/2; the peak at U = θ is α/θ
    assert triangle(torch.tensor(1.0), 2.0).item() == pytest.approx(0.075)
    assert triangle(torch.tensor(0.5), 0.5).item() == pytest.approx(0.6)
    assert triangle(torch.tensor(0.75), 0.5).item() == pytest.approx(0.3)


class _OfficialSpike(torch.autograd.Function):
    """The official BNTT code's spike function, written out: forward H(x), backward 0.3·max(0, 1 − |x|),
    applied to x = U/θ − 1 (so autograd supplies the chain-rule factor 1/θ)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 0.3 * torch.clamp(1.0 - torch.abs(x), min=0.0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # eager scan; compiled loops where they run
def test_triangle_at_half_threshold_is_the_official_formula(dtype):
    threshold, leak = 0.5, 0.9
    torch.manual_seed(4)
    current = (torch.rand(6, 3, 40) * 0.6).to(dtype).requires_grad_()
    upstream = torch.randn(6, 3, 40).to(dtype)
    (LIF(leak, threshold)(current) * upstream).sum().backward()
    ref_current = current.detach().clone().requires_grad_()
    u, spikes = torch.zeros_like(ref_current[0]), []
    for t in range(6):
        u = leak * u + ref_current[t]
        s = _OfficialSpike.apply(u / threshold - 1.0)
        spikes.append(s)
        u = u - threshold * s.detach()
    (torch.stack(spikes) * upstream).sum().backward()
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(current.grad, ref_current.grad, rtol=tolerance, atol=tolerance)
    # and the single-step value, ∂s/∂U at U = 0.6: 0.3·(1 − |1.2 − 1|)/0.5 = 0.48
    one = torch.tensor([[0.6]], dtype=dtype, requires_grad=True)
    LIF(leak, threshold)(one).sum().backward()
    assert one.grad.item() == pytest.approx(0.48, rel=1e-6)


@pytest.mark.parametrize("threshold", [0.5, 0.7, 1.3])
def test_compiled_triangle_with_its_one_over_theta_equals_the_eager_bits(threshold, monkeypatch):
    """slope_of (C) runs triangle()'s operations in its order, /θ included: fp32 σ', spikes, membrane and
    gradient equal the eager scan's bit for bit at any θ (tests/test_speed_paths.py checks θ = 1)."""
    from bntt_core.nn.kernels import cpu as _cpu_kernels

    if not _cpu_kernels.available():
        pytest.skip("no C compiler: the eager path is all there is")
    torch.manual_seed(5)
    current = torch.randn(7, 3, 4, 5, 5) * 0.7 * threshold + 0.45 * threshold
    upstream = torch.randn(current.shape)
    _, slope, membrane = _cpu_kernels.lif_forward(current, 0.9, threshold, False, "triangle", True)
    assert torch.equal(slope, triangle(membrane, threshold))

    def run():
        x = current.clone().requires_grad_()
        spikes, trace = LIF(0.9, threshold)(x, return_membrane=True)
        (spikes * upstream).sum().backward()
        return spikes, trace, x.grad

    spikes, trace, grad = run()
    monkeypatch.setattr(_cpu_kernels, "_library", False)  # as if the loops could not be built: eager
    eager_spikes, eager_trace, eager_grad = run()
    assert 0 < spikes.sum() < spikes.numel()
    assert torch.equal(spikes, eager_spikes) and torch.equal(trace, eager_trace) and torch.equal(grad, eager_grad)


def test_other_surrogates_values():
    assert fast_sigmoid(torch.tensor(1.0), 1.0).item() == pytest.approx(1.0)
    assert fast_sigmoid(torch.tensor(1.04), 1.0).item() == pytest.approx(1 / (1 + 25 * 0.04) ** 2)
    assert atan(torch.tensor(1.0), 1.0).item() == pytest.approx(1.0)
    assert atan(torch.tensor(1.5), 1.0).item() == pytest.approx(1.0 / (1 + (math.pi / 2 * 2 * 0.5) ** 2))


def test_lif_gradient_is_the_surrogate_through_time():
    # two steps, soft reset, λ = 0.5: U1 = I1, U2 = 0.5·(U1 − s1) + I2
    # ∂(s1 + s2)/∂I1 = σ'(U1) + 0.5·σ'(U2);  ∂/∂I2 = σ'(U2)
    current = torch.tensor([[0.8], [0.9]], requires_grad=True)
    LIF(leak=0.5, threshold=1.0)(current).sum().backward()
    u1, u2 = 0.8, 0.5 * 0.8 + 0.9  # no spike at step 1
    s1, s2 = 0.3 * (1 - abs(u1 - 1)), 0.3 * (1 - abs(u2 - 1))
    torch.testing.assert_close(current.grad[:, 0], torch.tensor([s1 + 0.5 * s2, s2]))


def test_lif_hard_reset_blocks_gradient_after_a_spike():
    # step 1 spikes (U1 = 1.2), the hard reset zeroes U: nothing of U1 reaches U2 in the backward either
    current = torch.tensor([[1.2], [0.9]], requires_grad=True)
    spikes = LIF(leak=0.5, threshold=1.0, reset="hard")(current)
    spikes[1].sum().backward()
    assert current.grad[0, 0].item() == 0.0
    assert current.grad[1, 0].item() == pytest.approx(0.3 * (1 - abs(0.9 - 1)))


def test_lif_soft_reset_term_carries_no_gradient():
    # U2 = λ(U1 − θ·s1) + I2: with s1 detached, ∂U2/∂I1 = λ even though step 1 spiked
    current = torch.tensor([[1.2], [0.5]], requires_grad=True)
    spikes = LIF(leak=0.5, threshold=1.0)(current)
    spikes[1].sum().backward()
    u2 = 0.5 * (1.2 - 1.0) + 0.5
    assert current.grad[0, 0].item() == pytest.approx(0.5 * 0.3 * (1 - abs(u2 - 1)))


def test_lif_gradients_match_autograd_of_the_naive_loop():
    torch.manual_seed(0)
    for reset in ("soft", "hard"):
        for name in ("triangle", "fast_sigmoid", "atan"):
            current = (torch.randn(7, 3, 5) * 0.8 + 0.4).double().requires_grad_()
            upstream = torch.randn(7, 3, 5).double()
            (LIF(0.8, 1.0, reset, name)(current) * upstream).sum().backward()
            ref_current = current.detach().clone().requires_grad_()
            (_naive_lif(ref_current, 0.8, 1.0, reset, name) * upstream).sum().backward()
            torch.testing.assert_close(current.grad, ref_current.grad)


class _NaiveSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, membrane, threshold, name):
        ctx.save_for_backward(membrane)
        ctx.threshold, ctx.name = threshold, name
        return (membrane > threshold).to(membrane.dtype)

    @staticmethod
    def backward(ctx, grad):
        (membrane,) = ctx.saved_tensors
        fn = {"triangle": triangle, "fast_sigmoid": fast_sigmoid, "atan": atan}[ctx.name]
        return grad * fn(membrane, ctx.threshold), None, None


def _naive_lif(current, leak, threshold, reset, surrogate="triangle"):
    u, out = torch.zeros_like(current[0]), []
    for t in range(current.shape[0]):
        u = leak * u + current[t]
        s = _NaiveSpike.apply(u, threshold, surrogate)
        out.append(s)
        u = u - threshold * s.detach() if reset == "soft" else u * (1 - s.detach())
    return torch.stack(out)


# ---------------------------------------------------------------------------------------------
# Architectures
# ---------------------------------------------------------------------------------------------


def _split_params(model):
    gammas = sum(p.numel() for n, p in model.named_parameters() if ".norm." in n)
    weights = sum(p.numel() for n, p in model.named_parameters() if ".norm." not in n)
    return weights, gammas


@pytest.mark.parametrize("num_steps", [1, 25])
def test_vgg9_parameter_count(num_steps):
    model = build_model("vgg9", num_classes=10, in_channels=3, image_size=32, num_steps=num_steps)
    weights, gammas = _split_params(model)
    assert weights == 5_938_880
    assert gammas == 2_176 * num_steps
    assert not any("bias" in n for n, _ in model.named_parameters())  # no β, no synapse bias


@pytest.mark.parametrize(
    "arch, channels, size, steps",
    [("vgg5", 3, 32, 4), ("vgg9", 3, 32, 3), ("vgg11", 3, 32, 2), ("vgg11", 3, 64, 2), ("mlp", 1, 28, 4),
     ("seqfc", 1, 6, 36)],
)
@pytest.mark.parametrize("norm", ["bntt", "bn", "ln", "none"])
def test_architecture_shapes(arch, channels, size, steps, norm):
    model = build_model(arch, num_classes=7, in_channels=channels, image_size=size, num_steps=steps, norm=norm,
                        width=0.25 if arch.startswith("vgg") else 1.0)
    images = torch.randn(2, channels, size, size)
    assert model(images).shape == (2, 7)
    assert model(images, per_step=True).shape == (steps, 2, 7)
    assert model(images, num_steps=1).shape == (2, 7)


def test_vgg11_feature_sizes_and_hidden_fc():
    model = build_model("vgg11", num_classes=200, in_channels=3, image_size=64, num_steps=2)
    assert model.layer_names == [f"conv{i}" for i in range(1, 9)] + ["fc1"]
    assert model.layers[-1].synapse.in_features == 512 and model.layers[-1].synapse.out_features == 4096
    assert model.classifier.in_features == 4096 and model.classifier.out_features == 200


def test_seqfc_is_the_table3_network():
    model = build_model("seqfc", num_classes=10, in_channels=1, image_size=28, num_steps=784, encoding="direct")
    shapes = [(layer.synapse.in_features, layer.synapse.out_features) for layer in model.layers]
    assert shapes == [(1, 256), (256, 256)]
    assert (model.classifier.in_features, model.classifier.out_features) == (256, 10)
    assert model.layers[0].norm.weight.shape == (784, 256)


def test_mlp_and_vgg5_layers():
    mlp = build_model("mlp", num_classes=10, in_channels=1, image_size=28, num_steps=3)
    assert (mlp.layers[0].synapse.in_features, mlp.layers[0].synapse.out_features) == (784, 800)
    vgg5 = build_model("vgg5", num_classes=10, in_channels=3, image_size=32, num_steps=3)
    assert vgg5.layers[-1].synapse.in_features == 8 * 8 * 128


def test_ann_twin_has_relu_and_standard_bn():
    ann = build_model("vgg9", num_classes=10, in_channels=3, image_size=32, num_steps=25, spiking=False)
    assert any(isinstance(m, nn.ReLU) for m in ann.modules())
    bns = [m for m in ann.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 8 and all(bn.bias is not None for bn in bns)
    assert ann(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_xavier_gain_two_init():
    torch.manual_seed(0)
    model = build_model("vgg5", num_classes=10, in_channels=3, image_size=32, num_steps=2)
    weight = model.layers[1].synapse.weight  # 64 → 128, 3×3
    bound = 2.0 * math.sqrt(6.0 / (64 * 9 + 128 * 9))
    assert weight.abs().max().item() <= bound
    assert weight.abs().max().item() > 0.95 * bound


# ---------------------------------------------------------------------------------------------
# The whole network against a plain per-step loop of the SPEC equations
# ---------------------------------------------------------------------------------------------


def _reference_forward(model, encoded, training):
    """Time loop outside, layer loop inside, as in the official code; returns (logits, spikes per layer)."""
    spec = model.spec
    steps = encoded.shape[0]
    membranes = [None] * len(model.layers)
    spikes = {layer.name: [] for layer in model.layers}
    accumulated = 0.0
    for t in range(steps):
        h = encoded[t]  # [B, ...]
        for i, layer in enumerate(model.layers):
            if layer.kind == "fc":
                h = h.flatten(1)
            current = layer.synapse(h)
            norm = layer.norm
            if spec.norm == "bntt":
                current = F.batch_norm(current, norm.running_mean[t].clone(), norm.running_var[t].clone(),
                                       norm.weight[t], None, training, norm.momentum, norm.eps)
            elif spec.norm == "bn":  # the paper's: ONE BatchNorm called at every step (its buffers updated here)
                current = F.batch_norm(current, norm.running_mean, norm.running_var, norm.weight, None, training,
                                       norm.momentum, norm.eps)
            elif spec.norm in ("bn-joint", "tdbn", "tebn"):
                assert not training  # joint training statistics span all steps: tests/test_norms.py
                scale = spec.threshold if spec.norm == "tdbn" else norm.step_scale[t] if spec.norm == "tebn" else 1.0
                current = F.batch_norm(current, norm.running_mean, norm.running_var, norm.weight, None, False,
                                       norm.momentum, norm.eps) * scale
            elif spec.norm == "ln":
                current = F.group_norm(current, 1, norm.weight, None, norm.eps)
            u = current if membranes[i] is None else spec.leak * membranes[i] + current
            s = (u > spec.threshold).to(u.dtype)
            membranes[i] = u - spec.threshold * s
            spikes[layer.name].append(s)
            h = layer.pool(s) if layer.pool is not None else s
        accumulated = accumulated + model.classifier(h.flatten(1))
    return accumulated / steps, {name: torch.stack(v) for name, v in spikes.items()}


class _SpikeMonitor:
    def __init__(self):
        self.spikes = {}

    def __call__(self, name, record):
        self.spikes[name] = record["spikes"].detach().clone()


# The joint-statistics norms (bn-joint, tdbn, tebn) normalise in training with statistics over all steps
# jointly, which no per-step loop can compute: test_shared_bn_training_uses_joint_statistics and
# tests/test_norms.py cover that case instead. The paper's bn is a per-step loop in training too.
@pytest.mark.parametrize("norm, training", [("bntt", False), ("bntt", True), ("bn", False), ("bn", True),
                                            ("bn-joint", False), ("tdbn", False), ("tebn", False), ("ln", False),
                                            ("ln", True), ("none", False), ("none", True)])
@pytest.mark.parametrize("arch", ["vgg5", "mlp"])
def test_network_equals_per_step_reference_loop(norm, training, arch):
    torch.manual_seed(1)
    size, channels = (8, 2) if arch == "vgg5" else (6, 1)
    model = build_model(arch, num_classes=5, in_channels=channels, image_size=size, num_steps=6, norm=norm,
                        leak=0.9, width=0.125 if arch == "vgg5" else 1.0).double()
    with torch.no_grad():  # non-trivial statistics and γ so that every norm does real work
        for layer in model.layers:
            for name, tensor in layer.norm.named_buffers():
                if name == "running_mean":
                    tensor.normal_(0, 0.5)
                elif name == "running_var":
                    tensor.uniform_(0.5, 2.0)
            for p in layer.norm.parameters():
                p.uniform_(0.5, 1.5)
    model.train(training)
    encoded = poisson_encode(torch.randn(4, channels, size, size).double() * 1.5, 6,
                             generator=torch.Generator().manual_seed(3))
    reference_model = _copy(model)
    monitor = _SpikeMonitor()
    logits = model(encoded, monitor=monitor)
    ref_logits, ref_spikes = _reference_forward(reference_model, encoded, training)
    for name, spikes in ref_spikes.items():
        assert torch.equal(monitor.spikes[name], spikes), name
        assert spikes.sum() > 0, f"{name} never spiked: the comparison would be vacuous"
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    if norm == "bn":  # the one running mean/var updated at every step, in step order, as the loop does
        for name, tensor in model.state_dict().items():
            torch.testing.assert_close(tensor, reference_model.state_dict()[name], atol=1e-12, rtol=1e-12)


def _copy(model):
    clone = build_model(**{k: v for k, v in model.spec.to_dict().items()
                           if k in ("arch", "num_classes", "in_channels", "image_size", "num_steps", "leak",
                                    "threshold", "norm", "encoding", "spiking")},
                        width=model.spec.width).double()
    clone.load_state_dict(model.state_dict())
    return clone.train(model.training)


def test_shared_bn_training_uses_joint_statistics():
    from bntt_core.nn.norms import SharedBN, TimeLN

    x = torch.randn(5, 4, 3, 2, 2) + torch.arange(5.0).view(5, 1, 1, 1, 1)  # the mean drifts with t
    shared, reference = SharedBN(3), nn.BatchNorm2d(3, eps=1e-4, momentum=0.1)
    reference.bias = None
    torch.testing.assert_close(shared(x), reference(x.flatten(0, 1)).view(x.shape))
    torch.testing.assert_close(shared.running_mean, reference.running_mean)
    ln = TimeLN(3)
    expected = F.layer_norm(x, (3, 2, 2), eps=ln.eps)  # γ = 1: plain layer norm over (C, H, W)
    torch.testing.assert_close(ln(x), expected)


def test_early_exit_forward_equals_the_running_output():
    torch.manual_seed(2)
    model = build_model("vgg5", num_classes=4, in_channels=1, image_size=8, num_steps=6, width=0.125).eval()
    encoded = poisson_encode(torch.randn(3, 1, 8, 8), 6, generator=torch.Generator().manual_seed(0))
    running = model(encoded, per_step=True)
    for k in (1, 3, 6):
        torch.testing.assert_close(model(encoded, num_steps=k), running[k - 1])
    torch.testing.assert_close(model(encoded), running[-1])


def test_same_generator_seed_same_logits():
    model = build_model("mlp", num_classes=3, in_channels=1, image_size=4, num_steps=5).eval()
    images = torch.randn(2, 1, 4, 4)
    first = model(images, generator=torch.Generator().manual_seed(7))
    again = model(images, generator=torch.Generator().manual_seed(7))
    assert torch.equal(first, again)


# ---------------------------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------------------------


def test_poisson_is_ternary_with_the_spec_rate():
    x = torch.linspace(-3, 3, 61)
    spikes = poisson_encode(x, 4000, generator=torch.Generator().manual_seed(0))
    assert spikes.shape == (4000, 61)
    assert set(spikes.unique().tolist()) <= {-1.0, 0.0, 1.0}
    rate = spikes.abs().mean(0)
    expected = (x.abs() / 2).clamp(max=1.0)
    assert torch.allclose(rate, expected, atol=0.03)
    assert torch.all(spikes * torch.sign(x) >= 0)  # the sign follows the input


def test_poisson_same_seed_same_spikes():
    x = torch.randn(3, 2, 5, 5)
    a = poisson_encode(x, 10, generator=torch.Generator().manual_seed(11))
    b = poisson_encode(x, 10, generator=torch.Generator().manual_seed(11))
    c = poisson_encode(x, 10, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_direct_encode_repeats_the_image():
    x = torch.randn(2, 3, 4, 4)
    encoded = direct_encode(x, 5)
    assert encoded.shape == (5, 2, 3, 4, 4)
    assert all(torch.equal(encoded[t], x) for t in range(5))


# ---------------------------------------------------------------------------------------------
# Bad input: one clear ValueError each
# ---------------------------------------------------------------------------------------------


def _mlp(**kw):
    return build_model("mlp", num_classes=3, in_channels=1, image_size=4, num_steps=5, **kw)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: _mlp()(torch.randn(2, 1, 4, 4), num_steps=6), "num_steps"),
        (lambda: _mlp()(torch.randn(7, 2, 1, 4, 4)), "T = 7"),
        (lambda: BNTT(3, 4)(torch.randn(5, 2, 3)), "T = 5"),
        (lambda: BNTT(3, 4)(torch.randn(2, 3)), "time-major"),
        (lambda: BNTT(3, 4)(torch.randn(2, 2, 4)), "3 channels"),
        (lambda: _mlp()(torch.randn(2, 4, 4)), "expects images"),
        (lambda: _mlp()(torch.randn(2, 3, 4, 4)), "built for images"),
        (lambda: build_model("vgg5", num_classes=3, in_channels=3, image_size=32, num_steps=2)(
            torch.randn(1, 1, 32, 32)), "built for images"),
        (lambda: build_model("resnet", num_classes=3, in_channels=1, image_size=4, num_steps=2), "unknown arch"),
        (lambda: _mlp(norm="group"), "unknown norm"),
        (lambda: _mlp(encoding="latency"), "unknown encoding"),
        (lambda: _mlp(surrogate="sigmoid"), "unknown surrogate"),
        (lambda: LIF(surrogate="sigmoid"), "unknown surrogate"),
        (lambda: _mlp(leak=0.0), "leak"),
        (lambda: _mlp(leak=1.5), "leak"),
        (lambda: LIF(leak=-0.1), "leak"),
        (lambda: _mlp(threshold=0.0), "threshold"),
        (lambda: LIF(threshold=-1.0), "threshold"),
        (lambda: build_model("mlp", num_classes=3, in_channels=1, image_size=4, num_steps=0), "num_steps"),
        (lambda: poisson_encode(torch.randn(2), 0), "num_steps"),
        (lambda: build_model("seqfc", num_classes=3, in_channels=1, image_size=4, num_steps=5), "one pixel"),
        (lambda: build_model("vgg9", num_classes=3, in_channels=3, image_size=20, num_steps=2), "multiple of 8"),
        (lambda: _mlp(colour="red"), "unknown model settings"),
    ],
)
def test_bad_input_is_one_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_leak_of_one_is_a_valid_if_neuron():
    assert LIF(leak=1.0).leak == 1.0


def test_no_device_calls_inside_the_package():
    package = pathlib.Path(__file__).resolve().parents[1] / "bntt_core"
    for source in package.glob("*.py"):
        assert ".cuda()" not in source.read_text(), f"{source.name} moves tensors with .cuda()"
