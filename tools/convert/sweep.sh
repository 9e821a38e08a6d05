#!/usr/bin/env bash
# The int8 goals over seeds (issue 13): for each (data seed, model seed)
# pair, makes the default synthetic data and trains the float model once
# (kept in WORK_DIR and reused), converts it with mtan-convert's defaults and
# scores float and int8 on the test split with mtan-eval. Prints the markdown
# table of tools/convert/RESULTS.md.
#   tools/convert/sweep.sh BIN_DIR WORK_DIR [DATA:MODEL ...]
# Default pairs: 1:1 2:2 3:3 4:4 5:5 (model seed = data seed) and 7:7 7:8 7:9
# (three model seeds on data seed 7, the seed of the issue). Training runs
# with --threads 1; run the whole script under `nice -n 19` on a shared box.
# Conversions are written with --allow-over-goal, so that a model that misses
# a goal on the check rows is still scored; the table says which did.
set -euo pipefail
if [ $# -lt 2 ] || [ "$1" = "--help" ] || [ "$1" = "-h" ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  [ $# -ge 2 ] && exit 0 || exit 1
fi
bin=$1 work=$2
shift 2
pairs=("$@")
[ ${#pairs[@]} -gt 0 ] || pairs=(1:1 2:2 3:3 4:4 5:5 7:7 7:8 7:9)
mkdir -p "$work"

for pair in "${pairs[@]}"; do
  d=${pair%%:*} m=${pair##*:}
  data=$work/data-$d model=$work/model-d$d-s$m out=$work/convert-d$d-s$m
  [ -s "$data/test.csv" ] || "$bin/mtan-data" synth --out "$data" --seed "$d" >&2
  if [ ! -s "$model/model.f32.mtan" ]; then
    mkdir -p "$model"
    "$bin/mtan-train" --train "$data/train.csv" --val "$data/val.csv" --test "$data/test.csv" \
      --spec "$data/tasks.json" --out "$model/model.f32.mtan" --seed "$m" --threads 1 --no-plots \
      --quiet >"$model/train.log" 2>&1
  fi
  mkdir -p "$out"
  "$bin/mtan-convert" --model "$model/model.f32.mtan" --calib "$data/val.csv" \
    --spec "$data/tasks.json" --out "$out/model.mtan" --report "$out/report.json" \
    --allow-over-goal >"$out/convert.txt" 2>"$out/convert.log"
  for f in "$model/model.f32.mtan:float" "$out/model.mtan:int8"; do
    "$bin/mtan-eval" --model "${f%%:*}" --data "$data/test.csv" --spec "$data/tasks.json" \
      --json "$out/test.${f##*:}.json" >/dev/null
  done
done

python3 - "$work" "${pairs[@]}" <<'PY'
import json, sys
work, pairs = sys.argv[1], sys.argv[2:]
goal = {"auc": 0.001, "accuracy": 0.002, "nmse": 0.02}
def loss(metric, f, q):
    return q / f - 1 if metric == "nmse" else f - q
print("| data:model seed | click AUC Δ | purchase AUC Δ | category acc Δ (pt) | spend NMSE ×float | worst (goals) "
      "| check rows | float fallback | fallback bytes | int8 / float file | calibration CPU s |")
print("|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
worst_all = (0, None)
for p in pairs:
    d, m = p.split(":")
    out = f"{work}/convert-d{d}-s{m}"
    f = json.load(open(f"{out}/test.float.json"))
    q = json.load(open(f"{out}/test.int8.json"))
    r = json.load(open(f"{out}/report.json"))
    fr = {}
    for task, metric in (("click", "auc"), ("purchase", "auc"), ("category", "accuracy"), ("spend", "nmse")):
        fr[task] = loss(metric, f[task][metric], q[task][metric]) / goal[metric]
    worst = max(fr.values())
    if worst > worst_all[0] or worst_all[1] is None:
        worst_all = (worst, p)
    fb = r["float_fallback"]
    names = ", ".join(l["name"] for l in fb["layers"]) or "none"
    print(f"| {p} | {q['click']['auc'] - f['click']['auc']:+.5f} | {q['purchase']['auc'] - f['purchase']['auc']:+.5f} "
          f"| {100 * (q['category']['accuracy'] - f['category']['accuracy']):+.3f} "
          f"| {q['spend']['nmse'] / f['spend']['nmse']:.4f} | {worst:.2f} "
          f"| {'met' if r['goals']['met'] else 'missed'} | {names} | {fb['bytes']} "
          f"| {r['sizes']['int8_over_float']:.3f} | {r['calibration']['cpu_seconds']:.1f} |")
print(f"\nworst case: {worst_all[1]} at {worst_all[0]:.2f} of its goal (test split; <= 1 meets every goal)")
PY
