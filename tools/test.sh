#!/usr/bin/env bash
# README's second command: installs what is missing, builds everything and
# runs every test (ctest, then ctest under sanitizers and a short fuzz run,
# then the ARM tests under qemu). CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
# New build directories use Ninja (setup installs it): it compiles a target's
# sources while the libraries it links are still building, which Makefiles
# do not (the demo's build: 119 s instead of 148 s). An existing build
# directory keeps its generator.
export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}

# --cross installs everything, mtan-bench's peers too (libtorch; python3-onnx,
# Node.js and onnxruntime-node for bench.onnx_peer, which fails without them here).
bash tools/setup.sh --cross
# MTAN_REQUIRE_TRAINER: a missing libtorch fails here instead of silently
# leaving out the trainer and every test that needs it; MTAN_REQUIRE_ONNX_PEER
# does the same for the ONNX Runtime peer's tests.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DMTAN_REQUIRE_TRAINER=ON -DMTAN_REQUIRE_ONNX_PEER=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

# The whole suite again under ASan + UBSan (build-asan/), then a one-minute
# libFuzzer run of model loading and running (build-fuzz/). FUZZ_SECONDS=0
# skips the fuzz run.
bash tests/fuzz/run-sanitizers.sh

# The same runtime tests, and the demo model's outputs, on aarch64 and armhf
# under qemu; the kiosk example against the installed package.
bash platforms/test-arm.sh --host-build build
