# 64-bit ARM Linux (ARMv8-A), Debian 12 cross toolchain. Prepare once with
# `platforms/setup-cross.sh aarch64`, then:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=platforms/aarch64-linux-gnu.cmake \
#         -DMTAN_BUILD_TRAINER=OFF
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(MTAN_TRIPLET aarch64-linux-gnu)
set(MTAN_ARCH aarch64)
set(MTAN_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/cross-linux.cmake)
