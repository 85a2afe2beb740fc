#!/usr/bin/env bash
# Install what is missing, build, and run the whole test suite (unit tests, the ONNX backend tests
# through `locus check`, the real MobileNetV2, bad-input tests, and a short run of every fuzzer:
# LOCUS_FUZZ_SECONDS per fuzzer, default 10). The same suite under ASan+UBSan: scripts/test-sanitizers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)"
scripts/run-fuzzer.sh "${LOCUS_FUZZ_SECONDS:-10}"
