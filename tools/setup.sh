#!/usr/bin/env bash
# Installs what mtan needs from Debian 12, and only what is missing.
# Idempotent: runs `apt-get update` at most once, never prompts.
#   tools/setup.sh            runtime, tools, tests and trainer
#   tools/setup.sh --runtime  runtime, tools and tests only (no libtorch)
set -euo pipefail

want=(build-essential cmake pkg-config git
      libxnnpack-dev libpthreadpool-dev libcpuinfo-dev
      libflatbuffers-dev flatbuffers-compiler doctest-dev
      libfmt-dev libcli11-dev nlohmann-json3-dev)
if [ "${1:-}" != "--runtime" ]; then
  # libtorch calls the system BLAS: without OpenBLAS it falls back to the
  # reference BLAS and trains ~14x slower.
  want+=(libtorch-dev libopenblas0-pthread gnuplot-nox)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
