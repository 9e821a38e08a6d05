// LOGISTIC: y = 1 / (1 + e^-x). Int8 output fixed at scale 1/256, zero point
// -128 (contract.h); int8 on the reference backend is a 256-entry table.
#include <math.h>

#include "contract.h"
#include "internal.h"
#include "ops/kernel_util.h"
#include "ops/params.h"
#if MTAN_HAS_XNNPACK
#include <xnnpack.h>
#endif

namespace mtan {

mtan_status VerifyLookupOp(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  const int32_t out = op->outputs()->Get(0);
  const fb::DType xd = c.T(ins->Get(0))->dtype(), yd = c.T(out)->dtype();
  if (ins->size() != 1 || !c.IsActivation(ins->Get(0)) || xd == fb::DType::INT32 || yd != xd)
    return c.Fail(o, "needs one int8 or float32 activation");
  if (!c.SameShape(ins->Get(0), out)) return c.ShapesDiffer(o);
  FixedQuantization want;
  if (yd == fb::DType::INT8 && FixedOutputQuantization(op->opcode(), &want) &&
      (c.Scale(out) != want.scale || c.ZeroPoint(out) != want.zero_point))
    return SetError(MTAN_ERROR_QUANTIZATION, "tensor '%s': int8 %s output must have scale %g and "
                    "zero point %d", c.Name(out), fb::EnumNameOpCode(op->opcode()),
                    static_cast<double>(want.scale), want.zero_point);
  return MTAN_OK;
}

void PrepareLookup(PrepareContext& c, OpState* st, void (*build)(float, int32_t, int8_t*)) {
  Params<LookupParams>(*st).lut = nullptr;
  if (!st->int8 || c.xnnpack) return;  // XNNPACK builds its own table
  int8_t* lut = static_cast<int8_t*>(c.Carve(256));
  if (c.load) build(st->scale_in0, st->zp_in0, lut);
  Params<LookupParams>(*st).lut = lut;
}

void LookupS8(const OpState& op, uint32_t batch) {
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  const int8_t* x = static_cast<const int8_t*>(op.in0);
  const int8_t* lut = Params<LookupParams>(op).lut;
  int8_t* y = static_cast<int8_t*>(op.out);
  for (size_t i = 0; i < n; ++i) y[i] = lut[static_cast<uint8_t>(x[i])];
}

void BuildSigmoidLut(float in_scale, int32_t in_zp, int8_t* lut) {
  for (int32_t q = -128; q <= 127; ++q) {
    const float x = in_scale * static_cast<float>(q - in_zp);
    lut[static_cast<uint8_t>(static_cast<int8_t>(q))] =
        Requantize(1.0f / (1.0f + expf(-x)) / kLogisticOutput.scale, kLogisticOutput.zero_point,
                   -128, 127);
  }
}

namespace {

double FloatBound(VerifyContext&, uint32_t) { return 1.0; }

void Prepare(PrepareContext& c, OpState* st) { PrepareLookup(c, st, BuildSigmoidLut); }

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
  if (op.int8) {
    LookupS8(op, batch);
    return MTAN_OK;
  }
  const size_t n = static_cast<size_t>(batch) * op.in_channels;
  const float* a = static_cast<const float*>(op.in0);
  float* y = static_cast<float*>(op.out);
  for (size_t i = 0; i < n; ++i) y[i] = 0.5f + 0.5f * TanhF32(0.5f * a[i]);
  return MTAN_OK;
}

#if MTAN_HAS_XNNPACK
// Int8 only: Debian's XNNPACK (2022-02) f32 sigmoid returns NaN for |x|
// above about 5.3e26, inside the verifier's float bounds; our kernel does not.
bool XnnHandles(const OpState& op) { return op.int8; }

int XnnCreate(const OpState& op, void** x) {
  return xnn_create_sigmoid_nc_qs8(op.in_channels, op.in_channels, op.in_channels,
                                   static_cast<int8_t>(op.zp_in0), op.scale_in0,
                                   static_cast<int8_t>(kLogisticOutput.zero_point),
                                   kLogisticOutput.scale, -128, 127, 0,
                                   reinterpret_cast<xnn_operator_t*>(x));
}

int XnnSetup(const OpState& op, void* x, uint32_t batch, void* pool) {
  return xnn_setup_sigmoid_nc_qs8(static_cast<xnn_operator_t>(x), batch,
                                  static_cast<const int8_t*>(op.in0), static_cast<int8_t*>(op.out),
                                  static_cast<pthreadpool_t>(pool));
}
#endif

}  // namespace

extern const OpRegistration kLogisticOp = {
    fb::OpCode::LOGISTIC, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/true, /*reads_ids=*/false, VerifyLookupOp,
    FloatBound, MTAN_ERROR_BUFFER, Prepare, Eval, nullptr, MTAN_XNNPACK_OP(XnnHandles, XnnCreate, XnnSetup, nullptr)};

}  // namespace mtan
