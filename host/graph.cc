#include "graph.h"

#include <cmath>
#include <stdexcept>

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

// Tensor inputs, one EMBEDDING_BAG each, and the CONCAT of the standardised
// features `x` with the pooled bags; returns the CONCAT's output.
int AddIdInputs(GraphBuilder& g, const MtanWeights& w, int x) {
  fb::ModelT& m = g.m;
  std::vector<int> table_tensor, vocabulary_buffer;
  for (const EmbeddingTable& t : w.tables) {
    if (static_cast<int64_t>(t.w.size()) != static_cast<int64_t>(t.rows) * t.dim ||
        t.rows != (t.map == fb::IdMap::HASHED ? static_cast<int64_t>(t.hash_buckets)
                                               : static_cast<int64_t>(t.vocabulary.size()) + 1))
      throw std::invalid_argument("table " + t.name + ": rows, width and id map do not agree");
    table_tensor.push_back(g.Constant("table." + t.name, {t.rows, t.dim}, t.w));
    int vocabulary = 0;
    if (t.map == fb::IdMap::VOCABULARY) {
      m.buffers.push_back(MakeBuffer(t.vocabulary.data(), t.vocabulary.size() * sizeof(int64_t)));
      vocabulary = static_cast<int>(m.buffers.size()) - 1;
    }
    vocabulary_buffer.push_back(vocabulary);
  }
  std::vector<int32_t> parts = {x};
  int width = static_cast<int>(w.feature_names.size());
  for (const IdInput& in : w.id_inputs) {
    if (in.table < 0 || in.table >= static_cast<int>(w.tables.size()) || in.length < 1)
      throw std::invalid_argument("id input " + in.name + ": no table or no length");
    const EmbeddingTable& t = w.tables[in.table];
    const int ids = g.AddTensor(in.name, fb::DType::INT64, {in.length});
    auto ti = std::make_unique<fb::TensorInputT>();
    ti->name = in.name;
    ti->tensor = ids;
    ti->id_map = t.map;
    ti->vocabulary = static_cast<uint32_t>(vocabulary_buffer[in.table]);
    ti->hash_buckets = t.hash_buckets;
    m.tensor_inputs.push_back(std::move(ti));
    const int bag = g.Activation(in.name + ".bag", t.dim);
    g.Op(fb::OpCode::EMBEDDING_BAG, {ids, table_tensor[in.table]}, bag);
    m.operators.back()->combiner = in.combiner;
    parts.push_back(bag);
    width += t.dim;
  }
  const int y = g.Activation("input.concat", width);
  g.Op(fb::OpCode::CONCAT, parts, y);
  return y;
}

}  // namespace

Dense RandomDense(Rng& rng, int in, int out) {
  const double sd = 1.0 / std::sqrt(static_cast<double>(in));
  Dense d;
  d.in = in;
  d.out = out;
  d.w.resize(static_cast<size_t>(in) * out);
  d.b.resize(out);
  for (float& v : d.w) v = static_cast<float>(sd * rng.Normal());
  for (float& v : d.b) v = static_cast<float>(0.1 * sd * rng.Normal());
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
  int x = g.Activation("input.standardized", f);
  g.Op(fb::OpCode::QUANTIZE, {m.input_tensor}, x);
  if (!w.id_inputs.empty()) x = AddIdInputs(g, w, x);

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

}  // namespace mtan::host
