#!/usr/bin/env bash
# The sanitizer pass of issue 7, run by tools/test.sh (so by CI):
#   1. builds the whole test suite with ASan + UBSan (-fno-sanitize-recover=all:
#      any report fails), trainer included, in build-asan/, with the
#      project's usual compiler (what compiles in the normal build compiles
#      here); Debian's libtorch itself is not instrumented, our code around
#      it is. Only mtan-bench's libtorch baseline is left out;
#   2. runs ctest there, except zero_heap_test (it interposes malloc, which
#      ASan owns) and demo.first_command (the user's Release build; it would
#      reconfigure this one);
#   3. builds runtime_tests with ThreadSanitizer in build-tsan/ and runs its
#      threading suites, the four-thread stress for TSAN_SECONDS (default 10);
#   4. builds the libFuzzer target with clang 14 in build-fuzz/ (runtime and
#      host library instrumented: address, undefined, fuzzer-no-link) and
#      fuzzes mtan_load / mtan_run / mtan_self_test for FUZZ_SECONDS (default
#      60) from the generated seed corpus; a crash, hang or sanitizer report
#      fails, and the input is left in build-fuzz/fuzz-artifacts/.
#
#   tests/fuzz/run-sanitizers.sh            FUZZ_SECONDS=0 skips the fuzz run
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${MTAN_ASAN_BUILD_DIR:-build-asan}
fuzz_seconds=${FUZZ_SECONDS:-60}
jobs=$(nproc 2>/dev/null || echo 2)
export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}  # as tools/test.sh
[ "$jobs" -gt 2 ] && jobs=2

# clang 14 and its sanitizer / libFuzzer runtimes, libtorch for the trainer:
# installed by the project's setup (only what is missing; nothing when
# tools/test.sh has just run it).
bash tools/setup.sh --sanitizers

start=$SECONDS
san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
cmake -S . -B "$build" \
  -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
  -DCMAKE_C_FLAGS="$san" -DCMAKE_CXX_FLAGS="$san" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DMTAN_BUILD_TRAINER=ON -DMTAN_REQUIRE_TRAINER=ON -DMTAN_BENCH_TORCH=OFF >/dev/null
cmake --build "$build" -j"$jobs"
echo "run-sanitizers: built in $((SECONDS - start)) s"

# Any sanitizer report aborts the process; LeakSanitizer too.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
t=$SECONDS
ctest --test-dir "$build" --output-on-failure -j"$jobs" -E '^(zero_heap_test|demo\..*)$'
echo "run-sanitizers: ctest under ASan + UBSan in $((SECONDS - t)) s"

# ThreadSanitizer (any report fails): four threads on models of their own,
# and the one-model contract (MTAN_ERROR_BUSY, per-thread errors).
t=$SECONDS
tsan_build=${MTAN_TSAN_BUILD_DIR:-build-tsan}
cmake -S . -B "$tsan_build" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
  -DCMAKE_C_FLAGS="-fsanitize=thread" -DCMAKE_CXX_FLAGS="-fsanitize=thread" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
  -DMTAN_BUILD_TRAINER=OFF -DMTAN_BENCH_TORCH=OFF >/dev/null
cmake --build "$tsan_build" -j"$jobs" --target runtime_tests
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
  MTAN_STRESS_SECONDS=${TSAN_SECONDS:-10} \
  "$tsan_build/bin/runtime_tests" -ts=concurrency,threads --min-cases=5
echo "run-sanitizers: ThreadSanitizer suites in $((SECONDS - t)) s"

if [ "$fuzz_seconds" -gt 0 ]; then
  t=$SECONDS
  fuzz_build=${MTAN_FUZZ_BUILD_DIR:-build-fuzz}
  flags="-fsanitize=address,undefined,fuzzer-no-link -fno-sanitize-recover=all -fno-omit-frame-pointer"
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$fuzz_build" \
    -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
    -DMTAN_BUILD_TRAINER=OFF -DMTAN_BENCH_TORCH=OFF -DMTAN_BUILD_FUZZERS=ON >/dev/null
  cmake --build "$fuzz_build" -j"$jobs" --target mtan_fuzz_load
  build=$fuzz_build
  corpus=$build/fuzz-corpus
  artifacts=$build/fuzz-artifacts
  rm -rf "$corpus"
  mkdir -p "$corpus" "$artifacts"
  "$build/bin/mtan_fuzz_load" "$corpus" "$build/tests/fuzz/seeds" \
    -max_total_time="$fuzz_seconds" -max_len=65536 -timeout=30 -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 2>"$build/fuzz.log" || {
    tail -60 "$build/fuzz.log"
    echo "run-sanitizers: FAIL: the fuzzer found a crash, hang or sanitizer report;" \
         "the input is in $artifacts (replay: $build/bin/mtan_fuzz_replay FILE)"
    exit 1
  }
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "$build/fuzz.log" || true
  echo "run-sanitizers: fuzzed $fuzz_seconds s, corpus $(ls "$corpus" | wc -l) new files," \
       "in $((SECONDS - t)) s"
fi
echo "run-sanitizers: done in $((SECONDS - start)) s"
