// The int8 FULLY_CONNECTED tile loop of fully_connected_s8_x86.h, written
// once over an ISA's vector operations. Included only by the ISA files
// (fully_connected_s8_avx512vnni.cc, fully_connected_s8_avxvnni.cc), each
// compiled with its own -m flags; everything here has internal linkage so
// that no copy built for one ISA is shared with code built for another.
//
// An ISA struct provides:
//   V, kLanes, kVectorsPerBlock (16 / kLanes), kTileRows, kTileBlocks;
//   Bias(const int32_t*)        V of int32 bias lanes;
//   Weights(const uint8_t*)     V of 4-byte weight groups;
//   Broadcast(const uint8_t*)   4 activation bytes in every lane;
//   Dot(acc, u, w)              vpdpbusd;
//   Store(const V* acc, const float* requant, lo_f, hi_f, zp, int8_t* y, n)
//                               requantize one block of 16 channels, store n;
//   FlipSign(x, n, u, padded)   u[i] = x[i] ^ 0x80 for i < n, 0 up to padded.
#pragma once

#include <string.h>

#include "ops/fully_connected_s8_x86.h"

namespace mtan {
namespace {

// MR rows x NB blocks of 16 channels: MR * NB * kVectorsPerBlock
// accumulators stay in registers over the whole K loop.
template <class Isa, int MR, int NB>
void TileS8(const FcS8Packed& p, const uint8_t* u, uint32_t u_stride, uint32_t block,
            int8_t* y, uint32_t batch_out, int32_t zp, float lo_f, float hi_f) {
  using V = typename Isa::V;
  constexpr int kV = Isa::kVectorsPerBlock;
  const uint32_t groups = PaddedInputs(p.in) / 4;
  const uint64_t block_bytes = static_cast<uint64_t>(groups) * 64;
  V acc[MR][NB * kV];
  for (int j = 0; j < NB * kV; ++j) {
    const V b = Isa::Bias(p.bias + block * kFcS8Block + j * Isa::kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) acc[r][j] = b;
  }
  const uint8_t* w = p.weights + block * block_bytes;
  for (uint32_t g = 0; g < groups; ++g) {
    V wv[NB * kV];
#pragma GCC unroll 4
    for (int b = 0; b < NB; ++b)
#pragma GCC unroll 4
      for (int v = 0; v < kV; ++v)
        wv[b * kV + v] = Isa::Weights(w + b * block_bytes + g * 64 + v * (64 / kV));
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const V x = Isa::Broadcast(u + r * u_stride + g * 4);
#pragma GCC unroll 4
      for (int j = 0; j < NB * kV; ++j) acc[r][j] = Isa::Dot(acc[r][j], x, wv[j]);
    }
  }
  for (int b = 0; b < NB; ++b) {
    const uint32_t c0 = (block + b) * kFcS8Block;
    const uint32_t n = p.out - c0 < kFcS8Block ? p.out - c0 : kFcS8Block;
    for (int r = 0; r < MR; ++r)
      Isa::Store(&acc[r][b * kV], p.requant + c0, lo_f, hi_f, zp, y + r * batch_out + c0, n);
  }
}

// All blocks of MR rows.
template <class Isa, int MR>
void RowsS8(const FcS8Packed& p, const uint8_t* u, uint32_t u_stride, int8_t* y, int32_t zp,
            float lo_f, float hi_f) {
  constexpr int NB = Isa::kTileBlocks;
  const uint32_t blocks = PaddedChannels(p.out) / kFcS8Block;
  uint32_t b = 0;
  for (; b + NB <= blocks; b += NB) TileS8<Isa, MR, NB>(p, u, u_stride, b, y, p.out, zp, lo_f, hi_f);
  for (; b < blocks; ++b) TileS8<Isa, MR, 1>(p, u, u_stride, b, y, p.out, zp, lo_f, hi_f);
}

template <class Isa>
void FullyConnectedS8(const FcS8Packed& p, const int8_t* x, int8_t* y, uint32_t batch,
                      int32_t zp, int32_t lo) {
  static_assert(Isa::kTileRows <= static_cast<int>(kFcS8TileRows), "scratch rows");
  const uint32_t stride = PaddedInputs(p.in);
  // Requantize's clamp bounds, in float, as the reference computes them.
  const float lo_f = static_cast<float>(lo - zp), hi_f = static_cast<float>(127 - zp);
  for (uint32_t r0 = 0; r0 < batch; r0 += Isa::kTileRows) {
    const uint32_t rows = batch - r0 < Isa::kTileRows ? batch - r0 : Isa::kTileRows;
    // u = x + 128 (the sign bit flipped), zero padded to a multiple of 4,
    // in whole vectors: the tile's 4-byte loads must find them in the store
    // buffer as parts of one wider store (byte stores cannot forward to a
    // wider load, which stalled every load of a small layer).
    for (uint32_t r = 0; r < rows; ++r)
      Isa::FlipSign(x + static_cast<size_t>(r0 + r) * p.in, p.in, p.scratch + r * stride, stride);
    int8_t* yr = y + static_cast<size_t>(r0) * p.out;
    switch (rows) {
      case 1: RowsS8<Isa, 1>(p, p.scratch, stride, yr, zp, lo_f, hi_f); break;
      case 2: RowsS8<Isa, 2>(p, p.scratch, stride, yr, zp, lo_f, hi_f); break;
      case 3: RowsS8<Isa, 3>(p, p.scratch, stride, yr, zp, lo_f, hi_f); break;
      case 4: RowsS8<Isa, 4>(p, p.scratch, stride, yr, zp, lo_f, hi_f); break;
      case 5: RowsS8<Isa, (5 <= Isa::kTileRows ? 5 : 1)>(p, p.scratch, stride, yr, zp, lo_f, hi_f); break;
      case 6: RowsS8<Isa, (6 <= Isa::kTileRows ? 6 : 1)>(p, p.scratch, stride, yr, zp, lo_f, hi_f); break;
      case 7: RowsS8<Isa, (7 <= Isa::kTileRows ? 7 : 1)>(p, p.scratch, stride, yr, zp, lo_f, hi_f); break;
      default: RowsS8<Isa, Isa::kTileRows>(p, p.scratch, stride, yr, zp, lo_f, hi_f); break;
    }
  }
}

}  // namespace
}  // namespace mtan
