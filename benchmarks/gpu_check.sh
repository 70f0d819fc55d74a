#!/usr/bin/env bash
# The GPU machine's checks of issue 33, in one command (about 6 minutes); see
# benchmarks/gpu_check.py for the stages and benchmarks/README.md for how to run it.
#   bash benchmarks/gpu_check.sh [DATA]    DATA: a CIFAR-10 JPEG .tar.gz
#                                          (default: benchmarks/gpu_carry/cifar10-subset.tar.gz)
# Results go to $OUT (the device tool's folder) or benchmarks/results/gpu_check.
# Extra arguments for gpu_check.py: GPU_CHECK_ARGS="--budget-s 200 ...".
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/gpu_check}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
# The machine's own PyTorch and CUDA: checked, never reinstalled.
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
# Ray: none there and no network; unpack the one gpu_prepare.sh carried.
if ! $PY -c "import ray" 2>/dev/null && [ -f benchmarks/gpu_carry/ray-cp312.tar.xz ]; then
  mkdir -p /tmp/site && tar -C /tmp/site -xJf benchmarks/gpu_carry/ray-cp312.tar.xz
  $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/site benchmarks/gpu_carry/wheels/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# The project itself where no hwadapt is installed, without its dependencies (no torch
# reinstall, nothing to download); this checkout comes first on PYTHONPATH either way, and
# the Ray workers inherit it.
if ! $PY -c "import hwadapt" 2>/dev/null; then
  $PY -m pip install -q --no-deps --no-build-isolation -e . || echo "note: pip install -e . failed; using PYTHONPATH"
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
$PY -c "import ray; print('ray', ray.__version__)" || echo "note: no Ray: the --workers stages will fail"
DATA=${1:-benchmarks/gpu_carry/cifar10-subset.tar.gz}
export HWADAPT_CACHE_DIR=/tmp/gpu_check/cache
$PY benchmarks/gpu_check.py --data "cifar10:$DATA" --out "$OUT" ${GPU_CHECK_ARGS:-}
