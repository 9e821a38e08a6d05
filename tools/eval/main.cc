// mtan-eval: scores any .mtan file, float or int8, on a labelled CSV through
// the real runtime, with the trainer's metric code (host/metrics.h).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <nlohmann/json.hpp>

#include "evaluate.h"

namespace {

using namespace mtan;

bool Run(const std::string& model_path, const std::string& data_path, const std::string& spec_path,
         const std::string& task_name, const std::string& json_path, mtan_backend backend,
         uint32_t max_batch, std::string* error) {
  std::vector<uint8_t> bytes;
  if (!host::ReadFile(model_path, &bytes, error)) return false;
  host::RuntimeModel rt;
  if (rt.Load(bytes, max_batch, backend, error) != MTAN_OK) {
    *error = model_path + ": " + *error;
    return false;
  }
  host::Spec spec;
  host::Dataset data;
  if (!host::LoadSpec(spec_path, &spec, error) || !host::LoadCsv(data_path, spec, &data, error) ||
      !host::MatchInputs(rt.get(), data_path, &data, error))
    return false;
  std::vector<int32_t> model_task;
  if (!host::MatchTasks(rt.get(), spec, &model_task, error)) {
    *error = spec_path + ": " + *error;
    return false;
  }
  int only = -1;
  if (task_name != "all") {
    for (size_t t = 0; t < spec.tasks.size(); ++t)
      if (spec.tasks[t].name == task_name) only = static_cast<int>(t);
    if (only < 0) {
      std::string names;
      for (const auto& t : spec.tasks) names += (names.empty() ? "" : ", ") + t.name;
      *error = "--task " + task_name + ": no such task (the spec has " + names + ")";
      return false;
    }
  }
  std::vector<host::TaskEvaluation> eval;
  if (!host::EvaluateModel(rt, spec, data, model_task, only, &eval, error)) return false;

  std::fputs(fmt::format("{}: {} rows of {}, batch {}\n", model_path, data.rows, data_path, rt.max_batch())
                 .c_str(),
             stdout);
  std::fputs(fmt::format("{:<16} {:<12} {:<10} {:>8} {:>10}\n", "task", "kind", "metric", "rows", "value")
                 .c_str(),
             stdout);
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (const auto& e : eval) {
    nlohmann::ordered_json t;
    for (const auto& m : e.metrics) {
      std::fputs(fmt::format("{:<16} {:<12} {:<10} {:>8} {:>10.5f}\n", e.name, host::TaskKindName(e.type),
                             m.name, e.rows, m.value)
                     .c_str(),
                 stdout);
      t[m.name] = std::isfinite(m.value) ? nlohmann::ordered_json(m.value) : nlohmann::ordered_json(nullptr);
    }
    t["rows"] = e.rows;
    j[e.name] = t;
  }
  if (!json_path.empty()) {
    const std::string text = j.dump(2) + "\n";
    if (!host::WriteFileAtomic(json_path, std::vector<uint8_t>(text.begin(), text.end()), error))
      return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mtan-eval: evaluate a .mtan model (float or int8) on a labelled CSV through the "
               "runtime"};
  std::string model, data, spec, task = "all", json, backend = "default";
  uint32_t max_batch = 0;
  app.add_option("--model", model, "Model file (.mtan)")->required();
  app.add_option("--data", data, "Labelled CSV with a header row")->required();
  app.add_option("--spec", spec, "Task spec JSON (features and tasks)")->required();
  app.add_option("--task", task, "One task's name, or all")->capture_default_str();
  app.add_option("--json", json, "Write the metrics as JSON, one object per task");
  app.add_option("--backend", backend,
                 "default (XNNPACK, and VNNI int8 kernels where the CPU has them), xnnpack "
                 "(XNNPACK's kernels only) or reference")
      ->capture_default_str()
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(host::kBackendNames),
                                                     std::end(host::kBackendNames))));
  app.add_option("--max-batch", max_batch, "Rows per mtan_run (default: the model's)")
      ->check(CLI::Range(1u, static_cast<uint32_t>(MTAN_MAX_BATCH)));
  CLI11_PARSE(app, argc, argv);
  std::string error;
  bool ok = false;
  try {
    ok = Run(model, data, spec, task, json,
             [&] {
               mtan_backend b = MTAN_BACKEND_DEFAULT;
               host::BackendFromName(backend, &b);  // checked by CLI11
               return b;
             }(),
             max_batch, &error);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!ok) {
    std::fprintf(stderr, "mtan-eval: error: %s\n", error.c_str());
    return 1;
  }
  return 0;
}
