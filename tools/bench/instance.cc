#include "instance.h"

#include <algorithm>

#include <sys/mman.h>

#include "harness.h"
#include "stats.h"

namespace mtan::bench {

bool FreshPages::Map(size_t bytes) {
  Release();
  void* p = mmap(nullptr, std::max<size_t>(bytes, 1), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  data_ = static_cast<uint8_t*>(p);
  bytes_ = std::max<size_t>(bytes, 1);
  return true;
}

void FreshPages::Release() {
  if (data_ != nullptr) munmap(data_, bytes_);
  data_ = nullptr;
}

bool OpenModel(const std::string& name, const std::vector<uint8_t>& file, ModelFile* m,
               std::string* error) {
  m->name = name;
  m->bytes = host::ModelBytes(file);
  mtan_options opt = mtan_options_default();
  opt.backend = MTAN_BACKEND_REFERENCE;
  size_t need = 0;
  const mtan_status s = mtan_arena_size(m->bytes.data(), m->bytes.size(), &opt, &need);
  if (s != MTAN_OK) {
    *error = name + ": " + host::RuntimeError(s);
    return false;
  }
  m->fb = fb::GetModel(m->bytes.data());
  const int32_t input = m->fb->input_tensor();
  for (uint32_t t = 0; t < m->fb->tensors()->size(); ++t) {
    const fb::Tensor* x = m->fb->tensors()->Get(t);
    if (x->dtype() == fb::DType::INT8) m->int8 = true;
    if (x->buffer() != 0) {
      m->weight_bytes += m->fb->buffers()->Get(x->buffer())->data()->size();
    } else if (static_cast<int32_t>(t) != input) {
      const uint64_t row = static_cast<uint64_t>(x->shape()->Get(0)) *
                           (x->dtype() == fb::DType::INT8 ? 1 : 4);
      m->largest_act_row_bytes = std::max(m->largest_act_row_bytes, row);
    }
  }
  for (const fb::Task* t : *m->fb->tasks()) m->task_names.push_back(t->name()->str());
  return true;
}

int32_t FindTask(const ModelFile& m, const std::string& name) {
  for (size_t k = 0; k < m.task_names.size(); ++k)
    if (m.task_names[k] == name) return static_cast<int32_t>(k);
  return -2;
}

std::vector<uint32_t> PlanOf(const fb::Model& m, int32_t task) {
  std::vector<uint32_t> plan;
  if (task == MTAN_ALL_TASKS) {
    for (uint32_t o = 0; o < m.operators()->size(); ++o) plan.push_back(o);
  } else {
    const auto* p = m.tasks()->Get(task)->plan();
    plan.assign(p->begin(), p->end());
  }
  return plan;
}

double FcMopPerRow(const fb::Model& m, const std::vector<uint32_t>& plan) {
  double ops = 0;
  for (uint32_t o : plan) {
    const fb::Operator* op = m.operators()->Get(o);
    if (op->opcode() != fb::OpCode::FULLY_CONNECTED) continue;
    const double in = m.tensors()->Get(op->inputs()->Get(0))->shape()->Get(0);
    const double out = m.tensors()->Get(op->outputs()->Get(0))->shape()->Get(0);
    ops += 2.0 * in * out;
  }
  return ops / 1e6;
}

uint32_t OutputFloats(const ModelFile& m, int32_t task) {
  uint32_t n = 0;
  for (uint32_t k = 0; k < m.fb->tasks()->size(); ++k) {
    if (task != MTAN_ALL_TASKS && static_cast<int32_t>(k) != task) continue;
    n += static_cast<uint32_t>(m.fb->tensors()->Get(m.fb->tasks()->Get(k)->output())->shape()->Get(0));
  }
  return n;
}


bool Instance::Load(const ModelFile& file, uint32_t max_batch, mtan_backend backend, int load_runs,
          std::string* error) {
  file_ = &file;
  backend_ = backend;
  max_batch_ = max_batch;
  mtan_options opt = mtan_options_default();
  opt.max_batch = max_batch;
  opt.backend = MTAN_BACKEND_REFERENCE;
  size_t ref_bytes = 0;
  mtan_status s = mtan_arena_size(file.bytes.data(), file.bytes.size(), &opt, &ref_bytes);
  opt.backend = backend;
  if (s == MTAN_OK) s = mtan_arena_size(file.bytes.data(), file.bytes.size(), &opt, &required_);
  if (s != MTAN_OK) {
    *error = file.name + ": " + host::RuntimeError(s);
    return false;
  }
  // What XNNPACK allocated (operators and packed weights): the only
  // difference between the two backends' layouts.
  packed_ = required_ - ref_bytes;
  // `load_runs` loads, each into fresh pages (cold) or into the arena the
  // last one touched (warm: what a hot swap costs, and, by difference, what
  // the cold load paid the OS for pages); the median.
  auto time_loads = [&](bool fresh, double* median_us) {
    std::vector<double> times;
    for (int i = 0; i < load_runs; ++i) {
      mtan_unload(model_);
      model_ = nullptr;
      if (fresh && !arena_.Map(required_)) {
        *error = file.name + ": cannot map an arena of " + std::to_string(required_) + " bytes";
        return false;
      }
      const auto t0 = Clock::now();
      const mtan_status st =
          mtan_load(file.bytes.data(), file.bytes.size(), &opt, arena_.data(), required_, &model_);
      times.push_back(MicrosSince(t0));
      if (st != MTAN_OK) {
        *error = file.name + ": " + host::RuntimeError(st);
        return false;
      }
    }
    *median_us = Median(times);
    load_runs_ = times.size();
    return true;
  };
  if (!time_loads(true, &load_us_) || !time_loads(false, &load_warm_us_)) return false;
  mtan_arena_used(model_, &used_);
  return true;
}

void Instance::FillMemory(Row* r) const {
  r->arena_required_bytes = required_;
  r->arena_used_bytes = used_;
  r->packed_bytes = packed_;
  r->activation_bytes = static_cast<uint64_t>(file_->fb->activation_bytes_per_row()) * max_batch_;
  r->largest_activation_bytes = file_->largest_act_row_bytes * max_batch_;
  r->weight_bytes = file_->weight_bytes;
  r->memory_budget_bytes = packed_ + 3 * *r->largest_activation_bytes;
}

}  // namespace mtan::bench
