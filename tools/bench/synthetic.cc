#include "synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "quantize.h"

namespace mtan::bench {
namespace {

host::MtanWeights DefaultMtan(uint32_t seed) {
  constexpr int kFeatures = 48, kTrunk1 = 256, kTrunk2 = 128, kMask = 32, kTask = 64, kAtt = 32;
  // host::Rng, not std::*_distribution: one seed, one model, on every
  // standard library.
  host::Rng rng(seed);
  host::MtanWeights w;
  for (int i = 0; i < kFeatures; ++i) {
    w.feature_names.push_back("f" + std::to_string(i));
    w.mean.push_back(static_cast<float>(-5.0 + 55.0 * rng.Uniform()));
    w.stddev.push_back(static_cast<float>(0.5 + 19.5 * rng.Uniform()));
  }
  w.trunks.push_back({host::RandomDense(rng, kFeatures, kTrunk1), host::RandomDense(rng, kTrunk1, kTrunk2)});
  struct Spec {
    const char* name;
    fb::TaskKind kind;
    int outputs;
  };
  const Spec specs[4] = {{"click", fb::TaskKind::BINARY, 1},
                         {"purchase", fb::TaskKind::BINARY, 1},
                         {"category", fb::TaskKind::MULTICLASS, 5},
                         {"spend", fb::TaskKind::REGRESSION, 1}};
  for (const Spec& s : specs) {
    host::TaskHead h;
    h.name = s.name;
    h.kind = s.kind;
    if (s.kind == fb::TaskKind::MULTICLASS)
      for (int k = 0; k < s.outputs; ++k) h.class_names.push_back("c" + std::to_string(k));
    if (s.kind == fb::TaskKind::REGRESSION) h.transform = fb::OutputTransform::EXPM1;
    h.has_mask = true;
    h.mask_down = host::RandomDense(rng, kTrunk2, kMask);
    h.mask_up = host::RandomDense(rng, kMask, kTrunk2);
    h.task = host::RandomDense(rng, kTrunk2, kTask);
    h.has_cross = true;
    h.att = host::RandomDense(rng, kTask, kAtt);
    h.att_score = host::RandomDense(rng, kAtt, 1);
    h.head = host::RandomDense(rng, kTask, s.outputs);
    w.tasks.push_back(std::move(h));
  }
  return w;
}

}  // namespace

std::vector<float> RowsForModel(const fb::Model& model, uint32_t rows, uint32_t seed) {
  const auto* inputs = model.inputs();
  const uint32_t n = inputs ? inputs->size() : 0;
  std::mt19937 rng(seed);
  std::normal_distribution<float> z(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows) * n);
  for (uint32_t r = 0; r < rows; ++r)
    for (uint32_t i = 0; i < n; ++i)
      x[static_cast<size_t>(r) * n + i] = inputs->Get(i)->mean() + inputs->Get(i)->std() * z(rng);
  return x;
}

std::vector<std::vector<uint8_t>> IdsForModel(const fb::Model& model, uint32_t rows,
                                              uint32_t seed) {
  std::vector<std::vector<uint8_t>> out;
  const auto* inputs = model.tensor_inputs();
  if (inputs == nullptr) return out;
  std::mt19937_64 rng(seed ^ 0x1D5ull);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (const fb::TensorInput* in : *inputs) {
    const fb::Tensor* t = model.tensors()->Get(static_cast<uint32_t>(in->tensor()));
    uint32_t length = 1;
    for (int32_t d : *t->shape()) length *= static_cast<uint32_t>(d);
    const flatbuffers::Vector<uint8_t>* keys =
        in->id_map() == fb::IdMap::VOCABULARY ? model.buffers()->Get(in->vocabulary())->data() : nullptr;
    const uint32_t vocabulary = keys ? keys->size() / 8 : 0;
    std::vector<int64_t> ids(static_cast<size_t>(rows) * length, -1);
    for (uint32_t r = 0; r < rows; ++r) {
      const uint32_t n = length == 1 ? 1 : 1 + static_cast<uint32_t>(rng() % length);
      for (uint32_t l = 0; l < n; ++l) {
        int64_t id = 0;
        if (vocabulary > 0) {
          const double x = u(rng);
          const uint32_t k = std::min(vocabulary - 1, static_cast<uint32_t>(vocabulary * x * x * x));
          std::memcpy(&id, keys->data() + static_cast<size_t>(k) * 8, 8);
        } else if (in->id_map() == fb::IdMap::HASHED) {
          id = static_cast<int64_t>(rng() >> 1);
        }
        ids[static_cast<size_t>(r) * length + l] = id;
      }
    }
    const uint8_t* p = reinterpret_cast<const uint8_t*>(ids.data());
    out.emplace_back(p, p + ids.size() * 8);
  }
  return out;
}

bool MakeSyntheticModels(uint32_t seed, uint32_t max_batch, SyntheticModels* out,
                         std::string* error, int calibration_rows) {
  try {
    fb::ModelT f = host::BuildFloatModel(DefaultMtan(seed));
    f.metadata->producer = "mtan-bench --synthetic";
    f.metadata->description = "default MTAN shapes with random weights (seed " +
                              std::to_string(seed) + "), for benchmarking only";
    out->float32 = host::FinishModel(f, max_batch);
    // Calibrate on rows drawn from the model's own standardisation.
    const fb::Model* view = fb::GetModel(out->float32.data());
    const std::vector<float> rows = RowsForModel(*view, calibration_rows, seed + 1);
    std::vector<std::vector<float>> values;
    if (!host::CollectActivations(f, rows, calibration_rows, &values, error)) return false;
    std::vector<host::Range> ranges(values.size());
    for (size_t t = 0; t < values.size(); ++t) {
      for (float v : values[t]) {
        ranges[t].min = std::min(ranges[t].min, v);
        ranges[t].max = std::max(ranges[t].max, v);
      }
    }
    fb::ModelT q = host::QuantizeModel(f, ranges);
    q.metadata->producer = "mtan-bench --synthetic";
    out->int8 = host::FinishModel(q, max_batch);
  } catch (const std::exception& e) {
    *error = std::string("synthetic model: ") + e.what();
    return false;
  }
  return true;
}

}  // namespace mtan::bench
