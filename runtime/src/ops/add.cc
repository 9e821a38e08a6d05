// ADD: elementwise sum of two activations of one shape and dtype.
#include <math.h>

#include "internal.h"
#include "ops/kernel_util.h"
#include "ops/params.h"
#if MTAN_HAS_XNNPACK
#include <xnnpack.h>
#endif

namespace mtan {
namespace {

double FloatBound(VerifyContext& c, uint32_t o) {
  const auto* ins = c.m->operators()->Get(o)->inputs();
  return c.InputBound(ins->Get(0)) + c.InputBound(ins->Get(1));
}

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  if (op.int8) {
    const int8_t* a = static_cast<const int8_t*>(op.in0);
    const int8_t* b = static_cast<const int8_t*>(op.in1);
    int8_t* y = static_cast<int8_t*>(op.out);
    const float sa = op.scale_in0 / op.scale_out, sb = op.scale_in1 / op.scale_out;
    for (size_t i = 0; i < n; ++i) {
      const float v = static_cast<float>(a[i] - op.zp_in0) * sa +
                      static_cast<float>(b[i] - op.zp_in1) * sb;
      y[i] = Requantize(v, op.zp_out, -128, 127);
    }
  } else {
    const float* a = static_cast<const float*>(op.in0);
    const float* b = static_cast<const float*>(op.in1);
    float* y = static_cast<float*>(op.out);
    for (size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
  }
  return MTAN_OK;
}

#if MTAN_HAS_XNNPACK
bool XnnHandles(const OpState&) { return true; }

int XnnCreate(const OpState& op, void** x) {
  xnn_operator_t* out = reinterpret_cast<xnn_operator_t*>(x);
  return op.int8 ? xnn_create_add_nd_qs8(static_cast<int8_t>(op.zp_in0), op.scale_in0,
                                         static_cast<int8_t>(op.zp_in1), op.scale_in1,
                                         static_cast<int8_t>(op.zp_out), op.scale_out, -128, 127,
                                         0, out)
                 : xnn_create_add_nd_f32(-INFINITY, INFINITY, 0, out);
}

int XnnSetup(const OpState& op, void* x, uint32_t batch, void* pool) {
  xnn_operator_t xo = static_cast<xnn_operator_t>(x);
  pthreadpool_t tp = static_cast<pthreadpool_t>(pool);
  const size_t shape[2] = {batch, op.in_channels};
  return op.int8 ? xnn_setup_add_nd_qs8(xo, 2, shape, 2, shape, static_cast<const int8_t*>(op.in0),
                                        static_cast<const int8_t*>(op.in1),
                                        static_cast<int8_t*>(op.out), tp)
                 : xnn_setup_add_nd_f32(xo, 2, shape, 2, shape, static_cast<const float*>(op.in0),
                                        static_cast<const float*>(op.in1),
                                        static_cast<float*>(op.out), tp);
}
#endif

}  // namespace

extern const OpRegistration kAddOp = {
    fb::OpCode::ADD, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/true, /*reads_ids=*/false, VerifyBinaryElementwise,
    FloatBound, MTAN_ERROR_BUFFER, nullptr, Eval, nullptr, MTAN_XNNPACK_OP(XnnHandles, XnnCreate, XnnSetup, nullptr)};

}  // namespace mtan
