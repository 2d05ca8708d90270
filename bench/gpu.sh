#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md in one run: generator, sweep and projection benchmarks with --device cuda.
# Output goes to $OUT (default var/bench/gpu). Each step has its own time limit so one slow step cannot take the
# others with it. Needs: torch with CUDA, torchvision, numpy, scipy, pillow, and the torchxrayvision lung-mask
# archive for the phantoms (a package on the path, or a folder laid out like one, see docs/gpu.md).
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
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log" | grep -v "^\s*\[" | tail -n 60
}
nvidia-smi -L 2>/dev/null
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
step generator "${GEN_LIMIT:-150}" $PY bench/generator.py --device cuda --profile ${GEN_ARGS:-}
step sweep "${SWEEP_LIMIT:-240}" $PY bench/sweep.py --device cuda --phantoms 200 --paper256 ${SWEEP_ARGS:-}
step projection "${PROJ_LIMIT:-150}" $PY bench/projection.py --device cuda --n "${PROJ_N:-50}" --batch 50 \
  --variants 0.05 --out "$OUT/projection" --paper256-batches "${PROJ_BATCHES:-32,64,128}" ${PROJ_ARGS:-}
step projection_bf16 "${PROJ_LIMIT:-150}" $PY bench/projection.py --device cuda --n "${PROJ_N:-50}" --batch 50 --bf16 \
  --variants 0.05 --out "$OUT/projection" --paper256-batches "${PROJ_BATCHES:-64,128}" ${PROJ_ARGS:-}
if [ -n "${COMPILE:-}" ]; then
  step generator_compiled "${COMPILE_LIMIT:-150}" $PY bench/generator.py --device cuda --paths fast --compile --batches 512
fi
