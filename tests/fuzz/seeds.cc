// Writes the fuzzer's seed corpus: small valid models of every architecture
// mtan-train builds (mtan, mtan-mask, mtan-cross, shared-bottom, single),
// with 1 to 4 tasks of each kind, float32 and int8, with and without golden
// cases, several maximum batches and both memory plans, and two models whose
// one weight feeds many operators. Generated at build
// time so that no binary seed is committed.
//
//   mtan_fuzz_seeds OUT_DIR     (checks that each seed loads, runs and passes
//                                its self-test, and exits non-zero otherwise)
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "model_io.h"
#include "tiny_models.h"

namespace {

using namespace mtan;
using tiny::Rows;

// Loads, runs and self-tests a seed, so that the corpus starts valid.
bool Check(const std::vector<uint8_t>& file, int features, std::string* error,
           const std::vector<uint8_t>& tensor_input = {}) {
  host::RuntimeModel rt;
  if (rt.Load(file, 0, MTAN_BACKEND_DEFAULT, error) != MTAN_OK) return false;
  std::vector<float> out;
  if (rt.Run(Rows(7, 3, features).data(), 3, MTAN_ALL_TASKS, &out, error, tensor_input) != MTAN_OK)
    return false;
  const mtan_status s = mtan_self_test(rt.get());
  if (s != MTAN_OK && s != MTAN_ERROR_NO_GOLDEN_CASES) {
    *error = host::RuntimeError(s);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const fb::TaskKind kKinds[3] = {fb::TaskKind::BINARY, fb::TaskKind::MULTICLASS,
                                  fb::TaskKind::REGRESSION};
  const uint32_t kBatches[3] = {1, 4, 16};
  int written = 0;
  uint32_t seed = 1;
  for (const tiny::Arch& arch : tiny::kArchs) {
    for (int tasks = 1; tasks <= 4; ++tasks) {
      // All tasks of one kind (each kind in turn), or the kinds mixed.
      for (int pattern = 0; pattern < 4; ++pattern) {
        if (pattern == 3 && tasks == 1) continue;
        std::vector<fb::TaskKind> kinds;
        for (int t = 0; t < tasks; ++t) kinds.push_back(kKinds[pattern < 3 ? pattern : t % 3]);
        for (bool int8 : {false, true}) {
          ++seed;
          const int features = 2 + static_cast<int>(seed % 5);
          std::string error;
          fb::ModelT m = host::BuildFloatModel(tiny::Weights(arch, kinds, features, seed));
          if (int8 && !tiny::Quantize(&m, seed, features, &error)) {
            std::fprintf(stderr, "seed %u: %s\n", seed, error.c_str());
            return 1;
          }
          const uint32_t max_batch = kBatches[seed % 3];
          m.max_batch = max_batch;
          if (seed % 2 == 0) {
            const uint32_t rows = 1 + seed % 5;
            if (!tiny::AddReferenceGolden(m, Rows(seed + 100, static_cast<int>(rows), features), rows,
                                          int8 ? 0.05f : 1e-4f, &error)) {
              std::fprintf(stderr, "seed %u: golden case: %s\n", seed, error.c_str());
              return 1;
            }
          }
          const auto file = host::FinishModel(m, max_batch, seed % 5 != 0);
          if (!Check(file, features, &error)) {
            std::fprintf(stderr, "seed %u (%s, %d tasks, %s): %s\n", seed, arch.name, tasks,
                         int8 ? "int8" : "float", error.c_str());
            return 1;
          }
          const std::string path = dir + "/" + arch.name + "-" + std::to_string(tasks) + "t-" +
                                   (pattern < 3 ? fb::EnumNameTaskKind(kKinds[pattern]) : "MIXED") + (int8 ? "-int8" : "-f32") + ".mtan";
          if (!host::WriteFileAtomic(path, file, &error)) {
            std::fprintf(stderr, "%s\n", error.c_str());
            return 1;
          }
          ++written;
        }
      }
    }
  }
  // One weight shared by many operators (issue 12): the sharing mutator's
  // starting points.
  for (const auto& [ops, channels] : {std::pair<uint32_t, int32_t>{8, 32}, {200, 16}}) {
    fb::ModelT m = tiny::SharedWeightModel(ops, channels);
    std::string error;
    const auto file = host::FinishModel(m, 1);
    const std::string path = dir + "/shared-weight-" + std::to_string(ops) + "x" +
                             std::to_string(channels) + ".mtan";
    if (!Check(file, 1, &error) || !host::WriteFileAtomic(path, file, &error)) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), error.c_str());
      return 1;
    }
    ++written;
  }
  // Int64 ids through an embedding bag (issue 14's tensor inputs).
  {
    fb::ModelT m = tiny::IdsModel(3);
    std::string error;
    const std::string path = dir + "/ids-embedding-bag.mtan";
    if (!tiny::AddReferenceGolden(m, Rows(9, 5, 2), 5, 1e-4f, &error, tiny::IdsRows(5))) {
      std::fprintf(stderr, "%s: golden case: %s\n", path.c_str(), error.c_str());
      return 1;
    }
    const auto file = host::FinishModel(m, 4);
    if (!Check(file, 2, &error, tiny::IdsRows(3)) || !host::WriteFileAtomic(path, file, &error)) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), error.c_str());
      return 1;
    }
    ++written;
  }
  // Issue 15's id maps and tables: a vocabulary (keys 0, 2, .., 8 and the
  // unknown row) with a mean bag, hashing into the table's 6 rows, and a
  // row-wise int8 table.
  for (const char* variant : {"vocabulary-mean", "hashed", "int8-table"}) {
    fb::ModelT m = tiny::IdsModel(4);
    const std::string v = variant;
    fb::TensorInputT& in = *m.tensor_inputs[0];
    fb::OperatorT* bag = nullptr;
    for (auto& op : m.operators)
      if (op->opcode == fb::OpCode::EMBEDDING_BAG) bag = op.get();
    fb::TensorT& table = *m.tensors[bag->inputs[1]];
    if (v == "vocabulary-mean") {
      const int64_t keys[5] = {0, 2, 4, 6, 8};
      auto b = std::make_unique<fb::BufferT>();
      b->data.assign(reinterpret_cast<const uint8_t*>(keys), reinterpret_cast<const uint8_t*>(keys + 5));
      m.buffers.push_back(std::move(b));
      in.id_map = fb::IdMap::VOCABULARY;
      in.vocabulary = static_cast<uint32_t>(m.buffers.size() - 1);
      bag->combiner = fb::Combiner::MEAN;
    } else if (v == "hashed") {
      in.id_map = fb::IdMap::HASHED;
      in.hash_buckets = 6;
    } else {
      const auto& data = m.buffers[table.buffer]->data;
      std::vector<float> f(data.size() / 4);
      std::memcpy(f.data(), data.data(), data.size());
      std::vector<int8_t> q;
      auto quant = std::make_unique<fb::QuantizationT>();
      host::QuantizeRowsAsymmetric(f, table.shape[0], table.shape[1], &q, &quant->scale,
                                   &quant->zero_point);
      m.buffers[table.buffer]->data.assign(reinterpret_cast<uint8_t*>(q.data()),
                                           reinterpret_cast<uint8_t*>(q.data()) + q.size());
      table.dtype = fb::DType::INT8;
      table.quantization = std::move(quant);
    }
    std::string error;
    const std::string path = dir + "/ids-" + v + ".mtan";
    if (!tiny::AddReferenceGolden(m, Rows(10, 5, 2), 5, 1e-4f, &error, tiny::IdsRows(5))) {
      std::fprintf(stderr, "%s: golden case: %s\n", path.c_str(), error.c_str());
      return 1;
    }
    const auto file = host::FinishModel(m, 4);
    if (!Check(file, 2, &error, tiny::IdsRows(3)) || !host::WriteFileAtomic(path, file, &error)) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), error.c_str());
      return 1;
    }
    ++written;
  }
  std::printf("mtan_fuzz_seeds: %d models in %s\n", written, dir.c_str());
  return 0;
}
