#!/usr/bin/env bash
# The ablation table of trainer/RESULTS.md: every architecture, 3 model seeds
# on one dataset per task correlation P, then mtan-compare for seed means and
# paired bootstrap SEs against shared-bottom.
#
#   trainer/ablation.sh [BIN_DIR] [OUT_DIR]          (defaults: build/bin, /tmp/mtan-ablation)
#   P="0.5 0.9" SEEDS="1 2 3" ROWS=500000 JOBS=2 TRAIN_ARGS="--epochs 8" trainer/ablation.sh
#
# JOBS trainings run at once, each on --threads 1. Takes about
# archs x seeds x |P| x (one training) / JOBS.
set -euo pipefail
bin=${1:-build/bin}
out=${2:-/tmp/mtan-ablation}
P=${P:-"0.5 0.9"}
SEEDS=${SEEDS:-"1 2 3"}
JOBS=${JOBS:-2}
ROWS=${ROWS:-500000}
TRAIN_ARGS=${TRAIN_ARGS:-}
ARCHS="single shared-bottom shared-bottom-wide mtan-mask mtan-cross mtan"

for p in $P; do
  dir="$out/p$p"
  mkdir -p "$dir"
  [ -f "$dir/data/ceiling.json" ] || "$bin/mtan-data" synth --out "$dir/data" --correlation "$p" --seed 1 --rows "$ROWS"
  jobs_file="$dir/jobs.txt"
  : > "$jobs_file"
  for arch in $ARCHS; do
    for seed in $SEEDS; do
      run="$dir/$arch-s$seed"
      [ -f "$run/pred.csv" ] && continue
      extra=""
      real_arch=$arch
      if [ "$arch" = shared-bottom-wide ]; then real_arch=shared-bottom; extra="--match-params"; fi
      echo "$bin/mtan-train --train $dir/data/train.csv --val $dir/data/val.csv --spec $dir/data/tasks.json --test $dir/data/test.csv --out $run/model.f32.mtan --predictions $run/pred.csv --arch $real_arch $extra --seed $seed --quiet --no-plots $TRAIN_ARGS > $run.log 2>&1 || echo FAILED $run" >> "$jobs_file"
      mkdir -p "$run"
    done
  done
  xargs -P "$JOBS" -I{} sh -c "{}" < "$jobs_file"
  groups=()
  for arch in $ARCHS; do
    files=""
    for seed in $SEEDS; do files="$files${files:+,}$dir/$arch-s$seed/pred.csv"; done
    groups+=(--group "$arch=$files")
  done
  "$bin/mtan-compare" --test "$dir/data/test.csv" --spec "$dir/data/tasks.json" \
    --baseline shared-bottom "${groups[@]}" --json-out "$dir/table.json" | tee "$dir/table.md"
done
