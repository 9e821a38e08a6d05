#include "quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

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

std::vector<int32_t> QuantizeBias(const std::vector<float>& b, float input_scale,
                                  const std::vector<float>& weight_scales) {
  std::vector<int32_t> q(b.size());
  for (size_t o = 0; o < b.size(); ++o) {
    const double v = std::nearbyint(static_cast<double>(b[o]) /
                                    (static_cast<double>(input_scale) * weight_scales[o]));
    q[o] = static_cast<int32_t>(std::clamp(v, static_cast<double>(std::numeric_limits<int32_t>::min()),
                                           static_cast<double>(std::numeric_limits<int32_t>::max())));
  }
  return q;
}

bool CollectActivations(const fb::ModelT& float_model, const std::vector<float>& rows, uint32_t n,
                        std::vector<std::vector<float>>* values, std::string* error,
                        const std::function<void(uint32_t, uint32_t)>& progress) {
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
    if (rt.Run(rows.data() + static_cast<size_t>(r0) * inputs, b, MTAN_ALL_TASKS, &out, error) !=
        MTAN_OK)
      return false;
    for (uint32_t t = 0; t < tensors; ++t) {
      mtan_tensor_desc d;
      if (mtan_tensor_get(rt.get(), t, &d) != MTAN_OK || d.data == nullptr) continue;
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

}  // namespace

fb::ModelT QuantizeModel(const fb::ModelT& float_model, const std::vector<Range>& ranges) {
  fb::ModelT m;
  {
    fb::ModelT& src = const_cast<fb::ModelT&>(float_model);
    flatbuffers::FlatBufferBuilder fbb;
    fb::FinishModelBuffer(fbb, fb::Model::Pack(fbb, &src));
    fb::GetModel(fbb.GetBufferPointer())->UnPackTo(&m);
  }
  for (const auto& t : m.tensors)
    if (t->dtype != fb::DType::FLOAT32) throw std::invalid_argument("model is already quantized");
  if (ranges.size() != m.tensors.size()) throw std::invalid_argument("one range per tensor needed");
  // Cross-attention applies one weight matrix to every task's z, and each z
  // has its own scale, so each operator gets its own copy of weights and bias
  // (the int32 bias depends on the input scale).
  {
    std::vector<char> seen(m.tensors.size(), 0);
    for (auto& op : m.operators) {
      if (op->opcode != fb::OpCode::FULLY_CONNECTED) continue;
      for (int k = 1; k <= 2; ++k) {
        int32_t& t = op->inputs[k];
        if (!seen[t]) {
          seen[t] = 1;
          continue;
        }
        auto copy = std::make_unique<fb::TensorT>();
        copy->name = m.tensors[t]->name + "." + m.tensors[op->outputs[0]]->name;
        copy->dtype = m.tensors[t]->dtype;
        copy->shape = m.tensors[t]->shape;
        auto buf = std::make_unique<fb::BufferT>();
        buf->data = m.buffers[m.tensors[t]->buffer]->data;
        m.buffers.push_back(std::move(buf));
        copy->buffer = static_cast<uint32_t>(m.buffers.size() - 1);
        m.tensors.push_back(std::move(copy));
        t = static_cast<int32_t>(m.tensors.size() - 1);
      }
    }
  }
  std::vector<Range> ranges_all = ranges;
  ranges_all.resize(m.tensors.size());
  const int32_t n_t = static_cast<int32_t>(m.tensors.size());
  std::vector<char> is_output(n_t, 0);
  for (const auto& task : m.tasks) is_output.at(task->output) = 1;
  // Which tensors stay float: the input, and a head's logits and everything
  // after them (sigmoid / softmax / regression output).
  std::vector<char> stays_float(n_t, 0);
  stays_float.at(m.input_tensor) = 1;
  for (const auto& op : m.operators) {
    if (op->opcode == fb::OpCode::LOGISTIC || op->opcode == fb::OpCode::SOFTMAX) {
      if (is_output[op->outputs[0]]) stays_float[op->outputs[0]] = 1;
    }
  }
  for (int32_t t = 0; t < n_t; ++t) {
    auto& tensor = *m.tensors[t];
    if (tensor.buffer != 0 || stays_float[t]) continue;
    tensor.dtype = fb::DType::INT8;
    float scale;
    int32_t zp;
    ChooseAsymmetric(ranges_all[t], &scale, &zp);
    tensor.quantization = Quant(scale, zp);
  }
  std::vector<std::unique_ptr<fb::OperatorT>> ops;
  for (auto& op : m.operators) {
    const int32_t out = op->outputs[0];
    switch (op->opcode) {
      case fb::OpCode::FULLY_CONNECTED: {
        auto& y = *m.tensors[out];
        auto& x = *m.tensors[op->inputs[0]];
        auto& w = *m.tensors[op->inputs[1]];
        auto& b = *m.tensors[op->inputs[2]];
        if (op->activation == fb::Activation::RELU) {
          // ReLU output: the range starts at 0, so all 256 levels are used.
          float scale;
          int32_t zp;
          ChooseAsymmetric({0.0f, ranges_all[out].max}, &scale, &zp);
          y.quantization = Quant(scale, zp);
        }
        if (w.dtype == fb::DType::FLOAT32) {
          std::vector<int8_t> qw;
          std::vector<float> ws;
          QuantizeWeightsPerChannel(BufferAs<float>(m, w.buffer), w.shape[0], w.shape[1], &qw, &ws);
          m.buffers[w.buffer]->data.assign(reinterpret_cast<uint8_t*>(qw.data()),
                                           reinterpret_cast<uint8_t*>(qw.data()) + qw.size());
          w.dtype = fb::DType::INT8;
          w.quantization = std::make_unique<fb::QuantizationT>();
          w.quantization->scale = ws;
          w.quantization->zero_point.assign(ws.size(), 0);
          const auto qb = QuantizeBias(BufferAs<float>(m, b.buffer), x.quantization->scale[0], ws);
          m.buffers[b.buffer]->data.assign(reinterpret_cast<const uint8_t*>(qb.data()),
                                           reinterpret_cast<const uint8_t*>(qb.data()) + qb.size() * 4);
          b.dtype = fb::DType::INT32;
        }
        ops.push_back(std::move(op));
        break;
      }
      case fb::OpCode::LOGISTIC:
      case fb::OpCode::SOFTMAX:
        if (stays_float[out] && m.tensors[op->inputs[0]]->dtype == fb::DType::INT8) {
          // Head: DEQUANTIZE the int8 logits, then the float activation.
          auto& logits = *m.tensors[op->inputs[0]];
          auto deq = std::make_unique<fb::TensorT>();
          deq->name = logits.name + ".float";
          deq->dtype = fb::DType::FLOAT32;
          deq->shape = logits.shape;
          m.tensors.push_back(std::move(deq));
          const int32_t d = static_cast<int32_t>(m.tensors.size()) - 1;
          auto dq = std::make_unique<fb::OperatorT>();
          dq->opcode = fb::OpCode::DEQUANTIZE;
          dq->inputs = {op->inputs[0]};
          dq->outputs = {d};
          ops.push_back(std::move(dq));
          op->inputs = {d};
        } else if (op->opcode == fb::OpCode::LOGISTIC) {
          m.tensors[out]->quantization = Quant(1.0f / 256, -128);
        }
        ops.push_back(std::move(op));
        break;
      case fb::OpCode::TANH:
        m.tensors[out]->quantization = Quant(1.0f / 128, 0);
        ops.push_back(std::move(op));
        break;
      default:
        ops.push_back(std::move(op));
        break;
    }
  }
  m.operators = std::move(ops);
  // Regression outputs are FC logits: keep the int8 FC, add a DEQUANTIZE
  // into a float tensor and make that the task's output.
  for (auto& task : m.tasks) {
    auto& out = *m.tensors[task->output];
    if (out.dtype != fb::DType::INT8) continue;
    auto deq = std::make_unique<fb::TensorT>();
    deq->name = out.name + ".float";
    deq->dtype = fb::DType::FLOAT32;
    deq->shape = out.shape;
    m.tensors.push_back(std::move(deq));
    const int32_t d = static_cast<int32_t>(m.tensors.size()) - 1;
    auto dq = std::make_unique<fb::OperatorT>();
    dq->opcode = fb::OpCode::DEQUANTIZE;
    dq->inputs = {task->output};
    dq->outputs = {d};
    m.operators.push_back(std::move(dq));
    task->output = d;
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
  if (op == nullptr || op->opcode != fb::OpCode::DEQUANTIZE) return 0.0f;
  const auto& q = model.tensors.at(op->inputs.at(0))->quantization;
  return q && !q->scale.empty() ? q->scale[0] : 0.0f;
}

float GoldenTolerance(const fb::ModelT& model, const float* outputs, uint32_t rows) {
  // Float noise: XNNPACK's vectorised exp/sigmoid against libm, relative to
  // the output's magnitude.
  constexpr double kFloatNoise = 1e-5;
  size_t per_row = 0;
  for (const auto& task : model.tasks) per_row += TaskOutputSize(model, *task);
  double tol = 0.0;
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
        tol = std::max(tol, d + kFloatNoise * std::max(1.0, std::fabs(y)));
      }
    }
    offset += size;
  }
  return static_cast<float>(tol);
}

}  // namespace mtan::host
