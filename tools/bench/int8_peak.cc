#include "int8_peak.h"

#include <chrono>

#if defined(__x86_64__)
// GCC 12's AVX-512 headers start some intrinsics from an undefined vector,
// which -Wuninitialized reports (GCC PR 105593): not our code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace mtan::bench {
namespace {

#if defined(__x86_64__)
using Clock = std::chrono::steady_clock;

// 16 (AVX-512, 32 registers) or 12 (AVX, 16 registers) accumulators: more
// chains than vpdpbusd's latency times its issue rate, so only the
// throughput limits. The empty asm keeps the operands opaque to the
// compiler, which could otherwise fold the loop, and the sums are used.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) double Avx512Block(long steps) {
  __m512i acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_epi32(i);
  __m512i u = _mm512_set1_epi8(1), w = _mm512_set1_epi8(2);
  const auto t0 = Clock::now();
  for (long k = 0; k < steps; ++k) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], u, w);
    __asm__ volatile("" : "+v"(u), "+v"(w));
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  int sink = 0;
  for (int i = 0; i < 16; ++i) sink += _mm_cvtsi128_si32(_mm512_castsi512_si128(acc[i]));
  __asm__ volatile("" : : "r"(sink));
  return steps * 16.0 * 64 * 2 / s / 1e9;
}

__attribute__((target("avx2,avxvnni"))) double AvxBlock(long steps) {
  __m256i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_epi32(i);
  __m256i u = _mm256_set1_epi8(1), w = _mm256_set1_epi8(2);
  const auto t0 = Clock::now();
  for (long k = 0; k < steps; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], u, w);
    __asm__ volatile("" : "+x"(u), "+x"(w));
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  int sink = 0;
  for (int i = 0; i < 12; ++i) sink += _mm_cvtsi128_si32(_mm256_castsi256_si128(acc[i]));
  __asm__ volatile("" : : "r"(sink));
  return steps * 12.0 * 32 * 2 / s / 1e9;
}
#endif

}  // namespace

Int8Peak MeasureInt8Peak() {
  Int8Peak p;
#if defined(__x86_64__)
  // The runtime's choice (runtime/src/ops/fully_connected_s8_x86.cc).
  double (*block)(long) = nullptr;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) {
    p.isa = "avx512vnni";
    block = Avx512Block;
  } else if (unsigned a = 0, b = 0, c = 0, d = 0;
             __builtin_cpu_supports("avx2") && __get_cpuid_count(7, 1, &a, &b, &c, &d) &&
             ((a >> 4) & 1u)) {  // AVX-VNNI: CPUID 7.1 EAX bit 4
    p.isa = "avxvnni";
    block = AvxBlock;
  }
  if (block != nullptr)
    for (int i = 0; i < 3; ++i) {
      const double g = block(2'000'000);
      if (g > p.gops) p.gops = g;
    }
#endif
  return p;
}

}  // namespace mtan::bench
