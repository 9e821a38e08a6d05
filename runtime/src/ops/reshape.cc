// RESHAPE: the same row values under another per-row shape (row-major,
// channels last), e.g. [H*W*C] -> [H, W, C] before a convolution. Same dtype,
// element count and quantization. A copy on both backends: rows are
// contiguous, so it is one memcpy of batch rows (XNNPACK's copy operator
// would be the same memcpy).
#include <string.h>

#include "contract.h"
#include "internal.h"

namespace mtan {
namespace {

mtan_status Verify(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  const int32_t out = op->outputs()->Get(0);
  if (ins->size() != 1 || !c.IsActivation(ins->Get(0)) ||
      c.T(ins->Get(0))->dtype() != c.T(out)->dtype())
    return c.Fail(o, "takes one activation and keeps its dtype");
  const uint32_t x = static_cast<uint32_t>(ins->Get(0));
  if (c.Channels(x) != c.Channels(static_cast<uint32_t>(out)))
    return c.Fail(o, "changes the number of elements per row");
  if (c.T(out)->dtype() == fb::DType::INT8 &&
      (c.Scale(x) != c.Scale(static_cast<uint32_t>(out)) ||
       c.ZeroPoint(x) != c.ZeroPoint(static_cast<uint32_t>(out))))
    return c.Fail(o, "changes the quantization");
  return MTAN_OK;
}

double FloatBound(VerifyContext& c, uint32_t o) { return c.MaxInputBound(o, 0); }

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
  const size_t bytes = static_cast<size_t>(batch) * op.in_channels * (op.int8 ? 1 : 4);
  memcpy(op.out, op.in0, bytes);
  return MTAN_OK;
}

}  // namespace

extern const OpRegistration kReshapeOp = {
    fb::OpCode::RESHAPE, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/true, /*reads_ids=*/false,
    Verify, FloatBound, MTAN_ERROR_BUFFER, nullptr, Eval, nullptr,
    MTAN_XNNPACK_OP(nullptr, nullptr, nullptr, nullptr)};

}  // namespace mtan
