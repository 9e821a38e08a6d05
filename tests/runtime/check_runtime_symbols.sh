#!/usr/bin/env bash
# Fails if the runtime library's own objects reference the heap or the C++
# exception runtime. Usage: check_runtime_symbols.sh path/to/libmtan.a [nm]
set -euo pipefail
lib=$1
nm=${2:-nm}
bad=$("$nm" -u "$lib" | awk '{print $NF}' | grep -E '^(malloc|calloc|realloc|free|posix_memalign|aligned_alloc|memalign|_Znwm|_Znam|_ZdlPv|_ZdaPv|_ZdlPvm|_ZdaPvm|_ZnwmSt11align_val_t|__cxa_throw|__cxa_allocate_exception|__cxa_begin_catch|__gxx_personality_v0|_Unwind_Resume)$' | sort -u || true)
if [ -n "$bad" ]; then
  echo "FAIL: $lib references heap or exception symbols:"
  echo "$bad"
  exit 1
fi
echo "ok: $lib references no malloc/free/new/delete or exception runtime"
