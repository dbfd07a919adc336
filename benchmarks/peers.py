"""The same VGG9 + BNTT network built with the two established SNN libraries (the optional `bench` extra).

snnTorch 1.0.0     `snn.BatchNormTT2d`/`BatchNormTT1d` (a ModuleList of T BatchNorms, no β) and
                   `snn.Leaky` (soft "subtract" reset), written the way snnTorch's tutorials write
                   a network: the time loop outside, the layer loop inside, state carried by hand.
SpikingJelly 2.0.0 multi-step mode ([T, B, ...] through every layer): `layer.Conv2d`/`layer.Linear`,
                   `layer.BatchNormThroughTime2d`/`1d` (its BNTT), `neuron.LIFNode` with λ = 1 − 1/τ =
                   0.95 (τ = 20, decay_input=False), soft reset (v_reset=None), detached reset, the
                   "torch" backend (its CUDA/triton backends do not run on a CPU).

Both use an arctan surrogate (the libraries' usual choice; the project's triangle is a few more cheap
elementwise ops in either library), ε = 1e-4, threshold 1, leak 0.95, AvgPool2d(2) on spike maps,
a non-spiking output layer averaged over T, fp32 — the same network and arithmetic as the project's
VGG9, so a step of each is the same amount of work.

`build_peer(name, num_steps)` returns a module mapping encoded input [T, B, 3, 32, 32] → logits
[B, 10], or raises PeerUnavailable with the reason (library not installed, or a different version).
"""

from __future__ import annotations

import importlib.metadata

import torch
from torch import nn

from benchmarks.reference import VGG9_CONVS, VGG9_HIDDEN

PEERS = {"snntorch": "1.0.0", "spikingjelly": "2.0.0"}
LEAK, THRESHOLD, EPS = 0.95, 1.0, 1e-4


class PeerUnavailable(RuntimeError):
    """The peer library cannot be imported here; the message says why."""


def _check_version(name: str) -> object:
    try:
        module = __import__(name)
    except Exception as error:  # ImportError, or a broken optional dependency inside the library
        raise PeerUnavailable(f"{name} cannot be imported ({type(error).__name__}: {error}); "
                              f"install the bench extra: pip install {name}=={PEERS[name]}") from None
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(module, "__version__", "unknown")
    if version != PEERS[name]:
        raise PeerUnavailable(f"{name} {version} is installed; the benchmark pins {PEERS[name]}")
    return module


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight, gain=2.0)


class SnnTorchVGG9(nn.Module):
    def __init__(self, num_steps: int, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        snn = _check_version("snntorch")
        from snntorch import surrogate

        self.num_steps = num_steps
        self.convs, self.bntts, self.lifs, self.pools = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), []
        channels = 3
        for out, pool in VGG9_CONVS:
            self.convs.append(nn.Conv2d(channels, out, 3, padding=1, bias=False))
            self.bntts.append(snn.BatchNormTT2d(out, num_steps, eps=EPS))
            self.lifs.append(snn.Leaky(beta=LEAK, threshold=THRESHOLD, spike_grad=surrogate.atan(),
                                       reset_mechanism="subtract"))
            self.pools.append(nn.AvgPool2d(2) if pool else None)
            channels = out
        self.fc1 = nn.Linear(channels * (image_size // 8) ** 2, VGG9_HIDDEN, bias=False)
        self.bntt_fc = snn.BatchNormTT1d(VGG9_HIDDEN, num_steps, eps=EPS)
        self.lif_fc = snn.Leaky(beta=LEAK, threshold=THRESHOLD, spike_grad=surrogate.atan(),
                                reset_mechanism="subtract")
        self.fc2 = nn.Linear(VGG9_HIDDEN, num_classes, bias=False)
        _xavier(self)

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        mems = [lif.init_leaky() for lif in self.lifs]
        mem_fc = self.lif_fc.init_leaky()
        total = 0.0
        for t in range(self.num_steps):
            x = encoded[t]
            for i, conv in enumerate(self.convs):
                spikes, mems[i] = self.lifs[i](self.bntts[i][t](conv(x)), mems[i])
                x = spikes if self.pools[i] is None else self.pools[i](spikes)
            spikes, mem_fc = self.lif_fc(self.bntt_fc[t](self.fc1(x.flatten(1))), mem_fc)
            total = total + self.fc2(spikes)
        return total / self.num_steps


class SpikingJellyVGG9(nn.Module):
    def __init__(self, num_steps: int, num_classes: int = 10, image_size: int = 32):
        super().__init__()
        _check_version("spikingjelly")
        try:
            from spikingjelly.activation_based import functional, layer, neuron, surrogate
        except Exception as error:
            raise PeerUnavailable(f"spikingjelly.activation_based cannot be imported ({error})") from None
        self._reset_net = functional.reset_net

        def lif() -> nn.Module:
            return neuron.LIFNode(tau=1.0 / (1.0 - LEAK), decay_input=False, v_threshold=THRESHOLD,
                                  v_reset=None, surrogate_function=surrogate.ATan(), detach_reset=True,
                                  step_mode="m")

        parts, channels = [], 3
        for out, pool in VGG9_CONVS:
            parts += [layer.Conv2d(channels, out, 3, padding=1, bias=False, step_mode="m"),
                      layer.BatchNormThroughTime2d(num_steps, out, eps=EPS, step_mode="m"), lif()]
            if pool:
                parts.append(layer.AvgPool2d(2, step_mode="m"))
            channels = out
        parts += [layer.Flatten(step_mode="m"),
                  layer.Linear(channels * (image_size // 8) ** 2, VGG9_HIDDEN, bias=False, step_mode="m"),
                  layer.BatchNormThroughTime1d(num_steps, VGG9_HIDDEN, eps=EPS, step_mode="m"), lif(),
                  layer.Linear(VGG9_HIDDEN, num_classes, bias=False, step_mode="m")]
        self.net = nn.Sequential(*parts)
        _xavier(self)

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        self._reset_net(self.net)  # SpikingJelly keeps membrane and BNTT step counters between calls
        return self.net(encoded).mean(0)


def build_peer(name: str, num_steps: int) -> nn.Module:
    if name == "snntorch":
        return SnnTorchVGG9(num_steps)
    if name == "spikingjelly":
        return SpikingJellyVGG9(num_steps)
    raise ValueError(f"unknown peer {name!r}; choose one of {sorted(PEERS)}")
