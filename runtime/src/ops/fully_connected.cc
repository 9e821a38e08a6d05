// FULLY_CONNECTED: inputs [x, weights [O,I], bias [O]]; output [y]. int8:
// per-channel symmetric int8 weights, int32 bias at scale s_x*s_w[o]. Or all
// float32. RELU may be fused. (The int32 accumulator bound of int8 files is
// checked over the whole model, in verify.cc: contract.h states it.)
#include <math.h>

#include "internal.h"
#include "ops/fully_connected_s8_x86.h"
#include "ops/kernel_util.h"
#include "ops/params.h"
#if MTAN_HAS_XNNPACK
#include <xnnpack.h>
#endif

namespace mtan {
namespace {

mtan_status Verify(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  if (ins->size() != 3) return c.Fail(o, "needs [x, weights, bias]");
  const uint32_t xi = ins->Get(0), wi = ins->Get(1), bi = ins->Get(2), out = op->outputs()->Get(0);
  if (!c.IsActivation(xi) || c.IsActivation(wi) || c.IsActivation(bi))
    return c.Fail(o, "x is an activation, weights and bias constants");
  const fb::Tensor* w = c.T(wi);
  const fb::Tensor* b = c.T(bi);
  const fb::DType xd = c.T(xi)->dtype(), yd = c.T(out)->dtype();
  const fb::DType want_b = xd == fb::DType::INT8 ? fb::DType::INT32 : fb::DType::FLOAT32;
  if (xd == fb::DType::INT32 || w->dtype() != xd || yd != xd || b->dtype() != want_b)
    return c.Fail(o, "dtypes must be int8/int8/int32->int8 or all float32");
  if (w->shape()->size() != 2 || b->shape()->size() != 1 ||
      static_cast<uint32_t>(w->shape()->Get(1)) != c.Channels(xi) ||
      static_cast<uint32_t>(w->shape()->Get(0)) != c.Channels(out) ||
      b->shape()->Get(0) != w->shape()->Get(0))
    return SetError(MTAN_ERROR_SHAPE, "operator %u: weights '%s' [O,I] do not match x [%u], "
                    "bias and y [%u]", o, c.Name(wi), c.Channels(xi), c.Channels(out));
  if (xd == fb::DType::INT8) {
    if (w->quantization()->scale()->size() != static_cast<uint32_t>(w->shape()->Get(0)))
      return SetError(MTAN_ERROR_QUANTIZATION, "weights '%s' need one scale per output channel",
                      c.Name(wi));
    const auto* zps = w->quantization()->zero_point();
    for (uint32_t k = 0; zps && k < zps->size(); ++k)
      if (zps->Get(k) != 0)
        return SetError(MTAN_ERROR_QUANTIZATION, "weights '%s' must be symmetric (zero point 0)",
                        c.Name(wi));
  }
  return MTAN_OK;
}

// |y| <= max |b| + |x| max_o sum |w_o|
double FloatBound(VerifyContext& c, uint32_t o) {
  const auto* ins = c.m->operators()->Get(o)->inputs();
  return c.ConstantBound(ins->Get(2)) + c.InputBound(ins->Get(0)) * c.ConstantBound(ins->Get(1));
}

void Prepare(PrepareContext& c, OpState* st) {
  const auto* ins = c.op->inputs();
  const fb::Tensor* w = c.Tensor(ins->Get(1));
  const fb::Tensor* b = c.Tensor(ins->Get(2));
  FullyConnectedParams& p = Params<FullyConnectedParams>(*st);
  p.weights = c.m->buffers()->Get(w->buffer())->data()->data();
  p.bias = c.m->buffers()->Get(b->buffer())->data()->data();
  p.weight_scales = st->int8 ? w->quantization()->scale()->data() : nullptr;
  p.requant = nullptr;
  p.packed = nullptr;
  p.kernel = nullptr;
  // XNNPACK computes its own requantization scales.
  if (!st->int8 || c.xnnpack) return;
  const uint32_t in = st->in_channels, out = st->out_channels;
  // The VNNI kernels read whole blocks of 16 channels: zeros pad the scales.
  const uint32_t scales = c.native ? PaddedChannels(out) : out;
  float* r = static_cast<float*>(c.Carve(sizeof(float) * static_cast<uint64_t>(scales)));
  if (c.load)
    for (uint32_t k = 0; k < scales; ++k)
      r[k] = k < out ? st->scale_in0 * p.weight_scales[k] / st->scale_out : 0.0f;
  p.requant = r;
  if (!c.native) return;
  FcS8Packed* k = static_cast<FcS8Packed*>(c.Carve(sizeof(FcS8Packed)));
  uint8_t* packed = static_cast<uint8_t*>(c.Carve(PackedWeightBytes(in, out)));
  int32_t* bias = static_cast<int32_t*>(c.Carve(sizeof(int32_t) * uint64_t{scales}));
  uint8_t* scratch = static_cast<uint8_t*>(c.Carve(uint64_t{kFcS8TileRows} * PaddedInputs(in)));
  if (!c.load) return;
  PackFcS8(static_cast<const int8_t*>(p.weights), static_cast<const int32_t*>(p.bias), in, out,
           st->zp_in0, packed, bias);
  *k = FcS8Packed{packed, bias, r, scratch, in, out};
  uint32_t isas = 0;
  p.kernel = CpuInt8FcKernels(&isas)[0].run;  // native_handles: isas > 0
  p.packed = k;
}

// The int8 instances on a core with VNNI.
bool NativeHandles(const OpState& op) {
  uint32_t isas = 0;
  CpuInt8FcKernels(&isas);
  return op.int8 && isas > 0;
}

void EvalS8(const OpState& op, uint32_t batch) {
  const FullyConnectedParams& p = Params<FullyConnectedParams>(op);
  const uint32_t in = op.in_channels, out = op.out_channels;
  const int8_t* w = static_cast<const int8_t*>(p.weights);
  const int32_t* bias = static_cast<const int32_t*>(p.bias);
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
      y[o] = Requantize(static_cast<float>(static_cast<int32_t>(acc)) * p.requant[o], op.zp_out,
                        lo, 127);
    }
  }
}

void EvalF32(const OpState& op, uint32_t batch) {
  const FullyConnectedParams& p = Params<FullyConnectedParams>(op);
  const uint32_t in = op.in_channels, out = op.out_channels;
  const float* w = static_cast<const float*>(p.weights);
  const float* bias = static_cast<const float*>(p.bias);
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

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model*) {
  const FullyConnectedParams& p = Params<FullyConnectedParams>(op);
  if (p.kernel != nullptr)
    p.kernel(*p.packed, static_cast<const int8_t*>(op.in0), static_cast<int8_t*>(op.out), batch,
             op.zp_out, op.relu ? op.zp_out : -128);
  else
    op.int8 ? EvalS8(op, batch) : EvalF32(op, batch);
  return MTAN_OK;
}

#if MTAN_HAS_XNNPACK
bool XnnHandles(const OpState&) { return true; }

// Int8 with per-channel scales is a 1x1 qc8 convolution in this XNNPACK.
int XnnCreate(const OpState& op, void** x) {
  const FullyConnectedParams& p = Params<FullyConnectedParams>(op);
  xnn_operator_t* out = reinterpret_cast<xnn_operator_t*>(x);
  if (op.int8)
    return xnn_create_convolution2d_nhwc_qc8(
        0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, op.in_channels, op.out_channels, op.in_channels,
        op.out_channels, static_cast<int8_t>(op.zp_in0), op.scale_in0, p.weight_scales,
        static_cast<const int8_t*>(p.weights), static_cast<const int32_t*>(p.bias),
        static_cast<int8_t>(op.zp_out), op.scale_out,
        static_cast<int8_t>(op.relu ? op.zp_out : -128), 127, 0, out);
  return xnn_create_fully_connected_nc_f32(
      op.in_channels, op.out_channels, op.in_channels, op.out_channels,
      static_cast<const float*>(p.weights), static_cast<const float*>(p.bias),
      op.relu ? 0.0f : -INFINITY, INFINITY, 0, out);
}

int XnnSetup(const OpState& op, void* x, uint32_t batch, void* pool) {
  xnn_operator_t xo = static_cast<xnn_operator_t>(x);
  pthreadpool_t tp = static_cast<pthreadpool_t>(pool);
  return op.int8 ? xnn_setup_convolution2d_nhwc_qc8(xo, batch, 1, 1,
                                                    static_cast<const int8_t*>(op.in0),
                                                    static_cast<int8_t*>(op.out), tp)
                 : xnn_setup_fully_connected_nc_f32(xo, batch, static_cast<const float*>(op.in0),
                                                    static_cast<float*>(op.out), tp);
}

// Debian's XNNPACK (2022) computes float FULLY_CONNECTED wrongly on a
// threadpool for some shapes on some CPUs: on an AMD EPYC (Zen, family 23)
// with 2 threads, in = 10 and out = 32 gave channels 16..31 wrong by up to
// 13 at batch 1..8 (tests/runtime/threadpool_test.cc). Int8 is right, and
// float models are not what ships: float runs on the calling thread alone.
bool XnnUsesPool(const OpState& op) { return op.int8; }
#endif

}  // namespace

extern const OpRegistration kFullyConnectedOp = {
    fb::OpCode::FULLY_CONNECTED, /*reads_model_input=*/false, /*fuses_relu=*/true, /*any_rank=*/false, /*reads_ids=*/false, Verify,
    FloatBound, MTAN_ERROR_BUFFER, Prepare, Eval, NativeHandles, MTAN_XNNPACK_OP(XnnHandles, XnnCreate, XnnSetup, XnnUsesPool)};

}  // namespace mtan
