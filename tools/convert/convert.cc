#include "convert.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "format.h"
#include "quantize.h"

namespace mtan::convert {
namespace {

using host::CalibrationMethod;
using host::RuntimeModel;

constexpr uint32_t kCalibrationBatch = 256;
constexpr double kMaxCalibrationGiB = 8.0;

void Progress(const Options& o, const std::string& line) {
  if (o.progress) o.progress(line);
}

fb::ModelT DeepCopy(const fb::ModelT& m) {
  flatbuffers::FlatBufferBuilder fbb;
  fb::FinishModelBuffer(fbb, fb::Model::Pack(fbb, &m));
  fb::ModelT copy;
  fb::GetModel(fbb.GetBufferPointer())->UnPackTo(&copy);
  return copy;
}

std::vector<TaskReport> CompareTasks(const std::vector<host::TaskEvaluation>& f,
                                     const std::vector<host::TaskEvaluation>& q) {
  std::vector<TaskReport> out;
  for (size_t t = 0; t < f.size(); ++t) {
    TaskReport r;
    r.name = f[t].name;
    r.kind = host::TaskTypeName(f[t].type);
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

double Score(const std::vector<TaskReport>& tasks) {
  double worst = 0.0;
  for (const auto& t : tasks) worst = std::max(worst, GoalFraction(t));
  return worst;
}

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
  fb::ModelT copy = DeepCopy(q);
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
        if (d.dtype == 1) {
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
    l.dtype = d.dtype == 1 ? "int8" : "float32";
    l.channels = d.channels;
    l.scale = d.dtype == 1 ? d.scale : 0.0f;
    l.zero_point = d.dtype == 1 ? d.zero_point : 0;
    // Two all-zero tensors agree perfectly.
    l.cosine = (a.ff == 0 && a.qq == 0) ? 1.0 : a.dot / std::sqrt(a.ff * a.qq);
    if (!std::isfinite(l.cosine)) l.cosine = 0.0;
    l.relative_rmse = a.ff == 0 ? (a.dd == 0 ? 0.0 : 1.0) : std::sqrt(a.dd / a.ff);
    l.saturated = d.dtype == 1 ? a.sat / a.count : 0.0;
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

double GoalFraction(const TaskReport& task) {
  const MetricDelta* m = FindMetric(task, task.primary);
  if (m == nullptr || !std::isfinite(m->float_value) || !std::isfinite(m->int8_value)) return 0.0;
  if (task.primary == "auc") return (m->float_value - m->int8_value) / 0.001;
  if (task.primary == "accuracy") return (m->float_value - m->int8_value) / 0.002;
  if (task.primary == "nmse")
    return m->float_value > 0 ? (m->int8_value / m->float_value - 1.0) / 0.02 : 0.0;
  return 0.0;
}

bool Convert(const Options& o, Report* report, std::string* error) {
  *report = Report{};
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
  report->source_hash = Hex64(Checksum64(src.data(), src.size()));
  report->float_file_bytes = src.size();
  f.golden.clear();  // float outputs: the int8 model gets its own
  RuntimeModel float_rt;
  if (float_rt.Load(src, kCalibrationBatch, MTAN_BACKEND_DEFAULT, error) != MTAN_OK) {
    *error = o.model_path + ": " + *error;
    return false;
  }

  // Calibration rows, matched to the model's inputs and tasks.
  host::Spec spec;
  host::Dataset data;
  if (!host::LoadSpec(o.spec_path, &spec, error) || !host::LoadCsv(o.calib_path, spec, &data, error))
    return false;
  if (!host::MatchInputs(float_rt.get(), o.calib_path, &data, error)) return false;
  std::vector<int32_t> model_task;
  if (!host::MatchTasks(float_rt.get(), spec, &model_task, error)) {
    *error = o.spec_path + ": " + *error;
    return false;
  }
  if (data.rows <= 0) {
    *error = o.calib_path + ": no calibration rows";
    return false;
  }
  for (size_t i = 0; i < data.x.size(); ++i) {
    if (!std::isfinite(data.x[i])) {
      *error = fmt::format("{}: row {}, feature '{}' is not finite", o.calib_path,
                           i / data.features.size() + 1, data.features[i % data.features.size()]);
      return false;
    }
  }
  report->calibration_rows = data.rows;
  const uint32_t n = static_cast<uint32_t>(data.rows);
  {
    // Every activation of every row is kept (percentiles, histograms and the
    // per-layer report need them): refuse clearly rather than run out of memory.
    uint64_t per_row = 0;
    for (const auto& t : f.tensors)
      if (t->buffer == 0 && !t->shape.empty()) per_row += static_cast<uint64_t>(t->shape[0]);
    const double gib = static_cast<double>(per_row) * n * sizeof(float) / (1u << 30);
    if (gib > kMaxCalibrationGiB) {
      *error = fmt::format("{}: {} rows x {} activations per row need {:.1f} GiB to calibrate (limit "
                           "{}); use fewer rows, e.g. the validation split",
                           o.calib_path, n, per_row, gib, kMaxCalibrationGiB);
      return false;
    }
  }

  // Every activation on every calibration row, from the runtime's float path.
  std::vector<std::vector<float>> values;
  uint32_t last_pct = 0;
  Progress(o, fmt::format("calibrating on {} rows of {}", n, o.calib_path));
  if (!host::CollectActivations(f, data.x, n, &values, error, [&](uint32_t done, uint32_t total) {
        const uint32_t pct = static_cast<uint32_t>(100ull * done / total);
        if (pct / 10 != last_pct / 10 || done == total) {
          Progress(o, fmt::format("  float activations: {}/{} rows ({}%)", done, total, pct));
          last_pct = pct;
        }
      }))
    return false;
  std::vector<host::TaskEvaluation> float_eval;
  if (!host::EvaluateModel(float_rt, spec, data, model_task, -1, &float_eval, error)) return false;
  float_rt.Unload();
  // The int8 model is chosen and checked by these metrics: rows that cannot
  // measure one (a single row, or one class only) would pick blindly.
  for (const auto& t : float_eval) {
    const std::string metric = host::PrimaryMetricName(t.type);
    if (!std::isfinite(host::MetricValue(t, metric))) {
      *error = fmt::format("{}: {} calibration rows ({} with a label for task '{}') cannot measure "
                           "its {}, so int8 could not be compared with float; use more rows "
                           "(both classes of a binary task, at least two rows)",
                           o.calib_path, n, t.rows, t.name, metric);
      return false;
    }
  }

  // Quantize with each candidate method and score it on the same rows.
  std::vector<CalibrationMethod> methods = {o.method};
  if (o.method == CalibrationMethod::kAuto)
    methods = {CalibrationMethod::kMinMax, CalibrationMethod::kPercentile, CalibrationMethod::kMse};
  report->requested = host::CalibrationMethodName(o.method);
  fb::ModelT best;
  std::vector<float> best_input_values;  // the equalized standardized input, for the report
  bool best_equalized = false;
  double best_score = std::numeric_limits<double>::infinity();
  const int std_t = host::StandardizedInputTensor(f);
  for (CalibrationMethod m : methods) {
    // Equalize the raw inputs' ranges first (see EqualizeInputs): the
    // calibrated per-feature ranges use the same method.
    fb::ModelT fe = DeepCopy(f);
    std::vector<float> input_values;
    bool equalized = false;
    if (o.equalize_inputs && std_t >= 0) {
      const int features = static_cast<int>(f.inputs.size());
      std::vector<float> c, h;
      if (host::EqualizeInputs(&fe, host::ChannelRanges(values[std_t], features, m, o.percentile), &c, &h)) {
        equalized = true;
        input_values = values[std_t];
        for (size_t i = 0; i < input_values.size(); ++i)
          input_values[i] = (input_values[i] - c[i % features]) / h[i % features];
      }
    }
    std::vector<host::Range> ranges = host::CalibrateRanges(values, m, o.percentile);
    if (equalized) ranges[std_t] = host::EqualizedInputRange();
    host::QuantizeOptions qo;
    qo.float_heads = o.float_heads;
    fb::ModelT q = host::QuantizeModel(fe, ranges, qo);
    RuntimeModel rt;
    std::vector<host::TaskEvaluation> q_eval;
    if (rt.Load(host::FinishModel(q, kCalibrationBatch), 0, MTAN_BACKEND_DEFAULT, error) != MTAN_OK ||
        !host::EvaluateModel(rt, spec, data, model_task, -1, &q_eval, error)) {
      *error = std::string("int8 model (") + host::CalibrationMethodName(m) + "): " + *error;
      return false;
    }
    CandidateReport c;
    c.method = host::CalibrationMethodName(m);
    c.tasks = CompareTasks(float_eval, q_eval);
    c.score = Score(c.tasks);
    std::string line = fmt::format("  {:<10} worst task at {:.2f} of its goal:", c.method, c.score);
    for (const auto& t : c.tasks) {
      const MetricDelta* p = FindMetric(t, t.primary);
      line += fmt::format(" {} {} {:+.5f}", t.name, t.primary, p ? p->delta() : 0.0);
    }
    Progress(o, line);
    if (c.score < best_score) {
      best_score = c.score;
      best = std::move(q);
      best_input_values = std::move(input_values);
      best_equalized = equalized;
      report->method = c.method;
      report->tasks = c.tasks;
    }
    report->candidates.push_back(std::move(c));
  }

  // Metadata: where it came from, how it was calibrated, what it scores.
  fb::ModelT& q = best;
  // Per-channel weight zero points are all 0, the format's default: not
  // storing them saves 4 bytes per output channel.
  for (auto& t : q.tensors)
    if (t->buffer != 0 && t->dtype == fb::DType::INT8 && t->quantization) t->quantization->zero_point.clear();
  if (!q.metadata) q.metadata = std::make_unique<fb::MetadataT>();
  fb::MetadataT& md = *q.metadata;
  const std::string source_producer = md.producer;
  md.producer = fmt::format("mtan-convert {}.{}", MTAN_VERSION_MAJOR, MTAN_VERSION_MINOR);
  SetProperty(md, "source_hash", report->source_hash);
  if (!source_producer.empty()) SetProperty(md, "source_producer", source_producer);
  SetProperty(md, "calibration", report->method);
  SetProperty(md, "calibration_requested", report->requested);
  SetProperty(md, "calibration_rows", std::to_string(n));
  SetProperty(md, "input_equalization", best_equalized ? "per-feature" : "off");
  SetProperty(md, "heads", o.float_heads ? "float" : "int8");
  if (report->method == "percentile") SetProperty(md, "calibration_percentile", fmt::format("{}", o.percentile));
  for (const auto& t : report->tasks) {
    for (const auto& m : t.metrics) {
      AddMetric(md, "float/" + t.name + "/" + m.name, m.float_value);
      AddMetric(md, "int8/" + t.name + "/" + m.name, m.int8_value);
    }
  }

  // Golden cases, then the arena for the chosen maximum batch.
  const uint32_t max_batch = o.max_batch ? o.max_batch : (f.max_batch ? f.max_batch : 1);
  q.max_batch = max_batch;
  if (!AddGoldenCases(q, data, o, report, error)) return false;
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
    if (best_equalized) layer_values[std_t] = &best_input_values;
    if (!CompareLayers(f, layer_values, q, data, &report->layers, error)) return false;
  }
  report->input_equalization = best_equalized;
  report->float_heads = o.float_heads;

  // Report first, then the model: a failure leaves neither behind.
  if (!o.report_path.empty()) {
    const std::string json = ReportJson(*report);
    if (!host::WriteFileAtomic(o.report_path, std::vector<uint8_t>(json.begin(), json.end()), error))
      return false;
  }
  if (!host::WriteFileAtomic(o.out_path, file, error)) {
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
      j["goal_fraction"] = num(GoalFraction(t));
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
                      {"heads", r.float_heads ? "float" : "int8"}};
  ordered_json cands = ordered_json::object();
  for (const auto& c : r.candidates) cands[c.method] = {{"score", num(c.score)}, {"tasks", tasks_json(c.tasks)}};
  j["calibration"]["candidates"] = cands;
  j["tasks"] = tasks_json(r.tasks);
  ordered_json layers = ordered_json::array();
  for (const auto& l : r.layers) {
    ordered_json lj;
    lj["name"] = l.name;
    lj["dtype"] = l.dtype;
    lj["channels"] = l.channels;
    if (l.dtype == "int8") {
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
  s += fmt::format("calibration: {} ({} requested) on {} rows, input equalization {}, {} heads\n\n",
                   r.method, r.requested, r.calibration_rows,
                   r.input_equalization ? "per-feature" : "off", r.float_heads ? "float" : "int8");
  s += fmt::format("{:<16} {:<10} {:>8} {:>10} {:>10} {:>10}\n", "task", "metric", "rows", "float",
                   "int8", "delta");
  for (const auto& t : r.tasks) {
    for (const auto& m : t.metrics) {
      s += fmt::format("{:<16} {:<10} {:>8} {:>10.5f} {:>10.5f} {:>+10.5f}{}\n", t.name, m.name,
                       t.rows, m.float_value, m.int8_value, m.delta(),
                       m.name == t.primary && GoalFraction(t) > 1.0 ? "  over goal" : "");
    }
  }
  s += fmt::format("\n{:<36} {:>7} {:>6} {:>10} {:>9} {:>9} {:>7}\n", "layer", "dtype", "chan",
                   "scale", "cosine", "rel.rmse", "clip%");
  for (const auto& l : r.layers) {
    s += fmt::format("{:<36} {:>7} {:>6} {:>10} {:>9.6f} {:>9.5f} {:>7}\n", l.name, l.dtype,
                     l.channels, l.dtype == "int8" ? fmt::format("{:.3g}", l.scale) : "-",
                     l.cosine, l.relative_rmse,
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
