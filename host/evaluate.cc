#include "evaluate.h"

#include <cmath>
#include <limits>
#include <map>

#include "ids.h"

namespace mtan::host {
namespace {

std::string JoinNames(const std::vector<std::string>& names, size_t limit = 8) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < limit; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > limit) s += " and " + std::to_string(names.size() - limit) + " more";
  return s;
}

// MatchInputs' check of the id columns against the tensor inputs.
bool MatchTensorInputs(const mtan_model* model, const std::string& source, Dataset* data,
                       std::string* error) {
  uint32_t count = 0;
  mtan_tensor_input_count(model, &count);
  std::map<std::string, size_t> column;
  for (size_t c = 0; c < data->ids.size(); ++c) column[data->ids[c].name] = c;
  std::vector<std::string> missing, extra;
  std::vector<IdColumn> ordered;
  std::map<std::string, int> wanted;
  for (uint32_t j = 0; j < count; ++j) {
    mtan_input_info info;
    mtan_tensor_input_info(model, j, &info);
    const std::string name = info.name ? info.name : "";
    wanted[name] = 1;
    auto it = column.find(name);
    if (it == column.end() || info.dtype != MTAN_DTYPE_INT64) {
      missing.push_back(name);
      continue;
    }
    const IdColumn& c = data->ids[it->second];
    if (info.row_bytes != static_cast<size_t>(c.length) * 8) {
      *error = source + ": id feature '" + name + "' has max_length " + std::to_string(c.length) +
               " in the spec, the model takes " + std::to_string(info.row_bytes / 8) + " ids";
      return false;
    }
    ordered.push_back(c);
  }
  for (const IdColumn& c : data->ids)
    if (!wanted.count(c.name)) extra.push_back(c.name);
  if (!missing.empty() || !extra.empty()) {
    std::string msg = source + ": the id columns do not match the model's " +
                      std::to_string(count) + " id inputs";
    if (!missing.empty()) msg += "; missing: " + JoinNames(missing);
    if (!extra.empty()) msg += "; not id inputs of the model: " + JoinNames(extra);
    *error = msg;
    return false;
  }
  data->ids = std::move(ordered);
  return true;
}

}  // namespace

bool MatchInputs(const mtan_model* model, const std::string& source, Dataset* data,
                 std::string* error) {
  uint32_t inputs = 0;
  mtan_input_count(model, &inputs);
  std::vector<std::string> names(inputs);
  for (uint32_t i = 0; i < inputs; ++i) {
    const char* name = nullptr;
    mtan_input_name(model, i, &name);
    names[i] = name ? name : "";
  }
  std::map<std::string, size_t> column;
  for (size_t c = 0; c < data->features.size(); ++c) column[data->features[c]] = c;
  std::vector<std::string> missing, extra;
  std::vector<size_t> source_col(inputs);
  std::map<std::string, int> wanted;
  for (uint32_t i = 0; i < inputs; ++i) {
    wanted[names[i]] = 1;
    auto it = column.find(names[i]);
    if (it == column.end()) missing.push_back(names[i]);
    else source_col[i] = it->second;
  }
  for (const auto& f : data->features)
    if (!wanted.count(f)) extra.push_back(f);
  if (!missing.empty() || !extra.empty()) {
    std::string msg = source + ": the feature columns do not match the model's " +
                      std::to_string(inputs) + " inputs";
    if (!missing.empty()) msg += "; missing: " + JoinNames(missing);
    if (!extra.empty()) msg += "; not inputs of the model: " + JoinNames(extra);
    *error = msg;
    return false;
  }
  const size_t f = data->features.size();
  bool identity = true;
  for (uint32_t i = 0; i < inputs; ++i) identity = identity && source_col[i] == i;
  if (identity) return MatchTensorInputs(model, source, data, error);
  std::vector<float> x(data->x.size());
  for (int64_t r = 0; r < data->rows; ++r)
    for (uint32_t i = 0; i < inputs; ++i)
      x[static_cast<size_t>(r) * inputs + i] = data->x[static_cast<size_t>(r) * f + source_col[i]];
  data->x = std::move(x);
  data->features = names;
  return MatchTensorInputs(model, source, data, error);
}

bool MatchTasks(const mtan_model* model, const Spec& spec, std::vector<int32_t>* model_task,
                std::string* error) {
  model_task->clear();
  for (const TaskSpec& t : spec.tasks) {
    int32_t index = -1;
    if (mtan_task_find(model, t.name.c_str(), &index) != MTAN_OK) {
      *error = "the spec's task '" + t.name + "' is not a task of the model";
      return false;
    }
    mtan_task_info info;
    mtan_task_info_get(model, static_cast<uint32_t>(index), &info);
    const uint32_t want_kind = static_cast<uint32_t>(t.type);  // mtan_task_kind: the same values
    if (info.kind != want_kind || info.output_size != static_cast<uint32_t>(t.classes)) {
      *error = "task '" + t.name + "': the spec says " + TaskKindName(t.type) + " with " +
               std::to_string(t.classes) + " output(s), the model has kind " +
               std::to_string(info.kind) + " with " + std::to_string(info.output_size);
      return false;
    }
    model_task->push_back(index);
  }
  return true;
}

bool PredictModelSpace(RuntimeModel& model, const Spec& spec, const Dataset& data,
                       const std::vector<int32_t>& model_task, int only_task,
                       std::vector<std::vector<float>>* outputs, std::string* error) {
  outputs->assign(spec.tasks.size(), {});
  if (data.rows <= 0) {
    *error = "no rows to evaluate";
    return false;
  }
  const uint32_t n = static_cast<uint32_t>(data.rows);
  const int32_t run_task = only_task < 0 ? MTAN_ALL_TASKS : model_task.at(only_task);
  std::vector<float> y;
  if (model.Run(data.x.data(), n, run_task, &y, error, TensorInputBytes(data, 0, data.rows)) !=
      MTAN_OK)
    return false;
  uint32_t per_row = 0;
  mtan_output_size(model.get(), run_task, &per_row);
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    if (only_task >= 0 && static_cast<int>(t) != only_task) continue;
    const TaskSpec& task = spec.tasks[t];
    mtan_task_info info;
    mtan_task_info_get(model.get(), static_cast<uint32_t>(model_task[t]), &info);
    const uint32_t offset = only_task < 0 ? info.output_offset : 0;
    std::vector<float>& pred = (*outputs)[t];
    pred.resize(static_cast<size_t>(n) * info.output_size);
    for (uint32_t r = 0; r < n; ++r) {
      for (uint32_t k = 0; k < info.output_size; ++k) {
        float v = y[static_cast<size_t>(r) * per_row + offset + k];
        if (task.type == fb::TaskKind::REGRESSION) {
          // log1p(-1) is -inf: an expm1 that underflowed to -1 stays finite.
          if (task.log1p) v = std::max(v, std::nextafter(-1.0f, 0.0f));
          v = static_cast<float>(ToModelSpace(task, v));
        }
        pred[static_cast<size_t>(r) * info.output_size + k] = v;
      }
    }
  }
  return true;
}

bool EvaluateModel(RuntimeModel& model, const Spec& spec, const Dataset& data,
                   const std::vector<int32_t>& model_task, int only_task,
                   std::vector<TaskEvaluation>* out, std::string* error) {
  out->clear();
  std::vector<std::vector<float>> pred;
  if (!PredictModelSpace(model, spec, data, model_task, only_task, &pred, error)) return false;
  for (size_t t = 0; t < spec.tasks.size(); ++t) {
    if (only_task >= 0 && static_cast<int>(t) != only_task) continue;
    TaskEvaluation e;
    e.name = spec.tasks[t].name;
    e.type = spec.tasks[t].type;
    e.rows = data.labels.at(t).observed_rows;
    e.metrics = EvaluateTask(spec.tasks[t], pred[t].data(), data.labels[t]);
    out->push_back(std::move(e));
  }
  return true;
}

double MetricValue(const TaskEvaluation& e, const std::string& name) {
  for (const auto& m : e.metrics)
    if (m.name == name) return m.value;
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace mtan::host
