#!/usr/bin/env bash
# The main job: install what is missing, build, and classify the shared photos with the real
# fp32 MobileNetV2 (top-5 with labels). Models are found through the model search path
# (LOCUS_MODEL_DIR or ../shared/models beside the checkout).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
models="${LOCUS_MODEL_DIR:-../shared/models}"
./build/locus run mobilenetv2-12-fp32-from-int8 --top 5 "$models"/images/*.jpg
