// The contract between the host writer (host/: graph builder,
// quantizer, memory planner) and the runtime (verifier, loader, kernels):
// facts both sides must compute the same way, written once, the way
// format.h shares the checksum. Header-only, no heap, usable in both.
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mtan_generated.h"

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace mtan {

// Bytes of one element of `d` (0 for a value outside the enum).
inline constexpr uint32_t DTypeBytes(fb::DType d) {
  return d == fb::DType::INT8                                ? 1
         : (d == fb::DType::FLOAT32 || d == fb::DType::INT32) ? 4
         : d == fb::DType::INT64                              ? 8
                                                              : 0;
}

// Values per row of an activation: the product of its per-row shape (rank 1
// to MTAN_MAX_RANK - 1); dimensions were checked to be >= 1. A template so
// that writer and reader share one formula: the runtime instantiates it only
// on the file's flatbuffers::Vector<int32_t> (read in place: no allocation,
// nothing thrown); the host writer calls it on its object-API shape vector.
template <typename Shape>
inline uint64_t RowElements(const Shape& shape) {
  uint64_t n = 1;
  for (uint32_t d = 0; d < shape.size(); ++d) n *= static_cast<uint64_t>(shape[d]);
  return n;
}

// Per-row bytes an activation of `elements` values takes in the memory
// plan: rounded up to 4 so that every offset stays 4-byte aligned.
inline constexpr uint64_t RowBytes(fb::DType d, uint64_t elements) {
  return (elements * DTypeBytes(d) + 3) / 4 * 4;
}

// The int8 output quantization of LOGISTIC (1/256, -128) and TANH (1/128, 0)
// is fixed (XNNPACK's, and TFLite's): [0, 1) and [-1, 1) on all 256 codes.
struct FixedQuantization {
  float scale;
  int32_t zero_point;
};
constexpr FixedQuantization kLogisticOutput = {1.0f / 256, -128};
constexpr FixedQuantization kTanhOutput = {1.0f / 128, 0};
// The fixed output quantization of `code`, or false when it has none.
inline bool FixedOutputQuantization(fb::OpCode code, FixedQuantization* q) {
  if (code == fb::OpCode::LOGISTIC) return *q = kLogisticOutput, true;
  if (code == fb::OpCode::TANH) return *q = kTanhOutput, true;
  return false;
}

// An int8 FULLY_CONNECTED accumulates in int32. Per output channel,
// |bias| + kMaxInputStep * sum |w| must not exceed kAccumulatorLimit, or the
// sum can wrap (in XNNPACK too): kMaxInputStep bounds |x - zero_point| for
// int8 x, and also XNNPACK's bias with the zero point folded in. The writer
// saturates biases to this bound; the verifier refuses files beyond it.
constexpr uint64_t kAccumulatorLimit = 2147483647u;  // INT32_MAX
constexpr uint32_t kMaxInputStep = 256;
inline constexpr uint64_t AccumulatorBound(uint64_t sum_abs_weights, uint64_t abs_bias) {
  return abs_bias + kMaxInputStep * sum_abs_weights;
}

// Tensor lifetimes, in operator indices: an activation lives from the
// operator writing it to the last operator reading it; a task output lives
// to the end of a run (index = number of operators). The model input is the
// caller's rows and is not planned; a tensor input is copied into the arena
// before operator 0 and lives from 0 to its last reader. Two activations
// whose lifetimes overlap never share arena bytes.
struct Lifetime {
  int32_t first = -1;  // the producer (-1: none)
  int32_t last = -1;
};
inline void LifetimeWritten(Lifetime* l, int32_t op) {
  l->first = op;
  if (l->last < op) l->last = op;
}
inline void LifetimeRead(Lifetime* l, int32_t op) {
  if (l->last < op) l->last = op;
}
inline void LifetimeTaskOutput(Lifetime* l, int32_t num_ops) { l->last = num_ops; }
// A tensor input is live for the whole run, as a task output is: its bytes
// hold the caller's (mapped) ids until the next run, so an operator run
// alone afterwards (mtan_operator_run: the bench's per-operator times) reads
// them, not whatever a later operator wrote there. Costs 8 bytes per id per
// row of arena.
inline Lifetime TensorInputLifetime(int32_t num_ops) { return Lifetime{0, num_ops}; }
inline bool LiveTogether(const Lifetime& a, const Lifetime& b) {
  return a.first <= b.last && b.first <= a.last;
}

// Ids (schema: IdMap). -1 is padding under every map. A string id is the
// XXH64 (seed 0) of its bytes as int64, -1 moved to -2 so that no string
// pads (mtan_hash_id, which apps call, and the trainer's hashing are this).
constexpr int64_t kPaddingId = -1;
inline int64_t HashId(const void* bytes, size_t n) {
  const int64_t h = static_cast<int64_t>(XXH64(bytes, n, 0));
  return h == kPaddingId ? -2 : h;
}
// VOCABULARY: the row of `key` among `count` ascending keys (read without
// assuming alignment), or `count`, the out-of-vocabulary row.
inline int64_t VocabularyRow(const uint8_t* keys, uint32_t count, int64_t key) {
  uint32_t lo = 0, hi = count;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    int64_t k;
    memcpy(&k, keys + static_cast<size_t>(mid) * 8, 8);
    if (k < key) lo = mid + 1;
    else hi = mid;
  }
  if (lo < count) {
    int64_t k;
    memcpy(&k, keys + static_cast<size_t>(lo) * 8, 8);
    if (k == key) return lo;
  }
  return count;
}
// The rows a tensor input's ids map to: the vocabulary's keys plus the
// out-of-vocabulary row, the hash buckets, or 0 when the ids are rows already
// (then only the run can check them against a table).
inline uint32_t TensorInputRows(const fb::Model* m, const fb::TensorInput* in) {
  if (in->id_map() == fb::IdMap::HASHED) return in->hash_buckets();
  if (in->id_map() == fb::IdMap::VOCABULARY)
    return m->buffers()->Get(in->vocabulary())->data()->size() / 8 + 1;
  return 0;
}
// HASHED: the bucket of `id`.
inline int64_t HashedRow(int64_t id, uint32_t buckets) {
  return static_cast<int64_t>(static_cast<uint64_t>(id) % buckets);
}

}  // namespace mtan
