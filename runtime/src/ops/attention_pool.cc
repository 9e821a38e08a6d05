// ATTENTION_POOL: inputs [score_1..score_T ([1] each), z_1..z_T ([C] each)];
// output [C]: c = sum_s softmax_s(score_s) * z_s, the softmax taken in float
// (int8: on dequantized scores, and the pooled vector requantized to the
// output scale).
#include <math.h>

#include "internal.h"
#include "ops/kernel_util.h"
#include "ops/params.h"

namespace mtan {
namespace {

mtan_status Verify(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  const int32_t out = op->outputs()->Get(0);
  const fb::DType yd = c.T(out)->dtype();
  const uint32_t n = ins->size();
  if (n < 2 || n % 2 != 0 || n / 2 > MTAN_MAX_TASKS)
    return c.Fail(o, "needs T scores then T values, T at most MTAN_MAX_TASKS");
  for (uint32_t k = 0; k < n; ++k) {
    const uint32_t t = ins->Get(k);
    if (!c.IsActivation(t) || c.T(t)->dtype() != yd || yd == fb::DType::INT32)
      return c.Fail(o, "inputs and output must be activations of one dtype");
    const uint32_t want = k < n / 2 ? 1u : c.Channels(out);
    if (c.Channels(t) != want)
      return SetError(MTAN_ERROR_SHAPE, "operator %u: input %u '%s' has %u channels, wants %u", o,
                      k, c.Name(t), c.Channels(t), want);
  }
  return MTAN_OK;
}

// A convex combination of the values.
double FloatBound(VerifyContext& c, uint32_t o) {
  return c.MaxInputBound(o, c.m->operators()->Get(o)->inputs()->size() / 2);
}

void Prepare(PrepareContext& c, OpState* st) {
  const auto* ins = c.op->inputs();
  const uint32_t n = ins->size();
  const void** ptrs = static_cast<const void**>(c.Carve(sizeof(void*) * n));
  float* scales = static_cast<float*>(c.Carve(sizeof(float) * n));
  int32_t* zps = static_cast<int32_t*>(c.Carve(sizeof(int32_t) * n));
  if (c.load) {
    for (uint32_t k = 0; k < n; ++k) {
      ptrs[k] = c.Activation(ins->Get(k));
      scales[k] = c.Scale(ins->Get(k));
      zps[k] = c.ZeroPoint(ins->Get(k));
    }
  }
  Params<AttentionPoolParams>(*st) = {n, ptrs, scales, zps};
}

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
  const AttentionPoolParams& p = Params<AttentionPoolParams>(op);
  const uint32_t t = p.inputs / 2, c = op.out_channels;
  for (uint32_t r = 0; r < batch; ++r) {
    float e[MTAN_MAX_TASKS];  // the verifier bounds T
    float max_e = -INFINITY;
    for (uint32_t s = 0; s < t; ++s) {
      e[s] = op.int8 ? p.scales[s] * static_cast<float>(
                                         static_cast<const int8_t*>(p.ptrs[s])[r] - p.zps[s])
                     : static_cast<const float*>(p.ptrs[s])[r];
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
          const int8_t* z = static_cast<const int8_t*>(p.ptrs[t + s]) + at;
          const float w = e[s] * p.scales[t + s];
          const int32_t zp = p.zps[t + s];
          for (uint32_t k = 0; k < m; ++k) acc[k] += w * static_cast<float>(z[k] - zp);
        } else {
          const float* z = static_cast<const float*>(p.ptrs[t + s]) + at;
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
  return MTAN_OK;
}

}  // namespace

extern const OpRegistration kAttentionPoolOp = {
    fb::OpCode::ATTENTION_POOL, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/false, /*reads_ids=*/false, Verify,
    FloatBound, MTAN_ERROR_BUFFER, Prepare, Eval, nullptr, MTAN_XNNPACK_OP(nullptr, nullptr, nullptr, nullptr)};

}  // namespace mtan
