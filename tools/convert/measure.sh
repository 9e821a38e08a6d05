#!/usr/bin/env bash
# Measures the issue-4 goals for one float model: converts it with each
# calibration method (and the two comparison switches), evaluates float and
# int8 on the test CSV with mtan-eval, prints a markdown table.
#   tools/convert/measure.sh BIN_DIR DATA_DIR MODEL.f32.mtan OUT_DIR
# BIN_DIR holds mtan-convert and mtan-eval; DATA_DIR holds val.csv (the
# calibration rows), test.csv and tasks.json, as `mtan-data synth` writes them.
set -euo pipefail
bin=$1 data=$2 model=$3 out=$4
mkdir -p "$out"

# "task metric value" lines of mtan-eval's table.
metrics() { "$bin/mtan-eval" --model "$1" --data "$data/test.csv" --spec "$data/tasks.json" |
            awk 'NR > 2 { print $1, $3, $5 }'; }
value() { awk -v t="$2" -v m="$3" '$1 == t && $2 == m { print $3 }' "$1"; }

metrics "$model" > "$out/float.txt"
float_bytes=$(stat -c %s "$model")
echo "| variant | chosen | click AUC Δ | purchase AUC Δ | category acc Δ (points) | spend NMSE int8/float | int8/float size |"
echo "|---|---|---|---|---|---|---|"
run() {
  local name=$1; shift
  "$bin/mtan-convert" --model "$model" --calib "$data/val.csv" --spec "$data/tasks.json" \
    --out "$out/$name.mtan" --report "$out/$name.json" --quiet "$@" > "$out/$name.convert.txt"
  metrics "$out/$name.mtan" > "$out/$name.txt"
  local chosen
  chosen=$(awk '/^calibration:/ { print $2 }' "$out/$name.convert.txt")
  awk -v name="$name" -v chosen="$chosen" -v fb="$float_bytes" -v qb="$(stat -c %s "$out/$name.mtan")" '
    FNR == NR { f[$1 "/" $2] = $3; next }
    { q[$1 "/" $2] = $3 }
    END {
      printf "| %s | %s | %+.5f | %+.5f | %+.3f | %.4f | %.3f |\n", name, chosen,
        q["click/auc"] - f["click/auc"], q["purchase/auc"] - f["purchase/auc"],
        100 * (q["category/accuracy"] - f["category/accuracy"]),
        q["spend/nmse"] / f["spend/nmse"], qb / fb
    }' "$out/float.txt" "$out/$name.txt"
}
run default
for m in minmax percentile mse; do run "$m" --calibration "$m"; done
run auto-no-equalization --no-input-equalization
run auto-int8-heads --int8-heads
run auto-neither --no-input-equalization --int8-heads
echo
echo "float (test): $(tr '\n' ' ' < "$out/float.txt")"
