#!/usr/bin/env bash
# The main job: install what is missing, build, and classify the shared photos with a real
# MobileNetV2 (top-5 with labels): the fp32 one by default, or the model named as the argument, e.g.
#   scripts/classify-photos.sh mobilenetv2-12-int8      (the quantized model, on the native int8 kernels)
# Models are found through the model search path (LOCUS_MODEL_DIR or ../shared/models beside the
# checkout); a path to an .onnx file or a model folder works too.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -gt 1 || ${1:-} == -h || ${1:-} == --help ]]; then
  echo "usage: scripts/classify-photos.sh [MODEL]   (default: mobilenetv2-12-fp32-from-int8)" >&2
  exit 2
fi
model="${1:-mobilenetv2-12-fp32-from-int8}"
scripts/install-deps.sh
scripts/build.sh
models="${LOCUS_MODEL_DIR:-../shared/models}"
./build/locus run "$model" --top 5 "$models"/images/*.jpg
