// A FlatBuffers-aware mutator for .mtan files. A byte flip almost always
// lands on the checksum (MTAN_ERROR_CHECKSUM) or on the FlatBuffers verifier;
// this mutator instead unpacks a file that verifies into the object API,
// edits fields the semantic checks and kernels care about (tensor indices,
// shapes, dtypes, scales, zero points, operator inputs, plans, offsets,
// versions, weights, golden cases; weights shared by many operators),
// optionally re-plans it with the real
// writer (host::FinishModel) so that a semantic edit reaches the kernels, and
// re-seals it with a valid checksum (host::SealModel). Files that do not
// verify get libFuzzer's byte mutations on the FlatBuffer part, then a fresh
// footer; a few keep a raw, unsealed mutation so the container checks stay
// covered.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "format.h"
#include "model_io.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using namespace mtan;
using Rng = std::mt19937_64;

uint32_t Below(Rng& rng, size_t n) { return n == 0 ? 0 : static_cast<uint32_t>(rng() % n); }
bool OneIn(Rng& rng, uint32_t n) { return rng() % n == 0; }

int32_t InterestingInt(Rng& rng, int32_t near) {
  static const int32_t kValues[] = {0, 1, 2, 3, 4, 7, 8, 16, 64, 127, 128, 255, 256, -1, -2,
                                    -128, -129, 32767, 65535, 65536, 65537, MTAN_MAX_DIM,
                                    MTAN_MAX_DIM + 1, MTAN_MAX_TENSORS, 1 << 24, 0x7fffffff,
                                    -0x7fffffff - 1};
  switch (Below(rng, 4)) {
    case 0: return static_cast<int32_t>(static_cast<int64_t>(near) + Below(rng, 5) - 2);
    case 1: return static_cast<int32_t>(Below(rng, 64));
    default: return kValues[Below(rng, sizeof(kValues) / sizeof(kValues[0]))];
  }
}

float InterestingFloat(Rng& rng, float near) {
  static const float kValues[] = {0.0f, -0.0f, 1.0f, -1.0f, 1.0f / 256, 1.0f / 128, 1e-45f,
                                  1e-38f, 1e-30f, 1e-7f, 1e7f, 1e30f, 3.4e38f, -3.4e38f,
                                  std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(),
                                  std::numeric_limits<float>::quiet_NaN()};
  switch (Below(rng, 3)) {
    case 0: return near * std::ldexp(1.0f, static_cast<int>(Below(rng, 41)) - 20);
    default: return kValues[Below(rng, sizeof(kValues) / sizeof(kValues[0]))];
  }
}

int32_t AnyTensor(Rng& rng, const fb::ModelT& m) {
  if (OneIn(rng, 8)) return InterestingInt(rng, static_cast<int32_t>(m.tensors.size()));
  return static_cast<int32_t>(Below(rng, m.tensors.size()));
}

template <typename T>
void EditVector(Rng& rng, std::vector<T>& v, T value) {
  switch (Below(rng, 4)) {
    case 0: v.push_back(value); break;
    case 1: if (!v.empty()) v.erase(v.begin() + Below(rng, v.size())); break;
    case 2: if (!v.empty()) v.insert(v.begin() + Below(rng, v.size()), v[Below(rng, v.size())]); break;
    default: if (!v.empty()) v[Below(rng, v.size())] = value; break;
  }
}

void MutateTensor(Rng& rng, fb::ModelT& m) {
  if (m.tensors.empty()) return;
  fb::TensorT& t = *m.tensors[Below(rng, m.tensors.size())];
  switch (Below(rng, 9)) {
    case 0: EditVector(rng, t.shape, InterestingInt(rng, t.shape.empty() ? 1 : t.shape[0])); break;
    case 1:
      if (!t.shape.empty()) t.shape[Below(rng, t.shape.size())] = InterestingInt(rng, t.shape[0]);
      break;
    case 2: t.dtype = static_cast<fb::DType>(Below(rng, 4)); break;
    case 3: t.buffer = static_cast<uint32_t>(InterestingInt(rng, static_cast<int32_t>(t.buffer))); break;
    case 4: t.arena_offset = static_cast<uint32_t>(InterestingInt(rng, static_cast<int32_t>(t.arena_offset))); break;
    case 5:  // quantization appears, disappears or loses a field
      if (!t.quantization || OneIn(rng, 4)) {
        t.quantization = std::make_unique<fb::QuantizationT>();
        if (!OneIn(rng, 3)) t.quantization->scale.push_back(InterestingFloat(rng, 0.05f));
      } else if (OneIn(rng, 2)) {
        t.quantization.reset();
      } else {
        t.quantization->zero_point.clear();
      }
      break;
    case 6:
      if (t.quantization) EditVector(rng, t.quantization->scale, InterestingFloat(rng, 0.05f));
      break;
    case 7:
      if (t.quantization)
        EditVector(rng, t.quantization->zero_point, InterestingInt(rng, 0));
      break;
    default:
      if (!OneIn(rng, 4)) t.name.clear();
      else t.name.assign(Below(rng, 300), 'x');
      break;
  }
}

void MutateOperator(Rng& rng, fb::ModelT& m) {
  if (m.operators.empty()) return;
  const uint32_t i = Below(rng, m.operators.size());
  fb::OperatorT& op = *m.operators[i];
  switch (Below(rng, 8)) {
    case 0: op.opcode = static_cast<fb::OpCode>(Below(rng, 10)); break;
    case 1: EditVector(rng, op.inputs, AnyTensor(rng, m)); break;
    case 2: if (!op.inputs.empty()) op.inputs[Below(rng, op.inputs.size())] = AnyTensor(rng, m); break;
    case 3: EditVector(rng, op.outputs, AnyTensor(rng, m)); break;
    case 4: op.activation = static_cast<fb::Activation>(Below(rng, 3)); break;
    case 5:  // move an operator (execution order)
      if (m.operators.size() > 1) {
        auto moved = std::move(m.operators[i]);
        m.operators.erase(m.operators.begin() + i);
        m.operators.insert(m.operators.begin() + Below(rng, m.operators.size() + 1), std::move(moved));
      }
      break;
    case 6:  // duplicate or delete an operator
      if (OneIn(rng, 2)) m.operators.push_back(std::make_unique<fb::OperatorT>(op));
      else m.operators.erase(m.operators.begin() + i);
      break;
    default:  // read another operator's output, or the model input
      if (!op.inputs.empty()) {
        const auto& other = m.operators[Below(rng, m.operators.size())];
        op.inputs[Below(rng, op.inputs.size())] =
            OneIn(rng, 3) || other->outputs.empty() ? m.input_tensor : other->outputs[0];
      }
      break;
  }
}

void MutateTask(Rng& rng, fb::ModelT& m) {
  if (m.tasks.empty()) return;
  const uint32_t k = Below(rng, m.tasks.size());
  fb::TaskT& t = *m.tasks[k];
  switch (Below(rng, 8)) {
    case 0: t.output = AnyTensor(rng, m); break;
    case 1: EditVector(rng, t.plan, Below(rng, m.operators.size() + 2)); break;
    case 2: t.kind = static_cast<fb::TaskKind>(Below(rng, 4)); break;
    case 3: t.transform = static_cast<fb::OutputTransform>(Below(rng, 3)); break;
    case 4: EditVector(rng, t.class_names, std::string("c")); break;
    case 5: if (OneIn(rng, 2)) t.name.clear(); else t.name = m.tasks[Below(rng, m.tasks.size())]->name; break;
    case 6: m.tasks.push_back(std::make_unique<fb::TaskT>(t)); break;
    default: if (m.tasks.size() > 1) m.tasks.erase(m.tasks.begin() + k); break;
  }
}

void MutateBuffer(Rng& rng, fb::ModelT& m) {
  if (m.buffers.empty()) return;
  std::vector<uint8_t>& d = m.buffers[Below(rng, m.buffers.size())]->data;
  switch (Below(rng, 4)) {
    case 0: d.resize(Below(rng, 2) ? d.size() + 1 + Below(rng, 8) : (d.empty() ? 0 : Below(rng, d.size()))); break;
    case 1:
      if (d.size() >= 4) {  // a weight or bias as float or int32
        const size_t at = Below(rng, d.size() / 4) * 4;
        if (OneIn(rng, 2)) {
          float v;
          std::memcpy(&v, &d[at], 4);
          v = InterestingFloat(rng, v);
          std::memcpy(&d[at], &v, 4);
        } else {
          int32_t v;
          std::memcpy(&v, &d[at], 4);
          v = OneIn(rng, 2) ? 0x7fffffff - static_cast<int32_t>(Below(rng, 3))
                            : InterestingInt(rng, v);
          std::memcpy(&d[at], &v, 4);
        }
      }
      break;
    case 2:  // int8 weights at the extremes
      for (uint32_t n = 0, e = 1 + Below(rng, 64); n < e && !d.empty(); ++n)
        d[Below(rng, d.size())] = OneIn(rng, 2) ? 0x80 : 0x7f;
      break;
    default:
      m.buffers.push_back(std::make_unique<fb::BufferT>(*m.buffers[Below(rng, m.buffers.size())]));
      break;
  }
}

// One weight tensor feeding many operators (issue 12: each carves its own
// scales or packed copy, so a small file asks for a huge arena; the int8
// accumulator check ran once per operator). Appends up to 700 copies of a
// FULLY_CONNECTED, each writing its own new output tensor from the same
// weights and bias; or points one FULLY_CONNECTED at another's weights.
void MutateShare(Rng& rng, fb::ModelT& m) {
  std::vector<uint32_t> fcs;
  for (uint32_t o = 0; o < m.operators.size(); ++o)
    if (m.operators[o]->opcode == fb::OpCode::FULLY_CONNECTED && m.operators[o]->inputs.size() == 3 &&
        m.operators[o]->outputs.size() == 1)
      fcs.push_back(o);
  if (fcs.empty()) return;
  const uint32_t o = fcs[Below(rng, fcs.size())];
  if (OneIn(rng, 4) && fcs.size() > 1) {
    const fb::OperatorT& other = *m.operators[fcs[Below(rng, fcs.size())]];
    m.operators[o]->inputs[1] = other.inputs[1];
    m.operators[o]->inputs[2] = other.inputs[2];
    return;
  }
  const int32_t out = m.operators[o]->outputs[0];
  if (out < 0 || static_cast<size_t>(out) >= m.tensors.size()) return;
  static const uint32_t kCopies[] = {1, 2, 15, 64, 255, 700};
  const uint32_t copies = kCopies[Below(rng, sizeof(kCopies) / sizeof(kCopies[0]))];
  for (uint32_t k = 0; k < copies && m.operators.size() < MTAN_MAX_OPERATORS; ++k) {
    auto t = std::make_unique<fb::TensorT>(*m.tensors[out]);
    t->name += ".copy" + std::to_string(k);
    m.tensors.push_back(std::move(t));
    auto op = std::make_unique<fb::OperatorT>(*m.operators[o]);
    op->outputs = {static_cast<int32_t>(m.tensors.size() - 1)};
    m.operators.push_back(std::move(op));  // at the end: plans stay valid
  }
}

void MutateModel(Rng& rng, fb::ModelT& m) {
  switch (Below(rng, 10)) {
    case 0: m.input_tensor = AnyTensor(rng, m); break;
    case 1: m.max_batch = static_cast<uint32_t>(InterestingInt(rng, static_cast<int32_t>(m.max_batch))); break;
    case 2:
      m.activation_bytes_per_row =
          static_cast<uint32_t>(InterestingInt(rng, static_cast<int32_t>(m.activation_bytes_per_row)));
      break;
    case 3: m.version_major = static_cast<uint16_t>(Below(rng, 3)); m.version_minor = static_cast<uint16_t>(rng()); break;
    case 4:
      if (!m.inputs.empty()) {
        fb::InputT& in = *m.inputs[Below(rng, m.inputs.size())];
        if (OneIn(rng, 2)) in.mean = InterestingFloat(rng, in.mean);
        else in.std = InterestingFloat(rng, in.std);
      }
      break;
    case 5:  // an input feature more or less (the input tensor's shape may not follow)
      if (OneIn(rng, 2) && !m.inputs.empty()) m.inputs.pop_back();
      else m.inputs.push_back(std::make_unique<fb::InputT>());
      break;
    case 6: {  // golden cases
      if (m.golden.empty()) {
        auto g = std::make_unique<fb::GoldenCaseT>();
        g->rows = 1;
        g->input.assign(m.inputs.size(), 0.0f);
        m.golden.push_back(std::move(g));
        break;
      }
      fb::GoldenCaseT& g = *m.golden[Below(rng, m.golden.size())];
      switch (Below(rng, 5)) {
        case 0: g.rows = static_cast<uint32_t>(InterestingInt(rng, static_cast<int32_t>(g.rows))); break;
        case 1: g.tolerance = InterestingFloat(rng, g.tolerance); break;
        case 2: if (!g.input.empty()) g.input[Below(rng, g.input.size())] = InterestingFloat(rng, 1.0f); break;
        case 3: if (!g.output.empty()) g.output[Below(rng, g.output.size())] = InterestingFloat(rng, 0.5f); break;
        default: EditVector(rng, g.input, 0.0f); break;
      }
      break;
    }
    case 7:  // delete or duplicate a tensor (indices after it shift)
      if (!m.tensors.empty()) {
        const uint32_t i = Below(rng, m.tensors.size());
        if (OneIn(rng, 2)) m.tensors.erase(m.tensors.begin() + i);
        else m.tensors.push_back(std::make_unique<fb::TensorT>(*m.tensors[i]));
      }
      break;
    case 8: m.metadata.reset(); break;
    default:
      if (!m.tensors.empty() && m.tensors.size() > 1) {  // swap two tensors' shapes
        auto& a = *m.tensors[Below(rng, m.tensors.size())];
        auto& b = *m.tensors[Below(rng, m.tensors.size())];
        std::swap(a.shape, b.shape);
      }
      break;
  }
}

void Mutate(Rng& rng, fb::ModelT& m) {
  switch (Below(rng, 17)) {
    case 0: case 1: case 2: case 3: MutateTensor(rng, m); break;
    case 4: case 5: case 6: MutateOperator(rng, m); break;
    case 7: case 8: MutateTask(rng, m); break;
    case 9: case 10: case 11: MutateBuffer(rng, m); break;
    case 12: MutateShare(rng, m); break;
    default: MutateModel(rng, m); break;
  }
}

// Fields the writer's planning decides; edited after a re-plan.
void MutatePlanned(Rng& rng, fb::ModelT& m) {
  switch (Below(rng, 4)) {
    case 0:
      if (!m.tensors.empty()) {
        fb::TensorT& t = *m.tensors[Below(rng, m.tensors.size())];
        t.arena_offset = static_cast<uint32_t>(InterestingInt(rng, static_cast<int32_t>(t.arena_offset)));
      }
      break;
    case 1:
      if (!m.tasks.empty()) EditVector(rng, m.tasks[Below(rng, m.tasks.size())]->plan, Below(rng, m.operators.size() + 1));
      break;
    case 2: m.activation_bytes_per_row -= 4 * Below(rng, 3); break;
    default: m.version_major = static_cast<uint16_t>(Below(rng, 3)); break;
  }
}

// Writes `file` into data when it fits; returns its size or 0.
size_t Emit(const std::vector<uint8_t>& file, uint8_t* data, size_t max_size) {
  if (file.size() > max_size || file.empty()) return 0;
  std::memcpy(data, file.data(), file.size());
  return file.size();
}

// The FlatBuffer part's length: everything before a footer, if there is one.
size_t FlatBufferBytes(const uint8_t* data, size_t size) {
  if (size < kFooterBytes) return size;
  Footer f;
  std::memcpy(&f, data + size - kFooterBytes, kFooterBytes);
  return std::memcmp(f.magic, kFooterMagic, 4) == 0 ? size - kFooterBytes : size;
}

size_t Reseal(uint8_t* data, size_t fb_bytes) {
  const Footer f = MakeFooter(data, fb_bytes);
  std::memcpy(data + fb_bytes, &f, kFooterBytes);
  return fb_bytes + kFooterBytes;
}

size_t ByteMutation(Rng& rng, uint8_t* data, size_t size, size_t max_size) {
  if (OneIn(rng, 16) || max_size <= kFooterBytes) return LLVMFuzzerMutate(data, size, max_size);
  const size_t fb_bytes = FlatBufferBytes(data, size);
  const size_t n = LLVMFuzzerMutate(data, fb_bytes, max_size - kFooterBytes);
  return Reseal(data, n);
}

bool Unpack(const uint8_t* data, size_t size, fb::ModelT* m) {
  if (size < 8) return false;
  // The verifier needs the FlatBuffer 8-byte aligned, as the runtime has it.
  std::vector<uint64_t> aligned((size + 7) / 8);
  std::memcpy(aligned.data(), data, size);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(aligned.data());
  flatbuffers::Verifier verifier(p, size, 64, 1u << 20);
  if (!fb::VerifyModelBuffer(verifier)) return false;
  fb::GetModel(p)->UnPackTo(m);
  return true;
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  Rng rng(seed);
  fb::ModelT m;
  if (OneIn(rng, 5) || !Unpack(data, FlatBufferBytes(data, size), &m))
    return ByteMutation(rng, data, size, max_size);
  try {
    for (uint32_t n = 0, e = 1 + Below(rng, 3); n < e; ++n) Mutate(rng, m);
    std::vector<uint8_t> file;
    if (OneIn(rng, 3)) {
      // Re-plan with the real writer so the edit survives the plan checks
      // and reaches the kernels; it refuses graphs it cannot plan.
      try {
        const uint32_t max_batch = m.max_batch;
        file = host::FinishModel(m, max_batch == 0 ? 1 : max_batch, !OneIn(rng, 4));
        if (OneIn(rng, 4)) {
          MutatePlanned(rng, m);
          file = host::SealModel(m);
        }
      } catch (const std::exception&) {
        file = host::SealModel(m);
      }
    } else {
      file = host::SealModel(m);
    }
    const size_t n = Emit(file, data, max_size);
    if (n != 0) return n;
  } catch (const std::exception&) {
  }
  return ByteMutation(rng, data, size, max_size);
}
