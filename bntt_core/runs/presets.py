"""Named training recipes: the paper's (SPEC "Training recipe", paper §4.1) and two that fit a CPU.

A preset is a set of TrainConfig overrides; any flag given on the command line overrides the preset.

    bntt train --preset quickstart --out runs/first          # mnist10k, minutes on a 2-core CPU
    bntt train --preset paper-cifar10 --epochs 100           # the official README's 100 epochs
    bntt presets                                             # list them

    from bntt_core.runs.presets import preset_settings
    config = TrainConfig(**preset_settings("quickstart"), seed=1)

Settings common to all paper presets come from TrainConfig's defaults (SGD, momentum 0.9, weight
decay 5e-4, base lr 0.3, lr ÷10 at 50/70/90% of the epochs, Poisson input, BNTT, θ = 1, seed 0).
The CPU presets train on one thread: these small networks gain little from a second one, and on a
CPU shared with other work torch's default (one thread per core) made training 5× slower here.

Every `measured` line describes runs trained on ALL their training images, before the held-out
validation slice existed. A new run holds out 10% of them (TrainConfig.validation_fraction, for choosing
the early-exit τ) and trains on the other 90%, so its accuracy may differ slightly; `--validation-fraction
0` trains exactly as those runs did.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UnknownPresetError(ValueError):
    """A preset name that is not in PRESETS."""


@dataclass(frozen=True)
class Preset:
    description: str
    settings: dict = field(default_factory=dict)
    measured: str = ""  # what this preset achieved when we ran it (time, accuracy, machine)


PRESETS: dict[str, Preset] = {
    "paper-cifar10": Preset(
        "Paper Table 1: VGG9 BNTT on CIFAR-10, T=25, leak 0.95, 120 epochs (official README: bs 256)",
        dict(arch="vgg9", dataset="cifar10", num_steps=25, leak=0.95, epochs=120, batch_size=256, lr=0.3),
        "paper: 90.5%; ours: 83.52% after 22 of the 120 epochs (--epochs 22) on one NVIDIA H100, 15.6 s per "
        "epoch (data/runs/cifar10-vgg9-paper); a full run is ~32 min there",
    ),
    "paper-cifar100": Preset(
        "Paper Table 1: VGG11 BNTT on CIFAR-100, T=30, leak 0.99, 240 epochs (official README: bs 128)",
        dict(arch="vgg11", dataset="cifar100", num_steps=30, leak=0.99, epochs=240, batch_size=128, lr=0.3),
        "paper: 66.6%; GPU-scale (not run here)",
    ),
    "paper-tinyimagenet": Preset(
        "Paper Table 1: VGG11 BNTT on Tiny-ImageNet (64×64, 200 classes), T=30, leak 0.99, 90 epochs",
        dict(arch="vgg11", dataset="tiny-imagenet", num_steps=30, leak=0.99, epochs=90, batch_size=128, lr=0.3),
        "paper: 57.8%; GPU-scale (not run here)",
    ),
    "paper-dvs-cifar10": Preset(
        "Paper Table 2: BNTT on DVS-CIFAR10 event frames, T=20, 60 epochs (VGG9 here: the paper follows "
        "Wu et al. 2019 without listing the layers; the frames are already spikes, so no Poisson coding)",
        dict(arch="vgg9", dataset="dvs-cifar10", num_steps=20, leak=0.95, epochs=60, batch_size=128, lr=0.3),
        "paper: 63.2%; GPU-scale (not run here)",
    ),
    "paper-seq-mnist": Preset(
        "Paper Table 3: FC(1,256)-FC(256,256)-FC(256,10), one pixel per step (T=784), BNTT on both hidden "
        "layers. The paper gives no epochs, lr or leak for it: 60 epochs, lr 0.3, leak 0.99 are ours",
        dict(arch="seqfc", dataset="seq-mnist", num_steps=784, leak=0.99, epochs=60, batch_size=128, lr=0.3,
             augment=False),
        "paper: 96.6%; GPU-scale (not run here)",
    ),
    "quickstart": Preset(
        "CPU, minutes: a quarter-width VGG5 BNTT on the embedded mnist10k (8,000 / 2,000), T=6, 4 epochs "
        "(no augmentation: in 4 epochs random crops cost accuracy). Batch 16 at lr 0.3 gives γ the updates "
        "it needs to take the paper's shape in 4 epochs (it rises, then falls, deeper layers later; at batch "
        "64 and lr 0.1 it stays flat near 0.84: experiments/quickstart_candidates.plan)",
        dict(arch="vgg5", dataset="mnist10k", width=0.25, num_steps=6, leak=0.95, epochs=4, batch_size=16,
             lr=0.3, lr_milestones=(0.75,), augment=False, threads=1),
        "98.42 ± 0.32% on the 2,000 test images (seeds 0-2: 98.60, 98.05, 98.60; bf16 default, 2-core Intel Xeon "
        "with AMX), 77 s training at load ~4 and up to 299 s at load ~9 (other trainings beside it); mean γ rises "
        "then falls, deeper layers later (conv1 peaks at t=1, conv3 t=2, fc1 t=3); the τ chosen on the validation "
        "slice (~0.40) exits at t=3 of 6 for -0.10/-0.25/-0.70 points. Held to AVX2 (fp32), one epoch of it took "
        "56 s against 80 s for the old batch-64 recipe in the same conditions (whose 4 epochs took 118 s on an idle "
        "AVX2-held EPYC)",
    ),
    "cifar10-cpu": Preset(
        "CPU, ~10 min: a quarter-width VGG5 BNTT on real CIFAR-10 (50,000 / 10,000), T=5, 8 epochs with "
        "the paper's schedule (lr ÷10 at 50/70/90%) and augmentation",
        dict(arch="vgg5", dataset="cifar10", width=0.25, num_steps=5, leak=0.95, epochs=8, batch_size=64,
             lr=0.1, threads=1),
        "67.90 ± 0.34% on the full 10,000 test images (seeds 0-2: 68.25, 67.58, 67.86; bf16 default), 8-10 min "
        "wall each on the shared 2-core CPU, one thread, two runs at a time; --norm bn-joint 69.58 ± 0.47% "
        "(measured when \"bn\" meant bn-joint), --norm none 62.23% (seed 0) (REPRODUCTION.md)",
    ),
    "cifar10-t15": Preset(
        "CPU, ~40 min per run: cifar10-cpu at T=15, where a layer's input distribution has time to change "
        "(issue 16's CIFAR-10 rows): a quarter-width VGG5 on real CIFAR-10, 8 epochs with the paper's schedule "
        "and augmentation; add --norm bn|none for the other rows",
        dict(arch="vgg5", dataset="cifar10", width=0.25, num_steps=15, leak=0.95, epochs=8, batch_size=64,
             lr=0.1, threads=1),
        "",
    ),
    "fashion-cpu": Preset(
        "CPU, ~4-7 min per run: the earlier T=6 ablation (REPRODUCTION.md; the shipped runs are fashion-t20's). "
        "A quarter-width VGG5 on real "
        "Fashion-MNIST (60,000 / 10,000), T=6, 3 epochs at a constant lr 0.1, no augmentation; add --norm "
        "bn|bn-joint|tdbn|tebn|ln|none or --ann for the other rows of the comparison",
        dict(arch="vgg5", dataset="fashion-mnist", width=0.25, num_steps=6, leak=0.95, epochs=3, batch_size=64,
             lr=0.1, lr_milestones=(1.0,), augment=False, threads=1),
        "BNTT 88.42 ± 0.27% on the 10,000 test images (seeds 0-2: 88.20, 88.72, 88.35), 6.5-7 min wall each on "
        "the shared 2-core CPU, one thread, two runs at a time; bn-joint 88.41 ± 0.50, LN 86.77 ± 0.79, none "
        "86.72 ± 0.52, ANN twin 89.33 ± 1.09 (REPRODUCTION.md)",
    ),
    "fashion-t20": Preset(
        "CPU, ~15 min per run: the longer-T ablation, where a layer's input distribution has time to change. "
        "A quarter-width VGG5 on Fashion-MNIST at T=20, a fixed 20,000-image training subset (from the 54,000 "
        "left after the 10% validation slice), 5 epochs with lr ÷10 at 60% and 80%, no augmentation; "
        "add --norm bn|bn-joint|tdbn|tebn|ln|none or --ann for the other rows",
        dict(arch="vgg5", dataset="fashion-mnist", width=0.25, num_steps=20, leak=0.95, epochs=5, batch_size=64,
             lr=0.1, lr_milestones=(0.6, 0.8), augment=False, max_train_images=20000, threads=1),
        "seed 0 on the 10,000 test images: BNTT 89.98% (seed 1: 90.09%), --norm bn (the paper's) 89.94% (seed 1: "
        "89.12%), --norm none "
        "89.09%, --ann 91.17%; 1,150-2,020 s of training each on a shared 2-core Intel Xeon (AMX, bf16), two runs at a "
        "time plus other jobs; the full analysis (noise both ways, FGSM) about as long again (REPRODUCTION.md)",
    ),
    "workshop-fashion": Preset(
        "CPU, minutes (the dashboard's Train page): a quarter-width VGG5 BNTT on a fixed 20,000-image subset of "
        "Fashion-MNIST (tested on all 10,000), T=6, 3 epochs at a constant lr 0.1, no augmentation",
        dict(arch="vgg5", dataset="fashion-mnist", width=0.25, num_steps=6, leak=0.95, epochs=3, batch_size=64,
             lr=0.1, lr_milestones=(1.0,), augment=False, max_train_images=20000, threads=1),
        "86.57% on the 10,000 test images (seed 0, bf16 default), 7.9 min wall from Start to analysed (training "
        "7.1 min at 2.3-2.6 min per epoch, then bntt analyze --quick 36 s) on the shared 2-core CPU at load average "
        "6-9 (other trainings and test runs beside it); the quickstart took 2.6 min under the same load (51 s "
        "on a quieter CPU, its own line), so a quiet 2-core CPU should take about a third of this (not measured)",
    ),
}


def preset_settings(name: str) -> dict:
    """The TrainConfig overrides of preset `name` (a fresh dict, plus `preset=name`)."""
    if name not in PRESETS:
        raise UnknownPresetError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return {**PRESETS[name].settings, "preset": name}
