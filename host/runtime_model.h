// Running a .mtan file on the host through the public runtime API: aligned
// model bytes, a model over an owned arena, and unpacking a verified file
// into the object API. How every host tool and test runs a model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mtan/mtan.h"
#include "mtan_generated.h"

namespace mtan::host {

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
  // Runs n rows (any n: split into max_batch chunks) into *out. A model with
  // tensor inputs takes their rows in `tensor_input`, laid out as a golden
  // case's: each tensor input's n rows in turn.
  mtan_status Run(const float* rows, uint32_t n, int32_t task, std::vector<float>* out,
                  std::string* error, const std::vector<uint8_t>& tensor_input = {}) {
    return RunRange(rows, n, 0, n, task, out, error, tensor_input);
  }
  // Run on rows [first, first + n) of a set of `total` rows: `rows` and
  // `tensor_input` (laid out as Run's) hold all `total` of them.
  mtan_status RunRange(const float* rows, uint32_t total, uint32_t first, uint32_t n, int32_t task,
                       std::vector<float>* out, std::string* error,
                       const std::vector<uint8_t>& tensor_input = {});
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

// The runtime's backends by the tools' names (--backend): "default" (the
// fastest this build and CPU have: XNNPACK, and the VNNI int8 kernels on x86
// cores with them), "xnnpack" (XNNPACK's kernels only), "reference".
inline constexpr const char* kBackendNames[] = {"default", "xnnpack", "reference"};
bool BackendFromName(const std::string& name, mtan_backend* out);
const char* BackendName(mtan_backend backend);


// Verifies with the runtime's verifier, then unpacks into the object API.
// On failure returns false and puts the runtime's status and message in *error.
bool UnpackModel(const ModelBytes& bytes, fb::ModelT* model, std::string* error);

}  // namespace mtan::host
