# Sourced by scripts/lib/callgrind-common.sh (for scripts/cachegrind.sh and
# scripts/pointwise-cachegrind.sh): the host's cache geometry made acceptable to valgrind
# (cli/callgrind_runner.cpp does the same in C++ for `locus bench`).
# valgrind needs: line a power of two >= 16; size a multiple of assoc*line; size/(assoc*line)
# sets a power of two; assoc <= size/line.
is_pow2() { (($1 > 0 && ($1 & ($1 - 1)) == 0)); }
to_bytes() {  # "32K" "512K" "32768K" "1M" "12345" -> bytes
  local s=$1 n=${1%[KMG]}
  case $s in *K) echo $((n << 10)) ;; *M) echo $((n << 20)) ;; *G) echo $((n << 30)) ;; *) echo "$n" ;; esac
}
fix_geometry() {  # size assoc line -> "size assoc line|what was changed"
  local size=$1 assoc=$2 line=$3 notes="" l sets p new_assoc new_size
  if ! is_pow2 "$line" || ((line < 16)); then
    l=16; while ((l * 2 <= line)); do l=$((l * 2)); done
    notes+="line $line -> $l; "; line=$l
  fi
  if ((assoc <= 0)); then notes+="associativity '$assoc' unknown -> 8; "; assoc=8; fi
  if ((size < line * assoc)); then notes+="associativity $assoc > size/line -> $((size / line)); "; assoc=$((size / line)); fi
  # what valgrind 3.19 does to an auto-detected LL (cg_arch.c, maybe_tweak_LLc): sets rounded down to
  # a power of two, associativity raised by the same factor (rounded), size recomputed
  sets=$((size / (line * assoc)))
  if is_pow2 "$sets"; then
    new_assoc=$assoc
  else
    p=1; while ((p * 2 <= sets)); do p=$((p * 2)); done
    new_assoc=$(((2 * sets * assoc + p) / (2 * p)))
    notes+="$sets sets is not a power of two -> $p sets, associativity $assoc -> $new_assoc; "
    sets=$p
  fi
  new_size=$((line * new_assoc * sets))
  ((new_size == size)) || notes+="size $size -> $new_size; "
  echo "$new_size $new_assoc $line|${notes%; }"
}
