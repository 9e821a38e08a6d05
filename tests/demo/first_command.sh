#!/usr/bin/env bash
# Runs tools/demo.sh (README's first command) on 20k rows and 2 epochs, then
# checks what a user reads from it: every step's output file, the metrics of
# both models, the inspect summary and the benchmark table.
#   first_command.sh PATH/TO/tools/demo.sh BUILD_DIR
set -euo pipefail
demo=$1 build=$2
out=$(mktemp -d "${TMPDIR:-/tmp}/mtan-demo-test-XXXXXX")
trap 'rm -rf "$out"' EXIT
log=$out/demo.log

fail() { echo "demo.first_command: FAIL: $*" >&2; tail -40 "$log" >&2; exit 1; }

MTAN_DEMO_DIR=$out/demo MTAN_DEMO_ROWS=20000 MTAN_DEMO_EPOCHS=2 MTAN_DEMO_BENCH_SECONDS=0.05 \
  MTAN_BUILD_DIR=$build bash "$demo" >"$log" 2>&1 || fail "tools/demo.sh exited with $?"

d=$out/demo
for f in data/ceiling.json model.f32.mtan model.mtan convert.json eval.f32.json eval.int8.json \
         metrics.json bench.md; do
  [ -s "$d/$f" ] || fail "$f is missing or empty"
done
grep -q '"rows": 20000,' "$d/data/ceiling.json" || fail "the data does not have 20000 rows"
python3 - "$d" <<'PY' || fail "bad metrics"
import json, sys
d = sys.argv[1]
m = json.load(open(f"{d}/metrics.json"))
assert m["epochs_run"] == 2, m["epochs_run"]
for name in ("eval.f32.json", "eval.int8.json"):
    e = json.load(open(f"{d}/{name}"))
    text = json.dumps(e)
    assert "click" in text and "auc" in text, name
PY
for want in "== synthetic data (20000 rows" "== train the float32 MTAN (2 epochs" \
            "epoch  2/2" "== calibrate and convert to int8" "tasks (4):" "arena bytes" \
            "Done: models, reports and plots are in"; do
  grep -qF "$want" "$log" || fail "the output lacks '$want'"
done
# The benchmark table: int8 and float32 rows for both tasks and batches.
for want in "| click" "| all" "int8" "float32"; do
  grep -qF -- "$want" "$d/bench.md" || fail "bench.md lacks '$want'"
done
grep -qF "ATTENTION_POOL" "$log" && fail "mtan-inspect --summary printed the operator list"
echo "demo.first_command: ok ($(grep -c '' "$log") lines of output)"
