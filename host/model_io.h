// Host-side reading and writing of .mtan files: the one place that builds the
// MTAN graph, plans it (per-task plans, activation memory plan) and seals it
// with the checksum footer. Used by mtan-train, mtan-convert, the tools and
// the tests. Host only: it uses the STL and may throw std::bad_alloc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "file_io.h"  // ReadFile, WriteFileAtomic
#include "mtan/mtan.h"
#include "mtan_generated.h"
#include "rng.h"

namespace mtan::host {

// A dense layer y = W x + b with W row-major [out][in] (PyTorch's layout).
struct Dense {
  int in = 0;
  int out = 0;
  std::vector<float> w;
  std::vector<float> b;
};

struct TaskHead {
  std::string name;
  fb::TaskKind kind = fb::TaskKind::BINARY;
  std::vector<std::string> class_names;  // multiclass: one per class
  fb::OutputTransform transform = fb::OutputTransform::IDENTITY;
  int trunk = 0;           // which trunk feeds this task (arch `single` has one per task)
  bool has_mask = false;   // a = sigmoid(mask_up(relu(mask_down(h)))), h^ = a * h
  Dense mask_down, mask_up;
  Dense task;              // z = relu(task(h^))
  bool has_cross = false;  // e_s = att_score(tanh(att(z_s))); c = sum_s softmax(e)_s z_s
  Dense att, att_score;    // att_score.out == 1
  Dense head;              // o = head(c), then sigmoid / softmax / identity
};

// A layer with N(0, 1/in) weights and N(0, 0.01/in) biases: the random
// networks of the tests, the fuzzer's seeds and mtan-bench --synthetic. Drawn
// from our own generator (rng.h), so a seed gives the same network with any
// standard library.
Dense RandomDense(Rng& rng, int in, int out);

// Float weights of a whole MTAN (or one of its ablations), in the graph's
// terms. Cross-attention pools over the `z` of every task with has_cross.
struct MtanWeights {
  std::vector<std::string> feature_names;
  std::vector<float> mean, stddev;        // per feature, standardisation
  std::vector<std::vector<Dense>> trunks;  // each layer followed by ReLU
  std::vector<TaskHead> tasks;
};

// Builds the float32 graph of `w` in the runtime's operator set. Tensor names
// are stable ("trunk0.fc1", "click.mask.logistic", ...) so that the converter
// and the tools can report per layer.
fb::ModelT BuildFloatModel(const MtanWeights& w);

// Computes every task's plan, the activation memory plan and the version,
// flushes denormal float32 weights to zero (in `model` too, so golden cases
// and checks see the written weights), then serializes with the checksum
// footer. `max_batch` is stored as the
// default maximum batch. `reuse_memory` false gives every activation its own
// bytes, so that all of a run's tensors can be read afterwards (calibration).
std::vector<uint8_t> FinishModel(fb::ModelT& model, uint32_t max_batch, bool reuse_memory = true);

// Serializes as is (no planning) and appends the checksum footer. Tests use
// it to write deliberately broken plans.
std::vector<uint8_t> SealModel(fb::ModelT& model);

// The footer's checksum function (XXH64, seed 0; runtime/src/format.h) of
// any bytes: what `xxhsum -H64` prints for them.
uint64_t Checksum64(const uint8_t* data, size_t n);

// 16-byte aligned bytes of a model file (weights are read in place).
class ModelBytes {
 public:
  ModelBytes() = default;
  explicit ModelBytes(const std::vector<uint8_t>& bytes);
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free { void operator()(uint8_t* p) const; };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

// A model loaded into the runtime over an owned, 64-byte aligned arena: how
// every host tool and test runs a .mtan file.
class RuntimeModel {
 public:
  RuntimeModel() = default;
  RuntimeModel(const RuntimeModel&) = delete;
  RuntimeModel& operator=(const RuntimeModel&) = delete;
  ~RuntimeModel() { Unload(); }
  // max_batch 0: the file's. On failure returns the status; *error (if not
  // null) gets "STATUS: message".
  mtan_status Load(const std::vector<uint8_t>& file, uint32_t max_batch, mtan_backend backend,
                   std::string* error);
  void Unload();
  // Runs n rows (any n: split into max_batch chunks) into *out.
  mtan_status Run(const float* rows, uint32_t n, int32_t task, std::vector<float>* out,
                  std::string* error);
  mtan_model* get() const { return model_; }
  size_t arena_bytes() const { return arena_bytes_; }
  uint32_t max_batch() const { return max_batch_; }
  size_t file_bytes() const { return bytes_.size(); }

 private:
  ModelBytes bytes_;
  std::vector<uint8_t> storage_;
  size_t arena_bytes_ = 0;
  uint32_t max_batch_ = 0;
  mtan_model* model_ = nullptr;
};

// "MTAN_ERROR_X: message" for the runtime's last failure.
std::string RuntimeError(mtan_status status);


// Verifies with the runtime's verifier, then unpacks into the object API.
// On failure returns false and puts the runtime's status and message in *error.
bool UnpackModel(const ModelBytes& bytes, fb::ModelT* model, std::string* error);

// Stores `rows` (n x inputs) and `outputs` (n rows of mtan_run's all-task
// outputs, as the caller computed them, e.g. with the reference kernels) as a
// golden case. `tolerances` has one entry per output of a row (the sum of
// every task's output size), each in that output's units: mtan_self_test
// compares output k of every row within tolerances[k]. The case's scalar
// `tolerance` (read by format-1.0 runtimes) gets the largest. False with a
// message on mismatched sizes or a negative or non-finite tolerance.
bool AddGoldenCase(fb::ModelT& model, const std::vector<float>& rows, uint32_t n,
                   const std::vector<float>& outputs, const std::vector<float>& tolerances,
                   std::string* error);
// The same with the outputs computed here by the reference kernels and one
// tolerance for every output (float models: rounding noise only).
bool AddGoldenCase(fb::ModelT& model, const std::vector<float>& rows, uint32_t n,
                   float tolerance, std::string* error);

// Floats per row of an all-task run of `model`: the sum of every task's
// output size.
size_t OutputsPerRow(const fb::ModelT& model);

// Output size (floats per row) of a task tensor in an object-API model.
int TaskOutputSize(const fb::ModelT& model, const fb::TaskT& task);

}  // namespace mtan::host
