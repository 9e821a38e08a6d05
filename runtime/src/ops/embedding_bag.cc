// EMBEDDING_BAG: inputs [ids:int64 [L] (a tensor input), table [V, D] (a
// constant)]; output f32 [D], the table rows the ids name pooled by the
// operator's combiner, as torch.nn.EmbeddingBag (mode 'sum' or 'mean') over
// one bag per row. The ids are rows by now: the tensor input's IdMap ran when
// the caller's ids were copied in (model.cc). Id -1 pads a bag shorter than
// L (an all-padding bag gives zeros); any other row outside 0..V-1 fails the
// run with MTAN_ERROR_INPUT_ID. The table is float32, or int8 row-wise (a
// scale and a zero point per row, FBGEMM's and ExecuTorch's layout), summed
// in float. Reference kernel only: XNNPACK has no embedding lookup.
#include <string.h>

#include "internal.h"

namespace mtan {
namespace {

struct EmbeddingBagParams {
  const void* table;     // [rows, out_channels] float32 or int8, in the model bytes
  const float* scales;   // int8: one per row
  const int32_t* zero_points;  // int8: one per row, or null (all 0)
  uint32_t rows;
  int32_t ids_tensor;    // for the error message
  bool mean;
};

mtan_status Verify(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  if (ins->size() != 2) return c.Fail(o, "needs [ids, table]");
  const uint32_t ids = ins->Get(0), table = ins->Get(1), out = op->outputs()->Get(0);
  const fb::DType td = c.T(table)->dtype();
  if (!c.IsActivation(ids) || c.T(ids)->dtype() != fb::DType::INT64 || c.IsActivation(table) ||
      (td != fb::DType::FLOAT32 && td != fb::DType::INT8) || c.T(out)->dtype() != fb::DType::FLOAT32)
    return c.Fail(o, "takes int64 ids (a tensor input) and a float32 or int8 table constant to "
                  "float32");
  const auto* shape = c.T(table)->shape();
  if (shape->size() != 2 || static_cast<uint32_t>(shape->Get(1)) != c.Channels(out))
    return SetError(MTAN_ERROR_SHAPE, "operator %u (EMBEDDING_BAG): table '%s' is not [rows, %u]",
                    o, c.Name(table), c.Channels(out));
  const uint32_t rows = static_cast<uint32_t>(shape->Get(0));
  if (c.IdRows(ids) > rows)
    return SetError(MTAN_ERROR_SHAPE, "operator %u (EMBEDDING_BAG): the ids of '%s' map to %u "
                    "rows, table '%s' has %u", o, c.Name(ids), c.IdRows(ids), c.Name(table), rows);
  if (td == fb::DType::INT8 && c.T(table)->quantization()->scale()->size() != rows)
    return SetError(MTAN_ERROR_QUANTIZATION, "operator %u (EMBEDDING_BAG): int8 table '%s' needs "
                    "one scale per row", o, c.Name(table));
  return MTAN_OK;
}

// |y| <= L * the largest |table row|_1 (an int8 table: L * 255 steps of its
// largest scale, a code's farthest from its zero point).
double FloatBound(VerifyContext& c, uint32_t o) {
  const auto* ins = c.m->operators()->Get(o)->inputs();
  const double length = c.Channels(ins->Get(0));
  const fb::Tensor* t = c.T(ins->Get(1));
  if (t->dtype() == fb::DType::FLOAT32) return length * c.ConstantBound(ins->Get(1));
  double scale = 0;
  for (float s : *t->quantization()->scale()) scale = s > scale ? s : scale;
  return length * 255.0 * scale;
}

void Prepare(PrepareContext& c, OpState* st) {
  const fb::Tensor* table = c.Tensor(c.op->inputs()->Get(1));
  EmbeddingBagParams& p = Params<EmbeddingBagParams>(*st);
  p.table = c.m->buffers()->Get(table->buffer())->data()->data();
  p.scales = nullptr;
  p.zero_points = nullptr;
  if (table->dtype() == fb::DType::INT8) {
    const fb::Quantization* q = table->quantization();
    p.scales = q->scale()->data();
    // (Verified: one zero point per scale, within int8's range.)
    if (q->zero_point() && q->zero_point()->size() != 0) p.zero_points = q->zero_point()->data();
  }
  p.rows = static_cast<uint32_t>(table->shape()->Get(0));
  p.ids_tensor = c.op->inputs()->Get(0);
  p.mean = c.op->combiner() == fb::Combiner::MEAN;
}

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model* model) {
  const EmbeddingBagParams& p = Params<EmbeddingBagParams>(op);
  const uint32_t length = op.in_channels, width = op.out_channels;
  for (uint32_t r = 0; r < batch; ++r) {
    // Ids were copied from the caller's bytes: read them without assuming alignment.
    const uint8_t* ids = static_cast<const uint8_t*>(op.in0) + static_cast<size_t>(r) * length * 8;
    float* y = static_cast<float*>(op.out) + static_cast<size_t>(r) * width;
    for (uint32_t k = 0; k < width; ++k) y[k] = 0.0f;
    uint32_t count = 0;
    for (uint32_t l = 0; l < length; ++l) {
      int64_t id;
      memcpy(&id, ids + static_cast<size_t>(l) * 8, sizeof id);
      if (id == kPaddingId) continue;
      if (id < 0 || id >= static_cast<int64_t>(p.rows)) {
        const auto* name = model->tensors()->Get(p.ids_tensor)->name();
        return SetError(MTAN_ERROR_INPUT_ID, "row %u, id %u of '%s' is %lld: outside 0..%u (or -1, "
                        "padding)", r, l, name ? name->c_str() : "", static_cast<long long>(id),
                        p.rows - 1);
      }
      ++count;
      const size_t at = static_cast<size_t>(id) * width;
      if (p.scales == nullptr) {
        const float* row = static_cast<const float*>(p.table) + at;
        for (uint32_t k = 0; k < width; ++k) y[k] += row[k];
      } else {
        const int8_t* row = static_cast<const int8_t*>(p.table) + at;
        const float s = p.scales[id];
        const int32_t zp = p.zero_points ? p.zero_points[id] : 0;
        for (uint32_t k = 0; k < width; ++k) y[k] += s * static_cast<float>(row[k] - zp);
      }
    }
    if (p.mean && count > 1)
      for (uint32_t k = 0; k < width; ++k) y[k] /= static_cast<float>(count);
  }
  return MTAN_OK;
}

}  // namespace

extern const OpRegistration kEmbeddingBagOp = {
    fb::OpCode::EMBEDDING_BAG, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/false,
    /*reads_ids=*/true, Verify, FloatBound, MTAN_ERROR_BUFFER, Prepare, Eval, nullptr,
    MTAN_XNNPACK_OP(nullptr, nullptr, nullptr, nullptr)};

}  // namespace mtan
