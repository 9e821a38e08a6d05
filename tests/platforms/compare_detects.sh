#!/usr/bin/env bash
# platforms.demo_compare checks this machine against files the same machine
# has just written, so it passes by construction; what it proves is that the
# comparison runs. This proves the comparison can fail: the demo with one
# host output moved by 0.01 (above the golden tolerance, ~4e-3) must be
# refused, naming the row and output. (The real cross-check is
# platforms.compare_with_host under qemu, platforms/test-arm.sh.)
#   compare_detects.sh PLATFORMS_TESTS DEMO_DIR
set -euo pipefail
bin=$1
demo=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/mtan-compare-detects.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$demo"/* "$work"/
awk 'NR == 3 { $2 = sprintf("%.9g", $2 + 0.01) } { print }' "$demo/host_outputs.txt" > "$work/host_outputs.txt"
if cmp -s "$demo/host_outputs.txt" "$work/host_outputs.txt"; then
  echo "FAIL: could not perturb host_outputs.txt"
  exit 1
fi
rc=0
out=$("$bin" compare "$work" 2>&1) || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "FAIL: compare accepted a host output moved by 0.01"
  echo "$out"
  exit 1
fi
if ! printf '%s\n' "$out" | grep -q "row 2, output 1: .* on the host"; then
  echo "FAIL: compare failed without naming row 2, output 1:"
  echo "$out"
  exit 1
fi
echo "ok: compare refuses a moved output: $out"
