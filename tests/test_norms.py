"""The normalisation variants behind `norm=` (bntt_core/nn/norms.py) against plain reference computations:
outputs, running statistics, γ (and TEBN's p_t) gradients, eval mode; [T, B, C] and [T, B, C, H, W].

    bn        StepBN    vs one nn.BatchNorm{1,2}d (γ only) called at every step in a Python loop
    bn-joint  SharedBN  vs the joint statistics over T·B(·H·W) written out
    tdbn      TdBN      vs the same, times α·θ
    tebn      TEBN      vs the same, times p_t

Also: bad input, `make_norm` errors, how models build them, and the run format (bntt-run/1's "bn" is
read as "bn-joint").

    .venv/bin/python -m pytest tests/test_norms.py -q
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from bntt_core import runs
from bntt_core.nn.models import build_model
from bntt_core.nn.norms import (
    BNTT,
    NORMS,
    ONE_STATISTIC_NORMS,
    TEBN,
    NoNorm,
    SharedBN,
    StepBN,
    TdBN,
    TimeLN,
    bntt_into_lif_applies,
    make_norm,
)

EPS, MOMENTUM = 1e-4, 0.1
SHAPES = {"fc": (5, 8, 3), "conv": (4, 6, 3, 5, 5)}  # [T, B, C], [T, B, C, H, W]
TOL = dict(rtol=0, atol=2e-5)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py: tiny models, one thread


def currents(shape, seed=0) -> torch.Tensor:
    """Currents whose mean and spread change with t (what makes per-step and joint statistics differ)."""
    g = torch.Generator().manual_seed(seed)
    steps = shape[0]
    drift = torch.linspace(-1.0, 2.0, steps).view(steps, *([1] * (len(shape) - 1)))
    spread = torch.linspace(0.5, 2.0, steps).view(steps, *([1] * (len(shape) - 1)))
    return drift + spread * torch.randn(shape, generator=g)


def random_gamma(norm: nn.Module, seed=1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        norm.weight.copy_(0.5 + torch.rand(norm.weight.shape, generator=g))
        if isinstance(norm, TEBN):
            norm.step_scale.copy_(0.5 + torch.rand(norm.step_scale.shape, generator=g))


def run_with_grads(norm: nn.Module, x: torch.Tensor, upstream: torch.Tensor):
    """(output, ∂L/∂x, {param name: ∂L/∂param}) for L = Σ upstream · norm(x)."""
    x = x.clone().requires_grad_(True)
    norm.zero_grad(set_to_none=True)
    y = norm(x)
    (y * upstream).sum().backward()
    return y.detach(), x.grad.detach(), {name: p.grad.detach().clone() for name, p in norm.named_parameters()}


class StepLoop(nn.Module):
    """The seed code's time loop: ONE nn.BatchNorm{1,2}d (eps 1e-4, momentum 0.1, γ only, no β) called on
    every step's [B, C(, H, W)] in step order."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        cls = nn.BatchNorm1d if x.dim() == 3 else nn.BatchNorm2d
        self.bn = cls(x.shape[2], eps=EPS, momentum=MOMENTUM)
        self.bn.bias = None  # no β
        self.weight = self.bn.weight  # the same parameter, under the name the norms use
        self.running_mean, self.running_var = self.bn.running_mean, self.bn.running_var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.bn(x[t]) for t in range(x.shape[0])])


class JointReference(nn.Module):
    """Joint statistics over T·B(·H·W) written out: y = scale_t · γ · (x − μ)/sqrt(σ² + ε)."""

    def __init__(self, channels: int, factor: float = 1.0, step_scale: torch.Tensor | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.step_scale = None if step_scale is None else nn.Parameter(step_scale.clone())
        self.factor = factor
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, 1, *range(3, x.dim())]
        shape = [1, 1, -1] + [1] * (x.dim() - 3)
        if self.training:
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            count = x.numel() // x.shape[2]
            with torch.no_grad():
                self.running_mean.mul_(1 - MOMENTUM).add_(MOMENTUM * mean)
                self.running_var.mul_(1 - MOMENTUM).add_(MOMENTUM * var * count / (count - 1))
        else:
            mean, var = self.running_mean, self.running_var
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + EPS) * self.weight.view(shape) * self.factor
        if self.step_scale is not None:
            y = y * self.step_scale[: x.shape[0]].view(-1, *([1] * (x.dim() - 1)))
        return y


def report(name: str, **diffs: float) -> None:
    print(f"{name}: " + ", ".join(f"{key} {value:.2e}" for key, value in diffs.items()))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


# ------------------------------------------------------------------------------ bn: the paper's BN
@pytest.mark.parametrize("layout", sorted(SHAPES))
def test_step_bn_is_one_batchnorm_called_at_every_step(layout):
    x = currents(SHAPES[layout])
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    norm, bn = StepBN(x.shape[2]), StepLoop(x)
    random_gamma(norm)
    with torch.no_grad():
        bn.weight.copy_(norm.weight)
    for batch in range(3):  # several training batches: the running statistics accumulate
        xb = x + 0.3 * batch
        y, gx, grads = run_with_grads(norm, xb, upstream)
        y_ref, gx_ref, grads_ref = run_with_grads(bn, xb, upstream)
        diffs = dict(out=max_diff(y, y_ref), grad_x=max_diff(gx, gx_ref),
                     grad_gamma=max_diff(grads["weight"], grads_ref["weight"]),
                     running_mean=max_diff(norm.running_mean, bn.running_mean),
                     running_var=max_diff(norm.running_var, bn.running_var))
        report(f"StepBN {layout} batch {batch}", **diffs)
        assert all(d < 2e-5 for d in diffs.values()), diffs
    norm.eval()
    bn.eval()
    y, gx, grads = run_with_grads(norm, x, upstream)
    y_ref, gx_ref, grads_ref = run_with_grads(bn, x, upstream)
    diffs = dict(out=max_diff(y, y_ref), grad_x=max_diff(gx, gx_ref),
                 grad_gamma=max_diff(grads["weight"], grads_ref["weight"]))
    report(f"StepBN {layout} eval", **diffs)
    assert all(d < 2e-5 for d in diffs.values()), diffs
    # per-step statistics in training: every step comes out with mean 0 and std γ, whatever its drift
    norm.train()
    y = norm(x).transpose(1, 2).flatten(2)  # [T, C, B·H·W]
    torch.testing.assert_close(y.mean(-1), torch.zeros(y.shape[:2]), rtol=0, atol=1e-5)
    torch.testing.assert_close(y.std(-1, unbiased=False), norm.weight.detach().expand(y.shape[:2]),
                               rtol=0, atol=1e-3)


def test_step_bn_running_statistics_follow_the_steps_in_order():
    """r ← (1 − m)·r + m·v_t for t = 0, 1, …: later steps weigh more (not the joint mean)."""
    x = currents((6, 32, 2))
    norm = StepBN(2)
    norm(x)
    expected_mean, expected_var = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    for t in range(6):
        expected_mean = (1 - MOMENTUM) * expected_mean + MOMENTUM * x[t].double().mean(0)
        expected_var = (1 - MOMENTUM) * expected_var + MOMENTUM * x[t].double().var(0, unbiased=True)
    torch.testing.assert_close(norm.running_mean.double(), expected_mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(norm.running_var.double(), expected_var, rtol=0, atol=1e-6)
    joint = SharedBN(2)
    joint(x)
    assert not torch.allclose(joint.running_mean, norm.running_mean, atol=1e-3)


def test_step_bn_short_sequences_and_bf16():
    """Fewer steps than trained for (early exit) is fine; bf16 currents give the fp32 values rounded."""
    norm = StepBN(3)
    x = currents((2, 8, 3, 4, 4))
    y32 = norm(x)
    y16 = StepBN(3)(x.bfloat16())
    assert y16.dtype == torch.bfloat16 and y32.shape == x.shape
    torch.testing.assert_close(y16.float(), y32, rtol=0.02, atol=0.02)


# --------------------------------------------------------------------- joint statistics: bn-joint, tdbn, tebn
def make_joint_pair(kind: str, channels: int, steps: int):
    g = torch.Generator().manual_seed(3)
    if kind == "bn-joint":
        return SharedBN(channels), JointReference(channels)
    if kind == "tdbn":
        return TdBN(channels, threshold=0.5, alpha=0.7), JointReference(channels, factor=0.5 * 0.7)
    scale = 0.5 + torch.rand(steps + 2, generator=g)  # trained for more steps than the input has
    norm = TEBN(channels, steps + 2)
    with torch.no_grad():
        norm.step_scale.copy_(scale)
    return norm, JointReference(channels, step_scale=scale)


@pytest.mark.parametrize("layout", sorted(SHAPES))
@pytest.mark.parametrize("kind", ["bn-joint", "tdbn", "tebn"])
def test_joint_statistics_norms_match_the_written_out_formula(kind, layout):
    x = currents(SHAPES[layout])
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(4))
    norm, ref = make_joint_pair(kind, x.shape[2], x.shape[0])
    random_gamma(norm)
    with torch.no_grad():
        ref.weight.copy_(norm.weight)
        if kind == "tebn":
            ref.step_scale.copy_(norm.step_scale)
    for batch in range(2):
        xb = x - 0.5 * batch
        y, gx, grads = run_with_grads(norm, xb, upstream)
        y_ref, gx_ref, grads_ref = run_with_grads(ref, xb, upstream)
        diffs = dict(out=max_diff(y, y_ref), grad_x=max_diff(gx, gx_ref),
                     grad_gamma=max_diff(grads["weight"], grads_ref["weight"]),
                     running_mean=max_diff(norm.running_mean, ref.running_mean),
                     running_var=max_diff(norm.running_var, ref.running_var))
        if kind == "tebn":
            diffs["grad_p"] = max_diff(grads["step_scale"], grads_ref["step_scale"])
            assert float(grads["step_scale"][x.shape[0]:].abs().max()) == 0.0  # steps not run get no gradient
        report(f"{kind} {layout} batch {batch}", **diffs)
        assert all(d < 2e-5 for d in diffs.values()), diffs
    norm.eval()
    ref.eval()
    y, gx, grads = run_with_grads(norm, x, upstream)
    y_ref, gx_ref, grads_ref = run_with_grads(ref, x, upstream)
    diffs = dict(out=max_diff(y, y_ref), grad_x=max_diff(gx, gx_ref),
                 grad_gamma=max_diff(grads["weight"], grads_ref["weight"]))
    if kind == "tebn":
        diffs["grad_p"] = max_diff(grads["step_scale"], grads_ref["step_scale"])
    report(f"{kind} {layout} eval", **diffs)
    assert all(d < 2e-5 for d in diffs.values()), diffs


def test_tdbn_normalises_to_alpha_theta_and_tebn_starts_as_joint_bn():
    x = currents((4, 16, 3, 3, 3))
    y = TdBN(3, threshold=0.5)(x).transpose(1, 2).flatten(2)  # [T, C, ...] → per channel over T·B·H·W
    per_channel = y.transpose(0, 1).flatten(1)
    torch.testing.assert_close(per_channel.std(-1, unbiased=False), torch.full((3,), 0.5), rtol=0, atol=1e-4)
    torch.testing.assert_close(TEBN(3, 4)(x), SharedBN(3)(x), rtol=0, atol=0)  # p_t = 1 at first
    assert TEBN(3, 4).step_scale.shape == (4,)  # one scalar per step, shared by the channels (authors' code)


def test_bn_and_bn_joint_agree_at_inference_but_not_in_training():
    x = currents((5, 16, 3))
    step, joint = StepBN(3), SharedBN(3)
    assert not torch.allclose(step(x), joint(x), atol=1e-3)
    step.eval()
    joint.eval()
    with torch.no_grad():
        for buffer in ("running_mean", "running_var"):
            for norm in (step, joint):
                getattr(norm, buffer).copy_(torch.linspace(0.5, 1.5, 3))
    torch.testing.assert_close(step(x), joint(x), rtol=0, atol=0)


# --------------------------------------------------------------------------------- errors and building
@pytest.mark.parametrize("kind", NORMS)
def test_bad_input_is_a_clear_error(kind):
    norm = make_norm(kind, 3, 4)
    if isinstance(norm, NoNorm):
        return  # the identity takes anything
    with pytest.raises(ValueError, match=r"time-major input \[T, B, C\]"):
        norm(torch.zeros(4, 2, 3, 5))
    with pytest.raises(ValueError, match="built for 3 channels; input has 2"):
        norm(torch.zeros(4, 2, 2))
    if kind in ("bntt", "tebn"):
        with pytest.raises(ValueError, match="4 steps; input has T = 5"):
            norm(torch.zeros(5, 2, 3))


def test_make_norm_names_every_choice():
    with pytest.raises(ValueError) as error:
        make_norm("batchnorm", 3, 4)
    for name in NORMS:
        assert repr(name) in str(error.value)
    expected = {"bntt": BNTT, "bn": StepBN, "bn-joint": SharedBN, "tdbn": TdBN, "tebn": TEBN, "ln": TimeLN,
                "none": NoNorm}
    assert set(NORMS) == set(expected)
    for name, cls in expected.items():
        assert type(make_norm(name, 3, 4)) is cls
    assert make_norm("tdbn", 3, 4, threshold=0.25).threshold == 0.25
    with pytest.raises(ValueError):
        TdBN(3, threshold=0.0)
    assert set(ONE_STATISTIC_NORMS) == {StepBN, SharedBN, TdBN, TEBN}


@pytest.mark.parametrize("kind", NORMS)
def test_models_build_every_norm_and_only_bntt_and_bn_take_the_fused_cpu_path(kind):
    torch.manual_seed(0)
    model = build_model("vgg5", num_classes=3, in_channels=1, image_size=8, num_steps=3, width=0.0625,
                        norm=kind, threshold=0.5)
    layer = model.layers[0]
    if kind == "tdbn":
        assert layer.norm.threshold == 0.5  # θ of the LIF it feeds
    if kind == "tebn":
        assert layer.norm.step_scale.shape == (3,)
    current = torch.randn(3, 4, getattr(layer.norm, "num_features", 4), 8, 8)
    if kind not in ("bntt", "bn"):  # the fused loops compute per-step statistics: never another norm's
        assert not bntt_into_lif_applies(layer.norm, layer.neuron, current)
    images = torch.randn(4, 1, 8, 8)
    loss = model(images, generator=torch.Generator().manual_seed(0)).logsumexp(-1).sum()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert model(images, num_steps=2, generator=torch.Generator().manual_seed(0)).shape == (4, 3)


# ------------------------------------------------------------------------------------------ run format
def test_run_format_maps_the_old_bn_to_bn_joint(tmp_path):
    from bntt_core.data import DataInfo
    from bntt_core.nn.models import ModelSpec, model_from_spec

    info = DataInfo(name="mnist10k", in_channels=1, image_size=8, num_classes=4, mean=(0.13,), std=(0.31,),
                    class_names=("a", "b", "c", "d"), augment="crop", num_steps_hint=None, source="hand-made")
    data = runs.data_section(info, dataset="mnist10k", data_dir=None, split_seed=0)
    for norm in ("bn", "bntt"):
        spec = ModelSpec(arch="mlp", num_classes=4, in_channels=1, image_size=8, num_steps=3, width=0.05, norm=norm)
        config = runs.make_config(kind="trained", spec=spec, data=data, train={"norm": norm, "lr": 0.1})
        assert config["format"] == runs.RUN_FORMAT == "bntt-run/2"
        new, old = tmp_path / f"new-{norm}", tmp_path / f"old-{norm}"
        for path, run_format in ((new, "bntt-run/2"), (old, "bntt-run/1")):
            path.mkdir()
            runs.write_config(path, {**config, "format": run_format})
            runs.save_weights(model_from_spec(spec), path / runs.WEIGHTS_FILE)
        assert runs.read_config(new)["model"]["norm"] == norm  # today's names are never touched
        assert "format_upgraded_from" not in runs.read_config(new)
        upgraded = runs.read_config(old)
        expected = "bn-joint" if norm == "bn" else norm
        assert upgraded["model"]["norm"] == upgraded["train"]["norm"] == expected
        assert upgraded["format"] == "bntt-run/2" and upgraded["format_upgraded_from"] == "bntt-run/1"
        assert json.loads((old / runs.CONFIG_FILE).read_text())["model"]["norm"] == norm  # the file is not rewritten
        loaded = runs.load_run(old)
        assert type(loaded.model.layers[0].norm) is (SharedBN if norm == "bn" else BNTT)
        assert type(runs.load_run(new).model.layers[0].norm) is (StepBN if norm == "bn" else BNTT)
        assert [e.norm for e in runs.find_runs([old])] == [expected]
    # a checkpoint's train settings go through the same mapping (training._read_checkpoint)
    assert runs.upgrade_settings({"norm": "bn", "lr": 1}, "bntt-run/1") == {"norm": "bn-joint", "lr": 1}
    assert runs.upgrade_settings({"norm": "bn"}, "bntt-run/2") == {"norm": "bn"}
    assert runs.upgrade_settings(None, "bntt-run/1") is None


def test_an_old_checkpoint_resumes_as_bn_joint(tmp_path):
    """A checkpoint without "run_format" was written when "bn" meant bn-joint (training._read_checkpoint)."""
    from bntt_core.runs import training

    path = tmp_path / runs.CHECKPOINT_FILE
    stored = training.TrainConfig(norm="bn").to_dict()
    torch.save({"format": training.CHECKPOINT_FORMAT, "config": stored}, path)
    training._read_checkpoint(path, training.TrainConfig(norm="bn-joint"))  # the same run: no error
    with pytest.raises(training.ResumeError, match="norm"):
        training._read_checkpoint(path, training.TrainConfig(norm="bn"))
    torch.save({"format": training.CHECKPOINT_FORMAT, "run_format": runs.RUN_FORMAT, "config": stored}, path)
    training._read_checkpoint(path, training.TrainConfig(norm="bn"))  # today's names are kept
    with pytest.raises(training.ResumeError, match="norm"):
        training._read_checkpoint(path, training.TrainConfig(norm="bn-joint"))
