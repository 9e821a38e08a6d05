// CONCAT: inputs [x_1 [C_1], ..., x_n [C_n]] (activations of one dtype);
// output [C_1 + ... + C_n], the inputs side by side in order. Int8: each
// input keeps its own quantization and is requantized to the output's,
// round(s_i / s_y * (q - zp_i)) + zp_y (a copy when they match). Reference
// kernel only: this XNNPACK has no concatenation of differently quantized
// inputs.
#include <string.h>

#include "internal.h"
#include "ops/kernel_util.h"

namespace mtan {
namespace {

// Enough for an embedding bag's fields beside the dense features.
constexpr uint32_t kMaxConcatInputs = 64;

struct ConcatParams {
  uint32_t inputs;
  const void* const* ptrs;    // each input's activation
  const uint32_t* channels;   // per-row elements of each input
  const float* multipliers;   // int8: s_i / s_y
  const int32_t* zps;         // int8: zp_i
};

mtan_status Verify(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  const int32_t out = op->outputs()->Get(0);
  const fb::DType yd = c.T(out)->dtype();
  if (ins->size() > kMaxConcatInputs) return c.Fail(o, "has more than 64 inputs");
  uint64_t total = 0;
  for (uint32_t k = 0; k < ins->size(); ++k) {
    const uint32_t t = ins->Get(k);
    if (!c.IsActivation(t) || c.T(t)->dtype() != yd || yd == fb::DType::INT32)
      return c.Fail(o, "inputs and output must be activations of one dtype (int8 or float32)");
    total += c.Channels(t);
  }
  if (total != c.Channels(out))
    return SetError(MTAN_ERROR_SHAPE, "operator %u (CONCAT): inputs have %llu channels in all, "
                    "output '%s' has %u", o, static_cast<unsigned long long>(total), c.Name(out),
                    c.Channels(out));
  return MTAN_OK;
}

// A copy of the inputs: the largest of their bounds.
double FloatBound(VerifyContext& c, uint32_t o) { return c.MaxInputBound(o, 0); }

void Prepare(PrepareContext& c, OpState* st) {
  const auto* ins = c.op->inputs();
  const uint32_t n = ins->size();
  const void** ptrs = static_cast<const void**>(c.Carve(sizeof(void*) * n));
  uint32_t* channels = static_cast<uint32_t*>(c.Carve(sizeof(uint32_t) * n));
  float* multipliers = static_cast<float*>(c.Carve(sizeof(float) * n));
  int32_t* zps = static_cast<int32_t*>(c.Carve(sizeof(int32_t) * n));
  if (c.load) {
    for (uint32_t k = 0; k < n; ++k) {
      ptrs[k] = c.Activation(ins->Get(k));
      channels[k] = static_cast<uint32_t>(c.Tensor(ins->Get(k))->shape()->Get(0));
      multipliers[k] = c.Scale(ins->Get(k)) / st->scale_out;
      zps[k] = c.ZeroPoint(ins->Get(k));
    }
  }
  Params<ConcatParams>(*st) = {n, ptrs, channels, multipliers, zps};
}

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
  const ConcatParams& p = Params<ConcatParams>(op);
  const size_t bytes = op.int8 ? 1 : 4;
  for (uint32_t r = 0; r < batch; ++r) {
    uint8_t* y = static_cast<uint8_t*>(op.out) + static_cast<size_t>(r) * op.out_channels * bytes;
    for (uint32_t k = 0; k < p.inputs; ++k) {
      const uint32_t c = p.channels[k];
      const uint8_t* x = static_cast<const uint8_t*>(p.ptrs[k]) + static_cast<size_t>(r) * c * bytes;
      if (!op.int8 || (p.multipliers[k] == 1.0f && p.zps[k] == op.zp_out)) {
        memcpy(y, x, c * bytes);
      } else {
        const int8_t* xs = reinterpret_cast<const int8_t*>(x);
        int8_t* ys = reinterpret_cast<int8_t*>(y);
        for (uint32_t i = 0; i < c; ++i)
          ys[i] = Requantize(static_cast<float>(xs[i] - p.zps[k]) * p.multipliers[k], op.zp_out,
                             -128, 127);
      }
      y += c * bytes;
    }
  }
  return MTAN_OK;
}

}  // namespace

extern const OpRegistration kConcatOp = {
    fb::OpCode::CONCAT, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/false, /*reads_ids=*/false, Verify, FloatBound,
    MTAN_ERROR_BUFFER, Prepare, Eval, nullptr, MTAN_XNNPACK_OP(nullptr, nullptr, nullptr, nullptr)};

}  // namespace mtan
