// MUL: elementwise product of two activations of one shape and dtype.
#include <math.h>

#include "internal.h"
#include "ops/kernel_util.h"
#include "ops/params.h"
#if MTAN_HAS_XNNPACK
#include <xnnpack.h>
#endif

namespace mtan {

mtan_status VerifyBinaryElementwise(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  const int32_t out = op->outputs()->Get(0);
  const fb::DType xd = c.T(ins->Get(0))->dtype(), yd = c.T(out)->dtype();
  if (ins->size() != 2 || !c.IsActivation(ins->Get(0)) || !c.IsActivation(ins->Get(1)) ||
      xd == fb::DType::INT32 || c.T(ins->Get(1))->dtype() != xd || yd != xd)
    return c.Fail(o, "needs two activations of one dtype (int8 or float32)");
  if (!c.SameShape(ins->Get(0), out) || !c.SameShape(ins->Get(1), out)) return c.ShapesDiffer(o);
  return MTAN_OK;
}

namespace {

double FloatBound(VerifyContext& c, uint32_t o) {
  const auto* ins = c.m->operators()->Get(o)->inputs();
  return c.InputBound(ins->Get(0)) * c.InputBound(ins->Get(1));
}

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  if (op.int8) {
    const int8_t* a = static_cast<const int8_t*>(op.in0);
    const int8_t* b = static_cast<const int8_t*>(op.in1);
    int8_t* y = static_cast<int8_t*>(op.out);
    const float scale = op.scale_in0 * op.scale_in1 / op.scale_out;
    for (size_t i = 0; i < n; ++i) {
      const int32_t prod = (a[i] - op.zp_in0) * (b[i] - op.zp_in1);
      y[i] = Requantize(static_cast<float>(prod) * scale, op.zp_out, -128, 127);
    }
  } else {
    const float* a = static_cast<const float*>(op.in0);
    const float* b = static_cast<const float*>(op.in1);
    float* y = static_cast<float*>(op.out);
    for (size_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
  }
  return MTAN_OK;
}

#if MTAN_HAS_XNNPACK
bool XnnHandles(const OpState&) { return true; }

int XnnCreate(const OpState& op, void** x) {
  xnn_operator_t* out = reinterpret_cast<xnn_operator_t*>(x);
  return op.int8 ? xnn_create_multiply_nd_qs8(static_cast<int8_t>(op.zp_in0), op.scale_in0,
                                              static_cast<int8_t>(op.zp_in1), op.scale_in1,
                                              static_cast<int8_t>(op.zp_out), op.scale_out, -128,
                                              127, 0, out)
                 : xnn_create_multiply_nd_f32(-INFINITY, INFINITY, 0, out);
}

int XnnSetup(const OpState& op, void* x, uint32_t batch, void* pool) {
  xnn_operator_t xo = static_cast<xnn_operator_t>(x);
  pthreadpool_t tp = static_cast<pthreadpool_t>(pool);
  const size_t shape[2] = {batch, op.in_channels};
  return op.int8 ? xnn_setup_multiply_nd_qs8(xo, 2, shape, 2, shape,
                                             static_cast<const int8_t*>(op.in0),
                                             static_cast<const int8_t*>(op.in1),
                                             static_cast<int8_t*>(op.out), tp)
                 : xnn_setup_multiply_nd_f32(xo, 2, shape, 2, shape,
                                             static_cast<const float*>(op.in0),
                                             static_cast<const float*>(op.in1),
                                             static_cast<float*>(op.out), tp);
}
#endif

}  // namespace

extern const OpRegistration kMulOp = {
    fb::OpCode::MUL, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/true, /*reads_ids=*/false, VerifyBinaryElementwise,
    FloatBound, MTAN_ERROR_BUFFER, nullptr, Eval, nullptr, MTAN_XNNPACK_OP(XnnHandles, XnnCreate, XnnSetup, nullptr)};

}  // namespace mtan
