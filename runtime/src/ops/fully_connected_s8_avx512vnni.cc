// AVX512-VNNI int8 FULLY_CONNECTED (fully_connected_s8_x86.h): 8 rows x 32
// channels per tile, 16 zmm accumulators, one vpdpbusd per 64 products.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni; called only
// where CpuInt8FcKernels found them.
// GCC 12's AVX-512 headers start some intrinsics from an undefined vector,
// which -Wuninitialized reports at -O3 (GCC PR 105593): not our code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "ops/fully_connected_s8_x86_tile.h"

namespace mtan {
namespace {

struct Avx512Vnni {
  using V = __m512i;
  static constexpr int kLanes = 16, kVectorsPerBlock = 1, kTileRows = 8, kTileBlocks = 2;
  static V Bias(const int32_t* b) { return _mm512_loadu_si512(b); }
  static V Weights(const uint8_t* w) { return _mm512_loadu_si512(w); }
  static V Broadcast(const uint8_t* u) {
    int32_t v;
    memcpy(&v, u, 4);
    return _mm512_set1_epi32(v);
  }
  // Inline asm, not _mm512_dpbusd_epi32: with the intrinsic GCC 12 copies
  // every accumulator through a second register each step (two moves per
  // vpdpbusd, on the same ports), a third of the speed.
  static V Dot(V acc, V u, V w) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(w));
    return acc;
  }
  static void FlipSign(const int8_t* x, uint32_t n, uint8_t* u, uint32_t padded) {
    const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
    for (uint32_t i = 0; i < padded; i += 64) {
      const uint32_t left = n > i ? n - i : 0, room = padded - i;
      const __mmask64 valid = left >= 64 ? ~__mmask64{0} : (__mmask64{1} << left) - 1;
      const __mmask64 store = room >= 64 ? ~__mmask64{0} : (__mmask64{1} << room) - 1;
      const __m512i v = _mm512_maskz_loadu_epi8(valid, x + i);
      _mm512_mask_storeu_epi8(u + i, store, _mm512_maskz_mov_epi8(valid, _mm512_xor_si512(v, sign)));
    }
  }
  static void Store(const V* acc, const float* requant, float lo_f, float hi_f, int32_t zp,
                    int8_t* y, uint32_t n) {
    // Requantize (kernel_util.h) lane by lane: max/min return their second
    // operand for a NaN, as the reference's comparisons do.
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[0]), _mm512_loadu_ps(requant));
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(lo_f)), _mm512_set1_ps(hi_f));
    v = _mm512_sub_ps(_mm512_add_ps(v, magic), magic);
    const __m512i q = _mm512_add_epi32(_mm512_cvttps_epi32(v), _mm512_set1_epi32(zp));
    _mm_mask_storeu_epi8(y, static_cast<__mmask16>((1u << n) - 1), _mm512_cvtepi32_epi8(q));
  }
};

}  // namespace

void FullyConnectedS8Avx512Vnni(const FcS8Packed& p, const int8_t* x, int8_t* y, uint32_t batch,
                                int32_t zp_y, int32_t lo) {
  FullyConnectedS8<Avx512Vnni>(p, x, y, batch, zp_y, lo);
}

}  // namespace mtan
