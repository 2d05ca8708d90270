#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one run: sweep, projection and (optionally) generator benchmarks with
# --device cuda. Output goes to $OUT (default var/bench/gpu). Each step has its own time limit so one slow step
# cannot take the others with it; the most wanted figures come first. Needs: torch with CUDA (and Triton for the
# compiled steps), torchvision, numpy, scipy, pillow, and the torchxrayvision lung-mask archive for the phantoms
# (a package on the path, or a folder laid out like one, see docs/gpu.md).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-var/bench/gpu}
mkdir -p "$OUT"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PY:-python3}
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  echo "=== $name ($(date +%T))"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log" | grep -v "^\s*\[\|^W1\|^V1" | tail -n 40
}
nvidia-smi -L 2>/dev/null
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
# paper256 + DenseNet-121: naive, plain loop, exact (layer and block starts) eager and compiled, screening
# eager and compiled
step sweep_paper256 "${SWEEP_LIMIT:-270}" $PY bench/sweep.py --device cuda --paper-only --paper-images 2 \
  --paper-batches "${SWEEP_BATCHES:-512}" --screening-images 96 --screening-chunk 32 --compile --reuse-block \
  ${SWEEP_ARGS:-}
# the demo's 200 held-out phantoms: exact against screening at several top-K, and after the exact second pass (recall@10)
step sweep_demo "${DEMO_LIMIT:-130}" $PY bench/sweep.py --device cuda --phantoms 200 --top-k 64,128,256 --refine 30
# projection steps of paper256 + DenseNet-121 + D, bf16, eager then compiled
step projection "${PROJ_LIMIT:-50}" $PY bench/projection.py --device cuda --bf16 --paper256-only \
  --paper256-batches "${PROJ_BATCHES:-128}"
step projection_compiled "${PROJC_LIMIT:-170}" $PY bench/projection.py --device cuda --bf16 --paper256-only \
  --paper256-batches "${PROJ_BATCHES:-128}" --compile
if [ -n "${GENERATOR:-}" ]; then
  step generator "${GEN_LIMIT:-150}" $PY bench/generator.py --device cuda --profile ${GEN_ARGS:-}
fi
if [ -n "${PLAIN_COMPILED:-}" ]; then
  step sweep_plain_compiled "${PLAIN_LIMIT:-150}" $PY bench/sweep.py --device cuda --paper-only --paper-images 1 \
    --paper-batches 512 --screening-images 0 --plain-compiled
fi
