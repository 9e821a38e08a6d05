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

mtan_status RuntimeModel::Run(const float* rows, uint32_t n, int32_t task, std::vector<float>* out,
                              std::string* error) {
  uint32_t per_row = 0, inputs = 0;
  mtan_status s = mtan_output_size(model_, task, &per_row);
  if (s == MTAN_OK) s = mtan_input_count(model_, &inputs);
  out->assign(static_cast<size_t>(n) * per_row, 0.0f);
  for (uint32_t r0 = 0; s == MTAN_OK && r0 < n; r0 += max_batch_) {
    const uint32_t b = std::min(max_batch_, n - r0);
    s = mtan_run(model_, rows + static_cast<size_t>(r0) * inputs, b, task,
                 out->data() + static_cast<size_t>(r0) * per_row, static_cast<size_t>(b) * per_row,
                 nullptr);
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
