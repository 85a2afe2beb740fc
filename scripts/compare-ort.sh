#!/usr/bin/env bash
# The int8 / fp32 comparison with ONNX Runtime (issue 14): MobileNetV2 fp32 and int8, each runtime
# in its own process, alternating, over several rounds, at batch 1 on 1 and 2 threads and batch 8
# on 2 threads. Prints a markdown table of medians (the median over rounds of each run's median
# latency) with the machine and the commands, for docs/benchmarks.md.
#
# Usage: scripts/compare-ort.sh [--rounds N] [--runs N] [--out FILE.md]
#   --rounds N   alternating rounds (default 3)
#   --runs N     timed inferences per run (default 50; batch 8: a fifth of it, at least 10)
#   --out FILE   also write the table to FILE
# Columns: ORT fp32, ORT int8, locus fp32 (native, fused), locus int8 (native), oneDNN int8 (locus's
# unfused oneDNN backend). A cell is "n/a (reason)" when a runtime refuses the model.
# Needs: build/locus, node, and ONNX Runtime from ../shared/tools/ort/setup.sh (installed on first use).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "compare-ort.sh: $*" >&2; exit 1; }
rounds=3 runs=50 out=""
while (($#)); do
  case $1 in
    --rounds) (($# >= 2)) || die "--rounds needs N"; rounds=$2; shift 2 ;;
    --runs) (($# >= 2)) || die "--runs needs N"; runs=$2; shift 2 ;;
    --out) (($# >= 2)) || die "--out needs a FILE"; out=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds expects a positive integer, got '$rounds'"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs expects a positive integer, got '$runs'"
models=${LOCUS_MODEL_DIR:-$repo/../shared/models}
fp32=$models/mobilenetv2-12-fp32-from-int8/mobilenetv2-12-fp32-from-int8.onnx
int8=$models/mobilenetv2-12-int8/mobilenetv2-12-int8.onnx
[[ -f $fp32 && -f $int8 ]] || die "models not found under $models (set LOCUS_MODEL_DIR)"
locus=${LOCUS_BIN:-$repo/build/locus}
[[ -x $locus ]] || die "no locus program at '$locus' (build it, or set LOCUS_BIN)"
command -v node >/dev/null || die "needs node (ONNX Runtime runs from npm)"
ort=$("$repo/../shared/tools/ort/setup.sh" | tail -1)
[[ -f $ort/bench.js ]] || die "ONNX Runtime setup failed (no $ort/bench.js)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One timed run; prints the median ms or "n/a (first line of the error)".
run_one() {  # runtime model threads batch
  local rt=$1 model=$2 t=$3 b=$4 n=$runs
  ((b == 1)) || n=$(((runs / 5) > 10 ? runs / 5 : 10))
  local log=$tmp/log
  case $rt in
    ort)
      if node "$ort/bench.js" "$model" --threads "$t" --batch "$b" --runs "$n" --json >"$tmp/o.json" 2>"$log"; then
        python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median_ms'])" "$tmp/o.json"
      else echo "n/a ($(head -1 "$log" | cut -c1-60))"; fi ;;
    native|onednn)
      if "$locus" bench "$model" --backend "$rt" --threads "$t" --batch "$b" --runs "$n" --json "$tmp/l.json" \
           >/dev/null 2>"$log"; then
        python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['median_ms'])" "$tmp/l.json"
      else echo "n/a ($(grep -m1 '^locus: ' "$log" | sed 's/^locus: //' | cut -c1-70))"; fi ;;
  esac
}

columns=("ort:$fp32" "ort:$int8" "native:$fp32" "native:$int8" "onednn:$int8")
configs=("1 1" "2 1" "2 8")
declare -A results
for ((r = 1; r <= rounds; ++r)); do
  for cfg in "${configs[@]}"; do
    read -r t b <<<"$cfg"
    for c in "${columns[@]}"; do
      rt=${c%%:*} model=${c#*:}
      v=$(run_one "$rt" "$model" "$t" "$b")
      results["$cfg|$c"]+="$v;"
      echo "round $r/$rounds  threads $t batch $b  $rt $(basename "$model" .onnx): $v" >&2
    done
  done
done

median() {  # "a;b;c;" -> median of the numbers, or the first n/a
  python3 - "$1" <<'EOF'
import sys, statistics
vals = [v for v in sys.argv[1].split(';') if v]
nums = []
for v in vals:
    try: nums.append(float(v))
    except ValueError: print(v); sys.exit()
print(f"{statistics.median(nums):.2f}")
EOF
}

{
  echo "| MobileNetV2, median ms | ORT fp32 | ORT int8 | locus fp32 | locus int8 | oneDNN int8 (unfused) |"
  echo "|---|---|---|---|---|---|"
  for cfg in "${configs[@]}"; do
    read -r t b <<<"$cfg"
    plural=""; ((t == 1)) || plural=s
    row="| batch $b, $t thread$plural"
    for c in "${columns[@]}"; do row+=" | $(median "${results["$cfg|$c"]}")"; done
    echo "$row |"
  done
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs;" \
    "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Command: \`scripts/compare-ort.sh --rounds $rounds --runs $runs\` (medians over $rounds alternating rounds of" \
    "each run's median; ONNX Runtime $(node -e "console.log(require(process.argv[1]).version)" "$ort/node_modules/onnxruntime-node/package.json" 2>/dev/null || echo '?') CPU through ../shared/tools/ort/bench.js," \
    "locus through \`locus bench --backend native|onednn\`)."
} | tee "${out:-/dev/null}"
