#!/usr/bin/env bash
# README's first command: installs what is missing, builds, then runs the main
# job on the built-in synthetic e-commerce data:
#   mtan-data synth -> mtan-train (float32) -> mtan-convert (int8)
#   -> mtan-eval (both models, test split) -> mtan-bench (int8 vs float32,
#   reference kernels and libtorch, in one process).
# Everything lands in $MTAN_DEMO_DIR (default out/demo).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${MTAN_DEMO_DIR:-out/demo}
jobs=$(nproc 2>/dev/null || echo 2)
bin=build/bin

bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs" --target mtan-data mtan-train mtan-convert mtan-eval mtan-bench mtan-inspect

mkdir -p "$out"
step() { printf '\n== %s\n' "$*" >&2; }
step "synthetic data (500k rows, Bayes ceilings in ceiling.json)"
[ -f "$out/data/ceiling.json" ] || "$bin/mtan-data" synth --out "$out/data"
step "train the float32 MTAN"
"$bin/mtan-train" --train "$out/data/train.csv" --val "$out/data/val.csv" \
  --test "$out/data/test.csv" --spec "$out/data/tasks.json" --out "$out/model.f32.mtan" \
  --threads "$jobs"
step "calibrate and convert to int8"
"$bin/mtan-convert" --model "$out/model.f32.mtan" --calib "$out/data/val.csv" \
  --spec "$out/data/tasks.json" --out "$out/model.mtan" --report "$out/convert.json"
step "evaluate both on the test split, through the runtime"
"$bin/mtan-eval" --model "$out/model.f32.mtan" --data "$out/data/test.csv" \
  --spec "$out/data/tasks.json" --json "$out/eval.f32.json"
"$bin/mtan-eval" --model "$out/model.mtan" --data "$out/data/test.csv" \
  --spec "$out/data/tasks.json" --json "$out/eval.int8.json"
step "what is inside the int8 model"
"$bin/mtan-inspect" "$out/model.mtan" | head -n 40
step "benchmark (1 thread): int8 vs float32, reference kernels and libtorch"
"$bin/mtan-bench" --model "$out/model.mtan" --float-model "$out/model.f32.mtan" \
  --task click,all --batch 1,256 --threads 1 --output md | tee "$out/bench.md"
printf '\nDone: models, reports and plots are in %s\n' "$out" >&2
