#!/usr/bin/env bash
# The comparison with ONNX Runtime (issues 14 and 16): MobileNetV2 fp32 and int8, and ResNet-50 fp32,
# each runtime in its own process, alternating, over several rounds, at batch 1 on 1 and 2 threads
# and batch 8 on 2 threads. Prints markdown tables of locus's speed-up over ONNX Runtime (ORT's time
# over locus's in each round, the median and range over the rounds), of medians (the median over
# rounds of each run's median latency) and of the share of this machine's measured peak each median
# reaches, with the machine and the commands, for docs/benchmarks.md.
#
# Usage: scripts/compare-ort.sh [--rounds N] [--runs N] [--networks LIST] [--out FILE.md]
#   --rounds N       alternating rounds (default 3)
#   --runs N         timed inferences per run (default 50; batch 8: a fifth of it, at least 10;
#                    ResNet-50: a fifth at batch 1, a tenth at batch 8, at least 10 and 5)
#   --networks LIST  comma-separated: mobilenetv2, resnet50 (default both)
#   --out FILE       also write the tables to FILE
# MobileNetV2 columns: ORT fp32, ORT int8, locus fp32 (native, fused), locus int8 (native), oneDNN
# int8 (locus's unfused oneDNN backend). ResNet-50 columns: ORT fp32, locus fp32 (native: Winograd,
# fused residuals), oneDNN fp32 (locus's oneDNN backend). ResNet-50 is the builtin's architecture
# with random weights written as ONNX by scripts/resnet50-onnx.py (cached under
# ${XDG_CACHE_HOME:-~/.cache}/locus/). A cell is "n/a (reason)" when a runtime refuses the model.
# The peaks (fp32 FMA and int8 dot-product throughput on 1 and 2 threads) come from
# `locus bench --peak`, measured after the timing rounds.
# Needs: build/locus, node, python3 with onnx, and ONNX Runtime from ../shared/tools/ort/setup.sh
# (installed on first use).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/ort-common.sh
source "$repo/scripts/lib/ort-common.sh"
rounds=3 runs=50 out="" networks="mobilenetv2,resnet50"
while (($#)); do
  case $1 in
    --rounds) (($# >= 2)) || die "--rounds needs N"; rounds=$2; shift 2 ;;
    --runs) (($# >= 2)) || die "--runs needs N"; runs=$2; shift 2 ;;
    --networks) (($# >= 2)) || die "--networks needs a LIST"; networks=$2; shift 2 ;;
    --out) (($# >= 2)) || die "--out needs a FILE"; out=$2; shift 2 ;;
    -h|--help) usage ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
positive_count --rounds "$rounds"
positive_count --runs "$runs"
want_mnv2=0 want_r50=0
IFS=, read -ra nets <<<"$networks"
((${#nets[@]})) || die "--networks needs at least one of mobilenetv2, resnet50"
for n in "${nets[@]}"; do
  case $n in
    mobilenetv2) want_mnv2=1 ;;
    resnet50) want_r50=1 ;;
    *) die "--networks: unknown network '$n' (mobilenetv2, resnet50)" ;;
  esac
done
models=${LOCUS_MODEL_DIR:-$repo/../shared/models}
fp32=$models/mobilenetv2-12-fp32-from-int8/mobilenetv2-12-fp32-from-int8.onnx
int8=$models/mobilenetv2-12-int8/mobilenetv2-12-int8.onnx
if ((want_mnv2)); then [[ -f $fp32 && -f $int8 ]] || die "models not found under $models (set LOCUS_MODEL_DIR)"; fi
locus=${LOCUS_BIN:-$repo/build/locus}
[[ -x $locus ]] || die "no locus program at '$locus' (build it, or set LOCUS_BIN)"
r50=""
((want_r50)) && r50=$(resnet50_model)
ort=$(ort_dir)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# One timed run; prints the median ms or "n/a (first line of the error)", a long line cut at a word
# with "..." (a parenthesis the cut opened would otherwise read as "(without )").
shorten() {  # max: stdin's line, or its words that fit in max - 3 characters and "..."
  awk -v max="$1" '{ if (length($0) <= max) { print; next }
    s = substr($0, 1, max - 3); sub(/[ (]+[^ ]*$/, "", s); print s "..." }'
}
run_one() {  # runtime model threads batch
  local rt=$1 model=$2 t=$3 b=$4 n=$runs
  if [[ $model == "$r50" ]]; then
    if ((b == 1)); then n=$((runs / 5 > 10 ? runs / 5 : 10)); else n=$((runs / 10 > 5 ? runs / 10 : 5)); fi
  elif ((b != 1)); then n=$((runs / 5 > 10 ? runs / 5 : 10)); fi
  local log=$tmp/log
  case $rt in
    ort)
      if node "$ort/bench.js" "$model" --threads "$t" --batch "$b" --runs "$n" --json >"$tmp/o.json" 2>"$log"; then
        python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median_ms'])" "$tmp/o.json"
      else echo "n/a ($(head -1 "$log" | shorten 60))"; fi ;;
    native|onednn)
      if "$locus" bench "$model" --backend "$rt" --threads "$t" --batch "$b" --runs "$n" --json "$tmp/l.json" \
           >/dev/null 2>"$log"; then
        python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['median_ms'])" "$tmp/l.json"
      else echo "n/a ($(grep -m1 '^locus: ' "$log" | sed 's/^locus: //; s/^error: //' | shorten 120))"; fi ;;
  esac
}

columns=()
((want_mnv2)) && columns+=("ort:$fp32" "ort:$int8" "native:$fp32" "native:$int8" "onednn:$int8")
((want_r50)) && columns+=("ort:$r50" "native:$r50" "onednn:$r50")
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

# MACs per image of each model and the peaks (GFLOP/s or GOP/s) on 1 and 2 threads, from
# `locus bench --peak` (one short run each).
declare -A macs peaks
peak_of() {  # model threads -> sets macs[model] and peaks[kind|threads]
  local model=$1 t=$2
  "$locus" bench "$model" --threads "$t" --runs 1 --warmup 0 --peak --json "$tmp/p.json" >/dev/null 2>"$tmp/log" ||
    die "locus bench --peak failed on $model: $(tail -1 "$tmp/log")"
  read -r m kind p < <(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; print(r['macs'], r['peak_kind'], round(r['peak_gflops']))" "$tmp/p.json")
  macs[$model]=$m
  peaks["$kind|$t"]=$p
  kinds[$model]=$kind
}
declare -A kinds
for t in 1 2; do
  ((want_mnv2)) && { peak_of "$fp32" "$t"; peak_of "$int8" "$t"; }
  ((want_r50)) && peak_of "$r50" "$t"
done

pct() {  # median-cell model threads batch -> % of the peak, or "-"
  local v=$1 model=$2 t=$3 b=$4
  [[ $v =~ ^[0-9.]+$ ]] || { echo "-"; return; }
  python3 -c "import sys; v,m,p,b=map(float,sys.argv[1:]); print(f'{100*2*m*b/(v*1e-3)/1e9/p:.0f}%')" \
    "$v" "${macs[$model]}" "${peaks["${kinds[$model]}|$t"]}" "$b"
}

table() {  # title header-cells... -- columns...
  local title=$1; shift
  local heads=() cols=()
  while [[ $1 != -- ]]; do heads+=("$1"); shift; done
  shift
  cols=("$@")
  local line="| $title" sep="|---"
  for h in "${heads[@]}"; do line+=" | $h"; sep+="|---"; done
  echo "$line |"; echo "$sep|"
  for cfg in "${configs[@]}"; do
    read -r t b <<<"$cfg"
    plural=""; ((t == 1)) || plural=s
    row="| batch $b, $t thread$plural"
    for c in "${cols[@]}"; do
      v=$(median "${results["$cfg|$c"]}")
      row+=" | $v ($(pct "$v" "${c#*:}" "$t" "$b"))"
    done
    echo "$row |"
  done
  echo
}

# ORT's time over locus's in each round (the two ran back to back), as "median (min-max)" over the
# rounds: steadier on a shared machine than the ratio of the medians, since both move with its load.
ratio() {  # ort-list locus-list
  python3 - "$1" "$2" <<'PY'
import statistics, sys
def nums(s):
    return [float(x) for x in s.split(';') if x.strip()]
try:
    a, b = nums(sys.argv[1]), nums(sys.argv[2])
except ValueError:
    print('-'); sys.exit()
r = [x / y for x, y in zip(a, b) if y > 0]
print(f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})" if r else '-')
PY
}
ratios() {  # label ort-column locus-column
  local row="| $1"
  for cfg in "${configs[@]}"; do row+=" | $(ratio "${results["$cfg|$2"]}" "${results["$cfg|$3"]}")"; done
  echo "$row |"
}

{
  echo "| locus's speed-up over ONNX Runtime: median of the rounds' ratios (range) | batch 1, 1 thread | batch 1, 2 threads | batch 8, 2 threads |"
  echo "|---|---|---|---|"
  if ((want_mnv2)); then
    ratios "MobileNetV2 fp32" "ort:$fp32" "native:$fp32"
    ratios "MobileNetV2 int8" "ort:$int8" "native:$int8"
  fi
  ((want_r50)) && ratios "ResNet-50 fp32" "ort:$r50" "native:$r50"
  echo
  if ((want_mnv2)); then
    table "MobileNetV2, median ms (% of peak)" "ORT fp32" "ORT int8" "locus fp32" "locus int8" "oneDNN int8 (unfused)" -- \
      "ort:$fp32" "ort:$int8" "native:$fp32" "native:$int8" "onednn:$int8"
  fi
  if ((want_r50)); then
    table "ResNet-50, median ms (% of peak)" "ORT fp32" "locus fp32" "oneDNN fp32" -- "ort:$r50" "native:$r50" "onednn:$r50"
  fi
  echo "Peaks measured by \`locus bench --peak\` on this machine: fp32 ${peaks["fp32|1"]:-?} / ${peaks["fp32|2"]:-?} GFLOP/s" \
    "and int8 ${peaks["int8|1"]:-?} / ${peaks["int8|2"]:-?} GOP/s on 1 / 2 threads. % of peak = 2 x MACs x batch / median /" \
    "peak (the fp32 peak for fp32 models, the int8 one for int8 models); MACs are the direct convolution's, so Winograd" \
    "layers count as if computed directly."
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs;" \
    "load average before the run: $load_before."
  echo "Command: \`scripts/compare-ort.sh --rounds $rounds --runs $runs --networks $networks\` (medians over $rounds alternating rounds of" \
    "each run's median; ONNX Runtime $(node -e "console.log(require(process.argv[1]).version)" "$ort/node_modules/onnxruntime-node/package.json" 2>/dev/null || echo '?') CPU through ../shared/tools/ort/bench.js," \
    "locus through \`locus bench --backend native|onednn\`)."
} | tee "${out:-/dev/null}"
