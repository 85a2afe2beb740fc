#!/usr/bin/env bash
# The CPU figures of whole-bottleneck chain fusion (docs/fusion-results.md, "Whole-bottleneck chains
# on the CPU"): the CP-decomposed ResNet-50 (builtin:resnet50, ratio=0.25, written once by
# `locus decompose`) run as four configurations: native-unfused (every conv its own node), native
# (the default: the CP chain 1x1 -> dw -> 1x1 fused, FusedInvertedResidual), native --fuse-chains
# (whole bottlenecks, FusedChain) and onednn. Latency: ROUNDS alternating rounds of `locus bench`
# at 1 and 2 threads, each round's median per configuration printed, then the median of the rounds.
# Cache: one inference per configuration under valgrind's cache simulator (`locus bench
# --cachegrind`, one thread, AVX2 paths), LL = the host's last level and LL = L2.
#
# Usage: scripts/chain-cpu-figures.sh [--rounds N] [--runs N] [--no-cachegrind] [--model FILE]
#   --model FILE  an already decomposed model (default: written to $TMPDIR/locus-r50cp.onnx once;
#                 the ALS fit is capped at 20 iterations: timing depends on shapes only)
# Needs: build/locus (or LOCUS_BIN); valgrind for the cache figures.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "chain-cpu-figures.sh: $*" >&2; exit 1; }
rounds=3 runs=30 cg=1 model=""
while (($#)); do
  case $1 in
    --rounds) (($# >= 2)) || die "--rounds needs N"; rounds=$2; shift 2 ;;
    --runs) (($# >= 2)) || die "--runs needs N"; runs=$2; shift 2 ;;
    --no-cachegrind) cg=0; shift ;;
    --model) (($# >= 2)) || die "--model needs a FILE"; model=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
locus=${LOCUS_BIN:-$repo/build/locus}
[[ -x $locus ]] || die "no locus program at '$locus' (build it, or set LOCUS_BIN)"
if [[ -z $model ]]; then
  model=${TMPDIR:-/tmp}/locus-r50cp.onnx
  [[ -f $model ]] || "$locus" decompose builtin:resnet50 --decompose ratio=0.25 --iterations 20 -o "$model" >/dev/null
fi
[[ -f $model ]] || die "no model '$model'"

configs=("--backend native-unfused" "--backend native" "--backend native --fuse-chains" "--backend onednn")
names="native-unfused|native (CP chain fused)|native --fuse-chains|onednn"
# each configuration in its own process, the four in turn, ROUNDS rounds (the VM drifts over minutes)
for threads in 1 2; do
  echo "threads $threads: per round, median ms of: ${names//|/, }"
  all=()
  for ((r = 0; r < rounds; ++r)); do
    row=""
    for c in "${configs[@]}"; do
      # shellcheck disable=SC2086
      row+=" $("$locus" bench "$model" $c --threads "$threads" --runs "$runs" | awk '$1 == "median" && $2 == "ms" { print $3 }')"
    done
    echo "  round $r:$row"
    all+=("$row")
  done
  printf '%s\n' "${all[@]}" | NAMES=$names /usr/bin/python3 -c '
import os, sys, statistics
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
names = os.environ["NAMES"].split("|")
print("  median of rounds: " + ", ".join(f"{n} {statistics.median(c):.1f} ms" for n, c in zip(names, zip(*rows))))'
done
((cg)) || exit 0
for ll in 3 2; do
  echo "cachegrind, LL = L$ll (one inference, one thread):"
  for c in "${configs[@]}"; do
    echo "  $c"
    # shellcheck disable=SC2086
    "$locus" bench "$model" $c --cachegrind --ll-level "$ll" | grep -iE 'miss|refs|instr' || true
  done
done
