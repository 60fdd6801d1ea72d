#!/usr/bin/env bash
# One call on a GPU machine: the CUDA test suite, then the benchmarks, each under its own time
# limit, everything written to one folder ($OUT, else ./gpu-report). Run from the repository root:
#
#     bash benchmarks/gpu_report.sh            # on a machine with CuPy, a GPU and (optionally) PyTorch
#
# Fashion-MNIST is found through $MINICNN_DATA (copy /usr/share/datasets/fashion-mnist there).
# Limits (seconds) can be changed: T_TESTS, T_LAYERS, T_MODELS, T_LAYERS_TF32, T_BREAKDOWN, T_TRAIN,
# T_TRAIN_CPU (565 s in all by default: one call of the device tool runs at most 600 s); TESTS: the
# test folders. DEVICE=standin runs every step on the CPU stand-in instead of cuda: a dry run of
# the script's plumbing (arguments, outputs) before spending GPU time; its timings mean nothing.
set -u
OUT=${OUT:-gpu-report}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $OUT/NAME.txt, note the exit code
    local name=$1 limit=$2; shift 2
    local start=$(date +%s)
    timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
    echo "$name: exit $? after $(( $(date +%s) - start )) s (limit $limit s)" | tee -a "$OUT/summary.txt"
}
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  python3 -c "import cupy, numpy; print('cupy', cupy.__version__, 'cuda', cupy.cuda.runtime.runtimeGetVersion(), 'numpy', numpy.__version__)"
  python3 -c "import torch; print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())" 2>/dev/null
} > "$OUT/versions.txt" 2>&1
step tests "${T_TESTS:-150}" env MINICNN_TEST_DEVICES="$DEVICE" python3 -m pytest -q -p no:cacheprovider \
    ${TESTS:-tests/core tests/functional tests/fast tests/nn tests/models tests/optim}
step layers "${T_LAYERS:-80}" python3 benchmarks/layers.py --device "$DEVICE" --quick --json "$OUT/layers_$DEVICE.json"
# models and training with --tf32: both frameworks' convolutions on TF32 (PyTorch's default); the
# layers run both ways (without it, both frameworks multiply in full float32)
step models "${T_MODELS:-120}" python3 benchmarks/models.py --device "$DEVICE" --quick --tf32 --json "$OUT/models_${DEVICE}_tf32.json"
step layers_tf32 "${T_LAYERS_TF32:-45}" python3 benchmarks/layers.py --device "$DEVICE" --quick --tf32 \
    --json "$OUT/layers_${DEVICE}_tf32.json"   # convolutions as PyTorch's cuDNN runs them by default
step breakdown "${T_BREAKDOWN:-40}" python3 benchmarks/breakdown.py --device "$DEVICE" --models resnet20 --steps 3 \
    --json "$OUT/breakdown_resnet20_$DEVICE.json"   # per-op times (each op synchronised): where a step goes
# time to 90% and seconds per epoch, minicnn and its PyTorch twin on the GPU; then one epoch of
# minicnn on two CPU cores, the other yardstick
step train "${T_TRAIN:-90}" python3 benchmarks/train_fashion.py --device "$DEVICE" --tf32 --json "$OUT/train_fashion_$DEVICE.json"
step train_cpu "${T_TRAIN_CPU:-40}" python3 benchmarks/train_fashion.py --device cpu --threads 2 --no-torch \
    --epochs 1 --json "$OUT/train_fashion_cpu_2threads.json"
tail -n 3 "$OUT"/tests.txt "$OUT"/layers.txt "$OUT"/models.txt "$OUT"/layers_tf32.txt "$OUT"/breakdown.txt \
    "$OUT"/train.txt "$OUT"/train_cpu.txt
