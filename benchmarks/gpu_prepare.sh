#!/usr/bin/env bash
# Run HERE (it needs PyPI) before the GPU check: makes benchmarks/gpu_carry/ (ignored by git),
# what the GPU machine needs and cannot fetch (it reaches no network):
#   cifar10-subset.tar.gz  2,500 training and 200 test images per class from DATA (~9 MB)
#   ray-cp312.tar.xz       Ray for its Python 3.12, without the parts hwadapt never loads
#                          (Java jars, RLlib, Data, Serve, Tune, Train, LLM): the whole wheel
#                          is 79 MB, over what a device call carries (64 MiB)
#   wheels/                Ray's dependencies that its image lacks (jsonschema and its own)
# Usage: bash benchmarks/gpu_prepare.sh [DATA]   (DATA: the CIFAR-10 JPEG .tar.gz)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/cifar10-jpeg.tar.gz}
CARRY=benchmarks/gpu_carry
RAY_VERSION=2.60.0
mkdir -p "$CARRY/wheels"
if [ ! -f "$CARRY/cifar10-subset.tar.gz" ]; then
  python benchmarks/gpu_subset.py "$DATA" "$CARRY/cifar10-subset.tar.gz" --train-per-class 2500 --test-per-class 200
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
