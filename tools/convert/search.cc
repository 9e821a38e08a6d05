#include "search.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "metrics.h"

namespace mtan::convert {
namespace {

constexpr uint32_t kBatch = 256;

// The primary metric of `task` on rows idx (those with a label) of `pred`.
double Primary(const host::TaskSpec& task, const std::vector<float>& pred,
               const host::TaskLabels& labels, const std::vector<uint32_t>& idx) {
  const size_t k = static_cast<size_t>(task.classes);
  std::vector<float> p, y;
  for (uint32_t r : idx) {
    if (!labels.observed[r]) continue;
    p.insert(p.end(), pred.begin() + r * k, pred.begin() + (r + 1) * k);
    y.push_back(labels.value[r]);
  }
  switch (task.type) {
    case fb::TaskKind::BINARY: return host::Auc(p.data(), y.data(), y.size());
    case fb::TaskKind::MULTICLASS: return host::Accuracy(p.data(), y.data(), y.size(), task.classes);
    case fb::TaskKind::REGRESSION: return host::Nmse(p.data(), y.data(), y.size());
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// The AUC of `score` expected when row i is positive with probability
// p[i]: pairs weighted p_i (1 - p_j), ties counted half.
double SoftAuc(const std::vector<float>& score, const std::vector<float>& p) {
  std::vector<uint32_t> order(score.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return score[a] < score[b]; });
  double num = 0.0, neg_below = 0.0, pos = 0.0, neg = 0.0, self = 0.0;
  for (size_t g = 0; g < order.size();) {
    size_t e = g;
    double pg = 0.0, ng = 0.0, sg = 0.0;
    while (e < order.size() && score[order[e]] == score[order[g]]) {
      const double q = p[order[e]];
      pg += q;
      ng += 1.0 - q;
      sg += q * (1.0 - q);
      ++e;
    }
    num += pg * neg_below + 0.5 * (pg * ng - sg);
    neg_below += ng;
    pos += pg;
    neg += ng;
    self += sg;
    g = e;
  }
  const double den = pos * neg - self;
  return den > 0 ? num / den : std::numeric_limits<double>::quiet_NaN();
}

// The sample standard deviation of bootstrap replicates: their standard
// error. NaN for fewer than two.
double SampleSd(const std::vector<double>& v) {
  if (v.size() < 2) return std::numeric_limits<double>::quiet_NaN();
  double m = 0, s = 0;
  for (double x : v) m += x / static_cast<double>(v.size());
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

size_t ArgMax(const float* v, size_t k) {
  size_t best = 0;
  for (size_t c = 1; c < k; ++c)
    if (v[c] > v[best]) best = c;
  return best;
}

}  // namespace

bool Scorer::Init(const std::vector<uint8_t>& float_file, const host::Spec& spec, host::Dataset rows,
                  std::vector<int32_t> model_task, std::vector<double> goal, std::string* error,
                  std::vector<char> tail_rows) {
  spec_ = spec;
  rows_ = std::move(rows);
  tail_ = std::move(tail_rows);
  tail_.resize(static_cast<size_t>(rows_.rows), 0);
  model_task_ = std::move(model_task);
  goal_ = std::move(goal);
  evaluations_ = 0;
  if (goal_.size() != spec_.tasks.size()) {
    *error = "one goal per task needed";
    return false;
  }
  host::RuntimeModel rt;
  if (rt.Load(float_file, kBatch, MTAN_BACKEND_DEFAULT, error) != MTAN_OK) return false;
  if (!host::PredictModelSpace(rt, spec_, rows_, model_task_, -1, &float_out_, error)) return false;
  float_metrics_.clear();
  for (size_t t = 0; t < spec_.tasks.size(); ++t) {
    host::TaskEvaluation e;
    e.name = spec_.tasks[t].name;
    e.type = spec_.tasks[t].type;
    e.rows = rows_.labels.at(t).observed_rows;
    e.metrics = host::EvaluateTask(spec_.tasks[t], float_out_[t].data(), rows_.labels[t]);
    float_metrics_.push_back(std::move(e));
  }
  return true;
}

std::vector<float> Scorer::Observed(size_t t, const std::vector<float>& v, const std::vector<uint32_t>& idx) const {
  const size_t k = static_cast<size_t>(spec_.tasks[t].classes);
  const auto& observed = rows_.labels[t].observed;
  std::vector<float> out;
  for (uint32_t r : idx)
    if (observed[r] && !tail_[r]) out.insert(out.end(), v.begin() + r * k, v.begin() + (r + 1) * k);
  return out;
}

bool Scorer::Outputs(fb::ModelT& model, std::vector<std::vector<float>>* out, std::string* error) {
  ++evaluations_;
  host::RuntimeModel rt;
  if (rt.Load(host::FinishModel(model, kBatch), 0, MTAN_BACKEND_DEFAULT, error) != MTAN_OK) return false;
  return host::PredictModelSpace(rt, spec_, rows_, model_task_, -1, out, error);
}

std::vector<double> Scorer::LossOn(const std::vector<std::vector<float>>& out,
                                   const std::vector<uint32_t>& idx) const {
  std::vector<double> loss(spec_.tasks.size(), 0.0);
  for (size_t t = 0; t < spec_.tasks.size(); ++t) {
    const host::TaskSpec& task = spec_.tasks[t];
    const auto& labels = rows_.labels[t];
    const size_t k = static_cast<size_t>(task.classes);
    double& l = loss[t];
    switch (task.type) {
      case fb::TaskKind::BINARY: {
        const std::vector<float> p = Observed(t, float_out_[t], idx);
        l = SoftAuc(p, p) - SoftAuc(Observed(t, out[t], idx), p);
        break;
      }
      case fb::TaskKind::MULTICLASS: {
        double n = 0.0;
        for (uint32_t r : idx) {
          if (!labels.observed[r] || tail_[r]) continue;
          const float* pf = float_out_[t].data() + r * k;
          l += pf[ArgMax(pf, k)] - pf[ArgMax(out[t].data() + r * k, k)];
          n += 1.0;
        }
        l = n > 0 ? l / n : 0.0;
        break;
      }
      case fb::TaskKind::REGRESSION: {
        // E[(y - q)^2] - E[(y - f)^2] = E[(q - f)^2] when y - f is noise.
        // The distortion (q - f)^2 needs no label: it is averaged over every
        // row, tail rows included, so that rare inputs (where int8 clips)
        // count even when no labelled row has them.
        double d = 0.0, n = 0.0, sse = 0.0, nl = 0.0;
        for (uint32_t r : idx) {
          const double e = static_cast<double>(out[t][r]) - float_out_[t][r];
          d += e * e;
          n += 1.0;
          if (!labels.observed[r] || tail_[r]) continue;  // float's error: on the rows as drawn
          const double y = static_cast<double>(labels.value[r]) - float_out_[t][r];
          sse += y * y;
          nl += 1.0;
        }
        l = sse > 0 && n > 0 ? (d / n) / (sse / nl) : 0.0;
        break;
      }
    }
    if (!std::isfinite(l)) l = 0.0;
  }
  return loss;
}

bool Scorer::ExpectedLoss(fb::ModelT& model, std::vector<double>* loss, std::string* error) {
  std::vector<std::vector<float>> out;
  if (!Outputs(model, &out, error)) return false;
  std::vector<uint32_t> all(static_cast<size_t>(rows_.rows));
  for (uint32_t r = 0; r < all.size(); ++r) all[r] = r;
  *loss = LossOn(out, all);
  return true;
}

bool Scorer::ExpectedWithError(fb::ModelT& model, int resamples, std::vector<double>* fraction,
                               std::vector<double>* fraction_se, std::string* error) {
  std::vector<std::vector<float>> out;
  if (!Outputs(model, &out, error)) return false;
  const uint32_t n = static_cast<uint32_t>(rows_.rows);
  std::vector<uint32_t> idx(n);
  for (uint32_t r = 0; r < n; ++r) idx[r] = r;
  *fraction = Fractions(LossOn(out, idx));
  std::mt19937_64 rng(20240614);
  std::uniform_int_distribution<uint32_t> pick(0, n - 1);
  std::vector<std::vector<double>> fractions(fraction->size());
  for (int b = 0; b < resamples; ++b) {
    for (auto& i : idx) i = pick(rng);
    const std::vector<double> f = Fractions(LossOn(out, idx));
    for (size_t t = 0; t < f.size(); ++t) fractions[t].push_back(f[t]);
  }
  fraction_se->clear();
  for (const auto& v : fractions) fraction_se->push_back(SampleSd(v));
  return true;
}

std::vector<double> Scorer::Fractions(const std::vector<double>& loss) const {
  std::vector<double> f(loss.size(), 0.0);
  for (size_t t = 0; t < loss.size() && t < goal_.size(); ++t) f[t] = goal_[t] > 0 ? loss[t] / goal_[t] : 0.0;
  return f;
}

bool Scorer::Expected(fb::ModelT& model, std::vector<double>* fraction, std::string* error) {
  std::vector<double> loss;
  if (!ExpectedLoss(model, &loss, error)) return false;
  *fraction = Fractions(loss);
  return true;
}

bool Scorer::Metrics(fb::ModelT& model, std::vector<host::TaskEvaluation>* out, std::string* error) {
  ++evaluations_;
  host::RuntimeModel rt;
  if (rt.Load(host::FinishModel(model, kBatch), 0, MTAN_BACKEND_DEFAULT, error) != MTAN_OK) return false;
  return host::EvaluateModel(rt, spec_, rows_, model_task_, -1, out, error);
}

bool Scorer::Compare(fb::ModelT& model, int resamples, std::vector<host::TaskEvaluation>* out,
                     std::vector<double>* loss_se, std::string* error) {
  ++evaluations_;
  std::vector<std::vector<float>> q;
  {
    host::RuntimeModel rt;
    if (rt.Load(host::FinishModel(model, kBatch), 0, MTAN_BACKEND_DEFAULT, error) != MTAN_OK ||
        !host::PredictModelSpace(rt, spec_, rows_, model_task_, -1, &q, error))
      return false;
  }
  out->clear();
  for (size_t t = 0; t < spec_.tasks.size(); ++t) {
    host::TaskEvaluation e;
    e.name = spec_.tasks[t].name;
    e.type = spec_.tasks[t].type;
    e.rows = rows_.labels.at(t).observed_rows;
    e.metrics = host::EvaluateTask(spec_.tasks[t], q[t].data(), rows_.labels[t]);
    out->push_back(std::move(e));
  }
  // Paired bootstrap: the same resampled rows score both models.
  const uint32_t n = static_cast<uint32_t>(rows_.rows);
  std::mt19937_64 rng(20240613);
  std::uniform_int_distribution<uint32_t> pick(0, n - 1);
  std::vector<std::vector<double>> losses(spec_.tasks.size());
  std::vector<uint32_t> idx(n);
  for (int b = 0; b < resamples; ++b) {
    for (auto& i : idx) i = pick(rng);
    for (size_t t = 0; t < spec_.tasks.size(); ++t) {
      const double l = PrimaryLoss(spec_.tasks[t].type, Primary(spec_.tasks[t], float_out_[t], rows_.labels[t], idx),
                            Primary(spec_.tasks[t], q[t], rows_.labels[t], idx));
      if (std::isfinite(l)) losses[t].push_back(l);
    }
  }
  loss_se->clear();
  for (const auto& v : losses) loss_se->push_back(SampleSd(v));
  return true;
}

double PrimaryLoss(fb::TaskKind type, double float_value, double int8_value) {
  return type == fb::TaskKind::REGRESSION ? int8_value / float_value - 1.0 : float_value - int8_value;
}

double Total(const std::vector<double>& per_task) {
  double s = 0.0;
  for (double d : per_task) s += d;
  return s;
}

std::vector<uint32_t> SearchRows(const host::Dataset& data, const SearchRowCounts& counts,
                                 std::vector<char>* tail) {
  const uint32_t n = static_cast<uint32_t>(data.rows);
  const size_t features = data.features.size();
  std::vector<char> take(n, 0);  // 1: by the first two rules, 2: a tail row only
  std::vector<uint32_t> labelled(data.labels.size(), 0);
  auto add = [&](uint32_t r, char how) {
    if (take[r]) return;
    take[r] = how;
    for (size_t u = 0; u < data.labels.size(); ++u) labelled[u] += data.labels[u].observed[r];
  };
  for (uint32_t r = 0; r < std::min(n, counts.first); ++r) add(r, 1);
  for (uint32_t r = std::min(n, counts.first); r < n; ++r)
    for (size_t t = 0; t < data.labels.size(); ++t)
      if (data.labels[t].observed[r] && labelled[t] < counts.labels) add(r, 1);
  if (counts.tail > 0 && n > 0) {
    std::vector<uint32_t> order(n);
    for (size_t i = 0; i < features; ++i) {
      for (uint32_t r = 0; r < n; ++r) order[r] = r;
      auto value = [&](uint32_t r) { return data.x[static_cast<size_t>(r) * features + i]; };
      const uint32_t k = std::min(counts.tail, n);
      // Ties go to the earliest rows, so that the choice is reproducible.
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](uint32_t a, uint32_t b) {
        return value(a) < value(b) || (value(a) == value(b) && a < b);
      });
      for (uint32_t j = 0; j < k; ++j) add(order[j], 2);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](uint32_t a, uint32_t b) {
        return value(a) > value(b) || (value(a) == value(b) && a < b);
      });
      for (uint32_t j = 0; j < k; ++j) add(order[j], 2);
    }
  }
  std::vector<uint32_t> idx;
  if (tail) tail->clear();
  for (uint32_t r = 0; r < n; ++r) {
    if (!take[r]) continue;
    idx.push_back(r);
    if (tail) tail->push_back(take[r] == 2 ? 1 : 0);
  }
  return idx;
}

bool SearchRanges(Scorer& scorer, const std::function<fb::ModelT(const std::vector<int>&)>& build,
                  size_t slots, int candidates, int sweeps, std::vector<int>* choice,
                  double* objective, std::string* error) {
  if (choice->size() != slots) choice->assign(slots, 0);
  std::vector<double> d;
  fb::ModelT q = build(*choice);
  if (!scorer.Expected(q, &d, error)) return false;
  double best = Total(d);
  for (int sweep = 0; sweep < sweeps; ++sweep) {
    bool changed = false;
    for (size_t k = 0; k < slots; ++k) {
      const int current = (*choice)[k];
      int keep = current;
      for (int c = 0; c < candidates; ++c) {
        if (c == current) continue;
        (*choice)[k] = c;
        fb::ModelT trial = build(*choice);
        if (!scorer.Expected(trial, &d, error)) return false;
        const double j = Total(d);
        if (j < best) {
          best = j;
          keep = c;
        }
      }
      (*choice)[k] = keep;
      changed |= keep != current;
    }
    if (!changed) break;
  }
  *objective = best;
  return true;
}

bool ChannelMeans(const fb::ModelT& model, const float* rows, uint32_t n,
                  std::vector<std::vector<double>>* means, std::string* error,
                  const std::vector<uint8_t>& tensor_input) {
  fb::ModelT copy = model;  // planned without memory reuse: every tensor survives a run
  copy.golden.clear();
  host::RuntimeModel rt;
  if (rt.Load(host::FinishModel(copy, kBatch, /*reuse_memory=*/false), 0, MTAN_BACKEND_DEFAULT, error) !=
      MTAN_OK)
    return false;
  uint32_t tensors = 0, inputs = 0;
  mtan_tensor_count(rt.get(), &tensors);
  mtan_input_count(rt.get(), &inputs);
  means->assign(tensors, {});
  std::vector<float> out;
  for (uint32_t r0 = 0; r0 < n; r0 += rt.max_batch()) {
    const uint32_t b = std::min(rt.max_batch(), n - r0);
    if (rt.RunRange(rows, n, r0, b, MTAN_ALL_TASKS, &out, error, tensor_input) != MTAN_OK)
      return false;
    for (uint32_t t = 0; t < tensors; ++t) {
      mtan_tensor_desc d;
      if (mtan_tensor_get(rt.get(), t, &d) != MTAN_OK || d.data == nullptr) continue;
      std::vector<double>& m = (*means)[t];
      m.resize(d.channels, 0.0);
      for (uint32_t r = 0; r < b; ++r) {
        for (uint32_t c = 0; c < d.channels; ++c) {
          const size_t i = static_cast<size_t>(r) * d.channels + c;
          m[c] += d.dtype == MTAN_DTYPE_INT8 ? static_cast<double>(d.scale) *
                                     (static_cast<const int8_t*>(d.data)[i] - d.zero_point)
                               : static_cast<const float*>(d.data)[i];
        }
      }
    }
  }
  for (auto& m : *means)
    for (double& v : m) v /= n;
  return true;
}

namespace {

std::vector<float> Floats(const fb::ModelT& m, int32_t tensor) {
  const auto& data = m.buffers.at(m.tensors.at(tensor)->buffer)->data;
  std::vector<float> v(data.size() / 4);
  std::memcpy(v.data(), data.data(), v.size() * 4);
  return v;
}

// The weights of FC `op` of `m` as floats: int8 ones times their channel scales.
std::vector<double> Weights(const fb::ModelT& m, const fb::OperatorT& op) {
  const fb::TensorT& w = *m.tensors.at(op.inputs.at(1));
  const auto& data = m.buffers.at(w.buffer)->data;
  std::vector<double> v;
  if (w.dtype == fb::DType::INT8) {
    const size_t out = static_cast<size_t>(w.shape.at(0)), in = static_cast<size_t>(w.shape.at(1));
    v.resize(out * in);
    for (size_t o = 0; o < out; ++o)
      for (size_t i = 0; i < in; ++i)
        v[o * in + i] = static_cast<double>(w.quantization->scale.at(o)) *
                        static_cast<int8_t>(data.at(o * in + i));
  } else {
    const std::vector<float> f = Floats(m, op.inputs[1]);
    v.assign(f.begin(), f.end());
  }
  return v;
}

}  // namespace

bool CorrectBiases(fb::ModelT* float_model, const std::function<fb::ModelT(const fb::ModelT&)>& quantize,
                   const float* rows, uint32_t n, double* largest, std::string* error,
                   const std::vector<uint8_t>& tensor_input) {
  fb::ModelT& f = *float_model;
  *largest = 0.0;
  // One bias per operator (cross-attention shares them).
  {
    std::vector<char> seen(f.tensors.size(), 0);
    for (auto& op : f.operators) {
      if (op->opcode != fb::OpCode::FULLY_CONNECTED) continue;
      int32_t& b = op->inputs.at(2);
      if (!seen[b]) {
        seen[b] = 1;
        continue;
      }
      auto copy = std::make_unique<fb::TensorT>(*f.tensors[b]);
      copy->name = f.tensors[op->outputs[0]]->name + ".bias";
      auto buf = std::make_unique<fb::BufferT>(*f.buffers[copy->buffer]);
      f.buffers.push_back(std::move(buf));
      copy->buffer = static_cast<uint32_t>(f.buffers.size() - 1);
      f.tensors.push_back(std::move(copy));
      b = static_cast<int32_t>(f.tensors.size() - 1);
    }
  }
  // Depth of each FC: 1 + the deepest FC before it. Level L is corrected on
  // a model whose levels below L are final, so each correction sees the
  // inputs it will get.
  std::vector<int> level(f.operators.size(), 0), tensor_level(f.tensors.size(), 0);
  int levels = 0;
  for (size_t o = 0; o < f.operators.size(); ++o) {
    const fb::OperatorT& op = *f.operators[o];
    int in = 0;
    for (int32_t t : op.inputs) in = std::max(in, tensor_level.at(t));
    level[o] = op.opcode == fb::OpCode::FULLY_CONNECTED ? in + 1 : 0;
    tensor_level.at(op.outputs[0]) = std::max(in, level[o]);
    levels = std::max(levels, level[o]);
  }
  std::vector<std::vector<double>> float_means;
  if (!ChannelMeans(f, rows, n, &float_means, error, tensor_input)) return false;
  for (int L = 1; L <= levels; ++L) {
    fb::ModelT q = quantize(f);
    std::vector<std::vector<double>> q_means;
    if (!ChannelMeans(q, rows, n, &q_means, error, tensor_input)) return false;
    // The quantized model keeps the float model's tensor indices (it only
    // appends tensors): find each FC by its output.
    std::vector<const fb::OperatorT*> q_op(f.tensors.size(), nullptr);
    for (const auto& op : q.operators)
      if (op->opcode == fb::OpCode::FULLY_CONNECTED) q_op.at(op->outputs[0]) = op.get();
    for (size_t o = 0; o < f.operators.size(); ++o) {
      const fb::OperatorT& fop = *f.operators[o];
      if (level[o] != L) continue;
      const fb::OperatorT* qop = q_op.at(fop.outputs[0]);
      if (qop == nullptr) continue;
      const std::vector<double>& mu = float_means.at(fop.inputs[0]);
      const std::vector<double>& mu_q = q_means.at(qop->inputs[0]);
      const std::vector<double> w = Weights(f, fop), w_q = Weights(q, *qop);
      std::vector<float> b = Floats(f, fop.inputs[2]);
      const size_t in = mu.size(), out = b.size();
      if (mu_q.size() != in || w.size() != out * in || w_q.size() != out * in) continue;
      double range = 0.0;
      for (float v : b) range = std::max(range, std::fabs(static_cast<double>(v)));
      for (size_t k = 0; k < out; ++k) {
        double delta = 0.0;
        for (size_t i = 0; i < in; ++i) delta += w_q[k * in + i] * mu_q[i] - w[k * in + i] * mu[i];
        b[k] = static_cast<float>(b[k] - delta);
        if (range > 0) *largest = std::max(*largest, std::fabs(delta) / range);
      }
      auto& data = f.buffers[f.tensors[fop.inputs[2]]->buffer]->data;
      std::memcpy(data.data(), b.data(), b.size() * 4);
    }
  }
  return true;
}

bool RankSensitivity(Scorer& scorer, const std::function<fb::ModelT(const std::vector<char>&)>& build,
                     size_t ops, const std::vector<int>& candidates, const std::vector<int>& tasks,
                     std::vector<Sensitivity>* ranking, std::string* error) {
  ranking->clear();
  std::vector<double> d;
  for (int op : candidates) {
    std::vector<char> float_ops(ops, 1);
    float_ops.at(op) = 0;
    fb::ModelT q = build(float_ops);
    if (!scorer.Expected(q, &d, error)) return false;
    Sensitivity s;
    s.op = op;
    for (int t : tasks) s.score += d.at(t);
    ranking->push_back(s);
  }
  std::stable_sort(ranking->begin(), ranking->end(),
                   [](const Sensitivity& a, const Sensitivity& b) { return a.score > b.score; });
  return true;
}

int PickFallback(const std::vector<FallbackTrial>& trials, double excess_now) {
  int pick = -1;
  // Clears the aim: the fewest bytes.
  for (size_t k = 0; k < trials.size(); ++k)
    if (trials[k].excess <= 0.0 && (pick < 0 || trials[k].bytes < trials[pick].bytes)) pick = static_cast<int>(k);
  if (pick >= 0) return trials[pick].op;
  // Else the most excess removed per byte; if none removes any, the least excess left.
  double best = 0.0;
  for (size_t k = 0; k < trials.size(); ++k) {
    const double gain = (excess_now - trials[k].excess) / static_cast<double>(std::max<int64_t>(1, trials[k].bytes));
    if (gain > best) {
      best = gain;
      pick = static_cast<int>(k);
    }
  }
  if (pick < 0)
    for (size_t k = 0; k < trials.size(); ++k)
      if (pick < 0 || trials[k].excess < trials[pick].excess) pick = static_cast<int>(k);
  return pick < 0 ? -1 : trials[pick].op;
}

}  // namespace mtan::convert
