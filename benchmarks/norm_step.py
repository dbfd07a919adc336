"""One training step per normalisation, timed alternately in ONE process: what each norm of the ablation costs.

Evidence (numbers in benchmarks/README.md, "Norms"): the shipped ablations train vgg5 ×¼ with bntt, the paper's
standard BN (`bn`, StepBN), LN and none at the same T; the BN baseline's CIFAR-10 T = 15 epochs took 500 s against
BNTT's 285 s on the same CPU, because only BNTT went through the compiled BN→LIF loops. Here every way trains
the same model shape on the same batch in one process, timed in rounds (way 1, way 2, ..., way 1, ...), so
that slow phases of a shared machine hit all of them; each way's median CPU time per step is printed with
its ratio to `none` (no normalisation: the floor of the SNN step), the median of the per-round ratios.
`bn (eager)` is the paper's BN with the compiled loops turned off for its norm layers — what every `bn` run
paid before StepBN took the fused path.

    .venv/bin/python benchmarks/norm_step.py                  # native ISA, CIFAR-10 shapes, T=15, B=64
    .venv/bin/python benchmarks/norm_step.py --isa avx2       # as on an AVX2-only CPU (re-executes itself)
    .venv/bin/python benchmarks/norm_step.py --T 20 --B 64 --image-size 28 --channels 1 --rounds 7
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.train_step import ISA_HOLDS, machine_header  # noqa: E402

WAYS = ("none", "bntt", "bn", "bn (eager)", "ln")


def measure(steps: int, batch: int, channels: int, image_size: int, rounds: int) -> dict[str, dict]:
    import torch

    import bntt_core
    from bntt_core.nn import models as models_module
    from bntt_core.nn.step import keep_freed_memory_for_reuse, resolve_precision

    torch.set_num_threads(1)  # as the CPU presets train
    keep_freed_memory_for_reuse()
    images = torch.randn(batch, channels, image_size, image_size)
    labels = torch.randint(0, 10, (batch,))
    setups = {}
    for way in WAYS:
        torch.manual_seed(0)
        model = bntt_core.build_model("vgg5", num_classes=10, in_channels=channels, image_size=image_size,
                                      num_steps=steps, width=0.25, norm=way.split()[0])
        setups[way] = (model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))

    @contextlib.contextmanager
    def eager_norms(way: str):
        if way != "bn (eager)":
            yield
            return
        fused = models_module.bntt_into_lif_applies
        models_module.bntt_into_lif_applies = lambda *args: False
        try:
            yield
        finally:
            models_module.bntt_into_lif_applies = fused

    def step(way: str) -> float:
        model, optimizer = setups[way]
        with eager_norms(way):
            start = time.process_time()
            bntt_core.train_step(model, optimizer, images, labels)
            return time.process_time() - start

    for way in WAYS * 2:  # warm-up: oneDNN primitives, the heap
        step(way)
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    for _ in range(rounds):
        for way in WAYS:
            times[way].append(step(way))
    floor = times["none"]
    return {way: {"seconds": statistics.median(measured),
                  "ratio": statistics.median(t / f for t, f in zip(measured, floor, strict=True)),
                  "precision": resolve_precision(None, torch.device("cpu"))}
            for way, measured in times.items()}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--isa", choices=("native", "avx2"), default="native")
    parser.add_argument("--T", type=int, default=15)
    parser.add_argument("--B", type=int, default=64)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of every way (default 5)")
    args = parser.parse_args(argv)
    holds = ISA_HOLDS.get(args.isa, {})
    if any(os.environ.get(key) != value for key, value in holds.items()):  # the holds act at import: re-exec
        done = subprocess.run([sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])],
                              env={**os.environ, **holds})
        raise SystemExit(done.returncode)
    print(machine_header(args.isa))
    rows = measure(args.T, args.B, args.channels, args.image_size, args.rounds)
    precision = next(iter(rows.values()))["precision"]
    print(f"# vgg5 ×¼, {args.channels}×{args.image_size}², T={args.T} B={args.B}, {precision}, 1 thread, "
          f"median of {args.rounds} rounds (CPU time per training step)")
    print("| norm | s / step | / none |\n|---|---|---|")
    for way, row in rows.items():
        print(f"| {way} | {row['seconds']:.3f} | {row['ratio']:.2f} |")
    return rows["bn"]["ratio"] / rows["bntt"]["ratio"]  # the paper's BN against BNTT: ~1 once both are fused


if __name__ == "__main__":
    main()
