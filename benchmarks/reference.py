"""The two yardsticks of `benchmarks/train_step.py`: the seed code's per-step loop and the dense floor.

SeedStyleVGG9  VGG9 with BNTT written the way the official BNTT code is written (seed 001): T separate
               BatchNorm modules per layer (no β, ε = 1e-4), the time loop outside and the layer loop
               inside, the membrane updated as `leak·U + BN_t(conv(x))`, the spike from a surrogate
               autograd function on `U/θ − 1`, the reset through a `zeros_like` tensor filled where the
               neuron fired, `clone()` of every spike map. fp32. This is what "the reference loop" means
               in the results table: everything the project does differently is measured against it.
               `copy_from(model)` loads a `bntt_core` VGG9's weights, so the two compute the same thing.
DenseFloorVGG9 The same convolutions, pooling and linear layers on T·B images at once with no SNN logic
               at all (no norm, no neuron, no time loop): the cost of the arithmetic that any
               implementation of this network has to do. Run in fp32, and in bf16 autocast with
               channels_last (the fastest way to run these convolutions on this CPU).

    ref = SeedStyleVGG9(num_steps=25)
    logits = ref(images)                 # [B, 3, 32, 32] normalised → [B, 10]
    floor = DenseFloorVGG9(num_steps=25)
    logits = floor(encoded)              # [T, B, 3, 32, 32] → [B, 10]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (channels, AvgPool2d(2) after the layer's spikes): SPEC "Architectures", VGG9
VGG9_CONVS = ((64, False), (64, True), (128, False), (128, True), (256, False), (256, False), (256, True))
VGG9_HIDDEN = 1024
TRIANGLE_ALPHA = 0.3


class SeedSpike(torch.autograd.Function):
    """The official code's spike: Heaviside of mem/θ − 1 forward, 0.3·max(0, 1 − |·|) backward."""

    @staticmethod
    def forward(ctx, mem_thr):
        ctx.save_for_backward(mem_thr)
        return mem_thr.gt(0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (mem_thr,) = ctx.saved_tensors
        return grad_output * TRIANGLE_ALPHA * F.threshold(1.0 - torch.abs(mem_thr), 0, 0)


def _poisson(x: torch.Tensor, rescale: float = 2.0) -> torch.Tensor:
    """One step of the official rate code on normalised input: sign(x)·1[rescale·u ≤ |x|]."""
    return torch.sign(x) * (torch.rand_like(x) * rescale <= x.abs()).float()


class SeedStyleVGG9(nn.Module):
    """VGG9 + BNTT with the seed code's structure: for t in steps: for layer in layers (fp32)."""

    def __init__(self, num_steps: int, num_classes: int = 10, image_size: int = 32, in_channels: int = 3,
                 leak: float = 0.95, threshold: float = 1.0):
        super().__init__()
        self.num_steps, self.leak, self.threshold = num_steps, leak, threshold
        self.conv_list = nn.ModuleList()
        self.bntt_list = nn.ModuleList()
        self.pool_list = []
        channels = in_channels
        for out, pool in VGG9_CONVS:
            self.conv_list.append(nn.Conv2d(channels, out, 3, padding=1, bias=False))
            self.bntt_list.append(nn.ModuleList(_no_beta(nn.BatchNorm2d(out, eps=1e-4, momentum=0.1))
                                                for _ in range(num_steps)))
            self.pool_list.append(nn.AvgPool2d(2) if pool else False)
            channels = out
        flat = channels * (image_size // 8) ** 2
        self.fc1 = nn.Linear(flat, VGG9_HIDDEN, bias=False)
        self.bntt_fc = nn.ModuleList(_no_beta(nn.BatchNorm1d(VGG9_HIDDEN, eps=1e-4, momentum=0.1))
                                     for _ in range(num_steps))
        self.fc2 = nn.Linear(VGG9_HIDDEN, num_classes, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, gain=2.0)

    @torch.no_grad()
    def copy_from(self, model: nn.Module) -> SeedStyleVGG9:
        """Take the weights, γ_t and running statistics of a bntt_core VGG9 (`build_model("vgg9", ...)`)."""
        layers = list(model.layers)
        for i, conv in enumerate(self.conv_list):
            conv.weight.copy_(layers[i].synapse.weight)
        self.fc1.weight.copy_(layers[-1].synapse.weight)
        self.fc2.weight.copy_(model.classifier.weight)
        for norms, layer in zip([*self.bntt_list, self.bntt_fc], layers, strict=True):
            for t, bn in enumerate(norms):
                bn.weight.copy_(layer.norm.weight[t])
                bn.running_mean.copy_(layer.norm.running_mean[t])
                bn.running_var.copy_(layer.norm.running_var[t])
        return self

    def forward(self, inp: torch.Tensor, encoded: torch.Tensor | None = None) -> torch.Tensor:
        """`inp` normalised images [B, C, H, W]; `encoded` [T, B, C, H, W] replaces the Poisson draw."""
        batch_size = inp.size(0)
        mem_conv_list, size = [], inp.size(2)
        for (out, pool), _ in zip(VGG9_CONVS, self.conv_list, strict=True):
            mem_conv_list.append(torch.zeros(batch_size, out, size, size, device=inp.device))
            size = size // 2 if pool else size
        mem_fc1 = torch.zeros(batch_size, VGG9_HIDDEN, device=inp.device)
        mem_fc2 = torch.zeros(batch_size, self.fc2.out_features, device=inp.device)

        for t in range(self.num_steps):
            out_prev = _poisson(inp) if encoded is None else encoded[t]
            for i, conv in enumerate(self.conv_list):
                mem_conv_list[i] = self.leak * mem_conv_list[i] + self.bntt_list[i][t](conv(out_prev))
                mem_thr = (mem_conv_list[i] / self.threshold) - 1.0
                out = SeedSpike.apply(mem_thr)
                rst = torch.zeros_like(mem_conv_list[i])
                rst[mem_thr > 0] = self.threshold
                mem_conv_list[i] = mem_conv_list[i] - rst
                out_prev = out.clone()
                if self.pool_list[i] is not False:
                    out = self.pool_list[i](out_prev)
                    out_prev = out.clone()
            out_prev = out_prev.reshape(batch_size, -1)
            mem_fc1 = self.leak * mem_fc1 + self.bntt_fc[t](self.fc1(out_prev))
            mem_thr = (mem_fc1 / self.threshold) - 1.0
            out = SeedSpike.apply(mem_thr)
            rst = torch.zeros_like(mem_fc1)
            rst[mem_thr > 0] = self.threshold
            mem_fc1 = mem_fc1 - rst
            out_prev = out.clone()
            mem_fc2 = mem_fc2 + self.fc2(out_prev)  # no threshold, no leak at the output
        return mem_fc2 / self.num_steps


def _no_beta(bn: nn.modules.batchnorm._BatchNorm) -> nn.modules.batchnorm._BatchNorm:
    bn.bias = None  # BNTT has no β (SPEC); the seed code and snnTorch drop it the same way
    return bn


class DenseFloorVGG9(nn.Module):
    """VGG9's convolutions, pools and linear layers on T·B images at once; no norm, no neuron."""

    def __init__(self, num_steps: int, num_classes: int = 10, image_size: int = 32, in_channels: int = 3):
        super().__init__()
        self.num_steps = num_steps
        layers, channels = [], in_channels
        for out, pool in VGG9_CONVS:
            layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=False))
            if pool:
                layers.append(nn.AvgPool2d(2))
            channels = out
        layers += [nn.Flatten(), nn.Linear(channels * (image_size // 8) ** 2, VGG9_HIDDEN, bias=False),
                   nn.Linear(VGG9_HIDDEN, num_classes, bias=False)]
        self.net = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, gain=2.0)

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        """encoded [T, B, C, H, W] (any memory format per image) → mean over T of the output [B, classes]."""
        steps, batch = encoded.shape[:2]
        return self.net(encoded.flatten(0, 1)).unflatten(0, (steps, batch)).float().mean(0)
