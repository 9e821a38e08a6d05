# Shared body of the Debian cross toolchain files. The including file sets
# MTAN_TRIPLET (GNU triplet), MTAN_ARCH (sysroot name) and MTAN_QEMU.
#
# Where things come from (see setup-cross.sh for why):
# - compilers: crossbuild-essential-<debarch>, i.e. <triplet>-gcc/g++;
# - XNNPACK, pthreadpool, cpuinfo: unpacked into MTAN_SYSROOT, searched first;
# - everything else (libc6, libstdc++6, libfmt-dev, libflatbuffers-dev and
#   the header-only packages): Debian multiarch, under `/`;
# - programs (flatc): the build machine's.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${MTAN_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${MTAN_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${MTAN_TRIPLET})

# The sysroot defaults to build-cross/sysroot-<arch> beside this folder, where
# setup-cross.sh puts it; -DMTAN_SYSROOT=... or the environment overrides it.
# try_compile projects re-read this file, so the choice travels through the
# environment to them.
if(NOT MTAN_SYSROOT)
  if(DEFINED ENV{MTAN_SYSROOT})
    set(MTAN_SYSROOT $ENV{MTAN_SYSROOT})
  else()
    get_filename_component(MTAN_SYSROOT
      "${CMAKE_CURRENT_LIST_DIR}/../build-cross/sysroot-${MTAN_ARCH}" ABSOLUTE)
  endif()
endif()
set(MTAN_SYSROOT "${MTAN_SYSROOT}" CACHE PATH "Unpacked ARM XNNPACK/pthreadpool/cpuinfo")
set(ENV{MTAN_SYSROOT} "${MTAN_SYSROOT}")
if(NOT EXISTS "${MTAN_SYSROOT}/usr/lib/${MTAN_TRIPLET}")
  message(WARNING "${MTAN_SYSROOT} has no ${MTAN_TRIPLET} libraries: run platforms/setup-cross.sh ${MTAN_ARCH}")
endif()
set(mtan_sysroot_lib "${MTAN_SYSROOT}/usr/lib/${MTAN_TRIPLET}")

set(CMAKE_FIND_ROOT_PATH "${MTAN_SYSROOT}" /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config (find_package(PkgConfig) users): the target's .pc files only.
set(ENV{PKG_CONFIG_LIBDIR}
    "${mtan_sysroot_lib}/pkgconfig:/usr/lib/${MTAN_TRIPLET}/pkgconfig:/usr/share/pkgconfig")

# libXNNPACK.so needs libcpuinfo/libpthreadpool: let the linker resolve them
# in the sysroot without adding them to DT_NEEDED of our programs.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath-link,${mtan_sysroot_lib}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath-link,${mtan_sysroot_lib}")

# binfmt_misc may not be mounted, so ctest and the scripts call qemu
# explicitly. `-L /` runs against the multiarch libc6:<debarch> (with the
# cross toolchain's /usr/<triplet> copy, threaded programs hang or crash);
# the sysroot's shared libraries come first on the guest's library path.
find_program(MTAN_QEMU_PROGRAM ${MTAN_QEMU})
if(MTAN_QEMU_PROGRAM)
  set(CMAKE_CROSSCOMPILING_EMULATOR
      ${MTAN_QEMU_PROGRAM} -L / -E LD_LIBRARY_PATH=${mtan_sysroot_lib})
else()
  message(WARNING "${MTAN_QEMU} not found (package qemu-user): ARM tests cannot run here")
endif()
