// mtan-convert's report, as JSON (--report) and as the tables it prints:
// apart from the pipeline in convert.cc, which only fills the Report.
#include "convert.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace mtan::convert {

namespace {

using nlohmann::ordered_json;

// JSON has no NaN or infinity: null instead.
ordered_json Num(double v) { return std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr); }

ordered_json TasksJson(const std::vector<TaskReport>& tasks, const GoalPolicy& goals) {
  ordered_json out = ordered_json::object();
  for (const auto& t : tasks) {
    ordered_json j;
    j["kind"] = t.kind;
    j["rows"] = t.rows;
    j["metric"] = t.primary;
    const MetricDelta* p = FindMetric(t, t.primary);
    j["float"] = Num(p ? p->float_value : NAN);
    j["int8"] = Num(p ? p->int8_value : NAN);
    j["delta"] = Num(p ? p->delta() : NAN);
    j["goal_fraction"] = Num(GoalFraction(t, goals));
    if (std::isfinite(t.loss_se)) j["loss_se"] = t.loss_se;
    if (std::isfinite(t.expected)) j["expected_goal_fraction"] = t.expected;
    if (std::isfinite(t.expected_se)) j["expected_goal_fraction_se"] = t.expected_se;
    j["goal_met"] = GoalMet(t, goals);
    ordered_json ms = ordered_json::object();
    for (const auto& m : t.metrics)
      ms[m.name] = {{"float", Num(m.float_value)}, {"int8", Num(m.int8_value)}, {"delta", Num(m.delta())}};
    j["metrics"] = ms;
    out[t.name] = j;
  }
  return out;
}

}  // namespace

std::string ReportJson(const Report& r) {
  ordered_json j;
  j["source_hash"] = r.source_hash;
  j["calibration"] = {{"method", r.method},
                      {"requested", r.requested},
                      {"rows", r.calibration_rows},
                      {"input_equalization", r.input_equalization ? "per-feature" : "off"},
                      {"heads", r.float_heads ? "float" : "int8"},
                      {"bias_correction", r.bias_correction},
                      {"bias_correction_gain", Num(r.bias_correction_gain)},
                      {"seconds", r.calibration_seconds},
                      {"cpu_seconds", r.calibration_cpu_seconds},
                      {"evaluations", r.evaluations}};
  ordered_json cands = ordered_json::object();
  for (const auto& c : r.candidates)
    cands[c.method] = {
        {"score", Num(c.score)}, {"expected", Num(c.expected)}, {"tasks", TasksJson(c.tasks, r.goals)}};
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
  j["tasks"] = TasksJson(r.tasks, r.goals);
  j["fit_tasks"] = TasksJson(r.fit_tasks, r.goals);
  ordered_json fallback = ordered_json::array();
  for (const auto& f : r.fallback)
    fallback.push_back({{"name", f.name}, {"sensitivity", Num(f.sensitivity)}, {"added_bytes", f.added_bytes}});
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
      lj["clipped"] = Num(l.saturated);
    }
    lj["cosine"] = Num(l.cosine);
    lj["relative_rmse"] = Num(l.relative_rmse);
    layers.push_back(lj);
  }
  j["layers"] = layers;
  j["sizes"] = {{"float_file_bytes", r.float_file_bytes},
                {"int8_file_bytes", r.int8_file_bytes},
                {"int8_over_float", Num(r.float_file_bytes ? static_cast<double>(r.int8_file_bytes) / r.float_file_bytes : NAN)},
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
