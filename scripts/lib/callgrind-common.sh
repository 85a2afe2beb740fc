# Sourced by scripts/cachegrind.sh and scripts/pointwise-cachegrind.sh: what the two callgrind
# front ends share (their option loop, the host's cache levels, the totals of a callgrind output).
# The caller sets `repo` (the checkout) before sourcing it.

# shellcheck source=scripts/valgrind-geometry.sh
source "$repo/scripts/valgrind-geometry.sh"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
# the script's header comment (from line 2 to `set -euo`), as its help
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

# parse_options OPTION=VARIABLE:WHAT... -- ARG...: every OPTION takes one value, stored in the
# caller's VARIABLE (appended when VARIABLE is an array); a missing value dies with "OPTION needs
# WHAT". -h/--help calls usage, an unknown option dies, any other argument goes to the caller's
# function `positional`.
parse_options() {
  local -A var=() what=()
  local spec
  while (($#)) && [[ $1 != -- ]]; do
    spec=${1#*=}
    var[${1%%=*}]=${spec%%:*} what[${1%%=*}]=${spec#*:}
    shift
  done
  shift
  while (($#)); do
    case $1 in
      -h|--help) usage ;;
      -*)
        [[ -n ${var[$1]:-} ]] || die "unknown option '$1' (see --help)"
        (($# >= 2)) || die "$1 needs ${what[$1]}"
        if [[ $(declare -p "${var[$1]}") == "declare -a"* ]]; then
          eval "${var[$1]}+=(\"\$2\")"
        else
          printf -v "${var[$1]}" '%s' "$2"
        fi
        shift 2 ;;
      *) positional "$1"; shift ;;
    esac
  done
}

# for_each_host_cache FUNC: calls FUNC once per data or unified cache of CPU 0 (in sysfs order) with
# level, type, hsize (as sysfs writes it), geo ("size assoc line" made acceptable to valgrind by
# fix_geometry), adj (what was changed) and desc (the host's description) set; sets i1_geo to the
# L1 instruction cache's geometry.
sysc=/sys/devices/system/cpu/cpu0/cache
for_each_host_cache() {
  local d size ways line fixed
  for d in "$sysc"/index*; do
    [[ -r $d/level && -r $d/size && -r $d/type ]] || continue
    level=$(cat "$d/level"); type=$(cat "$d/type"); hsize=$(cat "$d/size"); size=$(to_bytes "$hsize")
    ways=$(cat "$d/ways_of_associativity" 2>/dev/null || echo 0)
    line=$(cat "$d/coherency_line_size" 2>/dev/null || echo 64)
    fixed=$(fix_geometry "$size" "$ways" "$line")
    geo=${fixed%%|*} adj=${fixed#*|} desc="L$level $type $hsize ${ways}-way ${line}B"
    if [[ $type == Instruction ]]; then
      ((level != 1)) || i1_geo=$geo
      continue
    fi
    "$1"
  done
}

# read_callgrind_totals FILE: fills the caller's associative array `ev` (event name -> total, e.g.
# ev[Ir], ev[D1mr]) from a callgrind output; returns 1 if it has no events or totals line.
read_callgrind_totals() {
  local events totals i en tv
  events=$(sed -n 's/^events: *//p' "$1" | head -1)
  totals=$(sed -n 's/^totals: *//p' "$1" | head -1)
  [[ -n $totals ]] || totals=$(sed -n 's/^summary: *//p' "$1" | head -1)
  [[ -n $events && -n $totals ]] || return 1
  read -r -a en <<<"$events"
  read -r -a tv <<<"$totals"
  for i in "${!en[@]}"; do ev[${en[$i]}]=${tv[$i]:-0}; done
}
