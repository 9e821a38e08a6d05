// AVX-VNNI (256-bit, VEX: Alder Lake and later client cores, Intel N-series)
// int8 FULLY_CONNECTED (fully_connected_s8_x86.h): 6 rows x 16 channels per
// tile, 12 ymm accumulators. Compiled with -mavx2 -mfma -mavxvnni and no
// AVX-512, so that it runs on cores without it; called only where
// CpuInt8FcKernels found AVX-VNNI.
#include <immintrin.h>

#include "ops/fully_connected_s8_x86_tile.h"

namespace mtan {
namespace {

struct AvxVnni {
  using V = __m256i;
  static constexpr int kLanes = 8, kVectorsPerBlock = 2, kTileRows = 6, kTileBlocks = 1;
  static V Bias(const int32_t* b) { return _mm256_loadu_si256(reinterpret_cast<const V*>(b)); }
  static V Weights(const uint8_t* w) { return _mm256_loadu_si256(reinterpret_cast<const V*>(w)); }
  static V Broadcast(const uint8_t* u) {
    int32_t v;
    memcpy(&v, u, 4);
    return _mm256_set1_epi32(v);
  }
  // Inline asm, as in the AVX-512 file: the intrinsic costs register copies.
  static V Dot(V acc, V u, V w) {
    __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(w));
    return acc;
  }
  static __m256i Requantize(V acc, const float* requant, float lo_f, float hi_f, int32_t zp) {
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(requant));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(lo_f)), _mm256_set1_ps(hi_f));
    v = _mm256_sub_ps(_mm256_add_ps(v, magic), magic);
    return _mm256_add_epi32(_mm256_cvttps_epi32(v), _mm256_set1_epi32(zp));
  }
  static void FlipSign(const int8_t* x, uint32_t n, uint8_t* u, uint32_t padded) {
    const __m256i sign = _mm256_set1_epi8(static_cast<char>(0x80));
    uint32_t i = 0;
    for (; i + 32 <= n; i += 32)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + i),
                          _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), sign));
    if (i < padded) {  // the tail, through a zeroed vector
      alignas(32) uint8_t tail[32] = {};
      memcpy(tail, x + i, n - i);
      for (uint32_t k = 0; k < n - i; ++k) tail[k] ^= 0x80u;
      const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(tail));
      if (padded - i == 32) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(u + i), v);
      } else {
        // padded - i < 32 and a multiple of 4: whole dwords, one masked store.
        const __m256i lane = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
        const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(padded - i)), lane);
        _mm256_maskstore_epi32(reinterpret_cast<int*>(u + i), mask, v);
      }
    }
  }
  static void Store(const V* acc, const float* requant, float lo_f, float hi_f, int32_t zp,
                    int8_t* y, uint32_t n) {
    // Values are in [lo, 127] already: the saturating packs only narrow.
    const __m256i a = Requantize(acc[0], requant, lo_f, hi_f, zp);
    const __m256i b = Requantize(acc[1], requant + 8, lo_f, hi_f, zp);
    const __m256i s16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(a, b), 0xD8);
    const __m128i s8 =
        _mm_packs_epi16(_mm256_castsi256_si128(s16), _mm256_extracti128_si256(s16, 1));
    if (n == 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y), s8);
    } else {
      alignas(16) int8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), s8);
      memcpy(y, tmp, n);
    }
  }
};

}  // namespace

void FullyConnectedS8AvxVnni(const FcS8Packed& p, const int8_t* x, int8_t* y, uint32_t batch,
                             int32_t zp_y, int32_t lo) {
  FullyConnectedS8<AvxVnni>(p, x, y, batch, zp_y, lo);
}

}  // namespace mtan
