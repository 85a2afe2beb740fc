#!/usr/bin/env bash
# Simulated cache misses of ONE pointwise (1x1) convolution call, native Scan / row / column plans
# vs oneDNN, next to the tiling planner's modelled traffic. Issue 4 evidence; see
# bench/pointwise_bench.cpp (--pw_probe) and docs/cache-measurement.md.
#
# usage: scripts/pointwise-cachegrind.sh [options] [SHAPE...]
#
#   SHAPE               HxWxC->OC (e.g. '7x7x320->1280'), or M,K,N for a bare GEMM (batch 1);
#                       default: the --top largest distinct 1x1 layers of --model by MACs
#   --model NAME        mobilenetv2 (default; activation clip 0..6) or resnet50 (relu)
#   --batch N           batch (default 1)
#   --top N             how many of the largest layers when no SHAPE is given (default 3)
#   --variants LIST     comma-separated, from scan,row,col,gemm,onednn (default scan,row,onednn)
#   --ll-level N        host cache level simulated as LL (default 2: LL = the L2 of this machine)
#   --bench PATH        the pointwise_bench program (default $POINTWISE_BENCH, else
#                       build/bench/pointwise_bench, else build-bench/bench/pointwise_bench)
#   --keep DIR          keep every callgrind output, valgrind log and probe output in DIR
#
# Output (stdout): a markdown table, one row per layer and variant: D1 read / write misses, LL read /
# write misses, LL misses x line size in MiB (the simulated traffic beyond the LL), the planner's
# modelled traffic (entries and MiB, native planned variants only) and the compulsory traffic
# (input + weights + output once, MiB). The cache geometry used goes to stderr.
#
# Method: for each layer and variant, `pointwise_bench --pw_probe` builds the layer (weights packed /
# oneDNN primitive created, input reordered once), calls it once un-counted (warm-up: the caches
# then hold what a steady-state run would find), then exactly once inside the extern "C" noinline
# function locus_pointwise_probe_layer, which is the only function collected:
#   valgrind --tool=callgrind --cache-sim=yes --collect-atstart=no
#            --toggle-collect=locus_pointwise_probe_layer
# The simulator runs over the whole program, events are collected only inside that call. The
# geometry is the host's (D1 = L1d; LL = the level given by --ll-level), made acceptable to
# valgrind 3.19 the same way scripts/cachegrind.sh does (sets rounded down to a power of two,
# associativity raised to keep the size). One thread (OMP_NUM_THREADS=1): callgrind collects per
# thread and serialises threads anyway. valgrind's LL sees every D1 miss (an inclusive two-level
# model with no L2 hardware prefetcher), so "LL misses" is what an L2-sized cache with LRU would miss.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=scripts/lib/callgrind-common.sh
source "$repo/scripts/lib/callgrind-common.sh"

model=mobilenetv2 batch=1 top=3 variants=scan,row,onednn ll_level=2 keep=""
bench=${POINTWISE_BENCH:-}
shapes=()
positional() { shapes+=("$1"); }
parse_options --model="model:a NAME" --batch=batch:N --top=top:N --variants="variants:a LIST" --ll-level=ll_level:N \
  --bench="bench:a PATH" --keep="keep:a DIR" -- "$@"
[[ $batch =~ ^[1-9][0-9]*$ ]] || die "--batch expects a positive integer, got '$batch'"
[[ $top =~ ^[1-9][0-9]*$ ]] || die "--top expects a positive integer, got '$top'"
[[ $ll_level =~ ^[1-9]$ ]] || die "--ll-level expects a cache level (1-9), got '$ll_level'"
[[ $model == mobilenetv2 || $model == resnet50 ]] || die "--model: mobilenetv2 or resnet50, not '$model'"
IFS=, read -r -a vlist <<<"$variants"
for v in "${vlist[@]}"; do
  [[ $v =~ ^(scan|row|col|gemm|onednn)$ ]] || die "--variants: unknown variant '$v' (scan,row,col,gemm,onednn)"
done
command -v valgrind >/dev/null || die "needs valgrind (apt-get install valgrind)"
if [[ -z $bench ]]; then
  for b in "$repo/build/bench/pointwise_bench" "$repo/build-bench/bench/pointwise_bench"; do
    if [[ -x $b ]]; then bench=$b; break; fi
  done
fi
[[ -n $bench && -x $bench ]] || die "no pointwise_bench program (build it, or pass --bench PATH / set POINTWISE_BENCH)"

# ---- the layers: "SHAPE STRIDE" ----
layers=()
if ((${#shapes[@]} == 0)); then
  mapfile -t layers < <("$bench" --pw_list --pw_model "$model" --pw_batch "$batch" | head -n "$top" | awk '{ print $1, $2 }')
  ((${#layers[@]} > 0)) || die "'$bench --pw_list' listed no layers"
else
  for s in "${shapes[@]}"; do
    if [[ $s == */s[0-9]* ]]; then layers+=("${s%/s*} ${s##*/s}"); else layers+=("$s 1"); fi
  done
fi

# ---- cache geometry of the host, made acceptable to valgrind ----
d1_geo="" ll_geo="" i1_geo="" ll_line=64 ll_desc="LL"
take_cache() {
  if ((level == 1)); then
    d1_geo=$geo
    echo "cache geometry: --D1=${geo// /,} (host $desc)${adj:+, adjusted for valgrind: $adj}" >&2
  fi
  if ((level == ll_level)); then
    ll_geo=$geo ll_line=${geo##* } ll_desc="L$level $hsize"
    echo "cache geometry: --LL=${geo// /,} (host $desc)${adj:+, adjusted for valgrind: $adj}" >&2
  fi
}
for_each_host_cache take_cache
geo_args=()
if [[ -n $d1_geo && -n $ll_geo ]]; then
  geo_args+=(--D1="${d1_geo// /,}" --LL="${ll_geo// /,}")
  [[ -z $i1_geo ]] || geo_args+=(--I1="${i1_geo// /,}")
else
  echo "cache geometry: $sysc has no level-$ll_level data cache; valgrind's own detection is used" >&2
  ll_desc="LL"
fi

# ---- one probe per layer and variant ----
work=$(mktemp -d "${TMPDIR:-/tmp}/locus-pwcg.XXXXXX")
trap 'rm -rf "$work"' EXIT
[[ -z $keep ]] || mkdir -p "$keep"

echo "| layer | variant | D1 read misses | D1 write misses | $ll_desc read misses | $ll_desc write misses |" \
  "$ll_desc misses x ${ll_line} B (MiB) | modelled traffic (entries) | modelled (MiB) | compulsory (MiB) | plan / implementation |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for layer in "${layers[@]}"; do
  read -r shape stride <<<"$layer"
  for v in "${vlist[@]}"; do
    tag=$(echo "${shape}_s${stride}_b${batch}_$v" | tr -c 'A-Za-z0-9_.\n' '_')
    out=$work/$tag.callgrind log=$work/$tag.log probe=$work/$tag.probe
    echo "pointwise-cachegrind.sh: $shape (stride $stride, batch $batch) $v ..." >&2
    set +e
    OMP_NUM_THREADS=1 valgrind --tool=callgrind --cache-sim=yes "${geo_args[@]}" \
      --collect-atstart=no --toggle-collect=locus_pointwise_probe_layer --callgrind-out-file="$out" \
      --log-file="$log" \
      "$bench" --pw_probe --pw_shape "$shape" --pw_stride "$stride" --pw_batch "$batch" --pw_model "$model" \
      --pw_variant "$v" >"$probe" 2>>"$log"
    rc=$?
    set -e
    [[ -z $keep ]] || cp "$out" "$log" "$probe" "$keep"/ 2>/dev/null || true
    if ((rc != 0)) || [[ ! -s $out ]]; then
      tail -3 "$log" >&2 || true
      die "the probe under valgrind failed (exit $rc; $shape $v)"
    fi
    declare -A ev=()
    read_callgrind_totals "$out" || true
    ((${ev[Ir]:-0} > 0)) || die "nothing collected for $shape $v: locus_pointwise_probe_layer never entered?"
    pv() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$probe"; }
    planned=$(pv planned) traffic=$(pv traffic_entries) traffic_mib=$(pv traffic_mib) comp_mib=$(pv compulsory_mib)
    label=$(pv label)
    ((${planned:-0} == 1)) || { traffic="-"; traffic_mib="-"; }
    ll_mib=$(awk -v a="${ev[DLmr]}" -v b="${ev[DLmw]}" -v l="$ll_line" 'BEGIN { printf "%.3f", (a + b) * l / 1048576 }')
    name=$shape
    ((stride == 1)) || name+="/s$stride"
    ((batch == 1)) || name="b$batch $name"
    echo "| $name | $v | ${ev[D1mr]} | ${ev[D1mw]} | ${ev[DLmr]} | ${ev[DLmw]} | $ll_mib | $traffic | $traffic_mib | $comp_mib | $label |"
    unset ev
  done
done
