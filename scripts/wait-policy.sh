#!/usr/bin/env bash
# How libgomp's wait policy treats locus's 2-thread runs on a quiet machine and beside one busy
# process (issue 16, "threads that scale"): MobileNetV2 fp32 and ResNet-50 fp32 at batch 1 on 2
# threads, for each policy, alternating policies in separate processes over several rounds, with
# ONNX Runtime (its own thread pool) under the same conditions for reference. Prints a markdown
# table of medians (the median over rounds of each run's median ms).
#
# Usage: scripts/wait-policy.sh [--rounds N] [--runs N] [--out FILE.md]
#   --rounds N  alternating rounds (default 3)
#   --runs N    timed inferences per run (default 50; ResNet-50: a fifth, at least 10)
#   --out FILE  also write the table to FILE
# Policies: GOMP_SPINCOUNT=300000 (libgomp's default spin when neither variable is set: spin that
# many iterations, then sleep), GOMP_SPINCOUNT=10000, GOMP_SPINCOUNT=1000 (what the locus program
# runs with unless told otherwise, cli/cli.cpp), OMP_WAIT_POLICY=passive (sleep at once). Each is
# set explicitly, so locus does not substitute its own. "1 busy process" is a shell busy
# loop started before and stopped after each run, so one of the two vCPUs is contended. A run that
# takes longer than 120 s is cut off and shown as "> 120 s".
# Needs: build/locus, node, ONNX Runtime from ../shared/tools/ort/setup.sh, and the ResNet-50 that
# scripts/compare-ort.sh writes (written here too if missing).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib/ort-common.sh
source "$repo/scripts/lib/ort-common.sh"
rounds=3 runs=50 out=""
while (($#)); do
  case $1 in
    --rounds) (($# >= 2)) || die "--rounds needs N"; rounds=$2; shift 2 ;;
    --runs) (($# >= 2)) || die "--runs needs N"; runs=$2; shift 2 ;;
    --out) (($# >= 2)) || die "--out needs a FILE"; out=$2; shift 2 ;;
    -h|--help) usage ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
positive_count --rounds "$rounds"
positive_count --runs "$runs"
models=${LOCUS_MODEL_DIR:-$repo/../shared/models}
mnv2=$models/mobilenetv2-12-fp32-from-int8/mobilenetv2-12-fp32-from-int8.onnx
[[ -f $mnv2 ]] || die "model not found: $mnv2 (set LOCUS_MODEL_DIR)"
locus=${LOCUS_BIN:-$repo/build/locus}
[[ -x $locus ]] || die "no locus program at '$locus' (build it, or set LOCUS_BIN)"
r50=$(resnet50_model)
ort=$(ort_dir)
tmp=$(mktemp -d)
busy=""
cleanup() { [[ -z $busy ]] || kill "$busy" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

policies=("GOMP_SPINCOUNT=300000" "GOMP_SPINCOUNT=10000" "GOMP_SPINCOUNT=1000" "OMP_WAIT_POLICY=passive" "ort")
loads=("quiet" "busy")

run_one() {  # policy model -> median ms, or "> 120 s" / "n/a"
  local pol=$1 model=$2 n=$runs
  [[ $model == "$r50" ]] && n=$((runs / 5 > 10 ? runs / 5 : 10))
  local envs=(env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT)
  [[ $pol == ort ]] || envs+=("$pol")
  if [[ $pol == ort ]]; then
    if timeout 120 "${envs[@]}" node "$ort/bench.js" "$model" --threads 2 --runs "$n" --json >"$tmp/o.json" 2>/dev/null; then
      python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median_ms'])" "$tmp/o.json"
    else echo "> 120 s"; fi
  else
    if timeout 120 "${envs[@]}" "$locus" bench "$model" --threads 2 --runs "$n" --json "$tmp/l.json" >/dev/null 2>&1; then
      python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['median_ms'])" "$tmp/l.json"
    else echo "> 120 s"; fi
  fi
}

declare -A results
for ((r = 1; r <= rounds; ++r)); do
  for load in "${loads[@]}"; do
    for model in "$mnv2" "$r50"; do
      for pol in "${policies[@]}"; do
        if [[ $load == busy ]]; then
          sh -c 'while :; do :; done' &
          busy=$!
        fi
        v=$(run_one "$pol" "$model")
        if [[ -n $busy ]]; then kill "$busy" 2>/dev/null || true; wait "$busy" 2>/dev/null || true; busy=""; fi
        results["$load|$model|$pol"]+="$v;"
        echo "round $r/$rounds  $load  $(basename "$model" .onnx)  $pol: $v" >&2
      done
    done
  done
done

{
  echo "| 2 threads, batch 1, median ms | GOMP_SPINCOUNT=300000 (libgomp's default) | GOMP_SPINCOUNT=10000 | GOMP_SPINCOUNT=1000 (locus's default) | OMP_WAIT_POLICY=passive | ORT (own pool) |"
  echo "|---|---|---|---|---|---|"
  for load in "${loads[@]}"; do
    for model in "$mnv2" "$r50"; do
      name=MobileNetV2; [[ $model == "$r50" ]] && name=ResNet-50
      label="quiet"; [[ $load == busy ]] && label="1 busy process"
      row="| $name, $label"
      for pol in "${policies[@]}"; do row+=" | $(median "${results["$load|$model|$pol"]}")"; done
      echo "$row |"
    done
  done
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) vCPUs;" \
    "load average before the run: $load_before."
  echo "Command: \`scripts/wait-policy.sh --rounds $rounds --runs $runs\` (medians over $rounds alternating rounds)."
} | tee "${out:-/dev/null}"
