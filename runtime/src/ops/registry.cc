// The operator registry: one line per operator, in fb::OpCode order.
#include "ops/registry.h"

namespace mtan {

extern const OpRegistration kQuantizeOp, kFullyConnectedOp, kLogisticOp, kTanhOp, kMulOp, kAddOp,
    kAttentionPoolOp, kSoftmaxOp, kDequantizeOp, kConcatOp, kReshapeOp, kEmbeddingBagOp;

namespace {

const OpRegistration* const kOps[] = {
    &kQuantizeOp,       // QUANTIZE
    &kFullyConnectedOp, // FULLY_CONNECTED
    &kLogisticOp,       // LOGISTIC
    &kTanhOp,           // TANH
    &kMulOp,            // MUL
    &kAddOp,            // ADD
    &kAttentionPoolOp,  // ATTENTION_POOL
    &kSoftmaxOp,        // SOFTMAX
    &kDequantizeOp,     // DEQUANTIZE
    &kConcatOp,         // CONCAT
    &kReshapeOp,        // RESHAPE
    &kEmbeddingBagOp,   // EMBEDDING_BAG
};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == static_cast<size_t>(fb::OpCode::MAX) + 1,
              "one registration per opcode of schema/mtan.fbs");

}  // namespace

// Each entry's own `code` is checked against its index by
// tests/runtime/registry_test.cc.
const OpRegistration* FindOp(fb::OpCode code) {
  const size_t i = static_cast<size_t>(code);
  return i < sizeof(kOps) / sizeof(kOps[0]) ? kOps[i] : nullptr;
}

}  // namespace mtan
