// Arithmetic shared by the reference kernels of several operators: the int8
// output rule of schema/mtan.fbs and branch-free exp/tanh. Int8 arithmetic
// follows XNNPACK's: int32 accumulation, then float requantization rounded
// to nearest-even. The test oracle is not this file but
// tests/runtime/oracle.h, written from the schema's definitions.
#pragma once

#include <math.h>
#include <stdint.h>
#include <string.h>

namespace mtan {

// Clamps to [lo - zp, hi - zp] in float, rounds to nearest-even with the
// 1.5 * 2^23 magic bias (as XNNPACK's fp32 requantization does; exact for
// |v| < 2^22, and branch-free so loops vectorize), then adds the zero point.
inline int8_t Requantize(float v, int32_t zp, int32_t lo, int32_t hi) {
  const float lo_f = static_cast<float>(lo - zp), hi_f = static_cast<float>(hi - zp);
  // NaN (a hostile scale product such as 0 * inf) clamps to lo: a float to
  // int conversion of NaN would be undefined behaviour.
  v = v > lo_f ? v : lo_f;
  v = v < hi_f ? v : hi_f;
  const float rounded = (v + 12582912.0f) - 12582912.0f;
  return static_cast<int8_t>(static_cast<int32_t>(rounded) + zp);
}

// exp(x) for x in [-87, 0]: range reduction to 2^n * e^r, |r| <= ln2/2,
// and a degree-6 polynomial; relative error ~2e-7. Branch-free so that the
// loops calling it vectorize (libm's tanhf does not, and costs ~10x).
inline float ExpNonPositive(float x) {
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln2)
  const float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  memcpy(&scale, &bits, 4);
  return p * scale;
}

// exp(x) for any x <= 0 (and NaN, read as -87): for the few exponentials
// of a softmax, where the argument is not bounded.
inline float ExpClamped(float x) { return ExpNonPositive(x > -87.0f ? x : -87.0f); }

// tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); absolute error ~1e-7.
inline float TanhF32(float x) {
  // |x| clamped to 9 (tanh(9) rounds to 1) on the bits: for non-negative
  // floats integer order is float order, and an integer min vectorizes.
  int32_t bits;
  memcpy(&bits, &x, 4);
  bits &= 0x7fffffff;
  bits = bits < 0x41100000 ? bits : 0x41100000;
  float a;
  memcpy(&a, &bits, 4);
  const float e = ExpNonPositive(-2.0f * a);
  return copysignf((1.0f - e) / (1.0f + e), x);
}

}  // namespace mtan
