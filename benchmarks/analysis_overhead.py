"""Analysis cost, as ratios to one plain evaluation pass over the same images (issue 5, "Speed").

    recording / plain     the ONE recording pass (per-step outputs, spike counts per step and position,
                          norm-input mean/std/histogram) vs eval_logits batch by batch. Target ≤ 1.15.
    noise σ / plain       one σ of the Gaussian-noise curve (noise draw + clip + normalise + pass): ≈ 1
    fgsm gradient / plain the one forward + backward (BPTT through the surrogate) per image
    fgsm ε / plain        one ε of the FGSM curve given the gradient signs: ≈ 1
    the early-exit curves from the recording's stored outputs (no inference), in ms

Each measurement is repeated (--repeats, interleaved, the minimum kept: the machine is shared) on
random pixels; the model is untrained (speed does not depend on the weights' values, only on the
spike counts, which an untrained BNTT net has plenty of).

    .venv/bin/python benchmarks/analysis_overhead.py                              # vgg9 ¼ width, T 25
    .venv/bin/python benchmarks/analysis_overhead.py --arch vgg5 --size 28 --channels 1 --steps 8
    .venv/bin/python benchmarks/analysis_overhead.py --threads 2 --images 512 --repeats 5

Results also go to benchmarks/results/analysis_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from bntt_core import build_model
from bntt_core.analysis.early_exit import dynamic_exit_curve, early_exit_curve, gamma_mean_table, gamma_table
from bntt_core.analysis.recording import record
from bntt_core.analysis.robustness import Normalizer, fgsm_accuracy, fgsm_signs, noise_accuracy
from bntt_core.nn.step import eval_logits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="vgg9")
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--norm", default="bntt")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 avoids OpenMP spin on a busy box)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default=None, help="auto | fp32 | bf16 (default: auto, bntt_core.nn.step.resolve_precision)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "analysis_overhead.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(args.arch, num_classes=10, in_channels=args.channels, image_size=args.size,
                        num_steps=args.steps, width=args.width, norm=args.norm).to(device).eval()
    pixels = torch.randint(0, 256, (args.images, args.channels, args.size, args.size), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1)).to(device)
    labels = torch.randint(0, 10, (args.images,), generator=torch.Generator().manual_seed(2)).to(device)
    mean, std = (0.5,) * args.channels, (0.25,) * args.channels
    images = Normalizer(mean, std)(pixels.float() / 255)
    batch = args.batch

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def plain():
        generator = torch.Generator(device=device).manual_seed(0)
        for begin in range(0, args.images, batch):
            eval_logits(model, images[begin:begin + batch], generator=generator, precision=args.precision)

    precision = args.precision
    signs = fgsm_signs(model, pixels[:batch], labels[:batch], mean=mean, std=std, batch_size=batch,
                       precision=precision)  # warm-up
    recorded = {}
    tasks = {
        "plain": plain,
        "recording": lambda: recorded.__setitem__("rec", record(model, images, labels, seed=0, batch_size=batch,
                                                                precision=precision)),
        "noise_sigma": lambda: noise_accuracy(model, pixels, labels, [0.3], mean=mean, std=std, batch_size=batch,
                                              precision=precision),
        "fgsm_gradient": lambda: recorded.__setitem__("signs", fgsm_signs(model, pixels, labels, mean=mean, std=std,
                                                                          batch_size=batch, precision=precision)),
        "fgsm_epsilon": lambda: fgsm_accuracy(model, pixels, labels, [8 / 255], mean=mean, std=std,
                                              batch_size=batch, signs=recorded["signs"], precision=precision),
    }
    plain()  # warm-up
    best = {name: float("inf") for name in tasks}
    for _ in range(args.repeats):
        for name, task in tasks.items():  # interleaved, so a burst of load hits all of them alike
            sync()
            start = time.perf_counter()
            task()
            sync()
            best[name] = min(best[name], time.perf_counter() - start)
    rec = recorded["rec"]
    start = time.perf_counter()
    gamma_mean = gamma_mean_table(gamma_table(model))
    if not gamma_mean.empty:
        early_exit_curve(rec.correct_by_step, gamma_mean)
    dynamic_exit_curve(rec.predictions, rec.confidence, rec.labels)
    curves_ms = 1000 * (time.perf_counter() - start)
    del signs

    ratios = {name: best[name] / best["plain"] for name in tasks if name != "plain"}
    from bntt_core.nn.step import resolve_precision

    setting = (f"{args.arch} width {args.width} norm {args.norm}, T {args.steps}, {args.images} images "
               f"{args.channels}×{args.size}×{args.size}, batch {batch}, {args.threads} thread(s), {device}, "
               f"precision {resolve_precision(precision, device)}")
    print(setting)
    print(f"  plain evaluation pass          {best['plain']:.3f} s")
    print(f"  recording / plain              {ratios['recording']:.3f}   (target ≤ 1.15)")
    print(f"  noise, one σ / plain           {ratios['noise_sigma']:.3f}")
    print(f"  fgsm gradient / plain          {ratios['fgsm_gradient']:.3f}   (one forward + backward)")
    print(f"  fgsm, one ε / plain            {ratios['fgsm_epsilon']:.3f}")
    print(f"  early-exit + dynamic-exit curves from the stored outputs: {curves_ms:.1f} ms")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"setting": setting, "seconds": best, "ratios": ratios, "curves_ms": curves_ms,
                               "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
                               "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")


if __name__ == "__main__":
    main()
