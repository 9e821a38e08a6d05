#include "convert.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "quantize.h"
#include "search.h"

namespace mtan::convert {
namespace {

using host::CalibrationMethod;
using host::RuntimeModel;

constexpr uint32_t kCalibrationBatch = 256;
constexpr double kMaxCalibrationGiB = 8.0;
constexpr int kBootstrapResamples = 200;  // standard errors of the check rows' losses
constexpr int kFallbackTrials = 6;        // most sensitive operators tried per fallback step

void Progress(const Options& o, const std::string& line) {
  if (o.progress) o.progress(line);
}

std::vector<TaskReport> CompareTasks(const std::vector<host::TaskEvaluation>& f,
                                     const std::vector<host::TaskEvaluation>& q) {
  std::vector<TaskReport> out;
  for (size_t t = 0; t < f.size(); ++t) {
    TaskReport r;
    r.name = f[t].name;
    r.kind = host::TaskKindName(f[t].type);
    r.rows = f[t].rows;
    r.primary = host::PrimaryMetricName(f[t].type);
    for (const auto& m : f[t].metrics) r.metrics.push_back({m.name, m.value, host::MetricValue(q[t], m.name)});
    out.push_back(std::move(r));
  }
  return out;
}

const MetricDelta* FindMetric(const TaskReport& t, const std::string& name) {
  for (const auto& m : t.metrics)
    if (m.name == name) return &m;
  return nullptr;
}

double Score(const std::vector<TaskReport>& tasks, const GoalPolicy& goals) {
  double worst = 0.0;
  for (const auto& t : tasks) worst = std::max(worst, GoalFraction(t, goals));
  return worst;
}

std::string TaskLine(const std::vector<TaskReport>& tasks) {
  std::string line;
  for (const auto& t : tasks) {
    const MetricDelta* p = FindMetric(t, t.primary);
    line += fmt::format(" {} {} {:+.5f}", t.name, t.primary, p ? p->delta() : 0.0);
  }
  return line;
}

// The rows `idx` of `data`, labels included.
host::Dataset Subset(const host::Dataset& data, const std::vector<uint32_t>& idx) {
  host::Dataset out;
  out.rows = static_cast<int64_t>(idx.size());
  out.features = data.features;
  const size_t f = data.features.size();
  out.x.reserve(idx.size() * f);
  for (uint32_t r : idx) out.x.insert(out.x.end(), data.x.begin() + r * f, data.x.begin() + (r + 1) * f);
  for (const auto& l : data.labels) {
    host::TaskLabels s;
    for (uint32_t r : idx) {
      s.value.push_back(l.value[r]);
      s.observed.push_back(l.observed[r]);
      s.observed_rows += l.observed[r];
    }
    out.labels.push_back(std::move(s));
  }
  return out;
}

// Per-channel weight zero points are all 0, the format's default: not
// storing them saves 4 bytes per output channel.
void StripWeightZeroPoints(fb::ModelT& m) {
  for (auto& t : m.tensors)
    if (t->buffer != 0 && t->dtype == fb::DType::INT8 && t->quantization) t->quantization->zero_point.clear();
}

// The size of `m` as a file (weight zero points stripped, as written).
int64_t FileBytes(fb::ModelT m) {
  StripWeightZeroPoints(m);
  return static_cast<int64_t>(host::FinishModel(m, kCalibrationBatch).size());
}

double CpuSeconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Rows stored as golden cases: the first rows, seeded random ones, and the
// rows with the most extreme standardized feature (they exercise saturation
// of the input quantization).
std::vector<std::vector<uint32_t>> GoldenRows(const fb::ModelT& m, const host::Dataset& data,
                                              int cases, int per_case) {
  const uint32_t n = static_cast<uint32_t>(data.rows);
  const size_t f = m.inputs.size();
  per_case = static_cast<int>(std::min<uint32_t>(static_cast<uint32_t>(std::max(per_case, 1)), n));
  std::vector<std::vector<uint32_t>> out;
  if (cases <= 0) return out;
  std::vector<uint32_t> first(per_case);
  std::iota(first.begin(), first.end(), 0u);
  out.push_back(first);
  std::vector<std::pair<float, uint32_t>> extreme(n);
  for (uint32_t r = 0; r < n; ++r) {
    float z = 0.0f;
    for (size_t i = 0; i < f; ++i) {
      const float sd = m.inputs[i]->std > 0 ? m.inputs[i]->std : 1.0f;
      z = std::max(z, std::fabs((data.x[r * f + i] - m.inputs[i]->mean) / sd));
    }
    extreme[r] = {-z, r};
  }
  std::partial_sort(extreme.begin(), extreme.begin() + per_case, extreme.end());
  std::vector<uint32_t> ext;
  for (int k = 0; k < per_case; ++k) ext.push_back(extreme[k].second);
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> pick(0, n - 1);
  while (static_cast<int>(out.size()) < cases - 1) {
    std::vector<uint32_t> rows(per_case);
    for (auto& r : rows) r = pick(rng);
    out.push_back(rows);
  }
  if (cases > 1) out.push_back(ext);
  return out;
}

bool AddGoldenCases(fb::ModelT& q, const host::Dataset& data, const Options& o, Report* report,
                    std::string* error) {
  RuntimeModel ref;
  if (ref.Load(host::FinishModel(q, kCalibrationBatch), 0, MTAN_BACKEND_REFERENCE, error) != MTAN_OK)
    return false;
  const size_t f = q.inputs.size();
  for (const auto& rows : GoldenRows(q, data, o.golden_cases, o.golden_rows)) {
    std::vector<float> x;
    for (uint32_t r : rows) x.insert(x.end(), data.x.begin() + r * f, data.x.begin() + (r + 1) * f);
    std::vector<float> y;
    const uint32_t n = static_cast<uint32_t>(rows.size());
    if (ref.Run(x.data(), n, MTAN_ALL_TASKS, &y, error) != MTAN_OK) return false;
    const std::vector<float> tol = host::GoldenTolerances(q, y.data(), n);
    if (!host::AddGoldenCase(q, x, n, y, tol, error)) return false;
    report->golden_tolerances.push_back(tol);
  }
  report->golden_cases = static_cast<int>(q.golden.size());
  return true;
}

// Per-layer float vs int8: the int8 model without memory reuse keeps every
// activation of a run, read back with mtan_tensor_get and dequantized.
bool CompareLayers(const fb::ModelT& float_model, const std::vector<const std::vector<float>*>& values,
                   const fb::ModelT& q, const host::Dataset& data,
                   std::vector<LayerReport>* layers, std::string* error) {
  fb::ModelT copy = q;
  copy.golden.clear();
  RuntimeModel rt;
  if (rt.Load(host::FinishModel(copy, kCalibrationBatch, /*reuse_memory=*/false), 0,
              MTAN_BACKEND_DEFAULT, error) != MTAN_OK)
    return false;
  std::map<std::string, int> float_index;
  for (size_t t = 0; t < float_model.tensors.size(); ++t)
    if (!values[t]->empty()) float_index[float_model.tensors[t]->name] = static_cast<int>(t);
  uint32_t tensors = 0;
  mtan_tensor_count(rt.get(), &tensors);
  struct Acc {
    int float_t = -1;
    double dot = 0, ff = 0, qq = 0, dd = 0, sat = 0, count = 0;
  };
  std::vector<Acc> acc(tensors);
  for (uint32_t t = 0; t < tensors; ++t) {
    auto it = float_index.find(copy.tensors[t]->name);
    if (it != float_index.end() && copy.tensors[t]->buffer == 0) acc[t].float_t = it->second;
  }
  const uint32_t n = static_cast<uint32_t>(data.rows);
  const size_t f = copy.inputs.size();
  std::vector<float> out;
  for (uint32_t r0 = 0; r0 < n; r0 += rt.max_batch()) {
    const uint32_t b = std::min(rt.max_batch(), n - r0);
    if (rt.Run(data.x.data() + r0 * f, b, MTAN_ALL_TASKS, &out, error) != MTAN_OK) return false;
    for (uint32_t t = 0; t < tensors; ++t) {
      if (acc[t].float_t < 0) continue;
      mtan_tensor_desc d;
      if (mtan_tensor_get(rt.get(), t, &d) != MTAN_OK || d.data == nullptr) continue;
      const float* fv = values[acc[t].float_t]->data() + static_cast<size_t>(r0) * d.channels;
      const size_t count = static_cast<size_t>(b) * d.channels;
      Acc& a = acc[t];
      // Clipped: the float value lies more than half a step outside what
      // the int8 tensor can represent.
      const double lo = static_cast<double>(d.scale) * (-128 - d.zero_point) - 0.5 * d.scale;
      const double hi = static_cast<double>(d.scale) * (127 - d.zero_point) + 0.5 * d.scale;
      for (size_t i = 0; i < count; ++i) {
        double v;
        if (d.dtype == MTAN_DTYPE_INT8) {
          const int8_t q8 = static_cast<const int8_t*>(d.data)[i];
          v = static_cast<double>(d.scale) * (q8 - d.zero_point);
          a.sat += (fv[i] < lo || fv[i] > hi) ? 1 : 0;
        } else {
          v = static_cast<const float*>(d.data)[i];
        }
        a.dot += fv[i] * v;
        a.ff += static_cast<double>(fv[i]) * fv[i];
        a.qq += v * v;
        a.dd += (v - fv[i]) * (v - fv[i]);
      }
      a.count += static_cast<double>(count);
    }
  }
  layers->clear();
  for (uint32_t t = 0; t < tensors; ++t) {
    const Acc& a = acc[t];
    if (a.float_t < 0 || a.count == 0) continue;
    mtan_tensor_desc d;
    mtan_tensor_get(rt.get(), t, &d);
    LayerReport l;
    l.name = copy.tensors[t]->name;
    l.dtype = d.dtype == MTAN_DTYPE_INT8 ? "int8" : "float32";
    l.channels = d.channels;
    l.scale = d.dtype == MTAN_DTYPE_INT8 ? d.scale : 0.0f;
    l.zero_point = d.dtype == MTAN_DTYPE_INT8 ? d.zero_point : 0;
    // Two all-zero tensors agree perfectly.
    l.cosine = (a.ff == 0 && a.qq == 0) ? 1.0 : a.dot / std::sqrt(a.ff * a.qq);
    if (!std::isfinite(l.cosine)) l.cosine = 0.0;
    l.relative_rmse = a.ff == 0 ? (a.dd == 0 ? 0.0 : 1.0) : std::sqrt(a.dd / a.ff);
    l.saturated = d.dtype == MTAN_DTYPE_INT8 ? a.sat / a.count : 0.0;
    layers->push_back(l);
  }
  return true;
}

std::string Hex64(uint64_t v) { return fmt::format("{:016x}", v); }

void SetProperty(fb::MetadataT& md, const std::string& key, const std::string& value) {
  for (auto& kv : md.properties) {
    if (kv->key == key) {
      kv->value = value;
      return;
    }
  }
  auto kv = std::make_unique<fb::KeyValueT>();
  kv->key = key;
  kv->value = value;
  md.properties.push_back(std::move(kv));
}

void AddMetric(fb::MetadataT& md, const std::string& name, double value) {
  auto m = std::make_unique<fb::MetricT>();
  m->name = name;
  m->value = value;
  md.metrics.push_back(std::move(m));
}

}  // namespace

double GoalFraction(const TaskReport& task, const GoalPolicy& goals) {
  const MetricDelta* m = FindMetric(task, task.primary);
  if (m == nullptr || !std::isfinite(m->float_value) || !std::isfinite(m->int8_value)) return 0.0;
  if (task.primary == "auc") return (m->float_value - m->int8_value) / goals.auc_drop;
  if (task.primary == "accuracy") return (m->float_value - m->int8_value) / goals.accuracy_drop;
  if (task.primary == "nmse")
    return m->float_value > 0 ? (m->int8_value / m->float_value - 1.0) / (goals.nmse_ratio - 1.0) : 0.0;
  return 0.0;
}

double GoalLoss(fb::TaskKind type, const GoalPolicy& goals) {
  switch (type) {
    case fb::TaskKind::BINARY: return goals.auc_drop;
    case fb::TaskKind::MULTICLASS: return goals.accuracy_drop;
    case fb::TaskKind::REGRESSION: return goals.nmse_ratio - 1.0;
  }
  return 0.0;
}

bool GoalMet(const TaskReport& task, const GoalPolicy& goals) {
  if (std::isfinite(task.expected)) {
    const double se = std::isfinite(task.expected_se) ? task.expected_se : 0.0;
    if (task.expected + goals.check_sigmas * se > 1.0) return false;
  }
  double slack = 0.0;
  if (std::isfinite(task.loss_se)) {
    fb::TaskKind type = fb::TaskKind::BINARY;
    if (task.primary == "accuracy") type = fb::TaskKind::MULTICLASS;
    if (task.primary == "nmse") type = fb::TaskKind::REGRESSION;
    slack = goals.check_sigmas * task.loss_se / GoalLoss(type, goals);
  }
  return GoalFraction(task, goals) <= 1.0 + slack;
}

bool Convert(const Options& o, Report* report, std::string* error) {
  *report = Report{};
  report->goals = o.goals;
  const GoalPolicy& goals = o.goals;
  if (!(goals.auc_drop > 0) || !(goals.accuracy_drop > 0) || !(goals.nmse_ratio > 1) ||
      !(goals.aim > 0 && goals.aim <= 1)) {
    *error = "goals: the AUC and accuracy drops must be > 0, the NMSE ratio > 1 and the aim in (0, 1]";
    return false;
  }
  // The source model: readable, intact, float.
  std::vector<uint8_t> src;
  if (!host::ReadFile(o.model_path, &src, error)) return false;
  fb::ModelT f;
  {
    std::string e;
    if (!host::UnpackModel(host::ModelBytes(src), &f, &e)) {
      *error = o.model_path + ": not a valid model: " + e;
      return false;
    }
  }
  for (const auto& t : f.tensors) {
    if (t->dtype != fb::DType::FLOAT32) {
      *error = o.model_path + ": the model is already quantized (tensor '" + t->name + "' is " +
               fb::EnumNameDType(t->dtype) + "); convert its float32 source instead";
      return false;
    }
  }
  report->source_hash = Hex64(host::Checksum64(src.data(), src.size()));
  report->float_file_bytes = src.size();
  f.golden.clear();  // float outputs: the int8 model gets its own
  RuntimeModel float_rt;
  if (float_rt.Load(src, kCalibrationBatch, MTAN_BACKEND_DEFAULT, error) != MTAN_OK) {
    *error = o.model_path + ": " + *error;
    return false;
  }

  // Calibration (and check) rows, matched to the model's inputs and tasks.
  host::Spec spec;
  if (!host::LoadSpec(o.spec_path, &spec, error)) return false;
  std::vector<int32_t> model_task;
  if (!host::MatchTasks(float_rt.get(), spec, &model_task, error)) {
    *error = o.spec_path + ": " + *error;
    return false;
  }
  auto load_rows = [&](const std::string& path, host::Dataset* data) {
    if (!host::LoadCsv(path, spec, data, error) || !host::MatchInputs(float_rt.get(), path, data, error))
      return false;
    if (data->rows <= 0) {
      *error = path + ": no rows";
      return false;
    }
    for (size_t i = 0; i < data->x.size(); ++i) {
      if (!std::isfinite(data->x[i])) {
        *error = fmt::format("{}: row {}, feature '{}' is not finite", path, i / data->features.size() + 1,
                             data->features[i % data->features.size()]);
        return false;
      }
    }
    return true;
  };
  host::Dataset fit, check;
  {
    host::Dataset data;
    if (!load_rows(o.calib_path, &data)) return false;
    if (!o.check_path.empty()) {
      fit = std::move(data);
      if (!load_rows(o.check_path, &check)) return false;
      report->check_source = o.check_path;
    } else {
      // Every 5th row is held out: the goals are judged on rows that no
      // range, bias or fallback decision has seen.
      std::vector<uint32_t> fit_idx, check_idx;
      for (uint32_t r = 0; r < static_cast<uint32_t>(data.rows); ++r) (r % 5 == 4 ? check_idx : fit_idx).push_back(r);
      if (check_idx.empty()) {
        *error = fmt::format("{}: {} rows are too few to hold out check rows (every 5th); give more rows "
                             "or a --check file", o.calib_path, data.rows);
        return false;
      }
      fit = Subset(data, fit_idx);
      check = Subset(data, check_idx);
      report->check_source = "every 5th row of " + o.calib_path;
    }
  }
  report->calibration_rows = fit.rows;
  report->check_rows = check.rows;
  const uint32_t n = static_cast<uint32_t>(fit.rows);
  {
    // Every activation of every row is kept (percentiles, histograms and the
    // per-layer report need them): refuse clearly rather than run out of memory.
    uint64_t per_row = 0;
    for (const auto& t : f.tensors)
      if (t->buffer == 0) per_row += host::RowElements(*t);
    const double gib = static_cast<double>(per_row) * n * sizeof(float) / (1u << 30);
    if (gib > kMaxCalibrationGiB) {
      *error = fmt::format("{}: {} rows x {} activations per row need {:.1f} GiB to calibrate (limit "
                           "{}); use fewer rows, e.g. the validation split",
                           o.calib_path, n, per_row, gib, kMaxCalibrationGiB);
      return false;
    }
  }
  const auto wall0 = std::chrono::steady_clock::now();
  const double cpu0 = CpuSeconds();

  // Every activation on every calibration row, from the runtime's float path.
  std::vector<std::vector<float>> values;
  uint32_t last_pct = 0;
  Progress(o, fmt::format("calibrating on {} rows of {} ({} held out to check the goals)", n, o.calib_path,
                          check.rows));
  if (!host::CollectActivations(f, fit.x, n, &values, error, [&](uint32_t done, uint32_t total) {
        const uint32_t pct = static_cast<uint32_t>(100ull * done / total);
        if (pct / 10 != last_pct / 10 || done == total) {
          Progress(o, fmt::format("  float activations: {}/{} rows ({}%)", done, total, pct));
          last_pct = pct;
        }
      }))
    return false;
  float_rt.Unload();
  std::vector<double> goal_loss;
  for (const auto& t : spec.tasks) goal_loss.push_back(GoalLoss(t.type, goals));
  Scorer search, fit_scorer, check_scorer;
  std::vector<char> tail_rows;
  const std::vector<uint32_t> search_rows = SearchRows(fit, {}, &tail_rows);
  if (!search.Init(src, spec, Subset(fit, search_rows), model_task, goal_loss, error, tail_rows) ||
      !fit_scorer.Init(src, spec, fit, model_task, goal_loss, error) ||
      !check_scorer.Init(src, spec, check, model_task, goal_loss, error))
    return false;
  // The int8 model is chosen and checked by these metrics: rows that cannot
  // measure one (a single row, or one class only) would pick blindly.
  for (const Scorer* s : {&fit_scorer, &check_scorer}) {
    for (const auto& t : s->float_metrics()) {
      const std::string metric = host::PrimaryMetricName(t.type);
      if (!std::isfinite(host::MetricValue(t, metric))) {
        *error = fmt::format("{}: {} rows ({} with a label for task '{}') cannot measure its {}, so "
                             "int8 could not be compared with float; use more rows (both classes of a "
                             "binary task, at least two rows)",
                             s == &fit_scorer ? "calibration" : report->check_source, s->rows().rows,
                             t.rows, t.name, metric);
        return false;
      }
    }
  }

  // Each method's range for every tensor and for every input feature.
  const std::vector<CalibrationMethod> methods = {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile,
                                                  CalibrationMethod::kMse};
  const int std_t = host::StandardizedInputTensor(f);
  const int features = static_cast<int>(f.inputs.size());
  std::vector<std::vector<host::Range>> table, feature_table;
  for (CalibrationMethod m : methods) {
    table.push_back(host::CalibrateRanges(values, m, o.percentile));
    if (std_t >= 0) feature_table.push_back(host::ChannelRanges(values[std_t], features, m, o.percentile));
  }
  // What the search chooses, slot by slot: with input equalization, the
  // range of each feature (EqualizeInputs); then the range of each tensor
  // that an operator quantizes to a calibrated range (LOGISTIC and TANH have
  // fixed scales; an equalized input has its own).
  size_t feature_slots = 0;
  if (o.equalize_inputs && std_t >= 0) {
    fb::ModelT probe = f;
    if (host::EqualizeInputs(&probe, feature_table[0])) feature_slots = static_cast<size_t>(features);
  }
  std::vector<int32_t> searched;
  for (const auto& op : f.operators) {
    switch (op->opcode) {
      case fb::OpCode::QUANTIZE:
        if (feature_slots > 0) break;
        [[fallthrough]];
      case fb::OpCode::FULLY_CONNECTED:
      case fb::OpCode::MUL:
      case fb::OpCode::ADD:
      case fb::OpCode::ATTENTION_POOL:
        searched.push_back(op->outputs[0]);
        break;
      default:
        break;
    }
  }
  const size_t slots = feature_slots + searched.size();
  const size_t n_ops = f.operators.size();
  std::vector<int> choice(slots, 0);
  std::vector<char> float_ops(n_ops, 0);
  fb::ModelT corrected;  // the bias-corrected float model, when use_corrected
  bool use_corrected = false;
  host::QuantizeOptions qo;
  qo.float_heads = o.float_heads;
  // The float model with its inputs equalized by the chosen feature ranges.
  auto equalize = [&](const std::vector<int>& ch, std::vector<float>* c = nullptr,
                      std::vector<float>* h = nullptr) {
    fb::ModelT fm = f;
    if (feature_slots > 0) {
      std::vector<host::Range> r(feature_slots);
      for (size_t i = 0; i < feature_slots; ++i) r[i] = feature_table[ch[i]][i];
      host::EqualizeInputs(&fm, r, c, h);
    }
    return fm;
  };
  auto ranges_for = [&](const std::vector<int>& ch, size_t tensors) {
    std::vector<host::Range> r = table[1];
    for (size_t k = 0; k < searched.size(); ++k) r[searched[k]] = table[ch[feature_slots + k]][searched[k]];
    if (feature_slots > 0) r[std_t] = host::EqualizedInputRange();
    r.resize(tensors);
    return r;
  };
  auto quantize = [&](const fb::ModelT& fm, const std::vector<int>& ch, const std::vector<char>& fo) {
    host::QuantizeOptions q = qo;
    q.float_ops = fo;
    return host::QuantizeModel(fm, ranges_for(ch, fm.tensors.size()), q);
  };
  fb::ModelT equalized;  // equalize(choice), once the ranges are chosen
  auto float_model = [&]() -> const fb::ModelT& { return use_corrected ? corrected : equalized; };
  auto build = [&](const std::vector<int>& ch) { return quantize(equalize(ch), ch, float_ops); };
  auto fit_tasks = [&](fb::ModelT& q, std::vector<TaskReport>* out) {
    std::vector<host::TaskEvaluation> e;
    if (!fit_scorer.Metrics(q, &e, error)) return false;
    *out = CompareTasks(fit_scorer.float_metrics(), e);
    return true;
  };

  // One method for every tensor: each candidate (auto starts its search from
  // the one with the least expected loss).
  report->requested = host::CalibrationMethodName(o.method);
  double best = std::numeric_limits<double>::infinity();
  std::vector<int> start(slots, 0);
  for (size_t m = 0; m < methods.size(); ++m) {
    if (o.method != CalibrationMethod::kAuto && methods[m] != o.method) continue;
    std::vector<int> ch(slots, static_cast<int>(m));
    CandidateReport c;
    c.method = host::CalibrationMethodName(methods[m]);
    std::vector<double> e;
    fb::ModelT q = build(ch);
    if (!search.Expected(q, &e, error) || !fit_tasks(q, &c.tasks)) {
      *error = "int8 model (" + c.method + "): " + *error;
      return false;
    }
    c.expected = Total(e);
    c.score = Score(c.tasks, goals);
    Progress(o, fmt::format("  {:<10} expected loss {:.2f} goals, worst task at {:.2f} of its goal:{}", c.method,
                            c.expected, c.score, TaskLine(c.tasks)));
    if (c.expected < best) {
      best = c.expected;
      start = ch;
    }
    report->candidates.push_back(std::move(c));
  }
  choice = start;
  if (o.method == CalibrationMethod::kAuto) {
    Progress(o, fmt::format("  per-tensor search over {} input features and {} tensors x {} methods",
                            feature_slots, searched.size(), methods.size()));
    if (!SearchRanges(search, build, slots, static_cast<int>(methods.size()), 2, &choice, &best, error))
      return false;
    report->method = "per-tensor";
    Progress(o, fmt::format("  per-tensor: expected loss {:.2f} goals", best));
  } else {
    report->method = host::CalibrationMethodName(o.method);
  }

  // Bias correction, kept when it lowers the expected loss; redone whenever
  // the float fallback changes which layers are int8.
  equalized = equalize(choice);
  std::vector<double> expected;  // per task, of the current model on the search rows
  auto correct = [&]() {
    fb::ModelT c = equalized;
    double largest = 0.0;
    const std::vector<char> fo = float_ops;
    if (!CorrectBiases(&c, [&](const fb::ModelT& fm) { return quantize(fm, choice, fo); },
                       search.rows().x.data(), static_cast<uint32_t>(search.rows().rows), &largest, error))
      return false;
    corrected = std::move(c);
    return true;
  };
  auto current = [&]() { return quantize(float_model(), choice, float_ops); };
  auto rescore = [&]() {
    fb::ModelT q = current();
    return search.Expected(q, &expected, error);
  };
  if (!rescore()) return false;
  if (o.bias_correction) {
    if (!correct()) return false;
    use_corrected = true;
    const std::vector<double> before = expected;
    if (!rescore()) return false;
    Progress(o, fmt::format("  bias correction: expected loss {:.2f} -> {:.2f} goals", Total(before), Total(expected)));
    report->bias_correction_gain = Total(expected) > 0 ? Total(before) / Total(expected) : 0.0;
    if (Total(expected) >= Total(before)) {
      use_corrected = false;
      expected = before;
    }
  }
  report->bias_correction = use_corrected;
  auto worst = [](const std::vector<double>& v) { return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()); };

  // Float fallback: while a task's expected loss is over the aim, keep the
  // operators it is most sensitive to in float, fewest first.
  std::vector<int> failing;
  for (size_t t = 0; t < expected.size(); ++t)
    if (expected[t] > goals.aim) failing.push_back(static_cast<int>(t));
  if (!failing.empty() && o.float_fallback) {
    std::string names;
    for (int t : failing) names += fmt::format(" {} {:.2f}", spec.tasks[t].name, expected[t]);
    Progress(o, fmt::format("  expected loss over {:.2f} of a goal:{}; ranking layers for the float fallback",
                            goals.aim, names));
    std::vector<int> candidates;
    {
      fb::ModelT q = current();
      for (size_t op = 0; op < n_ops; ++op)
        if (q.tensors.at(f.operators[op]->outputs[0])->dtype == fb::DType::INT8) candidates.push_back(static_cast<int>(op));
    }
    std::vector<Sensitivity> ranking;
    // Trials run without bias correction: biases corrected for one set of
    // int8 layers are wrong for another.
    if (!RankSensitivity(search, [&](const std::vector<char>& fo) { return quantize(equalized, choice, fo); },
                         n_ops, candidates, failing, &ranking, error))
      return false;
    {
      std::string top;
      for (size_t k = 0; k < ranking.size() && k < 6; ++k)
        top += fmt::format(" {} {:.2f}", f.tensors[f.operators[ranking[k].op]->outputs[0]]->name, ranking[k].score);
      Progress(o, "  most sensitive (expected loss with only it in int8):" + top);
    }
    // Re-fits the biases for the current float_ops and rescores.
    auto refit = [&]() { return (!use_corrected || correct()) && rescore(); };
    auto excess = [&](const std::vector<double>& e) {
      double x = 0.0;
      for (double v : e) x += std::max(0.0, v - goals.aim);
      return x;
    };
    // Each step tries the most sensitive operators not yet in float and
    // keeps one by PickFallback: the cheapest in bytes that clears the aim,
    // else the most excess removed per byte.
    std::vector<int> fallen;
    while (worst(expected) > goals.aim) {
      std::vector<double> e;
      fb::ModelT base = quantize(equalized, choice, float_ops);
      if (!search.Expected(base, &e, error)) return false;
      const double excess_now = excess(e);
      const int64_t base_bytes = FileBytes(std::move(base));
      std::vector<FallbackTrial> trials;
      for (const Sensitivity& s : ranking) {
        if (float_ops[s.op] || static_cast<int>(trials.size()) == kFallbackTrials) continue;
        float_ops[s.op] = 1;
        fb::ModelT trial = quantize(equalized, choice, float_ops);
        const bool ok = search.Expected(trial, &e, error);
        float_ops[s.op] = 0;
        if (!ok) return false;
        trials.push_back({s.op, excess(e), FileBytes(std::move(trial)) - base_bytes});
      }
      const int pick = PickFallback(trials, excess_now);
      if (pick < 0) break;  // every operator is in float already
      float_ops[pick] = 1;
      fallen.push_back(pick);
      if (!refit()) return false;
      Progress(o, fmt::format("    + {:<28} worst task's expected loss {:.2f} of its goal",
                              f.tensors[f.operators[pick]->outputs[0]]->name, worst(expected)));
    }
    // The fewest bytes: drop every fallback the aim does not need after
    // all, the one that adds most bytes first.
    std::vector<std::pair<int64_t, int>> by_bytes;
    for (int op : fallen) {
      std::vector<char> without = float_ops;
      without[op] = 0;
      by_bytes.push_back({FileBytes(current()) - FileBytes(quantize(float_model(), choice, without)), op});
    }
    std::stable_sort(by_bytes.begin(), by_bytes.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [bytes, op] : by_bytes) {
      if (fallen.size() <= 1) break;
      float_ops[op] = 0;
      const std::vector<double> keep = expected;
      if (!refit()) return false;
      if (worst(expected) <= goals.aim) {
        Progress(o, fmt::format("    - {:<28} not needed (-{} B)", f.tensors[f.operators[op]->outputs[0]]->name, bytes));
        fallen.erase(std::find(fallen.begin(), fallen.end(), op));
      } else {
        float_ops[op] = 1;
        expected = keep;
      }
    }
    if (!refit()) return false;
    for (int op : fallen) {
      FallbackReport fr;
      fr.name = f.tensors[f.operators[op]->outputs[0]]->name;
      for (const Sensitivity& s : ranking)
        if (s.op == op) fr.sensitivity = s.score;
      std::vector<char> without = float_ops;
      without[op] = 0;
      fr.added_bytes = FileBytes(current()) - FileBytes(quantize(float_model(), choice, without));
      report->fallback.push_back(fr);
    }
    report->fallback_bytes =
        FileBytes(current()) - FileBytes(quantize(float_model(), choice, std::vector<char>(n_ops, 0)));
  }
  fb::ModelT q = current();
  if (!fit_tasks(q, &report->fit_tasks)) return false;
  for (size_t t = 0; t < report->fit_tasks.size(); ++t) report->fit_tasks[t].expected = expected[t];

  // The goals, judged on the check rows by GoalMet (GoalPolicy::check_sigmas).
  {
    std::vector<host::TaskEvaluation> e;
    std::vector<double> se, ex, ex_se;
    if (!check_scorer.Compare(q, kBootstrapResamples, &e, &se, error) ||
        !check_scorer.ExpectedWithError(q, kBootstrapResamples, &ex, &ex_se, error))
      return false;
    report->tasks = CompareTasks(check_scorer.float_metrics(), e);
    report->goals_met = true;
    for (size_t t = 0; t < report->tasks.size(); ++t) {
      TaskReport& tr = report->tasks[t];
      tr.loss_se = se[t];
      tr.expected = ex[t];
      tr.expected_se = ex_se[t];
      report->goals_met = report->goals_met && GoalMet(tr, goals);
    }
    Progress(o, fmt::format("  check rows ({}): worst task at {:.2f} of its goal:{}", check.rows,
                            Score(report->tasks, goals), TaskLine(report->tasks)));
  }
  report->evaluations = search.evaluations() + fit_scorer.evaluations() + check_scorer.evaluations();
  report->calibration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  report->calibration_cpu_seconds = CpuSeconds() - cpu0;

  // Metadata: where it came from, how it was calibrated, what it scores.
  const bool eq = feature_slots > 0;
  StripWeightZeroPoints(q);
  if (!q.metadata) q.metadata = std::make_unique<fb::MetadataT>();
  fb::MetadataT& md = *q.metadata;
  const std::string source_producer = md.producer;
  md.producer = fmt::format("mtan-convert {}.{}", MTAN_VERSION_MAJOR, MTAN_VERSION_MINOR);
  SetProperty(md, "source_hash", report->source_hash);
  if (!source_producer.empty()) SetProperty(md, "source_producer", source_producer);
  SetProperty(md, "calibration", report->method);
  SetProperty(md, "calibration_requested", report->requested);
  SetProperty(md, "calibration_rows", std::to_string(n));
  SetProperty(md, "check_rows", std::to_string(check.rows));
  SetProperty(md, "input_equalization", eq ? "per-feature" : "off");
  SetProperty(md, "heads", o.float_heads ? "float" : "int8");
  SetProperty(md, "bias_correction", use_corrected ? "on" : "off");
  {
    std::string names;
    for (const auto& fr : report->fallback) names += (names.empty() ? "" : ",") + fr.name;
    SetProperty(md, "float_fallback", names.empty() ? "none" : names);
  }
  SetProperty(md, "goals", report->goals_met ? "met" : "missed");
  for (const auto& t : report->tasks) {
    for (const auto& m : t.metrics) {
      AddMetric(md, "float/" + t.name + "/" + m.name, m.float_value);
      AddMetric(md, "int8/" + t.name + "/" + m.name, m.int8_value);
    }
  }

  // Golden cases, then the arena for the chosen maximum batch.
  const uint32_t max_batch = o.max_batch ? o.max_batch : (f.max_batch ? f.max_batch : 1);
  q.max_batch = max_batch;
  if (!AddGoldenCases(q, fit, o, report, error)) return false;
  std::vector<uint8_t> file = host::FinishModel(q, max_batch);
  {
    RuntimeModel rt;
    if (rt.Load(file, max_batch, MTAN_BACKEND_XNNPACK, error) != MTAN_OK) return false;
    q.arena_bytes = rt.arena_bytes();
  }
  file = host::FinishModel(q, max_batch);
  // The file as written must load and pass its own self-test on both paths.
  for (mtan_backend b : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
    RuntimeModel rt;
    mtan_status s = rt.Load(file, 0, b, error);
    if (s == MTAN_OK && !q.golden.empty()) {
      s = mtan_self_test(rt.get());
      if (s != MTAN_OK) *error = host::RuntimeError(s);
    }
    if (s != MTAN_OK) {
      *error = std::string("the converted model fails on the ") +
               (b == MTAN_BACKEND_XNNPACK ? "XNNPACK" : "reference") + " backend: " + *error;
      return false;
    }
  }
  report->int8_file_bytes = file.size();
  report->arena_bytes = q.arena_bytes;
  report->max_batch = max_batch;

  Progress(o, "comparing float and int8 activations per layer");
  {
    std::vector<const std::vector<float>*> layer_values;
    for (const auto& v : values) layer_values.push_back(&v);
    std::vector<float> input_values;
    std::map<std::string, std::string> range;
    if (eq) {
      // The equalized standardized input the int8 model quantizes.
      std::vector<float> c, h;
      equalize(choice, &c, &h);
      input_values = values[std_t];
      for (size_t i = 0; i < input_values.size(); ++i)
        input_values[i] = (input_values[i] - c[i % features]) / h[i % features];
      layer_values[std_t] = &input_values;
      for (size_t i = 0; i < feature_slots; ++i)
        report->input_ranges.push_back({f.inputs[i]->name, host::CalibrationMethodName(methods[choice[i]])});
      range[f.tensors[std_t]->name] = "per feature";
    }
    if (!CompareLayers(f, layer_values, q, fit, &report->layers, error)) return false;
    for (size_t k = 0; k < searched.size(); ++k)
      range[f.tensors[searched[k]]->name] = host::CalibrationMethodName(methods[choice[feature_slots + k]]);
    for (const auto& op : f.operators)
      if (op->opcode == fb::OpCode::LOGISTIC || op->opcode == fb::OpCode::TANH)
        range[f.tensors[op->outputs[0]]->name] = "fixed";
    for (auto& l : report->layers)
      if (l.dtype == "int8" && range.count(l.name)) l.range = range[l.name];
  }
  report->input_equalization = eq;
  report->float_heads = o.float_heads;

  // Report first, then the model: a failure leaves neither behind. A model
  // that misses a goal is written only when allowed.
  report->written = report->goals_met || o.allow_over_goal;
  if (!o.report_path.empty()) {
    const std::string json = ReportJson(*report);
    if (!host::WriteFileAtomic(o.report_path, std::vector<uint8_t>(json.begin(), json.end()), error))
      return false;
  }
  if (report->written && !host::WriteFileAtomic(o.out_path, file, error)) {
    if (!o.report_path.empty()) std::remove(o.report_path.c_str());
    return false;
  }
  return true;
}

std::string ReportJson(const Report& r) {
  using nlohmann::ordered_json;
  auto num = [](double v) { return std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr); };
  auto tasks_json = [&](const std::vector<TaskReport>& tasks) {
    ordered_json out = ordered_json::object();
    for (const auto& t : tasks) {
      ordered_json j;
      j["kind"] = t.kind;
      j["rows"] = t.rows;
      j["metric"] = t.primary;
      const MetricDelta* p = FindMetric(t, t.primary);
      j["float"] = num(p ? p->float_value : NAN);
      j["int8"] = num(p ? p->int8_value : NAN);
      j["delta"] = num(p ? p->delta() : NAN);
      j["goal_fraction"] = num(GoalFraction(t, r.goals));
      if (std::isfinite(t.loss_se)) j["loss_se"] = t.loss_se;
      if (std::isfinite(t.expected)) j["expected_goal_fraction"] = t.expected;
      if (std::isfinite(t.expected_se)) j["expected_goal_fraction_se"] = t.expected_se;
      j["goal_met"] = GoalMet(t, r.goals);
      ordered_json ms = ordered_json::object();
      for (const auto& m : t.metrics)
        ms[m.name] = {{"float", num(m.float_value)}, {"int8", num(m.int8_value)}, {"delta", num(m.delta())}};
      j["metrics"] = ms;
      out[t.name] = j;
    }
    return out;
  };
  ordered_json j;
  j["source_hash"] = r.source_hash;
  j["calibration"] = {{"method", r.method},
                      {"requested", r.requested},
                      {"rows", r.calibration_rows},
                      {"input_equalization", r.input_equalization ? "per-feature" : "off"},
                      {"heads", r.float_heads ? "float" : "int8"},
                      {"bias_correction", r.bias_correction},
                      {"bias_correction_gain", num(r.bias_correction_gain)},
                      {"seconds", r.calibration_seconds},
                      {"cpu_seconds", r.calibration_cpu_seconds},
                      {"evaluations", r.evaluations}};
  ordered_json cands = ordered_json::object();
  for (const auto& c : r.candidates)
    cands[c.method] = {{"score", num(c.score)}, {"expected", num(c.expected)}, {"tasks", tasks_json(c.tasks)}};
  j["calibration"]["candidates"] = cands;
  j["goals"] = {{"auc_drop", r.goals.auc_drop},
                {"accuracy_drop", r.goals.accuracy_drop},
                {"nmse_ratio", r.goals.nmse_ratio},
                {"aim", r.goals.aim},
                {"check_rows", r.check_rows},
                {"check_source", r.check_source},
                {"met", r.goals_met},
                {"written", r.written}};
  ordered_json inputs = ordered_json::object();
  for (const auto& [name, method] : r.input_ranges) inputs[name] = method;
  j["calibration"]["input_ranges"] = inputs;
  j["tasks"] = tasks_json(r.tasks);
  j["fit_tasks"] = tasks_json(r.fit_tasks);
  ordered_json fallback = ordered_json::array();
  for (const auto& f : r.fallback)
    fallback.push_back({{"name", f.name}, {"sensitivity", num(f.sensitivity)}, {"added_bytes", f.added_bytes}});
  j["float_fallback"] = {{"layers", fallback}, {"bytes", r.fallback_bytes}};
  ordered_json layers = ordered_json::array();
  for (const auto& l : r.layers) {
    ordered_json lj;
    lj["name"] = l.name;
    lj["dtype"] = l.dtype;
    lj["channels"] = l.channels;
    if (l.dtype == "int8") {
      lj["range"] = l.range;
      lj["scale"] = l.scale;
      lj["zero_point"] = l.zero_point;
      lj["clipped"] = num(l.saturated);
    }
    lj["cosine"] = num(l.cosine);
    lj["relative_rmse"] = num(l.relative_rmse);
    layers.push_back(lj);
  }
  j["layers"] = layers;
  j["sizes"] = {{"float_file_bytes", r.float_file_bytes},
                {"int8_file_bytes", r.int8_file_bytes},
                {"int8_over_float", num(r.float_file_bytes ? static_cast<double>(r.int8_file_bytes) / r.float_file_bytes : NAN)},
                {"arena_bytes", r.arena_bytes},
                {"max_batch", r.max_batch}};
  j["golden"] = {{"cases", r.golden_cases}, {"tolerances", r.golden_tolerances}};
  return j.dump(2) + "\n";
}

std::string ReportTable(const Report& r) {
  std::string s;
  s += fmt::format("calibration: {} ({} requested) on {} rows, input equalization {}, {} heads, bias "
                   "correction {}\n",
                   r.method, r.requested, r.calibration_rows, r.input_equalization ? "per-feature" : "off",
                   r.float_heads ? "float" : "int8", r.bias_correction ? "on" : "off");
  if (r.fallback.empty()) {
    s += "float fallback: none\n";
  } else {
    std::string names;
    for (const auto& f : r.fallback) names += fmt::format("{}{} (+{} B)", names.empty() ? "" : ", ", f.name, f.added_bytes);
    s += fmt::format("float fallback: {} layer(s), +{} bytes: {}\n", r.fallback.size(), r.fallback_bytes, names);
  }
  s += fmt::format("calibration time: {:.1f} s wall, {:.1f} s CPU, {} candidate runs\n", r.calibration_seconds,
                   r.calibration_cpu_seconds, r.evaluations);
  s += fmt::format("\ngoals (AUC drop <= {}, accuracy drop <= {} points, NMSE <= {}x float), judged on {} "
                   "held-out rows ({}): {}\n",
                   r.goals.auc_drop, 100.0 * r.goals.accuracy_drop, r.goals.nmse_ratio, r.check_rows,
                   r.check_source, r.goals_met ? "met" : "MISSED");
  s += "  loss: measured as a fraction of the goal (+- its standard error); expected: the loss the outputs'\n"
       "  distortion should cost (+- its SE); a goal is met when expected + " +
       fmt::format("{0} SE <= 1 and measured <= 1 + {0} SE\n", r.goals.check_sigmas);
  s += fmt::format("{:<16} {:<10} {:>8} {:>10} {:>10} {:>10}  {:<16} {:>14} {:>9}\n", "task", "metric", "rows",
                   "float", "int8", "delta", "loss (goals)", "expected", "fit rows");
  for (const auto& t : r.tasks) {
    const TaskReport* fit = nullptr;
    for (const auto& ft : r.fit_tasks)
      if (ft.name == t.name) fit = &ft;
    for (const auto& m : t.metrics) {
      std::string tail;
      if (m.name == t.primary) {
        const double g = GoalLoss(t.primary == "auc" ? fb::TaskKind::BINARY
                                  : t.primary == "accuracy" ? fb::TaskKind::MULTICLASS
                                                            : fb::TaskKind::REGRESSION, r.goals);
        const std::string loss = std::isfinite(t.loss_se)
                                     ? fmt::format("{:.2f} +- {:.2f}", GoalFraction(t, r.goals), t.loss_se / g)
                                     : fmt::format("{:.2f}", GoalFraction(t, r.goals));
        const std::string expected =
            !std::isfinite(t.expected)      ? "-"
            : std::isfinite(t.expected_se) ? fmt::format("{:.2f} +- {:.2f}", t.expected, t.expected_se)
                                            : fmt::format("{:.2f}", t.expected);
        tail = fmt::format("  {:<16} {:>14} {:>9}{}", loss, expected,
                           fit && std::isfinite(fit->expected) ? fmt::format("{:.2f}", fit->expected) : "-",
                           GoalMet(t, r.goals) ? "" : "  OVER GOAL");
      }
      s += fmt::format("{:<16} {:<10} {:>8} {:>10.5f} {:>10.5f} {:>+10.5f}{}\n", t.name, m.name, t.rows,
                       m.float_value, m.int8_value, m.delta(), tail);
    }
  }
  s += fmt::format("\n{:<36} {:>7} {:>18} {:>6} {:>10} {:>9} {:>9} {:>7}\n", "layer", "dtype", "range",
                   "chan", "scale", "cosine", "rel.rmse", "clip%");
  for (const auto& l : r.layers) {
    s += fmt::format("{:<36} {:>7} {:>18} {:>6} {:>10} {:>9.6f} {:>9.5f} {:>7}\n", l.name, l.dtype,
                     l.dtype == "int8" ? l.range : "-", l.channels,
                     l.dtype == "int8" ? fmt::format("{:.3g}", l.scale) : "-", l.cosine, l.relative_rmse,
                     l.dtype == "int8" ? fmt::format("{:.3f}", 100.0 * l.saturated) : "-");
  }
  s += fmt::format("\nsizes: float file {} bytes, int8 file {} bytes ({:.3f}x), arena {} bytes at "
                   "max batch {}\n",
                   r.float_file_bytes, r.int8_file_bytes,
                   r.float_file_bytes ? static_cast<double>(r.int8_file_bytes) / r.float_file_bytes : 0.0,
                   r.arena_bytes, r.max_batch);
  s += fmt::format("golden cases: {}\n", r.golden_cases);
  return s;
}

}  // namespace mtan::convert
