#!/usr/bin/env bash
# Every status in mtan.h is reached by at least one test: each MTAN_OK /
# MTAN_ERROR_* name must appear in a test as the expected result of a call
# (`== NAME`, `!= NAME`-free assertions, or an Expect(..., NAME, ...)
# argument). A new status without a test fails here.
#   status_coverage.sh REPO_ROOT
set -euo pipefail
root=$1
statuses=$(sed -n '/typedef enum mtan_status/,/} mtan_status;/p' "$root/runtime/include/mtan/mtan.h" |
           grep -oE 'MTAN_(OK|ERROR_[A-Z_]+)' | sort -u)
[ -n "$statuses" ] || { echo "FAIL: no statuses found in mtan.h"; exit 1; }
missing=0
n=0
for s in $statuses; do
  n=$((n + 1))
  if grep -rqE "(==|\(|,|^) *$s\b" "$root/tests" --include='*.cc' --include='*.h' \
       --exclude-dir=fuzz --exclude-dir=hardening; then
    echo "ok   $s"
  else
    echo "FAIL $s is not the expected result of any test"
    missing=$((missing + 1))
  fi
done
echo "$((n - missing)) passed, $missing failed"
[ "$missing" -eq 0 ]
