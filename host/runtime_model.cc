#include "runtime_model.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace mtan::host {

void ModelBytes::Free::operator()(uint8_t* p) const { std::free(p); }

ModelBytes::ModelBytes(const std::vector<uint8_t>& bytes) : size_(bytes.size()) {
  void* p = nullptr;
  if (posix_memalign(&p, 64, std::max<size_t>(bytes.size(), 1)) != 0) throw std::bad_alloc();
  if (!bytes.empty()) memcpy(p, bytes.data(), bytes.size());
  data_.reset(static_cast<uint8_t*>(p));
}

std::string RuntimeError(mtan_status status) {
  return std::string(mtan_status_string(status)) + ": " + mtan_last_error();
}

bool BackendFromName(const std::string& name, mtan_backend* out) {
  static constexpr mtan_backend kBackends[] = {MTAN_BACKEND_DEFAULT, MTAN_BACKEND_XNNPACK,
                                               MTAN_BACKEND_REFERENCE};
  for (size_t i = 0; i < std::size(kBackends); ++i)
    if (name == kBackendNames[i]) {
      *out = kBackends[i];
      return true;
    }
  return false;
}

const char* BackendName(mtan_backend backend) {
  return backend == MTAN_BACKEND_REFERENCE ? "reference"
         : backend == MTAN_BACKEND_XNNPACK ? "xnnpack"
                                           : "default";
}

mtan_status RuntimeModel::Load(const std::vector<uint8_t>& file, uint32_t max_batch,
                               mtan_backend backend, std::string* error) {
  Unload();
  bytes_ = ModelBytes(file);
  mtan_status s = mtan_init();
  mtan_options opt = mtan_options_default();
  opt.max_batch = max_batch;
  opt.backend = backend;
  size_t need = 0;
  if (s == MTAN_OK) s = mtan_arena_size(bytes_.data(), bytes_.size(), &opt, &need);
  if (s == MTAN_OK) {
    try {
      storage_.assign(need + 64, 0);
    } catch (const std::bad_alloc&) {
      // (mtan-eval used to say only "std::bad_alloc" for a 17 GB arena.)
      if (error != nullptr)
        *error = "MTAN_ERROR_ARENA_TOO_SMALL: this host cannot allocate the " +
                 std::to_string(need) + "-byte arena the model needs";
      return MTAN_ERROR_ARENA_TOO_SMALL;
    }
    uint8_t* arena = reinterpret_cast<uint8_t*>(
        (reinterpret_cast<uintptr_t>(storage_.data()) + 63) & ~uintptr_t{63});
    s = mtan_load(bytes_.data(), bytes_.size(), &opt, arena, need, &model_);
  }
  if (s == MTAN_OK) s = mtan_arena_used(model_, &arena_bytes_);
  if (s == MTAN_OK) s = mtan_max_batch(model_, &max_batch_);
  if (s != MTAN_OK && error != nullptr) *error = RuntimeError(s);
  return s;
}

void RuntimeModel::Unload() {
  mtan_unload(model_);
  model_ = nullptr;
}

mtan_status RuntimeModel::RunRange(const float* rows, uint32_t total_rows, uint32_t first,
                                   uint32_t n, int32_t task, std::vector<float>* out,
                                   std::string* error, const std::vector<uint8_t>& tensor_input) {
  if (first > total_rows || n > total_rows - first) {
    if (error != nullptr) *error = "rows past the end of the row set";
    return MTAN_ERROR_INVALID_ARGUMENT;
  }
  uint32_t per_row = 0, inputs = 0, tensor_inputs = 0;
  mtan_status s = mtan_output_size(model_, task, &per_row);
  if (s == MTAN_OK) s = mtan_input_count(model_, &inputs);
  if (s == MTAN_OK) s = mtan_tensor_input_count(model_, &tensor_inputs);
  // Where each tensor input's rows start in `tensor_input` (the golden layout).
  std::vector<size_t> start(tensor_inputs), row_bytes(tensor_inputs);
  size_t total = 0;
  for (uint32_t j = 0; s == MTAN_OK && j < tensor_inputs; ++j) {
    mtan_input_info info;
    s = mtan_tensor_input_info(model_, j, &info);
    start[j] = total;
    row_bytes[j] = info.row_bytes;
    total += static_cast<size_t>(total_rows) * info.row_bytes;
  }
  if (s == MTAN_OK && total != tensor_input.size()) {
    if (error != nullptr && tensor_input.empty()) {
      mtan_input_info first;
      mtan_tensor_input_info(model_, 0, &first);
      *error = "the model takes " + std::to_string(tensor_inputs) + " tensor input(s) beside the "
               "features (the first is '" + first.name + "'), and none were given";
    } else if (error != nullptr) {
      *error = "tensor inputs: " + std::to_string(tensor_input.size()) + " bytes for " +
               std::to_string(total_rows) + " rows that need " + std::to_string(total);
    }
    return MTAN_ERROR_INVALID_ARGUMENT;
  }
  out->assign(static_cast<size_t>(n) * per_row, 0.0f);
  std::vector<const void*> chunk(tensor_inputs);
  for (uint32_t r0 = 0; s == MTAN_OK && r0 < n; r0 += max_batch_) {
    const uint32_t b = std::min(max_batch_, n - r0);
    const size_t row = static_cast<size_t>(first) + r0;
    for (uint32_t j = 0; j < tensor_inputs; ++j) chunk[j] = tensor_input.data() + start[j] + row * row_bytes[j];
    s = mtan_run_inputs(model_, rows + row * inputs, chunk.data(), tensor_inputs,
                        b, task, out->data() + static_cast<size_t>(r0) * per_row,
                        static_cast<size_t>(b) * per_row, nullptr);
  }
  if (s != MTAN_OK && error != nullptr) *error = RuntimeError(s);
  return s;
}

bool UnpackModel(const ModelBytes& bytes, fb::ModelT* model, std::string* error) {
  mtan_status s = mtan_init();
  mtan_options opt = mtan_options_default();
  opt.backend = MTAN_BACKEND_REFERENCE;
  size_t need = 0;
  if (s == MTAN_OK) s = mtan_arena_size(bytes.data(), bytes.size(), &opt, &need);
  if (s != MTAN_OK) {
    *error = RuntimeError(s);
    return false;
  }
  fb::GetModel(bytes.data())->UnPackTo(model);
  return true;
}

}  // namespace mtan::host
