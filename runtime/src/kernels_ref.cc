// Portable scalar kernels for every operator, int8 and float32: the whole
// backend of an MTAN_WITH_XNNPACK=OFF build, and where the golden cases come
// from. Int8 arithmetic follows XNNPACK's: int32 accumulation, then float
// requantization rounded to nearest-even (the rule in schema/mtan.fbs). The
// test oracle is not this file but tests/runtime/oracle.h, written from the
// schema's definitions; both backends are compared with it.
#include <math.h>
#include <string.h>

#include "internal.h"

namespace mtan {
namespace {

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

mtan_status QuantizeRows(const OpState& op, uint32_t batch, const float* rows,
                         const fb::Model* model) {
  const uint32_t n = op.in_channels;
  const float* mul = op.scales;
  const float* add = op.scales + n;
  // A float activation (op.in0) needs no check: Requantize clamps inf and NaN.
  const float* src = op.in0 ? static_cast<const float*>(op.in0) : rows;
  for (uint32_t r = 0; r < batch; ++r) {
    const float* x = src + static_cast<size_t>(r) * n;
    for (uint32_t i = 0; i < n && !op.in0; ++i) {
      if (!isfinite(x[i])) {
        const auto* name = model->inputs()->Get(i)->name();
        return SetError(MTAN_ERROR_INPUT_NOT_FINITE, "row %u, feature %u '%s' is %g", r, i,
                        name ? name->c_str() : "", static_cast<double>(x[i]));
      }
    }
    if (op.int8) {
      int8_t* y = static_cast<int8_t*>(op.out) + static_cast<size_t>(r) * n;
      for (uint32_t i = 0; i < n; ++i) y[i] = Requantize(x[i] * mul[i] + add[i], op.zp_out, -128, 127);
    } else {
      // Standardised features clamp to +-MTAN_STANDARDIZED_LIMIT: the bound
      // the verifier proved keeps every float tensor finite. Written so that
      // NaN (0 * inf from a denormal std) goes to the low end, as Requantize.
      constexpr float kLimit = MTAN_STANDARDIZED_LIMIT;
      float* y = static_cast<float*>(op.out) + static_cast<size_t>(r) * n;
      for (uint32_t i = 0; i < n; ++i) {
        float v = x[i] * mul[i] + add[i];
        v = v > -kLimit ? v : -kLimit;
        y[i] = v < kLimit ? v : kLimit;
      }
    }
  }
  return MTAN_OK;
}

void FullyConnectedS8(const OpState& op, uint32_t batch) {
  const uint32_t in = op.in_channels, out = op.out_channels;
  const int8_t* w = static_cast<const int8_t*>(op.weights);
  const int32_t* bias = static_cast<const int32_t*>(op.bias);
  const int32_t lo = op.relu ? op.zp_out : -128;
  for (uint32_t r = 0; r < batch; ++r) {
    const int8_t* x = static_cast<const int8_t*>(op.in0) + static_cast<size_t>(r) * in;
    int8_t* y = static_cast<int8_t*>(op.out) + static_cast<size_t>(r) * out;
    for (uint32_t o = 0; o < out; ++o) {
      const int8_t* wo = w + static_cast<size_t>(o) * in;
      // Wrapping int32 sums, as XNNPACK's: a hostile bias or width can
      // overflow them, which must not be undefined behaviour.
      uint32_t acc = static_cast<uint32_t>(bias[o]);
      for (uint32_t i = 0; i < in; ++i) acc += static_cast<uint32_t>((x[i] - op.zp_in0) * wo[i]);
      y[o] = Requantize(static_cast<float>(static_cast<int32_t>(acc)) * op.scales[o], op.zp_out,
                        lo, 127);
    }
  }
}

void FullyConnectedF32(const OpState& op, uint32_t batch) {
  const uint32_t in = op.in_channels, out = op.out_channels;
  const float* w = static_cast<const float*>(op.weights);
  const float* bias = static_cast<const float*>(op.bias);
  for (uint32_t r = 0; r < batch; ++r) {
    const float* x = static_cast<const float*>(op.in0) + static_cast<size_t>(r) * in;
    float* y = static_cast<float*>(op.out) + static_cast<size_t>(r) * out;
    for (uint32_t o = 0; o < out; ++o) {
      const float* wo = w + static_cast<size_t>(o) * in;
      float acc = bias[o];
      for (uint32_t i = 0; i < in; ++i) acc += x[i] * wo[i];
      y[o] = op.relu && acc < 0.0f ? 0.0f : acc;
    }
  }
}

void LookupS8(const OpState& op, uint32_t batch) {
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  const int8_t* x = static_cast<const int8_t*>(op.in0);
  int8_t* y = static_cast<int8_t*>(op.out);
  for (size_t i = 0; i < n; ++i) y[i] = op.lut[static_cast<uint8_t>(x[i])];
}

void ElementwiseS8(const OpState& op, uint32_t batch, bool multiply) {
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  const int8_t* a = static_cast<const int8_t*>(op.in0);
  const int8_t* b = static_cast<const int8_t*>(op.in1);
  int8_t* y = static_cast<int8_t*>(op.out);
  if (multiply) {
    const float scale = op.scale_in0 * op.scale_in1 / op.scale_out;
    for (size_t i = 0; i < n; ++i) {
      const int32_t prod = (a[i] - op.zp_in0) * (b[i] - op.zp_in1);
      y[i] = Requantize(static_cast<float>(prod) * scale, op.zp_out, -128, 127);
    }
  } else {
    const float sa = op.scale_in0 / op.scale_out, sb = op.scale_in1 / op.scale_out;
    for (size_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(a[i] - op.zp_in0) * sa +
                      static_cast<float>(b[i] - op.zp_in1) * sb;
      y[i] = Requantize(v, op.zp_out, -128, 127);
    }
  }
}

void ElementwiseF32(const OpState& op, uint32_t batch) {
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  const float* a = static_cast<const float*>(op.in0);
  const float* b = static_cast<const float*>(op.in1);
  float* y = static_cast<float*>(op.out);
  switch (op.code) {
    case fb::OpCode::MUL: for (size_t i = 0; i < n; ++i) y[i] = a[i] * b[i]; break;
    case fb::OpCode::ADD: for (size_t i = 0; i < n; ++i) y[i] = a[i] + b[i]; break;
    case fb::OpCode::LOGISTIC: for (size_t i = 0; i < n; ++i) y[i] = 0.5f + 0.5f * TanhF32(0.5f * a[i]); break;
    case fb::OpCode::TANH: for (size_t i = 0; i < n; ++i) y[i] = TanhF32(a[i]); break;
    default: break;
  }
}

// c = sum_s softmax_s(score_s) * z_s, the softmax in float (int8: on
// dequantized scores, and the pooled vector requantized to the output scale).
void AttentionPool(const OpState& op, uint32_t batch) {
  const uint32_t t = op.pool_inputs / 2, c = op.out_channels;
  for (uint32_t r = 0; r < batch; ++r) {
    float e[MTAN_MAX_TASKS];  // the verifier bounds T
    float max_e = -INFINITY;
    for (uint32_t s = 0; s < t; ++s) {
      e[s] = op.int8 ? op.pool_scales[s] *
                           static_cast<float>(static_cast<const int8_t*>(op.pool_ptrs[s])[r] -
                                              op.pool_zps[s])
                     : static_cast<const float*>(op.pool_ptrs[s])[r];
      max_e = e[s] > max_e ? e[s] : max_e;
    }
    float sum = 0.0f;
    for (uint32_t s = 0; s < t; ++s) {
      e[s] = ExpClamped(e[s] - max_e);
      sum += e[s];
    }
    for (uint32_t s = 0; s < t; ++s) e[s] /= sum;
    // Accumulate value by value (contiguous), in float, a block at a time.
    constexpr uint32_t kBlock = 256;
    float acc[kBlock];
    for (uint32_t k0 = 0; k0 < c; k0 += kBlock) {
      const uint32_t m = c - k0 < kBlock ? c - k0 : kBlock;
      for (uint32_t k = 0; k < m; ++k) acc[k] = 0.0f;
      for (uint32_t s = 0; s < t; ++s) {
        const size_t at = static_cast<size_t>(r) * c + k0;
        if (op.int8) {
          const int8_t* z = static_cast<const int8_t*>(op.pool_ptrs[t + s]) + at;
          const float w = e[s] * op.pool_scales[t + s];
          const int32_t zp = op.pool_zps[t + s];
          for (uint32_t k = 0; k < m; ++k) acc[k] += w * static_cast<float>(z[k] - zp);
        } else {
          const float* z = static_cast<const float*>(op.pool_ptrs[t + s]) + at;
          for (uint32_t k = 0; k < m; ++k) acc[k] += e[s] * z[k];
        }
      }
      if (op.int8) {
        int8_t* y = static_cast<int8_t*>(op.out) + static_cast<size_t>(r) * c + k0;
        const float inv = 1.0f / op.scale_out;
        for (uint32_t k = 0; k < m; ++k) y[k] = Requantize(acc[k] * inv, op.zp_out, -128, 127);
      } else {
        float* y = static_cast<float*>(op.out) + static_cast<size_t>(r) * c + k0;
        for (uint32_t k = 0; k < m; ++k) y[k] = acc[k];
      }
    }
  }
}

void SoftmaxF32(const OpState& op, uint32_t batch) {
  const uint32_t n = op.in_channels;
  for (uint32_t r = 0; r < batch; ++r) {
    const float* x = static_cast<const float*>(op.in0) + static_cast<size_t>(r) * n;
    float* y = static_cast<float*>(op.out) + static_cast<size_t>(r) * n;
    float max_x = x[0];
    for (uint32_t i = 1; i < n; ++i) max_x = x[i] > max_x ? x[i] : max_x;
    float sum = 0.0f;
    for (uint32_t i = 0; i < n; ++i) {
      y[i] = ExpClamped(x[i] - max_x);
      sum += y[i];
    }
    for (uint32_t i = 0; i < n; ++i) y[i] /= sum;
  }
}

void DequantizeS8(const OpState& op, uint32_t batch) {
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  const int8_t* x = static_cast<const int8_t*>(op.in0);
  float* y = static_cast<float*>(op.out);
  for (size_t i = 0; i < n; ++i) y[i] = op.scale_in0 * static_cast<float>(x[i] - op.zp_in0);
}

void BuildLut(float in_scale, int32_t in_zp, float out_scale, int32_t out_zp, bool tanh_not_sigmoid,
              int8_t* lut) {
  for (int32_t q = -128; q <= 127; ++q) {
    const float x = in_scale * static_cast<float>(q - in_zp);
    const float y = tanh_not_sigmoid ? tanhf(x) : 1.0f / (1.0f + expf(-x));
    lut[static_cast<uint8_t>(static_cast<int8_t>(q))] = Requantize(y / out_scale, out_zp, -128, 127);
  }
}

}  // namespace

void BuildSigmoidLut(float in_scale, int32_t in_zp, int8_t* lut) {
  BuildLut(in_scale, in_zp, 1.0f / 256, -128, false, lut);
}
void BuildTanhLut(float in_scale, int32_t in_zp, int8_t* lut) {
  BuildLut(in_scale, in_zp, 1.0f / 128, 0, true, lut);
}

mtan_status RunReference(const OpState& op, uint32_t batch, const float* rows,
                         const fb::Model* model) {
  switch (op.code) {
    case fb::OpCode::QUANTIZE: return QuantizeRows(op, batch, rows, model);
    case fb::OpCode::FULLY_CONNECTED:
      op.int8 ? FullyConnectedS8(op, batch) : FullyConnectedF32(op, batch);
      break;
    case fb::OpCode::LOGISTIC:
    case fb::OpCode::TANH:
      op.int8 ? LookupS8(op, batch) : ElementwiseF32(op, batch);
      break;
    case fb::OpCode::MUL:
    case fb::OpCode::ADD:
      op.int8 ? ElementwiseS8(op, batch, op.code == fb::OpCode::MUL) : ElementwiseF32(op, batch);
      break;
    case fb::OpCode::ATTENTION_POOL: AttentionPool(op, batch); break;
    case fb::OpCode::SOFTMAX: SoftmaxF32(op, batch); break;
    case fb::OpCode::DEQUANTIZE: DequantizeS8(op, batch); break;
  }
  return MTAN_OK;
}

}  // namespace mtan
