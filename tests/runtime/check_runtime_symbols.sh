#!/usr/bin/env bash
# Fails if the runtime library's own objects reference the heap or the C++
# exception runtime. Usage: check_runtime_symbols.sh path/to/libmtan.a [nm]
#
# Every step fails loudly: a missing or failing nm, or a library that lists
# no undefined symbol at all (not an archive of the runtime's objects: it
# calls at least memcpy), is a failure, never "ok". Only grep's "no match"
# is the good outcome.
set -euo pipefail
lib=$1
nm=${2:-nm}
if ! undefined=$("$nm" -u "$lib"); then
  echo "FAIL: '$nm -u $lib' failed"
  exit 1
fi
names=$(printf '%s\n' "$undefined" | awk 'NF >= 2 {print $NF}' | sort -u)
if [ -z "$names" ]; then
  echo "FAIL: '$nm -u $lib' lists no undefined symbol: not the runtime library?"
  exit 1
fi
heap='^(malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|_Znwm|_Znam|_ZdlPv|_ZdaPv|_ZdlPvm|_ZdaPvm|_ZnwmSt11align_val_t|__cxa_throw|__cxa_allocate_exception|__cxa_begin_catch|__gxx_personality_v0|_Unwind_Resume)$'
rc=0
bad=$(printf '%s\n' "$names" | grep -E "$heap") || rc=$?
if [ "$rc" -gt 1 ]; then
  echo "FAIL: grep failed (exit $rc)"
  exit 1
fi
if [ -n "$bad" ]; then
  echo "FAIL: $lib references heap or exception symbols:"
  echo "$bad"
  exit 1
fi
echo "ok: $lib references no malloc/free/new/delete or exception runtime" \
     "($(printf '%s\n' "$names" | wc -l) undefined symbols checked)"
