#!/usr/bin/env bash
# Measures libmtan alone (XNNPACK, pthreadpool and libc are not counted) for
# x86-64, aarch64 and armhf, with XNNPACK (default) and with
# MTAN_WITH_XNNPACK=OFF (reference kernels only):
#   platforms/measure-size.sh [x86_64] [aarch64] [armhf]     (default: all)
# For each it builds only mtan_runtime, Release (-O3), twice: static (the
# default) and -DBUILD_SHARED_LIBS=ON, and prints
#   - code+data of the static library: `size -t` totals over its objects,
#     i.e. what it adds to a program at most (the linker may drop unused code);
#   - the stripped shared library (`strip --strip-all`): its loaded
#     text+data, which also holds the dynamic symbol table of every global,
#     and its file size (on aarch64 padded to the 64 KiB page alignment that
#     Debian's linker uses there);
#   - the five largest symbols (`nm --size-sort`).
# Cross targets need platforms/setup-cross.sh first. Builds go to
# build-cross/size-<arch>-<xnnpack|ref>-<static|shared>.
set -euo pipefail
cd "$(dirname "$0")/.."
archs=("$@")
[ ${#archs[@]} -eq 0 ] && archs=(x86_64 aarch64 armhf)

for arch in "${archs[@]}"; do
  case "$arch" in
    x86_64) tc=(); prefix="" ;;
    aarch64) tc=(-DCMAKE_TOOLCHAIN_FILE=platforms/aarch64-linux-gnu.cmake); prefix=aarch64-linux-gnu- ;;
    armhf) tc=(-DCMAKE_TOOLCHAIN_FILE=platforms/arm-linux-gnueabihf.cmake); prefix=arm-linux-gnueabihf- ;;
    *) echo "measure-size: unknown architecture $arch" >&2; exit 2 ;;
  esac
  for backend in xnnpack ref; do
    xnn=ON
    [ "$backend" = ref ] && xnn=OFF
    for kind in static shared; do
      shared=OFF
      [ "$kind" = shared ] && shared=ON
      b=build-cross/size-$arch-$backend-$kind
      cmake -S . -B "$b" "${tc[@]}" -DCMAKE_BUILD_TYPE=Release -DMTAN_WITH_XNNPACK=$xnn \
        -DBUILD_SHARED_LIBS=$shared -DMTAN_BUILD_TESTS=OFF -DMTAN_BUILD_TOOLS=OFF \
        -DMTAN_BUILD_TRAINER=OFF > "$b.log" 2>&1 || { cat "$b.log"; exit 1; }
      cmake --build "$b" -j2 --target mtan_runtime >> "$b.log" 2>&1 || { tail -n 30 "$b.log"; exit 1; }
    done
    a=build-cross/size-$arch-$backend-static/runtime/libmtan.a
    so=build-cross/size-$arch-$backend-shared/runtime/libmtan.so
    "${prefix}strip" --strip-all -o "$so.stripped" "$so"
    read -r text data bss _ < <("${prefix}size" -t "$a" | tail -n 1)
    read -r stext sdata _ < <("${prefix}size" "$so.stripped" | tail -n 1)
    printf '%-8s %-8s static: text %6d data %5d bss %5d = %6d B | stripped .so: text+data %6d B, file %6d B\n' \
      "$arch" "$backend" "$text" "$data" "$bss" $((text + data)) $((stext + sdata)) \
      "$(stat -c %s "$so.stripped")"
    "${prefix}size" "$a" | awk 'NR > 1 {printf "    %-22s text %6d data %5d\n", $6, $1, $2}'
    echo "    largest symbols:"
    # `nm --size-sort` prints "size type name" per object; sort across objects.
    "${prefix}nm" --size-sort -C --radix=d "$a" 2>/dev/null | awk 'NF >= 3 && $1 ~ /^[0-9]+$/' |
      sort -k1,1nr | awk 'NR <= 5 {n = $3; for (i = 4; i <= NF; ++i) n = n " " $i;
                                  printf "      %6d %s %s\n", $1, $2, substr(n, 1, 72)}'
  done
done
