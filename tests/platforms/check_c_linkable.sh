#!/usr/bin/env bash
# Fails if libmtan references a symbol of the C++ runtime (libstdc++ or
# libsupc++), which a C program linked with the C driver would not resolve.
# Usage: check_c_linkable.sh path/to/libmtan.a [nm]
set -euo pipefail
lib=$1
nm=${2:-nm}
# Undefined symbols that no object of the library defines.
defined=$("$nm" --defined-only "$lib" 2>/dev/null | awk 'NF == 3 {print $3}' | sort -u)
undefined=$("$nm" -u "$lib" | awk 'NF >= 2 {print $NF}' | sort -u)
external=$(comm -23 <(echo "$undefined") <(echo "$defined"))
bad=$(echo "$external" | grep -E '^(_Z|__cxa_|__gxx_|_Unwind_)' || true)
if [ -n "$bad" ]; then
  echo "FAIL: $lib needs the C++ runtime:"
  echo "$bad"
  exit 1
fi
echo "ok: $lib needs only: $(echo $external | tr '\n' ' ')"
