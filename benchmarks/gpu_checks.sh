#!/usr/bin/env bash
# The GPU rows of docs/benchmarks.md (issues 8 and 11) in one short run on a CUDA machine.
#
#   OUT=gpu-results PY=python3 bash benchmarks/gpu_checks.sh
#
# Run from the repository root with the project installed (pip install -e .) and onnxruntime-gpu.
# Writes at most 8 files to $OUT: gpu.txt (device, versions, providers), the JSON of each
# benchmark and one combined log. Each step has its own time limit so that one failure leaves
# the others' results.
set -u
OUT=${OUT:-gpu-results}
PY=${PY:-python3}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
LOG="$OUT/log.txt"
step() {  # step SECONDS NAME COMMAND...
  local limit=$1 name=$2
  shift 2
  echo "=== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$LOG"
  timeout "$limit" "$@" >>"$LOG" 2>&1
  echo "=== $name: exit $? at $(date +%T)" | tee -a "$LOG"
}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  $PY -c "import torch, onnxruntime as o, transformers as t; print('torch', torch.__version__, \
torch.cuda.get_device_name(0), '| onnxruntime', o.__version__, o.get_available_providers(), \
'| transformers', t.__version__)"
} >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
TS="benchmarks/train_step.py --device cuda --workers 4 --channels-last --finite-check deferred"
# 1. GR-GAN at the paper's COCO settings, batch 8: s/iter, img/s, memory, FLOPs and MFU, host
#    syncs per iteration; then the largest batch that fits (doubling)
step 210 grgan-paper $PY $TS --recipes recipes/coco/grgan.yaml --paper-batch 8 --flops \
  --count-syncs --max-batch --max-batch-start 64 --max-batch-limit 512 \
  --json "$OUT/train_grgan_paper.json"
# 2. the 256-px generator: PyTorch eager vs ONNX Runtime CUDA, fp32 and fp16 (IO binding)
step 120 infer-256 $PY benchmarks/inference.py --device cuda --recipe recipes/coco/grgan.yaml \
  --text-from recipes/grgan.yaml --batches 1 16 --reps 15 --json "$OUT/infer_grgan_256.json"
# 3. the demo generator on CUDA (issue 8's GPU rows)
step 70 infer-demo $PY benchmarks/inference.py --device cuda --recipe recipes/grgan.yaml \
  --batches 1 16 --reps 15 --json "$OUT/infer_demo.json"
# 4. the other paper configs and the demo recipes at their batch sizes
step 130 train-others $PY $TS --recipes recipes/coco/dmgan.yaml recipes/coco/attngan.yaml \
  recipes/grgan.yaml --flops --json "$OUT/train_others.json"
ls -la "$OUT"
