#!/usr/bin/env bash
# Regenerates docs/benchmarks.md: runs `locus bench` on the real MobileNetV2 for every backend
# (batch 1 at 1 and 2 threads with a per-layer profile, batch 8 at 2 threads) and once under the
# cache simulator, then renders the JSON results with scripts/render_benchmarks.py.
# Usage: scripts/benchmarks-report.sh [BACKENDS]   (default native,onednn,onednn-dwfused)
set -euo pipefail
cd "$(dirname "$0")/.."
backends=${1:-native,onednn,onednn-dwfused}
model=mobilenetv2-12-fp32-from-int8
out=build/bench-results
mkdir -p "$out"
run() { echo "+ build/locus bench $model $*" >&2; build/locus bench "$model" "$@" >/dev/null; }
run --backend "$backends" --threads 1 --runs 100 --profile --json "$out/b1_t1.json"
run --backend "$backends" --threads 2 --runs 100 --profile --json "$out/b1_t2.json"
run --backend "$backends" --threads 2 --batch 8 --runs 30 --json "$out/b8_t2.json"
run --backend "$backends" --cachegrind --json "$out/cachegrind.json"
run --backend "$backends" --cachegrind --ll-level 2 --json "$out/cachegrind_l2.json"
python3 scripts/render_benchmarks.py "$out/b1_t1.json" "$out/b1_t2.json" "$out/b8_t2.json" "$out/cachegrind.json" \
  "$out/cachegrind_l2.json" >docs/benchmarks.md
echo "wrote docs/benchmarks.md" >&2
