#!/usr/bin/env bash
# Cross-builds mtan for 64-bit and 32-bit ARM Linux and tests it under qemu:
#   platforms/test-arm.sh [--arch aarch64|armhf]... [--host-build DIR] [--skip-setup]
#
# For each architecture (default: aarch64 and armhf):
#   1. builds the runtime, its tests, platforms_tests and the tools in the tree
#      (mtan-inspect, mtan-eval, mtan-bench) with -DMTAN_BUILD_TRAINER=OFF;
#   2. runs the runtime test suite and tests/platforms (hot swap, the kiosk
#      built from the tree refusing bad updates) under qemu via ctest;
#   3. compares the target with the build host on the demo int8 model that the
#      host wrote (platforms_tests demo): self-test, every output within the
#      golden-case tolerance, identical top-1 classes, decisions and rankings;
#   4. runs mtan-inspect, mtan-eval (metrics compared with the host's) and a
#      short mtan-bench on the demo under qemu;
#   5. installs the runtime and builds platforms/examples/kiosk against the
#      installed package (a copy outside the source tree), and checks its top 5.
# It also builds the kiosk for x86-64 the same way, and once with pkg-config.
#
# --host-build DIR: a native build that has (or can build) platforms_tests
# and mtan-eval; default `build` (tools/test.sh's), else `build-platforms`.
# Prints one line per check and ends with "test-arm: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

archs=()
host_build=""
setup=1
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) archs+=("$2"); shift 2 ;;
    --host-build) host_build=$2; shift 2 ;;
    --skip-setup) setup=0; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "test-arm: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#archs[@]} -eq 0 ] && archs=(aarch64 armhf)
jobs=2
work=$root/build-cross
mkdir -p "$work"
start=$(date +%s)
passed=0
failed=0
failures=()

log() { echo "test-arm: [$(( $(date +%s) - start ))s] $*"; }
ok() { passed=$((passed + 1)); log "PASS $*"; }
bad() { failed=$((failed + 1)); failures+=("$*"); log "FAIL $*"; }
# check NAME LOGFILE COMMAND...: runs the command with its output in LOGFILE,
# shown on failure.
check() {
  local name=$1 logf=$2
  shift 2
  if "$@" > "$logf" 2>&1; then
    ok "$name"
  else
    bad "$name (log: $logf)"
    tail -n 40 "$logf" | sed 's/^/    /'
  fi
}

if [ "$setup" -eq 1 ]; then
  bash platforms/setup-cross.sh "${archs[@]}"
fi

# --- the host side: demo model, host outputs, host metrics -------------------
if [ -z "$host_build" ]; then
  host_build=build
  [ -f build/CMakeCache.txt ] || host_build=build-platforms
fi
if [ ! -f "$host_build/CMakeCache.txt" ]; then
  log "configuring the native build $host_build"
  cmake -S . -B "$host_build" -DMTAN_BUILD_TRAINER=OFF > "$work/host-configure.log"
fi
host_targets=(platforms_tests)
[ -f tools/eval/CMakeLists.txt ] && host_targets+=(mtan-eval)
log "host: building ${host_targets[*]} in $host_build"
cmake --build "$host_build" -j"$jobs" --target "${host_targets[@]}" > "$work/host-build.log" 2>&1 ||
  { tail -n 40 "$work/host-build.log"; echo "test-arm: the host build failed" >&2; exit 1; }
host_bin=$host_build/bin
demo=$work/demo
rm -rf "$demo"
mkdir -p "$demo"
"$host_bin/platforms_tests" demo "$demo"
if [ -x "$host_bin/mtan-eval" ]; then
  "$host_bin/mtan-eval" --model "$demo/demo.mtan" --data "$demo/labelled.csv" \
    --spec "$demo/spec.json" --json "$demo/host_metrics.json" > "$demo/host_metrics.txt"
fi

# Compares two metric JSON files ({task: {metric: value}}) within 1e-4.
compare_metrics() {
  cmake -DA="$1" -DB="$2" -P platforms/cmake/compare_metrics.cmake
}

# --- the kiosk against an installed package ----------------------------------
# kiosk_check NAME PREFIX [cmake args...]
kiosk_check() {
  local name=$1 prefix=$2
  shift 2
  local src=$work/kiosk-src bld=$work/kiosk-$name
  rm -rf "$src" "$bld"
  cp -r platforms/examples/kiosk "$src"  # stands alone: nothing of the tree but the package
  check "$name: kiosk builds against the installed package" "$work/kiosk-$name.log" \
    bash -c "cmake -S '$src' -B '$bld' -DCMAKE_PREFIX_PATH='$prefix' -DKIOSK_TEST_DIR='$demo' $* &&
             cmake --build '$bld' -j$jobs"
  check "$name: kiosk prints the host's top 5" "$work/kiosk-$name-test.log" \
    ctest --test-dir "$bld" --output-on-failure
}

host_prefix=$work/prefix-x86_64
rm -rf "$host_prefix"
cmake --build "$host_build" -j"$jobs" --target mtan_runtime > /dev/null
cmake --install "$host_build" --component runtime --prefix "$host_prefix" > /dev/null
kiosk_check x86_64 "$host_prefix"
check "x86_64: kiosk builds with pkg-config alone" "$work/kiosk-pkgconfig.log" bash -c "
  cc -std=c99 -O2 -Wall -Wextra -pedantic -o '$work/kiosk-pkgconfig' platforms/examples/kiosk/kiosk.c \
     \$(PKG_CONFIG_PATH='$host_prefix/lib/pkgconfig' pkg-config --cflags --libs mtan) &&
  '$work/kiosk-pkgconfig' '$demo/demo.mtan' '$demo/candidates.csv' --update '$demo/corrupted.mtan'"

# --- each ARM target ---------------------------------------------------------
for arch in "${archs[@]}"; do
  case "$arch" in
    aarch64|arm64) arch=aarch64; toolchain=platforms/aarch64-linux-gnu.cmake ;;
    armhf|armv7|arm) arch=armhf; toolchain=platforms/arm-linux-gnueabihf.cmake ;;
    *) echo "test-arm: unknown architecture $arch" >&2; exit 2 ;;
  esac
  b=build-$arch
  log "$arch: configuring $b"
  if ! cmake -S . -B "$b" -G "Unix Makefiles" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
      -DCMAKE_BUILD_TYPE=Release -DMTAN_BUILD_TRAINER=OFF -DMTAN_HOST_DEMO_DIR="$demo" \
      > "$work/$arch-configure.log" 2>&1; then
    bad "$arch: configure"
    tail -n 40 "$work/$arch-configure.log"
    continue
  fi
  # Only what the checks need: the runtime tests' folder, platforms_tests and
  # the tools that are in the tree.
  targets=(platforms_tests kiosk_example)
  tools=()
  for t in inspect eval bench; do
    if [ -f "tools/$t/CMakeLists.txt" ]; then
      tools+=("mtan-$t")
    else
      log "$arch: mtan-$t is not in the tree yet: skipped"
    fi
  done
  targets+=("${tools[@]}")
  log "$arch: building tests/runtime, ${targets[*]}"
  if ! { make -C "$b/tests/runtime" -j"$jobs" all &&
         cmake --build "$b" -j"$jobs" --target "${targets[@]}"; } > "$work/$arch-build.log" 2>&1; then
    bad "$arch: build"
    grep -E 'error|Error' "$work/$arch-build.log" | head -n 20
    continue
  fi
  ok "$arch: build (runtime, runtime tests, platforms_tests, ${tools[*]})"

  check "$arch: runtime test suite under qemu" "$work/$arch-ctest-runtime.log" \
    ctest --test-dir "$b/tests/runtime" --output-on-failure
  check "$arch: tests/platforms under qemu (hot-swap, demo vs host)" "$work/$arch-ctest-platforms.log" \
    ctest --test-dir "$b/tests/platforms" --output-on-failure
  grep -h '^compare:' "$b/tests/platforms/Testing/Temporary/LastTest.log" 2>/dev/null |
    sed "s/^/    $arch /" || true

  # The tools run as ctest runs the tests (cross-linux.cmake's emulator).
  case "$arch" in
    aarch64) emu="qemu-aarch64 -L / -E LD_LIBRARY_PATH=$work/sysroot-aarch64/usr/lib/aarch64-linux-gnu" ;;
    armhf) emu="qemu-arm -L / -E LD_LIBRARY_PATH=$work/sysroot-armhf/usr/lib/arm-linux-gnueabihf" ;;
  esac
  for tool in "${tools[@]}"; do
    case "$tool" in
      mtan-inspect)
        check "$arch: mtan-inspect on the demo" "$work/$arch-inspect.log" \
          $emu "$b/bin/mtan-inspect" "$demo/demo.mtan" ;;
      mtan-eval)
        check "$arch: mtan-eval on the demo" "$work/$arch-eval.log" \
          $emu "$b/bin/mtan-eval" --model "$demo/demo.mtan" --data "$demo/labelled.csv" \
          --spec "$demo/spec.json" --json "$work/$arch-metrics.json"
        if [ -f "$demo/host_metrics.json" ] && [ -f "$work/$arch-metrics.json" ]; then
          check "$arch: mtan-eval metrics equal the host's" "$work/$arch-eval-compare.log" \
            compare_metrics "$demo/host_metrics.json" "$work/$arch-metrics.json"
        fi ;;
      mtan-bench)
        check "$arch: mtan-bench runs on the demo" "$work/$arch-bench.log" \
          $emu "$b/bin/mtan-bench" -m "$demo/demo.mtan" -b 8 -r 3 --warmup 1 --min-seconds 0 -q ;;
    esac
  done

  prefix=$work/prefix-$arch
  rm -rf "$prefix"
  check "$arch: cmake --install (runtime)" "$work/$arch-install.log" \
    cmake --install "$b" --component runtime --prefix "$prefix"
  kiosk_check "$arch" "$prefix" "-DCMAKE_TOOLCHAIN_FILE='$root/$toolchain'"
done

log "done in $(( $(date +%s) - start ))s"
for f in "${failures[@]}"; do echo "test-arm: failed: $f"; done
echo "test-arm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
