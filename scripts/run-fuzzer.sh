#!/usr/bin/env bash
# Builds the ONNX importer fuzzer (clang, libFuzzer + ASan + UBSan) in build-fuzz/ and runs it for
# SECONDS (default 30) on a corpus seeded with small generated models, the first bytes of the real
# MobileNetV2 and a few ONNX backend test models (when installed). Exits non-zero on a crash; the
# crashing input is left in build-fuzz/fuzz-artifacts/.
#   usage: scripts/run-fuzzer.sh [SECONDS]
set -euo pipefail

seconds=${1:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
corpus=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts

CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DLOCUS_BUILD_FUZZ=ON -DLOCUS_BUILD_TESTS=OFF -DLOCUS_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target importer_fuzzer -j2
fuzzer=$build/tests/fuzz/importer_fuzzer

mkdir -p "$corpus" "$artifacts"
LOCUS_FUZZ_WRITE_SEEDS=$corpus "$fuzzer"
models=${LOCUS_MODEL_DIR:-$root/../shared/models}
mobilenet=$models/mobilenetv2-12-fp32-from-int8/mobilenetv2-12-fp32-from-int8.onnx
if [[ -f $mobilenet ]]; then
  head -c 4096 "$mobilenet" >"$corpus/mobilenet_head.onnx"
fi
backend=/usr/share/libonnx-testdata/data/node
for t in test_conv_with_strides_padding test_batchnorm_example test_maxpool_2d_default test_clip \
         test_unsqueeze_axis_0 test_softmax_axis_1 test_dropout_default_mask test_constant test_reshape_extended_dims \
         test_gemm_default_scalar_bias test_concat_2d_axis_0 test_gather_0; do
  if [[ -f $backend/$t/model.onnx ]]; then cp "$backend/$t/model.onnx" "$corpus/backend_$t.onnx"; fi
done

echo "fuzzing the ONNX importer for ${seconds}s (corpus: $corpus)"
"$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -print_funcs=0 \
  -artifact_prefix="$artifacts/" "$corpus"
