// Int8 FULLY_CONNECTED on x86 cores with VNNI (vpdpbusd: 4 u8 x s8 products
// summed into each int32 lane), our own kernels beside XNNPACK's: Debian's
// XNNPACK (2022) has none for x86, and there int8 ran slower than float32.
//
// Arithmetic: the reference kernel's (fully_connected.cc), bit for bit.
// vpdpbusd takes unsigned activations, so the kernel reads u = x + 128 and
// the packed bias is b - (128 + zp_x) * sum_i w[o][i]: then
// sum_i u_i w_i + b' = sum_i (x_i - zp_x) w_i + b exactly, in the same
// wrapping int32 sums (vpdpbusd wraps; it is not the saturating vpdpbusds).
// The requantization is the reference's Requantize, lane by lane.
//
// Which ISA runs is decided here once per process (CpuInt8FcKernels), from
// what the CPU and OS support; the default backend takes it at load.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace mtan {

// Packed weights: output channels in blocks of 16, each block K/4 groups of
// [16 channels][4 inputs] (64 bytes, one 512-bit vector), zero padded.
constexpr uint32_t kFcS8Block = 16;
// Rows one tile reads: the kernel's activation scratch is this many rows of
// the padded width, converted to u8 once per tile.
constexpr uint32_t kFcS8TileRows = 8;

// Everything a kernel reads, prepared at load.
struct FcS8Packed {
  const uint8_t* weights;  // PackedWeightBytes(in, out)
  const int32_t* bias;     // PaddedChannels(out): b' above, 0 in the padding
  const float* requant;    // PaddedChannels(out): s_x * s_w[o] / s_y, 0 in the padding
  uint8_t* scratch;        // kFcS8TileRows * PaddedInputs(in)
  uint32_t in, out;
};

// y[r][o] = Requantize(float(b'[o] + sum_i u[r][i] w[o][i]) * requant[o], zp_y, lo, 127)
// for r < batch; x is [batch][in] int8, y [batch][out].
using FcS8Kernel = void (*)(const FcS8Packed& p, const int8_t* x, int8_t* y, uint32_t batch,
                            int32_t zp_y, int32_t lo);

struct FcS8Isa {
  const char* name;  // "avx512vnni", "avxvnni"
  FcS8Kernel run;
};

// The ISAs this CPU and OS run, fastest first (none on other architectures
// or older x86 cores); *count_out of them.
const FcS8Isa* CpuInt8FcKernels(uint32_t* count_out);

// Internal linkage (static): the ISA files are compiled with other -m flags,
// and a shared inline copy could reach a CPU without them.
static inline uint32_t PaddedInputs(uint32_t in) { return (in + 3) / 4 * 4; }
static inline uint32_t PaddedChannels(uint32_t out) { return (out + kFcS8Block - 1) / kFcS8Block * kFcS8Block; }
static inline uint64_t PackedWeightBytes(uint32_t in, uint32_t out) {
  return static_cast<uint64_t>(PaddedInputs(in)) * PaddedChannels(out);
}

// Fills `weights` (PackedWeightBytes) and `bias` (PaddedChannels) from the
// file's weights [out][in] and int32 bias, for input zero point zp_x.
void PackFcS8(const int8_t* w, const int32_t* b, uint32_t in, uint32_t out, int32_t zp_x,
              uint8_t* weights, int32_t* bias);

}  // namespace mtan
