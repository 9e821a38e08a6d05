#!/usr/bin/env bash
# Installs what mtan needs from Debian 12, and only what is missing.
# Idempotent: runs `apt-get update` at most once, never prompts.
#   tools/setup.sh            runtime, tools, tests and trainer (the demo), and
#                             mtan-bench's peers: libtorch, and ONNX Runtime
#                             (python3-onnx for the exporter, Node.js and
#                             onnxruntime-node from npm, tools/bench/onnx/)
#   tools/setup.sh --runtime  runtime, tools and tests only (no peers)
#   tools/setup.sh --sanitizers  also clang 14 and its sanitizer and libFuzzer
#                             runtimes (tests/fuzz/run-sanitizers.sh)
#   tools/setup.sh --cross    all of the above, and the ARM cross compilers,
#                             qemu and the arm64/armhf libraries
#                             (platforms/setup-cross.sh then only unpacks the
#                             ARM XNNPACK sysroot): what tools/test.sh needs
set -euo pipefail
mode=${1:-}

want=(build-essential cmake ninja-build pkg-config git
      libxnnpack-dev libpthreadpool-dev libcpuinfo-dev
      libflatbuffers-dev flatbuffers-compiler doctest-dev
      libfmt-dev libcli11-dev nlohmann-json3-dev libxxhash-dev)
if [ "$mode" = "--sanitizers" ] || [ "$mode" = "--cross" ]; then
  want+=(clang-14 libclang-rt-14-dev)
fi
if [ "$mode" != "--runtime" ]; then
  # libtorch calls the system BLAS: without OpenBLAS it falls back to the
  # reference BLAS and trains ~14x slower.
  want+=(libtorch-dev libopenblas0-pthread gnuplot-nox)
  # xxhsum: tests check that a model's footer is XXH64 as outside tools see it.
  want+=(xxhash)
  # mtan-bench --onnx: Debian's python3 (not a pyenv one) reads .mtan files
  # and writes ONNX; Node.js runs onnxruntime-node. A Node.js from elsewhere
  # (NodeSource's, which bundles npm) is kept.
  want+=(python3 python3-onnx python3-flatbuffers python3-numpy)
  command -v node >/dev/null 2>&1 || want+=(nodejs)
  command -v npm >/dev/null 2>&1 || want+=(npm)
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ "$mode" = "--cross" ]; then
  want+=(qemu-user)
  for d in arm64 armhf; do
    want+=("crossbuild-essential-$d" "libc6:$d" "libstdc++6:$d" "libgcc-s1:$d"
           "libflatbuffers-dev:$d" "libfmt-dev:$d" "libxxhash-dev:$d")
    # Added before the one `apt-get update`, so that it fetches their lists.
    case " $(dpkg --print-foreign-architectures | tr '\n' ' ') " in
      *" $d "*) ;;
      *) $SUDO dpkg --add-architecture "$d" ;;
    esac
  done
fi

# Installed for this machine's architecture (or arch-independent); `pkg:arch`
# names a foreign one. Multi-arch packages list one status line per arch.
native=$(dpkg --print-architecture)
installed() {
  local name=${1%%:*} arch=${1#*:}
  [ "$arch" = "$1" ] && arch=$native
  local line
  while IFS= read -r line; do
    case "$line" in
      "install ok installed $arch" | "install ok installed all") return 0 ;;
    esac
  done < <(dpkg-query -W -f='${Status} ${Architecture}\n' "$name" 2>/dev/null || true)
  return 1
}
missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A mirror caught mid-sync can fail one index ("File has unexpected size"):
  # try once more, then go on; a package really missing fails the install.
  if ! $SUDO apt-get update -qq; then
    sleep 10
    $SUDO apt-get update -qq || echo "setup: apt-get update incomplete; continuing" >&2
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# onnxruntime-node, pinned by tools/bench/onnx/package-lock.json, into
# tools/bench/onnx/node_modules (git-ignored): only when missing or older
# than the lock file. ONNXRUNTIME_NODE_INSTALL=skip: its postinstall would
# otherwise download GPU binaries; the CPU library ships in the package.
if [ "$mode" != "--runtime" ]; then
  onnx_dir="$(cd "$(dirname "$0")" && pwd)/bench/onnx"
  stamp="$onnx_dir/node_modules/.package-lock.json"
  if [ ! -f "$stamp" ] || [ "$onnx_dir/package-lock.json" -nt "$stamp" ]; then
    echo "setup: npm ci in $onnx_dir (onnxruntime-node)" >&2
    (cd "$onnx_dir" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund >&2)
  fi
fi
