#!/usr/bin/env bash
# Installs what cross-building mtan for ARM needs on Debian 12, and extracts
# the ARM XNNPACK stack into a sysroot under the build tree.
#
#   platforms/setup-cross.sh [aarch64] [armhf]     (default: both)
#
# Idempotent and non-interactive: installs only missing packages and runs
# `apt-get update` at most once per run (a stamp file records it; export
# MTAN_APT_STAMP to share one stamp with other setup scripts of the same run).
#
# Why a sysroot: libxnnpack0, libxnnpack-dev, libpthreadpool0/-dev have no
# Multi-Arch field, so installing their :arm64 build removes the amd64 one that
# libtorch needs. Their ARM .debs are therefore fetched with `apt-get download`
# and unpacked with `dpkg-deb -x` into build-cross/sysroot-<arch>, which the
# toolchain files put in CMAKE_FIND_ROOT_PATH before `/`. Everything that is
# co-installable (libc6, libstdc++6, libfmt-dev, libflatbuffers-dev) comes in
# normally through `dpkg --add-architecture`, and the emulator runs binaries
# against that multiarch libc6 (`qemu-<arch> -L /`): with the cross
# toolchain's copy under /usr/<triplet>, threaded programs hang (qemu-aarch64)
# or crash (qemu-arm).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cache="${MTAN_CROSS_CACHE:-$root/build-cross}"
stamp="${MTAN_APT_STAMP:-$cache/apt-updated.stamp}"

archs=("$@")
[ ${#archs[@]} -eq 0 ] && archs=(aarch64 armhf)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
mkdir -p "$cache"

log() { echo "setup-cross: $*" >&2; }

# `apt-get update` once per run: the stamp is fresh for 6 hours.
apt_update_once() {
  if [ -f "$stamp" ] && [ -n "$(find "$stamp" -mmin -360 2>/dev/null)" ]; then return 0; fi
  log "apt-get update"
  # A mirror caught mid-sync fails one index ("File has unexpected size")
  # while the others update. Try once more, then go on with what was fetched:
  # if a package is really missing, the install below fails and says which.
  if ! $SUDO apt-get update -qq; then
    log "apt-get update failed; retrying in 10 s"
    sleep 10
    $SUDO apt-get update -qq || log "apt-get update incomplete; continuing with the lists it fetched"
  fi
  touch "$stamp"
}

# (No `cmd | grep -q` under pipefail: grep's early exit can fail the pipe.)
installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# Debian architecture names and the packages each needs.
want=(qemu-user)
debarchs=()
for a in "${archs[@]}"; do
  case "$a" in
    aarch64|arm64) debarchs+=(arm64) ;;
    armhf|armv7|arm) debarchs+=(armhf) ;;
    *) echo "setup-cross: unknown architecture '$a' (aarch64 or armhf)" >&2; exit 2 ;;
  esac
done
for d in "${debarchs[@]}"; do
  want+=("crossbuild-essential-$d" "libc6:$d" "libstdc++6:$d" "libgcc-s1:$d"
         "libflatbuffers-dev:$d" "libfmt-dev:$d")
done

lists_ok=1
foreign=" $(dpkg --print-foreign-architectures | tr '\n' ' ') "
for d in "${debarchs[@]}"; do
  if [[ "$foreign" != *" $d "* ]]; then
    log "dpkg --add-architecture $d"
    $SUDO dpkg --add-architecture "$d"
  fi
  # A just-added architecture has no package lists until an update.
  ls /var/lib/apt/lists/*_binary-"$d"_Packages* >/dev/null 2>&1 || lists_ok=0
done

missing=()
for p in "${want[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  # With lists present, try without an update first (another setup script
  # may just have run one); update only if that fails.
  if [ "$lists_ok" -eq 0 ] ||
     ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" > "$cache/apt-install.log" 2>&1; then
    apt_update_once
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi

# The XNNPACK stack, unpacked (not installed) per architecture.
sysroot_pkgs=(libxnnpack0 libxnnpack-dev libpthreadpool0 libpthreadpool-dev
              libcpuinfo0 libcpuinfo-dev)
for d in "${debarchs[@]}"; do
  case "$d" in arm64) a=aarch64 ;; armhf) a=armhf ;; esac
  sysroot="$cache/sysroot-$a"
  debs="$cache/debs-$d"
  if [ -f "$sysroot/.complete" ]; then continue; fi
  mkdir -p "$debs"
  todo=()
  for p in "${sysroot_pkgs[@]}"; do
    ls "$debs/${p}_"*"_$d.deb" >/dev/null 2>&1 || todo+=("$p:$d")
  done
  if [ ${#todo[@]} -gt 0 ]; then
    log "apt-get download ${todo[*]}"
    # _apt cannot write into a root-owned build tree: download as the caller.
    dl=(apt-get download -qq -o APT::Sandbox::User=root)
    if ! (cd "$debs" && "${dl[@]}" "${todo[@]}"); then
      apt_update_once
      (cd "$debs" && "${dl[@]}" "${todo[@]}")
    fi
  fi
  rm -rf "$sysroot"
  mkdir -p "$sysroot"
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
  touch "$sysroot/.complete"
  log "sysroot ready: $sysroot"
done
