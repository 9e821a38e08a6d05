// EMBEDDING_BAG: inputs [ids:int64 [L] (a tensor input), table:f32 [V, D]
// (a constant)]; output f32 [D], the sum of the table rows the ids name, as
// torch.nn.EmbeddingBag(mode='sum') over one bag per row. Id -1 pads a bag
// shorter than L; any other id outside 0..V-1 fails the run with
// MTAN_ERROR_INPUT_ID. Reference kernel only: XNNPACK has no embedding
// lookup. Issue 15 adds row-wise int8 tables, mean and per-id weights.
#include <string.h>

#include "internal.h"

namespace mtan {
namespace {

constexpr int64_t kPaddingId = -1;

struct EmbeddingBagParams {
  const float* table;  // [rows, out_channels], in the model bytes
  uint32_t rows;
  int32_t ids_tensor;  // for the error message
};

mtan_status Verify(VerifyContext& c, uint32_t o) {
  const fb::Operator* op = c.m->operators()->Get(o);
  const auto* ins = op->inputs();
  if (ins->size() != 2) return c.Fail(o, "needs [ids, table]");
  const uint32_t ids = ins->Get(0), table = ins->Get(1), out = op->outputs()->Get(0);
  if (!c.IsActivation(ids) || c.T(ids)->dtype() != fb::DType::INT64 || c.IsActivation(table) ||
      c.T(table)->dtype() != fb::DType::FLOAT32 || c.T(out)->dtype() != fb::DType::FLOAT32)
    return c.Fail(o, "takes int64 ids (a tensor input) and a float32 table constant to float32");
  const auto* shape = c.T(table)->shape();
  if (shape->size() != 2 || static_cast<uint32_t>(shape->Get(1)) != c.Channels(out))
    return SetError(MTAN_ERROR_SHAPE, "operator %u (EMBEDDING_BAG): table '%s' is not [rows, %u]",
                    o, c.Name(table), c.Channels(out));
  return MTAN_OK;
}

// |y| <= L * the largest |table row|_1.
double FloatBound(VerifyContext& c, uint32_t o) {
  const auto* ins = c.m->operators()->Get(o)->inputs();
  return static_cast<double>(c.Channels(ins->Get(0))) * c.ConstantBound(ins->Get(1));
}

void Prepare(PrepareContext& c, OpState* st) {
  const fb::Tensor* table = c.Tensor(c.op->inputs()->Get(1));
  Params<EmbeddingBagParams>(*st) = {
      reinterpret_cast<const float*>(c.m->buffers()->Get(table->buffer())->data()->data()),
      static_cast<uint32_t>(table->shape()->Get(0)), c.op->inputs()->Get(0)};
}

mtan_status Eval(const OpState& op, uint32_t batch, const float*, const fb::Model* model) {
  const EmbeddingBagParams& p = Params<EmbeddingBagParams>(op);
  const uint32_t length = op.in_channels, width = op.out_channels;
  for (uint32_t r = 0; r < batch; ++r) {
    // Ids come from the caller's bytes: read them without assuming alignment.
    const uint8_t* ids = static_cast<const uint8_t*>(op.in0) + static_cast<size_t>(r) * length * 8;
    float* y = static_cast<float*>(op.out) + static_cast<size_t>(r) * width;
    for (uint32_t k = 0; k < width; ++k) y[k] = 0.0f;
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
      const float* row = p.table + static_cast<size_t>(id) * width;
      for (uint32_t k = 0; k < width; ++k) y[k] += row[k];
    }
  }
  return MTAN_OK;
}

}  // namespace

extern const OpRegistration kEmbeddingBagOp = {
    fb::OpCode::EMBEDDING_BAG, /*reads_model_input=*/false, /*fuses_relu=*/false, /*any_rank=*/false,
    /*reads_ids=*/true, Verify, FloatBound, MTAN_ERROR_BUFFER, Prepare, Eval,
    MTAN_XNNPACK_OP(nullptr, nullptr, nullptr, nullptr)};

}  // namespace mtan
