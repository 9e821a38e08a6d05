// SOFTMAX over each row, float32 only (our kernel: this XNNPACK has none
// over a row of this layout).
#include "internal.h"
#include "ops/kernel_util.h"

namespace mtan {
namespace {

mtan_status Verify(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  const int32_t out = op->outputs()->Get(0);
  if (ins->size() != 1 || !c.IsActivation(ins->Get(0)) ||
      c.T(ins->Get(0))->dtype() != fb::DType::FLOAT32 || c.T(out)->dtype() != fb::DType::FLOAT32)
    return c.Fail(o, "is float32 only");
  if (!c.SameShape(ins->Get(0), out)) return c.ShapesDiffer(o);
  return MTAN_OK;
}

double FloatBound(VerifyContext&, uint32_t) { return 1.0; }

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
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
  return MTAN_OK;
}

}  // namespace

extern const OpRegistration kSoftmaxOp = {
    fb::OpCode::SOFTMAX, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/false, /*reads_ids=*/false, Verify, FloatBound,
    MTAN_ERROR_BUFFER, nullptr, Eval, nullptr, MTAN_XNNPACK_OP(nullptr, nullptr, nullptr, nullptr)};

}  // namespace mtan
