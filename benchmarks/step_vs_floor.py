"""The project's training step against the fastest dense floor, timed alternately in ONE process.

Evidence (benchmarks/README.md, "Both ISAs"): on a shared 2-vCPU VM, train_step.py's one-process-per-way
ratios moved between 1.12 and 1.40 from run to run for the same code, because each process gets its own
memory placement and neighbours' load. Here both steps share the process, the allocator setting and the
data, and are timed in alternation (project, floor, project, floor, ...), so slow phases of the machine
hit both; the ratio printed is the median of the per-round ratios, with the range of those ratios.

    .venv/bin/python benchmarks/step_vs_floor.py                    # native ISA, T=10 B=16 and T=25 B=32
    .venv/bin/python benchmarks/step_vs_floor.py --isa avx2         # as on an AVX2-only CPU (re-executes
                                                                    # itself with the holds of train_step.py)
    .venv/bin/python benchmarks/step_vs_floor.py --T 10 --B 16 --rounds 7

The floor is DenseFloorVGG9 (the same convolutions, pools and linears on T·B images, no SNN logic) in the
fastest form for the precision the project resolves to: channels_last fp32 or channels_last bf16 autocast.
"""

from __future__ import annotations

import argparse
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


def measure(steps: int, batch: int, rounds: int, threads: int | None) -> dict:
    import torch
    import torch.nn.functional as F

    import bntt_core
    from benchmarks.reference import DenseFloorVGG9
    from bntt_core import poisson_encode
    from bntt_core.nn.step import autocast, keep_freed_memory_for_reuse, resolve_precision

    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory_for_reuse()
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    precision = resolve_precision(None, cpu)
    images = torch.randn(batch, 3, 32, 32)
    labels = torch.randint(0, 10, (batch,))
    model = bntt_core.build_model("vgg9", num_classes=10, in_channels=3, image_size=32, num_steps=steps)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    floor = DenseFloorVGG9(steps, 10, 32).to(memory_format=torch.channels_last)
    floor_optimizer = torch.optim.SGD(floor.parameters(), lr=0.01, momentum=0.9)

    def project_step():
        bntt_core.train_step(model, optimizer, images, labels)

    def floor_step():
        floor.train()
        floor_optimizer.zero_grad(set_to_none=True)
        encoded = poisson_encode(images, steps)  # [T, B, 3, 32, 32]
        encoded = encoded.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, encoded.shape[:2])
        with autocast(cpu, precision):
            logits = floor(encoded)  # [B, 10]
        F.cross_entropy(logits.float(), labels).backward()
        floor_optimizer.step()

    for step in (project_step, floor_step, project_step, floor_step):  # warm-up: oneDNN primitives, heap
        step()
    ratios, project_times, floor_times = [], [], []
    for _ in range(rounds):
        timed = []
        for step in (project_step, floor_step):
            start = time.process_time()
            step()
            timed.append(time.process_time() - start)
        project_times.append(timed[0])
        floor_times.append(timed[1])
        ratios.append(timed[0] / timed[1])
    return {"T": steps, "B": batch, "precision": precision, "threads": torch.get_num_threads(),
            "project_s": statistics.median(project_times), "floor_s": statistics.median(floor_times),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--isa", choices=("native", "avx2"), default="native")
    parser.add_argument("--T", type=int)
    parser.add_argument("--B", type=int)
    parser.add_argument("--rounds", type=int, default=5, help="alternating timed rounds (default 5)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    holds = ISA_HOLDS.get(args.isa, {})
    if any(os.environ.get(key) != value for key, value in holds.items()):  # the holds act at import: re-exec
        done = subprocess.run([sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])],
                              env={**os.environ, **holds})
        raise SystemExit(done.returncode)
    sizes = [(args.T, args.B)] if args.T else [(10, 16), (25, 32)]
    print(machine_header(args.isa))
    worst = 0.0
    for steps, batch in sizes:
        row = measure(steps, batch, args.rounds, args.threads)
        worst = max(worst, row["ratio"])
        print(f"T={steps} B={batch} ({row['precision']}, {row['threads']} threads): project {row['project_s']:.3f} s, "
              f"floor {row['floor_s']:.3f} s CPU time per step; project / floor = {row['ratio']:.2f} "
              f"(rounds {row['ratio_min']:.2f}-{row['ratio_max']:.2f})", flush=True)
    return worst


if __name__ == "__main__":
    main()
