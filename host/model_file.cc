#include "model_file.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "contract.h"
#include "format.h"
#include "memory_planner.h"
#include "runtime_model.h"

namespace mtan::host {
namespace {

// Float weights below the smallest normal float become 0: x86 arithmetic on
// denormals is 10-100x slower (weight decay leaves dead units there), and a
// weight that small changes no output.
void FlushDenormalWeights(fb::ModelT& m) {
  for (const auto& t : m.tensors) {
    if (t->buffer == 0 || t->dtype != fb::DType::FLOAT32 || t->buffer >= m.buffers.size()) continue;
    std::vector<uint8_t>& data = m.buffers[t->buffer]->data;
    for (size_t i = 0; i + sizeof(float) <= data.size(); i += sizeof(float)) {
      float v;
      memcpy(&v, data.data() + i, sizeof v);
      if (std::fpclassify(v) != FP_SUBNORMAL) continue;
      v = std::copysign(0.0f, v);
      memcpy(data.data() + i, &v, sizeof v);
    }
  }
}

}  // namespace

std::vector<uint8_t> FinishModel(fb::ModelT& m, uint32_t max_batch, bool reuse_memory) {
  const int n_ops = static_cast<int>(m.operators.size());
  const int n_t = static_cast<int>(m.tensors.size());
  if (m.buffers.empty() || !m.buffers[0]->data.empty())
    throw std::invalid_argument("buffers[0] must exist and be empty");
  FlushDenormalWeights(m);
  std::vector<Lifetime> life(n_t);
  for (int o = 0; o < n_ops; ++o) {
    for (int t : m.operators[o]->inputs) LifetimeRead(&life.at(t), o);
    LifetimeWritten(&life.at(m.operators[o]->outputs.at(0)), o);
  }
  // Per-task plans: walk back from the output.
  for (auto& task : m.tasks) {
    std::vector<char> need(n_ops, 0);
    std::vector<int> stack = {task->output};
    while (!stack.empty()) {
      const int t = stack.back();
      stack.pop_back();
      const int o = life.at(t).first;
      if (o < 0 || need[o]) continue;
      need[o] = 1;
      for (int i : m.operators[o]->inputs) stack.push_back(i);
    }
    task->plan.clear();
    for (int o = 0; o < n_ops; ++o)
      if (need[o]) task->plan.push_back(static_cast<uint32_t>(o));
    LifetimeTaskOutput(&life.at(task->output), n_ops);
  }
  // The memory plan, per row: every activation an operator writes and every
  // tensor input (the dense model input is the caller's rows).
  std::vector<char> is_tensor_input(n_t, 0);
  for (const auto& in : m.tensor_inputs) is_tensor_input.at(in->tensor) = 1;
  for (int t = 0; t < n_t; ++t)
    if (is_tensor_input[t]) life[t] = TensorInputLifetime(n_ops);
  GreedyMemoryPlanner greedy;
  LinearMemoryPlanner linear;
  MemoryPlanner& planner = reuse_memory ? static_cast<MemoryPlanner&>(greedy) : linear;
  std::vector<std::pair<int, int>> planned;  // tensor, planner index
  for (int t = 0; t < n_t; ++t) {
    auto& tensor = *m.tensors[t];
    if (tensor.buffer != 0 || t == m.input_tensor) {
      tensor.arena_offset = 0;
      continue;
    }
    if (life[t].first < 0) continue;
    const uint64_t bytes = RowBytes(tensor.dtype, ::mtan::RowElements(tensor.shape));
    if (bytes > UINT32_MAX)
      throw std::invalid_argument("activation " + tensor.name + ": " + std::to_string(bytes) +
                                  " bytes per row do not fit the row plan");
    planned.emplace_back(t, planner.AddBuffer(static_cast<uint32_t>(bytes), life[t].first, life[t].last));
  }
  for (const auto& [t, index] : planned) m.tensors[t]->arena_offset = planner.Offset(index);
  const uint32_t row_bytes = planner.TotalBytes();
  m.activation_bytes_per_row = row_bytes;
  m.version_major = MTAN_VERSION_MAJOR;
  m.version_minor = MTAN_VERSION_MINOR;
  m.max_batch = max_batch;
  return SealModel(m);
}

uint64_t Checksum64(const uint8_t* data, size_t n) { return ::mtan::Checksum64(data, n); }

std::vector<uint8_t> SealModel(fb::ModelT& m) {
  flatbuffers::FlatBufferBuilder fbb(1 << 16);
  fb::FinishModelBuffer(fbb, fb::Model::Pack(fbb, &m));
  std::vector<uint8_t> out(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  const Footer footer = MakeFooter(out.data(), out.size());
  const uint8_t* f = reinterpret_cast<const uint8_t*>(&footer);
  out.insert(out.end(), f, f + sizeof(footer));
  return out;
}

uint64_t RowElements(const fb::TensorT& activation) { return ::mtan::RowElements(activation.shape); }

int TaskOutputSize(const fb::ModelT& model, const fb::TaskT& task) {
  return model.tensors.at(task.output)->shape.at(0);
}

size_t TensorInputRowBytes(const fb::ModelT& model) {
  size_t bytes = 0;
  for (const auto& in : model.tensor_inputs) {
    const fb::TensorT& t = *model.tensors.at(in->tensor);
    bytes += static_cast<size_t>(RowElements(t)) * DTypeBytes(t.dtype);
  }
  return bytes;
}

namespace {
bool GoldenRowsMatch(const fb::ModelT& model, const std::vector<float>& rows,
                     const std::vector<uint8_t>& tensor_input, uint32_t n, std::string* error) {
  if (rows.size() == static_cast<size_t>(n) * model.inputs.size() &&
      tensor_input.size() == n * TensorInputRowBytes(model))
    return true;
  *error = "golden case: " + std::to_string(rows.size()) + " values and " +
           std::to_string(tensor_input.size()) + " tensor input bytes are not " +
           std::to_string(n) + " rows of " + std::to_string(model.inputs.size()) + " inputs and " +
           std::to_string(TensorInputRowBytes(model)) + " bytes";
  return false;
}
}  // namespace

size_t OutputsPerRow(const fb::ModelT& model) {
  size_t n = 0;
  for (const auto& task : model.tasks) n += static_cast<size_t>(TaskOutputSize(model, *task));
  return n;
}

bool AddGoldenCase(fb::ModelT& model, const std::vector<float>& rows, uint32_t n,
                   const std::vector<float>& outputs, const std::vector<float>& tolerances,
                   std::string* error, const std::vector<uint8_t>& tensor_input) {
  const size_t per_row = OutputsPerRow(model);
  if (!GoldenRowsMatch(model, rows, tensor_input, n, error)) return false;
  if (outputs.size() != static_cast<size_t>(n) * per_row || tolerances.size() != per_row) {
    *error = "golden case: " + std::to_string(outputs.size()) + " outputs and " +
             std::to_string(tolerances.size()) + " tolerances for " + std::to_string(n) +
             " rows of " + std::to_string(per_row) + " outputs";
    return false;
  }
  float largest = 0.0f;
  for (size_t k = 0; k < per_row; ++k) {
    if (!std::isfinite(tolerances[k]) || tolerances[k] < 0.0f) {
      *error = "golden case: tolerance of output " + std::to_string(k) + " is " +
               std::to_string(tolerances[k]);
      return false;
    }
    largest = std::max(largest, tolerances[k]);
  }
  auto g = std::make_unique<fb::GoldenCaseT>();
  g->rows = n;
  g->input = rows;
  g->output = outputs;
  g->tolerance = largest;
  g->tolerances = tolerances;
  g->tensor_input = tensor_input;
  model.golden.push_back(std::move(g));
  return true;
}

}  // namespace mtan::host
