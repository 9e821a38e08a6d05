#include "quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

#include "contract.h"
#include "mtan/mtan.h"

namespace mtan::host {

void ChooseAsymmetric(Range r, float* scale, int32_t* zero_point) {
  const float lo = std::min(r.min, 0.0f), hi = std::max(r.max, 0.0f);
  if (!(hi - lo > 0.0f) || !std::isfinite(hi - lo)) {
    *scale = 1.0f;
    *zero_point = 0;
    return;
  }
  *scale = (hi - lo) / 255.0f;
  const long zp = std::lround(-128.0 - lo / *scale);
  *zero_point = static_cast<int32_t>(std::clamp(zp, -128L, 127L));
}

void QuantizeWeightsPerChannel(const std::vector<float>& w, int out, int in,
                               std::vector<int8_t>* q, std::vector<float>* scales) {
  q->assign(static_cast<size_t>(out) * in, 0);
  scales->assign(out, 1.0f);
  for (int o = 0; o < out; ++o) {
    float amax = 0.0f;
    for (int i = 0; i < in; ++i) amax = std::max(amax, std::fabs(w[static_cast<size_t>(o) * in + i]));
    if (amax == 0.0f) continue;
    const float s = amax / 127.0f;
    (*scales)[o] = s;
    for (int i = 0; i < in; ++i) {
      const long v = std::lrint(w[static_cast<size_t>(o) * in + i] / s);
      (*q)[static_cast<size_t>(o) * in + i] = static_cast<int8_t>(std::clamp(v, -127L, 127L));
    }
  }
}

void QuantizeRowsAsymmetric(const std::vector<float>& t, int rows, int cols, std::vector<int8_t>* q,
                            std::vector<float>* scales, std::vector<int32_t>* zero_points) {
  q->assign(static_cast<size_t>(rows) * cols, 0);
  scales->assign(rows, 1.0f);
  zero_points->assign(rows, 0);
  for (int r = 0; r < rows; ++r) {
    const float* row = t.data() + static_cast<size_t>(r) * cols;
    const auto [lo, hi] = std::minmax_element(row, row + cols);
    ChooseAsymmetric(Range{*lo, *hi}, &(*scales)[r], &(*zero_points)[r]);
    for (int c = 0; c < cols; ++c) {
      const long v = std::lrint(row[c] / (*scales)[r]) + (*zero_points)[r];
      (*q)[static_cast<size_t>(r) * cols + c] = static_cast<int8_t>(std::clamp(v, -128L, 127L));
    }
  }
}

std::vector<int32_t> QuantizeBias(const std::vector<float>& b, float input_scale,
                                  const std::vector<float>& weight_scales,
                                  const std::vector<int8_t>& weights) {
  const size_t in = b.empty() ? 0 : weights.size() / b.size();
  std::vector<int32_t> q(b.size());
  for (size_t o = 0; o < b.size(); ++o) {
    // The runtime refuses AccumulatorBound(sum |w|, |bias|) beyond
    // kAccumulatorLimit (the int32 accumulator could wrap; contract.h), so
    // the bias saturates there.
    uint64_t sum_abs_w = 0;
    for (size_t i = 0; i < in; ++i) sum_abs_w += static_cast<uint64_t>(std::abs(weights[o * in + i]));
    const uint64_t used = AccumulatorBound(sum_abs_w, 0);
    const double headroom =
        used >= kAccumulatorLimit ? 0.0 : static_cast<double>(kAccumulatorLimit - used);
    const double v = std::nearbyint(static_cast<double>(b[o]) /
                                    (static_cast<double>(input_scale) * weight_scales[o]));
    q[o] = static_cast<int32_t>(std::clamp(v, -headroom, headroom));
  }
  return q;
}

bool CollectActivations(const fb::ModelT& float_model, const std::vector<float>& rows, uint32_t n,
                        std::vector<std::vector<float>>* values, std::string* error,
                        const std::function<void(uint32_t, uint32_t)>& progress,
                        const std::vector<uint8_t>& tensor_input) {
  if (n == 0) {
    *error = "no calibration rows";
    return false;
  }
  fb::ModelT copy;
  {
    // A deep copy through the wire format keeps the caller's model untouched.
    fb::ModelT& src = const_cast<fb::ModelT&>(float_model);
    flatbuffers::FlatBufferBuilder fbb;
    fb::FinishModelBuffer(fbb, fb::Model::Pack(fbb, &src));
    fb::GetModel(fbb.GetBufferPointer())->UnPackTo(&copy);
  }
  const uint32_t batch = std::min<uint32_t>(n, 256);
  RuntimeModel rt;
  if (rt.Load(FinishModel(copy, batch, /*reuse_memory=*/false), batch, MTAN_BACKEND_DEFAULT, error) !=
      MTAN_OK)
    return false;
  uint32_t inputs = 0, tensors = 0;
  mtan_input_count(rt.get(), &inputs);
  mtan_tensor_count(rt.get(), &tensors);
  if (rows.size() != static_cast<size_t>(n) * inputs) {
    *error = "calibration rows do not have " + std::to_string(inputs) + " inputs each";
    return false;
  }
  values->assign(tensors, {});
  std::vector<float> out;
  for (uint32_t r0 = 0; r0 < n; r0 += batch) {
    const uint32_t b = std::min(batch, n - r0);
    if (rt.RunRange(rows.data(), n, r0, b, MTAN_ALL_TASKS, &out, error, tensor_input) != MTAN_OK)
      return false;
    for (uint32_t t = 0; t < tensors; ++t) {
      mtan_tensor_desc d;
      if (mtan_tensor_get(rt.get(), t, &d) != MTAN_OK || d.data == nullptr ||
          d.dtype != MTAN_DTYPE_FLOAT32)
        continue;
      const float* p = static_cast<const float*>(d.data);
      if (r0 == 0) (*values)[t].reserve(static_cast<size_t>(n) * d.channels);
      (*values)[t].insert((*values)[t].end(), p, p + static_cast<size_t>(b) * d.channels);
    }
    if (progress) progress(r0 + b, n);
  }
  return true;
}

namespace {

std::unique_ptr<fb::QuantizationT> Quant(float scale, int32_t zp) {
  auto q = std::make_unique<fb::QuantizationT>();
  q->scale = {scale};
  q->zero_point = {zp};
  return q;
}

template <typename T>
std::vector<T> BufferAs(const fb::ModelT& m, uint32_t buffer) {
  const auto& d = m.buffers.at(buffer)->data;
  std::vector<T> v(d.size() / sizeof(T));
  std::memcpy(v.data(), d.data(), v.size() * sizeof(T));
  return v;
}

// XNNPACK's int8 fully-connected kernels need every channel's
// requantization scale s_x * s_w[o] / s_y in [2^-32, 256) (TFLite's kernels
// have the same bounds), and the weights are shared by operators with
// different s_x and s_y (cross-attention), so a channel's scale should look
// like the others'.
// - A row whose weights are all below 2^-20 of the matrix's largest (weight
//   decay drives dead units' rows to ~1e-38) is zeroed: quantized it would
//   get a scale ~1e-40 that no kernel accepts, and its contribution is below
//   what the other rows' int8 steps resolve.
// - An all-zero row can take any scale: it gets the largest row's, whose
//   requantization the kernels must accept anyway. (All rows zero: the one
//   that makes this operator's requantization 1.)
void PruneNegligibleRows(int out, int in, float sx, float sy, std::vector<int8_t>* qw,
                         std::vector<float>* ws) {
  constexpr float kNegligible = 0x1.0p-20f;
  float max_ws = 0.0f;
  std::vector<char> zero_row(out, 1);
  for (int o = 0; o < out; ++o) {
    const int8_t* row = qw->data() + static_cast<size_t>(o) * in;
    for (int i = 0; i < in && zero_row[o]; ++i)
      if (row[i] != 0) zero_row[o] = 0;
    if (!zero_row[o]) max_ws = std::max(max_ws, (*ws)[o]);
  }
  for (int o = 0; o < out; ++o) {
    if (!zero_row[o] && (*ws)[o] < kNegligible * max_ws) {
      std::fill(qw->data() + static_cast<size_t>(o) * in, qw->data() + static_cast<size_t>(o + 1) * in,
                int8_t{0});
      zero_row[o] = 1;
    }
  }
  for (int o = 0; o < out; ++o)
    if (zero_row[o]) (*ws)[o] = max_ws > 0.0f ? max_ws : sy / sx;
}

// If a channel's requantization s_x * s_w / s_y reaches 256, the output
// range is finer than one weight step times one input step can resolve
// anyway: the output scale is coarsened to fit (same zero point, so 0 stays
// exact).
void FitOutputScale(float sx, const std::vector<float>& ws, fb::TensorT* y) {
  constexpr float kMaxRequantization = 255.0f;
  float& sy = y->quantization->scale[0];
  const float max_ws = ws.empty() ? 0.0f : *std::max_element(ws.begin(), ws.end());
  if (sx * max_ws / sy > kMaxRequantization) sy = sx * max_ws / kMaxRequantization;
}

// How the quantizer treats an operator: one rule per opcode, written as a
// switch without `default` (so -Wswitch names an opcode that lacks one), and
// an operator without a rule is an error, never passed through as it is.
// The int8 output of an operator is quantized from its calibrated range,
// unless contract.h fixes it (LOGISTIC, TANH).
struct QuantizeRule {
  bool float_only;        // stays float32 in an int8 model
  int activation_inputs;  // leading inputs that are activations (-1: all); the rest constants
  bool keeps_input_quantization = false;  // int8 output quantized as its input (RESHAPE)
};

QuantizeRule RuleFor(fb::OpCode code) {
  switch (code) {
    case fb::OpCode::QUANTIZE: return {false, 0};  // reads the float model input as it is
    case fb::OpCode::FULLY_CONNECTED: return {false, 1};  // weights and bias quantized below
    case fb::OpCode::LOGISTIC: return {false, -1};
    case fb::OpCode::TANH: return {false, -1};
    case fb::OpCode::MUL: return {false, -1};
    case fb::OpCode::ADD: return {false, -1};
    case fb::OpCode::ATTENTION_POOL: return {false, -1};
    case fb::OpCode::SOFTMAX: return {true, -1};
    case fb::OpCode::CONCAT: return {false, -1};  // each input keeps its own scale
    case fb::OpCode::RESHAPE: return {false, -1, true};  // the same values, relabelled
    case fb::OpCode::EMBEDDING_BAG: return {true, 0};  // float output; its table row-wise int8 below
    case fb::OpCode::DEQUANTIZE: break;  // only int8 models have one
  }
  throw std::invalid_argument(std::string("no quantize rule for operator ") +
                              fb::EnumNameOpCode(code) + " (opcode " +
                              std::to_string(static_cast<int>(code)) + ")");
}

// Appends DEQUANTIZE(tensor) -> "<name>.float" to `ops`; returns the new tensor.
int32_t AddDequantize(fb::ModelT& m, int32_t tensor,
                      std::vector<std::unique_ptr<fb::OperatorT>>* ops) {
  auto deq = std::make_unique<fb::TensorT>();
  deq->name = m.tensors[tensor]->name + ".float";
  deq->dtype = fb::DType::FLOAT32;
  deq->shape = m.tensors[tensor]->shape;
  m.tensors.push_back(std::move(deq));
  const int32_t d = static_cast<int32_t>(m.tensors.size()) - 1;
  auto dq = std::make_unique<fb::OperatorT>();
  dq->opcode = fb::OpCode::DEQUANTIZE;
  dq->inputs = {tensor};
  dq->outputs = {d};
  ops->push_back(std::move(dq));
  return d;
}

}  // namespace

fb::ModelT QuantizeModel(const fb::ModelT& float_model, const std::vector<Range>& ranges,
                         const QuantizeOptions& options) {
  fb::ModelT m;
  {
    fb::ModelT& src = const_cast<fb::ModelT&>(float_model);
    flatbuffers::FlatBufferBuilder fbb;
    fb::FinishModelBuffer(fbb, fb::Model::Pack(fbb, &src));
    fb::GetModel(fbb.GetBufferPointer())->UnPackTo(&m);
  }
  for (const auto& t : m.tensors)
    if (t->dtype == fb::DType::INT8 || t->dtype == fb::DType::INT32)
      throw std::invalid_argument("model is already quantized");
  if (ranges.size() != m.tensors.size()) throw std::invalid_argument("one range per tensor needed");
  const size_t n_ops = m.operators.size();
  if (!options.float_ops.empty() && options.float_ops.size() != n_ops)
    throw std::invalid_argument("float_ops needs one entry per operator");
  const int32_t n_t0 = static_cast<int32_t>(m.tensors.size());
  std::vector<int> producer(n_t0, -1);
  for (size_t o = 0; o < n_ops; ++o) producer.at(m.operators[o]->outputs.at(0)) = static_cast<int>(o);
  std::vector<char> is_output(n_t0, 0);
  for (const auto& task : m.tasks) is_output.at(task->output) = 1;

  // Which operators run in float: the ones asked for, SOFTMAX (float only),
  // the LOGISTIC or SOFTMAX of a task output (probabilities from float
  // logits), with float_heads each task's last FULLY_CONNECTED, and the
  // input's QUANTIZE when no int8 operator reads it.
  std::vector<char> op_float(n_ops, 0);
  std::vector<QuantizeRule> rules;
  for (size_t o = 0; o < n_ops; ++o) {
    const auto& op = *m.operators[o];
    rules.push_back(RuleFor(op.opcode));
    op_float[o] = !options.float_ops.empty() && options.float_ops[o];
    if (rules[o].float_only) op_float[o] = 1;
    if (op.opcode == fb::OpCode::LOGISTIC && is_output[op.outputs[0]]) op_float[o] = 1;
  }
  if (options.float_heads) {
    for (const auto& task : m.tasks) {
      int o = producer.at(task->output);
      if (o >= 0 && (m.operators[o]->opcode == fb::OpCode::LOGISTIC ||
                     m.operators[o]->opcode == fb::OpCode::SOFTMAX))
        o = producer.at(m.operators[o]->inputs.at(0));
      if (o >= 0 && m.operators[o]->opcode == fb::OpCode::FULLY_CONNECTED) op_float[o] = 1;
    }
  }

  // Cross-attention applies one weight matrix to every task's z, and each z
  // has its own scale. The int8 weights and their per-channel scales do not
  // depend on the input, so the operators share them; the int32 bias is at
  // s_x * s_w, so each operator gets its own copy of the bias. An operator
  // in float gets its own copy of weights an int8 operator quantizes.
  {
    auto copy_constant = [&](int32_t t, const std::string& name) {
      auto copy = std::make_unique<fb::TensorT>();
      copy->name = name;
      copy->dtype = m.tensors[t]->dtype;
      copy->shape = m.tensors[t]->shape;
      auto buf = std::make_unique<fb::BufferT>();
      buf->data = m.buffers[m.tensors[t]->buffer]->data;
      m.buffers.push_back(std::move(buf));
      copy->buffer = static_cast<uint32_t>(m.buffers.size() - 1);
      m.tensors.push_back(std::move(copy));
      return static_cast<int32_t>(m.tensors.size() - 1);
    };
    std::vector<char> int8_weights(m.tensors.size(), 0), seen(m.tensors.size(), 0);
    for (size_t o = 0; o < n_ops; ++o)
      if (m.operators[o]->opcode == fb::OpCode::FULLY_CONNECTED && !op_float[o])
        int8_weights[m.operators[o]->inputs.at(1)] = 1;
    for (size_t o = 0; o < n_ops; ++o) {
      auto& op = *m.operators[o];
      if (op.opcode != fb::OpCode::FULLY_CONNECTED) continue;
      const std::string& y = m.tensors[op.outputs[0]]->name;  // e.g. click.att.spend.fc
      if (op_float[o] && int8_weights[op.inputs.at(1)]) op.inputs[1] = copy_constant(op.inputs[1], y + ".weights");
      int32_t& b = op.inputs.at(2);
      if (seen[b]) b = copy_constant(b, y + ".bias");
      else seen[b] = 1;
    }
  }
  std::vector<Range> ranges_all = ranges;
  ranges_all.resize(m.tensors.size());

  // Activation dtypes follow their producer's precision.
  for (size_t o = 0; o < n_ops; ++o) {
    if (op_float[o]) continue;
    const auto& op = *m.operators[o];
    auto& y = *m.tensors[op.outputs[0]];
    y.dtype = fb::DType::INT8;
    Range r = ranges_all[op.outputs[0]];
    if (op.activation == fb::Activation::RELU) r.min = 0.0f;  // all 256 levels on [0, max]
    float scale;
    int32_t zp;
    ChooseAsymmetric(r, &scale, &zp);
    FixedQuantization fixed;
    if (FixedOutputQuantization(op.opcode, &fixed)) scale = fixed.scale, zp = fixed.zero_point;
    const fb::TensorT& x = *m.tensors[op.inputs.at(0)];
    if (rules[o].keeps_input_quantization) {
      // x is int8 by now (its producer came first), or float and requantized
      // below from its own range: either way y takes x's int8 parameters.
      if (x.dtype == fb::DType::INT8) scale = x.quantization->scale[0], zp = x.quantization->zero_point[0];
      else ChooseAsymmetric(ranges_all.at(op.inputs[0]), &scale, &zp);
    }
    y.quantization = Quant(scale, zp);
  }

  // Operators in order, with a DEQUANTIZE or QUANTIZE wherever a reader
  // wants the other dtype than its input's (each made once per tensor).
  std::vector<std::unique_ptr<fb::OperatorT>> ops;
  std::map<int32_t, int32_t> as_float, as_int8;
  auto requantized = [&](int32_t t) {
    auto it = as_int8.find(t);
    if (it != as_int8.end()) return it->second;
    auto q = std::make_unique<fb::TensorT>();
    q->name = m.tensors[t]->name + ".int8";
    q->dtype = fb::DType::INT8;
    q->shape = m.tensors[t]->shape;
    float scale;
    int32_t zp;
    ChooseAsymmetric(ranges_all.at(t), &scale, &zp);
    q->quantization = Quant(scale, zp);
    m.tensors.push_back(std::move(q));
    const int32_t y = static_cast<int32_t>(m.tensors.size()) - 1;
    auto op = std::make_unique<fb::OperatorT>();
    op->opcode = fb::OpCode::QUANTIZE;
    op->inputs = {t};
    op->outputs = {y};
    ops.push_back(std::move(op));
    return as_int8[t] = y;
  };
  for (size_t o = 0; o < n_ops; ++o) {
    auto& op = m.operators[o];
    const fb::DType want = op_float[o] ? fb::DType::FLOAT32 : fb::DType::INT8;
    {
      const int rule_inputs = rules[o].activation_inputs;
      const size_t activations = rule_inputs < 0 ? op->inputs.size() : static_cast<size_t>(rule_inputs);
      for (size_t k = 0; k < activations; ++k) {
        int32_t& t = op->inputs[k];
        if (m.tensors[t]->dtype == want) continue;
        if (want == fb::DType::INT8) {
          t = requantized(t);
        } else {
          auto it = as_float.find(t);
          t = it != as_float.end() ? it->second : (as_float[t] = AddDequantize(m, t, &ops));
        }
      }
    }
    if (op->opcode == fb::OpCode::FULLY_CONNECTED && !op_float[o]) {
      auto& y = *m.tensors[op->outputs[0]];
      auto& x = *m.tensors[op->inputs[0]];
      auto& w = *m.tensors[op->inputs[1]];
      auto& b = *m.tensors[op->inputs[2]];
      const float sx = x.quantization->scale[0];
      if (w.dtype == fb::DType::FLOAT32) {
        std::vector<int8_t> qw;
        std::vector<float> ws;
        QuantizeWeightsPerChannel(BufferAs<float>(m, w.buffer), w.shape[0], w.shape[1], &qw, &ws);
        PruneNegligibleRows(w.shape[0], w.shape[1], sx, y.quantization->scale[0], &qw, &ws);
        m.buffers[w.buffer]->data.assign(reinterpret_cast<uint8_t*>(qw.data()),
                                         reinterpret_cast<uint8_t*>(qw.data()) + qw.size());
        w.dtype = fb::DType::INT8;
        w.quantization = std::make_unique<fb::QuantizationT>();
        w.quantization->scale = ws;
        w.quantization->zero_point.assign(ws.size(), 0);  // symmetric
      }
      FitOutputScale(sx, w.quantization->scale, &y);
      const auto qb = QuantizeBias(BufferAs<float>(m, b.buffer), sx, w.quantization->scale,
                                   BufferAs<int8_t>(m, w.buffer));
      m.buffers[b.buffer]->data.assign(reinterpret_cast<const uint8_t*>(qb.data()),
                                       reinterpret_cast<const uint8_t*>(qb.data()) + qb.size() * 4);
      b.dtype = fb::DType::INT32;
    }
    // An embedding table becomes row-wise int8 (once, when tables are
    // shared), unless float_ops keeps the bag in float.
    const bool forced_float = !options.float_ops.empty() && options.float_ops[o];
    if (op->opcode == fb::OpCode::EMBEDDING_BAG && !forced_float &&
        m.tensors[op->inputs.at(1)]->dtype == fb::DType::FLOAT32) {
      auto& t = *m.tensors[op->inputs[1]];
      std::vector<int8_t> qt;
      std::vector<float> scales;
      std::vector<int32_t> zps;
      QuantizeRowsAsymmetric(BufferAs<float>(m, t.buffer), t.shape.at(0), t.shape.at(1), &qt, &scales, &zps);
      m.buffers[t.buffer]->data.assign(reinterpret_cast<uint8_t*>(qt.data()),
                                       reinterpret_cast<uint8_t*>(qt.data()) + qt.size());
      t.dtype = fb::DType::INT8;
      t.quantization = std::make_unique<fb::QuantizationT>();
      t.quantization->scale = scales;
      t.quantization->zero_point = zps;
    }
    ops.push_back(std::move(op));
  }
  m.operators = std::move(ops);
  // Task outputs are float: an int8 one (a regression value) gets a DEQUANTIZE.
  for (auto& task : m.tasks) {
    if (m.tensors[task->output]->dtype != fb::DType::INT8) continue;
    task->output = AddDequantize(m, task->output, &m.operators);
  }
  return m;
}

float TaskLogitScale(const fb::ModelT& model, const fb::TaskT& task) {
  auto producer = [&](int32_t t) -> const fb::OperatorT* {
    for (const auto& op : model.operators)
      if (!op->outputs.empty() && op->outputs[0] == t) return op.get();
    return nullptr;
  };
  const fb::OperatorT* op = producer(task.output);
  if (op != nullptr && (op->opcode == fb::OpCode::LOGISTIC || op->opcode == fb::OpCode::SOFTMAX))
    op = producer(op->inputs.at(0));
  if (op != nullptr && op->opcode == fb::OpCode::FULLY_CONNECTED &&
      model.tensors.at(op->inputs.at(1))->dtype == fb::DType::FLOAT32) {
    // A float head on a DEQUANTIZE of int8 features c: one LSB of every
    // feature moves logit k by at most s_c * sum_j |W[k][j]|.
    const fb::OperatorT* dq = producer(op->inputs[0]);
    if (dq == nullptr || dq->opcode != fb::OpCode::DEQUANTIZE) return 0.0f;
    const auto& q = model.tensors.at(dq->inputs.at(0))->quantization;
    const auto& w = *model.tensors.at(op->inputs[1]);
    const auto& data = model.buffers.at(w.buffer)->data;
    const int out = w.shape.at(0), in = w.shape.at(1);
    if (!q || q->scale.empty() || data.size() != static_cast<size_t>(out) * in * 4) return 0.0f;
    double worst = 0.0;
    for (int k = 0; k < out; ++k) {
      double l1 = 0.0;
      for (int j = 0; j < in; ++j) {
        float v;
        std::memcpy(&v, data.data() + (static_cast<size_t>(k) * in + j) * 4, 4);
        l1 += std::fabs(v);
      }
      worst = std::max(worst, l1);
    }
    return static_cast<float>(q->scale[0] * worst);
  }
  if (op == nullptr || op->opcode != fb::OpCode::DEQUANTIZE) return 0.0f;
  const auto& q = model.tensors.at(op->inputs.at(0))->quantization;
  return q && !q->scale.empty() ? q->scale[0] : 0.0f;
}

std::vector<float> GoldenTolerances(const fb::ModelT& model, const float* outputs, uint32_t rows) {
  // Float noise: XNNPACK's vectorised exp/sigmoid against libm, relative to
  // the output's magnitude.
  constexpr double kFloatNoise = 1e-5;
  const size_t per_row = OutputsPerRow(model);
  std::vector<double> tol(per_row, 0.0);
  size_t offset = 0;
  for (const auto& task : model.tasks) {
    const int size = TaskOutputSize(model, *task);
    const double s = TaskLogitScale(model, *task);
    for (uint32_t r = 0; r < rows; ++r) {
      for (int k = 0; k < size; ++k) {
        const double y = outputs[r * per_row + offset + k];
        double d = 0.0;
        if (task->kind == fb::TaskKind::BINARY || task->kind == fb::TaskKind::MULTICLASS) {
          // p = sigmoid(x), or softmax where every logit may move by one LSB
          // (p's odds change by at most e^{2s}); one LSB moves p to the
          // farther of these two.
          const double p = std::clamp(y, 0.0, 1.0);
          const double e = std::exp((task->kind == fb::TaskKind::BINARY ? 1.0 : 2.0) * s);
          const double up = p * e / (p * e + (1.0 - p));
          const double down = p / e / (p / e + (1.0 - p));
          d = std::max(up - p, p - down);
        } else if (task->transform == fb::OutputTransform::EXPM1) {
          d = (y + 1.0) * std::expm1(s);  // expm1(v + s) - expm1(v)
        } else {
          d = s;
        }
        tol[offset + k] = std::max(tol[offset + k], d + kFloatNoise * std::max(1.0, std::fabs(y)));
      }
    }
    offset += size;
  }
  return std::vector<float>(tol.begin(), tol.end());
}

int StandardizedInputTensor(const fb::ModelT& model) {
  for (const auto& op : model.operators)
    if (op->opcode == fb::OpCode::QUANTIZE && op->inputs.size() == 1 && op->inputs[0] == model.input_tensor)
      return op->outputs.at(0);
  return -1;
}

bool EqualizeInputs(fb::ModelT* m, const std::vector<Range>& feature_ranges, std::vector<float>* centre,
                    std::vector<float>* half_width) {
  const int x = StandardizedInputTensor(*m);
  const size_t f = m->inputs.size();
  if (x < 0 || feature_ranges.size() != f) return false;
  std::vector<fb::OperatorT*> consumers;
  for (auto& op : m->operators) {
    for (size_t k = 0; k < op->inputs.size(); ++k) {
      if (op->inputs[k] != x) continue;
      if (op->opcode != fb::OpCode::FULLY_CONNECTED || k != 0) return false;
      consumers.push_back(op.get());
    }
  }
  std::vector<float> c(f), h(f);
  for (size_t i = 0; i < f; ++i) {
    const Range r = feature_ranges[i];
    c[i] = 0.5f * (r.min + r.max);
    h[i] = 0.5f * (r.max - r.min);
    // A feature constant over the calibration rows keeps unit width (one
    // standard deviation either side of its value).
    if (!(h[i] > 0.0f) || !std::isfinite(h[i]) || !std::isfinite(c[i])) {
      h[i] = 1.0f;
      if (!std::isfinite(c[i])) c[i] = 0.0f;
    }
  }
  // Shared weights or biases are rewritten once, from the original weights.
  std::map<int32_t, std::vector<float>> original;
  for (fb::OperatorT* op : consumers) {
    const int32_t wi = op->inputs.at(1);
    if (!original.count(wi)) original[wi] = BufferAs<float>(*m, m->tensors.at(wi)->buffer);
    if (m->tensors[wi]->shape.size() != 2 || m->tensors[wi]->shape[1] != static_cast<int>(f)) return false;
  }
  std::vector<char> done(m->tensors.size(), 0);
  for (fb::OperatorT* op : consumers) {
    const int32_t wi = op->inputs[1], bi = op->inputs.at(2);
    const std::vector<float>& w0 = original[wi];
    const int out = m->tensors[wi]->shape[0], in = static_cast<int>(f);
    if (!done[bi]) {
      done[bi] = 1;
      std::vector<float> bv = BufferAs<float>(*m, m->tensors[bi]->buffer);
      for (int o = 0; o < out; ++o) {
        double shift = 0.0;
        for (int i = 0; i < in; ++i) shift += static_cast<double>(w0[static_cast<size_t>(o) * in + i]) * c[i];
        bv[o] = static_cast<float>(bv[o] + shift);
      }
      m->buffers[m->tensors[bi]->buffer]->data.assign(reinterpret_cast<uint8_t*>(bv.data()),
                                                      reinterpret_cast<uint8_t*>(bv.data()) + bv.size() * 4);
    }
    if (!done[wi]) {
      done[wi] = 1;
      std::vector<float> wv = w0;
      for (int o = 0; o < out; ++o)
        for (int i = 0; i < in; ++i) wv[static_cast<size_t>(o) * in + i] *= h[i];
      m->buffers[m->tensors[wi]->buffer]->data.assign(reinterpret_cast<uint8_t*>(wv.data()),
                                                      reinterpret_cast<uint8_t*>(wv.data()) + wv.size() * 4);
    }
  }
  for (size_t i = 0; i < f; ++i) {
    auto& in = *m->inputs[i];
    in.mean = in.mean + c[i] * in.std;
    in.std = in.std * h[i];
  }
  if (centre) *centre = c;
  if (half_width) *half_width = h;
  return true;
}

}  // namespace mtan::host
