// TANH. Int8 output fixed at scale 1/128, zero point 0 (contract.h); int8 on
// the reference backend is a 256-entry table. XNNPACK has no float tanh.
#include <math.h>

#include "contract.h"
#include "internal.h"
#include "ops/kernel_util.h"
#include "ops/params.h"
#if MTAN_HAS_XNNPACK
#include <xnnpack.h>
#endif

namespace mtan {

void BuildTanhLut(float in_scale, int32_t in_zp, int8_t* lut) {
  for (int32_t q = -128; q <= 127; ++q) {
    const float x = in_scale * static_cast<float>(q - in_zp);
    lut[static_cast<uint8_t>(static_cast<int8_t>(q))] =
        Requantize(tanhf(x) / kTanhOutput.scale, kTanhOutput.zero_point, -128, 127);
  }
}

namespace {

double FloatBound(VerifyContext&, uint32_t) { return 1.0; }

void Prepare(PrepareContext& c, OpState* st) { PrepareLookup(c, st, BuildTanhLut); }

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
  if (op.int8) {
    LookupS8(op, batch);
    return MTAN_OK;
  }
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  const float* a = static_cast<const float*>(op.in0);
  float* y = static_cast<float*>(op.out);
  for (size_t i = 0; i < n; ++i) y[i] = TanhF32(a[i]);
  return MTAN_OK;
}

#if MTAN_HAS_XNNPACK
bool XnnHandles(const OpState& op) { return op.int8; }

int XnnCreate(const OpState& op, void** x) {
  return xnn_create_tanh_nc_qs8(op.in_channels, op.in_channels, op.in_channels,
                                static_cast<int8_t>(op.zp_in0), op.scale_in0,
                                static_cast<int8_t>(kTanhOutput.zero_point), kTanhOutput.scale,
                                -128, 127, 0, reinterpret_cast<xnn_operator_t*>(x));
}

int XnnSetup(const OpState& op, void* x, uint32_t batch, void* pool) {
  return xnn_setup_tanh_nc_qs8(static_cast<xnn_operator_t>(x), batch,
                               static_cast<const int8_t*>(op.in0), static_cast<int8_t*>(op.out),
                               static_cast<pthreadpool_t>(pool));
}
#endif

}  // namespace

extern const OpRegistration kTanhOp = {
    fb::OpCode::TANH, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/true, /*reads_ids=*/false, VerifyLookupOp,
    FloatBound, MTAN_ERROR_BUFFER, Prepare, Eval, nullptr, MTAN_XNNPACK_OP(XnnHandles, XnnCreate, XnnSetup, nullptr)};

}  // namespace mtan
