#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite (unit tests, the ONNX backend tests
# through `locus check`, the real MobileNetV2, bad-input tests, and a short fuzzing run).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
scripts/run-fuzzer.sh "${LOCUS_FUZZ_SECONDS:-30}"
