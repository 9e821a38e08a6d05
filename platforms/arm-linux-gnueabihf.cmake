# 32-bit ARM Linux, hard float (Debian armhf: ARMv7-A, VFPv3-D16, Thumb-2;
# NEON is detected at run time by XNNPACK). Prepare once with
# `platforms/setup-cross.sh armhf`, then:
#   cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=platforms/arm-linux-gnueabihf.cmake \
#         -DMTAN_BUILD_TRAINER=OFF
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(MTAN_TRIPLET arm-linux-gnueabihf)
set(MTAN_ARCH armhf)
set(MTAN_QEMU qemu-arm)
# -Wpsabi notes only concern mixing with objects from GCC < 7.1.
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")
include(${CMAKE_CURRENT_LIST_DIR}/cross-linux.cmake)
