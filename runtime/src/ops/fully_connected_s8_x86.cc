// The one place that picks an x86 int8 kernel (fully_connected_s8_x86.h),
// and the weight packing they share.
#include "ops/fully_connected_s8_x86.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace mtan {

#if defined(__x86_64__) && MTAN_HAS_X86_VNNI
void FullyConnectedS8Avx512Vnni(const FcS8Packed&, const int8_t*, int8_t*, uint32_t, int32_t,
                                int32_t);
void FullyConnectedS8AvxVnni(const FcS8Packed&, const int8_t*, int8_t*, uint32_t, int32_t,
                             int32_t);

const FcS8Isa* CpuInt8FcKernels(uint32_t* count_out) {
  // libgcc's cpu model, not cpuinfo: it allocates nothing (cpuinfo_initialize
  // does), needs no XNNPACK, and reports AVX-512 only where the OS saves its
  // state (XCR0). Read on every call, into constant tables: no static
  // initialisation guard (the runtime links from C without the C++ runtime).
  static constexpr FcS8Isa kIsas[] = {{"avx512vnni", FullyConnectedS8Avx512Vnni},
                                      {"avxvnni", FullyConnectedS8AvxVnni}};
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  // AVX-VNNI from CPUID leaf 7.1 EAX bit 4: clang 14 does not know
  // __builtin_cpu_supports("avxvnni"); "avx2" implies the OS saves AVX state.
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool avx = __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &a, &b, &c, &d) &&
                   ((a >> 4) & 1u);
  *count_out = static_cast<uint32_t>(avx512) + static_cast<uint32_t>(avx);
  return avx512 ? kIsas : kIsas + 1;
}
#else
const FcS8Isa* CpuInt8FcKernels(uint32_t* count_out) {
  *count_out = 0;
  return nullptr;
}
#endif

void PackFcS8(const int8_t* w, const int32_t* b, uint32_t in, uint32_t out, int32_t zp_x,
              uint8_t* weights, int32_t* bias) {
  const uint32_t groups = PaddedInputs(in) / 4, channels = PaddedChannels(out);
  for (uint32_t o = 0; o < channels; ++o) {
    // Wrapping int32, as the kernels' sums.
    uint32_t sum = 0;
    const uint32_t block = o / kFcS8Block, lane = o % kFcS8Block;
    for (uint32_t g = 0; g < groups; ++g)
      for (uint32_t j = 0; j < 4; ++j) {
        const uint32_t i = g * 4 + j;
        const int8_t v = o < out && i < in ? w[static_cast<size_t>(o) * in + i] : 0;
        sum += static_cast<uint32_t>(static_cast<int32_t>(v));
        weights[(static_cast<size_t>(block) * groups + g) * 64 + lane * 4 + j] =
            static_cast<uint8_t>(v);
      }
    bias[o] = o < out ? static_cast<int32_t>(static_cast<uint32_t>(b[o]) -
                                             static_cast<uint32_t>(128 + zp_x) * sum)
                      : 0;
  }
}

}  // namespace mtan
