// Verification of untrusted model files. Order: container (identifier,
// footer, checksum), FlatBuffers verifier, version, limits, names, then
// semantic checks of tensors, operators (with the float32 value bounds),
// int8 accumulators, tasks, the memory plan and golden cases. Never trusts
// an index before checking it.
//
// Cost: about one pass over the file whatever it shares. Constants that
// share a buffer (same dtype and shape) are checked once, and the int8
// accumulator bound is computed once per weight, against every distinct bias
// it is paired with: a file where one weight feeds 4096 operators costs what
// one operator does (it used to cost 4096 passes, seconds per load).
//
// Working memory (~44 KB) is a static Checker, not the stack: the caller
// holds the load lock.
#include <float.h>
#include <math.h>
#include <string.h>

#include "contract.h"
#include "format.h"
#include "internal.h"

namespace mtan {
namespace {

const char* TensorName(const fb::Model* m, uint32_t t) {
  const fb::Tensor* tensor = m->tensors()->Get(t);
  return tensor->name() ? tensor->name()->c_str() : "(unnamed)";
}

const char* DTypeName(fb::DType d) {
  switch (d) {
    case fb::DType::FLOAT32: return "float32";
    case fb::DType::INT8: return "int8";
    case fb::DType::INT32: return "int32";
    case fb::DType::INT64: return "int64";
  }
  return "unknown";
}

bool FiniteScale(float s) { return isfinite(s) && s > 0.0f; }

// Per-row bytes of an activation, as the writer plans them.
uint64_t RowBytes(const fb::Tensor* t) {
  return mtan::RowBytes(t->dtype(), RowElements(*t->shape()));
}

// What is wrong with an input, task or class name, or nullptr: names are
// matched by apps (a kiosk's CSV columns, mtan_task_find's strcmp), so an
// embedded NUL ("spend\0v1" reads as "spend"), a control character or an
// empty name would match the wrong thing.
const char* NameProblem(const flatbuffers::String* s) {
  if (s == nullptr || s->size() == 0) return "is empty";
  if (s->size() > MTAN_MAX_NAME_BYTES) return "is longer than MTAN_MAX_NAME_BYTES";
  for (uint32_t i = 0; i < s->size(); ++i) {
    const uint8_t c = static_cast<uint8_t>(s->Get(i));
    if (c < 0x20 || c == 0x7f) return "holds a NUL or control character";
  }
  return nullptr;
}

bool SameName(const flatbuffers::String* a, const flatbuffers::String* b) {
  return a->size() == b->size() && memcmp(a->data(), b->data(), a->size()) == 0;
}

// Every name of `names` is valid and unique; `what` and `owner` name them in
// the message. Pairwise: at most MTAN_MAX_INPUTS names of MTAN_MAX_NAME_BYTES
// (tens of milliseconds at worst), and no memory.
mtan_status CheckNames(const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>* names,
                       const char* what, const char* owner) {
  for (uint32_t i = 0; i < names->size(); ++i) {
    if (const char* problem = NameProblem(names->Get(i)))
      return SetError(MTAN_ERROR_NAME, "%s%s %u: name %s", owner, what, i, problem);
    for (uint32_t j = 0; j < i; ++j)
      if (SameName(names->Get(i), names->Get(j)))
        return SetError(MTAN_ERROR_NAME, "%s%s %u and %u are both named '%s'", owner, what, j, i,
                        names->Get(i)->c_str());
  }
  return MTAN_OK;
}

// Value bounds of float32 tensors are powers of two, kept as the exponent e
// of |value| <= 2^e. A tensor that could exceed 2^127 (near FLT_MAX) is
// refused: then no float tensor can overflow to infinity, and no infinity
// can make a NaN (inf - inf, 0 * inf), on any backend.
constexpr int kMaxBoundExp = 127;
constexpr int16_t kNoBound = INT16_MIN;  // not computed (constants: on first use)

int BoundExp(double v) {  // smallest e >= -127 with v <= 2^e; v finite, >= 0
  if (!(v > 0x1p-127)) return -127;
  int e = 0;
  const double mantissa = frexp(v, &e);  // v = mantissa * 2^e, mantissa in [0.5, 1)
  return mantissa == 0.5 ? e - 1 : e;
}
double BoundValue(int e) { return ldexp(1.0, e); }

struct Checker : VerifyContext {
  // Producer operator of each activation (-1: none), and last reader.
  int16_t producer[MTAN_MAX_TENSORS];
  int16_t last_use[MTAN_MAX_TENSORS];
  // Scratch marks: tensors in a task's plan; checked weights and biases.
  uint8_t mark[MTAN_MAX_TENSORS];
  // 1 for the tensors of Model.tensor_inputs.
  uint8_t is_tensor_input[MTAN_MAX_TENSORS];
  // same_data (VerifyContext) points into same_data_storage: for constants,
  // the first tensor holding the same data (buffer, dtype and shape), so
  // that checks and statistics of shared data run once. bound points into
  // bound_storage: for float32 activations, the exponent of their value
  // bound; for constants (at their same_data index), float weights' largest
  // row sum of |w|, float biases' largest |b| (up to about 2^149: 2^20
  // weights near FLT_MAX).
  // Operators of one weight with distinct biases (CheckAccumulators).
  uint16_t paired[MTAN_MAX_OPERATORS];

  int16_t same_data_storage[MTAN_MAX_TENSORS];
  int16_t bound_storage[MTAN_MAX_TENSORS];

  // Model.tensor_inputs: names valid and unique among all inputs, each an
  // existing tensor, listed once (its dtype and shape: CheckTensor).
  mtan_status CheckTensorInputs() {
    memset(is_tensor_input, 0, sizeof(is_tensor_input));
    const auto* list = m->tensor_inputs();
    if (list == nullptr) return MTAN_OK;
    if (list->size() > MTAN_MAX_TENSOR_INPUTS)
      return SetError(MTAN_ERROR_LIMIT, "%u tensor inputs (limit %d)", list->size(),
                      MTAN_MAX_TENSOR_INPUTS);
    for (uint32_t j = 0; j < list->size(); ++j) {
      const fb::TensorInput* in = list->Get(j);
      if (const char* problem = NameProblem(in->name()))
        return SetError(MTAN_ERROR_NAME, "tensor input %u: name %s", j, problem);
      for (uint32_t i = 0; i < m->inputs()->size(); ++i)
        if (SameName(in->name(), m->inputs()->Get(i)->name()))
          return SetError(MTAN_ERROR_NAME, "tensor input %u and input %u are both named '%s'", j,
                          i, in->name()->c_str());
      for (uint32_t i = 0; i < j; ++i)
        if (SameName(in->name(), list->Get(i)->name()))
          return SetError(MTAN_ERROR_NAME, "tensor inputs %u and %u are both named '%s'", i, j,
                          in->name()->c_str());
      const int32_t t = in->tensor();
      if (t < 0 || static_cast<uint32_t>(t) >= num_tensors)
        return SetError(MTAN_ERROR_INDEX, "tensor input '%s': tensor %d out of range (%u tensors)",
                        in->name()->c_str(), t, num_tensors);
      if (is_tensor_input[t] || t == m->input_tensor())
        return SetError(MTAN_ERROR_GRAPH, "tensor input '%s': tensor %d '%s' is already a model "
                        "input", in->name()->c_str(), t, TensorName(m, t));
      is_tensor_input[t] = 1;
      MTAN_RETURN_IF_ERROR(CheckIdMap(in));
    }
    return MTAN_OK;
  }

  // A tensor input's IdMap: a vocabulary of ascending distinct int64 keys in
  // a buffer, or at least one hash bucket; no field of another map set.
  mtan_status CheckIdMap(const fb::TensorInput* in) {
    const char* name = in->name()->c_str();
    switch (in->id_map()) {
      case fb::IdMap::ROWS:
        if (in->vocabulary() != 0 || in->hash_buckets() != 0) break;
        return MTAN_OK;
      case fb::IdMap::VOCABULARY: {
        if (in->hash_buckets() != 0 || in->vocabulary() == 0 ||
            in->vocabulary() >= m->buffers()->size())
          break;
        const auto* keys = m->buffers()->Get(in->vocabulary())->data();
        if (keys == nullptr || keys->size() == 0 || keys->size() % 8 != 0 ||
            keys->size() / 8 >= static_cast<uint32_t>(MTAN_MAX_DIM))
          return SetError(MTAN_ERROR_BUFFER, "tensor input '%s': vocabulary buffer %u holds %u "
                          "bytes, not 1..%d int64 keys", name, in->vocabulary(),
                          keys ? keys->size() : 0, MTAN_MAX_DIM - 1);
        for (uint32_t k = 1; k < keys->size() / 8; ++k) {
          int64_t a, b;
          memcpy(&a, keys->data() + (k - 1) * 8, 8);
          memcpy(&b, keys->data() + k * 8, 8);
          if (!(a < b))
            return SetError(MTAN_ERROR_BUFFER, "tensor input '%s': vocabulary keys %u and %u are "
                            "not ascending and distinct (%lld, %lld)", name, k - 1, k,
                            static_cast<long long>(a), static_cast<long long>(b));
        }
        return MTAN_OK;
      }
      case fb::IdMap::HASHED:
        if (in->vocabulary() != 0 || in->hash_buckets() == 0 ||
            in->hash_buckets() > static_cast<uint32_t>(MTAN_MAX_DIM))
          break;
        return MTAN_OK;
    }
    return SetError(MTAN_ERROR_OPERATOR, "tensor input '%s': id map %d with vocabulary buffer %u "
                    "and %u hash buckets is not a valid map", name,
                    static_cast<int>(in->id_map()), in->vocabulary(), in->hash_buckets());
  }

  // The caller's values: the dense rows or a tensor input.
  bool IsModelInput(int32_t t) const {
    return t == m->input_tensor() || is_tensor_input[t];
  }

  mtan_status CheckTensor(uint32_t i) {
    const fb::Tensor* t = T(i);
    const char* name = TensorName(m, i);
    if (t->dtype() < fb::DType::MIN || t->dtype() > fb::DType::MAX)
      return SetError(MTAN_ERROR_OPERATOR, "tensor %u '%s': unknown dtype %d", i, name,
                      static_cast<int>(t->dtype()));
    // Ids come only from the caller; a tensor input is an int64 activation.
    if ((t->dtype() == fb::DType::INT64) != static_cast<bool>(is_tensor_input[i]) ||
        (is_tensor_input[i] && t->buffer() != 0))
      return SetError(MTAN_ERROR_OPERATOR, "tensor %u '%s': %s", i, name,
                      is_tensor_input[i] ? "a tensor input must be an int64 activation"
                                         : "int64 is for tensor inputs only");
    const auto* shape = t->shape();
    if (shape == nullptr || shape->size() == 0 || shape->size() > MTAN_MAX_RANK)
      return SetError(MTAN_ERROR_SHAPE, "tensor %u '%s': rank %u is not 1..%d", i, name,
                      shape ? shape->size() : 0, MTAN_MAX_RANK);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < shape->size(); ++d) {
      const int32_t dim = shape->Get(d);
      if (dim < 1 || dim > MTAN_MAX_DIM)
        return SetError(MTAN_ERROR_SHAPE, "tensor %u '%s': dimension %u is %d (allowed 1..%d)",
                        i, name, d, dim, MTAN_MAX_DIM);
      elements *= static_cast<uint64_t>(dim);
      if (elements > (1ull << 31))
        return SetError(MTAN_ERROR_SHAPE, "tensor %u '%s': shape product overflows", i, name);
    }
    if (t->buffer() >= m->buffers()->size())
      return SetError(MTAN_ERROR_INDEX, "tensor %u '%s': buffer %u out of range (%u buffers)", i,
                      name, t->buffer(), m->buffers()->size());
    if (t->buffer() == 0) {
      if (shape->size() > MTAN_MAX_RANK - 1)
        return SetError(MTAN_ERROR_SHAPE, "activation %u '%s': per-row rank %u is not 1..%d", i,
                        name, shape->size(), MTAN_MAX_RANK - 1);
      // The model input is the caller's rows: it has no arena bytes.
      if (static_cast<int32_t>(i) == m->input_tensor()) return CheckQuantization(i, name);
      if (static_cast<uint64_t>(t->arena_offset()) + RowBytes(t) > m->activation_bytes_per_row() ||
          t->arena_offset() % 4 != 0)
        return SetError(MTAN_ERROR_MEMORY_PLAN,
                        "activation %u '%s': offset %u + %llu bytes outside the %u-byte row plan",
                        i, name, t->arena_offset(), static_cast<unsigned long long>(RowBytes(t)),
                        m->activation_bytes_per_row());
    } else {
      same_data[i] = static_cast<int16_t>(FirstWithSameData(i));
      if (same_data[i] != static_cast<int16_t>(i)) return CheckQuantization(i, name);
      const auto* data = m->buffers()->Get(t->buffer())->data();
      const uint64_t want = elements * DTypeBytes(t->dtype());
      if (data == nullptr || data->size() != want)
        return SetError(MTAN_ERROR_BUFFER, "tensor %u '%s': buffer %u has %u bytes, %s%s needs %llu",
                        i, name, t->buffer(), data ? data->size() : 0, DTypeName(t->dtype()),
                        " shape", static_cast<unsigned long long>(want));
      if (reinterpret_cast<uintptr_t>(data->data()) % 16 != 0)
        return SetError(MTAN_ERROR_BUFFER, "tensor %u '%s': buffer %u is not 16-byte aligned", i,
                        name, t->buffer());
      // A NaN or infinite weight would make every output NaN with MTAN_OK.
      if (t->dtype() == fb::DType::FLOAT32) {
        const float* v = reinterpret_cast<const float*>(data->data());
        for (uint64_t k = 0; k < elements; ++k)
          if (!isfinite(v[k]))
            return SetError(MTAN_ERROR_BUFFER, "tensor %u '%s': value %llu is %g, not finite", i,
                            name, static_cast<unsigned long long>(k), static_cast<double>(v[k]));
      }
    }
    return CheckQuantization(i, name);
  }

  // The first constant tensor j <= i with i's buffer, dtype and shape (i's
  // own checks passed for everything before it). Linear: constants are few,
  // and a file sharing one buffer among 4096 tensors costs 8 M comparisons.
  uint32_t FirstWithSameData(uint32_t i) const {
    const fb::Tensor* t = T(i);
    for (uint32_t j = 0; j < i; ++j) {
      const fb::Tensor* u = T(j);
      if (u->buffer() != t->buffer() || u->dtype() != t->dtype() ||
          u->shape()->size() != t->shape()->size())
        continue;
      bool same = true;
      for (uint32_t d = 0; d < t->shape()->size() && same; ++d)
        same = u->shape()->Get(d) == t->shape()->Get(d);
      if (same) return same_data[j];
    }
    return i;
  }

  mtan_status CheckQuantization(uint32_t i, const char* name) {
    const fb::Tensor* t = T(i);
    const auto* shape = t->shape();
    if (t->dtype() == fb::DType::INT8) {
      const fb::Quantization* q = t->quantization();
      if (q == nullptr || q->scale() == nullptr || q->scale()->size() == 0)
        return SetError(MTAN_ERROR_QUANTIZATION, "int8 tensor %u '%s' has no scale", i, name);
      const uint32_t n = q->scale()->size();
      const bool per_channel_ok = t->buffer() != 0 && n == static_cast<uint32_t>(shape->Get(0));
      if (n != 1 && !per_channel_ok)
        return SetError(MTAN_ERROR_QUANTIZATION, "tensor %u '%s': %u scales for dimension %d", i,
                        name, n, shape->Get(0));
      for (uint32_t k = 0; k < n; ++k) {
        if (!FiniteScale(q->scale()->Get(k)))
          return SetError(MTAN_ERROR_QUANTIZATION, "tensor %u '%s': scale[%u] = %g is not finite "
                          "and positive", i, name, k, static_cast<double>(q->scale()->Get(k)));
      }
      if (q->zero_point() != nullptr && q->zero_point()->size() != 0) {
        if (q->zero_point()->size() != n)
          return SetError(MTAN_ERROR_QUANTIZATION, "tensor %u '%s': %u zero points for %u scales",
                          i, name, q->zero_point()->size(), n);
        for (uint32_t k = 0; k < n; ++k) {
          const int32_t zp = q->zero_point()->Get(k);
          if (zp < -128 || zp > 127)
            return SetError(MTAN_ERROR_QUANTIZATION, "tensor %u '%s': zero point %d outside int8",
                            i, name, zp);
        }
      }
    }
    return MTAN_OK;
  }

  // An int8 FULLY_CONNECTED accumulates in int32: per output channel,
  // |bias| + 256 * sum |w| must fit, or the sum wraps (in XNNPACK too) and
  // the output is wrong with MTAN_OK. 256 bounds both (x - zero_point), as
  // the reference kernel computes, and XNNPACK's bias with the zero point
  // folded in plus its sum of w * x. The converter saturates its biases to
  // this bound (host/quantize.cc).
  //
  // Checked once per weight data: one pass over its rows, and for each row
  // every distinct bias data paired with it (each such bias is its own
  // rows x 4 bytes of the file), so the cost is bounded by the file size.
  mtan_status CheckAccumulators() {
    const uint32_t num_ops = m->operators()->size();
    memset(mark, 0, num_tensors);
    for (uint32_t o = 0; o < num_ops; ++o) {
      uint32_t wi = 0, bi = 0;
      if (!IsInt8FullyConnected(o, &wi, &bi)) continue;
      const uint32_t w = same_data[wi];
      if (mark[w]) continue;  // checked with an earlier operator
      mark[w] = 1;
      // Every operator with this weight data and a bias not seen before.
      uint32_t n = 0;
      for (uint32_t p = o; p < num_ops; ++p) {
        uint32_t wp = 0, bp = 0;
        if (!IsInt8FullyConnected(p, &wp, &bp) || static_cast<uint32_t>(same_data[wp]) != w) continue;
        if (mark[same_data[bp]] == 2) continue;
        mark[same_data[bp]] = 2;
        paired[n++] = static_cast<uint16_t>(p);
      }
      MTAN_RETURN_IF_ERROR(CheckAccumulator(w, n));
      for (uint32_t k = 0; k < n; ++k) {
        uint32_t wp = 0, bp = 0;
        IsInt8FullyConnected(paired[k], &wp, &bp);
        mark[same_data[bp]] = 0;
      }
    }
    return MTAN_OK;
  }

  bool IsInt8FullyConnected(uint32_t o, uint32_t* wi, uint32_t* bi) const {
    const fb::Operator* op = m->operators()->Get(o);
    if (op->opcode() != fb::OpCode::FULLY_CONNECTED) return false;
    *wi = static_cast<uint32_t>(op->inputs()->Get(1));
    *bi = static_cast<uint32_t>(op->inputs()->Get(2));
    return T(*wi)->dtype() == fb::DType::INT8;
  }

  // Weight data `w` against the biases of operators paired[0..n).
  mtan_status CheckAccumulator(uint32_t w, uint32_t n) {
    const fb::Tensor* wt = T(w);
    const uint32_t rows = static_cast<uint32_t>(wt->shape()->Get(0));
    const uint32_t cols = static_cast<uint32_t>(wt->shape()->Get(1));
    const int8_t* wv = reinterpret_cast<const int8_t*>(m->buffers()->Get(wt->buffer())->data()->data());
    for (uint32_t r = 0; r < rows; ++r) {
      uint64_t sum = 0;
      const int8_t* row = wv + static_cast<uint64_t>(r) * cols;
      for (uint32_t c = 0; c < cols; ++c) sum += static_cast<uint32_t>(row[c] < 0 ? -row[c] : row[c]);
      for (uint32_t k = 0; k < n; ++k) {
        const fb::Operator* op = m->operators()->Get(paired[k]);
        const uint32_t bi = static_cast<uint32_t>(op->inputs()->Get(2));
        const int32_t b = reinterpret_cast<const int32_t*>(
            m->buffers()->Get(T(bi)->buffer())->data()->data())[r];
        const uint64_t bound =
            AccumulatorBound(sum, static_cast<uint64_t>(b < 0 ? -static_cast<int64_t>(b) : b));
        if (bound > kAccumulatorLimit)
          return SetError(MTAN_ERROR_QUANTIZATION, "operator %u: output channel %u of '%s' can "
                          "overflow the int32 accumulator (|bias| + 256 * sum |w| = %llu)",
                          paired[k], r, TensorName(m, static_cast<uint32_t>(op->inputs()->Get(1))),
                          static_cast<unsigned long long>(bound));
      }
    }
    return MTAN_OK;
  }

  // Records the bound of float32 output `out` of operator o, or refuses it.
  mtan_status SetBound(uint32_t o, int32_t out, double value, mtan_status status) {
    if (!(value <= BoundValue(kMaxBoundExp)))
      return SetError(status, "operator %u (%s): float32 values of '%s' could reach %g with "
                      "standardised features within +-%d (weights, biases or scales too large; "
                      "the limit is 2^%d)", o, fb::EnumNameOpCode(m->operators()->Get(o)->opcode()),
                      TensorName(m, out), value, MTAN_STANDARDIZED_LIMIT, kMaxBoundExp);
    bound[out] = static_cast<int16_t>(BoundExp(value));
    return MTAN_OK;
  }

  // The float32 value bound of operator o's output (int8 outputs need none).
  mtan_status BoundOutput(uint32_t o, const OpRegistration& reg) {
    const int32_t out = m->operators()->Get(o)->outputs()->Get(0);
    if (T(out)->dtype() != fb::DType::FLOAT32) return MTAN_OK;
    return SetBound(o, out, reg.float_bound(*this, o), reg.bound_error);
  }

  mtan_status CheckOperator(uint32_t o) {
    const fb::Operator* op = m->operators()->Get(o);
    const OpRegistration* reg = FindOp(op->opcode());
    if (reg == nullptr)
      return SetError(MTAN_ERROR_OPERATOR, "operator %u: unknown opcode %d", o,
                      static_cast<int>(op->opcode()));
    const auto* ins = op->inputs();
    const auto* outs = op->outputs();
    if (ins == nullptr || outs == nullptr || outs->size() != 1 || ins->size() == 0)
      return Fail(o, "needs inputs and exactly one output");
    for (uint32_t k = 0; k < ins->size(); ++k) {
      const int32_t t = ins->Get(k);
      if (t < 0 || static_cast<uint32_t>(t) >= num_tensors)
        return SetError(MTAN_ERROR_INDEX, "operator %u: input %u is tensor %d, out of range "
                        "(%u tensors)", o, k, t, num_tensors);
      if (IsActivation(t) && !IsModelInput(t) && producer[t] < 0)
        return SetError(MTAN_ERROR_GRAPH, "operator %u reads tensor %d '%s' before any operator "
                        "writes it (cycle or out of order)", o, t, TensorName(m, t));
      if (T(t)->dtype() == fb::DType::INT64 && !reg->reads_ids)
        return SetError(MTAN_ERROR_OPERATOR, "operator %u (%s) reads the int64 ids '%s'; only "
                        "EMBEDDING_BAG may", o, fb::EnumNameOpCode(op->opcode()), TensorName(m, t));
      // The model input is the caller's rows, not arena bytes (its offset is
      // not checked): only QUANTIZE, which reads the rows, may take it.
      if (t == m->input_tensor() && !reg->reads_model_input)
        return SetError(MTAN_ERROR_GRAPH, "operator %u (%s) reads the model input '%s'; only "
                        "QUANTIZE may", o, fb::EnumNameOpCode(op->opcode()), TensorName(m, t));
    }
    const int32_t out = outs->Get(0);
    if (out < 0 || static_cast<uint32_t>(out) >= num_tensors)
      return SetError(MTAN_ERROR_INDEX, "operator %u: output is tensor %d, out of range", o, out);
    if (!IsActivation(out) || IsModelInput(out))
      return SetError(MTAN_ERROR_GRAPH, "operator %u writes tensor %d '%s', which is a constant "
                      "or a model input", o, out, TensorName(m, out));
    if (producer[out] >= 0)
      return SetError(MTAN_ERROR_GRAPH, "tensor %d '%s' is written by operators %d and %u", out,
                      TensorName(m, out), producer[out], o);
    if (op->activation() > fb::Activation::MAX ||
        (op->activation() != fb::Activation::NONE && !reg->fuses_relu))
      return Fail(o, "activation is only RELU on FULLY_CONNECTED");
    if (op->combiner() > fb::Combiner::MAX ||
        (op->combiner() != fb::Combiner::SUM && op->opcode() != fb::OpCode::EMBEDDING_BAG))
      return Fail(o, "a combiner other than SUM is for EMBEDDING_BAG only");

    if (!reg->any_rank) {
      for (uint32_t k = 0; k <= ins->size(); ++k) {
        const int32_t t = k < ins->size() ? ins->Get(k) : out;
        if (IsActivation(t) && Rank(t) != 1)
          return SetError(MTAN_ERROR_SHAPE, "operator %u (%s): activation '%s' has per-row rank "
                          "%u; this operator takes rank 1", o, fb::EnumNameOpCode(op->opcode()),
                          TensorName(m, t), Rank(t));
      }
    }
    MTAN_RETURN_IF_ERROR(reg->verify(*this, o));
    for (uint32_t k = 0; k < ins->size(); ++k) {
      const int32_t t = ins->Get(k);
      if (IsActivation(t)) last_use[t] = static_cast<int16_t>(o);
    }
    producer[out] = static_cast<int16_t>(o);
    last_use[out] = static_cast<int16_t>(o);
    return BoundOutput(o, *reg);
  }

  mtan_status CheckTask(uint32_t k, uint32_t* output_size) {
    const fb::Task* task = m->tasks()->Get(k);
    const char* name = task->name() ? task->name()->c_str() : "(unnamed)";
    if (task->name() == nullptr) return SetError(MTAN_ERROR_TASK, "task %u has no name", k);
    if (const char* problem = NameProblem(task->name()))
      return SetError(MTAN_ERROR_NAME, "task %u: name %s", k, problem);
    for (uint32_t j = 0; j < k; ++j)
      if (SameName(task->name(), m->tasks()->Get(j)->name()))
        return SetError(MTAN_ERROR_NAME, "tasks %u and %u are both named '%s'", j, k, name);
    if (task->kind() > fb::TaskKind::MAX)
      return SetError(MTAN_ERROR_TASK, "task '%s': unknown kind %d", name, static_cast<int>(task->kind()));
    const int32_t out = task->output();
    if (out < 0 || static_cast<uint32_t>(out) >= num_tensors)
      return SetError(MTAN_ERROR_TASK, "task '%s' has no output tensor (index %d)", name, out);
    if (!IsActivation(out) || producer[out] < 0 || T(out)->dtype() != fb::DType::FLOAT32)
      return SetError(MTAN_ERROR_TASK, "task '%s': output '%s' is not a float32 tensor written by "
                      "an operator", name, TensorName(m, out));
    if (Rank(out) != 1)
      return SetError(MTAN_ERROR_TASK, "task '%s': output '%s' has per-row rank %u, not 1", name,
                      TensorName(m, out), Rank(out));
    const uint32_t size = Channels(out);
    const bool multiclass = task->kind() == fb::TaskKind::MULTICLASS;
    if (multiclass ? size < 2 : size != 1)
      return SetError(MTAN_ERROR_TASK, "task '%s': %s output has %u values", name,
                      fb::EnumNameTaskKind(task->kind()), size);
    if (task->class_names() && task->class_names()->size() != 0 && task->class_names()->size() != size)
      return SetError(MTAN_ERROR_TASK, "task '%s': %u class names for %u classes", name,
                      task->class_names()->size(), size);
    if (task->class_names()) {
      char owner[MTAN_MAX_NAME_BYTES + 16];
      snprintf(owner, sizeof owner, "task '%s': ", name);
      MTAN_RETURN_IF_ERROR(CheckNames(task->class_names(), "class", owner));
    }
    if (task->transform() > fb::OutputTransform::MAX ||
        (task->transform() == fb::OutputTransform::EXPM1 && task->kind() != fb::TaskKind::REGRESSION))
      return SetError(MTAN_ERROR_TASK, "task '%s': transform %d is for regression only", name,
                      static_cast<int>(task->transform()));
    // The plan: ascending operator indices, closed under inputs, ending in the output.
    const auto* plan = task->plan();
    if (plan == nullptr || plan->size() == 0)
      return SetError(MTAN_ERROR_TASK, "task '%s' has no plan", name);
    uint8_t* in_plan = mark;
    memset(in_plan, 0, num_tensors);
    const uint32_t num_ops = m->operators()->size();
    for (uint32_t i = 0; i < plan->size(); ++i) {
      const uint32_t o = plan->Get(i);
      if (o >= num_ops || (i > 0 && o <= plan->Get(i - 1)))
        return SetError(MTAN_ERROR_TASK, "task '%s': plan entry %u (operator %u) out of range or "
                        "not ascending", name, i, o);
    }
    for (uint32_t i = 0; i < plan->size(); ++i) {
      const uint32_t o = plan->Get(i);
      const fb::Operator* op = m->operators()->Get(o);
      for (uint32_t j = 0; j < op->inputs()->size(); ++j) {
        const int32_t t = op->inputs()->Get(j);
        if (IsActivation(t) && !IsModelInput(t) && !in_plan[t])
          return SetError(MTAN_ERROR_TASK, "task '%s': plan runs operator %u without the operator "
                          "writing its input '%s'", name, o, TensorName(m, t));
      }
      in_plan[op->outputs()->Get(0)] = 1;
    }
    if (!in_plan[out])
      return SetError(MTAN_ERROR_TASK, "task '%s': plan does not compute its output", name);
    *output_size = size;
    return MTAN_OK;
  }

  // An activation's lifetime (contract.h): false for the dense rows, which
  // have no arena bytes, and for tensors nothing writes.
  bool PlannedLifetime(uint32_t t, Lifetime* l) const {
    if (is_tensor_input[t])
      return *l = TensorInputLifetime(static_cast<int32_t>(m->operators()->size())), true;
    if (producer[t] < 0) return false;
    return *l = Lifetime{producer[t], last_use[t]}, true;
  }

  // Live activations must not share bytes. The model input is the caller's
  // rows and has no arena bytes; task outputs live to the end of a run.
  mtan_status CheckMemoryPlan() {
    const int16_t end = static_cast<int16_t>(m->operators()->size());
    for (uint32_t k = 0; k < m->tasks()->size(); ++k) last_use[m->tasks()->Get(k)->output()] = end;
    for (uint32_t a = 0; a < num_tensors; ++a) {
      Lifetime la, lb;
      if (!PlannedLifetime(a, &la)) continue;
      const uint64_t a0 = T(a)->arena_offset(), a1 = a0 + RowBytes(T(a));
      for (uint32_t b = a + 1; b < num_tensors; ++b) {
        if (!PlannedLifetime(b, &lb)) continue;
        const bool live_together = LiveTogether(la, lb);
        const uint64_t b0 = T(b)->arena_offset(), b1 = b0 + RowBytes(T(b));
        if (live_together && a0 < b1 && b0 < a1)
          return SetError(MTAN_ERROR_MEMORY_PLAN, "tensors '%s' and '%s' are live together but "
                          "share arena bytes", TensorName(m, a), TensorName(m, b));
      }
    }
    return MTAN_OK;
  }
};

}  // namespace

const char* VerifyContext::Name(uint32_t i) const { return TensorName(m, i); }

uint32_t VerifyContext::IdRows(uint32_t t) const {
  for (uint32_t j = 0; m->tensor_inputs() && j < m->tensor_inputs()->size(); ++j)
    if (m->tensor_inputs()->Get(j)->tensor() == static_cast<int32_t>(t))
      return TensorInputRows(m, m->tensor_inputs()->Get(j));
  return 0;
}

bool VerifyContext::SameShape(uint32_t a, uint32_t b) const {
  const auto* sa = T(a)->shape();
  const auto* sb = T(b)->shape();
  if (sa->size() != sb->size()) return false;
  for (uint32_t d = 0; d < sa->size(); ++d)
    if (sa->Get(d) != sb->Get(d)) return false;
  return true;
}

mtan_status VerifyContext::Fail(uint32_t o, const char* what) const {
  return SetError(MTAN_ERROR_OPERATOR, "operator %u (%s): %s", o,
                  fb::EnumNameOpCode(m->operators()->Get(o)->opcode()), what);
}

mtan_status VerifyContext::ShapesDiffer(uint32_t o) const {
  return SetError(MTAN_ERROR_SHAPE, "operator %u: shapes differ", o);
}

double VerifyContext::InputBound(uint32_t t) const { return BoundValue(bound[t]); }

double VerifyContext::MaxInputBound(uint32_t o, uint32_t first) const {
  const auto* ins = m->operators()->Get(o)->inputs();
  double worst = 0.0;
  for (uint32_t k = first; k < ins->size(); ++k) {
    const double b = InputBound(ins->Get(k));
    worst = b > worst ? b : worst;
  }
  return worst;
}

float VerifyContext::Scale(uint32_t t) const { return T(t)->quantization()->scale()->Get(0); }

int32_t VerifyContext::ZeroPoint(uint32_t t) const {
  const fb::Quantization* q = T(t)->quantization();
  return q && q->zero_point() && q->zero_point()->size() ? q->zero_point()->Get(0) : 0;
}

// Kept as a bound exponent, computed once per data.
double VerifyContext::ConstantBound(uint32_t i) {
  const uint32_t k = same_data[i];
  if (bound[k] == kNoBound) {
    const fb::Tensor* t = T(k);
    const float* v = reinterpret_cast<const float*>(m->buffers()->Get(t->buffer())->data()->data());
    const uint32_t rows = static_cast<uint32_t>(t->shape()->Get(0));
    const uint32_t cols = t->shape()->size() == 2 ? static_cast<uint32_t>(t->shape()->Get(1)) : 1;
    double worst = 0.0;
    for (uint32_t r = 0; r < rows; ++r) {
      double sum = 0.0;
      for (uint32_t c = 0; c < cols; ++c) sum += fabs(static_cast<double>(v[static_cast<uint64_t>(r) * cols + c]));
      worst = sum > worst ? sum : worst;
    }
    // Finite weights (checked) sum to at most 2^20 * FLT_MAX: a double holds it.
    bound[k] = static_cast<int16_t>(BoundExp(worst));
  }
  return BoundValue(bound[k]);
}

namespace {

Checker g_checker;  // ~48 KB, guarded by the load lock

}  // namespace

mtan_status VerifyModel(const void* data, size_t bytes, ModelView* view) {
  if (data == nullptr || view == nullptr)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "model data is NULL");
  if (reinterpret_cast<uintptr_t>(data) % MTAN_MODEL_ALIGNMENT != 0)
    return SetError(MTAN_ERROR_INVALID_ARGUMENT, "model data must be %d-byte aligned",
                    MTAN_MODEL_ALIGNMENT);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  if (bytes < 8 + kFooterBytes)
    return SetError(MTAN_ERROR_TRUNCATED, "model is %zu bytes, shorter than any .mtan file", bytes);
  if (memcmp(p + 4, kFileIdentifier, 4) != 0)
    return SetError(MTAN_ERROR_BAD_IDENTIFIER, "not an .mtan file (identifier is not 'MTAN')");
  if (bytes > MTAN_MAX_FILE_BYTES)
    return SetError(MTAN_ERROR_LIMIT, "model is %zu bytes, above the %u-byte limit", bytes,
                    MTAN_MAX_FILE_BYTES);
  Footer footer;
  memcpy(&footer, p + bytes - kFooterBytes, kFooterBytes);
  if (memcmp(footer.magic, kOldFooterMagic, 4) == 0 && footer.flatbuffer_bytes == bytes - kFooterBytes)
    return SetError(MTAN_ERROR_VERSION, "model format 1.0 or 1.1 (its checksum is not XXH64): this "
                    "runtime reads format %d.%d; convert the model again", MTAN_VERSION_MAJOR,
                    MTAN_VERSION_MINOR);
  if (memcmp(footer.magic, kFooterMagic, 4) != 0 ||
      footer.flatbuffer_bytes != bytes - kFooterBytes)
    return SetError(MTAN_ERROR_TRUNCATED, "model footer missing or length mismatch: the file is "
                    "truncated or has trailing bytes (%zu bytes)", bytes);
  const size_t fb_bytes = footer.flatbuffer_bytes;
  const uint64_t sum = Checksum64(p, fb_bytes);
  if (sum != footer.checksum)
    return SetError(MTAN_ERROR_CHECKSUM, "checksum mismatch (stored %016llx, content %016llx): "
                    "the file was corrupted", static_cast<unsigned long long>(footer.checksum),
                    static_cast<unsigned long long>(sum));
  flatbuffers::Verifier verifier(p, fb_bytes, /*max_depth=*/16, /*max_tables=*/1u << 20);
  if (!fb::VerifyModelBuffer(verifier))
    return SetError(MTAN_ERROR_MALFORMED, "the FlatBuffers verifier rejected the model");
  const fb::Model* m = fb::GetModel(p);
  if (m->version_major() > MTAN_VERSION_MAJOR)
    return SetError(MTAN_ERROR_VERSION, "model format %u.%u is newer than this runtime (%d.%d)",
                    m->version_major(), m->version_minor(), MTAN_VERSION_MAJOR, MTAN_VERSION_MINOR);
  if (!m->tensors() || !m->buffers() || !m->operators() || !m->inputs() || !m->tasks() ||
      m->buffers()->size() == 0)
    return SetError(MTAN_ERROR_MALFORMED, "model lacks tensors, buffers, operators, inputs or tasks");
  const uint32_t nt = m->tensors()->size(), no = m->operators()->size(), nk = m->tasks()->size();
  const uint32_t ni = m->inputs()->size();
  if (nt > MTAN_MAX_TENSORS || no > MTAN_MAX_OPERATORS || nk > MTAN_MAX_TASKS || nk == 0 ||
      ni > MTAN_MAX_INPUTS || ni == 0 || no == 0)
    return SetError(MTAN_ERROR_LIMIT, "model has %u tensors, %u operators, %u tasks, %u inputs "
                    "(limits %d, %d, 1..%d, 1..%d)", nt, no, nk, ni, MTAN_MAX_TENSORS,
                    MTAN_MAX_OPERATORS, MTAN_MAX_TASKS, MTAN_MAX_INPUTS);
  if (m->max_batch() == 0 || m->max_batch() > MTAN_MAX_BATCH)
    return SetError(MTAN_ERROR_LIMIT, "stored max_batch %u is not 1..%d", m->max_batch(),
                    MTAN_MAX_BATCH);
  if (m->golden() && m->golden()->size() > MTAN_MAX_GOLDEN_CASES)
    return SetError(MTAN_ERROR_LIMIT, "%u golden cases (limit %d)", m->golden()->size(),
                    MTAN_MAX_GOLDEN_CASES);

  // Input names: valid and unique (a kiosk matches them to CSV columns).
  for (uint32_t i = 0; i < ni; ++i) {
    const fb::Input* in = m->inputs()->Get(i);
    if (const char* problem = NameProblem(in->name()))
      return SetError(MTAN_ERROR_NAME, "input %u: name %s", i, problem);
    for (uint32_t j = 0; j < i; ++j)
      if (SameName(in->name(), m->inputs()->Get(j)->name()))
        return SetError(MTAN_ERROR_NAME, "inputs %u and %u are both named '%s'", j, i,
                        in->name()->c_str());
  }

  Checker& c = g_checker;
  c.m = m;
  c.num_tensors = nt;
  c.same_data = c.same_data_storage;
  c.bound = c.bound_storage;
  memset(c.producer, 0xff, sizeof(c.producer));
  memset(c.last_use, 0xff, sizeof(c.last_use));
  MTAN_RETURN_IF_ERROR(c.CheckTensorInputs());
  for (uint32_t t = 0; t < nt; ++t) c.bound[t] = kNoBound;
  for (uint32_t t = 0; t < nt; ++t) MTAN_RETURN_IF_ERROR(c.CheckTensor(t));
  // Bytes per row of all tensor inputs (shapes are checked now).
  uint64_t tensor_input_row_bytes = 0;
  for (uint32_t j = 0; m->tensor_inputs() && j < m->tensor_inputs()->size(); ++j)
    tensor_input_row_bytes += RowBytes(c.T(m->tensor_inputs()->Get(j)->tensor()));
  for (uint32_t i = 0; i < ni; ++i) {
    const fb::Input* in = m->inputs()->Get(i);
    if (!isfinite(in->mean()) || !FiniteScale(in->std()))
      return SetError(MTAN_ERROR_QUANTIZATION, "input %u '%s': mean %g / std %g must be finite, "
                      "std positive", i, in->name()->c_str(),
                      static_cast<double>(in->mean()), static_cast<double>(in->std()));
  }
  const int32_t it = m->input_tensor();
  if (it < 0 || static_cast<uint32_t>(it) >= nt)
    return SetError(MTAN_ERROR_INDEX, "input tensor index %d out of range", it);
  if (!c.IsActivation(it) || c.is_tensor_input[it] || c.T(it)->dtype() != fb::DType::FLOAT32 ||
      c.Rank(it) != 1 || c.Channels(it) != ni)
    return SetError(MTAN_ERROR_SHAPE, "input tensor '%s' must be float32 [%u]", TensorName(m, it), ni);
  for (uint32_t o = 0; o < no; ++o) MTAN_RETURN_IF_ERROR(c.CheckOperator(o));
  MTAN_RETURN_IF_ERROR(c.CheckAccumulators());
  uint32_t total = 0;
  for (uint32_t k = 0; k < nk; ++k) {
    uint32_t size = 0;
    MTAN_RETURN_IF_ERROR(c.CheckTask(k, &size));
    total += size;
  }
  MTAN_RETURN_IF_ERROR(c.CheckMemoryPlan());
  uint32_t max_golden_rows = 0;
  for (uint32_t g = 0; m->golden() && g < m->golden()->size(); ++g) {
    const fb::GoldenCase* gc = m->golden()->Get(g);
    const uint64_t rows = gc->rows();
    const uint64_t id_bytes = gc->tensor_input() ? gc->tensor_input()->size() : 0;
    if (id_bytes != rows * tensor_input_row_bytes)
      return SetError(MTAN_ERROR_SHAPE, "golden case %u: %llu bytes of tensor inputs, %llu rows "
                      "need %llu", g, static_cast<unsigned long long>(id_bytes),
                      static_cast<unsigned long long>(rows),
                      static_cast<unsigned long long>(rows * tensor_input_row_bytes));
    if (rows == 0 || rows > MTAN_MAX_BATCH || !gc->input() || !gc->output() ||
        gc->input()->size() != rows * ni || gc->output()->size() != rows * total ||
        !isfinite(gc->tolerance()) || gc->tolerance() < 0 ||
        (gc->tolerances() && gc->tolerances()->size() != 0 && gc->tolerances()->size() != total))
      return SetError(MTAN_ERROR_SHAPE, "golden case %u: %llu rows do not match its %u inputs / "
                      "%u outputs, or its tolerance is invalid", g,
                      static_cast<unsigned long long>(rows), gc->input() ? gc->input()->size() : 0,
                      gc->output() ? gc->output()->size() : 0);
    for (uint32_t k = 0; gc->tolerances() && k < gc->tolerances()->size(); ++k) {
      const float tol = gc->tolerances()->Get(k);
      if (!isfinite(tol) || tol < 0)
        return SetError(MTAN_ERROR_SHAPE, "golden case %u: tolerance of output %u is %g", g, k,
                        static_cast<double>(tol));
    }
    if (rows > max_golden_rows) max_golden_rows = static_cast<uint32_t>(rows);
  }
  view->fb = m;
  view->num_tensors = nt;
  view->num_ops = no;
  view->num_tasks = nk;
  view->num_inputs = ni;
  view->num_tensor_inputs = m->tensor_inputs() ? m->tensor_inputs()->size() : 0;
  view->output_floats_all = total;
  view->max_golden_rows = max_golden_rows;
  return MTAN_OK;
}

}  // namespace mtan
