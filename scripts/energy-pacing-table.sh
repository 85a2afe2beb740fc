#!/usr/bin/env bash
# The accelerator model's pacing tables of docs/accelerator-model.md (issue 15): `locus energy` on
# MobileNetV2 at 64K entries, baseline and fused-scan x compute-paced and DRAM-paced x the three
# DRAM presets (accelerator presets default, default-ddr4, default-lpddr4), and the MAC-array sweep
# (--sweep-macs) on DDR3; and the CP-decomposed ResNet-50 (builtin:resnet50 --decompose ratio=R,
# shapes only, R = 1, 0.5, 0.25; whole bottlenecks fused by fuse-chain) under the same presets and
# pacings. Prints the three markdown tables; with --update-docs also rewrites them in
# docs/accelerator-model.md between the markers <!-- pacing-table:begin/end -->,
# <!-- mac-sweep-table:begin/end --> and <!-- resnet50-table:begin/end -->.
#
# Usage: scripts/energy-pacing-table.sh [--model MODEL] [--update-docs]
#   --model MODEL   what `locus energy` reads (default: the real MobileNetV2,
#                   $LOCUS_MODEL_DIR/mobilenetv2-12-fp32-from-int8, else builtin:mobilenetv2)
#   --update-docs   replace the tables in docs/accelerator-model.md
# Needs: build/locus (or LOCUS_BIN) and /usr/bin/python3.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "energy-pacing-table.sh: $*" >&2; exit 1; }
model="" update=0
while (($#)); do
  case $1 in
    --model) (($# >= 2)) || die "--model needs a MODEL"; model=$2; shift 2 ;;
    --update-docs) update=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
locus=${LOCUS_BIN:-$repo/build/locus}
[[ -x $locus ]] || die "no locus program at '$locus' (build it, or set LOCUS_BIN)"
if [[ -z $model ]]; then
  real=${LOCUS_MODEL_DIR:-$repo/../shared/models}/mobilenetv2-12-fp32-from-int8
  if [[ -d $real ]]; then model=$real; else model=builtin:mobilenetv2; fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for accel in default default-ddr4 default-lpddr4; do
  echo "locus energy $model --accel $accel ..." >&2
  "$locus" energy "$model" --accel "$accel" --buffer 64K --schedule baseline,fused-scan --pacing both \
    --format json > "$tmp/$accel.json"
done
for ratio in 1 0.5 0.25; do
  for accel in default default-ddr4 default-lpddr4; do
    echo "locus energy builtin:resnet50 --decompose ratio=$ratio --accel $accel ..." >&2
    "$locus" energy builtin:resnet50 --decompose "ratio=$ratio" --accel "$accel" --buffer 64K \
      --schedule baseline,fused-scan --pacing both --format json > "$tmp/r50-$ratio-$accel.json" 2>/dev/null
  done
done
echo "locus energy $model --sweep-macs 64:8192 ..." >&2
"$locus" energy "$model" --buffer 64K --schedule baseline,fused-scan --sweep-macs 64:8192 --format json \
  > "$tmp/macs.json" 2>/dev/null
/usr/bin/python3 - "$tmp" "$model" "$update" "$repo/docs/accelerator-model.md" <<'EOF'
import json, os, re, sys
tmp, model, update, doc = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
name = "builtin:mobilenetv2" if model.startswith("builtin:") else os.path.basename(model.rstrip("/"))

def pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"

rows = ["| DRAM | pacing | baseline uJ (duration us) | fused-scan uJ (duration us) | DRAM energy saved | access energy saved | background + refresh saved | bytes saved |",
        "|---|---|---|---|---|---|---|---|"]
for accel in ["default", "default-ddr4", "default-lpddr4"]:
    d = json.load(open(f"{tmp}/{accel}.json"))
    for key in ["schedules", "schedules_dram_paced"]:
        s = {e["name"]: e for e in d[key]}
        b, f = s["baseline"], s["fused-scan"]
        def e(x, k): return x["total"]["energy_uj"][k]
        def time_uj(x): return e(x, "dram_background") + e(x, "dram_refresh")
        tb, tf = time_uj(b), time_uj(f)
        rows.append(f"| {d['config']['dram']} | {f['pacing']} | {e(b, 'dram'):.0f} ({b['duration_us']:.0f}) | "
                    f"{e(f, 'dram'):.0f} ({f['duration_us']:.0f}) | **{pct(f['dram_energy_saving'])}** | "
                    f"{pct(f['dram_access_energy_saving'])} | {pct(1 - tf / tb)} | {pct(f['dram_bytes_saving'])} |")
pacing = "\n".join(rows)

m = json.load(open(f"{tmp}/macs.json"))
dp = m["dram_paced"]
mrows = ["| MACs | baseline uJ (us, bound) | fused-scan uJ (us, bound) | fused-scan saving |", "|---|---|---|---|"]
for r in m["sweep"]:
    b, f = r["schedules"]["baseline"], r["schedules"]["fused-scan"]
    mrows.append(f"| {r['mac_array']} | {b['dram_energy_uj']:.0f} ({b['duration_us']:.0f}, {b['bound']}) | "
                 f"{f['dram_energy_uj']:.0f} ({f['duration_us']:.0f}, {f['bound']}) | {pct(f['dram_energy_saving'])} |")
mrows.append(f"| DRAM-paced | {dp['baseline']['dram_energy_uj']:.0f} ({dp['baseline']['duration_us']:.0f}) | "
             f"{dp['fused-scan']['dram_energy_uj']:.0f} ({dp['fused-scan']['duration_us']:.0f}) | "
             f"{pct(dp['fused-scan']['dram_energy_saving'])} |")
macs = "\n".join(mrows)

rrows = ["| rank policy | DRAM | pacing | baseline uJ (MiB) | fused-scan uJ (MiB) | DRAM energy saved | access energy saved | bytes saved | bottlenecks fused |",
         "|---|---|---|---|---|---|---|---|---|"]
for ratio in ["1", "0.5", "0.25"]:
    for accel in ["default", "default-ddr4", "default-lpddr4"]:
        d = json.load(open(f"{tmp}/r50-{ratio}-{accel}.json"))
        for key in ["schedules", "schedules_dram_paced"]:
            s = {e["name"]: e for e in d[key]}
            b, f = s["baseline"], s["fused-scan"]
            def mib(x): return (x["total"]["dram_read_bytes"] + x["total"]["dram_write_bytes"]) / 2**20
            chains = [l for l in f["layers"] if l["op"] == "FusedChain"]
            fused = sum(1 for l in chains if l["tiling"].startswith("fused chain"))
            rrows.append(f"| `ratio={ratio}` | {d['config']['dram']} | {f['pacing']} | "
                         f"{b['total']['energy_uj']['dram']:.0f} ({mib(b):.1f}) | {f['total']['energy_uj']['dram']:.0f} ({mib(f):.1f}) | "
                         f"**{pct(f['dram_energy_saving'])}** | {pct(f['dram_access_energy_saving'])} | "
                         f"{pct(f['dram_bytes_saving'])} | {fused} of {len(chains)} |")
resnet = "\n".join(rrows)

head = (f"<!-- generated by scripts/energy-pacing-table.sh from `locus energy {name}` at 64K entries; "
        "do not edit by hand -->")
rhead = ("<!-- generated by scripts/energy-pacing-table.sh from `locus energy builtin:resnet50 --decompose ratio=R` "
         "at 64K entries; do not edit by hand -->")
print(pacing)
print()
print(macs)
print()
print(resnet)
if update:
    text = open(doc).read()
    for tag, table, hd in [("pacing-table", pacing, head), ("mac-sweep-table", macs, head), ("resnet50-table", resnet, rhead)]:
        pat = re.compile(rf"<!-- {tag}:begin -->.*?<!-- {tag}:end -->", re.S)
        if not pat.search(text):
            sys.exit(f"energy-pacing-table.sh: no <!-- {tag}:begin --> ... <!-- {tag}:end --> block in {doc}")
        text = pat.sub(lambda _: f"<!-- {tag}:begin -->\n{hd}\n\n{table}\n<!-- {tag}:end -->", text)
    open(doc, "w").write(text)
    print(f"updated {doc}", file=sys.stderr)
EOF
