#!/usr/bin/env bash
# Simulated cache misses of exactly one inference of MODEL (not model loading, not weight packing,
# not output writing), with the host's cache geometry. See docs/cache-measurement.md.
#
# usage: scripts/cachegrind.sh MODEL [options]
#
#   MODEL               a .onnx file, a folder holding one (ONNX test layout: its
#                       test_data_set_0/input_N.pb are used as inputs), or a name on the model
#                       search path ($LOCUS_MODEL_DIR, ../shared/models beside the checkout)
#   --input NAME=FILE   serialized TensorProto for input NAME (repeatable); required unless MODEL
#                       is a test-layout folder
#   --backend NAME      backend passed to `locus run` (default native)
#   --threads N         OpenMP threads (default 1; see the note on threads below)
#   --json FILE         also write the results as JSON
#   --ll-level N        cache level simulated as LL (default: the last level, e.g. 3; 2 gives
#                       misses of an L2-sized LL instead)
#   --toggle FUNC       function whose calls are measured (default 'locus::Session::run*')
#   --locus PATH        the locus program (default $LOCUS_BIN, else build/locus)
#   --keep DIR          keep the callgrind output and log in DIR (for callgrind_annotate)
#
# Output: one `key value` line per measure on stdout (d1_read_misses d1_write_misses
# ll_read_misses ll_write_misses instructions data_refs data_reads data_writes); the cache
# geometry used and the run time on stderr.
#
# Method: valgrind --tool=callgrind --cache-sim=yes (the same cache simulator as cachegrind) with
# --collect-atstart=no --toggle-collect=FUNC: the simulator runs over the whole program, so the
# caches hold what model loading left in them, but events are only collected between entry and
# exit of FUNC on the thread that calls it. `locus run --input` calls Session::run exactly once.
# Threads: collection is per thread, so with --threads N > 1 the work done by OpenMP worker
# threads is NOT counted (valgrind runs the threads one at a time anyway); use 1 (the default).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=scripts/lib/callgrind-common.sh
source "$repo/scripts/lib/callgrind-common.sh"

model="" backend=native threads=1 json="" ll_level="" toggle='locus::Session::run*' keep=""
locus=${LOCUS_BIN:-$repo/build/locus}
inputs=()
positional() { [[ -z $model ]] || die "one MODEL only (got '$model' and '$1')"; model=$1; }
parse_options --input=inputs:NAME=FILE --backend="backend:a NAME" --threads=threads:N --json="json:a FILE" \
  --ll-level=ll_level:N --toggle="toggle:a function" --locus="locus:a PATH" --keep="keep:a DIR" -- "$@"
[[ -n $model ]] || usage
[[ $threads =~ ^[1-9][0-9]*$ ]] || die "--threads expects a positive integer, got '$threads'"
[[ -z $ll_level || $ll_level =~ ^[1-9]$ ]] || die "--ll-level expects a cache level (1-9), got '$ll_level'"
command -v valgrind >/dev/null || die "needs valgrind (apt-get install valgrind)"
[[ -x $locus ]] || die "no locus program at '$locus' (build it, or pass --locus PATH / set LOCUS_BIN)"
((threads == 1)) || echo "cachegrind.sh: warning: --threads $threads: callgrind collects per thread, so the" \
  "work of the $((threads - 1)) OpenMP worker thread(s) is not counted; the figures are incomplete" >&2

# ---- the model and its inputs ----
model_path=$model
if [[ ! -e $model_path ]]; then
  for d in "${LOCUS_MODEL_DIR:-}" "$repo/../shared/models"; do
    if [[ -n $d && -e $d/$model ]]; then model_path=$d/$model; break; fi
  done
fi
[[ -e $model_path ]] || die "model '$model' not found (as a path, in \$LOCUS_MODEL_DIR or $repo/../shared/models)"
model_dir=$model_path
[[ -d $model_dir ]] || model_dir=$(dirname "$model_path")
if ((${#inputs[@]} == 0)); then
  [[ -f $model_dir/test_data_set_0/input_0.pb ]] ||
    die "'$model' is not an ONNX test-layout folder (no test_data_set_0/input_0.pb): give --input NAME=FILE.pb" \
      "(or use 'locus bench MODEL --cachegrind', which generates pseudo-random inputs)"
  mapfile -t names < <("$locus" info "$model_path" --no-optimize | awk '$1 == "input" { print $2 }')
  ((${#names[@]} > 0)) || die "'locus info $model_path' lists no inputs"
  for i in "${!names[@]}"; do
    f=$model_dir/test_data_set_0/input_$i.pb
    [[ -f $f ]] || die "model input $i '${names[$i]}' has no $f"
    inputs+=("${names[$i]}=$f")
  done
fi
run_args=()
for spec in "${inputs[@]}"; do
  [[ $spec == ?*=?* ]] || die "--input expects NAME=FILE.pb, got '$spec'"
  [[ -f ${spec#*=} ]] || die "input file '${spec#*=}' does not exist"
  run_args+=(--input "$spec")
done

# ---- cache geometry of the host, made acceptable to valgrind ----
# per cache: "size assoc line" used, the host's description, what was adjusted
d1_geo="" d1_host="" d1_adj="" ll_geo="" ll_host="" ll_adj="" i1_geo="" best_level=0
take_cache() {
  if ((level == 1)); then d1_geo=$geo d1_host=$desc d1_adj=$adj; fi
  local take=0
  if [[ -n $ll_level ]]; then ((level != ll_level)) || take=1; elif ((level > best_level)); then take=1; fi
  if ((take)); then best_level=$level ll_geo=$geo ll_host=$desc ll_adj=$adj; fi
}
for_each_host_cache take_cache
[[ -z $ll_level || -n $ll_geo ]] || die "the host has no data/unified cache at level $ll_level"
geo_args=() d1_used="" ll_used=""
if [[ -n $d1_geo && -n $ll_geo ]]; then
  d1_used=${d1_geo// /,} ll_used=${ll_geo// /,}
  geo_args+=(--D1="$d1_used" --LL="$ll_used")
  [[ -z $i1_geo ]] || geo_args+=(--I1="${i1_geo// /,}")
  echo "cache geometry: --D1=$d1_used (host $d1_host)${d1_adj:+, adjusted for valgrind: $d1_adj}" >&2
  echo "cache geometry: --LL=$ll_used (host $ll_host)${ll_adj:+, adjusted for valgrind: $ll_adj}" >&2
else
  echo "cache geometry: $sysc not readable; valgrind's own detection is used" >&2
fi

# ---- one run under callgrind ----
work=$(mktemp -d "${TMPDIR:-/tmp}/locus-cachegrind.XXXXXX")
trap 'rm -rf "$work"' EXIT
out=$work/callgrind.out log=$work/valgrind.log
echo "cachegrind.sh: $backend, $threads thread(s), collecting in '$toggle' (valgrind: about a minute)..." >&2
t0=$(date +%s.%N)
set +e
OMP_NUM_THREADS=$threads valgrind --tool=callgrind --cache-sim=yes "${geo_args[@]}" \
  --collect-atstart=no --toggle-collect="$toggle" --callgrind-out-file="$out" \
  "$locus" run "$model_path" "${run_args[@]}" --backend "$backend" --threads "$threads" >"$log" 2>&1
rc=$?
set -e
t1=$(date +%s.%N)
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
if [[ -n $keep ]]; then mkdir -p "$keep"; cp "$out" "$log" "$keep"/ 2>/dev/null || true; fi
if ((rc != 0)) || [[ ! -s $out ]]; then
  grep -v '^==[0-9]*==' "$log" | grep -v '^--[0-9]*-- warning: L3 cache found' | tail -3 >&2 || true
  die "the run under valgrind failed (exit $rc; backend '$backend')"
fi
declare -A ev
read_callgrind_totals "$out" || die "no event totals in the callgrind output"
((${ev[Ir]:-0} > 0)) || die "nothing was collected: '$toggle' was never entered (inlined, renamed, or a" \
  "different entry point for this backend?); run with --keep DIR and inspect with callgrind_annotate"

keys=(d1_read_misses d1_write_misses ll_read_misses ll_write_misses instructions data_refs data_reads data_writes)
declare -A val=(
  [d1_read_misses]=${ev[D1mr]} [d1_write_misses]=${ev[D1mw]}
  [ll_read_misses]=${ev[DLmr]} [ll_write_misses]=${ev[DLmw]}
  [instructions]=${ev[Ir]} [data_refs]=$((ev[Dr] + ev[Dw])) [data_reads]=${ev[Dr]} [data_writes]=${ev[Dw]}
)
for k in "${keys[@]}"; do echo "$k ${val[$k]}"; done
echo "cachegrind.sh: done in ${wall}s (one inference under valgrind, plus loading)" >&2

if [[ -n $json ]]; then
  jstr() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
  geo_json() {  # used-geometry host-description adjustments
    local s a l; IFS=, read -r s a l <<<"$1"
    printf '{"size": %s, "assoc": %s, "line": %s, "host": %s, "adjusted": %s}' "${s:-0}" "${a:-0}" "${l:-0}" \
      "$(jstr "$2")" "$(jstr "$3")"
  }
  {
    echo "{"
    echo "  \"schema\": \"locus-cachegrind/1\","
    echo "  \"model\": $(jstr "$model_path"),"
    echo "  \"backend\": $(jstr "$backend"),"
    echo "  \"threads\": $threads,"
    printf '  "inputs": ['
    sep=""; for spec in "${inputs[@]}"; do printf '%s%s' "$sep" "$(jstr "$spec")"; sep=", "; done
    echo "],"
    echo "  \"region\": $(jstr "$toggle"),"
    echo "  \"tool\": $(jstr "$(valgrind --version) --tool=callgrind --cache-sim=yes --collect-atstart=no --toggle-collect"),"
    if [[ -n $d1_used ]]; then
      echo "  \"d1\": $(geo_json "$d1_used" "$d1_host" "$d1_adj"),"
      echo "  \"ll\": $(geo_json "$ll_used" "$ll_host" "$ll_adj"),"
    fi
    echo "  \"wall_seconds\": $wall,"
    echo "  \"measures\": {"
    for i in "${!keys[@]}"; do
      printf '    "%s": %s%s\n' "${keys[$i]}" "${val[${keys[$i]}]}" "$( ((i + 1 < ${#keys[@]})) && echo ,)"
    done
    echo "  }"
    echo "}"
  } >"$json"
  echo "cachegrind.sh: wrote $json" >&2
fi
