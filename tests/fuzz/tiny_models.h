// Tiny MTAN-shaped models built with the real writer, for the fuzz seeds, the
// fuzz regressions and the tool-hardening fixtures (no test framework: the
// seed generator is a plain program).
#pragma once

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "calibrate.h"
#include "model_io.h"
#include "quantize.h"

namespace mtan::tiny {

// Which parts of MTAN a network has (the trainer's --arch values).
struct Arch {
  const char* name;
  bool masks, cross, single;  // single: one trunk per task
};
constexpr Arch kArchs[] = {{"mtan", true, true, false},
                           {"mtan-mask", true, false, false},
                           {"mtan-cross", false, true, false},
                           {"shared-bottom", false, false, false},
                           {"single", false, false, true}};

// A small network of `arch` with one task per entry of `kinds` (named
// "<KIND><index>", multiclass with 3 classes "a", "b", "c"), unless `names`
// gives the names. Features are "f0".."f<n-1>".
inline host::MtanWeights Weights(const Arch& arch, const std::vector<fb::TaskKind>& kinds,
                                 int features, uint32_t seed,
                                 const std::vector<std::string>& names = {}) {
  host::Rng rng(seed);
  host::MtanWeights w;
  for (int i = 0; i < features; ++i) {
    w.feature_names.push_back("f" + std::to_string(i));
    w.mean.push_back(i % 2 == 0 ? 40.0f : 0.5f);
    w.stddev.push_back(i % 2 == 0 ? 30.0f : 0.5f);
  }
  const int trunks = arch.single ? static_cast<int>(kinds.size()) : 1;
  const int h1 = arch.single ? 6 : 12, h2 = arch.single ? 4 : 8;
  for (int k = 0; k < trunks; ++k)
    w.trunks.push_back({host::RandomDense(rng, features, h1), host::RandomDense(rng, h1, h2)});
  for (size_t t = 0; t < kinds.size(); ++t) {
    host::TaskHead h;
    h.kind = kinds[t];
    h.name = t < names.size() ? names[t]
                              : std::string(fb::EnumNameTaskKind(h.kind)) + std::to_string(t);
    const int outs = h.kind == fb::TaskKind::MULTICLASS ? 3 : 1;
    if (h.kind == fb::TaskKind::MULTICLASS) h.class_names = {"a", "b", "c"};
    if (h.kind == fb::TaskKind::REGRESSION && t % 2 == 0) h.transform = fb::OutputTransform::EXPM1;
    h.trunk = arch.single ? static_cast<int>(t) : 0;
    h.has_mask = arch.masks;
    if (h.has_mask) {
      h.mask_down = host::RandomDense(rng, h2, 4);
      h.mask_up = host::RandomDense(rng, 4, h2);
    }
    h.task = host::RandomDense(rng, h2, 6);
    h.has_cross = arch.cross;
    if (h.has_cross) {
      h.att = host::RandomDense(rng, 6, 4);
      h.att_score = host::RandomDense(rng, 4, 1);
    }
    h.head = host::RandomDense(rng, 6, outs);
    w.tasks.push_back(std::move(h));
  }
  return w;
}

// Raw rows in the ranges Weights' standardisation expects.
inline std::vector<float> Rows(uint32_t seed, int n, int features) {
  std::mt19937 rng(seed);
  std::lognormal_distribution<float> price(3.5f, 0.8f);
  std::bernoulli_distribution flag(0.5);
  std::vector<float> x(static_cast<size_t>(n) * features);
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < features; ++i)
      x[static_cast<size_t>(r) * features + i] =
          i % 2 == 0 ? price(rng) : static_cast<float>(flag(rng));
  return x;
}

// Quantizes with min/max ranges collected on 128 rows through the runtime.
inline bool Quantize(fb::ModelT* model, uint32_t seed, int features, std::string* error) {
  const int n = 128;
  std::vector<std::vector<float>> values;
  if (!host::CollectActivations(*model, Rows(seed, n, features), n, &values, error)) return false;
  *model = host::QuantizeModel(*model, host::CalibrateRanges(values, host::CalibrationMethod::kMinMax));
  return true;
}

// An int8 model in which one weight tensor [channels, 1] (and its bias)
// feeds `fc_ops` FULLY_CONNECTED operators, each of which carves its own
// scales (reference backend) or packed copy (XNNPACK) at load: a small file
// that asks for a large arena (4091 x 262144 channels: over 4 GiB in a
// 2.6 MB file). The task ("wide", multiclass) dequantizes the first one.
inline fb::ModelT SharedWeightModel(uint32_t fc_ops, int32_t channels) {
  fb::ModelT m;
  m.buffers.push_back(std::make_unique<fb::BufferT>());
  auto in = std::make_unique<fb::InputT>();
  in->name = "x";
  m.inputs.push_back(std::move(in));
  auto add = [&](const std::string& name, fb::DType dtype, std::vector<int32_t> shape,
                 std::vector<float> scale, std::vector<uint8_t> data = {}) {
    auto t = std::make_unique<fb::TensorT>();
    t->name = name;
    t->dtype = dtype;
    t->shape = std::move(shape);
    if (!scale.empty()) {
      t->quantization = std::make_unique<fb::QuantizationT>();
      t->quantization->scale = std::move(scale);
    }
    if (!data.empty()) {
      auto b = std::make_unique<fb::BufferT>();
      b->data = std::move(data);
      m.buffers.push_back(std::move(b));
      t->buffer = static_cast<uint32_t>(m.buffers.size() - 1);
    }
    m.tensors.push_back(std::move(t));
    return static_cast<int32_t>(m.tensors.size() - 1);
  };
  auto op = [&](fb::OpCode code, std::vector<int32_t> inputs, int32_t output) {
    auto o = std::make_unique<fb::OperatorT>();
    o->opcode = code;
    o->inputs = std::move(inputs);
    o->outputs = {output};
    m.operators.push_back(std::move(o));
  };
  const size_t c = static_cast<size_t>(channels);
  m.input_tensor = add("input", fb::DType::FLOAT32, {1}, {});
  const int32_t x = add("x.q", fb::DType::INT8, {1}, {1.0f / 64});
  const int32_t w = add("shared.weight", fb::DType::INT8, {channels, 1},
                        std::vector<float>(c, 0.01f), std::vector<uint8_t>(c, 1));
  const int32_t b = add("shared.bias", fb::DType::INT32, {channels}, {},
                        std::vector<uint8_t>(4 * c, 0));
  op(fb::OpCode::QUANTIZE, {m.input_tensor}, x);
  for (uint32_t k = 0; k < fc_ops; ++k) {
    const int32_t y = add("fc" + std::to_string(k), fb::DType::INT8, {channels}, {0.05f});
    op(fb::OpCode::FULLY_CONNECTED, {x, w, b}, y);
    if (k == 0) {
      const int32_t out = add("wide.prob", fb::DType::FLOAT32, {channels}, {});
      op(fb::OpCode::DEQUANTIZE, {y}, out);
      auto task = std::make_unique<fb::TaskT>();
      task->name = "wide";
      task->kind = fb::TaskKind::MULTICLASS;
      task->output = out;
      m.tasks.push_back(std::move(task));
    }
  }
  m.metadata = std::make_unique<fb::MetadataT>();
  m.max_batch = 1;
  return m;
}

// Hand-built graphs in the schema's terms: AddTensor appends a float32
// tensor (a constant holding `data` when given, else an activation) and
// returns its index; AddOp appends an operator.
inline int AddTensor(fb::ModelT& m, const std::string& name, std::vector<int32_t> shape,
                     const std::vector<float>* data = nullptr) {
  auto t = std::make_unique<fb::TensorT>();
  t->name = name;
  t->dtype = fb::DType::FLOAT32;
  t->shape = std::move(shape);
  if (data != nullptr) {
    auto b = std::make_unique<fb::BufferT>();
    b->data.assign(reinterpret_cast<const uint8_t*>(data->data()),
                   reinterpret_cast<const uint8_t*>(data->data() + data->size()));
    m.buffers.push_back(std::move(b));
    t->buffer = static_cast<uint32_t>(m.buffers.size() - 1);
  }
  m.tensors.push_back(std::move(t));
  return static_cast<int>(m.tensors.size()) - 1;
}

inline void AddOp(fb::ModelT& m, fb::OpCode code, std::vector<int32_t> in, int out,
                  bool relu = false) {
  auto op = std::make_unique<fb::OperatorT>();
  op->opcode = code;
  op->inputs = std::move(in);
  op->outputs = {out};
  op->activation = relu ? fb::Activation::RELU : fb::Activation::NONE;
  m.operators.push_back(std::move(op));
}

// Marks activation `t` as an int64 tensor input named `name`.
inline void MakeIdsInput(fb::ModelT& m, int t, const std::string& name) {
  m.tensors[t]->dtype = fb::DType::INT64;
  auto in = std::make_unique<fb::TensorInputT>();
  in->name = name;
  in->tensor = t;
  m.tensor_inputs.push_back(std::move(in));
}

// A golden case whose outputs the reference kernels compute here, one
// tolerance for every output (float models: rounding noise only). It
// finishes and runs the model once more: for tests and seeds; the tools pass
// the outputs they already have to host::AddGoldenCase.
inline bool AddReferenceGolden(fb::ModelT& model, const std::vector<float>& rows, uint32_t n,
                               float tolerance, std::string* error,
                               const std::vector<uint8_t>& tensor_input = {}) {
  if (rows.size() != static_cast<size_t>(n) * model.inputs.size()) {
    *error = "golden case: " + std::to_string(rows.size()) + " values are not " +
             std::to_string(n) + " rows";
    return false;
  }
  host::RuntimeModel rt;
  std::vector<float> out;
  if (rt.Load(host::FinishModel(model, model.max_batch ? model.max_batch : 1), n,
              MTAN_BACKEND_REFERENCE, error) != MTAN_OK ||
      rt.Run(rows.data(), n, MTAN_ALL_TASKS, &out, error, tensor_input) != MTAN_OK)
    return false;
  return host::AddGoldenCase(model, rows, n, out,
                             std::vector<float>(host::OutputsPerRow(model), tolerance), error,
                             tensor_input);
}

// Ids beside two features: s = x + EMBEDDING_BAG(ids [4], table [6, 2]),
// p = sigmoid(w . s + b), one binary task "click", with a golden case whose
// ids include the padding -1 (the fuzz seed of tensor inputs).
inline fb::ModelT IdsModel(uint32_t seed) {
  host::Rng rng(seed);
  auto values = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(0.5 * rng.Normal());
    return v;
  };
  fb::ModelT m;
  m.buffers.push_back(std::make_unique<fb::BufferT>());
  for (const char* name : {"f0", "f1"}) {
    auto in = std::make_unique<fb::InputT>();
    in->name = name;
    m.inputs.push_back(std::move(in));
  }
  m.input_tensor = AddTensor(m, "input", {2});
  const int x = AddTensor(m, "x", {2}), ids = AddTensor(m, "ids", {4});
  MakeIdsInput(m, ids, "ids");
  AddOp(m, fb::OpCode::QUANTIZE, {m.input_tensor}, x);
  const auto table = values(12), w = values(2), b = values(1);
  const int bag = AddTensor(m, "bag", {2}), s = AddTensor(m, "s", {2});
  AddOp(m, fb::OpCode::EMBEDDING_BAG, {ids, AddTensor(m, "table", {6, 2}, &table)}, bag);
  AddOp(m, fb::OpCode::ADD, {x, bag}, s);
  const int z = AddTensor(m, "z", {1}), p = AddTensor(m, "p", {1});
  AddOp(m, fb::OpCode::FULLY_CONNECTED, {s, AddTensor(m, "w", {1, 2}, &w), AddTensor(m, "b", {1}, &b)}, z);
  AddOp(m, fb::OpCode::LOGISTIC, {z}, p);
  auto task = std::make_unique<fb::TaskT>();
  task->name = "click";
  task->output = p;
  m.tasks.push_back(std::move(task));
  m.metadata = std::make_unique<fb::MetadataT>();
  return m;
}

// n rows of ids 0..5 and -1 for IdsModel, as bytes.
inline std::vector<uint8_t> IdsRows(uint32_t n) {
  std::vector<uint8_t> bytes(static_cast<size_t>(n) * 4 * 8);
  for (size_t k = 0; k < bytes.size() / 8; ++k) {
    const int64_t id = static_cast<int64_t>(k % 7) - 1;
    std::memcpy(&bytes[k * 8], &id, 8);
  }
  return bytes;
}

}  // namespace mtan::tiny
