#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, libFuzzer + ASan + UBSan; tests/fuzz/CMakeLists.txt) in
# build-fuzz/ and runs EACH of them for SECONDS (default 10: about 70 s for all seven), one after the
# other, on its corpus in build-fuzz/corpus/<fuzzer>/ (kept between runs; seeded with the inputs the
# fuzzer binary writes under LOCUS_FUZZ_WRITE_SEEDS=<dir> and with real files: accelerator presets,
# the shared models' test_data_set_*/*.pb, ONNX backend test models, the shared photos).
#
#   usage: scripts/run-fuzzer.sh [SECONDS] [FUZZER...]      (default: every fuzzer)
#
# Fuzzers: importer_fuzzer (ONNX model bytes), tensor_file_fuzzer (.pb tensor files: run --input,
# check), external_data_fuzzer (external tensor data against a real folder), accel_config_fuzzer
# (accelerator JSON configs), cli_fuzzer (command-line options), pipeline_fuzzer (import -> passes
# -> native backend -> run, with a memory and time budget) and image_fuzzer (photo decoding; skipped
# while tests/fuzz/image_fuzzer.cpp does not exist).
#
# Exits non-zero if any fuzzer finds a crash, a sanitizer report, a timeout or an out-of-memory:
# the summary names the fuzzer and the input left in build-fuzz/artifacts/<fuzzer>/; replay it with
# build-fuzz/tests/fuzz/<fuzzer> <artifact>. Each run's output is in build-fuzz/logs/<fuzzer>.log.
set -euo pipefail

seconds=${1:-10}
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -lt 1 ]]; then
  echo "run-fuzzer.sh: SECONDS must be a positive whole number, got '$seconds'" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
models=${LOCUS_MODEL_DIR:-$root/../shared/models}

all=(importer_fuzzer tensor_file_fuzzer external_data_fuzzer accel_config_fuzzer cli_fuzzer pipeline_fuzzer image_fuzzer)
if [[ $# -gt 0 ]]; then
  fuzzers=("$@")
  for f in "${fuzzers[@]}"; do
    [[ " ${all[*]} " == *" $f "* ]] || { echo "run-fuzzer.sh: unknown fuzzer '$f' (known: ${all[*]})" >&2; exit 2; }
  done
else
  fuzzers=("${all[@]}")
fi
# image_fuzzer comes with tests/fuzz/image_fuzzer.cpp; until that exists it is skipped (a failing
# build of an existing source is an error like any other)
targets=()
for f in "${fuzzers[@]}"; do
  if [[ $f == image_fuzzer && ! -f $root/tests/fuzz/image_fuzzer.cpp ]]; then
    echo "run-fuzzer.sh: skipping image_fuzzer (tests/fuzz/image_fuzzer.cpp does not exist yet)"
    continue
  fi
  targets+=("$f")
done
[[ ${#targets[@]} -gt 0 ]] || exit 0

CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
  -DLOCUS_BUILD_FUZZ=ON -DLOCUS_BUILD_TESTS=OFF -DLOCUS_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}" -j2

# --- seeds -----------------------------------------------------------------------------------------
seed() {  # seed FUZZER: fills build-fuzz/corpus/FUZZER
  local name=$1 corpus=$build/corpus/$1
  mkdir -p "$corpus"
  if [[ $name == image_fuzzer ]]; then  # its seeds are made from the shared photos too
    local photos
    photos=$(find "$models/images" -maxdepth 1 -name '*.jpg' 2>/dev/null | sort | tr '\n' ':')
    LOCUS_FUZZ_WRITE_SEEDS=$corpus LOCUS_FUZZ_SEED_PHOTOS=${photos%:} "$build/tests/fuzz/$name"
  else
    LOCUS_FUZZ_WRITE_SEEDS=$corpus "$build/tests/fuzz/$name"
  fi
  case $name in
    importer_fuzzer | pipeline_fuzzer)
      local mobilenet=$models/mobilenetv2-12-fp32-from-int8/mobilenetv2-12-fp32-from-int8.onnx
      if [[ $name == importer_fuzzer && -f $mobilenet ]]; then head -c 4096 "$mobilenet" >"$corpus/mobilenet_head.onnx"; fi
      local backend=/usr/share/libonnx-testdata/data/node t
      for t in test_conv_with_strides_padding test_batchnorm_example test_maxpool_2d_default test_clip \
               test_unsqueeze_axis_0 test_softmax_axis_1 test_dropout_default_mask test_constant test_reshape_extended_dims \
               test_gemm_default_scalar_bias test_concat_2d_axis_0 test_gather_0 test_averagepool_2d_pads test_add_bcast; do
        if [[ -f $backend/$t/model.onnx ]]; then install -m 644 "$backend/$t/model.onnx" "$corpus/backend_$t.onnx"; fi
      done ;;
    tensor_file_fuzzer)  # the shared models' test inputs and outputs (the small ones)
      local f
      for f in "$models"/*/test_data_set_*/*.pb; do
        [[ -f $f && $(stat -c %s "$f") -le 262144 ]] || continue
        install -m 644 "$f" "$corpus/$(basename "$(dirname "$(dirname "$f")")")_$(basename "$(dirname "$f")")_$(basename "$f")"
      done ;;
    accel_config_fuzzer)
      local f
      for f in "$root"/accel/presets/*/*.json; do install -m 644 "$f" "$corpus/preset_$(basename "$f")"; done ;;
  esac
}

# --- per-fuzzer options ----------------------------------------------------------------------------
options() {  # options FUZZER: extra libFuzzer flags
  case $1 in
    pipeline_fuzzer) echo "-rss_limit_mb=1536 -malloc_limit_mb=768 -timeout=20 -max_len=65536" ;;
    cli_fuzzer) echo "-rss_limit_mb=1024 -timeout=10 -max_len=4096 -dict=$root/tests/fuzz/cli.dict" ;;
    accel_config_fuzzer) echo "-rss_limit_mb=1024 -timeout=10 -dict=$root/tests/fuzz/json.dict" ;;
    image_fuzzer) echo "-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=65536" ;;
    tensor_file_fuzzer) echo "-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -max_len=65536" ;;
    *) echo "-rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10" ;;
  esac
}

mkdir -p "$build/logs"
failed=()
summary=()
for name in "${targets[@]}"; do
  seed "$name"
  artifacts=$build/artifacts/$name
  mkdir -p "$artifacts"
  marker=$build/logs/$name.start
  touch "$marker"
  log=$build/logs/$name.log
  echo "fuzzing $name for ${seconds}s (corpus: $build/corpus/$name)"
  status=0
  # shellcheck disable=SC2046
  "$build/tests/fuzz/$name" -max_total_time="$seconds" $(options "$name") -print_final_stats=1 -print_funcs=0 \
    -artifact_prefix="$artifacts/" "$build/corpus/$name" >"$log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -oE '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || true)
  new=$(find "$artifacts" -type f -newer "$marker" | head -5 | tr '\n' ' ')
  if [[ $status -ne 0 || -n $new ]]; then
    failed+=("$name")
    summary+=("FAIL $name (exit $status): ${new:-no artifact; see $log}")
    grep -E '^==[0-9]+==ERROR|SUMMARY:|runtime error|deadly signal|Timeout|out-of-memory|malloc limit' "$log" | head -5 >&2 || true
  else
    summary+=("ok   $name: ${execs:-?} execs in ${seconds}s, ${cov:-cov ?}")
  fi
done

echo
echo "fuzzing summary (logs: $build/logs/):"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "run-fuzzer.sh: ${#failed[@]} fuzzer(s) failed: ${failed[*]}" >&2
  exit 1
fi
