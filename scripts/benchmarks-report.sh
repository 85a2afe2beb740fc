#!/usr/bin/env bash
# Regenerates docs/benchmarks.md: runs `locus bench` on the real MobileNetV2 for every backend
# (batch 1 at 1 and 2 threads with a per-layer profile, batch 8 at 2 threads) and once under the
# cache simulator, then renders the JSON results with scripts/render_benchmarks.py; then the
# pointwise-layer benchmark and its cache simulation (bench/pointwise_bench, scripts/pointwise-cachegrind.sh);
# last the quantized model against ONNX Runtime (scripts/bench-int8.sh).
# Usage: scripts/benchmarks-report.sh [BACKENDS]   (default native,native-unfused,onednn,onednn-dwfused)
set -euo pipefail
cd "$(dirname "$0")/.."
backends=${1:-native,native-unfused,onednn,onednn-dwfused}
model=mobilenetv2-12-fp32-from-int8
out=build/bench-results
mkdir -p "$out"
run() { echo "+ build/locus bench $model $*" >&2; build/locus bench "$model" "$@" >/dev/null; }
run --backend "$backends" --threads 1 --runs 100 --profile --json "$out/b1_t1.json"
run --backend "$backends" --threads 2 --runs 100 --profile --json "$out/b1_t2.json"
run --backend "$backends" --threads 2 --batch 8 --runs 30 --json "$out/b8_t2.json"
run --backend "$backends" --cachegrind --json "$out/cachegrind.json"
run --backend "$backends" --cachegrind --ll-level 2 --json "$out/cachegrind_l2.json"
# Pointwise (1x1) layers on their own (issue 4): every MobileNetV2 1x1 shape at batch 1 and 8, one
# thread, Scan / row / column plans, the unplanned GEMM and oneDNN, GFLOP/s and % of the measured
# fp32 peak; then simulated cache misses of the three largest layers next to the planner's model.
echo "+ build/bench/pointwise_bench (MobileNetV2 1x1 layers)" >&2
OMP_NUM_THREADS=1 build/bench/pointwise_bench --benchmark_min_time=0.2 --benchmark_filter='peak|pw/b1/|pw/b8/' \
  --benchmark_repetitions=3 --benchmark_report_aggregates_only=true --pw_summary >"$out/pointwise.txt"
echo "+ build/bench/blocks_bench (the 17 inverted-residual blocks)" >&2
OMP_NUM_THREADS=1 build/bench/blocks_bench --benchmark_min_time=0.15 --benchmark_filter='/b1/' >"$out/blocks.txt" 2>/dev/null
echo "+ scripts/pointwise-cachegrind.sh" >&2
scripts/pointwise-cachegrind.sh --bench build/bench/pointwise_bench >"$out/pointwise_cachegrind.md"
{
  python3 scripts/render_benchmarks.py "$out/b1_t1.json" "$out/b1_t2.json" "$out/b8_t2.json" "$out/cachegrind.json" \
    "$out/cachegrind_l2.json"
  echo
  echo "# Pointwise (1x1) convolutions"
  echo
  echo 'Command: `OMP_NUM_THREADS=1 build/bench/pointwise_bench --benchmark_min_time=0.2'\
' --benchmark_filter='"'"'peak|pw/b1/|pw/b8/'"'"' --benchmark_repetitions=3 --benchmark_report_aggregates_only=true --pw_summary`'
  sed -n '/^## pointwise summary/,$p' "$out/pointwise.txt"
  echo
  echo "## Simulated cache misses of the three largest 1x1 layers (batch 1, one call)"
  echo
  echo 'Command: `scripts/pointwise-cachegrind.sh` (callgrind cache simulator, D1 = the host's L1d, LL = the host's L2; the geometry is printed in the table below).'
  echo
  cat "$out/pointwise_cachegrind.md"
  echo
  echo "# Inverted-residual blocks (batch 1, 1 thread)"
  echo
  echo 'Command: `OMP_NUM_THREADS=1 build/bench/blocks_bench --benchmark_min_time=0.15 --benchmark_filter=/b1/`.'
  echo 'Each block is a one-block model run through a Session, so every time includes converting the'
  echo "block's input and output to and from NCHW (see bench/blocks_bench.cpp); the per-node profile"
  echo 'above gives in-network times.'
  echo
  echo '```'
  grep '^block' "$out/blocks.txt"
  echo '```'
  echo
  scripts/bench-int8.sh
} >docs/benchmarks.md
echo "wrote docs/benchmarks.md" >&2
