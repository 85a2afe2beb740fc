#!/usr/bin/env bash
# The long fuzzing run: every fuzzer for SECONDS (default 600, i.e. about 70 minutes for all seven)
# through scripts/run-fuzzer.sh, on the corpora kept in build-fuzz/corpus/<fuzzer>/ (they grow from
# run to run), then each corpus is minimised with libFuzzer's -merge=1 (same coverage, fewer files).
# Exits non-zero on any crash, naming the fuzzer and the artifact (build-fuzz/artifacts/<fuzzer>/).
#   usage: scripts/fuzz-nightly.sh [SECONDS] [FUZZER...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-fuzz
seconds=${1:-600}
if [[ $# -gt 0 ]]; then shift; fi

status=0
"$root/scripts/run-fuzzer.sh" "$seconds" "$@" || status=$?

for corpus in "$build"/corpus/*/; do
  name=$(basename "$corpus")
  [[ $# -eq 0 || " $* " == *" $name "* ]] || continue
  fuzzer=$build/tests/fuzz/$name
  [[ -x $fuzzer ]] || continue
  merged=$build/corpus/.$name.merged
  rm -rf "$merged"
  mkdir -p "$merged"
  if "$fuzzer" -merge=1 -rss_limit_mb=2048 -timeout=20 "$merged" "$corpus" >"$build/logs/$name.merge.log" 2>&1; then
    rm -rf "$corpus"
    mv "$merged" "$corpus"
    echo "corpus $name: $(find "$corpus" -type f | wc -l) files after merge"
  else
    rm -rf "$merged"
    echo "corpus $name: merge failed (see $build/logs/$name.merge.log); corpus left as it was" >&2
  fi
done
exit $status
