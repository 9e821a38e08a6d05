#include "test_models.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "calibrate.h"
#include "doctest/doctest.h"

namespace mtan::test {
host::MtanWeights RandomMtan(uint32_t seed, int features) {
  host::Rng rng(seed);
  host::MtanWeights w;
  for (int i = 0; i < features; ++i) {
    w.feature_names.push_back("f" + std::to_string(i));
    w.mean.push_back(i % 3 == 0 ? 50.0f : (i % 3 == 1 ? 0.5f : 3.0f));  // price, flag, count
    w.stddev.push_back(i % 3 == 0 ? 40.0f : (i % 3 == 1 ? 0.5f : 2.0f));
  }
  w.trunks.push_back({host::RandomDense(rng, features, 32), host::RandomDense(rng, 32, 16)});
  const char* names[3] = {"click", "category", "spend"};
  const fb::TaskKind kinds[3] = {fb::TaskKind::BINARY, fb::TaskKind::MULTICLASS,
                                 fb::TaskKind::REGRESSION};
  const int outs[3] = {1, 4, 1};
  for (int t = 0; t < 3; ++t) {
    host::TaskHead h;
    h.name = names[t];
    h.kind = kinds[t];
    if (t == 1) h.class_names = {"a", "b", "c", "d"};
    if (t == 2) h.transform = fb::OutputTransform::EXPM1;
    h.has_mask = true;
    h.mask_down = host::RandomDense(rng, 16, 8);
    h.mask_up = host::RandomDense(rng, 8, 16);
    h.task = host::RandomDense(rng, 16, 12);
    h.has_cross = true;
    h.att = host::RandomDense(rng, 12, 6);
    h.att_score = host::RandomDense(rng, 6, 1);
    h.head = host::RandomDense(rng, 12, outs[t]);
    w.tasks.push_back(std::move(h));
  }
  return w;
}

std::vector<float> RandomRows(uint32_t seed, int rows, int features) {
  std::mt19937 rng(seed);
  std::lognormal_distribution<float> price(3.5f, 0.8f);
  std::bernoulli_distribution flag(0.5);
  std::poisson_distribution<int> count(3.0);
  std::vector<float> x(static_cast<size_t>(rows) * features);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < features; ++i)
      x[static_cast<size_t>(r) * features + i] =
          i % 3 == 0 ? price(rng) : (i % 3 == 1 ? static_cast<float>(flag(rng)) : static_cast<float>(count(rng)));
  return x;
}

fb::ModelT FloatModel(uint32_t seed) { return host::BuildFloatModel(RandomMtan(seed)); }

fb::ModelT Int8Model(uint32_t seed) { return Int8Model(RandomMtan(seed), seed); }

host::MtanWeights RandomIdMtan(uint32_t seed) {
  host::MtanWeights w = RandomMtan(seed);
  host::Rng rng(seed + 100);
  host::EmbeddingTable items{"items", fb::IdMap::VOCABULARY, {}, 0, 31, 8, {}};
  for (int64_t k = 100; k < 400; k += 10) items.vocabulary.push_back(k);
  host::EmbeddingTable words{"words", fb::IdMap::HASHED, {}, 16, 16, 4, {}};
  for (auto* t : {&items, &words}) {
    t->w.resize(static_cast<size_t>(t->rows) * t->dim);
    for (float& v : t->w) v = static_cast<float>(0.5 * rng.Normal());
  }
  w.tables = {items, words};
  w.id_inputs = {{"item", 1, fb::Combiner::MEAN, 0}, {"viewed", 6, fb::Combiner::MEAN, 0},
                 {"words", 4, fb::Combiner::SUM, 1}};
  const int in = static_cast<int>(w.feature_names.size()) + 8 + 8 + 4;
  w.trunks[0][0] = host::RandomDense(rng, in, w.trunks[0][0].out);
  return w;
}

std::vector<uint8_t> RandomIds(uint32_t seed, int rows) {
  host::Rng rng(seed);
  std::vector<int64_t> ids;
  for (int length : {1, 6, 4}) {
    for (int r = 0; r < rows; ++r) {
      const int n = length == 1 ? 1 : static_cast<int>(rng.Below(length + 1));
      for (int l = 0; l < length; ++l)
        ids.push_back(l >= n ? -1 : length == 4 ? static_cast<int64_t>(rng.Next() >> 1)
                                                : 95 + 5 * static_cast<int64_t>(rng.Below(64)));
    }
  }
  const uint8_t* p = reinterpret_cast<const uint8_t*>(ids.data());
  return {p, p + ids.size() * 8};
}

fb::ModelT Int8Model(const host::MtanWeights& w, uint32_t seed) {
  fb::ModelT f = host::BuildFloatModel(w);
  const int n = 512;
  std::vector<std::vector<float>> values;
  std::string error;
  REQUIRE_MESSAGE(host::CollectActivations(f, RandomRows(seed + 1, n), n, &values, &error, nullptr,
                                           w.id_inputs.empty() ? std::vector<uint8_t>{}
                                                               : RandomIds(seed + 1, n)),
                  error);
  return host::QuantizeModel(f, host::CalibrateRanges(values, host::CalibrationMethod::kMinMax));
}

namespace {
// These edits also run outside doctest (platforms_tests demo), so they throw.
void Expect(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

fb::TensorT& Named(fb::ModelT& m, const std::string& name) {
  for (auto& t : m.tensors)
    if (t->name == name) return *t;
  throw std::invalid_argument("no tensor " + name);
}
}  // namespace

void NegateHead(fb::ModelT& q, const std::string& task) {
  fb::TensorT& w = Named(q, task + ".head.weight");
  fb::TensorT& b = Named(q, task + ".head.bias");
  Expect(w.dtype == fb::DType::INT8 && b.dtype == fb::DType::INT32, task + ": not an int8 head");
  for (uint8_t& v : q.buffers[w.buffer]->data) v = static_cast<uint8_t>(-static_cast<int8_t>(v));
  std::vector<uint8_t>& bias = q.buffers[b.buffer]->data;
  for (size_t i = 0; i + 4 <= bias.size(); i += 4) {
    int32_t v;
    std::memcpy(&v, &bias[i], 4);
    v = -v;
    std::memcpy(&bias[i], &v, 4);
  }
}

void SwapClasses(fb::ModelT& q, const std::string& task, int a, int b) {
  fb::TensorT& w = Named(q, task + ".head.weight");
  fb::TensorT& bias = Named(q, task + ".head.bias");
  Expect(w.dtype == fb::DType::INT8, task + ": not an int8 head");
  const size_t in = static_cast<size_t>(w.shape.at(1));
  std::vector<uint8_t>& wv = q.buffers[w.buffer]->data;
  std::swap_ranges(wv.begin() + a * in, wv.begin() + (a + 1) * in, wv.begin() + b * in);
  std::vector<uint8_t>& bv = q.buffers[bias.buffer]->data;
  std::swap_ranges(bv.begin() + 4 * a, bv.begin() + 4 * a + 4, bv.begin() + 4 * b);
  std::swap(w.quantization->scale.at(a), w.quantization->scale.at(b));
}

Loaded::Loaded(const std::vector<uint8_t>& file, uint32_t max_batch, mtan_backend backend) {
  status = rt.Load(file, max_batch, backend, nullptr);
  model = rt.get();
}

std::vector<float> Loaded::Run(const std::vector<float>& rows, uint32_t n, int32_t task) {
  std::vector<float> out;
  std::string error;
  REQUIRE_MESSAGE(rt.Run(rows.data(), n, task, &out, &error) == MTAN_OK, error);
  return out;
}

}  // namespace mtan::test
