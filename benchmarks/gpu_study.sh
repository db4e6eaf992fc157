#!/usr/bin/env bash
# A piece of one of issue 21's studies on one CUDA machine, as one prepared command.
#
#   OUT=gpu-study PY=python3 SEEDS=0,1 JOBS=8 LIMIT=420 bash benchmarks/gpu_study.sh
#
# Trains the unfinished runs of STUDY (default recipes/ablations/shapes-hard-families.yaml) for
# SEEDS, JOBS runs at once packed onto the first GPU (`ablate --launcher processes --gpus-per-run
# 1/JOBS`), with the records already committed in RECORDS (default
# benchmarks/results/studies/<study name>) restored first, so finished runs are skipped. After
# LIMIT seconds the study gets SIGINT: running runs stop at a checkpoint and are lost with the
# machine, finished ones are saved to RECORDS with the comparison. Back in $OUT:
#   records.tgz   RECORDS after the piece: `tar xzf records.tgz -C RECORDS`, then commit;
#   log.txt       the study's console;  gpu.txt  device and versions;  memory.txt  the GPU's
#                 used memory (MiB) every 5 s, for how many runs fit.
# The machine needs torch with CUDA; the project's other needs that such an image lacks travel as
# wheels in .whl (WHEELS=.whl), installed into /tmp/site first. The H200 image of
# /work/.library/device/KINDS.md has torch but not pydantic or clean-fid; fetch them here with
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux2014_x86_64 -d .whl pydantic==2.14.4 \
#     pydantic_core==2.50.5 typing-inspection==0.4.5 annotated-types==0.8.0 \
#     typing_extensions==4.16.0 clean-fid==0.1.35
# (.whl is excluded in .git/info/exclude; the device tool's run takes it with carry: [.whl]).
# DEVICE=cpu and EXTRA="--set ..." exist to try the script on a CPU at a tiny budget.
set -u
OUT=${OUT:-gpu-study}
PY=${PY:-python3}
STUDY=${STUDY:-recipes/ablations/shapes-hard-families.yaml}
SEEDS=${SEEDS:-0}
JOBS=${JOBS:-8}
LIMIT=${LIMIT:-420}
DEVICE=${DEVICE:-cuda}
WHEELS=${WHEELS:-.whl}
EXTRA=${EXTRA:-}
NAME=$(basename "$STUDY" .yaml)
RECORDS=${RECORDS:-benchmarks/results/studies/$NAME}
mkdir -p "$OUT" "$RECORDS"
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl >>"$LOG" 2>&1 || { echo "wheels failed" | tee -a "$LOG"; exit 1; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# the entry points the built-in plugins register through need an installed distribution
if ! $PY -c "import importlib.metadata as m; m.distribution('t2i-stages')" 2>/dev/null; then
  $PY -m pip install -q --no-deps --no-build-isolation --no-index -e . >>"$LOG" 2>&1 \
    || { echo "install failed" | tee -a "$LOG"; exit 1; }
fi
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  $PY -c "import torch, pydantic; print('torch', torch.__version__, 'cuda', \
torch.cuda.is_available(), '| pydantic', pydantic.VERSION)"
} >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
( while sleep 5; do
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1
  done >"$OUT/memory.txt" ) &
SAMPLER=$!
SHARE=$($PY -c "print(1 / $JOBS)")
GPUS=()
[ "$DEVICE" = cuda ] && GPUS=(--gpus-per-run "$SHARE")
echo "=== $NAME seeds $SEEDS, $JOBS at once, limit ${LIMIT}s ($(date +%T))" | tee -a "$LOG"
# shellcheck disable=SC2086  # EXTRA is a list of arguments
timeout -s INT -k 90 "$LIMIT" $PY -m t2i_stages.cli.main ablate "$STUDY" --seeds "$SEEDS" \
  --launcher processes --jobs "$JOBS" "${GPUS[@]}" --device "$DEVICE" --records "$RECORDS" \
  $EXTRA >>"$LOG" 2>&1
echo "=== exit $? ($(date +%T))" | tee -a "$LOG"
kill "$SAMPLER" 2>/dev/null
tar czf "$OUT/records.tgz" -C "$RECORDS" .
grep -E "^ablate: .*(finished|failed|stopped|restored|records)" "$LOG" | tail -n 30
