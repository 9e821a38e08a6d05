// Evaluation metrics for every task kind, implemented once and shared by
// mtan-train, mtan-data (ceilings) and mtan-eval. Host only.
//
// All functions take plain arrays over the rows to score; rows whose label is
// unobserved must be left out by the caller (EvaluateTask does that from a
// TaskLabels mask). A metric that is undefined for its input (AUC with one
// class only, NMSE with zero label variance, no rows) returns NaN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dataset.h"

namespace mtan::host {

// Area under the ROC curve of `score` against 0/1 `label`; ties get the
// average rank (the Mann-Whitney U statistic / (pos * neg)).
double Auc(const float* score, const float* label, size_t n);

// Mean binary cross-entropy of probabilities `prob` (clipped to
// [eps, 1 - eps]) against 0/1 labels.
double LogLoss(const float* prob, const float* label, size_t n, double eps = 1e-7);

// Multiclass: `probs` is n x classes row-major, `label` holds class indices.
// The predicted class is the first maximum of a row.
double Accuracy(const float* probs, const float* label, size_t n, int classes);
// Unweighted mean over classes of F1 = 2TP / (2TP + FP + FN); a class that
// appears neither in the labels nor in the predictions is left out.
double MacroF1(const float* probs, const float* label, size_t n, int classes);

// Regression, in whatever space the caller passes (e.g. log1p for spend).
double Rmse(const float* pred, const float* label, size_t n);
// Mean squared error divided by the (population) variance of the labels: 1.0
// is what predicting the label mean scores.
double Nmse(const float* pred, const float* label, size_t n);

struct NamedMetric {
  std::string name;  // "auc", "logloss", "accuracy", "macro_f1", "rmse", "nmse"
  double value;
};

// Every metric of `task` on the rows where its label is observed: binary
// "auc", "logloss"; multiclass "accuracy", "macro_f1"; regression "rmse",
// "nmse". `outputs` is rows x task.classes, in model space: probabilities, or
// the regression value in the label's model space (log1p for log1p labels).
std::vector<NamedMetric> EvaluateTask(const TaskSpec& task, const float* outputs,
                                      const TaskLabels& labels);

// The one metric per task kind that model selection uses: "auc", "accuracy"
// or "nmse"; and whether higher is better (false for nmse).
const char* PrimaryMetricName(fb::TaskKind type);
bool PrimaryHigherIsBetter(fb::TaskKind type);

}  // namespace mtan::host
