#!/usr/bin/env bash
# One lease of a CUDA machine, start to finish, inside a fixed wall-clock budget:
#   1. the CUDA checks of the Triton LIF kernels (tests/test_gpu_kernels.py, the CUDA cases);
#   2. benchmarks/train_step.py at (T=25, B=128): the project step, its eager-LIF ablation, the seed-style
#      reference loop and the dense floors, each in its own process;
#   3. `bntt train --preset paper-cifar10` on the full CIFAR-10 for as many epochs as the remaining budget
#      holds (estimated from step 2's project step), weights stored in fp16, then `bntt analyze` on the GPU.
# Everything it prints also goes to $OUT/session.log; the benchmark rows to $OUT/bench.json; the trained
# run (without its checkpoint) to $OUT/cifar10-vgg9-paper.tar.gz.
#
#   OUT=/tmp/gpu GPU_BUDGET_S=540 CIFAR10_DIR=/path/with/cifar10-jpg.tar.gz bash benchmarks/gpu_session.sh
#
# Runs with whatever python3 the machine has (PYTHONPATH=. instead of an install): the GPU machines here
# come with PyTorch, Triton, pandas and pytest but cannot reach a package index.
set -u
OUT=${OUT:-/tmp/bntt-gpu-session}
BUDGET=${GPU_BUDGET_S:-540}
START=$(date +%s)
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
[ -n "${CIFAR10_DIR:-}" ] && export BNTT_DATA_DIR=$CIFAR10_DIR
mkdir -p "$OUT"
exec > >(tee -a "$OUT/session.log") 2>&1
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
stamp() { echo "=== [$(( $(date +%s) - START )) s] $*"; }

stamp "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
$PY -c "import torch, triton, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name(0))"

# the dataset decodes on the CPU while the GPU runs the checks and the benchmark
stamp "decoding CIFAR-10 in the background"
$PY -c "from bntt_core import data; tr, te, info = data.load_data('cifar10'); print('cifar10', len(tr), len(te))" &
DECODE=$!

stamp "CUDA kernel tests"
if timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_gpu_kernels.py -k cuda; then
    KERNELS=on
else
    KERNELS=off; export BNTT_NO_KERNELS=1
    echo "!!! the Triton kernels failed their CUDA checks: everything below runs the eager LIF (BNTT_NO_KERNELS=1)"
fi

stamp "train-step benchmark, T=25 B=128"
WAYS="project reference dense-bf16"
[ "$KERNELS" = on ] && WAYS="project project-no-kernels reference dense-bf16"
timeout 240 $PY benchmarks/train_step.py --device cuda --T 25 --B 128 --ways $WAYS --warmup 3 --repeats 8 \
    --markdown --json "$OUT/bench.json"

wait $DECODE
stamp "planning paper-cifar10 with $(left) s left"
EPOCHS=$($PY - "$OUT/bench.json" "$(left)" <<'EOF'
import json, sys
rows = {row["way"]: row for row in json.load(open(sys.argv[1])) if "median_s" in row}
step_128 = (rows.get("project") or rows.get("project-no-kernels") or {"median_s": 1.0})["median_s"]
# an epoch: 196 steps of B=256 (~2.1 steps of B=128 each) plus a test pass (~1/3 of a step per 128 images)
epoch_s = step_128 * (196 * 2.1 + 79 / 3) * 1.15 + 3
available = float(sys.argv[2]) - 150  # the analysis, the start of training and the packing
print(max(1, min(120, int(available // epoch_s))))
EOF
)
stamp "paper-cifar10 for $EPOCHS epochs (kernels $KERNELS)"
RUN=runs/cifar10-vgg9-paper
rm -rf "$RUN"
timeout $(( $(left) - 75 )) $PY -m bntt_core train --preset paper-cifar10 --epochs "$EPOCHS" --weights-dtype float16 \
    --out "$RUN" --quiet
stamp "analysis with $(left) s left"
timeout $(( $(left) - 15 )) $PY -m bntt_core analyze "$RUN" --device cuda --quiet
stamp "packing"
tar --exclude=checkpoint.pt -czf "$OUT/cifar10-vgg9-paper.tar.gz" -C runs cifar10-vgg9-paper
if [ "$(stat -c %s "$OUT/cifar10-vgg9-paper.tar.gz")" -gt 15000000 ]; then  # files come back at ≤ 16 MiB each
    split -b 15000000 "$OUT/cifar10-vgg9-paper.tar.gz" "$OUT/cifar10-vgg9-paper.tar.gz.part-" &&
        rm "$OUT/cifar10-vgg9-paper.tar.gz"
fi
ls -la "$OUT"
stamp "done"
