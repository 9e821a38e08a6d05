#!/usr/bin/env bash
# Hostile and awkward inputs for one command-line tool (issue 7): a random
# file, an empty file, a directory, a missing path, a truncated or corrupted
# model, a 10 MB CSV line, a NaN feature, a CSV with a UTF-8 byte order mark
# and CRLF line ends. Each case must exit 0 (handled), or exit 1..127 with a
# message on stderr; a signal (exit >= 128), a sanitizer report or a time-out
# fails. BOM and CRLF CSVs must be handled like the plain one (dataset.h
# accepts them): same metrics from mtan-eval, success elsewhere.
#
#   tool_inputs.sh TOOL TOOL_BINARY FIXTURES_BINARY
#   TOOL: inspect | eval | convert | bench | train | data
set -uo pipefail

tool=$1
bin=$2
fixtures=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/mtan-hardening-$tool.XXXXXX")
trap 'rm -rf "$work"' EXIT
f=$work/in
mkdir -p "$f" "$work/a-directory" "$work/out"
"$fixtures" "$f" || { echo "FAIL: fixtures"; exit 1; }

limit=${MTAN_HARDENING_TIMEOUT:-300}
passed=0
failed=0

# run NAME EXPECT COMMAND...   EXPECT: ok | fail | any | fail-dir (fails
# with a message saying the path is a directory) | fail:TEXT (fails with TEXT
# in the message)
run() {
  local name=$1 expect=$2
  shift 2
  timeout "$limit" "$@" >"$work/stdout" 2>"$work/stderr"
  local rc=$?
  local verdict=""
  if [ $rc -eq 124 ]; then
    verdict="timed out after ${limit}s"
  elif [ $rc -ge 128 ]; then
    verdict="killed by signal $((rc - 128))"
  elif grep -q "Sanitizer\|runtime error:" "$work/stderr"; then
    verdict="sanitizer report"
  elif [ $rc -ne 0 ] && [ ! -s "$work/stderr" ]; then
    verdict="exit $rc without a message on stderr"
  elif [ "$expect" = ok ] && [ $rc -ne 0 ]; then
    verdict="exit $rc, expected success"
  elif [ "$expect" != ok ] && [ "$expect" != any ] && [ $rc -eq 0 ]; then
    verdict="exit 0, expected an error"
  elif [ "$expect" = fail-dir ] && ! grep -qi "directory" "$work/stderr"; then
    verdict="the message does not say the path is a directory"
  elif [[ "$expect" == fail:* ]] && ! grep -qF -- "${expect#fail:}" "$work/stderr"; then
    verdict="the message does not say '${expect#fail:}'"
  fi
  if [ -n "$verdict" ]; then
    failed=$((failed + 1))
    echo "FAIL $tool/$name: $verdict"
    echo "  command: $*"
    head -c 2000 "$work/stderr" | sed 's/^/  stderr: /'
  else
    passed=$((passed + 1))
    echo "ok   $tool/$name (exit $rc) $(head -c 160 "$work/stderr" | tr '\n' ' ')"
  fi
  return 0
}

# The same command's stdout must not depend on BOM / CRLF (first line names
# the data file, so it is left out).
# check NAME CONDITION...: a named shell test (e.g. a file is still a device).
check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $tool/$name"
  else
    failed=$((failed + 1))
    echo "FAIL $tool/$name: '$*' is false"
  fi
}

# Issue 12: a FIFO nobody writes (reads must not block forever), one nobody
# reads (writes must not either), and a copy of /dev/null (only root can make
# one; atomic writes used to replace it with a regular file).
mkfifo "$work/fifo"
have_null=0
mknod "$work/null" c 1 3 2>/dev/null && have_null=1
is_char_device() { [ "$have_null" -eq 0 ] || [ -c "$work/null" ]; }
not_trained() { ! grep -q "^epoch" "$work/stdout"; }

same_output() {
  local name=$1 a=$2 b=$3
  if diff <(tail -n +2 "$a") <(tail -n +2 "$b") >/dev/null; then
    passed=$((passed + 1))
    echo "ok   $tool/$name"
  else
    failed=$((failed + 1))
    echo "FAIL $tool/$name: output differs from the plain CSV's"
    diff <(tail -n +2 "$a") <(tail -n +2 "$b") | head -20 | sed 's/^/  /'
  fi
}

bad_models=(random.bin empty truncated.mtan corrupt.mtan random-header.mtan)
bad_csvs=(random.bin empty data-huge-line.csv data-nan.csv)
awkward_csvs=(data-bom.csv data-crlf.csv data-bom-crlf.csv)

case "$tool" in
  inspect)
    run valid-model ok "$bin" "$f/model.mtan"
    run valid-model-json ok "$bin" --json "$f/model.mtan"
    for m in "${bad_models[@]}"; do
      run "model=$m" fail "$bin" "$f/$m"
      run "model=$m-json" fail "$bin" --json "$f/$m"
    done
    run model=directory fail-dir "$bin" "$work/a-directory"
    run model=missing fail "$bin" "$work/no-such-file"
    run model=fifo "fail:no process writes" "$bin" "$work/fifo"
    ;;
  eval)
    ev() { run "$1" "$2" "$bin" --model "$3" --data "$4" --spec "$5" --backend "${6:-xnnpack}"; }
    ev valid ok "$f/model.mtan" "$f/data.csv" "$f/spec.json"
    cp "$work/stdout" "$work/plain.out"
    for m in "${bad_models[@]}"; do ev "model=$m" fail "$f/$m" "$f/data.csv" "$f/spec.json"; done
    ev model=directory fail-dir "$work/a-directory" "$f/data.csv" "$f/spec.json"
    ev model=missing fail "$work/no-such-file" "$f/data.csv" "$f/spec.json"
    for c in "${bad_csvs[@]}"; do ev "data=$c" fail "$f/model.mtan" "$f/$c" "$f/spec.json"; done
    ev data=directory fail-dir "$f/model.mtan" "$work/a-directory" "$f/spec.json"
    for s in random.bin empty data.csv; do ev "spec=$s" fail "$f/model.mtan" "$f/data.csv" "$f/$s"; done
    ev spec=directory fail-dir "$f/model.mtan" "$f/data.csv" "$work/a-directory"
    for c in "${awkward_csvs[@]}"; do
      ev "data=$c" ok "$f/model.mtan" "$f/$c" "$f/spec.json"
      cp "$work/stdout" "$work/$c.out"
      same_output "data=$c-same-metrics" "$work/plain.out" "$work/$c.out"
    done
    ev reference-backend ok "$f/model.mtan" "$f/data-bom-crlf.csv" "$f/spec.json" reference
    ev data=dev-zero "fail:NUL byte at offset 0" "$f/model.mtan" /dev/zero "$f/spec.json"
    ev data=fifo "fail:no process writes" "$f/model.mtan" "$work/fifo" "$f/spec.json"
    ev model=fifo "fail:no process writes" "$work/fifo" "$f/data.csv" "$f/spec.json"
    ev spec=nul-in-task-name "fail:NUL or control character" "$f/model.mtan" "$f/data.csv" "$f/spec-nul.json"
    ev model=huge-arena "fail:MTAN_MAX_ARENA_BYTES" "$f/huge-arena.mtan" "$f/data.csv" "$f/spec.json"
    run json=char-device ok "$bin" --model "$f/model.mtan" --data "$f/data.csv" --spec "$f/spec.json" \
      --json "$work/null"
    check json=char-device-kept is_char_device
    run json=fifo-unread "fail:no process reads" "$bin" --model "$f/model.mtan" --data "$f/data.csv" \
      --spec "$f/spec.json" --json "$work/fifo"
    ;;
  convert)
    cv() {
      run "$1" "$2" "$bin" --model "$3" --calib "$4" --spec "$5" --out "${6:-$work/out/int8.mtan}" \
        --calibration minmax --quiet
    }
    cv valid ok "$f/model.mtan" "$f/data.csv" "$f/spec.json"
    for m in "${bad_models[@]}"; do cv "model=$m" fail "$f/$m" "$f/data.csv" "$f/spec.json"; done
    cv model=directory fail-dir "$work/a-directory" "$f/data.csv" "$f/spec.json"
    for c in "${bad_csvs[@]}"; do cv "calib=$c" fail "$f/model.mtan" "$f/$c" "$f/spec.json"; done
    cv calib=directory fail-dir "$f/model.mtan" "$work/a-directory" "$f/spec.json"
    for s in random.bin empty; do cv "spec=$s" fail "$f/model.mtan" "$f/data.csv" "$f/$s"; done
    cv out=directory fail-dir "$f/model.mtan" "$f/data.csv" "$f/spec.json" "$work/a-directory"
    cv out=unwritable fail "$f/model.mtan" "$f/data.csv" "$f/spec.json" "$f/empty/x.mtan"
    cv calib=one-row "fail:too few" "$f/model.mtan" "$f/data-1row.csv" "$f/spec.json" "$work/out/1row.mtan"
    check calib=one-row-writes-nothing test ! -e "$work/out/1row.mtan"
    run calib=one-row-with-check "fail:cannot measure" "$bin" --model "$f/model.mtan" --calib "$f/data-1row.csv" \
      --check "$f/data.csv" --spec "$f/spec.json" --out "$work/out/1row.mtan" --calibration minmax --quiet
    check calib=one-row-with-check-writes-nothing test ! -e "$work/out/1row.mtan"
    cv out=char-device ok "$f/model.mtan" "$f/data.csv" "$f/spec.json" "$work/null"
    check out=char-device-kept is_char_device
    for c in "${awkward_csvs[@]}"; do
      cv "calib=$c" ok "$f/model.mtan" "$f/$c" "$f/spec.json" "$work/out/$c.mtan"
      if cmp -s "$work/out/int8.mtan" "$work/out/$c.mtan"; then
        passed=$((passed + 1))
        echo "ok   $tool/calib=$c-same-model"
      else
        failed=$((failed + 1))
        echo "FAIL $tool/calib=$c-same-model: the int8 model differs from the plain CSV's"
      fi
    done
    ;;
  bench)
    b() { run "$1" "$2" "$bin" -m "$3" -b 1,2 --warmup 0 -r 1 --min-seconds 0 --load-runs 1 -q; }
    b valid ok "$f/model.mtan"
    for m in "${bad_models[@]}"; do b "model=$m" fail "$f/$m"; done
    b model=directory fail-dir "$work/a-directory"
    b model=missing fail "$work/no-such-file"
    ;;
  train)
    trn() {
      local name=$1 expect=$2 train=$3 val=$4 spec=$5 a
      shift 5
      # Defaults the extra arguments may override.
      local out=(--out "$work/out/model.mtan") epochs=(--epochs 1)
      for a in "$@"; do
        [ "$a" = --out ] && out=()
        [ "$a" = --epochs ] && epochs=()
      done
      run "$name" "$expect" "$bin" --train "$train" --val "$val" --spec "$spec" \
        "${out[@]}" "${epochs[@]}" --threads 1 --no-plots "$@"
    }
    for c in "${bad_csvs[@]}"; do trn "train=$c" fail "$f/$c" "$f/data.csv" "$f/spec.json"; done
    trn train=directory fail-dir "$work/a-directory" "$f/data.csv" "$f/spec.json"
    trn val=random fail "$f/data.csv" "$f/random.bin" "$f/spec.json"
    for s in random.bin empty; do trn "spec=$s" fail "$f/data.csv" "$f/data.csv" "$f/$s"; done
    for c in "${awkward_csvs[@]}"; do trn "train=$c" ok "$f/$c" "$f/$c" "$f/spec.json"; done
    # Refused before training, not after (issue 12).
    for b in 0 65537 -1; do
      trn "max-batch=$b" "fail:--max-batch" "$f/data.csv" "$f/data.csv" "$f/spec.json" --max-batch "$b"
      check "max-batch=$b-not-trained" not_trained
    done
    trn tasks=36 "fail:checked before training" "$f/data-36-tasks.csv" "$f/data-36-tasks.csv" \
      "$f/spec-36-tasks.json"
    check tasks=36-not-trained not_trained
    trn features=5000 "fail:MTAN_MAX_INPUTS" "$f/data-wide.csv" "$f/data-wide.csv" "$f/spec-wide.json"
    check features=5000-not-trained not_trained
    trn label=1e39 "fail:not a finite float32" "$f/data-label-1e39.csv" "$f/data.csv" "$f/spec.json"
    trn lr=1e30 "fail:training diverged" "$f/data.csv" "$f/data.csv" "$f/spec.json" --lr 1e30 \
      --epochs 4 --batch 16 --patience 4
    trn train=fifo "fail:no process writes" "$work/fifo" "$f/data.csv" "$f/spec.json"
    trn out=char-device ok "$f/data.csv" "$f/data.csv" "$f/spec.json" --out "$work/null"
    check out=char-device-kept is_char_device
    ;;
  data)
    run out=a-file fail "$bin" synth --out "$f/empty" --rows 300
    run rows=0 fail "$bin" synth --out "$work/out/d0" --rows 0
    run rows=negative fail "$bin" synth --out "$work/out/d1" --rows -5
    run rows=text fail "$bin" synth --out "$work/out/d2" --rows many
    run no-command fail "$bin"
    ;;
  *)
    echo "unknown tool $tool"
    exit 2
    ;;
esac

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
