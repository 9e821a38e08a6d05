#include "model_io.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "contract.h"
#include "format.h"
#include "memory_planner.h"
#include "mtan/mtan.h"

namespace mtan::host {
namespace {

std::unique_ptr<fb::BufferT> MakeBuffer(const void* data, size_t bytes) {
  auto b = std::make_unique<fb::BufferT>();
  const uint8_t* p = static_cast<const uint8_t*>(data);
  b->data.assign(p, p + bytes);
  return b;
}

struct GraphBuilder {
  fb::ModelT& m;

  int AddTensor(const std::string& name, fb::DType dtype, std::vector<int32_t> shape,
                uint32_t buffer = 0) {
    auto t = std::make_unique<fb::TensorT>();
    t->name = name;
    t->dtype = dtype;
    t->shape = std::move(shape);
    t->buffer = buffer;
    m.tensors.push_back(std::move(t));
    return static_cast<int>(m.tensors.size()) - 1;
  }
  int Activation(const std::string& name, int channels) {
    return AddTensor(name, fb::DType::FLOAT32, {channels});
  }
  int Constant(const std::string& name, std::vector<int32_t> shape, const std::vector<float>& v) {
    m.buffers.push_back(MakeBuffer(v.data(), v.size() * sizeof(float)));
    return AddTensor(name, fb::DType::FLOAT32, std::move(shape),
                     static_cast<uint32_t>(m.buffers.size() - 1));
  }
  void Op(fb::OpCode code, std::vector<int32_t> inputs, int output,
          fb::Activation act = fb::Activation::NONE) {
    auto op = std::make_unique<fb::OperatorT>();
    op->opcode = code;
    op->inputs = std::move(inputs);
    op->outputs = {output};
    op->activation = act;
    m.operators.push_back(std::move(op));
  }
  struct DenseTensors {
    int w, b, out;
  };
  DenseTensors Weights(const std::string& name, const Dense& d) {
    if (static_cast<int>(d.w.size()) != d.in * d.out || static_cast<int>(d.b.size()) != d.out)
      throw std::invalid_argument("layer " + name + ": weight sizes do not match " +
                                  std::to_string(d.out) + "x" + std::to_string(d.in));
    return {Constant(name + ".weight", {d.out, d.in}, d.w), Constant(name + ".bias", {d.out}, d.b),
            d.out};
  }
  int Fc(const std::string& name, int x, const DenseTensors& d, bool relu) {
    const int y = Activation(name, d.out);
    Op(fb::OpCode::FULLY_CONNECTED, {x, d.w, d.b}, y,
       relu ? fb::Activation::RELU : fb::Activation::NONE);
    return y;
  }
  int Fc(const std::string& name, int x, const Dense& d, bool relu) {
    return Fc(name, x, Weights(name, d), relu);
  }
};

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

Dense RandomDense(Rng& rng, int in, int out) {
  const double sd = 1.0 / std::sqrt(static_cast<double>(in));
  const auto n = [&] { return static_cast<float>(sd * rng.Normal()); };
  Dense d;
  d.in = in;
  d.out = out;
  d.w.resize(static_cast<size_t>(in) * out);
  d.b.resize(out);
  for (float& v : d.w) v = n();
  for (float& v : d.b) v = 0.1f * n();
  return d;
}

fb::ModelT BuildFloatModel(const MtanWeights& w) {
  const int f = static_cast<int>(w.feature_names.size());
  if (f == 0 || w.mean.size() != w.feature_names.size() || w.stddev.size() != w.feature_names.size())
    throw std::invalid_argument("feature names, means and stds must be non-empty and of one length");
  fb::ModelT m;
  GraphBuilder g{m};
  m.buffers.push_back(std::make_unique<fb::BufferT>());  // buffers[0]: activations
  for (int i = 0; i < f; ++i) {
    auto in = std::make_unique<fb::InputT>();
    in->name = w.feature_names[i];
    in->mean = w.mean[i];
    in->std = w.stddev[i];
    m.inputs.push_back(std::move(in));
  }
  m.input_tensor = g.Activation("input", f);
  const int x = g.Activation("input.standardized", f);
  g.Op(fb::OpCode::QUANTIZE, {m.input_tensor}, x);

  std::vector<int> trunk_out;
  for (size_t k = 0; k < w.trunks.size(); ++k) {
    int h = x;
    for (size_t l = 0; l < w.trunks[k].size(); ++l)
      h = g.Fc("trunk" + std::to_string(k) + ".fc" + std::to_string(l + 1), h, w.trunks[k][l], true);
    trunk_out.push_back(h);
  }
  const size_t nt = w.tasks.size();
  std::vector<int> z(nt);
  for (size_t t = 0; t < nt; ++t) {
    const TaskHead& task = w.tasks[t];
    if (task.trunk < 0 || task.trunk >= static_cast<int>(trunk_out.size()))
      throw std::invalid_argument("task " + task.name + ": no trunk " + std::to_string(task.trunk));
    int h = trunk_out[task.trunk];
    if (task.has_mask) {
      const std::string p = task.name + ".mask";
      const int d = g.Fc(p + ".fc1", h, task.mask_down, true);
      const int u = g.Fc(p + ".fc2", d, task.mask_up, false);
      const int a = g.Activation(p + ".logistic", task.mask_up.out);
      g.Op(fb::OpCode::LOGISTIC, {u}, a);
      const int hh = g.Activation(p + ".mul", task.mask_up.out);
      g.Op(fb::OpCode::MUL, {a, h}, hh);
      h = hh;
    }
    z[t] = g.Fc(task.name + ".task", h, task.task, true);
  }
  std::vector<size_t> cross;
  for (size_t t = 0; t < nt; ++t)
    if (w.tasks[t].has_cross) cross.push_back(t);
  for (size_t t = 0; t < nt; ++t) {
    const TaskHead& task = w.tasks[t];
    int c = z[t];
    if (task.has_cross) {
      const std::string p = task.name + ".att";
      const auto att = g.Weights(p + ".fc", task.att);
      const auto score = g.Weights(p + ".score", task.att_score);
      if (task.att_score.out != 1) throw std::invalid_argument(p + ".score must have 1 output");
      std::vector<int32_t> scores, values;
      for (size_t s : cross) {
        const std::string q = p + "." + w.tasks[s].name;
        const int a = g.Fc(q + ".fc", z[s], att, false);
        const int th = g.Activation(q + ".tanh", task.att.out);
        g.Op(fb::OpCode::TANH, {a}, th);
        scores.push_back(g.Fc(q + ".score", th, score, false));
        values.push_back(z[s]);
      }
      c = g.Activation(p + ".pool", task.task.out);
      scores.insert(scores.end(), values.begin(), values.end());
      g.Op(fb::OpCode::ATTENTION_POOL, scores, c);
    }
    const int logits = g.Fc(task.name + ".head", c, task.head, false);
    auto out = std::make_unique<fb::TaskT>();
    out->name = task.name;
    out->kind = task.kind;
    out->class_names = task.class_names;
    out->transform = task.transform;
    if (task.kind == fb::TaskKind::BINARY || task.kind == fb::TaskKind::MULTICLASS) {
      const int p = g.Activation(task.name + ".prob", task.head.out);
      g.Op(task.kind == fb::TaskKind::BINARY ? fb::OpCode::LOGISTIC : fb::OpCode::SOFTMAX,
           {logits}, p);
      out->output = p;
    } else {
      out->output = logits;
    }
    m.tasks.push_back(std::move(out));
  }
  m.metadata = std::make_unique<fb::MetadataT>();
  return m;
}

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
  // The memory plan, per row: every activation an operator writes (the
  // model input is the caller's rows).
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
    const uint64_t bytes = RowBytes(tensor.dtype, static_cast<uint64_t>(tensor.shape.at(0)));
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

int TaskOutputSize(const fb::ModelT& model, const fb::TaskT& task) {
  return model.tensors.at(task.output)->shape.at(0);
}

namespace {
bool GoldenRowsMatch(const fb::ModelT& model, const std::vector<float>& rows, uint32_t n,
                     std::string* error) {
  if (rows.size() == static_cast<size_t>(n) * model.inputs.size()) return true;
  *error = "golden case: " + std::to_string(rows.size()) + " values are not " + std::to_string(n) +
           " rows of " + std::to_string(model.inputs.size()) + " inputs";
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
                   std::string* error) {
  const size_t per_row = OutputsPerRow(model);
  if (!GoldenRowsMatch(model, rows, n, error)) return false;
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
  model.golden.push_back(std::move(g));
  return true;
}

bool AddGoldenCase(fb::ModelT& model, const std::vector<float>& rows, uint32_t n, float tolerance,
                   std::string* error) {
  if (!GoldenRowsMatch(model, rows, n, error)) return false;
  RuntimeModel rt;
  std::vector<float> out;
  // The reference kernels are the oracle for the expected outputs.
  if (rt.Load(FinishModel(model, model.max_batch ? model.max_batch : 1), n, MTAN_BACKEND_REFERENCE,
              error) != MTAN_OK ||
      rt.Run(rows.data(), n, MTAN_ALL_TASKS, &out, error) != MTAN_OK)
    return false;
  return AddGoldenCase(model, rows, n, out, std::vector<float>(OutputsPerRow(model), tolerance),
                       error);
}

}  // namespace mtan::host
