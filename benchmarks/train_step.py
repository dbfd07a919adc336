"""One SGD step of VGG9 + BNTT (10 classes, 32×32 input): the project against the seed code and peers.

Evidence (measured with this script, numbers and conditions in benchmarks/README.md):
  every way below runs in its own fresh process, one after another, on the same input sizes; each
  process builds its model and optimiser (SGD, momentum 0.9), runs warm-up steps, then times `--repeats`
  whole steps (encode → forward over all T → cross-entropy → backward → optimizer.step) with
  time.perf_counter (wall) and time.process_time (CPU time of all the process's threads) and reports
  the medians. On a shared machine the wall time of a multi-threaded step includes waiting for a
  descheduled thread at every parallel op; `--threads 1` removes that, and its CPU time is then the
  work of the step whatever else runs. Ratios are to the reference loop of the same run, so
  that load from other users of the machine (timings here may have been taken under load) cancels
  as far as it can.
  Allocator: on Linux every way runs with the glibc setting that bntt_core.train_step applies
  (`keep_freed_memory_for_reuse`: freed blocks over 32 MiB stay in the heap instead of being unmapped and
  page-faulted back in at the next step), so the comparison is of the computation, not of malloc;
  `--system-malloc` turns it off for every way (BNTT_KEEP_MALLOC=1).
  Peak memory, CPU: VmHWM − VmRSS from /proc/self/status, i.e. how far the resident set rose above
  what the process held after building the model, optimiser and data (before its first step);
  it includes the optimiser's momentum buffers, which every way has. CUDA:
  torch.cuda.max_memory_allocated() − memory_allocated() at the same point.

Ways (each a subprocess; `--ways` picks some):
  project          bntt_core.train_step(model, optimizer, images, labels): the project's defaults
                   (precision "auto": bf16 where the CPU computes it natively, else fp32)
  project-fp32     the same with precision="fp32" (the exact mode)
  project-bf16     the same with precision="bf16" forced (emulated, and slow, on a CPU without native bf16)
  reference        SeedStyleVGG9 (benchmarks/reference.py): the seed code's per-step loop, fp32
  dense-fp32       DenseFloorVGG9: the same convolutions on T·B images, no SNN logic, fp32
  dense-fp32-cl    the same in fp32 with channels_last (faster than NCHW on some CPUs)
  dense-bf16       the same in bf16 autocast with channels_last
  snntorch         snnTorch 1.0.0 (benchmarks/peers.py), fp32
  spikingjelly     SpikingJelly 2.0.0 multi-step with its BNTT (benchmarks/peers.py), fp32
  project-no-kernels        ablation: the project step with the eager PyTorch LIF/BNTT (BNTT_NO_KERNELS=1)
  project-no-channels-last  ablation: the project step with the convolutions in NCHW

    .venv/bin/python benchmarks/train_step.py                       # (T=10, B=16) and (T=25, B=32)
    .venv/bin/python benchmarks/train_step.py --quick               # tiny sizes, 1 repeat: a smoke run
    .venv/bin/python benchmarks/train_step.py --device cuda --T 25 --B 128
    .venv/bin/python benchmarks/train_step.py --ways project reference --T 10 --B 16 --markdown
    .venv/bin/python benchmarks/train_step.py --ways project --engine /tmp/old-checkout   # before/after
    .venv/bin/python benchmarks/train_step.py --isa avx2                  # as on an AVX2-only laptop (below)

--isa avx2 runs every way as a CPU with AVX2 + FMA but no AVX-512 would: oneDNN and ATen held to AVX2
(ONEDNN_MAX_CPU_ISA=AVX2, ATEN_CPU_CAPABILITY=avx2; oneDNN then has no native bf16) and the compiled loops
built for x86-64-v3 (BNTT_KERNEL_CFLAGS=-march=x86-64-v3). The header prints the CPU, its flags and the
precision the project's default resolves to under the chosen ISA.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python benchmarks/train_step.py` from anywhere finds bntt_core
if os.environ.get("BNTT_BENCH_ENGINE"):  # --engine: the project ways import bntt_core from another checkout
    sys.path.insert(0, os.environ["BNTT_BENCH_ENGINE"])

WAYS = ("project", "project-fp32", "reference", "dense-fp32", "dense-fp32-cl", "dense-bf16", "snntorch", "spikingjelly")
# only with --ways: one optimisation off each, or bf16 forced where it may be emulated
ABLATIONS = ("project-no-kernels", "project-no-channels-last", "project-bf16")
AVX2_WAYS = ("project", "reference", "dense-fp32", "dense-fp32-cl")  # --isa avx2 default: project is fp32 there
DENSE_FLOORS = ("dense-fp32", "dense-fp32-cl", "dense-bf16")
# what --isa avx2 sets for every way: an AVX2 + FMA CPU without AVX-512 (most laptops)
ISA_HOLDS = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                      "BNTT_KERNEL_CFLAGS": "-march=x86-64-v3"}}
DEFAULT_SIZES = ((10, 16), (25, 32))
QUICK_SIZES = ((4, 4),)
NUM_CLASSES, IMAGE_SIZE = 10, 32


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _build_way(way: str, steps: int, device, images, labels):
    """A closure running one whole training step of `way`, and a short note on how it runs."""
    import torch
    import torch.nn.functional as F

    import bntt_core
    from bntt_core import poisson_encode
    from bntt_core.nn import step as step_module

    torch.manual_seed(0)
    if way == "project-no-channels-last":
        from bntt_core.nn import models
        models._channels_last_pays = lambda h: False
    if way.startswith("project"):
        model = bntt_core.build_model("vgg9", num_classes=NUM_CLASSES, in_channels=3, image_size=IMAGE_SIZE,
                                      num_steps=steps).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        precision = {"project-fp32": "fp32", "project-bf16": "bf16"}.get(way)
        resolved = step_module.resolve_precision(precision, device)
        note = f"precision={resolved}" + (" (auto)" if precision is None else "")
        note += {"project-no-kernels": ", eager LIF/BNTT", "project-no-channels-last": ", NCHW convolutions"}.get(way, "")
        return (lambda: bntt_core.train_step(model, optimizer, images, labels, precision=precision)), note

    if way == "reference":
        from benchmarks.reference import SeedStyleVGG9
        model = SeedStyleVGG9(steps, NUM_CLASSES, IMAGE_SIZE).to(device)
        forward = model  # draws its own Poisson input at every step, like the seed code
        note = "fp32"
    elif way in DENSE_FLOORS:
        from benchmarks.reference import DenseFloorVGG9
        model = DenseFloorVGG9(steps, NUM_CLASSES, IMAGE_SIZE).to(device)
        channels_last = way in ("dense-bf16", "dense-fp32-cl")
        if channels_last:
            model = model.to(memory_format=torch.channels_last)

        def forward(x):
            encoded = poisson_encode(x, steps)
            if channels_last:
                encoded = encoded.flatten(0, 1).contiguous(memory_format=torch.channels_last).unflatten(0, encoded.shape[:2])
            return model(encoded)
        note = "bf16 autocast, channels_last" if way == "dense-bf16" else "fp32, channels_last" if channels_last else "fp32"
    else:
        from benchmarks.peers import build_peer
        model = build_peer(way, steps).to(device)

        def forward(x):
            return model(poisson_encode(x, steps))
        note = "fp32"

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    autocast = way == "dense-bf16"

    def one_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits = forward(images)
        loss = F.cross_entropy(logits.float(), labels)
        loss.backward()
        optimizer.step()
        return float(loss.detach())
    return one_step, note


def _keep_freed_memory_for_reuse() -> bool:
    """The allocator setting of bntt_core.nn.step.keep_freed_memory_for_reuse, for every way alike."""
    import ctypes
    if os.environ.get("BNTT_KEEP_MALLOC") or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, 2**30) and libc.mallopt(-1, 2**31 - 1))  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def run_worker(way: str, steps: int, batch: int, device_name: str, warmup: int, repeats: int,
               threads: int | None = None) -> dict:
    """Measure one way in this process; returns the result row."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    reuse = _keep_freed_memory_for_reuse() if device_name == "cpu" else False
    if device_name.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # as bntt_core.train_step sets it: the same for every way

    device = torch.device(device_name)
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator).to(device)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=generator).to(device)
    one_step, note = _build_way(way, steps, device, images, labels)

    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        memory_before = torch.cuda.memory_allocated()
    else:
        memory_before = _proc_status_kib("VmRSS") * 1024
    for _ in range(warmup):
        one_step()
    times, cpu_times = [], []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = one_step()  # float(loss) waits for the device
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    if cuda:
        peak = torch.cuda.max_memory_allocated() - memory_before
    else:
        peak = _proc_status_kib("VmHWM") * 1024 - memory_before
    return {"way": way, "T": steps, "B": batch, "device": device_name, "note": note,
            "median_s": statistics.median(times), "times_s": times, "peak_bytes": peak, "loss": loss,
            "median_cpu_s": statistics.median(cpu_times),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "malloc_reuse": reuse,
            "engine": str(Path(sys.modules["bntt_core"].__file__).parent.parent), "load": os.getloadavg()[0]}


def run_in_subprocess(way: str, steps: int, batch: int, args) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", way, "--T", str(steps), "--B", str(batch),
               "--device", args.device, "--warmup", str(args.warmup), "--repeats", str(args.repeats)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    env = {**os.environ, **ISA_HOLDS.get(args.isa, {})}
    if args.engine:
        env["BNTT_BENCH_ENGINE"] = str(Path(args.engine).resolve())
    if args.system_malloc:
        env["BNTT_KEEP_MALLOC"] = "1"
    if way == "project-no-kernels":
        env["BNTT_NO_KERNELS"] = "1"
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"way": way, "T": steps, "B": batch, "skipped": reason}
    return json.loads(lines[-1])


def _mib(value: float) -> str:
    return f"{value / 2 ** 20:,.0f} MiB"


def report(rows: list[dict], markdown: bool) -> str:
    lines = []
    if markdown:
        lines += ["| T | B | way | how | median step | × reference | CPU time | × reference | peak memory | × reference |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
    for (steps, batch) in dict.fromkeys((row["T"], row["B"]) for row in rows):
        group = [row for row in rows if (row["T"], row["B"]) == (steps, batch)]
        base = next((row for row in group if row["way"] == "reference" and "skipped" not in row), None)
        if not markdown:
            lines.append(f"\nT={steps} B={batch}")
            lines.append(f"  {'way':<14}{'median step':>13}{'× ref':>8}{'CPU time':>11}{'× ref':>8}{'peak memory':>14}"
                         f"{'× ref':>8}  how")
        for row in group:
            if "skipped" in row:
                text = f"skipped: {row['skipped']}"
                lines.append(f"| {steps} | {batch} | {row['way']} | {text} | | | | | | |" if markdown
                             else f"  {row['way']:<14}{text}")
                continue
            time_ratio = f"{row['median_s'] / base['median_s']:.2f}" if base else "-"
            cpu_ratio = f"{row['median_cpu_s'] / base['median_cpu_s']:.2f}" if base else "-"
            memory_ratio = f"{row['peak_bytes'] / base['peak_bytes']:.2f}" if base and base['peak_bytes'] > 0 else "-"
            if markdown:
                lines.append(f"| {steps} | {batch} | {row['way']} | {row['note']} | {row['median_s']:.3f} s | "
                             f"{time_ratio} | {row['median_cpu_s']:.3f} s | {cpu_ratio} | {_mib(row['peak_bytes'])} | "
                             f"{memory_ratio} |")
            else:
                lines.append(f"  {row['way']:<14}{row['median_s']:>11.3f} s{time_ratio:>8}{row['median_cpu_s']:>9.3f} s"
                             f"{cpu_ratio:>8}{_mib(row['peak_bytes']):>14}{memory_ratio:>8}  {row['note']}")
        floors = [row for row in group if row["way"] in DENSE_FLOORS and "skipped" not in row]
        project = next((row for row in group if row["way"] == "project" and "skipped" not in row), None)
        if floors and project:
            floor = min(floors, key=lambda row: row["median_s"])
            text = (f"T={steps} B={batch}: project / fastest dense floor ({floor['way']}) = "
                    f"{project['median_s'] / floor['median_s']:.2f} wall, "
                    f"{project['median_cpu_s'] / floor['median_cpu_s']:.2f} CPU time")
            lines.append(f"\n{text}\n" if markdown else f"  {text}")
    return "\n".join(lines)


def machine_header(isa: str) -> str:
    """The CPU (model, the flags that decide the kernels and the precision) and what the project's default
    precision resolves to under `isa`, probed in a subprocess with the same environment as the ways."""
    flags = set()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = set(value.split())
                    break
    except OSError:
        pass
    shown = [flag for flag in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if flag in flags]
    probe = ("import json, torch; from bntt_core.nn.step import resolve_precision; "
             "print(json.dumps({'precision': resolve_precision(None, 'cpu'), "
             "'aten': torch.backends.cpu.get_cpu_capability(), "
             "'onednn_bf16': bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())}))")
    env = {**os.environ, **ISA_HOLDS.get(isa, {})}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=env)
    probed = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else {}
    holds = " ".join(f"{key}={value}" for key, value in ISA_HOLDS.get(isa, {}).items()) or "none"
    return (f"# CPU: {model}; flags: {' '.join(shown) or 'none of avx2/avx512'}\n"
            f"# ISA: {isa} (holds: {holds}); ATen {probed.get('aten', '?')}, oneDNN native bf16 "
            f"{probed.get('onednn_bf16', '?')}; default precision resolves to {probed.get('precision', '?')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 warm-up and 1 repeat: a smoke run")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--T", type=int, help="time steps (with --B: one size instead of the default two)")
    parser.add_argument("--B", type=int, help="batch size")
    parser.add_argument("--ways", nargs="+", choices=WAYS + ABLATIONS, default=None,
                        help=f"default: all of {', '.join(WAYS)}; with --isa avx2: {', '.join(AVX2_WAYS)}")
    parser.add_argument("--isa", choices=("native", "avx2"), default="native",
                        help="avx2: hold oneDNN and ATen to AVX2 and build the loops for x86-64-v3 in every way, "
                             "as on a CPU without AVX-512 (and without native bf16)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2; 1 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (default 5; 1 with --quick)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown (benchmarks/README.md)")
    parser.add_argument("--json", type=Path, help="also write every row to this file")
    parser.add_argument("--threads", type=int, help="torch threads in every way (default: torch's, = cores); with 1, "
                        "the CPU-time column is the work of the step, whatever else runs on the machine")
    parser.add_argument("--engine", help="import bntt_core from this checkout (a before/after comparison)")
    parser.add_argument("--system-malloc", action="store_true", help="leave glibc's allocator settings alone")
    parser.add_argument("--worker", choices=WAYS + ABLATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    args.ways = args.ways or list(AVX2_WAYS if args.isa == "avx2" else WAYS)

    if args.worker:
        if args.T is None or args.B is None:
            parser.error("--worker needs --T and --B")
        print(json.dumps(run_worker(args.worker, args.T, args.B, args.device, args.warmup, args.repeats,
                                    args.threads)))
        return 0

    if (args.T is None) != (args.B is None):
        parser.error("give --T and --B together")
    sizes = ((args.T, args.B),) if args.T is not None else QUICK_SIZES if args.quick else DEFAULT_SIZES
    print(machine_header(args.isa))
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, device {args.device}, "
          f"threads {args.threads or 'default'}, "
          f"warm-up {args.warmup}, repeats {args.repeats}; each way in its own process, sequentially; "
          f"load average {os.getloadavg()[0]:.1f}" + (f"; engine {args.engine}" if args.engine else ""))
    rows = []
    for steps, batch in sizes:
        for way in args.ways:
            row = run_in_subprocess(way, steps, batch, args)
            rows.append(row)
            status = row.get("skipped") or (f"{row['median_s']:.3f} s, {_mib(row['peak_bytes'])} "
                                            f"(load {row['load']:.1f})")
            print(f"  T={steps} B={batch} {way}: {status}", flush=True)
    print(report(rows, args.markdown))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
