// QUANTIZE: inputs [x:f32]; output [y:int8|f32]. x the model input:
// standardises with Model.inputs' mean/std, then quantizes when y is int8
// (folded into one multiply-add). x a float32 activation (a float layer
// inside an int8 graph): y is int8, round(x / s_y) + zp_y.
#include <math.h>

#include "internal.h"
#include "ops/kernel_util.h"

namespace mtan {
namespace {

struct QuantizeParams {
  const float* mul;  // per feature: v = x * mul + add
  const float* add;
};

mtan_status Verify(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  const int32_t x = ins->Get(0), y = op->outputs()->Get(0);
  const fb::DType xd = c.T(x)->dtype(), yd = c.T(y)->dtype();
  if (ins->size() != 1) return c.Fail(o, "needs one input");
  if (x != c.m->input_tensor()) {
    // Back into int8 after a float layer.
    if (!c.IsActivation(x) || xd != fb::DType::FLOAT32 || yd != fb::DType::INT8)
      return c.Fail(o, "input must be the model input, or a float32 activation with an int8 output");
  } else if (yd == fb::DType::INT32) {
    return c.Fail(o, "output must be int8 or float32");
  }
  if (!c.SameShape(x, y)) return c.ShapesDiffer(o);
  return MTAN_OK;
}

double FloatBound(VerifyContext&, uint32_t) { return MTAN_STANDARDIZED_LIMIT; }  // clamped

void Prepare(PrepareContext& c, OpState* st) {
  float* p = static_cast<float*>(c.Carve(sizeof(float) * 2 * static_cast<uint64_t>(st->in_channels)));
  // The model input comes from the caller's rows (in0 null); a float
  // activation (a float layer inside an int8 graph) from the arena.
  const bool from_rows = c.op->inputs()->Get(0) == c.m->input_tensor();
  if (from_rows) st->in0 = nullptr;
  if (c.load) {
    // v = (x - mean) / std / s, folded into one multiply-add (an activation
    // has mean 0 and std 1). The zero point is added after rounding, as for
    // every int8 output (folded in, an odd zero point would flip how ties
    // round).
    const float inv_s = st->int8 ? 1.0f / st->scale_out : 1.0f;
    for (uint32_t i = 0; i < st->in_channels; ++i) {
      const fb::Input* in = from_rows ? c.m->inputs()->Get(i) : nullptr;
      p[i] = inv_s / (in ? in->std() : 1.0f);
      p[st->in_channels + i] = -(in ? in->mean() : 0.0f) * p[i];
    }
  }
  Params<QuantizeParams>(*st) = {p, p ? p + st->in_channels : nullptr};
}

mtan_status Eval(const OpState& op, uint32_t batch, const float* rows, const fb::Model* model) {
  const uint32_t n = op.in_channels;
  const float* mul = Params<QuantizeParams>(op).mul;
  const float* add = Params<QuantizeParams>(op).add;
  // A float activation (op.in0) needs no check: Requantize clamps inf and NaN.
  const float* src = op.in0 ? static_cast<const float*>(op.in0) : rows;
  for (uint32_t r = 0; r < batch; ++r) {
    const float* x = src + static_cast<size_t>(r) * n;
    for (uint32_t i = 0; i < n && !op.in0; ++i) {
      if (!isfinite(x[i])) {
        const auto* name = model->inputs()->Get(i)->name();
        return SetError(MTAN_ERROR_INPUT_NOT_FINITE, "row %u, feature %u '%s' is %g", r, i,
                        name ? name->c_str() : "", static_cast<double>(x[i]));
      }
    }
    if (op.int8) {
      int8_t* y = static_cast<int8_t*>(op.out) + static_cast<size_t>(r) * n;
      for (uint32_t i = 0; i < n; ++i) y[i] = Requantize(x[i] * mul[i] + add[i], op.zp_out, -128, 127);
    } else {
      // Standardised features clamp to +-MTAN_STANDARDIZED_LIMIT: the bound
      // the verifier proved keeps every float tensor finite. Written so that
      // NaN (0 * inf from a denormal std) goes to the low end, as Requantize.
      constexpr float kLimit = MTAN_STANDARDIZED_LIMIT;
      float* y = static_cast<float*>(op.out) + static_cast<size_t>(r) * n;
      for (uint32_t i = 0; i < n; ++i) {
        float v = x[i] * mul[i] + add[i];
        v = v > -kLimit ? v : -kLimit;
        y[i] = v < kLimit ? v : kLimit;
      }
    }
  }
  return MTAN_OK;
}

}  // namespace

extern const OpRegistration kQuantizeOp = {
    fb::OpCode::QUANTIZE, /*reads_model_input=*/true, /*fuses_relu=*/false, /*any_rank=*/true, /*reads_ids=*/false, Verify, FloatBound,
    MTAN_ERROR_BUFFER, Prepare, Eval, nullptr, MTAN_XNNPACK_OP(nullptr, nullptr, nullptr, nullptr)};

}  // namespace mtan
