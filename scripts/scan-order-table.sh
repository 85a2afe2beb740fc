#!/usr/bin/env bash
# The order-comparison tables of docs/scan-order.md (issue 19): for MobileNetV2, ResNet-50 and the
# CP-decomposed ResNet-50 (--decompose ratio=0.25), `locus energy --sweep LO:HI --tiles fixed` (the
# same tiles in row, column and Scan order: os-square, full-k, thesis; and each order's own best
# tiles: free). Prints per network a markdown table of the total Scan saving over the best
# conventional order (traffic and DRAM energy) at every size, and one of the per-layer savings at
# 8K-64K entries; with --svg-dir also one SVG plot per network (total saving against buffer size);
# with --update-docs rewrites the tables in docs/scan-order.md between <!-- scan-order-table:begin -->
# and <!-- scan-order-table:end --> and the plots in docs/.
#
# Usage: scripts/scan-order-table.sh [--sweep LO:HI] [--batch N] [--accel CONFIG] [--svg-dir DIR]
#                                    [--networks LIST] [--update-docs]
#   --sweep LO:HI    buffer sizes of the totals (default 8K:256K; the per-layer table: 8K-64K of them)
#   --batch N        batch (default 1)
#   --accel CONFIG   accelerator preset or JSON file (word size, DRAM part; default: default)
#   --svg-dir DIR    write scan-order-<network>.svg there
#   --networks LIST  comma-separated from mobilenetv2,resnet50,resnet50-cp (default: all three)
#   --update-docs    replace the tables in docs/scan-order.md and write the plots to docs/
# Needs: build/locus (or LOCUS_BIN) and /usr/bin/python3. About a minute per network.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "scan-order-table.sh: $*" >&2; exit 1; }
sweep=8K:256K batch=1 accel=default svg_dir="" update=0 networks=mobilenetv2,resnet50,resnet50-cp
while (($#)); do
  case $1 in
    --sweep) (($# >= 2)) || die "--sweep needs LO:HI"; sweep=$2; shift 2 ;;
    --batch) (($# >= 2)) || die "--batch needs N"; batch=$2; shift 2 ;;
    --accel) (($# >= 2)) || die "--accel needs a CONFIG"; accel=$2; shift 2 ;;
    --svg-dir) (($# >= 2)) || die "--svg-dir needs a DIR"; svg_dir=$2; shift 2 ;;
    --networks) (($# >= 2)) || die "--networks needs a LIST"; networks=$2; shift 2 ;;
    --update-docs) update=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ $batch =~ ^[1-9][0-9]*$ ]] || die "--batch expects a positive integer, got '$batch'"
locus=${LOCUS_BIN:-$repo/build/locus}
[[ -x $locus ]] || die "no locus program at '$locus' (build it, or set LOCUS_BIN)"
((update)) && svg_dir=$repo/docs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
IFS=, read -r -a nets <<<"$networks"
for net in "${nets[@]}"; do
  case $net in
    mobilenetv2) args=(builtin:mobilenetv2) ;;
    resnet50) args=(builtin:resnet50) ;;
    resnet50-cp) args=(builtin:resnet50 --decompose ratio=0.25) ;;
    *) die "--networks: unknown network '$net' (mobilenetv2, resnet50, resnet50-cp)" ;;
  esac
  svg=()
  [[ -n $svg_dir ]] && svg=(--svg "$svg_dir/scan-order-$net.svg")
  echo "locus energy ${args[*]} --sweep $sweep --tiles fixed --batch $batch --accel $accel ..." >&2
  "$locus" energy "${args[@]}" --sweep "$sweep" --tiles fixed --batch "$batch" --accel "$accel" --format csv \
    "${svg[@]}" > "$tmp/$net.csv" 2> "$tmp/$net.log" || { cat "$tmp/$net.log" >&2; die "locus energy failed on $net"; }
done

/usr/bin/python3 - "$tmp" "$batch" "$accel" "$sweep" "${nets[@]}" > "$tmp/tables.md" <<'EOF'
import csv, sys
tmp, batch, accel, sweep, nets = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
titles = {"mobilenetv2": "MobileNetV2", "resnet50": "ResNet-50", "resnet50-cp": "CP-decomposed ResNet-50 (ratio=0.25)"}
choices = ["os-square", "full-k", "thesis", "free"]
def label(e):
    e = int(e)
    return f"{e >> 20}M" if e >= 1 << 20 and e % (1 << 20) == 0 else f"{e >> 10}K" if e % 1024 == 0 else str(e)
def pct(v):
    return "-" if v in ("", None) else f"{100 * float(v):.1f}"
print(f"Batch {batch}, accelerator `{accel}`, sizes {sweep}; savings in % of the best conventional order "
      "(row or column, per layer); cells `-`: the tile choice has no tile for the layer on that buffer.")
for net in nets:
    rows = list(csv.DictReader(open(f"{tmp}/{net}.csv")))
    sizes = sorted({int(r["buffer_entries"]) for r in rows})
    tot = {(int(r["buffer_entries"]), r["tiles"]): r for r in rows if r["layer"] == "total"}
    layers = []
    for r in rows:
        if r["layer"] != "total" and r["layer"] not in [l[0] for l in layers]:
            layers.append((r["layer"], r["count"], r["M"], r["K"], r["N"]))
    per = {(int(r["buffer_entries"]), r["tiles"], r["layer"]): r for r in rows if r["layer"] != "total"}
    print(f"\n#### {titles[net]}: total Scan saving (traffic / DRAM energy)\n")
    print("| buffer | " + " | ".join(choices) + " |")
    print("|---|" + "---|" * len(choices))
    for s in sizes:
        cells = []
        for c in choices:
            t = tot[(s, c)]
            n = int(t["count"])
            all_n = sum(int(l[1]) for l in layers)
            note = "" if n == all_n else f" ({n}/{all_n} layers)"
            cells.append(f"{pct(t['scan_saving'])} / {pct(t['energy_saving'])}{note}")
        print(f"| {label(s)} | " + " | ".join(cells) + " |")
    small = [s for s in sizes if s <= 65536]
    print(f"\n#### {titles[net]}: Scan saving per layer (traffic, %), cells os-square · full-k · thesis \\| free\n")
    print("| layer | x | M | K | N | " + " | ".join(label(s) for s in small) + " |")
    print("|---|---|---|---|---|" + "---|" * len(small))
    for name, cnt, M, K, N in layers:
        cells = []
        for s in small:
            f = [pct(per[(s, c, name)]["scan_saving"]) for c in choices]
            cells.append(" · ".join(f[:3]) + " \\| " + f[3])
        print(f"| {name} | {cnt} | {M} | {K} | {N} | " + " | ".join(cells) + " |")
EOF
cat "$tmp/tables.md"
if ((update)); then
  doc=$repo/docs/scan-order.md
  grep -q '<!-- scan-order-table:begin -->' "$doc" || die "no <!-- scan-order-table:begin --> marker in $doc"
  /usr/bin/python3 - "$doc" "$tmp/tables.md" <<'EOF'
import sys
doc, tables = sys.argv[1], open(sys.argv[2]).read()
s = open(doc).read()
b, e = "<!-- scan-order-table:begin -->", "<!-- scan-order-table:end -->"
i, j = s.index(b) + len(b), s.index(e)
open(doc, "w").write(s[:i] + "\n" + tables + "\n" + s[j:])
EOF
  echo "updated $doc and docs/scan-order-*.svg" >&2
fi
