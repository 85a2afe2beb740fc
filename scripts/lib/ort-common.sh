# Sourced by scripts/compare-ort.sh and scripts/wait-policy.sh: what the two ONNX Runtime
# comparisons share (errors and help, count checks, the ResNet-50 model, ONNX Runtime's setup, the
# median of a run's figures). The caller sets `repo` (the checkout) before sourcing it.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
# the script's header comment (from line 2 to `set -euo`), as its help
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }
# positive_count OPTION VALUE: dies unless VALUE is a positive integer
positive_count() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 expects a positive integer, got '$2'"; }

# The ResNet-50 ONNX model (scripts/resnet50-onnx.py: the builtin's architecture, random weights),
# written once under ${XDG_CACHE_HOME:-~/.cache}/locus/; prints its path.
resnet50_model() {
  local m=${XDG_CACHE_HOME:-$HOME/.cache}/locus/resnet50-random.onnx
  if [[ ! -s $m ]]; then
    mkdir -p "$(dirname "$m")"
    echo "writing $m (scripts/resnet50-onnx.py)..." >&2
    "$repo/scripts/resnet50-onnx.py" "$m.tmp" && mv "$m.tmp" "$m" || die "scripts/resnet50-onnx.py failed"
  fi
  echo "$m"
}

# ONNX Runtime's folder (../shared/tools/ort/setup.sh installs it on first use); dies without node.
ort_dir() {
  command -v node >/dev/null || die "needs node (ONNX Runtime runs from npm)"
  local d
  d=$("$repo/../shared/tools/ort/setup.sh" | tail -1)
  [[ -f $d/bench.js ]] || die "ONNX Runtime setup failed (no $d/bench.js)"
  echo "$d"
}

# median "a;b;c;": the median of the numbers (2 decimals), or the first entry that is not one
median() {
  python3 - "$1" <<'PY'
import sys, statistics
nums = []
for v in [v for v in sys.argv[1].split(';') if v]:
    try: nums.append(float(v))
    except ValueError: print(v); sys.exit()
print(f"{statistics.median(nums):.2f}")
PY
}
