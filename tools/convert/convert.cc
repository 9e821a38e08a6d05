#include "convert.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <random>

#include "ids.h"
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
  for (const host::IdColumn& c : data.ids) {
    host::IdColumn s{c.name, c.length, {}, 0};
    for (uint32_t r : idx)
      s.ids.insert(s.ids.end(), c.ids.begin() + r * c.length, c.ids.begin() + (r + 1) * c.length);
    out.ids.push_back(std::move(s));
  }
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
// storing them saves 4 bytes per output channel. (An embedding table's row
// zero points are not 0, and stay.)
void StripWeightZeroPoints(fb::ModelT& m) {
  for (auto& t : m.tensors) {
    if (t->buffer == 0 || t->dtype != fb::DType::INT8 || !t->quantization) continue;
    auto& zp = t->quantization->zero_point;
    if (std::all_of(zp.begin(), zp.end(), [](int32_t z) { return z == 0; })) zp.clear();
  }
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
    const std::vector<uint8_t> ids = host::TensorInputRows(data, rows);
    std::vector<float> y;
    const uint32_t n = static_cast<uint32_t>(rows.size());
    if (ref.Run(x.data(), n, MTAN_ALL_TASKS, &y, error, ids) != MTAN_OK) return false;
    const std::vector<float> tol = host::GoldenTolerances(q, y.data(), n);
    if (!host::AddGoldenCase(q, x, n, y, tol, error, ids)) return false;
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
    if (rt.Run(data.x.data() + r0 * f, b, MTAN_ALL_TASKS, &out, error,
               host::TensorInputBytes(data, r0, r0 + b)) != MTAN_OK)
      return false;
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

const MetricDelta* FindMetric(const TaskReport& task, const std::string& name) {
  for (const auto& m : task.metrics)
    if (m.name == name) return &m;
  return nullptr;
}

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

namespace {

// What the search chooses, slot by slot: with input equalization, the
// range of each feature (EqualizeInputs); then the range of each tensor
// that an operator quantizes to a calibrated range (LOGISTIC and TANH have
// fixed scales; an equalized input has its own). A slot's choice is an
// index into `methods`.
struct SearchSpace {
  std::vector<CalibrationMethod> methods = {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile,
                                            CalibrationMethod::kMse};
  int std_t = -1;  // the standardized input tensor (StandardizedInputTensor)
  int features = 0;
  // Each method's range for every tensor and for every input feature.
  std::vector<std::vector<host::Range>> table, feature_table;
  size_t feature_slots = 0;       // 0: inputs not equalized
  std::vector<int32_t> searched;  // the tensors of the slots after the features
  size_t slots() const { return feature_slots + searched.size(); }
};

// What the stages of Convert hand on to each other, in the order they fill it.
struct Conversion {
  Conversion(const Options& options, Report* r, std::string* e)
      : o(options), goals(options.goals), report(r), error(e) {}

  const Options& o;
  const GoalPolicy& goals;
  Report* report;
  std::string* error;

  // LoadModel: the source file, unpacked without its golden cases, and its
  // runtime until the activations are collected.
  std::vector<uint8_t> src;
  fb::ModelT f;
  RuntimeModel float_rt;
  // LoadRows: the calibration (fit) and check rows, matched to the model.
  host::Spec spec;
  std::vector<int32_t> model_task;
  host::Dataset fit, check;
  // CollectFloatActivations: every activation on every fit row, and when
  // the calibration started.
  std::vector<std::vector<float>> values;
  std::chrono::steady_clock::time_point wall0;
  double cpu0 = 0;
  // InitScorers
  Scorer search, fit_scorer, check_scorer;
  // BuildSearchSpace
  SearchSpace space;
  // ChooseRanges, ApplyBiasCorrection and FloatFallback: the model chosen so far.
  std::vector<int> choice;      // per slot
  std::vector<char> float_ops;  // per operator of f: 1 keeps it in float
  fb::ModelT equalized;         // Equalize(choice), once the ranges are chosen
  fb::ModelT corrected;         // the bias-corrected float model, when use_corrected
  bool use_corrected = false;
  std::vector<double> expected;  // per task, of the current model on the search rows
  // JudgeGoals on: the chosen int8 model, then its file.
  fb::ModelT q;
  std::vector<uint8_t> file;
  uint32_t max_batch = 0;

  // The float model with its inputs equalized by the chosen feature ranges.
  fb::ModelT Equalize(const std::vector<int>& ch, std::vector<float>* c = nullptr,
                      std::vector<float>* h = nullptr) const {
    fb::ModelT fm = f;
    if (space.feature_slots > 0) {
      std::vector<host::Range> r(space.feature_slots);
      for (size_t i = 0; i < space.feature_slots; ++i) r[i] = space.feature_table[ch[i]][i];
      host::EqualizeInputs(&fm, r, c, h);
    }
    return fm;
  }
  std::vector<host::Range> Ranges(const std::vector<int>& ch, size_t tensors) const {
    std::vector<host::Range> r = space.table[1];
    for (size_t k = 0; k < space.searched.size(); ++k)
      r[space.searched[k]] = space.table[ch[space.feature_slots + k]][space.searched[k]];
    if (space.feature_slots > 0) r[space.std_t] = host::EqualizedInputRange();
    r.resize(tensors);
    return r;
  }
  fb::ModelT Quantize(const fb::ModelT& fm, const std::vector<int>& ch, const std::vector<char>& fo) const {
    host::QuantizeOptions qo;
    qo.float_heads = o.float_heads;
    qo.float_ops = fo;
    return host::QuantizeModel(fm, Ranges(ch, fm.tensors.size()), qo);
  }
  fb::ModelT Build(const std::vector<int>& ch) const { return Quantize(Equalize(ch), ch, float_ops); }
  const fb::ModelT& FloatModel() const { return use_corrected ? corrected : equalized; }
  fb::ModelT Current() const { return Quantize(FloatModel(), choice, float_ops); }
  // The file bytes that keeping operator `op` in float adds to the current model.
  int64_t AddedBytes(int op) const {
    std::vector<char> without = float_ops;
    without[op] = 0;
    return FileBytes(Current()) - FileBytes(Quantize(FloatModel(), choice, without));
  }
  const std::string& OpName(int op) const { return f.tensors[f.operators[op]->outputs[0]]->name; }
};

bool CheckGoals(const GoalPolicy& goals, std::string* error) {
  if (!(goals.auc_drop > 0) || !(goals.accuracy_drop > 0) || !(goals.nmse_ratio > 1) ||
      !(goals.aim > 0 && goals.aim <= 1)) {
    *error = "goals: the AUC and accuracy drops must be > 0, the NMSE ratio > 1 and the aim in (0, 1]";
    return false;
  }
  return true;
}

// The source model: readable, intact, float.
bool LoadModel(Conversion& c) {
  const Options& o = c.o;
  if (!host::ReadFile(o.model_path, &c.src, c.error)) return false;
  {
    std::string e;
    if (!host::UnpackModel(host::ModelBytes(c.src), &c.f, &e)) {
      *c.error = o.model_path + ": not a valid model: " + e;
      return false;
    }
  }
  for (const auto& t : c.f.tensors) {
    if (t->dtype != fb::DType::FLOAT32 && t->dtype != fb::DType::INT64) {
      *c.error = o.model_path + ": the model is already quantized (tensor '" + t->name + "' is " +
                 fb::EnumNameDType(t->dtype) + "); convert its float32 source instead";
      return false;
    }
  }
  c.report->source_hash = Hex64(host::Checksum64(c.src.data(), c.src.size()));
  c.report->float_file_bytes = c.src.size();
  c.f.golden.clear();  // float outputs: the int8 model gets its own
  if (c.float_rt.Load(c.src, kCalibrationBatch, MTAN_BACKEND_DEFAULT, c.error) != MTAN_OK) {
    *c.error = o.model_path + ": " + *c.error;
    return false;
  }
  return true;
}

// The rows of one labelled CSV, matched to the model's inputs: at least one,
// every value finite.
bool LoadRowsFile(Conversion& c, const std::string& path, host::Dataset* data) {
  std::string* error = c.error;
  if (!host::LoadCsv(path, c.spec, data, error) || !host::MatchInputs(c.float_rt.get(), path, data, error))
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
}

// Calibration (and check) rows, matched to the model's inputs and tasks.
bool LoadRows(Conversion& c) {
  const Options& o = c.o;
  if (!host::LoadSpec(o.spec_path, &c.spec, c.error)) return false;
  if (!host::MatchTasks(c.float_rt.get(), c.spec, &c.model_task, c.error)) {
    *c.error = o.spec_path + ": " + *c.error;
    return false;
  }
  host::Dataset data;
  if (!LoadRowsFile(c, o.calib_path, &data)) return false;
  if (!o.check_path.empty()) {
    c.fit = std::move(data);
    if (!LoadRowsFile(c, o.check_path, &c.check)) return false;
    c.report->check_source = o.check_path;
  } else {
    // Every 5th row is held out: the goals are judged on rows that no
    // range, bias or fallback decision has seen.
    std::vector<uint32_t> fit_idx, check_idx;
    for (uint32_t r = 0; r < static_cast<uint32_t>(data.rows); ++r) (r % 5 == 4 ? check_idx : fit_idx).push_back(r);
    if (check_idx.empty()) {
      *c.error = fmt::format("{}: {} rows are too few to hold out check rows (every 5th); give more rows "
                             "or a --check file", o.calib_path, data.rows);
      return false;
    }
    c.fit = Subset(data, fit_idx);
    c.check = Subset(data, check_idx);
    c.report->check_source = "every 5th row of " + o.calib_path;
  }
  c.report->calibration_rows = c.fit.rows;
  c.report->check_rows = c.check.rows;
  return true;
}

// Every activation on every calibration row, from the runtime's float path.
bool CollectFloatActivations(Conversion& c) {
  const Options& o = c.o;
  const uint32_t n = static_cast<uint32_t>(c.fit.rows);
  {
    // Every activation of every row is kept (percentiles, histograms and the
    // per-layer report need them): refuse clearly rather than run out of memory.
    uint64_t per_row = 0;
    for (const auto& t : c.f.tensors)
      if (t->buffer == 0) per_row += host::RowElements(*t);
    const double gib = static_cast<double>(per_row) * n * sizeof(float) / (1u << 30);
    if (gib > kMaxCalibrationGiB) {
      *c.error = fmt::format("{}: {} rows x {} activations per row need {:.1f} GiB to calibrate (limit "
                             "{}); use fewer rows, e.g. the validation split",
                             o.calib_path, n, per_row, gib, kMaxCalibrationGiB);
      return false;
    }
  }
  c.wall0 = std::chrono::steady_clock::now();
  c.cpu0 = CpuSeconds();

  uint32_t last_pct = 0;
  Progress(o, fmt::format("calibrating on {} rows of {} ({} held out to check the goals)", n, o.calib_path,
                          c.check.rows));
  const std::vector<uint8_t> fit_ids = host::TensorInputBytes(c.fit, 0, n);
  if (!host::CollectActivations(c.f, c.fit.x, n, &c.values, c.error, [&](uint32_t done, uint32_t total) {
        const uint32_t pct = static_cast<uint32_t>(100ull * done / total);
        if (pct / 10 != last_pct / 10 || done == total) {
          Progress(o, fmt::format("  float activations: {}/{} rows ({}%)", done, total, pct));
          last_pct = pct;
        }
      }, fit_ids))
    return false;
  c.float_rt.Unload();
  return true;
}

// The search's, the fit rows' and the check rows' scorers.
bool InitScorers(Conversion& c) {
  std::vector<double> goal_loss;
  for (const auto& t : c.spec.tasks) goal_loss.push_back(GoalLoss(t.type, c.goals));
  std::vector<char> tail_rows;
  const std::vector<uint32_t> search_rows = SearchRows(c.fit, {}, &tail_rows);
  if (!c.search.Init(c.src, c.spec, Subset(c.fit, search_rows), c.model_task, goal_loss, c.error, tail_rows) ||
      !c.fit_scorer.Init(c.src, c.spec, c.fit, c.model_task, goal_loss, c.error) ||
      !c.check_scorer.Init(c.src, c.spec, c.check, c.model_task, goal_loss, c.error))
    return false;
  // The int8 model is chosen and checked by these metrics: rows that cannot
  // measure one (a single row, or one class only) would pick blindly.
  for (const Scorer* s : {&c.fit_scorer, &c.check_scorer}) {
    for (const auto& t : s->float_metrics()) {
      const std::string metric = host::PrimaryMetricName(t.type);
      if (!std::isfinite(host::MetricValue(t, metric))) {
        *c.error = fmt::format("{}: {} rows ({} with a label for task '{}') cannot measure its {}, so "
                               "int8 could not be compared with float; use more rows (both classes of a "
                               "binary task, at least two rows)",
                               s == &c.fit_scorer ? "calibration" : c.report->check_source, s->rows().rows,
                               t.rows, t.name, metric);
        return false;
      }
    }
  }
  return true;
}

// Each method's ranges, and the slots the search chooses them for.
void BuildSearchSpace(Conversion& c) {
  SearchSpace& s = c.space;
  s.std_t = host::StandardizedInputTensor(c.f);
  s.features = static_cast<int>(c.f.inputs.size());
  for (CalibrationMethod m : s.methods) {
    s.table.push_back(host::CalibrateRanges(c.values, m, c.o.percentile));
    if (s.std_t >= 0)
      s.feature_table.push_back(host::ChannelRanges(c.values[s.std_t], s.features, m, c.o.percentile));
  }
  if (c.o.equalize_inputs && s.std_t >= 0) {
    fb::ModelT probe = c.f;
    if (host::EqualizeInputs(&probe, s.feature_table[0])) s.feature_slots = static_cast<size_t>(s.features);
  }
  for (const auto& op : c.f.operators) {
    switch (op->opcode) {
      case fb::OpCode::QUANTIZE:
        if (s.feature_slots > 0) break;
        [[fallthrough]];
      case fb::OpCode::FULLY_CONNECTED:
      case fb::OpCode::MUL:
      case fb::OpCode::ADD:
      case fb::OpCode::ATTENTION_POOL:
        s.searched.push_back(op->outputs[0]);
        break;
      default:
        break;
    }
  }
  c.choice.assign(s.slots(), 0);
  c.float_ops.assign(c.f.operators.size(), 0);
}

// Every metric of every task, float against `q`, on the fit rows.
bool FitTasks(Conversion& c, fb::ModelT& q, std::vector<TaskReport>* out) {
  std::vector<host::TaskEvaluation> e;
  if (!c.fit_scorer.Metrics(q, &e, c.error)) return false;
  *out = CompareTasks(c.fit_scorer.float_metrics(), e);
  return true;
}

bool ChooseRanges(Conversion& c) {
  const Options& o = c.o;
  const std::vector<CalibrationMethod>& methods = c.space.methods;
  const size_t slots = c.space.slots();
  // One method for every tensor: each candidate (auto starts its search from
  // the one with the least expected loss).
  c.report->requested = host::CalibrationMethodName(o.method);
  double best = std::numeric_limits<double>::infinity();
  std::vector<int> start(slots, 0);
  for (size_t m = 0; m < methods.size(); ++m) {
    if (o.method != CalibrationMethod::kAuto && methods[m] != o.method) continue;
    std::vector<int> ch(slots, static_cast<int>(m));
    CandidateReport cand;
    cand.method = host::CalibrationMethodName(methods[m]);
    std::vector<double> e;
    fb::ModelT q = c.Build(ch);
    if (!c.search.Expected(q, &e, c.error) || !FitTasks(c, q, &cand.tasks)) {
      *c.error = "int8 model (" + cand.method + "): " + *c.error;
      return false;
    }
    cand.expected = Total(e);
    cand.score = Score(cand.tasks, c.goals);
    Progress(o, fmt::format("  {:<10} expected loss {:.2f} goals, worst task at {:.2f} of its goal:{}",
                            cand.method, cand.expected, cand.score, TaskLine(cand.tasks)));
    if (cand.expected < best) {
      best = cand.expected;
      start = ch;
    }
    c.report->candidates.push_back(std::move(cand));
  }
  c.choice = start;
  if (o.method == CalibrationMethod::kAuto) {
    Progress(o, fmt::format("  per-tensor search over {} input features and {} tensors x {} methods",
                            c.space.feature_slots, c.space.searched.size(), methods.size()));
    if (!SearchRanges(c.search, [&c](const std::vector<int>& ch) { return c.Build(ch); }, slots,
                      static_cast<int>(methods.size()), 2, &c.choice, &best, c.error))
      return false;
    c.report->method = "per-tensor";
    Progress(o, fmt::format("  per-tensor: expected loss {:.2f} goals", best));
  } else {
    c.report->method = host::CalibrationMethodName(o.method);
  }
  return true;
}

// c.corrected: the equalized model's biases corrected for the current choice
// and float_ops.
bool CorrectCurrent(Conversion& c) {
  fb::ModelT m = c.equalized;
  double largest = 0.0;
  const std::vector<char> fo = c.float_ops;
  if (!CorrectBiases(&m, [&](const fb::ModelT& fm) { return c.Quantize(fm, c.choice, fo); },
                     c.search.rows().x.data(), static_cast<uint32_t>(c.search.rows().rows), &largest, c.error,
                     host::TensorInputBytes(c.search.rows(), 0, c.search.rows().rows)))
    return false;
  c.corrected = std::move(m);
  return true;
}

bool Rescore(Conversion& c) {
  fb::ModelT q = c.Current();
  return c.search.Expected(q, &c.expected, c.error);
}

// Re-fits the biases for the current float_ops and rescores.
bool Refit(Conversion& c) { return (!c.use_corrected || CorrectCurrent(c)) && Rescore(c); }

// Bias correction, kept when it lowers the expected loss; redone whenever
// the float fallback changes which layers are int8 (Refit).
bool ApplyBiasCorrection(Conversion& c) {
  c.equalized = c.Equalize(c.choice);
  if (!Rescore(c)) return false;
  if (c.o.bias_correction) {
    if (!CorrectCurrent(c)) return false;
    c.use_corrected = true;
    const std::vector<double> before = c.expected;
    if (!Rescore(c)) return false;
    Progress(c.o, fmt::format("  bias correction: expected loss {:.2f} -> {:.2f} goals", Total(before),
                              Total(c.expected)));
    c.report->bias_correction_gain = Total(c.expected) > 0 ? Total(before) / Total(c.expected) : 0.0;
    if (Total(c.expected) >= Total(before)) {
      c.use_corrected = false;
      c.expected = before;
    }
  }
  c.report->bias_correction = c.use_corrected;
  return true;
}

double Worst(const std::vector<double>& v) { return v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()); }

// Expected loss over the aim, summed over tasks: 0 clears the aim.
double Excess(const std::vector<double>& e, double aim) {
  double x = 0.0;
  for (double v : e) x += std::max(0.0, v - aim);
  return x;
}

// The current model's int8 operators, most sensitive first for the tasks
// in `failing` (RankSensitivity).
bool RankFallback(Conversion& c, const std::vector<int>& failing, std::vector<Sensitivity>* ranking) {
  std::string names;
  for (int t : failing) names += fmt::format(" {} {:.2f}", c.spec.tasks[t].name, c.expected[t]);
  Progress(c.o, fmt::format("  expected loss over {:.2f} of a goal:{}; ranking layers for the float fallback",
                            c.goals.aim, names));
  const size_t n_ops = c.f.operators.size();
  std::vector<int> candidates;
  {
    fb::ModelT q = c.Current();
    for (size_t op = 0; op < n_ops; ++op)
      if (q.tensors.at(c.f.operators[op]->outputs[0])->dtype == fb::DType::INT8)
        candidates.push_back(static_cast<int>(op));
  }
  // Trials run without bias correction: biases corrected for one set of
  // int8 layers are wrong for another.
  auto build = [&c](const std::vector<char>& fo) { return c.Quantize(c.equalized, c.choice, fo); };
  if (!RankSensitivity(c.search, build, n_ops, candidates, failing, ranking, c.error))
    return false;
  std::string top;
  for (size_t k = 0; k < ranking->size() && k < 6; ++k)
    top += fmt::format(" {} {:.2f}", c.OpName((*ranking)[k].op), (*ranking)[k].score);
  Progress(c.o, "  most sensitive (expected loss with only it in int8):" + top);
  return true;
}

// Each step tries the most sensitive operators not yet in float and
// keeps one by PickFallback: the cheapest in bytes that clears the aim,
// else the most excess removed per byte.
bool AddFallbacks(Conversion& c, const std::vector<Sensitivity>& ranking, std::vector<int>* fallen) {
  const double aim = c.goals.aim;
  while (Worst(c.expected) > aim) {
    std::vector<double> e;
    fb::ModelT base = c.Quantize(c.equalized, c.choice, c.float_ops);
    if (!c.search.Expected(base, &e, c.error)) return false;
    const double excess_now = Excess(e, aim);
    const int64_t base_bytes = FileBytes(std::move(base));
    std::vector<FallbackTrial> trials;
    for (const Sensitivity& s : ranking) {
      if (c.float_ops[s.op] || static_cast<int>(trials.size()) == kFallbackTrials) continue;
      c.float_ops[s.op] = 1;
      fb::ModelT trial = c.Quantize(c.equalized, c.choice, c.float_ops);
      const bool ok = c.search.Expected(trial, &e, c.error);
      c.float_ops[s.op] = 0;
      if (!ok) return false;
      trials.push_back({s.op, Excess(e, aim), FileBytes(std::move(trial)) - base_bytes});
    }
    const int pick = PickFallback(trials, excess_now);
    if (pick < 0) break;  // every operator is in float already
    c.float_ops[pick] = 1;
    fallen->push_back(pick);
    if (!Refit(c)) return false;
    Progress(c.o, fmt::format("    + {:<28} worst task's expected loss {:.2f} of its goal", c.OpName(pick),
                              Worst(c.expected)));
  }
  return true;
}

// The fewest bytes: drop every fallback the aim does not need after
// all, the one that adds most bytes first.
bool DropUnneededFallbacks(Conversion& c, std::vector<int>* fallen) {
  std::vector<std::pair<int64_t, int>> by_bytes;
  for (int op : *fallen) by_bytes.push_back({c.AddedBytes(op), op});
  std::stable_sort(by_bytes.begin(), by_bytes.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& [bytes, op] : by_bytes) {
    if (fallen->size() <= 1) break;
    c.float_ops[op] = 0;
    const std::vector<double> keep = c.expected;
    if (!Refit(c)) return false;
    if (Worst(c.expected) <= c.goals.aim) {
      Progress(c.o, fmt::format("    - {:<28} not needed (-{} B)", c.OpName(op), bytes));
      fallen->erase(std::find(fallen->begin(), fallen->end(), op));
    } else {
      c.float_ops[op] = 1;
      c.expected = keep;
    }
  }
  return true;
}

// Float fallback: while a task's expected loss is over the aim, keep the
// operators it is most sensitive to in float, fewest first.
bool FloatFallback(Conversion& c) {
  std::vector<int> failing;
  for (size_t t = 0; t < c.expected.size(); ++t)
    if (c.expected[t] > c.goals.aim) failing.push_back(static_cast<int>(t));
  if (failing.empty() || !c.o.float_fallback) return true;
  std::vector<Sensitivity> ranking;
  std::vector<int> fallen;
  if (!RankFallback(c, failing, &ranking) || !AddFallbacks(c, ranking, &fallen) ||
      !DropUnneededFallbacks(c, &fallen) || !Refit(c))
    return false;
  for (int op : fallen) {
    FallbackReport fr;
    fr.name = c.OpName(op);
    for (const Sensitivity& s : ranking)
      if (s.op == op) fr.sensitivity = s.score;
    fr.added_bytes = c.AddedBytes(op);
    c.report->fallback.push_back(fr);
  }
  const std::vector<char> all_int8(c.f.operators.size(), 0);
  c.report->fallback_bytes = FileBytes(c.Current()) - FileBytes(c.Quantize(c.FloatModel(), c.choice, all_int8));
  return true;
}

// The chosen model on the fit rows, then the goals, judged on the check rows
// by GoalMet (GoalPolicy::check_sigmas).
bool JudgeGoals(Conversion& c) {
  Report* report = c.report;
  c.q = c.Current();
  if (!FitTasks(c, c.q, &report->fit_tasks)) return false;
  for (size_t t = 0; t < report->fit_tasks.size(); ++t) report->fit_tasks[t].expected = c.expected[t];
  std::vector<host::TaskEvaluation> e;
  std::vector<double> se, ex, ex_se;
  if (!c.check_scorer.Compare(c.q, kBootstrapResamples, &e, &se, c.error) ||
      !c.check_scorer.ExpectedWithError(c.q, kBootstrapResamples, &ex, &ex_se, c.error))
    return false;
  report->tasks = CompareTasks(c.check_scorer.float_metrics(), e);
  report->goals_met = true;
  for (size_t t = 0; t < report->tasks.size(); ++t) {
    TaskReport& tr = report->tasks[t];
    tr.loss_se = se[t];
    tr.expected = ex[t];
    tr.expected_se = ex_se[t];
    report->goals_met = report->goals_met && GoalMet(tr, c.goals);
  }
  Progress(c.o, fmt::format("  check rows ({}): worst task at {:.2f} of its goal:{}", c.check.rows,
                            Score(report->tasks, c.goals), TaskLine(report->tasks)));
  report->evaluations = c.search.evaluations() + c.fit_scorer.evaluations() + c.check_scorer.evaluations();
  report->calibration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - c.wall0).count();
  report->calibration_cpu_seconds = CpuSeconds() - c.cpu0;
  return true;
}

// Metadata: where it came from, how it was calibrated, what it scores.
void WriteMetadata(Conversion& c) {
  const Report& report = *c.report;
  fb::ModelT& q = c.q;
  StripWeightZeroPoints(q);
  if (!q.metadata) q.metadata = std::make_unique<fb::MetadataT>();
  fb::MetadataT& md = *q.metadata;
  const std::string source_producer = md.producer;
  md.producer = fmt::format("mtan-convert {}.{}", MTAN_VERSION_MAJOR, MTAN_VERSION_MINOR);
  SetProperty(md, "source_hash", report.source_hash);
  if (!source_producer.empty()) SetProperty(md, "source_producer", source_producer);
  SetProperty(md, "calibration", report.method);
  SetProperty(md, "calibration_requested", report.requested);
  SetProperty(md, "calibration_rows", std::to_string(static_cast<uint32_t>(c.fit.rows)));
  SetProperty(md, "check_rows", std::to_string(c.check.rows));
  SetProperty(md, "input_equalization", c.space.feature_slots > 0 ? "per-feature" : "off");
  SetProperty(md, "heads", c.o.float_heads ? "float" : "int8");
  SetProperty(md, "bias_correction", c.use_corrected ? "on" : "off");
  {
    std::string names;
    for (const auto& fr : report.fallback) names += (names.empty() ? "" : ",") + fr.name;
    SetProperty(md, "float_fallback", names.empty() ? "none" : names);
  }
  SetProperty(md, "goals", report.goals_met ? "met" : "missed");
  for (const auto& t : report.tasks) {
    for (const auto& m : t.metrics) {
      AddMetric(md, "float/" + t.name + "/" + m.name, m.float_value);
      AddMetric(md, "int8/" + t.name + "/" + m.name, m.int8_value);
    }
  }
}

// Golden cases, then the arena for the chosen maximum batch.
bool FinishFile(Conversion& c) {
  c.max_batch = c.o.max_batch ? c.o.max_batch : (c.f.max_batch ? c.f.max_batch : 1);
  c.q.max_batch = c.max_batch;
  if (!AddGoldenCases(c.q, c.fit, c.o, c.report, c.error)) return false;
  c.file = host::FinishModel(c.q, c.max_batch);
  {
    RuntimeModel rt;
    if (rt.Load(c.file, c.max_batch, MTAN_BACKEND_XNNPACK, c.error) != MTAN_OK) return false;
    c.q.arena_bytes = rt.arena_bytes();
  }
  c.file = host::FinishModel(c.q, c.max_batch);
  return true;
}

// The file as written must load and pass its own self-test on both paths.
bool SelfTest(Conversion& c) {
  for (mtan_backend b : {MTAN_BACKEND_XNNPACK, MTAN_BACKEND_REFERENCE}) {
    RuntimeModel rt;
    mtan_status s = rt.Load(c.file, 0, b, c.error);
    if (s == MTAN_OK && !c.q.golden.empty()) {
      s = mtan_self_test(rt.get());
      if (s != MTAN_OK) *c.error = host::RuntimeError(s);
    }
    if (s != MTAN_OK) {
      *c.error = std::string("the converted model fails on the ") +
                 (b == MTAN_BACKEND_XNNPACK ? "XNNPACK" : "reference") + " backend: " + *c.error;
      return false;
    }
  }
  c.report->int8_file_bytes = c.file.size();
  c.report->arena_bytes = c.q.arena_bytes;
  c.report->max_batch = c.max_batch;
  return true;
}

// Float against int8 per layer (CompareLayers), with the calibration that
// set each int8 tensor's range.
bool ReportLayers(Conversion& c) {
  const SearchSpace& s = c.space;
  const fb::ModelT& f = c.f;
  Report* report = c.report;
  const bool eq = s.feature_slots > 0;
  Progress(c.o, "comparing float and int8 activations per layer");
  std::vector<const std::vector<float>*> layer_values;
  for (const auto& v : c.values) layer_values.push_back(&v);
  std::vector<float> input_values;
  std::map<std::string, std::string> range;
  if (eq) {
    // The equalized standardized input the int8 model quantizes.
    std::vector<float> centre, half;
    c.Equalize(c.choice, &centre, &half);
    input_values = c.values[s.std_t];
    for (size_t i = 0; i < input_values.size(); ++i)
      input_values[i] = (input_values[i] - centre[i % s.features]) / half[i % s.features];
    layer_values[s.std_t] = &input_values;
    for (size_t i = 0; i < s.feature_slots; ++i)
      report->input_ranges.push_back({f.inputs[i]->name, host::CalibrationMethodName(s.methods[c.choice[i]])});
    range[f.tensors[s.std_t]->name] = "per feature";
  }
  if (!CompareLayers(f, layer_values, c.q, c.fit, &report->layers, c.error)) return false;
  for (size_t k = 0; k < s.searched.size(); ++k)
    range[f.tensors[s.searched[k]]->name] = host::CalibrationMethodName(s.methods[c.choice[s.feature_slots + k]]);
  for (const auto& op : f.operators)
    if (op->opcode == fb::OpCode::LOGISTIC || op->opcode == fb::OpCode::TANH)
      range[f.tensors[op->outputs[0]]->name] = "fixed";
  for (auto& l : report->layers)
    if (l.dtype == "int8" && range.count(l.name)) l.range = range[l.name];
  report->input_equalization = eq;
  report->float_heads = c.o.float_heads;
  return true;
}

// Report first, then the model: a failure leaves neither behind. A model
// that misses a goal is written only when allowed.
bool WriteOutputs(Conversion& c) {
  const Options& o = c.o;
  c.report->written = c.report->goals_met || o.allow_over_goal;
  if (!o.report_path.empty()) {
    const std::string json = ReportJson(*c.report);
    if (!host::WriteFileAtomic(o.report_path, std::vector<uint8_t>(json.begin(), json.end()), c.error))
      return false;
  }
  if (c.report->written && !host::WriteFileAtomic(o.out_path, c.file, c.error)) {
    if (!o.report_path.empty()) std::remove(o.report_path.c_str());
    return false;
  }
  return true;
}

}  // namespace

bool Convert(const Options& o, Report* report, std::string* error) {
  *report = Report{};
  report->goals = o.goals;
  if (!CheckGoals(o.goals, error)) return false;
  Conversion c(o, report, error);
  // The float model and its rows, then every activation on the fit rows.
  if (!LoadModel(c) || !LoadRows(c) || !CollectFloatActivations(c) || !InitScorers(c)) return false;
  // The int8 model: ranges, biases, the layers kept in float.
  BuildSearchSpace(c);
  if (!ChooseRanges(c) || !ApplyBiasCorrection(c) || !FloatFallback(c)) return false;
  // Judged against the goals, then made into a file that tests itself.
  if (!JudgeGoals(c)) return false;
  WriteMetadata(c);
  if (!FinishFile(c) || !SelfTest(c) || !ReportLayers(c)) return false;
  return WriteOutputs(c);
}

}  // namespace mtan::convert
