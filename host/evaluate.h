// Scoring a .mtan file on a labelled CSV through the real runtime: shared by
// mtan-eval and mtan-convert (float and int8 validation metrics), so that
// both report exactly what the trainer's metric code computes. Host only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataset.h"
#include "metrics.h"
#include "model_io.h"

namespace mtan::host {

// Checks that the data's feature columns are exactly the model's inputs (by
// name; the CSV may order them differently) and its id columns exactly the
// model's tensor inputs (by name and length), and reorders data->x and
// data->ids into the model's order. On a mismatch returns false with a message, naming
// `source`, that lists the missing and the unexpected columns.
bool MatchInputs(const mtan_model* model, const std::string& source, Dataset* data,
                 std::string* error);

// For every task of `spec`, the index of the model's task of that name;
// false with a message when one is missing or its kind or output size
// differs from the spec's.
bool MatchTasks(const mtan_model* model, const Spec& spec, std::vector<int32_t>* model_task,
                std::string* error);

struct TaskEvaluation {
  std::string name;
  fb::TaskKind type = fb::TaskKind::BINARY;
  int64_t rows = 0;                  // rows with an observed label, the ones scored
  std::vector<NamedMetric> metrics;  // EvaluateTask's, in model space
};

// Runs data.x (already in model input order) through `model` and returns
// every spec task's outputs in model space, (*outputs)[t] rows x classes:
// probabilities, or the regression value moved into the spec's model space
// (log1p) as the trainer scores it. Only spec.tasks[only_task] when
// only_task >= 0 (the other entries stay empty).
bool PredictModelSpace(RuntimeModel& model, const Spec& spec, const Dataset& data,
                       const std::vector<int32_t>& model_task, int only_task,
                       std::vector<std::vector<float>>* outputs, std::string* error);

// Runs data.x (already in model input order) through `model` in batches of
// its maximum batch and scores the spec's tasks: all of them when
// `only_task` < 0, else just spec.tasks[only_task] (its plan alone is run).
// Regression outputs come back from the runtime in label units and are moved
// into the spec's model space (log1p) before scoring, as the trainer does.
bool EvaluateModel(RuntimeModel& model, const Spec& spec, const Dataset& data,
                   const std::vector<int32_t>& model_task, int only_task,
                   std::vector<TaskEvaluation>* out, std::string* error);

// Value of a named metric in `e`, NaN when absent.
double MetricValue(const TaskEvaluation& e, const std::string& name);

}  // namespace mtan::host
