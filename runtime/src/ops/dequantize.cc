// DEQUANTIZE: int8 -> float32, scale * (q - zero_point).
#include "internal.h"

namespace mtan {
namespace {

mtan_status Verify(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  const int32_t out = op->outputs()->Get(0);
  if (ins->size() != 1 || !c.IsActivation(ins->Get(0)) ||
      c.T(ins->Get(0))->dtype() != fb::DType::INT8 || c.T(out)->dtype() != fb::DType::FLOAT32)
    return c.Fail(o, "is int8 -> float32");
  if (!c.SameShape(ins->Get(0), out)) return c.ShapesDiffer(o);
  return MTAN_OK;
}

// scale * |q - zero_point|, at most 255 steps (a too large scale is a
// quantization error).
double FloatBound(VerifyContext& c, uint32_t o) {
  return 255.0 * static_cast<double>(c.Scale(c.m->operators()->Get(o)->inputs()->Get(0)));
}

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  const int8_t* x = static_cast<const int8_t*>(op.in0);
  float* y = static_cast<float*>(op.out);
  for (size_t i = 0; i < n; ++i) y[i] = op.scale_in0 * static_cast<float>(x[i] - op.zp_in0);
  return MTAN_OK;
}

}  // namespace

extern const OpRegistration kDequantizeOp = {
    fb::OpCode::DEQUANTIZE, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/true, /*reads_ids=*/false, Verify, FloatBound,
    MTAN_ERROR_QUANTIZATION, nullptr, Eval, nullptr, MTAN_XNNPACK_OP(nullptr, nullptr, nullptr, nullptr)};

}  // namespace mtan
