#!/usr/bin/env bash
# README's first command: installs what is missing, builds, then runs the main
# job on the built-in synthetic e-commerce data:
#   mtan-data synth -> mtan-train (float32) -> mtan-convert (int8)
#   -> mtan-eval (both models, test split) -> mtan-inspect
#   -> mtan-bench (int8 vs float32, reference kernels and libtorch, in one process).
# Everything lands in $MTAN_DEMO_DIR (default out/demo).
#
# Smaller runs (the ctest `demo.first_command` uses them):
#   MTAN_DEMO_ROWS     rows of synthetic data (default 500000)
#   MTAN_DEMO_EPOCHS   training epochs (default 10)
#   MTAN_DEMO_BENCH_SECONDS  minimum seconds per benchmark configuration (default 0.5)
#   MTAN_BUILD_DIR     build directory (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${MTAN_DEMO_DIR:-out/demo}
rows=${MTAN_DEMO_ROWS:-500000}
epochs=${MTAN_DEMO_EPOCHS:-10}
bench_seconds=${MTAN_DEMO_BENCH_SECONDS:-0.5}
build=${MTAN_BUILD_DIR:-build}
jobs=$(nproc 2>/dev/null || echo 2)
# New build directories use Ninja (setup installs it): it compiles a target's
# sources while the libraries it links are still building, which Makefiles
# do not (the demo's build: 119 s instead of 148 s). An existing build
# directory keeps its generator.
export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}
# Training threads: libtorch's own ops on this many threads, BLAS on one.
# On the 2-core machine 2 threads gained ~5% (trainer/RESULTS.md).
threads=$(( jobs < 2 ? jobs : 2 ))
bin=$build/bin

bash tools/setup.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$jobs" --target mtan-data mtan-train mtan-convert mtan-eval mtan-bench mtan-inspect

mkdir -p "$out"
step() { printf '\n== %s\n' "$*" >&2; }
step "synthetic data ($rows rows, Bayes ceilings in ceiling.json)"
# Kept between runs, unless it was made with another row count.
if ! grep -qs "^  \"rows\": $rows,$" "$out/data/ceiling.json"; then
  "$bin/mtan-data" synth --out "$out/data" --rows "$rows"
fi
step "train the float32 MTAN ($epochs epochs, $threads threads)"
"$bin/mtan-train" --train "$out/data/train.csv" --val "$out/data/val.csv" \
  --test "$out/data/test.csv" --spec "$out/data/tasks.json" --out "$out/model.f32.mtan" \
  --epochs "$epochs" --threads "$threads"
step "calibrate and convert to int8"
# The converter writes a model only when its held-out check rows vouch for
# every goal (GoalPolicy in tools/convert/convert.h). A smaller run's few check
# rows (20 000 rows: 400, a dozen with a spend label) cannot: it writes the
# model anyway, and mtan-convert warns.
over_goal=()
[ "$rows" -ge 500000 ] || over_goal=(--allow-over-goal)
"$bin/mtan-convert" --model "$out/model.f32.mtan" --calib "$out/data/val.csv" \
  --spec "$out/data/tasks.json" --out "$out/model.mtan" --report "$out/convert.json" "${over_goal[@]}"
step "evaluate both on the test split, through the runtime"
"$bin/mtan-eval" --model "$out/model.f32.mtan" --data "$out/data/test.csv" \
  --spec "$out/data/tasks.json" --json "$out/eval.f32.json"
"$bin/mtan-eval" --model "$out/model.mtan" --data "$out/data/test.csv" \
  --spec "$out/data/tasks.json" --json "$out/eval.int8.json"
step "what is inside the int8 model (mtan-inspect without --summary lists every operator)"
"$bin/mtan-inspect" --summary "$out/model.mtan"
step "benchmark (1 thread): int8 vs float32, reference kernels and libtorch"
"$bin/mtan-bench" --model "$out/model.mtan" --float-model "$out/model.f32.mtan" \
  --task click,all --batch 1,256 --threads 1 --min-seconds "$bench_seconds" --output md \
  > "$out/bench.md"
cat "$out/bench.md"
printf '\nDone: models, reports and plots are in %s\n' "$out" >&2
