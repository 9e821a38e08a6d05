// libtorch's eager float forward of a float32 .mtan graph. The only
// translation unit of mtan-bench that includes libtorch (it compiles slowly).
//
// It runs the same function as the runtime's float path, with the ops the
// trainer's torch::nn module uses: standardisation as (x - mean) / std,
// linear (addmm on OpenBLAS), relu, sigmoid, tanh, softmax, and the
// cross-task attention on the stacked task vectors [B, T, C] with one linear
// per task over the stack, as trainer/model.cc computes it. A graph whose
// attention does not have that shape runs operator by operator.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/api/include/torch/version.h>

#include <algorithm>
#include <vector>

#include "mtan/mtan.h"
#include "torch_peer.h"

// OpenBLAS, when it is the BLAS libtorch loaded (weak: absent otherwise).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" char* openblas_get_config(void) __attribute__((weak));
extern "C" char* openblas_get_corename(void) __attribute__((weak));

namespace mtan::bench {
namespace {

enum class StepKind { kStandardize, kLinear, kSigmoid, kTanh, kMul, kAdd, kSoftmax, kPool, kAttention };

struct Step {
  StepKind kind;
  std::vector<int32_t> in;  // tensor indices (kPool: scores then values)
  int32_t out = -1;
  bool relu = false;
  at::Tensor w, b;    // kStandardize: mean, std; kLinear: weight, bias; kAttention: att
  at::Tensor w2, b2;  // kAttention: score
  int stack = -1;     // kAttention: which stacked set of task vectors
};

struct TaskOut {
  int32_t tensor;
  uint32_t size;
  bool expm1;
  std::vector<uint32_t> steps;
};

at::Tensor ConstTensor(const fb::Model& m, int32_t t) {
  const fb::Tensor* x = m.tensors()->Get(t);
  const auto* data = m.buffers()->Get(x->buffer())->data();
  std::vector<int64_t> shape(x->shape()->begin(), x->shape()->end());
  // A copy the module owns, as nn.Linear holds its parameters.
  return at::from_blob(const_cast<uint8_t*>(data->data()), shape, at::kFloat).clone();
}

class AtenPeer : public TorchPeer {
 public:
  bool Build(const fb::Model& m, std::string* error);
  bool Run(const float* rows, uint32_t batch, int32_t task, float* out, int threads,
           std::string* error) override;

 private:
  void Exec(const Step& s);
  std::vector<Step> steps_;
  std::vector<TaskOut> tasks_;
  std::vector<uint32_t> all_steps_;
  std::vector<std::vector<int32_t>> stacks_;  // tensor indices of each stacked set
  std::vector<at::Tensor> vals_;
  std::vector<at::Tensor> stacked_;
  int32_t input_ = -1, n_inputs_ = 0;
  uint32_t out_all_ = 0;
  int threads_ = 0;
};

bool AtenPeer::Build(const fb::Model& m, std::string* error) {
  const auto* ops = m.operators();
  const auto* tensors = m.tensors();
  const int32_t n_t = static_cast<int32_t>(tensors->size());
  const uint32_t n_ops = ops->size();
  for (int32_t t = 0; t < n_t; ++t) {
    if (tensors->Get(t)->dtype() != fb::DType::FLOAT32) {
      *error = "libtorch peer: tensor '" + tensors->Get(t)->name()->str() +
               "' is not float32: give the float model (--float-model)";
      return false;
    }
  }
  std::vector<int> producer(n_t, -1), uses(n_t, 0);
  for (uint32_t o = 0; o < n_ops; ++o) {
    producer[ops->Get(o)->outputs()->Get(0)] = static_cast<int>(o);
    for (int32_t i : *ops->Get(o)->inputs()) ++uses[i];
  }
  for (const fb::Task* t : *m.tasks()) ++uses[t->output()];

  // Cross-task attention in the trainer's form: for every source s,
  // score_s = FC_score(tanh(FC_att(z_s))) with one FC_att and one FC_score
  // shared by all sources, and no other use of the intermediates.
  std::vector<int> absorbed(n_ops, 0);
  std::vector<int> fused(n_ops, 0);  // pool op -> 1 when fused
  std::vector<Step> fused_steps(n_ops);
  for (uint32_t p = 0; p < n_ops; ++p) {
    const fb::Operator* pool = ops->Get(p);
    if (pool->opcode() != fb::OpCode::ATTENTION_POOL) continue;
    const uint32_t T = pool->inputs()->size() / 2;
    bool ok = T > 0;
    int32_t wa = -1, ba = -1, ws = -1, bs = -1;
    std::vector<int> chain;
    std::vector<int32_t> values;
    for (uint32_t s = 0; ok && s < T; ++s) {
      const int32_t score = pool->inputs()->Get(s);
      const int32_t z = pool->inputs()->Get(T + s);
      values.push_back(z);
      const int so = producer[score];
      ok = so >= 0 && ops->Get(so)->opcode() == fb::OpCode::FULLY_CONNECTED &&
           ops->Get(so)->activation() == fb::Activation::NONE && uses[score] == 1;
      if (!ok) break;
      const int32_t th = ops->Get(so)->inputs()->Get(0);
      const int to = producer[th];
      ok = to >= 0 && ops->Get(to)->opcode() == fb::OpCode::TANH && uses[th] == 1;
      if (!ok) break;
      const int32_t a = ops->Get(to)->inputs()->Get(0);
      const int ao = producer[a];
      ok = ao >= 0 && ops->Get(ao)->opcode() == fb::OpCode::FULLY_CONNECTED &&
           ops->Get(ao)->activation() == fb::Activation::NONE && uses[a] == 1 &&
           ops->Get(ao)->inputs()->Get(0) == z;
      if (!ok) break;
      const int32_t w_a = ops->Get(ao)->inputs()->Get(1), b_a = ops->Get(ao)->inputs()->Get(2);
      const int32_t w_s = ops->Get(so)->inputs()->Get(1), b_s = ops->Get(so)->inputs()->Get(2);
      if (s == 0) {
        wa = w_a, ba = b_a, ws = w_s, bs = b_s;
      } else {
        ok = wa == w_a && ba == b_a && ws == w_s && bs == b_s;
      }
      chain.insert(chain.end(), {so, to, ao});
    }
    if (!ok) continue;
    for (int o : chain) absorbed[o] = 1;
    fused[p] = 1;
    Step st;
    st.kind = StepKind::kAttention;
    st.in = values;
    st.out = pool->outputs()->Get(0);
    st.w = ConstTensor(m, wa);
    st.b = ConstTensor(m, ba);
    st.w2 = ConstTensor(m, ws);
    st.b2 = ConstTensor(m, bs);
    auto it = std::find(stacks_.begin(), stacks_.end(), values);
    st.stack = static_cast<int>(it - stacks_.begin());
    if (it == stacks_.end()) stacks_.push_back(values);
    fused_steps[p] = std::move(st);
  }

  // One step per operator that is not part of a fused attention.
  std::vector<int> step_of(n_ops, -1);
  n_inputs_ = static_cast<int32_t>(m.inputs()->size());
  input_ = m.input_tensor();
  for (uint32_t o = 0; o < n_ops; ++o) {
    if (absorbed[o]) continue;
    const fb::Operator* op = ops->Get(o);
    Step st;
    if (fused[o]) {
      st = std::move(fused_steps[o]);
    } else {
      st.in.assign(op->inputs()->begin(), op->inputs()->end());
      st.out = op->outputs()->Get(0);
      st.relu = op->activation() == fb::Activation::RELU;
      switch (op->opcode()) {
        case fb::OpCode::QUANTIZE: {
          st.kind = StepKind::kStandardize;
          std::vector<float> mean, stddev;
          for (const fb::Input* in : *m.inputs()) {
            mean.push_back(in->mean());
            stddev.push_back(in->std());
          }
          st.w = at::tensor(mean);
          st.b = at::tensor(stddev);
          break;
        }
        case fb::OpCode::FULLY_CONNECTED:
          st.kind = StepKind::kLinear;
          st.w = ConstTensor(m, st.in[1]);
          st.b = ConstTensor(m, st.in[2]);
          st.in.resize(1);
          break;
        case fb::OpCode::LOGISTIC: st.kind = StepKind::kSigmoid; break;
        case fb::OpCode::TANH: st.kind = StepKind::kTanh; break;
        case fb::OpCode::MUL: st.kind = StepKind::kMul; break;
        case fb::OpCode::ADD: st.kind = StepKind::kAdd; break;
        case fb::OpCode::SOFTMAX: st.kind = StepKind::kSoftmax; break;
        case fb::OpCode::ATTENTION_POOL: st.kind = StepKind::kPool; break;
        default:
          *error = std::string("libtorch peer: operator ") + fb::EnumNameOpCode(op->opcode()) +
                   " has no float equivalent";
          return false;
      }
    }
    step_of[o] = static_cast<int>(steps_.size());
    all_steps_.push_back(static_cast<uint32_t>(steps_.size()));
    steps_.push_back(std::move(st));
  }
  for (const fb::Task* t : *m.tasks()) {
    TaskOut to;
    to.tensor = t->output();
    to.size = static_cast<uint32_t>(tensors->Get(t->output())->shape()->Get(0));
    to.expm1 = t->transform() == fb::OutputTransform::EXPM1;
    out_all_ += to.size;
    for (uint32_t o : *t->plan()) {
      // A fused attention replaces its chain: keep the pool's step only.
      if (step_of[o] >= 0) to.steps.push_back(static_cast<uint32_t>(step_of[o]));
    }
    tasks_.push_back(std::move(to));
  }
  vals_.resize(n_t);
  stacked_.resize(stacks_.size());
  return true;
}

void AtenPeer::Exec(const Step& s) {
  at::Tensor y;
  switch (s.kind) {
    case StepKind::kStandardize: y = (vals_[s.in[0]] - s.w) / s.b; break;
    case StepKind::kLinear:
      y = at::linear(vals_[s.in[0]], s.w, s.b);
      if (s.relu) y = at::relu(y);
      break;
    case StepKind::kSigmoid: y = at::sigmoid(vals_[s.in[0]]); break;
    case StepKind::kTanh: y = at::tanh(vals_[s.in[0]]); break;
    case StepKind::kMul: y = vals_[s.in[0]] * vals_[s.in[1]]; break;
    case StepKind::kAdd: y = vals_[s.in[0]] + vals_[s.in[1]]; break;
    case StepKind::kSoftmax: y = at::softmax(vals_[s.in[0]], 1); break;
    case StepKind::kPool: {
      const size_t T = s.in.size() / 2;
      std::vector<at::Tensor> scores, values;
      for (size_t k = 0; k < T; ++k) {
        scores.push_back(vals_[s.in[k]]);
        values.push_back(vals_[s.in[T + k]]);
      }
      const at::Tensor alpha = at::softmax(at::cat(scores, 1), 1);              // [B, T]
      y = at::bmm(alpha.unsqueeze(1), at::stack(values, 1)).squeeze(1);        // [B, C]
      break;
    }
    case StepKind::kAttention: {
      at::Tensor& zs = stacked_[s.stack];
      if (!zs.defined()) {
        std::vector<at::Tensor> values;
        for (int32_t v : s.in) values.push_back(vals_[v]);
        zs = at::stack(values, 1);  // [B, T, C]
      }
      const at::Tensor e = at::linear(at::tanh(at::linear(zs, s.w, s.b)), s.w2, s.b2).squeeze(2);
      const at::Tensor alpha = at::softmax(e, 1);
      y = at::bmm(alpha.unsqueeze(1), zs).squeeze(1);
      break;
    }
  }
  vals_[s.out] = std::move(y);
}

bool AtenPeer::Run(const float* rows, uint32_t batch, int32_t task, float* out, int threads,
                   std::string* error) {
  if (threads != threads_) {
    at::set_num_threads(threads);
    if (openblas_set_num_threads) openblas_set_num_threads(threads);
    threads_ = threads;
  }
  if (task != MTAN_ALL_TASKS && (task < 0 || task >= static_cast<int32_t>(tasks_.size()))) {
    *error = "libtorch peer: no task " + std::to_string(task);
    return false;
  }
  // Denormals flushed for the peer's runs only (not for mtan's, which share
  // the thread): as a tuned libtorch deployment runs, and as ONNX Runtime's
  // FTZ option does. Unflushed, a model with denormal weights made this peer
  // ~30x slower at batch 256.
  struct FlushDenormals {
    FlushDenormals() { at::globalContext().setFlushDenormal(true); }
    ~FlushDenormals() { at::globalContext().setFlushDenormal(false); }
  } flush;
  try {
    c10::InferenceMode guard;
    for (at::Tensor& z : stacked_) z = at::Tensor();
  vals_[input_] = at::from_blob(const_cast<float*>(rows), {batch, n_inputs_}, at::kFloat);
  const std::vector<uint32_t>& plan = task == MTAN_ALL_TASKS ? all_steps_ : tasks_[task].steps;
  for (uint32_t s : plan) Exec(steps_[s]);
  const uint32_t stride = task == MTAN_ALL_TASKS ? out_all_ : tasks_[task].size;
  uint32_t offset = 0;
  for (size_t k = 0; k < tasks_.size(); ++k) {
    if (task != MTAN_ALL_TASKS && static_cast<int32_t>(k) != task) continue;
    const TaskOut& t = tasks_[k];
    at::Tensor y = vals_[t.tensor];
    if (t.expm1) y = at::expm1(y);
    y = y.contiguous();
    const float* src = y.data_ptr<float>();
    for (uint32_t r = 0; r < batch; ++r)
      for (uint32_t c = 0; c < t.size; ++c)
        out[static_cast<size_t>(r) * stride + offset + c] = src[static_cast<size_t>(r) * t.size + c];
    offset += t.size;
  }
  } catch (const std::exception& e) {
    *error = std::string("libtorch peer: ") + e.what();
    return false;
  }
  return true;
}

}  // namespace

bool TorchPeerAvailable() { return true; }

std::string TorchPeerDescription() {
  std::string d = std::string("libtorch ") + TORCH_VERSION +
                  (at::globalContext().setFlushDenormal(false) ? ", denormals flushed to zero"
                                                               : ", denormals not flushed (no FTZ on this CPU)");
  if (openblas_get_config) {
    d += ", ";
    d += openblas_get_config();
    if (openblas_get_corename) {
      d += " (core ";
      d += openblas_get_corename();
      d += ")";
    }
  } else {
    d += ", BLAS is not OpenBLAS";
  }
  return d;
}

std::unique_ptr<TorchPeer> MakeTorchPeer(const fb::Model& float_model, std::string* error) {
  try {
    auto peer = std::make_unique<AtenPeer>();
    if (!peer->Build(float_model, error)) return nullptr;
    return peer;
  } catch (const std::exception& e) {
    *error = std::string("libtorch peer: ") + e.what();
    return nullptr;
  }
}

}  // namespace mtan::bench
