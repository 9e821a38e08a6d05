// mtan-bench's models: a verified file and the facts of its graph the report
// needs, and one model loaded on one backend for one maximum batch, with its
// load times and memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench.h"
#include "model_io.h"
#include "mtan/mtan.h"

namespace mtan::bench {

// Fresh anonymous pages for each cold load: the load pays its page faults
// the way a first load after start-up does, every time (a heap block could
// be memory an earlier load already touched).
class FreshPages {
 public:
  FreshPages() = default;
  FreshPages(const FreshPages&) = delete;
  FreshPages& operator=(const FreshPages&) = delete;
  ~FreshPages() { Release(); }
  bool Map(size_t bytes);
  uint8_t* data() const { return data_; }

 private:
  void Release();
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

// A verified model file and the facts of its graph the report needs.
struct ModelFile {
  std::string name;
  host::ModelBytes bytes;
  const fb::Model* fb = nullptr;
  bool int8 = false;
  uint64_t weight_bytes = 0;          // constant buffers (weights, biases)
  uint64_t largest_act_row_bytes = 0;  // the largest activation tensor, per row
  std::vector<std::string> task_names;
};

// Verifies `file` (reference backend sizing) and reads its graph facts.
bool OpenModel(const std::string& name, const std::vector<uint8_t>& file, ModelFile* m,
               std::string* error);
// Index of the task named `name`, or -2.
int32_t FindTask(const ModelFile& m, const std::string& name);
// Operators a run of `task` executes, in order.
std::vector<uint32_t> PlanOf(const fb::Model& m, int32_t task);
// Million operations (2 x multiply-accumulates) of the fully-connected
// layers in a plan, per row.
double FcMopPerRow(const fb::Model& m, const std::vector<uint32_t>& plan);
// Floats per row a run of `task` returns.
uint32_t OutputFloats(const ModelFile& m, int32_t task);

// One model loaded on one backend for one maximum batch, with its cold load
// time and its memory.
class Instance {
 public:
  Instance() = default;
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;
  ~Instance() { mtan_unload(model_); }

  // Sizes the arena for `backend`, then loads `load_runs` times into fresh
  // pages (cold) and as often into the pages the last load touched (warm).
  bool Load(const ModelFile& file, uint32_t max_batch, mtan_backend backend, int load_runs,
            std::string* error);
  // Arena, packed, activation and weight bytes of this instance.
  void FillMemory(Row* r) const;

  mtan_model* model() const { return model_; }
  const ModelFile& file() const { return *file_; }
  mtan_backend backend() const { return backend_; }
  double load_us() const { return load_us_; }
  double load_warm_us() const { return load_warm_us_; }
  uint64_t load_runs() const { return load_runs_; }  // loads behind each median

 private:
  const ModelFile* file_ = nullptr;
  mtan_backend backend_ = MTAN_BACKEND_XNNPACK;
  uint32_t max_batch_ = 0;
  size_t required_ = 0, used_ = 0, packed_ = 0;
  double load_us_ = 0, load_warm_us_ = 0;
  uint64_t load_runs_ = 0;
  FreshPages arena_;
  mtan_model* model_ = nullptr;
};


}  // namespace mtan::bench
