#!/usr/bin/env bash
# The GPU machine's checks, in one command (about 6 minutes); benchmarks/scale_out.py has
# the stages, benchmarks/README.md how to run them.
#   bash benchmarks/gpu_check.sh prepare [DATA]   HERE (it needs PyPI): makes benchmarks/gpu_carry/
#                                                 (ignored by git), what the GPU machine cannot fetch:
#       cifar10-subset.tar.gz  2,500 training and 200 test images per class of DATA (~9 MB)
#       ray-cp312.tar.xz       Ray for its Python 3.12 without the parts hwadapt never loads (Java
#                              jars, RLlib, Data, Serve, Tune, Train, LLM): the whole wheel is 79 MB,
#                              over what a device call carries (64 MiB)
#       wheels/                Ray's dependencies that its image lacks
#   bash benchmarks/gpu_check.sh [DATA]           THERE: DATA a CIFAR-10 JPEG .tar.gz (default: the
#                                                 carried subset). Results go to $OUT (the device
#                                                 tool's folder) or benchmarks/results/gpu_check.
# Extra arguments for scale_out.py: GPU_CHECK_ARGS="--budget-s 200 ...".
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = prepare ]; then
  set -e
  DATA=${2:-../shared/data/cifar10-jpeg.tar.gz}
  CARRY=benchmarks/gpu_carry
  RAY_VERSION=2.60.0
  mkdir -p "$CARRY/wheels"
  if [ ! -f "$CARRY/cifar10-subset.tar.gz" ]; then
    python benchmarks/scale_out.py --make-subset "$DATA" "$CARRY/cifar10-subset.tar.gz"
  fi
  PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
  FETCH="python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLATFORMS"
  if [ ! -f "$CARRY/ray-cp312.tar.xz" ]; then
    tmp=$(mktemp -d)
    $FETCH -d "$tmp" "ray==$RAY_VERSION"
    (cd "$tmp" && python -m zipfile -e ray-*.whl unpacked \
       && rm -rf unpacked/ray/jars unpacked/ray/rllib unpacked/ray/data unpacked/ray/serve unpacked/ray/tune \
                 unpacked/ray/train unpacked/ray/llm \
       && chmod +x unpacked/ray/core/src/ray/raylet/raylet unpacked/ray/core/src/ray/gcs/gcs_server \
       && tar -C unpacked -cf - . | xz -6 -T2 > ray.tar.xz)
    mv "$tmp/ray.tar.xz" "$CARRY/ray-cp312.tar.xz"
    rm -rf "$tmp"
  fi
  # jsonschema and its dependencies (the image has attrs, but not these)
  $FETCH -d "$CARRY/wheels" jsonschema jsonschema-specifications referencing rpds-py
  du -sh "$CARRY" "$CARRY"/*
  echo "carry benchmarks/gpu_carry to the GPU machine; see benchmarks/README.md (GPU check)"
  exit 0
fi
OUT=${OUT:-benchmarks/results/gpu_check}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
# The machine's own PyTorch and CUDA: checked, never reinstalled.
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
# Ray: none there and no network; unpack the one `gpu_check.sh prepare` carried.
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
$PY benchmarks/scale_out.py --data "cifar10:$DATA" --out "$OUT" ${GPU_CHECK_ARGS:-}
